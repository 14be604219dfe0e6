// The rule keys of frontends and backends (load/rules.cpp): acls, the lists of
// rules and the backends they name, tcp_request rules, errorfiles.

#include <gtest/gtest.h>

#include <cstdio>
#include <string>
#include <string_view>

#include "common/config/config.h"
#include "tests/unit/common/config/load/loader_test_util.h"

namespace weir {
namespace {

using namespace config_test;

std::string with_frontend_keys(std::string_view keys, std::string_view mode = "http") {
  return "frontends:\n  web: {bind: \"127.0.0.1:8080\", default_backend: app, mode: " +
         std::string(mode) + ", " + std::string(keys) +
         "}\nbackends:\n  app: {mode: " + std::string(mode) +
         ", servers: {s1: \"127.0.0.1:9001\"}}\n";
}

TEST(ConfigRules, ErrorfilesTakeExactlyTheStatusesWeirAnswersItself) {
  const std::string page = ::testing::TempDir() + "rules_test_503.html";
  FILE* f = std::fopen(page.c_str(), "w");
  ASSERT_NE(f, nullptr);
  std::fputs("<p>later</p>\n", f);
  std::fclose(f);
  const LoadResult ok = load(with_frontend_keys("errorfiles: {503: " + page + "}"));
  ASSERT_TRUE(loads(ok));
  EXPECT_EQ(ok.config->frontends[0].rules.errorfiles.at(503), "<p>later</p>\n");
  // 418 is not a status weir sends; "0503" is not how a status is written.
  const LoadResult bad =
      load(with_frontend_keys("errorfiles: {418: " + page + ", '0503': " + page + "}"));
  ASSERT_EQ(bad.errors.size(), 2U) << describe(bad.errors);
  EXPECT_TRUE(has_error(bad, 2, 80,
                        "frontend 'web': errorfiles: 418: not a status weir answers by itself "
                        "(400, 401, 403, 404, 405, 407, 408, 410, 413, 425, 429, 500, 501, 502, "
                        "503, 504)"));
  EXPECT_TRUE(has_error(bad, 2, 111, "frontend 'web': errorfiles: 0503: not a status"));
  const LoadResult tcp = load(with_frontend_keys("errorfiles: {503: " + page + "}", "tcp"));
  EXPECT_TRUE(only_error(tcp, 2, 78, "frontend 'web': errorfiles needs http mode"));
}

TEST(ConfigRules, AnAclThatFailsIsReportedOnceNotAgainWhereARuleNamesIt) {
  const LoadResult r = load(
      with_frontend_keys("acls: {api: \"path_bgn /api\"}, http_request: [{deny: true, if: api}]"));
  ASSERT_EQ(r.errors.size(), 1U) << describe(r.errors);
  EXPECT_EQ(r.errors[0].line, 2);
  EXPECT_NE(r.errors[0].message.find("frontend 'web': acls: api: "), std::string::npos);
  // Reserved words are not acl names.
  const LoadResult reserved = load(with_frontend_keys("acls: {not: \"path_beg /x\"}"));
  EXPECT_TRUE(only_error(reserved, 2, 74, "acls: not: invalid condition name"));
}

TEST(ConfigRules, UseBackendNamesABackendThatMustExistUnlessItIsComputed) {
  const LoadResult missing =
      load(with_frontend_keys("http_request: [{use_backend: nope, if: \"{ path_beg /x }\"}]"));
  EXPECT_TRUE(only_error(missing, 2, 82, "frontend 'web': use_backend 'nope' does not exist"));
  // A backend used only by a rule is used; one that a computed use_backend may
  // choose is not reported as unused.
  const LoadResult used = load(R"(frontends:
  web:
    bind: "127.0.0.1:8080"
    default_backend: app
    http_request: [{use_backend: other, if: "{ path_beg /o }"}]
backends:
  app: {servers: {s1: "127.0.0.1:9001"}}
  other: {servers: {s1: "127.0.0.1:9002"}}
  spare: {servers: {s1: "127.0.0.1:9003"}}
)");
  ASSERT_TRUE(loads(used));
  ASSERT_EQ(used.warnings.size(), 1U) << describe(used.warnings);
  EXPECT_EQ(used.warnings[0].message, "backend 'spare' is not used by any frontend");
  const LoadResult computed = load(R"(frontends:
  web:
    bind: "127.0.0.1:8080"
    default_backend: app
    http_request: [{use_backend: "%[hdr(host)]"}]
backends:
  app: {servers: {s1: "127.0.0.1:9001"}}
  spare: {servers: {s1: "127.0.0.1:9003"}}
)");
  ASSERT_TRUE(loads(computed));
  EXPECT_TRUE(computed.warnings.empty()) << describe(computed.warnings);
}

TEST(ConfigRules, TcpRequestRulesChooseAStageAndAnAction) {
  const LoadResult ok = load(with_frontend_keys(
      "tcp_request: [{connection: reject, if: \"{ src 192.0.2.1 }\"}, {content: {use_backend: "
      "app}}, {content: accept}]",
      "tcp"));
  ASSERT_TRUE(loads(ok));
  const auto& rules = ok.config->frontends[0].rules.tcp_request;
  ASSERT_EQ(rules.size(), 3U);
  EXPECT_EQ(rules[0].stage, TcpRule::Stage::kConnection);
  EXPECT_EQ(rules[0].def->name, "reject");
  EXPECT_NE(rules[0].cond, nullptr);
  EXPECT_EQ(rules[1].def->name, "use_backend");
  EXPECT_EQ(rules[1].backend, "app");
  EXPECT_EQ(rules[2].def->name, "accept");

  const LoadResult bad = load(with_frontend_keys(
      "tcp_request: [{connection: drop}, {connection: accept, content: accept}, {connection: "
      "{use_backend: app}}]",
      "tcp"));
  ASSERT_EQ(bad.errors.size(), 3U) << describe(bad.errors);
  EXPECT_TRUE(has_error(bad, 2, 93,
                        "tcp_request rule 1: unknown action 'drop' (accept, reject, or "
                        "{sc_clr_gpc: {index, counter}}, or {sc_inc_gpc: {index, counter}}, or "
                        "{sc_set_gpt: {index, counter, value}}, or {track: {table: NAME, key: "
                        "SAMPLE}}, or {use_backend: NAME} for content rules)"));
  EXPECT_TRUE(
      has_error(bad, 2, 100, "tcp_request rule 2 needs exactly one of connection or content"));
  EXPECT_TRUE(
      has_error(bad, 2, 152, "tcp_request rule 3: use_backend is a content rule of a frontend"));
}

// A map of two actions was read as its first one, the other dropped unsaid.
TEST(ConfigRules, ATcpRequestRuleHasOneAction) {
  const LoadResult r =
      load("stick_tables: {t: {size: 10}}\n" +
           with_frontend_keys("tcp_request: [{content: {use_backend: app, track: t}}]", "tcp"));
  EXPECT_TRUE(only_error(
      r, 3, 109,
      "tcp_request rule 1: one action per rule (use_backend and track); write two rules"));
  // A word that is an action written as a map says how to write it.
  const LoadResult word = load(with_frontend_keys("tcp_request: [{content: use_backend}]", "tcp"));
  EXPECT_TRUE(only_error(word, 2, 90,
                         "tcp_request rule 1: use_backend is written as a map: {use_backend: NAME} "
                         "in a content rule of a frontend"));
}

}  // namespace
}  // namespace weir
