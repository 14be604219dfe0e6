#pragma once
// A master-CLI command, declared in a table beside the function of the master
// that it calls, and registered with one line (common/base/registry.h):
//
//   constexpr MasterCommand kStateFileCommands[] = {
//       {"show state-file", "show state-file    global.state_file: ...\n", show_state_file},
//   };
//   const Registrar<MasterCommand> kRegisterStateFileCommands(kStateFileCommands);
//
// `help` lists the help lines of every registered command, sorted by name.

#include <optional>
#include <string>
#include <string_view>

#include "common/base/registry.h"

namespace weir {

class Master;
class CliClient;

struct MasterCommand {
  // Its words ("show proc"): a command runs when its words are exactly these.
  // "@" stands for every command whose first word starts with '@'.
  std::string_view name;
  // Its lines in `help`, each ending with '\n'.
  std::string_view help;
  // The answer to `command` (the whole command, its name included), or nullopt
  // when the answer comes later through MasterCli::answer().
  std::optional<std::string> (*run)(Master& m, CliClient& client, std::string_view command);
};

// Runs one command (trimmed, not empty) of a master-CLI client.
std::optional<std::string> run_master_command(Master& m, CliClient& client,
                                              std::string_view command);

// The answer to `help`.
std::string master_help();

}  // namespace weir
