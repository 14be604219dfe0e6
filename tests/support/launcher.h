#pragma once
// Starts weir the way an operator would (`weir -f FILE`, foreground master) and watches its
// logs. The master's stderr carries a line matching
//   worker pid=([0-9]+) generation=([0-9]+) ready
// each time a worker becomes ready (again after every respawn/reload).

#include <sys/types.h>

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tests/support/util.h"

namespace weir::test {

// Path of the weir binary under test: $WEIR_BINARY if set, else the build's WEIR_BINARY.
std::string weir_binary();
// Path of the weir-origin demo binary: $WEIR_ORIGIN_BINARY if set, else the build's.
std::string weir_origin_binary();

struct WeirOptions {
  std::vector<std::string> extra_args{};                   // appended after -f FILE
  std::vector<std::pair<std::string, std::string>> env{};  // added to / overriding the env
  int ready_timeout_ms = 20000;
  // > 0: weir starts with this open-file limit, soft and hard (as after
  // `ulimit -n N`), so it cannot raise it.
  uint64_t nofile = 0;
  bool wait_ready = true;  // false: start() returns as soon as the process is spawned
};

class WeirProcess {
  struct Private {};

 public:
  // Writes yaml to <tempdir>/weir.yaml and starts `weir -f <that file> <extra_args>` in its
  // own session/process group (setsid); stdout -> <tempdir>/stdout.log, stderr ->
  // <tempdir>/stderr.log, stdin </dev/null. Waits for the first ready line. Returns nullptr
  // (after ADD_FAILURE() with the last 40 lines of both logs) when weir does not become ready
  // in time or exits.
  static std::unique_ptr<WeirProcess> start(const std::string& yaml, WeirOptions opts = {});

  explicit WeirProcess(Private) {}
  // SIGKILL to the whole process group, reap; the temp dir is removed unless the current test
  // has failed (or $WEIR_TEST_KEEP is set): then its path and the stderr tail are printed.
  ~WeirProcess();
  WeirProcess(const WeirProcess&) = delete;
  WeirProcess& operator=(const WeirProcess&) = delete;

  pid_t pid() const { return pid_; }         // master pid
  std::vector<pid_t> ready_workers() const;  // worker pids from the ready lines, in order
  pid_t current_worker() const;              // pid from the last ready line, 0 if none
  int current_generation() const;            // generation from the last ready line, 0 if none
  // Waits until at least n ready lines have been logged.
  bool wait_ready_count(size_t n, int timeout_ms);

  // ECMAScript regex searched in every line of the log, and (when the log is under 1 MiB) over
  // the whole text, so multi-line patterns work too.
  bool wait_for_stderr(const std::string& regex, int timeout_ms);
  bool wait_for_stdout(const std::string& regex, int timeout_ms);
  std::string stdout_text() const;
  std::string stderr_text() const;

  const std::string& dir() const { return dir_; }
  std::string config_path() const { return dir_ + "/weir.yaml"; }
  // Rewrites weir.yaml (e.g. before signalling a reload).
  void write_config(const std::string& yaml) const;

  void signal(int sig);  // to the master (no-op once it has been reaped)
  // waitpid the master: its exit status (WEXITSTATUS, or 128+signal), nullopt on timeout.
  // Once reaped, the same status is returned on every call.
  std::optional<int> wait_exit(int timeout_ms);
  bool alive() const;  // false once the master has exited (reaps it)

 private:
  bool wait_for_log(const std::string& file, const std::string& regex, int timeout_ms);
  bool try_reap() const;

  pid_t pid_ = -1;
  std::string dir_;
  mutable bool reaped_ = false;
  mutable int exit_status_ = 0;
};

// Runs weir with args to completion (e.g. {"-c", "-f", path}, {"-v"}).
CommandResult run_weir(const std::vector<std::string>& args, int timeout_ms = 20000);

// Sends one command line to a Unix stream socket (the master CLI or a runtime-API
// endpoint), half-closes, and returns everything answered until the peer closes
// (like `echo CMD | socat - UNIX-CONNECT:PATH`). "" if it cannot connect.
// Runs weirctl with these arguments (30 s deadline).
CommandResult weirctl(const std::vector<std::string>& args);

std::string unix_command(const std::string& path, const std::string& command,
                         int timeout_ms = 30000);

// A YAML double-quoted scalar: yaml_quote("a\"b") == "\"a\\\"b\"".
std::string yaml_quote(std::string_view s);

// Number of lines of text that contain a match for the ECMAScript regex.
size_t count_matching_lines(std::string_view text, const std::string& regex);

}  // namespace weir::test
