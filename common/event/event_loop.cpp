#include "common/event/event_loop.h"

#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

#include "common/base/log.h"

namespace weir {

class EventLoop::Waker final : public IoHandler {
 public:
  explicit Waker(EventLoop& loop) : loop_(loop) {}
  void on_io(uint32_t) override {
    uint64_t v;
    while (::read(loop_.eventfd_.get(), &v, sizeof v) > 0) {
    }
    loop_.drain_posted();
  }

 private:
  EventLoop& loop_;
};

EventLoop::EventLoop()
    : epfd_(epoll_create1(EPOLL_CLOEXEC)),
      eventfd_(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)),
      waker_(std::make_unique<Waker>(*this)) {
  if (!epfd_ || !eventfd_) throw std::runtime_error(std::string("epoll: ") + strerror(errno));
  add(eventfd_.get(), EPOLLIN | EPOLLET, waker_.get());
  update_time();
}

EventLoop::~EventLoop() = default;

int64_t EventLoop::monotonic_ms() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

void EventLoop::update_time() {
  now_ms_ = monotonic_ms();
}

bool EventLoop::add(int fd, uint32_t events, IoHandler* handler) {
  epoll_event ev{};
  ev.events = events;
  ev.data.ptr = handler;
  if (epoll_ctl(epfd_.get(), EPOLL_CTL_ADD, fd, &ev) != 0) {
    log::error("epoll_ctl(ADD, fd %d): %s", fd, strerror(errno));
    return false;
  }
  return true;
}

void EventLoop::remove(int fd) {
  epoll_ctl(epfd_.get(), EPOLL_CTL_DEL, fd, nullptr);
}

void EventLoop::stop() {
  stop_.store(true);
  uint64_t one = 1;
  ssize_t ignored = ::write(eventfd_.get(), &one, sizeof one);
  (void)ignored;
}

void EventLoop::post(std::function<void()> task) {
  {
    std::lock_guard lock(posted_mu_);
    posted_.push_back(std::move(task));
  }
  uint64_t one = 1;
  ssize_t ignored = ::write(eventfd_.get(), &one, sizeof one);
  (void)ignored;
}

void EventLoop::add_iteration_hook(std::function<void()> hook) {
  hooks_.push_back(std::move(hook));
}

void EventLoop::drain_posted() {
  std::vector<std::function<void()>> tasks;
  {
    std::lock_guard lock(posted_mu_);
    tasks.swap(posted_);
  }
  for (auto& t : tasks) t();
}

void EventLoop::run() {
  constexpr int kMaxEvents = 256;
  epoll_event events[kMaxEvents];
  while (!stop_.load(std::memory_order_relaxed)) {
    int timeout = timers_.next_timeout_ms(now_ms_);
    int n = epoll_wait(epfd_.get(), events, kMaxEvents, timeout);
    update_time();
    if (n < 0 && errno != EINTR) {
      log::alert("epoll_wait: %s", strerror(errno));
      break;
    }
    stage_ = Stage::kDispatch;
    for (int i = 0; i < n; ++i)
      static_cast<IoHandler*>(events[i].data.ptr)->on_io(events[i].events);
    // What the batch's handlers put off (their writes) runs now, together;
    // nothing is destroyed before destroy_retired() below.
    for (Stage round : {Stage::kDeferred1, Stage::kDeferred2}) {
      stage_ = round;
      deferred_running_.swap(deferred_);
      for (Deferred* d : deferred_running_) {
        d->deferred_queued_ = false;
        d->run_deferred();
      }
      deferred_running_.clear();
    }
    stage_ = Stage::kOther;
    timers_.run_due(now_ms_);
    for (auto& h : hooks_) h();
    destroy_retired();
  }
  drain_posted();
  destroy_retired();
}

void EventLoop::destroy_retired() {
  // A destructor may retire more objects; take them batch by batch.
  while (!retired_.empty()) {
    std::vector<std::unique_ptr<Retired>> batch;
    batch.swap(retired_);
  }
}

}  // namespace weir
