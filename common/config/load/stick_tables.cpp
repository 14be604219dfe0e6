// `stick_tables:` (doc/stick-tables.md): named tables of per-key counters,
// rates and tags that rules track and fetches read. Read before the frontends
// and backends, whose rules name the tables (the condition parser finds them
// in Loader::files).

#include <algorithm>

#include "common/config/load/loader.h"
#include "common/stick/table.h"

namespace weir::config_detail {
namespace {

struct TableScope : Scope {
  stick::TableDef& out;
  const PeersConfig& peers;
  bool type_valid = true;
};

constexpr Choice<stick::KeyType> kTypes[] = {{"ip", stick::KeyType::kIp},
                                             {"ipv6", stick::KeyType::kIpv6},
                                             {"integer", stick::KeyType::kInteger},
                                             {"string", stick::KeyType::kString},
                                             {"binary", stick::KeyType::kBinary}};
constexpr auto kTypeNames = names_of(kTypes);

// The most entries a table may hold, and the longest string or binary key.
constexpr uint64_t kMaxEntries = uint64_t{1} << 32;
constexpr uint64_t kMaxKeySize = 1024;

bool read_type(TableScope& s, const YamlNode& v, const std::string& what) {
  const auto word = s.text_value(v, what, one_of(kTypeNames));
  if (!word) return s.type_valid = false;
  if (auto t = find_choice(kTypes, *word)) {
    s.out.type = *t;
    return true;
  }
  s.error(v.mark,
          what + ": unknown type " + quoted(*word) + " (expected " + one_of(kTypeNames) + ")");
  return s.type_valid = false;
}

bool read_key_size(TableScope& s, const YamlNode& v, const std::string& what) {
  if (s.type_valid && s.out.type != stick::KeyType::kString &&
      s.out.type != stick::KeyType::kBinary) {
    s.error(v.mark, what + " is for string and binary tables (an " +
                        std::string(stick::key_type_name(s.out.type)) + " key has a fixed size)");
    return false;
  }
  const auto n = s.size_value(v, what, 1, kMaxKeySize);
  if (!n) return false;
  s.out.key_size = static_cast<uint32_t>(*n);
  return true;
}

bool read_size(TableScope& s, const YamlNode& v, const std::string& what) {
  const auto n = s.size_value(v, what, 1, kMaxEntries);
  if (!n) return false;
  s.out.size = *n;
  return true;
}

bool read_expire(TableScope& s, const YamlNode& v, const std::string& what) {
  const auto ms = s.duration_value(v, what);
  if (!ms) return false;
  s.out.expire_ms = *ms;
  return true;
}

bool read_sync(TableScope& s, const YamlNode& v, const std::string& what) {
  const auto b = s.bool_value(v, what);
  if (!b) return false;
  if (*b && !s.peers.enabled()) {
    s.error(v.mark, what +
                        ": true shares the table with the other nodes of a cluster, "
                        "and there is no peers: section");
    return false;
  }
  s.out.sync = *b;
  return true;
}

// Whether items i and i+1 of a [flow, list] are one item that YAML split at its
// comma: "gpc_rate(2" and "1m)" on one line.
bool split_at_comma(const YamlNode& list, size_t i) {
  if (i + 1 >= list.items.size()) return false;
  const YamlNode& a = *list.items[i];
  const YamlNode& b = *list.items[i + 1];
  return a.kind == Kind::kScalar && b.kind == Kind::kScalar && a.mark.line == b.mark.line &&
         a.scalar.find('(') != std::string::npos && a.scalar.find(')') == std::string::npos &&
         b.scalar.find(')') != std::string::npos && b.scalar.find('(') == std::string::npos;
}

// A datum written twice, or twice through HAProxy's shorthands (gpc0 and gpc1
// are elements of gpc): what to write instead.
std::string stored_twice(const std::string& earlier_text, const stick::Stored& earlier,
                         const std::string& text, const stick::Stored& again) {
  if (earlier_text == text) return quoted(text) + " is stored twice";
  const std::string both = quoted(text) + " and " + quoted(earlier_text) + " both store " +
                           std::string(stick::info(again.datum).name);
  if (!stick::info(again.datum).array) return both + ": a table keeps one period per rate";
  stick::Stored once = earlier;
  once.count = std::max(earlier.count, again.count);
  return both +
         " (gpc0 and gpc1 are its elements 0 and 1, gpt0 is element 0 of gpt): store it once, "
         "as " +
         quoted(stick::stored_text(once));
}

bool read_store(TableScope& s, const YamlNode& v, const std::string& what) {
  if (v.kind != Kind::kSequence) {
    s.error(v.mark, what + " must be a list such as [conn_cur, \"http_req_rate(10s)\"]");
    return false;
  }
  bool ok = true;
  std::vector<std::string> texts;  // as written, beside s.out.store
  for (size_t i = 0; i < v.items.size(); ++i) {
    const YamlNode& item = *v.items[i];
    if (split_at_comma(v, i)) {
      const std::string whole = item.scalar + "," + v.items[i + 1]->scalar;
      s.error(item.mark, what + ": put \"" + whole +
                             "\" in quotes (in a [...] list, YAML splits it at the comma)");
      ok = false;
      ++i;
      continue;
    }
    const auto text = s.text_value(item, what, "a data type such as http_req_rate(10s)");
    if (!text) {
      ok = false;
      continue;
    }
    std::string problem;
    auto stored = stick::parse_stored(*text, &problem);
    if (!stored) {
      s.error(item.mark, what + ": " + problem);
      ok = false;
      continue;
    }
    size_t earlier = 0;
    while (earlier < s.out.store.size() && s.out.store[earlier].datum != stored->datum) ++earlier;
    if (earlier < s.out.store.size()) {
      s.error(item.mark,
              what + ": " + stored_twice(texts[earlier], s.out.store[earlier], *text, *stored));
      ok = false;
      continue;
    }
    s.out.store.push_back(*stored);
    texts.push_back(*text);
  }
  return ok;
}

// In table order: type before key_size, which depends on it.
constexpr Key<TableScope> kTableKeys[] = {
    {"type", read_type},     {"key_size", read_key_size}, {"size", read_size},
    {"expire", read_expire}, {"store", read_store},       {"sync", read_sync},
};
constexpr auto kTableNames = names_of(kTableKeys);

constexpr KeyList kLists[] = {
    {"stick_tables.table", kKeysOf, kTableNames},
    {"stick_tables.table.type", kValuesOf, kTypeNames},
};
const Registrar<KeyList> kRegister(kLists);

}  // namespace

std::shared_ptr<stick::Table> Loader::stick_table_value(const YamlNode& node,
                                                        const std::string& what) {
  auto name = text_value(node, what + ": table", "a stick table's name");
  if (!name) return nullptr;
  auto it = files.stick_tables.find(*name);
  if (it != files.stick_tables.end()) return it->second;
  std::string known;
  for (const auto& [n, t] : files.stick_tables) known += (known.empty() ? "" : ", ") + n;
  error(node.mark, what + ": no stick table named " + quoted(*name) +
                       (known.empty() ? std::string(" (stick_tables defines none)")
                                      : " (known: " + known + ")"));
  return nullptr;
}

void Loader::load_stick_tables(const YamlNode& node) {
  for (const Field& field : map_fields(node, "stick_tables", "table", "").list) {
    const std::string label = "stick table " + quoted(field.key);
    if (!valid_name(field.key)) {
      error(field.key_node->mark, "invalid stick table name " + quoted(field.key) +
                                      " (use letters, digits, '_', '.' and '-')");
      continue;
    }
    stick::TableDef def;
    def.name = field.key;
    const Fields fields = map_fields(*field.value, label);
    reject_unknown(fields, kTableNames, "in " + label);
    TableScope scope{{*this, label}, def, config.peers};
    if (!fields.get("size")) {
      error(field.value->mark, label + " needs a size: the most entries it holds (e.g. 100k)");
    }
    read_keys(kTableKeys, fields, scope);
    auto table = std::make_shared<stick::Table>(std::move(def));
    files.stick_tables[field.key] = table;
    config.stick_tables.push_back(std::move(table));
  }
}

}  // namespace weir::config_detail
