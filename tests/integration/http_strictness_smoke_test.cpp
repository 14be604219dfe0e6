// HTTP/1.1 strictness end to end (RFC 9110/9112): every malformed or ambiguous
// request sent over a raw socket through a real weir gets 400 (or the status
// named) and a clean close, and the origin behind it receives not one byte;
// well-formed requests reach it exactly once. Then the same strictness toward
// servers (502, `show errors`), bodies that must not be there, interim responses,
// 100-continue, trailers, pipelining, WebSocket and CONNECT tunnels, and the
// removal of hop-by-hop headers. doc/http.md lists the cases.
// Also run against the ASan+UBSan and TSan builds (label "sanitize").

#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>

#include <chrono>
#include <thread>

#include "tests/support/http_client.h"
#include "tests/support/launcher.h"
#include "tests/support/origin.h"
#include "tests/support/script_server.h"
#include "tests/support/weir_config.h"

namespace weir::test {
namespace {

using Clock = std::chrono::steady_clock;

// Control characters made visible, for failure messages.
std::string shown(std::string_view s) {
  std::string out;
  for (unsigned char c : s) {
    if (c == '\r') {
      out += "\\r";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c < 0x20 || c >= 0x7f) {
      char hex[8];
      std::snprintf(hex, sizeof hex, "\\x%02x", c);
      out += hex;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

// A string literal with its NUL bytes.
template <size_t N>
std::string lit(const char (&s)[N]) {
  return std::string(s, N - 1);
}

// Reads a tunnel's bytes straight from a client's socket (HttpClient's own
// buffer is never used on these connections): the response head, then exactly
// the bytes expected, whatever the segments they came in.
class RawReader {
 public:
  explicit RawReader(int fd) : fd_(fd) {}
  // Up to and including `marker`; "" on timeout or EOF.
  std::string until(std::string_view marker, int timeout_ms = 5000) {
    const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
    size_t at;
    while ((at = buf_.find(marker)) == std::string::npos) {
      if (!fill(deadline)) return {};
    }
    std::string out = buf_.substr(0, at + marker.size());
    buf_.erase(0, out.size());
    return out;
  }
  // Exactly n bytes (fewer on timeout or EOF).
  std::string exact(size_t n, int timeout_ms = 5000) {
    const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
    while (buf_.size() < n && fill(deadline)) {
    }
    std::string out = buf_.substr(0, n);
    buf_.erase(0, out.size());
    return out;
  }

 private:
  bool fill(Clock::time_point deadline) {
    int left = static_cast<int>(
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count());
    if (left <= 0) return false;
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, left) <= 0) return false;
    char tmp[4096];
    ssize_t r = ::recv(fd_, tmp, sizeof tmp, 0);
    if (r <= 0) return false;
    buf_.append(tmp, static_cast<size_t>(r));
    return true;
  }
  int fd_;
  std::string buf_;
};

class HttpStrictness : public ::testing::Test {
 protected:
  void SetUp() override {
    ignore_sigpipe();
    spec_.servers = {origin_.address()};  // two worker threads (ProxySpec's default)
  }

  bool start() {
    weir_ = WeirProcess::start(proxy_yaml(spec_));
    return weir_ != nullptr;
  }

  // Sends `req` on a new connection: weir answers `status` with Connection:
  // close, then closes cleanly; the origin receives not one byte.
  void expect_rejected(const std::string& req, int status = 400) {
    SCOPED_TRACE(shown(req));
    size_t before = origin_.received_bytes().size();
    HttpClient c(spec_.port);
    c.send_raw(req);  // weir may close before it has read everything
    auto r = c.read_response(5000);
    ASSERT_TRUE(r) << "no response";
    EXPECT_EQ(r->status, status);
    EXPECT_EQ(r->header("Connection"), "close");
    EXPECT_TRUE(c.wait_closed(3000)) << "weir did not close";
    EXPECT_EQ(origin_.received_bytes().size(), before) << shown(origin_.received_bytes());
  }

  // Sends `req` (one request) on a new connection: weir answers 200 and the
  // origin records exactly one more request, which is returned.
  RecordedRequest expect_forwarded(const std::string& req) {
    SCOPED_TRACE(shown(req));
    size_t before = origin_.requests().size();
    HttpClient c(spec_.port);
    EXPECT_TRUE(c.send_raw(req));
    auto r = c.read_response(5000);
    EXPECT_TRUE(r) << "no response";
    if (r) {
      EXPECT_EQ(r->status, 200);
    }
    EXPECT_TRUE(origin_.wait_for_requests(before + 1, 3000));
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    auto reqs = origin_.requests();
    EXPECT_EQ(reqs.size(), before + 1);
    return reqs.size() > before ? reqs[before] : RecordedRequest{};
  }

  OriginServer origin_{"a"};
  ProxySpec spec_;
  std::unique_ptr<WeirProcess> weir_;
};

// ---- requests ------------------------------------------------------------------------------

TEST_F(HttpStrictness, ContentLengthWithTransferEncoding) {
  ASSERT_TRUE(start());
  expect_rejected(
      "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
      "0\r\n\r\n");
  expect_rejected(
      "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 0\r\n\r\n"
      "0\r\n\r\n");
}

TEST_F(HttpStrictness, SeveralContentLengthValues) {
  ASSERT_TRUE(start());
  expect_rejected("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n");
  // Even equal values: no reader has to choose between merging and refusing.
  expect_rejected(
      "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello");
  expect_rejected("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 5\r\n\r\nhello");
  expect_rejected("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5,\r\n\r\nhello");
}

TEST_F(HttpStrictness, InvalidContentLength) {
  ASSERT_TRUE(start());
  for (const char* v : {"+5", "-5", "0x5", "5a", "5.0", "", "5 5", "99999999999999999999"}) {
    expect_rejected(std::string("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: ") + v +
                    "\r\n\r\nhello");
  }
  // Leading zeros are digits: one value, forwarded in canonical form.
  RecordedRequest got =
      expect_forwarded("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 005\r\n\r\nhello");
  EXPECT_EQ(got.header("Content-Length"), "5");
  EXPECT_EQ(got.body_size, 5u);
}

TEST_F(HttpStrictness, TransferEncodingOtherThanAFinalChunked) {
  ASSERT_TRUE(start());
  for (const char* te :
       {"gzip", "chunked, gzip", "chunked, identity", "identity", "xchunked", "chunkedx",
        "\"chunked\"", "chunked;q=1", "chunked, chunked", ",", "chunk\\ed", "chunked\x01"}) {
    expect_rejected(std::string("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: ") + te +
                    "\r\n\r\n0\r\n\r\n");
  }
  expect_rejected(
      "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: "
      "chunked\r\n\r\n0\r\n\r\n");
  expect_rejected(
      "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: "
      "identity\r\n\r\n0\r\n\r\n");
  // HTTP/1.0 has no transfer codings at all.
  expect_rejected("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n");
  // Codings before a final chunked pass, merged into one canonical header.
  RecordedRequest got = expect_forwarded(
      "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: Chunked\r\n\r\n"
      "5\r\nhello\r\n0\r\n\r\n");
  EXPECT_EQ(got.header("Transfer-Encoding"), "gzip, chunked");
  EXPECT_EQ(got.head.find("Transfer-Encoding", got.head.find("Transfer-Encoding") + 1),
            std::string::npos)
      << got.head;
  EXPECT_EQ(got.body_size, 5u);
}

TEST_F(HttpStrictness, ObsFold) {
  ASSERT_TRUE(start());
  expect_rejected("GET / HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n 2\r\n\r\n");
  expect_rejected("GET / HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n\t2\r\n\r\n");
  expect_rejected("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n");
  expect_rejected("GET / HTTP/1.1\r\n Host: x\r\n\r\n");
}

TEST_F(HttpStrictness, WhitespaceBeforeTheColon) {
  ASSERT_TRUE(start());
  expect_rejected("GET / HTTP/1.1\r\nHost : x\r\n\r\n");
  expect_rejected("GET / HTTP/1.1\r\nHost: x\r\nX-A\t: 1\r\n\r\n");
  expect_rejected("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n");
  expect_rejected("POST / HTTP/1.1\r\nHost: x\r\nContent-Length : 5\r\n\r\nhello");
}

TEST_F(HttpStrictness, InvalidCharactersInHeaderNames) {
  ASSERT_TRUE(start());
  for (std::string name : {lit("X\0A"), lit("X A"), lit("X\x01"), lit("X\x7f"), lit("X(A)"),
                           lit("X@A"), lit("X\xc3\xa9"), lit("X\"A"), lit("")}) {
    expect_rejected("GET / HTTP/1.1\r\nHost: x\r\n" + name + ": v\r\n\r\n");
  }
}

TEST_F(HttpStrictness, InvalidCharactersInHeaderValues) {
  ASSERT_TRUE(start());
  for (std::string value : {lit("a\0b"), lit("a\rb"), lit("a\nb"), lit("a\x01"), lit("a\x1f"),
                            lit("a\x7f"), lit("\x0b")}) {
    expect_rejected("GET / HTTP/1.1\r\nHost: x\r\nX-A: " + value + "\r\n\r\n");
  }
  // obs-text (bytes >= 0x80) and tabs are allowed in values.
  RecordedRequest got =
      expect_forwarded("GET / HTTP/1.1\r\nHost: x\r\nX-A: caf\xc3\xa9\tok\r\n\r\n");
  EXPECT_EQ(got.header("X-A"), "caf\xc3\xa9\tok");
}

TEST_F(HttpStrictness, BareLfAndBareCrLineEndings) {
  ASSERT_TRUE(start());
  expect_rejected("GET / HTTP/1.1\nHost: x\n\n");
  expect_rejected("GET / HTTP/1.1\r\nHost: x\nX-A: 1\r\n\r\n");
  expect_rejected("GET / HTTP/1.1\r\nHost: x\r\n\n");
  expect_rejected("GET / HTTP/1.1\rHost: x\r\n\r\n");
  expect_rejected("GET / HTTP/1.1\r\nHost: x\rX-A: 1\r\n\r\n");
}

TEST_F(HttpStrictness, MalformedChunkSizes) {
  ASSERT_TRUE(start());
  for (const char* size : {"0x5", "-5", "+5", " 5", "5 ", "5\t", "", "g", "5g", "10000000000000000",
                           "0000000000000005"}) {
    expect_rejected(
        std::string("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n") + size +
        "\r\nhello\r\n0\r\n\r\n");
  }
  // Data longer than its size, bare LF after a size or after the data.
  expect_rejected(
      "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nhello\r\n0\r\n\r\n");
  expect_rejected(
      "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\nhello\r\n0\r\n\r\n");
  expect_rejected(
      "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\n0\r\n\r\n");
}

TEST_F(HttpStrictness, ChunkExtensionsBeyondTheLimitOrMalformed) {
  ASSERT_TRUE(start());
  const std::string head = "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
  expect_rejected(head + "5;a=" + std::string(1100, 'x') + "\r\nhello\r\n0\r\n\r\n");
  for (const char* ext : {";", ";=b", "; a b", ";a=", ";a=\"b", ";a=b c", ";a\nb", ";a=\"\x01\""}) {
    expect_rejected(head + "5" + ext + "\r\nhello\r\n0\r\n\r\n");
  }
  // Well-formed extensions within the limit pass unchanged.
  std::string ok = "5;name=\"v a\";flag\r\nhello\r\n0;" + std::string(1000, 'e') + "\r\n\r\n";
  RecordedRequest got = expect_forwarded(head + ok);
  EXPECT_EQ(got.body_size, 5u);
  EXPECT_NE(origin_.received_bytes().find(ok), std::string::npos);
}

TEST_F(HttpStrictness, MalformedTrailers) {
  ASSERT_TRUE(start());
  const std::string head = "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n";
  for (const char* t : {"X-A\r\n", "X-A : 1\r\n", "X-A: 1\r\n 2\r\n", "Content-Length: 5\r\n",
                        "Transfer-Encoding: chunked\r\n", "Host: y\r\n", "X-A: 1\n"}) {
    expect_rejected(head + t + "\r\n");
  }
}

TEST_F(HttpStrictness, MissingOrDuplicatedHost) {
  ASSERT_TRUE(start());
  expect_rejected("GET / HTTP/1.1\r\n\r\n");
  expect_rejected("GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n");
  expect_rejected("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n");
  for (const char* h : {"a b", "a/b", "u@a", "a:8o", "a:123456", "[::1", "a?b", "a#b"}) {
    expect_rejected(std::string("GET / HTTP/1.1\r\nHost: ") + h + "\r\n\r\n");
  }
}

TEST_F(HttpStrictness, AbsoluteFormWithAHostMismatch) {
  ASSERT_TRUE(start());
  expect_rejected("GET http://a.example/ HTTP/1.1\r\nHost: b.example\r\n\r\n");
  expect_rejected("GET http://a.example:8080/ HTTP/1.1\r\nHost: a.example\r\n\r\n");
  expect_rejected("GET https://a.example/ HTTP/1.1\r\nHost: a.example:80\r\n\r\n");
  expect_rejected("GET http://u:p@a.example/ HTTP/1.1\r\nHost: a.example\r\n\r\n");
  expect_rejected("GET http:///x HTTP/1.1\r\nHost: a.example\r\n\r\n");
  expect_rejected("GET ftp://a.example/ HTTP/1.1\r\nHost: a.example\r\n\r\n");
  // The same authority (case and the default port aside) passes unchanged.
  RecordedRequest got =
      expect_forwarded("GET http://A.example:80/p?q HTTP/1.1\r\nHost: a.EXAMPLE\r\n\r\n");
  EXPECT_EQ(got.target, "http://A.example:80/p?q");
  EXPECT_EQ(got.header("Host"), "a.EXAMPLE");
}

TEST_F(HttpStrictness, OtherTargetForms) {
  ASSERT_TRUE(start());
  expect_rejected("GET * HTTP/1.1\r\nHost: x\r\n\r\n");
  expect_rejected("GET a/b HTTP/1.1\r\nHost: x\r\n\r\n");
  expect_rejected("GET /a#frag HTTP/1.1\r\nHost: x\r\n\r\n");
  expect_rejected("GET /a\x7f HTTP/1.1\r\nHost: x\r\n\r\n");
  expect_rejected(lit("GET /a\0b HTTP/1.1\r\nHost: x\r\n\r\n"));
  RecordedRequest got = expect_forwarded("OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(got.target, "*");
}

TEST_F(HttpStrictness, RequestLineAndHeaderBlockOverTheBufferSize) {
  spec_.global_extra = "  tune: {bufsize: 4k}\n";
  ASSERT_TRUE(start());
  expect_rejected("GET /" + std::string(5000, 'a') + " HTTP/1.1\r\nHost: x\r\n\r\n");
  std::string many = "GET / HTTP/1.1\r\nHost: x\r\n";
  for (int i = 0; i < 80; ++i)
    many += "X-Header-" + std::to_string(i) + ": " + std::string(50, 'v') + "\r\n";
  expect_rejected(many + "\r\n");
  // A head that fits is forwarded.
  RecordedRequest got =
      expect_forwarded("GET /" + std::string(3500, 'a') + " HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(got.target.size(), 3501u);
}

TEST_F(HttpStrictness, MoreHeadersThanMaxHeaders) {
  spec_.global_extra = "  tune: {max_headers: 20}\n";
  ASSERT_TRUE(start());
  std::string req = "GET / HTTP/1.1\r\nHost: x\r\n";
  for (int i = 0; i < 19; ++i) req += "X-" + std::to_string(i) + ": v\r\n";
  RecordedRequest got = expect_forwarded(req + "\r\n");  // 20 fields
  EXPECT_EQ(got.header("X-18"), "v");
  expect_rejected(req + "X-19: v\r\n\r\n");  // 21 fields
}

TEST_F(HttpStrictness, InvalidMethods) {
  ASSERT_TRUE(start());
  for (std::string m : {lit("G(T"), lit("GE T"), lit("GET\t"), lit(""), lit("G\0T"),
                        lit("G\xc3\xa9T"), lit("GET/")}) {
    expect_rejected(m + " / HTTP/1.1\r\nHost: x\r\n\r\n");
  }
  expect_rejected("GET  / HTTP/1.1\r\nHost: x\r\n\r\n");
}

TEST_F(HttpStrictness, InvalidVersions) {
  ASSERT_TRUE(start());
  for (const char* v : {"HTTP/2.0", "HTTP/1.2", "HTTP/0.9", "http/1.1", "HTTP/1", "HTTP/1.1x",
                        "HTTP/1.10", "HTTP /1.1", "HTTP/1.1 ", ""}) {
    expect_rejected(std::string("GET / ") + v + "\r\nHost: x\r\n\r\n");
  }
  expect_rejected("GET /\r\n\r\n");  // HTTP/0.9
}

TEST_F(HttpStrictness, UnderscoreLookAlikesOfFramingHeaders) {
  ASSERT_TRUE(start());
  expect_rejected("POST / HTTP/1.1\r\nHost: x\r\nContent_Length: 5\r\n\r\nhello");
  expect_rejected("POST / HTTP/1.1\r\nHost: x\r\nTransfer_Encoding: chunked\r\n\r\n0\r\n\r\n");
  // Other names with '_' are ordinary fields.
  RecordedRequest got = expect_forwarded("GET / HTTP/1.1\r\nHost: x\r\nX_Custom: 1\r\n\r\n");
  EXPECT_EQ(got.header("X_Custom"), "1");
}

TEST_F(HttpStrictness, ConnectIsRefusedUnlessEnabled) {
  ASSERT_TRUE(start());
  expect_rejected("CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n", 501);
  // Malformed CONNECTs are 400 whatever the setting.
  expect_rejected("CONNECT example.com HTTP/1.1\r\nHost: example.com\r\n\r\n");
  expect_rejected("CONNECT / HTTP/1.1\r\nHost: example.com\r\n\r\n");
  EXPECT_TRUE(weir_->wait_for_stdout(R"( 501 .* PR .*"CONNECT example.com:443 HTTP/1.1")", 5000))
      << weir_->stdout_text();
}

TEST_F(HttpStrictness, ConnectWhenEnabledTunnelsAfterA2xx) {
  std::string connect_head;
  std::mutex mu;
  ScriptServer proxy([&](ScriptConn& c) {
    std::string head = c.read_until("\r\n\r\n");
    {
      std::lock_guard lock(mu);
      connect_head = head;
    }
    if (head.rfind("CONNECT denied.example", 0) == 0) {
      c.send("HTTP/1.1 403 Forbidden\r\nContent-Length: 2\r\n\r\nno");
      c.read_until("\r\n\r\n", 2000);
      return;
    }
    c.send("HTTP/1.1 200 Connection established\r\n\r\n");
    for (std::string s; !(s = c.read_some(5000)).empty();) c.send("echo:" + s);
    c.shutdown_write();
  });
  spec_.servers = {proxy.address()};
  spec_.frontend_extra = "    allow_connect: true\n";
  ASSERT_TRUE(start());
  {
    HttpClient c(spec_.port);
    RawReader in(c.fd());
    ASSERT_TRUE(c.send_raw("CONNECT db.example:5432 HTTP/1.1\r\nHost: db.example:5432\r\n\r\n"));
    EXPECT_EQ(in.until("\r\n\r\n"), "HTTP/1.1 200 Connection established\r\n\r\n");
    ASSERT_TRUE(c.send_raw("ping"));
    EXPECT_EQ(in.exact(9), "echo:ping");
    const std::string data = lit("\0binary\r\n\r\nGET / HTTP/1.1\r\n");
    ASSERT_TRUE(c.send_raw(data));
    EXPECT_EQ(in.exact(5 + data.size()), "echo:" + data);
    ::shutdown(c.fd(), SHUT_WR);
    EXPECT_TRUE(c.wait_closed(3000));
  }
  {
    std::lock_guard lock(mu);
    EXPECT_EQ(connect_head, "CONNECT db.example:5432 HTTP/1.1\r\nHost: db.example:5432\r\n\r\n");
  }
  // A refusal is an ordinary response.
  HttpClient c(spec_.port);
  ASSERT_TRUE(c.send_raw("CONNECT denied.example:1 HTTP/1.1\r\nHost: denied.example:1\r\n\r\n"));
  auto r = c.read_response(5000);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 403);
  EXPECT_EQ(r->body, "no");
  EXPECT_TRUE(weir_->wait_for_stdout(R"( 200 \d+ -- .*"CONNECT db.example:5432 HTTP/1.1")", 5000))
      << weir_->stdout_text();
}

// ---- responses -----------------------------------------------------------------------------

// A backend that answers every request with the response chosen by its path:
// /r/<n> gets responses[n].
std::unique_ptr<ScriptServer> scripted(std::vector<std::string> responses) {
  return std::make_unique<ScriptServer>([responses](ScriptConn& c) {
    for (;;) {
      bool ok = false;
      std::string head = c.read_until("\r\n\r\n", 5000, &ok);
      if (!ok) return;
      size_t at = head.find("/r/");
      size_t n = at == std::string::npos ? 0 : std::stoul(head.substr(at + 3));
      if (!c.send(responses.at(n))) return;
    }
  });
}

TEST_F(HttpStrictness, InvalidResponsesGet502AndAreCaptured) {
  const std::vector<std::string> bad = {
      "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
      "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nok",
      "HTTP/1.1 200 OK\r\nContent-Length: 2x\r\n\r\nok",
      "HTTP/1.1 200 OK\r\nX-A: 1\r\n 2\r\nContent-Length: 2\r\n\r\nok",
      "HTTP/1.1 200 OK\r\nX-A : 1\r\nContent-Length: 2\r\n\r\nok",
      "HTTP/1.1 200 OK\nContent-Length: 2\n\nok",
      lit("HTTP/1.1 200 OK\r\nX-A: a\0b\r\nContent-Length: 2\r\n\r\nok"),
      "HTTP/1.1 2x0 OK\r\nContent-Length: 2\r\n\r\nok",
      "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n",
      "HTTP/1.1 200 OK\r\nX-Big: " + std::string(20000, 'a') + "\r\n\r\n",
      "ICY 200 OK\r\n\r\n",
      "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n",
  };
  auto server = scripted(bad);
  std::string dir = make_temp_dir();
  std::string admin = dir + "/admin.sock";
  spec_.servers = {server->address()};
  spec_.global_extra = "  runtime_api: [{address: " + admin + ", level: admin}]\n";
  ASSERT_TRUE(start());
  for (size_t i = 0; i < bad.size(); ++i) {
    SCOPED_TRACE(shown(bad[i].substr(0, 100)));
    auto r = http_get(spec_.port, "/r/" + std::to_string(i));
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 502);
  }
  CommandResult out = weirctl({"-s", admin, "show", "errors"});
  EXPECT_NE(
      out.out.find("backend be: invalid response (" + std::to_string(bad.size() - 1) + " so far)"),
      std::string::npos)
      << out.out;
  // The last one captured: "ICY 200 OK" (a 101 nobody asked for is refused but not malformed).
  EXPECT_NE(out.out.find("not an HTTP response at byte 0"), std::string::npos) << out.out;
  EXPECT_NE(out.out.find("ICY 200 OK"), std::string::npos) << out.out;
  remove_tree(dir);
}

TEST_F(HttpStrictness, MalformedChunkedResponseBodyIsCutOff) {
  auto server =
      scripted({"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nzz\r\n"
                "GET /smuggled HTTP/1.1\r\n\r\n"});
  spec_.servers = {server->address()};
  ASSERT_TRUE(start());
  HttpClient c(spec_.port);
  ASSERT_TRUE(c.send_raw("GET /r/0 HTTP/1.1\r\nHost: x\r\n\r\n"));
  EXPECT_FALSE(c.read_response(5000));  // the response never completes
  HttpClient c2(spec_.port);
  ASSERT_TRUE(c2.send_raw("GET /r/0 HTTP/1.1\r\nHost: x\r\n\r\n"));
  std::string seen = c2.read_available(3000);
  EXPECT_EQ(seen.find("smuggled"), std::string::npos) << shown(seen);
  EXPECT_NE(seen.find("5\r\nhello\r\n"), std::string::npos) << shown(seen);
  EXPECT_FALSE(c2.connected());
}

TEST_F(HttpStrictness, HeadAnd204And304HaveNoBody) {
  ASSERT_TRUE(start());
  HttpClient c(spec_.port);
  auto head = c.request("HEAD", "/?size=1000");
  ASSERT_TRUE(head);
  EXPECT_EQ(head->status, 200);
  EXPECT_EQ(head->header("Content-Length"), "1000");
  EXPECT_TRUE(head->body.empty());
  for (const char* status : {"204", "304"}) {
    auto r = c.request("GET", std::string("/?status=") + status);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, std::stoi(status));
    EXPECT_TRUE(r->body.empty());
  }
  // The connection is still in step: the next answer is the next request's.
  auto next = c.request("GET", "/?size=7");
  ASSERT_TRUE(next);
  EXPECT_EQ(next->body.size(), 7u);
  EXPECT_EQ(origin_.requests().size(), 4u);
}

TEST_F(HttpStrictness, BodiesWhereNoneBelongAreNotRelayed) {
  // A server that sends a body after a 204, a 304 and a HEAD answer: the bytes
  // are not relayed, and the server connection is not used again.
  auto server = scripted({"HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\nhello",
                          "HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n"
                          "5\r\nhello\r\n0\r\n\r\n",
                          "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
                          "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nnext"});
  spec_.servers = {server->address()};
  ASSERT_TRUE(start());
  HttpClient c(spec_.port);
  for (const char* req :
       {"GET /r/0 HTTP/1.1\r\nHost: x\r\n\r\n", "GET /r/1 HTTP/1.1\r\nHost: x\r\n\r\n",
        "HEAD /r/2 HTTP/1.1\r\nHost: x\r\n\r\n"}) {
    SCOPED_TRACE(shown(req));
    ASSERT_TRUE(c.send_raw(req));
    auto r = c.read_response(5000, /*head_request=*/true);
    ASSERT_TRUE(r);
    ASSERT_TRUE(c.send_raw("GET /r/3 HTTP/1.1\r\nHost: x\r\n\r\n"));
    auto next = c.read_response(5000);
    ASSERT_TRUE(next);
    EXPECT_EQ(next->status, 200);
    EXPECT_EQ(next->body, "next");
  }
  EXPECT_EQ(c.read_available(300), "");
  // A connection that sent a stray body is never used again (3), while the
  // clean answers' connections are (1 for the "next" requests before each).
  EXPECT_EQ(server->connections(), 4);
}

TEST_F(HttpStrictness, InterimResponsesAreForwarded) {
  auto server =
      scripted({"HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n"
                "HTTP/1.1 100 Continue\r\n\r\n"
                "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"});
  spec_.servers = {server->address()};
  ASSERT_TRUE(start());
  HttpClient c(spec_.port);
  ASSERT_TRUE(c.send_raw("GET /r/0 HTTP/1.1\r\nHost: x\r\n\r\n"));
  auto hints = c.read_response(5000);
  ASSERT_TRUE(hints);
  EXPECT_EQ(hints->status, 103);
  EXPECT_EQ(hints->header("Link"), "</a.css>; rel=preload");
  auto cont = c.read_response(5000);
  ASSERT_TRUE(cont);
  EXPECT_EQ(cont->status, 100);
  auto final = c.read_response(5000);
  ASSERT_TRUE(final);
  EXPECT_EQ(final->status, 200);
  EXPECT_EQ(final->body, "ok");
  // HTTP/1.0 clients do not know interim responses: they get the final one only.
  HttpClient old(spec_.port);
  ASSERT_TRUE(old.send_raw("GET /r/0 HTTP/1.0\r\n\r\n"));
  auto r = old.read_response(5000);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "ok");
}

TEST_F(HttpStrictness, ExpectContinue) {
  ASSERT_TRUE(start());
  HttpClient c(spec_.port);
  ASSERT_TRUE(c.send_raw(
      "PUT /up HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n"));
  auto cont = c.read_response(5000);  // the origin's 100, relayed before the body is sent
  ASSERT_TRUE(cont);
  EXPECT_EQ(cont->status, 100);
  ASSERT_TRUE(c.send_raw("hello"));
  auto r = c.read_response(5000);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->header("X-Body-Size"), "5");
  ASSERT_TRUE(origin_.wait_for_requests(1, 3000));
  EXPECT_EQ(origin_.requests().at(0).header("Expect"), "100-continue");
}

