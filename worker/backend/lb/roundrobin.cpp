#include "worker/backend/lb/roundrobin.h"

namespace weir {
namespace {

std::unique_ptr<LbAlgorithm> make_roundrobin(const BalanceConfig&) {
  return std::make_unique<RoundRobin>(false);
}
std::unique_ptr<LbAlgorithm> make_static_rr(const BalanceConfig&) {
  return std::make_unique<RoundRobin>(true);
}

constexpr LbAlgorithmDef kRoundRobins[] = {
    {"roundrobin", LbKey::kNone, 0, make_roundrobin},  // weights may change at runtime
    {"static-rr", LbKey::kNone, 0, make_static_rr},    // on the configured weights
};
const Registrar<LbAlgorithmDef> kRegister(kRoundRobins);

}  // namespace
}  // namespace weir
