// The stick-table fetches (common/cond/stick_words.h has their words and
// arguments): sc0_*, sc1_*, sc2_* and sc_*(N) on the entries the connection
// tracks, src_* on the client's address looked up without tracking it, and
// table_cnt / table_avl. They are generated, one per prefix and word, and
// registered as a family. Each runs on the SampleSource that called it.

#include <deque>
#include <string>
#include <vector>

#include "common/base/registry.h"
#include "common/cond/ip_value.h"
#include "common/cond/stick_words.h"
#include "worker/rules/rules.h"
#include "worker/stick/trackers.h"

namespace weir {
namespace {

using namespace cond;  // the types of fetches
using stick_words::Prefix;
using stick_words::Word;

constexpr Prefix kFetchPrefixes[] = {Prefix::kSc0, Prefix::kSc1, Prefix::kSc2, Prefix::kSc,
                                     Prefix::kSrc};
constexpr std::string_view kPrefixText[] = {"sc0_", "sc1_", "sc2_", "sc_", "src_"};
constexpr std::string_view kFamily[] = {"sc0_*", "sc1_*", "sc2_*", "sc_*(N)", "src_*"};

Prefix prefix_of(const FetchSpec& spec) {
  return static_cast<Prefix>(spec.def->tag >> 8);
}
const Word& word_of(const FetchSpec& spec) {
  return stick_words::words()[spec.def->tag & 0xff];
}

bool parse(FetchSpec& spec, const std::vector<std::string>& args, bool has_args,
           const FileCache& env, std::string* error) {
  stick_words::Args a;
  if (!stick_words::parse_args(prefix_of(spec), word_of(spec), args, has_args, env,
                               std::string(spec.def->name), &a, error)) {
    return false;
  }
  spec.table = std::move(a.table);
  spec.sc = a.sc;
  spec.index = a.index;
  return true;
}

// `key` looked up in `table` (not refreshed).
void read_key(const stick::Table& table, const Word& w, uint32_t index, std::string_view key,
              const stick::Now& now, std::vector<Sample>& out) {
  if (auto a = const_cast<stick::Table&>(table).find(key, now)) {
    stick_words::read(w, index, a.data(), now, out);
  } else {
    stick_words::read_absent(w, table, out);
  }
}

void run(const FetchSpec& spec, FetchContext& c, std::vector<Sample>& out) {
  const SampleSource& s = SampleSource::of(c);
  const Word& w = word_of(spec);
  const stick::Now now = stick::clock_now();
  thread_local std::string key;
  if (prefix_of(spec) == Prefix::kSrc) {
    IpValue ip;
    if (!s.src || !ip_value_of(*s.src, &ip)) return;
    if (!stick::key_from_ip(spec.table->def(), ip.bytes, ip.v4, &key)) return;
    read_key(*spec.table, w, spec.index, key, now, out);
    return;
  }
  const stick::Trackers* t = s.sc && *s.sc ? s.sc->get() : nullptr;
  const bool tracked = t && t->tracked(spec.sc);
  if (w.read == Word::Read::kTracked) {
    push_number(out, tracked ? 1 : 0, Type::kBool);
    return;
  }
  if (!tracked) return;
  const stick::Trackers::Slot& slot = t->slot(spec.sc);
  if (!spec.table || spec.table.get() == slot.table) {
    auto a = slot.table->peek(slot.entry);
    stick_words::read(w, spec.index, a.data(), now, out);
    return;
  }
  // The tracked key, looked up in another table.
  {
    auto a = slot.table->peek(slot.entry);
    key.assign(a.data().key());
  }
  if (slot.table->def().type != spec.table->def().type) return;
  read_key(*spec.table, w, spec.index, key, now, out);
}

// table_cnt(TABLE) / table_avl(TABLE): entries used and still free.
bool parse_table(FetchSpec& spec, const std::vector<std::string>& args, bool has_args,
                 const FileCache& env, std::string* error) {
  const std::string name(spec.def->name);
  if (!has_args || args.size() != 1 || args[0].empty()) {
    *error = name + " needs a table: " + name + "(TABLE)";
    return false;
  }
  auto it = env.stick_tables.find(args[0]);
  if (it == env.stick_tables.end()) {
    std::string known;
    for (const auto& [n, t] : env.stick_tables) known += (known.empty() ? "" : ", ") + n;
    *error = name + ": no stick table named '" + args[0] + "'" +
             (known.empty() ? std::string(" (none is defined)") : " (known: " + known + ")");
    return false;
  }
  spec.table = it->second;
  return true;
}

void table_cnt(const FetchSpec& spec, FetchContext&, std::vector<Sample>& out) {
  push_number(out, static_cast<int64_t>(spec.table->used()));
}

void table_avl(const FetchSpec& spec, FetchContext&, std::vector<Sample>& out) {
  const uint64_t used = spec.table->used();
  push_number(out, static_cast<int64_t>(used < spec.table->size() ? spec.table->size() - used : 0));
}

struct Generated {
  std::deque<std::string> names;  // stable: the definitions view them
  std::vector<FetchDef> defs;
};

const std::vector<FetchDef>& generated() {
  static const Generated* g = [] {
    auto* out = new Generated;
    for (size_t p = 0; p < std::size(kFetchPrefixes); ++p) {
      const auto words = stick_words::words();
      for (size_t i = 0; i < words.size(); ++i) {
        const Word& w = words[i];
        if (w.read == Word::Read::kTracked && kFetchPrefixes[p] == Prefix::kSrc) continue;
        out->names.push_back(std::string(kPrefixText[p]) + std::string(w.name));
        FetchDef d{out->names.back(), w.type, FetchScope::kConnection, FetchArg::kNone, false, run};
        d.parse_args = parse;
        d.family = kFamily[p];
        d.tag = static_cast<uint32_t>(kFetchPrefixes[p]) << 8 | static_cast<uint32_t>(i);
        out->defs.push_back(d);
      }
    }
    using Run = void (*)(const FetchSpec&, FetchContext&, std::vector<Sample>&);
    const std::pair<std::string_view, Run> tables[] = {{"table_cnt", table_cnt},
                                                       {"table_avl", table_avl}};
    for (const auto& [name, fn] : tables) {
      FetchDef d{name, Type::kInt, FetchScope::kConnection, FetchArg::kNone, false, fn};
      d.parse_args = parse_table;
      out->defs.push_back(d);
    }
    return out;
  }();
  return g->defs;
}
const Registrar<FetchDef> kRegister(generated());

}  // namespace
}  // namespace weir
