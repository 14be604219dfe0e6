// The master's side of the peers agent (peers/agent.h): it starts the agent
// when a stick table is configured, gives it a private run directory for its
// socket, tells it of each reload's configuration, respawns it when it dies,
// stops it (which saves the tables) when weir stops or before a binary
// upgrade re-executes the master.

#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "common/base/log.h"
#include "common/base/net.h"
#include "master/master.h"

namespace weir {
namespace {

constexpr int64_t kPeersReadyWaitMs = 5000;
constexpr int64_t kPeersStopWaitMs = 5000;
constexpr int64_t kPeersFirstRespawnMs = 200;
constexpr int64_t kPeersMaxRespawnMs = 10000;

bool writable_dir(const char* path) {
  struct stat st {};
  return ::stat(path, &st) == 0 && S_ISDIR(st.st_mode) && ::access(path, W_OK | X_OK) == 0;
}

}  // namespace

bool Master::make_peers_dir() {
  if (!peers_dir_.empty()) return true;
  // /run/weir when it is there (the package's RuntimeDirectory), else TMPDIR.
  std::string base = "/run/weir";
  if (!writable_dir(base.c_str())) {
    const char* tmp = std::getenv("TMPDIR");
    base = tmp && *tmp ? tmp : "/tmp";
  }
  std::string templ = base + "/weir-peers.XXXXXX";
  if (!::mkdtemp(templ.data())) {
    log::error("peers: cannot make a run directory under %s: %s", base.c_str(),
               std::strerror(errno));
    return false;
  }
  // Only weir's account reaches the socket inside (mkdtemp made it 0700).
  uid_t uid = geteuid();
  gid_t gid = getegid();
  if (uid == 0 && !config_.global.user.empty()) {
    if (passwd* pw = getpwnam(config_.global.user.c_str())) {
      uid = pw->pw_uid;
      gid = pw->pw_gid;
    }
  }
  if (geteuid() == 0 && !config_.global.group.empty()) {
    if (group* gr = getgrnam(config_.global.group.c_str())) gid = gr->gr_gid;
  }
  if (geteuid() == 0 && ::chown(templ.c_str(), uid, gid) != 0) {
    log::warning("peers: cannot give %s to the workers' account: %s", templ.c_str(),
                 std::strerror(errno));
  }
  peers_dir_ = templ;
  return true;
}

void Master::remove_peers_dir() {
  if (peers_dir_.empty()) return;
  for (const char* name : {"/peers.sock", "/tables.handover", "/tables.handover.tmp"}) {
    ::unlink((peers_dir_ + name).c_str());
  }
  ::rmdir(peers_dir_.c_str());
  peers_dir_.clear();
}

void Master::start_peers_agent(bool wait) {
  if (peers_pid_ > 0 || !make_peers_dir()) return;
  ipc::Channel parent, child;
  if (!ipc::make_pair(&parent, &child)) {
    log::error("cannot start the peers agent: socketpair: %s", std::strerror(errno));
    return;
  }
  const pid_t pid = fork();
  if (pid < 0) {
    log::error("cannot start the peers agent: fork: %s", std::strerror(errno));
    peers_respawn_at_ = now_ms() + kPeersMaxRespawnMs;
    return;
  }
  if (pid == 0) exec_child("--peers", child.fd());
  child.close();
  peers_pid_ = pid;
  peers_ready_ = false;
  peers_started_ms_ = now_ms();
  peers_channel_ = std::move(parent);
  proto::Envelope hello;
  hello.mutable_hello()->set_peers_dir(peers_dir_);
  for (const auto& w : generations_.workers()) {
    if (w->pid > 0) hello.mutable_hello()->add_running_workers(w->pid);
  }
  if (!peers_channel_.send(std::move(hello)) || !peers_channel_.send(configuration_message())) {
    log::error("peers agent pid=%d: cannot send its start-up data: %s", pid,
               peers_channel_.error().c_str());
  }
  log::info("peers agent pid=%d started (run directory %s)", pid, peers_dir_.c_str());
  if (wait) {
    // A generation about to start should find the tables there (the state file).
    const int64_t deadline = now_ms() + kPeersReadyWaitMs;
    while (!peers_ready_ && peers_channel_.valid() && now_ms() < deadline) {
      pollfd p{peers_channel_.fd(), POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(deadline - now_ms())) > 0) on_peers_readable();
    }
    if (!peers_ready_) {
      log::error("peers agent pid=%d was not ready in time; workers start without its tables", pid);
    }
  }
  net::set_nonblocking(peers_channel_.fd());
}

void Master::on_peers_readable() {
  const ipc::Channel::ReadStatus st = peers_channel_.read_some();
  while (auto m = peers_channel_.next()) {
    if (m->env.has_ready()) {
      peers_ready_ = true;
      log::notice("peers agent pid=%d ready", peers_pid_);
    } else if (m->env.has_failed()) {
      log::error("peers agent pid=%d cannot start: %s", peers_pid_,
                 m->env.failed().reason().c_str());
    }
  }
  if (st != ipc::Channel::ReadStatus::kOk) peers_channel_.close();
}

void Master::send_peers_configuration() {
  if (!peers_wanted()) return;
  if (peers_pid_ <= 0) {
    if (!stopping_) start_peers_agent(true);
    return;
  }
  peers_channel_.send(configuration_message());
}

bool Master::on_peers_exit(pid_t pid, int status) {
  if (pid != peers_pid_ || pid <= 0) return false;
  if (peers_channel_.valid()) on_peers_readable();
  peers_channel_.close();
  peers_pid_ = 0;
  peers_ready_ = false;
  if (peers_stopping_) return true;
  const int64_t lived = now_ms() - peers_started_ms_;
  peers_crash_streak_ = lived >= Generations::kStableWorkerMs ? 1 : peers_crash_streak_ + 1;
  ++peers_restarts_;
  const int64_t delay =
      Generations::backoff_ms(peers_crash_streak_, kPeersFirstRespawnMs, kPeersMaxRespawnMs);
  log::error("peers agent pid=%d exited unexpectedly (%s); respawning it in %lld ms", pid,
             describe_exit(status).c_str(), static_cast<long long>(delay));
  if (!stopping_) peers_respawn_at_ = now_ms() + delay;
  return true;
}

void Master::peers_tick() {
  if (peers_respawn_at_ && now_ms() >= peers_respawn_at_ && !stopping_) {
    peers_respawn_at_ = 0;
    // Not waited for: the workers serve meanwhile, and refill it when it answers.
    if (peers_wanted()) start_peers_agent(false);
  }
}

void Master::stop_peers_agent() {
  if (peers_pid_ <= 0) return;
  peers_stopping_ = true;
  const pid_t pid = peers_pid_;
  proto::Envelope stop;
  stop.mutable_stop();
  if (!peers_channel_.valid() || !peers_channel_.send(std::move(stop))) ::kill(pid, SIGTERM);
  const int64_t deadline = now_ms() + kPeersStopWaitMs;
  int status = 0;
  bool gone = false;
  while (now_ms() < deadline) {
    const pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid || (r < 0 && errno == ECHILD)) {
      gone = true;
      break;
    }
    ::usleep(10000);
  }
  if (!gone) {
    log::warning("peers agent pid=%d did not stop in time; killing it", pid);
    ::kill(pid, SIGKILL);
    ::waitpid(pid, &status, 0);
  }
  peers_channel_.close();
  peers_pid_ = 0;
  peers_ready_ = false;
  peers_stopping_ = false;
}

}  // namespace weir
