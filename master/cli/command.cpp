#include "master/cli/command.h"

#include <vector>

#include "common/base/command_line.h"

namespace weir {

std::string master_help() {
  std::vector<const MasterCommand*> commands = Registry<MasterCommand>::instance().sorted();
  std::string out;
  for (const MasterCommand* c : commands) out += c->help;
  return out;
}

std::optional<std::string> run_master_command(Master& m, CliClient& client,
                                              std::string_view command) {
  std::vector<std::string_view> words = command_line::split_words(command);
  if (words.empty()) return std::string();
  for (const MasterCommand* c : Registry<MasterCommand>::instance().entries()) {
    bool match = c->name == "@" ? words[0][0] == '@'
                                : command_line::match_name(c->name, words) == words.size();
    if (match) return c->run(m, client, command);
  }
  return "Unknown command: '" + std::string(command) + "'. Type 'help' for the list of commands.";
}

namespace {

constexpr MasterCommand kCliCommands[] = {
    {"help", "help               this list\n",
     [](Master&, CliClient&, std::string_view) -> std::optional<std::string> {
       return master_help();
     }},
};
const Registrar<MasterCommand> kRegisterCliCommands(kCliCommands);

}  // namespace
}  // namespace weir
