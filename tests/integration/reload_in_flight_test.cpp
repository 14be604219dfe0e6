// Reloads that land in the middle of responses. The servers here write a
// response's head and its body apart (as most real servers do), send chunked
// bodies with pauses, interim responses before the final one, and answer
// pipelined requests, so a reload (SIGHUP, SIGUSR2 or the master CLI) almost
// always finds a response half sent. No client may see a failure: a
// keep-alive connection whose response head went out without "Connection:
// close" must stay usable for its next request.

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>

#include <atomic>
#include <list>
#include <mutex>
#include <thread>

#include "tests/support/http_client.h"
#include "tests/support/launcher.h"
#include "tests/support/origin.h"

namespace weir::test {
namespace {

std::string config(uint16_t port, const std::string& server, const std::string& sock) {
  return "global:\n  threads: 2\n  max_old_generations: 60\n  master_socket: " + sock +
         "\n"
         "defaults:\n  timeouts: {http_keep_alive: 3s}\n"
         "frontends:\n  web: {bind: [\"127.0.0.1:" +
         std::to_string(port) +
         "\"], default_backend: app}\n"
         "backends:\n  app:\n    servers: {s1: \"" +
         server + "\"}\n";
}

// Collects what went wrong, for the failure message.
class Tally {
 public:
  void ok() { ++ok_; }
  void bad(const std::string& what) {
    ++bad_;
    std::lock_guard lock(mu_);
    if (problems_.size() < 20) problems_.push_back(what);
  }
  int oks() const { return ok_; }
  int bads() const { return bad_; }
  std::string problems() const {
    std::lock_guard lock(mu_);
    return ::testing::PrintToString(problems_);
  }

