// The actions of http_request and http_response rules. A rule is a map with one
// action and an optional if or unless: {deny: {status: 403}, if: blocked}. Each
// action is a line of kActions (where it may be used and the function that reads
// its value); its options are read by that function, as they depend on each other
// (body or file; one of location, prefix or scheme). A rule stops at its first
// mistake.

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "common/config/load/loader.h"

namespace weir::config_detail {
namespace {

using A = HttpRule::Action;

// Where an action may be used.
enum Where : unsigned {
  kRequest = 1,       // http_request rules
  kResponse = 2,      // http_response rules
  kFrontendOnly = 4,  // only a frontend's http_request (a backend's run after the choice)
};

// One action's value being read: `label` is the rule's label and the action
// (its `what`).
struct ActionScope : Scope {
  HttpRule& rule;
  bool response;
  const YamlNode& value;

  // The map form of the value ({} for a bare `deny:`), its keys checked.
  Fields options(std::span<const std::string_view> keys) const {
    if (value.kind != Kind::kMap) return {};
    Fields o = loader.map_fields(value, label);
    loader.reject_unknown(o, keys, "in " + label);
    return o;
  }
  // An option the action cannot do without.
  const YamlNode* need(const Fields& o, std::string_view key) const {
    const YamlNode* n = o.get(key);
    if (!n) error(value.mark, label + " needs " + std::string(key));
    return n;
  }
};

struct ActionDef {
  std::string_view name;
  A action;
  unsigned where;
  bool (*parse)(ActionScope& s, const YamlNode& v, const std::string& what);
};

// RFC 9110 token character (header names, methods).
bool is_tchar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

// A header the rule changes; weir keeps the message framing as it is.
bool header_name(ActionScope& s, const YamlNode& n, const std::string& what) {
  auto t = s.text_value(n, what, "a header name");
  if (!t) return false;
  bool ok = !t->empty();
  for (char c : *t) ok = ok && is_tchar(c);
  if (!ok) {
    s.error(n.mark, what + ": invalid header name " + quoted(*t));
    return false;
  }
  std::string lower_name = *t;
  for (char& c : lower_name) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
  if (lower_name == "content-length" || lower_name == "transfer-encoding") {
    // Changing the framing would make weir and the server disagree on where
    // the message ends (request smuggling).
    s.error(n.mark, what + ": " + *t + " frames the message; weir keeps it as it is");
    return false;
  }
  s.rule.name = *t;
  return true;
}

bool read_status(ActionScope& s, const Fields& o, int def, int lo, int hi) {
  s.rule.status = def;
  if (const YamlNode* st = o.get("status")) {
    auto n = s.int_value(*st, s.label + ": status", lo, hi);
    if (!n) return false;
    s.rule.status = static_cast<int>(*n);
  }
  return true;
}

// body, file, content_type of deny, return and tarpit.
bool read_body(ActionScope& s, const Fields& o) {
  const std::string& what = s.label;
  const YamlNode* b = o.get("body");
  const YamlNode* file = o.get("file");
  if (b && file) {
    s.error(file->mark, what + ": give body or file, not both");
    return false;
  }
  if (b) {
    if (auto t = s.text_value(*b, what + ": body", "the response body")) s.rule.body = *t;
  }
  if (file) {
    auto path = s.text_value(*file, what + ": file", "a file path");
    if (!path) return false;
    std::ifstream in(*path, std::ios::binary);
    if (!in) {
      s.error(file->mark, what + ": cannot read " + *path + ": " + std::strerror(errno));
      return false;
    }
    std::ostringstream ss;
    ss << in.rdbuf();
    s.rule.body = ss.str();
  }
  if (const YamlNode* ct = o.get("content_type")) {
    if (auto t = s.text_value(*ct, what + ": content_type", "a media type such as text/plain")) {
      if (t->find_first_of("\r\n") != std::string::npos) {
        s.error(ct->mark, what + ": content_type cannot span lines");
        return false;
      }
      s.rule.content_type = *t;
    }
  }
  return true;
}

// allow: true
bool read_allow(ActionScope& s, const YamlNode& v, const std::string& what) {
  if (v.kind != Kind::kNull && !(v.kind == Kind::kScalar && v.scalar == "true")) {
    s.error(v.mark, what + ": write allow: true");
    return false;
  }
  return true;
}

// deny, return, tarpit: true or {status, body | file, content_type, delay (tarpit)}
constexpr std::string_view kAnswerKeys[] = {"status", "body", "file", "content_type", "delay"};

bool read_answer(ActionScope& s, const YamlNode& v, const std::string& what) {
  if (v.kind != Kind::kMap && v.kind != Kind::kNull &&
      !(v.kind == Kind::kScalar && v.scalar == "true")) {
    s.error(v.mark, what + ": a map such as {status: 403, body: \"...\"}, or true");
    return false;
  }
  const A action = s.rule.action;
  const Fields o = s.options(kAnswerKeys);
  const int def = action == A::kDeny ? (s.response ? 502 : 403) : action == A::kTarpit ? 500 : 200;
  if (!read_status(s, o, def, action == A::kReturn ? 200 : 400, 599) || !read_body(s, o)) {
    return false;
  }
  if (const YamlNode* d = o.get("delay")) {
    if (action != A::kTarpit) {
      s.error(d->mark, what + ": delay belongs to tarpit");
      return false;
    }
    auto ms = s.duration_value(*d, what + ": delay");
    if (!ms) return false;
    s.rule.delay = *ms;
  } else if (action == A::kTarpit) {
    s.rule.delay = 5000;
  }
  return true;
}

// redirect: {location | prefix | scheme, code, drop_query}
constexpr std::string_view kRedirectKeys[] = {"location", "prefix", "scheme", "code", "drop_query"};

bool read_redirect(ActionScope& s, const YamlNode& v, const std::string& what) {
  if (v.kind != Kind::kMap) {
    s.error(v.mark, what + ": a map such as {scheme: https, code: 301}");
    return false;
  }
  const Fields o = s.options(kRedirectKeys);
  int kinds = 0;
  for (auto [key, kind] :
       {std::pair<std::string_view, HttpRule::Redirect>{"location", HttpRule::Redirect::kLocation},
        {"prefix", HttpRule::Redirect::kPrefix},
        {"scheme", HttpRule::Redirect::kScheme}}) {
    if (const YamlNode* n = o.get(key)) {
      ++kinds;
      s.rule.redirect = kind;
      auto tpl = s.loader.template_value(*n, what + ": " + std::string(key));
      if (!tpl) return false;
      s.rule.value = std::move(*tpl);
    }
  }
  if (kinds != 1) {
    s.error(v.mark, what + " needs exactly one of location, prefix or scheme");
    return false;
  }
  s.rule.status = 302;
  if (const YamlNode* c = o.get("code")) {
    auto n = s.int_value(*c, what + ": code", 301, 308);
    if (!n) return false;
    if (*n != 301 && *n != 302 && *n != 303 && *n != 307 && *n != 308) {
      s.error(c->mark, what + ": code must be 301, 302, 303, 307 or 308");
      return false;
    }
    s.rule.status = static_cast<int>(*n);
  }
  if (const YamlNode* d = o.get("drop_query")) {
    auto b = s.bool_value(*d, what + ": drop_query");
    if (!b) return false;
    s.rule.drop_query = *b;
  }
  return true;
}

// set_header, add_header: {name, value}
constexpr std::string_view kHeaderKeys[] = {"name", "value"};

bool read_set_header(ActionScope& s, const YamlNode& v, const std::string& what) {
  if (v.kind != Kind::kMap) {
    s.error(v.mark, what + ": a map {name: X-Header, value: \"...\"}");
    return false;
  }
  const Fields o = s.options(kHeaderKeys);
  const YamlNode* n = s.need(o, "name");
  const YamlNode* val = s.need(o, "value");
  if (!n || !val || !header_name(s, *n, what + ": name")) return false;
  auto tpl = s.loader.template_value(*val, what + ": value");
  if (!tpl) return false;
  if (tpl->text.find_first_of("\r\n") != std::string::npos) {
    s.error(val->mark, what + ": a header value cannot span lines");
    return false;
  }
  s.rule.value = std::move(*tpl);
  return true;
}

// del_header: NAME or {name}
constexpr std::string_view kDelHeaderKeys[] = {"name"};

bool read_del_header(ActionScope& s, const YamlNode& v, const std::string& what) {
  if (v.kind != Kind::kMap) return header_name(s, v, what);
  const Fields o = s.options(kDelHeaderKeys);
  const YamlNode* n = s.need(o, "name");
  return n && header_name(s, *n, what + ": name");
}

// replace_header, replace_value: {name, match: REGEX, replace}
constexpr std::string_view kReplaceKeys[] = {"name", "match", "replace"};

bool read_replace(ActionScope& s, const YamlNode& v, const std::string& what) {
  if (v.kind != Kind::kMap) {
    s.error(v.mark, what + ": a map {name: ..., match: REGEX, replace: \"...\\\\1...\"}");
    return false;
  }
  const Fields o = s.options(kReplaceKeys);
  const YamlNode* n = s.need(o, "name");
  const YamlNode* m = s.need(o, "match");
  const YamlNode* r = s.need(o, "replace");
  if (!n || !m || !r || !header_name(s, *n, what + ": name")) return false;
  auto re = s.text_value(*m, what + ": match", "a regular expression");
  auto rp = s.text_value(*r, what + ": replace", "the replacement");
  if (!re || !rp) return false;
  std::string err;
  s.rule.match = cond::Regex::compile(*re, false, &err);
  if (!s.rule.match) {
    s.error(m->mark, what + ": match: " + err);
    return false;
  }
  if (rp->find_first_of("\r\n") != std::string::npos) {
    s.error(r->mark, what + ": a header value cannot span lines");
    return false;
  }
  s.rule.replacement = *rp;
  return true;
}

// set_path, set_query, set_method, set_uri: a template
bool read_request_part(ActionScope& s, const YamlNode& v, const std::string& what) {
  auto tpl = s.loader.template_value(v, what);
  if (!tpl) return false;
  const A action = s.rule.action;
  const std::string& t = tpl->text;
  bool bad = t.find_first_of(" \t\r\n") != std::string::npos;
  if (action == A::kSetPath && tpl->is_constant() && (t.empty() || t[0] != '/')) bad = true;
  if (action == A::kSetMethod && tpl->is_constant()) {
    for (char c : t) bad = bad || !is_tchar(c);
    bad = bad || t.empty();
  }
  if (bad) {
    s.error(v.mark, what + ": " + quoted(t) +
                        (action == A::kSetPath     ? " must start with '/' and have no spaces"
                         : action == A::kSetMethod ? " is not a method (a token such as GET)"
                                                   : " cannot contain spaces"));
    return false;
  }
  s.rule.value = std::move(*tpl);
  return true;
}

// set_var: {name: txn.NAME, value}
constexpr std::string_view kSetVarKeys[] = {"name", "value"};

bool read_set_var(ActionScope& s, const YamlNode& v, const std::string& what) {
  if (v.kind != Kind::kMap) {
    s.error(v.mark, what + ": a map {name: txn.user, value: \"%[hdr(x-user)]\"}");
    return false;
  }
  const Fields o = s.options(kSetVarKeys);
  const YamlNode* n = s.need(o, "name");
  const YamlNode* val = s.need(o, "value");
  if (!n || !val) return false;
  auto name = s.text_value(*n, what + ": name", "txn.<name>");
  if (!name) return false;
  if (name->rfind("txn.", 0) != 0 || name->size() == 4 || !valid_name(name->substr(4))) {
    s.error(n->mark, what + ": name " + quoted(*name) +
                         " must be txn.<name> (letters, digits, '_', '.' and '-')");
    return false;
  }
  s.rule.name = *name;
  auto tpl = s.loader.template_value(*val, what + ": value");
  if (!tpl) return false;
  s.rule.value = std::move(*tpl);
  return true;
}

// capture: a template or {value, len}
constexpr std::string_view kCaptureKeys[] = {"value", "len"};

bool read_capture(ActionScope& s, const YamlNode& v, const std::string& what) {
  const YamlNode* val = &v;
  if (v.kind == Kind::kMap) {
    const Fields o = s.options(kCaptureKeys);
    val = s.need(o, "value");
    if (!val) return false;
    if (const YamlNode* l = o.get("len")) {
      auto n = s.int_value(*l, what + ": len", 1, 65536);
      if (!n) return false;
      s.rule.capture_len = static_cast<size_t>(*n);
    }
  }
  auto tpl = s.loader.template_value(*val, what + (val == &v ? "" : ": value"));
  if (!tpl) return false;
  s.rule.value = std::move(*tpl);
  return true;
}

// use_backend: a backend name, or a template computing one per request
bool read_use_backend(ActionScope& s, const YamlNode& v, const std::string& what) {
  auto tpl = s.loader.template_value(v, what);
  if (!tpl) return false;
  if (tpl->is_constant()) {
    s.rule.backend = tpl->text;
    if (!valid_name(s.rule.backend)) {
      s.error(v.mark, what + ": invalid backend name " + quoted(s.rule.backend));
      return false;
    }
  }
  s.rule.value = std::move(*tpl);
  return true;
}

// set_status: STATUS or {status, reason}
constexpr std::string_view kSetStatusKeys[] = {"status", "reason"};

bool read_set_status(ActionScope& s, const YamlNode& v, const std::string& what) {
  if (v.kind != Kind::kMap) {
    auto n = s.int_value(v, what, 100, 599);
    if (!n) return false;
    s.rule.status = static_cast<int>(*n);
    return true;
  }
  const Fields o = s.options(kSetStatusKeys);
  if (!s.need(o, "status") || !read_status(s, o, 200, 100, 599)) return false;
  if (const YamlNode* r = o.get("reason")) {
    auto t = s.text_value(*r, what + ": reason", "a reason phrase");
    if (!t) return false;
    if (t->find_first_of("\r\n") != std::string::npos) {
      s.error(r->mark, what + ": reason cannot span lines");
      return false;
    }
    s.rule.reason = *t;
  }
  return true;
}

constexpr unsigned kBoth = kRequest | kResponse;
constexpr ActionDef kActions[] = {
    {"allow", A::kAllow, kBoth, read_allow},
    {"deny", A::kDeny, kBoth, read_answer},
    {"tarpit", A::kTarpit, kRequest, read_answer},
    {"return", A::kReturn, kBoth, read_answer},
    {"redirect", A::kRedirect, kRequest, read_redirect},
    {"set_header", A::kSetHeader, kBoth, read_set_header},
    {"add_header", A::kAddHeader, kBoth, read_set_header},
    {"del_header", A::kDelHeader, kBoth, read_del_header},
    {"replace_header", A::kReplaceHeader, kBoth, read_replace},
    {"replace_value", A::kReplaceValue, kBoth, read_replace},
    {"set_path", A::kSetPath, kRequest, read_request_part},
    {"set_query", A::kSetQuery, kRequest, read_request_part},
    {"set_method", A::kSetMethod, kRequest, read_request_part},
    {"set_uri", A::kSetUri, kRequest, read_request_part},
    {"set_var", A::kSetVar, kBoth, read_set_var},
    {"capture", A::kCapture, kRequest, read_capture},
    {"use_backend", A::kUseBackend, kRequest | kFrontendOnly, read_use_backend},
    {"set_status", A::kSetStatus, kResponse, read_set_status},
};

constexpr bool allowed(const ActionDef& a, bool response, bool frontend) {
  if (response) return (a.where & kResponse) != 0;
  return (a.where & kRequest) != 0 && (frontend || (a.where & kFrontendOnly) == 0);
}

// The keys of a rule where actions are allowed as (response, frontend) say: the
// actions in table order, then if and unless.
template <bool kResponseRule, bool kFrontendRule>
constexpr auto rule_keys() {
  constexpr size_t n = [] {
    size_t count = 2;
    for (const ActionDef& a : kActions) count += allowed(a, kResponseRule, kFrontendRule) ? 1 : 0;
    return count;
  }();
  std::array<std::string_view, n> keys{};
  size_t i = 0;
  for (const ActionDef& a : kActions) {
    if (allowed(a, kResponseRule, kFrontendRule)) keys[i++] = a.name;
  }
  keys[i++] = "if";
  keys[i++] = "unless";
  return keys;
}
constexpr auto kFrontendRequestKeys = rule_keys<false, true>();
constexpr auto kBackendRequestKeys = rule_keys<false, false>();
constexpr auto kResponseKeys = rule_keys<true, true>();
static_assert(kResponseKeys == rule_keys<true, false>());

constexpr KeyList kLists[] = {
    {"frontend.http_request", kKeysOf, kFrontendRequestKeys},
    {"backend.http_request", kKeysOf, kBackendRequestKeys},
    {"http_response", kKeysOf, kResponseKeys},
    {"rule.deny", kKeysOf, kAnswerKeys},
    {"rule.redirect", kKeysOf, kRedirectKeys},
    {"rule.set_header", kKeysOf, kHeaderKeys},
    {"rule.del_header", kKeysOf, kDelHeaderKeys},
    {"rule.replace_header", kKeysOf, kReplaceKeys},
    {"rule.set_var", kKeysOf, kSetVarKeys},
    {"rule.capture", kKeysOf, kCaptureKeys},
    {"rule.set_status", kKeysOf, kSetStatusKeys},
};
const Registrar<KeyList> kRegisterActions(kLists);

}  // namespace

std::optional<HttpRule> load_http_rule(Loader& loader, const YamlNode& node,
                                       const std::string& label, bool response, bool frontend,
                                       const cond::NamedTests& acls) {
  if (node.kind != Kind::kMap) {
    loader.error(node.mark, label +
                                " must be a map with one action and an optional if/unless, "
                                "such as {deny: {status: 403}, if: blocked}");
    return std::nullopt;
  }
  const Fields f = loader.map_fields(node, label);
  HttpRule rule;
  rule.mark = node.mark;
  const Field* action = nullptr;
  const ActionDef* def = nullptr;
  for (const Field& fl : f.list) {
    if (fl.key == "if" || fl.key == "unless") continue;
    const ActionDef* a = nullptr;
    for (const ActionDef& candidate : kActions) {
      if (candidate.name == fl.key) a = &candidate;
    }
    if (!a) {
      const std::span<const std::string_view> keys =
          response   ? std::span<const std::string_view>(kResponseKeys)
          : frontend ? std::span<const std::string_view>(kFrontendRequestKeys)
                     : std::span<const std::string_view>(kBackendRequestKeys);
      loader.error(fl.key_node->mark,
                   label + ": unknown action " + quoted(fl.key) + suggestion(fl.key, keys));
      return std::nullopt;
    }
    if (!allowed(*a, response, frontend)) {
      loader.error(fl.key_node->mark,
                   label + ": " + fl.key +
                       (a->action == A::kUseBackend && !response
                            ? " belongs to a frontend's http_request (a backend's rules run "
                              "after the backend was chosen)"
                            : std::string(" is not a ") + (response ? "response" : "request") +
                                  " action here"));
      return std::nullopt;
    }
    if (action) {
      loader.error(fl.key_node->mark, label + ": one action per rule (" + action->key + " and " +
                                          fl.key + "); write two rules");
      return std::nullopt;
    }
    action = &fl;
    def = a;
    rule.action = a->action;
  }
  if (!action) {
    loader.error(node.mark, label + ": no action (allow, deny, return, redirect, set_header, ...)");
    return std::nullopt;
  }
  const YamlNode* cif = f.get("if");
  const YamlNode* cunless = f.get("unless");
  if (cif && cunless) {
    loader.error(cunless->mark, label + ": give if or unless, not both");
    return std::nullopt;
  }
  if (cif || cunless) {
    rule.unless = cunless != nullptr;
    rule.cond = loader.condition_value(cif ? *cif : *cunless,
                                       label + ": " + (cif ? "if" : "unless"), acls, response);
    if (!rule.cond) return std::nullopt;
  }
  const std::string what = label + ": " + action->key;
  ActionScope scope{{loader, what}, rule, response, *action->value};
  if (!def->parse(scope, *action->value, what)) return std::nullopt;
  return rule;
}

}  // namespace weir::config_detail
