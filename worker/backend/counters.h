#pragma once
// Traffic counters of a frontend, backend or server.
//
// Statistics are counted per thread and summed when read: every worker thread
// owns one cache-line-aligned slot in each counter set and only ever adds to
// that slot, so counting on the traffic path takes no lock and never bounces a
// cache line between cores. Threads that are not worker threads (tests, the
// worker's start-up) share one extra slot. The additions are relaxed atomics so
// that a reader on another thread sees whole values.
//
// The gauges that decide admission (connections and requests in progress and
// their maximum) are not statistics: they must be exact at every instant across
// threads, so they are single shared atomics (`active`, `active_max`).

#include <atomic>
#include <cstdint>
#include <memory>

namespace weir {

// The calling thread's slot index: 0..threads-1 on worker threads, -1 elsewhere.
int counter_slot();
// Called by each worker thread as its event loop starts.
void set_counter_slot(int slot);

// The phases whose durations are averaged, as HAProxy's qtime/ctime/rtime/ttime.
enum TimePhase { kTimeQueue = 0, kTimeConnect = 1, kTimeResponse = 2, kTimeTotal = 3 };

// Averages follow the last kTimeWindow samples of each thread.
constexpr uint64_t kTimeWindow = 1024;

struct alignas(64) CounterSlot {
  std::atomic<uint64_t> sessions_total{0};     // tcp: connections; http: requests
  std::atomic<uint64_t> connections_total{0};  // frontends: client connections accepted
  std::atomic<uint64_t> bytes_in{0};           // received from clients
  std::atomic<uint64_t> bytes_out{0};          // sent to clients
  std::atomic<uint64_t> connect_errors{0};     // failed connection attempts
  std::atomic<uint64_t> response_errors{0};    // malformed/aborted responses, server timeouts
  std::atomic<uint64_t> request_errors{0};     // malformed requests, client timeouts
  std::atomic<uint64_t> denied_requests{0};    // refused by a deny or tarpit rule
  std::atomic<uint64_t> denied_responses{0};   // refused by an http_response deny rule
  std::atomic<uint64_t> retries{0};            // connection attempts moved to another try
  std::atomic<uint64_t> redispatches{0};       // retries sent to another server (on the one left)
  std::atomic<uint64_t> client_aborts{0};      // ended by the client after reaching a server
  std::atomic<uint64_t> server_aborts{0};      // ended by the server in headers or data
  std::atomic<uint64_t> responses[6]{};        // by status class: [1]..[5] = 1xx..5xx, [0] other
  // Sessions counted in the current and the previous second of the clock.
  std::atomic<int64_t> rate_second{0};
  std::atomic<uint64_t> rate_current{0};
  std::atomic<uint64_t> rate_previous{0};
  // Connections counted the same way (frontends).
  std::atomic<int64_t> conn_rate_second{0};
  std::atomic<uint64_t> conn_rate_current{0};
  std::atomic<uint64_t> conn_rate_previous{0};
  // Sliding sums of phase durations in ms (see TrafficCounters::add_times).
  std::atomic<uint64_t> time_sum[4]{};
  std::atomic<uint64_t> time_samples[4]{};
};

// What a reader gets: the sum of every slot.
struct CounterTotals {
  uint64_t sessions_total = 0;
  uint64_t connections_total = 0;
  uint64_t bytes_in = 0;
  uint64_t bytes_out = 0;
  uint64_t connect_errors = 0;
  uint64_t response_errors = 0;
  uint64_t request_errors = 0;
  uint64_t denied_requests = 0;
  uint64_t denied_responses = 0;
  uint64_t retries = 0;
  uint64_t redispatches = 0;
  uint64_t client_aborts = 0;
  uint64_t server_aborts = 0;
  uint64_t responses[6] = {};
  uint64_t rate = 0;                     // sessions during the last whole second
  uint64_t conn_rate = 0;                // connections during the last whole second
  int64_t avg_ms[4] = {-1, -1, -1, -1};  // average per TimePhase; -1: no sample yet
};

inline void bump(std::atomic<uint64_t>& c, uint64_t n = 1) {
  c.fetch_add(n, std::memory_order_relaxed);
}

class TrafficCounters {
 public:
  // `threads`: the worker threads that count into it.
  explicit TrafficCounters(int threads = 1);
  TrafficCounters(const TrafficCounters&) = delete;
  TrafficCounters& operator=(const TrafficCounters&) = delete;

  // The calling thread's slot.
  CounterSlot& local() {
    int s = counter_slot();
    return slots_[(s >= 0 && s < threads_) ? s : threads_];
  }

  // One more session (request or connection) at `now_ms`, for totals and rate.
  void add_session(int64_t now_ms);
  // One more client connection (frontends).
  void add_connection(int64_t now_ms);
  void add_status(int status) {
    int cls = status / 100;
    bump(local().responses[(cls >= 1 && cls <= 5) ? cls : 0]);
  }
  // Durations of one finished session, ms; a negative value (phase not reached) is skipped.
  void add_times(int64_t queue, int64_t connect, int64_t response, int64_t total);

  CounterTotals read(int64_t now_ms) const;

  // Shared, exact gauges: sessions in progress and the most ever seen.
  void enter() {
    int64_t n = active.fetch_add(1, std::memory_order_relaxed) + 1;
    int64_t m = active_max.load(std::memory_order_relaxed);
    while (n > m && !active_max.compare_exchange_weak(m, n, std::memory_order_relaxed)) {
    }
  }
  void leave() { active.fetch_sub(1, std::memory_order_relaxed); }
  int64_t current() const { return active.load(std::memory_order_relaxed); }
  int64_t max_seen() const { return active_max.load(std::memory_order_relaxed); }

  // Seconds since the last session was counted (at its end), -1 when none was.
  int64_t seconds_since_last_session(int64_t now_ms) const {
    int64_t s = last_session_s_.load(std::memory_order_relaxed);
    return s < 0 ? -1 : now_ms / 1000 - s;
  }
  // Counts the termination state of a session that reached a server.
  void add_termination(const char* term) {
    if (term[1] != 'H' && term[1] != 'D') return;
    if (term[0] == 'C' || term[0] == 'c') bump(local().client_aborts);
    if (term[0] == 'S' || term[0] == 's') bump(local().server_aborts);
  }

  std::atomic<int64_t> active{0};
  std::atomic<int64_t> active_max{0};

 private:
  int threads_;
  std::unique_ptr<CounterSlot[]> slots_;  // threads_ + 1 (the last one is shared)
  // Written only when the second changes, so the line stays shared-clean.
  std::atomic<int64_t> last_session_s_{-1};
};

}  // namespace weir
