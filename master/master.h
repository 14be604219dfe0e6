#pragma once
// The master process: validates the configuration, owns every listening socket
// for its whole life, starts worker generations (fork + exec of the weir binary
// resolved at start) and passes them the sockets and the validated
// configuration, respawns a worker that dies, reloads on SIGHUP/SIGUSR2,
// drains on SIGUSR1 and stops fast on SIGTERM/SIGINT. It never touches traffic.

#include <sys/types.h>

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/base/fd.h"
#include "common/config/config.h"
#include "common/ipc/ipc.h"
#include "master/cli/master_cli.h"
#include "master/generations.h"
#include "master/state_file.h"
#include "master/ticket_secret.h"

namespace weir {

struct MasterOptions {
  std::string config_path;
  std::string pidfile;  // -p; overrides global.pidfile
  bool daemonize = false;
  std::string master_socket;  // -S; overrides global.master_socket
  int state_fd = -1;          // --master-state FD: this master replaces itself (binary upgrade)
  std::string binary;         // absolute path of the weir executable, resolved at start
};

// The Master's methods are spread over one file per idea:
//   master.cpp      start-up, the -D hand-over, the event loop, signals, pid file
//   supervisor.cpp  spawning, reaping and respawning workers; their messages;
//                   the deadlines; `show proc` and `@<gen>` forwarding
//   reload.cpp      validating a configuration, reloads and their CLI answers
//   listeners.cpp   the listening sockets and the open-file limit
//   upgrade.cpp     the binary upgrade: re-exec and the state it hands over
//   state_file.cpp  global.state_file
// The bookkeeping of generations is in generations.h, the master CLI's
// protocol and command table in cli/.
// "exit code N" or "signal NAME": how a child process ended (waitpid's status).
std::string describe_exit(int status);

class Master {
 public:
  explicit Master(MasterOptions opts);
  ~Master();
  // Runs until stopped; returns the process exit code.
  int run();

  // What the master CLI's commands call (each command's table entry sits beside
  // the function it calls).
  // Starts a reload. Returns the CLI answer when the reload is over at once
  // (invalid configuration), nullopt when it goes on (the answer then goes to
  // `waiter`, a CLI client id, once the new generation is ready or has failed).
  std::optional<std::string> start_reload(uint64_t waiter);
  // The log lines of the last start or reload.
  const std::string& last_startup_log() const { return last_startup_log_; }
  std::string show_proc() const;
  std::string show_state_file() const;
  // "@<generation> <command>" or "@!<pid> <command>": sends the command to that
  // worker; nullopt when its answer comes later (to `client`).
  std::optional<std::string> forward_command(CliClient& client, std::string_view line);

 private:
  struct ListenSocket {
    UniqueFd fd;
    std::string address;
  };

  // --- master.cpp
  // run() but for the -D hand-over: the master's whole life.
  int serve();
  // -D: the parent returns once the daemon says "ready" on `fd`, or prints what
  // it says instead and returns 1.
  int wait_for_daemon(int fd);
  // -D, in the daemon: tells the waiting parent that start-up succeeded, or why it
  // failed (the error lines logged since the start).
  void tell_daemon_parent(bool ready);
  int loop();
  void block_signals();
  void handle_signal(int sig);
  void write_pidfile();
  int64_t now_ms() const;

  // --- supervisor.cpp
  bool spawn_worker(int generation);
  // In a child just forked: runs `weir <role> FD` (--worker, --peers) on the
  // channel's descriptor; never returns.
  [[noreturn]] void exec_child(const char* role, int channel_fd) const;
  // The validated configuration as the workers and the peers agent receive it.
  proto::Envelope configuration_message() const;
  void reap_children();
  void on_worker_readable(WorkerProc& w);
  // Reads what every worker has sent.
  void absorb_worker_messages();
  void on_worker_ready(WorkerProc& w, const proto::Ready& info);
  // Respawns after a crash; the deadlines of starting generations.
  void tick();
  // The first generation died before READY or was not READY in time: the start
  // fails (exit 1) instead of respawning a worker that cannot start.
  void fail_start(const std::string& reason);
  void stop_workers_fast();
  void enforce_max_old_generations();

