#include "worker/observe/metrics.h"

#include <unistd.h>

#include <cstdio>
#include <ctime>

#include <functional>
#include <vector>

#include "common/base/log.h"
#include "common/base/version.h"
#include "common/event/event_loop.h"
#include "common/stick/table.h"
#include "worker/backend/backend.h"
#include "worker/peers/link.h"
#include "worker/worker.h"

namespace weir {
namespace {

std::string escape_label(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

// One metric family: HELP and TYPE, then its samples.
class Family {
 public:
  Family(std::string& out, const char* name, const char* type, const char* help)
      : out_(out), name_(name) {
    out_ += "# HELP ";
    out_ += name;
    out_ += ' ';
    out_ += help;
    out_ += "\n# TYPE ";
    out_ += name;
    out_ += ' ';
    out_ += type;
    out_ += '\n';
  }
  void sample(const std::vector<std::pair<const char*, std::string>>& labels, uint64_t v) {
    sample_text(labels, std::to_string(v));
  }
  void sample_ms_as_seconds(const std::vector<std::pair<const char*, std::string>>& labels,
                            int64_t ms) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%lld.%03lld", static_cast<long long>(ms / 1000),
                  static_cast<long long>(ms % 1000));
    sample_text(labels, buf);
  }
  void sample_text(const std::vector<std::pair<const char*, std::string>>& labels,
                   const std::string& v) {
    out_ += name_;
    if (!labels.empty()) {
      out_ += '{';
      for (size_t i = 0; i < labels.size(); ++i) {
        if (i) out_ += ',';
        out_ += labels[i].first;
        out_ += "=\"";
        out_ += escape_label(labels[i].second);
        out_ += '"';
      }
      out_ += '}';
    }
    out_ += ' ';
    out_ += v;
    out_ += '\n';
  }

