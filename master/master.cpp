#include "master/master.h"

#include "common/tls/tls_context.h"

#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <sstream>

#include "common/base/fd_budget.h"
#include "common/base/log.h"
#include "common/base/net.h"
#include "common/base/units.h"
#include "common/base/version.h"
#include "master/build_id.h"
#include "master/sd_notify.h"
#include "master/startup_check.h"

namespace weir {
namespace {
std::string to_hex(std::string_view bytes) {
  static const char kDigits[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) {
    out.push_back(kDigits[c >> 4]);
    out.push_back(kDigits[c & 15]);
  }
  return out;
}
std::string from_hex(std::string_view hex) {
  auto val = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  std::string out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) {
    int a = val(hex[i]), b = val(hex[i + 1]);
    if (a < 0 || b < 0) return {};
    out.push_back(static_cast<char>(a * 16 + b));
  }
  return out;
}
}  // namespace
namespace {

constexpr int64_t kReadyTimeoutMs = 60000;  // a new generation must be READY within this
constexpr int64_t kFastStopGraceMs = 3000;  // SIGTERM to workers, then SIGKILL
constexpr int64_t kStableWorkerMs = 30000;  // a worker alive this long resets the back-off
constexpr int64_t kMaxRespawnDelayMs = 10000;
// -D: what the daemon writes to its waiting parent once the first worker is
// ready; anything else is the reason start-up failed, printed by the parent.
constexpr std::string_view kDaemonReady = "ready\n";

// The "[error]" and "[alert]" lines of a captured log.
std::string error_lines(const std::string& text) {
  std::string out;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t eol = text.find('\n', pos);
    size_t end = eol == std::string::npos ? text.size() : eol + 1;
    std::string_view line(text.data() + pos, end - pos);
    if (line.find(" [error] ") != std::string_view::npos ||
        line.find(" [alert] ") != std::string_view::npos) {
      out += line;
    }
    pos = end;
  }
  return out;
}
constexpr int64_t kRespawnAfterForkFailureMs = 1000;  // fork() failed: try again after this

// The message of the first "[error]" line of a captured log ("" when none).
std::string first_error_line(const std::string& text) {
  size_t pos = text.find("[error]");
  if (pos == std::string::npos) return "";
  size_t colon = text.find("]: ", pos + 7);
  size_t eol = text.find('\n', pos);
  if (colon == std::string::npos || colon > eol) return "";
  return text.substr(colon + 3, eol - colon - 3);
}

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

std::string describe_exit(int status) {
  if (WIFEXITED(status)) return "exit code " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return std::string("signal ") + strsignal(WTERMSIG(status));
  return "status " + std::to_string(status);
}

}  // namespace

Master::Master(MasterOptions opts)
    : opts_(std::move(opts)),
      cli_(std::make_unique<MasterCli>(
          [this](CliClient& c, const std::string& line) { return cli_command(c, line); })) {}

Master::~Master() {
  // The parent of a daemon (-D) hands everything over to its child: it must not
  // remove the files the child keeps using.
  if (daemon_parent_) return;
  if (!pidfile_.empty()) ::unlink(pidfile_.c_str());
  // Runtime-API socket files go with the master that created them.
  for (auto& [key, sock] : listeners_) {
    if (key.rfind("unix:", 0) == 0) ::unlink(key.c_str() + 5);
  }
}

