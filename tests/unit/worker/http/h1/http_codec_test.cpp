#include "worker/http/h1/http_codec.h"

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

TEST(HttpCodec, BareLfLineEndingsAreRefused) {
  // RFC 9112 2.2 allows a recipient to accept them; weir does not, so that no
  // server behind it can read the lines differently.
  MessageHead h;
  ASSERT_EQ(parse_req("GET / HTTP/1.1\nHost: x\n\n", &h), ParseStatus::kError);
  EXPECT_STREQ(h.error, "bare LF in head");
  ASSERT_EQ(parse_req("GET / HTTP/1.1\r\nHost: x\nX: y\r\n\r\n", &h), ParseStatus::kError);
  EXPECT_STREQ(h.error, "bare LF in head");
  ASSERT_EQ(parse_req("GET / HTTP/1.1\r\nHost: x\r\n\n", &h), ParseStatus::kError);
  ASSERT_EQ(parse_req("\nGET / HTTP/1.1\r\nHost: x\r\n\r\n", &h), ParseStatus::kError);
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
  // Split over two headers, empty list elements, any case, surrounding whitespace.
  ASSERT_EQ(parse_req("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n"
                      "Transfer-Encoding: ,CHUNKED,\t\r\n\r\n",
                      &h),
            ParseStatus::kComplete);
  EXPECT_EQ(h.body, BodyKind::kChunked);
}

TEST(HttpCodec, RequestTargetForms) {
  MessageHead h;
  ASSERT_EQ(parse_req("OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n", &h), ParseStatus::kComplete);
  EXPECT_EQ(h.target_form, TargetForm::kAsterisk);
  ASSERT_EQ(parse_req("CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n", &h),
            ParseStatus::kComplete);
  EXPECT_EQ(h.target_form, TargetForm::kAuthority);
  ASSERT_EQ(parse_req("GET http://Example.com/a?b HTTP/1.1\r\nHost: example.COM:80\r\n\r\n", &h),
            ParseStatus::kComplete);
  EXPECT_EQ(h.target_form, TargetForm::kAbsolute);
  EXPECT_EQ(h.host, "example.COM:80");
  ASSERT_EQ(parse_req("GET https://[::1]:8443 HTTP/1.1\r\nHost: [::1]:8443\r\n\r\n", &h),
            ParseStatus::kComplete);
  ASSERT_EQ(parse_req("GET https://a.example:443/ HTTP/1.1\r\nHost: a.example\r\n\r\n", &h),
            ParseStatus::kComplete);
  // HTTP/1.0 may omit Host, also with an absolute-form target.
  ASSERT_EQ(parse_req("GET http://a.example/ HTTP/1.0\r\n\r\n", &h), ParseStatus::kComplete);
}

TEST(HttpCodec, WebSocketUpgradeIsRecognised) {
  MessageHead h;
  ASSERT_EQ(parse_req("GET /ws HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, Upgrade\r\n"
                      "Upgrade: WebSocket\r\n\r\n",
                      &h),
            ParseStatus::kComplete);
  EXPECT_TRUE(h.conn_upgrade);
  EXPECT_TRUE(h.upgrade_websocket);
}

TEST(HttpCodec, HeaderCountLimitIsTheCallers) {
  std::string req = "GET / HTTP/1.1\r\nHost: x\r\n";
  for (int i = 0; i < 9; ++i) req += "X-" + std::to_string(i) + ": v\r\n";
  req += "\r\n";
  MessageHead h;
  size_t scan = 0;
  EXPECT_EQ(parse_request(req.data(), req.size(), 16384, &scan, &h, 10), ParseStatus::kComplete);
  scan = 0;
  EXPECT_EQ(parse_request(req.data(), req.size(), 16384, &scan, &h, 9), ParseStatus::kError);
  EXPECT_STREQ(h.error, "too many headers");
}

struct BadCase {
  const char* name;
  std::string text;
};

