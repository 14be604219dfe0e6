#include "worker/observe/stats_page.h"

#include "common/stick/table.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <vector>

#include "common/base/units.h"
#include "common/base/version.h"
#include "common/event/event_loop.h"
#include "worker/observe/stats.h"
#include "worker/peers/link.h"
#include "worker/worker.h"

namespace weir {
namespace {

// One column of a proxy table: the show-stat field it shows, under a group heading.
struct Column {
  const char* group;
  const char* title;
  const char* field;
  const char* tip;  // the title attribute of the heading
};

constexpr Column kColumns[] = {
    {"Queue", "Cur", "qcur", "requests waiting for a server slot"},
    {"Queue", "Max", "qmax", "most requests waiting at once"},
    {"Session rate", "Cur", "rate", "sessions in the last second"},
    {"Sessions", "Cur", "scur", "sessions in progress"},
    {"Sessions", "Max", "smax", "most sessions in progress at once"},
    {"Sessions", "Limit", "slim", "maxconn"},
    {"Sessions", "Total", "stot", "sessions handled"},
    {"Sessions", "LbTot", "lbtot", "times chosen by the load balancer"},
    {"Sessions", "Last", "lastsess", "seconds since the last session"},
    {"Bytes", "In", "bin", "bytes received from clients"},
    {"Bytes", "Out", "bout", "bytes sent to clients"},
    {"Errors", "Req", "ereq", "malformed or timed-out requests"},
    {"Errors", "Conn", "econ", "failed connections to servers"},
    {"Errors", "Resp", "eresp", "invalid, truncated or timed-out responses"},
    {"Warnings", "Retr", "wretr", "connection retries"},
    {"Aborts", "Cli", "cli_abrt", "transfers aborted by the client"},
    {"Aborts", "Srv", "srv_abrt", "transfers aborted by the server"},
    {"Server", "Status", "status", "state"},
    {"Server", "LastChk", "check_status", "result of the last health check"},
    {"Server", "LastChg", "lastchg", "time since the last state change"},
    {"Server", "Chk", "chkfail", "failed health checks"},
    {"Server", "Dwn", "chkdown", "UP to DOWN transitions"},
    {"Server", "Dwntme", "downtime", "time spent DOWN"},
    {"Server", "Wght", "weight", "weight (backend: of the usable servers)"},
    {"Server", "Act", "act", "usable servers"},
    {"Server", "Bck", "bck", "backup servers"},
    {"Server", "Addr", "addr", "address"},
    {"Avg time (ms)", "Q", "qtime", "average time in the queue"},
    {"Avg time (ms)", "C", "ctime", "average connect time"},
    {"Avg time (ms)", "R", "rtime", "average response time"},
    {"Avg time (ms)", "T", "ttime", "average total time"},
};

constexpr Column kHttpColumns[] = {
    {"HTTP", "Req/s", "req_rate", "requests in the last second"},
    {"HTTP", "1xx", "hrsp_1xx", "1xx responses"},
    {"HTTP", "2xx", "hrsp_2xx", "2xx responses"},
    {"HTTP", "3xx", "hrsp_3xx", "3xx responses"},
    {"HTTP", "4xx", "hrsp_4xx", "4xx responses"},
    {"HTTP", "5xx", "hrsp_5xx", "5xx responses"},
    {"HTTP", "Other", "hrsp_other", "other responses"},
};

constexpr const char* kStyle = R"(
body { font-family: sans-serif; font-size: 13px; margin: 1em; color: #222; background: #fff; }
h1 { font-size: 18px; margin: 0 0 .3em; }
p.info span { margin-right: 1.2em; }
ul.legend { list-style: none; padding: 0; margin: .5em 0 1.2em; }
ul.legend li { display: inline-block; margin-right: 1em; padding: 1px 6px; border: 1px solid #999; }
table.proxy { border-collapse: collapse; margin: 0 0 1.5em; }
table.proxy caption { text-align: left; font-weight: bold; padding: .3em 0; font-size: 14px; }
th, td { border: 1px solid #999; padding: 2px 5px; white-space: nowrap; }
th { background: #dde; font-weight: normal; }
th.group { background: #ccd; font-weight: bold; }
td { text-align: right; }
td.name, td.status, td.check_status, td.addr { text-align: left; }
td.name { font-weight: bold; }
tr.frontend td, tr.backend td { font-weight: bold; }
.state-open, .state-up { background: #c8f0c0; }
tr.backend.state-up td { background: #9ed894; }
.state-drain, .state-nolb { background: #f2e488; }
.state-maint { background: #b4c4dc; }
.state-down, .state-stop { background: #f2a2a2; }
)";

// The class of a row's state: its status column, in lower case.
std::string state_class(const std::string& status) {
  std::string out = "state-";
  for (char c : status) out += static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
  if (status.empty()) out += "unknown";
  return out;
}

void add(std::string& out, const char* a) {
  out += a;
}

void add_escaped(std::string& out, std::string_view text) {
  out += html_escape(text);
}

// The text of one cell.
std::string cell_value(const StatRow& row, const Column& col, bool server) {
  std::string_view field = col.field;
  const std::string& v = stat_field(row, field);
  if (field == "check_status") return server && v.empty() ? "-" : v;
  if ((field == "lastchg" || field == "downtime") && !v.empty()) {
    char* end = nullptr;
    const long long s = std::strtoll(v.c_str(), &end, 10);
    return end && *end == '\0' ? human_seconds(s) : v;
  }
  return v;
}

void render_table(std::string& out, const std::vector<const StatRow*>& rows, bool frontend) {
  const StatRow& first = *rows.front();
  const std::string& name = stat_field(first, "pxname");
  const std::string& mode = stat_field(first, "mode");
  const bool http = mode == "http";
  std::vector<const Column*> cols;
  for (const Column& c : kColumns) cols.push_back(&c);
  if (http)
    for (const Column& c : kHttpColumns) cols.push_back(&c);

  const char* kind = frontend ? "frontend" : "backend";
  add(out, "<table class=\"proxy ");
  add(out, kind);
  add(out, "\" id=\"");
  add(out, kind);
  out += '-';
  add_escaped(out, name);
  add(out, "\" data-proxy=\"");
  add_escaped(out, name);
  add(out, "\">\n<caption>");
  add(out, frontend ? "Frontend " : "Backend ");
  add_escaped(out, name);
  add(out, " <small>(");
  add_escaped(out, mode);
  add(out, ")</small></caption>\n<thead>\n<tr><th class=\"group\" rowspan=\"2\">Name</th>");
  for (size_t i = 0; i < cols.size();) {
    size_t j = i;
    while (j < cols.size() && std::string_view(cols[j]->group) == cols[i]->group) ++j;
    out += "<th class=\"group\" colspan=\"" + std::to_string(j - i) + "\">";
    add(out, cols[i]->group);
    add(out, "</th>");
    i = j;
  }
  add(out, "</tr>\n<tr>");
  for (const Column* c : cols) {
    add(out, "<th title=\"");
    add_escaped(out, c->tip);
    add(out, "\">");
    add(out, c->title);
    add(out, "</th>");
  }
  add(out, "</tr>\n</thead>\n<tbody>\n");
  for (const StatRow* row : rows) {
    const std::string& svname = stat_field(*row, "svname");
    const bool server = svname != "FRONTEND" && svname != "BACKEND";
    add(out, "<tr class=\"");
    add(out, server ? "server" : frontend ? "frontend" : "backend");
    out += ' ';
    add_escaped(out, state_class(stat_field(*row, "status")));
    add(out, "\" data-name=\"");
    add_escaped(out, svname);
    add(out, "\"><td class=\"name\">");
    add_escaped(out, server ? svname : frontend ? "Frontend" : "Backend");
    add(out, "</td>");
    for (const Column* c : cols) {
      add(out, "<td class=\"");
      add(out, c->field);
      add(out, "\">");
      add_escaped(out, cell_value(*row, *c, server));
      add(out, "</td>");
    }
    add(out, "</tr>\n");
  }
  add(out, "</tbody>\n</table>\n");
}

int base64_digit(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

// Equal strings, in a time that depends only on the length of `given`.
bool constant_time_equal(std::string_view given, std::string_view expected) {
  unsigned diff = given.size() != expected.size() ? 1U : 0U;
  for (size_t i = 0; i < given.size(); ++i) {
    const char e = expected.empty() ? '\0' : expected[i % expected.size()];
    diff |= static_cast<unsigned char>(given[i] ^ e);
  }
  return diff == 0;
}

bool ascii_iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

}  // namespace

std::string html_escape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string human_seconds(int64_t s) {
  if (s < 0) s = 0;
  char buf[48];
  const long long v = s;
  if (v < 60) {
    std::snprintf(buf, sizeof buf, "%llds", v);
  } else if (v < 3600) {
    std::snprintf(buf, sizeof buf, "%lldm%02llds", v / 60, v % 60);
  } else if (v < 86400) {
    std::snprintf(buf, sizeof buf, "%lldh%02lldm", v / 3600, v % 3600 / 60);
  } else {
    std::snprintf(buf, sizeof buf, "%lldd%02lldh", v / 86400, v % 86400 / 3600);
  }
  return buf;
}

bool base64_decode(std::string_view in, std::string* out) {
  out->clear();
  while (!in.empty() && in.back() == '=') in.remove_suffix(1);
  if (in.size() % 4 == 1) return false;
  unsigned acc = 0;
  int bits = 0;
  for (char c : in) {
    const int d = base64_digit(c);
    if (d < 0) return false;
    acc = (acc << 6) | static_cast<unsigned>(d);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out->push_back(static_cast<char>((acc >> bits) & 0xff));
    }
  }
  return true;
}

bool stats_authorized(const StatsPageConfig& config, std::string_view authorization) {
  if (config.users.empty()) return true;
  // "Basic" 1*SP token68 (the scheme is case-insensitive).
  const size_t sp = authorization.find(' ');
  if (sp == std::string_view::npos || !ascii_iequals(authorization.substr(0, sp), "basic")) {
    return false;
  }
  std::string_view token = authorization.substr(sp);
  while (!token.empty() && (token.front() == ' ' || token.front() == '\t')) token.remove_prefix(1);
  while (!token.empty() && (token.back() == ' ' || token.back() == '\t')) token.remove_suffix(1);
  std::string credentials;
  if (token.empty() || !base64_decode(token, &credentials)) return false;
  const size_t colon = credentials.find(':');
  if (colon == std::string::npos) return false;
  const std::string_view user = std::string_view(credentials).substr(0, colon);
  const std::string_view password = std::string_view(credentials).substr(colon + 1);
  // Every user is compared, with no early exit, so the time taken does not tell
  // which name exists or how much of a password matched.
  bool ok = false;
  for (const auto& [name, secret] : config.users) {
    const bool name_ok = constant_time_equal(user, name);
    const bool password_ok = constant_time_equal(password, secret);
    ok |= name_ok & password_ok;
  }
  return ok;
}

std::string render_stats_csv(Worker& w) {
  return render_stat_csv(collect_stats(w, ""));
}

namespace {

// The stick tables: one row each, with what `show table` says of them.
void render_stick_tables(std::string& out, const Worker& w) {
  const auto& tables = w.config().stick_tables;
  if (tables.empty()) return;
  add(out,
      "<table class=\"proxy stick-tables\">\n<thead>\n<tr><th class=\"pxname\" colspan=\"7\">"
      "stick tables</th></tr>\n<tr><th>table</th><th>type</th><th>size</th><th>used</th>"
      "<th>evicted</th><th>expired</th><th>refused</th></tr>\n</thead>\n<tbody>\n");
  for (const auto& t : tables) {
    add(out, "<tr class=\"stick-table\"><td>");
    add_escaped(out, t->name());
    add(out, "</td><td>");
    add_escaped(out, stick::key_type_name(t->def().type));
    for (uint64_t v : {t->size(), t->used(), t->evicted(), t->expired(), t->refused()}) {
      out += "</td><td>" + std::to_string(v);
    }
    add(out, "</td></tr>\n");
  }
  add(out, "</tbody>\n</table>\n");
}

// The other nodes of the cluster, as this node's peers agent sees them.
void render_cluster(std::string& out) {
  PeersLink* link = PeersLink::current();
  if (!link) return;
  const PeersLink::Stats s = link->stats();
  if (s.local_node.empty()) return;
  add(out,
      "<table class=\"proxy cluster\">\n<thead>\n<tr><th class=\"pxname\" colspan=\"8\">"
      "cluster (this node: ");
  add_escaped(out, s.local_node);
  add(out,
      ")</th></tr>\n<tr><th>node</th><th>address</th><th>out</th><th>in</th><th>in flight</th>"
      "<th>lag ms</th><th>resync</th><th>refused</th></tr>\n</thead>\n<tbody>\n");
  for (const proto::NodeStats& n : s.nodes) {
    add(out, "<tr class=\"node\"><td>");
    add_escaped(out, n.name());
    add(out, "</td><td>");
    add_escaped(out, n.address());
    add(out, n.out_linked() ? "</td><td>up" : "</td><td>down");
    add(out, n.in_linked() ? "</td><td>up" : "</td><td>down");
    out += "</td><td>" + std::to_string(n.in_flight()) + "</td><td>" + std::to_string(n.lag_ms()) +
           "</td><td>";
    add_escaped(out, n.resync());
    out += "</td><td>" + std::to_string(n.refused());
    add(out, "</td></tr>\n");
  }
  add(out, "</tbody>\n</table>\n");
}

}  // namespace

std::string render_stats_html(Worker& w, const StatsPageConfig& config) {
  const std::vector<StatRow> rows = collect_stats(w, "");
  const int64_t uptime = EventLoop::monotonic_ms() - w.start_ms();
  std::string out;
  out.reserve(8192 + rows.size() * 1500);
  add(out, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
  if (config.refresh_ms > 0) {
    out += "<meta http-equiv=\"refresh\" content=\"" +
           std::to_string((config.refresh_ms + 999) / 1000) + "\">\n";
  }
  // No favicon request: the page loads nothing but itself.
  add(out, "<link rel=\"icon\" href=\"data:,\">\n<title>weir statistics</title>\n<style>");
  add(out, kStyle);
  add(out, "</style>\n</head>\n<body>\n<header>\n<h1>weir statistics</h1>\n<p class=\"info\">");
  if (!config.hide_version) {
    add(out, "<span class=\"version\">version ");
    add_escaped(out, version());
    add(out, "</span>");
  }
  out += "<span class=\"pid\">pid " + std::to_string(getpid()) + "</span>";
  out += "<span class=\"generation\">generation " + std::to_string(w.generation()) + "</span>";
  out += "<span class=\"uptime\">uptime " + format_uptime_ms(uptime) + "</span>";
  out += "<span class=\"threads\">threads " + std::to_string(w.config().global.threads) + "</span>";
  out += "<span class=\"connections\">connections " + std::to_string(w.current_connections()) +
         " / " + std::to_string(w.config().global.maxconn) + "</span>";
  if (w.draining()) add(out, "<span class=\"draining\">draining</span>");
  if (config.refresh_ms > 0) {
    out += "<span class=\"refresh\">refresh every " +
           std::to_string((config.refresh_ms + 999) / 1000) + "s</span>";
  }
  add(out, "<a href=\"");
  add_escaped(out, config.uri);
  add(out, ";csv\">CSV export</a></p>\n<ul class=\"legend\">");
  add(out, "<li class=\"state-up\">up</li><li class=\"state-drain\">drain</li>");
  add(out, "<li class=\"state-maint\">maintenance</li><li class=\"state-down\">down</li>");
  add(out, "</ul>\n</header>\n<main>\n");
  // Group consecutive rows by proxy: each frontend row alone, each backend's
  // servers together with its BACKEND row.
  size_t i = 0;
  while (i < rows.size()) {
    const std::string& px = stat_field(rows[i], "pxname");
    const bool frontend = stat_field(rows[i], "svname") == "FRONTEND";
    std::vector<const StatRow*> group;
    size_t j = i;
    while (j < rows.size() && stat_field(rows[j], "pxname") == px &&
           (stat_field(rows[j], "svname") == "FRONTEND") == frontend) {
      group.push_back(&rows[j]);
      const bool end = stat_field(rows[j], "svname") == "BACKEND" || frontend;
      ++j;
      if (end) break;
    }
    render_table(out, group, frontend);
    i = j;
  }
  render_stick_tables(out, w);
  render_cluster(out);
  add(out, "</main>\n</body>\n</html>\n");
  return out;
}

}  // namespace weir
