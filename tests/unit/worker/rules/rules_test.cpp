// http_request / http_response / tcp_request rules as the sessions run them:
// rules loaded from a configuration, run over a request head parsed by the
// codec, with the fetches of the condition language answered from it.

#include "worker/rules/rules.h"

#include <gtest/gtest.h>

#include <string>

#include "common/base/address.h"
#include "worker/http/query_string.h"

namespace weir {
namespace {

SockAddr addr(std::string_view text) {
  bool has_port = false;
  std::string error;
  std::optional<SockAddr> a = parse_numeric_address(text, &has_port, &error);
  EXPECT_TRUE(a) << text << ": " << error;
  return a.value_or(SockAddr{});
}

// The rules of the frontend `web` of this configuration: `rules` are the lines
// of its http_request (or the key given) list, indented 6 spaces.
RuleSet frontend_rules(const std::string& key, const std::string& rules,
                       const std::string& mode = "http") {
  const std::string yaml = "frontends:\n  web:\n    mode: " + mode +
                           "\n    bind: [\"127.0.0.1:8080\"]\n    default_backend: app\n    " +
                           key + ":\n" + rules + "backends:\n  app:\n    mode: " + mode +
                           "\n    servers: {s1: \"127.0.0.1:9001\"}\n  api:\n    mode: " + mode +
                           "\n    servers: {s1: \"127.0.0.1:9002\"}\n";
  LoadResult r = load_config_text(yaml, "rules.yaml");
  EXPECT_TRUE(r.config) << (r.errors.empty() ? yaml : r.errors[0].to_string() + "\n" + yaml);
  return r.config ? r.config->frontends[0].rules : RuleSet{};
}

// A request as the codec parsed it, and what the rules did to it.
struct Request {
  explicit Request(std::string text) : raw(std::move(text)) {
    size_t scan = 0;
    EXPECT_EQ(http::parse_request(raw.data(), raw.size(), raw.size() + 1, &scan, &head),
              http::ParseStatus::kComplete)
        << raw;
    fetch.src = &client;
    fetch.dst = &local;
    fetch.req = &head;
    fetch.req_len = head.head_len;
    fetch.vars = &vars;
  }
  RuleVerdict run(const std::vector<HttpRule>& rules) {
    return run_http_rules(rules, fetch, head, &edit, &vars, &captures, false);
  }
  // The value of a header after the rules ("<none>" when absent).
  std::string header(std::string_view name) const {
    if (!edit) {
      const http::Header* h = head.find(name);
      return h ? std::string(h->value) : "<none>";
    }
    for (const auto& [n, v] : edit->headers)
      if (http::iequals(n, name)) return v;
    return "<none>";
  }
  std::string target() const { return edit ? edit->target : std::string(head.target); }