TEST_F(HttpStrictness, TrailersAreForwardedBothWays) {
  ASSERT_TRUE(start());
  RecordedRequest got = expect_forwarded(
      "POST / HTTP/1.1\r\nHost: x\r\nTrailer: X-Checksum\r\nTransfer-Encoding: chunked\r\n\r\n"
      "5\r\nhello\r\n0\r\nX-Checksum: abc\r\n\r\n");
  EXPECT_EQ(got.header("Trailer"), "X-Checksum");
  ASSERT_EQ(got.trailers.size(), 1u);
  EXPECT_EQ(got.trailers[0].first, "X-Checksum");
  EXPECT_EQ(got.trailers[0].second, "abc");

  auto server =
      scripted({"HTTP/1.1 200 OK\r\nTrailer: X-Status\r\nTransfer-Encoding: chunked\r\n\r\n"
                "2\r\nok\r\n0\r\nX-Status: done\r\n\r\n"});
  spec_.servers = {server->address()};
  spec_.port = 0;
  weir_.reset();
  ASSERT_TRUE(start());
  HttpClient c(spec_.port);
  auto r = c.request("GET", "/r/0");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->header("Trailer"), "X-Status");
  EXPECT_EQ(r->body, "ok");
  ASSERT_EQ(r->trailers.size(), 1u);
  EXPECT_EQ(r->trailers[0].second, "done");
}

