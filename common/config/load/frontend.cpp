// frontends: where clients connect (binds), in which mode, and where their
// requests go; the metrics uri. The stats page (stats_page.cpp), the rules
// (rules.cpp) and TLS (tls.cpp) have their own files.

#include "common/base/address.h"
#include "common/config/load/loader.h"

namespace weir::config_detail {
namespace {

struct FrontendScope : RulesScope {
  FrontendConfig& out;
  size_t index;  // in config.frontends, once it is added
};

// A key that matters only in `mode`: set in the other mode, it is a warning.
void warn_unless(const FrontendScope& s, const YamlNode& v, const std::string& what, Mode mode) {
  if (s.mode_known && s.out.mode != mode) {
    s.warn(v.mark, what + " has no effect in " + (mode == Mode::kHttp ? "tcp" : "http") + " mode");
  }
}

// ---- bind: an address, or a map {address, backlog, v6only, tls} ------------------------

struct BindScope : Scope {
  BindConfig& out;
};

constexpr Key<BindScope> kBindKeys[] = {
    {"address"},  // read last, by load_bind(): the v6only warning needs v6only
    {"backlog", integer<&BindConfig::backlog, 1, 65535>},
    {"v6only", flag<&BindConfig::v6only>},
    {"tls", read_into<&BindConfig::tls, &Loader::load_tls_bind>},
    {"accept_proxy", read_into<&BindConfig::accept_proxy, &Loader::load_accept_proxy>},
};
constexpr auto kBindNames = names_of(kBindKeys);

// ---- metrics: a uri, or {uri: ...} -------------------------------------------------------

struct MetricsScope : Scope {
  FrontendConfig& out;
  bool mode_known;
};

bool read_metrics_uri(MetricsScope& s, const YamlNode& v, const std::string& what) {
  const auto path = s.text_value(v, what, "a path such as /metrics");
  if (!path) return false;
  if (path->empty() || path->front() != '/') {
    s.error(v.mark, what + " must start with '/' (got " + quoted(*path) + ")");
    return false;
  }
  if (s.mode_known && s.out.mode == Mode::kTcp) {
    s.error(v.mark, s.label + " needs mode http");
    return false;
  }
  s.out.metrics_uri = *path;
  return true;
}

constexpr Key<MetricsScope> kMetricsKeys[] = {{"uri", read_metrics_uri}};
constexpr auto kMetricsNames = names_of(kMetricsKeys);

// ---- the frontend's own keys -------------------------------------------------------------

bool read_bind(FrontendScope& s, const YamlNode& v, const std::string& what) {
  if (v.kind != Kind::kSequence) {
    s.loader.load_bind(v, s.out);  // a single address without the list around it
    return true;
  }
  if (v.items.empty()) s.error(v.mark, what + ": the list is empty");
  for (const auto& item : v.items) s.loader.load_bind(*item, s.out);
  return true;
}

bool read_default_backend(FrontendScope& s, const YamlNode& v, const std::string& what) {
  auto name = s.string_value(v, what);
  if (!name) return false;
  s.out.default_backend = std::move(*name);
  s.loader.default_backends.push_back({s.index, v.mark, s.mode_known});
  return true;
}

bool read_forwardfor(FrontendScope& s, const YamlNode& v, const std::string& what) {
  if (!flag<&FrontendConfig::forwardfor>(s, v, what)) return false;
  if (s.out.forwardfor) warn_unless(s, v, what, Mode::kHttp);
  return true;
}

bool read_allow_connect(FrontendScope& s, const YamlNode& v, const std::string& what) {
  if (!flag<&FrontendConfig::allow_connect>(s, v, what)) return false;
  if (s.out.allow_connect) warn_unless(s, v, what, Mode::kHttp);
  return true;
}

bool read_inspect_delay(FrontendScope& s, const YamlNode& v, const std::string& what) {
  if (!duration<&FrontendConfig::inspect_delay>(s, v, what)) return false;
  if (s.out.inspect_delay > 0) warn_unless(s, v, what, Mode::kTcp);
  return true;
}

bool read_timeouts(FrontendScope& s, const YamlNode& v, const std::string&) {
  s.loader.load_frontend_timeouts(v, s.label, s.out.timeouts);
  return true;
}

bool read_metrics(FrontendScope& s, const YamlNode& v, const std::string& what) {
  MetricsScope metrics{{s.loader, what}, s.out, s.mode_known};
  if (v.kind != Kind::kMap) return read_metrics_uri(metrics, v, what + ": uri");
  const Fields fields = s.loader.map_fields(v, s.label + ".metrics");
  s.loader.reject_unknown(fields, kMetricsNames, "in " + s.label + ".metrics");
  if (!fields.get("uri")) s.error(v.mark, what + ": missing uri");
  return read_keys(kMetricsKeys, fields, metrics);
}

bool read_stats(FrontendScope& s, const YamlNode& v, const std::string&) {
  s.loader.load_stats(v, s.out, s.mode_known);
  return true;
}

constexpr Key<FrontendScope> kFrontendKeys[] = {
    {"bind", read_bind},
    {"mode"},  // read first, by load_frontend(): what the other keys mean depends on it
    {"maxconn", integer<&FrontendConfig::maxconn, 1, kMaxConn>},
    {"default_backend", read_default_backend},
    {"forwardfor", read_forwardfor},
    {"log", flag<&FrontendConfig::log>},
    {"timeouts", read_timeouts},
    {"metrics", read_metrics},
    {"stats", read_stats},  // after metrics: their uris must differ
    {"acls", shared<read_acls>},
    {"http_request", shared<read_http_request>},  // the rules after the acls they name
    {"http_response", shared<read_http_response>},
    {"tcp_request", shared<read_tcp_request>},
    {"errorfiles", shared<read_errorfiles>},
    {"allow_connect", read_allow_connect},
    {"inspect_delay", read_inspect_delay},
};
constexpr auto kFrontendNames = names_of(kFrontendKeys);

constexpr KeyList kLists[] = {
    {"frontend", kKeysOf, kFrontendNames},
    {"frontend.bind", kKeysOf, kBindNames},
    {"frontend.metrics", kKeysOf, kMetricsNames},
};
const Registrar<KeyList> kRegisterFrontend(kLists);

}  // namespace

void Loader::load_frontends(const YamlNode& node, const SourceMark& missing_mark) {
  const Fields frontends = map_fields(node, "frontends", "frontend", "");
  if (frontends.list.empty() && node.kind != Kind::kSequence && node.kind != Kind::kScalar) {
    error(missing_mark, "no frontends defined");
  }
  for (const Field& field : frontends.list) load_frontend(field);
}

void Loader::load_frontend(const Field& field) {
  FrontendConfig frontend;
  frontend.name = field.key;
  frontend.mark = field.key_node->mark;
  frontend.mode = defaults.mode;
  frontend.forwardfor = defaults.forwardfor;
  frontend.timeouts = defaults.timeouts;
  const std::string label = "frontend " + quoted(frontend.name);
  if (!valid_name(frontend.name)) {
    error(frontend.mark, "invalid frontend name " + quoted(frontend.name) +
                             " (use letters, digits, '_', '.' and '-')");
  }
  const Fields fields = map_fields(*field.value, label);
  reject_unknown(fields, kFrontendNames, "in " + label);
  bool mode_known = true;
  if (const YamlNode* v = fields.get("mode")) {
    const auto mode = mode_value(*v, label + ": mode");
    if (mode) frontend.mode = *mode;
    mode_known = mode.has_value();
  }
  const size_t index = config.frontends.size();
  FrontendScope scope{
      {{*this, label}, frontend.rules, frontend.mode, mode_known, static_cast<int>(index), {}},
      frontend,
      index};
  read_keys(kFrontendKeys, fields, scope);
  const bool has_keys = field.value->kind == Kind::kMap || field.value->kind == Kind::kNull;
  if (has_keys && !fields.get("bind")) error(frontend.mark, label + " has no bind address");
  // A frontend that only serves weir's own pages (stats, metrics) needs no
  // backend: its other requests are answered 503.
  const bool own_pages_only = !frontend.stats.uri.empty() || !frontend.metrics_uri.empty();
  if (has_keys && !fields.get("default_backend") && !own_pages_only) {
    error(frontend.mark, label + " has no default_backend");
  }
  config.frontends.push_back(std::move(frontend));
}

void Loader::load_bind(const YamlNode& node, FrontendConfig& frontend) {
  const std::string label = "frontend " + quoted(frontend.name);
  BindConfig bind;
  const YamlNode* address = &node;
  const YamlNode* v6only = nullptr;
  if (node.kind == Kind::kMap) {
    const Fields fields = map_fields(node, "bind of " + label);
    reject_unknown(fields, kBindNames, "in bind of " + label);
    BindScope scope{{*this, label + ": bind"}, bind};
    read_keys(kBindKeys, fields, scope);
    address = fields.get("address");
    v6only = fields.get("v6only");
    if (!address) {
      error(node.mark, label + ": bind entry has no address");
      return;
    }
  }
  const auto text = text_value(*address, label + ": bind", "an address such as 0.0.0.0:80");
  if (!text) return;
  std::string problem;
  const auto addr = parse_address(*text, /*allow_wildcard=*/true, &problem);
  if (!addr) {
    error(address->mark, label + ": bind " + quoted(*text) + ": " + problem);
    return;
  }
  bind.address_text = *text;
  bind.addr = *addr;
  bind.mark = address->mark;
  if (v6only && addr->family() == AF_INET) {
    warn(v6only->mark, label + ": bind " + quoted(*text) + ": v6only has no effect on IPv4");
  }
  const std::string key = bind.key();
  const auto [it, inserted] = binds.try_emplace(key, frontend.name, bind.mark);
  if (!inserted) {
    const auto& [owner, first] = it->second;
    error(bind.mark, label + ": bind " + quoted(*text) + " is already used by " +
                         (owner == frontend.name ? "this frontend" : "frontend " + quoted(owner)) +
                         " (line " + std::to_string(first.line) + ")");
  }
  frontend.binds.push_back(std::move(bind));
}

}  // namespace weir::config_detail
