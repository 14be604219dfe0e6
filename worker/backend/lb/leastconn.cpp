#include "worker/backend/lb/lb.h"

namespace weir {
namespace {

// Fewest (active + queued) per unit of weight; among equals, the next one after
// the last pick, so equal servers take turns.
class LeastConn final : public LbAlgorithm {
 public:
  size_t pick(std::span<const LbCandidate> c, bool, uint64_t) override {
    size_t best = 0;
    for (size_t i = 1; i < c.size(); ++i) {
      // load_i / w_i < load_best / w_best, without division.
      int64_t lhs = c[i].load * static_cast<int64_t>(c[best].weight);
      int64_t rhs = c[best].load * static_cast<int64_t>(c[i].weight);
      if (lhs < rhs || (lhs == rhs && after_last(c[i].index) < after_last(c[best].index))) best = i;
    }
    last_ = c[best].index;
    return best;
  }

 private:
  // Distance after the last picked index, cyclically.
  uint64_t after_last(int index) const {
    return static_cast<uint64_t>(static_cast<int64_t>(index) - last_ - 1) & 0xffffffffULL;
  }
  int64_t last_ = -1;
};

std::unique_ptr<LbAlgorithm> make(const BalanceConfig&) {
  return std::make_unique<LeastConn>();
}
constexpr LbAlgorithmDef kLeastConn[] = {{"leastconn", LbKey::kNone, 0, make}};
const Registrar<LbAlgorithmDef> kRegister(kLeastConn);

}  // namespace
}  // namespace weir
