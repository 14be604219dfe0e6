// Conditions and rules (doc/configuration.md, "Conditions and rules") as an
// operator uses them: acls, http_request / http_response / tcp_request rules,
// errorfiles, map and list files, through a real weir to real origins, checking
// what the client and the origin see, the access log and `show stat`. Also run
// against the ASan+UBSan and TSan builds (label "sanitize"). Nothing asserts
// speed; the tarpit test only checks that the answer did not come early.

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "tests/support/http_client.h"
#include "tests/support/launcher.h"
#include "tests/support/origin.h"

namespace weir::test {
namespace {

using Headers = std::vector<std::pair<std::string, std::string>>;
using Vars = std::vector<std::pair<std::string, std::string>>;

std::string replace_all(std::string s, const Vars& vars) {
  for (const auto& [key, value] : vars) {
    for (size_t pos = s.find(key); pos != std::string::npos; pos = s.find(key, pos + value.size()))
      s.replace(pos, key.size(), value);
  }
  return s;
}

// Connects from `src` (any local address, "" for the kernel's choice) to dst:port,
// IPv4 or IPv6, sends `bytes` and returns everything received until the peer
// closes (or resets) or the time is up. nullopt when the connection fails.
std::optional<std::string> exchange_from(const std::string& src, const std::string& dst,
                                         uint16_t port, const std::string& bytes,
                                         int timeout_ms = 5000) {
  ignore_sigpipe();
  const bool v6 = dst.find(':') != std::string::npos;
  sockaddr_storage to{}, from{};
  socklen_t len = v6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in);
  auto fill = [&](sockaddr_storage& ss, const std::string& ip, uint16_t p) {
    if (v6) {
      auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
      a->sin6_family = AF_INET6;
      a->sin6_port = htons(p);
      return ::inet_pton(AF_INET6, ip.c_str(), &a->sin6_addr) == 1;
    }
    auto* a = reinterpret_cast<sockaddr_in*>(&ss);
    a->sin_family = AF_INET;
    a->sin_port = htons(p);
    return ::inet_pton(AF_INET, ip.c_str(), &a->sin_addr) == 1;
  };
  if (!fill(to, dst, port)) return std::nullopt;
  UniqueFd fd(::socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) return std::nullopt;
  if (!src.empty()) {
    if (!fill(from, src, 0) || ::bind(fd.get(), reinterpret_cast<sockaddr*>(&from), len) != 0)
      return std::nullopt;
  }
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&to), len) != 0) return std::nullopt;
  size_t sent = 0;
  while (sent < bytes.size()) {
    ssize_t n = ::send(fd.get(), bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) break;  // a rejected connection may already be gone
    sent += static_cast<size_t>(n);
  }
  std::string out;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                    deadline - std::chrono::steady_clock::now())
                    .count();
    if (left <= 0) break;
    pollfd p{fd.get(), POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left)) <= 0) break;
    char buf[16384];
    ssize_t n = ::recv(fd.get(), buf, sizeof buf, 0);
    if (n <= 0) break;  // EOF or reset
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

// A response read to the close: status line, headers, and the rest as body.
std::optional<HttpResponse> parse_reply(const std::string& data) {
  size_t end = data.find("\r\n\r\n");
  if (end == std::string::npos || data.rfind("HTTP/1.", 0) != 0) return std::nullopt;
  HttpResponse r;
  r.raw_head = data.substr(0, end + 4);
  size_t eol = data.find("\r\n");
  std::string line = data.substr(0, eol);
  r.version = line.substr(5, 3);
  r.status = std::atoi(line.substr(9, 3).c_str());
  r.reason = line.size() > 13 ? line.substr(13) : "";
  for (size_t pos = eol + 2; pos < end;) {
    size_t next = data.find("\r\n", pos);
    std::string h = data.substr(pos, next - pos);
    size_t colon = h.find(':');
    r.headers.emplace_back(h.substr(0, colon), std::string(trim_ows(h.substr(colon + 1))));
    pos = next + 2;
  }
  r.body = data.substr(end + 4);
  return r;
}

std::optional<HttpResponse> request_from(const std::string& src, const std::string& dst,
                                         uint16_t port, const std::string& target,
                                         const std::string& extra_headers = "") {
  auto data = exchange_from(src, dst, port,
                            "GET " + target + " HTTP/1.1\r\nHost: test\r\n" + extra_headers +
                                "Connection: close\r\n\r\n");
  if (!data) return std::nullopt;
  return parse_reply(*data);
}

std::string header_of(const RecordedRequest& r, const std::string& name) {
  return r.header(name);
}

std::vector<std::string> header_values(const RecordedRequest& r, const std::string& name) {
  std::vector<std::string> out;
  for (const auto& [k, v] : r.headers)
    if (iequals(k, name)) out.push_back(v);
  return out;
}

class RulesSmoke : public ::testing::Test {
 protected:
  void SetUp() override {
    ignore_sigpipe();
    dir_ = make_temp_dir();
    port_ = free_tcp_port();
  }
  void TearDown() override {
    weir_.reset();
    if (!dir_.empty()) remove_tree(dir_);
  }

  // Writes dir_/name and returns its path.
  std::string file(const std::string& name, const std::string& content) {
    std::string path = dir_ + "/" + name;
    write_file(path, content);
    return path;
  }

  // A global block (two threads, an access log on stdout in `log_format`, a
  // runtime API socket) followed by `body`, in which @PORT@ and @DIR@ (and the
  // keys of `vars`) are replaced.
  std::string config(const std::string& body, const Vars& vars = {},
                     const std::string& log_format = "text") {
    std::string y = "global:\n  threads: 2\n  log: [{target: stdout, format: " + log_format +
                    "}]\n  runtime_api: {address: " + admin() + ", level: admin}\n";
    Vars all = vars;
    all.emplace_back("@PORT@", std::to_string(port_));
    all.emplace_back("@DIR@", dir_);
    return y + replace_all(body, all);
  }
  bool start(const std::string& body, const Vars& vars = {},
             const std::string& log_format = "text") {
    weir_ = WeirProcess::start(config(body, vars, log_format));
    return weir_ != nullptr;
  }
  std::string admin() const { return dir_ + "/admin.sock"; }

  std::optional<HttpResponse> req(const std::string& method, const std::string& target,
                                  const Headers& headers = {}, uint16_t port = 0) {
    try {
      HttpClient c(port ? port : port_);
      return c.request(method, target, headers);
    } catch (const std::exception& e) {
      ADD_FAILURE() << e.what();
      return std::nullopt;
    }
  }
  std::optional<HttpResponse> get(const std::string& target, const Headers& headers = {}) {
    return req("GET", target, headers);
  }
  std::map<std::string, std::string> stat_row(const std::string& px, const std::string& sv) {
    for (auto& r : parse_stat_csv(unix_command(admin(), "show stat")))
      if (r["pxname"] == px && r["svname"] == sv) return r;
    return {};
  }

  std::string dir_;
  uint16_t port_ = 0;
  std::unique_ptr<WeirProcess> weir_;
};

// ---------------------------------------------------------------------------
// The first example of "Conditions and rules", as written: only the file paths
// and ports are the test's, and the frontend also binds [::1] (every IPv4
// client of this machine is in 127.0.0.0/8, so "internal"). The backends the
// map names (shop; down, whose only server refuses connections) are added.

