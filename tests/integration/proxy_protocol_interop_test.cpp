// The PROXY protocol against the real implementations an operator puts next to
// weir (issue 18): HAProxy 2.6 in front of weir (send-proxy, send-proxy-v2),
// weir in front of HAProxy (accept-proxy) and nginx (listen ... proxy_protocol),
// health checks that carry the header, curl --haproxy-protocol as a v1 client,
// a TLS bind whose header comes before the ClientHello, v2 TLVs both ways, and
// server connections that carried a client's header never serving another
// client. Each case asserts what the operator reads: X-Forwarded-For at the
// application, the access logs of weir, HAProxy and nginx, the answer of an
// `src` rule, the server state.
//
// HAProxy and nginx are started by the tests themselves, in the foreground, on
// free ports, with every file in a temporary directory. They are part of the
// test dependencies (scripts/deps.sh test): when one is missing the tests fail.

#include <gtest/gtest.h>
#include <unistd.h>

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <regex>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "tests/support/http_client.h"
#include "tests/support/launcher.h"
#include "tests/support/origin.h"
#include "tests/support/tls_certs.h"
#include "tests/support/util.h"

namespace weir::test {
namespace {

constexpr const char* kHaproxy = "/usr/sbin/haproxy";
constexpr const char* kNginx = "/usr/sbin/nginx";

using Vars = std::vector<std::pair<std::string, std::string>>;

std::string replace_all(std::string text, const Vars& vars) {
  for (const auto& [from, to] : vars) {
    for (size_t pos = text.find(from); pos != std::string::npos;
         pos = text.find(from, pos + to.size())) {
      text.replace(pos, from.size(), to);
    }
  }
  return text;
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string::npos) nl = text.size();
    out.push_back(text.substr(pos, nl - pos));
    pos = nl + 1;
  }
  return out;
}

// Waits until a line of the file (or of what `read` returns) matches the
// ECMAScript regex; true when one did.
bool wait_line(const std::function<std::string()>& read, const std::string& regex,
               int timeout_ms = 10000) {
  const std::regex re(regex);
  return wait_until(
      [&] {
        for (const auto& line : lines_of(read()))
          if (std::regex_search(line, re)) return true;
        return false;
      },
      timeout_ms, 50);
}

std::string file_or_empty(const std::string& path) {
  try {
    return read_file(path);
  } catch (const std::exception&) {
    return "";
  }
}

// One request from `source` (an address of this machine) on a fresh connection.
std::optional<HttpResponse> get_from(const std::string& source, uint16_t port,
                                     const std::string& target) {
  try {
    HttpClient c(port, "127.0.0.1", source);
    return c.request("GET", target, {{"Connection", "close"}});
  } catch (const std::exception& e) {
    ADD_FAILURE() << e.what();
    return std::nullopt;
  }
}

// HAProxy or nginx in the foreground, in a process group of its own with its
// files in a temporary directory; the destructor kills the group and removes
// the directory (kept when the test failed, for the logs).
class External {
 public:
  // argv runs in dir; its stdout and stderr go to dir/output.log. Waits until
  // every port in `ports` ("host", port) accepts connections.
  External(const std::string& name, std::string dir, const std::vector<std::string>& argv,
           const std::vector<std::pair<std::string, uint16_t>>& ports)
      : name_(name), dir_(std::move(dir)) {
    process_.emplace(argv, dir_, dir_ + "/output.log");
    for (const auto& hp : ports) {
      const std::string& host = hp.first;
      const uint16_t port = hp.second;
      const bool up =
          wait_until([&] { return process_->alive() && can_connect(port, host, 500); }, 15000, 50);
      if (!up) {
        ADD_FAILURE() << name_ << " does not listen on " << host << ":" << port << "; its output:\n"
                      << tail_lines(output(), 40);
        ok_ = false;
        return;
      }
    }
  }
  ~External() {
    process_.reset();  // SIGKILL to the group, reaped
    if (::testing::Test::HasFailure()) {
      std::printf("%s kept in %s; its output:\n%s\n", name_.c_str(), dir_.c_str(),
                  tail_lines(output(), 20).c_str());
    } else {
      remove_tree(dir_);
    }
  }
  External(const External&) = delete;
  External& operator=(const External&) = delete;

  bool ok() const { return ok_; }
  const std::string& dir() const { return dir_; }
  std::string output() const { return file_or_empty(dir_ + "/output.log"); }

