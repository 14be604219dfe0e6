// tcp mode end to end. Also run against the ASan+UBSan build (label "sanitize").

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <thread>

#include "tests/support/http_client.h"
#include "tests/support/launcher.h"
#include "tests/support/origin.h"
#include "tests/support/weir_config.h"

namespace weir::test {
namespace {

// A raw TCP server that reads until the client half-closes, then answers with
// "got N bytes" and closes: it only works if the proxy passes the FIN on.
class HalfCloseServer {
 public:
  HalfCloseServer() {
    fd_ = UniqueFd(::socket(AF_INET, SOCK_STREAM, 0));
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int one = 1;
    setsockopt(fd_.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (::bind(fd_.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
        ::listen(fd_.get(), 16) != 0) {
      throw std::runtime_error("listen");
    }
    socklen_t len = sizeof a;
    getsockname(fd_.get(), reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] { serve(); });
  }
  ~HalfCloseServer() {
    ::shutdown(fd_.get(), SHUT_RDWR);
    thread_.join();
  }
  uint16_t port() const { return port_; }

 private:
  void serve() {
    int c = ::accept(fd_.get(), nullptr, nullptr);
    if (c < 0) return;
    size_t total = 0;
    char buf[65536];
    for (;;) {
      ssize_t n = ::read(c, buf, sizeof buf);
      if (n <= 0) break;
      total += static_cast<size_t>(n);
    }
    std::string reply = "got " + std::to_string(total) + " bytes";
    ssize_t w = ::write(c, reply.data(), reply.size());
    (void)w;
    ::close(c);
  }
  UniqueFd fd_;
  uint16_t port_ = 0;
  std::thread thread_;
};

TEST(TcpProxySmoke, RoundRobinOverTcp) {
  ignore_sigpipe();
  OriginServer a("a"), b("b");
  ProxySpec spec;
  spec.mode = "tcp";
  spec.servers = {a.address(), b.address()};
  auto weir = WeirProcess::start(proxy_yaml(spec));
  ASSERT_TRUE(weir);
  std::vector<std::string> seen;
  for (int i = 0; i < 4; ++i) {
    auto r = http_get(spec.port, "/");
    ASSERT_TRUE(r);
    seen.push_back(r->header("X-Server"));
  }
  EXPECT_EQ(seen, (std::vector<std::string>{"a", "b", "a", "b"}));
  // One connection carries many requests to the same server in tcp mode.
  HttpClient c(spec.port);
  for (int i = 0; i < 5; ++i) {
    auto r = c.request("GET", "/");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->header("X-Request-Index"), std::to_string(i));
  }
  EXPECT_TRUE(
      weir->wait_for_stdout(R"(fe be/s\d 0/\d+/\d+ \d+ \d+ -- \d+/\d+/\d+/\d+/0 0/0)", 5000))
      << weir->stdout_text();
}

TEST(TcpProxySmoke, HalfCloseIsPropagated) {
  ignore_sigpipe();
  HalfCloseServer server;
  ProxySpec spec;
  spec.mode = "tcp";
  spec.servers = {"127.0.0.1:" + std::to_string(server.port())};
  auto weir = WeirProcess::start(proxy_yaml(spec));
  ASSERT_TRUE(weir);
  HttpClient c(spec.port);
  std::string payload(300000, 'x');
  ASSERT_TRUE(c.send_raw(payload));
  ::shutdown(c.fd(), SHUT_WR);
  std::string reply = c.read_available(5000);
  EXPECT_EQ(reply, "got 300000 bytes");
}

TEST(TcpProxySmoke, RefusedServerIsRetriedAndAllDownClosesTheClient) {
  ignore_sigpipe();
  OriginServer a("a"), b("b");
  ProxySpec spec;
  spec.mode = "tcp";
  spec.servers = {a.address(), b.address()};
  auto weir = WeirProcess::start(proxy_yaml(spec));
  ASSERT_TRUE(weir);
  a.stop();
  for (int i = 0; i < 4; ++i) {
    auto r = http_get(spec.port, "/");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->header("X-Server"), "b");
  }
  b.stop();
  HttpClient c(spec.port);
  EXPECT_TRUE(c.wait_closed(5000));
  EXPECT_TRUE(weir->wait_for_stdout(R"(fe be/s\d -?\d+/-1/\d+ 0 0 SC \d+/\d+/\d+/\d+/3 0/0)", 5000))
      << weir->stdout_text();
}

}  // namespace
}  // namespace weir::test
