#pragma once
// The statistics table behind `show stat`, the stats page and its CSV export:
// one row per frontend, server and backend, with columns named and ordered as
// HAProxy's CSV so that existing scripts and dashboards can read them. A column
// weir does not track is empty.

#include <string>
#include <string_view>
#include <vector>

namespace weir {

class Worker;

extern const char* const kStatFields[];
extern const size_t kStatCount;

// One row: kStatCount values, in kStatFields order.
using StatRow = std::vector<std::string>;

// Index of a column, or -1.
int stat_index(std::string_view name);
// The value of a column in a row ("" when empty or unknown).
const std::string& stat_field(const StatRow& row, std::string_view name);

// Frontends, then each backend's servers followed by the backend's own row.
// With `only`, the rows of that frontend or backend.
std::vector<StatRow> collect_stats(Worker& w, std::string_view only);

std::string render_stat_csv(const std::vector<StatRow>& rows);
std::string render_stat_json(const std::vector<StatRow>& rows);

}  // namespace weir
