#include "worker/backend/lb/lb.h"

#include <algorithm>

#include "worker/backend/backend.h"

namespace weir {

uint64_t lb_hash(std::string_view data) {
  // FNV-1a, then a full avalanche (the splitmix64 finalizer) so that keys that
  // differ in one byte land far apart on the ring and in the modulo.
  uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : data) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  h ^= h >> 30;
  h *= 0xbf58476d1ce4e5b9ULL;
  h ^= h >> 27;
  h *= 0x94d049bb133111ebULL;
  h ^= h >> 31;
  return h;
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

namespace {

// Smooth weighted round robin: every pick adds each candidate's weight to its
// running score and takes the highest, which then gives back the total. Picks
// interleave evenly (weights 5,1,1 give a a b a c a a, not a a a a a b c), and a
// weight change takes effect on the next pick.
class RoundRobin final : public LbAlgorithm {
 public:
  explicit RoundRobin(bool use_static) : static_(use_static) {}
  size_t pick(std::span<const LbCandidate> c, bool, uint64_t) override {
    int64_t total = 0;
    size_t best = 0;
    for (size_t i = 0; i < c.size(); ++i) {
      int64_t& cur = score(c[i].index);
      int64_t w = static_ ? c[i].static_w : c[i].weight;
      cur += w;
      total += w;
      if (i == 0 || cur > score(c[best].index)) best = i;
    }
    score(c[best].index) -= total;
    return best;
  }

 private:
  int64_t& score(int index) {
    if (static_cast<size_t>(index) >= current_.size())
      current_.resize(static_cast<size_t>(index) + 1, 0);
    return current_[static_cast<size_t>(index)];
  }
  bool static_;
  std::vector<int64_t> current_;
};

// Fewest (active + queued) per unit of weight; among equals, the next one after
// the last pick, so equal servers take turns.
class LeastConn final : public LbAlgorithm {
 public:
  size_t pick(std::span<const LbCandidate> c, bool, uint64_t) override {
    size_t best = 0;
    for (size_t i = 1; i < c.size(); ++i) {
      // load_i / w_i < load_best / w_best, without division.
      int64_t lhs = c[i].load * static_cast<int64_t>(c[best].weight);
      int64_t rhs = c[best].load * static_cast<int64_t>(c[i].weight);
      if (lhs < rhs || (lhs == rhs && after_last(c[i].index) < after_last(c[best].index))) best = i;
    }
    last_ = c[best].index;
    return best;
  }

 private:
  // Distance after the last picked index, cyclically.
  uint64_t after_last(int index) const {
    return static_cast<uint64_t>(static_cast<int64_t>(index) - last_ - 1) & 0xffffffffULL;
  }
  int64_t last_ = -1;
};

// The first server, in configuration order, that has a free slot (the Backend
// only offers servers with one).
class First final : public LbAlgorithm {
 public:
  size_t pick(std::span<const LbCandidate>, bool, uint64_t) override { return 0; }
};

// N weighted random draws, keeping the least loaded (the power of two choices
// for N = 2): nearly as even as leastconn without its herd behaviour when many
// load balancers share servers.
class Random final : public LbAlgorithm {
 public:
  explicit Random(int draws) : draws_(draws) {}
  size_t pick(std::span<const LbCandidate> c, bool, uint64_t) override {
    uint64_t total = 0;
    for (const LbCandidate& x : c) total += x.weight;
    size_t best = draw(c, total);
    for (int d = 1; d < draws_; ++d) {
      size_t i = draw(c, total);
      int64_t lhs = c[i].load * static_cast<int64_t>(c[best].weight);
      int64_t rhs = c[best].load * static_cast<int64_t>(c[i].weight);
      if (lhs < rhs) best = i;
    }
    return best;
  }

