// frontends and their binds (load/frontend.cpp).

#include <gtest/gtest.h>

#include <string>
#include <string_view>

#include "common/config/config.h"
#include "tests/unit/common/config/load/loader_test_util.h"

namespace weir {
namespace {

using namespace config_test;

TEST(ConfigFrontend, BadBindAndServerAddresses) {
  const LoadResult result = load(R"(frontends:
  web:
    bind: ["127.0.0.1", "127.0.0.1:http", "::1:80"]
    default_backend: app
backends:
  app:
    servers:
      s1: "10.0.0.1"
      s2: {address: "10.0.0.1:70000"}
)");
  ASSERT_EQ(result.errors.size(), 5U) << describe(result.errors);
  EXPECT_TRUE(has_error(result, 3, 12, "frontend 'web': bind '127.0.0.1': missing port"));
  EXPECT_TRUE(
      has_error(result, 3, 25, "frontend 'web': bind '127.0.0.1:http': invalid port 'http'"));
  EXPECT_TRUE(has_error(result, 3, 43,
                        "frontend 'web': bind '::1:80': IPv6 addresses must be written in "
                        "brackets"));
  EXPECT_TRUE(
      has_error(result, 8, 11, "server 's1' of backend 'app': address '10.0.0.1': missing port"));
  EXPECT_TRUE(has_error(result, 9, 21,
                        "server 's2' of backend 'app': address '10.0.0.1:70000': port 70000 is "
                        "out of range (1-65535)"));
}

TEST(ConfigFrontend, PortZeroIsAnError) {
  const LoadResult result = load(R"(frontends:
  web: {bind: "127.0.0.1:0", default_backend: app}
backends:
  app: {servers: {s1: "127.0.0.1:0"}}
)");
  ASSERT_EQ(result.errors.size(), 2U) << describe(result.errors);
  EXPECT_TRUE(
      has_error(result, 2, 15, "frontend 'web': bind '127.0.0.1:0': port 0 is not allowed"));
  EXPECT_TRUE(has_error(result, 4, 23,
                        "server 's1' of backend 'app': address '127.0.0.1:0': port 0 is not "
                        "allowed"));
}

TEST(ConfigFrontend, DuplicateFrontend) {
  const LoadResult result = load(R"(frontends:
  web:
    bind: "127.0.0.1:8080"
    default_backend: app
  web:
    bind: "127.0.0.1:8081"
    default_backend: app
backends:
  app: {servers: {s1: "127.0.0.1:9001"}}
)");
  ASSERT_TRUE(only_error(result, 5, 3, "duplicate"));
  EXPECT_EQ(result.errors[0].message, "duplicate frontend 'web' (first defined at line 2)");
}

TEST(ConfigFrontend, DuplicateBindAcrossFrontends) {
  const LoadResult result = load(R"(frontends:
  one:
    bind: ["127.0.0.1:8080"]
    default_backend: app
  two:
    bind: ["127.0.0.1:8081", "127.0.0.1:8080"]
    default_backend: app
backends:
  app: {servers: {s1: "127.0.0.1:9001"}}
)");
  EXPECT_TRUE(only_error(result, 6, 30,
                         "frontend 'two': bind '127.0.0.1:8080' is already used by frontend "
                         "'one' (line 3)"));
}

TEST(ConfigFrontend, DuplicateBindWithinAFrontendComparesAddressesNotText) {
  const LoadResult result = load(R"(frontends:
  web:
    bind: ["*:8080", "0.0.0.0:8080"]
    default_backend: app
backends:
  app: {servers: {s1: "127.0.0.1:9001"}}
)");
  EXPECT_TRUE(only_error(result, 3, 22,
                         "frontend 'web': bind '0.0.0.0:8080' is already used by this frontend "
                         "(line 3)"));
}

TEST(ConfigFrontend, Ipv4AndIpv6WildcardsOnTheSamePortAreAllowed) {
  const LoadResult result = load(R"(frontends:
  web:
    bind: ["0.0.0.0:8080", "[::]:8080"]
    default_backend: app
backends:
  app: {servers: {s1: "127.0.0.1:9001"}}
)");
  ASSERT_TRUE(loads(result));
  const auto& binds = result.config->frontends.at(0).binds;
  ASSERT_EQ(binds.size(), 2U);
  EXPECT_EQ(binds[0].key(), "tcp:0.0.0.0:8080");
  EXPECT_EQ(binds[1].key(), "tcp:[::]:8080");
  EXPECT_TRUE(binds[1].v6only);
}

TEST(ConfigFrontend, V6onlyOnAnIpv4BindIsAWarning) {
  const LoadResult result = load(R"(frontends:
  web:
    bind: [{address: "0.0.0.0:8080", v6only: false}]
    default_backend: app
backends:
  app: {servers: {s1: "127.0.0.1:9001"}}
)");
  ASSERT_TRUE(loads(result));
  ASSERT_EQ(result.warnings.size(), 1U) << describe(result.warnings);
  EXPECT_EQ(result.warnings[0].to_string(),
            "test.yaml:3:46: frontend 'web': bind '0.0.0.0:8080': v6only has no effect on IPv4");
}

TEST(ConfigFrontend, FrontendWithoutBind) {
  const LoadResult result = load(R"(frontends:
  web:
    default_backend: app
  api:
    bind: []
    default_backend: app
backends:
  app: {servers: {s1: "127.0.0.1:9001"}}
)");
  ASSERT_EQ(result.errors.size(), 2U) << describe(result.errors);
  EXPECT_TRUE(has_error(result, 2, 3, "frontend 'web' has no bind address"));
  EXPECT_TRUE(has_error(result, 5, 11, "frontend 'api': bind: the list is empty"));
}

TEST(ConfigFrontend, FrontendWithoutDefaultBackend) {
  const LoadResult result = load(R"(frontends:
  web:
    bind: "127.0.0.1:8080"
backends:
  app: {servers: {s1: "127.0.0.1:9001"}}
)");
  EXPECT_TRUE(only_error(result, 2, 3, "frontend 'web' has no default_backend"));
}

TEST(ConfigFrontend, AFrontendOfWeirsOwnPagesNeedsNoBackend) {
  const LoadResult result = load(R"(frontends:
  local:
    bind: "127.0.0.1:8404"
    stats: /stats
    metrics: /metrics
)");
  EXPECT_TRUE(result.errors.empty()) << result.errors.front().message;
  EXPECT_TRUE(result.warnings.empty());
}

}  // namespace
}  // namespace weir