 private:
  std::atomic<int> ok_{0}, bad_{0};
  mutable std::mutex mu_;
  std::vector<std::string> problems_;
};

// The origin's body for a request: its own name, or the size= pattern; checked
// against the digest the origin computed (X-Response-Sha256).
bool body_ok(const HttpResponse& r, bool head) {
  if (r.status != 200 || r.header("X-Server") != "o") return false;
  if (head) return r.body.empty();
  return sha256_hex(r.body) == r.header("X-Response-Sha256");
}

// A keep-alive client sending `target` back to back with `method`, opening a
// new connection only when the previous response said "Connection: close".
void keep_alive_client(uint16_t port, const std::string& kind, const std::string& method,
                       const std::string& target, const std::string& body,
                       const std::atomic<bool>& stop, Tally& t) {
  std::unique_ptr<HttpClient> c;
  int on_connection = 0;
  while (!stop) {
    try {
      if (!c) {
        c = std::make_unique<HttpClient>(port);
        on_connection = 0;
      }
    } catch (const std::exception& e) {
      t.bad(kind + ": connect: " + e.what());
      continue;
    }
    auto r = c->request(method, target, {}, body, 15000);
    if (!r) {
      t.bad(kind + ": no response (request " + std::to_string(on_connection) +
            " on its connection)");
      c.reset();
      continue;
    }
    if (!body_ok(*r, method == "HEAD") ||
        (!body.empty() && r->header("X-Body-Sha256") != sha256_hex(body))) {
      t.bad(kind + ": bad response " + std::to_string(r->status));
    } else {
      t.ok();
    }
    ++on_connection;
    if (r->header("Connection") == "close") c.reset();
  }
}

// Three requests in one write, then their three responses. Every request weir
// has read is answered, even when a reload comes in between.
void pipelining_client(uint16_t port, const std::atomic<bool>& stop, Tally& t) {
  std::unique_ptr<HttpClient> c;
  while (!stop) {
    try {
      if (!c) c = std::make_unique<HttpClient>(port);
    } catch (const std::exception& e) {
      t.bad(std::string("pipelined: connect: ") + e.what());
      continue;
    }
    std::string batch;
    for (int i = 0; i < 3; ++i)
      batch += "GET /p?split=5&n=" + std::to_string(i) + " HTTP/1.1\r\nHost: test\r\n\r\n";
    c->send_raw(batch);
    bool closing = false;
    for (int i = 0; i < 3; ++i) {
      auto r = c->read_response(15000);
      if (!r) {
        t.bad("pipelined: response " + std::to_string(i) + " of 3 missing");
        closing = true;
        break;
      }
      if (!body_ok(*r, false)) {
        t.bad("pipelined: bad response " + std::to_string(r->status));
      } else {
        t.ok();
      }
      if (r->header("Connection") == "close") {
        closing = true;
        if (i != 2) t.bad("pipelined: closed after " + std::to_string(i + 1) + " of 3");
        break;
      }
    }
    if (closing) c.reset();
  }
}

TEST(ReloadInFlight, FiftyReloadsInTheMiddleOfResponsesLoseNothing) {
  ignore_sigpipe();
  OriginServer origin("o");
  const uint16_t port = free_tcp_port();
  const std::string dir = make_temp_dir();
  const std::string sock = dir + "/master.sock";
  auto weir = WeirProcess::start(config(port, origin.address(), sock));
  ASSERT_TRUE(weir);

  std::atomic<bool> stop{false};
  Tally t;
  const std::string upload(3000, 'u');
  std::list<std::thread> clients;  // (a vector trips g++ 12's -Warray-bounds here)
  clients.emplace_back(
      [&] { keep_alive_client(port, "split", "GET", "/s?split=15", "", stop, t); });
  clients.emplace_back([&] {
    keep_alive_client(port, "chunked", "GET", "/c?chunked=1&chunk=100&size=500&split=3&pause=3", "",
                      stop, t);
  });
  clients.emplace_back(
      [&] { keep_alive_client(port, "head", "HEAD", "/h?split=10", "", stop, t); });
  clients.emplace_back([&] {
    keep_alive_client(port, "interim", "GET", "/i?interim=103&split=8&size=2000", "", stop, t);
  });
  clients.emplace_back(
      [&] { keep_alive_client(port, "upload", "POST", "/u?split=10", upload, stop, t); });
  clients.emplace_back([&] { pipelining_client(port, stop, t); });
  clients.emplace_back([&] {  // one connection per request
    while (!stop) {
      auto r = http_get(port, "/f?split=10", 15000);
      if (!r || !body_ok(*r, false)) {
        t.bad("fresh: " + (r ? std::to_string(r->status) : std::string("no response")));
      } else {
        t.ok();
      }
    }
  });

  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  for (int i = 1; i <= 50; ++i) {
    const size_t ready_before = weir->ready_workers().size();
    switch (i % 3) {
      case 0:
        weir->signal(SIGHUP);
        break;
      case 1:
        weir->signal(SIGUSR2);
        break;
      default: {
        const std::string out = unix_command(sock, "reload");
        ASSERT_EQ(out.rfind("Success=1", 0), 0u) << "reload " << i << ": " << out;
        break;
      }
    }
    ASSERT_TRUE(weir->wait_ready_count(ready_before + 1, 20000)) << "reload " << i;
    std::this_thread::sleep_for(std::chrono::milliseconds(120));
  }
  stop = true;
  for (auto& c : clients) c.join();

  EXPECT_EQ(t.bads(), 0) << t.problems();
  EXPECT_GT(t.oks(), 500);
  // Every old generation finishes its connections and exits.
  EXPECT_TRUE(wait_until(
      [&] { return count_matching_lines(unix_command(sock, "show proc"), "draining") == 0; },
      20000))
      << unix_command(sock, "show proc");
  weir.reset();
  remove_tree(dir);
}

// A client that sends several requests and then shuts its side (as `printf ...
// | nc` does) gets every answer before weir closes.
TEST(ReloadInFlight, PipelinedRequestsBeforeTheClientsEndAreAllAnswered) {
  ignore_sigpipe();
  OriginServer origin("o");
  const uint16_t port = free_tcp_port();
  const std::string dir = make_temp_dir();
  auto weir = WeirProcess::start(config(port, origin.address(), dir + "/master.sock"));
  ASSERT_TRUE(weir);
  HttpClient c(port);
  std::string batch;
  for (int i = 0; i < 4; ++i)
    batch += "GET /e?split=5&n=" + std::to_string(i) + " HTTP/1.1\r\nHost: test\r\n\r\n";
  ASSERT_TRUE(c.send_raw(batch));
  ::shutdown(c.fd(), SHUT_WR);
  for (int i = 0; i < 4; ++i) {
    auto r = c.read_response(10000);
    ASSERT_TRUE(r) << "response " << i << " of 4";
    EXPECT_TRUE(body_ok(*r, false));
  }
  EXPECT_TRUE(c.wait_closed(5000));
  weir.reset();
  remove_tree(dir);
}

// A reload while a keep-alive connection is idle: the connection stays open,
// its next request is answered (with "Connection: close"), and the old
// generation exits once it is gone.
TEST(ReloadInFlight, AnIdleKeepAliveConnectionIsAnsweredOnceMoreAfterAReload) {
  ignore_sigpipe();
  OriginServer origin("o");
  const uint16_t port = free_tcp_port();
  const std::string dir = make_temp_dir();
  const std::string sock = dir + "/master.sock";
  auto weir = WeirProcess::start(config(port, origin.address(), sock));
  ASSERT_TRUE(weir);
  HttpClient c(port);
  auto first = c.request("GET", "/a?split=5");
  ASSERT_TRUE(first);
  EXPECT_NE(first->header("Connection"), "close");
  ASSERT_EQ(unix_command(sock, "reload").rfind("Success=1", 0), 0u);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  auto second = c.request("GET", "/b?split=5");
  ASSERT_TRUE(second) << "the connection was closed under the client";
  EXPECT_TRUE(body_ok(*second, false));
  EXPECT_EQ(second->header("Connection"), "close");
  EXPECT_TRUE(c.wait_closed(5000));
  EXPECT_TRUE(wait_until(
      [&] { return count_matching_lines(unix_command(sock, "show proc"), "draining") == 0; },
      10000))
      << unix_command(sock, "show proc");
  weir.reset();
  remove_tree(dir);
}

}  // namespace
}  // namespace weir::test