class RulesDocExample : public RulesSmoke {
 protected:
  void start_example(const std::string& blocklist) {
    file("blocklist.lst", blocklist);
    file("hosts.map",
         "# host -> backend\n\nshop.test shop\nshop.test api\nghost.test nosuch\n"
         "down.test down\n");
    ASSERT_EQ(::mkdir((dir_ + "/errors").c_str(), 0755), 0);
    file("errors/503.html", kErrorPage);
    port6_ = free_tcp_port();
    ASSERT_TRUE(start(R"y(frontends:
  web:
    bind: ["127.0.0.1:@PORT@", "[::1]:@PORT6@"]
    default_backend: app
    acls:
      api: "path_beg /api/"
      internal: "src 10.0.0.0/8 192.168.0.0/16 127.0.0.0/8"
      blocked: "src -f @DIR@/blocklist.lst"
    tcp_request:
      - connection: reject
        if: blocked
    http_request:
      - deny: {status: 403, body: "internal only\n"}
        if: "{ path_beg /admin/ } and not internal"
      - redirect: {location: "https://www.example.com%[url]", code: 301}
        if: "{ host example.com }"
      - set_header: {name: X-Forwarded-Host, value: "%[host]"}
      - set_var: {name: txn.user, value: "%[hdr(x-user)]"}
      - use_backend: api
        if: api
      - use_backend: "%[host,map(@DIR@/hosts.map,app)]"
    http_response:
      - del_header: Server
      - set_header: {name: X-Frame-Options, value: DENY}
    errorfiles: {503: @DIR@/errors/503.html}
backends:
  app:
    servers: {a1: "@APP@"}
  api:
    http_request:
      - set_path: "/v2%[path]"
    servers: {api1: "@API@"}
  shop:
    servers: {s1: "@SHOP@"}
  down:
    servers: {d1: "127.0.0.1:@CLOSED@"}
)y",
                      {{"@PORT6@", std::to_string(port6_)},
                       {"@APP@", app_.address()},
                       {"@API@", api_.address()},
                       {"@SHOP@", shop_.address()},
                       {"@CLOSED@", std::to_string(free_tcp_port())}},
                      "'%ci %ft %b/%s %ST %ts user=%[var(txn.user)] \"%r\"'"));
  }
  static constexpr const char* kErrorPage =
      "<html><body><h1>Down for maintenance</h1></body></html>\n";
  OriginServer app_{"app"}, api_{"api"}, shop_{"shop"};
  uint16_t port6_ = 0;
};

TEST_F(RulesDocExample, DeniesAdminToOutsidersRedirectsExampleComAndTagsRequests) {
  start_example("# nobody\n192.0.2.0/24\n");
  ASSERT_TRUE(weir_);
  // Outside (::1 is in none of the internal networks): /admin/ is denied.
  auto r = request_from("", "::1", port6_, "/admin/users");
  ASSERT_TRUE(r) << "no answer over [::1]";
  EXPECT_EQ(r->status, 403);
  EXPECT_EQ(r->body, "internal only\n");
  EXPECT_EQ(r->header("Content-Type"), "text/plain");
  r = request_from("", "::1", port6_, "/public");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->header("X-Server"), "app");
  // Inside (127.0.0.1): /admin/ reaches the application.
  r = get("/admin/users");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->header("X-Server"), "app");
  ASSERT_EQ(app_.requests().size(), 2u);
  EXPECT_EQ(app_.requests()[0].target, "/public");
  EXPECT_EQ(app_.requests()[1].target, "/admin/users");

  // Host example.com (any case, any port) is redirected with the target as received.
  for (const char* host : {"example.com", "Example.COM:8080"}) {
    r = get("/shop/cart?item=7&q=a%20b", {{"Host", host}});
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 301) << host;
    EXPECT_EQ(r->header("Location"), "https://www.example.com/shop/cart?item=7&q=a%20b") << host;
  }
  r = get("/", {{"Host", "www.example.com"}});  // exact match only
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);

  // X-Forwarded-Host is the host without port, lower case; a client's own is replaced.
  app_.clear_records();
  r = get("/x",
          {{"Host", "Www.Example.com:8443"}, {"X-Forwarded-Host", "evil"}, {"X-User", "alice"}});
  ASSERT_TRUE(r);
  ASSERT_EQ(app_.requests().size(), 1u);
  EXPECT_EQ(header_values(app_.requests()[0], "X-Forwarded-Host"),
            std::vector<std::string>{"www.example.com"});
  // txn.user, printed by %[var(txn.user)] in the access log.
  EXPECT_TRUE(weir_->wait_for_stdout(R"(web app/a1 200 -- user=alice "GET /x HTTP/1.1")", 5000))
      << weir_->stdout_text();
  EXPECT_TRUE(
      weir_->wait_for_stdout(R"(^::1 web app/- 403 PR user=- "GET /admin/users HTTP/1.1"$)", 5000))
      << weir_->stdout_text();
}

TEST_F(RulesDocExample, RoutesApiAndHostsThroughTheMapAndRewritesResponses) {
  start_example("192.0.2.1\n");
  ASSERT_TRUE(weir_);
  // use_backend api comes first; the api backend's own rule prefixes /v2.
  auto r = get("/api/users?page=2", {{"Host", "shop.test"}});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->header("X-Server"), "api");
  ASSERT_EQ(api_.requests().size(), 1u);
  EXPECT_EQ(api_.requests()[0].target, "/v2/api/users?page=2");
  EXPECT_EQ(header_of(api_.requests()[0], "X-Forwarded-Host"), "shop.test");

  // The map: the host's backend, the first line of a key winning; the default
  // (app) for hosts it does not list, and for a name that is no backend.
  const std::vector<std::pair<std::string, std::string>> cases = {{"shop.test", "shop"},
                                                                  {"SHOP.test:80", "shop"},
                                                                  {"other.test", "app"},
                                                                  {"ghost.test", "app"},
                                                                  {"test", "app"}};
  for (const auto& [host, server] : cases) {
    r = get("/cart", {{"Host", host}});
    ASSERT_TRUE(r) << host;
    EXPECT_EQ(r->status, 200) << host;
    EXPECT_EQ(r->header("X-Server"), server) << host;
  }
  ASSERT_EQ(shop_.requests().size(), 2u);
  EXPECT_EQ(shop_.requests()[0].target, "/cart");  // other backends keep the path
  EXPECT_EQ(api_.requests().size(), 1u);

  // http_response: Server removed, X-Frame-Options set (replacing the server's).
  for (const char* host : {"other.test", "shop.test"}) {
    r = get("/page?header=Server:origin%2F1.0&header=X-Frame-Options:SAMEORIGIN", {{"Host", host}});
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
    EXPECT_FALSE(r->has_header("Server")) << r->raw_head;
    EXPECT_EQ(r->header_values("X-Frame-Options"), std::vector<std::string>{"DENY"}) << r->raw_head;
  }
  ASSERT_FALSE(shop_.requests().empty());
  EXPECT_EQ(shop_.requests().back().target,
            "/page?header=Server:origin%2F1.0&header=X-Frame-Options:SAMEORIGIN");
}

TEST_F(RulesDocExample, ServesTheErrorfileWhenNoServerIsUp) {
  start_example("192.0.2.1\n");
  ASSERT_TRUE(weir_);
  auto r = get("/", {{"Host", "down.test"}});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 503);
  EXPECT_EQ(r->body, kErrorPage);
  EXPECT_EQ(r->header("Content-Type"), "text/html");
  EXPECT_EQ(r->header("Cache-Control"), "no-cache");
  // A 503 the server sends itself is passed on as it is.
  r = get("/?status=503", {{"Host", "other.test"}});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 503);
  EXPECT_EQ(r->header("X-Server"), "app");
  EXPECT_NE(r->body, kErrorPage);
  EXPECT_TRUE(weir_->wait_for_stdout(R"( web down/d1 503 )", 5000)) << weir_->stdout_text();
}

