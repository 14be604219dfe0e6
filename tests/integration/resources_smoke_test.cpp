// A buffer pool that runs dry (issue 13, item 3): connections wait for buffers
// instead of the worker dying, and every client gets its whole response. In a
// smoke file so that ASan and TSan watch the waiting connections come and go.

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "tests/support/client_swarm.h"
#include "tests/support/http_client.h"
#include "tests/support/launcher.h"
#include "tests/support/origin.h"

namespace weir::test {
namespace {

std::string get_request(const std::string& target) {
  return "GET " + target + " HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n";
}

// With the buffer pool capped (test hook WEIR_TEST_BUFFER_LIMIT: 8 buffers per
// thread, so two http transactions per thread at a time), many more clients
// than buffers, with big downloads, uploads and tcp-mode connections: they
// wait for buffers and every one gets its whole, correct response.
TEST(ResourcesSmoke, SessionsWaitForBuffersUnderAPoolLimit) {
  OriginServer origin("o");
  const uint16_t port = free_tcp_port();
  const uint16_t tcp_port = free_tcp_port();
  const std::string api = make_temp_dir() + "/api.sock";
  // An http frontend, and a tcp one (whose connections claim two buffers each).
  const std::string yaml =
      "global:\n"
      "  threads: 2\n"
      "  runtime_api: [" +
      yaml_quote(api) +
      "]\n"
      "frontends:\n"
      "  web: {bind: [\"127.0.0.1:" +
      std::to_string(port) +
      "\"], default_backend: app}\n"
      "  raw: {mode: tcp, bind: [\"127.0.0.1:" +
      std::to_string(tcp_port) +
      "\"], default_backend: rawapp}\n"
      "backends:\n"
      "  app: {servers: {s1: \"" +
      origin.address() +
      "\"}}\n"
      "  rawapp: {mode: tcp, servers: {s1: \"" +
      origin.address() + "\"}}\n";
  WeirOptions opts;
  opts.env = {{"WEIR_TEST_BUFFER_LIMIT", "8"}};
  auto weir = WeirProcess::start(yaml, opts);
  ASSERT_NE(weir, nullptr);
  const pid_t worker = weir->current_worker();

  constexpr size_t kBody = 300000;
  const std::string upload(kBody, 'u');
  SwarmOptions get;
  get.request = get_request("/?size=" + std::to_string(kBody) + "&delay=20");
  SwarmOptions post;
  post.request = "POST /?delay=20 HTTP/1.1\r\nHost: test\r\nConnection: close\r\nContent-Length: " +
                 std::to_string(kBody) + "\r\n\r\n" + upload;
  origin.clear_records();
  ClientSwarm downloads(port, 40, get);
  ClientSwarm uploads(port, 20, post);
  ASSERT_TRUE(downloads.wait_finished(60000));
  ASSERT_TRUE(uploads.wait_finished(60000));
  // Two transactions per thread at most: the cap held.
  EXPECT_LE(origin.peak_concurrent_requests(), 4);
  for (const SwarmResult& r : downloads.results()) {
    ASSERT_EQ(r.status(), 200) << r.response.substr(0, 300);
    EXPECT_EQ(r.body().size(), kBody);
    EXPECT_EQ(sha256_hex(r.body()), pattern_sha256(kBody));
  }
  const std::string upload_sha = sha256_hex(upload);
  for (const SwarmResult& r : uploads.results()) {
    ASSERT_EQ(r.status(), 200) << r.response.substr(0, 300);
    EXPECT_NE(r.response.find("X-Body-Sha256: " + upload_sha), std::string::npos);
  }
  // tcp mode: the same through a tcp frontend.
  ClientSwarm raw(tcp_port, 30, get);
  ASSERT_TRUE(raw.wait_finished(60000));
  for (const SwarmResult& r : raw.results()) {
    ASSERT_EQ(r.status(), 200) << r.response.substr(0, 300);
    EXPECT_EQ(sha256_hex(r.body()), pattern_sha256(kBody));
  }
  const std::string info = unix_command(api, "show info");
  EXPECT_GT(info_number(info, "BufferWaits"), 0) << info;
  EXPECT_EQ(weir->current_worker(), worker);  // nothing crashed
  EXPECT_EQ(count_matching_lines(weir->stderr_text(), "exited unexpectedly"), 0u);
}

// tcp mode under a pool limit with room for two sessions (4 buffers, 2 per
// session): eight clients send their requests, every session lets go of its
// buffers while the servers wait, and then all the servers answer at once. Most
// sessions wait for a claim with the server's bytes to read and nothing from
// the client. Each must use its turn when it comes. (Before, a session woken with
// a claim gave it back as soon as its client had nothing to send, before it
// read the server; two such sessions handed the claim to each other for ever and
// the thread spun without serving anyone.)
TEST(ResourcesSmoke, TcpSessionsWokenForBuffersReadTheirServers) {
  OriginServer origin("o");
  const uint16_t port = free_tcp_port();
  const std::string yaml =
      "global: {threads: 1}\n"
      "frontends:\n"
      "  raw: {mode: tcp, bind: [\"127.0.0.1:" +
      std::to_string(port) +
      "\"], default_backend: rawapp}\n"
      "backends:\n"
      "  rawapp: {mode: tcp, servers: {s1: \"" +
      origin.address() + "\"}}\n";
  WeirOptions opts;
  opts.env = {{"WEIR_TEST_BUFFER_LIMIT", "4"}};
  auto weir = WeirProcess::start(yaml, opts);
  ASSERT_NE(weir, nullptr);
  constexpr size_t kBody = 200000;
  for (int round = 0; round < 8; ++round) {
    SwarmOptions get;
    get.request = get_request("/?size=" + std::to_string(kBody) + "&delay=300");
    ClientSwarm raw(port, 8, get);
    ASSERT_TRUE(raw.wait_finished(20000)) << "round " << round;
    for (const SwarmResult& r : raw.results()) {
      ASSERT_EQ(r.status(), 200) << r.response.substr(0, 300);
      EXPECT_EQ(sha256_hex(r.body()), pattern_sha256(kBody));
    }
  }
}

// An idle connection holds no buffer: neither a keep-alive connection between
// requests nor one that has sent nothing yet. With room for two transactions
// (8 buffers, 4 per http transaction), twelve idle clients do not keep a
// thirteenth from being served. (Before, every idle connection kept the request
// buffer taken for a read that found nothing: about 4 KiB of memory each, and
// under a buffer limit the next client waited for ever.)
TEST(ResourcesSmoke, IdleConnectionsHoldNoBuffer) {
  OriginServer origin("o");
  const uint16_t port = free_tcp_port();
  const std::string yaml =
      "global: {threads: 1}\n"
      "frontends:\n"
      "  web: {bind: [\"127.0.0.1:" +
      std::to_string(port) +
      "\"], default_backend: app}\n"
      "backends:\n"
      "  app: {servers: {s1: \"" +
      origin.address() + "\"}}\n";
  WeirOptions opts;
  opts.env = {{"WEIR_TEST_BUFFER_LIMIT", "8"}};
  auto weir = WeirProcess::start(yaml, opts);
  ASSERT_NE(weir, nullptr);
  std::vector<std::unique_ptr<HttpClient>> idle;
  for (int i = 0; i < 6; ++i) {  // keep-alive, after one request each
    idle.push_back(std::make_unique<HttpClient>(port));
    auto r = idle.back()->request("GET", "/");
    ASSERT_TRUE(r) << "keep-alive client " << i;
    EXPECT_EQ(r->status, 200);
  }
  for (int i = 0; i < 6; ++i) {  // connected, nothing sent
    idle.push_back(std::make_unique<HttpClient>(port));
    ASSERT_TRUE(idle.back()->connected());
  }
  for (int i = 0; i < 3; ++i) {
    HttpClient fresh(port);
    auto r = fresh.request("GET", "/", {}, {}, 5000);
    ASSERT_TRUE(r) << "a new client waited behind idle connections (" << i << ")";
    EXPECT_EQ(r->status, 200);
  }
  // The idle ones are still usable.
  for (size_t i = 0; i < 6; ++i) {
    auto r = idle[i]->request("GET", "/");
    ASSERT_TRUE(r) << "keep-alive client " << i << " after the others";
    EXPECT_EQ(r->status, 200);
  }
}

}  // namespace
}  // namespace weir::test
