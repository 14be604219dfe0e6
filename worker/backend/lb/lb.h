#pragma once
// Load-balancing algorithms. Each is a small class behind LbAlgorithm; the
// Backend (worker/backend/backend.h) decides which servers are candidates for a pick
// (usable, backup rules, free slot, not already tried) and calls pick() with
// its lock held, so an algorithm needs no locking of its own.

#include <cstdint>
#include <memory>
#include <span>
#include <string_view>
#include <vector>

#include "common/config/config.h"

namespace weir {

class Server;

// One candidate of a pick.
struct LbCandidate {
  Server* server;
  int index;          // the server's stable index (Server::index())
  uint32_t weight;    // effective weight (slowstart applied), >= 1
  uint32_t static_w;  // configured weight (static-rr)
  int64_t load;       // requests or connections active + queued on it
};

class LbAlgorithm {
 public:
  virtual ~LbAlgorithm() = default;
  // The server list changed: `all` is every server in order, usable or not.
  virtual void reset(const std::vector<Server*>& all) { (void)all; }
  // Chooses among `c` (never empty); returns an index into c. `hash` is the
  // request's key for hashing algorithms (has_hash false: none was found).
  virtual size_t pick(std::span<const LbCandidate> c, bool has_hash, uint64_t hash) = 0;
  // Does this pick follow the request (a hash) rather than the servers' load?
  // Such a choice waits in the chosen server's queue when it is full.
  virtual bool deterministic(bool has_hash) const {
    (void)has_hash;
    return false;
  }
};

std::unique_ptr<LbAlgorithm> make_lb_algorithm(const BalanceConfig& cfg);

// The algorithm's name as the configuration writes it (`balance:`), for
// show stat's algo column and show backend.
const char* balance_name(Balance b);

// The 64-bit hash used for request keys and the consistent-hash ring.
uint64_t lb_hash(std::string_view data);

// The part of a request target that `balance: uri` hashes.
std::string_view uri_hash_input(std::string_view target, int depth, bool whole);

}  // namespace weir
