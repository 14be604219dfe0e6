// TLS as doc/tls.md describes it, tested the way an operator would check it: certificates
// made with the openssl tool, clients that are `openssl s_client` and `curl`, TLS servers
// that are `openssl s_server`. Certificates and SNI, ALPN, versions and ciphers, dual
// ECDSA/RSA certificates, resumption (also across reloads and between instances), client
// certificates and their fetches, TLS toward servers, SNI routing in tcp mode, reloads
// with bad certificates, load errors, `show ssl certs`, /metrics, OCSP stapling, health
// checks over TLS. Every wait has a generous deadline; nothing asserts speed.

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <map>
#include <regex>
#include <set>
#include <string>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#include "tests/support/http_client.h"
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

std::string regex_escape(const std::string& s) {
  return std::regex_replace(s, std::regex(R"([.^$|()\[\]{}*+?\\])"), R"(\$&)");
}

// The 1-based line of the first line of text containing needle (0 when none).
int line_of(const std::string& text, const std::string& needle) {
  size_t pos = text.find(needle);
  if (pos == std::string::npos) return 0;
  int line = 1;
  for (size_t i = 0; i < pos; ++i)
    if (text[i] == '\n') ++line;
  return line;
}

// Every line of text matching the regex.
std::vector<std::string> matching_lines(const std::string& text, const std::string& regex) {
  std::vector<std::string> out;
  const std::regex re(regex);
  size_t pos = 0;
  while (pos < text.size()) {
    size_t eol = text.find('\n', pos);
    if (eol == std::string::npos) eol = text.size();
    std::string line = text.substr(pos, eol - pos);
    if (std::regex_search(line, re)) out.push_back(line);
    pos = eol + 1;
  }
  return out;
}

// A raw TCP connection to 127.0.0.1:port (for handshakes that never finish).
UniqueFd connect_raw(uint16_t port) {
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return UniqueFd();
  return fd;
}

uint16_t local_port(int fd) {
  sockaddr_in a{};
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  return ntohs(a.sin_port);
}

// True when the peer closes (EOF or reset) within timeout_ms; bytes received are dropped.
bool closed_by_peer(int fd, int timeout_ms) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                    deadline - std::chrono::steady_clock::now())
                    .count();
    if (left <= 0) return false;
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left)) <= 0) continue;
    char buf[4096];
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) return true;
  }
}

// Prometheus samples "name{labels} value" of one metric name: labels text -> value.
std::vector<std::pair<std::string, double>> metric_samples(const std::string& text,
                                                           const std::string& name) {
  std::vector<std::pair<std::string, double>> out;
  const std::regex re("^" + name + R"((\{([^}]*)\})? (-?[0-9.eE+-]+)$)");
  for (const std::string& line : matching_lines(text, "^" + name + "[{ ]")) {
    std::smatch m;
    if (std::regex_match(line, m, re)) out.emplace_back(m[2], std::stod(m[3]));
  }
  return out;
}

// ---------------------------------------------------------------------------
// The fixture's own certificates, checked with openssl itself.

TEST(TlsFixture, GeneratedCertificatesAreWhatTheTestsAssume) {
  TestPki pki;
  Cert ec = pki.server("ec", {.dns = {"a.example.com", "b.example.com"}});
  Cert rsa = pki.server("rsa", {.dns = {"a.example.com"}, .key = KeyType::rsa});
  // Leaf signed by the intermediate: verifies to the root with the chain of its .pem.
  EXPECT_EQ(openssl_verify(pki.root_ca(), ec.cert, ec.chain), 0);
  EXPECT_EQ(openssl_verify(pki.root_ca(), ec.pem, ec.pem), 0);  // first cert of the .pem
  EXPECT_EQ(openssl_verify(pki.root_ca(), rsa.cert, rsa.chain), 0);
  // Without the intermediate it does not.
  EXPECT_EQ(openssl_verify(pki.root_ca(), ec.cert), 20);
  // Nor against the other CA.
  EXPECT_NE(openssl_verify(pki.other_ca(), ec.cert, ec.chain), 0);
  std::string pem = read_file(ec.pem);
  EXPECT_EQ(count_matching_lines(pem, "BEGIN CERTIFICATE"), 2u);
  EXPECT_EQ(count_matching_lines(pem, "BEGIN PRIVATE KEY"), 1u);
  // Names, key types, subject and serial.
  std::string text = openssl({"x509", "-in", ec.cert, "-noout", "-text"}).out;
  EXPECT_NE(text.find("DNS:a.example.com, DNS:b.example.com"), std::string::npos) << text;
  EXPECT_NE(text.find("prime256v1"), std::string::npos);
  EXPECT_NE(text.find("TLS Web Server Authentication"), std::string::npos);
  std::string rtext = openssl({"x509", "-in", rsa.cert, "-noout", "-text"}).out;
  EXPECT_NE(rtext.find("Public-Key: (2048 bit)"), std::string::npos) << rtext;
  EXPECT_EQ(ec.subject, "/O=weir-tests/CN=a.example.com");
  EXPECT_EQ(ec.issuer, "/C=FR/O=weir-tests/CN=weir-test-intermediate");
  EXPECT_EQ(ec.cn, "a.example.com");
  EXPECT_TRUE(std::regex_match(ec.serial, std::regex("5EC0[0-9A-F]{12}"))) << ec.serial;
  EXPECT_NE(ec.serial, rsa.serial);
  EXPECT_NEAR(static_cast<double>(ec.not_after - unix_now()), 30.0 * 86400, 3600);
  // The key of the .pem is the certificate's.
  auto pub_of_cert = openssl({"x509", "-in", ec.pem, "-noout", "-pubkey"}).out;
  auto pub_of_key = openssl({"pkey", "-in", ec.pem, "-pubout"}).out;
  EXPECT_EQ(pub_of_cert, pub_of_key);

  // Validity in the past and in the future.
  Cert expired = pki.server("expired", {.dns = {"old.example.com"},
                                        .not_before = "20200101000000Z",
                                        .not_after = "20210101000000Z"});
  Cert future = pki.server("future", {.dns = {"new.example.com"},
                                      .not_before = asn1_time(unix_now() + 10 * 86400),
                                      .not_after = asn1_time(unix_now() + 40 * 86400)});
  EXPECT_EQ(openssl_verify(pki.root_ca(), expired.cert, expired.chain), 10);  // has expired
  EXPECT_EQ(openssl_verify(pki.root_ca(), future.cert, future.chain), 9);     // not yet valid
  EXPECT_EQ(expired.not_after, 1609459200);
  EXPECT_LT(expired.not_after, unix_now());

  // Clients: trusted by the client CA; revocation through a CRL.
  Cert alice = pki.client("alice", {.subject = "/C=FR/O=weir-tests/CN=alice"});
  Cert bob = pki.client("bob", {.subject = "/C=FR/O=weir-tests/CN=bob"});
  Cert mallory = pki.untrusted_client("mallory", {.subject = "/C=FR/O=elsewhere/CN=mallory"});
  EXPECT_EQ(openssl_verify(pki.client_ca(), alice.cert), 0);
  EXPECT_EQ(openssl_verify(pki.client_ca(), mallory.cert), 20);
  EXPECT_EQ(alice.subject, "/C=FR/O=weir-tests/CN=alice");
  EXPECT_EQ(alice.issuer, "/C=FR/O=weir-tests/CN=weir-client-ca");
  EXPECT_NE(openssl({"x509", "-in", alice.cert, "-noout", "-text"})
                .out.find("TLS Web Client Authentication"),
            std::string::npos);
  std::string crl = pki.revoke_client(bob);
  EXPECT_EQ(openssl_verify(pki.client_ca(), bob.cert, "", crl), 23);  // revoked
  EXPECT_EQ(openssl_verify(pki.client_ca(), alice.cert, "", crl), 0);

  // The broken files.
  std::string mismatched = pki.mismatched_key("mismatch");
  EXPECT_NE(openssl({"x509", "-in", mismatched, "-noout", "-pubkey"}).out,
            openssl({"pkey", "-in", mismatched, "-pubout"}).out);
  std::string bad_chain = pki.bad_chain("badchain");
  EXPECT_NE(openssl_verify(pki.root_ca(), bad_chain, bad_chain), 0);
  EXPECT_EQ(count_matching_lines(read_file(pki.missing_key("nokey")), "PRIVATE KEY"), 0u);
  EXPECT_EQ(count_matching_lines(read_file(pki.key_only("keyonly")), "CERTIFICATE"), 0u);
  Cert apart = pki.key_apart("apart", {.dns = {"apart.example.com"}});
  EXPECT_EQ(count_matching_lines(read_file(apart.pem), "PRIVATE KEY"), 0u);
  EXPECT_EQ(count_matching_lines(read_file(apart.pem + ".key"), "BEGIN PRIVATE KEY"), 1u);

  // OCSP: a "good" response for the certificate, signed by its issuer.
  std::string ocsp = pki.staple_ocsp(ec);
  EXPECT_EQ(ocsp, ec.pem + ".ocsp");
  CommandResult r =
      run_command({"openssl", "ocsp", "-respin", ocsp, "-resp_text", "-issuer",
                   pki.intermediate().cert(), "-cert", ec.cert, "-CAfile", pki.root_ca()});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("OCSP Response Status: successful"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(": good"), std::string::npos) << r.out;
}

TEST(TlsFixture, OpensslServerAndClientsTalk) {
  TestPki pki;
  Cert c = pki.server("srv", {.dns = {"srv.internal"}});
  Cert other = pki.root_server("other", {.dns = {"other.internal"}});
  TlsServer server("s1", c, {.sni_name = "other.internal", .sni_cert = &other});
  SClient a = s_client(server.port(), {"-servername", "srv.internal", "-CAfile", pki.root_ca()});
  EXPECT_TRUE(a.handshake()) << a.out << a.err;
  EXPECT_EQ(a.cn(), "srv.internal");
  EXPECT_EQ(a.verify_code(), 0) << a.out;
  EXPECT_EQ(a.http_body(), "s1\n") << a.out;
  SClient b = s_client(server.port(), {"-servername", "other.internal", "-CAfile", pki.root_ca()});
  EXPECT_EQ(b.cn(), "other.internal") << b.out;
  EXPECT_EQ(b.verify_code(), 0) << b.out;
  // s_client's resumption check works against s_server.
  const std::string sess = pki.dir() + "/s.sess";
  SClient first = s_client(server.port(), {"-servername", "srv.internal", "-sess_out", sess});
  EXPECT_FALSE(first.reused());
  SClient again = s_client(server.port(), {"-servername", "srv.internal", "-sess_in", sess});
  EXPECT_TRUE(again.reused()) << again.out;
  // curl against it.
  CurlResult r = curl_https(server.port(), "srv.internal", "/id.txt", pki.root_ca());
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "s1\n");
}

// ---------------------------------------------------------------------------
// weir with TLS binds.

class Tls : public ::testing::Test {
 protected:
  void SetUp() override {
    ignore_sigpipe();
    port_ = free_tcp_port();
    mon_port_ = free_tcp_port();
    pki_ = std::make_unique<TestPki>();
    dir_ = pki_->dir();
  }
  void TearDown() override {
    weir_.reset();
    pki_.reset();
  }

  // global (threads_, an access log on stdout in log_format_, a master socket, an admin and
  // a user runtime-API endpoint, global_extra_) followed by body; @PORT@, @MON@, @DIR@,
  // @ROOT@ (the server CA), @CLIENTCA@ and the keys of vars are replaced (vars first).
  std::string config(const std::string& body, const Vars& vars = {},
                     const std::string& instance = "") const {
    std::string y = "global:\n  threads: " + std::to_string(threads_) +
                    "\n  log: [{target: stdout, format: " + log_format_ + "}]\n" +
                    "  master_socket: " + dir_ + "/master" + instance + ".sock\n" +
                    "  runtime_api:\n    - {address: " + dir_ + "/admin" + instance +
                    ".sock, level: admin}\n    - {address: " + dir_ + "/user" + instance +
                    ".sock, level: user}\n" + global_extra_;
    Vars all = vars;
    all.emplace_back("@PORT@", std::to_string(port_));
    all.emplace_back("@MON@", std::to_string(mon_port_));
    all.emplace_back("@DIR@", dir_);
    all.emplace_back("@ROOT@", pki_->root_ca());
    all.emplace_back("@CLIENTCA@", pki_->client_ca());
    return replace_all(y + body, all);
  }
  bool start(const std::string& body, const Vars& vars = {}, const std::string& instance = "") {
    weir_ = WeirProcess::start(config(body, vars, instance));
    return weir_ != nullptr;
  }
  // An http frontend "web" on @PORT@ whose one bind has the tls flow map `tls`, in front of
  // backend "app" (one server at `origin`); `frontend_extra` goes inside the frontend,
  // `more` after it all (more frontends under a "frontends:" it opens itself, backends...).
  static std::string web(const std::string& tls, const std::string& origin,
                         const std::string& frontend_extra = "", const std::string& more = "") {
    return "frontends:\n  web:\n    bind:\n      - address: \"127.0.0.1:@PORT@\"\n        tls: {" +
           tls + "}\n    default_backend: app\n" + frontend_extra +
           "  mon:\n    bind: [\"127.0.0.1:@MON@\"]\n    default_backend: app\n"
           "    metrics: {uri: /metrics}\n"
           "backends:\n  app:\n    servers: {s1: \"" +
           origin + "\"}\n" + more;
  }

  SClient sc(const std::vector<std::string>& args,
             std::optional<std::string> input = std::nullopt) {
    return s_client(port_, args, std::move(input));
  }
  CurlResult curl(const std::string& name, const std::string& path,
                  const std::vector<std::string>& extra = {}) {
    return curl_https(port_, name, path, pki_->root_ca(), extra);
  }
  static std::string get(const std::string& path) {
    return "GET " + path + " HTTP/1.1\r\nHost: weir-test\r\nConnection: close\r\n\r\n";
  }

