#include "worker/api/runtime_api.h"

#include <arpa/inet.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <functional>
#include <mutex>
#include <optional>

#include "common/base/log.h"
#include "common/base/net.h"
#include "common/base/units.h"
#include "common/base/version.h"
#include "worker/backend/backend.h"
#include "worker/observe/stats.h"
#include "worker/session.h"
#include "worker/thread_context.h"
#include "worker/worker.h"

namespace weir {
namespace {

constexpr size_t kMaxPending = 64 * 1024;

using Args = std::vector<std::string_view>;

struct ApiCommand {
  std::string_view name;   // one or more words
  ApiLevel level;          // minimum endpoint level
  std::string_view usage;  // for help
  std::string (*run)(Worker& w, const Args& args);
  // When set, the level these arguments need (some settings of a command are
  // reserved to a higher level than the command itself).
  ApiLevel (*level_for)(const Args& args) = nullptr;
};

const char* level_name(ApiLevel l) {
  switch (l) {
    case ApiLevel::kUser:
      return "user";
    case ApiLevel::kOperator:
      return "operator";
    case ApiLevel::kAdmin:
      return "admin";
  }
  return "?";
}

std::string cmd_show_info(Worker& w, const Args&) {
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
  auto line = [&out](const char* k, const std::string& v) {
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
  line("Frontends", std::to_string(w.frontends().size()));
  line("Backends", std::to_string(w.backends().size()));
  line("State", w.draining() ? "draining" : "current");
  return out;
}

std::string cmd_help(Worker&, const Args&);

// Every certificate the TLS binds serve, with what an operator checks first.
std::string cmd_show_ssl_certs(Worker& w, const Args&) {
  std::string out;
  const int64_t now = static_cast<int64_t>(time(nullptr));
  auto date = [](int64_t t) {
    char buf[32];
    time_t tt = static_cast<time_t>(t);
    tm tmv{};
    gmtime_r(&tt, &tmv);
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tmv);
    return std::string(buf);
  };
  for (const auto& t : w.tls_fronts()) {
    for (const tls::CertInfo& c : t.ctx->certs()) {
      std::string sans;
      for (const std::string& n : c.names) sans += (sans.empty() ? "" : ",") + n;
      out += "frontend: " + t.fe->name() + "\n";
      out += "file: " + c.file + "\n";
      out += "key: " + c.key_type + "\n";
      out += "subject: " + c.subject + "\n";
      out += "sans: " + sans + "\n";
      out += "issuer: " + c.issuer + "\n";
      out += "serial: " + c.serial + "\n";
      out += "not_before: " + date(c.not_before) + "\n";
      out += "not_after: " + date(c.not_after) + "\n";
      out += "expires_in: " + std::to_string(c.not_after - now) + "s" +
             (c.not_after < now ? " (expired)" : "") + "\n\n";
    }
  }
  if (out.empty()) return "No TLS certificate is loaded (no bind has tls:).";
  out.pop_back();
  return out;
}

// --- statistics ---------------------------------------------------------------

std::string cmd_show_stat(Worker& w, const Args& args) {
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

std::string cmd_show_servers_state(Worker& w, const Args& args) {
  std::string_view only = args.empty() ? std::string_view() : args[0];
  const int64_t now = EventLoop::monotonic_ms();
  std::string out =
      "# backend server address admin_state weight configured_weight maxconn scur stot "
      "op_state check_status\n";
  bool found = only.empty();
  for (auto& be : w.backends()) {
    if (!only.empty() && be->name() != only) continue;
    found = true;
    for (Server* s : be->servers()) {
      CounterTotals c = s->counters().read(now);
      out += be->name() + " " + s->name() + " " + s->addr_text() + " " +
             admin_state_name(s->admin_state()) + " " + std::to_string(s->weight()) + " " +
             std::to_string(s->configured_weight()) + " " + std::to_string(s->maxconn()) + " " +
             std::to_string(s->counters().current()) + " " + std::to_string(c.sessions_total) +
             (s->up() ? " up " : " down ");
      std::string check = s->config().check.enabled ? s->check_status().status : "";
      out += (check.empty() ? "-" : check) + "\n";
    }
  }
  if (!found) return "Error: no backend named '" + std::string(only) + "'";
  return out;
}

// "backend/server" -> the server, or an error message in *error.
Server* find_server_arg(Worker& w, std::string_view arg, std::string* error) {
  size_t slash = arg.find('/');
  if (slash == std::string_view::npos) {
    *error = "Error: expected <backend>/<server>, got '" + std::string(arg) + "'";
    return nullptr;
  }
  std::string_view bname = arg.substr(0, slash);
  std::string_view sname = arg.substr(slash + 1);
  for (auto& be : w.backends()) {
    if (be->name() != bname) continue;
    if (Server* s = be->find_server(sname)) return s;
    *error =
        "Error: backend '" + std::string(bname) + "' has no server '" + std::string(sname) + "'";
    return nullptr;
  }
  *error = "Error: no backend named '" + std::string(bname) + "'";
  return nullptr;
}

std::string set_state(Worker& w, std::string_view target, AdminState st) {
  std::string error;
  Server* s = find_server_arg(w, target, &error);
  if (!s) return error;
  AdminState before = s->admin_state();
  s->backend()->set_server_state(s, st, EventLoop::monotonic_ms());
  if (before != st) {
    log::notice("server %.*s: state %s -> %s (runtime API)", static_cast<int>(target.size()),
                target.data(), admin_state_name(before), admin_state_name(st));
  }
  return "";
}

// "N" -> N within [0, max]; nullopt otherwise.
std::optional<uint32_t> parse_count(std::string_view text, uint32_t max) {
  if (text.empty() || text.size() > 10) return std::nullopt;
  uint64_t n = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    n = n * 10 + static_cast<uint64_t>(c - '0');
  }
  if (n > max) return std::nullopt;
  return static_cast<uint32_t>(n);
}

constexpr uint32_t kMaxServerMaxconn = 1000000;

std::string set_server_addr(Worker& w, Server* s, const Args& args) {
  // set server <b>/<s> addr <ip>[:<port>] [port <port>]: HAProxy's form, and the
  // ip:port form of add server and of the configuration.
  const char* usage =
      "Error: usage: set server <backend>/<server> addr <ip>[:<port>] [port <port>]";
  if (args.size() != 3 && !(args.size() == 5 && args[3] == "port")) return usage;
  bool has_port = false;
  std::string problem;
  auto addr = parse_numeric_address(args[2], &has_port, &problem);
  if (!addr) return "Error: address '" + std::string(args[2]) + "': " + problem;
  uint16_t port = s->addr().port();
  if (has_port) port = addr->port();
  if (args.size() == 5) {
    if (has_port) {
      return "Error: the port is given twice ('" + std::string(args[2]) + "' and port " +
             std::string(args[4]) + "): give it once";
    }
    auto p = parse_count(args[4], 65535);
    if (!p || *p == 0) return "Error: port must be 1..65535, got '" + std::string(args[4]) + "'";
    port = static_cast<uint16_t>(*p);
  }
  addr->set_port(port);
  std::string text = addr->to_string();
  std::string before = s->addr_text();
  s->set_addr(*addr, text);
  // Connections kept open for reuse still go to the old address: close them.
  w.on_every_thread([s](ThreadContext& ctx) { ctx.close_idle_to(s); });
  log::notice("server %.*s: address %s -> %s (runtime API)", static_cast<int>(args[0].size()),
              args[0].data(), before.c_str(), text.c_str());
  return "";
}

std::string cmd_set_server(Worker& w, const Args& args) {
  if (args.size() < 3) {
    return "Error: usage: set server <backend>/<server> state ready|drain|maint | "
           "weight <n>|<n>% | maxconn <n> | addr <ip>[:<port>] [port <port>]";
  }
  if (args[1] == "addr") {
    std::string error;
    Server* s = find_server_arg(w, args[0], &error);
    if (!s) return error;
    return set_server_addr(w, s, args);
  }
  if (args.size() != 3)
    return "Error: too many arguments for 'set server ... " + std::string(args[1]) + "'";
  if (args[1] == "state") {
    if (args[2] == "ready") return set_state(w, args[0], AdminState::kReady);
    if (args[2] == "drain") return set_state(w, args[0], AdminState::kDrain);
    if (args[2] == "maint") return set_state(w, args[0], AdminState::kMaint);
    return "Error: unknown state '" + std::string(args[2]) + "' (ready, drain or maint)";
  }
  if (args[1] == "weight") {
    std::string error;
    Server* s = find_server_arg(w, args[0], &error);
    if (!s) return error;
    std::string v(args[2]);
    bool percent = !v.empty() && v.back() == '%';
    if (percent) v.pop_back();
    auto n = parse_count(v, percent ? kMaxWeightPercent : kMaxServerWeight);
    if (!n) {
      return "Error: weight must be 0..256, or a percentage of the configured weight (0%..100000%, "
             "giving at most 256)";
    }
    // A percentage is of the weight in the configuration, as in HAProxy, so that
    // 100% always restores it whatever was set in between.
    uint32_t weight = percent ? weight_from_percent(s->configured_weight(), *n) : *n;
    uint32_t before = s->weight();
    s->backend()->set_server_weight(s, weight, EventLoop::monotonic_ms());
    if (before != weight) {
      log::notice("server %.*s: weight %u -> %u (runtime API)", static_cast<int>(args[0].size()),
                  args[0].data(), before, weight);
    }
    return "";
  }
  if (args[1] == "maxconn") {
    std::string error;
    Server* s = find_server_arg(w, args[0], &error);
    if (!s) return error;
    auto n = parse_count(args[2], kMaxServerMaxconn);
    if (!n) return "Error: maxconn must be 0 (no limit) to " + std::to_string(kMaxServerMaxconn);
    s->backend()->set_server_maxconn(s, *n);
    return "";
  }
  return "Error: set server: unknown setting '" + std::string(args[1]) +
         "' (state, weight, maxconn or addr)";
}

ApiLevel set_server_level(const Args& args) {
  // State and weight are the operator's daily tools; addresses and limits change
  // what the server is, which is the administrator's.
  if (args.size() >= 2 && (args[1] == "addr" || args[1] == "maxconn")) return ApiLevel::kAdmin;
  return ApiLevel::kOperator;
}

Backend* find_backend(Worker& w, std::string_view name) {
  for (auto& be : w.backends())
    if (be->name() == name) return be.get();
  return nullptr;
}

std::string cmd_add_server(Worker& w, const Args& args) {
  // add server <b>/<s> <address> [weight N] [maxconn N] [state ready|drain|maint]
  //            [check on|off] [agent on|off]
  const char* usage =
      "Error: usage: add server <backend>/<server> <ip:port> [weight <n>] [maxconn <n>] "
      "[state ready|drain|maint] [check on|off] [agent on|off]";
  if (args.size() < 2 || args.size() % 2 != 0) return usage;
  size_t slash = args[0].find('/');
  if (slash == std::string_view::npos) return usage;
  Backend* be = find_backend(w, args[0].substr(0, slash));
  if (!be) return "Error: no backend named '" + std::string(args[0].substr(0, slash)) + "'";
  ServerConfig sc;
  // The backend's check and agent apply, as to the servers of its configuration.
  sc.check = be->config().default_check;
  sc.agent = be->config().default_agent;
  sc.tls = be->config().default_tls;
  sc.name = std::string(args[0].substr(slash + 1));
  bool valid_name = !sc.name.empty();
  for (char c : sc.name) {
    valid_name = valid_name && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                                (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-');
  }
  if (!valid_name) {
    return "Error: invalid server name '" + sc.name + "' (use letters, digits, '_', '.' and '-')";
  }
  std::string problem;
  bool has_port = false;
  auto addr = parse_numeric_address(args[1], &has_port, &problem);
  if (addr && !has_port) problem = "missing port (ip:port, [ipv6]:port)";
  if (!addr || !has_port) return "Error: address '" + std::string(args[1]) + "': " + problem;
  sc.addr = *addr;
  sc.address_text = addr->to_string();
  // Like HAProxy, a new server starts in maintenance: the operator enables it
  // once it is ready (or asks for another state here).
  AdminState state = AdminState::kMaint;
  for (size_t i = 2; i < args.size(); i += 2) {
    std::string_view key = args[i], value = args[i + 1];
    if (key == "weight") {
      auto n = parse_count(value, kMaxServerWeight);
      if (!n) return "Error: weight must be 0..256";
      sc.weight = *n;
    } else if (key == "maxconn") {
      auto n = parse_count(value, kMaxServerMaxconn);
      if (!n) return "Error: maxconn must be 0 (no limit) to " + std::to_string(kMaxServerMaxconn);
      sc.maxconn = *n;
    } else if (key == "state") {
      if (value == "ready") {
        state = AdminState::kReady;
      } else if (value == "drain") {
        state = AdminState::kDrain;
      } else if (value == "maint") {
        state = AdminState::kMaint;
      } else {
        return "Error: unknown state '" + std::string(value) + "' (ready, drain or maint)";
      }
    } else if (key == "check" || key == "agent") {
      if (value != "on" && value != "off") {
        return "Error: " + std::string(key) + " takes on or off";
      }
      const bool on = value == "on";
      if (key == "check") {
        if (on && !be->config().default_check.enabled) {
          return "Error: backend '" + be->name() +
                 "' has no check: to copy (configure check: in the backend first)";
        }
        sc.check.enabled = on;
      } else {
        if (on && !be->config().default_agent.enabled) {
          return "Error: backend '" + be->name() +
                 "' has no agent: to copy (configure agent: in the backend first)";
        }
        sc.agent.enabled = on;
      }
    } else {
      return "Error: add server: unknown option '" + std::string(key) +
             "' (weight, maxconn, state, check or agent)";
    }
  }
  std::string error;
  Server* added = be->add_server(sc, state, EventLoop::monotonic_ms(), &error);
  if (!added) return "Error: " + error;
  w.start_checks_of_added_server(*be, *added);
  log::notice("server %s/%s added at %s in state %s (runtime API)", be->name().c_str(),
              sc.name.c_str(), sc.address_text.c_str(), admin_state_name(state));
  std::string out = "New server registered: " + be->name() + "/" + sc.name + " " + sc.address_text +
                    " state " + admin_state_name(state);
  if (sc.check.enabled) out += ", checked";
  if (sc.agent.enabled) out += ", with its agent";
  if (state == AdminState::kMaint) {
    out += "\n'enable server " + be->name() + "/" + sc.name + "' sends it traffic.";
  }
  return out;
}

std::string cmd_del_server(Worker& w, const Args& args) {
  if (args.size() != 1 || args[0].find('/') == std::string_view::npos) {
    return "Error: usage: del server <backend>/<server>";
  }
  size_t slash = args[0].find('/');
  Backend* be = find_backend(w, args[0].substr(0, slash));
  if (!be) return "Error: no backend named '" + std::string(args[0].substr(0, slash)) + "'";
  std::string_view name = args[0].substr(slash + 1);
  Server* s = be->find_server(name);
  std::string error;
  if (!be->delete_server(name, &error)) return "Error: cannot delete: " + error;
  w.on_every_thread([s](ThreadContext& ctx) { ctx.close_idle_to(s); });
  log::notice("server %s/%.*s deleted (runtime API)", be->name().c_str(),
              static_cast<int>(name.size()), name.data());
  return "Server deleted.";
}

std::string cmd_reopen_logs(Worker& w, const Args& args) {
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

std::string cmd_show_errors(Worker& w, const Args&) {
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

std::string cmd_show_sess(Worker& w, const Args&) {
  std::mutex mu;
  std::vector<std::string> lines;
  int64_t now = EventLoop::monotonic_ms();
  w.on_every_thread([&](ThreadContext& ctx) {
    std::vector<std::string> mine;
    ctx.for_each_session([&](Session& s) {
      mine.push_back(s.describe(now) + " thread=" + std::to_string(ctx.id()));
    });
    std::lock_guard lock(mu);
    lines.insert(lines.end(), mine.begin(), mine.end());
  });
  std::string out;
  for (const std::string& l : lines) out += l + "\n";
  if (out.empty()) out = "No sessions.\n";
  return out;
}

// Kills the sessions for which `match` is true, on their own threads; returns how many.
size_t kill_sessions(Worker& w, const std::function<bool(const Session&)>& match) {
  std::atomic<size_t> killed{0};
  w.on_every_thread([&](ThreadContext& ctx) {
    ctx.for_each_session([&](Session& s) {
      if (match(s)) {
        s.kill();
        ++killed;
      }
    });
  });
  return killed.load();
}

std::string cmd_shutdown_session(Worker& w, const Args& args) {
  if (args.size() != 1) return "Error: usage: shutdown session <id>";
  std::string id(args[0]);
  char* end = nullptr;
  unsigned long long n = std::strtoull(id.c_str(), &end, 10);
  if (id.empty() || *end != '\0') return "Error: '" + id + "' is not a session id";
  size_t killed = kill_sessions(w, [n](const Session& s) { return s.id() == n; });
  if (killed == 0) return "Error: no session with id " + id;
  return "";
}

std::string cmd_shutdown_sessions_server(Worker& w, const Args& args) {
  if (args.size() != 1) return "Error: usage: shutdown sessions server <backend>/<server>";
  std::string error;
  Server* target = find_server_arg(w, args[0], &error);
  if (!target) return error;
  size_t killed = kill_sessions(w, [target](const Session& s) { return s.server() == target; });
  return std::to_string(killed) + " session(s) closed";
}

std::string cmd_enable_server(Worker& w, const Args& args) {
  if (args.size() != 1) return "Error: usage: enable server <backend>/<server>";
  return set_state(w, args[0], AdminState::kReady);
}

std::string cmd_disable_server(Worker& w, const Args& args) {
  if (args.size() != 1) return "Error: usage: disable server <backend>/<server>";
  return set_state(w, args[0], AdminState::kMaint);
}

std::string cmd_set_maxconn_frontend(Worker& w, const Args& args) {
  if (args.size() != 2) return "Error: usage: set maxconn frontend <name> <n>";
  Frontend* fe = nullptr;
  for (auto& f : w.frontends())
    if (f->name() == args[0]) fe = f.get();
  if (!fe) return "Error: no frontend named '" + std::string(args[0]) + "'";
  std::string n(args[1]);
  char* end = nullptr;
  unsigned long v = std::strtoul(n.c_str(), &end, 10);
  if (n.empty() || *end != '\0' || v > 10000000) {
    return "Error: '" + n + "' is not a connection count (0..10000000, 0: no frontend limit)";
  }
  fe->set_maxconn(static_cast<uint32_t>(v));
  w.resume_listeners_if_paused();
  return "";
}

constexpr ApiCommand kCommands[] = {
    {"help", ApiLevel::kUser,
     "help                this list (also: 'prompt' toggles an interactive '> ' prompt, "
     "'quit' closes the connection)",
     cmd_help},
    {"show info", ApiLevel::kUser,
     "show info           version, pid, generation, uptime, threads, connections", cmd_show_info},
    {"show ssl certs", ApiLevel::kUser,
     "show ssl certs     every served certificate: file, subject, SANs, issuer, expiry",
     cmd_show_ssl_certs},
    {"show stat", ApiLevel::kUser,
     "show stat [csv|json] [name]   counters per frontend, backend and server", cmd_show_stat},
    {"show servers state", ApiLevel::kUser,
     "show servers state [backend]  address, state and weight of every server",
     cmd_show_servers_state},
    {"set server", ApiLevel::kOperator,
     "set server <b>/<s> state ready|drain|maint | weight <n>|<n>% | maxconn <n> (admin) | "
     "addr <ip>[:<p>] [port <p>] (admin)",
     cmd_set_server, set_server_level},
    {"add server", ApiLevel::kAdmin,
     "add server <b>/<s> <ip:port> [weight <n>] [maxconn <n>] [state ready|drain|maint] "
     "[check on|off] [agent on|off]",
     cmd_add_server},
    {"del server", ApiLevel::kAdmin,
     "del server <b>/<s>  remove a server in maint with no connection left", cmd_del_server},
    {"reopen logs", ApiLevel::kOperator,
     "reopen logs        reopen access-log files (after logrotate)", cmd_reopen_logs},
    {"enable server", ApiLevel::kOperator, "enable server <b>/<s>   same as state ready",
     cmd_enable_server},
    {"disable server", ApiLevel::kOperator, "disable server <b>/<s>  same as state maint",
     cmd_disable_server},
    {"show sess", ApiLevel::kUser,
     "show sess          every client connection: id, frontend, client, server, state, age",
     cmd_show_sess},
    {"shutdown session", ApiLevel::kOperator, "shutdown session <id>   close one connection now",
     cmd_shutdown_session},
    {"shutdown sessions server", ApiLevel::kOperator,
     "shutdown sessions server <b>/<s>   close every connection using that server",
     cmd_shutdown_sessions_server},
    {"show errors", ApiLevel::kOperator,
     "show errors        the last malformed request and response, with their bytes",
     cmd_show_errors},
    {"set maxconn frontend", ApiLevel::kAdmin,
     "set maxconn frontend <name> <n>   change a frontend's connection limit (0: none)",
     cmd_set_maxconn_frontend},
};

std::string cmd_help(Worker&, const Args&) {
  std::string out = "Commands, with the level each needs (user < operator < admin):\n";
  for (const ApiCommand& c : kCommands) {
    out += "  ";
    out += c.usage;
    out += "  [";
    out += level_name(c.level);
    out += "]\n";
  }
  return out;
}

Args split_words(std::string_view line) {
  Args words;
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
    size_t start = i;
    while (i < line.size() && line[i] != ' ' && line[i] != '\t') ++i;
    if (i > start) words.push_back(line.substr(start, i - start));
  }
  return words;
}

// Matches the longest command name that the words start with.
const ApiCommand* find_command(const Args& words, size_t* consumed) {
  const ApiCommand* best = nullptr;
  size_t best_len = 0;
  for (const ApiCommand& c : kCommands) {
    Args name = split_words(c.name);
    if (name.size() > words.size() || name.size() <= best_len) continue;
    bool match = true;
    for (size_t i = 0; i < name.size(); ++i) match = match && name[i] == words[i];
    if (match) {
      best = &c;
      best_len = name.size();
    }
  }
  *consumed = best_len;
  return best;
}

// One client connection to the runtime API.
}  // namespace

class ApiConnection final : public IoHandler, public Retired {
 public:
  ApiConnection(ApiListener& owner, ThreadContext& ctx, Worker& worker, UniqueFd fd, ApiLevel level)
      : owner_(owner), ctx_(ctx), worker_(worker), fd_(std::move(fd)), level_(level) {}
  void start() {
    if (!ctx_.loop().add(fd_.get(), EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, this)) close();
  }
  void on_io(uint32_t) override {
    if (closed_) return;
    char buf[4096];
    for (;;) {
      ssize_t n = ::read(fd_.get(), buf, sizeof buf);
      if (n > 0) {
        in_.append(buf, static_cast<size_t>(n));
        if (in_.size() > kMaxPending) eof_ = true;
        continue;
      }
      if (n == 0 || (errno != EAGAIN && errno != EINTR)) eof_ = true;
      break;
    }
    process();
    flush();
    if (eof_ && out_.empty()) close();
  }

 private:
  void process() {
    for (;;) {
      size_t nl = in_.find('\n');
      std::string line;
      if (nl == std::string::npos) {
        if (!eof_ || in_.empty()) return;
        line.swap(in_);
      } else {
        line = in_.substr(0, nl);
        in_.erase(0, nl + 1);
      }
      if (!line.empty() && line.back() == '\r') line.pop_back();
      size_t start = 0;
      while (start <= line.size()) {
        size_t semi = line.find(';', start);
        std::string_view cmd(line);
        cmd = cmd.substr(start, semi == std::string::npos ? std::string_view::npos : semi - start);
        Args words = split_words(cmd);
        if (words.size() == 1 && words[0] == "prompt") {
          prompt_ = !prompt_;  // interactive mode: a "> " after every answer
        } else if (words.size() == 1 && words[0] == "quit") {
          eof_ = true;
          in_.clear();
          return;
        } else if (!words.empty()) {
          out_ += run_api_command(worker_, level_, cmd);
          if (!out_.empty() && out_.back() != '\n') out_ += '\n';
          out_ += '\n';
        }
        if (semi == std::string::npos) break;
        start = semi + 1;
      }
      if (prompt_) out_ += "> ";
    }
  }
  void flush() {
    while (!out_.empty()) {
      ssize_t n = ::send(fd_.get(), out_.data(), out_.size(), MSG_NOSIGNAL);
      if (n > 0) {
        out_.erase(0, static_cast<size_t>(n));
        continue;
      }
      if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
      out_.clear();
      eof_ = true;
      return;
    }
  }
  void close() {
    if (closed_) return;
    closed_ = true;
    fd_.reset();
    owner_.release(this);
  }

  ApiListener& owner_;
  ThreadContext& ctx_;
  Worker& worker_;
  UniqueFd fd_;
  ApiLevel level_;
  std::string in_;
  std::string out_;
  bool eof_ = false;
  bool closed_ = false;
  bool prompt_ = false;
};

std::string run_api_command(Worker& worker, ApiLevel level, std::string_view line) {
  Args words = split_words(line);
  if (words.empty()) return "";
  size_t consumed = 0;
  const ApiCommand* cmd = find_command(words, &consumed);
  if (!cmd) {
    return "Error: unknown command '" + std::string(line) + "'; type 'help' for the list";
  }
  Args args(words.begin() + static_cast<std::ptrdiff_t>(consumed), words.end());
  ApiLevel needed = cmd->level_for ? cmd->level_for(args) : cmd->level;
  if (level < needed) {
    std::string what(cmd->name);
    if (cmd->level_for && args.size() >= 2) what += " ... " + std::string(args[1]);
    return "Error: '" + what + "' needs the " + level_name(needed) + " level; this endpoint is " +
           level_name(level);
  }
  std::string answer = cmd->run(worker, args);
  worker.publish_state();  // a change reaches the master (and the next generation) at once
  return answer;
}

ApiListener::ApiListener(ThreadContext& ctx, Worker& worker, int fd, ApiLevel level)
    : ctx_(ctx),
      worker_(worker),
      fd_(fd),
      level_(level),
      retry_(
          ctx.loop().timers(),
          [](void* self) { static_cast<ApiListener*>(self)->update_polling(); }, this) {}

ApiListener::~ApiListener() {
  stop();
}

void ApiListener::release(ApiConnection* conn) {
  for (auto it = conns_.begin(); it != conns_.end(); ++it) {
    if (it->get() == conn) {
      ctx_.loop().retire(std::move(*it));  // destroyed after the current batch of events
      conns_.erase(it);
      update_polling();
      return;
    }
  }
}

void ApiListener::start() {
  active_ = true;
  update_polling();
}

void ApiListener::stop() {
  active_ = false;
  retry_.disarm();
  update_polling();
}

void ApiListener::update_polling() {
  const bool want = active_ && conns_.size() < kApiConnectionsPerEndpoint && !retry_.deadline();
  if (want && !polling_) {
    polling_ = ctx_.loop().add(fd_, EPOLLIN, this);
  } else if (!want && polling_) {
    ctx_.loop().remove(fd_);
    polling_ = false;
  }
}

void ApiListener::on_io(uint32_t) {
  while (polling_ && conns_.size() < kApiConnectionsPerEndpoint) {
    int fd = ::accept4(fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (net::out_of_descriptors(errno)) {
        // Level-triggered: stop polling for a moment rather than spin.
        worker_.note_fd_shortage("accept on the runtime API", errno);
        retry_.set(ctx_.loop().now_ms() + 100);
        update_polling();
      }
      return;
    }
    conns_.push_back(std::make_unique<ApiConnection>(*this, ctx_, worker_, UniqueFd(fd), level_));
    conns_.back()->start();
  }
  update_polling();
}

}  // namespace weir
