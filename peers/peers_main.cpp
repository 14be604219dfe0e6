// `weir --peers FD`: the peers agent's process. The master sends a Hello (its
// run directory) and the configuration on FD; the agent drops to weir's
// account, binds its socket, loads the saved tables, says Ready, and serves
// until the master says Stop (or goes away, or a SIGTERM comes), saving the
// tables on its way out. A new configuration on FD (a reload) changes its tables.

#include <signal.h>
#include <unistd.h>

#include <csignal>
#include <optional>

#include "common/base/log.h"
#include "common/base/net.h"
#include "common/base/privileges.h"
#include "common/ipc/ipc.h"
#include "peers/agent.h"

namespace weir::peers {
namespace {

volatile std::sig_atomic_t g_stop_signal = 0;

// How long a new agent waits for the worker processes that ran before it to
// refill it before it reports Ready: a process with traffic does within a few
// milliseconds of its first update, an idle one within its silence check (1 s).
constexpr int64_t kRefillWaitMs = 2000;

void on_stop_signal(int sig) {
  g_stop_signal = sig;
}

std::string state_path_of(const Config& cfg) {
  return cfg.global.state_dir.empty() ? std::string() : cfg.global.state_dir + "/tables.state";
}

}  // namespace

int peers_main(int channel_fd) {
  log::set_process_tag("weir-peers");
  signal(SIGPIPE, SIG_IGN);
  ipc::Channel channel{UniqueFd(channel_fd)};
  net::set_cloexec(channel_fd);
  std::string run_dir;
  std::optional<Config> config;
  std::vector<int> running;  // worker processes that ran before this agent
  auto refuse = [&](const std::string& why) {
    proto::Envelope failed;
    failed.mutable_failed()->set_reason(why);
    if (!channel.send(std::move(failed))) log::alert("peers agent cannot start: %s", why.c_str());
    return 1;
  };
  while (run_dir.empty() || !config) {
    std::optional<ipc::Message> m = channel.receive();
    if (!m) {
      log::alert("peers: lost the master before start-up completed: %s", channel.error().c_str());
      return 1;
    }
    if (m->env.has_hello()) {
      run_dir = m->env.hello().peers_dir();
      running.assign(m->env.hello().running_workers().begin(),
                     m->env.hello().running_workers().end());
      if (run_dir.empty()) return refuse("the master's hello names no run directory");
    } else if (m->env.has_configuration()) {
      LoadResult r = load_config_text(m->env.configuration().validated(),
                                      m->env.configuration().source_name());
      if (!r.config) {
        return refuse(r.errors.empty() ? "invalid configuration" : r.errors[0].to_string());
      }
      config = std::move(r.config);
    } else if (m->env.has_stop()) {
      return 0;
    }
  }
  std::string error;
  if (!drop_privileges(config->global.user, config->global.group, &error)) return refuse(error);
  AgentOptions opts;
  opts.run_dir = run_dir;
  opts.state_path = state_path_of(*config);
  opts.save_interval_ms = config->global.state_save_interval;
  opts.node_started = running.empty();
  if (!config->global.state_dir.empty()) opts.import_state_file = config->global.state_file;
  Agent agent(opts);
  if (!agent.configure(*config, &error)) return refuse(error);
  if (!agent.bind(&error)) return refuse(error);
  agent.load_state();
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);
  // Ready at once, unless worker processes ran before this agent (a binary
  // upgrade, a respawn): then once each has refilled it (what they counted
  // while no agent read it comes with the refill), or after kRefillWaitMs
  // for one that does not.
  const int64_t refill_deadline = stick::clock_now().mono_ms + kRefillWaitMs;
  bool ready_sent = false;
  auto send_ready = [&] {
    proto::Envelope ready;
    ready.mutable_ready()->set_pid(getpid());
    channel.send(std::move(ready));
    ready_sent = true;
    log::notice("peers agent ready (pid=%d, %zu table(s))", getpid(), config->stick_tables.size());
  };
  if (running.empty()) send_ready();
  net::set_nonblocking(channel.fd());
  for (;;) {
    if (!ready_sent) {
      const std::vector<int> missing = agent.not_refilled_by(running);
      if (missing.empty()) {
        log::info("peers: the %zu worker process(es) that ran before this agent refilled it",
                  running.size());
        send_ready();
      } else if (stick::clock_now().mono_ms >= refill_deadline) {
        log::warning(
            "peers: %zu worker process(es) that ran before this agent did not refill it "
            "within %lld ms (pid %d first); ready without them",
            missing.size(), static_cast<long long>(kRefillWaitMs), missing.front());
        send_ready();
      }
    }
    const bool readable =
        agent.poll_once(channel.valid() ? channel.fd() : -1, ready_sent ? 250 : 5);
    if (g_stop_signal) {
      log::notice("peers agent stopping (signal %d)", static_cast<int>(g_stop_signal));
      agent.save_state(true);
      return 0;
    }
    if (!readable) continue;
    ipc::Channel::ReadStatus st = channel.read_some();
    while (auto m = channel.next()) {
      if (m->env.has_configuration()) {
        LoadResult r = load_config_text(m->env.configuration().validated(),
                                        m->env.configuration().source_name());
        if (r.config) {
          if (!agent.configure(*r.config, &error)) {
            log::error("%s; the links to the other nodes are down until the next reload",
                       error.c_str());
          }
          agent.set_state(state_path_of(*r.config), r.config->global.state_save_interval);
        }
      } else if (m->env.has_stop()) {
        agent.save_state(true);
        log::notice("peers agent stopped");
        return 0;
      }
    }
    if (st != ipc::Channel::ReadStatus::kOk || !channel.valid()) {
      log::notice("peers agent: the master is gone; saving and exiting");
      agent.save_state(true);
      return 0;
    }
  }
}

}  // namespace weir::peers
