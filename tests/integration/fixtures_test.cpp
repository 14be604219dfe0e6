// Self-test of the integration-test fixtures: the origin server and the HTTP client talk to
// each other directly (no weir involved).

#include <gtest/gtest-spi.h>
#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/http_client.h"
#include "tests/support/launcher.h"
#include "tests/support/origin.h"
#include "tests/support/util.h"
#include "tests/support/weir_config.h"

namespace weir::test {
namespace {

using Clock = std::chrono::steady_clock;

long long elapsed_ms(Clock::time_point since) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - since).count();
}

// A sanitizer report that the master or a worker wrote to stderr fails the
// test that ran it, whatever the test asserted (WeirProcess's destructor).
TEST(FixturesSmoke, ASanitizerReportInWeirsLogFailsTheTest) {
  OriginServer origin("o");
  ProxySpec spec;
  spec.servers = {origin.address()};
  std::string yaml = proxy_yaml(spec);
  EXPECT_NONFATAL_FAILURE(
      {
        auto weir = WeirProcess::start(yaml);
        ASSERT_TRUE(weir);
        std::FILE* f = std::fopen((weir->dir() + "/stderr.log").c_str(), "a");
        ASSERT_TRUE(f);
        std::fputs("==4242==ERROR: AddressSanitizer: heap-use-after-free on address 0x1\n", f);
        std::fclose(f);
      },
      "a sanitizer report in weir's stderr");
}

TEST(FixturesSmoke, PatternAndHashing) {
  std::string p = pattern_bytes(0, 10000);
  for (size_t i : {size_t{0}, size_t{1}, size_t{4092}, size_t{4093}, size_t{8186}, size_t{9999}})
    EXPECT_EQ(p[i], static_cast<char>('a' + (i * 7 + i / 4093) % 26)) << i;
  EXPECT_EQ(pattern_bytes(4000, 200), p.substr(4000, 200));
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  Sha256 h;
  h.update("a");
  h.update("bc");
  EXPECT_EQ(h.hex_final(), sha256_hex("abc"));
  EXPECT_EQ(h.hex_final(), sha256_hex(""));  // reusable after hex_final
  EXPECT_EQ(pattern_sha256(200000), sha256_hex(pattern_bytes(0, 200000)));
}

TEST(FixturesSmoke, UtilHelpers) {
  EXPECT_NE(free_tcp_port(), 0);
  auto r = run_command({"sh", "-c", "cat; echo oops >&2; exit 3"}, 5000, "hello");
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_EQ(r.out, "hello");
  EXPECT_EQ(r.err, "oops\n");
  auto start = Clock::now();
  auto slow = run_command({"sleep", "10"}, 200);
  EXPECT_EQ(slow.exit_code, -1);
  EXPECT_LT(elapsed_ms(start), 8000);  // killed, not waited for
  EXPECT_EQ(run_command({"/nonexistent/binary"}, 5000).exit_code, 127);

  std::string dir = make_temp_dir();
  EXPECT_EQ(dir.rfind("/tmp/weir-test-", 0), 0u);
  write_file(dir + "/f", std::string("a\0b", 3));
  EXPECT_EQ(read_file(dir + "/f"), std::string("a\0b", 3));
  remove_tree(dir);
  EXPECT_THROW(read_file(dir + "/f"), std::runtime_error);

  EXPECT_EQ(tail_lines("1\n2\n3\n", 2), "2\n3\n");
  EXPECT_EQ(yaml_quote("a\"b\\c"), "\"a\\\"b\\\\c\"");
  EXPECT_EQ(count_matching_lines("x=1\ny=2\nx=3\n", "^x="), 2u);
}

