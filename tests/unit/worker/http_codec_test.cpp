#include "worker/http_codec.h"

#include <gtest/gtest.h>

#include <string>

namespace weir::http {
namespace {

// The parsed views point into the text: keep it alive until the next call.
std::string g_text;

ParseStatus parse_req(const std::string& s, MessageHead* h, size_t max_head = 16384) {
  g_text = s;
  size_t scan = 0;
  return parse_request(g_text.data(), g_text.size(), max_head, &scan, h);
}

TEST(HttpCodec, ParsesASimpleRequest) {
  MessageHead h;
  std::string req = "GET /a?b=c HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\n\r\n";
  ASSERT_EQ(parse_req(req, &h), ParseStatus::kComplete);
  EXPECT_EQ(h.method, "GET");
  EXPECT_EQ(h.target, "/a?b=c");
  EXPECT_EQ(h.version_minor, 1);
  EXPECT_EQ(h.header_count, 2u);
  EXPECT_EQ(h.headers[0].name, "Host");
  EXPECT_EQ(h.headers[0].value, "example.com");
  EXPECT_EQ(h.head_len, req.size());
  EXPECT_EQ(h.body, BodyKind::kNone);
  EXPECT_TRUE(h.keep_alive());
}

TEST(HttpCodec, FragmentedByteByByteCompletesOnlyAtTheEnd) {
  std::string req =
      "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nX-A:  padded value  \r\n\r\nhello";
  size_t head_len = req.find("hello");
  MessageHead h;
  size_t scan = 0;
  for (size_t n = 1; n < head_len; ++n) {
    ASSERT_EQ(parse_request(req.data(), n, 16384, &scan, &h), ParseStatus::kIncomplete) << n;
  }
  ASSERT_EQ(parse_request(req.data(), head_len, 16384, &scan, &h), ParseStatus::kComplete);
  EXPECT_EQ(h.head_len, head_len);
  EXPECT_EQ(h.body, BodyKind::kContentLength);
  EXPECT_EQ(h.content_length, 5u);
  EXPECT_EQ(h.find("x-a")->value, "padded value");
}

TEST(HttpCodec, PipelinedRequestsParseOneAfterTheOther) {
  std::string two = "GET /1 HTTP/1.1\r\nHost: x\r\n\r\nGET /2 HTTP/1.1\r\nHost: x\r\n\r\n";
  MessageHead h;
  ASSERT_EQ(parse_req(two, &h), ParseStatus::kComplete);
  EXPECT_EQ(h.target, "/1");
  std::string rest = two.substr(h.head_len);
  MessageHead h2;
  ASSERT_EQ(parse_req(rest, &h2), ParseStatus::kComplete);  // h's views are stale from here
  EXPECT_EQ(h2.target, "/2");
  EXPECT_EQ(h2.head_len, rest.size());
}

TEST(HttpCodec, LeadingEmptyLinesAreIgnored) {
  MessageHead h;
  ASSERT_EQ(parse_req("\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n", &h), ParseStatus::kComplete);
  EXPECT_EQ(h.method, "GET");
}

TEST(HttpCodec, BareLfLineEndingsAreAccepted) {
  MessageHead h;
  ASSERT_EQ(parse_req("GET / HTTP/1.1\nHost: x\n\n", &h), ParseStatus::kComplete);
  EXPECT_EQ(h.header_count, 1u);
}

TEST(HttpCodec, Http10DefaultsToClose) {
  MessageHead h;
  ASSERT_EQ(parse_req("GET / HTTP/1.0\r\n\r\n", &h), ParseStatus::kComplete);
  EXPECT_FALSE(h.keep_alive());
  EXPECT_FALSE(h.has_host);
  ASSERT_EQ(parse_req("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", &h),
            ParseStatus::kComplete);
  EXPECT_TRUE(h.keep_alive());
  ASSERT_EQ(parse_req("GET / HTTP/1.1\r\nHost: x\r\nConnection: foo, close\r\n\r\n", &h),
            ParseStatus::kComplete);
  EXPECT_FALSE(h.keep_alive());
}

TEST(HttpCodec, ChunkedRequestFraming) {
  MessageHead h;
  ASSERT_EQ(parse_req("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", &h),
            ParseStatus::kComplete);
  EXPECT_EQ(h.body, BodyKind::kChunked);
}

struct BadCase {
  const char* name;
  const char* text;
};

class HttpCodecRejects : public ::testing::TestWithParam<BadCase> {};

TEST_P(HttpCodecRejects, Request) {
  MessageHead h;
  EXPECT_EQ(parse_req(GetParam().text, &h), ParseStatus::kError) << GetParam().name;
  EXPECT_NE(h.error, nullptr);
}

INSTANTIATE_TEST_SUITE_P(
    Malformed, HttpCodecRejects,
    ::testing::Values(
        BadCase{"cl_and_te",
                "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
                "Transfer-Encoding: chunked\r\n\r\n"},
        BadCase{"conflicting_cl",
                "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
                "Content-Length: 4\r\n\r\n"},
        BadCase{"cl_list_conflict", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3, 4\r\n\r\n"},
        BadCase{"cl_not_number", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3a\r\n\r\n"},
        BadCase{"cl_negative", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n"},
        BadCase{"te_not_chunked", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n"},
        BadCase{"te_in_http10", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"},
        BadCase{"no_host_11", "GET / HTTP/1.1\r\n\r\n"},
        BadCase{"two_hosts", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"},
        BadCase{"space_in_name", "GET / HTTP/1.1\r\nHost: x\r\nBad Name: v\r\n\r\n"},
        BadCase{"space_before_colon", "GET / HTTP/1.1\r\nHost: x\r\nName : v\r\n\r\n"},
        BadCase{"obs_fold", "GET / HTTP/1.1\r\nHost: x\r\nA: b\r\n  c\r\n\r\n"},
        BadCase{"bare_cr", "GET / HTTP/1.1\r\nHost: x\rEvil: 1\r\n\r\n"},
        BadCase{"ctl_in_target", "GET /\x7f HTTP/1.1\r\nHost: x\r\n\r\n"},
        BadCase{"bad_version", "GET / HTTP/2.0\r\nHost: x\r\n\r\n"},
        BadCase{"lowercase_version", "GET / http/1.1\r\nHost: x\r\n\r\n"},
        BadCase{"no_target", "GET  HTTP/1.1\r\nHost: x\r\n\r\n"},
        BadCase{"bad_method", "G(T / HTTP/1.1\r\nHost: x\r\n\r\n"},
        BadCase{"empty_name", "GET / HTTP/1.1\r\nHost: x\r\n: v\r\n\r\n"}),
    [](const ::testing::TestParamInfo<BadCase>& p) { return std::string(p.param.name); });

TEST(HttpCodec, NulInValueIsRejected) {
  std::string req("GET / HTTP/1.1\r\nHost: x\r\nA: \0b\r\n\r\n", 34);
  MessageHead h;
  EXPECT_EQ(parse_req(req, &h), ParseStatus::kError);
}

TEST(HttpCodec, OversizedHeadIsAnErrorBeforeItEnds) {
  std::string req = "GET / HTTP/1.1\r\nHost: x\r\nX: " + std::string(2000, 'a');
  MessageHead h;
  EXPECT_EQ(parse_req(req, &h, 1024), ParseStatus::kError);
  EXPECT_STREQ(h.error, "request head too large");
}

TEST(HttpCodec, TooManyHeaders) {
  std::string req = "GET / HTTP/1.1\r\nHost: x\r\n";
  for (size_t i = 0; i < kMaxHeaders; ++i) req += "X-" + std::to_string(i) + ": v\r\n";
  req += "\r\n";
  MessageHead h;
  EXPECT_EQ(parse_req(req, &h, 1 << 20), ParseStatus::kError);
  EXPECT_STREQ(h.error, "too many headers");
}

ParseStatus parse_res(const std::string& s, MessageHead* h, std::string_view method = "GET") {
  g_text = s;
  size_t scan = 0;
  return parse_response(g_text.data(), g_text.size(), 16384, &scan, method, h);
}

TEST(HttpCodec, ResponseFraming) {
  MessageHead h;
  ASSERT_EQ(parse_res("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n", &h), ParseStatus::kComplete);
  EXPECT_EQ(h.status, 200);
  EXPECT_EQ(h.reason, "OK");
  EXPECT_EQ(h.body, BodyKind::kContentLength);
  ASSERT_EQ(parse_res("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", &h),
            ParseStatus::kComplete);
  EXPECT_EQ(h.body, BodyKind::kChunked);
  ASSERT_EQ(parse_res("HTTP/1.0 200 OK\r\n\r\n", &h), ParseStatus::kComplete);
  EXPECT_EQ(h.body, BodyKind::kUntilClose);
  EXPECT_FALSE(h.keep_alive());
  ASSERT_EQ(parse_res("HTTP/1.1 204 No Content\r\nContent-Length: 10\r\n\r\n", &h),
            ParseStatus::kComplete);
  EXPECT_EQ(h.body, BodyKind::kNone);
  ASSERT_EQ(parse_res("HTTP/1.1 304 Not Modified\r\n\r\n", &h), ParseStatus::kComplete);
  EXPECT_EQ(h.body, BodyKind::kNone);
  ASSERT_EQ(parse_res("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n", &h, "HEAD"),
            ParseStatus::kComplete);
  EXPECT_EQ(h.body, BodyKind::kNone);
  ASSERT_EQ(parse_res("HTTP/1.1 100 Continue\r\n\r\n", &h), ParseStatus::kComplete);
  EXPECT_EQ(h.status, 100);
  ASSERT_EQ(parse_res("HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n", &h), ParseStatus::kComplete);
  EXPECT_EQ(h.reason, "");
}

TEST(HttpCodec, BadResponses) {
  MessageHead h;
  EXPECT_EQ(parse_res("HTTP/1.1 2x0 OK\r\n\r\n", &h), ParseStatus::kError);
  EXPECT_EQ(parse_res("HTTP/1.1 099 Low\r\n\r\n", &h), ParseStatus::kError);
  EXPECT_EQ(parse_res("ICY 200 OK\r\n\r\n", &h), ParseStatus::kError);
  EXPECT_EQ(
      parse_res("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n", &h),
      ParseStatus::kError);
}

TEST(ChunkedWalker, FindsTheEndOfTheBody) {
  std::string body =
      "5\r\nhello\r\n1a;ext=1\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nTrailer: x\r\n\r\n";
  std::string next = "GET / HTTP/1.1\r\n";
  std::string all = body + next;
  ChunkedWalker w;
  size_t n = w.feed(all.data(), all.size());
  EXPECT_TRUE(w.done());
  EXPECT_EQ(n, body.size());
}

TEST(ChunkedWalker, ByteByByte) {
  std::string body = "3\r\nabc\r\n10\r\n0123456789abcdef\r\n0\r\n\r\n";
  ChunkedWalker w;
  size_t total = 0;
  for (size_t i = 0; i < body.size(); ++i) {
    ASSERT_FALSE(w.done()) << i;
    total += w.feed(body.data() + i, 1);
    ASSERT_FALSE(w.failed()) << i;
  }
  EXPECT_TRUE(w.done());
  EXPECT_EQ(total, body.size());
}

TEST(ChunkedWalker, RejectsGarbage) {
  for (std::string bad : {"zz\r\n", "5\r\nhelloXX", "\r\n", "5\rhello", "12345678901234567\r\n"}) {
    ChunkedWalker w;
    w.feed(bad.data(), bad.size());
    EXPECT_TRUE(w.failed()) << bad;
  }
}

}  // namespace
}  // namespace weir::http
