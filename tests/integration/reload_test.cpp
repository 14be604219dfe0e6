// The reload proof: continuous traffic of every kind while the master is
// reloaded 20 times, alternating SIGHUP and the master CLI, with a changed server
// list and a changed thread count among them. Nothing may fail.

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <thread>

#include "tests/support/http_client.h"
#include "tests/support/launcher.h"
#include "tests/support/origin.h"

namespace weir::test {
namespace {

std::string cli(const std::string& path, const std::string& command) {
  return unix_command(path, command);
}

// A TCP echo server: a real peer for a long-lived tunnel.
class EchoServer {
 public:
  EchoServer() {
    fd_ = UniqueFd(::socket(AF_INET, SOCK_STREAM, 0));
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::bind(fd_.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
        ::listen(fd_.get(), 16) != 0) {
      throw std::runtime_error("listen");
    }
    socklen_t len = sizeof a;
    getsockname(fd_.get(), reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] {
      int c = ::accept(fd_.get(), nullptr, nullptr);
      if (c < 0) return;
      char buf[4096];
      ssize_t n;
      while ((n = ::read(c, buf, sizeof buf)) > 0) {
        if (::write(c, buf, static_cast<size_t>(n)) != n) break;
      }
      ::close(c);
    });
  }
  ~EchoServer() {
    ::shutdown(fd_.get(), SHUT_RDWR);
    thread_.join();
  }
  uint16_t port() const { return port_; }

