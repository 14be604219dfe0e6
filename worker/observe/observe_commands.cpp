// The runtime-API commands that read what a worker observes: its identity and
// totals, the statistics table, the captured protocol errors; and `reopen logs`
// for the access-log files (doc/management.md, "Runtime API").

#include <unistd.h>

#include "common/base/log.h"
#include "common/base/units.h"
#include "common/base/version.h"
#include "common/event/event_loop.h"
#include "worker/api/command.h"
#include "worker/observe/error_capture.h"
#include "worker/observe/stats.h"
#include "worker/worker.h"

namespace weir {
namespace {

std::string show_info(Worker& w, const ApiArgs&) {
  uint64_t requests = 0, connections = 0, req_rate = 0, conn_rate = 0;
  const int64_t now = EventLoop::monotonic_ms();
  for (auto& fe : w.frontends()) {
    CounterTotals c = fe->counters().read(now);
    requests += c.sessions_total;
    connections += c.connections_total;
    req_rate += c.rate;
    conn_rate += c.conn_rate;
  }
  std::string out;
  auto line = [&out](const std::string& k, const std::string& v) {
    out += k;
    out += ": ";
    out += v;
    out += '\n';
  };
  int64_t up = now - w.start_ms();
  line("Name", "weir");
  line("Version", version());
  line("Pid", std::to_string(getpid()));
  line("Generation", std::to_string(w.generation()));
  line("Uptime", format_uptime_ms(up));
  line("Uptime_sec", std::to_string(up / 1000));
  line("Threads", std::to_string(w.config().global.threads));
  line("Ulimit-n", std::to_string(w.fd_budget().limit));
  line("Maxsock", std::to_string(w.fd_budget().needed));
  line("Maxconn", std::to_string(w.config().global.maxconn));
  line("Hard_maxconn", std::to_string(w.fd_budget().wanted));
  line("Maxpipes", std::to_string(w.fd_budget().pipes));
  line("Pipes", std::to_string(w.pipes()));
  line("CurrConns", std::to_string(w.current_connections()));
  line("CumConns", std::to_string(connections));
  line("CumReq", std::to_string(requests));
  line("ConnRate", std::to_string(conn_rate));
  line("SessRate", std::to_string(req_rate));
  line("DroppedLogs", std::to_string(w.dropped_log_lines()));
  line("FdShortages", std::to_string(w.fd_shortages()));
  line("BufferWaits", std::to_string(w.buffer_waits()));
  uint64_t tls_failures = 0;
  for (auto& fe : w.frontends()) tls_failures += fe->tls_failures();
  line("SslHandshakeFailures", std::to_string(tls_failures));
  // accept_proxy binds: headers read, and connections refused by reason.
  line("ProxyHeaders", std::to_string(w.proxy_stats().accepted()));
  for (int i = 0; i < proxy_protocol::kRefusals; ++i) {
    const auto r = static_cast<proxy_protocol::Refusal>(i);
    std::string name = proxy_protocol::refusal_name(r);
    name[0] = static_cast<char>(name[0] - 'a' + 'A');
    line("ProxyRefused" + name, std::to_string(w.proxy_stats().refused(r)));
  }
  line("Frontends", std::to_string(w.frontends().size()));
  line("Backends", std::to_string(w.backends().size()));
  line("State", w.draining() ? "draining" : "current");
  return out;
}

std::string show_stat(Worker& w, const ApiArgs& args) {
  bool json = false;
  std::string_view only;
  for (std::string_view a : args) {
    if (a == "json") {
      json = true;
    } else if (a == "csv") {
      json = false;
    } else {
      only = a;
    }
  }
  std::vector<StatRow> rows = collect_stats(w, only);
  if (!only.empty() && rows.empty()) {
    return "Error: no frontend or backend named '" + std::string(only) + "'";
  }
  return json ? render_stat_json(rows) : render_stat_csv(rows);
}

std::string reopen_logs(Worker& w, const ApiArgs& args) {
  if (!args.empty()) return "Error: usage: reopen logs";
  bool ok = true;
  std::string out = w.reopen_logs(&ok);
  if (!ok && out.rfind("Error:", 0) != 0) {
    // The answer starts with "Error:" whenever one file failed, so that weirctl
    // (and logrotate's postrotate) sees the failure.
    std::string errors, rest;
    size_t pos = 0;
    while (pos < out.size()) {
      size_t nl = out.find('\n', pos);
      std::string line =
          out.substr(pos, nl == std::string::npos ? std::string::npos : nl - pos + 1);
      (line.rfind("Error:", 0) == 0 ? errors : rest) += line;
      pos = nl == std::string::npos ? out.size() : nl + 1;
    }
    out = errors + rest;
  }
  if (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

std::string show_errors(Worker& w, const ApiArgs&) {
  std::string out;
  auto one = [&out](const char* kind, const std::string& name, const char* side,
                    ErrorCapture& cap) {
    CapturedError e;
    uint64_t n = cap.count(&e);
    if (n == 0) return;
    out += "[" + log::iso8601_ms(e.when_ms) + "] " + kind + " " + name + ": invalid " + side +
           " (" + std::to_string(n) + " so far)\n";
    out += "  from " + e.peer + ": " + e.what + " at byte " + std::to_string(e.offset) + " of " +
           std::to_string(e.total) + "\n";
    out += dump_capture(e);
    out += "\n";
  };
  for (auto& fe : w.frontends()) one("frontend", fe->name(), "request", fe->errors());
  for (auto& be : w.backends()) one("backend", be->name(), "response", be->errors());
  if (out.empty()) return "No errors captured.";
  return out;
}

constexpr ApiCommand kObserveCommands[] = {
    {"show info", ApiLevel::kUser,
     "show info           version, pid, generation, uptime, threads, connections", show_info},
    {"show stat", ApiLevel::kUser,
     "show stat [csv|json] [name]   counters per frontend, backend and server", show_stat},
    {"show errors", ApiLevel::kOperator,
     "show errors        the last malformed request and response, with their bytes", show_errors},
    {"reopen logs", ApiLevel::kOperator,
     "reopen logs        reopen access-log files (after logrotate)", reopen_logs},
};
const Registrar<ApiCommand> kRegisterObserveCommands(kObserveCommands);

}  // namespace
}  // namespace weir
