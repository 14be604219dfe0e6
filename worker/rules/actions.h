#pragma once
// What every file of rule actions (worker/rules/actions_*.cpp) uses: the
// definition types and their registry, the loader's ActionScope to read an
// action's value, and the run context (RuleRun). Each file defines its actions
// in namespace weir::rule_actions and registers them with one line:
//
//   constexpr HttpActionDef kHeaderActions[] = {{"set_header", kInBoth, false, ...}, ...};
//   const Registrar<HttpActionDef> kRegister(kHeaderActions);

#include <string>
#include <string_view>

#include "common/base/registry.h"
#include "common/config/actions.h"
#include "common/config/load/action_scope.h"
#include "worker/rules/message_parts.h"
#include "worker/rules/rules.h"

namespace weir::rule_actions {

using config_detail::ActionScope;
using config_detail::Fields;
using config_detail::KeyList;
using config_detail::kKeysOf;
using config_detail::quoted;
using config_detail::TcpActionScope;
using config_detail::YamlNode;
using Kind = YamlNode::Kind;

}  // namespace weir::rule_actions
