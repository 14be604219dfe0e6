#include "common/base/command_line.h"

#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <vector>

namespace weir::command_line {
namespace {

using Words = std::vector<std::string_view>;

TEST(CommandLine, TakeLineStripsTheNewlineAndACarriageReturn) {
  std::string pending = "show info\r\nhelp\nshow st";
  EXPECT_EQ(take_line(&pending, false), "show info");
  EXPECT_EQ(take_line(&pending, false), "help");
  // An incomplete line waits for the rest...
  EXPECT_EQ(take_line(&pending, false), std::nullopt);
  EXPECT_EQ(pending, "show st");
  pending += "at";
  // ...unless the client has finished sending: then it is the last line.
  EXPECT_EQ(take_line(&pending, true), "show stat");
  EXPECT_EQ(pending, "");
  EXPECT_EQ(take_line(&pending, true), std::nullopt);
}

TEST(CommandLine, AnEmptyLineIsALine) {
  std::string pending = "\n\r\nquit";
  EXPECT_EQ(take_line(&pending, false), "");
  EXPECT_EQ(take_line(&pending, false), "");
  EXPECT_EQ(take_line(&pending, false), std::nullopt);
}

TEST(CommandLine, SemicolonsSeparateCommandsTrimmedOfBlanks) {
  EXPECT_EQ(split_commands("help; show info"), (Words{"help", "show info"}));
  EXPECT_EQ(split_commands(" \tshow  stat json \t"), (Words{"show  stat json"}));
  // Empty commands are dropped, wherever they are.
  EXPECT_EQ(split_commands(";;help;  ;show proc;"), (Words{"help", "show proc"}));
  EXPECT_EQ(split_commands(""), Words{});
  EXPECT_EQ(split_commands(" ; \t"), Words{});
  // The master CLI forwards what follows "@N " to a worker: kept whole.
  EXPECT_EQ(split_commands("@1 show servers state app; show proc"),
            (Words{"@1 show servers state app", "show proc"}));
}

TEST(CommandLine, WordsAreSeparatedBySpacesAndTabs) {
  EXPECT_EQ(split_words("set server app/s1  state\tdrain"),
            (Words{"set", "server", "app/s1", "state", "drain"}));
  EXPECT_EQ(split_words("  "), Words{});
  EXPECT_EQ(split_words("help"), Words{"help"});
}

TEST(CommandLine, QuotesAndBackslashesAreOrdinaryCharacters) {
  // No quoting: a quoted argument with a blank is two words, quotes included.
  EXPECT_EQ(split_words(R"(show stat "my backend")"), (Words{"show", "stat", "\"my", "backend\""}));
  EXPECT_EQ(split_words(R"(show stat a\ b)"), (Words{"show", "stat", "a\\", "b"}));
  // And a ';' always ends a command, in quotes or after a backslash too.
  EXPECT_EQ(split_commands(R"(show stat "a;b")"), (Words{"show stat \"a", "b\""}));
  EXPECT_EQ(split_commands(R"(show stat a\;b)"), (Words{"show stat a\\", "b"}));
}

TEST(CommandLine, MatchNameCountsTheWordsOfAMatchingName) {
  Words words = split_words("shutdown sessions server app/s1");
  EXPECT_EQ(match_name("shutdown sessions server", words), 3u);
  EXPECT_EQ(match_name("shutdown session", words), 0u);  // "sessions" is another word
  EXPECT_EQ(match_name("shutdown", words), 1u);
  EXPECT_EQ(match_name("show sess", words), 0u);
  // A name longer than the command does not match.
  EXPECT_EQ(match_name("show servers state", split_words("show servers")), 0u);
  EXPECT_EQ(match_name("", words), 0u);
}

}  // namespace
}  // namespace weir::command_line
