#include "worker/backend/lb/lb.h"

namespace weir {
namespace {

// N weighted random draws, keeping the least loaded (the power of two choices
// for N = 2): nearly as even as leastconn without its herd behaviour when many
// load balancers share servers.
class Random final : public LbAlgorithm {
 public:
  explicit Random(int draws) : draws_(draws) {}
  size_t pick(std::span<const LbCandidate> c, bool, uint64_t) override {
    uint64_t total = 0;
    for (const LbCandidate& x : c) total += x.weight;
    size_t best = draw(c, total);
    for (int d = 1; d < draws_; ++d) {
      size_t i = draw(c, total);
      int64_t lhs = c[i].load * static_cast<int64_t>(c[best].weight);
      int64_t rhs = c[best].load * static_cast<int64_t>(c[i].weight);
      if (lhs < rhs) best = i;
    }
    return best;
  }

 private:
  size_t draw(std::span<const LbCandidate> c, uint64_t total) {
    uint64_t r = next() % total;
    for (size_t i = 0; i < c.size(); ++i) {
      if (r < c[i].weight) return i;
      r -= c[i].weight;
    }
    return c.size() - 1;
  }
  uint64_t next() {  // xorshift64*
    state_ ^= state_ >> 12;
    state_ ^= state_ << 25;
    state_ ^= state_ >> 27;
    return state_ * 0x2545f4914f6cdd1dULL;
  }
  int draws_;
  uint64_t state_ = 0x9e3779b97f4a7c15ULL;
};

std::unique_ptr<LbAlgorithm> make(const BalanceConfig& cfg) {
  return std::make_unique<Random>(cfg.draws);
}
constexpr LbAlgorithmDef kRandom[] = {{"random", LbKey::kNone, kLbOptDraws, make}};
const Registrar<LbAlgorithmDef> kRegister(kRandom);

}  // namespace
}  // namespace weir
