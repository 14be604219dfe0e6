#pragma once
// A backend's `balance:`: the algorithm that picks a server, and its options.
// Algorithms and hash types are not listed here: each is declared and
// registered by its own file under worker/backend/lb/ (common/base/registry.h),
// and the loader looks names up in those registries, so adding one is one file.

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace weir {

class LbAlgorithm;
class HashPicker;
struct BalanceConfig;

// The part of a request a hashing algorithm hashes.
enum class LbKey : unsigned char {
  kNone,      // not a hashing algorithm: the servers' load or turn decides
  kSource,    // the client's address
  kUri,       // the request path, or the whole target (options depth, whole)
  kUrlParam,  // a query-string parameter (option name)
  kHeader,    // a request header (option name)
};

// The options of `balance: {algorithm: A, ...}` an algorithm accepts.
enum LbOption : uint32_t {
  kLbOptName = 1u << 0,      // name: the parameter or header hashed
  kLbOptDepth = 1u << 1,     // depth: path segments hashed
  kLbOptWhole = 1u << 2,     // whole: the query string too
  kLbOptDraws = 1u << 3,     // draws: servers drawn per pick
  kLbOptHashType = 1u << 4,  // hash_type: how a hash becomes a server
};

// One load-balancing algorithm (a registry entry).
struct LbAlgorithmDef {
  std::string_view name;  // the word after `balance:`
  LbKey key;              // what it hashes (kNone: it does not)
  uint32_t options;       // LbOption bits
  std::unique_ptr<LbAlgorithm> (*make)(const BalanceConfig&);
  bool http_only() const {
    return key == LbKey::kUri || key == LbKey::kUrlParam || key == LbKey::kHeader;
  }
};

// One way of turning a key's hash into a server (`hash_type:`; a registry entry).
struct HashTypeDef {
  std::string_view name;  // the word after `hash_type:`
  std::unique_ptr<HashPicker> (*make)();
};

struct BalanceConfig {
  std::string algorithm = "roundrobin";  // the name of a registered LbAlgorithmDef
  std::string hash_type = "map_based";   // hashing algorithms: a registered HashTypeDef
  std::string name;                      // url_param: parameter name; hdr: header (lower-case)
  int uri_depth = 0;                     // uri: hash only the first N path segments; 0: all
  bool uri_whole = false;                // uri: include the query string
  int draws = 2;                         // random: servers drawn per pick
};

}  // namespace weir
