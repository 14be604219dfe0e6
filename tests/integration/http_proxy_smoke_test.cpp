// http mode end to end: a real client, weir, real origin servers on loopback.
// Also run against the ASan+UBSan build (label "sanitize").

#include <gtest/gtest.h>

#include <regex>
#include <thread>

#include "tests/support/http_client.h"
#include "tests/support/launcher.h"
#include "tests/support/origin.h"
#include "tests/support/weir_config.h"

namespace weir::test {
namespace {

class HttpProxySmoke : public ::testing::Test {
 protected:
  void SetUp() override { ignore_sigpipe(); }

  std::unique_ptr<WeirProcess> start(ProxySpec& spec) {
    auto w = WeirProcess::start(proxy_yaml(spec));
    return w;
  }
};

TEST_F(HttpProxySmoke, RoundRobinAlternatesBetweenTwoServers) {
  OriginServer a("a"), b("b");
  ProxySpec spec;
  spec.servers = {a.address(), b.address()};
  auto weir = start(spec);
  ASSERT_TRUE(weir);
  std::vector<std::string> seen;
  for (int i = 0; i < 6; ++i) {
    auto r = http_get(spec.port, "/");
    ASSERT_TRUE(r) << "request " << i;
    EXPECT_EQ(r->status, 200);
    seen.push_back(r->header("X-Server"));
  }
  for (size_t i = 1; i < seen.size(); ++i) EXPECT_NE(seen[i], seen[i - 1]) << "at " << i;
  EXPECT_EQ(std::count(seen.begin(), seen.end(), "a"), 3);
  EXPECT_EQ(std::count(seen.begin(), seen.end(), "b"), 3);
}

TEST_F(HttpProxySmoke, WeightsShapeTheDistribution) {
  OriginServer a("a"), b("b");
  ProxySpec spec;
  spec.servers = {a.address(), b.address()};
  spec.weights = {3, 1};
  auto weir = start(spec);
  ASSERT_TRUE(weir);
  HttpClient c(spec.port);
  int count_a = 0;
  for (int i = 0; i < 40; ++i) {
    auto r = c.request("GET", "/");
    ASSERT_TRUE(r);
    if (r->header("X-Server") == "a") ++count_a;
  }
  EXPECT_EQ(count_a, 30);
}

TEST_F(HttpProxySmoke, KeepAliveReusesServerConnections) {
  OriginServer a("a"), b("b");
  ProxySpec spec;
  spec.servers = {a.address(), b.address()};
  spec.threads = 1;
  auto weir = start(spec);
  ASSERT_TRUE(weir);
  HttpClient c(spec.port);
  for (int i = 0; i < 50; ++i) {
    auto r = c.request("GET", "/k");
    ASSERT_TRUE(r) << i;
    ASSERT_EQ(r->status, 200);
    EXPECT_FALSE(r->has_header("Connection") && r->header("Connection") == "close");
  }
  // 50 requests over one client connection; the servers saw far fewer connections.
  EXPECT_EQ(a.requests_served() + b.requests_served(), 50);
  EXPECT_LE(a.connections_accepted() + b.connections_accepted(), 4);
}

TEST_F(HttpProxySmoke, ChunkedResponseAndUploadArePassedThrough) {
  OriginServer a("a");
  ProxySpec spec;
  spec.servers = {a.address()};
  auto weir = start(spec);
  ASSERT_TRUE(weir);
  HttpClient c(spec.port);
  auto r = c.request("GET", "/?size=100000&chunked=1&chunk=777");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_TRUE(r->chunked);
  EXPECT_EQ(r->body.size(), 100000u);
  EXPECT_EQ(sha256_hex(r->body), r->header("X-Response-Sha256"));

  // A chunked upload on the same connection.
  std::string body = pattern_bytes(0, 50000);
  std::string req = "POST /up HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n";
  for (size_t off = 0; off < body.size(); off += 3000) {
    size_t n = std::min<size_t>(3000, body.size() - off);
    char hex[16];
    std::snprintf(hex, sizeof hex, "%zx\r\n", n);
    req += hex;
    req += body.substr(off, n);
    req += "\r\n";
  }
  req += "0\r\n\r\n";
  ASSERT_TRUE(c.send_raw(req));
  auto r2 = c.read_response();
  ASSERT_TRUE(r2);
  EXPECT_EQ(r2->status, 200);
  EXPECT_EQ(r2->header("X-Body-Size"), "50000");
  EXPECT_EQ(r2->header("X-Body-Sha256"), sha256_hex(body));
}

TEST_F(HttpProxySmoke, StoppedServerYields503AndTheOtherServerTakesTheTraffic) {
  OriginServer a("a"), b("b");
  ProxySpec spec;
  spec.servers = {a.address(), b.address()};
  auto weir = start(spec);
  ASSERT_TRUE(weir);
  b.stop();
  // Every request still succeeds: a refused connection moves to the next server.
  for (int i = 0; i < 6; ++i) {
    auto r = http_get(spec.port, "/");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(r->header("X-Server"), "a");
  }
  a.stop();
  auto r = http_get(spec.port, "/");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 503);
  EXPECT_EQ(r->header("Connection"), "close");
  EXPECT_NE(r->body.find("503"), std::string::npos);
  EXPECT_TRUE(weir->wait_for_stdout(
      R"(fe be/s\d .* 503 .* SC \d+/\d+/\d+/\d+/\d+ 0/0 "GET / HTTP/1.1")", 5000))
      << weir->stdout_text();
  b.restart();
  auto again = http_get(spec.port, "/");
  ASSERT_TRUE(again);
  EXPECT_EQ(again->status, 200);
  EXPECT_EQ(again->header("X-Server"), "b");
}

TEST_F(HttpProxySmoke, MalformedRequestsGet400AndACleanClose) {
  OriginServer a("a");
  ProxySpec spec;
  spec.servers = {a.address()};
  auto weir = start(spec);
  ASSERT_TRUE(weir);
  const char* bad[] = {
      "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: x\r\nBad Header: y\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: x\r\n folded: y\r\n\r\n",
      "GET / HTTP/1.1\r\n\r\n",
      "GET / HTTP/9.9\r\nHost: x\r\n\r\n",
      "GET /\x01 HTTP/1.1\r\nHost: x\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1, 2\r\n\r\n",
      "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n",
  };
  for (const char* req : bad) {
    HttpClient c(spec.port);
    ASSERT_TRUE(c.send_raw(req));
    auto r = c.read_response();
    ASSERT_TRUE(r) << req;
    EXPECT_EQ(r->status, 400) << req;
    EXPECT_TRUE(c.wait_closed(3000)) << req;
  }
  EXPECT_EQ(a.requests_served(), 0);
  // weir is still serving.
  auto ok = http_get(spec.port, "/");
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 200);
}