TEST_F(RulesDocExample, BlocklistClosesConnectionsUnloggedAndCountsThemInDreq) {
  start_example("# abusers\n192.0.2.0/24\n\n127.0.0.1\n");
  ASSERT_TRUE(weir_);
  for (int i = 0; i < 2; ++i) {
    auto data = exchange_from("127.0.0.1", "127.0.0.1", port_,
                              "GET / HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
    ASSERT_TRUE(data) << "the connection itself is accepted, then closed";
    EXPECT_EQ(*data, "");
  }
  // Other clients are not in the list.
  auto r = request_from("127.0.0.2", "127.0.0.1", port_, "/fine");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  r = request_from("", "::1", port6_, "/fine6");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  ASSERT_EQ(app_.requests().size(), 2u);
  ASSERT_TRUE(weir_->wait_for_stdout(R"(GET /fine6 )", 5000)) << weir_->stdout_text();
  EXPECT_EQ(count_matching_lines(weir_->stdout_text(), R"(^127\.0\.0\.1:)"), 0u)
      << weir_->stdout_text();
  auto fe = stat_row("web", "FRONTEND");
  EXPECT_EQ(fe["dreq"], "2") << unix_command(admin(), "show stat");
}

// ---------------------------------------------------------------------------
// Every action.

TEST_F(RulesSmoke, AllowStopsTheListAndDenyAnswersWithBodyFileOrErrorPage) {
  OriginServer o("o");
  file("fe404.html", "<p>nothing here</p>\n");
  file("denied.txt", "denied by policy\n");
  ASSERT_TRUE(start(R"y(frontends:
  fe:
    bind: ["127.0.0.1:@PORT@"]
    default_backend: be
    errorfiles: {404: @DIR@/fe404.html}
    http_request:
      - allow: true
        if: "{ hdr(x-vip) -m found }"
      - deny: {status: 429, body: "{\"error\": \"slow down\"}\n", content_type: application/json}
        if: "{ path_beg /limited }"
      - deny: true
        if: "{ path_beg /plain }"
      - deny: {status: 404}
        if: "{ path_beg /gone }"
      - deny: {file: @DIR@/denied.txt, content_type: text/plain; charset=utf-8}
        if: "{ path_beg /file }"
backends:
  be:
    http_request:
      - set_header: {name: X-Backend-Rules, value: ran}
    servers: {s1: "@O@"}
)y",
                    {{"@O@", o.address()}}));
  auto r = get("/limited/x");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 429);
  EXPECT_EQ(r->body, "{\"error\": \"slow down\"}\n");
  EXPECT_EQ(r->header("Content-Type"), "application/json");
  EXPECT_EQ(r->header("Connection"), "close");
  r = get("/plain");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 403);
  EXPECT_EQ(r->header("Content-Type"), "text/html");
  EXPECT_NE(r->body.find("403"), std::string::npos) << r->body;
  r = get("/gone");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 404);
  EXPECT_EQ(r->body, "<p>nothing here</p>\n");
  EXPECT_EQ(r->header("Content-Type"), "text/html");
  r = get("/file");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 403);
  EXPECT_EQ(r->body, "denied by policy\n");
  EXPECT_EQ(r->header("Content-Type"), "text/plain; charset=utf-8");
  EXPECT_EQ(o.requests().size(), 0u);

  // allow ends the frontend's list (no deny after it); the backend's rules still run.
  r = get("/limited/x", {{"X-Vip", "1"}});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  r = get("/ok");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  ASSERT_EQ(o.requests().size(), 2u);
  EXPECT_EQ(o.requests()[0].target, "/limited/x");
  EXPECT_EQ(header_of(o.requests()[0], "X-Backend-Rules"), "ran");
  EXPECT_EQ(header_of(o.requests()[1], "X-Backend-Rules"), "ran");
  EXPECT_TRUE(weir_->wait_for_stdout(R"( 429 \d+ PR .*"GET /limited/x HTTP/1.1")", 5000))
      << weir_->stdout_text();
  EXPECT_TRUE(weir_->wait_for_stdout(R"( 404 \d+ PR .*"GET /gone HTTP/1.1")", 5000));
}

TEST_F(RulesSmoke, TarpitHoldsTheClientThenDenies) {
  OriginServer o("o");
  ASSERT_TRUE(start(R"y(frontends:
  fe:
    bind: ["127.0.0.1:@PORT@"]
    default_backend: be
    http_request:
      - tarpit: {delay: 600ms, status: 429, body: "go away\n", content_type: text/plain}
        if: "{ path_beg /slow }"
      - tarpit: {delay: 200ms}
        if: "{ path_beg /default }"
backends:
  be:
    servers: {s1: "@O@"}
)y",
                    {{"@O@", o.address()}}));
  auto t0 = std::chrono::steady_clock::now();
  auto r = get("/slow");
  auto waited =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0)
          .count();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 429);
  EXPECT_EQ(r->body, "go away\n");
  EXPECT_GE(waited, 300) << "the answer came before half the delay";
  r = get("/default");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 500);
  EXPECT_EQ(r->header("Content-Type"), "text/html");
  EXPECT_EQ(o.requests().size(), 0u);
  EXPECT_TRUE(weir_->wait_for_stdout(R"( 429 \d+ PT .*"GET /slow HTTP/1.1")", 5000))
      << weir_->stdout_text();
  EXPECT_TRUE(weir_->wait_for_stdout(R"( 500 \d+ PT .*"GET /default HTTP/1.1")", 5000));
}

TEST_F(RulesSmoke, ReturnAndRedirectAnswerWithoutTheServer) {
  OriginServer o("o");
  file("page.html", "<h1>maintenance</h1>\n");
  ASSERT_TRUE(start(R"y(frontends:
  fe:
    bind: ["127.0.0.1:@PORT@"]
    default_backend: be
    http_request:
      - return: {status: 200, content_type: text/plain, body: "pong\n"}
        if: "{ path /ping }"
      - return: {status: 503, content_type: text/html, file: @DIR@/page.html}
        if: "{ path_beg /maint/ }"
      - return: true
        if: "{ path /empty }"
      - redirect: {location: "https://login.example/?next=%[path]", code: 303}
        if: "{ path_beg /account/ }"
      - redirect: {prefix: "https://new.example/"}
        if: "{ path_beg /old/ }"
      - redirect: {prefix: "https://new.example", drop_query: true, code: 301}
        if: "{ path_beg /older/ }"
      - redirect: {scheme: https, code: 308}
        if: "{ path_beg /secure/ }"
      - redirect: {scheme: https, drop_query: true, code: 307}
        if: "{ path_beg /secure-nq/ }"
backends:
  be:
    servers: {s1: "@O@"}
)y",
                    {{"@O@", o.address()}}));
  auto r = get("/ping");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "pong\n");
  EXPECT_EQ(r->header("Content-Type"), "text/plain");
  r = get("/maint/x");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 503);
  EXPECT_EQ(r->body, "<h1>maintenance</h1>\n");
  EXPECT_EQ(r->header("Content-Type"), "text/html");
  r = get("/empty");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "");
  EXPECT_EQ(r->header("Content-Length"), "0");

  struct Case {
    std::string target, host;
    int code;
    std::string location;
  };
  const std::vector<Case> cases = {
      {"/account/settings?tab=2", "shop.test", 303,
       "https://login.example/?next=/account/settings"},
      {"/old/page?x=1&y=2", "shop.test", 302, "https://new.example/old/page?x=1&y=2"},
      {"/older/page?x=1", "shop.test", 301, "https://new.example/older/page"},
      {"/secure/a?b=c", "Shop.Test:8080", 308, "https://Shop.Test:8080/secure/a?b=c"},
      {"/secure-nq/a?b=c", "shop.test", 307, "https://shop.test/secure-nq/a"},
  };
  for (const Case& c : cases) {
    r = get(c.target, {{"Host", c.host}});
    ASSERT_TRUE(r) << c.target;
    EXPECT_EQ(r->status, c.code) << c.target;
    EXPECT_EQ(r->header("Location"), c.location) << c.target;
  }
  EXPECT_EQ(o.requests().size(), 0u);
  EXPECT_TRUE(weir_->wait_for_stdout(R"( 200 \d+ LR .*"GET /ping HTTP/1.1")", 5000))
      << weir_->stdout_text();
  EXPECT_TRUE(weir_->wait_for_stdout(R"( 308 \d+ LR .*"GET /secure/a\?b=c HTTP/1.1")", 5000));
}

