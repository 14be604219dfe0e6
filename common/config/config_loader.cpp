// Turns weir.yaml into a Config: every key checked, every default resolved, every
// problem reported with its position (the loader keeps going after an error so that
// one run of `weir -c` lists them all).

#include <grp.h>
#include <pwd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <regex>
#include <span>
#include <sstream>
#include <string>
#include <vector>

#include "common/base/address.h"
#include "common/base/registry.h"
#include "common/base/units.h"
#include "common/config/config.h"
#include "common/config/config_loader_detail.h"
#include "common/config/log_format.h"

namespace weir {
namespace {

using config_detail::contains;
using config_detail::describe;
using config_detail::Field;
using config_detail::Fields;
using config_detail::join;
using config_detail::quoted;
using config_detail::sort_messages;
using config_detail::suggestion;
using config_detail::YamlNode;
using Kind = YamlNode::Kind;
using Names = std::span<const std::string_view>;

constexpr int64_t kMaxConn = INT32_MAX;
constexpr size_t kMaxFileSize = 16 * 1024 * 1024;

// The keys each block accepts (also the candidates for "did you mean").
constexpr std::string_view kTopKeys[] = {"global", "defaults", "frontends", "backends"};
constexpr std::string_view kGlobalKeys[] = {"threads",
                                            "maxconn",
                                            "user",
                                            "group",
                                            "pidfile",
                                            "log",
                                            "tune",
                                            "timeouts",
                                            "max_old_generations",
                                            "master_socket",
                                            "runtime_api",
                                            "state_file",
                                            "tls_ticket_secret_file"};
constexpr std::string_view kTuneKeys[] = {"bufsize", "splice_threshold", "max_headers"};
// The capacity of the HTTP parser's header table (worker/http/http_codec.h kMaxHeaders).
constexpr int64_t kMaxHeadersLimit = 1000;
constexpr std::string_view kLogKeys[] = {"target",  "format",   "address",
                                         "framing", "facility", "tag"};
constexpr std::string_view kDefaultsKeys[] = {"mode", "timeouts", "retries", "forwardfor",
                                              "abortonclose"};
constexpr std::string_view kFrontendKeys[] = {
    "bind",        "mode",       "maxconn",       "default_backend",
    "forwardfor",  "log",        "timeouts",      "metrics",
    "stats",       "acls",       "http_request",  "http_response",
    "tcp_request", "errorfiles", "allow_connect", "inspect_delay"};
constexpr std::string_view kStatsKeys[] = {"uri", "refresh", "auth", "hide_version"};
constexpr std::string_view kStatsAuthKeys[] = {"realm", "users"};
constexpr std::string_view kBindKeys[] = {"address", "backlog", "v6only", "tls"};
constexpr std::string_view kTlsBindKeys[] = {"certificates",
                                             "default_certificate",
                                             "alpn",
                                             "min_version",
                                             "max_version",
                                             "ciphers",
                                             "ciphersuites",
                                             "curves",
                                             "session_tickets",
                                             "session_cache",
                                             "session_timeout",
                                             "verify",
                                             "ca_file",
                                             "crl_file",
                                             "client_cert_headers"};
constexpr std::string_view kTlsServerKeys[] = {
    "enabled", "verify",      "ca_file",     "verify_name", "sni",         "alpn",
    "cert",    "min_version", "max_version", "ciphers",     "ciphersuites"};
constexpr std::pair<std::string_view, int> kTlsVersions[] = {
    {"TLSv1", kTls10}, {"TLSv1.1", kTls11}, {"TLSv1.2", kTls12}, {"TLSv1.3", kTls13}};
constexpr std::string_view kBackendKeys[] = {
    "mode",         "balance",       "retries",     "timeouts",   "servers", "abortonclose",
    "redispatch",   "all_backups",   "fullconn",    "check",      "agent",   "acls",
    "http_request", "http_response", "tcp_request", "errorfiles", "tls"};
constexpr std::string_view kCheckKeys[] = {
    "type",           "method",         "path",         "host",    "expect",  "inter",
    "fastinter",      "downinter",      "timeout",      "rise",    "fall",    "port",
    "on_marked_down", "disable_on_404", "on_marked_up", "headers", "address", "send",
    "sequence",       "observe",        "error_limit",  "on_error"};
constexpr std::string_view kAgentKeys[] = {"port", "address", "inter", "timeout", "send"};
constexpr std::string_view kBalanceKeys[] = {"algorithm", "hash_type", "name",
                                             "depth",     "whole",     "draws"};
constexpr std::string_view kServerKeys[] = {"address", "weight", "maxconn",   "maxqueue",
                                            "minconn", "backup", "slowstart", "check",
                                            "agent",   "tls"};

// The names registered in a table (common/base/registry.h) that `keep`
// accepts, sorted and separated by commas, for messages.
template <typename Entry, typename Keep>
std::string registered_names(Keep keep) {
  std::vector<std::string_view> names;
  for (const Entry* e : Registry<Entry>::instance().entries()) {
    if (keep(*e)) names.push_back(e->name);
  }
  std::sort(names.begin(), names.end());
  std::string out;
  for (std::string_view n : names) {
    if (!out.empty()) out += ", ";
    out += n;
  }
  return out;
}
template <typename Entry>
std::string registered_names() {
  return registered_names<Entry>([](const Entry&) { return true; });
}

// Every timeout weir knows, and where each may be set.
constexpr std::string_view kAllTimeouts[] = {"connect", "client",         "server",
                                             "queue",   "http_request",   "http_keep_alive",
                                             "tunnel",  "hard_stop_after"};
constexpr std::string_view kDefaultsTimeouts[] = {
    "connect", "client", "server", "queue", "http_request", "http_keep_alive", "tunnel"};
constexpr std::string_view kFrontendTimeouts[] = {"client", "http_request", "http_keep_alive"};
constexpr std::string_view kBackendTimeouts[] = {"connect", "server", "queue", "tunnel"};
constexpr std::pair<std::string_view, int64_t Timeouts::*> kTimeoutMembers[] = {
    {"connect", &Timeouts::connect},
    {"client", &Timeouts::client},
    {"server", &Timeouts::server},
    {"queue", &Timeouts::queue},
    {"http_request", &Timeouts::http_request},
    {"http_keep_alive", &Timeouts::http_keep_alive},
    {"tunnel", &Timeouts::tunnel},
};

struct TimeoutSlot {
  std::string_view name;
  int64_t* target;
};

// The entries of a list-valued key; a single entry may be written without the
// list around it, and an empty value has none.
std::vector<const YamlNode*> entries_of(const YamlNode& node) {
  std::vector<const YamlNode*> entries;
  if (node.kind == Kind::kSequence) {
    for (const auto& item : node.items) entries.push_back(item.get());
  } else if (node.kind != Kind::kNull) {
    entries.push_back(&node);
  }
  return entries;
}

// RFC 9110 token character (header names, methods).
bool is_tchar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

bool valid_name(std::string_view name) {
  return !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '.' || c == '-';
  });
}

// getpwnam_r/getgrnam_r with a buffer that grows on ERANGE.
template <typename Entry, typename Lookup>
bool account_exists(const std::string& name, Lookup lookup) {
  std::vector<char> buffer(4096);
  for (;;) {
    Entry entry{};
    Entry* result = nullptr;
    const int rc = lookup(name.c_str(), &entry, buffer.data(), buffer.size(), &result);
    if (rc == ERANGE && buffer.size() < (1U << 20)) {
      buffer.resize(buffer.size() * 2);
      continue;
    }
    return rc == 0 && result != nullptr;
  }
}

// A frontend's default_backend, checked once every backend is known.
struct BackendReference {
  size_t frontend;
  SourceMark mark;
  bool mode_known;
};

class Loader : private config_detail::ValueReader {
 public:
  explicit Loader(const std::string& name) : ValueReader(name) { config_.source_name = name; }

  LoadResult load(std::string_view text);

 private:
  std::optional<Mode> mode_value(const YamlNode& node, const std::string& what);

  void load_timeouts(const YamlNode& node, const std::string& label, const std::string& owner,
                     const std::vector<TimeoutSlot>& slots);
  void load_timeouts(const YamlNode& node, const std::string& label, const std::string& owner,
                     Timeouts& timeouts, Names allowed);

  void load_global(const YamlNode& node);
  void load_logs(const YamlNode& node);
  void load_runtime_api(const YamlNode& node);
  void load_defaults(const YamlNode& node);
  void load_backends(const YamlNode& node);
  void load_backend(const Field& field);
  void load_server(const Field& field, BackendConfig& backend);
  void load_balance(const YamlNode& node, const std::string& label, BalanceConfig& out);
  // `check:` of a backend or server: true/false or a map applied over `out`.
  void load_check(const YamlNode& node, const std::string& label, HealthCheckConfig& out);
  HealthCheckConfig backend_check_;  // the current backend's check: default for its servers
  void load_agent(const YamlNode& node, const std::string& label, AgentConfig& out);
  AgentConfig backend_agent_;  // the current backend's agent: default for its servers
  // A check or agent address: an IP or name without a port ("10.0.0.5", "[::1]").
  std::optional<SockAddr> probe_address(const YamlNode& node, const std::string& label);
  // tcp check expect: {string: ...} or {regex: ...}
  std::optional<HealthCheckConfig::TcpStep> tcp_expect(const YamlNode& node,
                                                       const std::string& label);
  void load_frontends(const YamlNode& node, const SourceMark& missing_mark);
  void load_frontend(const Field& field);
  void load_bind(const YamlNode& node, FrontendConfig& frontend);
  // `tls:` of a bind; of a backend or server (applied over `out`, key by key).
  void load_tls_bind(const YamlNode& node, const std::string& label, TlsBindConfig& out);
  void load_tls_server(const YamlNode& node, const std::string& label, TlsServerConfig& out);
  std::optional<int> tls_version(const YamlNode& node, const std::string& what);
  std::optional<std::vector<std::string>> string_list(const YamlNode& node,
                                                      const std::string& what);
  TlsServerConfig backend_tls_;  // the current backend's tls: default for its servers
  void load_stats(const YamlNode& node, FrontendConfig& frontend, bool mode_known);
  void check_references();
  // acls, http_request, http_response, tcp_request and errorfiles of a frontend
  // (frontend_index >= 0) or a backend.
  void load_rules(const Fields& fields, const std::string& label, Mode mode, bool mode_known,
                  int frontend_index, RuleSet& out);
  std::optional<HttpRule> load_http_rule(const YamlNode& node, const std::string& label,
                                         bool response, bool frontend,
                                         const cond::NamedTests& acls);
  std::optional<cond::ValueTemplate> template_value(const YamlNode& node, const std::string& what);
  std::shared_ptr<const cond::Condition> condition_value(const YamlNode& node,
                                                         const std::string& what,
                                                         const cond::NamedTests& acls,
                                                         bool response);
  cond::FileCache files_;  // value lists and maps named in conditions, read once
  struct RuleBackendRef {
    size_t frontend;
    std::string name;
    SourceMark mark;
  };
  std::vector<RuleBackendRef> rule_backends_;
  bool dynamic_backends_ = false;  // some use_backend is computed per request

  // Where a character of a scalar value is in the file (for errors inside a
  // string, such as a log format); skips the opening quote of a quoted scalar.
  SourceMark mark_inside(const YamlNode& node, size_t offset) const;

  std::string_view text_;
  Config config_;
  // defaults: section, applied to frontends and backends
  Mode default_mode_ = Mode::kHttp;
  Timeouts default_timeouts_;
  int default_retries_ = 3;
  bool default_forwardfor_ = false;
  bool default_abortonclose_ = true;
  std::vector<bool> backend_mode_known_;  // parallel to config_.backends
  std::vector<BackendReference> references_;
  std::map<std::string, std::pair<std::string, SourceMark>> binds_;  // key -> frontend, mark
};

std::optional<Mode> Loader::mode_value(const YamlNode& node, const std::string& what) {
  const auto text = text_value(node, what, "http or tcp");
  if (!text) return std::nullopt;
  if (*text == "http") return Mode::kHttp;
  if (*text == "tcp") return Mode::kTcp;
  error(node.mark, what + ": unknown mode " + quoted(*text) + " (expected http or tcp)");
  return std::nullopt;
}

