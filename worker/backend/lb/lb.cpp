#include "worker/backend/lb/lb.h"

#include <cstdio>
#include <cstdlib>

#include "common/base/hash.h"

namespace weir {

uint64_t lb_hash(std::string_view data) {
  // Keys that differ in one byte land far apart on the ring and in the modulo.
  return hash_bytes(data);
}

std::string_view uri_hash_input(std::string_view target, int depth, bool whole) {
  size_t q = target.find('?');
  std::string_view path = target.substr(0, q);
  if (depth > 0) {
    // "/a/b/c" with depth 2 -> "/a/b".
    size_t pos = 0;
    for (int d = 0; d < depth; ++d) {
      size_t next = path.find('/', pos + 1);
      if (next == std::string_view::npos) {
        pos = path.size();
        break;
      }
      pos = next;
    }
    return path.substr(0, pos);
  }
  return whole ? target : path;
}

const LbAlgorithmDef& lb_algorithm_def(const BalanceConfig& cfg) {
  const LbAlgorithmDef* def = LbAlgorithms::instance().find(cfg.algorithm);
  if (!def) {
    // The loader refuses unknown names: this is a configuration made by hand.
    std::fprintf(stderr, "weir: bug: no balance algorithm '%s'\n", cfg.algorithm.c_str());
    std::abort();
  }
  return *def;
}

std::unique_ptr<LbAlgorithm> make_lb_algorithm(const BalanceConfig& cfg) {
  return lb_algorithm_def(cfg).make(cfg);
}

std::unique_ptr<HashPicker> make_hash_picker(const BalanceConfig& cfg) {
  const HashTypeDef* def = HashTypes::instance().find(cfg.hash_type);
  if (!def) {
    std::fprintf(stderr, "weir: bug: no hash_type '%s'\n", cfg.hash_type.c_str());
    std::abort();
  }
  return def->make();
}

}  // namespace weir
