// The rules of http_request and http_response lists. A rule is a map with one
// action and an optional if or unless: {deny: {status: 403}, if: blocked}. The
// actions are registered by their files under worker/rules/ (actions_*.cpp, an
// HttpActionDef each: where it may be used and the function that reads its
// value); this file finds the rule's action, checks where it is, reads the
// condition and hands the value to the action. A rule stops at its first mistake.

#include <algorithm>

#include "common/base/registry.h"
#include "common/config/load/action_scope.h"

namespace weir::config_detail {

Fields ActionScope::options(std::span<const std::string_view> keys) const {
  if (value.kind != Kind::kMap) return {};
  Fields o = loader.map_fields(value, label);
  loader.reject_unknown(o, keys, "in " + label);
  return o;
}

const YamlNode* ActionScope::need(const Fields& o, std::string_view key) const {
  const YamlNode* n = o.get(key);
  if (!n) error(value.mark, label + " needs " + std::string(key));
  return n;
}

bool ActionScope::read_status(const Fields& o, int def, int lo, int hi) const {
  rule.status = def;
  if (const YamlNode* st = o.get("status")) {
    auto n = int_value(*st, label + ": status", lo, hi);
    if (!n) return false;
    rule.status = static_cast<int>(*n);
  }
  return true;
}

bool ActionScope::one_line(const std::string& text, const YamlNode& node,
                           std::string_view subject) const {
  if (text.find_first_of("\r\n") == std::string::npos) return true;
  error(node.mark, label + ": " + std::string(subject) + " cannot span lines");
  return false;
}

void note_rule_backend(Loader& loader, int frontend_index, const std::string& name,
                       const SourceMark& mark) {
  loader.rule_backends.push_back({static_cast<size_t>(frontend_index), name, mark});
}

namespace {

// The keys of a rule where actions are allowed as (response, frontend) say: the
// registered actions, sorted, then if and unless.
std::vector<std::string_view> rule_keys(bool response, bool frontend) {
  std::vector<std::string_view> keys;
  for (const HttpActionDef* a : Registry<HttpActionDef>::instance().sorted()) {
    if (a->allowed(response, frontend)) keys.push_back(a->name);
  }
  keys.push_back("if");
  keys.push_back("unless");
  return keys;
}

constexpr KeyList kLists[] = {
    {"frontend.http_request", kKeysOf, {}, [] { return rule_keys(false, true); }},
    {"backend.http_request", kKeysOf, {}, [] { return rule_keys(false, false); }},
    {"http_response", kKeysOf, {}, [] { return rule_keys(true, true); }},
};
const Registrar<KeyList> kRegisterRuleKeys(kLists);

}  // namespace

std::optional<HttpRule> load_http_rule(Loader& loader, const YamlNode& node,
                                       const std::string& label, bool response, int frontend_index,
                                       const cond::NamedTests& acls) {
  const bool frontend = frontend_index >= 0;
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
  for (const Field& fl : f.list) {
    if (fl.key == "if" || fl.key == "unless") continue;
    const HttpActionDef* a = Registry<HttpActionDef>::instance().find(fl.key);
    if (!a) {
      loader.error(fl.key_node->mark, label + ": unknown action " + quoted(fl.key) +
                                          suggestion(fl.key, rule_keys(response, frontend)));
      return std::nullopt;
    }
    if (!a->allowed(response, frontend)) {
      loader.error(fl.key_node->mark,
                   label + ": " + fl.key +
                       (!response && (a->where & kInRequest) != 0
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
    rule.def = a;
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
  ActionScope scope{{loader, what}, rule, response, frontend_index, *action->value};
  if (!rule.def->parse(scope, *action->value, what)) return std::nullopt;
  return rule;
}

}  // namespace weir::config_detail
