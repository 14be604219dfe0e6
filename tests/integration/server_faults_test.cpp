// Servers that fail or misbehave, and clients that give up, as an operator
// meets them: what the client gets, what the access log says, and that the
// counters of requests in progress come back to 0. doc/operations.md ("When a
// server misbehaves") documents each outcome. The most essential cases run
// under the sanitizers too, from server_faults_smoke_test.cpp.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "tests/integration/server_faults.h"
#include "tests/support/origin.h"

namespace weir::test::faults {
namespace {

using namespace std::chrono_literals;

// Reads requests forever and never answers.
TEST_F(ServerFaults, ASilentServerGets504AtTheServerTimeout) {
  std::atomic<bool> closed_by_weir{false};
  ScriptServer server([&](ScriptConn& c) {
    c.read_until("\r\n\r\n", 10000);
    closed_by_weir = c.wait_eof(30000);
  });
  spec_.backend_timeouts = "server: 1s, connect: 5s";
  ASSERT_TRUE(start({server.address()}));
  HttpClient c(spec_.port);
  auto r = c.request("GET", "/silent", {}, {}, 30000);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 504);
  EXPECT_EQ(r->header("Connection"), "close");
  auto line = wait_log("/silent");
  ASSERT_TRUE(line);
  EXPECT_EQ(line->status, "504") << line->text();
  EXPECT_EQ(line->term, "sH") << line->text();
  EXPECT_TRUE(wait_until([&] { return closed_by_weir.load(); }, 10000));
  EXPECT_TRUE(counters_back_to_zero()) << in_progress();
  EXPECT_EQ(stat_row("s1")["eresp"], "1");
}

// Servers that answer with something that is not HTTP: a banner of another
// protocol that stays open, an error line followed by a close, a TLS alert.
TEST_F(ServerFaults, AServerThatAnswersGarbageGets502AndShowErrorsHasIt) {
  const std::vector<std::pair<std::string, bool>> garbage = {
      {"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n", false},  // false: the server then waits
      {"-ERR unknown command 'GET'\r\n", true},       // true: the server then closes
      {std::string("\x15\x03\x01\x00\x02\x02\x46", 7), true},
  };
  ScriptServer server([&](ScriptConn& c) {
    bool ok = false;
    std::string head = c.read_until("\r\n\r\n", 10000, &ok);
    if (!ok) return;
    const auto& [bytes, then_close] = garbage.at(std::stoul(target_of(head).substr(1)));
    c.send(bytes);
    if (!then_close) c.wait_eof(30000);
  });
  ASSERT_TRUE(start({server.address()}));
  for (size_t i = 0; i < garbage.size(); ++i) {
    SCOPED_TRACE(i);
    const std::string target = "/" + std::to_string(i);
    auto r = http_get(spec_.port, target, 20000);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 502);
    auto line = wait_log("GET " + target + " ");
    ASSERT_TRUE(line);
    EXPECT_EQ(line->term, "PH") << line->text();
    // The runtime API keeps the last invalid response of the backend, bytes and all.
    std::string errors = weirctl({"-s", admin_, "show", "errors"}).out;
    EXPECT_NE(errors.find("backend be: invalid response"), std::string::npos) << errors;
    EXPECT_NE(errors.find("from be/s1: not an HTTP response"), std::string::npos) << errors;
    const std::string shown = i == 0 ? "SSH-2.0-OpenSSH" : i == 1 ? "-ERR unknown" : "\\x15\\x03";
    EXPECT_NE(errors.find(shown), std::string::npos) << errors;
  }
  EXPECT_TRUE(counters_back_to_zero()) << in_progress();
  EXPECT_EQ(stat_row("s1")["eresp"], std::to_string(garbage.size()));
}