void Loader::load_timeouts(const YamlNode& node, const std::string& label, const std::string& owner,
                           const std::vector<TimeoutSlot>& slots) {
  std::vector<std::string_view> allowed;
  for (const TimeoutSlot& slot : slots) allowed.push_back(slot.name);
  for (const Field& field : map_fields(node, label).list) {
    const auto slot = std::find_if(slots.begin(), slots.end(),
                                   [&](const TimeoutSlot& s) { return s.name == field.key; });
    if (slot != slots.end()) {
      const auto ms = duration_value(*field.value, label + ": " + field.key);
      if (ms) *slot->target = *ms;
    } else if (contains(kAllTimeouts, field.key)) {
      error(field.key_node->mark, "timeout " + quoted(field.key) + " cannot be set in " + owner +
                                      " (allowed here: " + join(allowed) + ")");
    } else {
      error(field.key_node->mark, "unknown timeout " + quoted(field.key) + " in " + owner +
                                      suggestion(field.key, allowed));
    }
  }
}

void Loader::load_timeouts(const YamlNode& node, const std::string& label, const std::string& owner,
                           Timeouts& timeouts, Names allowed) {
  std::vector<TimeoutSlot> slots;
  for (const auto& [name, member] : kTimeoutMembers) {
    if (contains(allowed, name)) slots.push_back({name, &(timeouts.*member)});
  }
  load_timeouts(node, label, owner, slots);
}

void Loader::load_global(const YamlNode& node) {
  GlobalConfig& global = config_.global;
  const Fields fields = map_fields(node, "global");
  reject_unknown(fields, kGlobalKeys, "in global");
  if (const YamlNode* v = fields.get("threads")) {
    if (const auto n = int_value(*v, "global: threads", 1, 64)) {
      global.threads = static_cast<int>(*n);
    }
  }
  if (const YamlNode* v = fields.get("maxconn")) {
    if (const auto n = int_value(*v, "global: maxconn", 1, kMaxConn)) {
      global.maxconn = static_cast<uint32_t>(*n);
    }
  }
  // An empty user, group or pidfile means "not set", so that ${WEIR_USER:-} works.
  if (const YamlNode* v = fields.get("user")) {
    if (auto user_name = string_value(*v, "global: user")) {
      if (!user_name->empty() && !account_exists<struct passwd>(*user_name, getpwnam_r)) {
        error(v->mark, "global: user: no such user " + quoted(*user_name));
      }
      global.user = std::move(*user_name);
    }
  }
  if (const YamlNode* v = fields.get("group")) {
    if (auto group_name = string_value(*v, "global: group")) {
      if (!group_name->empty() && !account_exists<struct group>(*group_name, getgrnam_r)) {
        error(v->mark, "global: group: no such group " + quoted(*group_name));
      }
      global.group = std::move(*group_name);
    }
  }
  // Paths the master itself uses; their marks let the start-up checks point at them.
  const auto absolute_path = [&](std::string_view key, std::string* out, SourceMark* mark) {
    const YamlNode* v = fields.get(key);
    if (!v) return;
    const std::string label = "global: " + std::string(key);
    if (auto path = string_value(*v, label)) {
      if (!path->empty() && path->front() != '/') {
        error(v->mark, label + ": must be an absolute path (got " + quoted(*path) + ")");
      }
      *out = std::move(*path);
      *mark = v->mark;
    }
  };
  absolute_path("pidfile", &global.pidfile, &global.pidfile_mark);
  absolute_path("master_socket", &global.master_socket, &global.master_socket_mark);
  absolute_path("state_file", &global.state_file, &global.state_file_mark);
  if (const YamlNode* v = fields.get("tls_ticket_secret_file")) {
    if (auto path = string_value(*v, "global: tls_ticket_secret_file")) {
      global.tls_ticket_secret_file = std::move(*path);
      global.tls_ticket_secret_mark = v->mark;
    }
  }
  if (const YamlNode* v = fields.get("max_old_generations")) {
    if (const auto n = int_value(*v, "global: max_old_generations", 1, 1000)) {
      global.max_old_generations = static_cast<int>(*n);
    }
  }
  if (const YamlNode* v = fields.get("log")) load_logs(*v);
  if (const YamlNode* v = fields.get("runtime_api")) load_runtime_api(*v);
  if (const YamlNode* v = fields.get("tune")) {
    const Fields tune = map_fields(*v, "global.tune");
    reject_unknown(tune, kTuneKeys, "in global.tune");
    if (const YamlNode* b = tune.get("bufsize")) {
      if (const auto n = size_value(*b, "global.tune: bufsize", 1024, 1024ULL * 1024)) {
        global.bufsize = *n;
      }
    }
    if (const YamlNode* s = tune.get("splice_threshold")) {
      if (const auto n = size_value(*s, "global.tune: splice_threshold", 0, SIZE_MAX)) {
        global.splice_threshold = *n;
      }
    }
    if (const YamlNode* m = tune.get("max_headers")) {
      if (const auto n = int_value(*m, "global.tune: max_headers", 1, kMaxHeadersLimit)) {
        global.max_headers = static_cast<size_t>(*n);
      }
    }
  }
  if (const YamlNode* v = fields.get("timeouts")) {
    load_timeouts(*v, "global.timeouts", "global", {{"hard_stop_after", &global.hard_stop_after}});
  }
}

void Loader::load_runtime_api(const YamlNode& node) {
  static constexpr std::string_view kApiKeys[] = {"address", "level", "mode", "owner", "group"};
  for (const YamlNode* entry : entries_of(node)) {
    RuntimeApiEndpoint ep;
    ep.mark = entry->mark;
    const YamlNode* address = entry;
    const YamlNode* level = nullptr;
    const YamlNode* mode = nullptr;
    Fields fields;
    if (entry->kind == Kind::kMap) {
      fields = map_fields(*entry, "global.runtime_api entry");
      reject_unknown(fields, kApiKeys, "in global.runtime_api entry");
      address = fields.get("address");
      level = fields.get("level");
      mode = fields.get("mode");
      if (!address) {
        error(entry->mark, "global: runtime_api: entry has no address");
        continue;
      }
    }
    ep.mark = address->mark;  // where a socket that cannot be made is reported
    const auto text = text_value(*address, "global: runtime_api: address",
                                 "an absolute socket path or host:port");
    if (!text) continue;
    if (!text->empty() && text->front() == '/') {
      ep.path = *text;
    } else {
      // A bare port means loopback: the runtime API is not for the network.
      std::string with_host = *text;
      if (!with_host.empty() && with_host.find_first_not_of("0123456789") == std::string::npos) {
        with_host = "127.0.0.1:" + with_host;
      }
      std::string why;
      auto addr = parse_address(with_host, false, &why);
      if (!addr) {
        error(address->mark, "global: runtime_api: address " + quoted(*text) + ": " + why);
        continue;
      }
      ep.addr = *addr;
      if (!addr->is_loopback()) {
        warn(address->mark, "global: runtime_api: " + addr->to_string() +
                                " is not a loopback address: anyone who can reach it gets " +
                                "this endpoint's level");
      }
    }
    bool ok = true;
    for (std::string_view key : {"owner", "group"}) {
      const YamlNode* v = fields.get(key);
      if (!v) continue;
      const std::string label = "global: runtime_api: " + std::string(key);
      auto name = text_value(*v, label, key == "owner" ? "a user name" : "a group name");
      if (!name) {
        ok = false;
        continue;
      }
      if (ep.path.empty()) {
        error(v->mark, label + " only applies to a Unix socket");
        ok = false;
        continue;
      }
      bool exists = key == "owner" ? account_exists<struct passwd>(*name, getpwnam_r)
                                   : account_exists<struct group>(*name, getgrnam_r);
      if (!exists) {
        error(v->mark, label + ": no " + (key == "owner" ? "user" : "group") + " named " +
                           quoted(*name) + " on this system");
        ok = false;
        continue;
      }
      (key == "owner" ? ep.owner : ep.group) = *name;
    }
    if (!ok) continue;
    if (level) {
      const auto lv = text_value(*level, "global: runtime_api: level", "user, operator or admin");
      if (!lv) continue;
      if (*lv == "user") {
        ep.level = ApiLevel::kUser;
      } else if (*lv == "operator") {
        ep.level = ApiLevel::kOperator;
      } else if (*lv == "admin") {
        ep.level = ApiLevel::kAdmin;
      } else {
        error(level->mark, "global: runtime_api: unknown level " + quoted(*lv) +
                               " (expected user, operator or admin)");
        continue;
      }
    }
    if (mode) {
      const auto m = text_value(*mode, "global: runtime_api: mode", "an octal mode like 0660");
      if (!m) continue;
      char* end = nullptr;
      unsigned long v = std::strtoul(m->c_str(), &end, 8);
      if (m->empty() || *end != '\0' || v > 0777) {
        error(mode->mark, "global: runtime_api: mode " + quoted(*m) +
                              " is not an octal permission (0000..0777)");
        continue;
      }
      ep.mode = static_cast<uint32_t>(v);
    }
    bool duplicate = false;
    for (const RuntimeApiEndpoint& other : config_.global.runtime_api) {
      if (other.key() == ep.key()) duplicate = true;
    }
    if (duplicate) {
      error(address->mark, "global: runtime_api: " + ep.key() + " is listed twice");
      continue;
    }
    config_.global.runtime_api.push_back(std::move(ep));
  }
}

namespace {

constexpr std::pair<std::string_view, int> kFacilities[] = {
    {"kern", 0},      {"user", 1},    {"mail", 2},    {"daemon", 3},  {"auth", 4},
    {"syslog", 5},    {"lpr", 6},     {"news", 7},    {"uucp", 8},    {"cron", 9},
    {"authpriv", 10}, {"ftp", 11},    {"local0", 16}, {"local1", 17}, {"local2", 18},
    {"local3", 19},   {"local4", 20}, {"local5", 21}, {"local6", 22}, {"local7", 23}};

}  // namespace

void Loader::load_logs(const YamlNode& node) {
  for (const YamlNode* entry : entries_of(node)) {
    LogSink sink;
    sink.mark = entry->mark;
    const YamlNode* target = entry;
    Fields fields;
    if (entry->kind == Kind::kMap) {
      fields = map_fields(*entry, "global.log entry");
      reject_unknown(fields, kLogKeys, "in global.log entry");
      target = fields.get("target");
      if (!target) {
        error(entry->mark, "global: log: entry has no target");
        continue;
      }
    }
    sink.mark = target->mark;  // where a file that cannot be opened is reported
    const auto target_text =
        text_value(*target, "global: log", "stdout, stderr, syslog or a file path");
    if (!target_text) continue;
    if (*target_text == "stdout") {
      sink.target = LogTarget::kStdout;
    } else if (*target_text == "stderr") {
      sink.target = LogTarget::kStderr;
    } else if (*target_text == "syslog") {
      sink.target = LogTarget::kSyslog;
    } else if (!target_text->empty() && target_text->front() == '/') {
      sink.target = LogTarget::kFile;
      sink.path = *target_text;
    } else {
      error(target->mark, "global: log: invalid target " + quoted(*target_text) +
                              " (expected stdout, stderr, syslog or an absolute file path)");
      continue;
    }
    bool ok = true;
    const bool syslog = sink.target == LogTarget::kSyslog;
    for (std::string_view key : {"address", "framing", "facility", "tag"}) {
      if (const YamlNode* v = fields.get(key); v && !syslog) {
        error(v->mark, "global: log: " + std::string(key) + " only applies to target: syslog");
        ok = false;
      }
    }
    if (syslog) {
      // Where: a Unix datagram socket (default /dev/log) or host:port over UDP.
      std::string address = "/dev/log";
      const YamlNode* address_node = fields.get("address");
      if (address_node) {
        if (auto a = text_value(*address_node, "global: log: address",
                                "/dev/log or host:port for UDP")) {
          address = *a;
        } else {
          ok = false;
        }
      }
      if (!address.empty() && address.front() == '/') {
        sink.path = address;
        sink.framing = SyslogFraming::kRfc3164;
      } else {
        std::string problem;
        std::string with_port = address;
        // "host" or "[v6]" without a port: the syslog port.
        if (address.find(':') == std::string::npos ||
            (address.front() == '[' && address.back() == ']')) {
          with_port += ":514";
        }
        if (auto a = parse_address(with_port, /*allow_wildcard=*/false, &problem)) {
          sink.syslog_addr = *a;
          sink.framing = SyslogFraming::kRfc5424;
        } else {
          error(address_node ? address_node->mark : entry->mark,
                "global: log: syslog address " + quoted(address) + ": " + problem);
          ok = false;
        }
      }
      if (const YamlNode* v = fields.get("framing")) {
        if (auto f = text_value(*v, "global: log: framing", "rfc3164 or rfc5424")) {
          if (*f == "rfc3164") {
            sink.framing = SyslogFraming::kRfc3164;
          } else if (*f == "rfc5424") {
            sink.framing = SyslogFraming::kRfc5424;
          } else {
            error(v->mark,
                  "global: log: unknown framing " + quoted(*f) + " (expected rfc3164 or rfc5424)");
            ok = false;
          }
        } else {
          ok = false;
        }
      }
      if (const YamlNode* v = fields.get("facility")) {
        if (auto f = text_value(*v, "global: log: facility", "local0..local7, daemon, ...")) {
          bool known = false;
          for (auto& [name, code] : kFacilities) {
            if (*f == name) {
              sink.facility = code;
              known = true;
            }
          }
          if (!known) {
            error(v->mark, "global: log: unknown syslog facility " + quoted(*f) +
                               " (expected local0..local7, daemon, user, auth, authpriv, ...)");
            ok = false;
          }
        } else {
          ok = false;
        }
      }
      if (const YamlNode* v = fields.get("tag")) {
        if (auto t = text_value(*v, "global: log: tag", "a program name such as weir")) {
          bool valid =
              !t->empty() && t->size() <= 32 && t->find_first_of(" :[]\t\r\n") == std::string::npos;
          if (valid) {
            sink.tag = *t;
          } else {
            error(v->mark, "global: log: tag " + quoted(*t) +
                               " must be 1 to 32 characters without spaces, ':' or brackets");
            ok = false;
          }
        } else {
          ok = false;
        }
      }
    }
    if (const YamlNode* format = fields.get("format")) {
      const auto format_text =
          text_value(*format, "global: log: format", "text, http, tcp, json or a format string");
      if (!format_text) continue;
      if (*format_text == "text") {
        sink.format = LogFormat::kText;
      } else if (*format_text == "http") {
        sink.format = LogFormat::kHttp;
      } else if (*format_text == "tcp") {
        sink.format = LogFormat::kTcp;
      } else if (*format_text == "json") {
        sink.format = LogFormat::kJson;
      } else if (format_text->find('%') != std::string::npos) {
        std::string problem;
        size_t offset = 0;
        if (logfmt::parse(*format_text, &problem, &offset)) {
          sink.format = LogFormat::kCustom;
          sink.custom = *format_text;
        } else {
          error(mark_inside(*format, offset), "global: log: format: " + problem);
          ok = false;
        }
      } else {
        error(format->mark, "global: log: unknown format " + quoted(*format_text) +
                                " (expected text, http, tcp, json or a format string with "
                                "%-variables such as \"%ci %ST %r\")");
        ok = false;
      }
    }
    if (ok) config_.global.logs.push_back(std::move(sink));
  }
}