 private:
  std::string name_, dir_;
  std::optional<ChildProcess> process_;
  bool ok_ = true;
};

// `haproxy -db -f DIR/haproxy.cfg`; `config` gets the usual global and
// defaults sections (logs on stdout, raw: each line is the log-format alone).
std::unique_ptr<External> start_haproxy(
    const std::string& config, const std::vector<std::pair<std::string, uint16_t>>& ports) {
  std::string dir = make_temp_dir();
  write_file(dir + "/haproxy.cfg",
             "global\n"
             "  log stdout format raw local0\n"
             "defaults\n"
             "  log global\n"
             "  timeout connect 5s\n"
             "  timeout client 30s\n"
             "  timeout server 30s\n" +
                 config);
  return std::make_unique<External>(
      "haproxy", dir, std::vector<std::string>{kHaproxy, "-db", "-f", "haproxy.cfg"}, ports);
}

// nginx answering "$proxy_protocol_addr\n" on a proxy_protocol listener, its
// access log at DIR/access.log in the format "pp=ADDR peer=ADDR REQUEST STATUS"
// (pp: the client the header names; peer: who connected, weir).
std::unique_ptr<External> start_nginx(uint16_t port) {
  std::string dir = make_temp_dir();
  const std::string conf = replace_all(R"(worker_processes 1;
pid @DIR@/nginx.pid;
error_log @DIR@/error.log info;
events { worker_connections 64; }
http {
  client_body_temp_path @DIR@/client_body;
  proxy_temp_path @DIR@/proxy;
  fastcgi_temp_path @DIR@/fastcgi;
  uwsgi_temp_path @DIR@/uwsgi;
  scgi_temp_path @DIR@/scgi;
  log_format pp 'pp=$proxy_protocol_addr peer=$remote_addr "$request" $status';
  access_log @DIR@/access.log pp;
  server {
    listen 127.0.0.1:@PORT@ proxy_protocol;
    location / {
      default_type text/plain;
      return 200 "$proxy_protocol_addr\n";
    }
  }
}
)",
                                       {{"@DIR@", dir}, {"@PORT@", std::to_string(port)}});
  write_file(dir + "/nginx.conf", conf);
  return std::make_unique<External>(
      "nginx", dir,
      std::vector<std::string>{kNginx, "-p", dir, "-e", dir + "/error.log", "-c",
                               dir + "/nginx.conf", "-g", "daemon off;"},
      std::vector<std::pair<std::string, uint16_t>>{{"127.0.0.1", port}});
}

// HAProxy in http mode answering every request itself with the client's
// address as PROXY headers name it: body `body` (a log-format, "%ci" by
// default), header X-Conn with the port of the connection that carried the
// request (before the header: weir's side), and a log line
// "client=%ci conn=PORT URI".
std::unique_ptr<External> start_haproxy_answering(uint16_t port, const std::string& body = "%ci") {
  return start_haproxy(replace_all(R"(frontend answer
  mode http
  bind 127.0.0.1:@PORT@ accept-proxy
  log-format "client=%ci conn=%[fc_src_port] %HU"
  http-request return status 200 content-type text/plain lf-string "@BODY@" hdr X-Conn "%[fc_src_port]"
)",
                                   {{"@PORT@", std::to_string(port)}, {"@BODY@", body}}),
                       {{"127.0.0.1", port}});
}

class ProxyProtocolInterop : public ::testing::Test {
 protected:
  void SetUp() override {
    ignore_sigpipe();
    // Not a skip: scripts/deps.sh test installs both.
    ASSERT_EQ(::access(kHaproxy, X_OK), 0) << kHaproxy << " is missing: run scripts/deps.sh test";
    ASSERT_EQ(::access(kNginx, X_OK), 0) << kNginx << " is missing: run scripts/deps.sh test";
    dir_ = make_temp_dir();
    port_ = free_tcp_port();
  }
  void TearDown() override {
    weir_.reset();
    remove_tree(dir_);
  }

  std::string access_log() const { return dir_ + "/access.log"; }
  std::string admin() const { return dir_ + "/admin.sock"; }

