// global: and global.tune: (load/global.cpp).

#include <gtest/gtest.h>

#include <string>
#include <string_view>

#include "common/config/config.h"
#include "tests/unit/common/config/load/loader_test_util.h"

namespace weir {
namespace {

using namespace config_test;

TEST(ConfigGlobal, StateDirAndItsSaveInterval) {
  const LoadResult defaults = load(kMinimal);
  ASSERT_TRUE(loads(defaults));
  EXPECT_EQ(defaults.config->global.state_dir, "");
  EXPECT_EQ(defaults.config->global.state_save_interval, 60000);

  const LoadResult set = load(R"(global:
  state_dir: /var/lib/weir
  state_save_interval: 5m
frontends:
  web: {bind: "127.0.0.1:8080", default_backend: app}
backends:
  app: {servers: {s1: "127.0.0.1:9001"}}
)");
  ASSERT_TRUE(loads(set));
  EXPECT_EQ(set.config->global.state_dir, "/var/lib/weir");
  EXPECT_EQ(set.config->global.state_dir_mark.line, 2);
  EXPECT_EQ(set.config->global.state_save_interval, 300000);

  const LoadResult bad = load(R"(global:
  state_dir: var/lib/weir
  state_save_interval: often
frontends:
  web: {bind: "127.0.0.1:8080", default_backend: app}
backends:
  app: {servers: {s1: "127.0.0.1:9001"}}
)");
  ASSERT_EQ(bad.errors.size(), 2U) << describe(bad.errors);
  EXPECT_TRUE(has_error(bad, 2, 14, "global: state_dir: must be an absolute path"));
  EXPECT_TRUE(has_error(bad, 3, 24, "global: state_save_interval"));
}

TEST(ConfigGlobal, HeaderLimitAndConnect) {
  const LoadResult defaults = load(kMinimal);
  ASSERT_TRUE(loads(defaults));
  EXPECT_EQ(defaults.config->global.max_headers, 100U);
  EXPECT_FALSE(defaults.config->frontends.at(0).allow_connect);

  const LoadResult set = load(R"(global:
  tune: {max_headers: 250}
frontends:
  web: {bind: "127.0.0.1:8080", default_backend: app, allow_connect: true}
backends:
  app: {servers: {s1: "127.0.0.1:9001"}}
)");
  ASSERT_TRUE(loads(set));
  EXPECT_EQ(set.config->global.max_headers, 250U);
  EXPECT_TRUE(set.config->frontends.at(0).allow_connect);

  const LoadResult bad = load(R"(global:
  tune:
    max_headers: 0
frontends:
  web: {bind: "127.0.0.1:8080", default_backend: app, allow_connect: yes}
backends:
  app: {servers: {s1: "127.0.0.1:9001"}}
)");
  ASSERT_EQ(bad.errors.size(), 2U) << describe(bad.errors);
  EXPECT_TRUE(
      has_error(bad, 3, 18, "global.tune: max_headers: must be between 1 and 1000 (got 0)"));
  EXPECT_TRUE(has_error(bad, 5, 70, "frontend 'web': allow_connect"));

  const LoadResult big = load(R"(global:
  tune: {max_headers: 1001}
frontends:
  web: {bind: "127.0.0.1:8080", default_backend: app}
backends:
  app: {servers: {s1: "127.0.0.1:9001"}}
)");
  EXPECT_TRUE(
      only_error(big, 2, 23, "global.tune: max_headers: must be between 1 and 1000 (got 1001)"));
  const LoadResult text = load(R"(global:
  tune: {max_headers: many}
frontends:
  web: {bind: "127.0.0.1:8080", default_backend: app}
backends:
  app: {servers: {s1: "127.0.0.1:9001"}}
)");
  EXPECT_TRUE(only_error(text, 2, 23, "global.tune: max_headers"));
}

TEST(ConfigGlobal, UserAndGroupMustExist) {
  const LoadResult result = load(R"(global:
  user: weir-test-no-such-user
  group: weir-test-no-such-group
frontends:
  web: {bind: "127.0.0.1:8080", default_backend: app}
backends:
  app: {servers: {s1: "127.0.0.1:9001"}}
)");
  ASSERT_EQ(result.errors.size(), 2U) << describe(result.errors);
  EXPECT_TRUE(has_error(result, 2, 9, "global: user: no such user 'weir-test-no-such-user'"));
  EXPECT_TRUE(has_error(result, 3, 10, "global: group: no such group 'weir-test-no-such-group'"));
}

TEST(ConfigGlobal, PidfileMustBeAbsolute) {
  const LoadResult result = load(R"(global: {pidfile: weir.pid}
frontends:
  web: {bind: "127.0.0.1:8080", default_backend: app}
backends:
  app: {servers: {s1: "127.0.0.1:9001"}}
)");
  EXPECT_TRUE(only_error(result, 1, 19,
                         "global: pidfile: must be an absolute path (got "
                         "'weir.pid')"));
}

}  // namespace
}  // namespace weir