  // --- reload.cpp
  bool load_config(Config* out, std::string* bytes);
  // `reason`: why it failed, for systemd's STATUS= (default: the first error logged).
  std::optional<std::string> finish_reload(bool ok, uint64_t immediate_waiter = 0,
                                           const std::string& reason = "");
  // CLI clients waiting for a reload that has just started: given `answer` now
  // when it is over already, or its answer when it ends.
  void answer_or_wait(const std::optional<std::string>& answer,
                      const std::vector<uint64_t>& waiters);

  // --- listeners.cpp
  bool open_listeners(const Config& cfg, std::map<std::string, ListenSocket>* next);
  // Mode, owner and group of a runtime-API Unix socket.
  bool apply_socket_access(const RuntimeApiEndpoint& ep);
  // Raises the open-file limit toward what `cfg` needs and logs the maxconn that
  // the workers will run with; false when the limit cannot hold one connection.
  bool apply_fd_limit(const Config& cfg);

  // --- peers_agent.cpp
  // The agent keeps stick tables, the cluster's links and the server states
  // set at runtime (those in global.state_dir).
  bool peers_wanted() const {
    return !config_.stick_tables.empty() || config_.peers.enabled() ||
           !config_.global.state_dir.empty();
  }
  // The private directory of the agent's socket (0700, owned by weir's account).
  bool make_peers_dir();
  void remove_peers_dir();
  // Starts the agent; `wait`: until it is ready (its tables loaded), a few seconds at most.
  void start_peers_agent(bool wait);
  void on_peers_readable();
  // A reload's configuration reaches the agent (or starts it, when the first
  // table appears).
  void send_peers_configuration();
  // Whether `pid` was the agent; a respawn follows an unexpected exit.
  bool on_peers_exit(pid_t pid, int status);
  void peers_tick();
  // Stop (the agent saves its tables), waited for; SIGKILL after a few seconds.
  void stop_peers_agent();

  // --- upgrade.cpp
  // Replaces this process with the binary on disk, handing over sockets,
  // children and the CLI clients waiting for the reload. Returns only on failure.
  void reexec(const std::vector<uint64_t>& waiters);
  bool restore_state(int fd, std::vector<uint64_t>* waiters);
  int run_after_reexec();

  MasterOptions opts_;
  Config config_;
  std::string config_bytes_;
  std::map<std::string, ListenSocket> listeners_;
  std::map<std::string, ListenSocket>
      retiring_listeners_;  // closed when the new generation is ready
  Generations generations_;
  UniqueFd signal_fd_;
  bool stopping_ = false;
  bool graceful_stop_ = false;
  bool reload_pending_ = false;
  int64_t respawn_at_ms_ = 0;
  int ready_notify_fd_ = -1;  // -D: tells the waiting parent how start-up went
  int exit_code_ = 0;         // 1 once the start has failed
  bool daemon_parent_ = false;
  // Server states of the serving generation (its State messages), handed to the
  // next one and kept in global.state_file across restarts.
  proto::StateHandover server_state_;
  StateFile state_file_;
  TicketSecret ticket_secret_;
  std::string pidfile_;
  std::unique_ptr<MasterCli> cli_;
  std::vector<uint64_t> reload_waiters_;   // CLI clients waiting for the reload in progress
  std::vector<uint64_t> pending_waiters_;  // CLI clients waiting for the coalesced next one
  Config rollback_config_;                 // what the serving generation runs, during a reload
  std::string rollback_bytes_;
  bool capture_ = true;  // collecting the log lines of a start or reload
  std::string startup_log_;
  std::string last_startup_log_;
  bool carry_log_ = false;  // keep the captured lines into the next reload (after a re-exec)
  int64_t start_ms_ = 0;
  std::string running_id_;  // executable_id() of the binary this master runs
  // The peers agent.
  pid_t peers_pid_ = 0;
  ipc::Channel peers_channel_;
  std::string peers_dir_;
  bool peers_ready_ = false;
  bool peers_stopping_ = false;
  int64_t peers_started_ms_ = 0;
  int64_t peers_respawn_at_ = 0;
  int peers_crash_streak_ = 0;
  int peers_restarts_ = 0;
};

}  // namespace weir
