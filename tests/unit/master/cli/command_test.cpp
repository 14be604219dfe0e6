// The master CLI's commands as the master's files register them: each of
// doc/management.md's commands is there, and `help` is built from them.

#include "master/cli/command.h"

#include <gtest/gtest.h>

#include <fstream>
#include <set>
#include <string>
#include <vector>

namespace weir {
namespace {

TEST(MasterCommands, EveryDocumentedCommandIsRegistered) {
  // doc/management.md's table of master-CLI commands: `help`, `show proc`, ...
  // and `@<generation> <command>` (registered as "@").
  std::ifstream in(std::string(WEIR_SOURCE_DIR) + "/doc/management.md");
  std::set<std::string> documented;
  std::string line;
  bool in_table = false;
  while (std::getline(in, line)) {
    if (line == "| command | answer |") in_table = true;
    if (line.rfind("|", 0) != 0) in_table = false;
    if (!in_table || line.rfind("| `", 0) != 0) continue;
    std::string name = line.substr(3, line.find('`', 3) - 3);
    documented.insert(name[0] == '@' ? "@" : name);
  }
  std::set<std::string> registered;
  for (const MasterCommand* c : Registry<MasterCommand>::instance().entries()) {
    registered.insert(std::string(c->name));
    EXPECT_NE(c->run, nullptr) << c->name;
    ASSERT_FALSE(c->help.empty()) << c->name;
    EXPECT_EQ(c->help.back(), '\n') << c->name;
  }
  EXPECT_EQ(registered, (std::set<std::string>{"@", "help", "reload", "show proc",
                                               "show startup-logs", "show state-file"}));
  EXPECT_EQ(registered, documented);
}

TEST(MasterCommands, HelpIsTheHelpLinesSortedByName) {
  std::vector<const MasterCommand*> commands = Registry<MasterCommand>::instance().sorted();
  std::string expected;
  for (const MasterCommand* c : commands) expected += c->help;
  EXPECT_EQ(master_help(), expected);
  // Each line starts with the command, its description aligned after it.
  EXPECT_EQ(master_help().rfind("@<gen> <command>   run a runtime-API command", 0), 0u);
  EXPECT_NE(master_help().find("\nshow proc          the master and its workers"),
            std::string::npos);
}

}  // namespace
}  // namespace weir
