// Agent checks, tcp check sequences, passive checks and checks of servers added
// at runtime, as an operator sees them: show stat, the log, and where traffic
// goes. Short intervals; every wait has a generous deadline and nothing asserts
// speed.

#include <gtest/gtest.h>

#include <map>
#include <set>

#include "tests/support/http_client.h"
#include "tests/support/launcher.h"
#include "tests/support/line_server.h"
#include "tests/support/origin.h"
#include "tests/support/weir_config.h"

namespace weir::test {
namespace {

class Checks : public ::testing::Test {
 protected:
  void SetUp() override {
    ignore_sigpipe();
    dir_ = make_temp_dir();
    admin_ = dir_ + "/admin.sock";
    spec_.global_extra = "  runtime_api: {address: " + admin_ + ", level: admin}\n";
  }
  void start() {
    if (spec_.servers.empty()) spec_.servers = {a_.address(), b_.address()};
    weir_ = WeirProcess::start(proxy_yaml(spec_));
  }
  void TearDown() override {
    weir_.reset();
    if (!dir_.empty()) remove_tree(dir_);
  }
  std::map<std::string, std::string> row(const std::string& sv) {
    for (auto& r : parse_stat_csv(unix_command(admin_, "show stat"))) {
      if (r["pxname"] == "be" && r["svname"] == sv) return r;
    }
    return {};
  }
  bool wait_field(const std::string& sv, const std::string& field, const std::string& value) {
    return wait_until([&] { return row(sv)[field] == value; }, 10000, 20);
  }
  std::set<std::string> servers_of(int n, const std::string& path = "/") {
    std::set<std::string> seen;
    for (int i = 0; i < n; ++i) {
      auto r = http_get(spec_.port, path);
      seen.insert(r ? (r->status == 200 ? r->header("X-Server") : std::to_string(r->status)) : "?");
    }
    return seen;
  }
  std::string stat() { return unix_command(admin_, "show stat"); }

