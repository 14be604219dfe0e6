#include "common/base/fd_budget.h"

#include <gtest/gtest.h>

#include "common/config/config.h"

namespace weir {
namespace {

Config http_config(uint32_t maxconn) {
  LoadResult r = load_config_text(
      "global: {threads: 2" + std::string(maxconn ? ", maxconn: " + std::to_string(maxconn) : "") +
          "}\n"
          "frontends:\n"
          "  web: {bind: [\"127.0.0.1:8080\"], default_backend: app}\n"
          "backends:\n"
          "  app: {servers: {s1: \"127.0.0.1:9001\", s2: {address: \"127.0.0.1:9002\", check: "
          "{}}}}\n",
      "test.yaml");
  EXPECT_TRUE(r.config) << (r.errors.empty() ? "" : r.errors[0].to_string());
  return *r.config;
}

TEST(FdBudget, DefaultIsTheMostTheLimitHolds) {
  Config cfg = http_config(0);
  FdBudget b = plan_fd_budget(cfg, 20000);
  EXPECT_FALSE(b.explicit_maxconn);
  EXPECT_EQ(b.wanted, kDefaultMaxconn);
  EXPECT_LE(b.needed, 20000u);
  EXPECT_GT(fds_needed(cfg, b.maxconn + 1), 20000u);  // one more would not fit
  // Two descriptors per connection and one per four idle server connections.
  EXPECT_EQ(b.needed, b.reserved + 2 * uint64_t{b.maxconn} + b.idle_server_conns);
  EXPECT_EQ(b.idle_server_conns, (b.maxconn + 3) / 4);
  EXPECT_EQ(b.pipes, 0u);  // no tcp frontend
  EXPECT_FALSE(b.lowered());
}

TEST(FdBudget, DefaultStopsAtOneHundredThousand) {
  FdBudget b = plan_fd_budget(http_config(0), 1048576);
  EXPECT_EQ(b.maxconn, kDefaultMaxconn);
  EXPECT_FALSE(b.lowered());
}

TEST(FdBudget, AnExplicitMaxconnThatDoesNotFitIsLowered) {
  Config cfg = http_config(5000);
  FdBudget fits = plan_fd_budget(cfg, 20000);
  EXPECT_EQ(fits.maxconn, 5000u);
  EXPECT_FALSE(fits.lowered());
  FdBudget low = plan_fd_budget(cfg, 256);
  EXPECT_TRUE(low.lowered());
  EXPECT_GT(low.maxconn, 0u);
  EXPECT_LE(low.needed, 256u);
}

TEST(FdBudget, ReserveCountsWhatTheConfigurationOpens) {
  Config cfg = http_config(0);
  const uint64_t base = reserved_fds(cfg);
  cfg.global.threads = 4;
  EXPECT_EQ(reserved_fds(cfg), base + 4);  // epoll + eventfd per extra loop
  cfg.global.logs.push_back(LogSink{});
  EXPECT_EQ(reserved_fds(cfg), base + 6);
  cfg.frontends[0].mode = Mode::kTcp;  // tcp: pipes instead of idle server connections
  EXPECT_EQ(idle_server_conns_for(cfg, 100), 0u);
  EXPECT_EQ(pipes_for(cfg, 100), 25u);
  cfg.global.splice_threshold = 0;
  EXPECT_EQ(pipes_for(cfg, 100), 0u);
}

TEST(FdBudget, ALimitTooLowForOneConnectionGivesZero) {
  Config cfg = http_config(0);
  FdBudget b = plan_fd_budget(cfg, reserved_fds(cfg) + 1);
  EXPECT_EQ(b.maxconn, 0u);
}

}  // namespace
}  // namespace weir
