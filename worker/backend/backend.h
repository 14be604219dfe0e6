#pragma once
// Runtime backends and servers of one worker generation, shared by its threads.

#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/config/config.h"
#include "worker/backend/counters.h"
#include "worker/backend/lb/lb.h"
#include "worker/observe/error_capture.h"
#include "worker/tls/tls.h"

namespace weir {

// Administrative state of a server, set by the operator.
enum class AdminState : uint8_t {
  kReady,  // takes traffic
  kDrain,  // no new traffic from the load-balancing algorithm; requests in flight finish
  kMaint,  // no traffic at all
};

const char* admin_state_name(AdminState s);
// The state an admin_state_name() names ("ready", "drain", "maint"); nullopt
// for any other word.
std::optional<AdminState> parse_admin_state(std::string_view name);
// "http" or "tcp".
const char* mode_name(Mode m);

// The largest weight a server can have, and the largest percentage
// `set server ... weight N%` and an agent's `N%` take.
constexpr uint32_t kMaxServerWeight = 256;
constexpr uint32_t kMaxWeightPercent = 100000;

// `percent`% of a server's configured weight, as `set server ... weight N%` and an
// agent's `N%` set it: rounded down, at most 256, but at least 1 when neither is 0,
// so that a small percentage slows a server down and only 0% takes it out of rotation.
uint32_t weight_from_percent(uint32_t configured, uint32_t percent);

class Backend;
class EventLoop;

class Server {
 public:
  Server(const ServerConfig& cfg, int index, int threads, Backend* backend);
  const std::string& name() const { return cfg_.name; }
  const ServerConfig& config() const { return cfg_; }
  Backend* backend() const { return backend_; }
  // The address connections go to (changed by `set server addr`).
  SockAddr addr() const;
  std::string addr_text() const;
  void set_addr(const SockAddr& addr, std::string text);
  // Current weight (the configured one until the runtime API changes it).
  uint32_t weight() const { return weight_.load(std::memory_order_relaxed); }
  uint32_t configured_weight() const { return cfg_.weight; }
  // Most requests (http) or connections (tcp) at once; 0: no limit.
  uint32_t maxconn() const { return maxconn_.load(std::memory_order_relaxed); }
  AdminState admin_state() const { return admin_.load(std::memory_order_relaxed); }
  int64_t last_change_ms() const { return last_change_ms_.load(std::memory_order_relaxed); }
  bool backup() const { return cfg_.backup; }
  // Its value for the backend's cookie persistence, and the id of its name in
  // stick tables' server_key (stick::name_id).
  const std::string& cookie_value() const { return cookie_value_; }
  uint32_t name_key() const { return name_key_; }
  // May a client that sticks to it (a cookie, a stick table) still come: up,
  // neither in maint nor deleted. Drain, NOLB and weight 0 keep stuck clients.
  bool keeps_stuck() const { return admin_state() != AdminState::kMaint && up() && !deleted(); }
  // May the load-balancing algorithm send it new traffic (ready, up, weight > 0)?
  bool selectable() const {
    return admin_state() == AdminState::kReady && up() && !nolb() && weight() > 0 && !deleted();
  }
  // Health checks answered 404 with disable_on_404: alive, but no new traffic.
  bool nolb() const { return nolb_.load(std::memory_order_relaxed); }
  // Operational state: the health checks say up (always, without checks) and
  // no agent said down.
  bool up() const { return check_up() && !agent_down(); }
  // What the active (and passive) checks alone say.
  bool check_up() const { return up_.load(std::memory_order_relaxed); }
  // The agent answered down, fail or stopped (until it answers up).
  bool agent_down() const { return agent_down_.load(std::memory_order_relaxed); }
  // What the last health check found, for show stat (empty: not checked).
  struct CheckStatus {
    std::string status;  // L4OK, L4CON, L4TOUT, L6OK, L6RSP, L6TOUT, L7OK, L7OKC, L7STS,
                         // L7TOUT, L7RSP
    int code = 0;        // http status of the last check, 0 when none
    int64_t duration_ms = -1;
    std::string description;  // "Layer7 wrong status: 503"
    int health = 0;           // consecutive successes (up) or failures (down) toward rise/fall
    uint64_t failed = 0;      // failed checks (chkfail)
    uint64_t down_transitions = 0;  // UP -> DOWN transitions (chkdown)
    int64_t down_since_ms = -1;     // while down
    int64_t downtime_ms = 0;        // total time spent down before down_since_ms
  };
  CheckStatus check_status() const {
    std::lock_guard lock(check_mu_);
    return check_;
  }
  // What the last agent probe found (empty status: no agent, or not probed yet).
  struct AgentStatus {
    std::string status;  // L4OK, L4CON, L4TOUT, L7RSP
    int64_t duration_ms = -1;
    std::string description;  // the agent's reply, or why there was none
  };
  AgentStatus agent_status() const {
    std::lock_guard lock(check_mu_);
    return agent_;
  }
  // Passive checks (observe: layer4|layer7): the outcome of a connection
  // attempt (layer7 false) or a response (layer7 true) in live traffic, from
  // any thread. A failure counts toward error_limit (with the check status it
  // stands for, L4CON, L7STS, ..., and a description); a success resets the
  // count. Costs one branch when the server is not observed.
  void observe_result(bool failed, bool layer7, const char* status = "", const char* what = "");
  int index() const { return index_; }
  TrafficCounters& counters() { return counters_; }
  // Requests waiting in this server's own queue now, and the most ever.
  int64_t queued() const { return queued_.load(std::memory_order_relaxed); }
  int64_t queue_max() const { return queue_max_.load(std::memory_order_relaxed); }
  // Removed by `del server`: kept allocated (sessions may still name it in logs)
  // but no longer listed.
  bool deleted() const { return deleted_.load(std::memory_order_relaxed); }
  // TLS toward this server; null: plain TCP. Set before traffic starts.
  const tls::BackContext* tls() const { return tls_.get(); }
  void set_tls(std::shared_ptr<const tls::BackContext> ctx, int threads) {
    tls_ = std::move(ctx);
    tls_sessions_.clear();
    for (int i = 0; i < threads + 1; ++i)
      tls_sessions_.push_back(std::make_unique<tls::SessionSlot>());
  }
  // The session a thread offers on its next connection (`threads` is the
  // health checks' own slot).
  tls::SessionSlot* tls_session(int thread) const {
    return tls_sessions_[static_cast<size_t>(thread)].get();
  }