TEST_F(RulesSmoke, HeaderActionsSetAddDeleteAndReplaceWithGroups) {
  OriginServer o("o");
  ASSERT_TRUE(start(R"y(frontends:
  fe:
    bind: ["127.0.0.1:@PORT@"]
    default_backend: be
    http_request:
      - set_header: {name: X-Env, value: prod}
      - add_header: {name: X-Tag, value: "from-%[method]"}
      - del_header: X-Secret
      - del_header: {name: x-internal-token}
      - replace_header: {name: X-Path-Hint, match: '^/old/(.*)$', replace: '/new/\1'}
      - replace_header: {name: X-Pair, match: '^(\w+), (\w+)$', replace: '\2, \1'}
      - replace_value: {name: X-List, match: '^v(\d+)$', replace: 'version-\1'}
      - set_header: {name: X-Last, value: "%[hdr(x-multi)]"}
      - set_header: {name: X-First, value: "%[hdr(x-multi,1)]"}
      - set_header: {name: X-Missing, value: "[%[hdr(x-nothing)]]"}
backends:
  be:
    servers: {s1: "@O@"}
)y",
                    {{"@O@", o.address()}}));
  auto r = get("/", {{"X-Env", "dev"},
                     {"X-Env", "staging"},
                     {"X-Tag", "client"},
                     {"X-Secret", "s3cr3t"},
                     {"X-Internal-Token", "t"},
                     {"X-Path-Hint", "/old/a/b"},
                     {"X-Pair", "left, right"},
                     {"X-List", "v1, beta, v22"},
                     {"X-List", "v3"},
                     {"X-Multi", "1"},
                     {"X-Multi", "2, 3"}});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  ASSERT_EQ(o.requests().size(), 1u);
  const std::vector<RecordedRequest> seen = o.requests();
  const RecordedRequest& q = seen[0];
  EXPECT_EQ(header_values(q, "X-Env"), std::vector<std::string>{"prod"});
  EXPECT_EQ(header_values(q, "X-Tag"), (std::vector<std::string>{"client", "from-GET"}));
  EXPECT_FALSE(q.has_header("X-Secret"));
  EXPECT_FALSE(q.has_header("X-Internal-Token"));
  EXPECT_EQ(header_of(q, "X-Path-Hint"), "/new/a/b");
  EXPECT_EQ(header_of(q, "X-Pair"), "right, left");  // the whole value
  EXPECT_EQ(header_values(q, "X-List"),
            (std::vector<std::string>{"version-1, beta, version-22", "version-3"}));  // each value
  EXPECT_EQ(header_of(q, "X-Last"), "3");
  EXPECT_EQ(header_of(q, "X-First"), "1");
  EXPECT_EQ(header_of(q, "X-Missing"), "[]");
  EXPECT_EQ(header_of(q, "Host"), "test");
}

TEST_F(RulesSmoke, PathQueryMethodAndUriRewritesReachTheServer) {
  OriginServer o("o");
  ASSERT_TRUE(start(R"y(frontends:
  fe:
    bind: ["127.0.0.1:@PORT@"]
    default_backend: be
    http_request:
      - set_path: "/api%[path]"
        if: "{ path_beg /p/ }"
      - set_query: "lang=%[hdr(x-lang)]"
        if: "{ path_beg /q/ }"
      - set_query: ""
        if: "{ path_beg /noq/ }"
      - set_method: PURGE
        if: "{ hdr(x-purge) 1 }"
      - set_uri: "/rewritten?from=%[path]"
        if: "{ path_beg /u/ }"
backends:
  be:
    http_request:
      - set_header: {name: X-Seen, value: "%[method] %[path] %[query]"}
    servers: {s1: "@O@"}
)y",
                    {{"@O@", o.address()}}));
  struct Case {
    std::string target;
    Headers headers;
    std::string method, seen_target, seen;
  };
  const std::vector<Case> cases = {
      {"/p/items?id=3", {}, "GET", "/api/p/items?id=3", "GET /api/p/items id=3"},
      {"/p/items", {}, "GET", "/api/p/items", "GET /api/p/items"},
      {"/q/x?old=1", {{"X-Lang", "de"}}, "GET", "/q/x?lang=de", "GET /q/x lang=de"},
      {"/noq/x?a=1&b=2", {}, "GET", "/noq/x", "GET /noq/x"},
      {"/cache/obj?v=1", {{"X-Purge", "1"}}, "PURGE", "/cache/obj?v=1", "PURGE /cache/obj v=1"},
      {"/u/a/b?c=d", {}, "GET", "/rewritten?from=/u/a/b", "GET /rewritten from=/u/a/b"},
  };
  for (const Case& c : cases) {
    o.clear_records();
    auto r = get(c.target, c.headers);
    ASSERT_TRUE(r) << c.target;
    EXPECT_EQ(r->status, 200) << c.target;
    ASSERT_EQ(o.requests().size(), 1u) << c.target;
    EXPECT_EQ(o.requests()[0].method, c.method) << c.target;
    EXPECT_EQ(o.requests()[0].target, c.seen_target) << c.target;
    // The backend's rules see the request as the frontend's left it.
    EXPECT_EQ(header_of(o.requests()[0], "X-Seen"), c.seen) << c.target;
  }
  // The log shows the request as received.
  EXPECT_TRUE(weir_->wait_for_stdout(R"("GET /u/a/b\?c=d HTTP/1.1")", 5000))
      << weir_->stdout_text();
}

TEST_F(RulesSmoke, SetVarFeedsLaterRulesAndCapturesArePrintedByHr) {
  OriginServer o("o");
  ASSERT_TRUE(start(R"y(frontends:
  fe:
    bind: ["127.0.0.1:@PORT@"]
    default_backend: be
    http_request:
      - set_var: {name: txn.first, value: "yes"}
        if: "{ path /first }"
      - deny: {status: 409, body: "variable leaked\n"}
        if: "{ var(txn.first) -m found } and { path /second }"
      - set_var: {name: txn.tier, value: "%[cookie(tier),lower]"}
      - deny: {status: 402, body: "pay first\n"}
        if: "{ var(txn.tier) free } and { path_beg /premium/ }"
      - set_header: {name: X-Tier, value: "%[var(txn.tier)]"}
      - capture: "%[hdr(user-agent)]"
      - capture: {value: "%[url_param(id)]", len: 3}
backends:
  be:
    http_response:
      - set_header: {name: X-Tier-Seen, value: "%[var(txn.tier)]"}
    servers: {s1: "@O@"}
)y",
                    {{"@O@", o.address()}}, R"('%ft %ST %ts %hr tier=%[var(txn.tier)] "%r"')"));
  auto r = get("/premium/x", {{"Cookie", "a=b; tier=FREE"}, {"User-Agent", "probe/1.0"}});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 402);
  EXPECT_EQ(r->body, "pay first\n");
  r = get("/premium/x?id=12345", {{"Cookie", "tier=Gold"}, {"User-Agent", "probe/2.0"}});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->header("X-Tier-Seen"), "gold");  // variables live on into the response rules
  ASSERT_EQ(o.requests().size(), 1u);
  EXPECT_EQ(header_of(o.requests()[0], "X-Tier"), "gold");
  // The denied request ended before the capture rules: no captures.
  EXPECT_TRUE(weir_->wait_for_stdout(R"(^fe 402 PR - tier=free "GET /premium/x HTTP/1.1"$)", 5000))
      << weir_->stdout_text();
  EXPECT_TRUE(weir_->wait_for_stdout(
      R"(^fe 200 -- \{probe/2\.0\|123\} tier=gold "GET /premium/x\?id=12345 HTTP/1.1"$)", 5000))
      << weir_->stdout_text();

  // Variables and captures belong to one request: the next one on the same
  // connection starts without them.
  HttpClient c(port_);
  r = c.request("GET", "/first?id=999", {{"User-Agent", "keep/1"}, {"Cookie", "tier=gold"}});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  r = c.request("GET", "/second", {{"User-Agent", "keep/2"}});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(r->header("X-Tier-Seen"), "");
  EXPECT_TRUE(
      weir_->wait_for_stdout(R"(^fe 200 -- \{keep/2\|\} tier=- "GET /second HTTP/1.1"$)", 5000))
      << weir_->stdout_text();
}

