#pragma once
// What server_faults_test.cpp and server_faults_smoke_test.cpp share: one weir
// (one thread, so that a client's requests and the pooled server connections
// meet on the same thread) in front of misbehaving servers, its access log in
// two formats (text lines on stdout split on '|', and JSON objects in a file),
// its runtime API, and a raw client that reads exact bytes.

#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tests/support/http_client.h"
#include "tests/support/launcher.h"
#include "tests/support/script_server.h"
#include "tests/support/weir_config.h"

namespace weir::test::faults {

// The access-log fields these tests read, '|'-separated: server, status,
// termination state, retries, bytes sent to the client, request line.
inline constexpr const char* kLogFormat = "%s|%ST|%ts|%rc|%B|%r";

struct LogLine {
  std::string server, status, term, retries, bytes, request;
  std::string text() const {
    return server + "|" + status + "|" + term + "|" + retries + "|" + bytes + "|" + request;
  }
};

inline std::vector<LogLine> parse_log(const std::string& text) {
  std::vector<LogLine> out;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string::npos) break;
    std::string line = text.substr(pos, nl - pos);
    pos = nl + 1;
    std::vector<std::string> f;
    size_t start = 0;
    for (int i = 0; i < 5; ++i) {
      size_t bar = line.find('|', start);
      if (bar == std::string::npos) break;
      f.push_back(line.substr(start, bar - start));
      start = bar + 1;
    }
    if (f.size() != 5) continue;  // weir's own lines on stdout, if any
    out.push_back({f[0], f[1], f[2], f[3], f[4], line.substr(start)});
  }
  return out;
}

// A client socket that reads exact bytes and tells a close (FIN or RST) from silence.
class RawClient {
 public:
  explicit RawClient(uint16_t port) : c_(port) {}
  bool send(std::string_view bytes) { return c_.send_raw(bytes); }
  // Reads until `marker` has arrived (true) or the peer closed or the time ran out.
  bool read_until(std::string_view marker, int timeout_ms) {
    const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
    while (got_.find(marker) == std::string::npos) {
      if (!fill(deadline)) return false;
    }
    return true;
  }
  // Reads until the peer closes: true once it has (FIN or RST), false on timeout.
  bool wait_closed(int timeout_ms) {
    const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
    while (!closed_) {
      if (!fill(deadline) && !closed_) return false;
    }
    return true;
  }
  bool reset_seen() const { return reset_; }
  const std::string& received() const { return got_; }
  HttpClient& http() { return c_; }

 private:
  using Clock = std::chrono::steady_clock;
  bool fill(Clock::time_point deadline) {
    if (closed_) return false;
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) return false;
    pollfd p{c_.fd(), POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) return false;
    char buf[16384];
    ssize_t n = ::recv(c_.fd(), buf, sizeof buf, 0);
    if (n > 0) {
      got_.append(buf, static_cast<size_t>(n));
      return true;
    }
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) return true;
    closed_ = true;
    reset_ = n < 0 && errno == ECONNRESET;
    return false;
  }

  HttpClient c_;
  std::string got_;
  bool closed_ = false;
  bool reset_ = false;
};

// The target of a request head ("GET /x HTTP/1.1\r\n..." -> "/x").
inline std::string target_of(const std::string& head) {
  size_t sp1 = head.find(' ');
  size_t sp2 = head.find(' ', sp1 + 1);
  if (sp1 == std::string::npos || sp2 == std::string::npos) return {};
  return head.substr(sp1 + 1, sp2 - sp1 - 1);
}

// The request body's length announced by a head (0 without Content-Length).
inline size_t content_length_of(const std::string& head) {
  std::string lower = ascii_lower(head);
  size_t at = lower.find("\r\ncontent-length:");
  return at == std::string::npos ? 0 : std::stoul(head.substr(at + 17));
}

