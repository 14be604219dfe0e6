#pragma once
// Everything one worker thread owns: its event loop, buffer pool, sessions,
// idle server connections, pipes for splice() and access-log buffers.

#include <atomic>
#include <memory>
#include <unordered_map>
#include <vector>

#include "common/event/buffer.h"
#include "common/event/event_loop.h"
#include "worker/http/h1/http_codec.h"
#include "worker/observe/access_log.h"
#include "worker/session.h"
#include "worker/stream.h"
#include "worker/upstream/upstream_pool.h"

namespace weir {

class Server;
class Worker;
// A pipe used to splice() bytes between two sockets without copying them.
struct SplicePipe {
  UniqueFd rd;
  UniqueFd wr;
  size_t bytes = 0;  // bytes inside the pipe
};

class ThreadContext {
 public:
  ThreadContext(Worker& worker, int id, size_t bufsize,
                const std::vector<AccessLogSink>* log_sinks);
  ~ThreadContext();

  Worker& worker() { return worker_; }
  int id() const { return id_; }
  EventLoop& loop() { return loop_; }
  BufferPool& buffers() { return buffers_; }
  AccessLogWriter& access_log() { return access_log_; }
  // Scratch space for parsing one message head at a time on this thread.
  http::MessageHead& scratch_head() { return *scratch_head_; }

  // Session list.
  void add_session(std::unique_ptr<Session> s);
  // Unlinks and retires (destroyed after the current batch).
  void remove_session(Session* s);
  int64_t session_count() const { return session_count_.load(std::memory_order_relaxed); }
  void drain_sessions();
  // Calls fn for each session of this thread (on this thread); fn may kill it.
  template <typename Fn>
  void for_each_session(Fn fn) {
    for (Session* s = sessions_head_; s;) {
      Session* next = s->next_;
      fn(*s);
      s = next;
    }
  }
  void kill_sessions();
  bool draining() const { return draining_; }

  // Idle server connections of this thread, for any of its clients.
  UpstreamPool& upstreams() { return upstreams_; }
  // Closes every idle connection to a server (its address changed, or it was deleted).
  void close_idle_to(const Server* server) { upstreams_.close_to(server); }

  // Starts the periodic work of this thread (closing stale idle server connections).
  void start_housekeeping();

  // This thread's shares of the worker's descriptor budget: idle server
  // connections kept, and pipes open, at most.
  void set_fd_shares(size_t idle_server_conns, size_t pipes) {
    upstreams_.set_limit(idle_server_conns);
    pipe_limit_ = pipes;
  }
  int64_t pipes_open() const { return pipes_open_.load(std::memory_order_relaxed); }

  // Pipes for splice(), reused across sessions.
  std::unique_ptr<SplicePipe> take_pipe();
  void put_pipe(std::unique_ptr<SplicePipe> p);

 private:
  Worker& worker_;
  int id_;
  EventLoop loop_;
  UpstreamPool upstreams_{loop_};
  BufferPool buffers_;
  AccessLogWriter access_log_;
  std::unique_ptr<http::MessageHead> scratch_head_;
  Session* sessions_head_ = nullptr;
  std::atomic<int64_t> session_count_{0};
  bool draining_ = false;
  std::vector<std::unique_ptr<SplicePipe>> pipes_;
  size_t pipe_limit_ = 0;               // this thread's share of FdBudget::pipes
  std::atomic<int64_t> pipes_open_{0};  // in use or in pipes_ (written by this thread only)
  std::unique_ptr<Timer> housekeeping_;
};

}  // namespace weir
