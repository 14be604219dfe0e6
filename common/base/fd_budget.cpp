#include "common/base/fd_budget.h"

#include <set>
#include <string>

namespace weir {
namespace {

// Descriptors open for a moment beside the counted ones: a log file being
// reopened, a map file read by the runtime API, a session closing while the
// next one is accepted in the same batch.
constexpr uint64_t kMargin = 32;

bool has_http_frontend(const Config& cfg) {
  for (const FrontendConfig& fe : cfg.frontends)
    if (fe.mode == Mode::kHttp) return true;
  return false;
}

bool splices(const Config& cfg) {
  if (cfg.global.splice_threshold == 0) return false;
  for (const FrontendConfig& fe : cfg.frontends)
    if (fe.mode == Mode::kTcp) return true;
  return false;
}

uint32_t quarter(uint32_t n) {
  return static_cast<uint32_t>((static_cast<uint64_t>(n) + 3) / 4);
}

}  // namespace

uint64_t reserved_fds(const Config& cfg) {
  const GlobalConfig& g = cfg.global;
  uint64_t n = 3 + 1;  // standard streams, the channel to the master
  std::set<std::string> listeners;
  for (const FrontendConfig& fe : cfg.frontends)
    for (const BindConfig& b : fe.binds) listeners.insert(b.key());
  n += listeners.size();
  n += g.runtime_api.size() * (1 + uint64_t{kApiConnectionsPerEndpoint});
  n += 2 * static_cast<uint64_t>(g.threads);  // epoll and eventfd of each event loop
  n += 2 * g.logs.size();                     // a target, and its copy while reopening
  for (const BackendConfig& be : cfg.backends) {
    for (const ServerConfig& sv : be.servers) {
      if (sv.check.enabled) ++n;
      if (sv.agent.enabled) ++n;
    }
  }
  return n + kMargin;
}

// Idle server connections outlive the client that used them (they wait for the
// next request of any client); a quarter of maxconn keeps reuse high while a
// client's next request is on its way.
uint32_t idle_server_conns_for(const Config& cfg, uint32_t maxconn) {
  return has_http_frontend(cfg) ? quarter(maxconn) : 0;
}

// A tcp connection moving bulk data borrows a pipe per direction; most
// connections are not bulk at the same moment (HAProxy's maxpipes is also a
// quarter of maxconn). A connection without a pipe copies through its buffer.
uint32_t pipes_for(const Config& cfg, uint32_t maxconn) {
  return splices(cfg) ? quarter(maxconn) : 0;
}

uint64_t fds_needed(const Config& cfg, uint32_t maxconn) {
  return reserved_fds(cfg) + 2 * static_cast<uint64_t>(maxconn) +
         idle_server_conns_for(cfg, maxconn) + 2 * static_cast<uint64_t>(pipes_for(cfg, maxconn));
}

FdBudget plan_fd_budget(const Config& cfg, uint64_t limit) {
  FdBudget b;
  b.limit = limit;
  b.explicit_maxconn = cfg.global.maxconn != 0;
  b.wanted = b.explicit_maxconn ? cfg.global.maxconn : kDefaultMaxconn;
  b.reserved = reserved_fds(cfg);
  // The largest maxconn <= wanted whose needs fit (fds_needed grows with maxconn).
  uint32_t lo = 0, hi = b.wanted;
  while (lo < hi) {
    uint32_t mid = lo + (hi - lo + 1) / 2;
    if (fds_needed(cfg, mid) <= limit) {
      lo = mid;
    } else {
      hi = mid - 1;
    }
  }
  b.maxconn = lo;
  b.idle_server_conns = idle_server_conns_for(cfg, lo);
  b.pipes = pipes_for(cfg, lo);
  b.needed = fds_needed(cfg, lo);
  return b;
}

}  // namespace weir
