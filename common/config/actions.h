#pragma once
// The actions of http_request / http_response and tcp_request rules. No action
// is listed here: each family of actions is declared and registered by its own
// file under worker/rules/ (actions_*.cpp; common/base/registry.h), beside the
// code that reads its value and the code that runs it. The loader looks names up
// in these registries (load/http_actions.cpp, load/rules.cpp), so adding an
// action is one file, or one line in a family's table.
//
// A definition names what runs it through types only declared here (RuleRun,
// TcpRuleRun: worker/rules/rules.h), so that common does not depend on worker.

#include <string>
#include <string_view>

namespace weir {

struct HttpRule;
struct TcpRule;
struct RuleRun;     // worker/rules/rules.h: one list of http rules being run
struct TcpRuleRun;  // worker/rules/rules.h: one list of tcp_request rules being run

namespace config_detail {
struct YamlNode;
struct ActionScope;     // load/action_scope.h: an http action's value being read
struct TcpActionScope;  // load/action_scope.h: a tcp_request action's value being read
}  // namespace config_detail

// Where an http action may be used (bits of HttpActionDef::where).
enum HttpActionPlace : unsigned {
  kInRequest = 1,     // http_request rules
  kInResponse = 2,    // http_response rules
  kFrontendOnly = 4,  // only a frontend's http_request (a backend's run after the choice)
  kInBoth = kInRequest | kInResponse,  // request and response rules
};

// One action of http_request / http_response rules (a registry entry).
struct HttpActionDef {
  std::string_view name;  // the key of the rule's map ({deny: ...})
  unsigned where;         // HttpActionPlace bits
  bool terminal;          // ends the list when it runs (the first terminal rule wins)
  // Reads the action's value into s.rule; reports what is wrong (file:line:column)
  // and returns false when the value is not valid. `what` names the action.
  bool (*parse)(config_detail::ActionScope& s, const config_detail::YamlNode& value,
                const std::string& what);
  // Does what the rule says; a terminal action fills run.verdict.
  void (*run)(const HttpRule& rule, RuleRun& run);

  bool allowed(bool response, bool frontend) const {
    if (response) return (where & kInResponse) != 0;
    return (where & kInRequest) != 0 && (frontend || (where & kFrontendOnly) == 0);
  }
};

// One action of tcp_request rules (a registry entry). Written as a word
// (`connection: reject`) or, when the action takes a value, as a map of one key
// (`content: {use_backend: NAME}`).
struct TcpActionDef {
  std::string_view name;        // the word, or the key of the map form
  bool takes_value;             // written {name: VALUE}; parse reads VALUE
  std::string_view value_name;  // takes_value: how messages write VALUE ("NAME")
  bool content_only;            // only `content:` rules of a frontend (it routes)
  // Reads VALUE (takes_value only; else null) into s.rule, as HttpActionDef::parse.
  bool (*parse)(config_detail::TcpActionScope& s, const config_detail::YamlNode& value,
                const std::string& what);
  // A terminal action ends the list: true lets the connection go on. A
  // non-terminal one (track, sc_inc_gpc, ...) returns true and the list goes on.
  bool (*run)(const TcpRule& rule, TcpRuleRun& run);
  bool terminal = true;
};

}  // namespace weir
