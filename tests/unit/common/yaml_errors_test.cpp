// YAML syntax errors as weir.yaml's author meets them (common/yaml_errors.cpp,
// through the loader): each common mistake is one error, at the place to fix,
// saying what is wrong and what to write instead of yaml-cpp's words.

#include "common/yaml_errors.h"

#include <gtest/gtest.h>

#include <string>
#include <string_view>

#include "common/config.h"

namespace weir::config_detail {
namespace {

// The only error of `text` is at line:column and says `message` (in full).
testing::AssertionResult fails_with(std::string_view text, int line, int column,
                                    std::string_view message) {
  const LoadResult r = load_config_text(text, "weir.yaml");
  std::string all;
  for (const ConfigError& e : r.errors) all += "\n  " + e.to_string();
  if (r.config || r.errors.size() != 1) {
    return testing::AssertionFailure()
           << "expected one error, got:" << (all.empty() ? " none" : all);
  }
  const ConfigError& e = r.errors[0];
  if (e.line != line || e.column != column || e.message != message) {
    return testing::AssertionFailure()
           << "expected weir.yaml:" << line << ":" << column << ": " << message << "\n got" << all;
  }
  return testing::AssertionSuccess();
}

TEST(YamlErrors, TabInIndentation) {
  EXPECT_TRUE(fails_with("global:\n  threads: 2\n\tmaxconn: 3\n", 3, 1,
                         "a tab is not allowed for indentation; indent with spaces"));
  // Where yaml-cpp stops at the line after it ("illegal map value").
  EXPECT_TRUE(fails_with("frontends:\n  \tweb: {}\n", 2, 3,
                         "a tab is not allowed for indentation; indent with spaces"));
}

TEST(YamlErrors, FlowCollectionNeverClosed) {
  // yaml-cpp: "4:5: end of sequence flow not found".
  EXPECT_TRUE(
      fails_with("frontends:\n  web:\n    bind: [\"127.0.0.1:8080\"\n"
                 "    default_backend: app\n",
                 3, 11, "this `[` is never closed: a `]` is missing"));
  EXPECT_TRUE(
      fails_with("global: {threads: 2\n", 1, 9, "this `{` is never closed: a `}` is missing"));
  // The innermost one that is open.
  EXPECT_TRUE(fails_with("frontends:\n  web: {bind: [\"a\"\nbackends: {}\n", 2, 15,
                         "this `[` is never closed: a `]` is missing"));
}

TEST(YamlErrors, FlowCollectionClosedByTheWrongBracketOrTwice) {
  EXPECT_TRUE(fails_with("frontends:\n  web: {bind: \"a\"]}\n", 2, 18,
                         "this `]` does not close the `{` opened at line 2 column 8: write `}` "
                         "here, or close the `{` first"));
  EXPECT_TRUE(fails_with("frontends:\n  web: {bind: \"a\"}}\n", 2, 19,
                         "this `}` closes nothing: no `{` is open here"));
  EXPECT_TRUE(fails_with("global: ]\n", 1, 9, "this `]` closes nothing: no `[` is open here"));
  EXPECT_TRUE(fails_with("frontends:\n  web: [a, b], c\n", 2, 14,
                         "unexpected text after the `]` at line 2 column 13 that closes the value: "
                         "move it inside the brackets, or remove it"));
}

TEST(YamlErrors, QuoteNeverClosed) {
  // yaml-cpp accepts these, taking the rest of the file as the string.
  EXPECT_TRUE(fails_with("frontends:\n  web: \"abc\nbackends:\n  app: {}\n", 2, 8,
                         "this `\"` is never closed: the string runs to the end of the file; add "
                         "the closing `\"`"));
  EXPECT_TRUE(fails_with("global:\n  log: 'it''s\n", 2, 8,
                         "this `'` is never closed: the string runs to the end of the file; add "
                         "the closing `'`"));
  // Closed by the next string's opening quote, further down.
  EXPECT_TRUE(fails_with("global:\n  log: \"abc\n  threads: \"2\"\n", 2, 8,
                         "this `\"` is not closed on its line: the string runs on to line 3 "
                         "column 12; add the closing `\"`"));
  EXPECT_TRUE(fails_with("global:\n  log: \"a\" b\n", 2, 12,
                         "unexpected text after the closing `\"` of the string at line 2 column "
                         "8: put the whole value inside the quotes"));
}

TEST(YamlErrors, MissingSpaceAfterAColon) {
  // A syntax error on the next line for yaml-cpp ("3:10: illegal map value").
  EXPECT_TRUE(fails_with("global:\n  threads:2\n  maxconn: 3\n", 2, 11,
                         "a space is missing after ':' (write 'threads: 2')"));
  EXPECT_TRUE(
      fails_with("global:\n  threads: 2\n  user:weir\nfrontends:\n"
                 "  web: {bind: [\"127.0.0.1:1\"], default_backend: app}\n",
                 3, 8, "a space is missing after ':' (write 'user: weir')"));
  // Valid YAML that means something else: a key "user:weir", a string "threads:2".
  const LoadResult key = load_config_text("global:\n  threads: 2\n  user:weir\n", "weir.yaml");
  ASSERT_FALSE(key.errors.empty());
  EXPECT_EQ(key.errors.back().to_string(),
            "weir.yaml:3:3: unknown key 'user:weir' in global; a space is missing after ':' "
            "(write 'user: weir')");
  const LoadResult r = load_config_text("global:\n  threads:2\n", "weir.yaml");
  ASSERT_FALSE(r.errors.empty());
  EXPECT_EQ(r.errors.back().to_string(),
            "weir.yaml:2:3: global: expected a map (got 'threads:2'); a space is missing after "
            "':' (write 'threads: 2')");
  EXPECT_EQ(missing_space_hint("127.0.0.1:80"), "");
  EXPECT_EQ(missing_space_hint("http://example.com/"), "");
  EXPECT_EQ(missing_space_hint("stdout"), "");
}

TEST(YamlErrors, MissingColonOrSpaceAfterADash) {
  EXPECT_TRUE(fails_with("global\n  threads: 2\n", 1, 7,
                         "a ':' is missing after 'global' (write 'global:') to hold the lines "
                         "below it"));
  EXPECT_TRUE(fails_with("global:\n  log:\n    - stdout\n    -syslog\n", 4, 6,
                         "a space is missing after '-' (write '- syslog')"));
  EXPECT_TRUE(fails_with("global:\n  log:\n    - stdout\n    syslog\n", 4, 5,
                         "this line is not a list entry like the lines above at the same "
                         "indentation: write '- syslog'"));
}

TEST(YamlErrors, BadIndentation) {
  EXPECT_TRUE(fails_with("frontends:\n  web:\n    bind: a\n      mode: http\n", 4, 7,
                         "bad indentation: 'mode' is indented 6 spaces, deeper than 'bind' on the "
                         "line above (4), which already has a value ('a'): indent 'mode' like "
                         "'bind', or like a key further up"));
  EXPECT_TRUE(
      fails_with("global:\n  log:\n    - target: stdout\n      format: json\n"
                 "    - target: syslog\n       facility: local0\n",
                 6, 8,
                 "bad indentation: 'facility' is indented 7 spaces, deeper than 'target' "
                 "on the line above (6), which already has a value ('syslog'): indent "
                 "'facility' like 'target', or like a key further up"));
  EXPECT_TRUE(fails_with("frontends:\n  web:\n    bind: a\n  mode: http\n x: 1\n", 5, 2,
                         "bad indentation: 'x' is indented 1 space, which lines up with no key "
                         "above it (they are at 0 or 2): indent it like the key it belongs with"));
}

TEST(YamlErrors, ListAndMapMixedAtOneLevel) {
  EXPECT_TRUE(fails_with("global:\n  - a\n  b: 1\n", 3, 3,
                         "'b' is a key where the lines above at the same indentation are list "
                         "entries ('- '): a list and a map cannot be mixed at one level; write '- "
                         "b: ...' for a map inside the list, or indent it under a key"));
  EXPECT_TRUE(fails_with("global:\n  a: 1\n  - b\n", 3, 3,
                         "a list entry ('- ') where the lines above at the same indentation are "
                         "keys of a map: a map and a list cannot be mixed at one level; indent the "
                         "list under a key"));
}

TEST(YamlErrors, CollectionOnTheLineOfItsKey) {
  EXPECT_TRUE(fails_with("global: threads: 2\n", 1, 9,
                         "a map cannot start on the line of its key 'global': put 'threads: 2' on "
                         "the next line, indented under 'global', or write it as {threads: 2}"));
  EXPECT_TRUE(fails_with("global:\n  log: - stdout\n", 2, 8,
                         "a list cannot start on the line of its key 'log': put '- stdout' on the "
                         "next line, indented under 'log', or write it as [stdout]"));
}

TEST(YamlErrors, CharactersThatNeedQuotes) {
  EXPECT_TRUE(fails_with("global:\n  log: @x\n", 2, 8,
                         "a value cannot start with '@' unless it is quoted: write '@x'"));
  EXPECT_TRUE(fails_with("global:\n  log: `x # comment\n", 2, 8,
                         "a value cannot start with '`' unless it is quoted: write '`x'"));
  EXPECT_TRUE(fails_with("global:\n  pidfile: \"C:\\qnap\"\n", 2, 15,
                         "unknown escape '\\q' in a double-quoted string: write '\\\\' for a "
                         "backslash, or use single quotes, in which a backslash is an ordinary "
                         "character"));
}

TEST(YamlErrors, AliasWithoutAnchor) {
  EXPECT_TRUE(fails_with("global:\n  threads: *two\n", 2, 12,
                         "'*two' refers to no anchor: define '&two' on a value before this line"));
}

TEST(YamlErrors, DuplicateKeysAreFound) {
  // yaml-cpp keeps the first silently; the loader's tree keeps both.
  EXPECT_TRUE(
      fails_with("global:\n  threads: 2\n  threads: 3\nfrontends:\n  web:\n"
                 "    bind: [\"127.0.0.1:1\"]\n    default_backend: app\n"
                 "backends:\n  app: {servers: {s1: \"127.0.0.1:2\"}}\n",
                 3, 3, "duplicate key 'threads' in global (first defined at line 2)"));
}

TEST(YamlErrors, UnknownMistakesKeepYamlCppsWordsAndPosition) {
  const SyntaxError e = explain_syntax_error("a: b\n", {1, 4}, "some new message");
  EXPECT_EQ(e.mark.line, 1);
  EXPECT_EQ(e.mark.column, 4);
  EXPECT_EQ(e.message, "invalid YAML: some new message");
}

TEST(YamlErrors, ClosedQuotesAreNotReported) {
  EXPECT_FALSE(unclosed_quote_at("a: \"x\\\"y\"\n", {1, 4}));
  EXPECT_FALSE(unclosed_quote_at("a: 'it''s'\n", {1, 4}));
  EXPECT_FALSE(unclosed_quote_at("a: plain\n", {1, 4}));
  EXPECT_TRUE(unclosed_quote_at("a: \"x\\\"\n", {1, 4}));
}

}  // namespace
}  // namespace weir::config_detail