  OriginServer a_{"a"};
  OriginServer b_{"b", 0, "127.0.0.2"};  // its agent is told apart by the address
  ProxySpec spec_;
  std::string dir_, admin_;
  std::unique_ptr<WeirProcess> weir_;
};

// One agent process plays both servers' agents; it answers b (127.0.0.2) as
// the test says and a (127.0.0.1) "ready up".
TEST_F(Checks, AgentRepliesSetWeightMaxconnAndState) {
  LineServer agent("0.0.0.0");
  agent.set_reply("ready up\n");
  agent.set_reply_for("127.0.0.2", "ready up\n");
  spec_.weights = {100, 100};
  spec_.backend_extra =
      "    agent: {port: " + std::to_string(agent.port()) + ", inter: 50ms, timeout: 1s}\n";
  start();
  ASSERT_TRUE(weir_);
  ASSERT_TRUE(wait_until([&] { return agent.connections("127.0.0.2") >= 2; }, 10000));
  EXPECT_EQ(row("s2")["agent_status"], "L7OK") << stat();
  EXPECT_EQ(row("s2")["last_agt"], "ready up");

  agent.set_reply_for("127.0.0.2", "75%\n");  // of the configured weight
  ASSERT_TRUE(wait_field("s2", "weight", "75")) << stat();
  agent.set_reply_for("127.0.0.2", "weight:7\n");
  ASSERT_TRUE(wait_field("s2", "weight", "7")) << stat();
  agent.set_reply_for("127.0.0.2", "maxconn:3, 100%\n");
  ASSERT_TRUE(wait_field("s2", "slim", "3")) << stat();
  EXPECT_EQ(row("s2")["weight"], "100");

  agent.set_reply_for("127.0.0.2", "drain\n");
  ASSERT_TRUE(wait_field("s2", "status", "DRAIN")) << stat();
  EXPECT_EQ(servers_of(6), (std::set<std::string>{"a"}));
  agent.set_reply_for("127.0.0.2", "maint\n");
  ASSERT_TRUE(wait_field("s2", "status", "MAINT")) << stat();
  agent.set_reply_for("127.0.0.2", "ready\n");
  ASSERT_TRUE(wait_field("s2", "status", "UP")) << stat();
  EXPECT_EQ(servers_of(6), (std::set<std::string>{"a", "b"}));

  agent.set_reply_for("127.0.0.2", "down #disk full\n");
  ASSERT_TRUE(wait_field("s2", "status", "DOWN (agent)")) << stat();
  EXPECT_TRUE(weir_->wait_for_stderr("server be/s2 is DOWN, reason: Agent says 'disk full'", 5000))
      << weir_->stderr_text();
  EXPECT_EQ(servers_of(6), (std::set<std::string>{"a"}));
  agent.set_reply_for("127.0.0.2", "up\n");
  ASSERT_TRUE(wait_field("s2", "status", "UP")) << stat();
  agent.set_reply_for("127.0.0.2", "fail\n");
  ASSERT_TRUE(wait_field("s2", "status", "DOWN (agent)")) << stat();
  agent.set_reply_for("127.0.0.2", "up\n");
  ASSERT_TRUE(wait_field("s2", "status", "UP")) << stat();
  EXPECT_EQ(servers_of(6), (std::set<std::string>{"a", "b"}));
  // a was told "ready up" all along and never changed.
  EXPECT_EQ(row("s1")["weight"], "100");
  EXPECT_EQ(row("s1")["status"], "UP");
}

TEST_F(Checks, AnUnreachableAgentChangesNothing) {
  uint16_t nobody = free_tcp_port();
  spec_.backend_extra = "    agent: {port: " + std::to_string(nobody) + ", inter: 50ms}\n";
  start();
  ASSERT_TRUE(weir_);
  ASSERT_TRUE(wait_field("s2", "agent_status", "L4CON")) << stat();
  EXPECT_NE(row("s2")["last_agt"].find("agent unreachable"), std::string::npos) << stat();
  EXPECT_EQ(row("s2")["status"], "UP");
  EXPECT_EQ(servers_of(6), (std::set<std::string>{"a", "b"}));
}

// A tcp check that speaks a little protocol, sent to another address and port
// than the server's (address and port overrides).
TEST_F(Checks, TcpCheckSequenceSendsAndExpects) {
  LineServer probe("127.0.0.3");
  probe.set_wait_for("PING\r\n");
  probe.set_reply("+PONG\r\n");
  spec_.backend_extra =
      "    check: {type: tcp, address: 127.0.0.3, port: " + std::to_string(probe.port()) +
      ", inter: 50ms, rise: 1, fall: 2, sequence: [{send: \"PING\\r\\n\"}, "
      "{expect: {string: \"+PONG\"}}, {send: \"QUIT\\r\\n\"}]}\n";
  start();
  ASSERT_TRUE(weir_);
  ASSERT_TRUE(wait_field("s1", "check_status", "L7OK")) << stat();
  EXPECT_EQ(row("s1")["last_chk"], "Layer7 check passed: tcp sequence of 3 steps");
  EXPECT_EQ(probe.last_received().rfind("PING\r\n", 0), 0u);

  probe.set_reply("-ERR loading\r\n");
  ASSERT_TRUE(wait_field("s1", "status", "DOWN")) << stat();
  EXPECT_NE(row("s1")["last_chk"].find("expected '+PONG', connection closed after '-ERR loading"),
            std::string::npos)
      << stat();
  // s2 checks the same probe: once it is DOWN too, nothing is left.
  ASSERT_TRUE(wait_field("s2", "status", "DOWN")) << stat();
  EXPECT_EQ(servers_of(2), (std::set<std::string>{"503"}));
  probe.set_reply("+PONG\r\n");
  ASSERT_TRUE(wait_field("s1", "status", "UP")) << stat();
}

TEST_F(Checks, TcpCheckExpectsARegex) {
  LineServer probe;
  probe.set_reply("220 mail.example ESMTP ready\r\n");
  spec_.backend_extra = "    check: {type: tcp, port: " + std::to_string(probe.port()) +
                        ", inter: 50ms, rise: 1, fall: 1, expect: {regex: \"^220 .*ESMTP\"}}\n";
  start();
  ASSERT_TRUE(weir_);
  ASSERT_TRUE(wait_field("s1", "check_status", "L7OK")) << stat();
  probe.set_reply("554 go away\r\n");
  ASSERT_TRUE(wait_field("s1", "status", "DOWN")) << stat();
  EXPECT_EQ(row("s1")["check_status"], "L7RSP");
}

// Live traffic takes a server out long before the next active check (which
// would come after a minute): 5xx answers to real requests count as errors.
TEST_F(Checks, ObserveLayer7MarksAServerDownOn5xx) {
  spec_.backend_extra =
      "    check: {type: http, path: /health, inter: 60s, fastinter: 60s, observe: layer7, "
      "error_limit: 3, on_error: mark_down}\n";
  start();
  ASSERT_TRUE(weir_);
  // Errors only on the traffic, never on /health.
  int sent = 0;
  ASSERT_TRUE(wait_until(
      [&] {
        http_get(spec_.port, "/app?status=503");
        ++sent;
        return row("s2")["status"] == "DOWN" && row("s1")["status"] == "DOWN";
      },
      10000, 0))
      << stat();
  EXPECT_LE(sent, 12);  // 3 errors in a row each, round robin: 6 requests, plus a few in flight
  EXPECT_TRUE(weir_->wait_for_stderr(
      "server be/s2 is DOWN, reason: Passive check: 3 errors in a row in live traffic, last: "
      "HTTP status 503",
      5000))
      << weir_->stderr_text();
  EXPECT_EQ(row("s2")["check_status"], "L7STS");
  EXPECT_EQ(servers_of(1), (std::set<std::string>{"503"}));  // nothing usable: 503 at once
}

TEST_F(Checks, ObserveLayer7CountsOnlyErrorsInARow) {
  spec_.backend_extra =
      "    check: {type: http, path: /health, inter: 60s, observe: layer7, error_limit: 2, "
      "on_error: mark_down}\n";
  spec_.servers = {a_.address()};
  start();
  ASSERT_TRUE(weir_);
  for (int i = 0; i < 10; ++i) {  // error, success, error, ...: never two in a row
    http_get(spec_.port, i % 2 ? "/" : "/?status=500");
  }
  EXPECT_EQ(row("s1")["status"], "UP") << stat();
  EXPECT_EQ(servers_of(2, "/?status=501"), (std::set<std::string>{"501"}));  // not a server fault
  EXPECT_EQ(row("s1")["status"], "UP") << stat();
  http_get(spec_.port, "/?status=502");
  http_get(spec_.port, "/?status=500");
  ASSERT_TRUE(wait_field("s1", "status", "DOWN")) << stat();
}

// Connection failures (layer4): b refuses connections; its errors take it out
// although its first active check is a minute away. The requests themselves
// are redispatched to a and succeed.
TEST_F(Checks, ObserveLayer4MarksARefusingServerDown) {
  spec_.backend_extra =
      "    check: {type: tcp, inter: 60s, fastinter: 60s, observe: layer4, error_limit: 2, "
      "on_error: mark_down}\n";
  start();
  ASSERT_TRUE(weir_);
  b_.stop();
  std::set<std::string> seen;
  for (int i = 0; i < 8; ++i) {
    auto r = http_get(spec_.port, "/");
    seen.insert(r ? std::to_string(r->status) + r->header("X-Server") : "?");
  }
  EXPECT_EQ(seen, (std::set<std::string>{"200a"}));
  ASSERT_TRUE(wait_field("s2", "status", "DOWN")) << stat();
  EXPECT_EQ(row("s2")["check_status"], "L4CON");
  EXPECT_EQ(row("s1")["status"], "UP");
}

// fail_check counts as one failed check toward fall.
TEST_F(Checks, ObserveFailCheckCountsOneFailedCheck) {
  spec_.backend_extra =
      "    check: {type: http, path: /health, inter: 60s, fall: 4, observe: layer7, "
      "error_limit: 2, on_error: fail_check}\n";
  spec_.servers = {a_.address()};
  start();
  ASSERT_TRUE(weir_);
  // The first active check passes first: it would reset the count of failures.
  ASSERT_TRUE(wait_field("s1", "check_status", "L7OK")) << stat();
  http_get(spec_.port, "/?status=503");
  http_get(spec_.port, "/?status=503");
  ASSERT_TRUE(wait_field("s1", "status", "UP 1/4")) << stat();
  EXPECT_EQ(row("s1")["chkfail"], "1");
  http_get(spec_.port, "/?status=503");
  http_get(spec_.port, "/?status=503");
  ASSERT_TRUE(wait_field("s1", "status", "UP 2/4")) << stat();
}

// sudden_death leaves the server one failed check short of DOWN.
TEST_F(Checks, ObserveSuddenDeathLeavesOneCheckToFall) {
  spec_.backend_extra =
      "    check: {type: http, path: /health, inter: 60s, fall: 4, observe: layer7, "
      "error_limit: 1, on_error: sudden_death}\n";
  spec_.servers = {a_.address()};
  start();
  ASSERT_TRUE(weir_);
  // The first active check passes first: it would reset the count of failures.
  ASSERT_TRUE(wait_field("s1", "check_status", "L7OK")) << stat();
  http_get(spec_.port, "/?status=503");
  ASSERT_TRUE(wait_field("s1", "status", "UP 3/4")) << stat();
  EXPECT_EQ(row("s1")["chkfail"], "1");
}

TEST_F(Checks, ServersAddedAtRuntimeAreCheckedLikeTheOthers) {
  spec_.backend_extra = "    check: {type: http, path: /health, inter: 50ms, rise: 1, fall: 1}\n";
  spec_.servers = {a_.address()};
  start();
  ASSERT_TRUE(weir_);
  OriginServer c("c");
  c.set_default_status(503);
  CommandResult add = weirctl({"-s", admin_, "add", "server", "be/s3", c.address()});
  ASSERT_EQ(add.exit_code, 0) << add.out;
  EXPECT_NE(add.out.find("checked"), std::string::npos) << add.out;
  ASSERT_TRUE(wait_field("s3", "check_status", "L7STS")) << stat();
  EXPECT_EQ(row("s3")["status"], "MAINT");
  ASSERT_EQ(weirctl({"-s", admin_, "enable", "server", "be/s3"}).exit_code, 0);
  EXPECT_TRUE(wait_field("s3", "status", "DOWN")) << stat();
  EXPECT_EQ(servers_of(6), (std::set<std::string>{"a"}));
  c.set_default_status(200);
  ASSERT_TRUE(wait_field("s3", "status", "UP")) << stat();
  EXPECT_EQ(servers_of(6), (std::set<std::string>{"a", "c"}));

  // check off: not checked, so a dead address stays UP for the balancer.
  ASSERT_EQ(weirctl({"-s", admin_, "add", "server", "be/s4", "127.0.0.1:1", "check", "off", "state",
                     "ready"})
                .exit_code,
            0);
  EXPECT_EQ(row("s4")["check_status"], "");
  EXPECT_EQ(row("s4")["status"], "UP");
  CommandResult bad =
      weirctl({"-s", admin_, "add", "server", "be/s5", "127.0.0.1:2", "agent", "on"});
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_NE((bad.out + bad.err).find("has no agent: to copy"), std::string::npos) << bad.out;
}

}  // namespace
}  // namespace weir::test
