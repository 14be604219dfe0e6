#pragma once
// Traffic counters shared by every thread of a worker. Relaxed atomics: each is
// exact on its own; a reader sees a consistent-enough snapshot for statistics.

#include <atomic>
#include <cstdint>

namespace weir {

struct TrafficCounters {
  std::atomic<uint64_t> sessions_total{0};   // connections (tcp) or requests (http) handled
  std::atomic<int64_t> sessions_current{0};  // in progress now
  std::atomic<uint64_t> bytes_in{0};         // received from clients
  std::atomic<uint64_t> bytes_out{0};        // sent to clients
  std::atomic<uint64_t> connect_errors{0};   // failed connection attempts
  std::atomic<uint64_t> response_errors{0};  // malformed/aborted responses, server timeouts
  std::atomic<uint64_t> request_errors{0};   // malformed requests, client timeouts
  std::atomic<uint64_t> retries{0};          // connection attempts moved to another try
  std::atomic<uint64_t> responses[6]{};      // by status class: [1]..[5] = 1xx..5xx, [0] other

  void count_status(int status) {
    int cls = status / 100;
    responses[(cls >= 1 && cls <= 5) ? cls : 0].fetch_add(1, std::memory_order_relaxed);
  }
};

inline void bump(std::atomic<uint64_t>& c, uint64_t n = 1) {
  c.fetch_add(n, std::memory_order_relaxed);
}

}  // namespace weir