  std::string raw;
  http::MessageHead head;
  SockAddr client = addr("192.0.2.7:40000");
  SockAddr local = addr("127.0.0.1:8080");
  SampleSource fetch;
  std::optional<EditableHead> edit;
  Vars vars;
  std::vector<std::string> captures;
};

std::string get(const std::string& target, const std::string& headers = "") {
  return "GET " + target + " HTTP/1.1\r\nHost: Shop.Example.com:8080\r\n" + headers + "\r\n";
}

// The value a template renders over a request.
std::string render(Request& req, const std::string& value) {
  RuleSet rs = frontend_rules("http_request",
                              "      - set_header: {name: X-Out, value: \"" + value + "\"}\n");
  req.run(rs.http_request);
  return req.header("X-Out");
}

// The fetches over a request head, as a rule's value or condition sees them.
TEST(RuleFetches, RequestFetchesReadTheHead) {
  Request r(get("/api/v1/users?id=42&x=&lang=fr",
                "Cookie: a=1; session=abc; z=9\r\nAccept: text/html, application/json\r\n"));
  EXPECT_EQ(render(r, "%[method] %[path] %[query] %[url]"),
            "GET /api/v1/users id=42&x=&lang=fr /api/v1/users?id=42&x=&lang=fr");
  Request r2(get("/a?id=42", "Cookie: a=1; session=abc; z=9\r\n"));
  EXPECT_EQ(render(r2, "[%[url_param(id)]] [%[url_param(nope)]] [%[cookie(session)]]"),
            "[42] [] [abc]");
  Request r3(get("/", "Accept: text/html, application/json\r\n"));
  EXPECT_EQ(render(r3, "%[host] %[hdr_cnt(accept)] %[hdr(accept,1)] %[http_version]"),
            "shop.example.com 2 text/html 1.1");
  Request r4(get("/"));
  EXPECT_EQ(render(r4, "%[src]:%[src_port] -> %[dst]:%[dst_port] tls=%[ssl_fc]"),
            "192.0.2.7:40000 -> 127.0.0.1:8080 tls=0");
}

// Regression (issue 15): url_param was parsed twice, in the rules' fetch and in
// `balance: url_param`, and only the balance's parser ended the query at '#'.
// A target that a rule rewrote with a fragment gave "1#frag" to rules and "1"
// to the balance algorithm. One parser now serves both.
TEST(RuleFetches, UrlParamEndsAtTheFragmentAsTheBalanceAlgorithmReadsIt) {
  Request r(get("/"));
  RuleSet rs = frontend_rules("http_request",
                              "      - set_uri: \"/p?a=1&b=2#frag\"\n"
                              "      - set_header: {name: X-A, value: \"%[url_param(a)]\"}\n"
                              "      - set_header: {name: X-B, value: \"%[url_param(b)]\"}\n");
  r.run(rs.http_request);
  ASSERT_EQ(r.target(), "/p?a=1&b=2#frag");
  EXPECT_EQ(r.header("X-A"), "1");
  EXPECT_EQ(r.header("X-B"), "2");
  bool found = false;
  EXPECT_EQ(http::query_param(r.target(), "b", &found), r.header("X-B"));
}

TEST(HttpRules, TheFirstTerminalRuleWinsAndTheRestDoNotRun) {
  RuleSet rs = frontend_rules("http_request",
                              "      - deny: {status: 403}\n"
                              "        if: \"{ path_beg /admin/ }\"\n"
                              "      - set_header: {name: X-Seen, value: yes}\n"
                              "      - return: {status: 200, body: ok}\n"
                              "        if: \"{ path /health }\"\n"
                              "      - set_header: {name: X-After, value: yes}\n");
  Request admin(get("/admin/x"));
  RuleVerdict v = admin.run(rs.http_request);
  EXPECT_EQ(v.kind, RuleVerdict::Kind::kDeny);
  ASSERT_NE(v.rule, nullptr);
  EXPECT_EQ(v.rule->status, 403);
  EXPECT_EQ(admin.header("X-Seen"), "<none>");  // nothing ran after the deny
  Request health(get("/health"));
  v = health.run(rs.http_request);
  EXPECT_EQ(v.kind, RuleVerdict::Kind::kReturn);
  EXPECT_EQ(health.header("X-Seen"), "yes");  // the rule before it ran
  EXPECT_EQ(health.header("X-After"), "<none>");
  Request other(get("/other"));
  EXPECT_EQ(other.run(rs.http_request).kind, RuleVerdict::Kind::kContinue);
  EXPECT_EQ(other.header("X-After"), "yes");
}

TEST(HttpRules, AllowStopsTheListUnlessInverts) {
  RuleSet rs = frontend_rules("http_request",
                              "      - allow: true\n"
                              "        unless: \"{ src 10.0.0.0/8 }\"\n"
                              "      - deny: true\n");
  Request outside(get("/"));  // 192.0.2.7: not in 10/8, so allowed
  EXPECT_EQ(outside.run(rs.http_request).kind, RuleVerdict::Kind::kContinue);
  Request inside(get("/"));
  inside.client = addr("10.1.2.3:5000");
  EXPECT_EQ(inside.run(rs.http_request).kind, RuleVerdict::Kind::kDeny);
}

// What one rule changes, the next rule's condition and values see.
TEST(HttpRules, EditsAreSeenByTheRulesThatFollow) {
  RuleSet rs = frontend_rules("http_request",
                              "      - set_path: \"/v2%[path]\"\n"
                              "      - set_header: {name: X-Version, value: two}\n"
                              "        if: \"{ path_beg /v2/ }\"\n"
                              "      - set_var: {name: txn.user, value: \"%[hdr(x-user),lower]\"}\n"
                              "      - add_header: {name: X-Login, value: \"%[var(txn.user)]\"}\n"
                              "      - del_header: X-Secret\n"
                              "      - capture: {value: \"%[path]\", len: 6}\n");
  Request r(get("/items?page=2", "X-User: ALICE\r\nX-Secret: s3cr3t\r\n"));
  EXPECT_EQ(r.run(rs.http_request).kind, RuleVerdict::Kind::kContinue);
  EXPECT_EQ(r.target(), "/v2/items?page=2");  // the query stays
  EXPECT_EQ(r.header("X-Version"), "two");
  EXPECT_EQ(r.header("X-Login"), "alice");
  EXPECT_EQ(r.header("X-Secret"), "<none>");
  ASSERT_EQ(r.vars.size(), 1u);
  EXPECT_EQ(r.vars[0], (std::pair<std::string, std::string>("txn.user", "alice")));
  EXPECT_EQ(r.captures, std::vector<std::string>{"/v2/it"});  // cut at len
  // The edited head is what goes to the server.
  EXPECT_EQ(r.edit->request_text(),
            "GET /v2/items?page=2 HTTP/1.1\r\nHost: Shop.Example.com:8080\r\nX-User: "
            "ALICE\r\nX-Version: two\r\nX-Login: alice\r\n\r\n");
}

TEST(HttpRules, SetHeaderReplacesEveryOccurrenceReplaceValueEachElement) {
  RuleSet rs = frontend_rules(
      "http_request",
      "      - set_header: {name: X-Tag, value: one}\n"
      "      - replace_value: {name: X-List, match: \"^v([0-9])$\", replace: \"version-\\\\1\"}\n"
      "      - replace_header: {name: X-Whole, match: \"a+\", replace: b}\n");
  Request r(get("/", "X-Tag: a\r\nX-Tag: b\r\nX-List: v1, v2 ,x\r\nX-Whole: caaat, aa\r\n"));
  r.run(rs.http_request);
  int tags = 0;
  for (const auto& [n, v] : r.edit->headers) tags += http::iequals(n, "x-tag") ? 1 : 0;
  EXPECT_EQ(tags, 1);
  EXPECT_EQ(r.header("X-Tag"), "one");
  EXPECT_EQ(r.header("X-List"), "version-1, version-2, x");
  EXPECT_EQ(r.header("X-Whole"), "cbt, b");
}

// set_query refuses what would end the target early; set_method refuses what
// would change how the response is framed.
TEST(HttpRules, EditsThatWouldBreakTheMessageAreIgnored) {
  RuleSet rs = frontend_rules("http_request",
                              "      - set_query: \"a=1#b\"\n"
                              "      - set_path: \"%[hdr(x-path)]\"\n"
                              "      - set_method: HEAD\n");
  Request r(get("/p?q=1", "X-Path: no-slash\r\n"));
  r.run(rs.http_request);
  EXPECT_EQ(r.target(), "/p?q=1");
  EXPECT_EQ(r.edit ? r.edit->method : std::string(r.head.method), "GET");
  RuleSet post = frontend_rules("http_request", "      - set_method: POST\n");
  Request p(get("/"));
  p.run(post.http_request);
  EXPECT_EQ(p.edit->method, "POST");
}

TEST(HttpRules, RedirectsBuildTheirLocation) {
  RuleSet rs = frontend_rules("http_request",
                              "      - redirect: {prefix: \"https://new.example.com/\"}\n"
                              "        if: \"{ path_beg /old/ }\"\n"
                              "      - redirect: {scheme: https, drop_query: true, code: 301}\n");
  Request prefix(get("/old/a?x=1"));
  RuleVerdict v = prefix.run(rs.http_request);
  ASSERT_EQ(v.kind, RuleVerdict::Kind::kRedirect);
  EXPECT_EQ(v.location, "https://new.example.com/old/a?x=1");
  Request scheme(get("/b?x=1"));
  v = scheme.run(rs.http_request);
  ASSERT_EQ(v.kind, RuleVerdict::Kind::kRedirect);
  EXPECT_EQ(v.location, "https://Shop.Example.com:8080/b");
  EXPECT_EQ(v.rule->status, 301);
}

TEST(HttpRules, UseBackendNamesAFixedOrAComputedBackend) {
  RuleSet rs = frontend_rules("http_request",
                              "      - use_backend: api\n"
                              "        if: \"{ path_beg /api/ }\"\n"
                              "      - use_backend: \"%[hdr(x-backend)]\"\n");
  Request api(get("/api/x"));
  RuleVerdict v = api.run(rs.http_request);
  EXPECT_TRUE(v.use_backend);
  EXPECT_EQ(v.backend, "api");
  Request computed(get("/", "X-Backend: app\r\n"));
  v = computed.run(rs.http_request);
  EXPECT_TRUE(v.use_backend);
  EXPECT_EQ(v.backend, "app");
}

// Response rules see the status; a status change that would make the client
// read the message differently (to or from 204/304, or a 1xx) is ignored.
TEST(HttpRules, ResponseRulesSeeTheStatusAndGuardItsChanges) {
  RuleSet rs = frontend_rules("http_response",
                              "      - set_status: {status: 503, reason: Busy}\n"
                              "        if: \"{ status 500 }\"\n"
                              "      - set_status: 200\n"
                              "        if: \"{ status 204 }\"\n"
                              "      - set_header: {name: X-Status, value: \"%[status]\"}\n");
  auto respond = [&](const std::string& text, std::optional<EditableHead>* edit) {
    http::MessageHead res;
    size_t scan = 0;
    EXPECT_EQ(http::parse_response(text.data(), text.size(), text.size() + 1, &scan, "GET", &res),
              http::ParseStatus::kComplete);
    SampleSource f;
    f.res = &res;
    f.status = res.status;
    Vars vars;
    std::vector<std::string> captures;
    return run_http_rules(rs.http_response, f, res, edit, &vars, &captures, true).kind;
  };
  std::optional<EditableHead> failed, empty;
  EXPECT_EQ(respond("HTTP/1.1 500 Oops\r\nContent-Length: 0\r\n\r\n", &failed),
            RuleVerdict::Kind::kContinue);
  ASSERT_TRUE(failed);
  EXPECT_EQ(failed->status, 503);
  EXPECT_EQ(failed->reason, "Busy");
  EXPECT_EQ(failed->headers.back(), (std::pair<std::string, std::string>("X-Status", "503")));
  respond("HTTP/1.1 204 No Content\r\n\r\n", &empty);
  ASSERT_TRUE(empty);
  EXPECT_EQ(empty->status, 204);  // not turned into a 200 that would need a body
}

TEST(TcpRules, ConnectionAndContentStagesRunApart) {
  RuleSet rs = frontend_rules("tcp_request",
                              "      - connection: reject\n"
                              "        if: \"{ src 203.0.113.0/24 }\"\n"
                              "      - content: {use_backend: api}\n"
                              "        if: \"{ req_ssl_sni -i api.example.com }\"\n"
                              "      - content: reject\n"
                              "        unless: \"{ req_ssl_hello }\"\n",
                              "tcp");
  SockAddr bad = addr("203.0.113.9:1000");
  SockAddr good = addr("192.0.2.1:1000");
  SampleSource f;
  std::string backend;
  f.src = &bad;
  EXPECT_FALSE(run_tcp_rules(rs.tcp_request, TcpRule::Stage::kConnection, f, &backend));
  f.src = &good;
  EXPECT_TRUE(run_tcp_rules(rs.tcp_request, TcpRule::Stage::kConnection, f, &backend));
  EXPECT_EQ(backend, "");
  // Content: a ClientHello for api.example.com is routed; no ClientHello is refused.
  f.hello = true;
  f.hello_sni = "API.example.com";
  EXPECT_TRUE(run_tcp_rules(rs.tcp_request, TcpRule::Stage::kContent, f, &backend));
  EXPECT_EQ(backend, "api");
  backend.clear();
  f.hello_sni = "www.example.com";
  EXPECT_TRUE(run_tcp_rules(rs.tcp_request, TcpRule::Stage::kContent, f, &backend));
  EXPECT_EQ(backend, "");
  f.hello = false;
  f.hello_sni = {};
  EXPECT_FALSE(run_tcp_rules(rs.tcp_request, TcpRule::Stage::kContent, f, &backend));
}

}  // namespace
}  // namespace weir