TEST_F(RulesSmoke, UseBackendStaticDynamicAndFromAMap) {
  OriginServer a("a"), b("b"), c("c");
  file("shards.map", "# shard -> backend\ns1 b\ns2 c\ns1 c\ns3 t\n");
  ASSERT_TRUE(start(R"y(frontends:
  fe:
    bind: ["127.0.0.1:@PORT@"]
    default_backend: a
    http_request:
      - use_backend: b
        if: "{ path_beg /static-b/ }"
      - use_backend: "%[hdr(x-backend),lower]"
        if: "{ hdr(x-backend) -m found }"
      - use_backend: "%[cookie(shard),map(@DIR@/shards.map)]"
      - set_header: {name: X-Not-Reached, value: "1"}
backends:
  a:
    servers: {a1: "@A@"}
  b:
    http_request:
      - set_header: {name: X-Chosen, value: b}
    servers: {b1: "@B@"}
  c:
    http_request:
      - set_header: {name: X-Chosen, value: c}
    servers: {c1: "@C@"}
  t:
    mode: tcp
    servers: {t1: "@A@"}
)y",
                    {{"@A@", a.address()}, {"@B@", b.address()}, {"@C@", c.address()}}));
  struct Case {
    std::string target;
    Headers headers;
    std::string server;
  };
  const std::vector<Case> cases = {
      {"/static-b/x", {}, "b"},
      {"/", {{"X-Backend", "C"}}, "c"},
      {"/", {{"X-Backend", "nope"}}, "a"},   // no such backend: the default
      {"/", {{"X-Backend", "t"}}, "a"},      // a tcp backend: the default
      {"/", {{"Cookie", "shard=s1"}}, "b"},  // the first line of a key wins
      {"/", {{"Cookie", "x=1; shard=s2"}}, "c"},
      {"/", {{"Cookie", "shard=s9"}}, "a"},  // not in the map, no default: the default backend
      {"/", {}, "a"},
  };
  for (const Case& cs : cases) {
    auto r = get(cs.target, cs.headers);
    ASSERT_TRUE(r) << cs.target;
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(r->header("X-Server"), cs.server)
        << cs.target << (cs.headers.empty() ? "" : " " + cs.headers[0].second);
  }
  // Each backend's own rules ran for its requests only; use_backend ended the list.
  for (const auto& q : b.requests()) EXPECT_EQ(header_of(q, "X-Chosen"), "b");
  for (const auto& q : c.requests()) EXPECT_EQ(header_of(q, "X-Chosen"), "c");
  for (const auto& q : a.requests()) EXPECT_FALSE(q.has_header("X-Chosen"));
  for (auto* o : {&a, &b, &c})
    for (const auto& q : o->requests()) EXPECT_FALSE(q.has_header("X-Not-Reached"));
  EXPECT_EQ(b.requests().size(), 2u);
  EXPECT_EQ(c.requests().size(), 2u);
  EXPECT_EQ(a.requests().size(), 4u);
}

TEST_F(RulesSmoke, ResponseRulesSetStatusDenyAndSeeTheRequest) {
  OriginServer o("o");
  ASSERT_TRUE(start(R"y(frontends:
  fe:
    bind: ["127.0.0.1:@PORT@"]
    default_backend: be
    http_request:
      - set_path: "/static%[path]"
        if: "{ hdr(x-static) 1 }"
    http_response:
      - allow: true
        if: "{ res_hdr(x-skip) -m found }"
      - set_status: {status: 503, reason: Backend Sick}
        if: "{ status 500 }"
      - deny: {status: 502, body: "leak blocked\n"}
        if: "{ res_hdr(x-debug) -m found }"
      - deny: true
        if: "{ res_hdr(x-secret,-1) -i TOP }"
      - return: {status: 200, body: "replaced\n"}
        if: "{ status 404 }"
      - set_header: {name: Cache-Control, value: "max-age=60"}
        if: "{ path_beg /static/ } and { status 200:299 }"
      - add_header: {name: X-Order, value: fe}
backends:
  be:
    http_response:
      - set_header: {name: X-Order, value: be}
      - set_status: 201
        if: "{ res_hdr(x-created) yes }"
      - replace_value: {name: X-Versions, match: '^(\d+)\.(\d+)$', replace: 'v\1-\2'}
    servers: {s1: "@O@"}
)y",
                    {{"@O@", o.address()}}));
  auto r = get("/?status=500");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 503);
  EXPECT_EQ(r->reason, "Backend Sick");
  EXPECT_EQ(r->body, "o\n");  // the server's body
  EXPECT_EQ(r->header_values("X-Order"), (std::vector<std::string>{"be", "fe"}));

  r = get("/?header=X-Debug:1");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 502);
  EXPECT_EQ(r->body, "leak blocked\n");
  EXPECT_FALSE(r->has_header("X-Debug"));
  r = get("/?header=X-Secret:low&header=X-Secret:top");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 502);
  EXPECT_EQ(r->header("Content-Type"), "text/html");
  r = get("/?header=X-Secret:top&header=X-Secret:low");  // not the last one
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);

  r = get("/?status=404");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "replaced\n");

  r = get("/?header=X-Created:yes");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 201);
  EXPECT_EQ(r->header("Cache-Control"), "");

  // The response rules see the request as the request rules left it.
  r = get("/img/a.png", {{"X-Static", "1"}});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->header("Cache-Control"), "max-age=60");
  r = get("/static/a.png?status=500");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 503);
  EXPECT_EQ(r->header("Cache-Control"), "");  // status 500 (then 503) is not 200:299

  // allow ends the frontend's list; the backend's rules ran before it.
  r = get("/?header=X-Skip:1&header=X-Versions:1.2,%203.4");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->header_values("X-Order"), std::vector<std::string>{"be"});
  EXPECT_EQ(r->header("X-Versions"), "v1-2, v3-4");

  EXPECT_TRUE(weir_->wait_for_stdout(R"( 502 \d+ PH .*"GET /\?header=X-Debug:1 HTTP/1.1")", 5000))
      << weir_->stdout_text();
  auto be = stat_row("be", "BACKEND");
  EXPECT_EQ(be["dresp"], "2") << unix_command(admin(), "show stat");
}

