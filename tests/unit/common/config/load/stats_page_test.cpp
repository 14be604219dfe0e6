// A frontend's stats page (load/stats_page.cpp).

#include <gtest/gtest.h>
#include <stdlib.h>

#include <string>
#include <string_view>

#include "common/config/config.h"
#include "tests/unit/common/config/load/loader_test_util.h"

namespace weir {
namespace {

using namespace config_test;

// kMinimal with `stats_line` (or lines) as line 5, inside frontend 'web'.
std::string with_stats(std::string_view stats_lines, std::string_view mode = "http") {
  std::string text =
      "frontends:\n  web:\n    bind: [\"127.0.0.1:8080\"]\n    default_backend: app\n";
  text += stats_lines;
  text += "\n    mode: " + std::string(mode) +
          "\nbackends:\n  app:\n    mode: " + std::string(mode) +
          "\n    servers: {s1: \"127.0.0.1:9001\"}\n";
  return text;
}

TEST(ConfigStatsPage, StatsPageShortFormAndDefaults) {
  const LoadResult result = load(with_stats("    stats: /stats"));
  ASSERT_TRUE(loads(result));
  const StatsPageConfig& stats = result.config->frontends[0].stats;
  EXPECT_EQ(stats.uri, "/stats");
  EXPECT_EQ(stats.refresh_ms, 0);
  EXPECT_EQ(stats.realm, "weir statistics");
  EXPECT_TRUE(stats.users.empty());
  EXPECT_FALSE(stats.hide_version);
  EXPECT_EQ(stats.mark.line, 5);
  EXPECT_EQ(stats.mark.column, 12);
  // Without stats, no page.
  EXPECT_EQ(load(kMinimal).config->frontends[0].stats.uri, "");
}

TEST(ConfigStatsPage, StatsPageFullForm) {
  setenv("WEIR_TEST_STATS_PASSWORD", "from-env", 1);
  const LoadResult result = load(with_stats(R"(    metrics: /metrics
    stats:
      uri: /admin/stats
      refresh: 1500ms
      hide_version: true
      auth:
        realm: "weir admin"
        users: {admin: "s3cret:x", ops: "${WEIR_TEST_STATS_PASSWORD}"})"));
  ASSERT_TRUE(loads(result));
  const StatsPageConfig& stats = result.config->frontends[0].stats;
  EXPECT_EQ(stats.uri, "/admin/stats");
  EXPECT_EQ(stats.refresh_ms, 2000);  // rounded up to whole seconds
  EXPECT_TRUE(stats.hide_version);
  EXPECT_EQ(stats.realm, "weir admin");
  ASSERT_EQ(stats.users.size(), 2U);
  EXPECT_EQ(stats.users[0], std::make_pair(std::string("admin"), std::string("s3cret:x")));
  EXPECT_EQ(stats.users[1], std::make_pair(std::string("ops"), std::string("from-env")));
  EXPECT_EQ(result.config->frontends[0].metrics_uri, "/metrics");
}

TEST(ConfigStatsPage, StatsPageUriErrors) {
  EXPECT_TRUE(only_error(load(with_stats("    stats: stats")), 5, 12,
                         "frontend 'web': stats: uri must start with '/' (got 'stats')"));
  EXPECT_TRUE(only_error(load(with_stats("    stats: {uri: \"/s?x\"}")), 5, 18,
                         "stats: uri must be a plain path, without '?', '#', ';' or spaces"));
  EXPECT_TRUE(only_error(load(with_stats("    stats: {refresh: 5s}")), 5, 12,
                         "frontend 'web': stats: missing uri"));
  EXPECT_TRUE(only_error(load(with_stats("    stats:")), 5, 5, "frontend 'web': stats: uri"));
  EXPECT_TRUE(only_error(load(with_stats("    metrics: /m\n    stats: {uri: /m}")), 6, 18,
                         "frontend 'web': stats: uri '/m' is already the metrics uri"));
  EXPECT_TRUE(
      only_error(load(with_stats("    stats: [/stats]")), 5, 12, "frontend 'web': stats: uri"));
}

TEST(ConfigStatsPage, StatsPageValueErrors) {
  EXPECT_TRUE(only_error(load(with_stats("    stats: {uri: /s, refesh: 5s}")), 5, 22,
                         "unknown key 'refesh' in frontend 'web'.stats; did you mean 'refresh'?"));
  EXPECT_TRUE(only_error(load(with_stats("    stats: {uri: /s, refresh: 500ms}")), 5, 31,
                         "frontend 'web': stats: refresh must be 0 (off) or at least 1s"));
  EXPECT_TRUE(only_error(load(with_stats("    stats: {uri: /s, refresh: soon}")), 5, 31,
                         "frontend 'web': stats: refresh"));
  EXPECT_TRUE(only_error(load(with_stats("    stats: {uri: /s, hide_version: maybe}")), 5, 36,
                         "frontend 'web': stats: hide_version"));
  const LoadResult off = load(with_stats("    stats: {uri: /s, refresh: 0}"));
  ASSERT_TRUE(loads(off));
  EXPECT_EQ(off.config->frontends[0].stats.refresh_ms, 0);
}

TEST(ConfigStatsPage, StatsPageAuthErrors) {
  EXPECT_TRUE(only_error(load(with_stats("    stats:\n      uri: /s\n      auth: {realm: x}")), 7,
                         13, "frontend 'web': stats: auth: missing users"));
  EXPECT_TRUE(only_error(load(with_stats("    stats:\n      uri: /s\n      auth: {users: {}}")), 7,
                         21, "frontend 'web': stats: auth: users: no user defined"));
  EXPECT_TRUE(
      only_error(load(with_stats("    stats:\n      uri: /s\n      auth: {users: {\"a:b\": c}}")),
                 7, 22, "frontend 'web': stats: auth: invalid user name 'a:b'"));
  EXPECT_TRUE(only_error(load(with_stats("    stats:\n      uri: /s\n      auth: {users: {a: }}")),
                         7, 22, "frontend 'web': stats: auth: password of 'a'"));
  EXPECT_TRUE(only_error(
      load(with_stats("    stats:\n      uri: /s\n      auth: {realm: 'a\"b', users: {a: b}}")), 7,
      21, "frontend 'web': stats: auth: realm must be 1 to 128 printable characters"));
  EXPECT_TRUE(only_error(
      load(with_stats("    stats:\n      uri: /s\n      auth: {users: {a: b}, user: {c: d}}")), 7,
      29, "unknown key 'user' in frontend 'web'.stats.auth; did you mean 'users'?"));
  EXPECT_TRUE(has_error(
      load(with_stats("    stats:\n      uri: /s\n      auth:\n        users:\n          a: b\n"
                      "          a: c")),
      10, 11, "duplicate user 'a' in frontend 'web'.stats.auth.users (first defined at line 9)"));
}

TEST(ConfigStatsPage, StatsPageNeedsHttpMode) {
  EXPECT_TRUE(only_error(load(with_stats("    stats: /stats", "tcp")), 5, 12,
                         "frontend 'web': stats needs mode http"));
  // The mode may come from defaults.
  const LoadResult result = load(R"(defaults: {mode: tcp}
frontends:
  web:
    bind: "127.0.0.1:8080"
    default_backend: app
    stats: /stats
backends:
  app: {servers: {s1: "127.0.0.1:9001"}}
)");
  EXPECT_TRUE(only_error(result, 6, 12, "frontend 'web': stats needs mode http"));
}

}  // namespace
}  // namespace weir
