// The actions of tcp_request rules: accept, reject (connection and content
// rules) and {use_backend: NAME} (content rules of a frontend). Each ends the list.

#include "worker/rules/actions.h"

namespace weir::rule_actions {
namespace {

bool run_accept(const TcpRule&, TcpRuleRun&) {
  return true;
}

// A rejected connection is closed (counted in dreq; a content rule logs PR).
bool run_reject(const TcpRule&, TcpRuleRun&) {
  return false;
}

bool read_use_backend(TcpActionScope& s, const YamlNode& v, const std::string& what) {
  auto name = s.string_value(v, what);
  if (!name) return false;
  s.rule.backend = *name;
  config_detail::note_rule_backend(s.loader, s.frontend_index, *name, v.mark);
  return true;
}

bool run_use_backend(const TcpRule& r, TcpRuleRun& run) {
  *run.backend = r.backend;
  return true;
}

constexpr TcpActionDef kTcpActions[] = {
    {"accept", false, {}, false, nullptr, run_accept},
    {"reject", false, {}, false, nullptr, run_reject},
    {"use_backend", true, "NAME", true, read_use_backend, run_use_backend},
};
const Registrar<TcpActionDef> kRegister(kTcpActions);

}  // namespace
}  // namespace weir::rule_actions