 private:
  size_t draw(std::span<const LbCandidate> c, uint64_t total) {
    uint64_t r = next() % total;
    for (size_t i = 0; i < c.size(); ++i) {
      if (r < c[i].weight) return i;
      r -= c[i].weight;
    }
    return c.size() - 1;
  }
  uint64_t next() {  // xorshift64*
    state_ ^= state_ >> 12;
    state_ ^= state_ << 25;
    state_ ^= state_ >> 27;
    return state_ * 0x2545f4914f6cdd1dULL;
  }
  int draws_;
  uint64_t state_ = 0x9e3779b97f4a7c15ULL;
};

// Hashing: the request's key picks the server; without a key (a missing header
// or parameter), round robin.
class Hashed final : public LbAlgorithm {
 public:
  explicit Hashed(HashType type) : type_(type), fallback_(false) {}
  bool deterministic(bool has_hash) const override { return has_hash; }

  void reset(const std::vector<Server*>& all) override {
    if (type_ != HashType::kConsistent) return;
    // A ring with 16 points per unit of weight, each at hash("name#k"): a
    // server's points do not depend on the others, so adding or removing one
    // moves only the keys that land next to its points.
    ring_.clear();
    for (Server* s : all) {
      uint32_t points = s->weight() * 16;
      for (uint32_t k = 0; k < points; ++k) {
        ring_.push_back({lb_hash(s->name() + "#" + std::to_string(k)), s->index()});
      }
    }
    std::sort(ring_.begin(), ring_.end());
  }

  size_t pick(std::span<const LbCandidate> c, bool has_hash, uint64_t hash) override {
    if (!has_hash) return fallback_.pick(c, false, 0);
    if (type_ == HashType::kMapBased) {
      // hash modulo the total weight of the candidates.
      uint64_t total = 0;
      for (const LbCandidate& x : c) total += x.weight;
      uint64_t r = hash % total;
      for (size_t i = 0; i < c.size(); ++i) {
        if (r < c[i].weight) return i;
        r -= c[i].weight;
      }
      return c.size() - 1;
    }
    // Consistent: the first point at or after the key whose server is a candidate.
    marks_.assign(marks_.size(), -1);
    for (size_t i = 0; i < c.size(); ++i) {
      size_t idx = static_cast<size_t>(c[i].index);
      if (idx >= marks_.size()) marks_.resize(idx + 1, -1);
      marks_[idx] = static_cast<int>(i);
    }
    auto it = std::lower_bound(ring_.begin(), ring_.end(), std::make_pair(hash, -1));
    for (size_t n = 0; n < ring_.size(); ++n, ++it) {
      if (it == ring_.end()) it = ring_.begin();
      size_t idx = static_cast<size_t>(it->second);
      if (idx < marks_.size() && marks_[idx] >= 0) return static_cast<size_t>(marks_[idx]);
    }
    // A candidate without points (weight changed since the ring was built).
    return fallback_.pick(c, false, 0);
  }

 private:
  HashType type_;
  RoundRobin fallback_;
  std::vector<std::pair<uint64_t, int>> ring_;
  std::vector<int> marks_;
};

}  // namespace

const char* balance_name(Balance b) {
  switch (b) {
    case Balance::kRoundRobin:
      return "roundrobin";
    case Balance::kStaticRr:
      return "static-rr";
    case Balance::kLeastConn:
      return "leastconn";
    case Balance::kFirst:
      return "first";
    case Balance::kSource:
      return "source";
    case Balance::kUri:
      return "uri";
    case Balance::kUrlParam:
      return "url_param";
    case Balance::kHdr:
      return "hdr";
    case Balance::kRandom:
      return "random";
  }
  return "?";
}

std::unique_ptr<LbAlgorithm> make_lb_algorithm(const BalanceConfig& cfg) {
  switch (cfg.algorithm) {
    case Balance::kRoundRobin:
      return std::make_unique<RoundRobin>(false);
    case Balance::kStaticRr:
      return std::make_unique<RoundRobin>(true);
    case Balance::kLeastConn:
      return std::make_unique<LeastConn>();
    case Balance::kFirst:
      return std::make_unique<First>();
    case Balance::kRandom:
      return std::make_unique<Random>(cfg.draws);
    case Balance::kSource:
    case Balance::kUri:
    case Balance::kUrlParam:
    case Balance::kHdr:
      return std::make_unique<Hashed>(cfg.hash_type);
  }
  return std::make_unique<RoundRobin>(false);
}

}  // namespace weir
