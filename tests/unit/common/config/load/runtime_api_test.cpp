// global.runtime_api endpoints (load/runtime_api.cpp).

#include <gtest/gtest.h>

#include <string>
#include <string_view>

#include "common/config/config.h"
#include "tests/unit/common/config/load/loader_test_util.h"

namespace weir {
namespace {

using namespace config_test;

TEST(ConfigRuntimeApi, RuntimeApiOwnerGroupAndLoopbackDefault) {
  LoadResult ok = load_config_text(R"(global:
  runtime_api:
    - {address: /run/weir/admin.sock, owner: root, group: root, mode: "0660"}
    - {address: "9999", level: user}
    - {address: "192.0.2.1:9998", level: user}
frontends:
  web: {bind: "127.0.0.1:8080", default_backend: app}
backends:
  app: {servers: {s1: "127.0.0.1:9001"}}
)",
                                   "test.yaml");
  ASSERT_TRUE(ok.errors.empty()) << ok.errors[0].to_string();
  const auto& api = ok.config->global.runtime_api;
  ASSERT_EQ(api.size(), 3u);
  EXPECT_EQ(api[0].owner, "root");
  EXPECT_EQ(api[0].group, "root");
  EXPECT_EQ(api[1].addr.to_string(), "127.0.0.1:9999");
  ASSERT_EQ(ok.warnings.size(), 1u);
  EXPECT_NE(ok.warnings[0].to_string().find(
                "test.yaml:5:17: global: runtime_api: 192.0.2.1:9998 is not a loopback address"),
            std::string::npos)
      << ok.warnings[0].to_string();

  LoadResult bad = load_config_text(R"(global:
  runtime_api:
    - {address: /run/weir/admin.sock, owner: no-such-user-here}
    - {address: "127.0.0.1:9999", group: root}
frontends:
  web: {bind: "127.0.0.1:8080", default_backend: app}
backends:
  app: {servers: {s1: "127.0.0.1:9001"}}
)",
                                    "test.yaml");
  std::string all;
  for (const ConfigError& e : bad.errors) all += e.to_string() + "\n";
  EXPECT_NE(all.find("test.yaml:3:46: global: runtime_api: owner: no user named "
                     "'no-such-user-here' on this system"),
            std::string::npos)
      << all;
  EXPECT_NE(all.find("test.yaml:4:42: global: runtime_api: group only applies to a Unix socket"),
            std::string::npos)
      << all;
}

TEST(ConfigRuntimeApi, LevelAndModeAreReadAndTheFirstBadValueEndsTheEntry) {
  const LoadResult ok = load(R"(global:
  runtime_api:
    - {address: /run/weir/admin.sock, level: operator, mode: "0640"}
    - /run/weir/other.sock
frontends:
  web: {bind: "127.0.0.1:8080", default_backend: app}
backends:
  app: {servers: {s1: "127.0.0.1:9001"}}
)");
  ASSERT_TRUE(loads(ok));
  const auto& api = ok.config->global.runtime_api;
  ASSERT_EQ(api.size(), 2U);
  EXPECT_EQ(api[0].level, ApiLevel::kOperator);
  EXPECT_EQ(api[0].mode, 0640U);
  EXPECT_EQ(api[1].level, ApiLevel::kAdmin);  // the defaults
  EXPECT_EQ(api[1].mode, 0600U);

  // A bad level ends the entry: its mode is not looked at, and it is not added.
  const LoadResult bad = load(R"(global:
  runtime_api:
    - {address: /run/weir/admin.sock, level: root, mode: "999"}
    - {address: /run/weir/admin.sock, mode: "999"}
frontends:
  web: {bind: "127.0.0.1:8080", default_backend: app}
backends:
  app: {servers: {s1: "127.0.0.1:9001"}}
)");
  ASSERT_EQ(bad.errors.size(), 2U) << describe(bad.errors);
  EXPECT_TRUE(has_error(bad, 3, 46,
                        "global: runtime_api: unknown level 'root' (expected user, operator or "
                        "admin)"));
  EXPECT_TRUE(has_error(bad, 4, 45,
                        "global: runtime_api: mode '999' is not an octal permission (0000..0777)"));
}

}  // namespace
}  // namespace weir
