// hash_type: map_based: the hash modulo the total weight of the candidates.
// Even and cheap, but a change in the candidates moves most keys.

#include "worker/backend/lb/lb.h"

namespace weir {
namespace {

class MapBased final : public HashPicker {
 public:
  std::optional<size_t> pick(std::span<const LbCandidate> c, uint64_t hash) override {
    uint64_t total = 0;
    for (const LbCandidate& x : c) total += x.weight;
    uint64_t r = hash % total;
    for (size_t i = 0; i < c.size(); ++i) {
      if (r < c[i].weight) return i;
      r -= c[i].weight;
    }
    return c.size() - 1;
  }
};

std::unique_ptr<HashPicker> make() {
  return std::make_unique<MapBased>();
}
constexpr HashTypeDef kMapBased[] = {{"map_based", make}};
const Registrar<HashTypeDef> kRegister(kMapBased);

}  // namespace
}  // namespace weir