TEST_F(HttpStrictness, PipelinedRequestsAreAnsweredInOrder) {
  ASSERT_TRUE(start());
  HttpClient c(spec_.port);
  std::string batch =
      "GET /1?delay=300&size=11 HTTP/1.1\r\nHost: x\r\n\r\n"
      "POST /2?size=12 HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
      "POST /3?size=13&chunked=1 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
      "3\r\nabc\r\n0\r\n\r\n"
      "HEAD /4?size=14 HTTP/1.1\r\nHost: x\r\n\r\n"
      "GET /5?size=15&delay=100 HTTP/1.1\r\nHost: x\r\n\r\n";
  ASSERT_TRUE(c.send_raw(batch));
  for (int i = 1; i <= 5; ++i) {
    SCOPED_TRACE(i);
    auto r = c.read_response(5000, /*head_request=*/i == 4);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
    if (i == 4) {
      EXPECT_EQ(r->header("Content-Length"), "14");
    } else {
      EXPECT_EQ(r->body.size(), static_cast<size_t>(10 + i));
    }
  }
  auto reqs = origin_.requests();
  ASSERT_EQ(reqs.size(), 5u);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(reqs[i].target.substr(0, 2), "/" + std::to_string(i + 1));
  EXPECT_EQ(reqs[1].body_size, 5u);
  EXPECT_EQ(reqs[2].body_size, 3u);
}