TEST(FixturesSmoke, OriginAnswersGet) {
  OriginServer origin("alpha");
  ASSERT_NE(origin.port(), 0);
  auto r = http_get(origin.port(), "/hello?x=1");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->header("x-server"), "alpha");
  EXPECT_EQ(r->body, "alpha\n");
  EXPECT_EQ(r->header("X-Response-Sha256"), sha256_hex("alpha\n"));
  EXPECT_EQ(r->header("X-Body-Size"), "0");
  EXPECT_EQ(r->header("X-Body-Sha256"), sha256_hex(""));
  EXPECT_EQ(r->header("Connection"), "close");
  auto reqs = origin.requests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(reqs[0].method, "GET");
  EXPECT_EQ(reqs[0].target, "/hello?x=1");
  EXPECT_EQ(reqs[0].version, "HTTP/1.1");
  EXPECT_EQ(reqs[0].header("host"), "test");
  EXPECT_EQ(reqs[0].head.substr(reqs[0].head.size() - 4), "\r\n\r\n");
  EXPECT_EQ(origin.received_bytes(), reqs[0].head);
  EXPECT_EQ(origin.connections_accepted(), 1);
  EXPECT_EQ(origin.requests_served(), 1);
  EXPECT_TRUE(wait_until([&] { return origin.current_connections() == 0; }, 3000));
}

TEST(FixturesSmoke, KeepAliveReusesConnection) {
  OriginServer origin("ka");
  HttpClient c(origin.port());
  for (int i = 0; i < 3; ++i) {
    auto r = c.request("GET", "/");
    ASSERT_TRUE(r) << i;
    EXPECT_EQ(r->header("X-Request-Index"), std::to_string(i));
    EXPECT_EQ(r->header("X-Conn-Index"), "0");
    EXPECT_FALSE(r->has_header("Connection"));
  }
  EXPECT_EQ(origin.connections_accepted(), 1);
  EXPECT_EQ(origin.current_connections(), 1);
  HttpClient c2(origin.port());
  auto r = c2.request("GET", "/");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->header("X-Conn-Index"), "1");
  EXPECT_EQ(r->header("X-Request-Index"), "0");
}

TEST(FixturesSmoke, SizedBodyMatchesPattern) {
  OriginServer origin("sized");
  auto r = http_get(origin.port(), "/?size=100000");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->header("Content-Length"), "100000");
  EXPECT_EQ(r->body, pattern_bytes(0, 100000));
  EXPECT_EQ(r->header("X-Response-Sha256"), sha256_hex(r->body));
}

TEST(FixturesSmoke, ChunkedResponseIsDechunked) {
  OriginServer origin("chunky");
  HttpClient c(origin.port());
  ASSERT_TRUE(c.send_raw("GET /?size=10000&chunked=1&chunk=3000 HTTP/1.1\r\nHost: x\r\n\r\n"));
  std::string raw;
  auto complete = [&] {
    raw += c.read_available(20);
    return raw.size() >= 7 && raw.compare(raw.size() - 7, 7, "\r\n0\r\n\r\n") == 0;
  };
  ASSERT_TRUE(wait_until(complete, 5000)) << raw;
  EXPECT_NE(raw.find("\r\n\r\nbb8\r\n"), std::string::npos);  // 3000 = 0xbb8
  EXPECT_NE(raw.find("\r\n3e8\r\n"), std::string::npos);      // 1000 left
}

TEST(FixturesSmoke, ChunkedResponseViaClient) {
  OriginServer origin("chunky");
  HttpClient c(origin.port());
  auto r = c.request("GET", "/?size=10000&chunked=1&chunk=3000");
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->chunked);
  EXPECT_EQ(r->header("Transfer-Encoding"), "chunked");
  EXPECT_FALSE(r->has_header("Content-Length"));
  EXPECT_EQ(r->body, pattern_bytes(0, 10000));
  EXPECT_EQ(r->header("X-Response-Sha256"), sha256_hex(r->body));
  // Default chunk size, and the connection stays usable afterwards.
  r = c.request("GET", "/?size=10000&chunked=1");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->body, pattern_bytes(0, 10000));
  r = c.request("GET", "/");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->header("X-Request-Index"), "2");
}

TEST(FixturesSmoke, PostBodyIsHashed) {
  OriginServer origin("post");
  std::string body = pattern_bytes(12345, 1 << 20);
  HttpClient c(origin.port());
  auto r = c.request("POST", "/upload", {{"Content-Type", "application/octet-stream"}}, body);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->header("X-Body-Size"), std::to_string(body.size()));
  EXPECT_EQ(r->header("X-Body-Sha256"), sha256_hex(body));
  auto reqs = origin.requests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(reqs[0].body_size, body.size());
  EXPECT_EQ(reqs[0].body_sha256, sha256_hex(body));
  EXPECT_FALSE(reqs[0].chunked_body);
}

