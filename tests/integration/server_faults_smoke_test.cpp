// The server faults that matter most, also run under ASan and TSan: a server
// that resets in the middle of a body, a server that closes a reused keep-alive
// connection just as weir sends a request on it, and a client that gives up
// while its request waits for the server. The fuller set is in
// server_faults_test.cpp; doc/operations.md ("When a server misbehaves") says
// what a client and the logs show in each case.

#include <atomic>
#include <thread>

#include "tests/integration/server_faults.h"
#include "tests/support/origin.h"

namespace weir::test::faults {
namespace {

// A server that answers /ok, and on /cl and /chunked sends the head and a first
// part of the body, waits until the test says the client has it, then resets.
TEST_F(ServerFaults, AResetInTheMiddleOfABodyClosesTheClientAtOnce) {
  std::atomic<bool> client_has_part{false};
  ScriptServer server([&](ScriptConn& c) {
    for (;;) {
      bool ok = false;
      std::string head = c.read_until("\r\n\r\n", 10000, &ok);
      if (!ok) return;
      const std::string target = target_of(head);
      if (target == "/ok") {
        c.send("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
        continue;
      }
      if (target == "/cl") {
        c.send("HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\nfirst-part");
      } else {
        c.send("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\na\r\nfirst-part\r\n");
      }
      wait_until([&] { return client_has_part.load(); }, 10000);
      c.reset();
      return;
    }
  });
  ASSERT_TRUE(start({server.address()}));

  for (std::string target : {"/cl", "/chunked"}) {
    SCOPED_TRACE(target);
    client_has_part = false;
    RawClient c(spec_.port);
    // A keep-alive connection that already carried a request.
    auto first = c.http().request("GET", "/ok");
    ASSERT_TRUE(first);
    EXPECT_EQ(first->body, "ok");
    ASSERT_TRUE(c.send("GET " + target + " HTTP/1.1\r\nHost: t\r\n\r\n"));
    ASSERT_TRUE(c.read_until("first-part", 10000)) << c.received();
    client_has_part = true;
    // The client is not left waiting for the rest until a timeout (client and
    // server timeouts are 60 s here): its connection closes as soon as weir
    // sees the reset.
    EXPECT_TRUE(c.wait_closed(10000)) << c.received();
    EXPECT_EQ(c.received().find("\r\n0\r\n"), std::string::npos) << "a truncated body ended";
    auto line = wait_log(target);
    ASSERT_TRUE(line);
    EXPECT_EQ(line->status, "200") << line->text();
    EXPECT_EQ(line->term, "SD") << line->text();
    EXPECT_TRUE(counters_back_to_zero()) << in_progress();
  }
  EXPECT_EQ(stat_row("s1")["srv_abrt"], "2");
}

// A pooled server connection that the server closes just as weir sends the
// next request on it (the server of server_faults.h's reuse_race).
TEST_F(ServerFaults, AReusedConnectionClosedUnderARequestReplaysOnlyWhatIsSafe) {
  ScriptServer server(reuse_race);
  ASSERT_TRUE(start({server.address()}));

  expect_reuse_race_outcome(server, "GET", "/get", "", true);
  expect_reuse_race_outcome(server, "POST", "/post-empty", "", false);
  expect_reuse_race_outcome(server, "POST", "/post-body", "payload", false);
  EXPECT_TRUE(counters_back_to_zero()) << in_progress();
}

// A client that closes its connection while the server is still working on its
// request: weir cancels the request, closes the server connection and frees the
// slot at once, and logs a client abort without a status.
TEST_F(ServerFaults, AClientThatGivesUpCancelsItsRequest) {
  OriginServer origin("o");
  origin.set_blackhole(true);  // never answers: only the client's close can end the request
  ASSERT_TRUE(start({origin.address()}));
  {
    HttpClient c(spec_.port);
    ASSERT_TRUE(c.send_raw("GET /gave-up HTTP/1.1\r\nHost: t\r\n\r\n"));
    ASSERT_TRUE(wait_until([&] { return stat_row("s1")["scur"] == "1"; }, 10000)) << in_progress();
    c.close();
  }
  auto line = wait_log("/gave-up");
  ASSERT_TRUE(line);
  EXPECT_EQ(line->term, "CH") << line->text();
  EXPECT_EQ(line->status, "-") << line->text();  // no response was sent
  EXPECT_TRUE(counters_back_to_zero()) << in_progress();
  EXPECT_TRUE(wait_until([&] { return origin.current_connections() == 0; }, 10000));
  std::string json;
  EXPECT_TRUE(wait_until([&] { return !(json = json_line("/gave-up")).empty(); }, 10000));
  EXPECT_NE(json.find("\"status\":0,"), std::string::npos) << json;
  EXPECT_NE(json.find("\"termination\":\"CH\""), std::string::npos) << json;
  EXPECT_EQ(stat_row("s1")["cli_abrt"], "1");
}

}  // namespace
}  // namespace weir::test::faults