// Occurrences of `needle` in `hay`.
inline int count_of(const std::string& hay, const std::string& needle) {
  int n = 0;
  for (size_t at = hay.find(needle); at != std::string::npos; at = hay.find(needle, at + 1)) ++n;
  return n;
}

class ServerFaults : public ::testing::Test {
 protected:
  void SetUp() override {
    ignore_sigpipe();
    dir_ = make_temp_dir();
    admin_ = dir_ + "/admin.sock";
    json_ = dir_ + "/access.json";
    spec_.threads = 1;
    spec_.retries = 1;
    spec_.backend_timeouts = "server: 60s, connect: 5s";
    spec_.frontend_timeouts = "client: 60s, http_keep_alive: 60s";
    spec_.global_extra = "  runtime_api: [{address: " + admin_ + ", level: admin}]\n";
    spec_.logs = "[{target: stdout, format: " + yaml_quote(kLogFormat) + "}, {target: " + json_ +
                 ", format: json}]";
  }
  void TearDown() override {
    weir_.reset();
    if (!dir_.empty()) remove_tree(dir_);
  }

  bool start(std::vector<std::string> servers) {
    spec_.servers = std::move(servers);
    weir_ = WeirProcess::start(proxy_yaml(spec_));
    return weir_ != nullptr;
  }

  // The one line whose request line contains `request`, once it is written.
  std::optional<LogLine> wait_log(const std::string& request, int timeout_ms = 10000) {
    std::optional<LogLine> found;
    wait_until(
        [&] {
          for (const LogLine& l : parse_log(weir_->stdout_text())) {
            if (l.request.find(request) != std::string::npos) found = l;
          }
          return found.has_value();
        },
        timeout_ms);
    return found;
  }
  // The JSON access-log object of the request, "" until it is written.
  std::string json_line(const std::string& request) {
    std::string text;
    try {
      text = read_file(json_);
    } catch (const std::exception&) {
      return {};
    }
    size_t at = text.find(request);
    if (at == std::string::npos) return {};
    size_t from = text.rfind('\n', at);
    size_t to = text.find('\n', at);
    return text.substr(from == std::string::npos ? 0 : from + 1,
                       to == std::string::npos ? std::string::npos : to - from - 1);
  }

  // `show stat` row of a server (or "BACKEND"/"FRONTEND") as a map.
  std::map<std::string, std::string> stat_row(const std::string& name) {
    for (auto& row : parse_stat_csv(weirctl({"-s", admin_, "show", "stat"}).out)) {
      if (row["svname"] == name) return row;
    }
    return {};
  }
  // The `scur` column of `show servers state` for server `name`.
  std::string state_scur(const std::string& name) {
    std::string out = weirctl({"-s", admin_, "show", "servers", "state"}).out;
    size_t pos = 0;
    while (pos < out.size()) {
      size_t nl = out.find('\n', pos);
      std::string line = out.substr(pos, nl - pos);
      pos = nl == std::string::npos ? out.size() : nl + 1;
      std::vector<std::string> f;
      size_t s = 0;
      while (s <= line.size()) {
        size_t sp = line.find(' ', s);
        f.push_back(line.substr(s, sp - s));
        if (sp == std::string::npos) break;
        s = sp + 1;
      }
      if (f.size() > 7 && f[0] != "#" && f[1] == name) return f[7];
    }
    return "?";
  }
  // Requests in progress on server s1 and its backend, from both commands.
  std::string in_progress() {
    return "s1 scur=" + stat_row("s1")["scur"] + " backend scur=" + stat_row("BACKEND")["scur"] +
           " qcur=" + stat_row("BACKEND")["qcur"] + " servers state scur=" + state_scur("s1");
  }
  // Waits until nothing is in progress or queued (every counter back to 0).
  bool counters_back_to_zero(int timeout_ms = 10000) {
    const std::string zero = "s1 scur=0 backend scur=0 qcur=0 servers state scur=0";
    return wait_until([&] { return in_progress() == zero; }, timeout_ms, 50);
  }

