#include "worker/metrics.h"

#include <unistd.h>

#include <functional>
#include <vector>

#include "common/event_loop.h"
#include "common/log.h"
#include "common/version.h"
#include "worker/backend.h"
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
    out_ += std::to_string(v);
    out_ += '\n';
  }

 private:
  std::string& out_;
  const char* name_;
};

uint64_t get(const std::atomic<uint64_t>& a) {
  return a.load(std::memory_order_relaxed);
}
uint64_t get(const std::atomic<int64_t>& a) {
  int64_t v = a.load(std::memory_order_relaxed);
  return v > 0 ? static_cast<uint64_t>(v) : 0;
}

using Labels = std::vector<std::pair<const char*, std::string>>;

// The counter families shared by frontends, backends and servers.
void traffic_families(std::string& out, const std::string& prefix,
                      const std::vector<std::pair<Labels, TrafficCounters*>>& items, bool http) {
  struct Def {
    const char* suffix;
    const char* type;
    const char* help;
    std::function<uint64_t(TrafficCounters&)> value;
  };
  const Def defs[] = {
      {"current_sessions", "gauge", "Requests (http) or connections (tcp) in progress.",
       [](TrafficCounters& c) { return get(c.sessions_current); }},
      {"sessions_total", "counter", "Requests (http) or connections (tcp) handled.",
       [](TrafficCounters& c) { return get(c.sessions_total); }},
      {"bytes_in_total", "counter", "Bytes received from clients.",
       [](TrafficCounters& c) { return get(c.bytes_in); }},
      {"bytes_out_total", "counter", "Bytes sent to clients.",
       [](TrafficCounters& c) { return get(c.bytes_out); }},
      {"request_errors_total", "counter", "Malformed requests and request timeouts.",
       [](TrafficCounters& c) { return get(c.request_errors); }},
      {"connection_errors_total", "counter", "Failed connection attempts to servers.",
       [](TrafficCounters& c) { return get(c.connect_errors); }},
      {"response_errors_total", "counter", "Invalid, truncated or timed-out responses.",
       [](TrafficCounters& c) { return get(c.response_errors); }},
      {"retry_warnings_total", "counter", "Connection attempts moved to another try.",
       [](TrafficCounters& c) { return get(c.retries); }},
  };
  for (const Def& d : defs) {
    std::string name = prefix + d.suffix;
    Family f(out, name.c_str(), d.type, d.help);
    for (auto& [labels, c] : items) f.sample(labels, d.value(*c));
  }
  if (!http) return;
  std::string name = prefix + "http_responses_total";
  Family f(out, name.c_str(), "counter", "HTTP responses sent, by status class.");
  const char* codes[] = {"other", "1xx", "2xx", "3xx", "4xx", "5xx"};
  for (auto& [labels, c] : items) {
    for (int i = 0; i < 6; ++i) {
      Labels l = labels;
      l.emplace_back("code", codes[i]);
      f.sample(l, get(c->responses[i]));
    }
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
    Family f(out, "weir_process_max_connections", "gauge", "global.maxconn.");
    f.sample({}, w.config().global.maxconn);
  }
  {
    Family f(out, "weir_process_threads", "gauge", "Event-loop threads of this worker.");
    f.sample({}, static_cast<uint64_t>(w.config().global.threads));
  }

  std::vector<std::pair<Labels, TrafficCounters*>> fe_items;
  bool any_http = false;
  for (auto& fe : w.frontends()) {
    fe_items.push_back({{{"proxy", fe->name()}}, &fe->counters()});
    any_http = any_http || fe->mode() == Mode::kHttp;
  }
  traffic_families(out, "weir_frontend_", fe_items, any_http);
  {
    Family f(out, "weir_frontend_current_connections", "gauge",
             "Client connections open on the frontend.");
    for (auto& fe : w.frontends()) f.sample({{"proxy", fe->name()}}, get(fe->conns));
  }

  std::vector<std::pair<Labels, TrafficCounters*>> be_items, srv_items;
  for (auto& be : w.backends()) {
    be_items.push_back({{{"proxy", be->name()}}, &be->counters()});
    for (auto& s : be->servers()) {
      srv_items.push_back({{{"proxy", be->name()}, {"server", s->name()}}, &s->counters()});
    }
  }
  traffic_families(out, "weir_backend_", be_items, true);
  {
    Family f(out, "weir_backend_active_servers", "gauge", "Servers taking new traffic.");
    for (auto& be : w.backends()) {
      uint64_t n = 0;
      for (auto& s : be->servers()) n += s->selectable() ? 1 : 0;
      f.sample({{"proxy", be->name()}}, n);
    }
  }
  traffic_families(out, "weir_server_", srv_items, true);
  {
    Family f(out, "weir_server_weight", "gauge", "Current weight of the server.");
    for (auto& be : w.backends())
      for (auto& s : be->servers())
        f.sample({{"proxy", be->name()}, {"server", s->name()}}, s->weight());
  }
  {
    Family f(out, "weir_server_admin_state", "gauge",
             "Administrative state: 1 for the state the server is in.");
    const AdminState states[] = {AdminState::kReady, AdminState::kDrain, AdminState::kMaint};
    for (auto& be : w.backends()) {
      for (auto& s : be->servers()) {
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