  // Waits until at least n access-log lines match regex and returns every matching line.
  std::vector<std::string> log_lines(const std::string& regex, size_t n = 1,
                                     int timeout_ms = 10000) {
    std::vector<std::string> lines;
    wait_until(
        [&] {
          lines = matching_lines(weir_->stdout_text(), regex);
          return lines.size() >= n;
        },
        timeout_ms);
    return lines;
  }
  std::string admin() const { return dir_ + "/admin.sock"; }
  std::string user_api() const { return dir_ + "/user.sock"; }
  std::string master_cli(const std::string& command) {
    return unix_command(dir_ + "/master.sock", command);
  }
  // A field of `show info` ("" when absent).
  std::string info(const std::string& field) {
    std::string text = unix_command(admin(), "show info");
    std::smatch m;
    if (std::regex_search(text, m, std::regex("(^|\n)" + field + ": *([^\n]*)"))) return m[2];
    return "";
  }
  std::map<std::string, std::string> stat_row(const std::string& px, const std::string& sv) {
    for (auto& r : parse_stat_csv(unix_command(admin(), "show stat")))
      if (r["pxname"] == px && r["svname"] == sv) return r;
    return {};
  }
  std::string metrics() {
    auto r = http_get(mon_port_, "/metrics");
    return r ? r->body : "";
  }
  // SIGHUP, then waits for the new generation to be ready and the previous worker to leave.
  bool reload() {
    pid_t old = weir_->current_worker();
    size_t n = weir_->ready_workers().size();
    weir_->signal(SIGHUP);
    if (!weir_->wait_ready_count(n + 1, 30000)) return false;
    return wait_until([&] { return ::kill(old, 0) != 0; }, 20000);
  }
  size_t stderr_lines_with_client_address() {
    return count_matching_lines(weir_->stderr_text(), R"(127\.0\.0\.1)");
  }

  int threads_ = 2;
  std::string log_format_ = "text";
  std::string global_extra_;
  uint16_t port_ = 0, mon_port_ = 0;
  std::string dir_;
  std::unique_ptr<TestPki> pki_;
  std::unique_ptr<WeirProcess> weir_;
};

// ---------------------------------------------------------------------------
// Certificates and names

// Files and directories, a key kept apart, a certificate without subjectAltName, the
// first loaded as the default, a single string instead of a list.
TEST_F(Tls, CertificatesFromFilesDirectoriesAndSeparateKeys) {
  OriginServer app("app");
  ASSERT_EQ(::mkdir((dir_ + "/certs").c_str(), 0755), 0);
  Cert first = pki_->server("first", {.dns = {"first.example.com"}});
  Cert second = pki_->server("second", {.dns = {"second.example.com"}});
  Cert third = pki_->server("third", {.dns = {"third.example.com"}, .key = KeyType::rsa});
  Cert legacy = pki_->server("legacy", {.subject = "/O=weir-tests/CN=legacy.example.com"});
  Cert single = pki_->server("single", {.dns = {"single.example.com"}});
  pki_->write("certs/10-first.pem", read_file(first.pem));
  pki_->write("certs/20-second.crt", read_file(second.bundle));   // key apart:
  pki_->write("certs/20-second.crt.key", read_file(second.key));  // <file>.key
  pki_->write("certs/30-notes.txt", "not a certificate, not loaded\n");
  pki_->write("certs/40-third.pem", read_file(third.pem));
  uint16_t port2 = free_tcp_port();
  ASSERT_TRUE(start(R"y(frontends:
  web:
    bind:
      - address: "127.0.0.1:@PORT@"
        tls: {certificates: [@DIR@/certs/, @LEGACY@]}
      - address: "127.0.0.1:@PORT2@"
        tls: {certificates: @SINGLE@}
    default_backend: app
backends:
  app:
    servers: {s1: "@APP@"}
)y",
                    {{"@LEGACY@", legacy.pem},
                     {"@SINGLE@", single.pem},
                     {"@PORT2@", std::to_string(port2)},
                     {"@APP@", app.address()}}));
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"first.example.com", "first.example.com"},   {"second.example.com", "second.example.com"},
      {"third.example.com", "third.example.com"},   {"legacy.example.com", "legacy.example.com"},
      {"LEGACY.example.com", "legacy.example.com"}, {"other.example.com", "first.example.com"},
  };
  for (const auto& [name, cn] : cases) {
    SClient c = sc({"-servername", name, "-CAfile", pki_->root_ca()}, "");
    EXPECT_EQ(c.cn(), cn) << name << "\n" << c.out << c.err;
    EXPECT_EQ(c.verify_code(), 0) << name << "\n" << c.out;
  }
  // No name: the first certificate loaded (the directory's first file, in name order).
  SClient none = sc({"-noservername"}, "");
  EXPECT_EQ(none.cn(), "first.example.com") << none.out;
  SClient rsa = sc({"-servername", "third.example.com"}, "");
  EXPECT_EQ(rsa.server_key_bits(), 2048) << rsa.out;
  // curl checks the names, including the CN-only certificate's.
  for (const char* name : {"second.example.com", "legacy.example.com"}) {
    CurlResult r = curl(name, "/");
    EXPECT_EQ(r.status, 200) << name << ": " << r.err;
  }
  // The second bind has only the single certificate, for every name.
  SClient s = s_client(port2, {"-servername", "first.example.com"}, "");
  EXPECT_EQ(s.cn(), "single.example.com") << s.out;
}

// Exact beats wildcard whatever the order; a wildcard covers one label only.
TEST_F(Tls, SniPrefersExactNamesThenWildcardsThenTheDefault) {
  OriginServer app("app");
  Cert wild = pki_->server("wild", {.dns = {"*.example.com"}, .subject = "/O=weir-tests/CN=wild"});
  Cert exact = pki_->server("exact", {.dns = {"a.example.com"}});
  Cert multi = pki_->server("multi", {.dns = {"shop.test", "*.shop.test"}});
  Cert fallback = pki_->server("fallback", {.dns = {"default.test"}});
  log_format_ = "'%[ssl_sni] %[ssl_fc] %HP'";
  ASSERT_TRUE(start(
      web("certificates: [@WILD@, @EXACT@, @MULTI@], default_certificate: @DEF@", app.address()),
      {{"@WILD@", wild.pem},
       {"@EXACT@", exact.pem},
       {"@MULTI@", multi.pem},
       {"@DEF@", fallback.pem}}));
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"a.example.com", "a.example.com"}, {"b.example.com", "wild"},
      {"B.EXAMPLE.COM", "wild"},          {"a.b.example.com", "default.test"},
      {"example.com", "default.test"},    {"shop.test", "shop.test"},
      {"www.shop.test", "shop.test"},     {"x.www.shop.test", "default.test"},
      {"default.test", "default.test"},   {"nowhere.test", "default.test"},
  };
  for (const auto& [name, cn] : cases) {
    SClient c = sc({"-servername", name}, "");
    EXPECT_EQ(c.cn(), cn) << name << "\n" << c.out << c.err;
  }
  // The name the client sent is ssl_sni, as sent; empty without SNI.
  SClient c = sc({"-servername", "b.example.com"}, get("/sni"));
  EXPECT_TRUE(c.has("HTTP/1.1 200")) << c.out;
  SClient n = sc({"-noservername"}, get("/nosni"));
  EXPECT_TRUE(n.has("HTTP/1.1 200")) << n.out;
  auto lines = log_lines(" /(no)?sni$", 2);
  ASSERT_EQ(lines.size(), 2u) << weir_->stdout_text();
  EXPECT_EQ(lines[0], "b.example.com 1 /sni");
  EXPECT_TRUE(lines[1] == "- 1 /nosni" || lines[1] == " 1 /nosni") << lines[1];
}

// An ECDSA and an RSA certificate for the same name: ECDSA to clients that can, RSA to others.
TEST_F(Tls, EcdsaAndRsaCertificatesForTheSameNameAreServedTogether) {
  OriginServer app("app");
  Cert rsa = pki_->server(
      "dual-rsa",
      {.dns = {"dual.example.com"}, .subject = "/O=rsa/CN=dual.example.com", .key = KeyType::rsa});
  Cert ec = pki_->server("dual-ec",
                         {.dns = {"dual.example.com"}, .subject = "/O=ecdsa/CN=dual.example.com"});
  // RSA listed first: being first is not what makes ECDSA win.
  ASSERT_TRUE(start(web("certificates: [@RSA@, @EC@]", app.address()),
                    {{"@RSA@", rsa.pem}, {"@EC@", ec.pem}}));
  for (const char* version : {"-tls1_3", "-tls1_2"}) {
    SClient c = sc({version, "-servername", "dual.example.com", "-CAfile", pki_->root_ca()});
    EXPECT_EQ(c.server_key_bits(), 256) << version << "\n" << c.out;
    EXPECT_NE(c.subject().find("O = ecdsa"), std::string::npos) << version << "\n" << c.out;
    EXPECT_EQ(c.verify_code(), 0) << c.out;
    EXPECT_TRUE(c.has("HTTP/1.1 200")) << c.out;
  }
  // A TLS 1.2 client limited to RSA signatures and an RSA key exchange cipher.
  SClient r12 = sc({"-tls1_2", "-cipher", "ECDHE-RSA-AES128-GCM-SHA256", "-sigalgs",
                    "RSA-PSS+SHA256:RSA+SHA256", "-servername", "dual.example.com", "-CAfile",
                    pki_->root_ca()});
  EXPECT_TRUE(r12.handshake()) << r12.out << r12.err;
  EXPECT_EQ(r12.server_key_bits(), 2048) << r12.out;
  EXPECT_NE(r12.subject().find("O = rsa"), std::string::npos) << r12.out;
  EXPECT_EQ(r12.cipher(), "ECDHE-RSA-AES128-GCM-SHA256");
  EXPECT_EQ(r12.verify_code(), 0) << r12.out;
  EXPECT_TRUE(r12.has("HTTP/1.1 200")) << r12.out;
  // A TLS 1.3 client that accepts only RSA-PSS signatures.
  SClient r13 = sc(
      {"-tls1_3", "-sigalgs", "RSA-PSS+SHA256:RSA-PSS+SHA384", "-servername", "dual.example.com"});
  EXPECT_TRUE(r13.handshake()) << r13.out << r13.err;
  EXPECT_EQ(r13.server_key_bits(), 2048) << r13.out;
  EXPECT_TRUE(r13.has("HTTP/1.1 200")) << r13.out;
  // curl, as it comes.
  CurlResult cr = curl("dual.example.com", "/");
  EXPECT_EQ(cr.status, 200) << cr.err;
}

// ---------------------------------------------------------------------------
// ALPN, versions, ciphers, curves

TEST_F(Tls, AlpnOffersHttp11InHttpModeAndToleratesClientsWithoutIt) {
  OriginServer app("app");
  Cert site = pki_->server("site", {.dns = {"site.example.com"}});
  log_format_ = "'%[ssl_alpn] %ST %HP'";
  ASSERT_TRUE(start(web("certificates: [@SITE@]", app.address()), {{"@SITE@", site.pem}}));
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"-alpn", "http/1.1"}, "http/1.1"},
      {{"-alpn", "h2,http/1.1"}, "http/1.1"},
      {{"-alpn", "h2"}, ""},  // nothing in common: a connection without ALPN
      {{}, ""},
  };
  int i = 0;
  for (const auto& [args, expected] : cases) {
    std::vector<std::string> a = args;
    a.insert(a.end(), {"-servername", "site.example.com"});
    SClient c = sc(a, get("/alpn" + std::to_string(++i)));
    EXPECT_TRUE(c.handshake()) << c.out << c.err;
    EXPECT_EQ(c.alpn(), expected) << ::testing::PrintToString(args) << "\n" << c.out;
    if (expected.empty()) {
      EXPECT_TRUE(c.has("No ALPN negotiated")) << c.out;
    }
    EXPECT_TRUE(c.has("HTTP/1.1 200")) << c.out;
  }
  auto lines = log_lines(" /alpn[0-9]$", 4);
  ASSERT_EQ(lines.size(), 4u) << weir_->stdout_text();
  EXPECT_EQ(lines[0], "http/1.1 200 /alpn1");
  EXPECT_EQ(lines[1], "http/1.1 200 /alpn2");
  EXPECT_TRUE(lines[2] == "- 200 /alpn3" || lines[2] == " 200 /alpn3") << lines[2];
  EXPECT_EQ(app.requests().size(), 4u);
}

TEST_F(Tls, AlpnIsOffByDefaultInTcpModeAndFollowsTheServersPreference) {
  OriginServer app("app");
  Cert site = pki_->server("site", {.dns = {"site.example.com"}});
  uint16_t port2 = free_tcp_port();
  ASSERT_TRUE(
      start(R"y(frontends:
  raw:
    mode: tcp
    bind:
      - address: "127.0.0.1:@PORT@"
        tls: {certificates: [@SITE@]}
      - address: "127.0.0.1:@PORT2@"
        tls: {certificates: [@SITE@], alpn: [imap, http/1.1]}
    default_backend: app
backends:
  app:
    mode: tcp
    servers: {s1: "@APP@"}
)y",
            {{"@SITE@", site.pem}, {"@PORT2@", std::to_string(port2)}, {"@APP@", app.address()}}));
  SClient none = sc({"-alpn", "http/1.1"});
  EXPECT_TRUE(none.handshake()) << none.out << none.err;
  EXPECT_EQ(none.alpn(), "");
  EXPECT_TRUE(none.has("HTTP/1.1 200")) << none.out;  // the bytes went through
  SClient h = s_client(port2, {"-alpn", "http/1.1"});
  EXPECT_EQ(h.alpn(), "http/1.1") << h.out;
  SClient pref = s_client(port2, {"-alpn", "http/1.1,imap"});
  EXPECT_EQ(pref.alpn(), "imap") << pref.out;
  SClient other = s_client(port2, {"-alpn", "h2"});
  EXPECT_TRUE(other.handshake()) << other.out << other.err;
  EXPECT_EQ(other.alpn(), "");
}

