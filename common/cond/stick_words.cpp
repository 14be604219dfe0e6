// The stick-table words of the condition language (stick_words.h).

#include "common/cond/stick_words.h"

#include <algorithm>
#include <charconv>

namespace weir::cond::stick_words {
namespace {

using stick::Datum;
using R = Word::Read;

constexpr Word kWords[] = {
    {"conn_cnt", Datum::kConnCnt, R::kValue, false, 0, Type::kInt},
    {"conn_cur", Datum::kConnCur, R::kValue, false, 0, Type::kInt},
    {"conn_rate", Datum::kConnRate, R::kValue, false, 0, Type::kInt},
    {"sess_cnt", Datum::kSessCnt, R::kValue, false, 0, Type::kInt},
    {"sess_rate", Datum::kSessRate, R::kValue, false, 0, Type::kInt},
    {"http_req_cnt", Datum::kHttpReqCnt, R::kValue, false, 0, Type::kInt},
    {"http_req_rate", Datum::kHttpReqRate, R::kValue, false, 0, Type::kInt},
    {"http_err_cnt", Datum::kHttpErrCnt, R::kValue, false, 0, Type::kInt},
    {"http_err_rate", Datum::kHttpErrRate, R::kValue, false, 0, Type::kInt},
    {"http_fail_cnt", Datum::kHttpFailCnt, R::kValue, false, 0, Type::kInt},
    {"http_fail_rate", Datum::kHttpFailRate, R::kValue, false, 0, Type::kInt},
    {"bytes_in_cnt", Datum::kBytesInCnt, R::kValue, false, 0, Type::kInt},
    {"bytes_out_cnt", Datum::kBytesOutCnt, R::kValue, false, 0, Type::kInt},
    {"bytes_in_rate", Datum::kBytesInRate, R::kValue, false, 0, Type::kInt},
    {"bytes_out_rate", Datum::kBytesOutRate, R::kValue, false, 0, Type::kInt},
    {"kbytes_in", Datum::kBytesInCnt, R::kKbytes, false, 0, Type::kInt},
    {"kbytes_out", Datum::kBytesOutCnt, R::kKbytes, false, 0, Type::kInt},
    {"server_key", Datum::kServerKey, R::kServerName, false, 0, Type::kString},
    {"gpc", Datum::kGpc, R::kValue, true, 0, Type::kInt},
    {"get_gpc", Datum::kGpc, R::kValue, true, 0, Type::kInt},
    {"gpc0", Datum::kGpc, R::kValue, false, 0, Type::kInt},
    {"gpc1", Datum::kGpc, R::kValue, false, 1, Type::kInt},
    {"get_gpc0", Datum::kGpc, R::kValue, false, 0, Type::kInt},
    {"get_gpc1", Datum::kGpc, R::kValue, false, 1, Type::kInt},
    {"gpc_rate", Datum::kGpcRate, R::kValue, true, 0, Type::kInt},
    {"gpc0_rate", Datum::kGpcRate, R::kValue, false, 0, Type::kInt},
    {"gpc1_rate", Datum::kGpcRate, R::kValue, false, 1, Type::kInt},
    {"gpt", Datum::kGpt, R::kValue, true, 0, Type::kInt},
    {"get_gpt", Datum::kGpt, R::kValue, true, 0, Type::kInt},
    {"gpt0", Datum::kGpt, R::kValue, false, 0, Type::kInt},
    {"get_gpt0", Datum::kGpt, R::kValue, false, 0, Type::kInt},
    {"trackers", Datum::kConnCur, R::kTrackers, false, 0, Type::kInt},
    {"tracked", Datum::kConnCur, R::kTracked, false, 0, Type::kBool},
};

std::string_view prefix_text(Prefix p) {
  switch (p) {
    case Prefix::kSc0:
      return "sc0_";
    case Prefix::kSc1:
      return "sc1_";
    case Prefix::kSc2:
      return "sc2_";
    case Prefix::kSc:
      return "sc_";
    case Prefix::kSrc:
      return "src_";
    case Prefix::kTable:
      return "table_";
  }
  return "";
}

bool small_number(std::string_view text, uint32_t max, uint32_t* out) {
  if (text.empty()) return false;
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), *out);
  return ec == std::errc() && p == text.data() + text.size() && *out <= max;
}

}  // namespace

std::span<const Word> words() {
  return kWords;
}

const Word* find_word(std::string_view name) {
  for (const Word& w : kWords)
    if (w.name == name) return &w;
  return nullptr;
}

