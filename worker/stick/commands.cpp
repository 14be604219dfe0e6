// The stick-table commands of the runtime API (commands.h).

#include "worker/stick/commands.h"

#include <charconv>
#include <memory>

#include "common/config/config.h"
#include "common/stick/table.h"
#include "worker/api/command.h"
#include "worker/worker.h"

namespace weir::stick {
namespace {

using Filter = TableCommand::Filter;
using Op = Filter::Op;

constexpr std::pair<std::string_view, Op> kOps[] = {{"eq", Op::kEq}, {"ne", Op::kNe},
                                                    {"le", Op::kLe}, {"lt", Op::kLt},
                                                    {"ge", Op::kGe}, {"gt", Op::kGt}};

std::optional<int64_t> parse_number(std::string_view text) {
  int64_t v = 0;
  if (text.empty()) return std::nullopt;
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || p != text.data() + text.size()) return std::nullopt;
  return v;
}

}  // namespace

bool Filter::accepts(int64_t v) const {
  switch (op) {
    case Op::kEq:
      return v == value;
    case Op::kNe:
      return v != value;
    case Op::kLe:
      return v <= value;
    case Op::kLt:
      return v < value;
    case Op::kGe:
      return v >= value;
    case Op::kGt:
      return v > value;
  }
  return false;
}

std::optional<DataRef> parse_data_ref(std::string_view text) {
  DataRef d;
  if (text == "gpc0" || text == "gpc1") {
    d.datum = Datum::kGpc;
    d.index = text == "gpc0" ? 0 : 1;
    return d;
  }
  if (text == "gpt0") {
    d.datum = Datum::kGpt;
    return d;
  }
  if (text == "gpc0_rate" || text == "gpc1_rate") {
    d.datum = Datum::kGpcRate;
    d.index = text == "gpc0_rate" ? 0 : 1;
    return d;
  }
  std::string_view name = text;
  if (size_t open = text.find('('); open != std::string_view::npos) {
    if (text.back() != ')') return std::nullopt;
    name = text.substr(0, open);
    const std::string_view idx = text.substr(open + 1, text.size() - open - 2);
    auto n = parse_number(idx);
    if (!n || *n < 0 || *n >= kMaxArray) return std::nullopt;
    d.index = static_cast<uint32_t>(*n);
  }
  auto datum = datum_named(name);
  if (!datum) return std::nullopt;
  if (info(*datum).array != (name.size() != text.size())) return std::nullopt;
  d.datum = *datum;
  return d;
}

std::string data_label(const DataRef& d, int64_t period_ms) {
  const DatumInfo& in = info(d.datum);
  std::string out(in.name);
  const bool rate = in.shape == Shape::kRate;
  if (in.array && rate)
    return out + "(" + std::to_string(d.index) + "," + std::to_string(period_ms) + ")";
  if (in.array) return out + "(" + std::to_string(d.index) + ")";
  if (rate) return out + "(" + std::to_string(period_ms) + ")";
  return out;
}

