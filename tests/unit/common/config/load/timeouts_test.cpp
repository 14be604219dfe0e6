// The timeouts: map of each section (load/timeouts.cpp).

#include <gtest/gtest.h>

#include <string>
#include <string_view>

#include "common/config/config.h"
#include "tests/unit/common/config/load/loader_test_util.h"

namespace weir {
namespace {

using namespace config_test;

TEST(ConfigTimeouts, UnknownTimeoutSuggestsAnAllowedOne) {
  const LoadResult result = load(R"(defaults:
  timeouts: {conect: 5s}
frontends:
  web: {bind: "127.0.0.1:8080", default_backend: app}
backends:
  app: {servers: {s1: "127.0.0.1:9001"}}
)");
  EXPECT_TRUE(
      only_error(result, 2, 14, "unknown timeout 'conect' in defaults; did you mean 'connect'?"));
}

TEST(ConfigTimeouts, TimeoutOutsideItsSectionIsAnError) {
  const LoadResult result = load(R"(global:
  timeouts: {client: 5s}
frontends:
  web:
    bind: "127.0.0.1:8080"
    default_backend: app
    timeouts: {connect: 5s}
backends:
  app:
    servers: {s1: "127.0.0.1:9001"}
    timeouts: {http_request: 5s}
)");
  ASSERT_EQ(result.errors.size(), 3U) << describe(result.errors);
  EXPECT_TRUE(has_error(result, 2, 14,
                        "timeout 'client' cannot be set in global (allowed here: "
                        "hard_stop_after)"));
  EXPECT_TRUE(has_error(result, 7, 16,
                        "timeout 'connect' cannot be set in frontend 'web' (allowed here: "
                        "client, http_request, http_keep_alive)"));
  EXPECT_TRUE(has_error(result, 11, 16,
                        "timeout 'http_request' cannot be set in backend 'app' (allowed here: "
                        "connect, server, queue, tunnel)"));
}

}  // namespace
}  // namespace weir
