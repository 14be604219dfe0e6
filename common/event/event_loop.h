#pragma once
// One epoll event loop per worker thread: edge-triggered I/O readiness, timers,
// a cross-thread wake-up (eventfd) to post work to the loop, and deferred
// destruction of objects closed while an epoll batch is being processed.

#include <sys/epoll.h>

#include <atomic>
#include <cassert>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

#include "common/base/fd.h"
#include "common/event/timer.h"

namespace weir {

class IoHandler {
 public:
  // `events` is the EPOLL* mask delivered by epoll_wait.
  virtual void on_io(uint32_t events) = 0;

 protected:
  ~IoHandler() = default;
};

// Something closed during a batch, destroyed once the batch is over so that a
// later event of the same batch never touches freed memory.
class Retired {
 public:
  virtual ~Retired() = default;
};

// Work that asked to run once the current batch of I/O events is dispatched
// (EventLoop::defer): writes gathered from every ready connection leave
// together, after all of the batch's reads.
class Deferred {
 public:
  virtual void run_deferred() = 0;

 protected:
  virtual ~Deferred() = default;

 private:
  friend class EventLoop;
  bool deferred_queued_ = false;
};

class EventLoop {
 public:
  EventLoop();
  ~EventLoop();
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;

  bool add(int fd, uint32_t events, IoHandler* handler);
  void remove(int fd);

  // Runs until stop(). Each iteration: wait, dispatch I/O, run due timers, run
  // posted tasks, run the end-of-iteration hooks, destroy retired objects.
  void run();
  void stop();  // thread-safe
  // Runs `task` on this loop's thread; thread-safe.
  void post(std::function<void()> task);
  // Called at the end of every iteration on the loop's thread (e.g. flush logs).
  void add_iteration_hook(std::function<void()> hook);
  void retire(std::unique_ptr<Retired> obj) { retired_.push_back(std::move(obj)); }
  // Destroys what was retired so far (run() does it after every batch).
  void destroy_retired();

  // Where the loop is in a batch: handing out its I/O events, then running
  // what they deferred, in two rounds (the second runs what the first deferred
  // again; nothing is deferred past it).
  enum class Stage : uint8_t { kOther, kDispatch, kDeferred1, kDeferred2 };
  Stage stage() const { return stage_; }
  // Runs `d` in the next deferred round (once, however often it asks); only
  // during kDispatch or kDeferred1 (asked at any other time, it would wait for
  // the next batch).
  void defer(Deferred* d) {
    assert(stage_ == Stage::kDispatch || stage_ == Stage::kDeferred1);
    if (d->deferred_queued_) return;
    d->deferred_queued_ = true;
    deferred_.push_back(d);
  }
  // A connection about to write: true when the write waits, and `d` runs
  // again when it may. Writes found while the batch's events are handed out
  // leave after all of its reads, writes to servers in the first round and
  // writes to clients in the second (servers get their work first).
  bool hold_write(Deferred* d, bool to_server) {
    if (stage_ != Stage::kDispatch && (to_server || stage_ != Stage::kDeferred1)) return false;
    defer(d);
    return true;
  }

  TimerQueue& timers() { return timers_; }
  // Monotonic milliseconds, refreshed once per iteration.
  int64_t now_ms() const { return now_ms_; }
  void update_time();
  static int64_t monotonic_ms();

 private:
  class Waker;
  void drain_posted();

  UniqueFd epfd_;
  UniqueFd eventfd_;
  std::unique_ptr<Waker> waker_;
  TimerQueue timers_;
  int64_t now_ms_ = 0;
  std::atomic<bool> stop_{false};
  std::mutex posted_mu_;
  std::vector<std::function<void()>> posted_;
  std::vector<std::function<void()>> hooks_;
  std::vector<std::unique_ptr<Retired>> retired_;
  Stage stage_ = Stage::kOther;
  std::vector<Deferred*> deferred_;
  std::vector<Deferred*> deferred_running_;
};

}  // namespace weir