// A string literal with its NUL bytes.
template <size_t N>
std::string lit(const char (&s)[N]) {
  return std::string(s, N - 1);
}

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
        BadCase{"empty_name", "GET / HTTP/1.1\r\nHost: x\r\n: v\r\n\r\n"},
        BadCase{"same_cl_twice",
                "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
                "Content-Length: 3\r\n\r\n"},
        BadCase{"cl_list_same", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3, 3\r\n\r\n"},
        BadCase{"cl_plus", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: +3\r\n\r\n"},
        BadCase{"cl_hex", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0x3\r\n\r\n"},
        BadCase{"cl_empty", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: \r\n\r\n"},
        BadCase{"cl_20_digits",
                "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 18446744073709551616\r\n\r\n"},
        BadCase{"cl_underscore", "POST / HTTP/1.1\r\nHost: x\r\nContent_Length: 3\r\n\r\n"},
        BadCase{"te_underscore",
                "POST / HTTP/1.1\r\nHost: x\r\nTransfer_Encoding: chunked\r\n\r\n"},
        BadCase{"te_chunked_twice",
                "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                "Transfer-Encoding: chunked\r\n\r\n"},
        BadCase{"te_chunked_then_identity",
                "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, identity\r\n\r\n"},
        BadCase{"te_xchunked", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\n\r\n"},
        BadCase{"te_quoted",
                "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: \"chunked\"\r\n\r\n"},
        BadCase{"te_with_parameter",
                "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked;q=1\r\n\r\n"},
        BadCase{"te_empty", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: ,\r\n\r\n"},
        BadCase{"te_space_before_colon",
                "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\n\r\n"},
        BadCase{"invalid_host", "GET / HTTP/1.1\r\nHost: a b\r\n\r\n"},
        BadCase{"host_with_userinfo", "GET / HTTP/1.1\r\nHost: user@a\r\n\r\n"},
        BadCase{"host_with_path", "GET / HTTP/1.1\r\nHost: a/b\r\n\r\n"},
        BadCase{"host_bad_port", "GET / HTTP/1.1\r\nHost: a:8o\r\n\r\n"},
        BadCase{"absolute_host_mismatch",
                "GET http://a.example/ HTTP/1.1\r\nHost: b.example\r\n\r\n"},
        BadCase{"absolute_port_mismatch",
                "GET http://a.example:8080/ HTTP/1.1\r\nHost: a.example\r\n\r\n"},
        BadCase{"absolute_userinfo", "GET http://u@a/ HTTP/1.1\r\nHost: a\r\n\r\n"},
        BadCase{"absolute_other_scheme", "GET ftp://a/ HTTP/1.1\r\nHost: a\r\n\r\n"},
        BadCase{"relative_target", "GET a/b HTTP/1.1\r\nHost: a\r\n\r\n"},
        BadCase{"fragment", "GET /a#b HTTP/1.1\r\nHost: a\r\n\r\n"},
        BadCase{"asterisk_get", "GET * HTTP/1.1\r\nHost: a\r\n\r\n"},
        BadCase{"connect_origin_form", "CONNECT / HTTP/1.1\r\nHost: a\r\n\r\n"},
        BadCase{"connect_no_port", "CONNECT a.example HTTP/1.1\r\nHost: a.example\r\n\r\n"},
        BadCase{"connect_host_mismatch", "CONNECT a:443 HTTP/1.1\r\nHost: b:443\r\n\r\n"},
        BadCase{"connect_with_body",
                "CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\nContent-Length: 2\r\n\r\n"},
        BadCase{"bare_lf_request_line", "GET / HTTP/1.1\nHost: x\r\n\r\n"},
        BadCase{"bare_cr_request_line", "GET / HTTP/1.1\rHost: x\r\n\r\n"},
        BadCase{"space_after_version", "GET / HTTP/1.1 \r\nHost: x\r\n\r\n"},
        BadCase{"two_spaces", "GET  / HTTP/1.1\r\nHost: x\r\n\r\n"},
        BadCase{"tab_separator", "GET\t/ HTTP/1.1\r\nHost: x\r\n\r\n"},
        BadCase{"version_http10_lower", "GET / HTTP/1.01\r\nHost: x\r\n\r\n"},
        BadCase{"nul_in_target", lit("GET /\0 HTTP/1.1\r\nHost: x\r\n\r\n")},
        BadCase{"nul_in_name", lit("GET / HTTP/1.1\r\nHost: x\r\nA\0: b\r\n\r\n")},
        BadCase{"ctl_in_value",
                "GET / HTTP/1.1\r\nHost: x\r\nA: b\x01"
                "c\r\n\r\n"},
        BadCase{"del_in_value", "GET / HTTP/1.1\r\nHost: x\r\nA: b\x7f\r\n\r\n"},
        BadCase{"high_byte_in_name", "GET / HTTP/1.1\r\nHost: x\r\nA\xc3\xa9: b\r\n\r\n"},
        BadCase{"te_in_http10_other",
                "POST / HTTP/1.0\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"}),
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
  for (size_t i = 0; i < kDefaultMaxHeaders; ++i) req += "X-" + std::to_string(i) + ": v\r\n";
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

TEST(HttpCodec, ConnectAnswersCarryNoBody) {
  MessageHead h;
  ASSERT_EQ(parse_res("HTTP/1.1 200 Connection established\r\n\r\n", &h, "CONNECT"),
            ParseStatus::kComplete);
  EXPECT_EQ(h.body, BodyKind::kNone);
  ASSERT_EQ(parse_res("HTTP/1.1 407 Auth\r\nContent-Length: 2\r\n\r\n", &h, "CONNECT"),
            ParseStatus::kComplete);
  EXPECT_EQ(h.body, BodyKind::kContentLength);
}

TEST(HttpCodec, ResponseCodingsWithoutFinalChunkedReadUntilClose) {
  MessageHead h;
  ASSERT_EQ(parse_res("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", &h),
            ParseStatus::kComplete);
  EXPECT_EQ(h.body, BodyKind::kUntilClose);
}

TEST(HttpCodec, BadResponses) {
  MessageHead h;
  EXPECT_EQ(parse_res("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n", &h),
            ParseStatus::kError);
  EXPECT_EQ(parse_res("HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", &h), ParseStatus::kError);
  EXPECT_EQ(parse_res("HTTP/1.1 200 OK\nContent-Length: 1\r\n\r\n", &h), ParseStatus::kError);
  EXPECT_EQ(parse_res("HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n", &h), ParseStatus::kError);
  EXPECT_EQ(parse_res("HTTP/1.1 200 OK\r\nX : a\r\n\r\n", &h), ParseStatus::kError);
  EXPECT_EQ(parse_res("HTTP/1.1 200 O\x01K\r\n\r\n", &h), ParseStatus::kError);
  EXPECT_EQ(parse_res("HTTP/1.1 2000 OK\r\n\r\n", &h), ParseStatus::kError);
  EXPECT_EQ(parse_res("HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", &h),
            ParseStatus::kError);
  EXPECT_EQ(parse_res("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", &h),
            ParseStatus::kError);
  EXPECT_EQ(parse_res("HTTP/1.1 2x0 OK\r\n\r\n", &h), ParseStatus::kError);
  EXPECT_EQ(parse_res("HTTP/1.1 099 Low\r\n\r\n", &h), ParseStatus::kError);
  EXPECT_EQ(parse_res("ICY 200 OK\r\n\r\n", &h), ParseStatus::kError);
  EXPECT_EQ(
      parse_res("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n", &h),
      ParseStatus::kError);
}

// Bytes that cannot begin a status line are refused before the head ends: a
// server speaking another protocol may never send a blank line.
TEST(HttpCodec, ResponseThatIsNotHttpIsRefusedAtItsFirstBytes) {
  MessageHead h;
  for (const char* partial : {"", "H", "HTTP/", "HTTP/1.", "HTTP/1.1", "HTTP/1.0 200 OK\r\n"}) {
    EXPECT_EQ(parse_res(partial, &h), ParseStatus::kIncomplete) << partial;
  }
  EXPECT_EQ(parse_res("SSH-2.0-OpenSSH_9.2p1\r\n", &h), ParseStatus::kError);
  EXPECT_STREQ(h.error, "not an HTTP response");
  EXPECT_EQ(h.error_offset, 0u);
  EXPECT_EQ(parse_res("-ERR", &h), ParseStatus::kError);
  EXPECT_EQ(parse_res(std::string("\x15\x03\x01", 3), &h), ParseStatus::kError);
  EXPECT_EQ(parse_res("HTTX", &h), ParseStatus::kError);
  EXPECT_STREQ(h.error, "not an HTTP response");
  EXPECT_EQ(parse_res("HTTP/2 200\r\n", &h), ParseStatus::kError);
  EXPECT_STREQ(h.error, "invalid HTTP version");
  EXPECT_EQ(parse_res("HTTP/1.2", &h), ParseStatus::kError);
  EXPECT_STREQ(h.error, "invalid HTTP version");
  EXPECT_EQ(parse_res("ICY 200 OK\r\n\r\n", &h), ParseStatus::kError);
  EXPECT_STREQ(h.error, "not an HTTP response");
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
  for (std::string bad : {"zz\r\n", "5\r\nhelloXX", "\r\n", "5\rhello", "12345678901234567\r\n",
                          // bare LF after the size, after data, in trailers
                          "5\nhello\r\n", "5\r\nhello\n0\r\n\r\n", "0\r\nA: b\n\r\n", "0\r\n\n",
                          // sizes: hex prefix, sign, leading or trailing whitespace
                          "0x5\r\n", "-5\r\n", "+5\r\n", " 5\r\n", "5 \r\n", "5\t\r\n",
                          // extensions: empty, bad names, bad values, unclosed quote, CTLs
                          "5;\r\n", "5;=a\r\n", "5; a b\r\n", "5;a=\r\n", "5;a=\"b\r\n",
                          "5;a=b c\r\n", "5;a \r\n", "5;a=b \r\n", "5;a=\"b\" \r\n",
                          "5;a=\"b\"c\r\n", "5;a=\"\x01\"\r\n", "5;a\x01\r\n", "5;a=b\nhello",
                          // trailers: no colon, space before colon, obs-fold, framing fields
                          "0\r\nA\r\n\r\n", "0\r\nA : b\r\n\r\n", "0\r\nA: b\r\n c\r\n\r\n",
                          "0\r\nContent-Length: 5\r\n\r\n", "0\r\ntransfer-encoding: x\r\n\r\n",
                          "0\r\nHost: x\r\n\r\n", "0\r\nA: \x01\r\n\r\n"}) {
    ChunkedWalker w;
    w.feed(bad.data(), bad.size());
    EXPECT_TRUE(w.failed()) << bad;
  }
}

TEST(ChunkedWalker, AcceptsWellFormedExtensionsAndTrailers) {
  for (std::string good :
       {"5;a\r\nhello\r\n0\r\n\r\n", "5 ; a = b ;c\r\nhello\r\n0\r\n\r\n",
        "5;a=\"b \\\" ;c\"\r\nhello\r\n0;last\r\n\r\n", "0\r\nX-Checksum: abc\r\nX-Other:\r\n\r\n",
        "000A\r\n0123456789\r\n0\r\n\r\n"}) {
    ChunkedWalker w;
    size_t n = w.feed(good.data(), good.size());
    EXPECT_TRUE(w.done()) << good << " " << (w.error() ? w.error() : "");
    EXPECT_EQ(n, good.size()) << good;
  }
}

TEST(ChunkedWalker, ExtensionAndTrailerLimits) {
  std::string ext = "5;a=" + std::string(kMaxChunkExtension, 'x') + "\r\n";
  ChunkedWalker w;
  w.feed(ext.data(), ext.size());
  EXPECT_TRUE(w.failed());
  EXPECT_STREQ(w.error(), "chunk extension too long");
  std::string ok_ext = "5;a=" + std::string(kMaxChunkExtension - 3, 'x') + "\r\nhello\r\n0\r\n\r\n";
  ChunkedWalker w2;
  w2.feed(ok_ext.data(), ok_ext.size());
  EXPECT_TRUE(w2.done());
  // Exactly at the limits: extensions of kMaxChunkExtension bytes pass, one more
  // fails; trailer lines (with their CRLF) of kMaxTrailerBytes pass, one more fails.
  for (size_t extra : {0, 1}) {
    std::string e =
        "5;a=" + std::string(kMaxChunkExtension - 3 + extra, 'x') + "\r\nhello\r\n0\r\n\r\n";
    ChunkedWalker we;
    we.feed(e.data(), e.size());
    EXPECT_EQ(we.done(), extra == 0);
    std::string t = "0\r\nX: " + std::string(kMaxTrailerBytes - 5 + extra, 'v') + "\r\n\r\n";
    ChunkedWalker wt;
    wt.feed(t.data(), t.size());
    EXPECT_EQ(wt.done(), extra == 0) << (wt.error() ? wt.error() : "");
  }
  std::string trailers = "0\r\n";
  while (trailers.size() < kMaxTrailerBytes + 1000)
    trailers += "X-T: " + std::string(50, 'v') + "\r\n";
  trailers += "\r\n";
  ChunkedWalker w3;
  w3.feed(trailers.data(), trailers.size());
  EXPECT_TRUE(w3.failed());
  EXPECT_STREQ(w3.error(), "trailer section too large");
}

}  // namespace
}  // namespace weir::http