bool parse_args(Prefix p, const Word& w, const std::vector<std::string>& given, bool has_args,
                const FileCache& env, const std::string& what, Args* out, std::string* error) {
  std::vector<std::string> args = has_args ? given : std::vector<std::string>();
  // The forms, for messages.
  std::string form = what + "(";
  if (w.indexed) form += "IDX,";
  if (p == Prefix::kSc) form += "N,";
  form += p == Prefix::kTable ? "TABLE)" : "[TABLE])";
  if (w.read == R::kTracked) form = what + (p == Prefix::kSc ? "(N)" : "");
  const auto fail = [&](const std::string& why) {
    *error = what + ": " + why + " (written " + form + ")";
    return false;
  };
  size_t at = 0;
  if (w.indexed) {
    if (args.size() <= at) return fail("the element's index is missing");
    if (!small_number(args[at], stick::kMaxArray - 1, &out->index)) {
      return fail("the index must be 0.." + std::to_string(stick::kMaxArray - 1) + ", not '" +
                  args[at] + "'");
    }
    ++at;
  } else {
    out->index = w.index;
  }
  if (p == Prefix::kSc) {
    uint32_t n = 0;
    if (args.size() <= at) return fail("the tracked counter's number is missing");
    if (!small_number(args[at], 2, &n)) {
      return fail("the tracked counter is 0, 1 or 2, not '" + args[at] + "'");
    }
    out->sc = static_cast<int>(n);
    ++at;
  } else if (p == Prefix::kSc0 || p == Prefix::kSc1 || p == Prefix::kSc2) {
    out->sc = static_cast<int>(p) - static_cast<int>(Prefix::kSc0);
  }
  if (w.read == R::kTracked) {
    if (args.size() > at) return fail("too many arguments");
    return true;
  }
  if (args.size() > at + 1) return fail("too many arguments");
  if (args.size() == at + 1) {
    auto it = env.stick_tables.find(args[at]);
    if (it == env.stick_tables.end()) {
      std::string known;
      for (const auto& [name, t] : env.stick_tables) known += (known.empty() ? "" : ", ") + name;
      return fail("no stick table named '" + args[at] + "'" +
                  (known.empty() ? std::string(" (none is defined)") : " (known: " + known + ")"));
    }
    out->table = it->second;
  } else if (p == Prefix::kTable) {
    return fail("the table is missing");
  } else if (p == Prefix::kSrc) {
    if (env.stick_tables.size() != 1) {
      return fail(env.stick_tables.empty() ? "no stick table is defined"
                                           : "name the table: the configuration has " +
                                                 std::to_string(env.stick_tables.size()));
    }
    out->table = env.stick_tables.begin()->second;
  }
  // A table that does not store the datum is a mistake the loader can see.
  if (out->table && w.read != R::kTrackers) {
    const stick::Table& t = *out->table;
    if (!t.stores(w.datum)) {
      return fail("table '" + t.name() + "' does not store " +
                  std::string(stick::info(w.datum).name));
    }
    if (out->index >= t.layout().slot[static_cast<int>(w.datum)].count) {
      return fail("table '" + t.name() + "' stores " +
                  std::to_string(t.layout().slot[static_cast<int>(w.datum)].count) + " " +
                  std::string(stick::info(w.datum).name) + " element(s), indexed from 0");
    }
  }
  (void)prefix_text;
  return true;
}

void read(const Word& w, uint32_t index, const stick::EntryData& d, const stick::Now& now,
          std::vector<Sample>& out) {
  switch (w.read) {
    case R::kTracked:
      push_number(out, 1, Type::kBool);
      return;
    case R::kTrackers:
      push_number(out, d.trackers());
      return;
    case R::kServerName:
      if (const uint32_t* k = d.server_key(); k && *k) push_owned(out, stick::name_of(*k));
      return;
    case R::kKbytes:
      if (auto v = d.value(w.datum, index, now)) push_number(out, *v / 1024);
      return;
    case R::kValue:
      if (auto v = d.value(w.datum, index, now)) push_number(out, *v);
      return;
  }
}

void read_absent(const Word& w, const stick::Table& t, std::vector<Sample>& out) {
  if (w.read == R::kServerName || w.read == R::kTracked) return;
  if (w.read == R::kTrackers || t.stores(w.datum)) push_number(out, 0);
}

bool key_of(const Sample& s, const stick::TableDef& t, std::string* out) {
  switch (s.type) {
    case Type::kIp:
      return stick::key_from_ip(t, s.ip.bytes, s.ip.v4, out);
    case Type::kInt:
    case Type::kBool:
      return stick::key_from_int(t, s.num, out);
    case Type::kString:
      return stick::key_from_text(t, s.str, out);
  }
  return false;
}

void convert(const Converter& c, std::vector<Sample>& vals) {
  const Word& w = kWords[c.word];
  const stick::Now now = stick::clock_now();
  std::vector<Sample> result;
  std::string key;
  for (const Sample& s : vals) {
    if (!key_of(s, c.table->def(), &key)) continue;
    if (auto a = c.table->find(key, now)) {
      read(w, c.index, a.data(), now, result);
    } else {
      read_absent(w, *c.table, result);
    }
  }
  vals = std::move(result);
}

}  // namespace weir::cond::stick_words
