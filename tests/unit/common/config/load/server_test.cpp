// A backend's servers (load/server.cpp).

#include <gtest/gtest.h>
#include <netdb.h>

#include <string>
#include <string_view>

#include "common/config/config.h"
#include "tests/unit/common/config/load/loader_test_util.h"

namespace weir {
namespace {

using namespace config_test;

TEST(ConfigServer, WildcardServerAddressIsAnError) {
  const LoadResult result = load(R"(frontends:
  web: {bind: "*:8080", default_backend: app}
backends:
  app:
    servers:
      s1: "0.0.0.0:9001"
      s2: {address: "[::]:9002"}
)");
  ASSERT_EQ(result.errors.size(), 2U) << describe(result.errors);
  EXPECT_TRUE(has_error(result, 6, 11, "address '0.0.0.0:9001': wildcard address is not allowed"));
  EXPECT_TRUE(has_error(result, 7, 21, "address '[::]:9002': wildcard address is not allowed"));
}

// A minimal chroot may have no /etc/hosts: then "localhost" is not a name the
// system can resolve and the resolution tests have nothing to check.
bool system_resolves_localhost() {
  addrinfo* res = nullptr;
  int rc = getaddrinfo("localhost", nullptr, nullptr, &res);
  if (res) freeaddrinfo(res);
  return rc == 0;
}

TEST(ConfigServer, ServerHostNameIsResolved) {
  if (!system_resolves_localhost()) GTEST_SKIP() << "this system cannot resolve localhost";
  const LoadResult result = load(R"(frontends:
  web: {bind: "127.0.0.1:8080", default_backend: app}
backends:
  app: {servers: {s1: "localhost:9001"}}
)");
  ASSERT_TRUE(loads(result));
  const ServerConfig& s1 = result.config->backends.at(0).servers.at(0);
  EXPECT_EQ(s1.address_text, "localhost:9001");
  EXPECT_EQ(s1.addr.port(), 9001);
}

TEST(ConfigServer, ServerWithoutAddressIsAnError) {
  const LoadResult result = load(R"(frontends:
  web: {bind: "127.0.0.1:8080", default_backend: app}
backends:
  app:
    servers:
      s1: {weight: 2}
      s2:
)");
  ASSERT_EQ(result.errors.size(), 2U) << describe(result.errors);
  EXPECT_TRUE(has_error(result, 6, 7, "server 's1' of backend 'app' has no address"));
  EXPECT_TRUE(has_error(result, 7, 7, "server 's2' of backend 'app': address: missing value"));
}

}  // namespace
}  // namespace weir
