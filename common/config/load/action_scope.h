#pragma once
// What the parse function of a rule action (common/config/actions.h) works with:
// the loader's scope (errors with file:line:column, the value readers), the rule
// being filled and where it is. The action files under worker/rules/ include
// this header to read their values the way every section of weir.yaml is read.

#include <span>
#include <string>
#include <string_view>

#include "common/config/load/loader.h"

namespace weir::config_detail {

// One http action's value being read: `label` is the rule's label and the
// action (its `what`).
struct ActionScope : Scope {
  HttpRule& rule;
  bool response;       // an http_response rule
  int frontend_index;  // the frontend whose rule this is; -1: a backend
  const YamlNode& value;

  // The map form of the value ({} for a bare `deny:`), its keys checked.
  Fields options(std::span<const std::string_view> keys) const;
  // An option the action cannot do without.
  const YamlNode* need(const Fields& o, std::string_view key) const;
  // `status` of the options (def when absent), between lo and hi.
  bool read_status(const Fields& o, int def, int lo, int hi) const;
  // Whether `text` (read from `node`) is one line, as a header or a status line
  // needs; else reports "<label>: <subject> cannot span lines".
  bool one_line(const std::string& text, const YamlNode& node, std::string_view subject) const;
};

// One tcp_request action's value being read.
struct TcpActionScope : Scope {
  TcpRule& rule;
  int frontend_index;  // -1: a backend
};

// A constant backend name that a rule of frontend `frontend_index` routes to;
// checked, as default_backend is, once every backend is known.
void note_rule_backend(Loader& loader, int frontend_index, const std::string& name,
                       const SourceMark& mark);

}  // namespace weir::config_detail