TEST_F(Tls, Tls13AndTls12BothWorkByDefaultAndAreLogged) {
  OriginServer app("app");
  Cert site = pki_->server("site", {.dns = {"site.example.com"}});
  log_format_ = "'%[ssl_version] %[ssl_cipher] %HP'";
  ASSERT_TRUE(start(web("certificates: [@SITE@]", app.address()), {{"@SITE@", site.pem}}));
  SClient t13 = sc({"-tls1_3", "-servername", "site.example.com"}, get("/v13"));
  EXPECT_EQ(t13.protocol(), "TLSv1.3") << t13.out << t13.err;
  EXPECT_TRUE(t13.has("HTTP/1.1 200"));
  SClient t12 = sc({"-tls1_2", "-servername", "site.example.com"}, get("/v12"));
  EXPECT_EQ(t12.protocol(), "TLSv1.2") << t12.out << t12.err;
  EXPECT_TRUE(t12.has("HTTP/1.1 200"));
  auto lines = log_lines(" /v1[23]$", 2);
  ASSERT_EQ(lines.size(), 2u) << weir_->stdout_text();
  EXPECT_EQ(lines[0], "TLSv1.3 " + t13.cipher() + " /v13");
  EXPECT_EQ(lines[1], "TLSv1.2 " + t12.cipher() + " /v12");
  CurlResult c = curl("site.example.com", "/", {"--tlsv1.2", "--tls-max", "1.2"});
  EXPECT_EQ(c.status, 200) << c.err;
}

TEST_F(Tls, MinVersionTls13RefusesTls12ClientsAndCountsTheFailures) {
  OriginServer app("app");
  Cert site = pki_->server("site", {.dns = {"site.example.com"}});
  ASSERT_TRUE(start(web("certificates: [@SITE@], min_version: TLSv1.3", app.address()),
                    {{"@SITE@", site.pem}}));
  EXPECT_EQ(info("SslHandshakeFailures"), "0") << unix_command(admin(), "show info");
  SClient t12 = sc({"-tls1_2", "-servername", "site.example.com"});
  EXPECT_FALSE(t12.handshake()) << t12.out;
  EXPECT_FALSE(t12.has("HTTP/1.1 200"));
  CurlResult c = curl("site.example.com", "/", {"--tlsv1.2", "--tls-max", "1.2"});
  EXPECT_NE(c.exit_code, 0);
  EXPECT_EQ(c.status, 0);
  SClient t13 = sc({"-tls1_3", "-servername", "site.example.com"});
  EXPECT_EQ(t13.protocol(), "TLSv1.3") << t13.out << t13.err;
  EXPECT_TRUE(t13.has("HTTP/1.1 200"));
  EXPECT_EQ(app.requests().size(), 1u);
  // Counted and logged, with the client's address and OpenSSL's reason.
  EXPECT_TRUE(wait_until([&] { return info("SslHandshakeFailures") == "2"; }, 10000))
      << unix_command(admin(), "show info");
  auto samples = metric_samples(metrics(), "weir_frontend_tls_handshake_failures_total");
  bool found = false;
  for (const auto& [labels, value] : samples) {
    if (labels.find("proxy=\"web\"") == std::string::npos) continue;
    found = true;
    EXPECT_EQ(value, 2) << labels;
  }
  EXPECT_TRUE(found) << metrics();
  EXPECT_TRUE(weir_->wait_for_stderr(R"(127\.0\.0\.1.*unsupported protocol)", 10000))
      << weir_->stderr_text();
}

TEST_F(Tls, MaxVersionTls12RefusesTls13OnlyClients) {
  OriginServer app("app");
  Cert site = pki_->server("site", {.dns = {"site.example.com"}});
  ASSERT_TRUE(start(web("certificates: [@SITE@], max_version: TLSv1.2", app.address()),
                    {{"@SITE@", site.pem}}));
  SClient t13 = sc({"-tls1_3", "-servername", "site.example.com"});
  EXPECT_FALSE(t13.handshake()) << t13.out;
  SClient any = sc({"-servername", "site.example.com"});
  EXPECT_EQ(any.protocol(), "TLSv1.2") << any.out << any.err;
  EXPECT_TRUE(any.has("HTTP/1.1 200"));
  EXPECT_EQ(app.requests().size(), 1u);
}

TEST_F(Tls, CiphersAndCiphersuitesAreHonoured) {
  OriginServer app("app");
  Cert site = pki_->server("site", {.dns = {"site.example.com"}});
  ASSERT_TRUE(start(web("certificates: [@SITE@], ciphers: \"ECDHE-ECDSA-AES256-GCM-SHA384\", "
                        "ciphersuites: \"TLS_CHACHA20_POLY1305_SHA256\"",
                        app.address()),
                    {{"@SITE@", site.pem}}));
  SClient t12 = sc({"-tls1_2"});
  EXPECT_EQ(t12.cipher(), "ECDHE-ECDSA-AES256-GCM-SHA384") << t12.out << t12.err;
  EXPECT_TRUE(t12.has("HTTP/1.1 200"));
  SClient t12_other = sc({"-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-GCM-SHA256"});
  EXPECT_FALSE(t12_other.handshake()) << t12_other.out;
  SClient t13 = sc({"-tls1_3"});
  EXPECT_EQ(t13.cipher(), "TLS_CHACHA20_POLY1305_SHA256") << t13.out << t13.err;
  EXPECT_TRUE(t13.has("HTTP/1.1 200"));
  SClient t13_other = sc({"-tls1_3", "-ciphersuites", "TLS_AES_128_GCM_SHA256"});
  EXPECT_FALSE(t13_other.handshake()) << t13_other.out;
  EXPECT_EQ(app.requests().size(), 2u);
}

TEST_F(Tls, CurvesAreHonoured) {
  OriginServer app("app");
  Cert site = pki_->server("site", {.dns = {"site.example.com"}});
  ASSERT_TRUE(start(web("certificates: [@SITE@], curves: \"P-384\"", app.address()),
                    {{"@SITE@", site.pem}}));
  // In TLS 1.2 the client's groups also name the curves of ECDSA certificates it accepts:
  // the TLS 1.2 clients list P-256, the certificate's curve, too.
  for (const char* version : {"-tls1_3", "-tls1_2"}) {
    const bool v12 = std::string(version) == "-tls1_2";
    SClient x = sc({version, "-groups", v12 ? "X25519:P-256" : "X25519"});
    EXPECT_FALSE(x.handshake()) << version << x.out;
    SClient p = sc({version, "-groups", v12 ? "P-384:P-256" : "P-384"});
    EXPECT_TRUE(p.handshake()) << version << p.out << p.err;
    EXPECT_TRUE(p.has("Server Temp Key: ECDH, secp384r1")) << p.out;
    EXPECT_TRUE(p.has("HTTP/1.1 200"));
    SClient d = sc({version});  // offers X25519 first, P-384 among others
    EXPECT_TRUE(d.has("Server Temp Key: ECDH, secp384r1")) << version << d.out << d.err;
  }
}

// ---------------------------------------------------------------------------
// Resumption

// Each client resumes with the session of the previous one (as browsers do), several times,
// so that both threads see resumptions.
TEST_F(Tls, TicketsResumeTls13AndTls12Sessions) {
  OriginServer app("app");
  Cert site = pki_->server("site", {.dns = {"site.example.com"}});
  ASSERT_TRUE(start(web("certificates: [@SITE@]", app.address()), {{"@SITE@", site.pem}}));
  for (const char* version : {"-tls1_3", "-tls1_2"}) {
    std::string sess = dir_ + "/" + std::string(version + 1) + ".sess";
    SClient first = sc({version, "-servername", "site.example.com", "-sess_out", sess});
    ASSERT_TRUE(first.handshake()) << first.out << first.err;
    EXPECT_FALSE(first.reused());
    for (int i = 0; i < 6; ++i) {
      SClient next =
          sc({version, "-servername", "site.example.com", "-sess_in", sess, "-sess_out", sess});
      EXPECT_TRUE(next.reused()) << version << " #" << i << "\n" << next.out;
      EXPECT_TRUE(next.has("HTTP/1.1 200"));
    }
  }
}

TEST_F(Tls, SessionCacheResumesTls12WithoutTickets) {
  OriginServer app("app");
  Cert site = pki_->server("site", {.dns = {"site.example.com"}});
  ASSERT_TRUE(start(web("certificates: [@SITE@]", app.address()), {{"@SITE@", site.pem}}));
  std::string sess = dir_ + "/cache.sess";
  SClient first = sc({"-tls1_2", "-no_ticket", "-sess_out", sess});
  ASSERT_TRUE(first.handshake()) << first.out << first.err;
  EXPECT_FALSE(first.reused());
  // The same session id again and again, whichever thread accepts.
  for (int i = 0; i < 6; ++i) {
    SClient next = sc({"-tls1_2", "-no_ticket", "-sess_in", sess});
    EXPECT_TRUE(next.reused()) << "#" << i << "\n" << next.out;
  }
}

TEST_F(Tls, TicketsAndTheSessionCacheCanEachBeTurnedOff) {
  OriginServer app("app");
  Cert site = pki_->server("site", {.dns = {"site.example.com"}});
  uint16_t no_tickets = free_tcp_port(), no_cache = free_tcp_port();
  ASSERT_TRUE(start(R"y(frontends:
  web:
    bind:
      - address: "127.0.0.1:@PORT@"
        tls: {certificates: [@SITE@], session_tickets: false, session_cache: 0}
      - address: "127.0.0.1:@NOTICKETS@"
        tls: {certificates: [@SITE@], session_tickets: false}
      - address: "127.0.0.1:@NOCACHE@"
        tls: {certificates: [@SITE@], session_cache: 0}
    default_backend: app
backends:
  app:
    servers: {s1: "@APP@"}
)y",
                    {{"@SITE@", site.pem},
                     {"@NOTICKETS@", std::to_string(no_tickets)},
                     {"@NOCACHE@", std::to_string(no_cache)},
                     {"@APP@", app.address()}}));
  // Returns whether a second TLS 1.2 connection with the first one's session resumes.
  auto resumes = [&](uint16_t port, bool client_tickets) {
    std::string sess = dir_ + "/t" + std::to_string(port) + (client_tickets ? "t" : "n") + ".sess";
    std::vector<std::string> args = {"-tls1_2"};
    if (!client_tickets) args.push_back("-no_ticket");
    std::vector<std::string> out = args, in = args;
    out.insert(out.end(), {"-sess_out", sess});
    in.insert(in.end(), {"-sess_in", sess});
    SClient first = s_client(port, out);
    EXPECT_TRUE(first.handshake()) << first.out << first.err;
    return s_client(port, in).reused();
  };
  EXPECT_FALSE(resumes(port_, true));
  EXPECT_FALSE(resumes(port_, false));
  EXPECT_TRUE(resumes(no_tickets, true));  // the session id and the cache still work
  EXPECT_TRUE(resumes(no_tickets, false));
  EXPECT_TRUE(resumes(no_cache, true));  // the ticket works
  EXPECT_FALSE(resumes(no_cache, false));
}

TEST_F(Tls, SessionTimeoutEndsResumption) {
  OriginServer app("app");
  Cert site = pki_->server("site", {.dns = {"site.example.com"}});
  ASSERT_TRUE(start(web("certificates: [@SITE@], session_timeout: 10s", app.address()),
                    {{"@SITE@", site.pem}}));
  const std::vector<std::vector<std::string>> kinds = {
      {"-tls1_3"}, {"-tls1_2"}, {"-tls1_2", "-no_ticket"}};
  std::vector<std::string> sessions;
  for (size_t i = 0; i < kinds.size(); ++i) {
    std::string sess = dir_ + "/timeout" + std::to_string(i) + ".sess";
    std::vector<std::string> out = kinds[i], in = kinds[i];
    out.insert(out.end(), {"-sess_out", sess});
    in.insert(in.end(), {"-sess_in", sess});
    ASSERT_TRUE(sc(out).handshake());
    EXPECT_TRUE(sc(in).reused()) << ::testing::PrintToString(kinds[i]);
    sessions.push_back(sess);
  }
  // The event: each session stops resuming once its 10 s are over. Offering it
  // again does not renew it (its time is when it was made), so the test asks
  // once a second until the server declines it, within a deadline far below
  // the 300 s default that a timeout left unapplied would give.
  for (size_t i = 0; i < kinds.size(); ++i) {
    std::vector<std::string> in = kinds[i];
    in.insert(in.end(), {"-sess_in", sessions[i]});
    SClient late;
    EXPECT_TRUE(wait_until(
        [&] {
          late = sc(in);
          return late.handshake() && !late.reused();
        },
        60000, 1000))
        << ::testing::PrintToString(kinds[i]) << "\n"
        << late.out;
  }
}

