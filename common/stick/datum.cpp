// The data a stick table stores and how `store:` writes them.

#include "common/stick/datum.h"

#include "common/base/units.h"

namespace weir::stick {
namespace {

constexpr DatumInfo kInfo[kDatumCount] = {
    {"server_key", Shape::kServerKey, false},
    {"gpt", Shape::kTag, true},
    {"gpc", Shape::kCounter, true},
    {"gpc_rate", Shape::kRate, true},
    {"conn_cnt", Shape::kCounter, false},
    {"conn_cur", Shape::kCurrent, false},
    {"conn_rate", Shape::kRate, false},
    {"sess_cnt", Shape::kCounter, false},
    {"sess_rate", Shape::kRate, false},
    {"http_req_cnt", Shape::kCounter, false},
    {"http_req_rate", Shape::kRate, false},
    {"http_err_cnt", Shape::kCounter, false},
    {"http_err_rate", Shape::kRate, false},
    {"http_fail_cnt", Shape::kCounter, false},
    {"http_fail_rate", Shape::kRate, false},
    {"bytes_in_cnt", Shape::kCounter, false},
    {"bytes_out_cnt", Shape::kCounter, false},
    {"bytes_in_rate", Shape::kRate, false},
    {"bytes_out_rate", Shape::kRate, false},
};

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// A period as store: reads it: a whole unit, or milliseconds (store: takes no
// fractions, so 1500ms stays 1500ms where format_duration_ms writes 1.5s).
std::string period_text(int64_t ms) {
  return ms < 1000 || ms % 1000 == 0 ? format_duration_ms(ms) : std::to_string(ms) + "ms";
}

}  // namespace

const DatumInfo& info(Datum d) {
  return kInfo[static_cast<int>(d)];
}

std::optional<Datum> datum_named(std::string_view name) {
  for (int i = 0; i < kDatumCount; ++i)
    if (kInfo[i].name == name) return static_cast<Datum>(i);
  return std::nullopt;
}

std::optional<Stored> parse_stored(std::string_view text, std::string* error) {
  text = trim(text);
  std::string_view name = text;
  std::string_view args;
  bool has_args = false;
  if (size_t open = text.find('('); open != std::string_view::npos) {
    if (text.back() != ')') {
      *error = "'" + std::string(text) + "': a closing ')' is missing";
      return std::nullopt;
    }
    name = trim(text.substr(0, open));
    args = text.substr(open + 1, text.size() - open - 2);
    has_args = true;
  }
  // HAProxy's shorthands: gpc0/gpc1 (the first elements of gpc), gpt0,
  // gpc0_rate/gpc1_rate.
  Stored out;
  bool shorthand = false;
  if (name == "gpc0" || name == "gpc1") {
    out.datum = Datum::kGpc;
    out.count = name == "gpc0" ? 1 : 2;
    shorthand = true;
  } else if (name == "gpt0") {
    out.datum = Datum::kGpt;
    shorthand = true;
  } else if (name == "gpc0_rate" || name == "gpc1_rate") {
    out.datum = Datum::kGpcRate;
    out.count = name == "gpc0_rate" ? 1 : 2;
    shorthand = true;
  } else if (auto d = datum_named(name)) {
    out.datum = *d;
  } else {
    std::string known;
    for (const DatumInfo& i : kInfo) known += (known.empty() ? "" : ", ") + std::string(i.name);
    *error = "unknown data type '" + std::string(name) + "' (known: " + known +
             ", and the shorthands gpc0, gpc1, gpt0, gpc0_rate, gpc1_rate)";
    return std::nullopt;
  }
  const DatumInfo& in = info(out.datum);
  const bool rate = in.shape == Shape::kRate;
  // The arguments: (N) for arrays, (period) for rates, (N, period) for gpc_rate.
  std::string_view count_text, period_text;
  if (has_args) {
    size_t comma = args.find(',');
    if (in.array && !shorthand && rate) {
      if (comma == std::string_view::npos) {
        *error =
            std::string(name) + " takes a count and a period: " + std::string(name) + "(2, 10s)";
        return std::nullopt;
      }
      count_text = trim(args.substr(0, comma));
      period_text = trim(args.substr(comma + 1));
      if (period_text.find(',') != std::string_view::npos) {
        *error = std::string(name) + ": too many arguments";
        return std::nullopt;
      }
    } else if (comma != std::string_view::npos) {
      *error = std::string(name) + ": too many arguments";
      return std::nullopt;
    } else if (in.array && !shorthand) {
      count_text = trim(args);
    } else if (rate) {
      period_text = trim(args);
    } else {
      *error = std::string(name) + " takes no argument";
      return std::nullopt;
    }
  } else if (rate) {
    *error = std::string(name) + " needs a period: " + std::string(name) +
             (in.array && !shorthand ? "(1, 10s)" : "(10s)");
    return std::nullopt;
  } else if (in.array && !shorthand) {
    *error = std::string(name) + " needs a number of elements: " + std::string(name) + "(1)";
    return std::nullopt;
  }
  if (in.array && !shorthand) {  // has_args here: "gpc()" has an empty count
    uint32_t n = 0;
    for (char c : count_text) {
      if (c < '0' || c > '9' || n > kMaxArray) {
        n = kMaxArray + 1;
        break;
      }
      n = n * 10 + static_cast<uint32_t>(c - '0');
    }
    if (n < 1 || n > kMaxArray) {
      *error = std::string(name) + ": the number of elements must be 1.." +
               std::to_string(kMaxArray) + " (got '" + std::string(count_text) + "')";
      return std::nullopt;
    }
    out.count = n;
  }
  if (rate) {
    std::string e;
    auto ms = parse_duration_ms(period_text, &e);
    if (!ms || *ms <= 0 || *ms > 30LL * 86400 * 1000) {
      *error = std::string(name) + ": the period must be a duration from 1ms to 30d" +
               (e.empty() ? "" : ": " + e);
      return std::nullopt;
    }
    out.period_ms = *ms;
  }
  return out;
}

std::string stored_text(const Stored& s) {
  const DatumInfo& in = info(s.datum);
  std::string out(in.name);
  if (in.array && in.shape == Shape::kRate) {
    out += "(" + std::to_string(s.count) + "," + period_text(s.period_ms) + ")";
  } else if (in.array) {
    out += "(" + std::to_string(s.count) + ")";
  } else if (in.shape == Shape::kRate) {
    out += "(" + period_text(s.period_ms) + ")";
  }
  return out;
}

}  // namespace weir::stick
