#pragma once
// One epoll event loop per worker thread: edge-triggered I/O readiness, timers,
// a cross-thread wake-up (eventfd) to post work to the loop, and deferred
// destruction of objects closed while an epoll batch is being processed.

#include <sys/epoll.h>

#include <atomic>
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
};

}  // namespace weir