// set_status and set_method cannot change how a message is framed: the client
// frames a response by its status and by the method it sent. Such changes are
// ignored, and the client connection stays in step (pipelined requests).
TEST_F(RulesSmoke, StatusAndMethodChangesNeverDesyncTheClient) {
  OriginServer o("o");
  ASSERT_TRUE(start(R"y(frontends:
  fe:
    bind: ["127.0.0.1:@PORT@"]
    default_backend: be
    http_request:
      - set_method: HEAD
        if: "{ path_beg /tohead }"
      - set_method: GET
        if: "{ path_beg /toget }"
      - set_method: CONNECT
        if: "{ path_beg /toconnect }"
      - set_method: OPTIONS
        if: "{ path_beg /tooptions }"
    http_response:
      - set_status: 204
        if: "{ path_beg /s204 }"
      - set_status: 304
        if: "{ path_beg /s304 }"
      - set_status: 200
        if: "{ path_beg /from } and { status 204 304 }"
      - set_status: 100
        if: "{ path_beg /s100 }"
      - set_status: 304
        if: "{ path_beg /n204 }"
backends:
  be:
    servers: {s1: "@O@"}
)y",
                    {{"@O@", o.address()}}));
  HttpClient c(port_);
  auto r = c.request("GET", "/s204");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "o\n");
  r = c.request("GET", "/s304");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  r = c.request("GET", "/s100");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  for (const char* t : {"/from?status=204", "/from?status=304"}) {
    r = c.request("GET", t);
    ASSERT_TRUE(r) << t;
    EXPECT_EQ(r->status, std::atoi(t + 13)) << t;
    EXPECT_EQ(r->body, "") << t;
  }
  r = c.request("GET", "/n204?status=204");  // both without a body: changed
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 304);
  // GET stays GET (the client expects a body), HEAD stays HEAD.
  r = c.request("GET", "/tohead");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->body, "o\n");
  ASSERT_TRUE(c.send_raw("HEAD /toget HTTP/1.1\r\nHost: test\r\n\r\n"));
  r = c.read_response(10000, /*head_request=*/true);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  r = c.request("GET", "/toconnect");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  r = c.request("GET", "/tooptions");  // an ordinary change still applies
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  r = c.request("GET", "/last");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "o\n");
  auto seen = o.requests();
  ASSERT_EQ(seen.size(), 11u);
  EXPECT_EQ(seen[6].method, "GET");
  EXPECT_EQ(seen[7].method, "HEAD");
  EXPECT_EQ(seen[8].method, "GET");
  EXPECT_EQ(seen[9].method, "OPTIONS");
  for (const auto& q : seen) EXPECT_EQ(q.connection_index, seen[0].connection_index);
}

// ---------------------------------------------------------------------------
// Conditions.

TEST_F(RulesSmoke, ConditionsCombineWithAndOrNotAndParentheses) {
  OriginServer o("o");
  ASSERT_TRUE(start(R"y(frontends:
  fe:
    bind: ["127.0.0.1:@PORT@"]
    default_backend: be
    acls:
      a: "hdr(x-a) 1"
      b: "hdr(x-b) 1"
      c: "hdr(x-c) 1"
    http_request:
      - return: {body: "paren\n"}
        if: "{ hdr(x-t) paren } and ( a or b ) and not c"
      - return: {body: "prec\n"}
        if: "{ hdr(x-t) prec } and ( a or b and c )"
      - return: {
  body:
    "sym\n"}
        if: "{ hdr(x-t) sym } && ( !a && b || c )"
      - return: {
  body:
    "notand\n"}
        if: "{ hdr(x-t) notand } and not a and b"
      - return: {
  body:
    "nested\n"}
        if: "{hdr(x-t) nested} and not (a and (b or not c))"
      - return: {body: "unless\n"}
        unless: "not { hdr(x-t) unless } or a or b"
backends:
  be:
    servers: {s1: "@O@"}
)y",
                    {{"@O@", o.address()}}));
  const std::vector<std::pair<std::string, std::function<bool(bool, bool, bool)>>> rules = {
      {"paren", [](bool a, bool b, bool c) { return (a || b) && !c; }},
      {"prec", [](bool a, bool b, bool c) { return a || (b && c); }},
      {"sym", [](bool a, bool b, bool c) { return (!a && b) || c; }},
      {"notand", [](bool a, bool b, bool) { return !a && b; }},
      {"nested", [](bool a, bool b, bool c) { return !(a && (b || !c)); }},
      {"unless", [](bool a, bool b, bool) { return !a && !b; }},
  };
  int forwarded = 0;
  for (const auto& [name, expect] : rules) {
    for (int bits = 0; bits < 8; ++bits) {
      bool a = bits & 1, b = bits & 2, c = bits & 4;
      auto r = get(
          "/",
          {{"X-T", name}, {"X-A", a ? "1" : "0"}, {"X-B", b ? "1" : "0"}, {"X-C", c ? "1" : "0"}});
      ASSERT_TRUE(r);
      bool matched = expect(a, b, c);
      forwarded += matched ? 0 : 1;
      EXPECT_EQ(r->body, matched ? name + "\n" : "o\n")
          << name << " a=" << a << " b=" << b << " c=" << c;
    }
  }
  EXPECT_EQ(o.requests().size(), static_cast<size_t>(forwarded));
}

