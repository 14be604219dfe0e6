// The supervisor: starts worker processes (fork + exec of the weir binary),
// reads what they send, reaps them, respawns a worker that died with a
// back-off, enforces the deadlines of starting generations and
// max_old_generations. What each event means for the generations is decided
// in generations.cpp; this file does the system calls and the logging.

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "common/base/log.h"
#include "common/base/net.h"
#include "common/base/units.h"
#include "common/base/version.h"
#include "common/ipc/state_text.h"
#include "master/cli/command.h"
#include "master/master.h"
#include "master/sd_notify.h"

namespace weir {
namespace {

constexpr int64_t kFastStopGraceMs = 3000;            // SIGTERM to workers, then SIGKILL
constexpr int64_t kFastStopFlushMs = 1500;            // with a peers agent: Stop, then SIGTERM
constexpr int64_t kRespawnAfterForkFailureMs = 1000;  // fork() failed: try again after this

// fork(), or its failure as the kernel reports it when out of processes or
// memory (EAGAIN) while the test hook's file exists (doc/testing.md).
pid_t fork_for_worker() {
  const char* hook = std::getenv("WEIR_TEST_FAIL_FORK");
  if (hook && *hook && ::access(hook, F_OK) == 0) {
    errno = EAGAIN;
    return -1;
  }
  return fork();
}

}  // namespace

std::string describe_exit(int status) {
  if (WIFEXITED(status)) return "exit code " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return std::string("signal ") + strsignal(WTERMSIG(status));
  return "status " + std::to_string(status);
}

void Master::exec_child(const char* role, int channel_fd) const {
  sigset_t all;
  sigemptyset(&all);
  sigprocmask(SIG_SETMASK, &all, nullptr);
  net::set_cloexec(channel_fd, false);
  const std::string fd_arg = std::to_string(channel_fd);
  const char* argv[] = {opts_.binary.c_str(), role, fd_arg.c_str(), nullptr};
  execv(opts_.binary.c_str(), const_cast<char* const*>(argv));
  log::alert("exec %s: %s", opts_.binary.c_str(), std::strerror(errno));
  _exit(127);
}

proto::Envelope Master::configuration_message() const {
  proto::Envelope configuration;
  configuration.mutable_configuration()->set_source_name(config_.source_name);
  configuration.mutable_configuration()->set_validated(config_bytes_);
  return configuration;
}

bool Master::spawn_worker(int generation) {
  ipc::Channel parent, child;
  if (!ipc::make_pair(&parent, &child)) {
    log::error("cannot start a worker: socketpair: %s", std::strerror(errno));
    return false;
  }
  pid_t pid = fork_for_worker();
  if (pid < 0) {
    log::error("cannot start a worker: fork: %s", std::strerror(errno));
    return false;
  }
  if (pid == 0) exec_child("--worker", child.fd());
  child.close();
  WorkerProc& w = generations_.add(pid, generation, std::move(parent), now_ms());
  proto::Envelope hello;
  hello.mutable_hello()->set_generation(generation);
  hello.mutable_hello()->set_build_id(running_id_);
  hello.mutable_hello()->set_version(version());
  hello.mutable_hello()->set_ticket_secret(ticket_secret_.secret());
  if (peers_wanted() && !peers_dir_.empty()) {
    hello.mutable_hello()->set_peers_dir(peers_dir_);
    hello.mutable_hello()->set_peers_ready(peers_ready_);
  }
  proto::Envelope configuration = configuration_message();
  proto::Envelope state;
  *state.mutable_state() = server_state_;
  proto::Envelope map;
  std::vector<int> fds;
  for (auto& [key, sock] : listeners_) {
    map.mutable_listener_map()->add_keys(key);
    fds.push_back(sock.fd.get());
  }
  bool ok = w.channel.send(std::move(hello)) && w.channel.send(std::move(configuration)) &&
            w.channel.send(std::move(state)) && w.channel.send(std::move(map), fds);
  if (!ok)
    log::error("worker pid=%d: cannot send start-up data: %s", pid, w.channel.error().c_str());
  net::set_nonblocking(w.channel.fd());
  log::info("worker pid=%d generation=%d started", pid, generation);
  return true;
}

void Master::on_worker_ready(WorkerProc& w, const proto::Ready& info) {
  Generations::Ready ready = generations_.on_ready(w, info.version());
  log::notice("worker pid=%d generation=%d ready (pid=%d threads=%u version=%s)", w.pid,
              w.generation, info.pid(), info.threads(), info.version().c_str());
  // After a package upgrade that no reload has followed yet, a respawned worker
  // runs the new binary under this master: it works (the messages are
  // versioned); the next reload re-executes the master too.
  if (w.protocol < ipc::kProtocolVersion ||
      (!info.build_id().empty() && !running_id_.empty() && info.build_id() != running_id_)) {
    log::notice(
        "worker pid=%d runs another binary than the master (%s, protocol %u; the master: %s, "
        "protocol %u): the next reload re-executes the master with the binary on disk",
        w.pid, info.build_id().empty() ? info.version().c_str() : info.build_id().c_str(),
        w.protocol, running_id_.c_str(), ipc::kProtocolVersion);
  }
  // The new generation serves: every older one drains.
  for (WorkerProc* other : ready.to_drain) {
    proto::Envelope drain;
    drain.mutable_drain();
    other->channel.send(std::move(drain));
    log::notice("worker pid=%d generation=%d told to drain", other->pid, other->generation);
  }
  retiring_listeners_.clear();
  enforce_max_old_generations();
  if (ready.reload_done) {
    log::notice("reload complete: generation %d serves", w.generation);
    finish_reload(true);
  } else if (ready.start_done) {
    capture_ = false;
    last_startup_log_ = startup_log_;
    sd::notify("READY=1\nMAINPID=" + std::to_string(getpid()) + "\nSTATUS=generation " +
               std::to_string(w.generation) + " serving");
  }
  tell_daemon_parent(true);
}

void Master::absorb_worker_messages() {
  std::vector<pid_t> pids;
  for (auto& w : generations_.workers())
    if (w->channel.valid()) pids.push_back(w->pid);
  for (pid_t pid : pids)
    if (WorkerProc* w = generations_.find(pid)) on_worker_readable(*w);
}

void Master::on_worker_readable(WorkerProc& w) {
  ipc::Channel::ReadStatus st = w.channel.read_some();
  while (auto m = w.channel.next()) {
    w.protocol = m->env.protocol();
    switch (m->env.body_case()) {
      case proto::Envelope::kReady:
        on_worker_ready(w, m->env.ready());
        break;
      case proto::Envelope::kReply:
        if (!w.command_waiters.empty()) {
          uint64_t id = w.command_waiters.front();
          w.command_waiters.erase(w.command_waiters.begin());
          cli_->answer(id, m->env.reply().text());
        }
        break;
      case proto::Envelope::kState:
        // The serving generation's servers (admin and health state, runtime
        // weights and addresses): the next generation starts from them.
        if (generations_.serves(w)) {
          server_state_ = std::move(*m->env.mutable_state());
          if (config_.global.state_dir.empty()) {
            state_file_.write(config_.global.state_file, ipc::server_states_to_text(server_state_));
          }
        }
        break;
      case proto::Envelope::kFailed:
        // Logged when the worker exits, with what its failure means (a failed
        // reload, a failed start, a respawn that did not work).
        w.failure = m->env.failed().reason();
        break;
      case proto::Envelope::BODY_NOT_SET:
        // From a newer worker (after a package upgrade): something this master
        // does not know of, and so does not need.
        log::info("worker pid=%d: ignoring a message this master does not know (protocol %u)",
                  w.pid, m->env.protocol());
        break;
      default:
        log::warning("worker pid=%d: unexpected %s message", w.pid, ipc::body_name(m->env));
    }
  }
  if (st == ipc::Channel::ReadStatus::kOk && !w.channel.valid()) {
    log::error("worker pid=%d: %s; its channel is closed", w.pid, w.channel.error().c_str());
  }
  if (st != ipc::Channel::ReadStatus::kOk) w.channel.close();
}

void Master::enforce_max_old_generations() {
  // Oldest draining generations are forced out beyond the cap.
  int cap = config_.global.max_old_generations;
  for (WorkerProc* w : generations_.beyond_old_generations(cap)) {
    log::warning("max_old_generations (%d) exceeded: stopping worker pid=%d generation=%d now", cap,
                 w->pid, w->generation);
    kill(w->pid, SIGTERM);
  }
}

void Master::reap_children() {
  for (;;) {
    int status = 0;
    pid_t pid = waitpid(-1, &status, WNOHANG);
    if (pid <= 0) return;
    if (on_peers_exit(pid, status)) continue;
    WorkerProc* w = generations_.find(pid);
    if (!w) continue;
    // Its last words (why it could not start) may still wait in the channel.
    if (w->channel.valid()) on_worker_readable(*w);
    for (uint64_t id : w->command_waiters) {
      cli_->answer(id, "Error: worker " + std::to_string(pid) + " exited before answering");
    }
    w->command_waiters.clear();
    Generations::Exit exit = generations_.on_exit(pid, now_ms(), stopping_);
    const int gen = exit.proc->generation;
    const std::string& failure = exit.proc->failure;
    if (exit.kind == Generations::ExitKind::kExpected) {
      log::notice("worker pid=%d generation=%d exited (%s)", pid, gen,
                  describe_exit(status).c_str());
      continue;
    }
    // Why a worker that never became ready is gone: what it said, or how it died.
    std::string why =
        "generation " + std::to_string(gen) + " could not start: " +
        (failure.empty() ? "its worker (pid " + std::to_string(pid) +
                               ") died before it was ready (" + describe_exit(status) + ")"
                         : failure);
    if (exit.kind == Generations::ExitKind::kReloadFailed) {
      log::error("reload failed: %s; generation %d keeps serving", why.c_str(),
                 generations_.serving());
      finish_reload(false, 0, why);
      continue;
    }
    if (exit.kind == Generations::ExitKind::kStartFailed) {
      fail_start(why);
      continue;
    }
    if (!exit.proc->ready && !failure.empty()) {
      log::error("worker pid=%d %s", pid, why.c_str());
    } else {
      log::error("worker pid=%d generation=%d exited unexpectedly (%s)", pid, gen,
                 describe_exit(status).c_str());
    }
    if (exit.respawn_in_ms < 0) continue;  // another worker serves
    respawn_at_ms_ = now_ms() + exit.respawn_in_ms;
    const int streak = generations_.counts().crash_streak;
    if (streak >= 3) {
      log::alert(
          "crash loop: workers died %d times in a row, each within %lld s of starting; "
          "next attempt in %lld ms",
          streak, static_cast<long long>(Generations::kStableWorkerMs / 1000),
          static_cast<long long>(exit.respawn_in_ms));
      sd::notify("STATUS=crash loop: " + std::to_string(streak) + " worker deaths in a row" +
                 (failure.empty() ? "" : ", last: " + failure));
    } else {
      log::notice("respawning a worker for generation %d in %lld ms", gen,
                  static_cast<long long>(exit.respawn_in_ms));
    }
  }
}

void Master::fail_start(const std::string& reason) {
  log::alert("start-up failed: %s", reason.c_str());
  sd::notify("STATUS=start-up failed: " + reason);
  exit_code_ = 1;
  stopping_ = true;
  respawn_at_ms_ = 0;
  // Any other worker of this start goes too.
  for (auto& w : generations_.workers()) kill(w->pid, SIGTERM);
}

void Master::stop_workers_fast() {
  // Stop closes every connection at once, as SIGTERM would, but lets a worker
  // hand its last stick-table changes to the peers agent on its way out.
  if (peers_pid_ > 0) {
    for (auto& w : generations_.workers()) {
      proto::Envelope stop;
      stop.mutable_stop();
      if (w->channel.valid()) w->channel.send(std::move(stop));
    }
    const int64_t flushed = now_ms() + kFastStopFlushMs;
    while (!generations_.empty() && now_ms() < flushed) {
      usleep(10000);
      reap_children();
    }
  }
  for (auto& w : generations_.workers()) kill(w->pid, SIGTERM);
  int64_t deadline = now_ms() + kFastStopGraceMs;
  while (!generations_.empty() && now_ms() < deadline) {
    usleep(20000);
    reap_children();
  }
  for (auto& w : generations_.workers()) {
    kill(w->pid, SIGKILL);
    waitpid(w->pid, nullptr, 0);
  }
  generations_.forget_all();
}

void Master::tick() {
  int64_t now = now_ms();
  if (respawn_at_ms_ && now >= respawn_at_ms_ && !stopping_) {
    respawn_at_ms_ = 0;
    if (!spawn_worker(generations_.respawn_generation())) {
      log::error("cannot respawn the worker; next attempt in %lld ms",
                 static_cast<long long>(kRespawnAfterForkFailureMs));
      respawn_at_ms_ = now + kRespawnAfterForkFailureMs;
    }
  }
  if (generations_.reload_late(now)) {
    for (WorkerProc* w : generations_.abandon_reload()) {
      log::error("reload failed: generation %d was not ready in time; killing pid=%d",
                 w->generation, w->pid);
      kill(w->pid, SIGKILL);
    }
    finish_reload(false);
  }
  if (!stopping_) {
    // The first start has the same deadline as a reload; then it fails.
    for (WorkerProc* w : generations_.overdue_first_start(now)) kill(w->pid, SIGKILL);
  }
}

std::optional<std::string> Master::forward_command(CliClient& client, std::string_view line) {
  // "@<generation> <command>" or "@!<pid> <command>".
  size_t space = line.find(' ');
  std::string target(line.substr(1, space == std::string::npos ? std::string::npos : space - 1));
  std::string command(space == std::string::npos ? "" : line.substr(space + 1));
  if (target.empty() || command.empty()) {
    return std::string("Error: usage: @<generation> <command> or @!<pid> <command>");
  }
  bool by_pid = target[0] == '!';
  if (by_pid) target.erase(0, 1);
  char* end = nullptr;
  long n = std::strtol(target.c_str(), &end, 10);
  if (target.empty() || *end != '\0' || n <= 0) {
    return "Error: '" + target + "' is not a " + (by_pid ? "pid" : "generation number");
  }
  WorkerProc* w = generations_.command_target(n, by_pid);
  if (!w || !w->ready || !w->channel.valid()) {
    return "Error: no running worker " + std::string(by_pid ? "with pid " : "of generation ") +
           target;
  }
  proto::Envelope env;
  env.mutable_command()->set_line(command);
  if (!w->channel.send(std::move(env))) {
    return "Error: cannot reach worker " + std::to_string(w->pid);
  }
  w->command_waiters.push_back(client.id());
  return std::nullopt;
}

std::string Master::show_proc() const {
  std::string out =
      "#<PID>   <type>   <generation>  <state>    <uptime>       <reloads>  <crashes>  "
      "<version>\n";
  char line[256];
  int64_t now = now_ms();
  std::snprintf(line, sizeof line, "%-9d %-8s %-13s %-10s %-14s %-10d %-10d %s\n", getpid(),
                "master", "-", stopping_ ? "stopping" : "running",
                format_uptime_ms(now - start_ms_).c_str(), generations_.counts().reloads,
                generations_.counts().crashes, version());
  out += line;
  if (peers_pid_ > 0) {
    std::snprintf(line, sizeof line, "%-9d %-8s %-13s %-10s %-14s %-10d %-10s %s\n", peers_pid_,
                  "peers", "-", peers_ready_ ? "running" : "starting",
                  format_uptime_ms(now - peers_started_ms_).c_str(), peers_restarts_, "-",
                  version());
    out += line;
  }
  for (const WorkerProc* w : generations_.newest_first()) {
    const char* state = w->draining ? "draining" : (w->ready ? "current" : "starting");
    std::snprintf(line, sizeof line, "%-9d %-8s %-13d %-10s %-14s %-10s %-10s %s\n", w->pid,
                  "worker", w->generation, state, format_uptime_ms(now - w->started_ms).c_str(),
                  "-", "-", w->version.empty() ? "-" : w->version.c_str());
    out += line;
  }
  return out;
}

namespace {

constexpr MasterCommand kSupervisorCommands[] = {
    {"show proc",
     "show proc          the master and its workers: pid, generation, state, uptime, version\n",
     [](Master& m, CliClient&, std::string_view) -> std::optional<std::string> {
       return m.show_proc();
     }},
    {"@",
     "@<gen> <command>   run a runtime-API command in the worker of a generation\n"
     "@!<pid> <command>  same, by worker pid\n",
     [](Master& m, CliClient& client, std::string_view command) {
       return m.forward_command(client, command);
     }},
};
const Registrar<MasterCommand> kRegisterSupervisorCommands(kSupervisorCommands);

}  // namespace
}  // namespace weir
