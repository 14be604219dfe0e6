// YAML syntax errors as weir.yaml's author meets them (common/config/load/yaml_errors.cpp,
// through the loader): each common mistake is one error, at the place to fix,
// saying what is wrong and what to write instead of yaml-cpp's words.

#include "common/config/load/yaml_errors.h"

#include <gtest/gtest.h>

#include <string>
#include <string_view>

#include "common/config/config.h"

namespace weir::config_detail {
namespace {

struct Mistake {
  const char* what;
  std::string_view text;
  int line;
  int column;
  std::string_view message;  // in full
};

// What yaml-cpp says for each, in the comments, where it differs in place or words.
constexpr Mistake kMistakes[] = {
    {"tab in the indentation (yaml-cpp: 3:1 illegal tab when looking for indentation)",
     "global:\n  threads: 2\n\tmaxconn: 3\n", 3, 1,
     "a tab is not allowed for indentation; indent with spaces"},
    {"tab after spaces (yaml-cpp: 2:5 illegal map value)", "frontends:\n  \tweb: {}\n", 2, 3,
     "a tab is not allowed for indentation; indent with spaces"},
    {"[ never closed (yaml-cpp: 4:5 end of sequence flow not found)",
     "frontends:\n  web:\n    bind: [\"127.0.0.1:8080\"\n    default_backend: app\n", 3, 11,
     "this `[` is never closed: a `]` is missing"},
    {"{ never closed (yaml-cpp: 2:1 end of map flow not found)", "global: {threads: 2\n", 1, 9,
     "this `{` is never closed: a `}` is missing"},
    {"the innermost of two never closed", "frontends:\n  web: {bind: [\"a\"\nbackends: {}\n", 2, 15,
     "this `[` is never closed: a `]` is missing"},
    {"closed by the wrong bracket (yaml-cpp: illegal flow end)",
     "frontends:\n  web: {bind: \"a\"]}\n", 2, 18,
     "this `]` does not close the `{` opened at line 2 column 8: write `}` here, or close the `{` "
     "first"},
    {"closed twice", "frontends:\n  web: {bind: \"a\"}}\n", 2, 19,
     "this `}` closes nothing: no `{` is open here"},
    {"closing bracket alone", "global: ]\n", 1, 9, "this `]` closes nothing: no `[` is open here"},
    {"text after a closing bracket (yaml-cpp: end of map not found)",
     "frontends:\n  web: [a, b], c\n", 2, 14,
     "unexpected text after the `]` at line 2 column 13 that closes the value: move it inside the "
     "brackets, or remove it"},
    {"\" never closed (yaml-cpp accepts it: the rest of the file is the string)",
     "frontends:\n  web: \"abc\nbackends:\n  app: {}\n", 2, 8,
     "this `\"` is never closed: the string runs to the end of the file; add the closing `\"`"},
    {"' never closed, after a doubled quote", "global:\n  log: 'it''s\n", 2, 8,
     "this `'` is never closed: the string runs to the end of the file; add the closing `'`"},
    {"\" closed by the next string's opening quote", "global:\n  log: \"abc\n  threads: \"2\"\n", 2,
     8,
     "this `\"` is not closed on its line: the string runs on to line 3 column 12; add the "
     "closing `\"`"},
    {"text after a closing quote (yaml-cpp: end of map not found)", "global:\n  log: \"a\" b\n", 2,
     12,
     "unexpected text after the closing `\"` of the string at line 2 column 8: put the whole "
     "value inside the quotes"},
    {"no space after ':' (yaml-cpp: 3:10 illegal map value, on the next line)",
     "global:\n  threads:2\n  maxconn: 3\n", 2, 11,
     "a space is missing after ':' (write 'threads: 2')"},
    {"no space after ':' before a section",
     "global:\n  threads: 2\n  user:weir\nfrontends:\n"
     "  web: {bind: [\"127.0.0.1:1\"], default_backend: app}\n",
     3, 8, "a space is missing after ':' (write 'user: weir')"},
    {"no ':' after a key (yaml-cpp: 2:10 illegal map value)", "global\n  threads: 2\n", 1, 7,
     "a ':' is missing after 'global' (write 'global:') to hold the lines below it"},
    {"no space after '-'", "global:\n  log:\n    - stdout\n    -syslog\n", 4, 6,
     "a space is missing after '-' (write '- syslog')"},
    {"no '-' among list entries", "global:\n  log:\n    - stdout\n    syslog\n", 4, 5,
     "this line is not a list entry like the lines above at the same indentation: write '- "
     "syslog'"},
    {"deeper than a key that has its value (yaml-cpp: 4:11 illegal map value)",
     "frontends:\n  web:\n    bind: a\n      mode: http\n", 4, 7,
     "bad indentation: 'mode' is indented 6 spaces, deeper than 'bind' on the line above (4), "
     "which already has a value ('a'): indent 'mode' like 'bind', or like a key further up"},
    {"deeper than a key of a list entry",
     "global:\n  log:\n    - target: stdout\n      format: json\n    - target: syslog\n"
     "       facility: local0\n",
     6, 8,
     "bad indentation: 'facility' is indented 7 spaces, deeper than 'target' on the line above "
     "(6), which already has a value ('syslog'): indent 'facility' like 'target', or like a key "
     "further up"},
    {"lined up with nothing (yaml-cpp: end of map not found)",
     "frontends:\n  web:\n    bind: a\n  mode: http\n x: 1\n", 5, 2,
     "bad indentation: 'x' is indented 1 space, which lines up with no key above it (they are at "
     "0 or 2): indent it like the key it belongs with"},
    {"a key among list entries", "global:\n  - a\n  b: 1\n", 3, 3,
     "'b' is a key where the lines above at the same indentation are list entries ('- '): a list "
     "and a map cannot be mixed at one level; write '- b: ...' for a map inside the list, or "
     "indent it under a key"},
    {"a list entry among keys", "global:\n  a: 1\n  - b\n", 3, 3,
     "a list entry ('- ') where the lines above at the same indentation are keys of a map: a map "
     "and a list cannot be mixed at one level; indent the list under a key"},
    {"a map on the line of its key (yaml-cpp: illegal map value)", "global: threads: 2\n", 1, 9,
     "a map cannot start on the line of its key 'global': put 'threads: 2' on the next line, "
     "indented under 'global', or write it as {threads: 2}"},
    {"a list on the line of its key (yaml-cpp: illegal block entry)", "global:\n  log: - stdout\n",
     2, 8,
     "a list cannot start on the line of its key 'log': put '- stdout' on the next line, indented "
     "under 'log', or write it as [stdout]"},
    {"a reserved character (yaml-cpp: unknown token)", "global:\n  log: @x\n", 2, 8,
     "a value cannot start with '@' unless it is quoted: write '@x'"},
    {"a backquote before a comment", "global:\n  log: `x # comment\n", 2, 8,
     "a value cannot start with '`' unless it is quoted: write '`x'"},
    {"an unknown escape", "global:\n  pidfile: \"C:\\qnap\"\n", 2, 15,
     "unknown escape '\\q' in a double-quoted string: write '\\\\' for a backslash, or use single "
     "quotes, in which a backslash is an ordinary character"},
    {"an alias without anchor", "global:\n  threads: *two\n", 2, 12,
     "'*two' refers to no anchor: define '&two' on a value before this line"},
    {"a duplicate key (yaml-cpp keeps the first silently)",
     "global:\n  threads: 2\n  threads: 3\nfrontends:\n  web:\n"
     "    bind: [\"127.0.0.1:1\"]\n    default_backend: app\n"
     "backends:\n  app: {servers: {s1: \"127.0.0.1:2\"}}\n",
     3, 3, "duplicate key 'threads' in global (first defined at line 2)"},
};

TEST(YamlErrors, EachCommonMistakeIsOneErrorAtThePlaceToFix) {
  for (const Mistake& m : kMistakes) {
    SCOPED_TRACE(m.what);
    const LoadResult r = load_config_text(m.text, "weir.yaml");
    EXPECT_FALSE(r.config);
    ASSERT_EQ(r.errors.size(), 1U) << (r.errors.empty() ? "" : r.errors.back().to_string());
    EXPECT_EQ(r.errors[0].to_string(), "weir.yaml:" + std::to_string(m.line) + ":" +
                                           std::to_string(m.column) + ": " +
                                           std::string(m.message));
  }
}

TEST(YamlErrors, ValidYamlWithAColonWithoutItsSpaceGetsTheHint) {
  // A key "user:weir" and a string "threads:2" for YAML; the schema refuses them.
  const LoadResult key = load_config_text("global:\n  threads: 2\n  user:weir\n", "weir.yaml");
  ASSERT_FALSE(key.errors.empty());
  EXPECT_EQ(key.errors.back().to_string(),
            "weir.yaml:3:3: unknown key 'user:weir' in global; a space is missing after ':' "
            "(write 'user: weir')");
  const LoadResult value = load_config_text("global:\n  threads:2\n", "weir.yaml");
  ASSERT_FALSE(value.errors.empty());
  EXPECT_EQ(value.errors.back().to_string(),
            "weir.yaml:2:3: global: expected a map (got 'threads:2'); a space is missing after "
            "':' (write 'threads: 2')");
  EXPECT_EQ(missing_space_hint("127.0.0.1:80"), "");
  EXPECT_EQ(missing_space_hint("http://example.com/"), "");
  EXPECT_EQ(missing_space_hint("stdout"), "");
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