 private:
  std::string& out_;
  const char* name_;
};

using Labels = std::vector<std::pair<const char*, std::string>>;

uint64_t non_negative(int64_t v) {
  return v > 0 ? static_cast<uint64_t>(v) : 0;
}

// One frontend, backend or server: its labels, live gauges and summed counters.
struct Item {
  Labels labels;
  TrafficCounters* live;
  CounterTotals totals;
};

// The counter families shared by frontends, backends and servers.
void traffic_families(std::string& out, const std::string& prefix, const std::vector<Item>& items,
                      bool http, bool server_side) {
  struct Def {
    const char* suffix;
    const char* type;
    const char* help;
    std::function<uint64_t(const Item&)> value;
    bool server_side_only;
  };
  const Def defs[] = {
      {"current_sessions", "gauge",
       "Sessions in progress: client connections (frontends), requests (http backends and "
       "servers) or connections (tcp backends and servers).",
       [](const Item& i) { return non_negative(i.live->current()); }, false},
      {"max_sessions", "gauge", "Most sessions in progress at once (as current_sessions).",
       [](const Item& i) { return non_negative(i.live->max_seen()); }, false},
      {"sessions_total", "counter", "Requests (http) or connections (tcp) handled.",
       [](const Item& i) { return i.totals.sessions_total; }, false},
      {"bytes_in_total", "counter", "Bytes received from clients.",
       [](const Item& i) { return i.totals.bytes_in; }, false},
      {"bytes_out_total", "counter", "Bytes sent to clients.",
       [](const Item& i) { return i.totals.bytes_out; }, false},
      {"request_errors_total", "counter", "Malformed requests and request timeouts.",
       [](const Item& i) { return i.totals.request_errors; }, false},
      {"connection_errors_total", "counter", "Failed connection attempts to servers.",
       [](const Item& i) { return i.totals.connect_errors; }, true},
      {"response_errors_total", "counter", "Invalid, truncated or timed-out responses.",
       [](const Item& i) { return i.totals.response_errors; }, true},
      {"retry_warnings_total", "counter", "Connection attempts moved to another try.",
       [](const Item& i) { return i.totals.retries; }, true},
      {"redispatch_warnings_total", "counter",
       "Retries sent to another server (counted on the server left).",
       [](const Item& i) { return i.totals.redispatches; }, true},
      {"client_aborts_total", "counter", "Sessions ended by the client after reaching a server.",
       [](const Item& i) { return i.totals.client_aborts; }, true},
      {"server_aborts_total", "counter", "Sessions ended by the server in headers or data.",
       [](const Item& i) { return i.totals.server_aborts; }, true},
  };
  for (const Def& d : defs) {
    if (d.server_side_only && !server_side) continue;
    std::string name = prefix + d.suffix;
    Family f(out, name.c_str(), d.type, d.help);
    for (const Item& i : items) f.sample(i.labels, d.value(i));
  }
  if (server_side) {
    const char* phases[] = {"queue", "connect", "response", "total"};
    const char* helps[] = {
        "Average time spent in a queue over the last 1024 sessions, in seconds.",
        "Average time to connect to a server over the last 1024 sessions, in seconds.",
        "Average server response time (to the headers) over the last 1024 requests, in seconds.",
        "Average total session time over the last 1024 sessions, in seconds."};
    for (int p = 0; p < 4; ++p) {
      std::string name = prefix + phases[p] + "_time_average_seconds";
      Family f(out, name.c_str(), "gauge", helps[p]);
      for (const Item& i : items) {
        int64_t ms = i.totals.avg_ms[p] < 0 ? 0 : i.totals.avg_ms[p];
        f.sample_ms_as_seconds(i.labels, ms);
      }
    }
  }
  if (!http) return;
  std::string name = prefix + "http_responses_total";
  Family f(out, name.c_str(), "counter", "HTTP responses sent, by status class.");
  const char* codes[] = {"other", "1xx", "2xx", "3xx", "4xx", "5xx"};
  for (const Item& i : items) {
    for (int k = 0; k < 6; ++k) {
      Labels l = i.labels;
      l.emplace_back("code", codes[k]);
      f.sample(l, i.totals.responses[k]);
    }
  }
}

// The stick tables: size, entries in use, and what left them.
void stick_table_families(std::string& out, const Worker& w) {
  const auto& tables = w.config().stick_tables;
  if (tables.empty()) return;
  struct Metric {
    const char* name;
    const char* type;
    const char* help;
    uint64_t (*read)(const stick::Table&);
  };
  static constexpr Metric kMetrics[] = {
      {"weir_stick_table_size", "gauge", "The most entries the stick table holds.",
       [](const stick::Table& t) { return t.size(); }},
      {"weir_stick_table_entries", "gauge", "Entries in the stick table.",
       [](const stick::Table& t) { return t.used(); }},
      {"weir_stick_table_evicted_total", "counter",
       "Entries removed to make room for new ones (the least recently used untracked one).",
       [](const stick::Table& t) { return t.evicted(); }},
      {"weir_stick_table_expired_total", "counter",
       "Entries removed because nobody refreshed them for the table's expire time.",
       [](const stick::Table& t) { return t.expired(); }},
      {"weir_stick_table_refused_total", "counter",
       "New entries refused because every entry of the full table was tracked.",
       [](const stick::Table& t) { return t.refused(); }},
  };
  for (const Metric& m : kMetrics) {
    Family f(out, m.name, m.type, m.help);
    for (const auto& t : tables) f.sample({{"table", t->name()}}, m.read(*t));
  }
}

// This process's link to the peers agent (worker/peers/link.h).
void peers_families(std::string& out) {
  PeersLink* link = PeersLink::current();
  if (!link) return;
  const PeersLink::Stats s = link->stats();
  Family(out, "weir_peers_link_up", "gauge",
         "1 while the peers agent answers this worker process, else 0.")
      .sample({}, s.linked ? 1 : 0);
  Family(out, "weir_peers_updates_sent_total", "counter",
         "Stick-table entry updates this process sent to the peers agent.")
      .sample({}, s.sent);
  Family(out, "weir_peers_updates_received_total", "counter",
         "Stick-table entry updates from other processes applied here.")
      .sample({}, s.received);
  Family(out, "weir_peers_updates_pending", "gauge",
         "Changed stick-table entries waiting to be sent to the peers agent.")
      .sample({}, s.pending);
  Family(out, "weir_peers_updates_coalesced_total", "counter",
         "Stick-table changes folded into an update still waiting to be sent.")
      .sample({}, s.coalesced);
  Family(out, "weir_peers_refills_total", "counter",
         "Times this process refilled a new peers agent with its tables.")
      .sample({}, s.refills);
  if (s.local_node.empty()) return;
  // The other nodes of the cluster, as this node's agent sees them.
  struct NodeMetric {
    const char* name;
    const char* type;
    const char* help;
    uint64_t (*read)(const proto::NodeStats&);
  };
  static constexpr NodeMetric kNodeMetrics[] = {
      {"weir_peers_node_up", "gauge",
       "1 while updates flow both ways between this node and that one, else 0.",
       [](const proto::NodeStats& n) -> uint64_t { return n.out_linked() && n.in_linked(); }},
      {"weir_peers_node_lag_updates", "gauge",
       "This node's updates that node has not acknowledged yet.",
       [](const proto::NodeStats& n) -> uint64_t { return n.in_flight(); }},
      {"weir_peers_node_lag_milliseconds", "gauge",
       "Age of the oldest of this node's updates that node has not acknowledged.",
       [](const proto::NodeStats& n) -> uint64_t {
         return static_cast<uint64_t>(std::max<int64_t>(0, n.lag_ms()));
       }},
      {"weir_peers_node_updates_sent_total", "counter",
       "Batches of this node's updates sent to that node.",
       [](const proto::NodeStats& n) -> uint64_t { return n.updates_sent(); }},
      {"weir_peers_node_updates_received_total", "counter",
       "Entry updates from that node applied here.",
       [](const proto::NodeStats& n) -> uint64_t { return n.updates_received(); }},
      {"weir_peers_node_resyncs_sent_total", "counter",
       "Full resyncs of this node's tables sent to that node.",
       [](const proto::NodeStats& n) -> uint64_t { return n.resyncs_sent(); }},
      {"weir_peers_node_resyncs_received_total", "counter", "Full resyncs received from that node.",
       [](const proto::NodeStats& n) -> uint64_t { return n.resyncs_received(); }},
      {"weir_peers_node_payload_bytes_sent_total", "counter",
       "Bytes of updates and resyncs sent to that node, as Protobuf (before CURVE).",
       [](const proto::NodeStats& n) -> uint64_t { return n.payload_bytes_sent(); }},
      {"weir_peers_node_rows_sent_total", "counter",
       "Entry updates sent to that node (in updates and resyncs).",
       [](const proto::NodeStats& n) -> uint64_t { return n.rows_sent(); }},
      {"weir_peers_node_refused_total", "counter",
       "Connections refused from that node's address or with its name.",
       [](const proto::NodeStats& n) -> uint64_t { return n.refused(); }},
  };
  for (const NodeMetric& m : kNodeMetrics) {
    Family f(out, m.name, m.type, m.help);
    for (const proto::NodeStats& n : s.nodes) f.sample({{"node", n.name()}}, m.read(n));
  }
}

}  // namespace

