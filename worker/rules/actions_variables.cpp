// The http actions that keep values for later: set_var (txn.NAME, for
// conditions, values and logs) and capture (the access log's %hr).

#include "worker/rules/actions.h"

namespace weir::rule_actions {
namespace {

// ---- set_var: {name: txn.NAME, value} ---------------------------------------------------

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
  if (name->rfind("txn.", 0) != 0 || name->size() == 4 ||
      !config_detail::valid_name(name->substr(4))) {
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

void run_set_var(const HttpRule& r, RuleRun& run) {
  std::string v = r.value.render(run.ctx);
  bool set = false;
  for (auto& [k, val] : *run.vars) {
    if (k == r.name) {
      val = v;
      set = true;
    }
  }
  if (!set) run.vars->emplace_back(r.name, std::move(v));
}

// ---- capture: a template or {value, len} ------------------------------------------------

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

void run_capture(const HttpRule& r, RuleRun& run) {
  std::string v = r.value.render(run.ctx);
  if (v.size() > r.capture_len) v.resize(r.capture_len);
  run.captures->push_back(std::move(v));
}

constexpr HttpActionDef kVariableActions[] = {
    {"set_var", kInBoth, false, read_set_var, run_set_var},
    {"capture", kInRequest, false, read_capture, run_capture},
};
const Registrar<HttpActionDef> kRegister(kVariableActions);

constexpr KeyList kLists[] = {
    {"rule.set_var", kKeysOf, kSetVarKeys},
    {"rule.capture", kKeysOf, kCaptureKeys},
};
const Registrar<KeyList> kRegisterOptions(kLists);

}  // namespace
}  // namespace weir::rule_actions
