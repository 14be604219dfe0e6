// Typed values (integers, booleans, durations, sizes and their ranges), map entries (duplicate and
// merge keys) and "did you mean", read through the loader.

#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <vector>

#include "common/config/config.h"
#include "common/config/load/value_reader.h"
#include "tests/unit/common/config/load/loader_test_util.h"

namespace weir {
namespace {

using namespace config_test;

TEST(ClosestMatch, SuggestsOnlyNearCandidates) {
  const std::string_view keys[] = {"maxconn", "mode", "timeouts", "log"};
  EXPECT_EQ(config_detail::closest_match("maxconns", keys), "maxconn");
  EXPECT_EQ(config_detail::closest_match("mdoe", keys), "mode");
  EXPECT_EQ(config_detail::closest_match("timeout", keys), "timeouts");
  EXPECT_EQ(config_detail::closest_match("colour", keys), "");
  EXPECT_EQ(config_detail::closest_match("x", keys), "");  // "log" is 3 edits away
  EXPECT_EQ(config_detail::edit_distance("kitten", "sitting"), 3U);
  EXPECT_EQ(config_detail::edit_distance("", "abc"), 3U);
}

TEST(ConfigValues, WrongTypes) {
  const LoadResult result = load(R"(global:
  threads: two
  tune: 16k
defaults:
  forwardfor: yes
frontends:
  web:
    bind: "127.0.0.1:8080"
    default_backend: [app]
    log: 1
backends:
  app:
    servers: ["127.0.0.1:9001"]
)");
  ASSERT_EQ(result.errors.size(), 6U) << describe(result.errors);
  EXPECT_TRUE(has_error(result, 2, 12, "global: threads: expected an integer (got 'two')"));
  EXPECT_TRUE(has_error(result, 3, 9, "global.tune: expected a map (got '16k')"));
  EXPECT_TRUE(has_error(result, 5, 15, "defaults: forwardfor: expected true or false (got 'yes')"));
  EXPECT_TRUE(
      has_error(result, 9, 22, "frontend 'web': default_backend: expected a string (got a list)"));
  EXPECT_TRUE(has_error(result, 10, 10, "frontend 'web': log: expected true or false (got '1')"));
  EXPECT_TRUE(has_error(result, 13, 14, "servers of backend 'app': expected a map (got a list)"));
}

TEST(ConfigValues, MissingValueIsReportedAtItsKey) {
  const LoadResult result = load(R"(global:
  threads:
  maxconn: 10
frontends:
  web: {bind: "127.0.0.1:8080", default_backend: app}
backends:
  app: {servers: {s1: "127.0.0.1:9001"}}
)");
  EXPECT_TRUE(only_error(result, 2, 3, "global: threads: missing value (expected an integer)"));
}

TEST(ConfigValues, QuotedNumbersAndBooleansAreAccepted) {
  const LoadResult result = load(R"(global: {threads: "4"}
defaults: {forwardfor: "true", retries: '2'}
frontends:
  web: {bind: "127.0.0.1:8080", default_backend: app}
backends:
  app: {servers: {s1: "127.0.0.1:9001"}}
)");
  ASSERT_TRUE(loads(result));
  EXPECT_EQ(result.config->global.threads, 4);
  EXPECT_TRUE(result.config->frontends.at(0).forwardfor);
  EXPECT_EQ(result.config->backends.at(0).retries, 2);
}

TEST(ConfigValues, OutOfRangeNumbers) {
  const LoadResult result = load(R"(global:
  threads: 65
  maxconn: 0
defaults:
  retries: -1
frontends:
  web:
    bind: [{address: "127.0.0.1:8080", backlog: 65536}]
    default_backend: app
    maxconn: 99999999999999999999
backends:
  app:
    retries: 101
    servers: {s1: {address: "127.0.0.1:9001", weight: 257}}
)");
  ASSERT_EQ(result.errors.size(), 7U) << describe(result.errors);
  EXPECT_TRUE(has_error(result, 2, 12, "global: threads: must be between 1 and 64 (got 65)"));
  EXPECT_TRUE(has_error(result, 3, 12, "global: maxconn: must be between 1 and 2147483647"));
  EXPECT_TRUE(has_error(result, 5, 12, "defaults: retries: must be between 0 and 100 (got -1)"));
  EXPECT_TRUE(has_error(result, 8, 49,
                        "frontend 'web': bind: backlog: must be between 1 and 65535 (got 65536)"));
  EXPECT_TRUE(has_error(result, 10, 14,
                        "frontend 'web': maxconn: must be between 1 and 2147483647 (got "
                        "99999999999999999999)"));
  EXPECT_TRUE(has_error(result, 13, 14, "backend 'app': retries: must be between 0 and 100"));
  EXPECT_TRUE(has_error(result, 14, 55,
                        "server 's1' of backend 'app': weight: must be between 0 and 256 (got "
                        "257)"));
}

TEST(ConfigValues, BadDurationsAndSizes) {
  const LoadResult result = load(R"(global:
  tune: {bufsize: 16kb, splice_threshold: 1.5k}
  timeouts: {hard_stop_after: -1s}
defaults:
  timeouts: {connect: 1500us, client: ""}
frontends:
  web: {bind: "127.0.0.1:8080", default_backend: app}
backends:
  app: {servers: {s1: "127.0.0.1:9001"}}
)");
  ASSERT_EQ(result.errors.size(), 5U) << describe(result.errors);
  EXPECT_TRUE(has_error(result, 2, 19,
                        "global.tune: bufsize: invalid size '16kb': unknown unit 'kb' (use k, m "
                        "or g)"));
  EXPECT_TRUE(has_error(result, 2, 43,
                        "global.tune: splice_threshold: invalid size '1.5k': fractions are not "
                        "supported"));
  EXPECT_TRUE(has_error(result, 3, 31,
                        "global.timeouts: hard_stop_after: invalid duration '-1s': negative "
                        "durations are not allowed"));
  EXPECT_TRUE(has_error(result, 5, 23,
                        "defaults.timeouts: connect: invalid duration '1500us': unknown unit "
                        "'us' (use ms, s, m, h or d)"));
  EXPECT_TRUE(
      has_error(result, 5, 39, "defaults.timeouts: client: invalid duration '': empty value"));
}

TEST(ConfigValues, SizesAndDurationsOutsideTheirRange) {
  const LoadResult result = load(R"(global:
  tune: {bufsize: 512}
defaults:
  timeouts: {tunnel: 366d}
frontends:
  web: {bind: "127.0.0.1:8080", default_backend: app}
backends:
  app: {servers: {s1: "127.0.0.1:9001"}}
)");
  ASSERT_EQ(result.errors.size(), 2U) << describe(result.errors);
  EXPECT_TRUE(
      has_error(result, 2, 19, "global.tune: bufsize: must be between 1k and 1m (got 512)"));
  EXPECT_TRUE(
      has_error(result, 4, 22, "defaults.timeouts: tunnel: must be at most 365d (got 366d)"));
}

TEST(ConfigValues, DuplicateKeyInAnyMap) {
  const LoadResult result = load(R"(global:
  threads: 2
  threads: 4
frontends:
  web: {bind: "127.0.0.1:8080", default_backend: app, default_backend: other}
backends:
  app: {servers: {s1: {address: "127.0.0.1:9001", address: "127.0.0.1:9002"}}}
global: {}
)");
  ASSERT_EQ(result.errors.size(), 4U) << describe(result.errors);
  EXPECT_TRUE(
      has_error(result, 3, 3, "duplicate key 'threads' in global (first defined at line 2)"));
  EXPECT_TRUE(has_error(result, 5, 55, "duplicate key 'default_backend' in frontend 'web'"));
  EXPECT_TRUE(has_error(result, 7, 51,
                        "duplicate key 'address' in server 's1' of backend 'app' (first defined "
                        "at line 7)"));
  EXPECT_TRUE(has_error(result, 8, 1, "duplicate key 'global' at the top level"));
}

TEST(ConfigValues, MergeKeysAreNotSupported) {
  const LoadResult result = load(R"(frontends:
  web: {bind: "127.0.0.1:8080", default_backend: app}
backends:
  app: &base {servers: {s1: "127.0.0.1:9001"}}
  api:
    <<: *base
)");
  EXPECT_TRUE(has_error(result, 6, 5, "merge keys ('<<') are not supported"));
}

TEST(ConfigValues, MessagesAreSortedInFileOrderWithRepeatsDropped) {
  std::vector<ConfigError> messages = {{"f", 3, 1, "c"},
                                       {"f", 0, 0, "no position"},
                                       {"f", 1, 5, "a"},
                                       {"f", 3, 1, "c"},
                                       {"f", 3, 1, "b, after c at the same place"}};
  config_detail::sort_messages(messages);
  std::vector<std::string> order;
  for (const ConfigError& e : messages) order.push_back(e.message);
  EXPECT_EQ(order,
            (std::vector<std::string>{"a", "c", "b, after c at the same place", "no position"}));
}

}  // namespace
}  // namespace weir