  // weir with an access log in DIR/access.log ("%ci %ST %HP" unless `format`), a
  // runtime API, and `body` (frontends and backends) with @PORT@ and @DIR@ and
  // the keys of `vars` replaced.
  bool start_weir(const std::string& body, const Vars& vars = {},
                  const std::string& format = "%ci %ST %HP") {
    Vars all = vars;
    all.emplace_back("@PORT@", std::to_string(port_));
    all.emplace_back("@DIR@", dir_);
    const std::string yaml = "global:\n  threads: 2\n  log: [{target: " + access_log() +
                             ", format: \"" + format + "\"}]\n  runtime_api: " + admin() + "\n" +
                             replace_all(body, all);
    weir_ = WeirProcess::start(yaml);
    return weir_ != nullptr;
  }
  // weir's http frontend (forwardfor) in front of `app`: `bind` is the one
  // entry of its bind list (flow YAML), `rules` its http_request list.
  bool start_weir_to_app(const OriginServer& app, const std::string& bind,
                         const std::string& rules = "", const std::string& format = "%ci %ST %HP") {
    return start_weir("frontends:\n  fe:\n    mode: http\n    bind: [" + bind +
                          "]\n    forwardfor: true\n    default_backend: be\n" +
                          (rules.empty() ? "" : "    http_request:\n" + rules) +
                          "backends:\n  be:\n    mode: http\n    servers: {s1: \"" + app.address() +
                          "\"}\n",
                      {}, format);
  }
  bool weir_logged(const std::string& regex) {
    return wait_line([&] { return file_or_empty(access_log()); }, regex);
  }

  std::map<std::string, std::string> stat_row(const std::string& px, const std::string& sv) {
    for (auto& r : parse_stat_csv(unix_command(admin(), "show stat")))
      if (r["pxname"] == px && r["svname"] == sv) return r;
    return {};
  }
  bool wait_status(const std::string& sv, const std::string& status) {
    return wait_until([&] { return stat_row("be", sv)["status"] == status; }, 15000, 50);
  }

