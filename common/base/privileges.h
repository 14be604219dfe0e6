#pragma once
// Dropping root for the account the configuration names (global.user and
// global.group): workers and the peers agent do it once they have opened what
// needs root.

#include <string>

namespace weir {

// Switches to `user` / `group` when running as root and either is set; true when
// there is nothing to do. false with *error (one line) when it fails.
bool drop_privileges(const std::string& user, const std::string& group, std::string* error);

}  // namespace weir
