#pragma once
// What an entry of a stick table can store (`store:` of a table), with
// HAProxy's names and meanings: counters, current values, rates over a
// period, tags and the sticky server's name (doc/stick-tables.md).

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace weir::stick {

// The numbers travel in the peers agent's messages and state file
// (common/proto/peers.proto): a new datum goes at the end, before kCount.
enum class Datum : uint8_t {
  kServerKey,  // the name of the server a client sticks to (last writer wins)
  kGpt,        // gpt(N): N general-purpose tags, set by sc_set_gpt (last writer wins)
  kGpc,        // gpc(N): N general-purpose counters, sc_inc_gpc / sc_clr_gpc
  kGpcRate,    // gpc_rate(N, period): the rate of each gpc's increments
  kConnCnt,
  kConnCur,
  kConnRate,
  kSessCnt,
  kSessRate,
  kHttpReqCnt,
  kHttpReqRate,
  kHttpErrCnt,
  kHttpErrRate,
  kHttpFailCnt,
  kHttpFailRate,
  kBytesInCnt,
  kBytesOutCnt,
  kBytesInRate,
  kBytesOutRate,
  kCount,
};
inline constexpr int kDatumCount = static_cast<int>(Datum::kCount);

enum class Shape : uint8_t {
  kCounter,    // only grows, until cleared: a Counter
  kCurrent,    // goes up and down (conn_cur): a Counter read as signed
  kRate,       // events per period: a Rate
  kTag,        // a 32-bit value set by rules (gpt)
  kServerKey,  // a server name, kept as an id of the process's name list
};

struct DatumInfo {
  std::string_view name;  // as `store:` writes it
  Shape shape;
  bool array;  // gpc, gpt, gpc_rate: N elements
};
const DatumInfo& info(Datum d);
std::optional<Datum> datum_named(std::string_view name);

// One item of `store:`: the datum, its number of elements (gpc, gpt, gpc_rate)
// and its period (rates).
struct Stored {
  Datum datum = Datum::kConnCnt;
  uint32_t count = 1;
  int64_t period_ms = 0;
};

// The most elements an array datum may have (gpc(N), gpt(N)).
inline constexpr uint32_t kMaxArray = 100;

// "conn_cur", "http_req_rate(10s)", "gpc(3)", "gpc_rate(2,1m)", and HAProxy's
// shorthands "gpc0" / "gpc1" (gpc of 1 / 2 elements), "gpt0",
// "gpc0_rate(10s)" / "gpc1_rate(10s)". nullopt with *error (one line).
std::optional<Stored> parse_stored(std::string_view text, std::string* error);
// The item as `store:` would write it ("http_req_rate(10s)").
std::string stored_text(const Stored& s);

}  // namespace weir::stick