  // HAProxy as a layer-4 balancer in front of weir: mode tcp, listening on
  // 127.0.0.1:hp and [::1]:hp6, `server w 127.0.0.1:PORT <send>`.
  std::unique_ptr<External> haproxy_in_front(uint16_t hp, uint16_t hp6, const std::string& send) {
    return start_haproxy(replace_all(R"(frontend balancer
  mode tcp
  bind 127.0.0.1:@HP@
  bind [::1]:@HP6@
  default_backend weir
backend weir
  mode tcp
  server w 127.0.0.1:@PORT@ @SEND@
)",
                                     {{"@HP@", std::to_string(hp)},
                                      {"@HP6@", std::to_string(hp6)},
                                      {"@PORT@", std::to_string(port_)},
                                      {"@SEND@", send}}),
                         // HAProxy opens every listener before it serves any.
                         {{"127.0.0.1", hp}});
  }

  // Case 1: HAProxy (`send`) -> weir (accept_proxy, forwardfor, a `src` rule)
  // -> origin, for IPv4 clients from 127.0.0.2 and 127.0.0.1 and an IPv6 client.
  void haproxy_to_weir(const std::string& send) {
    OriginServer app("app");
    ASSERT_TRUE(start_weir_to_app(app, R"({address: "127.0.0.1:@PORT@", accept_proxy: true})",
                                  R"(      - deny: {status: 403, body: "not you\n"}
        if: "{ src 127.0.0.2 } and { path /private }"
)"));
    const uint16_t hp = free_tcp_port(), hp6 = free_tcp_port();
    auto haproxy = haproxy_in_front(hp, hp6, send);
    ASSERT_TRUE(haproxy->ok());

    // The client from 127.0.0.2: weir sees it, not HAProxy's 127.0.0.1.
    auto r = get_from("127.0.0.2", hp, "/public");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200) << r->raw_head;
    ASSERT_TRUE(app.wait_for_requests(1, 5000));
    EXPECT_EQ(app.requests().back().header("X-Forwarded-For"), "127.0.0.2");
    EXPECT_TRUE(weir_logged("^127\\.0\\.0\\.2 200 /public$")) << file_or_empty(access_log());

    // The `src` rule: 127.0.0.2 is denied /private, 127.0.0.1 is not.
    r = get_from("127.0.0.2", hp, "/private");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 403);
    EXPECT_EQ(r->body, "not you\n");
    EXPECT_TRUE(weir_logged("^127\\.0\\.0\\.2 403 /private$")) << file_or_empty(access_log());
    r = get_from("127.0.0.1", hp, "/private");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
    ASSERT_TRUE(app.wait_for_requests(2, 5000));
    EXPECT_EQ(app.requests().back().target, "/private");
    EXPECT_EQ(app.requests().back().header("X-Forwarded-For"), "127.0.0.1");
    EXPECT_TRUE(weir_logged("^127\\.0\\.0\\.1 200 /private$")) << file_or_empty(access_log());

    // An IPv6 client of HAProxy; HAProxy reaches weir over IPv4, the header
    // carries ::1.
    auto six = run_command({"curl", "-sS", "-g", "--max-time", "20", "-o", "/dev/null", "-w",
                            "%{http_code}", "http://[::1]:" + std::to_string(hp6) + "/six"},
                           30000);
    EXPECT_EQ(six.exit_code, 0) << six.err;
    EXPECT_EQ(six.out, "200");
    ASSERT_TRUE(app.wait_for_requests(3, 5000));
    EXPECT_EQ(app.requests().back().target, "/six");
    EXPECT_EQ(app.requests().back().header("X-Forwarded-For"), "::1");
    EXPECT_TRUE(weir_logged("^::1 200 /six$")) << file_or_empty(access_log());
  }

  // weir (`mode`) in front of `backend`: the lines of backend `be` after its
  // mode (send_proxy, check, servers).
  bool start_weir_in_front(const std::string& mode, const std::string& backend) {
    return start_weir("frontends:\n  fe:\n    mode: " + mode +
                          "\n    bind: [\"127.0.0.1:@PORT@\"]\n"
                          "    default_backend: be\nbackends:\n  be:\n    mode: " +
                          mode + "\n" + backend,
                      {}, "%ci %ts");
  }
  // The same, then one request through it from 127.0.0.2.
  std::optional<HttpResponse> request_through_weir(const std::string& mode,
                                                   const std::string& backend) {
    if (!start_weir_in_front(mode, backend)) return std::nullopt;
    return get_from("127.0.0.2", port_, "/through-weir");
  }

  // Case 2: client from 127.0.0.2 -> weir (`mode`, send_proxy `version`) ->
  // HAProxy accept-proxy, which answers and logs the client it was told of.
  void weir_to_haproxy(const std::string& mode, const std::string& version) {
    const uint16_t hp = free_tcp_port();
    auto haproxy = start_haproxy_answering(hp);
    ASSERT_TRUE(haproxy->ok());
    // The version on the backend (every server's default).
    auto r = request_through_weir(mode, "    send_proxy: " + version +
                                            "\n    servers: {h: \"127.0.0.1:" + std::to_string(hp) +
                                            "\"}\n");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200) << r->raw_head;
    EXPECT_EQ(r->body, "127.0.0.2");
    EXPECT_TRUE(wait_line([&] { return haproxy->output(); },
                          "^client=127\\.0\\.0\\.2 conn=[0-9]+ /through-weir$"))
        << haproxy->output();
  }

  // Case 3: client from 127.0.0.2 -> weir (`mode`, send_proxy `version`) ->
  // nginx proxy_protocol.
  void weir_to_nginx(const std::string& mode, const std::string& version) {
    const uint16_t np = free_tcp_port();
    auto nginx = start_nginx(np);
    ASSERT_TRUE(nginx->ok());
    // The version on the server itself.
    auto r =
        request_through_weir(mode, "    servers: {n: {address: \"127.0.0.1:" + std::to_string(np) +
                                       "\", send_proxy: " + version + "}}\n");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200) << r->raw_head;
    EXPECT_EQ(r->body, "127.0.0.2\n");
    EXPECT_TRUE(wait_line([&] { return file_or_empty(nginx->dir() + "/access.log"); },
                          "^pp=127\\.0\\.0\\.2 peer=127\\.0\\.0\\.1 \"GET /through-weir "
                          "HTTP/1\\.1\" 200$"))
        << file_or_empty(nginx->dir() + "/access.log")
        << file_or_empty(nginx->dir() + "/error.log");
  }

  std::string dir_;
  uint16_t port_ = 0;
  std::unique_ptr<WeirProcess> weir_;
};

// ---- 1. HAProxy in front of weir -------------------------------------------

TEST_F(ProxyProtocolInterop, HaproxySendProxyV1InFrontOfWeir) {
  haproxy_to_weir("send-proxy");
}

