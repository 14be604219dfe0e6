#include "worker/observe/stats.h"

#include <unistd.h>

#include "common/base/json.h"
#include "common/event/event_loop.h"
#include "worker/backend/backend.h"
#include "worker/worker.h"

namespace weir {

// HAProxy's column order up to conn_tot (its positions 0..79), so that tools
// that read columns by position find the same data in the same place.
const char* const kStatFields[] = {"pxname",
                                   "svname",
                                   "qcur",
                                   "qmax",
                                   "scur",
                                   "smax",
                                   "slim",
                                   "stot",
                                   "bin",
                                   "bout",
                                   "dreq",
                                   "dresp",
                                   "ereq",
                                   "econ",
                                   "eresp",
                                   "wretr",
                                   "wredis",
                                   "status",
                                   "weight",
                                   "act",
                                   "bck",
                                   "chkfail",
                                   "chkdown",
                                   "lastchg",
                                   "downtime",
                                   "qlimit",
                                   "pid",
                                   "iid",
                                   "sid",
                                   "throttle",
                                   "lbtot",
                                   "tracked",
                                   "type",
                                   "rate",
                                   "rate_lim",
                                   "rate_max",
                                   "check_status",
                                   "check_code",
                                   "check_duration",
                                   "hrsp_1xx",
                                   "hrsp_2xx",
                                   "hrsp_3xx",
                                   "hrsp_4xx",
                                   "hrsp_5xx",
                                   "hrsp_other",
                                   "hanafail",
                                   "req_rate",
                                   "req_rate_max",
                                   "req_tot",
                                   "cli_abrt",
                                   "srv_abrt",
                                   "comp_in",
                                   "comp_out",
                                   "comp_byp",
                                   "comp_rsp",
                                   "lastsess",
                                   "last_chk",
                                   "last_agt",
                                   "qtime",
                                   "ctime",
                                   "rtime",
                                   "ttime",
                                   "agent_status",
                                   "agent_code",
                                   "agent_duration",
                                   "check_desc",
                                   "agent_desc",
                                   "check_rise",
                                   "check_fall",
                                   "check_health",
                                   "agent_rise",
                                   "agent_fall",
                                   "agent_health",
                                   "addr",
                                   "cookie",
                                   "mode",
                                   "algo",
                                   "conn_rate",
                                   "conn_rate_max",
                                   "conn_tot"};
const size_t kStatCount = sizeof kStatFields / sizeof kStatFields[0];

int stat_index(std::string_view name) {
  for (size_t i = 0; i < kStatCount; ++i)
    if (name == kStatFields[i]) return static_cast<int>(i);
  return -1;
}

const std::string& stat_field(const StatRow& row, std::string_view name) {
  static const std::string empty;
  int i = stat_index(name);
  return i < 0 || static_cast<size_t>(i) >= row.size() ? empty : row[static_cast<size_t>(i)];
}

namespace {

void set(StatRow& row, std::string_view name, std::string value) {
  int i = stat_index(name);
  if (i >= 0) row[static_cast<size_t>(i)] = std::move(value);
}

void set(StatRow& row, std::string_view name, uint64_t v) {
  set(row, name, std::to_string(v));
}

void set_signed(StatRow& row, std::string_view name, int64_t v) {
  set(row, name, std::to_string(v));
}

// The columns every kind of row shares.
void fill_traffic(StatRow& row, const CounterTotals& c, const TrafficCounters& tc, bool http) {
  set_signed(row, "scur", tc.current());
  set_signed(row, "smax", tc.max_seen());
  set(row, "stot", c.sessions_total);
  set(row, "bin", c.bytes_in);
  set(row, "bout", c.bytes_out);
  set(row, "ereq", c.request_errors);
  set(row, "dreq", c.denied_requests);
  set(row, "dresp", c.denied_responses);
  set(row, "rate", c.rate);
  if (http) {
    const char* names[] = {"hrsp_other", "hrsp_1xx", "hrsp_2xx",
                           "hrsp_3xx",   "hrsp_4xx", "hrsp_5xx"};
    for (int i = 0; i < 6; ++i) set(row, names[i], c.responses[i]);
  }
}

void fill_backend_side(StatRow& row, const CounterTotals& c, const TrafficCounters& tc,
                       int64_t now) {
  set(row, "econ", c.connect_errors);
  set(row, "eresp", c.response_errors);
  set(row, "wretr", c.retries);
  set(row, "wredis", c.redispatches);
  set(row, "cli_abrt", c.client_aborts);
  set(row, "srv_abrt", c.server_aborts);
  set_signed(row, "lastsess", tc.seconds_since_last_session(now));
  const char* names[] = {"qtime", "ctime", "rtime", "ttime"};
  for (int i = 0; i < 4; ++i) set_signed(row, names[i], c.avg_ms[i] < 0 ? 0 : c.avg_ms[i]);
}

}  // namespace

std::vector<StatRow> collect_stats(Worker& w, std::string_view only) {
  return collect_stats(StatSource{w.frontends(), w.backends(), w.draining(), w.start_ms()}, only);
}

std::vector<StatRow> collect_stats(const StatSource& src, std::string_view only) {
  std::vector<StatRow> rows;
  const std::string pid = std::to_string(getpid());
  const int64_t now = EventLoop::monotonic_ms();
  int iid = 0;
  for (auto& fe : src.frontends) {
    ++iid;
    if (!only.empty() && fe->name() != only) continue;
    StatRow r(kStatCount);
    const bool http = fe->mode() == Mode::kHttp;
    CounterTotals c = fe->counters().read(now);
    set(r, "pxname", fe->name());
    set(r, "svname", "FRONTEND");
    fill_traffic(r, c, fe->counters(), http);
    // A frontend's sessions are its client connections; in http mode req_tot
    // counts its requests.
    set(r, "stot", http ? c.connections_total : c.sessions_total);
    set(r, "rate", c.conn_rate);
    if (http) {
      set(r, "req_rate", c.rate);
      set(r, "req_tot", c.sessions_total);
    }
    set(r, "conn_rate", c.conn_rate);
    set(r, "conn_tot", c.connections_total);
    if (fe->maxconn()) set(r, "slim", uint64_t{fe->maxconn()});
    set(r, "status", src.draining ? "STOP" : "OPEN");
    set(r, "pid", pid);
    set(r, "iid", std::to_string(iid));
    set(r, "sid", "0");
    set(r, "type", "0");
    set(r, "mode", mode_name(fe->mode()));
    rows.push_back(std::move(r));
  }
  for (auto& be : src.backends) {
    ++iid;
    if (!only.empty() && be->name() != only) continue;
    const bool http = be->mode() == Mode::kHttp;
    uint64_t total_weight = 0;
    int usable = 0, usable_backups = 0;
    for (Server* s : be->servers()) {
      StatRow r(kStatCount);
      CounterTotals c = s->counters().read(now);
      set(r, "pxname", be->name());
      set(r, "svname", s->name());
      fill_traffic(r, c, s->counters(), http);
      fill_backend_side(r, c, s->counters(), now);
      set_signed(r, "qcur", s->queued());
      set_signed(r, "qmax", s->queue_max());
      if (s->config().maxqueue) set(r, "qlimit", uint64_t{s->config().maxqueue});
      if (s->maxconn()) set(r, "slim", uint64_t{s->maxconn()});
      std::string status = !s->check_up()    ? "DOWN"
                           : s->agent_down() ? "DOWN (agent)"
                           : s->nolb()       ? "NOLB"
                                             : "UP";
      const HealthCheckConfig& chk = s->config().check;
      if (chk.enabled) {
        Server::CheckStatus cs = s->check_status();
        // "UP 1/3": up, with 1 failure of the 3 that would take it down.
        if (s->up() && cs.health > 0 && cs.status.find("OK") == std::string::npos) {
          status += " " + std::to_string(cs.health) + "/" + std::to_string(chk.fall);
        } else if (!s->check_up() && cs.health > 0 && cs.status.find("OK") != std::string::npos) {
          status += " " + std::to_string(cs.health) + "/" + std::to_string(chk.rise);
        }
        if (!cs.status.empty()) {
          set(r, "check_status", cs.status);
          if (cs.code) set(r, "check_code", uint64_t(cs.code));
          set_signed(r, "check_duration", cs.duration_ms);
          set(r, "last_chk", cs.description);
        }
        set(r, "chkfail", cs.failed);
        set(r, "chkdown", cs.down_transitions);
        int64_t downtime = cs.downtime_ms + (cs.down_since_ms >= 0 ? now - cs.down_since_ms : 0);
        set_signed(r, "downtime", downtime / 1000);
        set(r, "check_rise", uint64_t(chk.rise));
        set(r, "check_fall", uint64_t(chk.fall));
        set(r, "check_health", uint64_t(cs.health));
      }
      if (s->config().agent.enabled) {
        Server::AgentStatus as = s->agent_status();
        if (!as.status.empty()) {
          set(r, "agent_status", as.status);
          set_signed(r, "agent_duration", as.duration_ms);
          set(r, "last_agt", as.description);
          set(r, "agent_desc", as.description);
        }
      }
      if (s->admin_state() == AdminState::kMaint) status = "MAINT";
      if (s->admin_state() == AdminState::kDrain) status = "DRAIN";
      set(r, "status", status);
      set(r, "weight", uint64_t{s->weight()});
      set(r, "act", s->backup() ? "0" : "1");
      set(r, "bck", s->backup() ? "1" : "0");
      int64_t since = s->last_change_ms() ? s->last_change_ms() : src.start_ms;
      set_signed(r, "lastchg", (now - since) / 1000);
      set(r, "pid", pid);
      set(r, "iid", std::to_string(iid));
      set(r, "sid", std::to_string(s->index() + 1));
      set(r, "lbtot", c.sessions_total);
      set(r, "type", "2");
      if (http) set(r, "req_tot", c.sessions_total);
      set(r, "addr", s->addr_text());
      set(r, "mode", mode_name(be->mode()));
      rows.push_back(std::move(r));
      if (s->selectable()) {
        ++(s->backup() ? usable_backups : usable);
        total_weight += s->backup() ? 0 : s->weight();
      }
    }
    StatRow r(kStatCount);
    CounterTotals c = be->counters().read(now);
    set(r, "pxname", be->name());
    set(r, "svname", "BACKEND");
    fill_traffic(r, c, be->counters(), http);
    fill_backend_side(r, c, be->counters(), now);
    set_signed(r, "qcur", be->queued());
    set_signed(r, "qmax", be->queue_max());
    set(r, "status", usable + usable_backups > 0 ? "UP" : "DOWN");
    set(r, "weight", total_weight);
    set(r, "act", std::to_string(usable));
    set(r, "bck", std::to_string(usable_backups));
    set(r, "pid", pid);
    set(r, "iid", std::to_string(iid));
    set(r, "sid", "0");
    set(r, "lbtot", c.sessions_total);
    set(r, "type", "1");
    if (http) set(r, "req_tot", c.sessions_total);
    set(r, "mode", mode_name(be->mode()));
    set(r, "algo", std::string(be->config().balance.algorithm));
    rows.push_back(std::move(r));
  }
  return rows;
}

std::string render_stat_csv(const std::vector<StatRow>& rows) {
  std::string out = "# ";
  for (size_t i = 0; i < kStatCount; ++i) {
    out += kStatFields[i];
    out += ',';
  }
  out += '\n';
  for (const StatRow& row : rows) {
    for (const std::string& v : row) {
      if (v.find_first_of(",\"\r\n") == std::string::npos) {
        out += v;
      } else {
        // A description holding a comma or a quote is quoted (RFC 4180), as
        // HAProxy does; a line break becomes a space: one row per line.
        out += '"';
        for (char c : v) {
          if (c == '"') out += '"';
          out += (c == '\r' || c == '\n') ? ' ' : c;
        }
        out += '"';
      }
      out += ',';
    }
    out += '\n';
  }
  return out;
}

std::string render_stat_json(const std::vector<StatRow>& rows) {
  std::string out = "[";
  for (size_t r = 0; r < rows.size(); ++r) {
    out += r ? ",\n {" : "\n {";
    bool first = true;
    for (size_t i = 0; i < kStatCount; ++i) {
      const std::string& v = rows[r][i];
      if (v.empty()) continue;
      if (!first) out += ",";
      first = false;
      out += json_string(kStatFields[i]);
      out += ":";
      bool numeric = v.find_first_not_of("0123456789") == std::string::npos ||
                     (v[0] == '-' && v.size() > 1 &&
                      v.find_first_not_of("0123456789", 1) == std::string::npos);
      out += numeric ? v : json_string(v);
    }
    out += "}";
  }
  out += "\n]\n";
  return out;
}

}  // namespace weir
