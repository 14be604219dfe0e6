#include "worker/backend/lb/lb.h"

namespace weir {
namespace {

// The first server, in configuration order, that has a free slot (the Backend
// only offers servers with one).
class First final : public LbAlgorithm {
 public:
  size_t pick(std::span<const LbCandidate>, bool, uint64_t) override { return 0; }
};

std::unique_ptr<LbAlgorithm> make(const BalanceConfig&) {
  return std::make_unique<First>();
}
constexpr LbAlgorithmDef kFirst[] = {{"first", LbKey::kNone, 0, make}};
const Registrar<LbAlgorithmDef> kRegister(kFirst);

}  // namespace
}  // namespace weir