  // One `method` request (with `body`, without one: "Content-Length: 0") on a
  // client connection whose pooled server connection the reuse_race server
  // closes under it: replayed once, on a fresh connection, and answered; or
  // refused with a 502 and received by the server once.
  void expect_reuse_race_outcome(const ScriptServer& server, const std::string& method,
                                 const std::string& target, const std::string& body,
                                 bool replayed) {
    SCOPED_TRACE(method + " " + target + " body '" + body + "'");
    HttpClient c(spec_.port);
    ASSERT_TRUE(c.request("GET", "/warm"));  // leaves a pooled server connection behind
    ASSERT_TRUE(c.send_raw(method + " " + target + " HTTP/1.1\r\nHost: t\r\nContent-Length: " +
                           std::to_string(body.size()) + "\r\n\r\n" + body));
    auto r = c.read_response(10000, method == "HEAD");
    ASSERT_TRUE(r);
    auto line = wait_log(" " + target + " ");
    ASSERT_TRUE(line);
    // Once on the closed connection, once more on a fresh one only when replayed.
    EXPECT_EQ(count_of(server.received(), " " + target + " "), replayed ? 2 : 1);
    EXPECT_EQ(r->status, replayed ? 200 : 502);
    if (replayed && method != "HEAD") {
      EXPECT_EQ(r->body, "answered");
    }
    EXPECT_EQ(line->status, replayed ? "200" : "502") << line->text();
    EXPECT_EQ(line->term, replayed ? "--" : "SH") << line->text();
    EXPECT_EQ(line->retries, replayed ? "1" : "0") << line->text();
  }

  // Starts weir in front of a server that, once `request_end` has arrived,
  // sends `answer` (which ends with "first-part"), waits until the client has
  // it, then resets. The client sends `request`: its connection must end with
  // a reset too (not a FIN that would pass the cut stream off as whole), the
  // log line (the one containing `log_key`) say SD, and the counters return to 0.
  void expect_reset_passed_on(const std::string& request_end, const std::string& answer,
                              const std::string& request, const std::string& log_key) {
    std::atomic<bool> client_has_part{false};
    ScriptServer server([&](ScriptConn& c) {
      if (c.read_until(request_end, 10000).empty()) return;
      c.send(answer);
      wait_until([&] { return client_has_part.load(); }, 10000);
      c.reset();
    });
    ASSERT_TRUE(start({server.address()}));
    RawClient c(spec_.port);
    ASSERT_TRUE(c.send(request));
    ASSERT_TRUE(c.read_until("first-part", 10000)) << c.received();
    client_has_part = true;
    ASSERT_TRUE(c.wait_closed(10000));
    EXPECT_TRUE(c.reset_seen());
    auto line = wait_log(log_key);
    ASSERT_TRUE(line);
    EXPECT_EQ(line->term, "SD") << line->text();
    EXPECT_TRUE(counters_back_to_zero()) << in_progress();
  }

  ProxySpec spec_;
  std::string dir_, admin_, json_;
  std::unique_ptr<WeirProcess> weir_;
};

// A server for the reused-connection race: every connection answers its first
// request and /warm requests (keep-alive, body "answered"); any other request on
// a connection that already served one is read whole, then the server closes
// without answering (with a RST when the target contains "-rst"), as if it had
// closed the idle connection just as weir reused it.
inline void reuse_race(ScriptConn& c) {
  for (int n = 0;; ++n) {
    bool ok = false;
    std::string head = c.read_until("\r\n\r\n", 10000, &ok);
    if (!ok) return;
    c.read_exact(content_length_of(head));
    const std::string target = target_of(head);
    if (n > 0 && target != "/warm") {
      if (target.find("-rst") != std::string::npos) {
        c.reset();
      } else {
        c.close();
      }
      return;
    }
    const std::string body = head.rfind("HEAD ", 0) == 0 ? "" : "answered";
    c.send("HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\n" + body);
  }
}

}  // namespace weir::test::faults
