#include "worker/worker.h"

#include "common/stick/table.h"

#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <future>
#include <map>

#include "common/base/build_id.h"
#include "common/base/hex.h"
#include "common/base/log.h"
#include "common/base/net.h"
#include "common/base/privileges.h"
#include "common/base/version.h"
#include "common/event/timer.h"
#include "common/servers/record.h"
#include "worker/accept/listener.h"
#include "worker/api/runtime_api.h"
#include "worker/checks/agent_check.h"
#include "worker/checks/health_check.h"
#include "worker/peers/link.h"
#include "worker/thread_context.h"
#include "worker/tls/tls.h"

namespace weir {

class Worker::ChannelHandler final : public IoHandler {
 public:
  explicit ChannelHandler(Worker& w) : w_(w) {}
  void on_io(uint32_t) override {
    for (;;) {
      ipc::Channel::ReadStatus st = w_.channel_.read_some();
      while (auto m = w_.channel_.next()) w_.on_channel_message(*m);
      if (st == ipc::Channel::ReadStatus::kOk) {
        if (!w_.channel_.valid()) w_.on_channel_closed();
        return;
      }
      w_.on_channel_closed();
      return;
    }
  }

 private:
  Worker& w_;
};

Worker::Worker(Config config, int generation, ipc::Channel channel)
    : config_(std::move(config)), generation_(generation), channel_(std::move(channel)) {}

Worker::~Worker() {
  // state_timer_ is armed on thread 0's loop and declared before threads_, so
  // it would be destroyed after them and take itself out of a freed timer heap.
  state_timer_.reset();
}

bool Worker::init(std::vector<std::pair<std::string, UniqueFd>> listen_fds, std::string* error) {
  const int threads = config_.global.threads;
  // The same plan as the master's, from the limit inherited from it.
  rlimit rl{};
  getrlimit(RLIMIT_NOFILE, &rl);
  fd_budget_ = plan_fd_budget(config_, rl.rlim_cur);
  if (fd_budget_.maxconn == 0) {
    *error = "the open-file limit of " + std::to_string(rl.rlim_cur) +
             " cannot hold a single connection";
    return false;
  }
  config_.global.maxconn = fd_budget_.maxconn;
  for (const BackendConfig& bc : config_.backends)
    backends_.push_back(std::make_unique<Backend>(bc, threads));
  for (const FrontendConfig& fc : config_.frontends) {
    int bi = config_.backend_index(fc.default_backend);
    Backend* be = bi >= 0 ? backends_[static_cast<size_t>(bi)].get() : nullptr;
    frontends_.push_back(std::make_unique<Frontend>(fc, be, threads));
  }
  // A backend's fullconn, when not configured: a tenth of the connections its
  // frontends may bring (as HAProxy does).
  for (auto& be : backends_) {
    if (be->config().fullconn) continue;
    uint64_t total = 0;
    for (auto& fe : frontends_) {
      if (fe->default_backend() != be.get()) continue;
      total += fe->config().maxconn ? fe->config().maxconn : config_.global.maxconn;
    }
    be->set_fullconn(static_cast<uint32_t>(std::max<uint64_t>(1, total / 10)));
  }
  std::vector<std::string> sample_texts;
  if (!open_access_log_sinks(config_.global, config_.source_name, &log_sinks_, &log_captures_,
                             &sample_texts, error)) {
    return false;
  }
  cond::FileCache files;
  for (const std::string& text : sample_texts) {
    cond::ParseError pe;
    auto smp = cond::parse_sample(text, files, &pe);
    if (!smp) {
      *error = "log format: %[" + text + "]: " + pe.message;
      return false;
    }
    log_samples_.push_back(std::move(*smp));
  }

  std::map<std::string, int> by_key;
  for (auto& [key, fd] : listen_fds) {
    by_key[key] = fd.get();
    listen_fds_.push_back(std::move(fd));
  }
  // Test hook (doc/testing.md): at most this many buffers per thread, so that
  // tests can run weir out of buffer memory.
  const char* buffer_limit = std::getenv("WEIR_TEST_BUFFER_LIMIT");
  for (int t = 0; t < threads; ++t) {
    threads_.push_back(
        std::make_unique<ThreadContext>(*this, t, config_.global.bufsize, &log_sinks_));
    // Each thread keeps to its share of the descriptor budget, without sharing
    // a counter on the traffic path.
    threads_.back()->set_fd_shares(fd_budget_.idle_server_conns / threads,
                                   fd_budget_.pipes / threads);
    if (buffer_limit) {
      threads_.back()->buffers().set_limit(std::strtoul(buffer_limit, nullptr, 10));
    }
  }
  // TLS: certificates and keys are read here, before privileges are dropped.
  std::vector<ConfigError> tls_errors, tls_warnings;
  tls::Problems problems{config_.source_name, &tls_errors, &tls_warnings};
  auto tls_failed = [&] {
    *error = tls_errors.empty() ? "TLS set-up failed" : tls_errors.front().to_string();
    return false;
  };
  for (auto& be : backends_) {
    if (be->config().default_tls.enabled) {
      auto c = tls::BackContext::build(be->config().default_tls, tls::backend_label(be->config()),
                                       problems);
      if (!c) return tls_failed();
      be->set_default_tls(c);
    }
    for (Server* sv : be->servers()) {
      const TlsServerConfig& tc = sv->config().tls;
      if (!tc.enabled) continue;
      std::shared_ptr<const tls::BackContext> c = be->default_tls();
      if (!c || !tls::same_mark(tc.mark, be->config().default_tls.mark)) {
        // The server's own settings.
        c = tls::BackContext::build(tc, tls::server_label(be->config(), sv->config()), problems);
        if (!c) return tls_failed();
      }
      sv->set_tls(c, threads);
    }
  }
  listeners_.resize(static_cast<size_t>(threads));
  for (auto& fe : frontends_) {
    for (const BindConfig& b : fe->config().binds) {
      auto it = by_key.find(b.key());
      if (it == by_key.end()) {
        *error = "the master did not pass a socket for " + b.key();
        return false;
      }
      std::shared_ptr<const tls::FrontContext> front;
      if (b.tls.enabled) {
        auto c =
            tls::FrontContext::build(b.tls, fe->mode(), tls::bind_label(fe->config(), b), problems);
        if (!c) return tls_failed();
        front = c;
        tls_fronts_.push_back({fe.get(), c});
      }
      for (int t = 0; t < threads; ++t) {
        auto l = std::make_unique<Listener>(*threads_[static_cast<size_t>(t)], *fe, b, it->second,
                                            front);
        listeners_[static_cast<size_t>(t)].push_back(std::move(l));
      }
    }
  }
  for (const RuntimeApiEndpoint& ep : config_.global.runtime_api) {
    auto it = by_key.find(ep.key());
    if (it == by_key.end()) {
      *error = "the master did not pass a socket for " + ep.key();
      return false;
    }
    api_listeners_.push_back(
        std::make_unique<ApiListener>(*threads_[0], *this, it->second, ep.level));
  }
  apply_inherited_state();
  for (auto& be : backends_) {
    // A change made by a health check (on any thread) reaches the master at
    // once, so that a reload a moment later carries it.
    be->set_change_hook([this] { threads_[0]->loop().post([this] { publish_state(); }); });
  }
  for (auto& be : backends_) {
    for (Server* sv : be->servers()) make_checkers(*be, *sv);
  }
  if (!drop_privileges(config_.global.user, config_.global.group, error)) return false;
  start_ms_ = EventLoop::monotonic_ms();

  ThreadContext& main = *threads_[0];
  channel_handler_ = std::make_unique<ChannelHandler>(*this);
  net::set_nonblocking(channel_.fd());
  main.loop().add(channel_.fd(), EPOLLIN | EPOLLET, channel_handler_.get());
  state_timer_ = std::make_unique<Timer>(
      main.loop().timers(),
      [](void* self) {
        auto* w = static_cast<Worker*>(self);
        w->publish_state();
        // Stick-table entries that expired go, once a second (a lookup
        // already ignores them).
        const stick::Now now = stick::clock_now();
        for (const auto& t : w->config_.stick_tables) t->purge_expired(now);
        if (!w->waiting_deletes_.empty()) {
          proto::ServerRecords again;
          for (auto& [key, r] : w->waiting_deletes_) *again.add_records() = std::move(r);
          w->waiting_deletes_.clear();
          w->apply_records(again, true);
        }
        w->state_timer_->set(w->threads_[0]->loop().now_ms() + 1000);
      },
      this);
  drain_timer_ = std::make_unique<Timer>(
      main.loop().timers(), [](void* self) { static_cast<Worker*>(self)->check_drained(); }, this);
  return true;
}

int Worker::run() {
  // Every thread starts polling its listeners and purging idle server connections.
  for (size_t t = 0; t < threads_.size(); ++t) {
    ThreadContext* ctx = threads_[t].get();
    auto* ls = &listeners_[t];
    ctx->loop().post([t] { set_counter_slot(static_cast<int>(t)); });
    ctx->loop().post([ls] {
      for (auto& l : *ls) l->resume();
    });
    ctx->loop().post([ctx] { ctx->start_housekeeping(); });
  }
  threads_[0]->loop().post([this] {
    for (auto& api : api_listeners_) api->start();
    published_state_ = server_state_snapshot().SerializeAsString();  // what the master handed over
    state_timer_->set(threads_[0]->loop().now_ms() + 1000);
  });
  // Health checks and agent probes start spread over their first interval, so
  // that many servers are not all checked in the same millisecond.
  for (size_t i = 0; i < checkers_.size(); ++i) {
    HealthChecker* c = checkers_[i].get();
    int64_t inter = c->interval_hint();
    int64_t delay = 1 + inter * static_cast<int64_t>(i) / static_cast<int64_t>(checkers_.size());
    c->thread().loop().post([c, delay] { c->start(delay); });
  }
  for (size_t i = 0; i < agents_.size(); ++i) {
    AgentChecker* a = agents_[i].get();
    int64_t inter = a->interval_hint();
    int64_t delay = 1 + inter * static_cast<int64_t>(i) / static_cast<int64_t>(agents_.size());
    a->thread().loop().post([a, delay] { a->start(delay); });
  }
  for (size_t t = 1; t < threads_.size(); ++t) {
    ThreadContext* ctx = threads_[t].get();
    os_threads_.emplace_back([ctx] { ctx->loop().run(); });
  }
  proto::Envelope ready;
  ready.mutable_ready()->set_pid(getpid());
  ready.mutable_ready()->set_threads(static_cast<uint32_t>(threads_.size()));
  ready.mutable_ready()->set_version(version());
  ready.mutable_ready()->set_build_id(executable_id("/proc/self/exe"));
  channel_.send(std::move(ready));
  threads_[0]->loop().run();
  for (auto& th : os_threads_) th.join();
  for (auto& ctx : threads_) ctx->access_log().flush();
  return 0;
}

void Worker::on_every_thread(const std::function<void(ThreadContext&)>& fn) {
  std::vector<std::future<void>> pending;
  for (size_t t = 1; t < threads_.size(); ++t) {
    auto done = std::make_shared<std::promise<void>>();
    pending.push_back(done->get_future());
    ThreadContext* ctx = threads_[t].get();
    ctx->loop().post([ctx, fn, done] {
      fn(*ctx);
      done->set_value();
    });
  }
  fn(*threads_[0]);
  // A thread that is shutting down may never run its task: do not wait for ever.
  for (auto& f : pending) f.wait_for(std::chrono::seconds(5));
}

proto::StateHandover Worker::server_state_snapshot() const {
  proto::StateHandover out;
  for (auto& be : backends_) {
    for (Server* s : be->servers()) {
      proto::ServerState* st = out.add_servers();
      st->set_backend(be->name());
      st->set_server(s->name());
      st->set_admin_state(admin_state_name(s->admin_state()));
      st->set_weight(s->weight());
      st->set_configured_weight(s->configured_weight());
      st->set_address(s->addr_text());
      st->set_configured_address(s->config().address_text);
      st->set_down(!s->check_up());
      st->set_agent_down(s->agent_down());
    }
  }
  return out;
}

void Worker::publish_state() {
  if (draining()) return;  // only the current generation speaks for the servers
  proto::Envelope env;
  *env.mutable_state() = server_state_snapshot();
  std::string now = env.state().SerializeAsString();
  if (now == published_state_) return;
  if (channel_.valid() && channel_.send(std::move(env))) published_state_ = std::move(now);
}

void Worker::apply_inherited_state() {
  // What an operator or the health checks decided in the previous generation
  // (or before a restart) survives, for the servers that still exist with the
  // same name: admin state always; the runtime weight and address only when the
  // configuration did not change them; DOWN only while the server is checked.
  int64_t now = EventLoop::monotonic_ms();
  int applied = 0;
  for (const proto::ServerState& st : inherited_state_.servers()) {
    Backend* be = nullptr;
    for (auto& b : backends_)
      if (b->name() == st.backend()) be = b.get();
    Server* s = be ? be->find_server(st.server()) : nullptr;
    if (!s) continue;
    std::optional<AdminState> admin = parse_admin_state(st.admin_state());
    if (admin && *admin != AdminState::kReady) be->set_server_state(s, *admin, now);
    if (st.configured_weight() == s->configured_weight() && st.weight() != s->weight() &&
        st.weight() <= 256) {
      be->set_server_weight(s, st.weight(), now);
    }
    if (st.configured_address() == s->config().address_text && st.address() != s->addr_text()) {
      std::string problem;
      if (auto a = parse_address(st.address(), /*allow_wildcard=*/false, &problem)) {
        s->set_addr(*a, st.address());
      }
    }
    if (st.down() && s->config().check.enabled) be->set_server_up(s, false, now);
    if (st.agent_down() && s->config().agent.enabled) be->set_server_agent_down(s, true, now);
    ++applied;
  }
  if (applied) log::info("server states of %d server(s) taken over", applied);
}

void Worker::make_checkers(Backend& be, Server& sv) {
  if (sv.config().check.enabled) {
    ThreadContext& t = *threads_[checkers_.size() % threads_.size()];
    checkers_.push_back(std::make_unique<HealthChecker>(t, be, sv));
    sv.checker_.store(checkers_.back().get(), std::memory_order_release);
  }
  if (sv.config().agent.enabled) {
    ThreadContext& t = *threads_[(agents_.size() + 1) % threads_.size()];
    agents_.push_back(std::make_unique<AgentChecker>(t, be, sv));
  }
}

void Worker::start_checks_of_added_server(Backend& be, Server& sv) {
  size_t checks = checkers_.size(), agents = agents_.size();
  make_checkers(be, sv);
  // A random point in the first interval, like the servers that started with
  // the generation: many servers added at once are not checked all together.
  if (checkers_.size() > checks) {
    HealthChecker* c = checkers_.back().get();
    int64_t delay =
        1 + static_cast<int64_t>(std::rand() % std::max<int64_t>(1, c->interval_hint()));
    c->thread().loop().post([c, delay] { c->start(delay); });
  }
  if (agents_.size() > agents) {
    AgentChecker* a = agents_.back().get();
    int64_t delay =
        1 + static_cast<int64_t>(std::rand() % std::max<int64_t>(1, a->interval_hint()));
    a->thread().loop().post([a, delay] { a->start(delay); });
  }
}

void Worker::share_server(proto::ServerRecord r) {
  if (applying_records_) return;
  if (PeersLink* link = PeersLink::current()) link->share_servers(std::move(r));
}

void Worker::post_to_main(std::function<void()> fn) {
  threads_[0]->loop().post(std::move(fn));
}

void Worker::apply_server_records(const proto::ServerRecords& rs) {
  apply_records(rs, false);
}

void Worker::apply_records(const proto::ServerRecords& rs, bool again) {
  applying_records_ = true;
  for (const proto::ServerRecord& r : rs.records()) {
    // A newer record of the server replaces one that waited.
    if (!again) waiting_deletes_.erase(r.backend() + "/" + r.server());
    Backend* be = nullptr;
    for (auto& b : backends_) {
      if (b->name() == r.backend()) be = b.get();
    }
    if (!be) continue;  // a backend this configuration does not have
    // The record becomes command lines: one that could not (another node's
    // mistake) is not applied.
    if (!servers::well_formed(r)) {
      log::warning("server records: ignoring a malformed record for backend %s",
                   be->name().c_str());
      continue;
    }
    servers::ServerNow now;
    for (const BackendConfig& bc : config_.backends) {
      if (bc.name != r.backend()) continue;
      for (const ServerConfig& sc : bc.servers) {
        if (sc.name != r.server()) continue;
        now.configured = true;
        now.configured_weight = sc.weight;
        now.configured_address = sc.address_text;
      }
    }
    if (Server* s = be->find_server(r.server())) {
      now.exists = true;
      now.admin_state = admin_state_name(s->admin_state());
      now.weight = s->weight();
      now.address = s->addr_text();
      if (!now.configured) {
        now.configured_weight = s->configured_weight();
        now.configured_address = s->config().address_text;
      }
    }
    for (const std::string& line : servers::commands_for(r, now)) {
      const std::string answer = run_api_command(*this, ApiLevel::kAdmin, line);
      if (answer.rfind("Error", 0) != 0) continue;
      Server* busy =
          line.rfind("del server ", 0) == 0 && now.exists ? be->find_server(r.server()) : nullptr;
      if (busy && busy->counters().current() > 0) {
        // Deleted on another node while it still carries requests here: in
        // maint now, it goes once they end.
        if (!again) {
          log::notice(
              "server %s/%s was deleted on another node: in maint here until its %lld "
              "request(s) or connection(s) end",
              r.backend().c_str(), r.server().c_str(),
              static_cast<long long>(busy->counters().current()));
        }
        waiting_deletes_[r.backend() + "/" + r.server()] = r;
        break;
      }
      log::warning("server %s/%s: '%s' from the peers agent failed: %s", r.backend().c_str(),
                   r.server().c_str(), line.c_str(), answer.c_str());
    }
  }
  applying_records_ = false;
}

void Worker::post_to_every_thread(const std::function<void(ThreadContext&)>& fn) {
  for (auto& t : threads_) {
    ThreadContext* ctx = t.get();
    ctx->loop().post([ctx, fn] { fn(*ctx); });
  }
}

bool Worker::admit(Frontend& fe) {
  uint32_t fe_max = fe.maxconn();
  if (fe_max && fe.counters().current() >= fe_max) return false;
  if (conns_.load(std::memory_order_relaxed) >= config_.global.maxconn) return false;
  fe.counters().enter();
  conns_.fetch_add(1, std::memory_order_relaxed);
  return true;
}

void Worker::release(Frontend& fe) {
  fe.counters().leave();
  conns_.fetch_sub(1, std::memory_order_relaxed);
  if (paused_listeners_.load(std::memory_order_relaxed) > 0 && !draining()) resume_listeners();
}

uint64_t Worker::buffer_waits() const {
  uint64_t n = 0;
  for (const auto& t : threads_) n += t->buffers().waits();
  return n;
}

int64_t Worker::pipes() const {
  int64_t n = 0;
  for (const auto& t : threads_) n += t->pipes_open();
  return n;
}

void Worker::note_fd_shortage(const std::string& what, int err) {
  fd_shortages_.fetch_add(1, std::memory_order_relaxed);
  uint64_t held_back = 0;
  if (!fd_shortage_log_.allow(EventLoop::monotonic_ms(), &held_back)) return;
  rlimit rl{};
  getrlimit(RLIMIT_NOFILE, &rl);
  log::error(
      "out of file descriptors: %s: %s (open-file limit %llu, maxconn %u%s); it waits for one "
      "and tries again; %llu more such error(s) since the previous line",
      what.c_str(), std::strerror(err), static_cast<unsigned long long>(rl.rlim_cur),
      config_.global.maxconn, err == ENFILE ? "; the system-wide limit fs.file-max is reached" : "",
      static_cast<unsigned long long>(held_back));
}

void Worker::resume_listeners() {
  paused_listeners_.store(0);
  for (size_t t = 0; t < threads_.size(); ++t) {
    auto* ls = &listeners_[t];
    threads_[t]->loop().post([this, ls] {
      if (draining()) return;
      for (auto& l : *ls) l->resume();
    });
  }
}

void Worker::report_start_failure(const std::string& reason) {
  // The master logs the reason, answers the reload with it and, at the first
  // start, stops with it; the worker's own stderr is the last resort.
  proto::Envelope failed;
  failed.mutable_failed()->set_reason(reason);
  if (!channel_.valid() || !channel_.send(std::move(failed))) {
    log::alert("worker generation %d cannot start: %s", generation_, reason.c_str());
  }
}

void Worker::on_channel_message(ipc::Message& msg) {
  switch (msg.env.body_case()) {
    case proto::Envelope::kDrain:
      start_drain("asked by the master");
      break;
    case proto::Envelope::kCommand: {
      // From the master CLI's @N prefix: the master CLI is an admin interface.
      proto::Envelope reply;
      reply.mutable_reply()->set_text(
          run_api_command(*this, ApiLevel::kAdmin, msg.env.command().line()));
      channel_.send(std::move(reply));
      break;
    }
    case proto::Envelope::kStop:
      log::notice("worker generation %d stopping now", generation_);
      stop_all();
      break;
    case proto::Envelope::BODY_NOT_SET:
      // From a newer master (a binary upgrade re-executed it): not for this worker.
      log::info("worker: ignoring a message this worker does not know (protocol %u)",
                msg.env.protocol());
      break;
    default:
      log::warning("worker: ignoring the master's %s message", ipc::body_name(msg.env));
  }
}

void Worker::on_channel_closed() {
  threads_[0]->loop().remove(channel_.fd());
  channel_.close();
  start_drain("the master is gone");
  release_listening_sockets();
}

void Worker::release_listening_sockets() {
  // No master will pass these sockets to a next generation, and while this
  // worker holds them a new master cannot bind the same ports. Once every
  // thread has stopped polling them (start_drain's posts run first), the last
  // thread accepts what waits in the backlogs, then closes them.
  auto left = std::make_shared<std::atomic<size_t>>(threads_.size());
  for (size_t t = 0; t < threads_.size(); ++t) {
    threads_[t]->loop().post([this, t, left] {
      if (left->fetch_sub(1) != 1) return;
      int accepted = 0;
      for (auto& l : listeners_[t]) accepted += l->accept_backlog();
      listen_fds_.clear();
      log::notice(
          "worker generation %d: accepted %d waiting connection(s) and closed its listening "
          "sockets; finishing the connections in flight",
          generation_, accepted);
    });
  }
}

void Worker::start_drain(const char* why) {
  if (draining_.exchange(true)) return;
  log::notice("worker generation %d draining (%s)", generation_, why);
  int64_t hard = config_.global.hard_stop_after;
  drain_deadline_ms_ = hard > 0 ? EventLoop::monotonic_ms() + hard : 0;
  for (size_t t = 0; t < threads_.size(); ++t) {
    ThreadContext* ctx = threads_[t].get();
    auto* ls = &listeners_[t];
    ctx->loop().post([ctx, ls] {
      for (auto& l : *ls) l->pause();
      ctx->drain_sessions();
    });
  }
  // The current generation answers the runtime API; a draining one only through
  // the master (@N).
  threads_[0]->loop().post([this] {
    for (auto& api : api_listeners_) api->stop();
  });
  // The next generation checks the servers now; this one stops probing them.
  for (auto& c : checkers_) {
    HealthChecker* hc = c.get();
    hc->thread().loop().post([hc] { hc->stop(); });
  }
  for (auto& a : agents_) {
    AgentChecker* ac = a.get();
    ac->thread().loop().post([ac] { ac->stop(); });
  }
  drain_timer_->set(threads_[0]->loop().now_ms() + 50);
}

void Worker::check_drained() {
  int64_t left = 0;
  for (auto& ctx : threads_) left += ctx->session_count();
  int64_t now = threads_[0]->loop().now_ms();
  if (left == 0) {
    log::notice("worker generation %d drained, exiting", generation_);
    stop_all();
    return;
  }
  if (drain_deadline_ms_ && now >= drain_deadline_ms_) {
    log::warning("worker generation %d: hard_stop_after reached with %lld connections left",
                 generation_, static_cast<long long>(left));
    stop_all();
    return;
  }
  drain_timer_->set(now + 50);
}

void Worker::stop_all() {
  // From here on nothing may resume listeners: the threads are going away.
  draining_.store(true);
  for (auto& ctx : threads_) ctx->loop().stop();
}

namespace {
// How long a new generation waits for the peers agent's snapshot before it
// reports Ready: when the master says the agent is up, and when it is not.
constexpr int64_t kSnapshotWaitMs = 10000;
constexpr int64_t kAbsentAgentWaitMs = 300;
// ... and when the agent does not answer at all (stopped, hung).
constexpr int64_t kSilentAgentWaitMs = 1500;
// How long an exiting worker waits for the agent to take its last changes.
constexpr int64_t kFinalFlushMs = 2000;
}  // namespace

int worker_main(int channel_fd) {
  log::set_process_tag("weir-worker");
  signal(SIGPIPE, SIG_IGN);
  ipc::Channel channel{UniqueFd(channel_fd)};
  net::set_cloexec(channel_fd);
  int generation = 0;
  std::string peers_dir;
  bool peers_ready = false;
  std::optional<Config> config;
  std::optional<std::vector<std::pair<std::string, UniqueFd>>> fds;
  proto::StateHandover inherited;  // from the previous generation (sent before the listeners)
  // Tells the master why this generation cannot start (it fails the start or
  // the reload with that line), or logs it when the master is gone.
  auto refuse_start = [&](const std::string& why) {
    proto::Envelope failed;
    failed.mutable_failed()->set_reason(why);
    if (!channel.send(std::move(failed))) {
      log::alert("worker generation %d cannot start: %s", generation, why.c_str());
    }
    return 1;
  };
  // Hello, Configuration, State, ListenerMap, in that order; the worker starts
  // once it has the last one.
  while (!fds) {
    std::optional<ipc::Message> m = channel.receive();
    if (!m) {
      log::alert("worker: lost the master before start-up completed: %s", channel.error().c_str());
      return 1;
    }
    proto::Envelope& env = m->env;
    switch (env.body_case()) {
      case proto::Envelope::kHello:
        generation = env.hello().generation();
        if (generation <= 0) return refuse_start("the master's hello names no generation");
        if (!env.hello().ticket_secret().empty())
          tls::set_ticket_secret(env.hello().ticket_secret());
        peers_dir = env.hello().peers_dir();
        peers_ready = env.hello().peers_ready();
        break;
      case proto::Envelope::kConfiguration: {
        LoadResult r =
            load_config_text(env.configuration().validated(), env.configuration().source_name());
        if (!r.config) {
          return refuse_start(r.errors.empty() ? "invalid configuration" : r.errors[0].to_string());
        }
        config = std::move(r.config);
        // Its writes to last-writer-wins data carry this node's number.
        stick::set_local_node(config->peers.local_id);
        break;
      }
      case proto::Envelope::kState:
        inherited = std::move(*env.mutable_state());
        break;
      case proto::Envelope::kListenerMap: {
        const auto& keys = env.listener_map().keys();
        if (static_cast<size_t>(keys.size()) != m->fds.size()) {
          return refuse_start("the master's listener map names " + std::to_string(keys.size()) +
                              " socket(s) but passed " + std::to_string(m->fds.size()));
        }
        fds.emplace();
        for (int i = 0; i < keys.size(); ++i) fds->emplace_back(keys[i], std::move(m->fds[i]));
        break;
      }
      case proto::Envelope::kStop:
        return 0;
      default:
        log::info("worker: ignoring the master's %s message before start-up", ipc::body_name(env));
    }
  }
  if (generation <= 0) return refuse_start("the master sent no hello before the listeners");
  if (!config) return refuse_start("the master sent no configuration before the listeners");
  if (fds->empty()) fds->emplace_back("", UniqueFd());  // a config with no listener
  std::unique_ptr<PeersLink> link;
  int rc = 0;
  {
    Worker worker(std::move(*config), generation, std::move(channel));
    worker.set_inherited_state(std::move(inherited));
    std::string error;
    if (!worker.init(std::move(*fds), &error)) {
      worker.report_start_failure(error);
      return 1;
    }
    if (!peers_dir.empty()) {
      // The tables of the generations before this one, from the peers agent,
      // before this generation serves (doc/stick-tables.md). Without an agent
      // (it is down), the worker serves with what it counts and catches up.
      // The agent also keeps the server states set at runtime.
      link = std::make_unique<PeersLink>(worker.config().stick_tables, peers_dir, generation);
      Worker* w = &worker;
      link->on_servers([w](proto::ServerRecords rs) {
        w->post_to_main([w, rs = std::move(rs)] { w->apply_server_records(rs); });
      });
      if (!link->start(&error)) {
        log::error("worker generation %d: no link to the peers agent: %s", generation,
                   error.c_str());
        link.reset();
      } else if (!link->wait_snapshot(peers_ready ? kSnapshotWaitMs : kAbsentAgentWaitMs,
                                      kSilentAgentWaitMs)) {
        log::warning(
            "worker generation %d: the peers agent sent no snapshot in time; serving with the "
            "tables as they are, and catching up when it does",
            generation);
      }
    }
    rc = worker.run();
    if (link) link->on_servers(nullptr);  // the worker goes before the link
  }
  // Every connection is closed: the last changes (conn_cur going back down)
  // reach the agent before the process goes.
  if (link) link->finish(kFinalFlushMs);
  return rc;
}

}  // namespace weir