std::string render_prometheus(Worker& w) {
  std::string out;
  out.reserve(16384);
  {
    Family f(out, "weir_process_info", "gauge", "Version and generation of this worker.");
    f.sample({{"version", version()}, {"generation", std::to_string(w.generation())}}, 1);
  }
  {
    Family f(out, "weir_process_start_time_seconds", "gauge",
             "When this worker started, in seconds since the Unix epoch.");
    int64_t up_ms = EventLoop::monotonic_ms() - w.start_ms();
    f.sample({}, static_cast<uint64_t>((log::wall_clock_ms() - up_ms) / 1000));
  }
  {
    Family f(out, "weir_process_current_connections", "gauge", "Client connections open.");
    f.sample({}, static_cast<uint64_t>(w.current_connections()));
  }
  {
    Family f(out, "weir_process_max_connections", "gauge",
             "The maxconn the worker runs with (global.maxconn, lowered to the open-file limit).");
    f.sample({}, w.config().global.maxconn);
  }
  {
    Family f(out, "weir_process_threads", "gauge", "Event-loop threads of this worker.");
    f.sample({}, static_cast<uint64_t>(w.config().global.threads));
  }

  const int64_t now = EventLoop::monotonic_ms();
  {
    Family f(out, "weir_process_dropped_logs_total", "counter",
             "Access-log lines dropped because a log target was slow or unreachable.");
    f.sample({}, w.dropped_log_lines());
  }
  {
    Family f(out, "weir_process_fd_shortages_total", "counter",
             "Accepts and server connections delayed because no file descriptor was free.");
    f.sample({}, w.fd_shortages());
  }
  {
    Family f(out, "weir_process_proxy_headers_total", "counter",
             "PROXY protocol headers read on accept_proxy binds.");
    f.sample({}, w.proxy_stats().accepted());
  }
  {
    Family f(out, "weir_process_proxy_refused_total", "counter",
             "Connections to accept_proxy binds closed before their PROXY protocol header was "
             "read, by reason.");
    for (int i = 0; i < proxy_protocol::kRefusals; ++i) {
      const auto r = static_cast<proxy_protocol::Refusal>(i);
      f.sample({{"reason", proxy_protocol::refusal_name(r)}}, w.proxy_stats().refused(r));
    }
  }
  {
    Family f(out, "weir_process_buffer_waits_total", "counter",
             "Times a connection waited for an I/O buffer.");
    f.sample({}, w.buffer_waits());
  }
  stick_table_families(out, w);
  peers_families(out);
  std::vector<Item> fe_items;
  bool any_http = false;
  for (auto& fe : w.frontends()) {
    fe_items.push_back({{{"proxy", fe->name()}}, &fe->counters(), fe->counters().read(now)});
    any_http = any_http || fe->mode() == Mode::kHttp;
  }
  traffic_families(out, "weir_frontend_", fe_items, any_http, false);
  {
    Family f(out, "weir_frontend_connections_total", "counter",
             "Client connections accepted by the frontend.");
    for (const Item& i : fe_items) f.sample(i.labels, i.totals.connections_total);
  }
  {
    Family f(out, "weir_frontend_current_connections", "gauge",
             "Client connections open on the frontend.");
    for (const Item& i : fe_items) f.sample(i.labels, non_negative(i.live->current()));
  }
  if (!w.tls_fronts().empty()) {
    {
      Family f(out, "weir_frontend_tls_handshake_failures_total", "counter",
               "TLS handshakes with clients that failed (or timed out) on the frontend.");
      for (auto& fe : w.frontends()) {
        bool tls = false;
        for (const auto& t : w.tls_fronts()) tls = tls || t.fe == fe.get();
        if (tls) f.sample({{"proxy", fe->name()}}, fe->tls_failures());
      }
    }
    // One sample per certificate file (a file served by several binds once).
    std::vector<std::pair<std::string, const tls::CertInfo*>> certs;
    for (const auto& t : w.tls_fronts()) {
      for (const tls::CertInfo& c : t.ctx->certs()) {
        bool seen = false;
        for (const auto& [file, ci] : certs) seen = seen || file == c.file;
        if (!seen) certs.emplace_back(c.file, &c);
      }
    }
    const int64_t wall = static_cast<int64_t>(time(nullptr));
    {
      Family f(out, "weir_tls_certificate_expiry_seconds", "gauge",
               "Seconds until the certificate's notAfter (negative once expired).");
      for (const auto& [file, c] : certs) {
        f.sample_text({{"file", file}, {"subject", c->subject}},
                      std::to_string(c->not_after - wall));
      }
    }
    {
      Family f(out, "weir_tls_certificate_not_after_seconds", "gauge",
               "The certificate's notAfter as a Unix time.");
      for (const auto& [file, c] : certs) {
        f.sample_text({{"file", file}, {"subject", c->subject}}, std::to_string(c->not_after));
      }
    }
  }

  std::vector<Item> be_items, srv_items;
  std::vector<std::pair<Backend*, std::vector<Server*>>> lists;
  for (auto& be : w.backends()) {
    be_items.push_back({{{"proxy", be->name()}}, &be->counters(), be->counters().read(now)});
    lists.emplace_back(be.get(), be->servers());
    for (Server* s : lists.back().second) {
      srv_items.push_back({{{"proxy", be->name()}, {"server", s->name()}},
                           &s->counters(),
                           s->counters().read(now)});
    }
  }
  traffic_families(out, "weir_backend_", be_items, true, true);
  {
    Family f(out, "weir_backend_active_servers", "gauge", "Servers taking new traffic.");
    for (auto& [be, servers] : lists) {
      uint64_t n = 0;
      for (Server* s : servers) n += s->selectable() ? 1 : 0;
      f.sample({{"proxy", be->name()}}, n);
    }
  }
  {
    Family f(out, "weir_backend_current_queue", "gauge",
             "Requests waiting in the backend's queue for any server.");
    for (auto& [be, servers] : lists) f.sample({{"proxy", be->name()}}, non_negative(be->queued()));
  }
  {
    Family f(out, "weir_backend_max_queue", "gauge",
             "Most requests ever waiting in the backend's queue.");
    for (auto& [be, servers] : lists)
      f.sample({{"proxy", be->name()}}, non_negative(be->queue_max()));
  }
  traffic_families(out, "weir_server_", srv_items, true, true);
  {
    Family f(out, "weir_server_current_queue", "gauge",
             "Requests waiting in the server's own queue.");
    for (auto& [be, servers] : lists)
      for (Server* s : servers)
        f.sample({{"proxy", be->name()}, {"server", s->name()}}, non_negative(s->queued()));
  }
  {
    Family f(out, "weir_server_max_queue", "gauge",
             "Most requests ever waiting in the server's own queue.");
    for (auto& [be, servers] : lists)
      for (Server* s : servers)
        f.sample({{"proxy", be->name()}, {"server", s->name()}}, non_negative(s->queue_max()));
  }
  {
    Family f(out, "weir_server_up", "gauge",
             "1 while the server passes its health checks (always 1 without checks) and its "
             "agent, if any, did not say down.");
    for (auto& [be, servers] : lists)
      for (Server* s : servers)
        f.sample({{"proxy", be->name()}, {"server", s->name()}}, s->up() ? 1 : 0);
  }
  {
    Family f(out, "weir_server_last_change_seconds", "gauge",
             "Seconds since the server's state (admin or health) last changed.");
    for (auto& [be, servers] : lists) {
      for (Server* s : servers) {
        int64_t since = s->last_change_ms() ? s->last_change_ms() : w.start_ms();
        f.sample({{"proxy", be->name()}, {"server", s->name()}},
                 non_negative((now - since) / 1000));
      }
    }
  }
  {
    // One sample per check result, 1 for the last one (servers with checks only).
    static constexpr const char* kStatuses[] = {"L4OK",  "L4CON",  "L4TOUT", "L6OK",
                                                "L6RSP", "L6TOUT", "L7OK",   "L7OKC",
                                                "L7STS", "L7TOUT", "L7RSP"};
    Family f(out, "weir_server_check_status", "gauge",
             "Result of the last health check: 1 for the status it ended with.");
    for (auto& [be, servers] : lists) {
      for (Server* s : servers) {
        if (!s->config().check.enabled) continue;
        const std::string last = s->check_status().status;
        for (const char* st : kStatuses) {
          f.sample({{"proxy", be->name()}, {"server", s->name()}, {"state", st}},
                   last == st ? 1 : 0);
        }
      }
    }
  }
  {
    Family f(out, "weir_server_agent_down", "gauge",
             "1 while the server's agent says it is down (servers with an agent only).");
    for (auto& [be, servers] : lists)
      for (Server* s : servers)
        if (s->config().agent.enabled)
          f.sample({{"proxy", be->name()}, {"server", s->name()}}, s->agent_down() ? 1 : 0);
  }
  {
    Family failed(out, "weir_server_check_failures_total", "counter", "Failed health checks.");
    for (auto& [be, servers] : lists)
      for (Server* s : servers)
        failed.sample({{"proxy", be->name()}, {"server", s->name()}}, s->check_status().failed);
  }
  {
    Family downs(out, "weir_server_check_down_transitions_total", "counter",
                 "Times health checks took the server from UP to DOWN.");
    for (auto& [be, servers] : lists)
      for (Server* s : servers)
        downs.sample({{"proxy", be->name()}, {"server", s->name()}},
                     s->check_status().down_transitions);
  }
  {
    Family down(out, "weir_server_downtime_seconds_total", "counter",
                "Seconds the server has spent DOWN.");
    for (auto& [be, servers] : lists) {
      for (Server* s : servers) {
        Server::CheckStatus cs = s->check_status();
        int64_t ms = cs.downtime_ms + (cs.down_since_ms >= 0 ? now - cs.down_since_ms : 0);
        down.sample({{"proxy", be->name()}, {"server", s->name()}}, non_negative(ms / 1000));
      }
    }
  }
  {
    Family f(out, "weir_server_backup", "gauge", "1 for a backup server.");
    for (auto& [be, servers] : lists)
      for (Server* s : servers)
        f.sample({{"proxy", be->name()}, {"server", s->name()}}, s->backup() ? 1 : 0);
  }
  {
    Family f(out, "weir_server_max_connections", "gauge", "The server's maxconn (0: no limit).");
    for (auto& [be, servers] : lists)
      for (Server* s : servers)
        f.sample({{"proxy", be->name()}, {"server", s->name()}}, s->maxconn());
  }
  {
    Family f(out, "weir_server_weight", "gauge", "Current weight of the server.");
    for (auto& [be, servers] : lists)
      for (Server* s : servers)
        f.sample({{"proxy", be->name()}, {"server", s->name()}}, s->weight());
  }
  {
    Family f(out, "weir_server_admin_state", "gauge",
             "Administrative state: 1 for the state the server is in.");
    const AdminState states[] = {AdminState::kReady, AdminState::kDrain, AdminState::kMaint};
    for (auto& [be, servers] : lists) {
      for (Server* s : servers) {
        for (AdminState st : states) {
          f.sample({{"proxy", be->name()}, {"server", s->name()}, {"state", admin_state_name(st)}},
                   s->admin_state() == st ? 1 : 0);
        }
      }
    }
  }
  return out;
}

}  // namespace weir
