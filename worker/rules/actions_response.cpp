// The http actions of responses only: set_status.

#include "worker/rules/actions.h"

namespace weir::rule_actions {
namespace {

// ---- set_status: STATUS or {status, reason} ---------------------------------------------

constexpr std::string_view kSetStatusKeys[] = {"status", "reason"};

bool read_set_status(ActionScope& s, const YamlNode& v, const std::string& what) {
  if (v.kind != Kind::kMap) {
    auto n = s.int_value(v, what, 100, 599);
    if (!n) return false;
    s.rule.status = static_cast<int>(*n);
    return true;
  }
  const Fields o = s.options(kSetStatusKeys);
  if (!s.need(o, "status") || !s.read_status(o, 200, 100, 599)) return false;
  if (const YamlNode* r = o.get("reason")) {
    auto t = s.text_value(*r, what + ": reason", "a reason phrase");
    if (!t) return false;
    if (!s.one_line(*t, *r, "reason")) return false;
    s.rule.reason = *t;
  }
  return true;
}

void run_set_status(const HttpRule& r, RuleRun& run) {
  // A status without a body (204, 304) for a response that has one, or the
  // reverse, would make the client read the message differently from weir and
  // the server, and a 1xx is no final response: such changes are ignored.
  const int now = run.edited() ? run.edited()->status : run.head.status;
  const auto bodiless = [](int s) { return s == 204 || s == 304; };
  if (now < 200 || r.status < 200 || bodiless(now) != bodiless(r.status)) return;
  EditableHead& e = run.editable();
  e.status = r.status;
  e.reason = r.reason;
  run.ctx.status = r.status;
}

constexpr HttpActionDef kResponseActions[] = {
    {"set_status", kInResponse, false, read_set_status, run_set_status},
};
const Registrar<HttpActionDef> kRegister(kResponseActions);

constexpr KeyList kLists[] = {{"rule.set_status", kKeysOf, kSetStatusKeys}};
const Registrar<KeyList> kRegisterOptions(kLists);

}  // namespace
}  // namespace weir::rule_actions
