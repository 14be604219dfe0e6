// check: and agent: of a backend (every server's starting point) or of a server:
// active health checks (tcp: connect, then send/expect steps; http: a request and
// the status or body expected), passive checks (observe), and agent checks.
// true/false turns them on or off; a map turns them on and sets what it names.

#include <algorithm>
#include <cstdio>
#include <regex>

#include "common/base/address.h"
#include "common/config/load/loader.h"

namespace weir::config_detail {
namespace {

using TcpStep = HealthCheckConfig::TcpStep;

// A check or agent address: an IP or name without a port ("10.0.0.5", "[::1]").
std::optional<SockAddr> probe_address(const Scope& s, const YamlNode& node,
                                      const std::string& what) {
  auto t = s.text_value(node, what, "an IP address or host name without a port");
  if (!t) return std::nullopt;
  const bool bracketed = !t->empty() && t->front() == '[';
  const size_t colons = static_cast<size_t>(std::count(t->begin(), t->end(), ':'));
  if ((bracketed && t->back() != ']') || (!bracketed && colons == 1)) {
    s.error(node.mark, what + " " + quoted(*t) +
                           " must not carry a port (set the check's or agent's port: key)");
    return std::nullopt;
  }
  // A bare IPv6 literal gets its brackets; port 1 is a placeholder replaced by
  // the probe's port.
  std::string host = (!bracketed && colons > 1) ? "[" + *t + "]" : *t;
  std::string problem;
  auto addr = parse_address(host + ":1", /*allow_wildcard=*/false, &problem);
  if (!addr) {
    s.error(node.mark, what + " " + quoted(*t) + ": " + problem);
    return std::nullopt;
  }
  return addr;
}

// The address replaces the inherited one, even when it is not valid.
template <auto Member, typename S>
bool read_probe_address(S& s, const YamlNode& v, const std::string& what) {
  s.out.*Member = probe_address(s, v, what);
  return (s.out.*Member).has_value();
}

// inter, fastinter, downinter, timeout.
template <auto Member, typename S>
bool interval(S& s, const YamlNode& v, const std::string& what) {
  const auto ms = s.duration_value(v, what);
  if (!ms) return false;
  if (*ms < 10 || *ms > 3600000) {
    s.error(v.mark, what + " must be between 10ms and 1h");
    return false;
  }
  s.out.*Member = *ms;
  return true;
}

// An ECMAScript regular expression (what std::regex compiles).
bool valid_regex(const Scope& s, const YamlNode& v, const std::string& what,
                 const std::string& text) {
  try {
    std::regex probe(text);
  } catch (const std::regex_error& ex) {
    s.error(v.mark, what + ": invalid regular expression " + quoted(text) + ": " + ex.what());
    return false;
  }
  return true;
}

// ---- the steps of a tcp check --------------------------------------------------------------

struct StepScope : Scope {
  std::vector<TcpStep>& out;
};

bool read_send(StepScope& s, const YamlNode& v, const std::string& what) {
  const auto bytes = s.text_value(v, what, "the bytes to send");
  if (!bytes) return false;
  if (bytes->empty()) s.error(v.mark, what + ": nothing to send");
  s.out.push_back({TcpStep::Kind::kSend, *bytes});
  return true;
}

bool read_expect_string(StepScope& s, const YamlNode& v, const std::string& what) {
  const auto text = s.text_value(v, what, "the text to wait for");
  if (!text) return false;
  if (text->empty()) {
    s.error(v.mark, what + ": empty (it would match anything)");
    return false;
  }
  s.out.push_back({TcpStep::Kind::kExpectString, *text});
  return true;
}

bool read_expect_regex(StepScope& s, const YamlNode& v, const std::string& what) {
  const auto text = s.text_value(v, what, "a regular expression");
  if (!text || !valid_regex(s, v, what, *text)) return false;
  s.out.push_back({TcpStep::Kind::kExpectRegex, *text});
  return true;
}

constexpr Key<StepScope> kTcpExpectKeys[] = {
    {"string", read_expect_string},
    {"regex", read_expect_regex},
};
constexpr auto kTcpExpectNames = names_of(kTcpExpectKeys);

// expect: of a tcp check or of a step: {string: ...} or {regex: ...}
bool read_tcp_expect(StepScope& s, const YamlNode& v, const std::string& what) {
  const Fields fields = s.loader.map_fields(v, what);
  s.loader.reject_unknown(fields, kTcpExpectNames, "in " + what);
  if (fields.list.size() != 1) {
    s.error(v.mark, what + " needs exactly one of string or regex");
    return false;
  }
  if (!fields.get("string") && !fields.get("regex")) {
    s.error(v.mark, what + " needs string or regex");
    return false;
  }
  StepScope expect{{s.loader, what}, s.out};
  return read_keys(kTcpExpectKeys, fields, expect);
}

constexpr Key<StepScope> kStepKeys[] = {
    {"send", read_send},
    {"expect", read_tcp_expect},
};
constexpr auto kStepNames = names_of(kStepKeys);

// sequence: [{send: ...}, {expect: {string: ...}}, ...]
void read_sequence(StepScope& s, const YamlNode& seq) {
  if (seq.kind != Kind::kSequence || seq.items.empty()) {
    s.error(seq.mark, s.label +
                          ": sequence must be a list of steps like {send: ...} or "
                          "{expect: {string: ...}}");
    return;
  }
  StepScope step{{s.loader, s.label + ": sequence step"}, s.out};
  for (const auto& item : seq.items) {
    if (item->kind != Kind::kMap) {
      s.error(item->mark, step.label + " must be {send: ...} or {expect: {string|regex: ...}}");
      continue;
    }
    const Fields fields = s.loader.map_fields(*item, step.label);
    s.loader.reject_unknown(fields, kStepNames, "in " + step.label);
    if (fields.list.size() != 1) {
      s.error(item->mark, step.label + " must hold exactly one of send or expect");
      continue;
    }
    read_keys(kStepKeys, fields, step);
  }
}

// ---- check -------------------------------------------------------------------------------

struct CheckScope : Scope {
  HealthCheckConfig& out;
};

constexpr Choice<HealthCheckConfig::Type> kCheckTypes[] = {
    {"tcp", HealthCheckConfig::Type::kTcp}, {"http", HealthCheckConfig::Type::kHttp}};
constexpr auto kCheckTypeNames = names_of(kCheckTypes);

constexpr Choice<bool> kOnMarkedDown[] = {{"shutdown_sessions", true}, {"none", false}};
constexpr auto kOnMarkedDownNames = names_of(kOnMarkedDown);

constexpr Choice<bool> kOnMarkedUp[] = {{"shutdown_backup_sessions", true}, {"none", false}};
constexpr auto kOnMarkedUpNames = names_of(kOnMarkedUp);

constexpr Choice<HealthCheckConfig::Observe> kObserve[] = {
    {"layer4", HealthCheckConfig::Observe::kLayer4},
    {"layer7", HealthCheckConfig::Observe::kLayer7},
    {"none", HealthCheckConfig::Observe::kNone}};
constexpr auto kObserveNames = names_of(kObserve);

constexpr Choice<HealthCheckConfig::OnError> kOnError[] = {
    {"fastinter", HealthCheckConfig::OnError::kFastinter},
    {"fail_check", HealthCheckConfig::OnError::kFailCheck},
    {"sudden_death", HealthCheckConfig::OnError::kSuddenDeath},
    {"mark_down", HealthCheckConfig::OnError::kMarkDown}};
constexpr auto kOnErrorNames = names_of(kOnError);

bool read_on_marked_down(CheckScope& s, const YamlNode& v, const std::string& what) {
  return choice<&HealthCheckConfig::shutdown_sessions_on_down, kOnMarkedDown>(
      s, v, what, what + ": unknown action");
}

bool read_on_marked_up(CheckScope& s, const YamlNode& v, const std::string& what) {
  return choice<&HealthCheckConfig::shutdown_backup_sessions_on_up, kOnMarkedUp>(
      s, v, what, what + ": unknown action");
}

bool read_observe(CheckScope& s, const YamlNode& v, const std::string& what) {
  return choice<&HealthCheckConfig::observe, kObserve>(s, v, what, what + ": unknown layer");
}

// error_limit and on_error tune passive checks: they need observe.
bool needs_observe(const CheckScope& s, const YamlNode& v, const std::string& what) {
  if (s.out.observe != HealthCheckConfig::Observe::kNone) return true;
  s.error(v.mark, what + " needs observe: layer4 or layer7");
  return false;
}

bool read_error_limit(CheckScope& s, const YamlNode& v, const std::string& what) {
  const bool valid = integer<&HealthCheckConfig::error_limit, 1, 1000000>(s, v, what);
  return needs_observe(s, v, what) && valid;
}

bool read_on_error(CheckScope& s, const YamlNode& v, const std::string& what) {
  const bool valid =
      choice<&HealthCheckConfig::on_error, kOnError>(s, v, what, what + ": unknown action");
  return needs_observe(s, v, what) && valid;
}

// method and host: one word; path: starts with '/'.
template <std::string HealthCheckConfig::*Member, bool kPath>
bool read_request_part(CheckScope& s, const YamlNode& v, const std::string& what) {
  const auto text = s.text_value(v, what, "a string");
  if (!text) return false;
  if (text->empty() || text->find_first_of(" \r\n\t") != std::string::npos ||
      (kPath && text->front() != '/')) {
    s.error(v.mark, what + " " + quoted(*text) +
                        (kPath ? " must start with '/' and have no spaces"
                               : " must be one word without spaces"));
    return false;
  }
  s.out.*Member = *text;
  return true;
}

bool read_headers(CheckScope& s, const YamlNode& v, const std::string& what) {
  s.out.headers.clear();
  bool ok = true;
  for (const Field& h : s.loader.map_fields(v, what, "header", "").list) {
    const auto value = s.text_value(*h.value, what + ": " + h.key, "a header value");
    if (h.key.empty() || h.key.find_first_of(" :\r\n\t") != std::string::npos) {
      s.error(h.key_node->mark, what + ": invalid header name " + quoted(h.key));
      ok = false;
    } else if (value && value->find_first_of("\r\n") != std::string::npos) {
      s.error(h.value->mark, what + ": " + h.key + ": a value cannot span lines");
      ok = false;
    } else if (value) {
      s.out.headers.emplace_back(h.key, *value);
    }
  }
  return ok;
}

// expect: of an http check: {status: 200 | 200-399, body: REGEX}
bool read_status(CheckScope& s, const YamlNode& v, const std::string& what) {
  const auto text = s.text_value(v, what, "200 or a range like 200-399");
  if (!text) return false;
  int lo = 0, hi = 0;
  char extra = 0;
  const int n = std::sscanf(text->c_str(), "%d-%d%c", &lo, &hi, &extra);
  if (n == 1) hi = lo;
  if ((n != 1 && n != 2) || lo < 100 || hi > 599 || lo > hi) {
    s.error(v.mark, what + " " + quoted(*text) + " is not a status or a range like 200-399");
    return false;
  }
  s.out.status_min = lo;
  s.out.status_max = hi;
  return true;
}

bool read_body(CheckScope& s, const YamlNode& v, const std::string& what) {
  const auto text = s.text_value(v, what, "a regular expression");
  if (!text || !valid_regex(s, v, what, *text)) return false;
  s.out.body = *text;
  return true;
}

constexpr Key<CheckScope> kHttpExpectKeys[] = {
    {"status", read_status},
    {"body", read_body},
};
constexpr auto kHttpExpectNames = names_of(kHttpExpectKeys);

// What a check does once connected: send/expect steps (tcp) or the status and
// body expected (http). expect: {string|regex: ...} is a tcp check's; {status|body:
// ...} an http one's; send and expect are the short form of a two-step sequence.
void read_exchange(CheckScope& s, const Fields& f) {
  const std::string& label = s.label;
  const bool tcp = s.out.type == HealthCheckConfig::Type::kTcp;
  const YamlNode* expect = f.get("expect");
  bool tcp_expect_form = false;
  if (expect && expect->kind == Kind::kMap) {
    for (const auto& [k, v] : expect->entries) {
      if (k->kind == Kind::kScalar && (k->scalar == "string" || k->scalar == "regex")) {
        tcp_expect_form = true;
      }
    }
  }
  if (tcp_expect_form && !tcp) {
    s.error(expect->mark, label +
                              ": expect: string and regex belong to tcp checks (an http check "
                              "expects a status or a body)");
    expect = nullptr;
  }
  if (tcp && (f.get("send") || f.get("sequence") || tcp_expect_form)) {
    const YamlNode* seq = f.get("sequence");
    if (seq && (f.get("send") || expect)) {
      s.error(seq->mark, label + ": give either sequence or send/expect, not both");
    }
    std::vector<TcpStep> steps;
    StepScope step{{s.loader, label}, steps};
    if (seq) {
      read_sequence(step, *seq);
    } else {
      if (const YamlNode* send = f.get("send")) read_send(step, *send, label + ": send");
      if (expect) read_tcp_expect(step, *expect, label + ": expect");
    }
    s.out.tcp_steps = std::move(steps);
    return;
  }
  if (!tcp) {
    for (const std::string_view key : {"send", "sequence"}) {
      if (const YamlNode* v = f.get(key)) {
        s.error(v->mark, label + ": " + std::string(key) +
                             " belongs to tcp checks (an http check sends its request)");
      }
    }
  }
  if (tcp && expect && f.get("type") && f.get("type")->scalar == "tcp") {
    s.error(expect->mark, label + ": expect: status and body need type: http");
    return;
  }
  if (!expect) return;
  const std::string what = label + ": expect";
  const Fields fields = s.loader.map_fields(*expect, what);
  s.loader.reject_unknown(fields, kHttpExpectNames, "in " + what);
  CheckScope scope{{s.loader, what}, s.out};
  read_keys(kHttpExpectKeys, fields, scope);
}

constexpr Key<CheckScope> kCheckKeys[] = {
    {"type"},  // read first, by load_check(): what the other keys mean depends on it
    {"method", read_request_part<&HealthCheckConfig::method, false>},
    {"path", read_request_part<&HealthCheckConfig::path, true>},
    {"host", read_request_part<&HealthCheckConfig::host, false>},
    {"expect"},  // read with send and sequence, after the others, by read_exchange()
    {"inter", interval<&HealthCheckConfig::inter>},
    {"fastinter", interval<&HealthCheckConfig::fastinter>},
    {"downinter", interval<&HealthCheckConfig::downinter>},
    {"timeout", interval<&HealthCheckConfig::timeout>},
    {"rise", integer<&HealthCheckConfig::rise, 1, 100>},
    {"fall", integer<&HealthCheckConfig::fall, 1, 100>},
    {"port", integer<&HealthCheckConfig::port, 1, 65535>},
    {"on_marked_down", read_on_marked_down},
    {"disable_on_404", flag<&HealthCheckConfig::disable_on_404>},
    {"on_marked_up", read_on_marked_up},
    {"headers", read_headers},
    {"address", read_probe_address<&HealthCheckConfig::addr>},
    {"send"},
    {"sequence"},
    {"observe", read_observe},
    {"error_limit", read_error_limit},  // after observe
    {"on_error", read_on_error},        // after observe
};
constexpr auto kCheckNames = names_of(kCheckKeys);

// ---- agent -------------------------------------------------------------------------------

struct AgentScope : Scope {
  AgentConfig& out;
};

bool read_agent_send(AgentScope& s, const YamlNode& v, const std::string& what) {
  auto bytes = s.text_value(v, what, "the bytes to send");
  if (bytes) s.out.send = std::move(*bytes);
  return bytes.has_value();
}

constexpr Key<AgentScope> kAgentKeys[] = {
    {"port", integer<&AgentConfig::port, 1, 65535>},
    {"address", read_probe_address<&AgentConfig::addr>},
    {"inter", interval<&AgentConfig::inter>},
    {"timeout", interval<&AgentConfig::timeout>},
    {"send", read_agent_send},
};
constexpr auto kAgentNames = names_of(kAgentKeys);

constexpr KeyList kLists[] = {
    {"check", kKeysOf, kCheckNames},
    {"check.expect_http", kKeysOf, kHttpExpectNames},
    {"check.expect_tcp", kKeysOf, kTcpExpectNames},
    {"check.sequence_step", kKeysOf, kStepNames},
    {"check.type", kValuesOf, kCheckTypeNames},
    {"check.on_marked_down", kValuesOf, kOnMarkedDownNames},
    {"check.on_marked_up", kValuesOf, kOnMarkedUpNames},
    {"check.observe", kValuesOf, kObserveNames},
    {"check.on_error", kValuesOf, kOnErrorNames},
    {"agent", kKeysOf, kAgentNames},
};
const Registrar<KeyList> kRegisterChecks(kLists);

}  // namespace

void Loader::load_check(const YamlNode& node, const std::string& label, HealthCheckConfig& out) {
  if (node.kind != Kind::kMap) {
    if (auto b = bool_value(node, label)) out.enabled = *b;
    return;
  }
  out.enabled = true;
  const Fields fields = map_fields(node, label);
  reject_unknown(fields, kCheckNames, "in " + label);
  if (const YamlNode* v = fields.get("type")) {
    if (auto t = text_value(*v, label + ": type", one_of(kCheckTypeNames))) {
      if (const auto type = find_choice(kCheckTypes, *t)) {
        out.type = *type;
        // A backend's tcp sequence does not carry into an http check.
        if (out.type == HealthCheckConfig::Type::kHttp) out.tcp_steps.clear();
      } else {
        error(v->mark, label + ": unknown type " + quoted(*t) + " (expected " +
                           one_of(kCheckTypeNames) + ")");
      }
    }
  }
  CheckScope scope{{*this, label}, out};
  read_keys(kCheckKeys, fields, scope);
  read_exchange(scope, fields);
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
  const Fields fields = map_fields(node, label);
  reject_unknown(fields, kAgentNames, "in " + label);
  if (!fields.get("port") && out.port == 0) {
    error(node.mark, label + " needs a port (where the agent listens)");
  }
  AgentScope scope{{*this, label}, out};
  read_keys(kAgentKeys, fields, scope);
}

}  // namespace weir::config_detail
