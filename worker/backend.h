#pragma once
// Runtime backends and servers of one worker generation, shared by its threads.

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/config.h"
#include "worker/counters.h"
#include "worker/error_capture.h"

namespace weir {

// Administrative state of a server, set by the operator.
enum class AdminState : uint8_t {
  kReady,  // takes traffic
  kDrain,  // no new traffic from the load-balancing algorithm; requests in flight finish
  kMaint,  // no traffic at all
};

const char* admin_state_name(AdminState s);

class Server {
 public:
  Server(const ServerConfig& cfg, int index, int threads);
  const std::string& name() const { return cfg_.name; }
  // The address connections go to (changed by `set server addr`).
  SockAddr addr() const;
  std::string addr_text() const;
  void set_addr(const SockAddr& addr, std::string text);
  // Current weight (the configured one until the runtime API changes it).
  uint32_t weight() const { return weight_.load(std::memory_order_relaxed); }
  uint32_t configured_weight() const { return cfg_.weight; }
  void set_weight(uint32_t w) { weight_.store(w, std::memory_order_relaxed); }
  // Most requests (http) or connections (tcp) at once; 0: no limit.
  uint32_t maxconn() const { return maxconn_.load(std::memory_order_relaxed); }
  void set_maxconn(uint32_t n) { maxconn_.store(n, std::memory_order_relaxed); }
  AdminState admin_state() const { return admin_.load(std::memory_order_relaxed); }
  void set_admin_state(AdminState s, int64_t now_ms);
  int64_t last_change_ms() const { return last_change_ms_.load(std::memory_order_relaxed); }
  // May the load-balancing algorithm send it new traffic?
  bool selectable() const { return admin_state() == AdminState::kReady && weight() > 0; }
  // Has it a free slot under maxconn?
  bool has_slot() const {
    uint32_t m = maxconn();
    return m == 0 || counters_.current() < static_cast<int64_t>(m);
  }
  int index() const { return index_; }
  TrafficCounters& counters() { return counters_; }
  // Removed by `del server`: kept allocated (sessions may still name it in logs)
  // but no longer listed.
  bool deleted() const { return deleted_.load(std::memory_order_relaxed); }
  void mark_deleted() { deleted_.store(true, std::memory_order_relaxed); }

 private:
  ServerConfig cfg_;
  int index_;
  mutable std::mutex addr_mu_;
  SockAddr addr_;
  std::string addr_text_;
  std::atomic<uint32_t> weight_;
  std::atomic<uint32_t> maxconn_;
  std::atomic<AdminState> admin_{AdminState::kReady};
  std::atomic<int64_t> last_change_ms_;
  std::atomic<bool> deleted_{false};
  TrafficCounters counters_;
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

// A load-balancing algorithm. pick() is called under the backend's lock.
class LbAlgorithm {
 public:
  virtual ~LbAlgorithm() = default;
  // The next server, avoiding `tried` when another choice exists; nullptr when
  // no server can take traffic.
  virtual Server* pick(const TriedServers& tried) = 0;
};

// Smooth weighted round robin: each pick adds every server's weight to its
// running score and takes the highest, then subtracts the total from it. Picks
// are spread evenly (weights 5,1,1 give a a b a c a a, not a a a a a b c).
class SmoothRoundRobin final : public LbAlgorithm {
 public:
  explicit SmoothRoundRobin(std::vector<Server*> servers);
  Server* pick(const TriedServers& tried) override;

 private:
  std::vector<Server*> servers_;
  std::vector<int64_t> current_;
};

class Backend {
 public:
  Backend(const BackendConfig& cfg, int threads);
  const BackendConfig& config() const { return cfg_; }
  const std::string& name() const { return cfg_.name; }
  Mode mode() const { return cfg_.mode; }
  const Timeouts& timeouts() const { return cfg_.timeouts; }
  int retries() const { return cfg_.retries; }
  // The servers listed now, in order (a copy: the list changes with add/del server).
  std::vector<Server*> servers() const;
  TrafficCounters& counters() { return counters_; }

  // The last invalid response from one of its servers.
  ErrorCapture& errors() { return errors_; }

  // Chooses a server for a new request or connection and takes one of its
  // slots (counted in its and the backend's `active`); nullptr when no server
  // can take it. Thread-safe. Every acquired server is given back once with
  // release_server().
  Server* acquire_server(const TriedServers& tried);
  void release_server(Server* s);
  Server* find_server(std::string_view name) const;

  // Runtime changes to the server list (runtime API, thread 0).
  // Adds a server; false with *error when the name is taken.
  Server* add_server(const ServerConfig& cfg, AdminState state, int64_t now_ms, std::string* error);
  // Removes a server that is in maint with no request or connection left;
  // false with *error otherwise.
  bool delete_server(std::string_view name, std::string* error);

 private:
  void rebuild_lb();  // with lb_mu_ held
  BackendConfig cfg_;
  int threads_;
  mutable std::mutex lb_mu_;  // guards servers_, retired_, next_index_ and lb_
  std::vector<std::unique_ptr<Server>> servers_;
  std::vector<std::unique_ptr<Server>> retired_;  // deleted at runtime
  int next_index_ = 0;
  std::unique_ptr<LbAlgorithm> lb_;
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

 private:
  FrontendConfig cfg_;
  Backend* backend_;
  TrafficCounters counters_;
  std::atomic<uint32_t> maxconn_;
  ErrorCapture errors_;
};

}  // namespace weir