TEST(FixturesSmoke, ChunkedUploadIsDechunkedAndHashed) {
  OriginServer origin("post");
  HttpClient c(origin.port());
  ASSERT_TRUE(
      c.send_raw("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                 "5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: yes\r\n\r\n"));
  auto r = c.read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->header("X-Body-Size"), "11");
  EXPECT_EQ(r->header("X-Body-Sha256"), sha256_hex("hello world"));
  auto reqs = origin.requests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_TRUE(reqs[0].chunked_body);
  ASSERT_EQ(reqs[0].trailers.size(), 1u);
  EXPECT_EQ(reqs[0].trailers[0].second, "yes");
}

TEST(FixturesSmoke, ExpectContinueAndPipelining) {
  OriginServer origin("pipe");
  HttpClient c(origin.port());
  auto r = c.request("PUT", "/", {{"Expect", "100-continue"}}, "data");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->header("X-Body-Size"), "4");
  ASSERT_TRUE(
      c.send_raw("GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b?status=404 HTTP/1.1\r\n"
                 "Host: x\r\n\r\n"));
  auto a = c.read_response();
  auto b = c.read_response();
  ASSERT_TRUE(a && b);
  EXPECT_EQ(a->status, 200);
  EXPECT_EQ(b->status, 404);
  EXPECT_EQ(b->header("X-Request-Index"), "2");
}

TEST(FixturesSmoke, StatusHeadAndDefaults) {
  OriginServer origin("st");
  HttpClient c(origin.port());
  auto r = c.request("GET", "/?status=503&header=X-Extra%3A%20v1");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 503);
  EXPECT_EQ(r->reason, "Service Unavailable");
  EXPECT_EQ(r->header("X-Extra"), "v1");
  r = c.request("HEAD", "/?size=1000");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->header("Content-Length"), "1000");
  EXPECT_TRUE(r->body.empty());
  r = c.request("GET", "/?status=204");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 204);
  EXPECT_FALSE(r->has_header("Content-Length"));
  origin.set_default_status(418);
  origin.set_default_delay_ms(150);
  auto start = Clock::now();
  r = c.request("GET", "/");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 418);
  EXPECT_GE(elapsed_ms(start), 140);
  r = c.request("GET", "/?status=200&delay=0");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->header("X-Request-Index"), "4");
}

TEST(FixturesSmoke, StopRefusesAndRestartServes) {
  OriginServer origin("sr");
  const uint16_t port = origin.port();
  HttpClient idle(port);
  ASSERT_TRUE(idle.request("GET", "/"));
  origin.stop();
  EXPECT_TRUE(idle.wait_closed(2000));
  EXPECT_THROW(HttpClient c(port), std::runtime_error);
  EXPECT_FALSE(can_connect(port));
  EXPECT_FALSE(http_get(port, "/"));
  origin.restart();
  EXPECT_EQ(origin.port(), port);
  auto r = http_get(port, "/");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->header("X-Server"), "sr");
  EXPECT_EQ(r->header("X-Conn-Index"), "1");
}

TEST(FixturesSmoke, StopCutsDelaysAndBlackholes) {
  OriginServer origin("cut");
  HttpClient slow(origin.port());
  HttpClient hole(origin.port());
  ASSERT_TRUE(slow.send_raw("GET /?delay=10000 HTTP/1.1\r\nHost: x\r\n\r\n"));
  ASSERT_TRUE(hole.send_raw("GET /?blackhole=1 HTTP/1.1\r\nHost: x\r\n\r\n"));
  ASSERT_TRUE(origin.wait_for_requests(2, 2000));
  auto start = Clock::now();
  origin.stop();
  EXPECT_LT(elapsed_ms(start), 8000);  // did not wait for the 10 s delay
  EXPECT_TRUE(slow.wait_closed(1000));
  EXPECT_TRUE(hole.wait_closed(1000));
}

