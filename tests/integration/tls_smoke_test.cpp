// TLS (doc/tls.md) in its few essential forms, with real clients (curl, openssl
// s_client) and a real TLS server (openssl s_server): HTTPS through weir, the
// certificate chosen by SNI, a required client certificate, TLS toward a
// server. Also run against the ASan+UBSan and TSan builds (label "sanitize"):
// keep it small. tls_test.cpp has the rest.

#include <gtest/gtest.h>

#include <map>
#include <regex>
#include <string>
#include <utility>
#include <vector>

#include "tests/support/launcher.h"
#include "tests/support/origin.h"
#include "tests/support/tls_certs.h"

namespace weir::test {
namespace {

using Vars = std::vector<std::pair<std::string, std::string>>;

std::string replace_all(std::string s, const Vars& vars) {
  for (const auto& [key, value] : vars) {
    for (size_t pos = s.find(key); pos != std::string::npos; pos = s.find(key, pos + value.size()))
      s.replace(pos, key.size(), value);
  }
  return s;
}

class TlsSmoke : public ::testing::Test {
 protected:
  void SetUp() override {
    ignore_sigpipe();
    port_ = free_tcp_port();
    pki_ = std::make_unique<TestPki>();
  }
  void TearDown() override {
    weir_.reset();
    pki_.reset();
  }
  bool start(const std::string& body, const Vars& vars, const std::string& log_format) {
    Vars all = vars;
    all.emplace_back("@PORT@", std::to_string(port_));
    std::string y = "global:\n  threads: 2\n  log: [{target: stdout, format: " + log_format +
                    "}]\n" + replace_all(body, all);
    weir_ = WeirProcess::start(y);
    return weir_ != nullptr;
  }
  // Waits for an access-log line matching regex and returns it ("" when none came).
  std::string log_line(const std::string& regex) {
    std::string found;
    const std::regex re(regex);
    wait_until(
        [&] {
          std::string text = weir_->stdout_text();
          for (size_t pos = 0; pos < text.size();) {
            size_t eol = text.find('\n', pos);
            if (eol == std::string::npos) eol = text.size();
            std::string line = text.substr(pos, eol - pos);
            if (std::regex_search(line, re)) {
              found = line;
              return true;
            }
            pos = eol + 1;
          }
          return false;
        },
        10000);
    return found;
  }

  uint16_t port_ = 0;
  std::unique_ptr<TestPki> pki_;
  std::unique_ptr<WeirProcess> weir_;
};

// The doc's first example: a bind with a tls block in front of an HTTP application,
// reached with curl as any browser would (name resolved to weir, CA trusted).
TEST_F(TlsSmoke, HttpsRequestThroughWeirWithCurl) {
  OriginServer app("app");
  Cert www = pki_->server("www", {.dns = {"www.example.com"}});
  ASSERT_TRUE(start(R"y(frontends:
  web:
    mode: http
    bind:
      - address: "127.0.0.1:@PORT@"
        tls:
          certificates: [@CERT@]
    default_backend: app
backends:
  app:
    servers: {s1: "@APP@"}
)y",
                    {{"@CERT@", www.pem}, {"@APP@", app.address()}},
                    "'%ft %ST %[ssl_fc] %[ssl_version] %[ssl_cipher] %[ssl_sni] %HP'"));
  CurlResult r = curl_https(port_, "www.example.com", "/hello?x=1", pki_->root_ca());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.header("X-Server"), "app");
  EXPECT_EQ(r.body, "app\n");
  ASSERT_EQ(app.requests().size(), 1u);
  EXPECT_EQ(app.requests()[0].target, "/hello?x=1");
  EXPECT_EQ(app.requests()[0].header("Host"),
            "www.example.com:" + std::to_string(port_));  // as curl sent it

  // The log line: TLS, the version and cipher curl negotiated, the name it sent.
  std::string line = log_line(" /hello$");
  ASSERT_FALSE(line.empty()) << weir_->stdout_text();
  EXPECT_TRUE(std::regex_match(
      line, std::regex(R"(web 200 (1|true) TLSv1\.3 TLS_[A-Z0-9_]+ www\.example\.com /hello)")))
      << line;

  // A plain HTTP client on the TLS port gets no answer from the application.
  auto plain = run_command(
      {"curl", "-sS", "--max-time", "10", "http://127.0.0.1:" + std::to_string(port_) + "/plain"},
      30000);
  EXPECT_NE(plain.exit_code, 0);
  EXPECT_EQ(app.requests().size(), 1u);
}

