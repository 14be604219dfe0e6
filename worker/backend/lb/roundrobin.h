#pragma once
// Round robin (balance: roundrobin and static-rr); hashing algorithms also fall
// back on it for requests without a key.

#include <vector>

#include "worker/backend/lb/lb.h"

namespace weir {

// Smooth weighted round robin: every pick adds each candidate's weight to its
// running score and takes the highest, which then gives back the total. Picks
// interleave evenly (weights 5,1,1 give a a b a c a a, not a a a a a b c), and a
// weight change takes effect on the next pick.
class RoundRobin final : public LbAlgorithm {
 public:
  explicit RoundRobin(bool use_static) : static_(use_static) {}
  size_t pick(std::span<const LbCandidate> c, bool, uint64_t) override {
    int64_t total = 0;
    size_t best = 0;
    for (size_t i = 0; i < c.size(); ++i) {
      int64_t& cur = score(c[i].index);
      int64_t w = static_ ? c[i].static_w : c[i].weight;
      cur += w;
      total += w;
      if (i == 0 || cur > score(c[best].index)) best = i;
    }
    score(c[best].index) -= total;
    return best;
  }

 private:
  int64_t& score(int index) {
    if (static_cast<size_t>(index) >= current_.size())
      current_.resize(static_cast<size_t>(index) + 1, 0);
    return current_[static_cast<size_t>(index)];
  }
  bool static_;
  std::vector<int64_t> current_;
};

}  // namespace weir
