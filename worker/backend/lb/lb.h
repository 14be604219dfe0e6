#pragma once
// Load-balancing algorithms. Each is a small class behind LbAlgorithm, in a file
// of its own under worker/backend/lb/, that registers itself (an LbAlgorithmDef,
// common/config/balance.h); the Backend (worker/backend/backend.h) decides which
// servers are candidates for a pick (usable, backup rules, free slot, not
// already tried) and calls pick() with its lock held, so an algorithm needs no
// locking of its own. Hashing algorithms turn the request's key into a server
// through a HashPicker, chosen by `hash_type` and registered the same way.

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/base/address.h"
#include "common/base/registry.h"
#include "common/config/balance.h"
#include "worker/http/query_string.h"

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

// What the request offers for hashing (balance: source, uri, url_param, hdr).
struct LbRequest {
  bool has_hash = false;
  uint64_t hash = 0;
  // Persistence (worker/backend/persistence.h): the server the client sticks to,
  // by a cookie's value (looked at first; empty: none; the view must outlive
  // every acquire() of the request), or by the id of its name a stick table's
  // server_key holds (stick::name_id; 0: none).
  std::string_view stuck_cookie;
  uint32_t stuck_key = 0;
  // A request whose key hashes to h.
  static LbRequest hashed(uint64_t h) {
    LbRequest r;
    r.has_hash = true;
    r.hash = h;
    return r;
  }
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

// How a hashing algorithm turns a key's hash into one of the candidates.
class HashPicker {
 public:
  virtual ~HashPicker() = default;
  // The server list changed: `all` is every server in order, usable or not.
  virtual void reset(const std::vector<Server*>& all) { (void)all; }
  // The candidate for `hash`, or nullopt when the picker has none (the caller
  // falls back to round robin).
  virtual std::optional<size_t> pick(std::span<const LbCandidate> c, uint64_t hash) = 0;
};

// The registered algorithm and hash type of a configuration (the loader checked
// that they exist).
const LbAlgorithmDef& lb_algorithm_def(const BalanceConfig& cfg);
std::unique_ptr<LbAlgorithm> make_lb_algorithm(const BalanceConfig& cfg);
std::unique_ptr<HashPicker> make_hash_picker(const BalanceConfig& cfg);

// The 64-bit hash used for request keys, the consistent-hash ring and Maglev.
uint64_t lb_hash(std::string_view data);

// The part of a request target that `balance: uri` hashes.
std::string_view uri_hash_input(std::string_view target, int depth, bool whole);

// The request's key for the backend's algorithm: the client's address for
// source; for the http keys, the target and `header(name)` (a callable giving
// the header's value or nullopt). A tcp connection passes an empty target.
template <typename HeaderLookup>
LbRequest lb_request(const BalanceConfig& cfg, LbKey key, const SockAddr& peer,
                     std::string_view target, HeaderLookup&& header) {
  std::string_view data;
  std::string host;
  switch (key) {
    case LbKey::kNone:
      return {};
    case LbKey::kSource:
      host = peer.host_string();
      data = host;
      break;
    case LbKey::kUri:
      if (target.empty()) return {};
      data = uri_hash_input(target, cfg.uri_depth, cfg.uri_whole);
      break;
    case LbKey::kUrlParam: {
      bool found = false;
      data = http::query_param(target, cfg.name, &found);
      if (!found) return {};
      break;
    }
    case LbKey::kHeader: {
      std::optional<std::string_view> v = header(std::string_view(cfg.name));
      if (!v) return {};
      data = *v;
      break;
    }
  }
  return LbRequest::hashed(lb_hash(data));
}

// Registration lines, one per file under worker/backend/lb/.
using LbAlgorithms = Registry<LbAlgorithmDef>;
using HashTypes = Registry<HashTypeDef>;

}  // namespace weir
