#pragma once
// The configuration loader's state, shared by the files that read weir.yaml's
// sections. loader.cpp reads the top level and checks what spans sections (the
// backends that frontends name); each section has its own file, with its key
// tables (key_table.h) beside their parsers:
//
//   global.cpp       global, global.tune      log_targets.cpp  global.log
//   runtime_api.cpp  global.runtime_api       defaults.cpp     defaults
//   timeouts.cpp     every timeouts: map      frontend.cpp     frontends, bind, metrics
//   stats_page.cpp   a frontend's stats       backend.cpp      backends, balance
//   server.cpp       a backend's servers      checks.cpp       check, agent
//   rules.cpp        acls, tcp_request, errorfiles, the lists of http rules
//   http_actions.cpp a rule of http_request / http_response (its action: a
//                    registered HttpActionDef, worker/rules/actions_*.cpp)
//   tls.cpp          tls of a bind, of a backend or server
//   proxy_protocol.cpp  accept_proxy of a bind; send_proxy, check_send_proxy
//   peers.cpp        peers (the cluster; read before stick_tables, whose sync needs it)
//   stick_tables.cpp stick_tables (read before the sections whose rules name them)
//
// The loader keeps going after an error, so that one run of `weir -c` lists them all.

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/cond/condition.h"
#include "common/config/config.h"
#include "common/config/load/key_table.h"
#include "common/config/load/value_reader.h"
#include "common/config/load/yaml_tree.h"

namespace weir::config_detail {

using Kind = YamlNode::Kind;

inline constexpr int64_t kMaxConn = INT32_MAX;

// What `defaults:` gives every frontend and backend.
struct Defaults {
  Mode mode = Mode::kHttp;
  Timeouts timeouts;
  int retries = 3;
  bool forwardfor = false;
  bool abortonclose = true;
  HttpReuse http_reuse = HttpReuse::kAlways;
};

// The words of `http_reuse:` (defaults and backends).
inline constexpr Choice<HttpReuse> kHttpReuseModes[] = {
    {"never", HttpReuse::kNever}, {"safe", HttpReuse::kSafe}, {"always", HttpReuse::kAlways}};

// A frontend's default_backend, checked once every backend is known.
struct BackendReference {
  size_t frontend;
  SourceMark mark;
  bool mode_known;
};

// A use_backend rule's constant backend name, checked the same way.
struct RuleBackendReference {
  size_t frontend;
  std::string name;
  SourceMark mark;
};

class Loader : public ValueReader {
 public:
  explicit Loader(const std::string& name) : ValueReader(name) { config.source_name = name; }

  LoadResult load(std::string_view text);

  // The sections.
  void load_global(const YamlNode& node);
  void load_logs(const YamlNode& node);
  void load_runtime_api(const YamlNode& node);
  void load_defaults(const YamlNode& node);
  void load_peers(const YamlNode& node);
  void load_stick_tables(const YamlNode& node);
  // A rule's `table:` (track, stick): a table stick_tables defines; null after
  // saying which tables there are.
  std::shared_ptr<stick::Table> stick_table_value(const YamlNode& node, const std::string& what);
  void load_frontends(const YamlNode& node, const SourceMark& missing_mark);
  void load_frontend(const Field& field);
  void load_bind(const YamlNode& node, FrontendConfig& frontend);
  void load_stats(const YamlNode& node, FrontendConfig& frontend, bool mode_known);
  void load_backends(const YamlNode& node);
  void load_backend(const Field& field);
  void load_balance(const YamlNode& node, const std::string& label, BalanceConfig& out);
  void load_server(const Field& field, BackendConfig& backend);
  // Persistence (persistence.cpp): `stick:` (after the backend's acls), `cookie:`, and
  // the checks that need every server (their cookie values).
  void load_stick_rules(const YamlNode& node, const std::string& label,
                        const cond::NamedTests& acls, bool mode_known, BackendConfig& out);
  void load_cookie(const YamlNode& node, const std::string& label, bool mode_known,
                   BackendConfig& out);
  void check_persistence(BackendConfig& backend);
  // `check:` and `agent:` of a backend or server: true/false or a map applied over `out`.
  void load_check(const YamlNode& node, const std::string& label, HealthCheckConfig& out);
  void load_agent(const YamlNode& node, const std::string& label, AgentConfig& out);
  // `tls:` of a bind; of a backend or server (applied over `out`, key by key).
  void load_tls_bind(const YamlNode& node, const std::string& label, TlsBindConfig& out);
  void load_tls_server(const YamlNode& node, const std::string& label, TlsServerConfig& out);
  // The PROXY protocol (proxy_protocol.cpp): `accept_proxy:` of a bind;
  // `send_proxy:` and `check_send_proxy:` of a backend or server (over `out`).
  void load_accept_proxy(const YamlNode& node, const std::string& label, AcceptProxyConfig& out);
  void load_send_proxy(const YamlNode& node, const std::string& label, SendProxyConfig& out);
  void load_check_send_proxy(const YamlNode& node, const std::string& label, SendProxyConfig& out);
  // `timeouts:` of each section; `label` names the map, `owner` the section.
  void load_global_timeouts(const YamlNode& node, GlobalConfig& out);
  void load_defaults_timeouts(const YamlNode& node, Timeouts& out);
  void load_frontend_timeouts(const YamlNode& node, const std::string& owner, Timeouts& out);
  void load_backend_timeouts(const YamlNode& node, const std::string& owner, Timeouts& out);