 private:
  friend class Backend;  // the setters below keep the backend's queues right
  void set_weight(uint32_t w) { weight_.store(w, std::memory_order_relaxed); }
  void set_maxconn(uint32_t n) { maxconn_.store(n, std::memory_order_relaxed); }
  // Returns the previous state.
  AdminState set_admin_state(AdminState s, int64_t now_ms);

  friend class HealthChecker;  // records check results
  friend class AgentChecker;
  friend class Worker;  // attaches the checker
  ServerConfig cfg_;
  int index_;
  Backend* backend_;
  std::string cookie_value_;
  uint32_t name_key_;
  std::atomic<bool> up_{true};
  std::atomic<bool> agent_down_{false};
  AgentStatus agent_;                                   // under check_mu_
  std::atomic<int> observed_errors_{0};                 // consecutive, for observe
  std::atomic<class HealthChecker*> checker_{nullptr};  // acts on observe's error_limit
  std::atomic<bool> nolb_{false};
  mutable std::mutex check_mu_;
  CheckStatus check_;
  mutable std::mutex addr_mu_;
  SockAddr addr_;
  std::string addr_text_;
  std::atomic<uint32_t> weight_;
  std::atomic<uint32_t> maxconn_;
  std::atomic<AdminState> admin_{AdminState::kReady};
  std::atomic<int64_t> last_change_ms_;
  std::atomic<bool> deleted_{false};
  std::atomic<int64_t> queued_{0};
  std::atomic<int64_t> queue_max_{0};
  TrafficCounters counters_;
  std::shared_ptr<const tls::BackContext> tls_;
  std::vector<std::unique_ptr<tls::SessionSlot>> tls_sessions_;
  // Under the backend's lock:
  std::list<std::shared_ptr<struct QueueEntry>> queue_;  // its own waiters, oldest first
  int64_t ramp_start_ms_ = -1;                           // slowstart began here; -1: none
};

// Servers already tried for one request, so that a retry moves on.
struct TriedServers {
  uint64_t bits[4] = {};  // the first 256 servers are tracked exactly; beyond, best effort
  void add(int i) {
    if (i < 256) bits[i / 64] |= uint64_t{1} << (i % 64);
  }
  bool has(int i) const { return i < 256 && (bits[i / 64] >> (i % 64)) & 1; }
  void clear() { bits[0] = bits[1] = bits[2] = bits[3] = 0; }
};

// A session that can wait in a queue for a server slot.
class LbWaiter {
 public:
  // A slot was granted (called on the waiter's own thread): take it with
  // Backend::take_grant().
  virtual void on_server_granted() = 0;