TEST_F(RulesSmoke, ConditionFetchesMatchersAndFlags) {
  OriginServer o("o");
  file("names.lst", "# staff\nalice\n\n  \nbob\n");
  // Each rule answers its name when X-T names it and its test holds; otherwise
  // the request reaches the origin (body "o\n").
  ASSERT_TRUE(start(R"y(frontends:
  fe:
    bind: ["127.0.0.1:@PORT@"]
    default_backend: be
    http_request:
      - {return: {body: "icase\n"}, if: "{ hdr(x-t) icase } and { hdr(x-v) -i HeLLo }"}
      - {return: {body: "case\n"}, if: "{ hdr(x-t) case } and { hdr(x-v) HeLLo }"}
      - {return: {body: "list\n"}, if: "{ hdr(x-t) list } and { hdr(x-v) -f @DIR@/names.lst }"}
      - {return: {body: "ilist\n"}, if: "{ hdr(x-t) ilist } and { hdr(x-v) -i -f @DIR@/names.lst }"}
      - {return: {body: "hdrn\n"}, if: "{ hdr(x-t) hdrn } and { hdr(x-v,2) two }"}
      - {return: {body: "hdrlast\n"}, if: "{ hdr(x-t) hdrlast } and { hdr(x-v,-1) z }"}
      - {return: {body: "hdrany\n"}, if: "{ hdr(x-t) hdrany } and { hdr(x-v) z }"}
      - {return: {body: "hdrcnt\n"}, if: "{ hdr(x-t) hdrcnt } and { hdr_cnt(x-v) ge 3 }"}
      - {return: {body: "nohdr\n"}, if: "{ hdr(x-t) nohdr } and { hdr_cnt(x-v) 0 }"}
      - {return: {body: "cookie\n"}, if: "{ hdr(x-t) cookie } and { cookie(session) -m beg adm }"}
      - {return: {body: "param\n"}, if: "{ hdr(x-t) param } and { url_param(debug) 1 }"}
      - {return: {body: "method\n"}, if: "{ hdr(x-t) method } and { method PUT DELETE }"}
      - {return: {body: "query\n"}, if: "{ hdr(x-t) query } and { query -m sub token= }"}
      - {return: {body: "hasq\n"}, if: "{ hdr(x-t) hasq } and { query -m found }"}
      - {return: {body: "big\n"}, if: "{ hdr(x-t) big } and { req_len gt 500 }"}
      - {return: {body: "small\n"}, if: "{ hdr(x-t) small } and { req_len 1:100 }"}
      - {return: {body: "src\n"}, if: "{ hdr(x-t) src } and { src 10.0.0.0/8 127.0.0.0/30 }"}
      - {return: {body: "reg\n"}, if: "{ hdr(x-t) reg } and { path_reg ^/item/[0-9]+$ }"}
      - {return: {body: "dir\n"}, if: "{ hdr(x-t) dir } and { path_dir api }"}
      - {return: {body: "end\n"}, if: "{ hdr(x-t) end } and { path_end .css .js }"}
      - {return: {body: "dom\n"}, if: "{ hdr(x-t) dom } and { host_dom example.com }"}
      - {return: {body: "upper\n"}, if: "{ hdr(x-t) upper } and { hdr(x-v),upper ABC }"}
      - {return: {body: "quoted\n"}, if: "{ hdr(x-t) quoted } and { hdr(x-v) 'a b' }"}
backends:
  be:
    servers: {s1: "@O@"}
)y",
                    {{"@O@", o.address()}}));
  struct Case {
    std::string name;
    bool match;
    std::string method = "GET", target = "/";
    Headers headers = {};
  };
  const std::string pad(600, 'p');
  const std::vector<Case> cases = {
      {"icase", true, "GET", "/", {{"X-V", "hello"}}},
      {"icase", false, "GET", "/", {{"X-V", "hello2"}}},
      {"case", true, "GET", "/", {{"X-V", "HeLLo"}}},
      {"case", false, "GET", "/", {{"X-V", "hello"}}},
      {"list", true, "GET", "/", {{"X-V", "bob"}}},
      {"list", true, "GET", "/", {{"X-V", "alice"}}},
      {"list", false, "GET", "/", {{"X-V", "carol"}}},
      {"list", false, "GET", "/", {{"X-V", "Bob"}}},
      {"list", false, "GET", "/", {{"X-V", "# staff"}}},
      {"ilist", true, "GET", "/", {{"X-V", "BOB"}}},
      {"hdrn", true, "GET", "/", {{"X-V", "one, two"}}},
      {"hdrn", true, "GET", "/", {{"X-V", "one"}, {"X-V", "two"}}},
      {"hdrn", false, "GET", "/", {{"X-V", "two, one"}}},
      {"hdrlast", true, "GET", "/", {{"X-V", "a"}, {"X-V", "b, z"}}},
      {"hdrlast", false, "GET", "/", {{"X-V", "z, a"}}},
      {"hdrany", true, "GET", "/", {{"X-V", "a, z"}, {"X-V", "b"}}},
      {"hdrcnt", true, "GET", "/", {{"X-V", "a, b"}, {"X-V", "c"}}},
      {"hdrcnt", false, "GET", "/", {{"X-V", "a, b"}}},
      {"nohdr", true, "GET", "/", {}},
      {"nohdr", false, "GET", "/", {{"X-V", "x"}}},
      {"cookie", true, "GET", "/", {{"Cookie", "theme=dark; session=admin42"}}},
      {"cookie", false, "GET", "/", {{"Cookie", "xsession=admin; session=user"}}},
      {"param", true, "GET", "/c?a=2&debug=1", {}},
      {"param", false, "GET", "/c?debug=10&x=1", {}},
      {"param", false, "GET", "/c?xdebug=1", {}},
      {"method", true, "DELETE", "/", {}},
      {"method", true, "PUT", "/", {}},
      {"method", false, "GET", "/", {}},
      {"query", true, "GET", "/q?a=1&token=x", {}},
      {"query", false, "GET", "/q?a=1", {}},
      {"hasq", true, "GET", "/q?x", {}},
      {"hasq", false, "GET", "/q", {}},
      {"big", true, "GET", "/", {{"X-Pad", pad}}},
      {"big", false, "GET", "/", {}},
      {"small", true, "GET", "/", {}},
      {"small", false, "GET", "/", {{"X-Pad", pad}}},
      {"src", true, "GET", "/", {}},  // from 127.0.0.1; 127.0.0.9 below
      {"reg", true, "GET", "/item/42?x=y", {}},
      {"reg", false, "GET", "/item/42a", {}},
      {"dir", true, "GET", "/v1/api/x", {}},
      {"dir", false, "GET", "/v1/apix/y", {}},
      {"end", true, "GET", "/s/app.js?v=2", {}},
      {"end", false, "GET", "/s/app.json", {}},
      {"dom", true, "GET", "/", {{"Host", "WWW.Example.com:81"}}},
      {"dom", false, "GET", "/", {{"Host", "badexample.com"}}},
      {"upper", true, "GET", "/", {{"X-V", "abc"}}},
      {"upper", false, "GET", "/", {{"X-V", "abd"}}},
      {"quoted", true, "GET", "/", {{"X-V", "a b"}}},
      {"quoted", false, "GET", "/", {{"X-V", "a"}}},
  };
  for (const Case& c : cases) {
    Headers h = c.headers;
    h.insert(h.begin(), std::make_pair(std::string("X-T"), c.name));
    auto r = req(c.method, c.target, h);
    ASSERT_TRUE(r) << c.name;
    EXPECT_EQ(r->status, 200) << c.name;
    EXPECT_EQ(r->body, c.match ? c.name + "\n" : "o\n")
        << c.name << " " << c.method << " " << c.target
        << (c.headers.empty() ? "" : " " + c.headers[0].first + ": " + c.headers[0].second);
  }
  auto r = request_from("127.0.0.9", "127.0.0.1", port_, "/", "X-T: src\r\n");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->body, "o\n") << "127.0.0.9 is not in 127.0.0.0/30";
}

// ---------------------------------------------------------------------------
// tcp_request in tcp mode.

TEST_F(RulesSmoke, TcpModeConnectionRejectAndContentRulesChooseTheBackend) {
  OriginServer a("a"), b("b");
  uint16_t port2 = free_tcp_port();
  ASSERT_TRUE(
      start(R"y(defaults:
  mode: tcp
frontends:
  db:
    bind: ["127.0.0.1:@PORT@", "127.0.0.1:@PORT2@"]
    default_backend: primary
    tcp_request:
      - connection: reject
        if: "{ src 127.0.0.2 }"
      - connection: accept
        if: "{ src 127.0.0.4 }"
      - connection: reject
        unless: "{ src 127.0.0.0/30 }"
      - content: reject
        if: "{ src 127.0.0.3 }"
      - content: {use_backend: replica}
        if: "{ dst_port @PORT2@ }"
backends:
  primary:
    servers: {a1: "@A@"}
  replica:
    servers: {b1: "@B@"}
)y",
            {{"@PORT2@", std::to_string(port2)}, {"@A@", a.address()}, {"@B@", b.address()}}));
  auto via = [&](const std::string& src, uint16_t port) -> std::string {
    auto r = request_from(src, "127.0.0.1", port, "/");
    return r ? r->header("X-Server") : "closed";
  };
  EXPECT_EQ(via("127.0.0.1", port_), "a");
  EXPECT_EQ(via("127.0.0.1", port2), "b");
  EXPECT_EQ(via("127.0.0.2", port_), "closed");
  EXPECT_EQ(via("127.0.0.2", port2), "closed");
  EXPECT_EQ(via("127.0.0.3", port2), "closed");
  // accept ends the connection rules (the catch-all reject after it is not
  // reached); the content rules still run.
  EXPECT_EQ(via("127.0.0.4", port2), "b");
  EXPECT_EQ(via("127.0.0.5", port_), "closed");
  EXPECT_EQ(a.requests().size(), 1u);
  EXPECT_EQ(b.requests().size(), 2u);
  // A content reject is logged with PR; a connection reject is not logged.
  EXPECT_TRUE(weir_->wait_for_stdout(R"(^127\.0\.0\.3:\d+ .* db .* PR )", 5000))
      << weir_->stdout_text();
  EXPECT_EQ(count_matching_lines(weir_->stdout_text(), R"(^127\.0\.0\.2:)"), 0u)
      << weir_->stdout_text();
  EXPECT_EQ(stat_row("db", "FRONTEND")["dreq"], "4") << unix_command(admin(), "show stat");
}

// ---------------------------------------------------------------------------
// Mistakes, as `weir -c` reports them.

