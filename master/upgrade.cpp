// The binary upgrade: when a reload finds that the binary on disk is not the
// one this master runs, the master re-executes itself first, keeping its
// listening sockets, its workers and the CLI clients that wait for the reload;
// the new master reads that state back and goes on with the reload
// (doc/management.md, "Binary upgrades").

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/base/log.h"
#include "common/base/net.h"
#include "common/base/version.h"
#include "master/master.h"

namespace weir {

void Master::reexec(const std::vector<uint64_t>& waiters) {
  // The agent runs the old binary: it stops, leaving its tables in the run
  // directory (or state_dir) for the next master's agent, and the workers
  // refill that one too.
  stop_peers_agent();
  proto::Envelope env;
  proto::UpgradeState& st = *env.mutable_upgrade_state();
  std::vector<int> keep;
  auto inherit = [&keep](int fd) {
    net::set_cloexec(fd, false);
    keep.push_back(fd);
    return fd;
  };
  const Generations::Counts& counts = generations_.counts();
  proto::UpgradeState::Counts* c = st.mutable_counts();
  c->set_newest(counts.newest);
  c->set_serving(counts.serving);
  c->set_reloads(counts.reloads);
  c->set_crash_streak(counts.crash_streak);
  c->set_crashes(counts.crashes);
  st.set_start_ms(start_ms_);
  st.set_pidfile(pidfile_);
  for (auto& [key, sock] : listeners_) {
    proto::UpgradeState::Listener* l = st.add_listeners();
    l->set_fd(inherit(sock.fd.get()));
    l->set_key(key);
  }
  if (cli_->active()) {
    st.mutable_cli()->set_fd(inherit(cli_->listen_fd()));
    st.mutable_cli()->set_path(cli_->path());
  }
  for (uint64_t id : waiters) {
    int fd = cli_->client_fd(id);
    if (fd < 0) continue;
    proto::UpgradeState::Waiter* wt = st.add_waiters();
    wt->set_fd(inherit(fd));
    wt->set_id(id);
  }
  for (auto& w : generations_.workers()) {
    if (!w->channel.valid()) continue;
    proto::UpgradeState::Worker* pw = st.add_workers();
    pw->set_pid(w->pid);
    pw->set_generation(w->generation);
    pw->set_channel_fd(inherit(w->channel.fd()));
    pw->set_ready(w->ready);
    pw->set_draining(w->draining);
    pw->set_started_ms(w->started_ms);
    pw->set_version(w->version);
    // What it speaks: known from its messages, else from the format it was written in.
    uint32_t protocol = w->protocol;
    if (!protocol)
      protocol = w->channel.peer_format() == ipc::kFrameText ? 1 : ipc::kProtocolVersion;
    pw->set_protocol(protocol);
  }
  // The servers' states (health, admin state, runtime weights and addresses)
  // go over too, so the next generation after the upgrade still has them.
  st.mutable_ticket_secret()->set_secret(ticket_secret_.secret());
  st.mutable_ticket_secret()->set_from_file(ticket_secret_.from_file());
  *st.mutable_server_state() = server_state_;
  st.set_config_bytes(config_bytes_);
  st.set_peers_dir(peers_dir_);
  env.set_protocol(ipc::kProtocolVersion);
  std::string bytes, error;
  UniqueFd memfd(memfd_create("weir-master-state", 0));
  if (!ipc::encode_frame(env, ipc::kFrameProtobuf, 0, &bytes, &error)) {
    log::error("binary upgrade: cannot save the master state: %s", error.c_str());
  } else if (!memfd || ::write(memfd.get(), bytes.data(), bytes.size()) !=
                           static_cast<ssize_t>(bytes.size())) {
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
  if (peers_wanted()) start_peers_agent(true);
}

bool Master::restore_state(int fd, std::vector<uint64_t>* waiters) {
  std::string bytes;
  char buf[4096];
  ssize_t n;
  while ((n = ::pread(fd, buf, sizeof buf, static_cast<off_t>(bytes.size()))) > 0) {
    bytes.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  proto::UpgradeState st;
  std::string error;
  if (!ipc::decode_upgrade_state(bytes, &st, &error)) {
    log::alert("binary upgrade: %s", error.c_str());
    return false;
  }
  Generations::Counts counts;
  counts.newest = st.counts().newest();
  counts.serving = st.counts().serving();
  counts.reloads = st.counts().reloads();
  counts.crash_streak = st.counts().crash_streak();
  counts.crashes = st.counts().crashes();
  start_ms_ = st.start_ms();
  pidfile_ = st.pidfile();
  // Every descriptor named below was left open across the exec by the previous
  // master; one that is not open any more is skipped.
  auto adopt = [](int32_t inherited) {
    if (inherited < 0 || fcntl(inherited, F_GETFD) < 0) return false;
    net::set_cloexec(inherited, true);
    return true;
  };
  for (const auto& l : st.listeners()) {
    if (adopt(l.fd())) listeners_[l.key()] = ListenSocket{UniqueFd(l.fd()), l.key()};
  }
  if (st.has_cli() && adopt(st.cli().fd())) {
    cli_->adopt_listen_fd(UniqueFd(st.cli().fd()), st.cli().path());
  }
  for (const auto& wt : st.waiters()) {
    if (!adopt(wt.fd())) continue;
    cli_->adopt_client(UniqueFd(wt.fd()), wt.id());
    waiters->push_back(wt.id());
  }
  for (const auto& pw : st.workers()) {
    if (!adopt(pw.channel_fd())) continue;
    auto w = std::make_unique<WorkerProc>();
    w->pid = pw.pid();
    w->generation = pw.generation();
    net::set_nonblocking(pw.channel_fd());
    w->channel = ipc::Channel(UniqueFd(pw.channel_fd()));
    // A worker of a master from before Protobuf reads text only.
    if (pw.protocol() == 1) w->channel.set_peer_format(ipc::kFrameText);
    w->protocol = pw.protocol();
    w->ready = pw.ready();
    w->draining = pw.draining();
    w->started_ms = pw.started_ms();
    w->version = pw.version();
    generations_.adopt(std::move(w));
  }
  ticket_secret_.restore(st.ticket_secret().secret(), st.ticket_secret().from_file());
  server_state_ = st.server_state();
  config_bytes_ = st.config_bytes();
  peers_dir_ = st.peers_dir();
  generations_.restore(counts);
  return true;
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
  if (peers_wanted()) start_peers_agent(true);
  log::notice("weir %s master re-executed (pid %d, %s): %zu workers, %zu listeners kept", version(),
              getpid(), running_id_.c_str(), generations_.workers().size(), listeners_.size());
  // The reload that asked for the upgrade goes on with the new code.
  carry_log_ = true;
  answer_or_wait(start_reload(0), waiters);
  reap_children();  // a child may have exited during the exec
  return loop();
}

}  // namespace weir