// Tickets come from the master's secret: a reload (SIGHUP or the master CLI) keeps them
// valid. The session cache is per worker: a reload empties it.
TEST_F(Tls, TicketsSurviveReloadsTheSessionCacheDoesNot) {
  OriginServer app("app");
  Cert site = pki_->server("site", {.dns = {"site.example.com"}});
  ASSERT_TRUE(start(web("certificates: [@SITE@]", app.address()), {{"@SITE@", site.pem}}));
  const std::string t13 = dir_ + "/t13.sess", t12 = dir_ + "/t12.sess", id12 = dir_ + "/id.sess";
  ASSERT_TRUE(sc({"-tls1_3", "-sess_out", t13}).handshake());
  ASSERT_TRUE(sc({"-tls1_2", "-sess_out", t12}).handshake());
  ASSERT_TRUE(sc({"-tls1_2", "-no_ticket", "-sess_out", id12}).handshake());
  ASSERT_TRUE(sc({"-tls1_2", "-no_ticket", "-sess_in", id12}).reused());

  ASSERT_TRUE(reload()) << weir_->stderr_text();
  EXPECT_EQ(weir_->current_generation(), 2);
  SClient r13 = sc({"-tls1_3", "-sess_in", t13});
  EXPECT_TRUE(r13.reused()) << r13.out;
  EXPECT_TRUE(r13.has("HTTP/1.1 200"));
  SClient r12 = sc({"-tls1_2", "-sess_in", t12});
  EXPECT_TRUE(r12.reused()) << r12.out;
  SClient rid = sc({"-tls1_2", "-no_ticket", "-sess_in", id12});
  EXPECT_TRUE(rid.handshake()) << rid.out;
  EXPECT_FALSE(rid.reused()) << rid.out;

  // Through the master CLI, with the same sessions from before the first reload.
  std::string out = master_cli("reload");
  ASSERT_EQ(out.rfind("Success=1", 0), 0u) << out;
  EXPECT_EQ(weir_->current_generation(), 3);
  EXPECT_TRUE(sc({"-tls1_3", "-sess_in", t13}).reused());
  EXPECT_TRUE(sc({"-tls1_2", "-sess_in", t12}).reused());
}

// Two instances with the same global.tls_ticket_secret_file accept each other's tickets;
// a third one, with its own secret, does not.
TEST_F(Tls, TicketSecretFileSharesTicketsBetweenInstances) {
  OriginServer app("app");
  Cert site = pki_->server("site", {.dns = {"site.example.com"}});
  CommandResult key =
      run_command({"sh", "-c", "head -c 48 /dev/urandom > " + dir_ + "/ticket.key"});
  ASSERT_EQ(key.exit_code, 0) << key.err;
  global_extra_ = "  tls_ticket_secret_file: @DIR@/ticket.key\n";
  ASSERT_TRUE(start(web("certificates: [@SITE@]", app.address()), {{"@SITE@", site.pem}}));
  uint16_t port_b = free_tcp_port(), port_c = free_tcp_port();
  auto b = WeirProcess::start(config(web("certificates: [@SITE@]", app.address()),
                                     {{"@SITE@", site.pem},
                                      {"@PORT@", std::to_string(port_b)},
                                      {"@MON@", std::to_string(free_tcp_port())}},
                                     "b"));
  ASSERT_TRUE(b);
  global_extra_ = "";
  auto c = WeirProcess::start(config(web("certificates: [@SITE@]", app.address()),
                                     {{"@SITE@", site.pem},
                                      {"@PORT@", std::to_string(port_c)},
                                      {"@MON@", std::to_string(free_tcp_port())}},
                                     "c"));
  ASSERT_TRUE(c);
  for (const char* version : {"-tls1_3", "-tls1_2"}) {
    std::string sess = dir_ + "/shared" + std::string(version) + ".sess";
    ASSERT_TRUE(sc({version, "-servername", "site.example.com", "-sess_out", sess}).handshake());
    SClient on_b = s_client(port_b, {version, "-servername", "site.example.com", "-sess_in", sess});
    EXPECT_TRUE(on_b.reused()) << version << "\n" << on_b.out;
    EXPECT_TRUE(on_b.has("HTTP/1.1 200"));
    SClient on_c = s_client(port_c, {version, "-servername", "site.example.com", "-sess_in", sess});
    EXPECT_TRUE(on_c.handshake()) << on_c.out;
    EXPECT_FALSE(on_c.reused()) << version << "\n" << on_c.out;
  }
}

// ---------------------------------------------------------------------------
// Client certificates

TEST_F(Tls, RequiredClientCertificateFromTheCaOnly) {
  OriginServer app("app");
  Cert site = pki_->server("site", {.dns = {"site.example.com"}});
  Cert alice = pki_->client("alice", {.subject = "/C=FR/O=weir-tests/CN=alice"});
  Cert mallory = pki_->untrusted_client("mallory", {.subject = "/C=FR/O=elsewhere/CN=mallory"});
  Cert old = pki_->client("old", {.subject = "/C=FR/O=weir-tests/CN=old",
                                  .not_before = "20200101000000Z",
                                  .not_after = "20210101000000Z"});
  ASSERT_TRUE(
      start(web("certificates: [@SITE@], verify: required, ca_file: @CLIENTCA@", app.address()),
            {{"@SITE@", site.pem}}));
  const size_t logged_before = stderr_lines_with_client_address();
  CurlResult none = curl("site.example.com", "/none");
  EXPECT_NE(none.exit_code, 0);
  EXPECT_EQ(none.status, 0) << none.head;
  CurlResult wrong = curl("site.example.com", "/mallory", {"--cert", mallory.pem});
  EXPECT_NE(wrong.exit_code, 0);
  EXPECT_EQ(wrong.status, 0) << wrong.head;
  CurlResult expired = curl("site.example.com", "/old", {"--cert", old.pem});
  EXPECT_NE(expired.exit_code, 0);
  EXPECT_EQ(expired.status, 0) << expired.head;
  SClient plain = sc({"-servername", "site.example.com"}, get("/sclient-none"));
  EXPECT_FALSE(plain.has("HTTP/1.1 200")) << plain.out;

  CurlResult ok = curl("site.example.com", "/alice", {"--cert", alice.pem});
  EXPECT_EQ(ok.status, 200) << ok.err;
  SClient good = sc({"-cert", alice.cert, "-key", alice.key}, get("/sclient-alice"));
  EXPECT_TRUE(good.has("HTTP/1.1 200")) << good.out << good.err;
  ASSERT_EQ(app.requests().size(), 2u);
  EXPECT_EQ(app.requests()[0].target, "/alice");
  EXPECT_EQ(app.requests()[1].target, "/sclient-alice");

  // Four failed handshakes, counted and logged with the client's address and the reason.
  EXPECT_TRUE(wait_until([&] { return info("SslHandshakeFailures") == "4"; }, 10000))
      << unix_command(admin(), "show info");
  EXPECT_TRUE(
      wait_until([&] { return stderr_lines_with_client_address() >= logged_before + 4; }, 10000))
      << weir_->stderr_text();
  EXPECT_TRUE(weir_->wait_for_stderr(R"(127\.0\.0\.1.*peer did not return a certificate)", 5000))
      << weir_->stderr_text();
  EXPECT_TRUE(weir_->wait_for_stderr(R"(127\.0\.0\.1.*certificate verify failed)", 5000))
      << weir_->stderr_text();
}

// crl_file: a revoked certificate is refused; the CRL is read again at each reload.
TEST_F(Tls, RevokedClientCertificatesAreRefusedAndTheCrlIsReadAgainOnReload) {
  OriginServer app("app");
  Cert site = pki_->server("site", {.dns = {"site.example.com"}});
  Cert alice = pki_->client("alice", {.subject = "/C=FR/O=weir-tests/CN=alice"});
  Cert bob = pki_->client("bob", {.subject = "/C=FR/O=weir-tests/CN=bob"});
  const std::string crl = dir_ + "/clients.crl";
  write_file(crl, read_file(pki_->revoke_client(bob)));
  ASSERT_TRUE(start(web("certificates: [@SITE@], verify: required, ca_file: @CLIENTCA@, "
                        "crl_file: @CRL@",
                        app.address()),
                    {{"@SITE@", site.pem}, {"@CRL@", crl}}));
  CurlResult b = curl("site.example.com", "/bob", {"--cert", bob.pem});
  EXPECT_NE(b.exit_code, 0);
  EXPECT_EQ(b.status, 0) << b.head;
  CurlResult a = curl("site.example.com", "/alice", {"--cert", alice.pem});
  EXPECT_EQ(a.status, 200) << a.err;

  // Alice is revoked too; the operator replaces the CRL and reloads.
  write_file(crl, read_file(pki_->revoke_client(alice)));
  ASSERT_TRUE(reload()) << weir_->stderr_text();
  CurlResult a2 = curl("site.example.com", "/alice-again", {"--cert", alice.pem});
  EXPECT_NE(a2.exit_code, 0);
  EXPECT_EQ(a2.status, 0) << a2.head;
  ASSERT_EQ(app.requests().size(), 1u);
  EXPECT_EQ(app.requests()[0].target, "/alice");
}

// verify: optional with the doc's rule (deny unless ssl_c_verify 0), and every client fetch
// in the access log.
TEST_F(Tls, OptionalClientCertificateFetchesInTheLogAndInRules) {
  OriginServer app("app");
  Cert site = pki_->server("site", {.dns = {"site.example.com"}});
  Cert alice = pki_->client("alice", {.subject = "/C=FR/O=weir-tests/CN=alice"});
  Cert carol = pki_->client("carol", {.subject = "/C=FR/O=weir-tests/CN=carol"});
  Cert mallory = pki_->untrusted_client("mallory", {.subject = "/C=FR/O=elsewhere/CN=mallory"});
  Cert old = pki_->client("old", {.subject = "/C=FR/O=weir-tests/CN=old",
                                  .not_before = "20200101000000Z",
                                  .not_after = "20210101000000Z"});
  const std::string crl = pki_->revoke_client(carol);
  log_format_ =
      "'%HP|%ST|%[ssl_c_used]|%[ssl_c_verify]|%[ssl_c_s_dn]|%[ssl_c_i_dn]|%[ssl_c_serial]|"
      "%[ssl_version]|%[ssl_cipher]|%[ssl_sni]|%[ssl_fc]'";
  ASSERT_TRUE(start(web("certificates: [@SITE@], verify: optional, ca_file: @CLIENTCA@, "
                        "crl_file: @CRL@",
                        app.address(),
                        "    http_request:\n"
                        "      - deny: {status: 403}\n"
                        "        unless: \"{ ssl_c_verify 0 }\"\n"),
                    {{"@SITE@", site.pem}, {"@CRL@", crl}}));
  struct Case {
    std::string path;
    const Cert* cert;
    int status;
    int verify;
  };
  // OpenSSL's numbers for the one thing wrong with each. An unknown issuer can be reported
  // as 20 (the first error) or 21 (the last one, once verification goes on), or as 3 (no
  // CRL for that issuer) when verification goes on with crl_file set: -1 below, any of them.
  const int untrusted = -1;
  const int revoked = openssl_verify(pki_->client_ca(), carol.cert, "", crl);
  const int expired = openssl_verify(pki_->client_ca(), old.cert);
  ASSERT_EQ(revoked, 23);
  ASSERT_EQ(expired, 10);
  const std::vector<Case> cases = {
      {"/none", nullptr, 200, 0},
      {"/alice", &alice, 200, 0},
      {"/mallory", &mallory, 403, untrusted},
      {"/carol", &carol, 403, revoked},
      {"/old", &old, 403, expired},
  };
  for (const Case& c : cases) {
    std::vector<std::string> extra;
    if (c.cert) extra = {"--cert", c.cert->pem};
    CurlResult r = curl("site.example.com", c.path, extra);
    EXPECT_EQ(r.status, c.status) << c.path << ": " << r.err;
  }
  ASSERT_EQ(app.requests().size(), 2u);
  EXPECT_EQ(app.requests()[0].target, "/none");
  EXPECT_EQ(app.requests()[1].target, "/alice");

  auto lines = log_lines(R"(^/(none|alice|mallory|carol|old)\|)", cases.size());
  ASSERT_EQ(lines.size(), cases.size()) << weir_->stdout_text();
  const std::string tail = R"(\|TLSv1\.3\|TLS_[A-Z0-9_]+\|site\.example\.com\|1)";
  EXPECT_TRUE(std::regex_match(lines[0], std::regex(R"(/none\|200\|0\|0\|-\|-\|-)" + tail)))
      << lines[0];
  for (size_t i = 1; i < cases.size(); ++i) {
    const Case& c = cases[i];
    const std::string verify = c.verify >= 0 ? std::to_string(c.verify) : "(20|21|3)";
    const std::string expected =
        std::regex_replace(c.path + "|" + std::to_string(c.status) + "|1|@V@|" + c.cert->subject +
                               "|" + c.cert->issuer + "|" + c.cert->serial,
                           std::regex(R"([|.])"), R"(\$&)");
    EXPECT_TRUE(std::regex_match(
        lines[i], std::regex(std::regex_replace(expected, std::regex("@V@"), verify) + tail)))
        << lines[i] << "\nexpected " << expected << " with " << verify;
  }
}

// The doc's verify: optional example as written (ports and paths are the test's).
TEST_F(Tls, OptionalClientCertificateDocExample) {
  OriginServer app("app");
  Cert site = pki_->server("site", {.dns = {"api.example.com"}});
  Cert alice = pki_->client("alice", {.subject = "/C=FR/O=weir-tests/CN=alice"});
  Cert mallory = pki_->untrusted_client("mallory", {.subject = "/C=FR/O=elsewhere/CN=mallory"});
  ASSERT_TRUE(start(R"y(frontends:
  api:
    bind:
      - address: "127.0.0.1:@PORT@"
        tls:
          certificates: [@SITE@]
          verify: optional
          ca_file: @CLIENTCA@
          client_cert_headers: true
    http_request:
      - deny: {status: 403}
        unless: "{ ssl_c_used } and { ssl_c_verify 0 }"
    default_backend: app
backends:
  app:
    servers: {a: "@APP@"}
)y",
                    {{"@SITE@", site.pem}, {"@APP@", app.address()}}));
  EXPECT_EQ(curl("api.example.com", "/none").status, 403);
  EXPECT_EQ(curl("api.example.com", "/mallory", {"--cert", mallory.pem}).status, 403);
  CurlResult ok = curl("api.example.com", "/alice", {"--cert", alice.pem});
  EXPECT_EQ(ok.status, 200) << ok.err;
  ASSERT_EQ(app.requests().size(), 1u);
  EXPECT_EQ(app.requests()[0].target, "/alice");
  EXPECT_NE(app.requests()[0].header("X-Client-Cert-Subject").find("CN=alice"), std::string::npos)
      << app.requests()[0].head;
}