  // Values that several sections read.
  std::optional<Mode> mode_value(const YamlNode& node, const std::string& what);
  // A string with %[fetch] samples (header values, redirects, sni).
  std::optional<cond::ValueTemplate> template_value(const YamlNode& node, const std::string& what);
  // A sample expression ("hdr(x-api-key),lower").
  std::optional<cond::SampleExpr> sample_value(const YamlNode& node, const std::string& what);
  // if/unless of a rule; `acls` are the named conditions it may use.
  std::shared_ptr<const cond::Condition> condition_value(const YamlNode& node,
                                                         const std::string& what,
                                                         const cond::NamedTests& acls,
                                                         bool response);
  // Reports a mistake the condition parser found in `text` (the value of
  // `node`), at the character it names.
  void parse_error(const YamlNode& node, const std::string& what, const std::string& text,
                   const cond::ParseError& pe);
  // Where a character of a scalar value is in the file (for errors inside a
  // string, such as a log format); skips the opening quote of a quoted scalar.
  SourceMark mark_inside(const YamlNode& node, size_t offset) const;

  // What the sections build and share.
  Config config;
  Defaults defaults;                                // read before frontends and backends
  std::vector<bool> backend_mode_known;             // parallel to config.backends
  std::vector<BackendReference> default_backends;   // checked by check_references()
  std::vector<RuleBackendReference> rule_backends;  // the same, for use_backend rules
  bool dynamic_backends = false;                    // some use_backend is computed per request
  std::map<std::string, std::pair<std::string, SourceMark>> binds;  // key -> frontend, mark
  cond::FileCache files;  // value lists and maps named in conditions, read once

 private:
  void check_references();
  std::string_view text_;
};

// A map being read: the loader, and the label that starts messages about its
// values ("frontend 'web'", to which read_keys() adds ": key"). Each section
// derives its own scope with what its keys fill (`out`) and need to know.
struct Scope {
  Loader& loader;
  std::string label;

  void error(const SourceMark& mark, std::string message) const {
    loader.error(mark, std::move(message));
  }
  void warn(const SourceMark& mark, std::string message) const {
    loader.warn(mark, std::move(message));
  }
  std::optional<std::string> text_value(const YamlNode& node, const std::string& what,
                                        std::string_view expected) const {
    return loader.text_value(node, what, expected);
  }
  std::optional<std::string> string_value(const YamlNode& node, const std::string& what) const {
    return loader.string_value(node, what);
  }
  std::optional<int64_t> int_value(const YamlNode& node, const std::string& what, int64_t min,
                                   int64_t max) const {
    return loader.int_value(node, what, min, max);
  }
  std::optional<bool> bool_value(const YamlNode& node, const std::string& what) const {
    return loader.bool_value(node, what);
  }
  std::optional<int64_t> duration_value(const YamlNode& node, const std::string& what) const {
    return loader.duration_value(node, what);
  }
  std::optional<uint64_t> size_value(const YamlNode& node, const std::string& what, uint64_t min,
                                     uint64_t max) const {
    return loader.size_value(node, what, min, max);
  }
};

// What the rule keys of a frontend or a backend work on (rules.cpp): acls,
// http_request, http_response, tcp_request, errorfiles.
struct RulesScope : Scope {
  RuleSet& rules;
  Mode mode;
  bool mode_known;
  int frontend_index;     // -1: a backend
  cond::NamedTests acls;  // filled by `acls:`, which comes before the rules in the tables
};
bool read_acls(RulesScope& s, const YamlNode& v, const std::string& what);
bool read_http_request(RulesScope& s, const YamlNode& v, const std::string& what);
bool read_http_response(RulesScope& s, const YamlNode& v, const std::string& what);
bool read_tcp_request(RulesScope& s, const YamlNode& v, const std::string& what);
bool read_errorfiles(RulesScope& s, const YamlNode& v, const std::string& what);

// One rule of http_request or http_response (http_actions.cpp); nullopt after
// reporting what is wrong. `what` names the rule ("frontend 'web': http_request rule 2");
// frontend_index: the frontend whose rule it is, -1 for a backend.
std::optional<HttpRule> load_http_rule(Loader& loader, const YamlNode& node,
                                       const std::string& what, bool response, int frontend_index,
                                       const cond::NamedTests& acls);

// A key whose value a Loader function reads on its own (a section of its own):
// {"log", read_with<&Loader::load_logs>}.
template <auto Load, typename S>
bool read_with(S& s, const YamlNode& v, const std::string&) {
  (s.loader.*Load)(v);
  return true;
}

// A key whose value a Loader function reads into a member of the scope's `out`:
// {"check", read_into<&ServerConfig::check, &Loader::load_check>}.
template <auto Member, auto Load, typename S>
bool read_into(S& s, const YamlNode& v, const std::string& what) {
  (s.loader.*Load)(v, what, s.out.*Member);
  return true;
}

// A key of a map whose parser takes a base of the map's scope (keys that
// frontends and backends share): {"acls", shared<read_acls>}.
template <auto Parse, typename S>
bool shared(S& s, const YamlNode& v, const std::string& what) {
  return Parse(s, v, what);
}

// The entries of a list-valued key; a single entry may be written without the
// list around it, and an empty value has none.
std::vector<const YamlNode*> entries_of(const YamlNode& node);
// Frontend, backend, server, acl and variable names: letters, digits, '_', '.', '-'.
bool valid_name(std::string_view name);
// A persistence cookie's value as a server's `cookie:` gives it: printable, without
// the characters a cookie cannot hold (RFC 6265) nor '|' and '~' (weir's dates and
// prefixes); false with *problem.
bool cookie_value_valid(std::string_view v, std::string* problem);
// Whether the system knows a user (getpwnam_r) or a group (getgrnam_r).
bool user_exists(const std::string& name);
bool group_exists(const std::string& name);

}  // namespace weir::config_detail
