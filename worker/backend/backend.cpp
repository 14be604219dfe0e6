#include "worker/backend/backend.h"

#include <algorithm>
#include <cassert>

#include "common/event/event_loop.h"
#include "common/stick/table.h"
#include "worker/backend/persistence.h"
#include "worker/observe/access_log.h"
#include "worker/worker.h"

namespace weir {

const char* admin_state_name(AdminState s) {
  switch (s) {
    case AdminState::kReady:
      return "ready";
    case AdminState::kDrain:
      return "drain";
    case AdminState::kMaint:
      return "maint";
  }
  return "?";
}

std::optional<AdminState> parse_admin_state(std::string_view name) {
  for (AdminState s : {AdminState::kReady, AdminState::kDrain, AdminState::kMaint}) {
    if (name == admin_state_name(s)) return s;
  }
  return std::nullopt;
}

const char* mode_name(Mode m) {
  return m == Mode::kHttp ? "http" : "tcp";
}

uint32_t weight_from_percent(uint32_t configured, uint32_t percent) {
  if (configured == 0 || percent == 0) return 0;
  const uint64_t w = uint64_t{configured} * percent / 100;
  return static_cast<uint32_t>(std::clamp<uint64_t>(w, 1, kMaxServerWeight));
}

// --- Server ------------------------------------------------------------------

Server::Server(const ServerConfig& cfg, int index, int threads, Backend* backend)
    : cfg_(cfg),
      index_(index),
      backend_(backend),
      addr_(cfg.addr),
      addr_text_(cfg.address_text),
      weight_(cfg.weight),
      maxconn_(cfg.maxconn),
      last_change_ms_(0),
      counters_(threads) {
  cookie_value_ = persist::server_cookie(backend->config().cookie, backend->name(), cfg);
  name_key_ = stick::name_id(cfg.name);
}

SockAddr Server::addr() const {
  std::lock_guard lock(addr_mu_);
  return addr_;
}

std::string Server::addr_text() const {
  std::lock_guard lock(addr_mu_);
  return addr_text_;
}

void Server::set_addr(const SockAddr& addr, std::string text) {
  std::lock_guard lock(addr_mu_);
  addr_ = addr;
  addr_text_ = std::move(text);
}

AdminState Server::set_admin_state(AdminState s, int64_t now_ms) {
  AdminState before = admin_.exchange(s, std::memory_order_relaxed);
  if (before != s) last_change_ms_.store(now_ms, std::memory_order_relaxed);
  return before;
}

// --- Backend -----------------------------------------------------------------
//
// Slots and queues. Every request or connection that reaches a server holds
// one slot of it (Server::counters().active, and one of the backend's) from
// acquire() or take_grant() until release_server(). A request that finds no free
// slot waits in a queue: the chosen server's own queue when the algorithm chose
// by the request (a hash), else the backend's queue, which any server may serve.
//
// Every way a request leaves a server (normal end, client abort, server error,
// retry on another server, queue timeout, server going down or deleted) goes
// through release_server() or cancel(), which under the backend's lock first
// gives the slot back, then serves the queues (dispatch). The invariants, checked
// by check_invariants() in debug builds after every change:
//  (1) active <= the server's effective maxconn whenever a slot is taken;
//  (2) active counts exactly the requests holding a slot: acquire/take_grant
//      take one, release_server gives it back, nothing else touches it;
//  (3) queued() equals the length of each queue, after aborts and timeouts;
//  (4) every release is followed by a dispatch;
//  (5) when the lock is released, no request waits in a server's queue while
//      that server is usable with a free slot, and none waits in the backend
//      queue while any usable server has a free slot;
//  (6) a server that is not usable (drain, maint, weight 0, deleted) or an
//      inactive backup never takes from the backend queue.

Backend::Backend(const BackendConfig& cfg, int threads)
    : cfg_(cfg),
      threads_(threads),
      fullconn_(cfg.fullconn),
      lb_def_(lb_algorithm_def(cfg.balance)),
      lb_(lb_def_.make(cfg.balance)),
      counters_(threads) {
  for (const ServerConfig& sc : cfg_.servers) {
    servers_.push_back(std::make_unique<Server>(sc, next_index_++, threads_, this));
  }
  rebuild_lb();
}

void Backend::rebuild_lb() {
  std::vector<Server*> all;
  for (auto& s : servers_) all.push_back(s.get());
  lb_->reset(all);
}

std::vector<Server*> Backend::servers() const {
  std::lock_guard lock(mu_);
  std::vector<Server*> out;
  out.reserve(servers_.size());
  for (auto& s : servers_) out.push_back(s.get());
  return out;
}

Server* Backend::find_server(std::string_view name) const {
  std::lock_guard lock(mu_);
  for (auto& s : servers_)
    if (s->name() == name) return s.get();
  return nullptr;
}

uint32_t Backend::effective_maxconn(const Server& s, int64_t now_ms) const {
  uint64_t m = s.maxconn();
  if (m == 0) return 0;
  if (s.cfg_.minconn > 0 && fullconn_ > 0 && s.cfg_.minconn < m) {
    // A dynamic limit: minconn while the backend is quiet, growing with its
    // load (requests in progress and waiting) to maxconn when it carries
    // fullconn requests.
    uint64_t load = static_cast<uint64_t>(std::max<int64_t>(
        0, counters_.current() + queued_.load(std::memory_order_relaxed) + server_queued_));
    m = std::min<uint64_t>(std::max<uint64_t>(m * load / fullconn_, s.cfg_.minconn), m);
  }
  if (s.ramp_start_ms_ >= 0 && s.cfg_.slowstart > 0) {
    // A thread's cached clock may be a little behind the one that started the
    // ramp: before its start counts as its start.
    int64_t elapsed = std::max<int64_t>(0, now_ms - s.ramp_start_ms_);
    if (elapsed < s.cfg_.slowstart) {
      m = std::max<uint64_t>(
          1, m * static_cast<uint64_t>(elapsed) / static_cast<uint64_t>(s.cfg_.slowstart));
    }
  }
  return static_cast<uint32_t>(m);
}

uint32_t Backend::effective_weight(const Server& s, int64_t now_ms) const {
  uint64_t w = s.weight();
  if (w > 0 && s.ramp_start_ms_ >= 0 && s.cfg_.slowstart > 0) {
    int64_t elapsed = std::max<int64_t>(0, now_ms - s.ramp_start_ms_);
    if (elapsed < s.cfg_.slowstart) {
      w = std::max<uint64_t>(
          1, (w * static_cast<uint64_t>(elapsed) + static_cast<uint64_t>(s.cfg_.slowstart) - 1) /
                 static_cast<uint64_t>(s.cfg_.slowstart));
    }
  }
  return static_cast<uint32_t>(w);
}

bool Backend::has_slot(const Server& s, int64_t now_ms) const {
  uint32_t m = effective_maxconn(s, now_ms);
  return m == 0 || s.counters_.current() < static_cast<int64_t>(m);
}

void Backend::collect_candidates(int64_t now_ms, const TriedServers* tried, bool need_slot) {
  candidates_.clear();
  // Backups serve only while no normal server is usable; then the first usable
  // backup, or all of them with all_backups.
  bool any_normal = false;
  for (auto& s : servers_) {
    if (!s->backup() && usable(*s)) {
      any_normal = true;
      break;
    }
  }
  for (auto& up : servers_) {
    Server& s = *up;
    if (!usable(s) || s.backup() == any_normal) continue;
    bool first_backup = !any_normal && !cfg_.all_backups;
    if (tried && tried->has(s.index())) {
      if (first_backup) break;
      continue;
    }
    if (need_slot && !has_slot(s, now_ms)) {
      if (first_backup) break;
      continue;
    }
    candidates_.push_back({&s, s.index(), effective_weight(s, now_ms), s.configured_weight(),
                           s.counters_.current() + s.queued()});
    if (first_backup) break;
  }
}

Server* Backend::pick(const LbRequest& req, const TriedServers& tried, int64_t now_ms,
                      bool need_slot) {
  collect_candidates(now_ms, &tried, need_slot);
  // When every candidate was already tried (retries > servers), try them again.
  if (candidates_.empty()) collect_candidates(now_ms, nullptr, need_slot);
  if (candidates_.empty()) return nullptr;
  return candidates_[lb_->pick(candidates_, req.has_hash, req.hash)].server;
}

void Backend::take_slot(Server* s) {
  s->counters_.enter();
  counters_.enter();
}

void Backend::enqueue(const QueueTicket& t, Server* target) {
  t->target = target;
  t->seq = next_seq_++;
  t->state = QueueEntry::State::kQueued;
  std::list<QueueTicket>& q = target ? target->queue_ : queue_;
  t->pos = q.insert(q.end(), t);
  if (target) ++server_queued_;
  std::atomic<int64_t>& n = target ? target->queued_ : queued_;
  std::atomic<int64_t>& max = target ? target->queue_max_ : queue_max_;
  int64_t len = n.fetch_add(1, std::memory_order_relaxed) + 1;
  if (len > max.load(std::memory_order_relaxed)) max.store(len, std::memory_order_relaxed);
}

void Backend::unlink(QueueEntry& e) {
  if (e.target) {
    e.target->queue_.erase(e.pos);
    e.target->queued_.fetch_sub(1, std::memory_order_relaxed);
    --server_queued_;
  } else {
    queue_.erase(e.pos);
    queued_.fetch_sub(1, std::memory_order_relaxed);
  }
}

void Backend::grant(const QueueTicket& t, Server* s) {
  unlink(*t);
  take_slot(s);
  t->state = QueueEntry::State::kGranted;
  t->granted = s;
  // The waiter learns it on its own thread. If it gave up meanwhile, its
  // cancel() (on that same thread, before this task runs) gave the slot back.
  t->loop->post([t] {
    if (t->waiter) t->waiter->on_server_granted();
  });
}

void Backend::dispatch(int64_t now_ms) {
  for (;;) {
    bool progress = false;
    for (auto& up : servers_) {
      Server* s = up.get();
      while (!s->queue_.empty() && usable(*s) && has_slot(*s, now_ms)) {
        QueueTicket head = s->queue_.front();
        grant(head, s);
        progress = true;
      }
    }
    while (!queue_.empty()) {
      Server* s = pick(LbRequest{}, TriedServers{}, now_ms, /*need_slot=*/true);
      if (!s) break;
      QueueTicket head = queue_.front();
      grant(head, s);
      progress = true;
    }
    if (!progress) return;
  }
}

void Backend::requeue_from(Server* s) {
  // Oldest first into the backend queue, keeping arrival order.
  while (!s->queue_.empty()) {
    QueueTicket t = s->queue_.front();
    unlink(*t);
    auto it = queue_.end();
    while (it != queue_.begin() && (*std::prev(it))->seq > t->seq) --it;
    t->target = nullptr;
    t->pos = queue_.insert(it, t);
    int64_t len = queued_.fetch_add(1, std::memory_order_relaxed) + 1;
    if (len > queue_max_.load(std::memory_order_relaxed)) {
      queue_max_.store(len, std::memory_order_relaxed);
    }
  }
}

void Backend::settle(int64_t now_ms) {
  // Limits move with the backend's load (minconn) and with time (slowstart), so
  // any change may open a slot to a waiter: serve the queues, then check.
  if (server_queued_ > 0 || queued_.load(std::memory_order_relaxed) > 0) dispatch(now_ms);
  check_invariants(now_ms);
}

void Backend::check_invariants([[maybe_unused]] int64_t now_ms) {
#ifndef NDEBUG
  assert(queued_.load() == static_cast<int64_t>(queue_.size()));  // (3)
  assert(counters_.current() >= 0);
  for (auto& up : servers_) {
    const Server& s = *up;
    assert(s.queued_.load() == static_cast<int64_t>(s.queue_.size()));  // (3)
    assert(s.counters_.current() >= 0);
    if (!s.queue_.empty() && usable(s)) assert(!has_slot(s, now_ms));  // (5)
  }
  if (!queue_.empty()) {
    collect_candidates(now_ms, nullptr, /*need_slot=*/true);
    assert(candidates_.empty());  // (5) and (6): only usable servers are candidates
  }
#endif
}

Backend::Acquire Backend::acquire(const LbRequest& req, const TriedServers& tried, Server* retry_on,
                                  LbWaiter* waiter, EventLoop* loop, int64_t now_ms,
                                  Server** server, QueueTicket* ticket) {
  std::lock_guard lock(mu_);
  *server = nullptr;
  // Older waiters first, should a limit have grown since the last release.
  if (server_queued_ > 0 || queued_.load(std::memory_order_relaxed) > 0) dispatch(now_ms);
  Acquire result = choose(req, tried, retry_on, waiter, loop, now_ms, server, ticket);
  settle(now_ms);
  return result;
}

Backend::Acquire Backend::choose(const LbRequest& req, const TriedServers& tried, Server* retry_on,
                                 LbWaiter* waiter, EventLoop* loop, int64_t now_ms, Server** server,
                                 QueueTicket* ticket) {
  auto take = [&](Server* s) {
    take_slot(s);
    *server = s;
    assert(effective_maxconn(*s, now_ms) == 0 ||
           s->counters_.current() <= effective_maxconn(*s, now_ms));  // (1)
    return Acquire::kServer;
  };
  auto wait_for = [&](Server* target) {
    auto t = std::make_shared<QueueEntry>();
    t->waiter = waiter;
    t->loop = loop;
    t->since_ms = now_ms;
    enqueue(t, target);
    *ticket = t;
    return Acquire::kQueued;
  };
  if (retry_on && !cfg_.redispatch && !retry_on->deleted() && usable(*retry_on)) {
    // No redispatch: a retry goes back to the same server.
    if (has_slot(*retry_on, now_ms)) return take(retry_on);
    if (!waiter) return Acquire::kQueueFull;
    return wait_for(retry_on);
  }
  if (!retry_on && (!req.stuck_cookie.empty() || req.stuck_key != 0)) {
    // Persistence: a stuck client keeps its server while it is up and not in
    // maint (drain too: no new users, the current ones stay).
    bool named_missing = false;
    Server* s = stuck_server(req, &named_missing);
    if (s && s->keeps_stuck()) {
      if (has_slot(*s, now_ms)) return take(s);
      const uint32_t maxqueue = s->cfg_.maxqueue;
      if (waiter && usable(*s) && (maxqueue == 0 || s->queued() < static_cast<int64_t>(maxqueue))) {
        return wait_for(s);
      }
      // Full: the algorithm finds it another server, as when it is down.
    } else if ((s || named_missing) && !cfg_.stick_redispatch) {
      return Acquire::kNoServer;
    }
  }
  if (lb_->deterministic(req.has_hash)) {
    // The request chose its server: wait for it when it is full, while its
    // queue has room; otherwise any server with a free slot.
    Server* s = pick(req, tried, now_ms, /*need_slot=*/false);
    if (!s) return Acquire::kNoServer;
    if (has_slot(*s, now_ms)) return take(s);
    uint32_t maxqueue = s->cfg_.maxqueue;
    if (waiter && (maxqueue == 0 || s->queued() < static_cast<int64_t>(maxqueue))) {
      return wait_for(s);
    }
    TriedServers others = tried;
    others.add(s->index());
    collect_candidates(now_ms, &others, /*need_slot=*/true);
    if (candidates_.empty()) return Acquire::kQueueFull;
    return take(candidates_[lb_->pick(candidates_, false, 0)].server);
  }
  if (Server* s = pick(req, tried, now_ms, /*need_slot=*/true)) return take(s);
  collect_candidates(now_ms, nullptr, /*need_slot=*/false);
  if (candidates_.empty()) return Acquire::kNoServer;
  if (!waiter) return Acquire::kQueueFull;
  return wait_for(nullptr);
}

Server* Backend::stuck_server(const LbRequest& req, bool* named_missing) const {
  if (!req.stuck_cookie.empty()) {
    for (auto& s : servers_)
      if (s->cookie_value() == req.stuck_cookie) return s.get();
  }
  if (req.stuck_key != 0) {
    for (auto& s : servers_)
      if (s->name_key() == req.stuck_key) return s.get();
    *named_missing = true;
  }
  return nullptr;
}

Server* Backend::take_grant(const QueueTicket& ticket) {
  std::lock_guard lock(mu_);
  if (ticket->state != QueueEntry::State::kGranted) return nullptr;
  ticket->state = QueueEntry::State::kDone;
  return ticket->granted;
}

bool Backend::cancel(const QueueTicket& ticket) {
  std::lock_guard lock(mu_);
  ticket->waiter = nullptr;
  int64_t now = EventLoop::monotonic_ms();
  switch (ticket->state) {
    case QueueEntry::State::kQueued:
      unlink(*ticket);
      ticket->state = QueueEntry::State::kDone;
      settle(now);
      return true;
    case QueueEntry::State::kGranted: {
      // Granted while giving up: the slot goes to the next waiter.
      ticket->state = QueueEntry::State::kDone;
      Server* s = ticket->granted;
      s->counters_.leave();
      counters_.leave();
      settle(now);  // (4)
      return false;
    }
    case QueueEntry::State::kDone:
      return false;
  }
  return false;
}

void Backend::release_server(Server* s) {
  std::lock_guard lock(mu_);
  s->counters_.leave();
  counters_.leave();
  settle(EventLoop::monotonic_ms());  // (4)
}

template <typename Change>
void Backend::change_server(Server* s, int64_t now_ms, Change&& change) {
  std::lock_guard lock(mu_);
  const bool was_usable = usable(*s);
  change();
  // A server that comes back into use ramps up again (slowstart), whatever
  // brought it back: an operator, its checks, its agent or the end of NOLB.
  if (!was_usable && usable(*s) && s->cfg_.slowstart > 0) s->ramp_start_ms_ = now_ms;
  if (!usable(*s)) requeue_from(s);
  settle(now_ms);
  if (on_change_) on_change_();
}

void Backend::set_server_state(Server* s, AdminState st, int64_t now_ms) {
  change_server(s, now_ms, [&] { s->set_admin_state(st, now_ms); });
}

void Backend::set_server_weight(Server* s, uint32_t w, int64_t now_ms) {
  change_server(s, now_ms, [&] {
    s->set_weight(w);
    rebuild_lb();  // the consistent-hash ring follows the weights
  });
}

void Backend::set_server_up(Server* s, bool up, int64_t now_ms) {
  change_server(s, now_ms, [&] {
    s->up_.store(up, std::memory_order_relaxed);
    s->last_change_ms_.store(now_ms, std::memory_order_relaxed);
  });
}

void Backend::set_server_nolb(Server* s, bool nolb, int64_t now_ms) {
  change_server(s, now_ms, [&] {
    s->nolb_.store(nolb, std::memory_order_relaxed);
    s->last_change_ms_.store(now_ms, std::memory_order_relaxed);
  });
}

void Backend::set_server_agent_down(Server* s, bool down, int64_t now_ms) {
  change_server(s, now_ms, [&] {
    s->agent_down_.store(down, std::memory_order_relaxed);
    s->last_change_ms_.store(now_ms, std::memory_order_relaxed);
  });
}

void Backend::set_server_maxconn(Server* s, uint32_t n) {
  std::lock_guard lock(mu_);
  s->set_maxconn(n);
  settle(EventLoop::monotonic_ms());
}

Server* Backend::add_server(const ServerConfig& cfg, AdminState state, int64_t now_ms,
                            std::string* error) {
  std::lock_guard lock(mu_);
  for (auto& s : servers_) {
    if (s->name() == cfg.name) {
      *error = "backend '" + cfg_.name + "' already has a server named '" + cfg.name + "'";
      return nullptr;
    }
  }
  auto server = std::make_unique<Server>(cfg, next_index_++, threads_, this);
  if (cfg.tls.enabled && default_tls_) server->set_tls(default_tls_, threads_);
  server->set_admin_state(state, now_ms);
  if (server->cfg_.slowstart > 0 && state == AdminState::kReady) server->ramp_start_ms_ = now_ms;
  Server* raw = server.get();
  servers_.push_back(std::move(server));
  rebuild_lb();
  settle(now_ms);
  return raw;
}

bool Backend::delete_server(std::string_view name, std::string* error) {
  std::lock_guard lock(mu_);
  for (auto it = servers_.begin(); it != servers_.end(); ++it) {
    Server* s = it->get();
    if (s->name() != name) continue;
    if (s->admin_state() != AdminState::kMaint) {
      *error = "server is in state " + std::string(admin_state_name(s->admin_state())) +
               "; put it in maint first ('set server " + cfg_.name + "/" + s->name() +
               " state maint')";
      return false;
    }
    // Under mu_ with the server in maint, nothing can acquire it any more, so
    // a zero here stays zero.
    if (int64_t n = s->counters().current(); n > 0) {
      *error = "server still has " + std::to_string(n) +
               " request(s) or connection(s); wait for them to end or use "
               "'shutdown sessions server " +
               cfg_.name + "/" + s->name() + "'";
      return false;
    }
    requeue_from(s);  // none expected: maint already moved them
    s->deleted_.store(true, std::memory_order_relaxed);
    retired_.push_back(std::move(*it));
    servers_.erase(it);
    rebuild_lb();
    settle(EventLoop::monotonic_ms());
    return true;
  }
  *error = "backend '" + cfg_.name + "' has no server named '" + std::string(name) + "'";
  return false;
}

void fill_access_log_counts(AccessLogEntry& e, const Worker& w, Frontend& fe, Backend* be,
                            Server* server) {
  e.server_ptr = server;
  e.actconn = w.current_connections();
  e.feconn = fe.counters().current();
  e.beconn = be ? be->counters().current() : 0;
  e.srvconn = server ? server->counters().current() : 0;
  e.srv_queue = server ? server->queued() : 0;
  e.be_queue = be ? be->queued() : 0;
}

}  // namespace weir