// client_cert_headers: the server learns who the client is; what a client sends under
// those names never reaches it.
TEST_F(Tls, ClientCertHeadersReachTheServerAndForgedOnesDoNot) {
  OriginServer app("app");
  Cert site = pki_->server("site", {.dns = {"site.example.com"}});
  Cert alice = pki_->client("alice", {.subject = "/C=FR/O=weir-tests/CN=alice"});
  Cert mallory = pki_->untrusted_client("mallory", {.subject = "/C=FR/O=elsewhere/CN=mallory"});
  ASSERT_TRUE(start(web("certificates: [@SITE@], verify: optional, ca_file: @CLIENTCA@, "
                        "client_cert_headers: true",
                        app.address()),
                    {{"@SITE@", site.pem}}));
  const std::vector<std::string> forged = {
      "-H", "X-Client-Cert-Verify: 0",          "-H", "X-Client-Cert-Subject: /CN=forged-admin",
      "-H", "x-client-cert-issuer: /CN=forged", "-H", "X-CLIENT-CERT-SERIAL: F0F0F0"};
  auto with = [&](const Cert* cert) {
    std::vector<std::string> extra = forged;
    if (cert) extra.insert(extra.end(), {"--cert", cert->pem});
    return extra;
  };
  ASSERT_EQ(curl("site.example.com", "/alice", with(&alice)).status, 200);
  ASSERT_EQ(curl("site.example.com", "/mallory", with(&mallory)).status, 200);
  ASSERT_EQ(curl("site.example.com", "/none", with(nullptr)).status, 200);
  auto reqs = app.requests();
  ASSERT_EQ(reqs.size(), 3u);
  for (const auto& r : reqs) {
    for (const auto& [name, value] : r.headers) {
      if (!iequals(name.substr(0, std::min<size_t>(name.size(), 14)), "X-Client-Cert-")) continue;
      EXPECT_EQ(value.find("forged"), std::string::npos) << r.target << ": " << name;
      EXPECT_NE(value, "F0F0F0") << r.target << ": " << name;
    }
  }
  auto values = [](const RecordedRequest& r, const std::string& name) {
    std::vector<std::string> out;
    for (const auto& [k, v] : r.headers)
      if (iequals(k, name)) out.push_back(v);
    return out;
  };
  // Alice: one of each, describing her certificate.
  // The doc does not say how the verdict is written: ssl_c_verify's number (0) or words
  // (SUCCESS, FAILED...) are both taken; it must tell a valid certificate from a bad one.
  const RecordedRequest& a = reqs[0];
  ASSERT_EQ(values(a, "X-Client-Cert-Verify").size(), 1u) << a.head;
  EXPECT_TRUE(std::regex_match(a.header("X-Client-Cert-Verify"), std::regex("0|SUCCESS")))
      << a.head;
  ASSERT_EQ(values(a, "X-Client-Cert-Subject").size(), 1u) << a.head;
  EXPECT_NE(a.header("X-Client-Cert-Subject").find("CN=alice"), std::string::npos) << a.head;
  ASSERT_EQ(values(a, "X-Client-Cert-Issuer").size(), 1u) << a.head;
  EXPECT_NE(a.header("X-Client-Cert-Issuer").find("CN=weir-client-ca"), std::string::npos)
      << a.head;
  ASSERT_EQ(values(a, "X-Client-Cert-Serial").size(), 1u) << a.head;
  EXPECT_TRUE(iequals(a.header("X-Client-Cert-Serial"), alice.serial)) << a.head;
  // Mallory: the verdict is not 0.
  const RecordedRequest& m = reqs[1];
  ASSERT_EQ(values(m, "X-Client-Cert-Verify").size(), 1u) << m.head;
  EXPECT_TRUE(std::regex_match(m.header("X-Client-Cert-Verify"), std::regex("20|21|FAILED.*")))
      << m.head;  // unable to get local issuer certificate, or to verify the first certificate
  EXPECT_NE(m.header("X-Client-Cert-Verify"), a.header("X-Client-Cert-Verify"));
  EXPECT_NE(m.header("X-Client-Cert-Subject").find("CN=mallory"), std::string::npos) << m.head;
  // No certificate: at most one Verify header, no subject from the client.
  const RecordedRequest& n = reqs[2];
  EXPECT_LE(values(n, "X-Client-Cert-Verify").size(), 1u) << n.head;
  EXPECT_LE(values(n, "X-Client-Cert-Subject").size(), 1u) << n.head;
}

// ssl_fc and ssl_sni in rules: plain HTTP redirected to https, routing by the TLS name.
TEST_F(Tls, SslFetchesInRulesRedirectPlainHttpAndRouteBySni) {
  OriginServer app("app"), shop("shop");
  Cert a = pki_->server("a", {.dns = {"a.example.com"}});
  Cert b = pki_->server("b", {.dns = {"shop.example.com"}});
  uint16_t plain = free_tcp_port();
  ASSERT_TRUE(start(R"y(frontends:
  web:
    bind:
      - "127.0.0.1:@PLAIN@"
      - address: "127.0.0.1:@PORT@"
        tls: {certificates: [@A@, @B@]}
    default_backend: app
    http_request:
      - redirect: {scheme: https, code: 301}
        unless: "{ ssl_fc }"
      - set_header: {name: X-TLS-Name, value: "sni=%[ssl_sni]"}
      - use_backend: shop
        if: "{ ssl_sni -i shop.example.com }"
backends:
  app:
    servers: {s1: "@APP@"}
  shop:
    servers: {s1: "@SHOP@"}
)y",
                    {{"@PLAIN@", std::to_string(plain)},
                     {"@A@", a.pem},
                     {"@B@", b.pem},
                     {"@APP@", app.address()},
                     {"@SHOP@", shop.address()}}));
  HttpClient c(plain);
  auto r = c.request("GET", "/cart?id=1", {{"Host", "a.example.com"}});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 301);
  EXPECT_EQ(r->header("Location"), "https://a.example.com/cart?id=1");
  CurlResult ra = curl("a.example.com", "/a");
  EXPECT_EQ(ra.status, 200) << ra.err;
  EXPECT_EQ(ra.header("X-Server"), "app");
  CurlResult rb = curl("shop.example.com", "/b");
  EXPECT_EQ(rb.status, 200) << rb.err;
  EXPECT_EQ(rb.header("X-Server"), "shop");
  ASSERT_EQ(app.requests().size(), 1u);
  EXPECT_EQ(app.requests()[0].header("X-TLS-Name"), "sni=a.example.com");
  ASSERT_EQ(shop.requests().size(), 1u);
  EXPECT_EQ(shop.requests()[0].header("X-TLS-Name"), "sni=shop.example.com");
}

// ---------------------------------------------------------------------------
// Handshakes

// A client that stalls in the handshake is cut by `timeout client`: nothing reaches a server,
// no access-log line, the failure is counted and logged once on the error stream.
TEST_F(Tls, StalledHandshakesAreCutByTheClientTimeout) {
  OriginServer app("app");
  Cert site = pki_->server("site", {.dns = {"site.example.com"}});
  log_format_ = "'%ft %ci:%cp %ts %ST %HP'";
  ASSERT_TRUE(start(web("certificates: [@SITE@]", app.address(), "    timeouts: {client: 1s}\n"),
                    {{"@SITE@", site.pem}}));
  // Nothing at all.
  UniqueFd silent = connect_raw(port_);
  ASSERT_TRUE(silent);
  // The start of a ClientHello: a handshake record announcing 512 bytes, and 11 of them.
  UniqueFd half = connect_raw(port_);
  ASSERT_TRUE(half);
  const std::string partial("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\x5a\x5a\x5a\x5a\x5a", 16);
  ASSERT_EQ(::send(half.get(), partial.data(), partial.size(), MSG_NOSIGNAL),
            static_cast<ssize_t>(partial.size()));
  EXPECT_TRUE(closed_by_peer(silent.get(), 10000));
  EXPECT_TRUE(closed_by_peer(half.get(), 10000));
  EXPECT_TRUE(wait_until([&] { return info("SslHandshakeFailures") == "2"; }, 10000))
      << unix_command(admin(), "show info");
  // Each failed handshake is logged once on the error stream, with the client's address.
  std::this_thread::sleep_for(std::chrono::seconds(1));
  EXPECT_EQ(info("SslHandshakeFailures"), "2");
  for (int fd : {silent.get(), half.get()}) {
    const std::string peer = "127.0.0.1:" + std::to_string(local_port(fd));
    EXPECT_EQ(count_matching_lines(weir_->stderr_text(), regex_escape(peer) + "\\b"), 1u)
        << peer << "\n"
        << weir_->stderr_text();
  }
  EXPECT_EQ(app.connections_accepted(), 0);
  // weir still serves; that request is the only access-log line.
  CurlResult r = curl("site.example.com", "/after");
  EXPECT_EQ(r.status, 200) << r.err;
  auto lines = log_lines("^web ", 1);
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  lines = log_lines("^web ", 1);
  ASSERT_EQ(lines.size(), 1u) << weir_->stdout_text();
  EXPECT_TRUE(std::regex_match(lines[0], std::regex(R"(web 127\.0\.0\.1:\d+ -- 200 /after)")))
      << lines[0];
}

// Failed handshakes are all counted; the error stream gets at most 10 lines a second per
// thread.
TEST_F(Tls, FailedHandshakesAreCountedAndTheirLogLinesRateLimited) {
  OriginServer app("app");
  Cert site = pki_->server("site", {.dns = {"site.example.com"}});
  threads_ = 1;
  ASSERT_TRUE(start(web("certificates: [@SITE@]", app.address()), {{"@SITE@", site.pem}}));
  const size_t before = stderr_lines_with_client_address();
  const int kClients = 60;
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < kClients; ++i) {  // plain HTTP on the TLS port
    UniqueFd fd = connect_raw(port_);
    ASSERT_TRUE(fd);
    const std::string req = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    ::send(fd.get(), req.data(), req.size(), MSG_NOSIGNAL);
    EXPECT_TRUE(closed_by_peer(fd.get(), 10000)) << i;
  }
  const double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_TRUE(wait_until([&] { return info("SslHandshakeFailures") == "60"; }, 10000))
      << unix_command(admin(), "show info");
  std::this_thread::sleep_for(std::chrono::seconds(2));
  const size_t logged = stderr_lines_with_client_address() - before;
  EXPECT_GE(logged, 1u) << weir_->stderr_text();
  // One thread: 10 a second, over the seconds the failures spanned (+2 for window edges).
  EXPECT_LE(static_cast<double>(logged), 10 * (std::ceil(elapsed) + 2))
      << "elapsed " << elapsed << " s\n"
      << weir_->stderr_text();
  EXPECT_TRUE(weir_->wait_for_stderr(R"(127\.0\.0\.1.*(http request|wrong version number))", 1000))
      << weir_->stderr_text();
  bool found = false;
  for (const auto& [labels, value] :
       metric_samples(metrics(), "weir_frontend_tls_handshake_failures_total")) {
    if (labels.find("proxy=\"web\"") == std::string::npos) continue;
    found = true;
    EXPECT_EQ(value, kClients);
  }
  EXPECT_TRUE(found) << metrics();
  EXPECT_EQ(app.connections_accepted(), 0);
}

// ---------------------------------------------------------------------------
// TLS toward servers

// A fixed SNI is sent (s_server answers it with the certificate naming it), the chain is
// verified against ca_file and the name against the SNI.
TEST_F(Tls, BackendTlsSendsTheSniAndVerifiesTheServer) {
  Cert decoy = pki_->server("decoy", {.dns = {"decoy.internal"}});
  Cert named = pki_->root_server("named", {.dns = {"backend.internal"}});
  TlsServer server("tls-origin", decoy, {.sni_name = "backend.internal", .sni_cert = &named});
  log_format_ = "'%b/%s %ST %ts %HP'";
  ASSERT_TRUE(start(R"y(frontends:
  web:
    bind: ["127.0.0.1:@PORT@"]
    default_backend: app
backends:
  app:
    tls: {enabled: true, verify: required, ca_file: @ROOT@, sni: backend.internal}
    servers: {s1: "@SRV@"}
)y",
                    {{"@SRV@", server.address()}}));
  for (int i = 0; i < 3; ++i) {
    auto r = http_get(port_, "/id.txt");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200) << server.log();
    EXPECT_EQ(r->body, "tls-origin\n");
  }
  EXPECT_EQ(log_lines(R"(^app/s1 200 -- /id\.txt$)", 3).size(), 3u) << weir_->stdout_text();
  EXPECT_EQ(stat_row("app", "s1")["econ"], "0");
}

