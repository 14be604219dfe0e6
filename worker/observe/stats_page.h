#pragma once
// The HTML statistics page a frontend serves with `stats: {uri: ...}`: one table per
// frontend and backend, a row per server coloured by its state, built only from
// collect_stats() so that it always shows what `show stat` shows. Also the basic
// authentication that may guard it.

#include <cstdint>
#include <string>
#include <string_view>

#include "common/config/config.h"

namespace weir {

class Worker;

// A self-contained HTML5 document (inline CSS, no script, no external resource).
std::string render_stats_html(Worker& w, const StatsPageConfig& config);

// The CSV export (uri + ";csv"): the same text as `show stat`.
std::string render_stats_csv(Worker& w);

// True when the page needs no credentials, or when `authorization` (the value of the
// request's Authorization header, "" when absent) carries the Basic credentials of one
// of the configured users. Passwords are compared in constant time.
bool stats_authorized(const StatsPageConfig& config, std::string_view authorization);

// Standard base64 (RFC 4648 alphabet; the '=' padding may be left out); false on
// invalid input.
bool base64_decode(std::string_view in, std::string* out);

// "&", "<", ">", '"' and "'" as character references.
std::string html_escape(std::string_view text);

// A duration in seconds the way the page shows it: "42s", "1m12s", "3h05m", "2d04h".
std::string human_seconds(int64_t seconds);

}  // namespace weir
