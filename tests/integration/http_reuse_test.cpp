// A backend's http_reuse (doc/configuration.md): which idle server connection a
// request may take. The origin says which of its connections served each
// request (X-Conn-Index); weir runs one thread, so every client's requests and
// every idle server connection meet in one pool.

#include <gtest/gtest.h>

#include <string>
#include <thread>

#include "tests/integration/server_faults.h"
#include "tests/support/http_client.h"
#include "tests/support/launcher.h"
#include "tests/support/origin.h"
#include "tests/support/util.h"
#include "tests/support/weir_config.h"

namespace weir::test {
namespace {

class HttpReuse : public ::testing::Test {
 protected:
  std::unique_ptr<WeirProcess> start(const std::string& mode) {
    spec_.servers = {origin_.address()};
    spec_.threads = 1;
    spec_.frontend_timeouts = "client: 30s, http_keep_alive: 30s";
    spec_.logs = "[{target: stdout, format: " + yaml_quote("%r|retries=%rc") + "}]";
    if (!mode.empty()) spec_.backend_extra = "    http_reuse: " + mode + "\n";
    return WeirProcess::start(proxy_yaml(spec_));
  }
  // Which origin connection served a GET on `c`.
  static std::string conn_of(HttpClient& c, const std::string& target) {
    auto r = c.request("GET", target);
    EXPECT_TRUE(r) << target;
    if (!r) return "?";
    EXPECT_EQ(r->status, 200) << target;
    return r->header("X-Conn-Index");
  }

  OriginServer origin_{"o"};
  ProxySpec spec_;
};

TEST_F(HttpReuse, AlwaysGivesAnIdleConnectionToAnyClient) {
  auto weir = start("");  // the default
  ASSERT_TRUE(weir);
  HttpClient a(spec_.port);
  const std::string first = conn_of(a, "/a1");
  HttpClient b(spec_.port);
  // b's first request takes the connection a's request left idle.
  EXPECT_EQ(conn_of(b, "/b1"), first);
  EXPECT_EQ(conn_of(a, "/a2"), first);
  EXPECT_EQ(origin_.connections_accepted(), 1);
}

TEST_F(HttpReuse, NeverKeepsOneServerConnectionPerClientAndClosesItWithTheClient) {
  auto weir = start("never");
  ASSERT_TRUE(weir);
  auto a = std::make_unique<HttpClient>(spec_.port);
  const std::string a_conn = conn_of(*a, "/a1");
  HttpClient b(spec_.port);
  const std::string b_conn = conn_of(b, "/b1");
  EXPECT_NE(b_conn, a_conn);  // b never meets the connection a opened
  for (int i = 2; i <= 4; ++i) {
    EXPECT_EQ(conn_of(*a, "/a" + std::to_string(i)), a_conn);  // a keeps its own
    EXPECT_EQ(conn_of(b, "/b" + std::to_string(i)), b_conn);
  }
  EXPECT_EQ(origin_.connections_accepted(), 2);
  // A new client gets a new connection although a's and b's wait idle.
  HttpClient c(spec_.port);
  const std::string c_conn = conn_of(c, "/c1");
  EXPECT_NE(c_conn, a_conn);
  EXPECT_NE(c_conn, b_conn);
  // a's server connection ends with a's connection (it never went to a pool).
  ASSERT_EQ(origin_.current_connections(), 3);
  a.reset();
  EXPECT_TRUE(wait_until([&] { return origin_.current_connections() == 2; }, 10000))
      << origin_.current_connections();
}

TEST_F(HttpReuse, NeverSeesAPrivateConnectionTheServerClosedAndOpensAnother) {
  origin_.set_idle_timeout_ms(300);  // the origin closes connections idle this long
  auto weir = start("never");
  ASSERT_TRUE(weir);
  HttpClient a(spec_.port);
  const std::string first = conn_of(a, "/a1");
  ASSERT_TRUE(wait_until([&] { return origin_.current_connections() == 0; }, 10000));
  // No retry needed: weir saw the close while the connection was idle, and
  // did not send the request on it (a replay would log retries=1).
  const std::string second = conn_of(a, "/a2");
  EXPECT_NE(second, first);
  EXPECT_EQ(origin_.connections_accepted(), 2);
  EXPECT_TRUE(wait_until(
      [&] { return weir->stdout_text().find("GET /a2 HTTP/1.1|retries=0\n") != std::string::npos; },
      10000))
      << weir->stdout_text();
}

TEST_F(HttpReuse, SafeGivesAClientsFirstRequestANewConnectionAndLaterOnesAnyIdleOne) {
  auto weir = start("safe");
  ASSERT_TRUE(weir);
  HttpClient a(spec_.port);
  const std::string x = conn_of(a, "/a1");  // idle in the pool after this
  HttpClient b(spec_.port);
  const std::string y = conn_of(b, "/b1");
  EXPECT_NE(y, x);  // a first request: not a connection another client left
  HttpClient c(spec_.port);
  const std::string z = conn_of(c, "/c1");
  EXPECT_NE(z, x);
  EXPECT_NE(z, y);
  // b's second request may take any idle connection: the warmest, c's.
  EXPECT_EQ(conn_of(b, "/b2"), z);
  EXPECT_EQ(origin_.connections_accepted(), 3);
}

}  // namespace

namespace faults {
namespace {

// A connection the server closes just as weir sends the next request on it: in
// every mode, a request the server cannot have seen is replayed once on a new
// connection, and one that cannot be replayed gets a 502 (the risk the modes
// trade against each other; doc/configuration.md).
class HttpReuseRace : public ServerFaults, public ::testing::WithParamInterface<const char*> {};

TEST_P(HttpReuseRace, OnlyRequestsTheServerCannotHaveSeenAreReplayed) {
  spec_.backend_extra = std::string("    http_reuse: ") + GetParam() + "\n";
  ScriptServer server(reuse_race);
  ASSERT_TRUE(start({server.address()}));
  // The second request of a client connection: its own (never) or a pooled
  // connection (safe, always) that served /warm.
  expect_reuse_race_outcome(server, "GET", "/get", "", true);
  expect_reuse_race_outcome(server, "POST", "/post-body", "payload", false);
  EXPECT_TRUE(counters_back_to_zero()) << in_progress();
}

INSTANTIATE_TEST_SUITE_P(Modes, HttpReuseRace, ::testing::Values("never", "safe", "always"));

// safe: a client's first request never meets a connection another client left,
// so it cannot be the one that finds it closed.
TEST_F(ServerFaults, SafeNeverRisksAClientsFirstRequest) {
  spec_.backend_extra = "    http_reuse: safe\n";
  ScriptServer server(reuse_race);
  ASSERT_TRUE(start({server.address()}));
  {
    HttpClient a(spec_.port);
    ASSERT_TRUE(a.request("GET", "/warm"));  // leaves a pooled connection behind
  }
  HttpClient b(spec_.port);
  auto r = b.request("POST", "/first-post", {}, "payload");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(count_of(server.received(), " /first-post "), 1);
  auto line = wait_log(" /first-post ");
  ASSERT_TRUE(line);
  EXPECT_EQ(line->retries, "0") << line->text();
  EXPECT_TRUE(counters_back_to_zero()) << in_progress();
}

}  // namespace
}  // namespace faults
}  // namespace weir::test