int64_t Master::now_ms() const {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

bool Master::load_config(Config* out, std::string* bytes) {
  std::ifstream in(opts_.config_path, std::ios::binary);
  if (!in) {
    log::error("%s: cannot open: %s", opts_.config_path.c_str(), std::strerror(errno));
    return false;
  }
  std::stringstream ss;
  ss << in.rdbuf();
  *bytes = ss.str();
  // Validate the exact bytes that the worker will receive, so an edit to the file
  // in the middle of a reload cannot make master and worker disagree.
  LoadResult r = load_config_text(*bytes, opts_.config_path);
  // Certificates, keys, CAs: a reload whose new ones do not load is refused here,
  // before any worker starts, and the running generation goes on.
  if (r.config) {
    tls::check_config(*r.config, &r.errors, &r.warnings);
    // What start-up needs from the machine (log and socket directories): a reload
    // that would fail there is refused here, with the key to blame.
    StartupCheckOptions startup;
    startup.master_socket = opts_.master_socket;
    startup.pidfile = opts_.pidfile;
    startup.reload = generation_ > 0;
    for (const auto& [key, sock] : listeners_) {
      if (key.rfind("unix:", 0) == 0) startup.bound_sockets.insert(key.substr(5));
    }
    check_startup_environment(*r.config, startup, &r.errors, &r.warnings);
  }
  for (const ConfigMessage& m : in_file_order(r.errors, r.warnings)) {
    if (m.warning) {
      log::warning("%s", m.text.c_str());
    } else {
      log::error("%s", m.text.c_str());
    }
  }
  if (!r.config || !r.errors.empty()) return false;
  if (!r.config->global.tls_ticket_secret_file.empty()) {
    std::string secret, error;
    if (!tls::read_secret_file(r.config->global.tls_ticket_secret_file, &secret, &error)) {
      log::error("global: tls_ticket_secret_file: %s", error.c_str());
      return false;
    }
    ticket_secret_ = std::move(secret);
  } else if (ticket_secret_.empty() || ticket_secret_from_file_) {
    ticket_secret_ = tls::random_secret();
  }
  ticket_secret_from_file_ = !r.config->global.tls_ticket_secret_file.empty();
  *out = std::move(*r.config);
  return true;
}

bool Master::open_listeners(const Config& cfg, std::map<std::string, ListenSocket>* next) {
  // Takes the socket of `key` from the current set, or binds a new one.
  auto adopt_or_bind = [&](const std::string& key, const SourceMark& mark, const std::string& what,
                           const std::function<UniqueFd(std::string*)>& bind) {
    if (next->count(key)) return true;
    auto it = listeners_.find(key);
    if (it != listeners_.end()) {
      // Never close and reopen a socket that still exists: its backlog holds
      // connections that no worker has accepted yet.
      (*next)[key] = std::move(it->second);
      listeners_.erase(it);
      return true;
    }
    std::string error;
    UniqueFd fd = bind(&error);
    if (!fd) {
      log::error("%s:%d:%d: %s: %s", cfg.source_name.c_str(), mark.line, mark.column, what.c_str(),
                 error.c_str());
      // Give back what was taken from the current set.
      for (auto& [k, v] : *next)
        if (v.fd) listeners_[k] = std::move(v);
      next->clear();
      return false;
    }
    (*next)[key] = ListenSocket{std::move(fd), key};
    return true;
  };
  for (const FrontendConfig& fe : cfg.frontends) {
    for (const BindConfig& b : fe.binds) {
      bool ok = adopt_or_bind(b.key(), b.mark, "frontend '" + fe.name + "'", [&](std::string* e) {
        return net::listen_tcp(b.addr, b.backlog, b.v6only, e);
      });
      if (!ok) return false;
    }
  }
  for (const RuntimeApiEndpoint& ep : cfg.global.runtime_api) {
    bool ok = adopt_or_bind(ep.key(), ep.mark, "runtime_api", [&](std::string* e) {
      return ep.path.empty() ? net::listen_tcp(ep.addr, 64, true, e)
                             : net::listen_unix(ep.path, ep.mode, 64, e);
    });
    if (!ok) return false;
    if (!ep.path.empty() && !apply_socket_access(ep)) return false;
  }
  return true;
}

bool Master::apply_socket_access(const RuntimeApiEndpoint& ep) {
  // Applied at every load, so that a reload that changes mode, owner or group
  // takes effect on a socket kept from the previous generation.
  uid_t uid = static_cast<uid_t>(-1);
  gid_t gid = static_cast<gid_t>(-1);
  if (!ep.owner.empty()) {
    struct passwd pw {};
    struct passwd* found = nullptr;
    std::vector<char> buf(16384);
    if (getpwnam_r(ep.owner.c_str(), &pw, buf.data(), buf.size(), &found) != 0 || !found) {
      log::error("runtime_api %s: no user named %s", ep.path.c_str(), ep.owner.c_str());
      return false;
    }
    uid = pw.pw_uid;
  }
  if (!ep.group.empty()) {
    struct group gr {};
    struct group* found = nullptr;
    std::vector<char> buf(16384);
    if (getgrnam_r(ep.group.c_str(), &gr, buf.data(), buf.size(), &found) != 0 || !found) {
      log::error("runtime_api %s: no group named %s", ep.path.c_str(), ep.group.c_str());
      return false;
    }
    gid = gr.gr_gid;
  }
  if ((uid != static_cast<uid_t>(-1) || gid != static_cast<gid_t>(-1)) &&
      ::chown(ep.path.c_str(), uid, gid) != 0) {
    log::error("runtime_api %s: cannot set owner %s group %s: %s", ep.path.c_str(),
               ep.owner.empty() ? "-" : ep.owner.c_str(), ep.group.empty() ? "-" : ep.group.c_str(),
               std::strerror(errno));
    return false;
  }
  if (::chmod(ep.path.c_str(), ep.mode) != 0) {
    log::error("runtime_api %s: cannot set mode %o: %s", ep.path.c_str(), ep.mode,
               std::strerror(errno));
    return false;
  }
  return true;
}

void Master::save_state_file() {
  const std::string& path = config_.global.state_file;
  if (path.empty()) return;
  // Written aside, then renamed: a crash never leaves half a file.
  std::string tmp = path + ".tmp";
  std::FILE* f = std::fopen(tmp.c_str(), "w");
  bool ok = f != nullptr;
  if (f) {
    ok = std::fwrite(server_state_.data(), 1, server_state_.size(), f) == server_state_.size();
    ok = std::fclose(f) == 0 && ok;
    ok = ok && std::rename(tmp.c_str(), path.c_str()) == 0;
  }
  // A full disk (or a read-only one) costs this write, never traffic: the
  // states stay in memory, go to the next generation through the master, and
  // are written again at the next change. Warned once per failing spell.
  if (!ok) {
    const int err = errno;
    ::unlink(tmp.c_str());  // what was written of it takes room the next try needs
    ++state_file_.failed;
    state_file_.last_error = std::strerror(err);
    if (!state_file_.failing) {
      state_file_.failing = true;
      log::warning(
          "cannot write state file %s: %s; the server states stay in memory and are written "
          "again at the next change (master CLI: show state-file)",
          path.c_str(), std::strerror(err));
    }
    return;
  }
  ++state_file_.written;
  if (state_file_.failing) {
    state_file_.failing = false;
    log::notice("state file %s written again (%llu failed write(s) so far)", path.c_str(),
                static_cast<unsigned long long>(state_file_.failed));
  }
}

std::string Master::show_state_file() const {
  const std::string& path = config_.global.state_file;
  if (path.empty()) return "No state file (global.state_file is not set).";
  return "path: " + path + "\nwrites: " + std::to_string(state_file_.written) +
         "\nfailed: " + std::to_string(state_file_.failed) +
         "\nlast_error: " + (state_file_.last_error.empty() ? "-" : state_file_.last_error) +
         "\nstate: " + (state_file_.failing ? "failing" : "ok") + "\n";
}

void Master::load_state_file() {
  const std::string& path = config_.global.state_file;
  if (path.empty()) return;
  std::ifstream in(path);
  if (!in) return;  // first start: nothing to restore
  std::ostringstream text;
  text << in.rdbuf();
  server_state_ = text.str();
  log::notice("server states restored from %s", path.c_str());
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
  if (pid == 0) {
    sigset_t all;
    sigemptyset(&all);
    sigprocmask(SIG_SETMASK, &all, nullptr);
    int fd = child.fd();
    net::set_cloexec(fd, false);
    std::string fd_arg = std::to_string(fd);
    const char* argv[] = {opts_.binary.c_str(), "--worker", fd_arg.c_str(), nullptr};
    execv(opts_.binary.c_str(), const_cast<char* const*>(argv));
    log::alert("exec %s: %s", opts_.binary.c_str(), std::strerror(errno));
    _exit(127);
  }
  child.close();
  auto w = std::make_unique<WorkerProc>();
  w->pid = pid;
  w->generation = generation;
  w->channel = std::move(parent);
  w->started_ms = now_ms();
  std::string payload = config_.source_name;
  payload += '\0';
  payload += config_bytes_;
  std::string keys;
  std::vector<int> fds;
  for (auto& [key, sock] : listeners_) {
    keys += key;
    keys += '\n';
    fds.push_back(sock.fd.get());
  }
  bool ok = w->channel.send(ipc::MsgType::kHello, "generation=" + std::to_string(generation) +
                                                      "\nticket_secret=" + to_hex(ticket_secret_) +
                                                      "\n") &&
            w->channel.send(ipc::MsgType::kConfig, payload) &&
            w->channel.send(ipc::MsgType::kState, server_state_) &&
            w->channel.send(ipc::MsgType::kFdMap, keys, fds);
  if (!ok)
    log::error("worker pid=%d: cannot send start-up data: %s", pid, w->channel.error().c_str());
  net::set_nonblocking(w->channel.fd());
  log::info("worker pid=%d generation=%d started", pid, generation);
  workers_.push_back(std::move(w));
  return true;
}

Master::WorkerProc* Master::find(pid_t pid) {
  for (auto& w : workers_)
    if (w->pid == pid) return w.get();
  return nullptr;
}

void Master::on_worker_ready(WorkerProc& w, const std::string& info) {
  w.ready = true;
  size_t v = info.find("version=");
  if (v != std::string::npos) w.version = info.substr(v + 8, info.find(' ', v) - v - 8);
  log::notice("worker pid=%d generation=%d ready (%s)", w.pid, w.generation, info.c_str());
  if (w.generation > serving_generation_) serving_generation_ = w.generation;
  // The new generation serves: every older one drains.
  for (auto& other : workers_) {
    if (other.get() != &w && other->generation < w.generation && !other->draining) {
      other->draining = true;
      other->channel.send(ipc::MsgType::kDrain, "");
      log::notice("worker pid=%d generation=%d told to drain", other->pid, other->generation);
    }
  }
  retiring_listeners_.clear();
  enforce_max_old_generations();
  if (reload_in_progress_ && w.generation == generation_) {
    log::notice("reload complete: generation %d serves", w.generation);
    finish_reload(true);
  } else if (w.generation == generation_ && !initial_ready_) {
    initial_ready_ = true;
    capture_ = false;
    last_startup_log_ = startup_log_;
    sd::notify("READY=1\nMAINPID=" + std::to_string(getpid()) + "\nSTATUS=generation " +
               std::to_string(w.generation) + " serving");
  }
  tell_daemon_parent(true);
}

void Master::absorb_worker_messages() {
  std::vector<pid_t> pids;
  for (auto& w : workers_)
    if (w->channel.valid()) pids.push_back(w->pid);
  for (pid_t pid : pids)
    if (WorkerProc* w = find(pid)) on_worker_readable(*w);
}

void Master::on_worker_readable(WorkerProc& w) {
  ipc::Channel::ReadStatus st = w.channel.read_some();
  while (auto m = w.channel.next()) {
    switch (m->type) {
      case ipc::MsgType::kReady:
        on_worker_ready(w, m->payload);
        break;
      case ipc::MsgType::kReply:
        if (!w.command_waiters.empty()) {
          uint64_t id = w.command_waiters.front();
          w.command_waiters.erase(w.command_waiters.begin());
          cli_->answer(id, m->payload);
        }
        break;
      case ipc::MsgType::kState:
        // The serving generation's servers (admin and health state, runtime
        // weights and addresses): the next generation starts from them.
        if (w.generation >= serving_generation_ && !w.draining) {
          server_state_ = m->payload;
          save_state_file();
        }
        break;
      case ipc::MsgType::kFailed:
        // Logged when the worker exits, with what its failure means (a failed
        // reload, a failed start, a respawn that did not work).
        w.failure = m->payload;
        break;
      default:
        log::warning("worker pid=%d: unexpected message type %d", w.pid, static_cast<int>(m->type));
    }
  }
  if (st != ipc::Channel::ReadStatus::kOk) w.channel.close();
}

std::optional<std::string> Master::start_reload(uint64_t waiter) {
  if (stopping_) return std::string("Success=0\n--\nthe master is stopping\n");
  if (reload_in_progress_) {
    // Coalesce: one more reload after the current one, never two at once.
    reload_pending_ = true;
    if (waiter) pending_waiters_.push_back(waiter);
    log::notice("reload requested while one is in progress; it will follow");
    return std::nullopt;
  }
  // A state change the serving worker reported a moment ago (a server just
  // marked DOWN, say) may still sit unread in its channel: take it in before
  // the new generation is handed the server states.
  absorb_worker_messages();
  capture_ = true;
  if (!carry_log_) startup_log_.clear();
  carry_log_ = false;
  if (!running_id_.empty()) {
    std::string on_disk = executable_id(opts_.binary);
    if (!on_disk.empty() && on_disk != running_id_) {
      log::notice("the binary %s changed (%s -> %s): the master re-executes itself first",
                  opts_.binary.c_str(), running_id_.c_str(), on_disk.c_str());
      std::vector<uint64_t> waiters;
      if (waiter) waiters.push_back(waiter);
      reexec(waiters);  // returns only on failure; then reload with the running master
    }
  }
  ++reloads_;
  sd::notify("RELOADING=1\n" + sd::monotonic_usec() + "\nSTATUS=reloading");
  log::notice("reloading configuration from %s", opts_.config_path.c_str());
  Config next;
  std::string bytes;
  if (!load_config(&next, &bytes)) {
    log::error("reload failed: the configuration is invalid; generation %d keeps serving",
               serving_generation_);
    return finish_reload(false, waiter);
  }
  if (!apply_fd_limit(next)) {
    log::error("reload failed: the open-file limit is too low; generation %d keeps serving",
               serving_generation_);
    return finish_reload(false, waiter);
  }
  std::map<std::string, ListenSocket> next_listeners;
  if (!open_listeners(next, &next_listeners)) {
    log::error("reload failed: cannot open listeners; generation %d keeps serving",
               serving_generation_);
    return finish_reload(false, waiter);
  }
  // Sockets that disappeared stay open until the new generation is ready.
  for (auto& [k, v] : listeners_) retiring_listeners_[k] = std::move(v);
  listeners_ = std::move(next_listeners);
  rollback_config_ = std::move(config_);
  rollback_bytes_ = std::move(config_bytes_);
  config_ = std::move(next);
  config_bytes_ = std::move(bytes);
  reload_in_progress_ = true;
  reload_deadline_ms_ = now_ms() + kReadyTimeoutMs;
  if (!spawn_worker(++generation_)) {
    log::error("reload failed: cannot start generation %d; generation %d keeps serving",
               generation_, serving_generation_);
    // Answered here, as for an invalid configuration: the CLI client waiting
    // for this command is not in reload_waiters_ (answering it from there,
    // inside its own command, left its connection open for ever).
    return finish_reload(false, waiter);
  }
  if (waiter) reload_waiters_.push_back(waiter);
  return std::nullopt;
}

std::optional<std::string> Master::finish_reload(bool ok, uint64_t immediate_waiter,
                                                 const std::string& reason) {
  if (!ok && reload_in_progress_) {
    // Back to the configuration and sockets that the serving generation runs with.
    for (auto& [k, v] : retiring_listeners_) listeners_[k] = std::move(v);
    retiring_listeners_.clear();
    config_ = std::move(rollback_config_);
    config_bytes_ = std::move(rollback_bytes_);
    std::map<std::string, ListenSocket> restored;
    open_listeners(config_, &restored);
    listeners_ = std::move(restored);  // sockets only the failed configuration had are closed
  }
  reload_in_progress_ = false;
  capture_ = false;
  last_startup_log_ = startup_log_;
  std::string answer = std::string(ok ? "Success=1" : "Success=0") + "\n--\n" + startup_log_;
  if (ok) {
    sd::notify("READY=1\nSTATUS=generation " + std::to_string(serving_generation_) + " serving");
  } else {
    sd::notify("READY=1\nSTATUS=reload failed: " +
               (reason.empty() ? first_error_line(startup_log_) : reason) + "; generation " +
               std::to_string(serving_generation_) + " serving");
  }
  std::vector<uint64_t> waiters;
  waiters.swap(reload_waiters_);
  for (uint64_t id : waiters) cli_->answer(id, answer);
  if (reload_pending_) {
    reload_pending_ = false;
    std::vector<uint64_t> next_waiters;
    next_waiters.swap(pending_waiters_);
    std::optional<std::string> now = start_reload(0);
    for (uint64_t id : next_waiters) {
      if (now) {
        cli_->answer(id, *now);
      } else {
        reload_waiters_.push_back(id);
      }
    }
  }
  if (immediate_waiter) return answer;
  return std::nullopt;
}

void Master::reexec(const std::vector<uint64_t>& waiters) {
  std::string state;
  std::vector<int> keep;
  auto inherit = [&keep](int fd) {
    net::set_cloexec(fd, false);
    keep.push_back(fd);
    return std::to_string(fd);
  };
  state += "generation " + std::to_string(generation_) + "\n";
  state += "serving " + std::to_string(serving_generation_) + "\n";
  state += "reloads " + std::to_string(reloads_) + "\n";
  state += "start_ms " + std::to_string(start_ms_) + "\n";
  state += "crash_streak " + std::to_string(crash_streak_) + "\n";
  state += "crashes " + std::to_string(crashes_) + "\n";
  if (!pidfile_.empty()) state += "pidfile " + pidfile_ + "\n";
  for (auto& [key, sock] : listeners_) {
    state += "listener " + inherit(sock.fd.get()) + " " + key + "\n";
  }
  if (cli_->active()) state += "cli " + inherit(cli_->listen_fd()) + " " + cli_->path() + "\n";
  for (uint64_t id : waiters) {
    int fd = cli_->client_fd(id);
    if (fd >= 0) state += "waiter " + inherit(fd) + " " + std::to_string(id) + "\n";
  }
  for (auto& w : workers_) {
    if (!w->channel.valid()) continue;
    state += "worker " + std::to_string(w->pid) + " " + std::to_string(w->generation) + " " +
             inherit(w->channel.fd()) + " " + (w->ready ? "1" : "0") + " " +
             (w->draining ? "1" : "0") + " " + std::to_string(w->started_ms) + " " +
             (w->version.empty() ? "-" : w->version) + "\n";
  }
  // The servers' states (health, admin state, runtime weights and addresses)
  // go over too, so the next generation after the upgrade still has them.
  state += "ticket_secret " + to_hex(ticket_secret_) + " " +
           (ticket_secret_from_file_ ? "1" : "0") + "\n";
  state += "server_state " + std::to_string(server_state_.size()) + "\n" + server_state_;
  state += "config_bytes " + std::to_string(config_bytes_.size()) + "\n" + config_bytes_;
  UniqueFd memfd(memfd_create("weir-master-state", 0));
  if (!memfd ||
      ::write(memfd.get(), state.data(), state.size()) != static_cast<ssize_t>(state.size())) {
    log::error("binary upgrade: cannot save the master state: %s", std::strerror(errno));
  } else {
    std::string fd_arg = std::to_string(memfd.get());
    std::vector<const char*> argv = {opts_.binary.c_str(), "-f", opts_.config_path.c_str(),
                                     "--master-state", fd_arg.c_str()};
    if (!opts_.pidfile.empty()) {
      argv.push_back("-p");
      argv.push_back(opts_.pidfile.c_str());
    }
    if (!opts_.master_socket.empty()) {
      argv.push_back("-S");
      argv.push_back(opts_.master_socket.c_str());
    }
    argv.push_back(nullptr);
    log::notice("binary upgrade: executing %s", opts_.binary.c_str());
    execv(opts_.binary.c_str(), const_cast<char* const*>(argv.data()));
    log::error("binary upgrade: exec %s failed: %s; this master goes on", opts_.binary.c_str(),
               std::strerror(errno));
  }
  for (int fd : keep) net::set_cloexec(fd, true);
}

bool Master::restore_state(int fd, std::vector<uint64_t>* waiters) {
  std::string text;
  char buf[4096];
  ssize_t n;
  while ((n = ::pread(fd, buf, sizeof buf, static_cast<off_t>(text.size()))) > 0) {
    text.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream ls(line);
    std::string kind;
    ls >> kind;
    if (kind == "generation") {
      ls >> generation_;
    } else if (kind == "serving") {
      ls >> serving_generation_;
    } else if (kind == "reloads") {
      ls >> reloads_;
    } else if (kind == "start_ms") {
      ls >> start_ms_;
    } else if (kind == "crash_streak") {
      ls >> crash_streak_;
    } else if (kind == "crashes") {
      ls >> crashes_;
    } else if (kind == "pidfile") {
      ls >> pidfile_;
    } else if (kind == "listener") {
      int lfd;
      std::string key;
      ls >> lfd >> key;
      net::set_cloexec(lfd, true);
      listeners_[key] = ListenSocket{UniqueFd(lfd), key};
    } else if (kind == "cli") {
      int cfd;
      std::string path;
      ls >> cfd >> path;
      net::set_cloexec(cfd, true);
      cli_->adopt_listen_fd(UniqueFd(cfd), path);
    } else if (kind == "waiter") {
      int cfd;
      uint64_t id;
      ls >> cfd >> id;
      net::set_cloexec(cfd, true);
      cli_->adopt_client(UniqueFd(cfd), id);
      waiters->push_back(id);
    } else if (kind == "worker") {
      auto w = std::make_unique<WorkerProc>();
      int cfd, ready, draining;
      ls >> w->pid >> w->generation >> cfd >> ready >> draining >> w->started_ms >> w->version;
      if (w->version == "-") w->version.clear();
      net::set_cloexec(cfd, true);
      net::set_nonblocking(cfd);
      w->channel = ipc::Channel(UniqueFd(cfd));
      w->ready = ready == 1;
      w->draining = draining == 1;
      workers_.push_back(std::move(w));
    } else if (kind == "ticket_secret") {
      std::string hex;
      int from_file = 0;
      ls >> hex >> from_file;
      ticket_secret_ = from_hex(hex);
      ticket_secret_from_file_ = from_file == 1;
    } else if (kind == "server_state") {
      size_t len = 0;
      ls >> len;
      server_state_.resize(len);
      in.read(server_state_.data(), static_cast<std::streamsize>(len));
    } else if (kind == "config_bytes") {
      size_t len = 0;
      ls >> len;
      config_bytes_.resize(len);
      in.read(config_bytes_.data(), static_cast<std::streamsize>(len));
    } else if (!kind.empty()) {
      log::warning("binary upgrade: unknown state line '%s'", line.c_str());
    }
  }
  return generation_ > 0;
}

void Master::enforce_max_old_generations() {
  // Oldest draining generations are forced out beyond the cap.
  int cap = config_.global.max_old_generations;
  std::vector<WorkerProc*> old;
  for (auto& w : workers_)
    if (w->draining) old.push_back(w.get());
  std::sort(old.begin(), old.end(),
            [](WorkerProc* a, WorkerProc* b) { return a->generation < b->generation; });
  for (size_t i = 0; static_cast<int>(old.size() - i) > cap; ++i) {
    log::warning("max_old_generations (%d) exceeded: stopping worker pid=%d generation=%d now", cap,
                 old[i]->pid, old[i]->generation);
    kill(old[i]->pid, SIGTERM);
  }
}

std::optional<std::string> Master::forward_command(CliClient& client, const std::string& line) {
  // "@<generation> <command>" or "@!<pid> <command>".
  size_t space = line.find(' ');
  std::string target = line.substr(1, space == std::string::npos ? std::string::npos : space - 1);
  std::string command = space == std::string::npos ? "" : line.substr(space + 1);
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
  WorkerProc* w = nullptr;
  for (auto& candidate : workers_) {
    if ((by_pid && candidate->pid == n) || (!by_pid && candidate->generation == n)) {
      if (!w || candidate->started_ms > w->started_ms) w = candidate.get();
    }
  }
  if (!w || !w->ready || !w->channel.valid()) {
    return "Error: no running worker " + std::string(by_pid ? "with pid " : "of generation ") +
           target;
  }
  if (!w->channel.send(ipc::MsgType::kCommand, command)) {
    return "Error: cannot reach worker " + std::to_string(w->pid);
  }
  w->command_waiters.push_back(client.id());
  return std::nullopt;
}

std::string Master::show_proc() {
  std::string out =
      "#<PID>   <type>   <generation>  <state>    <uptime>       <reloads>  <crashes>  "
      "<version>\n";
  char line[256];
  int64_t now = now_ms();
  std::snprintf(line, sizeof line, "%-9d %-8s %-13s %-10s %-14s %-10d %-10d %s\n", getpid(),
                "master", "-", stopping_ ? "stopping" : "running",
                format_uptime_ms(now - start_ms_).c_str(), reloads_, crashes_, version());
  out += line;
  std::vector<WorkerProc*> ws;
  for (auto& w : workers_) ws.push_back(w.get());
  std::sort(ws.begin(), ws.end(),
            [](WorkerProc* a, WorkerProc* b) { return a->generation > b->generation; });
  for (WorkerProc* w : ws) {
    const char* state = w->draining ? "draining" : (w->ready ? "current" : "starting");
    std::snprintf(line, sizeof line, "%-9d %-8s %-13d %-10s %-14s %-10s %-10s %s\n", w->pid,
                  "worker", w->generation, state, format_uptime_ms(now - w->started_ms).c_str(),
                  "-", "-", w->version.empty() ? "-" : w->version.c_str());
    out += line;
  }
  return out;
}

std::optional<std::string> Master::cli_command(CliClient& client, const std::string& line) {
  if (line == "help") {
    return std::string(
        "help               this list\n"
        "show proc          the master and its workers: pid, generation, state, uptime, version\n"
        "reload             reload the configuration; answers Success=1 or Success=0, then the\n"
        "                   log lines of the reload after a \"--\" line\n"
        "show startup-logs  the log lines of the last start or reload\n"
        "show state-file    global.state_file: path, writes, failed writes, last error\n"
        "@<gen> <command>   run a runtime-API command in the worker of a generation\n"
        "@!<pid> <command>  same, by worker pid\n");
  }
  if (line == "show proc") return show_proc();
  if (line == "show startup-logs") return last_startup_log_;
  if (line == "show state-file") return show_state_file();
  if (line == "reload") return start_reload(client.id());
  if (line[0] == '@') return forward_command(client, line);
  return "Unknown command: '" + line + "'. Type 'help' for the list of commands.";
}

void Master::reap_children() {
  for (;;) {
    int status = 0;
    pid_t pid = waitpid(-1, &status, WNOHANG);
    if (pid <= 0) return;
    WorkerProc* w = find(pid);
    if (!w) continue;
    // Its last words (why it could not start) may still wait in the channel.
    if (w->channel.valid()) on_worker_readable(*w);
    for (uint64_t id : w->command_waiters) {
      cli_->answer(id, "Error: worker " + std::to_string(pid) + " exited before answering");
    }
    w->command_waiters.clear();
    bool was_ready = w->ready;
    bool draining = w->draining;
    int gen = w->generation;
    std::string failure = w->failure;
    int64_t lived = now_ms() - w->started_ms;
    for (auto it = workers_.begin(); it != workers_.end(); ++it) {
      if (it->get() == w) {
        workers_.erase(it);
        break;
      }
    }
    if (stopping_ || draining) {
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
    if (!was_ready && gen == generation_ && reload_in_progress_) {
      log::error("reload failed: %s; generation %d keeps serving", why.c_str(),
                 serving_generation_);
      finish_reload(false, 0, why);
      continue;
    }
    if (!was_ready && !initial_ready_) {
      fail_start(why);
      continue;
    }
    if (!was_ready && !failure.empty()) {
      log::error("worker pid=%d %s", pid, why.c_str());
    } else {
      log::error("worker pid=%d generation=%d exited unexpectedly (%s)", pid, gen,
                 describe_exit(status).c_str());
    }
    ++crashes_;
    bool any_serving = false;
    for (auto& o : workers_)
      if (!o->draining) any_serving = true;
    if (!any_serving) {
      crash_streak_ = lived > kStableWorkerMs ? 1 : crash_streak_ + 1;
      int64_t delay = 100;
      for (int i = 1; i < crash_streak_ && delay < kMaxRespawnDelayMs; ++i) delay *= 2;
      if (delay > kMaxRespawnDelayMs) delay = kMaxRespawnDelayMs;
      respawn_at_ms_ = now_ms() + delay;
      if (crash_streak_ >= 3) {
        log::alert(
            "crash loop: workers died %d times in a row, each within %lld s of starting; "
            "next attempt in %lld ms",
            crash_streak_, static_cast<long long>(kStableWorkerMs / 1000),
            static_cast<long long>(delay));
        sd::notify("STATUS=crash loop: " + std::to_string(crash_streak_) +
                   " worker deaths in a row" + (failure.empty() ? "" : ", last: " + failure));
      } else {
        log::notice("respawning a worker for generation %d in %lld ms", gen,
                    static_cast<long long>(delay));
      }
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
  for (auto& w : workers_) kill(w->pid, SIGTERM);
}

void Master::stop_workers_fast() {
  for (auto& w : workers_) kill(w->pid, SIGTERM);
  int64_t deadline = now_ms() + kFastStopGraceMs;
  while (!workers_.empty() && now_ms() < deadline) {
    usleep(20000);
    reap_children();
  }
  for (auto& w : workers_) {
    kill(w->pid, SIGKILL);
    waitpid(w->pid, nullptr, 0);
  }
  workers_.clear();
}

void Master::handle_signal(int sig) {
  switch (sig) {
    case SIGHUP:
    case SIGUSR2:
      start_reload(0);
      break;
    case SIGUSR1:
      if (!stopping_) {
        sd::notify("STOPPING=1");
        log::notice("graceful stop requested: workers finish in-flight work, then exit");
        stopping_ = graceful_stop_ = true;
        for (auto& w : workers_) {
          w->draining = true;
          w->channel.send(ipc::MsgType::kDrain, "");
        }
      }
      break;
    case SIGTERM:
    case SIGINT:
      sd::notify("STOPPING=1");
      log::notice("fast stop requested (%s)", strsignal(sig));
      stopping_ = true;
      graceful_stop_ = false;
      stop_workers_fast();
      break;
    case SIGCHLD:
      reap_children();
      break;
    default:
      break;
  }
}

void Master::tick() {
  int64_t now = now_ms();
  if (respawn_at_ms_ && now >= respawn_at_ms_ && !stopping_) {
    respawn_at_ms_ = 0;
    if (!spawn_worker(serving_generation_ ? serving_generation_ : generation_)) {
      log::error("cannot respawn the worker; next attempt in %lld ms",
                 static_cast<long long>(kRespawnAfterForkFailureMs));
      respawn_at_ms_ = now + kRespawnAfterForkFailureMs;
    }
  }
  if (reload_in_progress_ && now >= reload_deadline_ms_) {
    for (auto& w : workers_) {
      if (w->generation == generation_ && !w->ready) {
        log::error("reload failed: generation %d was not ready in time; killing pid=%d",
                   w->generation, w->pid);
        kill(w->pid, SIGKILL);
        w->draining = true;  // its exit is expected now
      }
    }
    finish_reload(false);
  }
  if (!initial_ready_ && !stopping_) {
    // The first start has the same deadline as a reload; then it fails.
    for (auto& w : workers_) {
      if (!w->ready && w->failure.empty() && now - w->started_ms >= kReadyTimeoutMs) {
        w->failure = "not ready within " + std::to_string(kReadyTimeoutMs / 1000) + " s";
        kill(w->pid, SIGKILL);
      }
    }
  }
}

void Master::write_pidfile() {
  pidfile_ = !opts_.pidfile.empty() ? opts_.pidfile : config_.global.pidfile;
  if (pidfile_.empty()) return;
  std::ofstream out(pidfile_, std::ios::trunc);
  if (!out) {
    log::warning("cannot write pid file %s: %s", pidfile_.c_str(), std::strerror(errno));
    pidfile_.clear();
    return;
  }
  out << getpid() << "\n";
}

bool Master::apply_fd_limit(const Config& cfg) {
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
    log::warning("cannot read the open-file limit: %s", std::strerror(errno));
    return true;
  }
  // Raise the soft limit toward what the wanted maxconn needs (never above the
  // hard limit, which only root can raise); workers inherit it.
  FdBudget b = plan_fd_budget(cfg, rl.rlim_cur);
  const uint64_t need = fds_needed(cfg, b.wanted);
  if (rl.rlim_cur < need && rl.rlim_cur < rl.rlim_max) {
    rlimit next = rl;
    next.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > need ? need : rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &next) == 0) {
      rl = next;
      b = plan_fd_budget(cfg, rl.rlim_cur);
    }
  }
  const auto limit = static_cast<unsigned long long>(rl.rlim_cur);
  const auto hard = static_cast<unsigned long long>(rl.rlim_max);
  if (b.maxconn == 0) {
    log::error(
        "the open-file limit of %llu (hard limit %llu) is too low: this configuration needs "
        "%llu descriptors for its listeners, logs and checks, plus at least 2 per connection; "
        "raise LimitNOFILE= in the systemd unit or `ulimit -n` before starting weir",
        limit, hard, static_cast<unsigned long long>(b.reserved));
    return false;
  }
  if (b.lowered()) {
    log::warning(
        "global.maxconn %u needs %llu open files but the limit is %llu (hard limit %llu): weir "
        "runs with maxconn %u; raise LimitNOFILE= in the systemd unit or `ulimit -n` (soft and "
        "hard) before starting weir, or set a lower global.maxconn",
        b.wanted, static_cast<unsigned long long>(need), limit, hard, b.maxconn);
  } else if (b.explicit_maxconn) {
    log::notice("maxconn %u (global.maxconn; the open-file limit of %llu holds it)", b.maxconn,
                limit);
  } else {
    log::notice("maxconn %u: %s the open-file limit of %llu%s (global.maxconn is not set)",
                b.maxconn, b.maxconn < b.wanted ? "the most" : "the default;", limit,
                b.maxconn < b.wanted ? " holds" : " holds it");
  }
  return true;
}

int Master::run() {
  int rc = serve();
  // A daemon that stops before its first worker was ready says why to the
  // parent still waiting in the shell.
  tell_daemon_parent(false);
  return rc;
}

void Master::tell_daemon_parent(bool ready) {
  if (ready_notify_fd_ < 0) return;
  std::string text = ready ? std::string(kDaemonReady) : error_lines(startup_log_);
  if (text.empty()) text = "weir: the master stopped before its first worker was ready\n";
  size_t done = 0;
  while (done < text.size()) {
    ssize_t n = ::write(ready_notify_fd_, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    done += static_cast<size_t>(n);
  }
  // On failure the pipe closes when this process exits, with its listening
  // sockets: the parent returns once a retry can bind them again.
  if (ready) ::close(ready_notify_fd_);
  ready_notify_fd_ = -1;
}

int Master::wait_for_daemon(int fd) {
  std::string text;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    text.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  if (text == kDaemonReady) return 0;
  if (text.empty()) text = "weir: the master stopped before its first worker was ready\n";
  std::fputs(text.c_str(), stderr);
  return 1;
}

int Master::serve() {
  log::set_process_tag("weir-master");
  start_ms_ = now_ms();
  log::set_observer([this](std::string_view line) {
    if (capture_) startup_log_ += line;
  });
  running_id_ = executable_id(opts_.binary);
  if (opts_.state_fd >= 0) return run_after_reexec();
  if (!load_config(&config_, &config_bytes_)) {
    log::alert("start-up failed: the configuration is not valid (nothing was started)");
    return 1;
  }
  if (!apply_fd_limit(config_)) {
    log::alert("start-up failed: the open-file limit is too low (nothing was started)");
    return 1;
  }
  std::map<std::string, ListenSocket> initial;
  if (!open_listeners(config_, &initial)) {
    log::alert("start-up failed: cannot open the listening sockets (nothing was started)");
    return 1;
  }
  listeners_ = std::move(initial);
  load_state_file();

  if (opts_.daemonize) {
    int pipefd[2];
    if (pipe2(pipefd, O_CLOEXEC) != 0) {
      log::alert("cannot go to the background: pipe: %s", std::strerror(errno));
      return 1;
    }
    pid_t pid = fork();
    if (pid < 0) {
      log::alert("cannot go to the background: fork: %s", std::strerror(errno));
      return 1;
    }
    if (pid > 0) {
      // Return once the first worker is ready, so scripts and init systems know.
      daemon_parent_ = true;
      ::close(pipefd[1]);
      return wait_for_daemon(pipefd[0]);
    }
    ::close(pipefd[0]);
    ready_notify_fd_ = pipefd[1];
    setsid();
    // Like any daemon, let go of the terminal: standard streams go to /dev/null
    // (set global.log to a file to keep access logs).
    int devnull = ::open("/dev/null", O_RDWR);
    if (devnull >= 0) {
      dup2(devnull, STDIN_FILENO);
      dup2(devnull, STDOUT_FILENO);
      dup2(devnull, STDERR_FILENO);
      ::close(devnull);
    }
  }
  write_pidfile();
  std::string cli_path =
      !opts_.master_socket.empty() ? opts_.master_socket : config_.global.master_socket;
  if (!cli_path.empty()) {
    std::string error;
    if (!cli_->listen(cli_path, &error)) {
      log::alert("%s", error.c_str());
      return 1;
    }
  }

  block_signals();

  log::notice(
      "weir %s master started (pid %d): %zu frontends, %zu backends, %zu listeners, "
      "%d threads per worker",
      version(), getpid(), config_.frontends.size(), config_.backends.size(), listeners_.size(),
      config_.global.threads);
  generation_ = 1;
  if (!spawn_worker(generation_)) return 1;
  return loop();
}

void Master::block_signals() {
  sigset_t mask;
  sigemptyset(&mask);
  for (int s : {SIGHUP, SIGUSR1, SIGUSR2, SIGTERM, SIGINT, SIGCHLD}) sigaddset(&mask, s);
  sigprocmask(SIG_BLOCK, &mask, nullptr);
  signal(SIGPIPE, SIG_IGN);
  signal_fd_.reset(signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC));
}

int Master::run_after_reexec() {
  std::vector<uint64_t> waiters;
  if (!restore_state(opts_.state_fd, &waiters)) {
    log::alert("binary upgrade: the previous master's state is unreadable");
    return 1;
  }
  LoadResult previous = load_config_text(config_bytes_, opts_.config_path);
  if (previous.config) config_ = std::move(*previous.config);
  block_signals();
  initial_ready_ = true;
  log::notice("weir %s master re-executed (pid %d, %s): %zu workers, %zu listeners kept", version(),
              getpid(), running_id_.c_str(), workers_.size(), listeners_.size());
  // The reload that asked for the upgrade goes on with the new code.
  carry_log_ = true;
  std::optional<std::string> now = start_reload(0);
  for (uint64_t id : waiters) {
    if (now) {
      cli_->answer(id, *now);
    } else {
      reload_waiters_.push_back(id);
    }
  }
  reap_children();  // a child may have exited during the exec
  return loop();
}

int Master::loop() {
  while (!(stopping_ && workers_.empty())) {
    std::vector<pollfd> pfds;
    pfds.push_back({signal_fd_.get(), POLLIN, 0});
    std::vector<pid_t> order;
    for (auto& w : workers_) {
      if (w->channel.valid()) {
        pfds.push_back({w->channel.fd(), POLLIN, 0});
        order.push_back(w->pid);
      }
    }
    size_t cli_first = pfds.size();
    std::vector<int> cli_fds;
    std::vector<short> cli_events;
    cli_->collect_fds(&cli_fds, &cli_events);
    for (size_t i = 0; i < cli_fds.size(); ++i) pfds.push_back({cli_fds[i], cli_events[i], 0});
    int n = poll(pfds.data(), pfds.size(), 100);
    if (n < 0 && errno != EINTR) {
      log::alert("poll: %s", std::strerror(errno));
      break;
    }
    if (pfds[0].revents & POLLIN) {
      signalfd_siginfo si;
      while (::read(signal_fd_.get(), &si, sizeof si) == sizeof si) {
        handle_signal(static_cast<int>(si.ssi_signo));
      }
    }
    for (size_t i = 1; i < cli_first; ++i) {
      if (!pfds[i].revents) continue;
      if (WorkerProc* w = find(order[i - 1])) on_worker_readable(*w);
    }
    for (size_t i = cli_first; i < pfds.size(); ++i) {
      if (pfds[i].revents) cli_->on_ready(pfds[i].fd, pfds[i].revents);
    }
    reap_children();
    tick();
  }
  if (exit_code_ != 0) {
    log::notice("master exiting: start-up failed");
  } else {
    log::notice("master exiting (%s stop)", graceful_stop_ ? "graceful" : "fast");
  }
  return exit_code_;
}

}  // namespace weir