TEST_F(ProxyProtocolInterop, HaproxySendProxyV2InFrontOfWeir) {
  haproxy_to_weir("send-proxy-v2");
}

// ---- 2. weir in front of HAProxy accept-proxy ------------------------------

TEST_F(ProxyProtocolInterop, WeirHttpSendsV1ToHaproxy) {
  weir_to_haproxy("http", "v1");
}

TEST_F(ProxyProtocolInterop, WeirHttpSendsV2ToHaproxy) {
  weir_to_haproxy("http", "v2");
}

TEST_F(ProxyProtocolInterop, WeirTcpSendsV1ToHaproxy) {
  weir_to_haproxy("tcp", "v1");
}

TEST_F(ProxyProtocolInterop, WeirTcpSendsV2ToHaproxy) {
  weir_to_haproxy("tcp", "v2");
}

// ---- 3. weir in front of nginx proxy_protocol ------------------------------

TEST_F(ProxyProtocolInterop, WeirHttpSendsV1ToNginx) {
  weir_to_nginx("http", "v1");
}

TEST_F(ProxyProtocolInterop, WeirHttpSendsV2ToNginx) {
  weir_to_nginx("http", "v2");
}

TEST_F(ProxyProtocolInterop, WeirTcpSendsV2ToNginx) {
  weir_to_nginx("tcp", "v2");
}

// ---- 4. Health checks with the header --------------------------------------

// nginx's proxy_protocol listener refuses anything that does not start with a
// header: a check that sends one (by default when traffic does, v2 LOCAL or v1)
// finds it UP, the same check told not to (check_send_proxy: false) DOWN.
TEST_F(ProxyProtocolInterop, HealthChecksCarryTheHeaderToNginx) {
  const uint16_t np = free_tcp_port();
  auto nginx = start_nginx(np);
  ASSERT_TRUE(nginx->ok());
  ASSERT_TRUE(start_weir_in_front("http", replace_all(R"(    send_proxy: v2
    check: {type: http, path: /, inter: 200ms, rise: 1, fall: 1}
    servers:
      v2: "127.0.0.1:@NP@"
      v1: {address: "127.0.0.1:@NP@", send_proxy: v1}
      bare: {address: "127.0.0.1:@NP@", check_send_proxy: false}
)",
                                                      {{"@NP@", std::to_string(np)}})));
  // Servers start UP: a passed check is what shows the header worked.
  for (const char* sv : {"v2", "v1"}) {
    EXPECT_TRUE(wait_until([&] { return stat_row("be", sv)["check_status"] == "L7OK"; }, 15000, 50))
        << sv << "\n"
        << unix_command(admin(), "show stat");
    EXPECT_EQ(stat_row("be", sv)["status"], "UP") << sv;
  }
  EXPECT_TRUE(wait_status("bare", "DOWN")) << unix_command(admin(), "show stat");
  EXPECT_EQ(stat_row("be", "v2")["status"], "UP");
  EXPECT_EQ(stat_row("be", "v1")["status"], "UP");
  // nginx says why: a connection that did not start with a PROXY header.
  EXPECT_TRUE(
      wait_line([&] { return file_or_empty(nginx->dir() + "/error.log"); }, "broken header"))
      << file_or_empty(nginx->dir() + "/error.log");
  // The checks that passed were logged by nginx as requests for /.
  EXPECT_TRUE(wait_line([&] { return file_or_empty(nginx->dir() + "/access.log"); },
                        "\"GET / HTTP/1\\.[01]\" 200$"))
      << file_or_empty(nginx->dir() + "/access.log");
  // Traffic still reaches nginx through the two UP servers, with the header.
  auto r = get_from("127.0.0.2", port_, "/traffic");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "127.0.0.2\n");
}

// ---- 5. curl --haproxy-protocol as a v1 client ------------------------------

