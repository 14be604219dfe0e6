// The YAML tree: ${VAR} expansion, one document, aliases.

#include <gtest/gtest.h>
#include <stdlib.h>

#include <string>
#include <string_view>

#include "common/config/config.h"
#include "common/config/load/yaml_tree.h"
#include "tests/unit/common/config/load/loader_test_util.h"

namespace weir {
namespace {

using namespace config_test;

TEST(ExpandEnv, ReplacesVariablesAndDefaults) {
  setenv("WEIR_TEST_A", "alpha", 1);
  setenv("WEIR_TEST_EMPTY", "", 1);
  unsetenv("WEIR_TEST_UNSET");
  const std::pair<const char*, const char*> cases[] = {
      {"plain", "plain"},
      {"${WEIR_TEST_A}", "alpha"},
      {"x${WEIR_TEST_A}y${WEIR_TEST_A}", "xalphayalpha"},
      {"${WEIR_TEST_UNSET:-fallback}", "fallback"},
      {"${WEIR_TEST_EMPTY:-fallback}", "fallback"},
      {"${WEIR_TEST_A:-fallback}", "alpha"},
      {"${WEIR_TEST_EMPTY}", ""},
      {"${WEIR_TEST_UNSET:-}", ""},
      {"${WEIR_TEST_UNSET:-a:-b}", "a:-b"},
      {"$${WEIR_TEST_A}", "${WEIR_TEST_A}"},
      {"$HOME $ {x} $", "$HOME $ {x} $"},
  };
  for (const auto& [in, out] : cases) {
    std::string error;
    const auto expanded = config_detail::expand_env(in, &error);
    ASSERT_TRUE(expanded.has_value()) << in << ": " << error;
    EXPECT_EQ(*expanded, out) << in;
  }
}

TEST(ExpandEnv, RejectsUnsetUnterminatedAndInvalidReferences) {
  unsetenv("WEIR_TEST_UNSET");
  const std::pair<const char*, const char*> cases[] = {
      {"${WEIR_TEST_UNSET}",
       "environment variable 'WEIR_TEST_UNSET' is not set (write ${WEIR_TEST_UNSET:-default} to "
       "give a default)"},
      {"${WEIR_TEST_A", "unterminated '${' (expected '}')"},
      {"${}", "invalid environment variable name ''"},
      {"${1X}", "invalid environment variable name '1X'"},
      {"${A-B}", "invalid environment variable name 'A-B'"},
  };
  for (const auto& [in, message] : cases) {
    std::string error;
    EXPECT_FALSE(config_detail::expand_env(in, &error).has_value()) << in;
    EXPECT_EQ(error, message) << in;
  }
}

TEST(YamlTree, SecondYamlDocumentIsAnError) {
  const LoadResult result = load(R"(frontends:
  web: {bind: "127.0.0.1:8080", default_backend: app}
backends:
  app: {servers: {s1: "127.0.0.1:9001"}}
---
global: {threads: 2}
)");
  EXPECT_TRUE(only_error(result, 5, 1, "only one YAML document is allowed"));
}

TEST(YamlTree, AliasesAreFollowed) {
  const LoadResult result = load(R"(frontends:
  web: {bind: "127.0.0.1:8080", default_backend: app}
  api: {bind: "127.0.0.1:8081", default_backend: app, timeouts: &short {client: 2s}}
  adm: {bind: "127.0.0.1:8082", default_backend: app, timeouts: *short}
backends:
  app: {servers: {s1: "127.0.0.1:9001"}}
)");
  ASSERT_TRUE(loads(result));
  EXPECT_EQ(result.config->frontends.at(2).timeouts.client, 2000);
}

TEST(YamlTree, KeepsDuplicateKeysAndPutsAnEmptyValueAtItsKey) {
  const config_detail::YamlDocument doc = config_detail::parse_yaml("a: 1\na: 2\n  # c\nb:\n", "t");
  ASSERT_TRUE(doc.errors.empty());
  ASSERT_NE(doc.root, nullptr);
  const auto& entries = doc.root->entries;
  ASSERT_EQ(entries.size(), 3U);
  EXPECT_EQ(entries[0].first->scalar, "a");
  EXPECT_EQ(entries[1].first->scalar, "a");  // the duplicate is kept, for its error
  EXPECT_EQ(entries[1].second->scalar, "2");
  EXPECT_EQ(entries[1].first->mark.line, 2);
  EXPECT_EQ(entries[2].second->kind, config_detail::YamlNode::Kind::kNull);
  EXPECT_EQ(entries[2].second->mark.line, 4);  // not the end of the file
  EXPECT_EQ(entries[2].second->mark.column, 1);
}

}  // namespace
}  // namespace weir