// verify: required with the wrong CA: a connection error (503, SC, econ, retried), logged
// with OpenSSL's reason; verify: none accepts it; redispatch finds a good server.
TEST_F(Tls, BackendWithAnUntrustedCertificateIsAConnectionError) {
  Cert stranger = pki_->untrusted_server("stranger", {.dns = {"backend.internal"}});
  Cert good = pki_->server("good", {.dns = {"backend.internal"}});
  TlsServer bad_server("untrusted", stranger);
  TlsServer good_server("trusted", good);
  log_format_ = "'%b/%s %ST %ts %rc %HP'";
  ASSERT_TRUE(start(R"y(frontends:
  web:
    bind: ["127.0.0.1:@PORT@"]
    default_backend: strict
    http_request:
      - use_backend: lax
        if: "{ path_beg /lax/ }"
      - use_backend: mixed
        if: "{ path_beg /mixed/ }"
backends:
  strict:
    retries: 2
    tls: {enabled: true, verify: required, ca_file: @ROOT@, sni: backend.internal}
    servers: {s1: "@BAD@"}
  lax:
    tls: {enabled: true, verify: none, sni: backend.internal}
    http_request: [{set_path: /id.txt}]
    servers: {s1: "@BAD@"}
  mixed:
    retries: 3
    tls: {enabled: true, verify: required, ca_file: @ROOT@, sni: backend.internal}
    http_request: [{set_path: /id.txt}]
    servers: {bad: "@BAD@", good: "@GOOD@"}
)y",
                    {{"@BAD@", bad_server.address()}, {"@GOOD@", good_server.address()}}));
  auto r = http_get(port_, "/strict");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 503);
  auto lines = log_lines(R"(^strict/)", 1);
  ASSERT_EQ(lines.size(), 1u) << weir_->stdout_text();
  EXPECT_TRUE(std::regex_match(lines[0], std::regex(R"(strict/(s1|-) 503 SC 2 /strict)")))
      << lines[0];
  auto row = stat_row("strict", "s1");
  EXPECT_EQ(row["econ"], "3");  // the attempt and its two retries
  EXPECT_EQ(row["wretr"], "2");
  EXPECT_TRUE(weir_->wait_for_stderr("certificate verify failed", 10000)) << weir_->stderr_text();

  auto lax = http_get(port_, "/lax/x");
  ASSERT_TRUE(lax);
  EXPECT_EQ(lax->status, 200);
  EXPECT_EQ(lax->body, "untrusted\n");

  for (int i = 0; i < 4; ++i) {
    auto m = http_get(port_, "/mixed/x");
    ASSERT_TRUE(m) << i;
    EXPECT_EQ(m->status, 200) << i;
    EXPECT_EQ(m->body, "trusted\n") << i;
  }
  EXPECT_NE(stat_row("mixed", "bad")["econ"], "0");
}

// verify_name, and the name check's default: the SNI, else none.
TEST_F(Tls, BackendVerifyNameIsChecked) {
  Cert named = pki_->server("named", {.dns = {"backend.internal"}});
  TlsServer server("tls-origin", named);
  ASSERT_TRUE(start(R"y(frontends:
  web:
    bind: ["127.0.0.1:@PORT@"]
    default_backend: nosni
    http_request:
      - use_backend: wrongname
        if: "{ path_beg /wrong/ }"
      - use_backend: rightname
        if: "{ path_beg /right/ }"
      - use_backend: wrongsni
        if: "{ path_beg /wrongsni/ }"
backends:
  nosni:
    tls: {enabled: true, verify: required, ca_file: @ROOT@}
    servers: {s1: "@SRV@"}
  wrongname:
    retries: 0
    tls: {enabled: true, verify: required, ca_file: @ROOT@, sni: backend.internal, verify_name: other.internal}
    http_request: [{set_path: /id.txt}]
    servers: {s1: "@SRV@"}
  rightname:
    tls: {enabled: true, verify: required, ca_file: @ROOT@, sni: other.internal, verify_name: backend.internal}
    http_request: [{set_path: /id.txt}]
    servers: {s1: "@SRV@"}
  wrongsni:
    retries: 0
    tls: {enabled: true, verify: required, ca_file: @ROOT@, sni: other.internal}
    http_request: [{set_path: /id.txt}]
    servers: {s1: "@SRV@"}
)y",
                    {{"@SRV@", server.address()}}));
  auto check = [&](const std::string& path, int status) {
    auto r = http_get(port_, path);
    ASSERT_TRUE(r) << path;
    EXPECT_EQ(r->status, status) << path << "\n" << weir_->stderr_text();
  };
  check("/id.txt", 200);      // no SNI: no name check
  check("/wrong/x", 503);     // the certificate does not name other.internal
  check("/right/x", 200);     // verify_name wins over the SNI
  check("/wrongsni/x", 503);  // the SNI is the name checked
}

// The doc's template: the SNI (and so the name checked) from the request's Host.
TEST_F(Tls, BackendSniFromTheRequestsHost) {
  Cert decoy = pki_->server("decoy", {.dns = {"decoy.internal"}});
  Cert named = pki_->root_server("named", {.dns = {"backend.internal"}});
  TlsServer server("tls-origin", decoy, {.sni_name = "backend.internal", .sni_cert = &named});
  ASSERT_TRUE(start(R"y(frontends:
  web:
    bind: ["127.0.0.1:@PORT@"]
    default_backend: app
backends:
  app:
    retries: 0
    tls: {enabled: true, verify: required, ca_file: @ROOT@, sni: "%[hdr(host)]"}
    servers: {s1: "@SRV@"}
)y",
                    {{"@SRV@", server.address()}}));
  auto get_host = [&](const std::string& host) {
    HttpClient c(port_);
    return c.request("GET", "/id.txt", {{"Host", host}, {"Connection", "close"}});
  };
  auto a = get_host("backend.internal");  // s_server answers with the backend.internal cert
  ASSERT_TRUE(a);
  EXPECT_EQ(a->status, 200) << weir_->stderr_text();
  auto d = get_host("decoy.internal");  // the default certificate, which names decoy.internal
  ASSERT_TRUE(d);
  EXPECT_EQ(d->status, 200);
  auto x = get_host("nothing.internal");  // the default certificate does not name it
  ASSERT_TRUE(x);
  EXPECT_EQ(x->status, 503);
}

// A port that a template puts in the SNI is not sent, in tcp mode as in http mode
// ("%[hdr(host)]" above) and in health checks: the server sees "backend.internal",
// answers with the certificate naming it, and the name check passes. (tcp mode
// sent "backend.internal:<port>": the server answered with its default
// certificate and the check against that name failed.)
TEST_F(Tls, TcpModeSniTemplateLosesItsPortAsInHttpMode) {
  Cert decoy = pki_->server("decoy", {.dns = {"decoy.internal"}});
  Cert named = pki_->root_server("named", {.dns = {"backend.internal"}});
  TlsServer server("tls-origin", decoy, {.sni_name = "backend.internal", .sni_cert = &named});
  ASSERT_TRUE(start(R"y(frontends:
  raw:
    mode: tcp
    bind: ["127.0.0.1:@PORT@"]
    default_backend: app
backends:
  app:
    mode: tcp
    retries: 0
    tls: {enabled: true, verify: required, ca_file: @ROOT@, sni: "backend.internal:%[dst_port]"}
    servers: {s1: "@SRV@"}
)y",
                    {{"@SRV@", server.address()}}));
  HttpClient c(port_);
  auto r = c.request("GET", "/id.txt", {{"Host", "backend.internal"}, {"Connection", "close"}});
  ASSERT_TRUE(r) << weir_->stderr_text();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "tls-origin\n");
  EXPECT_EQ(stat_row("app", "s1")["econ"], "0");
}

// A client certificate toward a server that asks for one.
TEST_F(Tls, BackendClientCertificate) {
  Cert named = pki_->server("named", {.dns = {"backend.internal"}});
  Cert client = pki_->client("weir-client", {.subject = "/C=FR/O=weir-tests/CN=weir"});
  TlsServer server("mtls-origin", named, {.client_ca = pki_->client_ca()});
  ASSERT_TRUE(start(R"y(frontends:
  web:
    bind: ["127.0.0.1:@PORT@"]
    default_backend: with
    http_request:
      - use_backend: without
        if: "{ path_beg /without/ }"
backends:
  with:
    tls: {enabled: true, verify: required, ca_file: @ROOT@, sni: backend.internal, cert: @CLIENT@}
    servers: {s1: "@SRV@"}
  without:
    retries: 0
    tls: {enabled: true, verify: required, ca_file: @ROOT@, sni: backend.internal}
    http_request: [{set_path: /id.txt}]
    servers: {s1: "@SRV@"}
)y",
                    {{"@CLIENT@", client.pem}, {"@SRV@", server.address()}}));
  auto ok = http_get(port_, "/id.txt");
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 200) << server.log();
  EXPECT_EQ(ok->body, "mtls-origin\n");
  // Without a certificate the server refuses the handshake. With TLS 1.3 weir learns it only
  // once its handshake is over (the server's alert comes with the response it waits for):
  // the doc does not say whether that is a connection error (503) or a failed response (502).
  auto refused = http_get(port_, "/without/x");
  ASSERT_TRUE(refused);
  EXPECT_TRUE(refused->status == 503 || refused->status == 502) << refused->status;
}

// Every thread keeps the last session of each server: later connections resume.
TEST_F(Tls, BackendSessionsAreResumed) {
  Cert named = pki_->server("named", {.dns = {"backend.internal"}});
  for (const char* version : {"TLSv1.3", "TLSv1.2"}) {
    TlsServer server("origin", named, {.trace = true});
    threads_ = 1;
    port_ = free_tcp_port();
    ASSERT_TRUE(start(R"y(frontends:
  web:
    bind: ["127.0.0.1:@PORT@"]
    default_backend: app
backends:
  app:
    tls: {enabled: true, verify: required, ca_file: @ROOT@, sni: backend.internal, min_version: @V@, max_version: @V@}
    servers: {s1: "@SRV@"}
)y",
                      {{"@V@", version}, {"@SRV@", server.address()}}, version));
    for (int i = 0; i < 5; ++i) {
      auto r = http_get(port_, "/id.txt");
      ASSERT_TRUE(r) << version;
      EXPECT_EQ(r->status, 200) << version;
      EXPECT_EQ(r->body, "origin\n");
    }
    // Five handshakes (the server closes after each answer), one of them full.
    EXPECT_TRUE(wait_until([&] { return server.handshakes() == 5; }, 10000))
        << version << ": " << server.handshakes();
    EXPECT_EQ(server.full_handshakes(), 1) << version;
    EXPECT_NE(
        server.log().find("TLS " + std::string(version == std::string("TLSv1.3") ? "1.3" : "1.2") +
                          ", Handshake"),
        std::string::npos);
    weir_.reset();
  }
}

// A session made under one backend's settings is never offered under another's: a backend
// that does not verify the server must not open the way for one that does.
TEST_F(Tls, BackendSessionsAreNotSharedAcrossDifferentTlsSettings) {
  Cert stranger = pki_->untrusted_server("stranger", {.dns = {"backend.internal"}});
  TlsServer server("stranger", stranger, {.trace = true});
  threads_ = 1;
  ASSERT_TRUE(start(R"y(frontends:
  web:
    bind: ["127.0.0.1:@PORT@"]
    default_backend: lax
    http_request:
      - use_backend: strict
        if: "{ path_beg /strict/ }"
backends:
  lax:
    tls: {enabled: true, verify: none, sni: backend.internal}
    servers: {s1: "@SRV@"}
  strict:
    retries: 0
    tls: {enabled: true, verify: required, ca_file: @ROOT@, sni: backend.internal}
    http_request: [{set_path: /id.txt}]
    servers: {s1: "@SRV@"}
)y",
                    {{"@SRV@", server.address()}}));
  for (int i = 0; i < 3; ++i) {
    auto lax = http_get(port_, "/id.txt");
    ASSERT_TRUE(lax);
    EXPECT_EQ(lax->status, 200);
    auto strict = http_get(port_, "/strict/x");
    ASSERT_TRUE(strict);
    EXPECT_EQ(strict->status, 503) << i;
  }
}

// A response without Content-Length (HTTP/1.0 style) ends when the TLS server closes.
TEST_F(Tls, BackendCloseDelimitedResponseEndsWhenTheServerCloses) {
  Cert named = pki_->server("named", {.dns = {"backend.internal"}});
  TlsServer server("old-style", named, {.close_delimited = true});
  log_format_ = "'%b/%s %ST %ts %HP'";
  ASSERT_TRUE(start(R"y(frontends:
  web:
    bind: ["127.0.0.1:@PORT@"]
    default_backend: app
backends:
  app:
    tls: {enabled: true, verify: required, ca_file: @ROOT@, sni: backend.internal}
    servers: {s1: "@SRV@"}
)y",
                    {{"@SRV@", server.address()}}));
  for (int i = 0; i < 3; ++i) {
    auto r = http_get(port_, "/id.txt", 20000);
    ASSERT_TRUE(r) << "request " << i << " got no complete answer\n" << weir_->stdout_text();
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(r->body, "old-style\n");
  }
  EXPECT_EQ(log_lines(R"(^app/s1 200 -- /id\.txt$)", 3).size(), 3u) << weir_->stdout_text();
}

// A server's tls replaces the backend's key by key.
TEST_F(Tls, ServerTlsSettingsReplaceTheBackendsKeyByKey) {
  Cert named = pki_->server("named", {.dns = {"backend.internal"}});
  Cert stranger = pki_->untrusted_server("stranger", {.dns = {"backend.internal"}});
  TlsServer tls_server("tls", named);
  TlsServer lax_server("lax", stranger);
  OriginServer plain("plain");
  ASSERT_TRUE(start(R"y(frontends:
  web:
    bind: ["127.0.0.1:@PORT@"]
    default_backend: app
backends:
  app:
    retries: 0
    tls: {enabled: true, verify: required, ca_file: @ROOT@, sni: backend.internal}
    servers:
      a: "@TLS@"
      b: {address: "@PLAIN@", tls: {enabled: false}}
      c: {address: "@LAX@", tls: {verify: none}}
)y",
                    {{"@TLS@", tls_server.address()},
                     {"@PLAIN@", plain.address()},
                     {"@LAX@", lax_server.address()}}));
  std::set<std::string> seen;
  for (int i = 0; i < 9; ++i) {
    auto r = http_get(port_, "/id.txt");
    ASSERT_TRUE(r) << i;
    EXPECT_EQ(r->status, 200) << i << "\n" << weir_->stderr_text();
    seen.insert(r->status == 200 ? r->body : std::to_string(r->status));
  }
  EXPECT_EQ(seen, (std::set<std::string>{"tls\n", "plain\n", "lax\n"}));
}

