// Request smuggling attempts sent over raw sockets through a real weir to an
// origin that records exactly what it receives. Each attempt is bytes a client
// means as ONE request whose framing is obfuscated (CL.TE, TE.CL, TE.TE with
// disguised Transfer-Encoding values, duplicate headers, bare LF and CR,
// chunk-size and chunk-extension tricks, NULs, absolute-form and Connection
// tricks) with a second request hidden where a lenient reader would see it.
// For every attempt, exactly one of:
//   - rejected: weir answers 400 and closes, and the origin receives nothing
//     (or, when the body arrives after the head was sent, an incomplete request
//     that it never processes), or
//   - forwarded: the origin records exactly one request, with the method, target
//     and body the client meant, and receives exactly its bytes, nothing after;
//     the client gets exactly one response.
// Never two requests where the client sent one. After each attempt a probe
// request checks that the (pooled) server connection is still in step.
// The corpus runs twice: whole in one write, then split after the head.

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <thread>

#include "tests/support/http_client.h"
#include "tests/support/launcher.h"
#include "tests/support/origin.h"
#include "tests/support/weir_config.h"

namespace weir::test {
namespace {

enum class Outcome { kRejected, kForwarded };

struct Attempt {
  std::string name;
  std::string bytes;  // exactly what the client sends
  Outcome expect;
  // kForwarded: what the origin must see.
  std::string method, target, body;
};

template <size_t N>
std::string lit(const char (&s)[N]) {
  return std::string(s, N - 1);
}

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

// The request a lenient reader would find hidden in the attempt.
const std::string kHidden = "GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n";

std::string hex(size_t n) {
  char b[32];
  std::snprintf(b, sizeof b, "%zx", n);
  return b;
}

// A chunked body carrying `data` in one chunk.
std::string chunked(const std::string& data, const std::string& ext = "") {
  return hex(data.size()) + ext + "\r\n" + data + "\r\n0\r\n\r\n";
}

std::vector<Attempt> corpus() {
  const std::string post = "POST /a HTTP/1.1\r\nHost: x\r\n";
  const std::string cl_hidden = "Content-Length: " + std::to_string(kHidden.size()) + "\r\n";
  const std::string body_chunked = chunked(kHidden);
  std::vector<Attempt> v;
  auto reject = [&](std::string name, std::string bytes) {
    v.push_back({std::move(name), std::move(bytes), Outcome::kRejected, "", "", ""});
  };
  auto forward = [&](std::string name, std::string bytes, std::string method, std::string target,
                     std::string body) {
    v.push_back({std::move(name), std::move(bytes), Outcome::kForwarded, std::move(method),
                 std::move(target), std::move(body)});
  };

  // ---- CL.TE and TE.CL: both framings in one message ----
  reject("cl.te",
         post + "Content-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + kHidden);
  reject("te.cl", post + "Transfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n" + body_chunked);
  reject("cl0.te", post + "Content-Length: 0\r\nTransfer-Encoding: chunked\r\n\r\n" + body_chunked);
  reject("te.cl_long", post + "Transfer-Encoding: chunked\r\n" + cl_hidden + "\r\n" + body_chunked);
  reject(
      "cl.te_http10",
      "POST /a HTTP/1.0\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n" + body_chunked);

  // ---- TE.TE: disguised Transfer-Encoding values and names ----
  for (std::string te : {"xchunked", "chunkedx", "chunk", "chunked, identity", "chunked;q=1",
                         "\"chunked\"", "chunked, chunked", "chunked,x", "identity", "x-chunked"}) {
    reject("te.te " + te,
           post + "Transfer-Encoding: " + te + "\r\n" + cl_hidden + "\r\n" + kHidden);
    reject("te.te-nocl " + te, post + "Transfer-Encoding: " + te + "\r\n\r\n" + body_chunked);
  }
  reject("te space-before-colon",
         post + "Transfer-Encoding : chunked\r\n" + cl_hidden + "\r\n" + kHidden);
  reject("te tab-before-colon",
         post + "Transfer-Encoding\t: chunked\r\n" + cl_hidden + "\r\n" + kHidden);
  reject("te vertical-tab", post +
                                "Transfer-Encoding:\x0b"
                                "chunked\r\n\r\n" +
                                body_chunked);
  reject("te form-feed", post +
                             "Transfer-Encoding: \x0c"
                             "chunked\r\n\r\n" +
                             body_chunked);
  reject("te nul", post + lit("Transfer-Encoding: chunked\0\r\n\r\n") + body_chunked);
  reject("te obs-fold value", post + "Transfer-Encoding:\r\n chunked\r\n\r\n" + body_chunked);
  reject("te leading-space name", post + " Transfer-Encoding: chunked\r\n\r\n" + body_chunked);
  reject("te folded into other header",
         post + "X-A: 1\r\n Transfer-Encoding: chunked\r\n" + cl_hidden + "\r\n" + kHidden);
  reject("te underscore", post + "Transfer_Encoding: chunked\r\n" + cl_hidden + "\r\n" + kHidden);
  reject("te twice",
         post + "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n" + body_chunked);
  reject("te chunked then other",
         post + "Transfer-Encoding: chunked\r\nTransfer-Encoding: x\r\n\r\n" + body_chunked);
  reject("te other then chunked with cl",
         post + "Transfer-Encoding: x\r\nTransfer-Encoding: chunked\r\n" + cl_hidden + "\r\n" +
             body_chunked);
  reject("te in http/1.0", "POST /a HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n" + body_chunked);
  reject("te bare-cr", post + "Transfer-Encoding: chunked\rX: 1\r\n\r\n" + body_chunked);
  reject("te empty", post + "Transfer-Encoding: \r\n" + cl_hidden + "\r\n" + kHidden);

  // Obfuscations a strict reader still reads as one chunked body: forwarded
  // with one canonical Transfer-Encoding header.
  for (std::string te : {"\tchunked", "chunked ", "chunked\t", "CHUNKED", "cHuNkEd", ", chunked",
                         "chunked,", "gzip, chunked"}) {
    forward(
        "te ok '" + te + "'",
        post + "Transfer-Encoding:" + (te[0] == '\t' ? "" : " ") + te + "\r\n\r\n" + body_chunked,
        "POST", "/a", kHidden);
  }
  forward("te split over two headers",
          post + "Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n" + body_chunked,
          "POST", "/a", kHidden);

  // ---- Content-Length tricks ----
  for (std::string cl : {"+35", "-1", "0x23", "35.0", "35 35", "3 5", "35a", "1e2", "",
                         "18446744073709551651", "99999999999999999999999"}) {
    reject("cl '" + cl + "'", post + "Content-Length: " + cl + "\r\n\r\n" + kHidden);
  }
  reject("cl duplicate same", post + cl_hidden + cl_hidden + "\r\n" + kHidden);
  reject("cl duplicate different", post + "Content-Length: 0\r\n" + cl_hidden + "\r\n" + kHidden);
  reject("cl list same", post + "Content-Length: 35, 35\r\n\r\n" + kHidden);
  reject("cl list different", post + "Content-Length: 0, 35\r\n\r\n" + kHidden);
  reject("cl nul", post + lit("Content-Length: 35\0\r\n\r\n") + kHidden);
  reject("cl underscore", post + "Content_Length: 35\r\nContent-Length: 0\r\n\r\n" + kHidden);
  reject("cl space-before-colon", post + "Content-Length : 35\r\n\r\n" + kHidden);
  reject("cl obs-fold", post + "Content-Length:\r\n 35\r\n\r\n" + kHidden);
  forward("cl leading zeros", post + "Content-Length: 00035\r\n\r\n" + kHidden, "POST", "/a",
          kHidden);
  forward("cl on a GET", "GET /a HTTP/1.1\r\nHost: x\r\n" + cl_hidden + "\r\n" + kHidden, "GET",
          "/a", kHidden);

  // ---- line endings ----
  reject("bare lf before cl", post + "X-A: 1\n" + cl_hidden + "\r\n" + kHidden);
  reject("bare lf everywhere", "POST /a HTTP/1.1\nHost: x\n" + std::string("Content-Length: ") +
                                   std::to_string(kHidden.size()) + "\n\n" + kHidden);
  reject("bare lf request line",
         "POST /a HTTP/1.1\n" + std::string("Host: x\r\n") + cl_hidden + "\r\n" + kHidden);
  reject("bare lf end of head", post + cl_hidden + "\n" + kHidden);
  reject("bare cr before cl", post + "X-A: 1\r" + cl_hidden + "\r\n" + kHidden);
  reject("bare cr request line",
         "POST /a HTTP/1.1\r" + std::string("Host: x\r\n") + cl_hidden + "\r\n" + kHidden);

  // ---- chunk sizes and extensions ----
  const std::string te_head = post + "Transfer-Encoding: chunked\r\n\r\n";
  const std::string n = hex(kHidden.size());
  reject("chunk size 0x", te_head + "0x" + n + "\r\n" + kHidden + "\r\n0\r\n\r\n");
  reject("chunk size overflow",
         te_head + "1000000000000000" + n + "\r\n" + kHidden + "\r\n0\r\n\r\n");
  reject("chunk size wraps 64 bits",
         te_head + "ffffffffffffffff" + n + "\r\n" + kHidden + "\r\n0\r\n\r\n");
  reject("chunk size negative", te_head + "-" + n + "\r\n" + kHidden + "\r\n0\r\n\r\n");
  reject("chunk size leading space", te_head + " " + n + "\r\n" + kHidden + "\r\n0\r\n\r\n");
  reject("chunk size trailing space", te_head + n + " \r\n" + kHidden + "\r\n0\r\n\r\n");
  reject("chunk size too small", te_head + "5\r\n" + kHidden + "\r\n0\r\n\r\n");
  reject("chunk size lf", te_head + n + "\n" + kHidden + "\r\n0\r\n\r\n");
  reject("chunk data lf", te_head + n + "\r\n" + kHidden + "\n0\r\n\r\n");
  reject("last chunk lf", te_head + n + "\r\n" + kHidden + "\r\n0\n\n");
  reject("chunk ext bare lf", te_head + "2;\nxx\r\n" + n + "\r\n" + kHidden + "\r\n0\r\n\r\n");
  reject("chunk ext bare cr", te_head + "2;a\rxx\r\n0\r\n\r\n" + kHidden);
  reject("chunk ext too long",
         te_head + n + ";a=" + std::string(2000, 'x') + "\r\n" + kHidden + "\r\n0\r\n\r\n");
  reject("chunk ext unterminated quote", te_head + n + ";a=\"x\r\n" + kHidden + "\r\n0\r\n\r\n");
  reject("chunk ext nul", te_head + n + lit(";a\0\r\n") + kHidden + "\r\n0\r\n\r\n");
  reject("no last chunk, request as trailer", te_head + "0\r\n" + kHidden);
  reject("trailer content-length", te_head + "0\r\nContent-Length: 35\r\n\r\n" + kHidden);
  reject("trailer transfer-encoding",
         te_head + "0\r\nTransfer-Encoding: chunked\r\n\r\n" + body_chunked);
  forward("chunk ext quoted", te_head + chunked(kHidden, ";a=\"x\\\"y\\r\\n\";b"), "POST", "/a",
          kHidden);
  forward("chunk size leading zeros", te_head + "000" + n + "\r\n" + kHidden + "\r\n0\r\n\r\n",
          "POST", "/a", kHidden);
  forward("trailer field", te_head + n + "\r\n" + kHidden + "\r\n0\r\nX-T: 1\r\n\r\n", "POST", "/a",
          kHidden);

  // ---- other header and request-line tricks ----
  reject("nul in header value", post + lit("X-A: 1\0") + "\r\n" + cl_hidden + "\r\n" + kHidden);
  reject("nul in target",
         lit("POST /a\0 HTTP/1.1\r\n") + "Host: x\r\n" + cl_hidden + "\r\n" + kHidden);
  reject("two hosts", "POST /a HTTP/1.1\r\nHost: x\r\nHost: y\r\n" + cl_hidden + "\r\n" + kHidden);
  reject("absolute-form host mismatch",
         "POST http://y/a HTTP/1.1\r\nHost: x\r\n" + cl_hidden + "\r\n" + kHidden);
  reject("absolute-form userinfo",
         "POST http://x@y/a HTTP/1.1\r\nHost: y\r\n" + cl_hidden + "\r\n" + kHidden);
  reject("request line extra space",
         "POST /a  HTTP/1.1\r\nHost: x\r\n" + cl_hidden + "\r\n" + kHidden);
  reject("version 1.2", "POST /a HTTP/1.2\r\nHost: x\r\n" + cl_hidden + "\r\n" + kHidden);
  forward("absolute-form same host",
          "POST http://x/a HTTP/1.1\r\nHost: x\r\n" + cl_hidden + "\r\n" + kHidden, "POST",
          "http://x/a", kHidden);
  forward("connection names content-length",
          post + "Connection: Content-Length\r\n" + cl_hidden + "\r\n" + kHidden, "POST", "/a",
          kHidden);
  forward(
      "connection names transfer-encoding",
      post + "Connection: transfer-encoding\r\nTransfer-Encoding: chunked\r\n\r\n" + body_chunked,
      "POST", "/a", kHidden);
  forward("h2c upgrade with body",
          post + "Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AA\r\n" +
              cl_hidden + "\r\n" + kHidden,
          "POST", "/a", kHidden);
  forward("http/1.0 keep-alive with cl",
          "POST /a HTTP/1.0\r\nConnection: keep-alive\r\n" + cl_hidden + "\r\n" + kHidden, "POST",
          "/a", kHidden);
  return v;
}

class Smuggling : public ::testing::Test {
 protected:
  void SetUp() override {
    ignore_sigpipe();
    spec_.servers = {origin_.address()};
    spec_.threads = 1;  // one pool of server connections: leftovers would show
    weir_ = WeirProcess::start(proxy_yaml(spec_));
  }

  // Bytes received so far on each of the origin's connections.
  std::vector<size_t> received_sizes() const {
    std::vector<size_t> sizes;
    for (int i = 0; i < origin_.connections_accepted(); ++i) {
      sizes.push_back(origin_.received_bytes(i).size());
    }
    return sizes;
  }
  // Bytes received since `before`, on whichever connections.
  std::string received_since(const std::vector<size_t>& before) const {
    std::string out;
    for (int i = 0; i < origin_.connections_accepted(); ++i) {
      std::string all = origin_.received_bytes(i);
      size_t from = static_cast<size_t>(i) < before.size() ? before[static_cast<size_t>(i)] : 0;
      out += all.substr(std::min(from, all.size()));
    }
    return out;
  }

  // Runs one attempt; `split`: send the head and the rest in two writes.
  void run(const Attempt& a, bool split) {
    SCOPED_TRACE(a.name + (split ? " (split)" : "") + ": " + shown(a.bytes));
    const size_t requests_before = origin_.requests().size();
    const std::vector<size_t> bytes_before = received_sizes();
    {
      HttpClient c(spec_.port);
      size_t head_end = a.bytes.find("\r\n\r\n");
      if (split && head_end != std::string::npos && head_end + 4 < a.bytes.size()) {
        c.send_raw(std::string_view(a.bytes).substr(0, head_end + 4));
        std::this_thread::sleep_for(std::chrono::milliseconds(30));
        c.send_raw(std::string_view(a.bytes).substr(head_end + 4));
      } else {
        c.send_raw(a.bytes);
      }
      auto r = c.read_response(5000);
      if (a.expect == Outcome::kRejected) {
        // 400 and a close; with a split body found bad after the head left,
        // weir may only be able to close.
        if (r) {
          EXPECT_EQ(r->status, 400);
        }
        if (!split) {
          EXPECT_TRUE(r) << "no 400";
        }
        EXPECT_TRUE(c.wait_closed(3000)) << "still open";
      } else {
        ASSERT_TRUE(r) << "no response";
        EXPECT_EQ(r->status, 200);
        // Exactly one response: nothing else comes, the connection stays open.
        EXPECT_EQ(c.read_available(200), "");
        EXPECT_TRUE(c.connected());
      }
    }
    if (a.expect == Outcome::kForwarded) {
      EXPECT_TRUE(origin_.wait_for_requests(requests_before + 1, 3000));
    }
    std::this_thread::sleep_for(
        std::chrono::milliseconds(a.expect == Outcome::kForwarded ? 50 : 20));
    std::vector<RecordedRequest> reqs = origin_.requests();
    std::string got = received_since(bytes_before);
    if (a.expect == Outcome::kRejected) {
      EXPECT_EQ(reqs.size(), requests_before) << "the origin processed a request";
      if (!split) {
        EXPECT_EQ(got, "") << "bytes reached the origin: " << shown(got);
      }
      ++rejected_;
    } else {
      ASSERT_EQ(reqs.size(), requests_before + 1) << "received: " << shown(got);
      const RecordedRequest& rec = reqs.back();
      EXPECT_EQ(rec.method, a.method);
      EXPECT_EQ(rec.target, a.target);
      EXPECT_EQ(rec.body_size, a.body.size());
      EXPECT_EQ(rec.body_sha256, sha256_hex(a.body));
      // Exactly that request's bytes, nothing after them.
      size_t head_end = a.bytes.find("\r\n\r\n");
      EXPECT_EQ(got, rec.head + a.bytes.substr(head_end + 4)) << shown(got);
      ++forwarded_;
    }
    // The server side is still in step: a probe on a new client connection
    // (and the pooled server connection, when there is one) gets its answer.
    auto probe = http_get(spec_.port, "/probe");
    ASSERT_TRUE(probe);
    EXPECT_EQ(probe->status, 200);
    EXPECT_EQ(origin_.requests().back().target, "/probe");  // recorded before it answered
  }

  OriginServer origin_{"a"};
  ProxySpec spec_;
  std::unique_ptr<WeirProcess> weir_;
  int rejected_ = 0;
  int forwarded_ = 0;
};

TEST_F(Smuggling, EveryAttemptIsRejectedOrForwardedAsOneRequest) {
  ASSERT_TRUE(weir_);
  ASSERT_EQ(kHidden.size(), 35u);  // the literal lengths above count on it
  const std::vector<Attempt> attempts = corpus();
  ASSERT_GE(attempts.size(), 40u);
  int runs = 0;
  for (bool split : {false, true}) {
    for (const Attempt& a : attempts) {
      run(a, split);
      ++runs;
    }
  }
  std::printf(
      "[smuggling] %zu distinct attempts, %d runs (whole and split): %d rejected, %d forwarded as "
      "exactly one request\n",
      attempts.size(), runs, rejected_, forwarded_);
  RecordProperty("attempts", static_cast<int>(attempts.size()));
  RecordProperty("runs", runs);
  // weir is still healthy, and counted the refusals.
  auto r = http_get(spec_.port, "/end");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
}

}  // namespace
}  // namespace weir::test