// ---- WebSocket -----------------------------------------------------------------------------

constexpr const char* kWsRequest =
    "GET /chat HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
    "Keep-Alive: timeout=5\r\n\r\n";

// Answers a WebSocket handshake with 101, then echoes every byte until EOF.
std::unique_ptr<ScriptServer> websocket_echo(std::string* head_seen, std::mutex* mu) {
  return std::make_unique<ScriptServer>([head_seen, mu](ScriptConn& c) {
    std::string head = c.read_until("\r\n\r\n");
    {
      std::lock_guard lock(*mu);
      *head_seen = head;
    }
    c.send(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n");
    for (std::string s; !(s = c.read_some(10000)).empty();) c.send(s);
    c.shutdown_write();
  });
}

TEST_F(HttpStrictness, WebSocketUpgradeBecomesATunnel) {
  std::string head_seen;
  std::mutex mu;
  auto server = websocket_echo(&head_seen, &mu);
  spec_.servers = {server->address()};
  ASSERT_TRUE(start());
  HttpClient c(spec_.port);
  RawReader in(c.fd());
  // Bytes sent right behind the handshake wait for the tunnel.
  ASSERT_TRUE(c.send_raw(std::string(kWsRequest) + "early"));
  EXPECT_EQ(in.until("\r\n\r\n"),
            "HTTP/1.1 101 Switching Protocols\r\n"
            "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
            "Connection: upgrade\r\nUpgrade: websocket\r\n\r\n");
  EXPECT_EQ(in.exact(5), "early");
  std::string frame = lit("\x81\x05hello\0\r\n\r\nHTTP/1.1 200 OK\r\n");
  ASSERT_TRUE(c.send_raw(frame));
  EXPECT_EQ(in.exact(frame.size()), frame);
  ::shutdown(c.fd(), SHUT_WR);
  EXPECT_TRUE(c.wait_closed(3000));
  {
    std::lock_guard lock(mu);
    EXPECT_NE(head_seen.find("\r\nConnection: upgrade\r\nUpgrade: websocket\r\n"),
              std::string::npos)
        << head_seen;
    EXPECT_NE(head_seen.find("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"), std::string::npos);
    EXPECT_EQ(head_seen.find("Keep-Alive"), std::string::npos) << head_seen;
  }
  EXPECT_TRUE(weir_->wait_for_stdout(R"( 101 \d+ -- .*"GET /chat HTTP/1.1")", 5000))
      << weir_->stdout_text();
}

TEST_F(HttpStrictness, WebSocketTunnelUsesTimeoutTunnel) {
  std::string head_seen;
  std::mutex mu;
  auto server = websocket_echo(&head_seen, &mu);
  spec_.servers = {server->address()};
  // The tunnel outlives the short server and client timeouts, and ends after
  // `tunnel` of silence.
  spec_.backend_timeouts = "server: 200ms, tunnel: 1500ms";
  spec_.frontend_timeouts = "client: 200ms";
  ASSERT_TRUE(start());
  HttpClient c(spec_.port);
  RawReader in(c.fd());
  ASSERT_TRUE(c.send_raw(kWsRequest));
  ASSERT_EQ(in.until("\r\n\r\n").substr(0, 12), "HTTP/1.1 101");
  std::this_thread::sleep_for(std::chrono::milliseconds(600));
  ASSERT_TRUE(c.send_raw("still there"));
  EXPECT_EQ(in.exact(11), "still there");
  auto idle_from = Clock::now();
  EXPECT_TRUE(c.wait_closed(5000));
  auto idle_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - idle_from).count();
  EXPECT_GE(idle_ms, 1200);
  EXPECT_TRUE(weir_->wait_for_stdout(R"( 101 \d+ cD .*"GET /chat HTTP/1.1")", 5000))
      << weir_->stdout_text();
}

