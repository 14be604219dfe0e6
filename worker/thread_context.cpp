#include "worker/thread_context.h"

#include <fcntl.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "worker/backend/backend.h"

namespace weir {
namespace {
constexpr size_t kMaxIdlePerServer = 256;
constexpr int64_t kIdleServerConnMs = 5000;  // idle server connections older than this are closed
constexpr int64_t kHousekeepingEveryMs = 1000;
}  // namespace

void ServerConn::on_io(uint32_t events) {
  if (owner_) {
    owner_->on_server_io(events);
    return;
  }
  // Idle in the pool: a writable edge alone means nothing; any other event means the server closed
  // it or sent something unexpected; either way it can no longer be reused.
  if (!(events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))) return;
  ctx_.drop_idle(this);
}

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
  idle_.clear();  // the worker (and its counts) may be going away too
  loop_.destroy_retired();
}

void ThreadContext::unpooled(size_t n) {
  idle_count_ -= n;
}

void ThreadContext::clear_idle() {
  idle_count_ = 0;
  idle_.clear();
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
  clear_idle();
  for (Session* s = sessions_head_; s;) {
    Session* next = s->next_;
    s->drain();  // may remove s from the list
    s = next;
  }
}

void ThreadContext::kill_sessions() {
  while (sessions_head_) sessions_head_->kill();
}

std::unique_ptr<ServerConn> ThreadContext::take_idle(Server* server) {
  auto it = idle_.find(server);
  if (it == idle_.end() || it->second.empty()) return nullptr;
  std::unique_ptr<ServerConn> c = std::move(it->second.back());
  it->second.pop_back();
  unpooled(1);
  return c;
}

void ThreadContext::put_idle(std::unique_ptr<ServerConn> conn) {
  if (draining_) {
    close_server_conn(std::move(conn));
    return;
  }
  auto& list = idle_[conn->server()];
  if (list.size() >= kMaxIdlePerServer) {
    close_server_conn(std::move(list.front()));
    list.erase(list.begin());
    unpooled(1);
  }
  // Idle connections outlive their clients: this thread's share of the
  // worker's descriptor budget bounds them (common/base/fd_budget.h), so that
  // accepted clients never lack a descriptor.
  if (idle_count_ >= idle_limit_) {
    close_server_conn(std::move(conn));
    return;
  }
  ++idle_count_;
  conn->attach(nullptr);
  conn->idle_since = loop_.now_ms();
  list.push_back(std::move(conn));
}

void ThreadContext::drop_idle(ServerConn* conn) {
  auto it = idle_.find(conn->server());
  if (it == idle_.end()) return;
  auto& list = it->second;
  for (size_t i = 0; i < list.size(); ++i) {
    if (list[i].get() == conn) {
      std::unique_ptr<ServerConn> c = std::move(list[i]);
      list.erase(list.begin() + static_cast<std::ptrdiff_t>(i));
      unpooled(1);
      close_server_conn(std::move(c));
      return;
    }
  }
}

void ThreadContext::close_server_conn(std::unique_ptr<ServerConn> conn) {
  conn->stream().close();  // closing the fd removes it from epoll
  conn->attach(nullptr);
  loop_.retire(std::move(conn));
}

void ThreadContext::close_idle_to(const Server* server) {
  auto it = idle_.find(const_cast<Server*>(server));
  if (it == idle_.end()) return;
  for (auto& c : it->second) close_server_conn(std::move(c));
  unpooled(it->second.size());
  idle_.erase(it);
}

void ThreadContext::purge_idle(int64_t older_than_ms) {
  for (auto& [server, list] : idle_) {
    while (!list.empty() && list.front()->idle_since < older_than_ms) {
      close_server_conn(std::move(list.front()));
      list.erase(list.begin());
      unpooled(1);
    }
  }
}

void ThreadContext::start_housekeeping() {
  housekeeping_ = std::make_unique<Timer>(
      loop_.timers(),
      [](void* self) {
        auto* ctx = static_cast<ThreadContext*>(self);
        int64_t now = ctx->loop_.now_ms();
        ctx->purge_idle(now - kIdleServerConnMs);
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
