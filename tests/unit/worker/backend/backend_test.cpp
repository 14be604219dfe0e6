// The backend and its servers (worker/backend/backend.h): picking with retries,
// maxconn, servers added and deleted at runtime, runtime weights, and what every
// change of a server (state, weight, health, NOLB, agent) does. Its queues are in
// queue_test.cpp, the algorithms in lb/lb_test.cpp.

#include "worker/backend/backend.h"

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

// `set server ... weight N%` and an agent's `N%`: of the configured weight,
// rounded down but never to 0 unless asked for 0, and capped at 256.
TEST(WeightFromPercent, KeepsASlowedServerInRotation) {
  EXPECT_EQ(weight_from_percent(10, 50), 5u);
  EXPECT_EQ(weight_from_percent(10, 100), 10u);
  EXPECT_EQ(weight_from_percent(3, 50), 1u);  // 1.5, rounded down
  EXPECT_EQ(weight_from_percent(1, 50), 1u);  // not 0: the server stays in rotation
  EXPECT_EQ(weight_from_percent(1, 1), 1u);
  EXPECT_EQ(weight_from_percent(1, 0), 0u);        // 0% takes it out
  EXPECT_EQ(weight_from_percent(0, 50), 0u);       // 50% of nothing
  EXPECT_EQ(weight_from_percent(1, 250), 2u);      // above 100% raises the weight
  EXPECT_EQ(weight_from_percent(100, 300), 256u);  // up to 256
  EXPECT_EQ(weight_from_percent(256, kMaxWeightPercent), 256u);
}

TEST(Backend, RetriesAvoidTriedServersWhileOthersRemain) {
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

TEST(Backend, NoServerToPickWithoutAUsableOne) {
  Backend empty(backend_with({}), 1);
  EXPECT_EQ(pick(empty, TriedServers{}), nullptr);
  Backend zero(backend_with({{"a", 0}}), 1);
  EXPECT_EQ(pick(zero, TriedServers{}), nullptr);
}

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

// However a server comes back into use (an operator, its health checks, its
// agent, the end of NOLB or a weight above 0), it starts its slowstart ramp
// again: halfway through the ramp it weighs half. (set_server_nolb alone lacked
// this step: a server leaving NOLB took its full weight at once.)
TEST(Backend, EveryWayBackIntoUseStartsTheSlowstartRamp) {
  constexpr int64_t kT0 = 1000000, kRamp = 10000;
  struct Way {
    const char* name;
    void (*out)(Backend&, Server*, int64_t);
    void (*back)(Backend&, Server*, int64_t);
  };
  const Way ways[] = {
      {"state",
       [](Backend& be, Server* s, int64_t t) { be.set_server_state(s, AdminState::kMaint, t); },
       [](Backend& be, Server* s, int64_t t) { be.set_server_state(s, AdminState::kReady, t); }},
      {"weight", [](Backend& be, Server* s, int64_t t) { be.set_server_weight(s, 0, t); },
       [](Backend& be, Server* s, int64_t t) { be.set_server_weight(s, 100, t); }},
      {"health", [](Backend& be, Server* s, int64_t t) { be.set_server_up(s, false, t); },
       [](Backend& be, Server* s, int64_t t) { be.set_server_up(s, true, t); }},
      {"nolb", [](Backend& be, Server* s, int64_t t) { be.set_server_nolb(s, true, t); },
       [](Backend& be, Server* s, int64_t t) { be.set_server_nolb(s, false, t); }},
      {"agent", [](Backend& be, Server* s, int64_t t) { be.set_server_agent_down(s, true, t); },
       [](Backend& be, Server* s, int64_t t) { be.set_server_agent_down(s, false, t); }},
  };
  for (const Way& way : ways) {
    BackendConfig cfg = backend_with({{"a", 100}});
    cfg.servers[0].slowstart = kRamp;
    cfg.servers[0].maxconn = 100;
    Backend be(cfg, 1);
    Server* a = be.find_server("a");
    EXPECT_EQ(be.effective_weight(*a, kT0), 100u) << way.name;  // no ramp at start
    way.out(be, a, kT0 - 1000);
    way.back(be, a, kT0);
    EXPECT_EQ(be.effective_weight(*a, kT0 + kRamp / 2), 50u) << way.name;
    EXPECT_EQ(be.effective_maxconn(*a, kT0 + kRamp / 2), 50u) << way.name;
    EXPECT_EQ(be.effective_weight(*a, kT0 + kRamp), 100u) << way.name;
  }
}

}  // namespace
}  // namespace weir
