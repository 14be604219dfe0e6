// The master's life: start-up (configuration, open-file limit, listeners,
// the -D hand-over to a daemon, the pid file, the CLI socket, the first
// generation), then one poll loop over the signals, the workers' channels and
// the CLI clients, until every worker is gone after a stop.

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>

#include "common/base/build_id.h"
#include "common/base/log.h"
#include "common/base/version.h"
#include "common/ipc/state_text.h"
#include "master/cli/command.h"
#include "master/master.h"
#include "master/sd_notify.h"

namespace weir {
namespace {

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

}  // namespace

Master::Master(MasterOptions opts)
    : opts_(std::move(opts)),
      cli_(std::make_unique<MasterCli>([this](CliClient& c, const std::string& line) {
        return run_master_command(*this, c, line);
      })) {}

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
        for (WorkerProc* w : generations_.drain_all()) {
          proto::Envelope drain;
          drain.mutable_drain();
          w->channel.send(std::move(drain));
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

int Master::run() {
  int rc = serve();
  // A daemon that stops before its first worker was ready says why to the
  // parent still waiting in the shell.
  tell_daemon_parent(false);
  return rc;
}

void Master::tell_daemon_parent(bool ready) {
  if (ready_notify_fd_ < 0) return;
  proto::Envelope env;
  env.set_protocol(ipc::kProtocolVersion);
  env.mutable_daemon_started()->set_ready(ready);
  if (!ready) env.mutable_daemon_started()->set_errors(error_lines(startup_log_));
  std::string frame, error;
  if (ipc::encode_frame(env, ipc::kFrameProtobuf, 0, &frame, &error)) {
    size_t done = 0;
    while (done < frame.size()) {
      ssize_t n = ::write(ready_notify_fd_, frame.data() + done, frame.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      done += static_cast<size_t>(n);
    }
  }
  // On failure the pipe closes when this process exits, with its listening
  // sockets: the parent returns once a retry can bind them again.
  if (ready) ::close(ready_notify_fd_);
  ready_notify_fd_ = -1;
}

int Master::wait_for_daemon(int fd) {
  ipc::Decoder decoder;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    decoder.append(std::string_view(buf, static_cast<size_t>(n)));
  }
  ::close(fd);
  ipc::Message m;
  std::string text;
  if (decoder.next(&m) == ipc::Decoder::Status::kMessage && m.env.has_daemon_started()) {
    if (m.env.daemon_started().ready()) return 0;
    text = m.env.daemon_started().errors();
  }
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
  // With a state_dir, the peers agent keeps the server states (it imports
  // state_file's once); without, state_file does, as before.
  if (std::optional<std::string> states = config_.global.state_dir.empty()
                                              ? StateFile::read(config_.global.state_file)
                                              : std::nullopt) {
    server_state_ = ipc::server_states_from_text(*states);
    log::notice("server states restored from %s", config_.global.state_file.c_str());
  }

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
  if (peers_wanted()) start_peers_agent(true);
  if (!spawn_worker(generations_.begin_generation())) return 1;
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

int Master::loop() {
  while (!(stopping_ && generations_.empty())) {
    std::vector<pollfd> pfds;
    pfds.push_back({signal_fd_.get(), POLLIN, 0});
    std::vector<pid_t> order;
    for (auto& w : generations_.workers()) {
      if (w->channel.valid()) {
        pfds.push_back({w->channel.fd(), POLLIN, 0});
        order.push_back(w->pid);
      }
    }
    size_t peers_at = 0;
    if (peers_channel_.valid()) {
      peers_at = pfds.size();
      pfds.push_back({peers_channel_.fd(), POLLIN, 0});
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
    if (peers_at && pfds[peers_at].revents) on_peers_readable();
    for (size_t i = 1; i < cli_first; ++i) {
      if (!pfds[i].revents || i == peers_at) continue;
      if (WorkerProc* w = generations_.find(order[i - 1])) on_worker_readable(*w);
    }
    for (size_t i = cli_first; i < pfds.size(); ++i) {
      if (pfds[i].revents) cli_->on_ready(pfds[i].fd, pfds[i].revents);
    }
    reap_children();
    tick();
    peers_tick();
  }
  // The workers are gone, their last changes with the agent: it saves the tables.
  stop_peers_agent();
  remove_peers_dir();
  if (exit_code_ != 0) {
    log::notice("master exiting: start-up failed");
  } else {
    log::notice("master exiting (%s stop)", graceful_stop_ ? "graceful" : "fast");
  }
  return exit_code_;
}

}  // namespace weir