std::optional<TableCommand> parse_table_command(TableCommand::Verb verb,
                                                const std::vector<std::string_view>& args,
                                                std::string* error) {
  TableCommand c;
  c.verb = verb;
  const char* usage =
      verb == TableCommand::Verb::kShow    ? "show table [NAME [data.X OP V]... [key K]]"
      : verb == TableCommand::Verb::kClear ? "clear table NAME [key K | data.X OP V...]"
                                           : "set table NAME key K data.X V [data.Y V]...";
  const auto fail = [&](std::string why) -> std::optional<TableCommand> {
    *error = why + " (usage: " + usage + ")";
    return std::nullopt;
  };
  if (args.empty()) {
    if (verb == TableCommand::Verb::kShow) return c;
    return fail("a table name is needed");
  }
  c.table = std::string(args[0]);
  size_t i = 1;
  while (i < args.size()) {
    const std::string_view w = args[i];
    if (w == "key") {
      if (c.key) return fail("key is given twice");
      if (i + 1 >= args.size()) return fail("key needs a value");
      c.key = std::string(args[i + 1]);
      i += 2;
      continue;
    }
    if (w.rfind("data.", 0) != 0) return fail("unexpected '" + std::string(w) + "'");
    auto ref = parse_data_ref(w.substr(5));
    if (!ref) {
      return fail("unknown data '" + std::string(w.substr(5)) +
                  "' (a stored data type: conn_cur, http_req_rate, gpc(1), gpc0, server_key...)");
    }
    if (verb == TableCommand::Verb::kSet) {
      if (i + 1 >= args.size()) return fail(std::string(w) + " needs a value");
      if (ref->datum != Datum::kServerKey && !parse_number(args[i + 1])) {
        return fail(std::string(w) + ": '" + std::string(args[i + 1]) + "' is not a number");
      }
      c.sets.push_back({*ref, std::string(args[i + 1])});
      i += 2;
      continue;
    }
    if (i + 2 >= args.size()) return fail(std::string(w) + " needs an operator and a value");
    Filter f;
    f.data = *ref;
    bool op_found = false;
    for (const auto& [name, op] : kOps) {
      if (args[i + 1] == name) {
        f.op = op;
        op_found = true;
      }
    }
    if (!op_found) {
      return fail("unknown operator '" + std::string(args[i + 1]) + "' (eq, ne, le, lt, ge, gt)");
    }
    if (ref->datum == Datum::kServerKey) return fail("server_key cannot be compared");
    auto v = parse_number(args[i + 2]);
    if (!v) return fail("'" + std::string(args[i + 2]) + "' is not a number");
    f.value = *v;
    c.filters.push_back(f);
    i += 3;
  }
  if (verb == TableCommand::Verb::kSet) {
    if (!c.key) return fail("set table needs a key");
    if (c.sets.empty()) return fail("set table needs at least one data.X V");
  }
  if (verb == TableCommand::Verb::kClear && c.key && !c.filters.empty()) {
    return fail("give a key or filters, not both");
  }
  return c;
}

