#pragma once
// The runtime-API commands on stick tables (doc/management.md):
//
//   show table                                  every table: size, used, evicted, expired, refused
//   show table NAME [data.X OP V]... [key K]    its entries (those matching every filter, or key K)
//   clear table NAME [key K | data.X OP V...]   removes entries nobody tracks (all, one, or
//   matching) set table NAME key K data.X V [data.Y V]... makes or changes an entry
//
// X is a stored datum (http_req_rate, conn_cur, server_key...), an element of
// an array (gpc(1), gpt(0), gpc_rate(0)) or a shorthand (gpc0, gpc1, gpt0); OP is
// eq, ne, le, lt, ge or gt. The parser is apart from the commands so that it
// can be fuzzed (tests/fuzz/table_command_fuzz.cpp).

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/stick/datum.h"

namespace weir::stick {

// One datum (and element) of an entry, as `data.X` names it.
struct DataRef {
  Datum datum = Datum::kConnCnt;
  uint32_t index = 0;
};
std::optional<DataRef> parse_data_ref(std::string_view text);
// How `show table` names it: "conn_cur", "http_req_rate(10000)", "gpc(1)", "gpc_rate(0,10000)".
std::string data_label(const DataRef& d, int64_t period_ms);

struct TableCommand {
  enum class Verb : uint8_t { kShow, kClear, kSet } verb = Verb::kShow;
  std::string table;  // empty: `show table` of every table
  std::optional<std::string> key;
  struct Filter {
    DataRef data;
    enum class Op : uint8_t { kEq, kNe, kLe, kLt, kGe, kGt } op = Op::kEq;
    int64_t value = 0;
    bool accepts(int64_t v) const;
  };
  std::vector<Filter> filters;
  struct Assignment {
    DataRef data;
    std::string value;  // a number, or a server's name for server_key
  };
  std::vector<Assignment> sets;
};

// The words after "show table" / "clear table" / "set table"; nullopt with
// *error (the answer's text, without "Error: ") when they are not valid.
std::optional<TableCommand> parse_table_command(TableCommand::Verb verb,
                                                const std::vector<std::string_view>& args,
                                                std::string* error);

}  // namespace weir::stick
