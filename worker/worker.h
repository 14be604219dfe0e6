#pragma once
// One worker generation: loads the validated configuration sent by the master,
// takes the listening sockets it passes, runs `threads` event loops that proxy
// traffic, and reports READY. Drains and exits when told to.

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "common/base/fd_budget.h"
#include "common/base/log.h"
#include "common/config/config.h"
#include "common/ipc/ipc.h"
#include "common/proto/peers.pb.h"
#include "worker/backend/backend.h"
#include "worker/observe/access_log.h"
#include "worker/proxy_protocol/accept.h"

namespace weir {

class ThreadContext;
class Listener;

// Entry point of `weir --worker FD`: returns the process exit code.
int worker_main(int channel_fd);

class Worker {
 public:
  Worker(Config config, int generation, ipc::Channel channel);
  ~Worker();

  // Builds the runtime and the threads; false with *error on failure.
  bool init(std::vector<std::pair<std::string, UniqueFd>> listen_fds, std::string* error);
  // Runs until stopped; returns the exit code.
  int run();
  // init() failed: tells the master why (kFailed), so that it fails the start
  // or the reload with this reason instead of respawning.
  void report_start_failure(const std::string& reason);

  const Config& config() const { return config_; }
  int generation() const { return generation_; }
  bool draining() const { return draining_.load(std::memory_order_relaxed); }

  const std::vector<std::unique_ptr<Frontend>>& frontends() const { return frontends_; }
  const std::vector<std::unique_ptr<Backend>>& backends() const { return backends_; }
  int64_t start_ms() const { return start_ms_; }
  int64_t current_connections() const { return conns_.load(std::memory_order_relaxed); }
  // Server states handed over from the previous generation (or the state file)
  // by the master: applied in init() to the servers that still exist.
  void set_inherited_state(proto::StateHandover states) { inherited_state_ = std::move(states); }
  // Sends the master the servers' states when they changed since the last time
  // (thread 0: after runtime-API commands and once a second).
  void publish_state();
  // One line per server: backend server admin weight configured_weight address
  // configured_address up|down [agent-down].
  proto::StateHandover server_state_snapshot() const;
  // `add server`: starts the new server's checks (thread 0).
  void start_checks_of_added_server(Backend& be, Server& sv);
  // Server states set at runtime (common/servers/record.h): a change made
  // here goes to the peers agent, which keeps it and shares it with the other
  // nodes (not while applying theirs); theirs are applied through the runtime
  // API's own commands (thread 0).
  void share_server(proto::ServerRecord r);
  void apply_server_records(const proto::ServerRecords& rs);
  // Runs fn on thread 0, the runtime API's (any thread).
  void post_to_main(std::function<void()> fn);
  // Request headers that access-log formats print (%hr{}), lower-case.
  const std::vector<std::string>& log_captures() const { return log_captures_; }
  // The %[...] samples access-log formats print, in the order of
  // AccessLogEntry::samples.
  const std::vector<cond::SampleExpr>& log_samples() const { return log_samples_; }
  uint64_t dropped_log_lines() const { return dropped_access_log_lines(log_sinks_); }
  // `reopen logs`: one line per log file; *ok false when one failed.
  std::string reopen_logs(bool* ok) { return reopen_access_log_sinks(&log_sinks_, ok); }

  // Runs fn on every worker thread, each on its own loop, and returns once all
  // have run it (called from thread 0, the runtime API's thread).
  void on_every_thread(const std::function<void(ThreadContext&)>& fn);
  // Runs fn on every worker thread, each on its own loop, without waiting (any thread).
  void post_to_every_thread(const std::function<void(ThreadContext&)>& fn);

  // Connection accounting for maxconn (global and per frontend).
  bool admit(Frontend& fe);
  // A limit was raised at runtime: listeners paused by it may accept again.
  void resume_listeners_if_paused() {
    if (paused_listeners_.load() > 0 && !draining()) resume_listeners();
  }
  void release(Frontend& fe);

