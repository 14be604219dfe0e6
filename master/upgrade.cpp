// The binary upgrade: when a reload finds that the binary on disk is not the
// one this master runs, the master re-executes itself first, keeping its
// listening sockets, its workers and the CLI clients that wait for the reload;
// the new master reads that state back and goes on with the reload
// (doc/management.md, "Binary upgrades").

#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <sstream>

#include "common/base/log.h"
#include "common/base/net.h"
#include "common/base/version.h"
#include "master/master.h"

namespace weir {

void Master::reexec(const std::vector<uint64_t>& waiters) {
  std::string state;
  std::vector<int> keep;
  auto inherit = [&keep](int fd) {
    net::set_cloexec(fd, false);
    keep.push_back(fd);
    return std::to_string(fd);
  };
  const Generations::Counts& counts = generations_.counts();
  state += "generation " + std::to_string(counts.newest) + "\n";
  state += "serving " + std::to_string(counts.serving) + "\n";
  state += "reloads " + std::to_string(counts.reloads) + "\n";
  state += "start_ms " + std::to_string(start_ms_) + "\n";
  state += "crash_streak " + std::to_string(counts.crash_streak) + "\n";
  state += "crashes " + std::to_string(counts.crashes) + "\n";
  if (!pidfile_.empty()) state += "pidfile " + pidfile_ + "\n";
  for (auto& [key, sock] : listeners_) {
    state += "listener " + inherit(sock.fd.get()) + " " + key + "\n";
  }
  if (cli_->active()) state += "cli " + inherit(cli_->listen_fd()) + " " + cli_->path() + "\n";
  for (uint64_t id : waiters) {
    int fd = cli_->client_fd(id);
    if (fd >= 0) state += "waiter " + inherit(fd) + " " + std::to_string(id) + "\n";
  }
  for (auto& w : generations_.workers()) {
    if (!w->channel.valid()) continue;
    state += "worker " + std::to_string(w->pid) + " " + std::to_string(w->generation) + " " +
             inherit(w->channel.fd()) + " " + (w->ready ? "1" : "0") + " " +
             (w->draining ? "1" : "0") + " " + std::to_string(w->started_ms) + " " +
             (w->version.empty() ? "-" : w->version) + "\n";
  }
  // The servers' states (health, admin state, runtime weights and addresses)
  // go over too, so the next generation after the upgrade still has them.
  state += "ticket_secret " + ticket_secret_.save() + "\n";
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
  Generations::Counts counts;
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream ls(line);
    std::string kind;
    ls >> kind;
    if (kind == "generation") {
      ls >> counts.newest;
    } else if (kind == "serving") {
      ls >> counts.serving;
    } else if (kind == "reloads") {
      ls >> counts.reloads;
    } else if (kind == "start_ms") {
      ls >> start_ms_;
    } else if (kind == "crash_streak") {
      ls >> counts.crash_streak;
    } else if (kind == "crashes") {
      ls >> counts.crashes;
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
      generations_.adopt(std::move(w));
    } else if (kind == "ticket_secret") {
      ticket_secret_.restore(line.substr(kind.size()));
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
  generations_.restore(counts);
  return counts.newest > 0;
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
  log::notice("weir %s master re-executed (pid %d, %s): %zu workers, %zu listeners kept", version(),
              getpid(), running_id_.c_str(), generations_.workers().size(), listeners_.size());
  // The reload that asked for the upgrade goes on with the new code.
  carry_log_ = true;
  answer_or_wait(start_reload(0), waiters);
  reap_children();  // a child may have exited during the exec
  return loop();
}

}  // namespace weir