// SNI picks the certificate: exact name, then a wildcard, else the default.
TEST_F(TlsSmoke, SniSelectsExactWildcardOrDefaultCertificate) {
  OriginServer app("app");
  Cert exact = pki_->server("exact", {.dns = {"a.example.com"}});
  Cert wild = pki_->server("wild", {.dns = {"*.example.com"}, .subject = "/O=weir-tests/CN=wild"});
  Cert fallback = pki_->server("fallback", {.dns = {"default.test"}});
  ASSERT_TRUE(start(R"y(frontends:
  web:
    bind:
      - address: "127.0.0.1:@PORT@"
        tls: {certificates: [@EXACT@, @WILD@], default_certificate: @DEFAULT@}
    default_backend: app
backends:
  app:
    servers: {s1: "@APP@"}
)y",
                    {{"@EXACT@", exact.pem},
                     {"@WILD@", wild.pem},
                     {"@DEFAULT@", fallback.pem},
                     {"@APP@", app.address()}},
                    "text"));
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"-servername", "a.example.com"}, "a.example.com"},
      {{"-servername", "A.Example.COM"}, "a.example.com"},
      {{"-servername", "b.example.com"}, "wild"},
      {{"-servername", "x.b.example.com"}, "default.test"},
      {{"-servername", "example.com"}, "default.test"},
      {{"-servername", "unknown.test"}, "default.test"},
      {{"-noservername"}, "default.test"},
  };
  for (const auto& [args, cn] : cases) {
    std::vector<std::string> a = args;
    a.insert(a.end(), {"-CAfile", pki_->root_ca()});
    SClient c = s_client(port_, a, "");
    EXPECT_TRUE(c.handshake()) << args[0] << c.out << c.err;
    EXPECT_EQ(c.cn(), cn) << ::testing::PrintToString(args) << "\n" << c.out;
    // The chain (leaf and intermediate) is served: the client verifies it to the root.
    EXPECT_EQ(c.verify_code(), 0) << ::testing::PrintToString(args) << "\n" << c.out;
  }
  // curl checks the name too: the exact and the wildcard certificate satisfy it.
  for (const char* name : {"a.example.com", "b.example.com"}) {
    CurlResult r = curl_https(port_, name, "/", pki_->root_ca());
    EXPECT_EQ(r.exit_code, 0) << name << ": " << r.err;
    EXPECT_EQ(r.status, 200) << name;
  }
}

// verify: required: a client without a certificate from ca_file never reaches the server.
TEST_F(TlsSmoke, RequiredClientCertificateRejectsClientsWithoutOne) {
  OriginServer app("app");
  Cert site = pki_->server("site", {.dns = {"site.example.com"}});
  Cert good = pki_->client("alice", {.subject = "/C=FR/O=weir-tests/CN=alice"});
  Cert stranger = pki_->untrusted_client("mallory", {.subject = "/C=FR/O=elsewhere/CN=mallory"});
  ASSERT_TRUE(start(R"y(frontends:
  web:
    bind:
      - address: "127.0.0.1:@PORT@"
        tls: {certificates: [@SITE@], verify: required, ca_file: @CA@}
    default_backend: app
backends:
  app:
    servers: {s1: "@APP@"}
)y",
                    {{"@SITE@", site.pem}, {"@CA@", pki_->client_ca()}, {"@APP@", app.address()}},
                    "text"));
  CurlResult none = curl_https(port_, "site.example.com", "/none", pki_->root_ca());
  EXPECT_NE(none.exit_code, 0) << none.head << none.body;
  EXPECT_EQ(none.status, 0);
  CurlResult wrong =
      curl_https(port_, "site.example.com", "/wrong", pki_->root_ca(), {"--cert", stranger.pem});
  EXPECT_NE(wrong.exit_code, 0) << wrong.head << wrong.body;
  EXPECT_EQ(wrong.status, 0);
  CurlResult ok =
      curl_https(port_, "site.example.com", "/ok", pki_->root_ca(), {"--cert", good.pem});
  ASSERT_EQ(ok.exit_code, 0) << ok.err;
  EXPECT_EQ(ok.status, 200);
  ASSERT_EQ(app.requests().size(), 1u);
  EXPECT_EQ(app.requests()[0].target, "/ok");
}

// TLS toward a server (openssl s_server), verified against the CA with a fixed SNI.
TEST_F(TlsSmoke, BackendOverTlsVerifiedAgainstTheCa) {
  Cert backend_cert = pki_->server("backend", {.dns = {"backend.internal"}});
  TlsServer server("tls-origin", backend_cert);
  ASSERT_TRUE(start(R"y(frontends:
  web:
    bind: ["127.0.0.1:@PORT@"]
    default_backend: app
backends:
  app:
    tls: {enabled: true, verify: required, ca_file: @CA@, sni: backend.internal}
    servers: {s1: "@SRV@"}
)y",
                    {{"@CA@", pki_->root_ca()}, {"@SRV@", server.address()}}, "text"));
  auto r = run_command(
      {"curl", "-sS", "--max-time", "20", "http://127.0.0.1:" + std::to_string(port_) + "/id.txt"},
      30000);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "tls-origin\n") << server.log();
}

}  // namespace
}  // namespace weir::test