 private:
  UniqueFd fd_;
  uint16_t port_ = 0;
  std::thread thread_;
};

struct Ports {
  uint16_t http;
  uint16_t tcp;
};

std::string config(const Ports& p, const std::vector<std::string>& servers, uint16_t echo,
                   int threads, const std::string& sock) {
  std::string y = "global:\n  threads: " + std::to_string(threads) +
                  "\n  max_old_generations: 30\n  master_socket: " + sock + "\n";
  y += "defaults:\n  timeouts: {http_keep_alive: 2s}\n";
  y += "frontends:\n";
  y += "  web: {bind: [\"127.0.0.1:" + std::to_string(p.http) + "\"], default_backend: app}\n";
  y += "  tunnel: {mode: tcp, bind: [\"127.0.0.1:" + std::to_string(p.tcp) +
       "\"], default_backend: echo}\n";
  y += "backends:\n  app:\n    servers:\n";
  for (size_t i = 0; i < servers.size(); ++i) {
    y += "      s" + std::to_string(i + 1) + ": \"" + servers[i] + "\"\n";
  }
  y += "  echo: {mode: tcp, servers: {e1: \"127.0.0.1:" + std::to_string(echo) + "\"}}\n";
  return y;
}

// Reads until `n` bytes have arrived or the deadline passes.
std::string read_n(HttpClient& c, size_t n, int timeout_ms = 10000) {
  std::string got;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (got.size() < n && std::chrono::steady_clock::now() < deadline) {
    got += c.read_available(50);
  }
  return got;
}

size_t master_fds(pid_t pid) {
  return count_matching_lines(run_command({"ls", "/proc/" + std::to_string(pid) + "/fd"}).out, ".");
}

long master_rss_kib(pid_t pid) {
  std::string status = read_file("/proc/" + std::to_string(pid) + "/status");
  size_t pos = status.find("VmRSS:");
  return pos == std::string::npos ? -1 : std::atol(status.c_str() + pos + 6);
}

TEST(Reload, TwentyReloadsUnderEveryKindOfTrafficLoseNothing) {
  ignore_sigpipe();
  OriginServer a("a"), b("b");
  EchoServer echo;
  Ports ports{free_tcp_port(), free_tcp_port()};
  std::string dir = make_temp_dir();
  std::string sock = dir + "/master.sock";
  auto weir = WeirProcess::start(config(ports, {a.address()}, echo.port(), 2, sock));
  ASSERT_TRUE(weir);
  pid_t master = weir->pid();

  // The master after one reload, with one worker, is the baseline for
  // descriptors and memory.
  ASSERT_EQ(cli(sock, "reload").rfind("Success=1", 0), 0u);
  ASSERT_TRUE(wait_until(
      [&] { return count_matching_lines(cli(sock, "show proc"), "draining") == 0; }, 20000));
  size_t fds_before = master_fds(master);
  long rss_before = master_rss_kib(master);

  // A long-lived tunnel and a slow request, both started before the reloads.
  HttpClient tunnel(ports.tcp);
  ASSERT_TRUE(tunnel.send_raw("hello\n"));
  ASSERT_EQ(read_n(tunnel, 6), "hello\n");
  HttpClient slow(ports.http);
  ASSERT_TRUE(slow.send_raw("GET /?delay=5000 HTTP/1.1\r\nHost: x\r\n\r\n"));

  std::atomic<bool> stop{false};
  std::atomic<int> ok{0}, bad{0};
  std::vector<std::string> problems;
  std::mutex problems_mu;
  auto note = [&](const std::string& what) {
    ++bad;
    std::lock_guard lock(problems_mu);
    if (problems.size() < 20) problems.push_back(what);
  };
  auto check = [&](const std::optional<HttpResponse>& r, const char* kind) {
    if (!r) return note(std::string(kind) + ": no response");
    std::string server = r->header("X-Server");
    if (r->status != 200 || (server != "a" && server != "b") || r->body != server + "\n") {
      return note(std::string(kind) + ": " + std::to_string(r->status) + " " + r->body);
    }
    ++ok;
  };
  std::vector<std::thread> clients;
  for (int t = 0; t < 2; ++t) {
    clients.emplace_back([&] {  // one connection per request
      while (!stop) check(http_get(ports.http, "/fresh"), "fresh");
    });
    clients.emplace_back([&] {  // keep-alive, reconnecting when told to close
      std::unique_ptr<HttpClient> c;
      while (!stop) {
        try {
          if (!c) c = std::make_unique<HttpClient>(ports.http);
          auto r = c->request("GET", "/ka");
          check(r, "keep-alive");
          if (!r || r->header("Connection") == "close") c.reset();
        } catch (const std::exception& e) {
          note(std::string("keep-alive connect: ") + e.what());
          c.reset();
        }
      }
    });
  }

  for (int i = 1; i <= 20; ++i) {
    if (i == 5) weir->write_config(config(ports, {a.address(), b.address()}, echo.port(), 2, sock));
    if (i == 10)
      weir->write_config(config(ports, {a.address(), b.address()}, echo.port(), 1, sock));
    if (i % 2) {
      size_t ready_before = weir->ready_workers().size();
      weir->signal(SIGHUP);
      ASSERT_TRUE(weir->wait_ready_count(ready_before + 1, 20000)) << "reload " << i;
    } else {
      std::string out = cli(sock, "reload");
      ASSERT_EQ(out.rfind("Success=1", 0), 0u) << "reload " << i << ": " << out;
    }
    // The tunnel still carries bytes, whatever generation it was accepted by.
    std::string msg = "ping " + std::to_string(i) + "\n";
    ASSERT_TRUE(tunnel.send_raw(msg));
    ASSERT_EQ(read_n(tunnel, msg.size()), msg) << "tunnel after reload " << i;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  stop = true;
  for (auto& t : clients) t.join();

  EXPECT_EQ(bad.load(), 0) << ::testing::PrintToString(problems);
  EXPECT_GT(ok.load(), 100);
  auto slow_response = slow.read_response(10000);
  ASSERT_TRUE(slow_response);
  EXPECT_EQ(slow_response->status, 200);
  EXPECT_EQ(count_matching_lines(cli(sock, "show proc"), R"(worker\s+22\s+current)"), 1u)
      << cli(sock, "show proc");

  // Once the tunnel ends, every old generation drains and exits.
  ::shutdown(tunnel.fd(), SHUT_WR);
  EXPECT_TRUE(tunnel.wait_closed(5000));
  EXPECT_TRUE(wait_until(
      [&] { return count_matching_lines(cli(sock, "show proc"), "draining") == 0; }, 20000))
      << cli(sock, "show proc");
  EXPECT_EQ(master_fds(master), fds_before);
  // Memory stays flat: a generous bound against a per-reload leak.
  EXPECT_LT(master_rss_kib(master), rss_before + 2048);
  weir.reset();
  remove_tree(dir);
}

}  // namespace
}  // namespace weir::test