 protected:
  ~LbWaiter() = default;
};

// One request waiting in a server's or a backend's queue. Shared between the
// waiting session and the queue; every field is guarded by the backend's lock.
struct QueueEntry {
  enum class State : uint8_t {
    kQueued,   // in a queue
    kGranted,  // a slot on `granted` is reserved for it; the waiter has been told
    kDone,     // taken, cancelled or timed out
  };
  LbWaiter* waiter = nullptr;  // cleared when the session gives up
  EventLoop* loop = nullptr;   // the waiter's thread
  Server* target = nullptr;    // waiting for this server; nullptr: any server of the backend
  Server* granted = nullptr;
  State state = State::kQueued;
  uint64_t seq = 0;  // arrival order, across the backend's and its servers' queues
  int64_t since_ms = 0;
  std::list<std::shared_ptr<QueueEntry>>::iterator pos;
};
using QueueTicket = std::shared_ptr<QueueEntry>;

class Backend {
 public:
  Backend(const BackendConfig& cfg, int threads);
  const BackendConfig& config() const { return cfg_; }
  // The registered algorithm of `balance` (what a request's key is made of).
  const LbAlgorithmDef& lb_def() const { return lb_def_; }
  const std::string& name() const { return cfg_.name; }
  Mode mode() const { return cfg_.mode; }
  const Timeouts& timeouts() const { return cfg_.timeouts; }
  int retries() const { return cfg_.retries; }
  // The backend's `tls:` built once: what servers added at runtime get.
  const std::shared_ptr<const tls::BackContext>& default_tls() const { return default_tls_; }
  void set_default_tls(std::shared_ptr<const tls::BackContext> c) { default_tls_ = std::move(c); }
  // The servers listed now, in order (a copy: the list changes with add/del server).
  std::vector<Server*> servers() const;
  TrafficCounters& counters() { return counters_; }
  // Requests waiting in the backend's own queue (for any server) now, and the most ever.
  int64_t queued() const { return queued_.load(std::memory_order_relaxed); }
  int64_t queue_max() const { return queue_max_.load(std::memory_order_relaxed); }
  // Backend fullconn in effect (configured, or derived from the frontends).
  void set_fullconn(uint32_t n) { fullconn_ = n; }
  uint32_t fullconn() const { return fullconn_; }

  // The last invalid response from one of its servers.
  ErrorCapture& errors() { return errors_; }

  enum class Acquire {
    kServer,     // *server holds a slot for the request
    kQueued,     // *ticket waits in a queue; the waiter is told when a slot is granted
    kNoServer,   // no server can take traffic at all: answer 503 at once
    kQueueFull,  // the chosen server's queue is full and no other server has a free slot
  };
  // Chooses a server for a new request (or connection) and takes one of its
  // slots, or queues it. `retry_on`: a retry without redispatch goes back to
  // this server. Thread-safe.
  Acquire acquire(const LbRequest& req, const TriedServers& tried, Server* retry_on,
                  LbWaiter* waiter, EventLoop* loop, int64_t now_ms, Server** server,
                  QueueTicket* ticket);
  // After on_server_granted(): the server whose slot is now the request's, or
  // nullptr when the ticket is no longer granted (it timed out meanwhile).
  Server* take_grant(const QueueTicket& ticket);
  // The request stops waiting (queue timeout, client gone). A slot granted in the
  // meantime is given back. Returns true when it was still queued.
  bool cancel(const QueueTicket& ticket);
  // Gives back a slot taken by acquire() or take_grant(), then serves the queues.
  void release_server(Server* s);

  Server* find_server(std::string_view name) const;
  // Runtime changes (runtime API). Each serves the queues as needed, moving
  // waiters off a server that can no longer take them.
  void set_server_state(Server* s, AdminState st, int64_t now_ms);
  void set_server_weight(Server* s, uint32_t w, int64_t now_ms);
  void set_server_maxconn(Server* s, uint32_t n);
  // Health checks mark a server up or down; waiters of a server going down move
  // to the backend's queue.
  void set_server_up(Server* s, bool up, int64_t now_ms);
  void set_server_nolb(Server* s, bool nolb, int64_t now_ms);
  // The agent says down (true) or up again (false).
  void set_server_agent_down(Server* s, bool down, int64_t now_ms);
  // Called (on the changing thread, backend lock held) after every change of a
  // server's admin state, weight, health or NOLB flag; the worker uses it to
  // report the new states to the master at once.
  void set_change_hook(std::function<void()> hook) { on_change_ = std::move(hook); }
  // Adds a server; nullptr with *error when the name is taken.
  Server* add_server(const ServerConfig& cfg, AdminState state, int64_t now_ms, std::string* error);
  // Removes a server that is in maint with no request or connection left (and
  // none waiting for it); false with *error otherwise.
  bool delete_server(std::string_view name, std::string* error);

