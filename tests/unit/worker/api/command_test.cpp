// The runtime API's commands as the modules register them: every command is
// there once, the longest name wins, and `help` lists them sorted with their
// levels.

#include "worker/api/command.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "common/base/command_line.h"

namespace weir {
namespace {

std::string run_name(std::string_view line, size_t* consumed) {
  std::vector<std::string_view> words = command_line::split_words(line);
  const ApiCommand* c = find_api_command(words, consumed);
  return c ? std::string(c->name) : "";
}

// The commands of doc/management.md's table of runtime-API commands, each with
// the lowest level its rows give: a command's name is the words of a `code` span up to its
// first argument.
std::map<std::string, std::string> documented_commands() {
  std::ifstream in(std::string(WEIR_SOURCE_DIR) + "/doc/management.md");
  std::map<std::string, std::string> out;
  std::string line;
  bool in_section = false;
  const std::vector<std::string> levels = {"user", "operator", "admin"};
  auto rank = [&levels](const std::string& l) {
    return std::find(levels.begin(), levels.end(), l) - levels.begin();
  };
  bool in_table = false;
  while (std::getline(in, line)) {
    if (line.rfind("## ", 0) == 0) in_section = line == "## Runtime API";
    if (in_section && line == "| command | level | answer |") in_table = true;
    if (line.rfind("|", 0) != 0) in_table = false;
    if (!in_table || line.rfind("| `", 0) != 0) continue;
    size_t cell_end = line.find(" | ", 2);
    std::string cell = line.substr(2, cell_end - 2);
    size_t level_end = line.find(" |", cell_end + 3);
    std::string level = line.substr(cell_end + 3, level_end - cell_end - 3);
    for (size_t open = cell.find('`'); open != std::string::npos;
         open = cell.find('`', cell.find('`', open + 1) + 1)) {
      std::string code = cell.substr(open + 1, cell.find('`', open + 1) - open - 1);
      std::string name;
      for (std::string_view word : command_line::split_words(code)) {
        if (word[0] == '<' || word[0] == '[' || word.find('|') != std::string_view::npos) break;
        name += (name.empty() ? "" : " ") + std::string(word);
      }
      auto it = out.find(name);
      if (it == out.end() || rank(level) < rank(it->second)) out[name] = level;
    }
  }
  return out;
}

TEST(ApiCommands, EveryDocumentedCommandIsRegisteredWithItsLevel) {
  std::map<std::string, std::string> registered;
  for (const ApiCommand* c : Registry<ApiCommand>::instance().entries()) {
    EXPECT_NE(c->run, nullptr) << c->name;
    EXPECT_FALSE(c->usage.empty()) << c->name;
    registered[std::string(c->name)] = api_level_name(c->level);
  }
  std::map<std::string, std::string> documented = documented_commands();
  EXPECT_GE(documented.size(), 16u);  // the table was found and read
  EXPECT_EQ(registered, documented);
}

TEST(ApiCommands, TheLongestNameWins) {
  size_t consumed = 0;
  EXPECT_EQ(run_name("shutdown sessions server app/s1", &consumed), "shutdown sessions server");
  EXPECT_EQ(consumed, 3u);
  EXPECT_EQ(run_name("shutdown session 12", &consumed), "shutdown session");
  EXPECT_EQ(consumed, 2u);
  EXPECT_EQ(run_name("show servers state app", &consumed), "show servers state");
  EXPECT_EQ(run_name("show stat json", &consumed), "show stat");
  EXPECT_EQ(run_name("show  ssl\tcerts", &consumed), "show ssl certs");
  EXPECT_EQ(run_name("set maxconn frontend fe 5", &consumed), "set maxconn frontend");
  EXPECT_EQ(run_name("set server app/s1 state drain", &consumed), "set server");
  EXPECT_EQ(consumed, 2u);
  EXPECT_EQ(run_name("show", &consumed), "");
  EXPECT_EQ(consumed, 0u);
  EXPECT_EQ(run_name("show servers", &consumed), "");
  EXPECT_EQ(run_name("frobnicate", &consumed), "");
}

TEST(ApiCommands, HelpListsEveryCommandSortedByNameWithItsLevel) {
  std::string help = api_help();
  ASSERT_EQ(help.rfind("Commands, with the level each needs (user < operator < admin):\n", 0), 0u);
  std::vector<const ApiCommand*> commands = Registry<ApiCommand>::instance().sorted();
  size_t pos = help.find('\n') + 1;
  for (const ApiCommand* c : commands) {
    std::string line = "  " + std::string(c->usage) + "  [" + api_level_name(c->level) + "]\n";
    EXPECT_EQ(help.compare(pos, line.size(), line), 0) << "expected: " << line << "in:\n" << help;
    pos += line.size();
  }
  EXPECT_EQ(pos, help.size());
  // Sorted: the first commands are add server and del server, the last the shutdowns.
  EXPECT_EQ(help.find("  add server"), help.find('\n') + 1) << help;
  EXPECT_LT(help.find("  show stat"), help.find("  shutdown session <id>")) << help;
}

}  // namespace
}  // namespace weir
