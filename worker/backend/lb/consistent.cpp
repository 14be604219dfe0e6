// hash_type: consistent: a hash ring. Each server has 16 points per unit of
// weight; a key goes to the first point at or after its hash whose server is a
// candidate, so when a server leaves only its own keys move.

#include <algorithm>
#include <string>

#include "worker/backend/backend.h"
#include "worker/backend/lb/lb.h"

namespace weir {
namespace {

class Consistent final : public HashPicker {
 public:
  void reset(const std::vector<Server*>& all) override {
    // A ring with 16 points per unit of weight, each at hash("name#k"): a
    // server's points do not depend on the others, so adding or removing one
    // moves only the keys that land next to its points.
    ring_.clear();
    for (Server* s : all) {
      uint32_t points = s->weight() * 16;
      for (uint32_t k = 0; k < points; ++k) {
        ring_.push_back({lb_hash(s->name() + "#" + std::to_string(k)), s->index()});
      }
    }
    std::sort(ring_.begin(), ring_.end());
  }

  std::optional<size_t> pick(std::span<const LbCandidate> c, uint64_t hash) override {
    // Consistent: the first point at or after the key whose server is a candidate.
    marks_.assign(marks_.size(), -1);
    for (size_t i = 0; i < c.size(); ++i) {
      size_t idx = static_cast<size_t>(c[i].index);
      if (idx >= marks_.size()) marks_.resize(idx + 1, -1);
      marks_[idx] = static_cast<int>(i);
    }
    auto it = std::lower_bound(ring_.begin(), ring_.end(), std::make_pair(hash, -1));
    for (size_t n = 0; n < ring_.size(); ++n, ++it) {
      if (it == ring_.end()) it = ring_.begin();
      size_t idx = static_cast<size_t>(it->second);
      if (idx < marks_.size() && marks_[idx] >= 0) return static_cast<size_t>(marks_[idx]);
    }
    // A candidate without points (its weight changed since the ring was built).
    return std::nullopt;
  }

 private:
  std::vector<std::pair<uint64_t, int>> ring_;
  std::vector<int> marks_;
};

std::unique_ptr<HashPicker> make() {
  return std::make_unique<Consistent>();
}
constexpr HashTypeDef kConsistent[] = {{"consistent", make}};
const Registrar<HashTypeDef> kRegister(kConsistent);

}  // namespace
}  // namespace weir
