// The configuration model's own functions (config.cpp).

#include <gtest/gtest.h>

#include <string>
#include <string_view>

#include "common/config/config.h"

namespace weir {
namespace {

TEST(ConfigModel, ErrorToString) {
  EXPECT_EQ((ConfigError{"a.yaml", 3, 7, "boom"}).to_string(), "a.yaml:3:7: boom");
  EXPECT_EQ((ConfigError{"a.yaml", 3, 0, "boom"}).to_string(), "a.yaml:3: boom");
  EXPECT_EQ((ConfigError{"a.yaml", 0, 0, "boom"}).to_string(), "a.yaml: boom");
}

TEST(ConfigModel, FindBackend) {
  Config config;
  config.backends.resize(2);
  config.backends[0].name = "a";
  config.backends[1].name = "b";
  EXPECT_EQ(config.find_backend("b"), &config.backends[1]);
  EXPECT_EQ(config.find_backend("c"), nullptr);
  EXPECT_EQ(config.backend_index("a"), 0);
  EXPECT_EQ(config.backend_index("c"), -1);
}

TEST(ConfigModel, BindKeyUsesTheResolvedAddress) {
  BindConfig bind;
  bind.address_text = "*:80";
  EXPECT_EQ(bind.key(), "tcp:*:80");  // not resolved yet: the text
  bind.addr = parse_address("*:80", true, nullptr).value();
  EXPECT_EQ(bind.key(), "tcp:0.0.0.0:80");
}

}  // namespace
}  // namespace weir