// A response sent one piece at a time, a second apart, head included: with
// `timeouts.server: 3s` and a response that takes longer than that in all,
// each piece reaches the client before the server sends the next one, and the
// response ends complete: the server timeout measures inactivity.
TEST_F(ServerFaults, AResponseSentAByteASecondIsForwardedAsItArrives) {
  const std::vector<std::string> pieces = {
      "HTTP/1.1 200 OK\r\n", "Content-Length: 5\r\n\r\n", "s", "l", "o", "w", "!"};
  std::atomic<size_t> client_has{0};  // how many pieces the client has seen
  std::atomic<bool> forwarded_each{true};
  ScriptServer server([&](ScriptConn& c) {
    if (c.read_until("\r\n\r\n", 10000).empty()) return;
    for (size_t i = 0; i < pieces.size(); ++i) {
      if (i > 0) std::this_thread::sleep_for(1s);
      c.send(pieces[i]);
      // The body's bytes go out one by one as they come: the client sees each
      // before the next leaves the server. (The head is forwarded once whole.)
      if (i >= 2 && !wait_until([&] { return client_has.load() > i; }, 10000)) {
        forwarded_each = false;
      }
    }
    for (;;) {  // then an ordinary server
      if (c.read_until("\r\n\r\n", 10000).empty()) return;
      c.send("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
    }
  });
  spec_.backend_timeouts = "server: 3s, connect: 5s";
  ASSERT_TRUE(start({server.address()}));
  RawClient c(spec_.port);
  ASSERT_TRUE(c.send("GET /trickle HTTP/1.1\r\nHost: t\r\n\r\n"));
  std::string expected = "\r\n\r\n";
  ASSERT_TRUE(c.read_until(expected, 20000)) << c.received();
  client_has = 2;
  for (size_t i = 2; i < pieces.size(); ++i) {
    expected += pieces[i];
    ASSERT_TRUE(c.read_until(expected, 20000)) << c.received();
    client_has = i + 1;
  }
  EXPECT_TRUE(forwarded_each);
  auto line = wait_log("/trickle");
  ASSERT_TRUE(line);
  EXPECT_EQ(line->status, "200") << line->text();
  EXPECT_EQ(line->term, "--") << line->text();
  // The client's connection stays usable.
  auto again = c.http().request("GET", "/after");
  ASSERT_TRUE(again);
  EXPECT_EQ(again->body, "ok");
  EXPECT_TRUE(counters_back_to_zero()) << in_progress();
}

// The reused-connection race, every method, with the server closing by FIN or
// by RST: requests that RFC 9110 (9.2.2) calls idempotent and that carry no
// body are replayed once on a fresh connection; the others get a 502 and reach
// the server exactly once.
TEST_F(ServerFaults, OnlyIdempotentRequestsWithoutABodyAreReplayed) {
  ScriptServer server(reuse_race);
  ASSERT_TRUE(start({server.address()}));
  struct Case {
    std::string method, body;
    bool replayed;
  };
  const std::vector<Case> cases = {
      {"GET", "", true},         {"HEAD", "", true},         {"OPTIONS", "", true},
      {"TRACE", "", true},       {"PUT", "", true},          {"DELETE", "", true},
      {"POST", "", false},       {"PATCH", "", false},       {"POST", "form=1", false},
      {"PUT", "content", false}, {"GET", "odd body", false}, {"DELETE", "why", false},
  };
  int n = 0;
  for (const std::string variant : {"-fin", "-rst"}) {
    for (const Case& k : cases) {
      expect_reuse_race_outcome(server, k.method, "/case" + std::to_string(n++) + variant, k.body,
                                k.replayed);
    }
  }
  EXPECT_TRUE(counters_back_to_zero()) << in_progress();
}

// Servers that are not wrong, only awkward: a head and its body written apart,
// and a keep-alive response whose connection the server closes right after the
// last byte. The client gets whole responses and keeps its connection.
TEST_F(ServerFaults, AwkwardButValidServersAreRelayedWhole) {
  ScriptServer server([](ScriptConn& c) {
    for (;;) {
      bool ok = false;
      std::string head = c.read_until("\r\n\r\n", 10000, &ok);
      if (!ok) return;
      const std::string target = target_of(head);
      if (target == "/apart") {
        c.send("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n");
        std::this_thread::sleep_for(50ms);
        c.send("apart");
      } else if (target == "/apart-chunked") {
        c.send("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
        std::this_thread::sleep_for(50ms);
        c.send("5\r\napart\r\n");
        std::this_thread::sleep_for(50ms);
        c.send("0\r\n\r\n");
      } else {
        // Keep-alive as far as the headers go, then gone with the last byte.
        c.send("HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nlast");
        if (target == "/close-rst") {
          c.reset();
        } else {
          c.close();
        }
        return;
      }
    }
  });
  ASSERT_TRUE(start({server.address()}));
  HttpClient c(spec_.port);
  for (int round = 0; round < 3; ++round) {
    for (std::string target : {"/apart", "/apart-chunked", "/close-fin", "/close-rst"}) {
      SCOPED_TRACE(target + " round " + std::to_string(round));
      auto r = c.request("GET", target);
      ASSERT_TRUE(r);
      EXPECT_EQ(r->status, 200);
      EXPECT_EQ(r->body, target.starts_with("/apart") ? "apart" : "last");
      EXPECT_NE(r->header("Connection"), "close");
    }
  }
  std::this_thread::sleep_for(100ms);
  for (const LogLine& l : parse_log(weir_->stdout_text())) {
    EXPECT_EQ(l.term, "--") << l.text();
    EXPECT_EQ(l.status, "200") << l.text();
  }
  EXPECT_TRUE(counters_back_to_zero()) << in_progress();
}

// A body delimited by the server's close (no Content-Length, not chunked) that
// the server resets: the client must not take the truncated body for a whole one.
TEST_F(ServerFaults, AResetThatCutsACloseDelimitedBodyResetsTheClient) {
  expect_reset_passed_on("\r\n\r\n",
                         "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nfirst-part",
                         "GET /until-close HTTP/1.1\r\nHost: t\r\n\r\n", "/until-close");
}

// tcp mode: a server that resets in the middle of a stream resets the client's
// connection too (a FIN would make the truncated stream look complete).
TEST_F(ServerFaults, TcpModeAServerResetResetsTheClient) {
  spec_.mode = "tcp";
  spec_.logs = "[{target: stdout, format: " + yaml_quote("%s|-|%ts|%rc|%B|tcp") + "}]";
  expect_reset_passed_on("hello", "first-part", "hello", "tcp");
}

// The same in a WebSocket tunnel of an http frontend.
TEST_F(ServerFaults, AServerResetInAWebSocketTunnelResetsTheClient) {
  expect_reset_passed_on(
      "\r\n\r\n",
      "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n"
      "first-part",
      "GET /ws HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: upgrade\r\n"
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
      "/ws");
}

// ---- clients that give up (abortonclose) ---------------------------------------------------

// curl -m 1 against a request the server takes 20 s to answer: cancelled at once.
TEST_F(ServerFaults, CurlThatTimesOutCancelsItsRequest) {
  OriginServer origin("o");
  ASSERT_TRUE(start({origin.address()}));
  CommandResult r =
      run_command({"curl", "-s", "-m", "1", "-o", "/dev/null",
                   "http://127.0.0.1:" + std::to_string(spec_.port) + "/curl?delay=20000"});
  EXPECT_EQ(r.exit_code, 28);  // curl's "operation timed out"
  auto line = wait_log("/curl?delay=20000");
  ASSERT_TRUE(line);
  EXPECT_EQ(line->term, "CH") << line->text();
  EXPECT_EQ(line->status, "-") << line->text();
  // The slot is free while the server is still busy with the request.
  EXPECT_TRUE(counters_back_to_zero()) << in_progress();
}

// A client that leaves while queued for a server slot (maxconn 1, held by a
// request that never ends) gives its place back and is logged CQ.
TEST_F(ServerFaults, AClientThatLeavesTheQueueGivesItsPlaceBack) {
  OriginServer origin("o");
  spec_.server_options = "maxconn: 1";
  spec_.backend_timeouts = "server: 60s, connect: 5s, queue: 60s";
  ASSERT_TRUE(start({origin.address()}));
  HttpClient holder(spec_.port);
  ASSERT_TRUE(holder.send_raw("GET /hold?blackhole=1 HTTP/1.1\r\nHost: t\r\n\r\n"));
  ASSERT_TRUE(wait_until([&] { return stat_row("s1")["scur"] == "1"; }, 10000));
  {
    HttpClient waiting(spec_.port);
    ASSERT_TRUE(waiting.send_raw("GET /queued HTTP/1.1\r\nHost: t\r\n\r\n"));
    ASSERT_TRUE(wait_until([&] { return stat_row("BACKEND")["qcur"] == "1"; }, 10000));
    waiting.close();
  }
  auto line = wait_log("/queued");
  ASSERT_TRUE(line);
  EXPECT_EQ(line->term, "CQ") << line->text();
  EXPECT_EQ(line->status, "-") << line->text();
  EXPECT_TRUE(wait_until([&] { return stat_row("BACKEND")["qcur"] == "0"; }, 10000));
  EXPECT_EQ(stat_row("s1")["scur"], "1");  // the holder still has its slot
  holder.close();
  EXPECT_TRUE(counters_back_to_zero()) << in_progress();
  EXPECT_EQ(origin.requests().size(), 1u);  // the queued request never reached the server
}

// A client that leaves while weir is still connecting to the server: a server
// whose accept queue is full (listen backlog 0, one connection already waiting)
// drops weir's SYN, so the connection attempt hangs until the client leaves.
TEST_F(ServerFaults, AClientThatLeavesWhileWeirConnectsIsLoggedCC) {
  UniqueFd listener(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  ASSERT_TRUE(listener);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  ASSERT_EQ(::bind(listener.get(), reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ASSERT_EQ(::listen(listener.get(), 0), 0);
  ASSERT_EQ(::getsockname(listener.get(), reinterpret_cast<sockaddr*>(&a), &len), 0);
  const uint16_t port = ntohs(a.sin_port);
  UniqueFd filler(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  ASSERT_EQ(::connect(filler.get(), reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  spec_.backend_timeouts = "server: 60s, connect: 60s";
  spec_.retries = 0;
  ASSERT_TRUE(start({"127.0.0.1:" + std::to_string(port)}));
  {
    HttpClient c(spec_.port);
    ASSERT_TRUE(c.send_raw("GET /connecting HTTP/1.1\r\nHost: t\r\n\r\n"));
    ASSERT_TRUE(wait_until(
        [&] {
          return weirctl({"-s", admin_, "show", "sess"}).out.find("state=connecting") !=
                 std::string::npos;
        },
        10000));
    c.close();
  }
  auto line = wait_log("/connecting");
  ASSERT_TRUE(line);
  EXPECT_EQ(line->term, "CC") << line->text();
  EXPECT_EQ(line->status, "-") << line->text();
  EXPECT_TRUE(counters_back_to_zero()) << in_progress();
}

// A client that sends a second request behind the first and then shuts its
// sending side (`printf ... | nc -N`): that is a half-close, not a departure.
// Both requests are answered, even though the FIN arrives while the first one
// is still with the server.
TEST_F(ServerFaults, AHalfCloseAfterPipelinedRequestsIsAnswered) {
  OriginServer origin("o");
  ASSERT_TRUE(start({origin.address()}));
  HttpClient c(spec_.port);
  ASSERT_TRUE(c.send_raw("GET /p1?delay=300 HTTP/1.1\r\nHost: t\r\n\r\n"));
  ASSERT_TRUE(wait_until([&] { return stat_row("s1")["scur"] == "1"; }, 10000));
  ASSERT_TRUE(c.send_raw("GET /p2 HTTP/1.1\r\nHost: t\r\n\r\n"));
  ::shutdown(c.fd(), SHUT_WR);
  for (int i = 0; i < 2; ++i) {
    auto r = c.read_response(10000);
    ASSERT_TRUE(r) << "response " << i;
    EXPECT_EQ(r->status, 200);
  }
  EXPECT_TRUE(c.wait_closed(10000));
  for (std::string target : {"/p1", "/p2"}) {
    auto line = wait_log(target);
    ASSERT_TRUE(line) << target;
    EXPECT_EQ(line->term, "--") << line->text();
  }
}

// With `abortonclose: false`, a FIN is a half-close: the request runs to its end
// and the answer reaches the client, which can still read. A reset still cancels.
TEST_F(ServerFaults, WithoutAbortOnCloseAFinLetsTheRequestFinish) {
  OriginServer origin("o");
  spec_.backend_extra = "    abortonclose: false\n";
  ASSERT_TRUE(start({origin.address()}));
  {
    HttpClient c(spec_.port);
    ASSERT_TRUE(c.send_raw("GET /half?delay=300 HTTP/1.1\r\nHost: t\r\n\r\n"));
    ASSERT_TRUE(wait_until([&] { return stat_row("s1")["scur"] == "1"; }, 10000));
    ::shutdown(c.fd(), SHUT_WR);
    auto r = c.read_response(10000);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
    EXPECT_TRUE(c.wait_closed(10000));
    auto line = wait_log("/half");
    ASSERT_TRUE(line);
    EXPECT_EQ(line->term, "--") << line->text();
  }
  origin.set_blackhole(true);
  {
    HttpClient c(spec_.port);
    ASSERT_TRUE(c.send_raw("GET /reset HTTP/1.1\r\nHost: t\r\n\r\n"));
    ASSERT_TRUE(wait_until([&] { return stat_row("s1")["scur"] == "1"; }, 10000));
    linger lg{1, 0};
    ::setsockopt(c.fd(), SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    c.close();
  }
  auto line = wait_log("/reset");
  ASSERT_TRUE(line);
  EXPECT_EQ(line->term, "CH") << line->text();
  EXPECT_TRUE(counters_back_to_zero()) << in_progress();
}

}  // namespace
}  // namespace weir::test::faults