TEST_F(RulesSmoke, CheckReportsRuleMistakesAtTheirPosition) {
  std::string path = file("bad.yaml", R"y(frontends:
  web:
    bind: ["127.0.0.1:1"]
    default_backend: app
    acls:
      api: "path_beg /api/"
      typo: "pth_beg /api/"
      badre: "path_reg ^/(unclosed"
    http_request:
      - deny: true
        if: "apj or { path /x }"
      - set_header: {name: Content-Length, value: "0"}
      - deny: true
        if: "{ path_beg /a } and { status 500 }"
      - use_backend: nowhere
      - del_header: Transfer-Encoding
      - deny: true
        if: "api and { res_hdr(x-a) -m found }"
      - replace_header: {name: X-A, match: "a(b", replace: x}
    http_response:
      - add_header: {name: content-length, value: "1"}
backends:
  app:
    servers: {a1: "127.0.0.1:9001"}
)y");
  CommandResult r = run_weir({"-c", "-f", path});
  EXPECT_EQ(r.exit_code, 1);
  const std::vector<std::pair<std::string, std::string>> expected = {
      {":7:14: ",
       "acls: typo: unknown fetch 'pth_beg' (known: always_false, always_true, cookie, "},
      {":8:24: ", "acls: badre: invalid regular expression '^/(unclosed'"},
      {":11:14: ", "http_request rule 1: if: unknown condition 'apj'"},
      {":12:28: ", "http_request rule 2: set_header: name: Content-Length frames the message"},
      {":14:13: ", "http_request rule 3: if: status and res_hdr exist only in http_response"},
      {":15:9: ", "use_backend 'nowhere' does not exist"},
      {":16:21: ", "http_request rule 5: del_header: Transfer-Encoding frames the message"},
      {":18:13: ", "http_request rule 6: if: status and res_hdr exist only in http_response"},
      {":19:44: ", "http_request rule 7: replace_header: match: invalid regular expression 'a(b'"},
      {":21:28: ", "http_response rule 1: add_header: name: content-length frames the message"},
  };
  for (const auto& [pos, message] : expected) {
    size_t at = r.err.find(path + pos);
    ASSERT_NE(at, std::string::npos) << pos << " " << message << "\n" << r.err;
    std::string line = r.err.substr(at, r.err.find('\n', at) - at);
    EXPECT_NE(line.find("frontend 'web': "), std::string::npos) << line;
    EXPECT_NE(line.find(message), std::string::npos) << line;
  }
  // The acls that failed are still defined: naming them is no second mistake.
  EXPECT_NE(r.err.find("unknown condition 'apj' (defined here: api, badre, typo)"),
            std::string::npos)
      << r.err;
  EXPECT_EQ(count_matching_lines(r.err, "^" + path + R"(:\d+:\d+: )"), expected.size()) << r.err;
  // The same mistakes stop weir from starting.
  EXPECT_EQ(run_weir({"-f", path}).exit_code, 1);
}

TEST_F(RulesSmoke, CheckReportsTcpRuleMistakes) {
  std::string path = file("bad.yaml", R"y(frontends:
  web:
    bind: ["127.0.0.1:1"]
    default_backend: app
    tcp_request:
      - connection: reject
        if: "{ path_beg /x }"
      - content: reject
  raw:
    mode: tcp
    bind: ["127.0.0.1:2"]
    default_backend: pg
    http_request:
      - deny: true
    tcp_request:
      - content: {use_backend: pg_replica}
      - connection: drop
backends:
  app:
    servers: {a1: "127.0.0.1:9001"}
  pg:
    mode: tcp
    servers: {p1: "127.0.0.1:9002"}
)y");
  CommandResult r = run_weir({"-c", "-f", path});
  EXPECT_EQ(r.exit_code, 1);
  const std::vector<std::pair<std::string, std::string>> expected = {
      {":7:13: ", "frontend 'web': tcp_request rule 1: tcp_request rules see the connection only"},
      {":8:18: ", "frontend 'web': tcp_request rule 2: content rules are for tcp mode"},
      {":14:7: ", "frontend 'raw': http_request needs http mode"},
      {":16:32: ", "frontend 'raw': use_backend 'pg_replica' does not exist"},
      {":17:21: ", "frontend 'raw': tcp_request rule 2: unknown action 'drop'"},
  };
  for (const auto& [pos, message] : expected) {
    size_t at = r.err.find(path + pos);
    ASSERT_NE(at, std::string::npos) << pos << " " << message << "\n" << r.err;
    std::string line = r.err.substr(at, r.err.find('\n', at) - at);
    EXPECT_NE(line.find(message), std::string::npos) << line;
  }
}

// A list or map file that cannot be read is one mistake, reported once where the
// file is named: the rules that use the acl do not add "unknown condition".
TEST_F(RulesSmoke, CheckReportsAMissingListOrMapFileOnce) {
  std::string path = file("missing.yaml", config(R"y(frontends:
  web:
    bind: ["127.0.0.1:@PORT@"]
    acls:
      blocked: src -f @DIR@/blocked.lst
      tenant: hdr(host),map(@DIR@/tenants.map) -m found
      api: path_beg /api/
    http_request:
      - deny: true
        if: blocked
      - deny: true
        unless: "api or not tenant"
    default_backend: app
backends:
  app:
    acls:
      blocked: src -f @DIR@/blocked.lst
    http_request:
      - deny: true
        if: "!blocked"
    servers: {a1: "127.0.0.1:9001"}
)y"));
  CommandResult r = run_weir({"-c", "-f", path});
  EXPECT_EQ(r.exit_code, 1);
  const std::vector<std::string> expected = {
      ":9:23: frontend 'web': acls: blocked: cannot read value file " + dir_ + "/blocked.lst",
      ":10:25: frontend 'web': acls: tenant: cannot read map file " + dir_ + "/tenants.map",
      ":21:23: backend 'app': acls: blocked: cannot read value file " + dir_ + "/blocked.lst",
  };
  for (const std::string& e : expected)
    EXPECT_NE(r.err.find(path + e), std::string::npos) << e << "\n" << r.err;
  EXPECT_EQ(r.err.find("unknown condition"), std::string::npos) << r.err;
  EXPECT_EQ(count_matching_lines(r.err, "^" + path + R"(:\d+:\d+: )"), expected.size()) << r.err;

  // With the files in place the same configuration is valid.
  file("blocked.lst", "# nobody yet\n192.0.2.1\n");
  file("tenants.map", "a.example 1\n");
  r = run_weir({"-c", "-f", path});
  EXPECT_EQ(r.exit_code, 0) << r.err;
}

// ---------------------------------------------------------------------------
// Counters.

TEST_F(RulesSmoke, ShowStatCountsDeniedRequestsOnTheFrontend) {
  OriginServer o("o");
  ASSERT_TRUE(start(R"y(frontends:
  fe:
    bind: ["127.0.0.1:@PORT@"]
    default_backend: be
    tcp_request:
      - connection: reject
        if: "{ src 127.0.0.2 }"
    http_request:
      - deny: true
        if: "{ path_beg /deny }"
      - tarpit: {delay: 50ms}
        if: "{ path_beg /tarpit }"
      - return: {status: 200}
        if: "{ path_beg /return }"
backends:
  be:
    servers: {s1: "@O@"}
)y",
                    {{"@O@", o.address()}}));
  for (const char* target : {"/deny", "/deny/2", "/tarpit", "/return", "/ok", "/ok"}) {
    auto r = get(target);
    ASSERT_TRUE(r) << target;
  }
  auto data = exchange_from("127.0.0.2", "127.0.0.1", port_, "GET / HTTP/1.1\r\nHost: t\r\n\r\n");
  ASSERT_TRUE(data);
  EXPECT_EQ(*data, "");
  // deny, deny, tarpit and the rejected connection; not return, not forwarded requests.
  auto fe = stat_row("fe", "FRONTEND");
  EXPECT_EQ(fe["dreq"], "4") << unix_command(admin(), "show stat");
  EXPECT_EQ(stat_row("be", "BACKEND")["dresp"], "0");
  EXPECT_EQ(o.requests().size(), 2u);
}

}  // namespace
}  // namespace weir::test
