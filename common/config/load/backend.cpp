// backends: groups of servers, how one is chosen (balance) and what every server
// starts from (check, agent, tls). Servers (server.cpp), health checks
// (checks.cpp), rules (rules.cpp) and TLS (tls.cpp) have their own files.

#include <algorithm>
#include <cctype>

#include "common/base/registry.h"
#include "common/config/load/loader.h"

namespace weir::config_detail {
namespace {

// ---- balance: an algorithm, or a map {algorithm, hash_type, name, ...} -----------------

// Algorithms and hash types are registered by their files under worker/backend/lb/.
const LbAlgorithmDef* find_algorithm(std::string_view name) {
  return Registry<LbAlgorithmDef>::instance().find(name);
}

// The registered names that `keep` accepts, sorted, for messages and the dump.
template <typename Entry, typename Keep>
std::vector<std::string_view> registered(Keep keep) {
  std::vector<std::string_view> names;
  for (const Entry* e : Registry<Entry>::instance().entries()) {
    if (keep(*e)) names.push_back(e->name);
  }
  std::sort(names.begin(), names.end());
  return names;
}
std::vector<std::string_view> algorithm_names() {
  return registered<LbAlgorithmDef>([](const LbAlgorithmDef&) { return true; });
}
std::vector<std::string_view> hash_type_names() {
  return registered<HashTypeDef>([](const HashTypeDef&) { return true; });
}

struct BalanceScope : Scope {
  BalanceConfig& out;
  const LbAlgorithmDef& def;
};

// An option that only some algorithms take; the message names them.
bool applies(const BalanceScope& s, LbOption option, const YamlNode& v, const std::string& what) {
  if (s.def.options & option) return true;
  s.error(v.mark, what + " only applies to " +
                      join(registered<LbAlgorithmDef>([option](const LbAlgorithmDef& d) {
                        return (d.options & option) != 0;
                      })));
  return false;
}

bool read_hash_type(BalanceScope& s, const YamlNode& v, const std::string& what) {
  if (!applies(s, kLbOptHashType, v, what)) return false;
  const std::vector<std::string_view> known = hash_type_names();
  const auto word = s.text_value(v, what, one_of(known));
  if (!word) return false;
  if (!Registry<HashTypeDef>::instance().find(*word)) {
    s.error(v.mark,
            s.label + ": unknown hash_type " + quoted(*word) + " (expected " + one_of(known) + ")");
    return false;
  }
  s.out.hash_type = *word;
  return true;
}

bool read_depth(BalanceScope& s, const YamlNode& v, const std::string& what) {
  return applies(s, kLbOptDepth, v, what) && integer<&BalanceConfig::uri_depth, 0, 64>(s, v, what);
}

bool read_whole(BalanceScope& s, const YamlNode& v, const std::string& what) {
  return applies(s, kLbOptWhole, v, what) && flag<&BalanceConfig::uri_whole>(s, v, what);
}

bool read_draws(BalanceScope& s, const YamlNode& v, const std::string& what) {
  return applies(s, kLbOptDraws, v, what) && integer<&BalanceConfig::draws, 1, 100>(s, v, what);
}

constexpr Key<BalanceScope> kBalanceKeys[] = {
    {"algorithm"},  // read first, with name, by load_balance(): the options depend on them
    {"hash_type", read_hash_type},
    {"name"},
    {"depth", read_depth},
    {"whole", read_whole},
    {"draws", read_draws},
};
constexpr auto kBalanceNames = names_of(kBalanceKeys);

// ---- the backend's own keys --------------------------------------------------------------

struct BackendScope : RulesScope {
  BackendConfig& out;
  bool mode_valid;  // mode: is absent or valid (the rules take the mode as known either way)
};

bool read_balance(BackendScope& s, const YamlNode& v, const std::string&) {
  s.loader.load_balance(v, s.label, s.out.balance);
  const LbAlgorithmDef* def = find_algorithm(s.out.balance.algorithm);
  if (s.mode_valid && s.out.mode == Mode::kTcp && def && def->http_only()) {
    s.error(v.mark, s.label + ": balance " + s.out.balance.algorithm +
                        " needs http mode (this backend is tcp)");
  }
  return true;
}

// Which idle server connections a request may take. tcp connections are
// never reused: the key means nothing there, as forwardfor means nothing in a
// tcp frontend, so it is a warning (HAProxy warns about http-reuse in a tcp
// backend too), not an error.
bool read_http_reuse(BackendScope& s, const YamlNode& v, const std::string& what) {
  if (!choice<&BackendConfig::http_reuse, kHttpReuseModes>(s, v, what, what + ": unknown mode"))
    return false;
  if (s.mode_valid && s.out.mode == Mode::kTcp) s.warn(v.mark, what + " has no effect in tcp mode");
  return true;
}

bool read_stick(BackendScope& s, const YamlNode& v, const std::string&) {
  s.loader.load_stick_rules(v, s.label, s.acls, s.mode_valid, s.out);
  return true;
}

bool read_cookie(BackendScope& s, const YamlNode& v, const std::string&) {
  s.loader.load_cookie(v, s.label, s.mode_valid, s.out);
  return true;
}

bool read_timeouts(BackendScope& s, const YamlNode& v, const std::string&) {
  s.loader.load_backend_timeouts(v, s.label, s.out.timeouts);
  return true;
}

constexpr Key<BackendScope> kBackendKeys[] = {
    {"mode"},  // read first, by load_backend(): what the other keys mean depends on it
    {"balance", read_balance},
    {"retries", integer<&BackendConfig::retries, 0, 100>},
    {"timeouts", read_timeouts},
    {"servers"},  // read last, by load_backend(): check, agent and tls are their defaults
    {"abortonclose", flag<&BackendConfig::abortonclose>},
    {"http_reuse", read_http_reuse},
    {"redispatch", flag<&BackendConfig::redispatch>},
    {"all_backups", flag<&BackendConfig::all_backups>},
    {"fullconn", integer<&BackendConfig::fullconn, 1, 10000000>},
    {"check", read_into<&BackendConfig::default_check, &Loader::load_check>},  // the servers'
    {"agent", read_into<&BackendConfig::default_agent, &Loader::load_agent>},  // defaults

    {"acls", shared<read_acls>},
    {"http_request", shared<read_http_request>},  // the rules after the acls they name
    {"http_response", shared<read_http_response>},
    {"tcp_request", shared<read_tcp_request>},
    {"errorfiles", shared<read_errorfiles>},
    {"stick", read_stick},  // after the acls its conditions name
    {"cookie", read_cookie},
    {"stick_redispatch", flag<&BackendConfig::stick_redispatch>},
    {"tls", read_into<&BackendConfig::default_tls, &Loader::load_tls_server>},
    {"send_proxy", read_into<&BackendConfig::default_send_proxy, &Loader::load_send_proxy>},
    {"check_send_proxy",
     read_into<&BackendConfig::default_send_proxy, &Loader::load_check_send_proxy>},
};
constexpr auto kBackendNames = names_of(kBackendKeys);

constexpr auto kHttpReuseNames = names_of(kHttpReuseModes);

constexpr KeyList kLists[] = {
    {"backend", kKeysOf, kBackendNames},
    {"http_reuse", kValuesOf, kHttpReuseNames},  // defaults.http_reuse too
    {"backend.balance", kKeysOf, kBalanceNames},
    {"backend.balance.algorithm", kValuesOf, {}, algorithm_names},
    {"backend.balance.hash_type", kValuesOf, {}, hash_type_names},
};
const Registrar<KeyList> kRegisterBackend(kLists);

}  // namespace

void Loader::load_backends(const YamlNode& node) {
  for (const Field& field : map_fields(node, "backends", "backend", "").list) load_backend(field);
}

void Loader::load_backend(const Field& field) {
  BackendConfig backend;
  backend.name = field.key;
  backend.mark = field.key_node->mark;
  backend.mode = defaults.mode;
  backend.retries = defaults.retries;
  backend.abortonclose = defaults.abortonclose;
  backend.http_reuse = defaults.http_reuse;
  backend.timeouts = defaults.timeouts;
  const std::string label = "backend " + quoted(backend.name);
  if (!valid_name(backend.name)) {
    error(backend.mark, "invalid backend name " + quoted(backend.name) +
                            " (use letters, digits, '_', '.' and '-')");
  }
  const Fields fields = map_fields(*field.value, label);
  reject_unknown(fields, kBackendNames, "in " + label);
  bool mode_valid = true;
  if (const YamlNode* v = fields.get("mode")) {
    const auto mode = mode_value(*v, label + ": mode");
    if (mode) backend.mode = *mode;
    mode_valid = mode.has_value();
  }
  BackendScope scope{
      {{*this, label}, backend.rules, backend.mode, true, -1, {}}, backend, mode_valid};
  read_keys(kBackendKeys, fields, scope);
  const YamlNode* servers = fields.get("servers");
  if (servers) {
    for (const Field& server :
         map_fields(*servers, "servers of " + label, "server", " in " + label).list) {
      load_server(server, backend);
    }
  }
  check_persistence(backend);
  if (!servers || servers->kind == Kind::kNull ||
      (servers->kind == Kind::kMap && servers->entries.empty())) {
    warn(backend.mark, label + " has no servers; requests will get 503");
  } else if (!backend.servers.empty() &&
             std::all_of(backend.servers.begin(), backend.servers.end(),
                         [](const ServerConfig& s) { return s.weight == 0; })) {
    warn(backend.mark, label + ": every server has weight 0; requests will get 503");
  }
  config.backends.push_back(std::move(backend));
  backend_mode_known.push_back(mode_valid);
}

// "roundrobin", "url_param(userid)", "hdr(X-Tenant)", or a map with options.
void Loader::load_balance(const YamlNode& v, const std::string& label, BalanceConfig& out) {
  const YamlNode* algorithm = &v;
  Fields options;
  if (v.kind == Kind::kMap) {
    options = map_fields(v, "balance of " + label);
    reject_unknown(options, kBalanceNames, "in balance of " + label);
    algorithm = options.get("algorithm");
    if (!algorithm) {
      error(v.mark, label + ": balance: missing algorithm");
      return;
    }
  }
  auto text = text_value(*algorithm, label + ": balance", "an algorithm name");
  if (!text) return;
  std::string name = *text;
  std::string argument;
  if (size_t open = name.find('('); open != std::string::npos && name.back() == ')') {
    argument = name.substr(open + 1, name.size() - open - 2);
    name = name.substr(0, open);
  }
  const LbAlgorithmDef* def = find_algorithm(name);
  if (!def) {
    error(algorithm->mark, label + ": unknown balance algorithm " + quoted(name) +
                               " (known: " + join(algorithm_names()) + ")");
    return;
  }
  out.algorithm = name;
  const bool takes_name = (def->options & kLbOptName) != 0;
  if (const YamlNode* n = options.get("name")) {
    if (auto t = text_value(*n, label + ": balance: name", "a parameter or header name")) {
      argument = *t;
    }
  }
  if (takes_name && argument.empty()) {
    error(algorithm->mark, label + ": balance " + name + " needs a " +
                               (def->key == LbKey::kHeader ? "header" : "parameter") + " name: " +
                               name + "(NAME) or {algorithm: " + name + ", name: NAME}");
    return;
  }
  if (!takes_name && !argument.empty()) {
    error(algorithm->mark, label + ": balance " + name + " takes no argument");
    return;
  }
  if (def->key == LbKey::kHeader) {
    for (char& c : argument) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  out.name = argument;
  BalanceScope scope{{*this, label + ": balance"}, out, *def};
  read_keys(kBalanceKeys, options, scope);
}

}  // namespace weir::config_detail