void Loader::load_defaults(const YamlNode& node) {
  const Fields fields = map_fields(node, "defaults");
  reject_unknown(fields, kDefaultsKeys, "in defaults");
  if (const YamlNode* v = fields.get("mode")) {
    if (const auto mode = mode_value(*v, "defaults: mode")) default_mode_ = *mode;
  }
  if (const YamlNode* v = fields.get("retries")) {
    if (const auto n = int_value(*v, "defaults: retries", 0, 100)) {
      default_retries_ = static_cast<int>(*n);
    }
  }
  if (const YamlNode* v = fields.get("abortonclose")) {
    if (const auto b = bool_value(*v, "defaults: abortonclose")) default_abortonclose_ = *b;
  }
  if (const YamlNode* v = fields.get("forwardfor")) {
    if (const auto b = bool_value(*v, "defaults: forwardfor")) default_forwardfor_ = *b;
  }
  if (const YamlNode* v = fields.get("timeouts")) {
    load_timeouts(*v, "defaults.timeouts", "defaults", default_timeouts_, kDefaultsTimeouts);
  }
}

void Loader::load_backends(const YamlNode& node) {
  for (const Field& field : map_fields(node, "backends", "backend", "").list) load_backend(field);
}

void Loader::load_backend(const Field& field) {
  BackendConfig backend;
  backend.name = field.key;
  backend.mark = field.key_node->mark;
  backend.mode = default_mode_;
  backend.retries = default_retries_;
  backend.abortonclose = default_abortonclose_;
  backend.timeouts = default_timeouts_;
  const std::string label = "backend " + quoted(backend.name);
  if (!valid_name(backend.name)) {
    error(backend.mark, "invalid backend name " + quoted(backend.name) +
                            " (use letters, digits, '_', '.' and '-')");
  }
  const Fields fields = map_fields(*field.value, label);
  reject_unknown(fields, kBackendKeys, "in " + label);
  bool mode_known = true;
  if (const YamlNode* v = fields.get("mode")) {
    const auto mode = mode_value(*v, label + ": mode");
    if (mode) backend.mode = *mode;
    mode_known = mode.has_value();
  }
  if (const YamlNode* v = fields.get("balance")) {
    load_balance(*v, label, backend.balance);
    const LbAlgorithmDef* def =
        Registry<LbAlgorithmDef>::instance().find(backend.balance.algorithm);
    if (mode_known && backend.mode == Mode::kTcp && def && def->http_only()) {
      error(v->mark, label + ": balance " + backend.balance.algorithm +
                         " needs http mode (this backend is tcp)");
    }
  }
  if (const YamlNode* v = fields.get("redispatch")) {
    if (const auto b = bool_value(*v, label + ": redispatch")) backend.redispatch = *b;
  }
  if (const YamlNode* v = fields.get("all_backups")) {
    if (const auto b = bool_value(*v, label + ": all_backups")) backend.all_backups = *b;
  }
  if (const YamlNode* v = fields.get("fullconn")) {
    if (const auto n = int_value(*v, label + ": fullconn", 1, 10000000)) {
      backend.fullconn = static_cast<uint32_t>(*n);
    }
  }
  if (const YamlNode* v = fields.get("abortonclose")) {
    if (const auto b = bool_value(*v, label + ": abortonclose")) backend.abortonclose = *b;
  }
  if (const YamlNode* v = fields.get("retries")) {
    if (const auto n = int_value(*v, label + ": retries", 0, 100)) {
      backend.retries = static_cast<int>(*n);
    }
  }
  if (const YamlNode* v = fields.get("timeouts")) {
    load_timeouts(*v, "timeouts of " + label, label, backend.timeouts, kBackendTimeouts);
  }
  backend_check_ = HealthCheckConfig{};
  if (const YamlNode* v = fields.get("check")) load_check(*v, label + ": check", backend_check_);
  backend_agent_ = AgentConfig{};
  if (const YamlNode* v = fields.get("agent")) load_agent(*v, label + ": agent", backend_agent_);
  backend_tls_ = TlsServerConfig{};
  if (const YamlNode* v = fields.get("tls")) load_tls_server(*v, label + ": tls", backend_tls_);
  backend.default_check = backend_check_;
  backend.default_agent = backend_agent_;
  backend.default_tls = backend_tls_;
  load_rules(fields, label, backend.mode, true, -1, backend.rules);
  const YamlNode* servers = fields.get("servers");
  if (servers) {
    for (const Field& server :
         map_fields(*servers, "servers of " + label, "server", " in " + label).list) {
      load_server(server, backend);
    }
  }
  if (!servers || servers->kind == Kind::kNull ||
      (servers->kind == Kind::kMap && servers->entries.empty())) {
    warn(backend.mark, label + " has no servers; requests will get 503");
  } else if (!backend.servers.empty() &&
             std::all_of(backend.servers.begin(), backend.servers.end(),
                         [](const ServerConfig& s) { return s.weight == 0; })) {
    warn(backend.mark, label + ": every server has weight 0; requests will get 503");
  }
  config_.backends.push_back(std::move(backend));
  backend_mode_known_.push_back(mode_known);
}