TEST_F(HttpProxySmoke, OversizedHeadGets400) {
  OriginServer a("a");
  ProxySpec spec;
  spec.servers = {a.address()};
  auto weir = start(spec);
  ASSERT_TRUE(weir);
  HttpClient c(spec.port);
  std::string req = "GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(40000, 'a') + "\r\n\r\n";
  c.send_raw(req);  // weir may close before it has read everything
  auto r = c.read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 400);
  EXPECT_EQ(a.requests_served(), 0);
}

TEST_F(HttpProxySmoke, Http10WithoutHostIsForwardedWithOneAndForwardedFor) {
  OriginServer a("a");
  ProxySpec spec;
  spec.servers = {a.address()};
  spec.forwardfor = true;
  auto weir = start(spec);
  ASSERT_TRUE(weir);
  HttpClient c(spec.port);
  ASSERT_TRUE(c.send_raw("GET /old HTTP/1.0\r\n\r\n"));
  auto r = c.read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_TRUE(c.wait_closed(3000));  // HTTP/1.0 without keep-alive: closed after
  ASSERT_TRUE(a.wait_for_requests(1, 3000));
  RecordedRequest got = a.requests().at(0);
  EXPECT_EQ(got.header("Host"), a.address());
  EXPECT_EQ(got.header("X-Forwarded-For"), "127.0.0.1");
  EXPECT_EQ(got.version, "HTTP/1.0");
}