TEST_F(HttpStrictness, OnlyWebSocketUpgradesAreForwarded) {
  ASSERT_TRUE(start());
  RecordedRequest got = expect_forwarded(
      "GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n"
      "HTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n");
  EXPECT_FALSE(got.has_header("Upgrade"));
  EXPECT_FALSE(got.has_header("HTTP2-Settings"));
  EXPECT_FALSE(got.has_header("Connection"));
  // Upgrade without "Connection: upgrade" is not an upgrade either.
  got = expect_forwarded("GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\r\n");
  EXPECT_FALSE(got.has_header("Upgrade"));
}

TEST_F(HttpStrictness, SwitchingProtocolsNobodyAskedForGets502) {
  auto server = scripted(
      {"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"});
  spec_.servers = {server->address()};
  ASSERT_TRUE(start());
  auto r = http_get(spec_.port, "/r/0");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 502);
}

// ---- hop-by-hop headers ----------------------------------------------------------------------

TEST_F(HttpStrictness, HopByHopRequestHeadersAreRemoved) {
  ASSERT_TRUE(start());
  RecordedRequest got = expect_forwarded(
      "GET / HTTP/1.1\r\nHost: x\r\nConnection: X-A, x-b\r\nConnection: keep-alive\r\nX-A: 1\r\n"
      "X-B: 2\r\nKeep-Alive: timeout=5\r\nTE: trailers\r\nUpgrade: websocket\r\n"
      "Proxy-Connection: keep-alive\r\nTrailer: X-T\r\nX-Kept: yes\r\n\r\n");
  for (const char* gone :
       {"Connection", "X-A", "X-B", "Keep-Alive", "TE", "Upgrade", "Proxy-Connection"}) {
    EXPECT_FALSE(got.has_header(gone)) << gone << "\n" << got.head;
  }
  EXPECT_EQ(got.header("Trailer"), "X-T");
  EXPECT_EQ(got.header("X-Kept"), "yes");
}

