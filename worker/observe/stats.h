#pragma once
// The statistics table behind `show stat`, the stats page and its CSV export:
// one row per frontend, server and backend, with columns named and ordered as
// HAProxy's CSV so that existing scripts and dashboards can read them. A column
// weir does not track is empty.

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace weir {

class Backend;
class Frontend;
class Worker;

extern const char* const kStatFields[];
extern const size_t kStatCount;

// One row: kStatCount values, in kStatFields order.
using StatRow = std::vector<std::string>;

// Index of a column, or -1.
int stat_index(std::string_view name);
// The value of a column in a row ("" when empty or unknown).
const std::string& stat_field(const StatRow& row, std::string_view name);

// What the table is read from: a worker's frontends and backends.
struct StatSource {
  const std::vector<std::unique_ptr<Frontend>>& frontends;
  const std::vector<std::unique_ptr<Backend>>& backends;
  bool draining = false;  // frontends show STOP instead of OPEN
  int64_t start_ms = 0;   // lastchg of a server that never changed counts from here
};

// Frontends, then each backend's servers followed by the backend's own row.
// With `only`, the rows of that frontend or backend.
std::vector<StatRow> collect_stats(const StatSource& src, std::string_view only);
std::vector<StatRow> collect_stats(Worker& w, std::string_view only);

std::string render_stat_csv(const std::vector<StatRow>& rows);
std::string render_stat_json(const std::vector<StatRow>& rows);

}  // namespace weir
