#include "worker/backend.h"

#include <gtest/gtest.h>

#include <map>
#include <string>

namespace weir {
namespace {

BackendConfig backend_with(const std::vector<std::pair<std::string, uint32_t>>& servers) {
  BackendConfig b;
  b.name = "be";
  for (auto& [name, weight] : servers) {
    ServerConfig s;
    s.name = name;
    s.weight = weight;
    b.servers.push_back(s);
  }
  return b;
}

// Takes a slot without queueing (nullptr when none is free).
Server* acquire(Backend& be, const TriedServers& tried) {
  Server* s = nullptr;
  QueueTicket ticket;
  Backend::Acquire r = be.acquire(LbRequest{}, tried, nullptr, nullptr, nullptr, 0, &s, &ticket);
  return r == Backend::Acquire::kServer ? s : nullptr;
}

// One pick that gives its slot back at once.
Server* pick(Backend& be, const TriedServers& tried) {
  Server* s = acquire(be, tried);
  if (s) be.release_server(s);
  return s;
}

std::string picks(Backend& be, int n) {
  std::string out;
  TriedServers none;
  for (int i = 0; i < n; ++i) out += pick(be, none)->name();
  return out;
}

TEST(SmoothRoundRobin, EqualWeightsAlternate) {
  Backend be(backend_with({{"a", 1}, {"b", 1}, {"c", 1}}), 1);
  EXPECT_EQ(picks(be, 9), "abcabcabc");
}

TEST(SmoothRoundRobin, WeightsAreInterleavedNotBursted) {
  Backend be(backend_with({{"a", 5}, {"b", 1}, {"c", 1}}), 1);
  EXPECT_EQ(picks(be, 7), "aabacaa");
}

TEST(SmoothRoundRobin, DistributionMatchesWeightsExactlyOverACycle) {
  Backend be(backend_with({{"a", 10}, {"b", 3}, {"c", 1}, {"d", 0}}), 1);
  std::map<char, int> count;
  for (char c : picks(be, 14 * 50)) ++count[c];
  EXPECT_EQ(count['a'], 500);
  EXPECT_EQ(count['b'], 150);
  EXPECT_EQ(count['c'], 50);
  EXPECT_EQ(count['d'], 0);
}

TEST(SmoothRoundRobin, RetriesAvoidTriedServersWhileOthersRemain) {
  Backend be(backend_with({{"a", 1}, {"b", 1}, {"c", 1}}), 1);
  TriedServers tried;
  Server* first = pick(be, tried);
  tried.add(first->index());
  Server* second = pick(be, tried);
  EXPECT_NE(second, first);
  tried.add(second->index());
  Server* third = pick(be, tried);
  EXPECT_NE(third, first);
  EXPECT_NE(third, second);
  tried.add(third->index());
  // Every server tried: picking goes on among all of them rather than failing.
  EXPECT_NE(pick(be, tried), nullptr);
}

TEST(SmoothRoundRobin, NoUsableServer) {
  Backend empty(backend_with({}), 1);
  EXPECT_EQ(pick(empty, TriedServers{}), nullptr);
  Backend zero(backend_with({{"a", 0}}), 1);
  EXPECT_EQ(pick(zero, TriedServers{}), nullptr);
}

}  // namespace
}  // namespace weir

namespace weir {
namespace {

TEST(Backend, MaxconnSkipsFullServersAndCountsExactly) {
  BackendConfig cfg = backend_with({{"a", 1}, {"b", 1}});
  cfg.servers[0].maxconn = 1;
  cfg.servers[1].maxconn = 2;
  Backend be(cfg, 1);
  TriedServers none;
  std::vector<Server*> held;
  for (int i = 0; i < 3; ++i) held.push_back(acquire(be, none));
  for (Server* s : held) ASSERT_NE(s, nullptr);
  // a holds 1, b holds 2: every slot is taken.
  EXPECT_EQ(be.find_server("a")->counters().current(), 1);
  EXPECT_EQ(be.find_server("b")->counters().current(), 2);
  EXPECT_EQ(be.counters().current(), 3);
  EXPECT_EQ(acquire(be, none), nullptr);
  be.release_server(be.find_server("a"));
  Server* again = acquire(be, none);
  ASSERT_NE(again, nullptr);
  EXPECT_EQ(again->name(), "a");
  EXPECT_EQ(be.find_server("a")->counters().max_seen(), 1);
  EXPECT_EQ(be.find_server("b")->counters().max_seen(), 2);
}

TEST(Backend, AddAndDeleteServers) {
  Backend be(backend_with({{"a", 1}}), 1);
  std::string error;
  ServerConfig c;
  c.name = "a";
  EXPECT_EQ(be.add_server(c, AdminState::kReady, 0, &error), nullptr);
  EXPECT_NE(error.find("already has a server named 'a'"), std::string::npos) << error;
  c.name = "b";
  Server* b = be.add_server(c, AdminState::kMaint, 0, &error);
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(be.servers().size(), 2U);
  // In maint: never picked.
  EXPECT_EQ(picks(be, 4), "aaaa");
  be.set_server_state(b, AdminState::kReady, 1);
  EXPECT_EQ(picks(be, 4), "abab");
  // Deleting needs maint and no request left.
  EXPECT_FALSE(be.delete_server("b", &error));
  EXPECT_NE(error.find("put it in maint first"), std::string::npos) << error;
  Server* held = acquire(be, TriedServers{});
  while (held->name() != "b") {
    be.release_server(held);
    held = acquire(be, TriedServers{});
  }
  be.set_server_state(b, AdminState::kMaint, 2);
  EXPECT_FALSE(be.delete_server("b", &error));
  EXPECT_NE(error.find("still has 1 request"), std::string::npos) << error;
  be.release_server(held);
  EXPECT_TRUE(be.delete_server("b", &error)) << error;
  EXPECT_TRUE(b->deleted());
  EXPECT_EQ(be.find_server("b"), nullptr);
  EXPECT_EQ(picks(be, 3), "aaa");
  EXPECT_FALSE(be.delete_server("zz", &error));
}

}  // namespace
}  // namespace weir
