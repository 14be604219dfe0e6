// The cookie side of persistence (worker/backend/persistence.h): reading the
// client's cookie in each mode, the Cookie field the server gets, and what a
// response gets (Set-Cookie, rewritten or prefixed values, dates).

#include "worker/backend/persistence.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "worker/rules/rules.h"

namespace weir::persist {
namespace {

constexpr int64_t kNow = 1800000000;  // unix seconds

struct Parsed {
  std::string text;
  std::unique_ptr<http::MessageHead> head = std::make_unique<http::MessageHead>();
};

Parsed request_with(const std::string& fields) {
  Parsed p;
  p.text = "GET / HTTP/1.1\r\nHost: www.example.com\r\n" + fields + "\r\n";
  size_t scan = 0;
  EXPECT_EQ(http::parse_request(p.text.data(), p.text.size(), p.text.size() + 1, &scan,
                                p.head.get(), http::kMaxHeaders),
            http::ParseStatus::kComplete);
  return p;
}

CookieConfig cookie(CookieMode mode = CookieMode::kInsert) {
  CookieConfig c;
  c.name = "SRV";
  c.mode = mode;
  return c;
}

ClientCookie read(const CookieConfig& c, const std::string& fields, int64_t now = kNow) {
  Parsed p = request_with(fields);
  ClientCookie out;
  read_client_cookie(c, *p.head, now, &out);
  return out;
}

TEST(PersistenceCookie, InsertFindsItsCookieAmongOthersInAnyCookieField) {
  const CookieConfig c = cookie();
  ClientCookie got = read(c, "Cookie: a=1; SRV=s2; b=2\r\n");
  EXPECT_TRUE(got.found);
  EXPECT_EQ(got.value, "s2");
  got = read(c, "Cookie: a=1\r\nCookie: SRV=\"s3\"\r\n");
  EXPECT_TRUE(got.found);
  EXPECT_EQ(got.value, "s3");
  EXPECT_FALSE(read(c, "Cookie: SRVX=s1; XSRV=s1\r\n").found);
  EXPECT_FALSE(read(c, "Cookie: SRV=\r\n").found);
  EXPECT_FALSE(read(c, "").found);
  // Names are case-sensitive (RFC 6265).
  EXPECT_FALSE(read(c, "Cookie: srv=s1\r\n").found);
}

TEST(PersistenceCookie, PrefixNeedsItsTildeAndRewriteTakesTheWholeValue) {
  ClientCookie got = read(cookie(CookieMode::kPrefix), "Cookie: SRV=s1~abc~d\r\n");
  EXPECT_TRUE(got.found);
  EXPECT_EQ(got.value, "s1");
  EXPECT_FALSE(read(cookie(CookieMode::kPrefix), "Cookie: SRV=abc\r\n").found);
  EXPECT_FALSE(read(cookie(CookieMode::kPrefix), "Cookie: SRV=~abc\r\n").found);
  got = read(cookie(CookieMode::kRewrite), "Cookie: SRV=s1~abc\r\n");
  EXPECT_TRUE(got.found);
  EXPECT_EQ(got.value, "s1~abc");
}

TEST(PersistenceCookie, DatesAreCheckedAgainstMaxidleAndMaxlife) {
  CookieConfig c = cookie();
  c.maxidle_ms = 600000;    // 10 min
  c.maxlife_ms = 86400000;  // 1 day
  const std::string fresh = "s1|" + base36(kNow - 60) + "|" + base36(kNow - 3600);
  ClientCookie got = read(c, "Cookie: SRV=" + fresh + "\r\n");
  ASSERT_TRUE(got.found);
  EXPECT_EQ(got.value, "s1");
  EXPECT_EQ(got.last_s, kNow - 60);
  EXPECT_EQ(got.first_s, kNow - 3600);
  // Idle too long, too old, from the future, not dates, first after last.
  for (const std::string& v : std::vector<std::string>{
           "s1|" + base36(kNow - 601) + "|" + base36(kNow - 700),
           "s1|" + base36(kNow) + "|" + base36(kNow - 86401),
           "s1|" + base36(kNow + 3600) + "|" + base36(kNow), "s1|zz!|1", "s1|" + base36(kNow),
           "s1|" + base36(kNow - 10) + "|" + base36(kNow)}) {
    EXPECT_FALSE(read(c, "Cookie: SRV=" + v + "\r\n").found) << v;
  }
  // Without dates: valid (it gets its dates on the response).
  got = read(c, "Cookie: SRV=s1\r\n");
  EXPECT_TRUE(got.found);
  EXPECT_EQ(got.last_s, -1);
}

TEST(PersistenceCookie, Base36RoundTrips) {
  for (int64_t v : {int64_t{0}, int64_t{1}, int64_t{35}, int64_t{36}, kNow}) {
    EXPECT_EQ(from_base36(base36(v)), v);
  }
  EXPECT_EQ(from_base36(""), -1);
  EXPECT_EQ(from_base36("A"), -1);
  EXPECT_EQ(from_base36("zzzzzzzzzzzzz"), -1);  // longer than any date
}

TEST(PersistenceCookie, TheServerGetsTheCookieFieldWithoutWeirsPart) {
  CookieConfig c = cookie();
  std::string out;
  EXPECT_FALSE(request_cookie_for_server(c, "a=1; SRV=s1", &out));  // not indirect: as is
  c.indirect = true;
  EXPECT_TRUE(request_cookie_for_server(c, "a=1; SRV=s1; b=2", &out));
  EXPECT_EQ(out, "a=1; b=2");
  EXPECT_TRUE(request_cookie_for_server(c, "SRV=s1", &out));
  EXPECT_EQ(out, "");  // the field goes
  EXPECT_FALSE(request_cookie_for_server(c, "a=1; b=2", &out));
  const CookieConfig p = cookie(CookieMode::kPrefix);
  EXPECT_TRUE(request_cookie_for_server(p, "a=1; SRV=s1~abc", &out));
  EXPECT_EQ(out, "a=1; SRV=abc");
  EXPECT_FALSE(request_cookie_for_server(p, "SRVX=s1~abc; a", &out));
  EXPECT_FALSE(request_cookie_for_server(cookie(CookieMode::kRewrite), "SRV=s1", &out));
}

EditableHead response(std::vector<std::pair<std::string, std::string>> headers) {
  EditableHead e;
  e.status = 200;
  e.headers = std::move(headers);
  return e;
}

TEST(PersistenceCookie, InsertSetsTheCookieWithItsAttributesOnlyWhenTheClientLacksIt) {
  CookieConfig c = cookie();
  c.httponly = c.secure = c.nocache = true;
  c.samesite = "Lax";
  c.domains = {"other.org", ".example.com"};
  c.attrs = {"Partitioned"};
  ClientCookie none;
  EditableHead e = response({{"Content-Type", "text/plain"}, {"Set-Cookie", "SRV=theirs"}});
  EXPECT_TRUE(edit_response(c, none, "s1", "www.example.com:8080", kNow, e));
  ASSERT_EQ(e.headers.size(), 3u);
  EXPECT_EQ(e.headers[1].second,
            "SRV=s1; Path=/; Domain=.example.com; HttpOnly; Secure; SameSite=Lax; Partitioned");
  EXPECT_EQ(e.headers[2], (std::pair<std::string, std::string>{"Cache-Control", "private"}));
  // A host in none of the domains gets no Domain.
  e = response({});
  EXPECT_TRUE(edit_response(c, none, "s1", "example.net", kNow, e));
  EXPECT_EQ(e.headers[0].second, "SRV=s1; Path=/; HttpOnly; Secure; SameSite=Lax; Partitioned");
  // The client named this server: nothing to add; another server: a new cookie.
  ClientCookie has;
  has.found = true;
  has.value = "s1";
  e = response({});
  EXPECT_FALSE(edit_response(c, has, "s1", "", kNow, e));
  EXPECT_TRUE(e.headers.empty());
  EXPECT_TRUE(edit_response(c, has, "s2", "", kNow, e));
  EXPECT_EQ(e.headers[0].second.substr(0, 7), "SRV=s2;");
}

TEST(PersistenceCookie, DatedCookiesKeepTheirFirstDateAndAreRefreshedAfterAQuarterOfMaxidle) {
  CookieConfig c = cookie();
  c.maxidle_ms = 400000;  // refreshed after 100 s
  ClientCookie has;
  has.found = true;
  has.value = "s1";
  has.first_s = kNow - 5000;
  has.last_s = kNow - 50;
  EditableHead e = response({});
  EXPECT_FALSE(edit_response(c, has, "s1", "", kNow, e));
  has.last_s = kNow - 100;
  EXPECT_TRUE(edit_response(c, has, "s1", "", kNow, e));
  EXPECT_EQ(e.headers[0].second, "SRV=s1|" + base36(kNow) + "|" + base36(kNow - 5000) + "; Path=/");
  // An undated cookie gets dates from now.
  has.first_s = has.last_s = -1;
  e = response({});
  EXPECT_TRUE(edit_response(c, has, "s1", "", kNow, e));
  EXPECT_EQ(e.headers[0].second, "SRV=s1|" + base36(kNow) + "|" + base36(kNow) + "; Path=/");
}

TEST(PersistenceCookie, RewriteAndPrefixChangeOnlyTheApplicationsCookieOfThatName) {
  ClientCookie none;
  EditableHead e = response({{"Set-Cookie", "SRV=abc; Path=/app; HttpOnly"},
                             {"Set-Cookie", "other=1"},
                             {"set-cookie", "SRV = x"}});
  EXPECT_TRUE(edit_response(cookie(CookieMode::kRewrite), none, "s1", "", kNow, e));
  EXPECT_EQ(e.headers[0].second, "SRV=s1; Path=/app; HttpOnly");
  EXPECT_EQ(e.headers[1].second, "other=1");
  EXPECT_EQ(e.headers[2].second, "SRV = s1");
  e = response({{"Set-Cookie", "SRV=abc; Path=/"}, {"Set-Cookie", "SRV=s1~abc"}});
  EXPECT_TRUE(edit_response(cookie(CookieMode::kPrefix), none, "s1", "", kNow, e));
  EXPECT_EQ(e.headers[0].second, "SRV=s1~abc; Path=/");
  EXPECT_EQ(e.headers[1].second, "SRV=s1~abc");  // already prefixed
  // No cookie of that name: nothing changes, and the server sets none for weir.
  e = response({{"Set-Cookie", "other=1"}});
  EXPECT_FALSE(edit_response(cookie(CookieMode::kPrefix), none, "s1", "", kNow, e));
}

TEST(PersistenceCookie, ServerValuesAreTheCookieTheNameOrAnOpaqueHash) {
  CookieConfig c = cookie();
  ServerConfig s;
  s.name = "web-1";
  EXPECT_EQ(server_cookie(c, "app", s), "web-1");
  c.dynamic = true;
  const std::string hashed = server_cookie(c, "app", s);
  EXPECT_EQ(hashed.size(), 16u);
  EXPECT_EQ(hashed.find_first_not_of("0123456789abcdef"), std::string::npos);
  EXPECT_EQ(server_cookie(c, "app", s), hashed);    // stable
  EXPECT_NE(server_cookie(c, "other", s), hashed);  // keyed by the backend's name...
  c.dynamic_key = "secret";
  EXPECT_NE(server_cookie(c, "app", s), hashed);  // ...or the dynamic_key
  s.cookie = "w1";
  EXPECT_EQ(server_cookie(c, "app", s), "w1");
}

}  // namespace
}  // namespace weir::persist
