#include "worker/backend/counters.h"

namespace weir {
namespace {

thread_local int t_slot = -1;

uint64_t get(const std::atomic<uint64_t>& a) {
  return a.load(std::memory_order_relaxed);
}

// Counts one event in a two-second window: `current` holds the events of
// `second`, `previous` those of the second before it.
void count_in_window(std::atomic<int64_t>& second, std::atomic<uint64_t>& current,
                     std::atomic<uint64_t>& previous, int64_t now_s) {
  int64_t s = second.load(std::memory_order_relaxed);
  if (s != now_s) {
    previous.store(s == now_s - 1 ? get(current) : 0, std::memory_order_relaxed);
    current.store(0, std::memory_order_relaxed);
    second.store(now_s, std::memory_order_relaxed);
  }
  bump(current);
}

// The events of the last whole second (now_s - 1).
uint64_t last_second(const std::atomic<int64_t>& second, const std::atomic<uint64_t>& current,
                     const std::atomic<uint64_t>& previous, int64_t now_s) {
  int64_t s = second.load(std::memory_order_relaxed);
  if (s == now_s) return get(previous);
  if (s == now_s - 1) return get(current);
  return 0;
}

}  // namespace

int counter_slot() {
  return t_slot;
}

void set_counter_slot(int slot) {
  t_slot = slot;
}

TrafficCounters::TrafficCounters(int threads)
    : threads_(threads < 1 ? 1 : threads),
      slots_(std::make_unique<CounterSlot[]>(static_cast<size_t>(threads_) + 1)) {}

void TrafficCounters::add_session(int64_t now_ms) {
  CounterSlot& c = local();
  bump(c.sessions_total);
  int64_t now_s = now_ms / 1000;
  count_in_window(c.rate_second, c.rate_current, c.rate_previous, now_s);
  if (last_session_s_.load(std::memory_order_relaxed) != now_s) {
    last_session_s_.store(now_s, std::memory_order_relaxed);
  }
}

void TrafficCounters::add_connection(int64_t now_ms) {
  CounterSlot& c = local();
  bump(c.connections_total);
  count_in_window(c.conn_rate_second, c.conn_rate_current, c.conn_rate_previous, now_ms / 1000);
}

void TrafficCounters::add_times(int64_t queue, int64_t connect, int64_t response, int64_t total) {
  CounterSlot& c = local();
  const int64_t v[4] = {queue, connect, response, total};
  for (int i = 0; i < 4; ++i) {
    if (v[i] < 0) continue;
    // A sliding sum over the last kTimeWindow samples: each new sample pushes out
    // one average sample (exact while fewer than kTimeWindow have been seen).
    uint64_t n = get(c.time_samples[i]);
    uint64_t sum = get(c.time_sum[i]);
    if (n >= kTimeWindow) {
      sum -= sum / kTimeWindow;
    } else {
      c.time_samples[i].store(n + 1, std::memory_order_relaxed);
    }
    c.time_sum[i].store(sum + static_cast<uint64_t>(v[i]), std::memory_order_relaxed);
  }
}

CounterTotals TrafficCounters::read(int64_t now_ms) const {
  CounterTotals t;
  int64_t now_s = now_ms / 1000;
  uint64_t time_sum[4] = {}, time_n[4] = {};
  for (int i = 0; i <= threads_; ++i) {
    const CounterSlot& c = slots_[i];
    t.sessions_total += get(c.sessions_total);
    t.connections_total += get(c.connections_total);
    t.bytes_in += get(c.bytes_in);
    t.bytes_out += get(c.bytes_out);
    t.connect_errors += get(c.connect_errors);
    t.response_errors += get(c.response_errors);
    t.request_errors += get(c.request_errors);
    t.denied_requests += get(c.denied_requests);
    t.denied_responses += get(c.denied_responses);
    t.retries += get(c.retries);
    t.redispatches += get(c.redispatches);
    t.client_aborts += get(c.client_aborts);
    t.server_aborts += get(c.server_aborts);
    for (int k = 0; k < 6; ++k) t.responses[k] += get(c.responses[k]);
    t.rate += last_second(c.rate_second, c.rate_current, c.rate_previous, now_s);
    t.conn_rate +=
        last_second(c.conn_rate_second, c.conn_rate_current, c.conn_rate_previous, now_s);
    for (int k = 0; k < 4; ++k) {
      time_sum[k] += get(c.time_sum[k]);
      time_n[k] += get(c.time_samples[k]);
    }
  }
  for (int k = 0; k < 4; ++k) {
    if (time_n[k]) t.avg_ms[k] = static_cast<int64_t>(time_sum[k] / time_n[k]);
  }
  return t;
}

}  // namespace weir