TEST_F(ProxyProtocolInterop, CurlHaproxyProtocolToAnAcceptProxyBind) {
  OriginServer app("app");
  ASSERT_TRUE(start_weir_to_app(
      app,
      R"({address: "127.0.0.1:@PORT@", accept_proxy: {trusted: ["127.0.0.0/8"], timeout: 2s}})",
      "      - set_header: {name: X-PP, value: \"%[fc_pp]\"}\n"));
  const std::string url = "http://127.0.0.1:" + std::to_string(port_) + "/curl";
  auto r = run_command({"curl", "-sS", "--max-time", "20", "--haproxy-protocol", "--interface",
                        "127.0.0.2", "-o", "/dev/null", "-w", "%{http_code}", url},
                       30000);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "200");
  ASSERT_TRUE(app.wait_for_requests(1, 5000));
  EXPECT_EQ(app.requests()[0].header("X-PP"), "1");
  EXPECT_EQ(app.requests()[0].header("X-Forwarded-For"), "127.0.0.2");
  EXPECT_TRUE(weir_logged("^127\\.0\\.0\\.2 200 /curl$")) << file_or_empty(access_log());

  // The same curl without the header: the bind closes the connection, nothing
  // reaches the application.
  auto plain = run_command({"curl", "-sS", "--max-time", "20", "-o", "/dev/null", url}, 30000);
  EXPECT_NE(plain.exit_code, 0);
  EXPECT_EQ(app.requests().size(), 1u);
}

// ---- 6. A TLS bind behind HAProxy send-proxy-v2 -----------------------------