namespace {

std::shared_ptr<Table> find_table(Worker& w, std::string_view name, std::string* error) {
  std::string known;
  for (const auto& t : w.config().stick_tables) {
    if (t->name() == name) return t;
    known += (known.empty() ? "" : ", ") + t->name();
  }
  *error = "Error: no stick table named '" + std::string(name) + "'" +
           (known.empty() ? std::string(" (none is configured)") : " (known: " + known + ")");
  return nullptr;
}

std::string table_line(const Table& t) {
  return "# table: " + t.name() + ", type: " + std::string(key_type_name(t.def().type)) +
         ", size: " + std::to_string(t.size()) + ", used: " + std::to_string(t.used()) +
         ", evicted: " + std::to_string(t.evicted()) + ", expired: " + std::to_string(t.expired()) +
         ", refused: " + std::to_string(t.refused()) + "\n";
}

// A filter or assignment on data the table does not store.
bool check_stored(const Table& t, const DataRef& d, std::string* error) {
  const auto& slot = t.layout().slot[static_cast<int>(d.datum)];
  if (d.index < slot.count) return true;
  *error = "Error: table '" + t.name() + "' does not store " + data_label(d, slot.period_ms) + "\n";
  return false;
}

bool matches(const TableCommand& c, const EntryData& d, const Now& now) {
  for (const Filter& f : c.filters) {
    auto v = d.value(f.data.datum, f.data.index, now);
    if (!v || !f.accepts(*v)) return false;
  }
  return true;
}

void print_entry(const Table& t, Table::Access& a, const Now& now, std::string* out) {
  const EntryData d = a.data();
  *out += "key=" + key_text(t.def(), d.key()) + " use=" + std::to_string(d.trackers()) +
          " exp=" + std::to_string(t.expires_in(a.entry(), now));
  for (const Stored& s : t.def().store) {
    for (uint32_t i = 0; i < s.count; ++i) {
      const DataRef ref{s.datum, i};
      *out += " " + data_label(ref, s.period_ms) + "=";
      if (s.datum == Datum::kServerKey) {
        *out += name_of(*d.server_key());
      } else {
        *out += std::to_string(d.value(s.datum, i, now).value_or(0));
      }
    }
  }
  *out += "\n";
}

// What every table command starts with: its words parsed, its table found,
// the data it names checked against what the table stores. Null with *error
// (the answer) when one of these fails; `show table` alone has no table.
std::shared_ptr<Table> open_command(TableCommand::Verb verb, Worker& w, const ApiArgs& args,
                                    TableCommand* c, std::string* error) {
  std::string why;
  auto parsed = parse_table_command(verb, args, &why);
  if (!parsed) {
    *error = "Error: " + why;
    return nullptr;
  }
  *c = std::move(*parsed);
  if (c->table.empty()) return nullptr;
  auto t = find_table(w, c->table, error);
  if (!t) return nullptr;
  for (const Filter& f : c->filters)
    if (!check_stored(*t, f.data, error)) return nullptr;
  for (const auto& s : c->sets)
    if (!check_stored(*t, s.data, error)) return nullptr;
  return t;
}

// The key K of `key K` in the table's form; false with *error (the answer).
bool command_key(const Table& t, const std::string& text, std::string* key, std::string* error) {
  if (key_from_command(t.def(), text, key)) return true;
  *error = "Error: '" + text + "' is not a key of an " + std::string(key_type_name(t.def().type)) +
           " table";
  return false;
}

std::string show_table(Worker& w, const ApiArgs& args) {
  TableCommand c;
  std::string error;
  auto t = open_command(TableCommand::Verb::kShow, w, args, &c, &error);
  if (!t && error.empty()) {
    std::string out;
    for (const auto& table : w.config().stick_tables) out += table_line(*table);
    return out;
  }
  if (!t) return error;
  std::string out = table_line(*t);
  const Now now = clock_now();
  if (c.key) {
    std::string key;
    if (!command_key(*t, *c.key, &key, &error)) return error;
    if (auto a = t->find(key, now); a && matches(c, a.data(), now)) print_entry(*t, a, now, &out);
    return out;
  }
  t->walk(now, [&](Table::Access& a) {
    if (matches(c, a.data(), now)) print_entry(*t, a, now, &out);
    return true;
  });
  return out;
}

std::string clear_table(Worker& w, const ApiArgs& args) {
  TableCommand c;
  std::string error;
  auto t = open_command(TableCommand::Verb::kClear, w, args, &c, &error);
  if (!t) return error;
  if (c.key) {
    std::string key;
    if (!command_key(*t, *c.key, &key, &error)) return error;
    return t->erase(key) ? "1 entry removed" : "0 entries removed";
  }
  const Now now = clock_now();
  const size_t n = t->walk(now, [&](Table::Access& a) { return !matches(c, a.data(), now); });
  return std::to_string(n) + (n == 1 ? " entry removed" : " entries removed");
}

std::string set_table(Worker& w, const ApiArgs& args) {
  TableCommand c;
  std::string error;
  auto t = open_command(TableCommand::Verb::kSet, w, args, &c, &error);
  if (!t) return error;
  std::string key;
  if (!command_key(*t, *c.key, &key, &error)) return error;
  const Now now = clock_now();
  auto a = t->find_or_make(key, now);
  if (!a) return "Error: table '" + t->name() + "' is full of tracked entries";
  for (const auto& s : c.sets) {
    const int64_t v =
        s.data.datum == Datum::kServerKey ? name_id(s.value) : parse_number(s.value).value_or(0);
    a.data().set(s.data.datum, s.data.index, v, now);
  }
  return {};
}

constexpr ApiCommand kTableCommands[] = {
    {"show table", ApiLevel::kUser,
     "show table [NAME [data.X OP V]... [key K]]   stick tables, or one table's entries",
     show_table},
    {"clear table", ApiLevel::kAdmin,
     "clear table NAME [key K | data.X OP V...]   remove entries nobody tracks", clear_table},
    {"set table", ApiLevel::kAdmin,
     "set table NAME key K data.X V [data.Y V]...   make or change an entry", set_table},
};
const Registrar<ApiCommand> kRegister(kTableCommands);

}  // namespace
}  // namespace weir::stick