void Loader::load_balance(const YamlNode& v, const std::string& label, BalanceConfig& out) {
  // "roundrobin", "url_param(userid)", "hdr(X-Tenant)", or a map with options.
  const YamlNode* algorithm = &v;
  Fields options;
  if (v.kind == Kind::kMap) {
    options = map_fields(v, "balance of " + label);
    reject_unknown(options, kBalanceKeys, "in balance of " + label);
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
  const LbAlgorithmDef* def = Registry<LbAlgorithmDef>::instance().find(name);
  if (!def) {
    error(algorithm->mark, label + ": unknown balance algorithm " + quoted(name) +
                               " (known: " + registered_names<LbAlgorithmDef>() + ")");
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
  // An option the algorithm does not take names the algorithms that do.
  auto only_for = [&](const char* key, LbOption option) {
    const YamlNode* n = options.get(key);
    if (n && !(def->options & option)) {
      error(n->mark, label + ": balance: " + key + " only applies to " +
                         registered_names<LbAlgorithmDef>([option](const LbAlgorithmDef& d) {
                           return (d.options & option) != 0;
                         }));
      return static_cast<const YamlNode*>(nullptr);
    }
    return n;
  };
  if (const YamlNode* n = only_for("hash_type", kLbOptHashType)) {
    const std::string known = registered_names<HashTypeDef>();
    if (auto t = text_value(*n, label + ": balance: hash_type", known.c_str())) {
      if (Registry<HashTypeDef>::instance().find(*t)) {
        out.hash_type = *t;
      } else {
        error(n->mark,
              label + ": balance: unknown hash_type " + quoted(*t) + " (expected " + known + ")");
      }
    }
  }
  if (const YamlNode* n = only_for("depth", kLbOptDepth)) {
    if (auto d = int_value(*n, label + ": balance: depth", 0, 64))
      out.uri_depth = static_cast<int>(*d);
  }
  if (const YamlNode* n = only_for("whole", kLbOptWhole)) {
    if (auto b = bool_value(*n, label + ": balance: whole")) out.uri_whole = *b;
  }
  if (const YamlNode* n = only_for("draws", kLbOptDraws)) {
    if (auto d = int_value(*n, label + ": balance: draws", 1, 100))
      out.draws = static_cast<int>(*d);
  }
}

void Loader::load_check(const YamlNode& node, const std::string& label, HealthCheckConfig& out) {
  if (node.kind != Kind::kMap) {
    if (auto b = bool_value(node, label)) out.enabled = *b;
    return;
  }
  out.enabled = true;
  const Fields f = map_fields(node, label);
  reject_unknown(f, kCheckKeys, "in " + label);
  if (const YamlNode* v = f.get("type")) {
    if (auto t = text_value(*v, label + ": type", "tcp or http")) {
      if (*t == "tcp") {
        out.type = HealthCheckConfig::Type::kTcp;
      } else if (*t == "http") {
        out.type = HealthCheckConfig::Type::kHttp;
        out.tcp_steps.clear();  // a backend's tcp sequence does not carry into an http check
      } else {
        error(v->mark, label + ": unknown type " + quoted(*t) + " (expected tcp or http)");
      }
    }
  }
  for (auto [key, target] : {std::pair<std::string_view, std::string*>{"method", &out.method},
                             {"path", &out.path},
                             {"host", &out.host}}) {
    if (const YamlNode* v = f.get(key)) {
      if (auto t = text_value(*v, label + ": " + std::string(key), "a string")) {
        bool bad = t->empty() || t->find_first_of(" \r\n\t") != std::string::npos ||
                   (key == "path" && t->front() != '/');
        if (bad) {
          error(v->mark, label + ": " + std::string(key) + " " + quoted(*t) +
                             (key == "path" ? " must start with '/' and have no spaces"
                                            : " must be one word without spaces"));
        } else {
          *target = *t;
        }
      }
    }
  }
  const bool tcp = out.type == HealthCheckConfig::Type::kTcp;
  const YamlNode* expect_node = f.get("expect");
  // expect: {string|regex: ...} is a tcp check's; {status|body: ...} an http one's.
  bool tcp_expect_form = false;
  if (expect_node && expect_node->kind == Kind::kMap) {
    for (const auto& [k, v] : expect_node->entries) {
      if (k->kind == Kind::kScalar && (k->scalar == "string" || k->scalar == "regex")) {
        tcp_expect_form = true;
      }
    }
  }
  if (tcp_expect_form && !tcp) {
    error(expect_node->mark,
          label +
              ": expect: string and regex belong to tcp checks (an http check expects a "
              "status or a body)");
    expect_node = nullptr;
  }
  if (tcp && (f.get("send") || f.get("sequence") || tcp_expect_form)) {
    // A tcp check is a sequence of send/expect steps after connecting; send and
    // expect are the short form of a two-step sequence.
    const YamlNode* seq = f.get("sequence");
    if (seq && (f.get("send") || expect_node)) {
      error(seq->mark, label + ": give either sequence or send/expect, not both");
    }
    std::vector<HealthCheckConfig::TcpStep> steps;
    if (seq) {
      if (seq->kind != Kind::kSequence || seq->items.empty()) {
        error(seq->mark, label +
                             ": sequence must be a list of steps like {send: ...} or "
                             "{expect: {string: ...}}");
      } else {
        for (const auto& item : seq->items) {
          const std::string what = label + ": sequence step";
          if (item->kind != Kind::kMap) {
            error(item->mark, what + " must be {send: ...} or {expect: {string|regex: ...}}");
            continue;
          }
          const Fields st = map_fields(*item, what);
          static constexpr std::string_view kStepKeys[] = {"send", "expect"};
          reject_unknown(st, kStepKeys, "in " + what);
          if (st.list.size() != 1) {
            error(item->mark, what + " must hold exactly one of send or expect");
            continue;
          }
          if (const YamlNode* sv = st.get("send")) {
            if (auto t = text_value(*sv, what + ": send", "the bytes to send")) {
              if (t->empty()) error(sv->mark, what + ": send: nothing to send");
              steps.push_back({HealthCheckConfig::TcpStep::Kind::kSend, *t});
            }
          } else if (const YamlNode* ev = st.get("expect")) {
            if (auto step = tcp_expect(*ev, what + ": expect")) steps.push_back(*step);
          }
        }
      }
    } else {
      if (const YamlNode* sv = f.get("send")) {
        if (auto t = text_value(*sv, label + ": send", "the bytes to send")) {
          if (t->empty()) error(sv->mark, label + ": send: nothing to send");
          steps.push_back({HealthCheckConfig::TcpStep::Kind::kSend, *t});
        }
      }
      if (expect_node) {
        if (auto step = tcp_expect(*expect_node, label + ": expect")) steps.push_back(*step);
      }
    }
    out.tcp_steps = std::move(steps);
    expect_node = nullptr;  // handled
  } else if (!tcp) {
    for (std::string_view key : {"send", "sequence"}) {
      if (const YamlNode* v = f.get(key)) {
        error(v->mark, label + ": " + std::string(key) +
                           " belongs to tcp checks (an http check sends its request)");
      }
    }
  }
  if (tcp && expect_node && f.get("type") && f.get("type")->scalar == "tcp") {
    error(expect_node->mark, label + ": expect: status and body need type: http");
    expect_node = nullptr;
  }
  if (const YamlNode* v = expect_node) {
    const Fields e = map_fields(*v, label + ": expect");
    static constexpr std::string_view kExpectKeys[] = {"status", "body"};
    reject_unknown(e, kExpectKeys, "in " + label + ": expect");
    if (const YamlNode* st = e.get("status")) {
      if (auto t = text_value(*st, label + ": expect: status", "200 or a range like 200-399")) {
        int lo = 0, hi = 0;
        char extra = 0;
        int n = std::sscanf(t->c_str(), "%d-%d%c", &lo, &hi, &extra);
        if (n == 1) hi = lo;
        if ((n != 1 && n != 2) || lo < 100 || hi > 599 || lo > hi) {
          error(st->mark, label + ": expect: status " + quoted(*t) +
                              " is not a status or a range like 200-399");
        } else {
          out.status_min = lo;
          out.status_max = hi;
        }
      }
    }
    if (const YamlNode* b = e.get("body")) {
      if (auto t = text_value(*b, label + ": expect: body", "a regular expression")) {
        try {
          std::regex probe(*t);
          out.body = *t;
        } catch (const std::regex_error& ex) {
          error(b->mark, label + ": expect: body: invalid regular expression " + quoted(*t) + ": " +
                             ex.what());
        }
      }
    }
  }
  if (const YamlNode* v = f.get("on_marked_up")) {
    if (auto t = text_value(*v, label + ": on_marked_up", "shutdown_backup_sessions or none")) {
      if (*t == "shutdown_backup_sessions") {
        out.shutdown_backup_sessions_on_up = true;
      } else if (*t == "none") {
        out.shutdown_backup_sessions_on_up = false;
      } else {
        error(v->mark, label + ": on_marked_up: unknown action " + quoted(*t) +
                           " (expected shutdown_backup_sessions or none)");
      }
    }
  }
  if (const YamlNode* v = f.get("headers")) {
    out.headers.clear();
    for (const Field& h : map_fields(*v, label + ": headers", "header", "").list) {
      auto value = text_value(*h.value, label + ": headers: " + h.key, "a header value");
      bool name_ok = !h.key.empty() && h.key.find_first_of(" :\r\n\t") == std::string::npos;
      if (!name_ok) {
        error(h.key_node->mark, label + ": headers: invalid header name " + quoted(h.key));
      } else if (value && value->find_first_of("\r\n") != std::string::npos) {
        error(h.value->mark, label + ": headers: " + h.key + ": a value cannot span lines");
      } else if (value) {
        out.headers.emplace_back(h.key, *value);
      }
    }
  }
  if (const YamlNode* v = f.get("disable_on_404")) {
    if (auto b = bool_value(*v, label + ": disable_on_404")) out.disable_on_404 = *b;
  }
  for (auto [key, target] : {std::pair<std::string_view, int64_t*>{"inter", &out.inter},
                             {"fastinter", &out.fastinter},
                             {"downinter", &out.downinter},
                             {"timeout", &out.timeout}}) {
    if (const YamlNode* v = f.get(key)) {
      if (auto d = duration_value(*v, label + ": " + std::string(key))) {
        if (*d < 10 || *d > 3600000) {
          error(v->mark, label + ": " + std::string(key) + " must be between 10ms and 1h");
        } else {
          *target = *d;
        }
      }
    }
  }
  for (auto [key, target] :
       {std::pair<std::string_view, int*>{"rise", &out.rise}, {"fall", &out.fall}}) {
    if (const YamlNode* v = f.get(key)) {
      if (auto n = int_value(*v, label + ": " + std::string(key), 1, 100)) {
        *target = static_cast<int>(*n);
      }
    }
  }
  if (const YamlNode* v = f.get("port")) {
    if (auto n = int_value(*v, label + ": port", 1, 65535)) out.port = static_cast<uint16_t>(*n);
  }
  if (const YamlNode* v = f.get("on_marked_down")) {
    if (auto t = text_value(*v, label + ": on_marked_down", "shutdown_sessions or none")) {
      if (*t == "shutdown_sessions") {
        out.shutdown_sessions_on_down = true;
      } else if (*t == "none") {
        out.shutdown_sessions_on_down = false;
      } else {
        error(v->mark, label + ": on_marked_down: unknown action " + quoted(*t) +
                           " (expected shutdown_sessions or none)");
      }
    }
  }
  if (const YamlNode* v = f.get("address")) out.addr = probe_address(*v, label + ": address");
  if (const YamlNode* v = f.get("observe")) {
    if (auto t = text_value(*v, label + ": observe", "layer4, layer7 or none")) {
      if (*t == "layer4") {
        out.observe = HealthCheckConfig::Observe::kLayer4;
      } else if (*t == "layer7") {
        out.observe = HealthCheckConfig::Observe::kLayer7;
      } else if (*t == "none") {
        out.observe = HealthCheckConfig::Observe::kNone;
      } else {
        error(v->mark, label + ": observe: unknown layer " + quoted(*t) +
                           " (expected layer4, layer7 or none)");
      }
    }
  }
  if (const YamlNode* v = f.get("error_limit")) {
    if (auto n = int_value(*v, label + ": error_limit", 1, 1000000)) {
      out.error_limit = static_cast<int>(*n);
    }
  }
  if (const YamlNode* v = f.get("on_error")) {
    static constexpr std::pair<std::string_view, HealthCheckConfig::OnError> kActions[] = {
        {"fastinter", HealthCheckConfig::OnError::kFastinter},
        {"fail_check", HealthCheckConfig::OnError::kFailCheck},
        {"sudden_death", HealthCheckConfig::OnError::kSuddenDeath},
        {"mark_down", HealthCheckConfig::OnError::kMarkDown}};
    if (auto t = text_value(*v, label + ": on_error",
                            "fastinter, fail_check, sudden_death or mark_down")) {
      bool known = false;
      for (auto [name, action] : kActions) {
        if (*t == name) {
          out.on_error = action;
          known = true;
        }
      }
      if (!known) {
        error(v->mark, label + ": on_error: unknown action " + quoted(*t) +
                           " (expected fastinter, fail_check, sudden_death or mark_down)");
      }
    }
  }
  if (out.observe == HealthCheckConfig::Observe::kNone) {
    for (std::string_view key : {"error_limit", "on_error"}) {
      if (const YamlNode* v = f.get(key)) {
        error(v->mark, label + ": " + std::string(key) + " needs observe: layer4 or layer7");
      }
    }
  }
}

std::optional<HealthCheckConfig::TcpStep> Loader::tcp_expect(const YamlNode& node,
                                                             const std::string& label) {
  const Fields e = map_fields(node, label);
  static constexpr std::string_view kKeys[] = {"string", "regex"};
  reject_unknown(e, kKeys, "in " + label);
  if (e.list.size() != 1) {
    error(node.mark, label + " needs exactly one of string or regex");
    return std::nullopt;
  }
  if (const YamlNode* v = e.get("string")) {
    auto t = text_value(*v, label + ": string", "the text to wait for");
    if (!t) return std::nullopt;
    if (t->empty()) {
      error(v->mark, label + ": string: empty (it would match anything)");
      return std::nullopt;
    }
    return HealthCheckConfig::TcpStep{HealthCheckConfig::TcpStep::Kind::kExpectString, *t};
  }
  const YamlNode* v = e.get("regex");
  if (!v) {
    error(node.mark, label + " needs string or regex");
    return std::nullopt;
  }
  auto t = text_value(*v, label + ": regex", "a regular expression");
  if (!t) return std::nullopt;
  try {
    std::regex probe(*t);
  } catch (const std::regex_error& ex) {
    error(v->mark, label + ": regex: invalid regular expression " + quoted(*t) + ": " + ex.what());
    return std::nullopt;
  }
  return HealthCheckConfig::TcpStep{HealthCheckConfig::TcpStep::Kind::kExpectRegex, *t};
}

std::optional<SockAddr> Loader::probe_address(const YamlNode& node, const std::string& label) {
  auto t = text_value(node, label, "an IP address or host name without a port");
  if (!t) return std::nullopt;
  const bool bracketed = !t->empty() && t->front() == '[';
  const size_t colons = static_cast<size_t>(std::count(t->begin(), t->end(), ':'));
  if ((bracketed && t->back() != ']') || (!bracketed && colons == 1)) {
    error(node.mark, label + " " + quoted(*t) +
                         " must not carry a port (set the check's or agent's port: key)");
    return std::nullopt;
  }
  // A bare IPv6 literal gets its brackets; port 1 is a placeholder replaced by
  // the probe's port.
  std::string host = (!bracketed && colons > 1) ? "[" + *t + "]" : *t;
  std::string problem;
  auto addr = parse_address(host + ":1", /*allow_wildcard=*/false, &problem);
  if (!addr) {
    error(node.mark, label + " " + quoted(*t) + ": " + problem);
    return std::nullopt;
  }
  return addr;
}

void Loader::load_agent(const YamlNode& node, const std::string& label, AgentConfig& out) {
  if (node.kind != Kind::kMap) {
    if (auto b = bool_value(node, label)) {
      out.enabled = *b;
      if (*b && out.port == 0) error(node.mark, label + ": an agent needs a port: {port: N}");
    }
    return;
  }
  out.enabled = true;
  const Fields f = map_fields(node, label);
  reject_unknown(f, kAgentKeys, "in " + label);
  if (const YamlNode* v = f.get("port")) {
    if (auto n = int_value(*v, label + ": port", 1, 65535)) out.port = static_cast<uint16_t>(*n);
  } else if (out.port == 0) {
    error(node.mark, label + " needs a port (where the agent listens)");
  }
  if (const YamlNode* v = f.get("address")) out.addr = probe_address(*v, label + ": address");
  for (auto [key, target] :
       {std::pair<std::string_view, int64_t*>{"inter", &out.inter}, {"timeout", &out.timeout}}) {
    if (const YamlNode* v = f.get(key)) {
      if (auto d = duration_value(*v, label + ": " + std::string(key))) {
        if (*d < 10 || *d > 3600000) {
          error(v->mark, label + ": " + std::string(key) + " must be between 10ms and 1h");
        } else {
          *target = *d;
        }
      }
    }
  }
  if (const YamlNode* v = f.get("send")) {
    if (auto t = text_value(*v, label + ": send", "the bytes to send")) out.send = *t;
  }
}

void Loader::load_server(const Field& field, BackendConfig& backend) {
  ServerConfig server;
  server.check = backend_check_;
  server.agent = backend_agent_;
  server.tls = backend_tls_;
  server.name = field.key;
  server.mark = field.key_node->mark;
  const std::string label = "server " + quoted(server.name) + " of backend " + quoted(backend.name);
  if (!valid_name(server.name)) {
    error(server.mark, "invalid server name " + quoted(server.name) +
                           " (use letters, digits, '_', '.' and '-')");
  }
  const YamlNode* address = field.value;
  bool ok = true;
  if (field.value->kind == Kind::kMap) {
    const Fields fields = map_fields(*field.value, label);
    reject_unknown(fields, kServerKeys, "in " + label);
    address = fields.get("address");
    if (!address) {
      error(server.mark, label + " has no address");
      ok = false;
    }
    if (const YamlNode* v = fields.get("weight")) {
      const auto weight = int_value(*v, label + ": weight", 0, 256);
      if (weight) server.weight = static_cast<uint32_t>(*weight);
      ok = ok && weight.has_value();
    }
    if (const YamlNode* v = fields.get("maxconn")) {
      const auto maxconn = int_value(*v, label + ": maxconn", 0, 1000000);
      if (maxconn) server.maxconn = static_cast<uint32_t>(*maxconn);
      ok = ok && maxconn.has_value();
    }
    if (const YamlNode* v = fields.get("maxqueue")) {
      const auto n = int_value(*v, label + ": maxqueue", 0, 1000000);
      if (n) server.maxqueue = static_cast<uint32_t>(*n);
      ok = ok && n.has_value();
    }
    if (const YamlNode* v = fields.get("minconn")) {
      const auto n = int_value(*v, label + ": minconn", 0, 1000000);
      if (n) server.minconn = static_cast<uint32_t>(*n);
      ok = ok && n.has_value();
      if (n && *n > 0 && server.maxconn == 0) {
        error(v->mark, label + ": minconn needs maxconn (the high end of the dynamic limit)");
        ok = false;
      } else if (n && *n > server.maxconn) {
        error(v->mark, label + ": minconn " + std::to_string(*n) + " is above maxconn " +
                           std::to_string(server.maxconn));
        ok = false;
      }
    }
    if (const YamlNode* v = fields.get("backup")) {
      const auto b = bool_value(*v, label + ": backup");
      if (b) server.backup = *b;
      ok = ok && b.has_value();
    }
    if (const YamlNode* v = fields.get("check")) load_check(*v, label + ": check", server.check);
    if (const YamlNode* v = fields.get("agent")) load_agent(*v, label + ": agent", server.agent);
    if (const YamlNode* v = fields.get("tls")) load_tls_server(*v, label + ": tls", server.tls);
    if (const YamlNode* v = fields.get("slowstart")) {
      const auto d = duration_value(*v, label + ": slowstart");
      if (d) server.slowstart = *d;
      ok = ok && d.has_value();
    }
  }
  if (address) {
    const auto text = text_value(*address, label + ": address", "an address such as 10.0.0.1:80");
    std::string problem;
    if (!text) {
      ok = false;
    } else if (auto addr = parse_address(*text, /*allow_wildcard=*/false, &problem)) {
      server.address_text = *text;
      server.addr = *addr;
    } else {
      error(address->mark, label + ": address " + quoted(*text) + ": " + problem);
      ok = false;
    }
  }
  if (!ok) return;
  for (const ServerConfig& other : backend.servers) {
    if (other.addr == server.addr) {
      warn(server.mark, label + " has the same address as server " + quoted(other.name));
      break;
    }
  }
  backend.servers.push_back(std::move(server));
}

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
  frontend.mode = default_mode_;
  frontend.forwardfor = default_forwardfor_;
  frontend.timeouts = default_timeouts_;
  const std::string label = "frontend " + quoted(frontend.name);
  if (!valid_name(frontend.name)) {
    error(frontend.mark, "invalid frontend name " + quoted(frontend.name) +
                             " (use letters, digits, '_', '.' and '-')");
  }
  const Fields fields = map_fields(*field.value, label);
  reject_unknown(fields, kFrontendKeys, "in " + label);
  bool mode_known = true;
  if (const YamlNode* v = fields.get("mode")) {
    const auto mode = mode_value(*v, label + ": mode");
    if (mode) frontend.mode = *mode;
    mode_known = mode.has_value();
  }
  if (const YamlNode* v = fields.get("bind")) {
    if (v->kind == Kind::kSequence) {
      if (v->items.empty()) error(v->mark, label + ": bind: the list is empty");
      for (const auto& item : v->items) load_bind(*item, frontend);
    } else {
      load_bind(*v, frontend);  // a single address without the list around it
    }
  } else if (field.value->kind == Kind::kMap || field.value->kind == Kind::kNull) {
    error(frontend.mark, label + " has no bind address");
  }
  if (const YamlNode* v = fields.get("maxconn")) {
    if (const auto n = int_value(*v, label + ": maxconn", 1, kMaxConn)) {
      frontend.maxconn = static_cast<uint32_t>(*n);
    }
  }
  if (const YamlNode* v = fields.get("default_backend")) {
    if (auto name = string_value(*v, label + ": default_backend")) {
      frontend.default_backend = std::move(*name);
      references_.push_back({config_.frontends.size(), v->mark, mode_known});
    }
  } else if (field.value->kind == Kind::kMap || field.value->kind == Kind::kNull) {
    error(frontend.mark, label + " has no default_backend");
  }
  if (const YamlNode* v = fields.get("forwardfor")) {
    if (const auto b = bool_value(*v, label + ": forwardfor")) {
      frontend.forwardfor = *b;
      if (*b && mode_known && frontend.mode == Mode::kTcp) {
        warn(v->mark, label + ": forwardfor has no effect in tcp mode");
      }
    }
  }
  load_rules(fields, label, frontend.mode, mode_known, static_cast<int>(config_.frontends.size()),
             frontend.rules);
  if (const YamlNode* v = fields.get("inspect_delay")) {
    if (const auto d = duration_value(*v, label + ": inspect_delay")) {
      frontend.inspect_delay = *d;
      if (*d > 0 && mode_known && frontend.mode == Mode::kHttp) {
        warn(v->mark, label + ": inspect_delay has no effect in http mode");
      }
    }
  }
  if (const YamlNode* v = fields.get("allow_connect")) {
    if (const auto b = bool_value(*v, label + ": allow_connect")) {
      frontend.allow_connect = *b;
      if (*b && mode_known && frontend.mode == Mode::kTcp) {
        warn(v->mark, label + ": allow_connect has no effect in tcp mode");
      }
    }
  }
  if (const YamlNode* v = fields.get("metrics")) {
    // "/metrics" or {uri: /metrics}
    const YamlNode* uri = v;
    if (v->kind == Kind::kMap) {
      static constexpr std::string_view kMetricsKeys[] = {"uri"};
      const Fields m = map_fields(*v, label + ".metrics");
      reject_unknown(m, kMetricsKeys, "in " + label + ".metrics");
      uri = m.get("uri");
      if (!uri) error(v->mark, label + ": metrics: missing uri");
    }
    if (uri) {
      if (auto path = text_value(*uri, label + ": metrics: uri", "a path such as /metrics")) {
        if (path->empty() || path->front() != '/') {
          error(uri->mark,
                label + ": metrics: uri must start with '/' (got " + quoted(*path) + ")");
        } else if (mode_known && frontend.mode == Mode::kTcp) {
          error(uri->mark, label + ": metrics needs mode http");
        } else {
          frontend.metrics_uri = *path;
        }
      }
    }
  }
  if (const YamlNode* v = fields.get("stats")) load_stats(*v, frontend, mode_known);
  if (const YamlNode* v = fields.get("log")) {
    if (const auto b = bool_value(*v, label + ": log")) frontend.log = *b;
  }
  if (const YamlNode* v = fields.get("timeouts")) {
    load_timeouts(*v, "timeouts of " + label, label, frontend.timeouts, kFrontendTimeouts);
  }
  config_.frontends.push_back(std::move(frontend));
}

// "/stats" or {uri: /stats, refresh: 5s, hide_version: bool, auth: {realm: R, users: {u: p}}}
void Loader::load_stats(const YamlNode& node, FrontendConfig& frontend, bool mode_known) {
  const std::string label = "frontend " + quoted(frontend.name) + ": stats";
  const std::string block = "frontend " + quoted(frontend.name) + ".stats";  // for key errors
  StatsPageConfig stats;
  stats.mark = node.mark;
  bool ok = true;
  const YamlNode* uri = &node;
  if (node.kind == Kind::kMap) {
    const Fields fields = map_fields(node, block);
    reject_unknown(fields, kStatsKeys, "in " + block);
    uri = fields.get("uri");
    if (!uri) {
      error(node.mark, label + ": missing uri");
      ok = false;
    }
    if (const YamlNode* v = fields.get("refresh")) {
      if (const auto ms = duration_value(*v, label + ": refresh")) {
        if (*ms > 0 && *ms < 1000) {
          error(v->mark, label + ": refresh must be 0 (off) or at least 1s");
          ok = false;
        } else {
          stats.refresh_ms = (*ms + 999) / 1000 * 1000;  // browsers count whole seconds
        }
      } else {
        ok = false;
      }
    }
    if (const YamlNode* v = fields.get("hide_version")) {
      if (const auto b = bool_value(*v, label + ": hide_version")) {
        stats.hide_version = *b;
      } else {
        ok = false;
      }
    }
    if (const YamlNode* auth = fields.get("auth")) {
      const Fields a = map_fields(*auth, block + ".auth");
      reject_unknown(a, kStatsAuthKeys, "in " + block + ".auth");
      if (const YamlNode* v = a.get("realm")) {
        if (auto realm = text_value(*v, label + ": auth: realm", "a name such as weir")) {
          const bool printable = std::all_of(realm->begin(), realm->end(), [](char c) {
            return static_cast<unsigned char>(c) >= 0x20 && c != 0x7f && c != '"' && c != '\\';
          });
          if (realm->empty() || realm->size() > 128 || !printable) {
            error(v->mark, label +
                               ": auth: realm must be 1 to 128 printable characters without '\"' "
                               "or '\\'");
            ok = false;
          } else {
            stats.realm = std::move(*realm);
          }
        } else {
          ok = false;
        }
      }
      const YamlNode* users = a.get("users");
      if (!users) {
        error(auth->mark, label + ": auth: missing users");
        ok = false;
      } else {
        const Fields u =
            map_fields(*users, block + ".auth.users", "user", " in " + block + ".auth.users");
        if (u.list.empty()) {
          error(users->mark, label +
                                 ": auth: users: no user defined (remove auth to serve the "
                                 "page without authentication)");
          ok = false;
        }
        for (const Field& user : u.list) {
          const bool valid =
              !user.key.empty() && std::none_of(user.key.begin(), user.key.end(), [](char c) {
                return c == ':' || static_cast<unsigned char>(c) < 0x20 || c == 0x7f;
              });
          if (!valid) {
            error(user.key_node->mark, label + ": auth: invalid user name " + quoted(user.key) +
                                           " (no ':' or control characters)");
            ok = false;
            continue;
          }
          if (auto password = text_value(
                  *user.value, label + ": auth: password of " + quoted(user.key), "a password")) {
            stats.users.emplace_back(user.key, std::move(*password));
          } else {
            ok = false;
          }
        }
      }
    }
  }
  if (uri) {
    if (auto path = text_value(*uri, label + ": uri", "a path such as /stats")) {
      if (path->empty() || path->front() != '/') {
        error(uri->mark, label + ": uri must start with '/' (got " + quoted(*path) + ")");
        ok = false;
      } else if (path->find_first_of("?#; \t") != std::string::npos) {
        error(uri->mark, label +
                             ": uri must be a plain path, without '?', '#', ';' or spaces (got " +
                             quoted(*path) + ")");
        ok = false;
      } else if (*path == frontend.metrics_uri) {
        error(uri->mark, label + ": uri " + quoted(*path) + " is already the metrics uri");
        ok = false;
      } else {
        stats.uri = std::move(*path);
      }
    } else {
      ok = false;
    }
  }
  if (mode_known && frontend.mode == Mode::kTcp) {
    error(node.mark, label + " needs mode http");
    ok = false;
  }
  if (ok) frontend.stats = std::move(stats);
}

std::optional<int> Loader::tls_version(const YamlNode& node, const std::string& what) {
  const auto text = text_value(node, what, "TLSv1, TLSv1.1, TLSv1.2 or TLSv1.3");
  if (!text) return std::nullopt;
  for (const auto& [name, v] : kTlsVersions) {
    if (*text == name) return v;
  }
  std::vector<std::string_view> names;
  for (const auto& [name, v] : kTlsVersions) names.push_back(name);
  error(node.mark, what + ": unknown TLS version " + quoted(*text) +
                       " (expected TLSv1, TLSv1.1, TLSv1.2 or TLSv1.3)" + suggestion(*text, names));
  return std::nullopt;
}

std::optional<std::vector<std::string>> Loader::string_list(const YamlNode& node,
                                                            const std::string& what) {
  std::vector<std::string> out;
  if (node.kind == Kind::kSequence) {
    bool ok = true;
    for (const auto& item : node.items) {
      auto t = string_value(*item, what);
      if (t && !t->empty()) {
        out.push_back(std::move(*t));
      } else {
        if (t) error(item->mark, what + ": empty entry");
        ok = false;
      }
    }
    if (!ok) return std::nullopt;
    return out;
  }
  auto t = string_value(node, what);
  if (!t) return std::nullopt;
  if (!t->empty()) out.push_back(std::move(*t));
  return out;
}

void Loader::load_tls_bind(const YamlNode& node, const std::string& label, TlsBindConfig& out) {
  out.mark = node.mark;
  const Fields fields = map_fields(node, label);
  reject_unknown(fields, kTlsBindKeys, "in " + label);
  out.enabled = true;
  if (const YamlNode* v = fields.get("certificates")) {
    if (auto list = string_list(*v, label + ": certificates")) out.certificates = std::move(*list);
  }
  if (const YamlNode* v = fields.get("default_certificate")) {
    if (auto t = string_value(*v, label + ": default_certificate")) {
      out.default_certificate = std::move(*t);
    }
  }
  if (out.certificates.empty() && out.default_certificate.empty()) {
    error(node.mark,
          label + ": certificates: at least one certificate file or directory is needed");
  }
  if (const YamlNode* v = fields.get("alpn")) {
    if (auto list = string_list(*v, label + ": alpn")) {
      for (const std::string& p : *list) {
        if (p.size() > 255) error(v->mark, label + ": alpn: protocol name longer than 255 bytes");
      }
      out.alpn = std::move(*list);
      out.alpn_set = true;
    }
  }
  if (const YamlNode* v = fields.get("min_version")) {
    if (auto n = tls_version(*v, label + ": min_version")) out.min_version = *n;
  }
  if (const YamlNode* v = fields.get("max_version")) {
    if (auto n = tls_version(*v, label + ": max_version")) out.max_version = *n;
  }
  if (out.min_version > out.max_version) {
    error(node.mark, label + ": min_version is above max_version");
  }
  for (auto [key, target] :
       {std::pair{"ciphers", &out.ciphers}, std::pair{"ciphersuites", &out.ciphersuites},
        std::pair{"curves", &out.curves}, std::pair{"ca_file", &out.ca_file},
        std::pair{"crl_file", &out.crl_file}}) {
    if (const YamlNode* v = fields.get(key)) {
      if (auto t = string_value(*v, label + ": " + key)) *target = std::move(*t);
    }
  }
  if (const YamlNode* v = fields.get("session_tickets")) {
    if (auto b = bool_value(*v, label + ": session_tickets")) out.session_tickets = *b;
  }
  if (const YamlNode* v = fields.get("session_cache")) {
    if (auto n = int_value(*v, label + ": session_cache", 0, 10000000)) {
      out.session_cache = static_cast<uint32_t>(*n);
    }
  }
  if (const YamlNode* v = fields.get("session_timeout")) {
    if (auto d = duration_value(*v, label + ": session_timeout")) {
      if (*d < 1000 || *d > 7 * 86400000LL) {
        error(v->mark, label + ": session_timeout: must be between 1s and 7d");
      } else {
        out.session_timeout = *d;
      }
    }
  }
  if (const YamlNode* v = fields.get("verify")) {
    if (auto t = text_value(*v, label + ": verify", "none, optional or required")) {
      if (*t == "none") {
        out.verify = TlsBindConfig::Verify::kNone;
      } else if (*t == "optional") {
        out.verify = TlsBindConfig::Verify::kOptional;
      } else if (*t == "required") {
        out.verify = TlsBindConfig::Verify::kRequired;
      } else {
        error(v->mark, label + ": verify: unknown value " + quoted(*t) +
                           " (expected none, optional or required)");
      }
    }
  }
  if (out.verify != TlsBindConfig::Verify::kNone && out.ca_file.empty()) {
    error(node.mark, label + ": verify: " +
                         std::string(out.verify == TlsBindConfig::Verify::kOptional ? "optional"
                                                                                    : "required") +
                         " needs ca_file (the CAs that sign client certificates)");
  }
  if (const YamlNode* v = fields.get("client_cert_headers")) {
    if (auto b = bool_value(*v, label + ": client_cert_headers")) out.client_cert_headers = *b;
  }
}

void Loader::load_tls_server(const YamlNode& node, const std::string& label, TlsServerConfig& out) {
  out.mark = node.mark;
  if (node.kind != Kind::kMap) {
    if (auto b = bool_value(node, label)) out.enabled = *b;  // tls: true | false
    return;
  }
  const Fields fields = map_fields(node, label);
  reject_unknown(fields, kTlsServerKeys, "in " + label);
  out.enabled = true;  // a map turns TLS on unless it says enabled: false
  if (const YamlNode* v = fields.get("enabled")) {
    if (auto b = bool_value(*v, label + ": enabled")) out.enabled = *b;
  }
  if (const YamlNode* v = fields.get("verify")) {
    if (auto t = text_value(*v, label + ": verify", "none or required")) {
      if (*t == "none") {
        out.verify = false;
      } else if (*t == "required") {
        out.verify = true;
      } else {
        error(v->mark,
              label + ": verify: unknown value " + quoted(*t) + " (expected none or required)");
      }
    }
  }
  for (auto [key, target] :
       {std::pair{"ca_file", &out.ca_file}, std::pair{"verify_name", &out.verify_name},
        std::pair{"cert", &out.cert}, std::pair{"ciphers", &out.ciphers},
        std::pair{"ciphersuites", &out.ciphersuites}}) {
    if (const YamlNode* v = fields.get(key)) {
      if (auto t = string_value(*v, label + ": " + key)) *target = std::move(*t);
    }
  }
  if (const YamlNode* v = fields.get("sni")) {
    if (auto tpl = template_value(*v, label + ": sni")) {
      out.sni = std::move(*tpl);
      out.sni_text = out.sni.text;
    }
  }
  if (const YamlNode* v = fields.get("alpn")) {
    if (auto list = string_list(*v, label + ": alpn")) out.alpn = std::move(*list);
  }
  if (const YamlNode* v = fields.get("min_version")) {
    if (auto n = tls_version(*v, label + ": min_version")) out.min_version = *n;
  }
  if (const YamlNode* v = fields.get("max_version")) {
    if (auto n = tls_version(*v, label + ": max_version")) out.max_version = *n;
  }
  if (out.min_version > out.max_version) {
    error(node.mark, label + ": min_version is above max_version");
  }
}

void Loader::load_bind(const YamlNode& node, FrontendConfig& frontend) {
  const std::string label = "frontend " + quoted(frontend.name);
  BindConfig bind;
  const YamlNode* address = &node;
  const YamlNode* v6only = nullptr;
  if (node.kind == Kind::kMap) {
    const Fields fields = map_fields(node, "bind of " + label);
    reject_unknown(fields, kBindKeys, "in bind of " + label);
    address = fields.get("address");
    v6only = fields.get("v6only");
    if (const YamlNode* v = fields.get("backlog")) {
      if (const auto n = int_value(*v, label + ": bind: backlog", 1, 65535)) {
        bind.backlog = static_cast<int>(*n);
      }
    }
    if (v6only) {
      if (const auto b = bool_value(*v6only, label + ": bind: v6only")) bind.v6only = *b;
    }
    if (const YamlNode* v = fields.get("tls")) load_tls_bind(*v, label + ": bind: tls", bind.tls);
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
  const auto [it, inserted] = binds_.try_emplace(key, frontend.name, bind.mark);
  if (!inserted) {
    const auto& [owner, first] = it->second;
    error(bind.mark, label + ": bind " + quoted(*text) + " is already used by " +
                         (owner == frontend.name ? "this frontend" : "frontend " + quoted(owner)) +
                         " (line " + std::to_string(first.line) + ")");
  }
  frontend.binds.push_back(std::move(bind));
}

std::optional<cond::ValueTemplate> Loader::template_value(const YamlNode& node,
                                                          const std::string& what) {
  auto t = text_value(node, what, "a string (samples as %[fetch])");
  if (!t) return std::nullopt;
  cond::ParseError pe;
  auto tpl = cond::parse_template(*t, files_, &pe);
  if (!tpl) {
    error(mark_inside(node, pe.offset), what + ": " + pe.message + " (at position " +
                                            std::to_string(pe.offset + 1) + " of " + quoted(*t) +
                                            ")");
  }
  return tpl;
}

std::shared_ptr<const cond::Condition> Loader::condition_value(const YamlNode& node,
                                                               const std::string& what,
                                                               const cond::NamedTests& acls,
                                                               bool response) {
  auto t = text_value(node, what, "a condition such as \"api and not internal\"");
  if (!t) return nullptr;
  cond::ParseError pe;
  auto c = cond::parse_condition(*t, acls, files_, &pe);
  if (!c) {
    if (pe.reported_already) return nullptr;
    error(mark_inside(node, pe.offset), what + ": " + pe.message + " (at position " +
                                            std::to_string(pe.offset + 1) + " of " + quoted(*t) +
                                            ")");
    return nullptr;
  }
  if (c->uses_response() && !response) {
    error(node.mark, what + ": status and res_hdr exist only in http_response rules");
    return nullptr;
  }
  return c;
}

std::optional<HttpRule> Loader::load_http_rule(const YamlNode& node, const std::string& label,
                                               bool response, bool frontend,
                                               const cond::NamedTests& acls) {
  using A = HttpRule::Action;
  static constexpr std::pair<std::string_view, A> kActions[] = {
      {"allow", A::kAllow},
      {"deny", A::kDeny},
      {"tarpit", A::kTarpit},
      {"return", A::kReturn},
      {"redirect", A::kRedirect},
      {"set_header", A::kSetHeader},
      {"add_header", A::kAddHeader},
      {"del_header", A::kDelHeader},
      {"replace_header", A::kReplaceHeader},
      {"replace_value", A::kReplaceValue},
      {"set_path", A::kSetPath},
      {"set_query", A::kSetQuery},
      {"set_method", A::kSetMethod},
      {"set_uri", A::kSetUri},
      {"set_var", A::kSetVar},
      {"capture", A::kCapture},
      {"use_backend", A::kUseBackend},
      {"set_status", A::kSetStatus},
  };
  auto allowed = [&](A a) {
    if (response) {
      return a == A::kAllow || a == A::kDeny || a == A::kReturn || a == A::kSetHeader ||
             a == A::kAddHeader || a == A::kDelHeader || a == A::kReplaceHeader ||
             a == A::kReplaceValue || a == A::kSetVar || a == A::kSetStatus;
    }
    return a != A::kSetStatus && (a != A::kUseBackend || frontend);
  };
  if (node.kind != Kind::kMap) {
    error(node.mark, label +
                         " must be a map with one action and an optional if/unless, such "
                         "as {deny: {status: 403}, if: blocked}");
    return std::nullopt;
  }
  const Fields f = map_fields(node, label);
  HttpRule rule;
  rule.mark = node.mark;
  const Field* action = nullptr;
  for (const Field& fl : f.list) {
    if (fl.key == "if" || fl.key == "unless") continue;
    bool known = false;
    for (auto [name, a] : kActions) {
      if (fl.key != name) continue;
      known = true;
      if (!allowed(a)) {
        error(fl.key_node->mark,
              label + ": " + fl.key +
                  (a == A::kUseBackend && !response
                       ? " belongs to a frontend's http_request (a backend's rules run after "
                         "the backend was chosen)"
                       : std::string(" is not a ") + (response ? "response" : "request") +
                             " action here"));
        return std::nullopt;
      }
      if (action) {
        error(fl.key_node->mark, label + ": one action per rule (" + action->key + " and " +
                                     fl.key + "); write two rules");
        return std::nullopt;
      }
      action = &fl;
      rule.action = a;
    }
    if (!known) {
      std::vector<std::string_view> names;
      for (auto [name, a] : kActions)
        if (allowed(a)) names.push_back(name);
      names.push_back("if");
      names.push_back("unless");
      error(fl.key_node->mark,
            label + ": unknown action " + quoted(fl.key) + suggestion(fl.key, names));
      return std::nullopt;
    }
  }
  if (!action) {
    error(node.mark, label + ": no action (allow, deny, return, redirect, set_header, ...)");
    return std::nullopt;
  }
  const YamlNode* cif = f.get("if");
  const YamlNode* cunless = f.get("unless");
  if (cif && cunless) {
    error(cunless->mark, label + ": give if or unless, not both");
    return std::nullopt;
  }
  if (cif || cunless) {
    rule.unless = cunless != nullptr;
    rule.cond = condition_value(cif ? *cif : *cunless, label + ": " + (cif ? "if" : "unless"), acls,
                                response);
    if (!rule.cond) return std::nullopt;
  }
  const YamlNode& v = *action->value;
  const std::string what = label + ": " + action->key;
  // The map form of an action's value ({} for a bare `deny:`).
  auto opts = [&](std::span<const std::string_view> keys) {
    Fields o = v.kind == Kind::kMap ? map_fields(v, what) : Fields{};
    if (v.kind == Kind::kMap) reject_unknown(o, keys, "in " + what);
    return o;
  };
  auto read_body = [&](const Fields& o) -> bool {
    const YamlNode* b = o.get("body");
    const YamlNode* file = o.get("file");
    if (b && file) {
      error(file->mark, what + ": give body or file, not both");
      return false;
    }
    if (b) {
      if (auto t = text_value(*b, what + ": body", "the response body")) rule.body = *t;
    }
    if (file) {
      auto path = text_value(*file, what + ": file", "a file path");
      if (!path) return false;
      std::ifstream in(*path, std::ios::binary);
      if (!in) {
        error(file->mark, what + ": cannot read " + *path + ": " + std::strerror(errno));
        return false;
      }
      std::ostringstream ss;
      ss << in.rdbuf();
      rule.body = ss.str();
    }
    if (const YamlNode* ct = o.get("content_type")) {
      if (auto t = text_value(*ct, what + ": content_type", "a media type such as text/plain")) {
        if (t->find_first_of("\r\n") != std::string::npos) {
          error(ct->mark, what + ": content_type cannot span lines");
          return false;
        }
        rule.content_type = *t;
      }
    }
    return true;
  };
  auto read_status = [&](const Fields& o, int def, int lo, int hi) -> bool {
    rule.status = def;
    if (const YamlNode* st = o.get("status")) {
      auto n = int_value(*st, what + ": status", lo, hi);
      if (!n) return false;
      rule.status = static_cast<int>(*n);
    }
    return true;
  };
  auto header_name = [&](const YamlNode& n, const std::string& w) -> bool {
    auto t = text_value(n, w, "a header name");
    if (!t) return false;
    bool ok = !t->empty();
    for (char c : *t) ok = ok && is_tchar(c);
    if (!ok) {
      error(n.mark, w + ": invalid header name " + quoted(*t));
      return false;
    }
    std::string lower_name = *t;
    for (char& c : lower_name) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
    if (lower_name == "content-length" || lower_name == "transfer-encoding") {
      // Changing the framing would make weir and the server disagree on where
      // the message ends (request smuggling).
      error(n.mark, w + ": " + *t + " frames the message; weir keeps it as it is");
      return false;
    }
    rule.name = *t;
    return true;
  };
  auto need = [&](const Fields& o, std::string_view key) -> const YamlNode* {
    const YamlNode* n = o.get(key);
    if (!n) error(v.mark, what + " needs " + std::string(key));
    return n;
  };
  switch (rule.action) {
    case A::kAllow:
      if (v.kind != Kind::kNull && !(v.kind == Kind::kScalar && v.scalar == "true")) {
        error(v.mark, what + ": write allow: true");
        return std::nullopt;
      }
      break;
    case A::kDeny:
    case A::kReturn:
    case A::kTarpit: {
      static constexpr std::string_view kKeys[] = {"status", "body", "file", "content_type",
                                                   "delay"};
      if (v.kind != Kind::kMap && v.kind != Kind::kNull &&
          !(v.kind == Kind::kScalar && v.scalar == "true")) {
        error(v.mark, what + ": a map such as {status: 403, body: \"...\"}, or true");
        return std::nullopt;
      }
      Fields o = opts(kKeys);
      const int def = rule.action == A::kDeny     ? (response ? 502 : 403)
                      : rule.action == A::kTarpit ? 500
                                                  : 200;
      if (!read_status(o, def, rule.action == A::kReturn ? 200 : 400, 599) || !read_body(o)) {
        return std::nullopt;
      }
      if (const YamlNode* d = o.get("delay")) {
        if (rule.action != A::kTarpit) {
          error(d->mark, what + ": delay belongs to tarpit");
          return std::nullopt;
        }
        auto ms = duration_value(*d, what + ": delay");
        if (!ms) return std::nullopt;
        rule.delay = *ms;
      } else if (rule.action == A::kTarpit) {
        rule.delay = 5000;
      }
      break;
    }
    case A::kRedirect: {
      static constexpr std::string_view kKeys[] = {"location", "prefix", "scheme", "code",
                                                   "drop_query"};
      if (v.kind != Kind::kMap) {
        error(v.mark, what + ": a map such as {scheme: https, code: 301}");
        return std::nullopt;
      }
      Fields o = opts(kKeys);
      int kinds = 0;
      for (auto [key, kind] : {std::pair<std::string_view, HttpRule::Redirect>{
                                   "location", HttpRule::Redirect::kLocation},
                               {"prefix", HttpRule::Redirect::kPrefix},
                               {"scheme", HttpRule::Redirect::kScheme}}) {
        if (const YamlNode* n = o.get(key)) {
          ++kinds;
          rule.redirect = kind;
          auto tpl = template_value(*n, what + ": " + std::string(key));
          if (!tpl) return std::nullopt;
          rule.value = std::move(*tpl);
        }
      }
      if (kinds != 1) {
        error(v.mark, what + " needs exactly one of location, prefix or scheme");
        return std::nullopt;
      }
      rule.status = 302;
      if (const YamlNode* c = o.get("code")) {
        auto n = int_value(*c, what + ": code", 301, 308);
        if (!n) return std::nullopt;
        if (*n != 301 && *n != 302 && *n != 303 && *n != 307 && *n != 308) {
          error(c->mark, what + ": code must be 301, 302, 303, 307 or 308");
          return std::nullopt;
        }
        rule.status = static_cast<int>(*n);
      }
      if (const YamlNode* d = o.get("drop_query")) {
        auto b = bool_value(*d, what + ": drop_query");
        if (!b) return std::nullopt;
        rule.drop_query = *b;
      }
      break;
    }
    case A::kSetHeader:
    case A::kAddHeader: {
      static constexpr std::string_view kKeys[] = {"name", "value"};
      if (v.kind != Kind::kMap) {
        error(v.mark, what + ": a map {name: X-Header, value: \"...\"}");
        return std::nullopt;
      }
      Fields o = opts(kKeys);
      const YamlNode* n = need(o, "name");
      const YamlNode* val = need(o, "value");
      if (!n || !val || !header_name(*n, what + ": name")) return std::nullopt;
      auto tpl = template_value(*val, what + ": value");
      if (!tpl) return std::nullopt;
      if (tpl->text.find_first_of("\r\n") != std::string::npos) {
        error(val->mark, what + ": a header value cannot span lines");
        return std::nullopt;
      }
      rule.value = std::move(*tpl);
      break;
    }
    case A::kDelHeader: {
      if (v.kind == Kind::kMap) {
        static constexpr std::string_view kKeys[] = {"name"};
        Fields o = opts(kKeys);
        const YamlNode* n = need(o, "name");
        if (!n || !header_name(*n, what + ": name")) return std::nullopt;
      } else if (!header_name(v, what)) {
        return std::nullopt;
      }
      break;
    }
    case A::kReplaceHeader:
    case A::kReplaceValue: {
      static constexpr std::string_view kKeys[] = {"name", "match", "replace"};
      if (v.kind != Kind::kMap) {
        error(v.mark, what + ": a map {name: ..., match: REGEX, replace: \"...\\\\1...\"}");
        return std::nullopt;
      }
      Fields o = opts(kKeys);
      const YamlNode* n = need(o, "name");
      const YamlNode* m = need(o, "match");
      const YamlNode* r = need(o, "replace");
      if (!n || !m || !r || !header_name(*n, what + ": name")) return std::nullopt;
      auto re = text_value(*m, what + ": match", "a regular expression");
      auto rp = text_value(*r, what + ": replace", "the replacement");
      if (!re || !rp) return std::nullopt;
      std::string err;
      rule.match = cond::Regex::compile(*re, false, &err);
      if (!rule.match) {
        error(m->mark, what + ": match: " + err);
        return std::nullopt;
      }
      if (rp->find_first_of("\r\n") != std::string::npos) {
        error(r->mark, what + ": a header value cannot span lines");
        return std::nullopt;
      }
      rule.replacement = *rp;
      break;
    }
    case A::kSetPath:
    case A::kSetQuery:
    case A::kSetMethod:
    case A::kSetUri: {
      auto tpl = template_value(v, what);
      if (!tpl) return std::nullopt;
      const std::string& t = tpl->text;
      bool bad = t.find_first_of(" \t\r\n") != std::string::npos;
      if (rule.action == A::kSetPath && tpl->is_constant() && (t.empty() || t[0] != '/'))
        bad = true;
      if (rule.action == A::kSetMethod && tpl->is_constant()) {
        for (char c : t) bad = bad || !is_tchar(c);
        bad = bad || t.empty();
      }
      if (bad) {
        error(v.mark, what + ": " + quoted(t) +
                          (rule.action == A::kSetPath ? " must start with '/' and have no spaces"
                           : rule.action == A::kSetMethod ? " is not a method (a token such as GET)"
                                                          : " cannot contain spaces"));
        return std::nullopt;
      }
      rule.value = std::move(*tpl);
      break;
    }
    case A::kSetVar: {
      static constexpr std::string_view kKeys[] = {"name", "value"};
      if (v.kind != Kind::kMap) {
        error(v.mark, what + ": a map {name: txn.user, value: \"%[hdr(x-user)]\"}");
        return std::nullopt;
      }
      Fields o = opts(kKeys);
      const YamlNode* n = need(o, "name");
      const YamlNode* val = need(o, "value");
      if (!n || !val) return std::nullopt;
      auto name = text_value(*n, what + ": name", "txn.<name>");
      if (!name) return std::nullopt;
      if (name->rfind("txn.", 0) != 0 || name->size() == 4 || !valid_name(name->substr(4))) {
        error(n->mark, what + ": name " + quoted(*name) +
                           " must be txn.<name> (letters, digits, '_', '.' and '-')");
        return std::nullopt;
      }
      rule.name = *name;
      auto tpl = template_value(*val, what + ": value");
      if (!tpl) return std::nullopt;
      rule.value = std::move(*tpl);
      break;
    }
    case A::kCapture: {
      const YamlNode* val = &v;
      if (v.kind == Kind::kMap) {
        static constexpr std::string_view kKeys[] = {"value", "len"};
        Fields o = opts(kKeys);
        val = need(o, "value");
        if (!val) return std::nullopt;
        if (const YamlNode* l = o.get("len")) {
          auto n = int_value(*l, what + ": len", 1, 65536);
          if (!n) return std::nullopt;
          rule.capture_len = static_cast<size_t>(*n);
        }
      }
      auto tpl = template_value(*val, what + (val == &v ? "" : ": value"));
      if (!tpl) return std::nullopt;
      rule.value = std::move(*tpl);
      break;
    }
    case A::kUseBackend: {
      auto tpl = template_value(v, what);
      if (!tpl) return std::nullopt;
      if (tpl->is_constant()) {
        rule.backend = tpl->text;
        if (!valid_name(rule.backend)) {
          error(v.mark, what + ": invalid backend name " + quoted(rule.backend));
          return std::nullopt;
        }
      }
      rule.value = std::move(*tpl);
      break;
    }
    case A::kSetStatus: {
      static constexpr std::string_view kKeys[] = {"status", "reason"};
      if (v.kind == Kind::kMap) {
        Fields o = opts(kKeys);
        if (!need(o, "status") || !read_status(o, 200, 100, 599)) return std::nullopt;
        if (const YamlNode* r = o.get("reason")) {
          auto t = text_value(*r, what + ": reason", "a reason phrase");
          if (!t) return std::nullopt;
          if (t->find_first_of("\r\n") != std::string::npos) {
            error(r->mark, what + ": reason cannot span lines");
            return std::nullopt;
          }
          rule.reason = *t;
        }
      } else {
        auto n = int_value(v, what, 100, 599);
        if (!n) return std::nullopt;
        rule.status = static_cast<int>(*n);
      }
      break;
    }
  }
  return rule;
}

void Loader::load_rules(const Fields& fields, const std::string& label, Mode mode, bool mode_known,
                        int frontend_index, RuleSet& out) {
  const bool frontend = frontend_index >= 0;
  cond::NamedTests acls;
  if (const YamlNode* v = fields.get("acls")) {
    for (const Field& a : map_fields(*v, label + ": acls", "condition", " in " + label).list) {
      const std::string what = label + ": acls: " + a.key;
      if (!valid_name(a.key) || a.key == "and" || a.key == "or" || a.key == "not") {
        error(a.key_node->mark, what +
                                    ": invalid condition name (use letters, digits, '_', "
                                    "'.' and '-'; not and/or/not)");
        continue;
      }
      // A failed acl stays defined (as null), so that rules naming it do not
      // report a second, wrong error ("unknown condition").
      acls[a.key] = nullptr;
      auto t = text_value(*a.value, what, "a test such as \"path_beg /api/\"");
      if (!t) continue;
      cond::ParseError pe;
      auto test = cond::parse_test(*t, files_, &pe);
      if (!test) {
        error(mark_inside(*a.value, pe.offset), what + ": " + pe.message + " (at position " +
                                                    std::to_string(pe.offset + 1) + " of " +
                                                    quoted(*t) + ")");
        continue;
      }
      acls[a.key] = std::move(test);
    }
  }
  const bool http = !mode_known || mode == Mode::kHttp;
  for (const char* key : {"http_request", "http_response"}) {
    const YamlNode* v = fields.get(key);
    if (!v) continue;
    if (!http) {
      error(v->mark, label + ": " + key + " needs http mode (use tcp_request in tcp mode)");
      continue;
    }
    const bool response = std::string_view(key) == "http_response";
    std::vector<HttpRule>& rules = response ? out.http_response : out.http_request;
    if (v->kind != Kind::kSequence) {
      error(v->mark, label + ": " + key + " must be a list of rules");
      continue;
    }
    size_t n = 0;
    for (const auto& item : v->items) {
      ++n;
      auto rule = load_http_rule(*item, label + ": " + key + " rule " + std::to_string(n), response,
                                 frontend, acls);
      if (!rule) continue;
      if (rule->action == HttpRule::Action::kUseBackend) {
        if (rule->backend.empty()) {
          dynamic_backends_ = true;
        } else {
          rule_backends_.push_back(
              {static_cast<size_t>(frontend_index), rule->backend, item->mark});
        }
      }
      rules.push_back(std::move(*rule));
    }
  }
  if (const YamlNode* v = fields.get("tcp_request")) {
    if (v->kind != Kind::kSequence) {
      error(v->mark, label + ": tcp_request must be a list of rules");
    } else {
      size_t n = 0;
      for (const auto& item : v->items) {
        ++n;
        const std::string what = label + ": tcp_request rule " + std::to_string(n);
        if (item->kind != Kind::kMap) {
          error(item->mark, what + " must be a map such as {connection: reject, if: blocked}");
          continue;
        }
        const Fields f = map_fields(*item, what);
        static constexpr std::string_view kKeys[] = {"connection", "content", "if", "unless"};
        reject_unknown(f, kKeys, "in " + what);
        const YamlNode* conn = f.get("connection");
        const YamlNode* content = f.get("content");
        if ((conn != nullptr) == (content != nullptr)) {
          error(item->mark, what + " needs exactly one of connection or content");
          continue;
        }
        TcpRule rule;
        rule.mark = item->mark;
        rule.stage = conn ? TcpRule::Stage::kConnection : TcpRule::Stage::kContent;
        const YamlNode& a = conn ? *conn : *content;
        if (content && !frontend) {
          // fine: a backend's content rules run once it is chosen
        }
        if (content && mode_known && mode == Mode::kHttp) {
          error(content->mark, what + ": content rules are for tcp mode (use http_request)");
          continue;
        }
        if (a.kind == Kind::kMap) {
          const Fields ao = map_fields(a, what);
          static constexpr std::string_view kAKeys[] = {"use_backend"};
          reject_unknown(ao, kAKeys, "in " + what);
          const YamlNode* ub = ao.get("use_backend");
          if (!ub || !content || !frontend) {
            error(a.mark, what + ": use_backend is a content rule of a frontend");
            continue;
          }
          auto name = string_value(*ub, what + ": use_backend");
          if (!name) continue;
          rule.action = TcpRule::Action::kUseBackend;
          rule.backend = *name;
          rule_backends_.push_back({static_cast<size_t>(frontend_index), *name, ub->mark});
        } else {
          auto t = text_value(a, what, "accept or reject");
          if (!t) continue;
          if (*t == "accept") {
            rule.action = TcpRule::Action::kAccept;
          } else if (*t == "reject") {
            rule.action = TcpRule::Action::kReject;
          } else {
            error(a.mark, what + ": unknown action " + quoted(*t) +
                              " (accept, reject, or {use_backend: NAME} for content rules)");
            continue;
          }
        }
        const YamlNode* cif = f.get("if");
        const YamlNode* cunless = f.get("unless");
        if (cif && cunless) {
          error(cunless->mark, what + ": give if or unless, not both");
          continue;
        }
        if (cif || cunless) {
          const YamlNode& cn = cif ? *cif : *cunless;
          rule.unless = cunless != nullptr;
          rule.cond = condition_value(cn, what + ": " + (cif ? "if" : "unless"), acls, false);
          if (!rule.cond) continue;
          if (rule.cond->uses_http()) {
            error(cn.mark, what +
                               ": tcp_request rules see the connection only (src, dst, "
                               "src_port, dst_port, ssl_* and req_ssl_* fetches, var); HTTP "
                               "fetches belong to http_request");
            continue;
          }
        }
        out.tcp_request.push_back(std::move(rule));
      }
    }
  }
  if (const YamlNode* v = fields.get("errorfiles")) {
    if (!http) {
      error(v->mark, label + ": errorfiles needs http mode");
    } else {
      for (const Field& e : map_fields(*v, label + ": errorfiles", "status", " in " + label).list) {
        const std::string what = label + ": errorfiles: " + e.key;
        static constexpr int kStatuses[] = {400, 401, 403, 404, 405, 407, 408, 410,
                                            413, 425, 429, 500, 501, 502, 503, 504};
        int status = std::atoi(e.key.c_str());
        if (std::find(std::begin(kStatuses), std::end(kStatuses), status) == std::end(kStatuses) ||
            std::to_string(status) != e.key) {
          error(e.key_node->mark, what +
                                      ": not a status weir answers by itself (400, 401, 403, "
                                      "404, 405, 407, 408, 410, 413, 425, 429, 500, 501, "
                                      "502, 503, 504)");
          continue;
        }
        auto path = text_value(*e.value, what, "the path of an HTML file");
        if (!path) continue;
        std::ifstream in(*path, std::ios::binary);
        if (!in) {
          error(e.value->mark, what + ": cannot read " + *path + ": " + std::strerror(errno));
          continue;
        }
        std::ostringstream ss;
        ss << in.rdbuf();
        out.errorfiles[status] = ss.str();
      }
    }
  }
}

void Loader::check_references() {
  std::vector<bool> used(config_.backends.size(), false);
  std::vector<std::string_view> names;
  for (const BackendConfig& backend : config_.backends) names.push_back(backend.name);
  for (const BackendReference& ref : references_) {
    const FrontendConfig& frontend = config_.frontends[ref.frontend];
    const int index = config_.backend_index(frontend.default_backend);
    if (index < 0) {
      error(ref.mark, "frontend " + quoted(frontend.name) + ": default_backend " +
                          quoted(frontend.default_backend) + " does not exist" +
                          suggestion(frontend.default_backend, names));
      continue;
    }
    const auto i = static_cast<size_t>(index);
    used[i] = true;
    const BackendConfig& backend = config_.backends[i];
    if (ref.mode_known && backend_mode_known_[i] && frontend.mode != backend.mode) {
      const auto mode_name = [](Mode mode) { return mode == Mode::kHttp ? "http" : "tcp"; };
      error(ref.mark, "frontend " + quoted(frontend.name) + " is in " + mode_name(frontend.mode) +
                          " mode but its default_backend " + quoted(backend.name) + " is in " +
                          mode_name(backend.mode) + " mode");
    }
  }
  for (const RuleBackendRef& ref : rule_backends_) {
    const FrontendConfig& frontend = config_.frontends[ref.frontend];
    const int index = config_.backend_index(ref.name);
    if (index < 0) {
      error(ref.mark, "frontend " + quoted(frontend.name) + ": use_backend " + quoted(ref.name) +
                          " does not exist" + suggestion(ref.name, names));
      continue;
    }
    const auto i = static_cast<size_t>(index);
    used[i] = true;
    if (backend_mode_known_[i] && frontend.mode != config_.backends[i].mode) {
      error(ref.mark, "frontend " + quoted(frontend.name) + ": use_backend " + quoted(ref.name) +
                          " is in another mode than the frontend");
    }
  }
  for (size_t i = 0; i < config_.backends.size(); ++i) {
    if (!used[i] && !dynamic_backends_) {
      warn(config_.backends[i].mark,
           "backend " + quoted(config_.backends[i].name) + " is not used by any frontend");
    }
  }
}

SourceMark Loader::mark_inside(const YamlNode& node, size_t offset) const {
  SourceMark m = node.mark;
  size_t pos = 0;
  for (int line = 1; line < m.line && pos != std::string_view::npos; ++line) {
    pos = text_.find('\n', pos);
    if (pos != std::string_view::npos) ++pos;
  }
  if (pos != std::string_view::npos && m.column > 0) {
    size_t at = pos + static_cast<size_t>(m.column - 1);
    if (at < text_.size() && (text_[at] == '"' || text_[at] == '\'')) ++m.column;
  }
  m.column += static_cast<int>(offset);
  return m;
}

LoadResult Loader::load(std::string_view text) {
  text_ = text;
  const config_detail::YamlDocument doc = config_detail::parse_yaml(text, file());
  if (!doc.errors.empty()) {
    result_.errors = doc.errors;
    return std::move(result_);
  }
  const YamlNode* root = doc.root.get();
  if (!root || root->kind == Kind::kNull) {
    // Every message has a position, even about a file with nothing in it.
    error({1, 1}, "no frontends defined (the file holds no configuration; see etc/weir.yaml)");
  } else if (root->kind != Kind::kMap) {
    error(root->mark, "expected a map with global, defaults, frontends and backends (got " +
                          describe(*root) + ")");
  } else {
    const Fields top = map_fields(*root, "top level", "key", " at the top level");
    reject_unknown(top, kTopKeys, "at the top level");
    // defaults: first, whatever the file order: frontends and backends inherit from it.
    if (const YamlNode* v = top.get("global")) load_global(*v);
    if (const YamlNode* v = top.get("defaults")) load_defaults(*v);
    if (const YamlNode* v = top.get("backends")) load_backends(*v);
    if (const Field* f = top.find("frontends")) {
      load_frontends(*f->value, f->key_node->mark);
    } else {
      error(root->mark, "no frontends defined");
    }
    check_references();
  }
  sort_messages(result_.errors);
  sort_messages(result_.warnings);
  if (result_.errors.empty()) result_.config = std::move(config_);
  return std::move(result_);
}

}  // namespace

LoadResult load_config_text(std::string_view text, const std::string& name) {
  return Loader(name).load(text);
}

LoadResult load_config_file(const std::string& path) {
  const auto fail = [&](const char* what) {
    LoadResult result;
    result.errors.push_back({path, 0, 0, std::string(what) + ": " + std::strerror(errno)});
    return result;
  };
  struct Closer {
    void operator()(FILE* f) const { std::fclose(f); }
  };
  std::unique_ptr<FILE, Closer> file(std::fopen(path.c_str(), "rb"));
  if (!file) return fail("cannot open");
  std::string text;
  char buffer[65536];
  size_t n = 0;
  while ((n = std::fread(buffer, 1, sizeof(buffer), file.get())) > 0) {
    text.append(buffer, n);
    // A configuration is a few kilobytes; this stops `-f /dev/zero` from eating memory.
    if (text.size() > kMaxFileSize) {
      LoadResult result;
      result.errors.push_back({path, 0, 0, "file too large (more than 16m)"});
      return result;
    }
  }
  if (std::ferror(file.get())) return fail("cannot read");
  return load_config_text(text, path);
}

}  // namespace weir