TEST_F(ProxyProtocolInterop, TlsBindAcceptsTheHeaderBeforeTheClientHello) {
  TestPki pki;
  Cert www = pki.server("www", {.dns = {"www.example.com"}});
  OriginServer app("app");
  ASSERT_TRUE(start_weir_to_app(app,
                                "{address: \"127.0.0.1:@PORT@\", accept_proxy: true, "
                                "tls: {certificates: [" +
                                    www.pem + "]}}",
                                "", "%ci %ST %HP %[ssl_fc]"));
  const uint16_t hp = free_tcp_port(), hp6 = free_tcp_port();
  auto haproxy = haproxy_in_front(hp, hp6, "send-proxy-v2");
  ASSERT_TRUE(haproxy->ok());
  CurlResult r =
      curl_https(hp, "www.example.com", "/secure", pki.root_ca(), {"--interface", "127.0.0.2"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "app\n");
  ASSERT_TRUE(app.wait_for_requests(1, 5000));
  EXPECT_EQ(app.requests()[0].header("X-Forwarded-For"), "127.0.0.2");
  EXPECT_TRUE(weir_logged("^127\\.0\\.0\\.2 200 /secure (1|true)$")) << file_or_empty(access_log());
}

// ---- 7. v2 TLVs, both ways --------------------------------------------------

// HAProxy terminates TLS and passes what it learnt in v2 TLVs (the name the
// client asked for, the ALPN, the TLS block, its unique id); weir's fc_pp_*
// fetches read them.
TEST_F(ProxyProtocolInterop, HaproxyTlvsReachTheFcPpFetches) {
  TestPki pki;
  Cert www = pki.server("www", {.dns = {"www.example.com"}});
  OriginServer app("app");
  ASSERT_TRUE(start_weir_to_app(
      app, R"({address: "127.0.0.1:@PORT@", accept_proxy: {trusted: [127.0.0.1/32]}})",
      R"(      - set_header:
          name: X-PP
          value: "%[fc_pp]|%[fc_pp_authority]|%[fc_pp_unique_id]|%[fc_pp_alpn]|%[fc_pp_ssl]|%[fc_pp_ssl_version]|%[fc_pp_ssl_cipher]"
      - set_header: {name: X-Authority, value: "%[fc_pp_authority]"}
      - set_header: {name: X-Id, value: "%[fc_pp_unique_id]"}
)"));
  const uint16_t hp = free_tcp_port();
  auto haproxy = start_haproxy(
      replace_all(
          R"(frontend tls
  mode http
  bind 127.0.0.1:@HP@ ssl crt @CERT@ alpn http/1.1
  unique-id-format "req-%rt"
  default_backend weir
backend weir
  mode http
  server w 127.0.0.1:@PORT@ send-proxy-v2 proxy-v2-options authority,unique-id,ssl,ssl-cipher
)",
          {{"@HP@", std::to_string(hp)}, {"@CERT@", www.pem}, {"@PORT@", std::to_string(port_)}}),
      {{"127.0.0.1", hp}});
  ASSERT_TRUE(haproxy->ok());
  CurlResult r =
      curl_https(hp, "www.example.com", "/tlv", pki.root_ca(), {"--interface", "127.0.0.2"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.status, 200);
  ASSERT_TRUE(app.wait_for_requests(1, 5000));
  const RecordedRequest got = app.requests()[0];  // requests() is a copy
  EXPECT_EQ(got.header("X-Forwarded-For"), "127.0.0.2");
  EXPECT_TRUE(std::regex_match(
      got.header("X-PP"),
      std::regex(R"(1\|www\.example\.com\|req-[0-9]+\|http/1\.1\|1\|TLSv1\.3\|TLS_[A-Z0-9_]+)")))
      << got.header("X-PP");
  // A fetch alone is the whole value.
  EXPECT_EQ(got.header("X-Authority"), "www.example.com");
  EXPECT_TRUE(std::regex_match(got.header("X-Id"), std::regex("req-[0-9]+"))) << got.header("X-Id");
}

// weir terminates TLS and sends the TLVs; HAProxy 2.6 reads the authority and
// the unique id (it has no fetch for the others).
TEST_F(ProxyProtocolInterop, WeirTlvsReachHaproxy) {
  TestPki pki;
  Cert www = pki.server("www", {.dns = {"www.example.com"}});
  const uint16_t hp = free_tcp_port();
  auto haproxy = start_haproxy_answering(hp, "%ci|%[fc_pp_authority]|%[fc_pp_unique_id]");
  ASSERT_TRUE(haproxy->ok());
  ASSERT_TRUE(start_weir(R"(frontends:
  fe:
    mode: http
    bind:
      - address: "127.0.0.1:@PORT@"
        tls: {certificates: [@CERT@]}
    default_backend: be
backends:
  be:
    mode: http
    send_proxy: {version: v2, tlvs: [alpn, authority, ssl, unique_id]}
    servers: {h: "127.0.0.1:@HP@"}
)",
                         {{"@CERT@", www.pem}, {"@HP@", std::to_string(hp)}}));
  CurlResult r =
      curl_https(port_, "www.example.com", "/tlv", pki.root_ca(), {"--interface", "127.0.0.2"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.status, 200);
  EXPECT_TRUE(std::regex_match(r.body, std::regex(R"(127\.0\.0\.2\|www\.example\.com\|\S+)")))
      << r.body;
}

// ---- A server connection that carried one client's header stays its own ----

// http_reuse is `always` by default; a pooled connection to HAProxy that
// carried 127.0.0.2's header must never serve 127.0.0.3 (HAProxy would answer
// with the other client's address).
TEST_F(ProxyProtocolInterop, HeaderConnectionsAreNeverSharedBetweenClients) {
  const uint16_t hp = free_tcp_port();
  auto haproxy = start_haproxy_answering(hp);
  ASSERT_TRUE(haproxy->ok());
  ASSERT_TRUE(start_weir_in_front("http", "    servers: {h: {address: \"127.0.0.1:" +
                                              std::to_string(hp) + "\", send_proxy: v1}}\n"));
  HttpClient a(port_, "127.0.0.1", "127.0.0.2");
  HttpClient b(port_, "127.0.0.1", "127.0.0.3");
  // Which server connections (weir's source ports, as HAProxy saw them) served
  // each client.
  std::map<std::string, std::vector<std::string>> conns;
  for (int i = 0; i < 5; ++i) {
    for (const auto& [client, source] :
         std::vector<std::pair<HttpClient*, std::string>>{{&a, "127.0.0.2"}, {&b, "127.0.0.3"}}) {
      auto r = client->request("GET", "/" + std::to_string(i));
      ASSERT_TRUE(r) << source << " request " << i;
      EXPECT_EQ(r->status, 200);
      EXPECT_EQ(r->body, source) << "request " << i << " of " << source;
      conns[source].push_back(r->header("X-Conn"));
    }
  }
  // No server connection served both clients ...
  std::set<std::string> of_a(conns["127.0.0.2"].begin(), conns["127.0.0.2"].end());
  for (const auto& port : conns["127.0.0.3"]) EXPECT_EQ(of_a.count(port), 0u) << port;
  // ... while HAProxy kept them open: a client's requests did reuse its own
  // (otherwise this test could not tell a shared connection from none).
  std::set<std::string> of_b(conns["127.0.0.3"].begin(), conns["127.0.0.3"].end());
  EXPECT_LT(of_a.size() + of_b.size(), 10u);
}

}  // namespace
}  // namespace weir::test
