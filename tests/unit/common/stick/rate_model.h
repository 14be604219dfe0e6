#pragma once
// What a stick-table rate should read, computed from the events themselves
// (HAProxy's two-period estimate, common/stick/table.h): the events of the
// current period plus those of the previous one weighted by the share of the
// current period still to run. The store's tests and the fetches' tests
// compare stick::Rate with it.

#include <cstdint>
#include <utility>
#include <vector>

namespace weir::stick_test {

// events: (wall ms, count), in any order.
inline uint64_t model_rate(const std::vector<std::pair<int64_t, uint64_t>>& events, int64_t wall,
                           int64_t period) {
  const int64_t k = wall / period;
  uint64_t cur = 0, prev = 0;
  for (const auto& [at, n] : events) {
    if (at / period == k) cur += n;
    if (at / period == k - 1) prev += n;
  }
  return cur + prev * static_cast<uint64_t>(period - wall % period) / static_cast<uint64_t>(period);
}

}  // namespace weir::stick_test
