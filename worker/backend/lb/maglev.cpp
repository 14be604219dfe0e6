// hash_type: maglev: Maglev consistent hashing (Eisenbud et al., NSDI 2016, as in
// Envoy's MAGLEV policy). A lookup table of prime size M, at least 100 times the
// number of servers and 65537 for up to 655 servers (4 bytes a slot: 256 KiB a
// backend), is filled by the servers in turn, each along its own
// permutation of the slots (an offset and a step drawn from a hash of its name);
// a server of weight w takes w slots for every slot a server of weight 1 takes.
// A key goes to table[hash mod M]: one look-up, an even spread (a server's share
// is within 1/100 of its weight's share), and when a server leaves the table is
// filled again with little movement beyond that server's own keys.
//
// The table is built from every server of the backend in name order (so that a
// reload that reorders or adds servers moves as little as possible); a key whose
// slot names a server that is not a candidate now (down, full, already tried)
// takes the next slots in order until one does, so only that server's keys move.

#include <algorithm>
#include <string>

#include "worker/backend/backend.h"
#include "worker/backend/lb/lb.h"

namespace weir {
namespace {

bool is_prime(uint64_t n) {
  if (n < 2) return false;
  for (uint64_t d = 2; d * d <= n; ++d)
    if (n % d == 0) return false;
  return true;
}

uint64_t prime_at_least(uint64_t n) {
  while (!is_prime(n)) ++n;
  return n;
}

class Maglev final : public HashPicker {
 public:
  // Slots per server, at least: the larger, the closer each share to its weight.
  static constexpr uint64_t kSlotsPerServer = 100;
  static constexpr uint64_t kSizeStep = 65536;

  void reset(const std::vector<Server*>& all) override {
    struct Entry {
      std::string_view name;
      int index;
      uint32_t weight;
      uint64_t offset = 0, skip = 0, next = 0;
      uint64_t credit = 0;
    };
    std::vector<Entry> servers;
    uint32_t max_weight = 0;
    for (Server* s : all) {
      if (s->weight() == 0) continue;
      servers.push_back({s->name(), s->index(), s->weight()});
      max_weight = std::max(max_weight, s->weight());
    }
    table_.clear();
    if (servers.empty()) return;
    std::sort(servers.begin(), servers.end(),
              [](const Entry& a, const Entry& b) { return a.name < b.name; });
    // The size must not follow every change of the server list (a new size
    // moves every key): 65537 up to 655 servers, then the next step of 65536.
    const uint64_t steps = (kSlotsPerServer * servers.size() + kSizeStep - 1) / kSizeStep;
    const uint64_t size = prime_at_least(steps * kSizeStep + 1);
    for (Entry& e : servers) {
      e.offset = lb_hash(std::string(e.name) + "#maglev-offset") % size;
      e.skip = lb_hash(std::string(e.name) + "#maglev-skip") % (size - 1) + 1;
    }
    table_.assign(size, -1);
    uint64_t filled = 0;
    while (filled < size) {
      for (Entry& e : servers) {
        // Weighted turns: a server places one slot each time its credit
        // reaches the largest weight.
        e.credit += e.weight;
        while (e.credit >= max_weight && filled < size) {
          e.credit -= max_weight;
          uint64_t slot = (e.offset + e.next * e.skip) % size;
          while (table_[slot] >= 0) {
            ++e.next;
            slot = (e.offset + e.next * e.skip) % size;
          }
          table_[slot] = e.index;
          ++e.next;
          ++filled;
        }
        if (filled == size) break;
      }
    }
  }

  std::optional<size_t> pick(std::span<const LbCandidate> c, uint64_t hash) override {
    if (table_.empty()) return std::nullopt;
    marks_.assign(marks_.size(), -1);
    for (size_t i = 0; i < c.size(); ++i) {
      size_t idx = static_cast<size_t>(c[i].index);
      if (idx >= marks_.size()) marks_.resize(idx + 1, -1);
      marks_[idx] = static_cast<int>(i);
    }
    const size_t size = table_.size();
    size_t slot = static_cast<size_t>(hash % size);
    for (size_t n = 0; n < size; ++n, slot = slot + 1 == size ? 0 : slot + 1) {
      size_t idx = static_cast<size_t>(table_[slot]);
      if (idx < marks_.size() && marks_[idx] >= 0) return static_cast<size_t>(marks_[idx]);
    }
    return std::nullopt;  // no candidate is in the table (added since it was built)
  }

 private:
  std::vector<int> table_;  // slot -> server index
  std::vector<int> marks_;  // server index -> candidate position, for one pick
};

std::unique_ptr<HashPicker> make() {
  return std::make_unique<Maglev>();
}
constexpr HashTypeDef kMaglev[] = {{"maglev", make}};
const Registrar<HashTypeDef> kRegister(kMaglev);

}  // namespace
}  // namespace weir
