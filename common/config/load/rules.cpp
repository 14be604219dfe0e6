// The rule keys of a frontend or a backend: acls (named conditions), the lists of
// http_request and http_response rules (their actions: http_actions.cpp),
// tcp_request rules, and errorfiles (weir's own error pages).

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

#include "common/base/registry.h"
#include "common/config/load/action_scope.h"

namespace weir::config_detail {
namespace {

// A tcp_request rule: connection or content (one action), and an optional if or
// unless. Read by read_tcp_request() in that order; each rule stops at its first
// mistake.
constexpr std::string_view kTcpRuleKeys[] = {"connection", "content", "if", "unless"};

// The registered tcp_request actions (worker/rules/actions_tcp.cpp) written as a
// word (`reject`), or as a map of one key ({use_backend: NAME}): sorted.
std::vector<std::string_view> tcp_actions(bool takes_value) {
  std::vector<std::string_view> names;
  for (const TcpActionDef* a : Registry<TcpActionDef>::instance().sorted()) {
    if (a->takes_value == takes_value) names.push_back(a->name);
  }
  return names;
}
const TcpActionDef* find_tcp_action(std::string_view name, bool takes_value) {
  const TcpActionDef* a = Registry<TcpActionDef>::instance().find(name);
  return a && a->takes_value == takes_value ? a : nullptr;
}

// The statuses weir answers by itself, whose page errorfiles may replace.
constexpr std::string_view kErrorStatuses[] = {"400", "401", "403", "404", "405", "407",
                                               "408", "410", "413", "425", "429", "500",
                                               "501", "502", "503", "504"};

constexpr KeyList kLists[] = {
    {"tcp_request", kKeysOf, kTcpRuleKeys},
    {"tcp_request.content", kKeysOf, {}, [] { return tcp_actions(true); }},
    {"tcp_request.action", kValuesOf, {}, [] { return tcp_actions(false); }},
    {"errorfiles", kValuesOf, kErrorStatuses},
};
const Registrar<KeyList> kRegisterRules(kLists);

bool http_mode(const RulesScope& s) {
  return !s.mode_known || s.mode == Mode::kHttp;
}

bool read_http_rules(RulesScope& s, const YamlNode& v, const std::string& what, bool response) {
  if (!http_mode(s)) {
    s.error(v.mark, what + " needs http mode (use tcp_request in tcp mode)");
    return false;
  }
  if (v.kind != Kind::kSequence) {
    s.error(v.mark, what + " must be a list of rules");
    return false;
  }
  std::vector<HttpRule>& rules = response ? s.rules.http_response : s.rules.http_request;
  size_t n = 0;
  for (const auto& item : v.items) {
    ++n;
    auto rule = load_http_rule(s.loader, *item, what + " rule " + std::to_string(n), response,
                               s.frontend_index, s.acls);
    if (rule) rules.push_back(std::move(*rule));
  }
  return true;
}

// One tcp_request rule; nullopt after reporting what is wrong.
std::optional<TcpRule> load_tcp_rule(RulesScope& s, const YamlNode& item, const std::string& what) {
  const bool frontend = s.frontend_index >= 0;
  if (item.kind != Kind::kMap) {
    s.error(item.mark, what + " must be a map such as {connection: reject, if: blocked}");
    return std::nullopt;
  }
  const Fields f = s.loader.map_fields(item, what);
  s.loader.reject_unknown(f, kTcpRuleKeys, "in " + what);
  const YamlNode* conn = f.get("connection");
  const YamlNode* content = f.get("content");
  if ((conn != nullptr) == (content != nullptr)) {
    s.error(item.mark, what + " needs exactly one of connection or content");
    return std::nullopt;
  }
  TcpRule rule;
  rule.mark = item.mark;
  rule.stage = conn ? TcpRule::Stage::kConnection : TcpRule::Stage::kContent;
  const YamlNode& a = conn ? *conn : *content;
  // A backend's content rules run once it is chosen.
  if (content && s.mode_known && s.mode == Mode::kHttp) {
    s.error(content->mark, what + ": content rules are for tcp mode (use http_request)");
    return std::nullopt;
  }
  // The action: a word, or a map of one action that takes a value.
  const TcpActionDef* def = nullptr;
  const YamlNode* value = nullptr;
  if (a.kind == Kind::kMap) {
    const Fields ao = s.loader.map_fields(a, what);
    s.loader.reject_unknown(ao, tcp_actions(true), "in " + what);
    const Field* first = nullptr;
    for (const Field& fl : ao.list) {
      const TcpActionDef* d = find_tcp_action(fl.key, true);
      if (!d) continue;
      if (first) {
        s.error(fl.key_node->mark, what + ": one action per rule (" + first->key + " and " +
                                       fl.key + "); write two rules");
        return std::nullopt;
      }
      first = &fl;
      def = d;
      value = fl.value;
    }
    if (!def) {
      s.error(a.mark, what + ": a map of one action, such as {" +
                          std::string(tcp_actions(true).front()) + ": ...}");
      return std::nullopt;
    }
  } else {
    const std::vector<std::string_view> words = tcp_actions(false);
    auto t = s.text_value(a, what, one_of(words));
    if (!t) return std::nullopt;
    def = find_tcp_action(*t, false);
    if (const TcpActionDef* m = find_tcp_action(*t, true); !def && m) {
      s.error(a.mark, what + ": " + *t + " is written as a map: {" + *t + ": " +
                          std::string(m->value_name) + "}" +
                          (m->content_only ? " in a content rule of a frontend" : ""));
      return std::nullopt;
    }
    if (!def) {
      std::string forms = join(words);
      for (std::string_view m : tcp_actions(true)) {
        const TcpActionDef* d = find_tcp_action(m, true);
        forms += ", or {" + std::string(m) + ": " + std::string(d->value_name) + "}" +
                 (d->content_only ? " for content rules" : "");
      }
      s.error(a.mark, what + ": unknown action " + quoted(*t) + " (" + forms + ")");
      return std::nullopt;
    }
  }
  if (def->content_only && (!content || !frontend)) {
    s.error(a.mark, what + ": " + std::string(def->name) + " is a content rule of a frontend");
    return std::nullopt;
  }
  rule.def = def;
  if (value) {
    TcpActionScope scope{{s.loader, what}, rule, s.frontend_index};
    if (!def->parse(scope, *value, what + ": " + std::string(def->name))) return std::nullopt;
  }
  const YamlNode* cif = f.get("if");
  const YamlNode* cunless = f.get("unless");
  if (cif && cunless) {
    s.error(cunless->mark, what + ": give if or unless, not both");
    return std::nullopt;
  }
  if (cif || cunless) {
    const YamlNode& cn = cif ? *cif : *cunless;
    rule.unless = cunless != nullptr;
    rule.cond = s.loader.condition_value(cn, what + ": " + (cif ? "if" : "unless"), s.acls, false);
    if (!rule.cond) return std::nullopt;
    if (rule.cond->uses_http()) {
      s.error(cn.mark, what +
                           ": tcp_request rules see the connection only (src, dst, src_port, "
                           "dst_port, ssl_* and req_ssl_* fetches, var); HTTP fetches belong to "
                           "http_request");
      return std::nullopt;
    }
  }
  return rule;
}

}  // namespace

bool read_acls(RulesScope& s, const YamlNode& v, const std::string& what) {
  for (const Field& a : s.loader.map_fields(v, what, "condition", " in " + s.label).list) {
    const std::string acl = what + ": " + a.key;
    if (!valid_name(a.key) || a.key == "and" || a.key == "or" || a.key == "not") {
      s.error(a.key_node->mark, acl +
                                    ": invalid condition name (use letters, digits, '_', '.' "
                                    "and '-'; not and/or/not)");
      continue;
    }
    // A failed acl stays defined (as null), so that rules naming it do not
    // report a second, wrong error ("unknown condition").
    s.acls[a.key] = nullptr;
    auto t = s.text_value(*a.value, acl, "a test such as \"path_beg /api/\"");
    if (!t) continue;
    cond::ParseError pe;
    auto test = cond::parse_test(*t, s.loader.files, &pe);
    if (!test) {
      s.error(s.loader.mark_inside(*a.value, pe.offset),
              acl + ": " + pe.message + " (at position " + std::to_string(pe.offset + 1) + " of " +
                  quoted(*t) + ")");
      continue;
    }
    s.acls[a.key] = std::move(test);
  }
  return true;
}

bool read_http_request(RulesScope& s, const YamlNode& v, const std::string& what) {
  return read_http_rules(s, v, what, /*response=*/false);
}

bool read_http_response(RulesScope& s, const YamlNode& v, const std::string& what) {
  return read_http_rules(s, v, what, /*response=*/true);
}

bool read_tcp_request(RulesScope& s, const YamlNode& v, const std::string& what) {
  if (v.kind != Kind::kSequence) {
    s.error(v.mark, what + " must be a list of rules");
    return false;
  }
  size_t n = 0;
  for (const auto& item : v.items) {
    ++n;
    if (auto rule = load_tcp_rule(s, *item, what + " rule " + std::to_string(n))) {
      s.rules.tcp_request.push_back(std::move(*rule));
    }
  }
  return true;
}

bool read_errorfiles(RulesScope& s, const YamlNode& v, const std::string& what) {
  if (!http_mode(s)) {
    s.error(v.mark, what + " needs http mode");
    return false;
  }
  for (const Field& e : s.loader.map_fields(v, what, "status", " in " + s.label).list) {
    const std::string page = what + ": " + e.key;
    if (!contains(kErrorStatuses, e.key)) {
      s.error(e.key_node->mark,
              page + ": not a status weir answers by itself (" + join(kErrorStatuses) + ")");
      continue;
    }
    auto path = s.text_value(*e.value, page, "the path of an HTML file");
    if (!path) continue;
    std::ifstream in(*path, std::ios::binary);
    if (!in) {
      s.error(e.value->mark, page + ": cannot read " + *path + ": " + std::strerror(errno));
      continue;
    }
    std::ostringstream ss;
    ss << in.rdbuf();
    s.rules.errorfiles[std::atoi(e.key.c_str())] = ss.str();
  }
  return true;
}

}  // namespace weir::config_detail
