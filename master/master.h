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
#include <vector>

#include "common/base/fd.h"
#include "common/config/config.h"
#include "common/ipc/ipc.h"
#include "master/cli/master_cli.h"

namespace weir {

struct MasterOptions {
  std::string config_path;
  std::string pidfile;  // -p; overrides global.pidfile
  bool daemonize = false;
  std::string master_socket;  // -S; overrides global.master_socket
  int state_fd = -1;          // --master-state FD: this master replaces itself (binary upgrade)
  std::string binary;         // absolute path of the weir executable, resolved at start
};

class Master {
 public:
  explicit Master(MasterOptions opts);
  ~Master();
  // Runs until stopped; returns the process exit code.
  int run();

 private:
  struct WorkerProc {
    pid_t pid = 0;
    int generation = 0;
    ipc::Channel channel;
    bool ready = false;
    bool draining = false;
    int64_t started_ms = 0;
    std::string version;                    // from its READY message
    std::string failure;                    // from its kFailed message: why it could not start
    std::vector<uint64_t> command_waiters;  // CLI clients waiting for a kReply, in order
  };
  struct ListenSocket {
    UniqueFd fd;
    std::string address;
  };

  bool load_config(Config* out, std::string* bytes);
  bool open_listeners(const Config& cfg, std::map<std::string, ListenSocket>* next);
  // Mode, owner and group of a runtime-API Unix socket.
  bool apply_socket_access(const RuntimeApiEndpoint& ep);
  bool spawn_worker(int generation);
  void handle_signal(int sig);
  void reap_children();
  void on_worker_readable(WorkerProc& w);
  void absorb_worker_messages();
  void on_worker_ready(WorkerProc& w, const std::string& info);
  // Starts a reload. Returns the CLI answer when the reload is over at once
  // (invalid configuration), nullopt when it goes on (the answer then goes to
  // `waiter`, a CLI client id, once the new generation is ready or has failed).
  std::optional<std::string> start_reload(uint64_t waiter);
  // `reason`: why it failed, for systemd's STATUS= (default: the first error logged).
  std::optional<std::string> finish_reload(bool ok, uint64_t immediate_waiter = 0,
                                           const std::string& reason = "");
  // The first generation died before READY or was not READY in time: the start
  // fails (exit 1) instead of respawning a worker that cannot start.
  void fail_start(const std::string& reason);
  // run() but for the -D hand-over: the master's whole life.
  int serve();
  // -D: the parent returns once the daemon says "ready" on `fd`, or prints what
  // it says instead and returns 1.
  int wait_for_daemon(int fd);
  // -D, in the daemon: tells the waiting parent that start-up succeeded, or why it
  // failed (the error lines logged since the start).
  void tell_daemon_parent(bool ready);
  void enforce_max_old_generations();
  std::optional<std::string> cli_command(CliClient& client, const std::string& line);
  std::string show_proc();
  std::optional<std::string> forward_command(CliClient& client, const std::string& line);
  // Binary upgrade: replaces this process with the binary on disk, handing over
  // sockets, children and the CLI clients waiting for the reload. Returns only
  // on failure.
  void reexec(const std::vector<uint64_t>& waiters);
  bool restore_state(int fd, std::vector<uint64_t>* waiters);
  int run_after_reexec();
  int loop();
  void block_signals();
  void tick();
  void stop_workers_fast();
  void write_pidfile();
  // Raises the open-file limit toward what `cfg` needs and logs the maxconn that
  // the workers will run with; false when the limit cannot hold one connection.
  bool apply_fd_limit(const Config& cfg);
  WorkerProc* find(pid_t pid);
  int64_t now_ms() const;

  MasterOptions opts_;
  Config config_;
  std::string config_bytes_;
  std::map<std::string, ListenSocket> listeners_;
  std::map<std::string, ListenSocket>
      retiring_listeners_;  // closed when the new generation is ready
  std::vector<std::unique_ptr<WorkerProc>> workers_;
  UniqueFd signal_fd_;
  int generation_ = 0;          // the newest generation started
  int serving_generation_ = 0;  // the newest generation that reported READY
  bool stopping_ = false;
  bool graceful_stop_ = false;
  bool reload_in_progress_ = false;
  bool reload_pending_ = false;
  int64_t reload_deadline_ms_ = 0;
  int64_t respawn_at_ms_ = 0;
  int crash_streak_ = 0;
  int ready_notify_fd_ = -1;  // -D: tells the waiting parent how start-up went
  int exit_code_ = 0;         // 1 once the start has failed
  bool daemon_parent_ = false;
  // Server states of the serving generation (kState), handed to the next one and
  // kept in global.state_file across restarts.
  std::string server_state_;
  // TLS ticket keys of every worker generation derive from this (kept across
  // reloads and binary upgrades, so tickets stay valid).
  std::string ticket_secret_;
  bool ticket_secret_from_file_ = false;
  void save_state_file();
  void load_state_file();
  // The master CLI's `show state-file`.
  std::string show_state_file() const;
  struct StateFileCounts {
    uint64_t written = 0;    // writes that succeeded
    uint64_t failed = 0;     // writes that failed (full disk, ...); the states stayed in memory
    std::string last_error;  // of the last failed write
    bool failing = false;    // the last write failed
  } state_file_;
  std::string pidfile_;
  std::unique_ptr<MasterCli> cli_;
  std::vector<uint64_t> reload_waiters_;   // CLI clients waiting for the reload in progress
  std::vector<uint64_t> pending_waiters_;  // CLI clients waiting for the coalesced next one
  Config rollback_config_;                 // what the serving generation runs, during a reload
  std::string rollback_bytes_;
  bool capture_ = true;  // collecting the log lines of a start or reload
  std::string startup_log_;
  std::string last_startup_log_;
  bool initial_ready_ = false;
  bool carry_log_ = false;  // keep the captured lines into the next reload (after a re-exec)
  int reloads_ = 0;
  int crashes_ = 0;  // workers that exited without being asked to (show proc)
  int64_t start_ms_ = 0;
  std::string running_id_;  // executable_id() of the binary this master runs
};

}  // namespace weir
