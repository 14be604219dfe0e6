// The peers agent's smoke tests, also run against the ASan+UBSan and TSan
// builds (label "sanitize"): counts carried over ten reloads under load, and
// the agent SIGKILLed under load, respawned and refilled. The other tests of
// the agent are in peers_agent_test.cpp.

#include "tests/integration/peers_agent.h"

namespace weir::test::sticky {
namespace {

// ---------------------------------------------------------------------------
// 600 increments spread over ten reloads: none is lost (HAProxy 2.6 loses 4
// to 9), none counted twice. The client keeps one keep-alive connection, so
// after each reload its next request is answered by the draining generation
// (with "Connection: close"), which then exits: its last count must reach the
// agent and the new generation.

TEST_F(PeersAgent, CountsSurviveTenReloadsUnderLoad) {
  OriginServer app("app");
  ASSERT_TRUE(start(kCounting, {{"@SIZE@", "1k"}, {"@APP@", app.address()}}));
  constexpr int kRequests = 600, kReloads = 10, kKeys = 20;
  KeyClient client(port_);
  ASSERT_NO_FATAL_FAILURE(requests_across_reloads(
      client, kRequests, kReloads, [](int i) { return "k" + std::to_string(i % kKeys); }, 2));
  EXPECT_EQ(client.failed(), 0) << client.problems();
  ASSERT_EQ(client.ok(), kRequests);
  EXPECT_GE(client.closes(), kReloads);
  EXPECT_EQ(weir_->current_generation(), kReloads + 1);

  TableView t;
  EXPECT_TRUE(wait_current(
      "t", [&](const TableView& v) { return total(v, "http_req_cnt") == kRequests; }, &t))
      << "the sum of http_req_cnt never became " << kRequests << ":\n"
      << t.text;
  ASSERT_EQ(t.entries.size(), static_cast<size_t>(kKeys)) << t.text;
  for (int k = 0; k < kKeys; ++k) {
    const std::string key = "k" + std::to_string(k);
    EXPECT_EQ(t.at(key, "http_req_cnt"), std::to_string(kRequests / kKeys)) << t.text;
    // No reload inflated a rate: it never reads more events than were counted.
    EXPECT_LE(std::stoll(t.at(key, "http_req_rate(10000)")), kRequests / kKeys) << t.text;
  }
}

// ---------------------------------------------------------------------------
// The agent SIGKILLed under load: the master respawns it, the worker refills
// it, no request fails, and the tables come back complete (a reload
// afterwards loads them from the new agent).

TEST_F(PeersAgent, AKilledAgentIsRespawnedAndRefilledWithoutAFailedRequest) {
  OriginServer app("app");
  ASSERT_TRUE(start(kCounting, {{"@SIZE@", "1k"}, {"@APP@", app.address()}}));
  std::string state;
  const pid_t first = agent_pid(&state);
  ASSERT_GT(first, 0) << unix_command(master_cli(), "show proc");
  EXPECT_EQ(state, "running");
  EXPECT_NE(api("show peers").find(" refills=0"), std::string::npos) << api("show peers");
  KeyClient client(port_);
  LoadThread load([&](const std::atomic<bool>& stop) {
    for (int i = 0; !stop; ++i) {
      client.get("k" + std::to_string(i % 10));
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  });
  ASSERT_TRUE(wait_until([&] { return client.ok() >= 100; }, 20000));
  ASSERT_EQ(::kill(first, SIGKILL), 0);
  pid_t second = 0;
  ASSERT_TRUE(wait_until(
      [&] {
        second = agent_pid(&state);
        return second > 0 && second != first && state == "running";
      },
      10000))
      << unix_command(master_cli(), "show proc");
  const int at_respawn = client.ok();
  ASSERT_TRUE(wait_until([&] { return client.ok() >= at_respawn + 100; }, 20000));
  load.join();
  EXPECT_EQ(client.failed(), 0) << client.problems();
  const int sent = client.ok();
  EXPECT_TRUE(weir_->wait_for_stderr(
      "peers agent pid=" + std::to_string(first) + " exited unexpectedly", 1000));

  TableView t;
  EXPECT_TRUE(wait_current(
      "t", [&](const TableView& v) { return total(v, "http_req_cnt") == sent; }, &t))
      << "the sum of http_req_cnt never became " << sent << ":\n"
      << t.text;
  const std::string linked = "agent: pid=" + std::to_string(second) + " linked";
  EXPECT_TRUE(
      wait_until([&] { return api("show peers").find(linked) != std::string::npos; }, 10000))
      << api("show peers");
  // The worker fills the new agent (the first agent it never had to). "linked"
  // may come first, from the hello that found the new agent: the refill follows
  // once the agent's heartbeat says it lacks this process's tables.
  std::string metrics;
  EXPECT_TRUE(wait_until(
      [&] {
        auto m = http_get(port_, "/metrics");
        metrics = m ? m->body : "";
        return metric(metrics, "weir_peers_link_up") == "1" &&
               metric(metrics, "weir_peers_refills_total") == "1";
      },
      10000))
      << metrics;

  // The next generation loads the tables from the new agent.
  ASSERT_TRUE(reload());
  EXPECT_TRUE(wait_current(
      "t", [&](const TableView& v) { return total(v, "http_req_cnt") == sent; }, &t))
      << "after the reload, the sum of http_req_cnt never became " << sent << ":\n"
      << t.text;
  EXPECT_EQ(agent_pid(), second);
}

}  // namespace
}  // namespace weir::test::sticky