TEST_F(HttpProxySmoke, PipelinedRequestsAreAnsweredInOrder) {
  OriginServer a("a");
  ProxySpec spec;
  spec.servers = {a.address()};
  auto weir = start(spec);
  ASSERT_TRUE(weir);
  HttpClient c(spec.port);
  std::string batch;
  for (int i = 0; i < 5; ++i) {
    batch += "GET /p?size=" + std::to_string(100 + i) + " HTTP/1.1\r\nHost: x\r\n\r\n";
  }
  ASSERT_TRUE(c.send_raw(batch));
  for (int i = 0; i < 5; ++i) {
    auto r = c.read_response();
    ASSERT_TRUE(r) << i;
    EXPECT_EQ(r->body.size(), static_cast<size_t>(100 + i));
  }
}

TEST_F(HttpProxySmoke, SlowServerGets504AndSlowClientGets408) {
  OriginServer a("a");
  ProxySpec spec;
  spec.servers = {a.address()};
  spec.backend_timeouts = "server: 500ms";
  spec.frontend_timeouts = "http_request: 500ms";
  auto weir = start(spec);
  ASSERT_TRUE(weir);
  auto r = http_get(spec.port, "/?delay=3000");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 504);

  HttpClient slow(spec.port);
  ASSERT_TRUE(slow.send_raw("GET / HTTP/1.1\r\nHost: x\r\n"));  // never finishes the head
  auto r2 = slow.read_response(5000);
  ASSERT_TRUE(r2);
  EXPECT_EQ(r2->status, 408);
  EXPECT_TRUE(slow.wait_closed(3000));
}

TEST_F(HttpProxySmoke, ResetBeforeResponseYields502) {
  OriginServer a("a");
  ProxySpec spec;
  spec.servers = {a.address()};
  auto weir = start(spec);
  ASSERT_TRUE(weir);
  auto r = http_get(spec.port, "/?reset=1");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 502);
}

TEST_F(HttpProxySmoke, AccessLogHasOneLinePerRequest) {
  OriginServer a("a");
  ProxySpec spec;
  spec.servers = {a.address()};
  auto weir = start(spec);
  ASSERT_TRUE(weir);
  HttpClient c(spec.port);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(c.request("GET", "/logged?i=" + std::to_string(i)));
  ASSERT_TRUE(weir->wait_for_stdout(R"(logged\?i=2)", 5000));
  std::string out = weir->stdout_text();
  EXPECT_EQ(
      count_matching_lines(
          out,
          R"(^127\.0\.0\.1:\d+ \[\d\d/\w+/\d{4}:\d\d:\d\d:\d\d\.\d{3}\] fe be/s1 \d+/0/\d+/\d+/\d+ 200 \d+ -- 1/1/1/1/0 0/0 "GET /logged\?i=\d HTTP/1.1"$)"),
      3u)
      << out;
}

TEST_F(HttpProxySmoke, JsonAccessLog) {
  OriginServer a("a");
  ProxySpec spec;
  spec.servers = {a.address()};
  spec.log_format = "json";
  auto weir = start(spec);
  ASSERT_TRUE(weir);
  ASSERT_TRUE(http_get(spec.port, "/j"));
  EXPECT_TRUE(weir->wait_for_stdout(
      R"(\{"time":".*","client":"127\.0\.0\.1:\d+","frontend":"fe","backend":"be","server":"s1","mode":"http".*"status":200.*"request":"GET /j HTTP/1.1"\})",
      5000))
      << weir->stdout_text();
}

}  // namespace
}  // namespace weir::test

namespace weir::test {
namespace {

TEST(HttpProxySmokeHeaders, HopByHopHeadersNamedByConnectionAreRemoved) {
  ignore_sigpipe();
  OriginServer a("a");
  ProxySpec spec;
  spec.servers = {a.address()};
  auto weir = WeirProcess::start(proxy_yaml(spec));
  ASSERT_TRUE(weir);
  HttpClient c(spec.port);
  ASSERT_TRUE(
      c.send_raw("GET / HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, X-Secret\r\n"
                 "X-Secret: 1\r\nKeep-Alive: timeout=5\r\nX-Kept: 2\r\n\r\n"));
  auto r = c.read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  ASSERT_TRUE(a.wait_for_requests(1, 3000));
  RecordedRequest got = a.requests().at(0);
  EXPECT_FALSE(got.has_header("X-Secret"));
  EXPECT_FALSE(got.has_header("Keep-Alive"));
  EXPECT_FALSE(got.has_header("Connection"));
  EXPECT_EQ(got.header("X-Kept"), "2");
}

}  // namespace
}  // namespace weir::test