// ---------------------------------------------------------------------------
// tcp mode: routing by the ClientHello, terminating TLS

TEST_F(Tls, TcpModeRoutesBySniWithoutDecrypting) {
  Cert mail_cert = pki_->server("mail", {.dns = {"mail.example.com"}});
  Cert web_cert = pki_->server("www", {.dns = {"www.example.com"}});
  TlsServer mail("mail", mail_cert);
  TlsServer www("www", web_cert);
  log_format_ = "'%ft %b/%s %ts %[req_ssl_sni]'";
  ASSERT_TRUE(start(R"y(frontends:
  tls_in:
    mode: tcp
    bind: "127.0.0.1:@PORT@"
    inspect_delay: 5s
    tcp_request:
      - content: {use_backend: mail}
        if: "{ req_ssl_sni -i mail.example.com }"
    default_backend: web
backends:
  mail:
    mode: tcp
    servers: {m1: "@MAIL@"}
  web:
    mode: tcp
    servers: {w1: "@WWW@"}
)y",
                    {{"@MAIL@", mail.address()}, {"@WWW@", www.address()}}));
  struct Case {
    std::vector<std::string> args;
    std::string cn, body;
  };
  const std::vector<Case> cases = {
      {{"-servername", "mail.example.com"}, "mail.example.com", "mail\n"},
      {{"-servername", "MAIL.Example.com"}, "mail.example.com", "mail\n"},
      {{"-servername", "www.example.com"}, "www.example.com", "www\n"},
      {{"-noservername"}, "www.example.com", "www\n"},
  };
  for (const Case& c : cases) {
    std::vector<std::string> args = c.args;
    args.insert(args.end(), {"-CAfile", pki_->root_ca()});
    SClient r = sc(args);
    EXPECT_EQ(r.cn(), c.cn) << ::testing::PrintToString(c.args) << "\n" << r.out << r.err;
    EXPECT_EQ(r.verify_code(), 0) << r.out;  // the servers' own chains, untouched
    EXPECT_EQ(r.http_body(), c.body) << r.out;
  }
  auto lines = log_lines("^tls_in ", 4);
  ASSERT_EQ(lines.size(), 4u) << weir_->stdout_text();
  EXPECT_EQ(lines[0], "tls_in mail/m1 -- mail.example.com");
  EXPECT_EQ(lines[2], "tls_in web/w1 -- www.example.com");
  EXPECT_EQ(lines[3], "tls_in web/w1 -- -");
}

// The doc's req_ssl_ver rule: a client whose best version is too old is rejected.
TEST_F(Tls, TcpModeRejectsByReqSslVer) {
  Cert web_cert = pki_->server("www", {.dns = {"www.example.com"}});
  TlsServer www("www", web_cert);
  log_format_ = "'%ft %b/%s %ts %[req_ssl_ver]'";
  ASSERT_TRUE(start(R"y(frontends:
  tls_in:
    mode: tcp
    bind: "127.0.0.1:@PORT@"
    inspect_delay: 5s
    tcp_request:
      - content: reject
        unless: "{ req_ssl_ver TLSv1.3 }"
    default_backend: web
backends:
  web:
    mode: tcp
    servers: {w1: "@WWW@"}
)y",
                    {{"@WWW@", www.address()}}));
  SClient t12 = sc({"-tls1_2"});
  EXPECT_FALSE(t12.handshake()) << t12.out;
  SClient t13 = sc({"-tls1_3"});
  EXPECT_EQ(t13.protocol(), "TLSv1.3") << t13.out << t13.err;
  EXPECT_EQ(t13.http_body(), "www\n");
  SClient any = sc({});  // offers 1.3 in supported_versions
  EXPECT_EQ(any.http_body(), "www\n") << any.out;
  auto lines = log_lines("^tls_in ", 3);
  ASSERT_EQ(lines.size(), 3u) << weir_->stdout_text();
  EXPECT_TRUE(std::regex_match(lines[0], std::regex(R"(tls_in (web|-)/- PR TLSv1\.2)")))
      << lines[0];
  EXPECT_EQ(lines[1], "tls_in web/w1 -- TLSv1.3");
}

// tcp mode with a tls bind: weir terminates TLS and passes the plain bytes on.
TEST_F(Tls, TcpModeTerminatesTls) {
  OriginServer app("app");
  Cert site = pki_->server("site", {.dns = {"site.example.com"}});
  log_format_ = "'%ft %b/%s %ts %[ssl_fc] %[ssl_sni] %[ssl_version]'";
  ASSERT_TRUE(start(R"y(frontends:
  raw:
    mode: tcp
    bind:
      - address: "127.0.0.1:@PORT@"
        tls: {certificates: [@SITE@]}
    default_backend: app
backends:
  app:
    mode: tcp
    servers: {s1: "@APP@"}
)y",
                    {{"@SITE@", site.pem}, {"@APP@", app.address()}}));
  SClient r = sc({"-servername", "site.example.com", "-CAfile", pki_->root_ca()}, get("/tcp"));
  EXPECT_EQ(r.verify_code(), 0) << r.out << r.err;
  EXPECT_TRUE(r.has("HTTP/1.1 200")) << r.out;
  EXPECT_TRUE(r.has("X-Server: app")) << r.out;
  ASSERT_EQ(app.requests().size(), 1u);
  EXPECT_EQ(app.received_bytes(), get("/tcp"));
  auto lines = log_lines("^raw ", 1);
  ASSERT_EQ(lines.size(), 1u) << weir_->stdout_text();
  EXPECT_EQ(lines[0], "raw app/s1 -- 1 site.example.com TLSv1.3");
}

// ---------------------------------------------------------------------------
// Certificates at runtime

// A reload whose certificate does not load is refused; the old generation serves on with
// the old certificate. A renewed certificate is picked up by the next reload.
TEST_F(Tls, BadCertificateOnReloadKeepsTheOldGenerationServing) {
  OriginServer app("app");
  Cert gen1 =
      pki_->server("gen1", {.dns = {"site.example.com"}, .subject = "/O=gen1/CN=site.example.com"});
  const std::string site = dir_ + "/site.pem";
  write_file(site, read_file(gen1.pem));
  ASSERT_TRUE(start(web("certificates: [@SITE@]", app.address()), {{"@SITE@", site}}));
  const std::string cfg = weir_->config_path();
  const int line = line_of(read_file(cfg), "tls:");
  ASSERT_GT(line, 0);
  const std::string position = regex_escape(cfg) + ":" + std::to_string(line) + R"(:\d+: )";
  auto served = [&] { return sc({"-servername", "site.example.com"}, "").subject(); };
  ASSERT_NE(served().find("O = gen1"), std::string::npos);

  // Garbage in place of the certificate, SIGHUP.
  write_file(site, "-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n");
  weir_->signal(SIGHUP);
  ASSERT_TRUE(weir_->wait_for_stderr("reload failed", 20000)) << weir_->stderr_text();
  EXPECT_TRUE(weir_->wait_for_stderr(position + ".*site\\.pem", 1000)) << weir_->stderr_text();
  EXPECT_EQ(weir_->current_generation(), 1);
  EXPECT_NE(served().find("O = gen1"), std::string::npos);
  CurlResult r = curl("site.example.com", "/still");
  EXPECT_EQ(r.status, 200) << r.err;

  // A key that does not match, through the master CLI.
  write_file(site, read_file(pki_->mismatched_key("mismatch")));
  std::string out = master_cli("reload");
  EXPECT_EQ(out.rfind("Success=0\n", 0), 0u) << out;
  EXPECT_TRUE(std::regex_search(out, std::regex(position + ".*site\\.pem"))) << out;
  EXPECT_EQ(weir_->current_generation(), 1);
  EXPECT_NE(served().find("O = gen1"), std::string::npos);
  // weir -c says the same.
  CommandResult check = run_weir({"-c", "-f", cfg});
  EXPECT_EQ(check.exit_code, 1);
  EXPECT_TRUE(std::regex_search(check.err, std::regex(position + ".*site\\.pem"))) << check.err;

  // The renewed certificate: the reload succeeds and serves it.
  Cert gen2 =
      pki_->server("gen2", {.dns = {"site.example.com"}, .subject = "/O=gen2/CN=site.example.com"});
  write_file(site, read_file(gen2.pem));
  out = master_cli("reload");
  ASSERT_EQ(out.rfind("Success=1\n", 0), 0u) << out;
  EXPECT_EQ(weir_->current_generation(), 2);
  EXPECT_TRUE(wait_until([&] { return served().find("O = gen2") != std::string::npos; }, 10000))
      << served();
}

// Every load error names the file and the position of its tls entry; weir -c lists them all,
// in two steps (doc/configuration.md): the files are read once the file has no other error.
TEST_F(Tls, LoadErrorsNameTheFileAndThePositionOfTheTlsEntry) {
  Cert good = pki_->server("good", {.dns = {"good.example.com"}});
  const std::string missing = dir_ + "/nonexistent.pem";
  struct Case {
    std::string what, tls, file;  // file: must be named in the message ("" no check)
  };
  // Files that do not load.
  const std::vector<Case> files = {
      {"missing file", "certificates: [" + missing + "]", missing},
      {"no certificate", "certificates: [" + pki_->garbage("garbage") + "]", "garbage.pem"},
      {"a key alone", "certificates: [" + pki_->key_only("keyonly") + "]", "keyonly.pem"},
      {"no private key", "certificates: [" + pki_->missing_key("nokey") + "]", "nokey.pem"},
      {"key mismatch", "certificates: [" + pki_->mismatched_key("mismatch") + "]", "mismatch.pem"},
      {"bad chain", "certificates: [" + pki_->bad_chain("badchain") + "]", "badchain.pem"},
      {"missing default",
       "certificates: [" + good.pem + "], default_certificate: " + dir_ + "/absent.pem",
       "absent.pem"},
      {"missing ca_file",
       "certificates: [" + good.pem + "], verify: optional, ca_file: " + dir_ + "/noca.pem",
       "noca.pem"},
      {"missing crl_file",
       "certificates: [" + good.pem + "], verify: required, ca_file: " + pki_->client_ca() +
           ", crl_file: " + dir_ + "/nocrl.pem",
       "nocrl.pem"},
  };
  // Settings that are wrong whatever the files.
  const std::vector<Case> settings = {
      {"verify without ca_file", "certificates: [" + good.pem + "], verify: required", ""},
      {"unknown version", "certificates: [" + good.pem + "], min_version: TLSv9", ""},
      {"unknown verify", "certificates: [" + good.pem + "], verify: sometimes", ""},
  };
  const std::string short_secret = pki_->write("short.key", "0123456789abcdef");
  // Writes a file with one frontend per case (and the short ticket secret), runs weir -c and
  // checks every case's line.
  // files_read: the configuration is otherwise valid, so the TLS files are read (second step).
  auto check = [&](const std::string& name, const std::vector<Case>& cases, bool files_read) {
    std::string yaml = "global:\n  tls_ticket_secret_file: " + short_secret + "\nfrontends:\n";
    for (size_t i = 0; i < cases.size(); ++i) {
      yaml += "  f" + std::to_string(i) +
              ":\n    bind:\n      - address: \"127.0.0.1:" + std::to_string(20000 + i) +
              "\"\n        tls: {" + cases[i].tls + "}\n    default_backend: app\n";
    }
    yaml += "backends:\n  app:\n    servers: {s1: \"127.0.0.1:9\"}\n";
    const std::string path = pki_->write(name, yaml);
    CommandResult r = run_weir({"-c", "-f", path});
    EXPECT_EQ(r.exit_code, 1) << name << "\n" << r.err;
    for (const Case& c : cases) {
      const int line = line_of(yaml, "tls: {" + c.tls + "}");
      EXPECT_GT(line, 0);
      std::smatch m;
      const std::string re =
          "(^|\n)" + regex_escape(path) + ":" + std::to_string(line) + R"(:\d+: ([^\n]*))";
      if (!std::regex_search(r.err, m, std::regex(re))) {
        ADD_FAILURE() << name << ": " << c.what << ": no error at line " << line << "\n" << r.err;
        continue;
      }
      if (!c.file.empty()) {
        EXPECT_NE(m[2].str().find(c.file), std::string::npos) << m[2];
      }
    }
    // The ticket secret must be at least 32 bytes (a file: read in the second step).
    if (files_read) {
      EXPECT_TRUE(std::regex_search(
          r.err, std::regex(regex_escape(path) + ":" +
                            std::to_string(line_of(yaml, "tls_ticket_secret_file")) + R"(:\d+: )")))
          << name << ": short tls_ticket_secret_file\n"
          << r.err;
    }
    EXPECT_EQ(run_weir({"-f", path}).exit_code, 1);
    return r;
  };
  check("files.yaml", files, true);
  check("settings.yaml", settings, false);
  // Both kinds in one file: the settings' errors are all listed, the files are not read
  // until they are fixed (and nothing claims they are fine).
  std::vector<Case> all = files;
  all.insert(all.end(), settings.begin(), settings.end());
  std::string yaml = "frontends:\n";
  for (size_t i = 0; i < all.size(); ++i) {
    yaml += "  f" + std::to_string(i) +
            ":\n    bind:\n      - address: \"127.0.0.1:" + std::to_string(21000 + i) +
            "\"\n        tls: {" + all[i].tls + "}\n    default_backend: app\n";
  }
  yaml += "backends:\n  app:\n    servers: {s1: \"127.0.0.1:9\"}\n";
  const std::string path = pki_->write("all.yaml", yaml);
  CommandResult both = run_weir({"-c", "-f", path});
  EXPECT_EQ(both.exit_code, 1) << both.err;
  EXPECT_NE(both.err.find(std::to_string(settings.size()) + " errors"), std::string::npos)
      << both.err;
  EXPECT_EQ(both.err.find("nonexistent.pem"), std::string::npos) << both.err;
}

