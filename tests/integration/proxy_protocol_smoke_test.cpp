// The PROXY protocol as an operator meets it behind a layer-4 balancer
// (accept_proxy) and in front of servers that want the client (send_proxy):
// headers written by hand here, byte by byte where it matters (v1 and v2,
// IPv4 and IPv6, split across writes, with TLVs, LOCAL), the refusals and their
// counts, tcp mode, and a weir in front of another weir. HAProxy and nginx on
// either side: proxy_protocol_interop_test.cpp.

#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <chrono>
#include <regex>
#include <thread>

#include "tests/support/http_client.h"
#include "tests/support/launcher.h"
#include "tests/support/origin.h"
#include "tests/support/util.h"
#include "tests/support/weir_config.h"

namespace weir::test {
namespace {

// ---- v2 headers, built here from the specification (not with weir's encoder) ----------

const std::string kV2Sig("\r\n\r\n\0\r\nQUIT\n", 12);

void put16(std::string& out, uint16_t v) {
  out.push_back(static_cast<char>(v >> 8));
  out.push_back(static_cast<char>(v & 0xff));
}

std::string tlv(uint8_t type, std::string_view value) {
  std::string out(1, static_cast<char>(type));
  put16(out, static_cast<uint16_t>(value.size()));
  out.append(value);
  return out;
}

std::string ip_bytes(int family, const char* text) {
  unsigned char buf[16];
  EXPECT_EQ(inet_pton(family, text, buf), 1) << text;
  return std::string(reinterpret_cast<char*>(buf), family == AF_INET ? 4 : 16);
}

// PROXY v2 over TCP: family AF_INET or AF_INET6, then the TLVs.
std::string v2_header(int family, const char* src, uint16_t sport, const char* dst, uint16_t dport,
                      const std::string& tlvs = "") {
  std::string body = ip_bytes(family, src) + ip_bytes(family, dst);
  put16(body, sport);
  put16(body, dport);
  body += tlvs;
  std::string h = kV2Sig;
  h.push_back('\x21');                               // version 2, PROXY
  h.push_back(family == AF_INET ? '\x11' : '\x21');  // TCP over IPv4 / IPv6
  put16(h, static_cast<uint16_t>(body.size()));
  return h + body;
}

std::string v2_local() {
  std::string h = kV2Sig;
  h.push_back('\x20');  // version 2, LOCAL
  h.push_back('\x00');  // UNSPEC
  put16(h, 0);
  return h;
}

// A request that asks the rules' headers back from the origin (it records them).
const char* const kGet = "GET /pp HTTP/1.1\r\nHost: t\r\n\r\n";

// Rules that show the origin what weir's fetches say of the connection.
const char* const kShowRules =
    "    http_request:\n"
    "      - set_header: {name: X-Src, value: \"%[src]:%[src_port]\"}\n"
    "      - set_header: {name: X-Dst, value: \"%[dst]:%[dst_port]\"}\n"
    "      - set_header: {name: X-PP, value: \"%[fc_pp]\"}\n"
    "      - set_header: {name: X-Authority, value: \"%[fc_pp_authority]\"}\n"
    "      - set_header: {name: X-Unique, value: \"%[fc_pp_unique_id]\"}\n"
    "      - set_header: {name: X-Alpn, value: \"%[fc_pp_alpn]\"}\n"
    "      - set_header: {name: X-Ssl, value: "
    "\"%[fc_pp_ssl]/%[fc_pp_ssl_version]/%[fc_pp_ssl_cn]\"}\n"
    "      - deny: {status: 403}\n"
    "        if: \"{ src 203.0.113.66 }\"\n";

class ProxyProtocol : public ::testing::Test {
 protected:
  void SetUp() override {
    ignore_sigpipe();
    dir_ = make_temp_dir();
    log_ = dir_ + "/access.log";
    api_ = dir_ + "/api.sock";
  }
  void TearDown() override {
    weir_.reset();
    remove_tree(dir_);
  }
  // An http frontend whose bind has `accept_proxy: <accept>`, forwardfor and the
  // rules above, logging "%ci %cp" to log_, in front of `origin`.
  void start_http(OriginServer& origin, const std::string& accept) {
    spec_.servers = {origin.address()};
    spec_.threads = 1;
    spec_.forwardfor = true;
    spec_.bind_options = "accept_proxy: " + accept;
    spec_.logs = "[{target: " + log_ + ", format: \"%ci %cp %HP\"}]";
    spec_.frontend_extra = kShowRules;
    spec_.global_extra = "  runtime_api: [{address: " + api_ + ", level: admin}]\n";
    weir_ = WeirProcess::start(proxy_yaml(spec_));
    ASSERT_TRUE(weir_);
  }
  bool log_has(const std::string& line) {
    return wait_until([&] { return read_file(log_).find(line + "\n") != std::string::npos; }, 5000);
  }
  int64_t info(const std::string& name) {
    return info_number(unix_command(api_, "show info"), name);
  }