  // How this worker spends its open-file limit (maxconn, idle server
  // connections, pipes); config().global.maxconn is budget().maxconn.
  const FdBudget& fd_budget() const { return fd_budget_; }
  // splice() pipes open, all threads together.
  int64_t pipes() const;
  // `what` (an accept, a server connection) found no file descriptor: counted,
  // and logged at most once every 10 s with the count of the others.
  void note_fd_shortage(const std::string& what, int err);
  uint64_t fd_shortages() const { return fd_shortages_.load(std::memory_order_relaxed); }
  // PROXY protocol headers accepted and connections refused (accept_proxy binds).
  proxy_protocol::AcceptStats& proxy_stats() { return proxy_stats_; }
  // Times a session waited for an I/O buffer (all threads).
  uint64_t buffer_waits() const;

 private:
  bool applying_records_ = false;  // thread 0: changes from elsewhere are not shared again
  // Thread 0: records from the peers agent whose `del server` waits for the
  // server's connections to end, by "backend/server"; tried again every second
  // until it goes, or until a newer record of that server comes.
  std::map<std::string, proto::ServerRecord> waiting_deletes_;
  // Applies rs; `again`: a retry of waiting deletes (their failure is not logged again).
  void apply_records(const proto::ServerRecords& rs, bool again);
  class ChannelHandler;
  friend class ChannelHandler;
  void on_channel_message(ipc::Message& msg);
  void on_channel_closed();
  void start_drain(const char* why);
  // The master is gone: serve what waits in the listeners' backlogs, then close
  // this worker's copies of the listening sockets.
  void release_listening_sockets();
  void check_drained();
  void stop_all();
  void resume_listeners();

  Config config_;
  int generation_;
  ipc::Channel channel_;
  std::unique_ptr<ChannelHandler> channel_handler_;
  std::vector<std::unique_ptr<Backend>> backends_;
  std::vector<std::unique_ptr<Frontend>> frontends_;
  std::vector<UniqueFd> listen_fds_;
  std::vector<AccessLogSink> log_sinks_;
  std::vector<std::string> log_captures_;
  std::vector<cond::SampleExpr> log_samples_;
  proto::StateHandover inherited_state_;
  std::string published_state_;  // the last State sent, serialised
  std::unique_ptr<class Timer> state_timer_;
  void apply_inherited_state();
  std::vector<std::unique_ptr<ThreadContext>> threads_;
  std::vector<std::vector<std::unique_ptr<Listener>>> listeners_;  // per thread
 public:
  // The TLS binds, for show ssl certs and /metrics.
  struct TlsFront {
    Frontend* fe;
    std::shared_ptr<const tls::FrontContext> ctx;
  };
  const std::vector<TlsFront>& tls_fronts() const { return tls_fronts_; }

 private:
  std::vector<TlsFront> tls_fronts_;
  std::vector<std::thread> os_threads_;
  std::vector<std::unique_ptr<class ApiListener>> api_listeners_;  // on thread 0
  // One per checked server, spread over the threads (destroyed before them).
  std::vector<std::unique_ptr<class HealthChecker>> checkers_;
  std::vector<std::unique_ptr<class AgentChecker>> agents_;
  // Creates the server's health checker and agent checker, if configured (not started).
  void make_checkers(Backend& be, Server& sv);
  int64_t start_ms_ = 0;
  std::atomic<bool> draining_{false};
  std::atomic<int64_t> conns_{0};
  std::atomic<int> paused_listeners_{0};
  FdBudget fd_budget_;
  std::atomic<uint64_t> fd_shortages_{0};
  log::Throttle fd_shortage_log_{10000};
  proxy_protocol::AcceptStats proxy_stats_;
  int64_t drain_deadline_ms_ = 0;
  std::unique_ptr<class Timer> drain_timer_;

  friend class Listener;
};

}  // namespace weir