TEST(FixturesSmoke, BlackholeTimesOut) {
  OriginServer origin("bh");
  HttpClient c(origin.port());
  EXPECT_FALSE(c.request("GET", "/?blackhole=1", {}, {}, 300));
  EXPECT_TRUE(c.connected());
  EXPECT_EQ(origin.requests().size(), 1u);
  EXPECT_EQ(origin.requests_served(), 0);

  origin.set_blackhole(true);
  EXPECT_FALSE(http_get(origin.port(), "/", 300));
  auto r = http_get(origin.port(), "/?blackhole=0", 2000);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
}

TEST(FixturesSmoke, ResetAndClose) {
  OriginServer origin("rc");
  {
    HttpClient c(origin.port());
    EXPECT_FALSE(c.request("GET", "/?reset=1", {}, {}, 2000));
    EXPECT_FALSE(c.connected());
  }
  {
    HttpClient c(origin.port());
    auto r = c.request("GET", "/?close=1");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->header("Connection"), "close");
    EXPECT_TRUE(c.wait_closed(2000));
  }
}

TEST(FixturesSmoke, PeakConcurrency) {
  OriginServer origin("pc");
  std::vector<std::future<std::optional<HttpResponse>>> futures;
  for (int i = 0; i < 3; ++i)
    futures.push_back(
        std::async(std::launch::async, [&] { return http_get(origin.port(), "/?delay=1500"); }));
  for (auto& f : futures) {
    auto r = f.get();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
  }
  // All three were in progress at once (no assertion on speed: CI machines are slow).
  EXPECT_EQ(origin.peak_concurrency(), 3);
  EXPECT_EQ(origin.requests_served(), 3);
  // A handler thread counts its request until just after its last send(), so
  // the client can hold the response a moment before the count drops.
  EXPECT_TRUE(wait_until(
      [&] {
        origin.clear_records();
        return origin.peak_concurrency() == 0;
      },
      5000));
  EXPECT_TRUE(origin.requests().empty());
  EXPECT_TRUE(origin.received_bytes().empty());
  EXPECT_EQ(origin.connections_accepted(), 3);
}

TEST(FixturesSmoke, Http10WithoutHostIsAnsweredAndClosed) {
  OriginServer origin("old");
  HttpClient c(origin.port());
  ASSERT_TRUE(c.send_raw("GET / HTTP/1.0\r\n\r\n"));
  auto r = c.read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "old\n");
  EXPECT_EQ(r->header("Connection"), "close");
  EXPECT_TRUE(c.wait_closed(2000));

  HttpClient ka(origin.port());
  ASSERT_TRUE(ka.send_raw("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"));
  r = ka.read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->header("Connection"), "keep-alive");
  EXPECT_FALSE(ka.wait_closed(200));
}

TEST(FixturesSmoke, MalformedRequestsGet400AndClose) {
  OriginServer origin("bad");
  for (const char* req : {"GARBAGE\r\n\r\n", "GET / HTTP/1.1\r\nBad Header: x\r\n\r\n",
                          "POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
                          "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"}) {
    HttpClient c(origin.port());
    ASSERT_TRUE(c.send_raw(req));
    auto r = c.read_response();
    ASSERT_TRUE(r) << req;
    EXPECT_EQ(r->status, 400) << req;
    EXPECT_TRUE(c.wait_closed(2000)) << req;
  }
  HttpClient c(origin.port());
  ASSERT_TRUE(c.send_raw("GET / HTTP/2.0\r\n\r\n"));
  auto r = c.read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 505);
}

TEST(FixturesSmoke, LargeTransfers) {
  OriginServer origin("big");
  constexpr size_t kSize = 20 * 1024 * 1024;
  HttpClient c(origin.port());
  auto r = c.request("GET", "/?size=" + std::to_string(kSize), {}, {}, 30000);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->body.size(), kSize);
  EXPECT_EQ(sha256_hex(r->body), pattern_sha256(kSize));
  EXPECT_EQ(r->header("X-Response-Sha256"), pattern_sha256(kSize));
  r = c.request("GET", "/?chunked=1&chunk=100000&size=" + std::to_string(kSize), {}, {}, 30000);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->body.size(), kSize);
  EXPECT_EQ(sha256_hex(r->body), pattern_sha256(kSize));
  std::string up = pattern_bytes(7, kSize);
  r = c.request("POST", "/", {}, up, 30000);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->header("X-Body-Sha256"), sha256_hex(up));
}

}  // namespace
}  // namespace weir::test