  std::string dir_, log_, api_;
  ProxySpec spec_;
  std::unique_ptr<WeirProcess> weir_;
};

// A v1 header and the request in one write: the header's source is the client
// for X-Forwarded-For, src/dst, the access log and the rules; nothing after the
// header is lost; the keep-alive request after it is the same client's.
TEST_F(ProxyProtocol, V1HeaderNamesTheClientForRulesLogsAndForwardedFor) {
  OriginServer origin("o");
  start_http(origin, "true");
  HttpClient c(spec_.port);
  ASSERT_TRUE(c.send_raw(std::string("PROXY TCP4 192.0.2.7 198.51.100.2 40001 443\r\n") + kGet));
  auto r = c.read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  auto r2 = c.request("GET", "/second");
  ASSERT_TRUE(r2);
  EXPECT_EQ(r2->status, 200);
  const auto reqs = origin.requests();
  ASSERT_EQ(reqs.size(), 2u);
  for (const auto& q : reqs) {
    EXPECT_EQ(q.header("X-Forwarded-For"), "192.0.2.7");
    EXPECT_EQ(q.header("X-Src"), "192.0.2.7:40001");
    EXPECT_EQ(q.header("X-Dst"), "198.51.100.2:443");
    EXPECT_EQ(q.header("X-PP"), "1");
    EXPECT_EQ(q.header("X-Authority"), "");  // v1 has no TLVs
  }
  EXPECT_TRUE(log_has("192.0.2.7 40001 /pp")) << read_file(log_);
  EXPECT_TRUE(log_has("192.0.2.7 40001 /second")) << read_file(log_);

  // The rules see the header's source: this client is denied, and only it.
  HttpClient denied(spec_.port);
  ASSERT_TRUE(
      denied.send_raw(std::string("PROXY TCP4 203.0.113.66 198.51.100.2 40002 443\r\n") + kGet));
  auto d = denied.read_response();
  ASSERT_TRUE(d);
  EXPECT_EQ(d->status, 403);
  EXPECT_EQ(origin.requests().size(), 2u);
  EXPECT_EQ(info("ProxyHeaders"), 2);
}

// A v2 header over IPv6 with TLVs, written in pieces with pauses (the 12-byte
// signature itself split), then the request: the TLVs become fetches.
TEST_F(ProxyProtocol, V2HeaderSplitAcrossWritesWithTlvs) {
  OriginServer origin("o");
  start_http(origin, "true");
  std::string ssl_sub = tlv(0x21, "TLSv1.3") + tlv(0x22, "client.example");
  std::string ssl(1, '\x03');                   // client: TLS, with a certificate
  ssl += std::string("\0\0\0\0", 4) + ssl_sub;  // verify: 0
  const std::string tlvs =
      tlv(0x01, "h2") + tlv(0x02, "shop.example.com") + tlv(0x05, "req-42") + tlv(0x20, ssl);
  const std::string h = v2_header(AF_INET6, "2001:db8::7", 50000, "2001:db8::1", 8443, tlvs);
  HttpClient c(spec_.port);
  const size_t cuts[] = {5, 13, 20, h.size()};
  size_t at = 0;
  for (size_t cut : cuts) {
    ASSERT_TRUE(c.send_raw(std::string_view(h).substr(at, cut - at)));
    at = cut;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_TRUE(c.send_raw(kGet));
  auto r = c.read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  const auto reqs = origin.requests();
  ASSERT_EQ(reqs.size(), 1u);
  const auto& q = reqs[0];
  EXPECT_EQ(q.header("X-Forwarded-For"), "2001:db8::7");
  EXPECT_EQ(q.header("X-Src"), "2001:db8::7:50000");
  EXPECT_EQ(q.header("X-Dst"), "2001:db8::1:8443");
  EXPECT_EQ(q.header("X-PP"), "1");
  EXPECT_EQ(q.header("X-Authority"), "shop.example.com");
  EXPECT_EQ(q.header("X-Unique"), "req-42");
  EXPECT_EQ(q.header("X-Alpn"), "h2");
  EXPECT_EQ(q.header("X-Ssl"), "1/TLSv1.3/client.example");
  EXPECT_TRUE(log_has("2001:db8::7 50000 /pp")) << read_file(log_);
}

// The balancer's own health check (v2 LOCAL) is served with the socket's peer.
TEST_F(ProxyProtocol, LocalCommandIsServedWithTheRealPeer) {
  OriginServer origin("o");
  start_http(origin, "true");
  HttpClient c(spec_.port, "127.0.0.1", "127.0.0.2");
  ASSERT_TRUE(c.send_raw(v2_local() + kGet));
  auto r = c.read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  ASSERT_EQ(origin.requests().size(), 1u);
  EXPECT_EQ(origin.requests()[0].header("X-Forwarded-For"), "127.0.0.2");
  EXPECT_EQ(origin.requests()[0].header("X-PP"), "1");
}

// Every way a header can fail closes the connection without an answer, is
// counted by reason in show info and /metrics, and is logged at most once a
// second; the bind keeps serving the clients that do send one.
TEST_F(ProxyProtocol, RefusalsAreClosedCountedAndLoggedOnceASecond) {
  OriginServer origin("o");
  const uint16_t port = free_tcp_port(), strict = free_tcp_port(), stats = free_tcp_port();
  const std::string yaml =
      "global:\n"
      "  threads: 1\n"
      "  runtime_api: [{address: " +
      api_ +
      ", level: admin}]\n"
      "frontends:\n"
      "  fe:\n"
      "    bind: [{address: \"127.0.0.1:" +
      std::to_string(port) +
      "\", accept_proxy: {timeout: 300ms}},\n"
      "           {address: \"127.0.0.1:" +
      std::to_string(strict) +
      "\", accept_proxy: {trusted: [10.0.0.0/8, \"2001:db8::/32\"]}}]\n"
      "    default_backend: be\n"
      "  stats:\n"
      "    bind: [\"127.0.0.1:" +
      std::to_string(stats) +
      "\"]\n"
      "    metrics: {uri: /metrics}\n"
      "    default_backend: be\n"
      "backends:\n"
      "  be:\n"
      "    servers: {s1: \"" +
      origin.address() + "\"}\n";
  weir_ = WeirProcess::start(yaml);
  ASSERT_TRUE(weir_);
  auto refused = [&](uint16_t p, const std::string& bytes, bool close_after) {
    HttpClient c(p);
    if (!bytes.empty()) {
      EXPECT_TRUE(c.send_raw(bytes));
    }
    if (close_after) {
      c.close();
      return;
    }
    EXPECT_TRUE(c.wait_closed(5000)) << "no close after " << bytes.size() << " bytes";
  };
  refused(port, kGet, false);                                                          // missing
  refused(port, "PROXY TCP4 192.0.2.300 198.51.100.2 1 2\r\n", false);                 // malformed
  refused(port, "PROXY TCP4 192.0.2.7 198.5", true);                                   // truncated
  refused(port, kV2Sig.substr(0, 7), false);                                           // timeout
  refused(strict, std::string("PROXY TCP4 10.1.1.1 10.0.0.1 1 2\r\n") + kGet, false);  // untrusted
  for (const char* name : {"Missing", "Malformed", "Truncated", "Timeout", "Untrusted"}) {
    EXPECT_TRUE(wait_until([&] { return info("ProxyRefused" + std::string(name)) == 1; }, 5000))
        << name << "\n"
        << unix_command(api_, "show info");
  }
  EXPECT_EQ(info("ProxyHeaders"), 0);
  auto m = http_get(stats, "/metrics");
  ASSERT_TRUE(m);
  for (const char* reason : {"missing", "malformed", "truncated", "timeout", "untrusted"}) {
    EXPECT_NE(m->body.find("weir_process_proxy_refused_total{reason=\"" + std::string(reason) +
                           "\"} 1\n"),
              std::string::npos)
        << reason << "\n"
        << m->body;
  }
  // The lines say what was wrong with whose connection.
  EXPECT_TRUE(
      weir_->wait_for_stderr("frontend 'fe': connection from 127\\.0\\.0\\.1:[0-9]+ "
                             "refused \\((missing|malformed|truncated|timeout|untrusted)\\)",
                             5000))
      << weir_->stderr_text();

  // A burst of bad connections: counted, but not a line each.
  const size_t lines_before = count_matching_lines(weir_->stderr_text(), "refused \\(");
  for (int i = 0; i < 30; ++i) refused(port, "GET / HTTP/1.0\r\n\r\n", false);
  EXPECT_TRUE(wait_until([&] { return info("ProxyRefusedMissing") == 31; }, 5000));
  const size_t lines = count_matching_lines(weir_->stderr_text(), "refused \\(") - lines_before;
  EXPECT_LT(lines, 15u) << weir_->stderr_text();
  // A second later, the next refusal is logged with the count of those held back.
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  refused(port, "GET / HTTP/1.0\r\n\r\n", false);
  EXPECT_TRUE(weir_->wait_for_stderr(
      "refused \\(missing\\).*\\([0-9]+ more refused since the last line\\)", 5000))
      << weir_->stderr_text();

  // The bind still serves a client with a header, and the strict one a trusted... none
  // is trusted from here: 127.0.0.1 is not in its networks.
  HttpClient ok(port);
  ASSERT_TRUE(ok.send_raw(std::string("PROXY TCP4 192.0.2.9 198.51.100.2 1 2\r\n") + kGet));
  auto r = ok.read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
}

// tcp mode: connection rules run after the header, on its addresses, and the
// bytes after the header reach the server untouched.
TEST_F(ProxyProtocol, TcpModeRulesSeeTheHeadersAddresses) {
  OriginServer origin("o");
  spec_.mode = "tcp";
  spec_.servers = {origin.address()};
  spec_.threads = 1;
  spec_.bind_options = "accept_proxy: true";
  spec_.logs = "[{target: " + log_ + ", format: \"%ci %cp %[dst_port]\"}]";
  spec_.frontend_extra =
      "    tcp_request:\n"
      "      - connection: reject\n"
      "        if: \"{ src 203.0.113.0/24 }\"\n";
  weir_ = WeirProcess::start(proxy_yaml(spec_));
  ASSERT_TRUE(weir_);
  {
    HttpClient c(spec_.port);
    ASSERT_TRUE(c.send_raw(std::string("PROXY TCP4 192.0.2.7 198.51.100.2 40001 5432\r\n") + kGet));
    auto r = c.read_response();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
  }
  EXPECT_TRUE(log_has("192.0.2.7 40001 5432")) << read_file(log_);
  ASSERT_EQ(origin.requests().size(), 1u);
  EXPECT_EQ(origin.requests()[0].target, "/pp");  // the header did not reach the server
  HttpClient rejected(spec_.port);
  ASSERT_TRUE(rejected.send_raw(std::string("PROXY TCP4 203.0.113.5 198.51.100.2 1 2\r\n") + kGet));
  EXPECT_TRUE(rejected.wait_closed(5000));
  EXPECT_EQ(origin.requests().size(), 1u);
}

// weir in front of weir: the first sends v2 with TLVs (send_proxy in the
// backend's defaults, one server overriding nothing), the second reads it. The
// client's address and the first weir's TLS facts reach the origin; the health
// checks send LOCAL, which the second weir serves.
TEST_F(ProxyProtocol, WeirSendsToWeirWithTlvsAndChecks) {
  OriginServer origin("o");
  start_http(origin, "true");
  ProxySpec front;
  front.servers = {"127.0.0.1:" + std::to_string(spec_.port)};
  front.threads = 1;
  front.backend_extra =
      "    send_proxy: {version: v2, tlvs: [authority, unique_id, ssl]}\n"
      "    check: {type: http, path: /, inter: 200ms}\n";
  auto first = WeirProcess::start(proxy_yaml(front));
  ASSERT_TRUE(first);
  HttpClient c(front.port, "127.0.0.1", "127.0.0.2");
  auto r = c.request("GET", "/through");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  auto r2 = c.request("GET", "/again");  // the same server connection, the same header
  ASSERT_TRUE(r2);
  std::vector<RecordedRequest> through;
  ASSERT_TRUE(wait_until(
      [&] {
        through.clear();
        for (const auto& q : origin.requests())
          if (q.target != "/") through.push_back(q);
        return through.size() == 2;
      },
      5000));
  for (const auto& q : through) {
    EXPECT_EQ(q.header("X-Forwarded-For"), "127.0.0.2");
    EXPECT_EQ(q.header("X-Dst"), "127.0.0.1:" + std::to_string(front.port));
    EXPECT_EQ(q.header("X-PP"), "1");
    EXPECT_EQ(q.header("X-Ssl"), "0//");          // the client spoke plain HTTP to the first weir
    EXPECT_EQ(q.header("X-Unique").size(), 32u);  // none came: a fresh 128-bit id
  }
  EXPECT_EQ(through[0].header("X-Unique"), through[1].header("X-Unique"));
  // The checks reached the origin through the second weir with a LOCAL header:
  // served with the first weir's own address.
  ASSERT_TRUE(wait_until(
      [&] {
        for (const auto& q : origin.requests())
          if (q.target == "/") return true;
        return false;
      },
      5000));
  for (const auto& q : origin.requests()) {
    if (q.target == "/") {
      EXPECT_EQ(q.header("X-Forwarded-For"), "127.0.0.1");
    }
  }
}

// Configuration mistakes are reported where they are.
TEST_F(ProxyProtocol, ConfigurationErrorsNameTheLine) {
  const std::string path = dir_ + "/bad.yaml";
  write_file(path,
             "frontends:\n"
             "  fe:\n"
             "    bind: [{address: \"127.0.0.1:1\", accept_proxy: {trusted: [10.0.0.0/33]}}]\n"
             "    default_backend: be\n"
             "backends:\n"
             "  be:\n"
             "    send_proxy: {version: v1, tlvs: [alpn]}\n"
             "    servers:\n"
             "      s1: {address: \"127.0.0.1:2\", send_proxy: v3}\n");
  CommandResult r = run_weir({"-c", "-f", path});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find(path + ":3:"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("the prefix length must be 0..32"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(path + ":7:"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("tlvs needs version v2"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(path + ":9:"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("unknown version 'v3'"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace weir::test