  // The limits in effect at `now_ms` (maxconn with minconn/fullconn and
  // slowstart applied; 0: no limit), and the weight the algorithm uses.
  uint32_t effective_maxconn(const Server& s, int64_t now_ms) const;
  uint32_t effective_weight(const Server& s, int64_t now_ms) const;

 private:
  // All with mu_ held.
  bool usable(const Server& s) const { return s.selectable(); }
  bool has_slot(const Server& s, int64_t now_ms) const;
  // Servers the algorithm may use: usable normal servers, or else the backups.
  void collect_candidates(int64_t now_ms, const TriedServers* tried, bool need_slot);
  Server* pick(const LbRequest& req, const TriedServers& tried, int64_t now_ms, bool need_slot);
  void take_slot(Server* s);
  void enqueue(const QueueTicket& t, Server* target);
  void unlink(QueueEntry& e);
  void grant(const QueueTicket& t, Server* s);
  // Gives free slots to waiters, oldest first, until none can be served.
  void dispatch(int64_t now_ms);
  // Every runtime change of a server (state, weight, health, NOLB, agent):
  // takes the lock, applies `change`, then starts the slowstart ramp of a server
  // that became usable, moves the waiters of one that stopped being usable,
  // serves the queues and calls the change hook.
  template <typename Change>
  void change_server(Server* s, int64_t now_ms, Change&& change);
  // Waiters of a server that can no longer take traffic go to the backend queue.
  void requeue_from(Server* s);
  void rebuild_lb();
  void check_invariants(int64_t now_ms);
  // Serves the queues when a change may have opened a slot, then checks.
  void settle(int64_t now_ms);
  // The server a request sticks to (its cookie, else its name); *named_missing
  // when a name matches no server.
  Server* stuck_server(const LbRequest& req, bool* named_missing) const;
  Acquire choose(const LbRequest& req, const TriedServers& tried, Server* retry_on,
                 LbWaiter* waiter, EventLoop* loop, int64_t now_ms, Server** server,
                 QueueTicket* ticket);

  BackendConfig cfg_;
  int threads_;
  uint32_t fullconn_ = 0;
  mutable std::mutex mu_;  // guards the server list, queues and the algorithm
  std::vector<std::unique_ptr<Server>> servers_;
  std::shared_ptr<const tls::BackContext> default_tls_;
  std::vector<std::unique_ptr<Server>> retired_;  // deleted at runtime
  int next_index_ = 0;
  uint64_t next_seq_ = 0;
  const LbAlgorithmDef& lb_def_;
  std::unique_ptr<LbAlgorithm> lb_;
  std::function<void()> on_change_;
  std::vector<LbCandidate> candidates_;  // scratch for one pick
  std::list<QueueTicket> queue_;         // waiting for any server, oldest first
  std::atomic<int64_t> queued_{0};
  std::atomic<int64_t> queue_max_{0};
  int64_t server_queued_ = 0;  // entries in all the servers' own queues
  TrafficCounters counters_;
  ErrorCapture errors_;
};

class Frontend {
 public:
  Frontend(const FrontendConfig& cfg, Backend* backend, int threads)
      : cfg_(cfg), backend_(backend), counters_(threads), maxconn_(cfg.maxconn) {}
  const FrontendConfig& config() const { return cfg_; }
  const std::string& name() const { return cfg_.name; }
  Mode mode() const { return cfg_.mode; }
  Backend* default_backend() const { return backend_; }
  TrafficCounters& counters() { return counters_; }
  // The last malformed request received.
  ErrorCapture& errors() { return errors_; }
  // Connections currently open on this frontend (for maxconn): counters().current().
  // 0: no frontend limit. Starts at the configured value; the runtime API changes it.
  uint32_t maxconn() const { return maxconn_.load(std::memory_order_relaxed); }
  void set_maxconn(uint32_t n) { maxconn_.store(n, std::memory_order_relaxed); }
  // TLS handshakes that failed on this frontend's binds (any thread).
  void count_tls_failure() { tls_failures_.fetch_add(1, std::memory_order_relaxed); }
  uint64_t tls_failures() const { return tls_failures_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> tls_failures_{0};
  FrontendConfig cfg_;
  Backend* backend_;
  TrafficCounters counters_;
  std::atomic<uint32_t> maxconn_;
  ErrorCapture errors_;
};

struct AccessLogEntry;
class Worker;
// The server, and the connection and queue counts, of an access-log line.
void fill_access_log_counts(AccessLogEntry& e, const Worker& w, Frontend& fe, Backend* be,
                            Server* server);

}  // namespace weir
