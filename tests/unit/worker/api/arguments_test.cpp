// The arguments of runtime-API commands (worker/api/arguments.h), as operators
// type them and as they mistype them.

#include "worker/api/arguments.h"

#include <gtest/gtest.h>

#include <string_view>

#include "worker/backend/backend.h"

namespace weir {
namespace {

TEST(ApiArguments, CountsAreDecimalDigitsWithinTheirLimit) {
  EXPECT_EQ(parse_count("0", 10), 0u);
  EXPECT_EQ(parse_count("10", 10), 10u);
  EXPECT_EQ(parse_count("007", 10), 7u);
  EXPECT_EQ(parse_count("4294967295", 4294967295u), 4294967295u);
  for (std::string_view bad : {"", "11", "-1", "+1", " 1", "1 ", "1.0", "0x1", "1e3", "one",
                               "99999999999", "00000000001"}) {
    EXPECT_EQ(parse_count(bad, 10), std::nullopt) << "'" << bad << "'";
  }
}

TEST(ApiArguments, PortsAreOneTo65535) {
  EXPECT_EQ(parse_port("1"), 1);
  EXPECT_EQ(parse_port("8080"), 8080);
  EXPECT_EQ(parse_port("65535"), 65535);
  for (std::string_view bad : {"0", "65536", "", "-80", "80a", "http"}) {
    EXPECT_EQ(parse_port(bad), std::nullopt) << "'" << bad << "'";
  }
}

TEST(ApiArguments, WeightsAreAbsoluteOrAPercentageOfTheConfiguredWeight) {
  auto w = parse_weight("128", true);
  ASSERT_TRUE(w);
  EXPECT_FALSE(w->percent);
  EXPECT_EQ(w->resolve(10), 128u);  // absolute: the configured weight does not matter
  w = parse_weight("50%", true);
  ASSERT_TRUE(w);
  EXPECT_TRUE(w->percent);
  EXPECT_EQ(w->resolve(10), 5u);
  EXPECT_EQ(w->resolve(1), 1u);  // never 0 unless asked: the server stays in rotation
  EXPECT_EQ(parse_weight("0%", true)->resolve(10), 0u);
  EXPECT_EQ(parse_weight("100%", true)->resolve(7), 7u);       // restores the configuration
  EXPECT_EQ(parse_weight("100000%", true)->resolve(7), 256u);  // at most 256
  EXPECT_EQ(parse_weight("0", true)->resolve(7), 0u);
  EXPECT_EQ(parse_weight("256", true)->resolve(7), 256u);
  for (std::string_view bad : {"257", "100001%", "%", "", "-1", "5%%", "1.5", "50 %", "w"}) {
    EXPECT_EQ(parse_weight(bad, true), std::nullopt) << "'" << bad << "'";
  }
  // Where no percentage is allowed (add server: there is no configured weight yet).
  EXPECT_EQ(parse_weight("50%", false), std::nullopt);
  EXPECT_EQ(parse_weight("50", false)->value, 50u);
}

// The words of `set server ... state` and `add server ... state`, the state file
// and `show servers state` are the names admin_state_name() gives.
TEST(ApiArguments, ServerStatesAreTheirNames) {
  for (AdminState s : {AdminState::kReady, AdminState::kDrain, AdminState::kMaint}) {
    EXPECT_EQ(parse_admin_state(admin_state_name(s)), s);
  }
  for (std::string_view bad : {"", "READY", "up", "down", "maintenance", "ready "}) {
    EXPECT_EQ(parse_admin_state(bad), std::nullopt) << "'" << bad << "'";
  }
}

}  // namespace
}  // namespace weir
