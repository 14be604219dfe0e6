#pragma once
// Timers for one event loop: an indexed min-heap of deadlines.
//
// A connection moves its deadline on nearly every event (each read pushes the
// inactivity timeout further). To keep that cheap, a Timer that is pushed *later*
// does not touch the heap: the old heap entry fires, sees the real deadline is
// still ahead, and is re-keyed then. Only an earlier deadline sifts the heap.

#include <cstddef>
#include <cstdint>
#include <vector>

namespace weir {

class TimerQueue;

class Timer {
 public:
  using Callback = void (*)(void* ctx);
  Timer(TimerQueue& queue, Callback cb, void* ctx) : queue_(queue), cb_(cb), ctx_(ctx) {}
  ~Timer();
  Timer(const Timer&) = delete;
  Timer& operator=(const Timer&) = delete;

  // Fire at `deadline_ms` (loop-monotonic milliseconds); 0 disarms.
  void set(int64_t deadline_ms);
  void disarm() { set(0); }
  // Disarms and leaves the heap at once rather than when its key comes up: for
  // a timer kept unused past its queue's life (a pooled object whose cache
  // outlives the event loop).
  void stop();
  int64_t deadline() const { return deadline_; }

 private:
  friend class TimerQueue;
  static constexpr size_t kNotQueued = static_cast<size_t>(-1);
  TimerQueue& queue_;
  Callback cb_;
  void* ctx_;
  int64_t deadline_ = 0;  // what the owner wants; 0 = disarmed
  int64_t key_ = 0;       // where it sits in the heap
  size_t index_ = kNotQueued;
};

// The earliest of the deadlines an owner weighs before arming its Timer
// (0: none).
class Deadline {
 public:
  // `base + timeout`, when the timeout is set (> 0).
  void consider(int64_t base, int64_t timeout) {
    if (timeout > 0) consider_at(base + timeout);
  }
  void consider_at(int64_t at) {
    if (at > 0 && (at_ == 0 || at < at_)) at_ = at;
  }
  int64_t at() const { return at_; }

 private:
  int64_t at_ = 0;
};

class TimerQueue {
 public:
  // Runs the callbacks of every timer due at `now_ms`.
  void run_due(int64_t now_ms);
  // Milliseconds until the next key, -1 when empty (for epoll_wait).
  int next_timeout_ms(int64_t now_ms) const;
  size_t size() const { return heap_.size(); }

 private:
  friend class Timer;
  void push(Timer* t);
  void remove(Timer* t);
  void rekey(Timer* t, int64_t key);
  void sift_up(size_t i);
  void sift_down(size_t i);
  void place(size_t i, Timer* t) {
    heap_[i] = t;
    t->index_ = i;
  }
  std::vector<Timer*> heap_;
};

}  // namespace weir
