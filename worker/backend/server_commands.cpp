// The runtime-API commands on servers: show their state, change it, add and
// delete servers (doc/management.md, "Runtime API" and "Changing servers").

#include <optional>

#include "common/base/address.h"
#include "common/base/log.h"
#include "common/base/units.h"
#include "common/event/event_loop.h"
#include "common/stick/table.h"
#include "worker/api/arguments.h"
#include "worker/api/command.h"
#include "worker/backend/backend.h"
#include "worker/thread_context.h"
#include "worker/worker.h"

namespace weir {
namespace {

// A change made here, for the peers agent (Worker::share_server).
proto::ServerRecord record_of(const Server& s) {
  proto::ServerRecord r;
  r.set_backend(s.backend()->name());
  r.set_server(s.name());
  return r;
}

proto::ServerStamp stamp_now() {
  proto::ServerStamp at;
  at.set_hlc(stick::hlc_now(stick::clock_now().wall_ms));
  at.set_node(stick::local_node());
  return at;
}

std::string show_servers_state(Worker& w, const ApiArgs& args) {
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

std::string set_state(Worker& w, std::string_view target, AdminState st) {
  std::string error;
  Server* s = find_server_arg(w, target, &error);
  if (!s) return error;
  AdminState before = s->admin_state();
  s->backend()->set_server_state(s, st, EventLoop::monotonic_ms());
  proto::ServerRecord r = record_of(*s);
  r.set_admin_state(admin_state_name(st));
  *r.mutable_admin_at() = stamp_now();
  w.share_server(std::move(r));
  if (before != st) {
    log::notice("server %.*s: state %s -> %s (runtime API)", static_cast<int>(target.size()),
                target.data(), admin_state_name(before), admin_state_name(st));
  }
  return "";
}

constexpr uint32_t kMaxServerMaxconn = 1000000;

std::string set_server_addr(Worker& w, Server* s, const ApiArgs& args) {
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
    auto p = parse_port(args[4]);
    if (!p) return "Error: port must be 1..65535, got '" + std::string(args[4]) + "'";
    port = *p;
  }
  addr->set_port(port);
  std::string text = addr->to_string();
  std::string before = s->addr_text();
  s->set_addr(*addr, text);
  proto::ServerRecord r = record_of(*s);
  r.set_address(text);
  r.set_configured_address(s->config().address_text);
  *r.mutable_address_at() = stamp_now();
  w.share_server(std::move(r));
  // Connections kept open for reuse still go to the old address: close them.
  w.on_every_thread([s](ThreadContext& ctx) { ctx.close_idle_to(s); });
  log::notice("server %.*s: address %s -> %s (runtime API)", static_cast<int>(args[0].size()),
              args[0].data(), before.c_str(), text.c_str());
  return "";
}

std::string set_server(Worker& w, const ApiArgs& args) {
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
    if (auto st = parse_admin_state(args[2])) return set_state(w, args[0], *st);
    return "Error: unknown state '" + std::string(args[2]) + "' (ready, drain or maint)";
  }
  if (args[1] == "weight") {
    std::string error;
    Server* s = find_server_arg(w, args[0], &error);
    if (!s) return error;
    auto n = parse_weight(args[2], true);
    if (!n) {
      return "Error: weight must be 0..256, or a percentage of the configured weight (0%..100000%, "
             "giving at most 256)";
    }
    uint32_t weight = n->resolve(s->configured_weight());
    uint32_t before = s->weight();
    s->backend()->set_server_weight(s, weight, EventLoop::monotonic_ms());
    proto::ServerRecord r = record_of(*s);
    r.set_weight(weight);
    r.set_configured_weight(s->configured_weight());
    *r.mutable_weight_at() = stamp_now();
    w.share_server(std::move(r));
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

ApiLevel set_server_level(const ApiArgs& args) {
  // State and weight are the operator's daily tools; addresses and limits change
  // what the server is, which is the administrator's.
  if (args.size() >= 2 && (args[1] == "addr" || args[1] == "maxconn")) return ApiLevel::kAdmin;
  return ApiLevel::kOperator;
}

std::string add_server(Worker& w, const ApiArgs& args) {
  // add server <b>/<s> <address> [weight N] [maxconn N] [state ready|drain|maint]
  //            [check on|off] [agent on|off]
  const char* usage =
      "Error: usage: add server <backend>/<server> <ip:port> [weight <n>] [maxconn <n>] "
      "[state ready|drain|maint] [check on|off] [agent on|off]";
  if (args.size() < 2 || args.size() % 2 != 0) return usage;
  size_t slash = args[0].find('/');
  if (slash == std::string_view::npos) return usage;
  std::string error;
  Backend* be = find_backend_arg(w, args[0].substr(0, slash), &error);
  if (!be) return error;
  ServerConfig sc;
  // The backend's check and agent apply, as to the servers of its configuration.
  sc.check = be->config().default_check;
  sc.agent = be->config().default_agent;
  sc.tls = be->config().default_tls;
  sc.send_proxy = be->config().default_send_proxy;
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
      auto n = parse_weight(value, false);
      if (!n) return "Error: weight must be 0..256";
      sc.weight = n->value;
    } else if (key == "maxconn") {
      auto n = parse_count(value, kMaxServerMaxconn);
      if (!n) return "Error: maxconn must be 0 (no limit) to " + std::to_string(kMaxServerMaxconn);
      sc.maxconn = *n;
    } else if (key == "state") {
      auto st = parse_admin_state(value);
      if (!st) return "Error: unknown state '" + std::string(value) + "' (ready, drain or maint)";
      state = *st;
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
  Server* added = be->add_server(sc, state, EventLoop::monotonic_ms(), &error);
  if (!added) return "Error: " + error;
  w.start_checks_of_added_server(*be, *added);
  proto::ServerRecord r = record_of(*added);
  std::string options;
  for (size_t i = 1; i < args.size(); ++i) {
    if (i > 1) options += ' ';
    options.append(args[i]);
  }
  r.set_added(options);
  *r.mutable_added_at() = stamp_now();
  w.share_server(std::move(r));
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

std::string del_server(Worker& w, const ApiArgs& args) {
  if (args.size() != 1 || args[0].find('/') == std::string_view::npos) {
    return "Error: usage: del server <backend>/<server>";
  }
  size_t slash = args[0].find('/');
  std::string error;
  Backend* be = find_backend_arg(w, args[0].substr(0, slash), &error);
  if (!be) return error;
  std::string_view name = args[0].substr(slash + 1);
  Server* s = be->find_server(name);
  proto::ServerRecord r;
  if (s) {
    r = record_of(*s);
    r.set_configured_address(s->config().address_text);
  }
  if (!be->delete_server(name, &error)) return "Error: cannot delete: " + error;
  *r.mutable_deleted_at() = stamp_now();
  w.share_server(std::move(r));
  w.on_every_thread([s](ThreadContext& ctx) { ctx.close_idle_to(s); });
  log::notice("server %s/%.*s deleted (runtime API)", be->name().c_str(),
              static_cast<int>(name.size()), name.data());
  return "Server deleted.";
}

std::string enable_server(Worker& w, const ApiArgs& args) {
  if (args.size() != 1) return "Error: usage: enable server <backend>/<server>";
  return set_state(w, args[0], AdminState::kReady);
}

std::string disable_server(Worker& w, const ApiArgs& args) {
  if (args.size() != 1) return "Error: usage: disable server <backend>/<server>";
  return set_state(w, args[0], AdminState::kMaint);
}

constexpr ApiCommand kServerCommands[] = {
    {"show servers state", ApiLevel::kUser,
     "show servers state [backend]  address, state and weight of every server", show_servers_state},
    {"set server", ApiLevel::kOperator,
     "set server <b>/<s> state ready|drain|maint | weight <n>|<n>% | maxconn <n> (admin) | "
     "addr <ip>[:<p>] [port <p>] (admin)",
     set_server, set_server_level},
    {"add server", ApiLevel::kAdmin,
     "add server <b>/<s> <ip:port> [weight <n>] [maxconn <n>] [state ready|drain|maint] "
     "[check on|off] [agent on|off]",
     add_server},
    {"del server", ApiLevel::kAdmin,
     "del server <b>/<s>  remove a server in maint with no connection left", del_server},
    {"enable server", ApiLevel::kOperator, "enable server <b>/<s>   same as state ready",
     enable_server},
    {"disable server", ApiLevel::kOperator, "disable server <b>/<s>  same as state maint",
     disable_server},
};
const Registrar<ApiCommand> kRegisterServerCommands(kServerCommands);

}  // namespace
}  // namespace weir
