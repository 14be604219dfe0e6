#include "worker/thread_context.h"

#include <fcntl.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "worker/backend/backend.h"

namespace weir {
namespace {
constexpr int64_t kHousekeepingEveryMs = 1000;
}  // namespace

ThreadContext::ThreadContext(Worker& worker, int id, size_t bufsize,
                             const std::vector<AccessLogSink>* log_sinks)
    : worker_(worker),
      id_(id),
      buffers_(bufsize),
      access_log_(log_sinks),
      scratch_head_(std::make_unique<http::MessageHead>()) {
  loop_.add_iteration_hook([this] {
    buffers_.run_callbacks();
    access_log_.flush();
  });
}

ThreadContext::~ThreadContext() {
  kill_sessions();
  upstreams_.close_all();  // the worker (and its counts) may be going away too
  loop_.destroy_retired();
}

void ThreadContext::add_session(std::unique_ptr<Session> s) {
  Session* raw = s.release();
  raw->next_ = sessions_head_;
  if (sessions_head_) sessions_head_->prev_ = raw;
  sessions_head_ = raw;
  session_count_.fetch_add(1, std::memory_order_relaxed);
}

void ThreadContext::remove_session(Session* s) {
  if (s->prev_) s->prev_->next_ = s->next_;
  if (s->next_) s->next_->prev_ = s->prev_;
  if (sessions_head_ == s) sessions_head_ = s->next_;
  s->prev_ = s->next_ = nullptr;
  session_count_.fetch_sub(1, std::memory_order_relaxed);
  loop_.retire(std::unique_ptr<Retired>(s));
}

void ThreadContext::drain_sessions() {
  draining_ = true;
  upstreams_.close_all();
  for (Session* s = sessions_head_; s;) {
    Session* next = s->next_;
    s->drain();  // may remove s from the list
    s = next;
  }
}

void ThreadContext::kill_sessions() {
  while (sessions_head_) sessions_head_->kill();
}

void ThreadContext::start_housekeeping() {
  housekeeping_ = std::make_unique<Timer>(
      loop_.timers(),
      [](void* self) {
        auto* ctx = static_cast<ThreadContext*>(self);
        int64_t now = ctx->loop_.now_ms();
        ctx->upstreams_.purge(now - UpstreamPool::kIdleMs);
        ctx->housekeeping_->set(now + kHousekeepingEveryMs);
      },
      this);
  housekeeping_->set(loop_.now_ms() + kHousekeepingEveryMs);
}

std::unique_ptr<SplicePipe> ThreadContext::take_pipe() {
  if (!pipes_.empty()) {
    auto p = std::move(pipes_.back());
    pipes_.pop_back();
    return p;
  }
  // Pipes cost descriptors: this thread's share of the worker's budget bounds
  // them (common/base/fd_budget.h); without one, bytes are copied through a buffer.
  const int64_t open = pipes_open_.load(std::memory_order_relaxed);
  if (open >= static_cast<int64_t>(pipe_limit_)) return nullptr;
  int fds[2];
  if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0) return nullptr;
  pipes_open_.store(open + 1, std::memory_order_relaxed);
  auto p = std::make_unique<SplicePipe>();
  p->rd.reset(fds[0]);
  p->wr.reset(fds[1]);
  return p;
}

void ThreadContext::put_pipe(std::unique_ptr<SplicePipe> p) {
  if (!p) return;
  // A pipe that still holds bytes cannot be reused for another connection.
  if (p->bytes == 0 && pipes_.size() < 64) {
    pipes_.push_back(std::move(p));
    return;
  }
  // Closed here.
  pipes_open_.store(pipes_open_.load(std::memory_order_relaxed) - 1, std::memory_order_relaxed);
}

}  // namespace weir