// Expired and not yet valid certificates load, with a warning from weir -c, at start and at
// each reload; they are served as they are.
TEST_F(Tls, ExpiredAndNotYetValidCertificatesLoadWithAWarning) {
  OriginServer app("app");
  Cert good = pki_->server("good", {.dns = {"www.example.com"}});
  Cert expired = pki_->server("expired", {.dns = {"old.example.com"},
                                          .not_before = "20200101000000Z",
                                          .not_after = "20210101000000Z"});
  Cert future = pki_->server("future", {.dns = {"new.example.com"},
                                        .not_before = asn1_time(unix_now() + 10 * 86400),
                                        .not_after = asn1_time(unix_now() + 40 * 86400)});
  const std::string body = web("certificates: [@GOOD@, @EXPIRED@, @FUTURE@]", app.address());
  const Vars vars = {{"@GOOD@", good.pem}, {"@EXPIRED@", expired.pem}, {"@FUTURE@", future.pem}};
  const std::string path = pki_->write("check.yaml", config(body, vars));
  CommandResult r = run_weir({"-c", "-f", path});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(count_matching_lines(r.err, "warning: .*" + regex_escape(expired.pem)), 1u) << r.err;
  EXPECT_EQ(count_matching_lines(r.err, "warning: .*" + regex_escape(future.pem)), 1u) << r.err;
  EXPECT_EQ(count_matching_lines(r.err, "warning: .*" + regex_escape(good.pem)), 0u) << r.err;

  ASSERT_TRUE(start(body, vars));
  auto warnings = [&] {
    return count_matching_lines(weir_->stderr_text(), "warning.*" + regex_escape(expired.pem));
  };
  EXPECT_TRUE(wait_until([&] { return warnings() >= 1; }, 10000)) << weir_->stderr_text();
  const size_t at_start = warnings();
  ASSERT_TRUE(reload()) << weir_->stderr_text();
  EXPECT_TRUE(wait_until([&] { return warnings() > at_start; }, 10000)) << weir_->stderr_text();

  SClient old = sc({"-servername", "old.example.com", "-CAfile", pki_->root_ca()});
  EXPECT_EQ(old.cn(), "old.example.com") << old.out << old.err;
  EXPECT_EQ(old.verify_code(), 10) << old.out;  // certificate has expired
  EXPECT_TRUE(old.has("HTTP/1.1 200"));
  SClient young = sc({"-servername", "new.example.com", "-CAfile", pki_->root_ca()});
  EXPECT_EQ(young.cn(), "new.example.com") << young.out;
  EXPECT_EQ(young.verify_code(), 9) << young.out;  // not yet valid
}

// show ssl certs (user level): file, key type, subject, SANs, issuer, dates, seconds left.
TEST_F(Tls, ShowSslCertsListsEveryLoadedCertificate) {
  OriginServer app("app");
  Cert ec = pki_->server("ec", {.dns = {"a.example.com", "b.example.com"}});
  Cert rsa = pki_->server("rsa", {.dns = {"c.example.com"}, .key = KeyType::rsa, .days = 90});
  ASSERT_TRUE(start(web("certificates: [@EC@, @RSA@]", app.address()),
                    {{"@EC@", ec.pem}, {"@RSA@", rsa.pem}}));
  const std::string out = unix_command(user_api(), "show ssl certs");
  ASSERT_EQ(out.rfind("Error", 0), std::string::npos) << out;
  ASSERT_NE(out.find(ec.pem), std::string::npos) << out;
  ASSERT_NE(out.find(rsa.pem), std::string::npos) << out;
  // Each certificate's record: the blank-line separated block naming its file, or its line
  // when the answer is a table with one line per certificate.
  auto record = [&](const std::string& file) {
    std::vector<std::string> blocks;
    for (size_t pos = 0; pos < out.size();) {
      size_t end = out.find("\n\n", pos);
      if (end == std::string::npos) end = out.size();
      blocks.push_back(out.substr(pos, end - pos));
      pos = end + 2;
    }
    for (const std::string& b : blocks) {
      if (b.find(file) == std::string::npos) continue;
      if (b.find(ec.pem) != std::string::npos && b.find(rsa.pem) != std::string::npos) {
        for (const std::string& line : matching_lines(b, regex_escape(file))) return line;
      }
      return b;
    }
    return std::string();
  };
  const std::string ec_part = record(ec.pem), rsa_part = record(rsa.pem);
  auto year = [](long long t) { return asn1_time(t).substr(0, 4); };
  for (const auto& [c, text, key] : std::vector<std::tuple<const Cert*, std::string, std::string>>{
           {&ec, ec_part, "(EC|ECDSA|ec|ecdsa)"}, {&rsa, rsa_part, "(RSA|rsa)"}}) {
    EXPECT_NE(text.find(c->cn), std::string::npos) << text;                     // subject
    EXPECT_NE(text.find("weir-test-intermediate"), std::string::npos) << text;  // issuer
    EXPECT_TRUE(std::regex_search(text, std::regex(key))) << text;
    EXPECT_NE(text.find(year(c->not_after)), std::string::npos) << text;  // notAfter
    // The seconds left: some number within an hour of the truth.
    const long long left = c->not_after - unix_now();
    bool found = false;
    std::regex number(R"([0-9]{5,})");
    for (auto it = std::sregex_iterator(text.begin(), text.end(), number);
         it != std::sregex_iterator(); ++it) {
      long long v = std::stoll(it->str());
      if (v <= left + 60 && v >= left - 3600) found = true;
    }
    EXPECT_TRUE(found) << "no seconds-left near " << left << " in\n" << text;
  }
  EXPECT_NE(ec_part.find("b.example.com"), std::string::npos) << ec_part;  // every SAN
}

// /metrics: remaining lifetime and expiry date of every certificate.
TEST_F(Tls, MetricsShowCertificateExpiry) {
  OriginServer app("app");
  Cert ec = pki_->server("ec", {.dns = {"a.example.com"}});
  Cert rsa = pki_->server("rsa", {.dns = {"c.example.com"}, .key = KeyType::rsa, .days = 90});
  Cert expired = pki_->server("expired", {.dns = {"old.example.com"},
                                          .not_before = "20200101000000Z",
                                          .not_after = "20210101000000Z"});
  ASSERT_TRUE(start(web("certificates: [@EC@, @RSA@, @OLD@]", app.address()),
                    {{"@EC@", ec.pem}, {"@RSA@", rsa.pem}, {"@OLD@", expired.pem}}));
  const std::string text = metrics();
  EXPECT_NE(text.find("# TYPE weir_tls_certificate_expiry_seconds gauge"), std::string::npos)
      << text;
  EXPECT_NE(text.find("# TYPE weir_tls_certificate_not_after_seconds gauge"), std::string::npos);
  auto expiry = metric_samples(text, "weir_tls_certificate_expiry_seconds");
  auto not_after = metric_samples(text, "weir_tls_certificate_not_after_seconds");
  for (const Cert* c : {&ec, &rsa, &expired}) {
    const std::string file_label = "file=\"" + c->pem + "\"";
    int seen = 0;
    for (const auto& [labels, value] : expiry) {
      if (labels.find(file_label) == std::string::npos) continue;
      ++seen;
      EXPECT_NE(labels.find("subject=\""), std::string::npos) << labels;
      EXPECT_NE(labels.find(c->cn), std::string::npos) << labels;
      const double left = static_cast<double>(c->not_after - unix_now());
      EXPECT_LE(value, left + 60) << labels;
      EXPECT_GE(value, left - 3600) << labels;
    }
    EXPECT_EQ(seen, 1) << c->pem << "\n" << text;
    seen = 0;
    for (const auto& [labels, value] : not_after) {
      if (labels.find(file_label) == std::string::npos) continue;
      ++seen;
      EXPECT_EQ(static_cast<long long>(value), c->not_after) << labels;
    }
    EXPECT_EQ(seen, 1) << c->pem << "\n" << text;
  }
  for (const auto& [labels, value] : expiry) {
    if (labels.find(expired.pem) != std::string::npos) {
      EXPECT_LT(value, 0) << labels;
    }
  }
}

// A DER OCSP response in <certificate>.ocsp is stapled; it is read again at reload.
TEST_F(Tls, OcspResponsesAreStapledAndReadAgainOnReload) {
  OriginServer app("app");
  Cert a = pki_->server("a", {.dns = {"a.example.com"}});
  Cert b = pki_->server("b", {.dns = {"b.example.com"}});
  pki_->staple_ocsp(a);
  ASSERT_TRUE(
      start(web("certificates: [@A@, @B@]", app.address()), {{"@A@", a.pem}, {"@B@", b.pem}}));
  SClient sa = sc({"-status", "-servername", "a.example.com"}, "");
  EXPECT_TRUE(sa.has("OCSP Response Status: successful")) << sa.out;
  EXPECT_TRUE(sa.has("Cert Status: good")) << sa.out;
  SClient sb = sc({"-status", "-servername", "b.example.com"}, "");
  EXPECT_TRUE(sb.has("OCSP response: no response sent")) << sb.out;
  SClient no_status = sc({"-servername", "a.example.com"}, "");
  EXPECT_FALSE(no_status.has("OCSP Response Status")) << no_status.out;

  pki_->staple_ocsp(b);
  ASSERT_TRUE(reload()) << weir_->stderr_text();
  SClient sb2 = sc({"-status", "-servername", "b.example.com"}, "");
  EXPECT_TRUE(sb2.has("OCSP Response Status: successful")) << sb2.out;
}

// Health checks of TLS servers run over TLS with the backend's settings.
TEST_F(Tls, HealthChecksRunOverTls) {
  Cert named = pki_->server("named", {.dns = {"backend.internal"}});
  Cert stranger = pki_->untrusted_server("stranger", {.dns = {"backend.internal"}});
  TlsServer good("good", named);
  TlsServer bad("bad", stranger);
  ASSERT_TRUE(start(R"y(frontends:
  web:
    bind: ["127.0.0.1:@PORT@"]
    default_backend: http_checked
backends:
  http_checked:
    tls: {enabled: true, verify: required, ca_file: @ROOT@, sni: backend.internal}
    check: {type: http, path: /id.txt, inter: 300ms, timeout: 3s, rise: 1, fall: 2}
    servers: {good: "@GOOD@", bad: "@BAD@"}
  tcp_checked:
    tls: {enabled: true, verify: required, ca_file: @ROOT@, sni: backend.internal}
    check: {type: tcp, inter: 300ms, timeout: 3s, rise: 1, fall: 2}
    servers: {good: "@GOOD@", bad: "@BAD@"}
  lax_checked:
    tls: {enabled: true, verify: none}
    check: {type: http, path: /id.txt, inter: 300ms, timeout: 3s, rise: 1, fall: 2}
    servers: {bad: "@BAD@"}
)y",
                    {{"@GOOD@", good.address()}, {"@BAD@", bad.address()}}));
  auto status_of = [&](const std::string& be, const std::string& sv) {
    return stat_row(be, sv)["status"];
  };
  EXPECT_TRUE(wait_until([&] { return status_of("http_checked", "bad") == "DOWN"; }, 20000, 100))
      << unix_command(admin(), "show stat");
  auto bad_row = stat_row("http_checked", "bad");
  EXPECT_EQ(bad_row["check_status"], "L6RSP");
  EXPECT_NE(bad_row["last_chk"].find("TLS handshake failed: certificate verify failed"),
            std::string::npos)
      << bad_row["last_chk"];
  EXPECT_TRUE(wait_until([&] { return stat_row("http_checked", "good")["check_status"] == "L7OK"; },
                         20000, 100))
      << unix_command(admin(), "show stat");
  EXPECT_EQ(status_of("http_checked", "good"), "UP");
  EXPECT_TRUE(wait_until([&] { return status_of("tcp_checked", "bad") == "DOWN"; }, 20000, 100))
      << unix_command(admin(), "show stat");
  EXPECT_EQ(stat_row("tcp_checked", "bad")["check_status"], "L6RSP");
  EXPECT_EQ(status_of("tcp_checked", "good"), "UP");
  EXPECT_EQ(stat_row("tcp_checked", "good")["check_status"], "L6OK");  // once the handshake is done
  EXPECT_TRUE(wait_until([&] { return stat_row("lax_checked", "bad")["check_status"] == "L7OK"; },
                         20000, 100))
      << unix_command(admin(), "show stat");
  EXPECT_EQ(status_of("lax_checked", "bad"), "UP");
  // Traffic goes to the good server only.
  for (int i = 0; i < 4; ++i) {
    auto r = http_get(port_, "/id.txt");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(r->body, "good\n");
  }
  // The good server goes away: DOWN; back: UP.
  good.stop();
  EXPECT_TRUE(wait_until([&] { return status_of("http_checked", "good") == "DOWN"; }, 20000, 100))
      << unix_command(admin(), "show stat");
  ASSERT_TRUE(good.start()) << good.log();
  EXPECT_TRUE(wait_until([&] { return status_of("http_checked", "good") == "UP"; }, 20000, 100))
      << unix_command(admin(), "show stat");
}

}  // namespace
}  // namespace weir::test
