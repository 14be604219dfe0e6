#pragma once
// How a worker spends its open-file limit (RLIMIT_NOFILE): what a
// configuration needs besides its connections, what each connection costs, and
// so the largest global.maxconn that fits. The master uses it to raise the limit
// and log the outcome; every worker computes the same plan from the same
// configuration and the limit it inherits, and holds its pools to it, so that a
// client it accepted never finds the descriptor for its server connection
// missing.

#include <cstdint>

#include "common/config/config.h"

namespace weir {

// global.maxconn when the configuration does not set it, if the limit allows.
constexpr uint32_t kDefaultMaxconn = 100000;
// Runtime-API connections served at once per endpoint; more wait in its backlog.
constexpr uint32_t kApiConnectionsPerEndpoint = 10;

struct FdBudget {
  uint64_t limit = 0;              // the soft RLIMIT_NOFILE the plan was made for
  uint32_t maxconn = 0;            // effective global.maxconn; 0: the limit cannot hold even one
  uint32_t wanted = 0;             // the configured maxconn, else kDefaultMaxconn
  bool explicit_maxconn = false;   // global.maxconn was set in the configuration
  uint64_t reserved = 0;           // descriptors for everything but connections
  uint32_t idle_server_conns = 0;  // idle keep-alive server connections kept at most
  uint32_t pipes = 0;              // splice() pipes (two descriptors each) at most
  uint64_t needed = 0;             // descriptors that `maxconn` uses at most
  // An explicit maxconn was lowered to fit the limit.
  bool lowered() const { return explicit_maxconn && maxconn < wanted; }
};

// Descriptors a configuration needs apart from connections: standard streams,
// the master's channel, listeners, two per event loop, log targets, runtime-API
// connections, one per health check and agent, and a margin for short-lived
// ones (log reopening, files read at runtime).
uint64_t reserved_fds(const Config& cfg);
// The idle server connections and the pipes that `maxconn` connections may add.
uint32_t idle_server_conns_for(const Config& cfg, uint32_t maxconn);
uint32_t pipes_for(const Config& cfg, uint32_t maxconn);
// Every descriptor a worker running `cfg` with `maxconn` uses at most.
uint64_t fds_needed(const Config& cfg, uint32_t maxconn);
// The plan for `cfg` under a soft limit of `limit` descriptors: the configured
// maxconn (else kDefaultMaxconn), lowered to the largest value that fits.
FdBudget plan_fd_budget(const Config& cfg, uint64_t limit);

}  // namespace weir