TEST_F(HttpStrictness, ConnectionCannotRemoveFramingOrHost) {
  spec_.forwardfor = true;
  ASSERT_TRUE(start());
  RecordedRequest got = expect_forwarded(
      "POST / HTTP/1.1\r\nHost: x\r\nConnection: Content-Length, Host, Transfer-Encoding, "
      "X-Forwarded-For\r\nX-Forwarded-For: 10.0.0.1\r\nContent-Length: 5\r\n\r\nhello");
  EXPECT_EQ(got.header("Content-Length"), "5");
  EXPECT_EQ(got.body_size, 5u);
  EXPECT_EQ(got.header("Host"), "x");
  EXPECT_EQ(got.header("X-Forwarded-For"), "10.0.0.1, 127.0.0.1");
  got = expect_forwarded(
      "POST / HTTP/1.1\r\nHost: x\r\nConnection: transfer-encoding\r\n"
      "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n");
  EXPECT_EQ(got.header("Transfer-Encoding"), "chunked");
  EXPECT_EQ(got.body_size, 5u);
}

TEST_F(HttpStrictness, HopByHopResponseHeadersAreRemoved) {
  ASSERT_TRUE(start());
  HttpClient c(spec_.port);
  auto r = c.request("GET",
                     "/?header=Connection:X-Private&header=X-Private:1&header=Keep-Alive:"
                     "timeout%3D5&header=Proxy-Connection:keep-alive&header=Upgrade:h2c&header="
                     "X-Kept:yes");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  for (const char* gone :
       {"Connection", "X-Private", "Keep-Alive", "Proxy-Connection", "Upgrade"}) {
    EXPECT_FALSE(r->has_header(gone)) << gone << "\n" << r->raw_head;
  }
  EXPECT_EQ(r->header("X-Kept"), "yes");
}

}  // namespace
}  // namespace weir::test
