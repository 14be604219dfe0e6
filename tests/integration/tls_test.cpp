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
#include <map>
#include <regex>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "tests/support/http_client.h"
#include "tests/support/launcher.h"
#include "tests/support/origin.h"
#include "tests/support/tls_certs.h"

namespace weir::test {
namespace {

using Vars = std::vector<std::pair<std::string, std::string>>;

[[maybe_unused]] std::string replace_all(std::string s, const Vars& vars) {
  for (const auto& [key, value] : vars) {
    for (size_t pos = s.find(key); pos != std::string::npos; pos = s.find(key, pos + value.size()))
      s.replace(pos, key.size(), value);
  }
  return s;
}

// The 1-based line of the first line of text containing needle (0 when none).
[[maybe_unused]] int line_of(const std::string& text, const std::string& needle) {
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
[[maybe_unused]] UniqueFd connect_raw(uint16_t port) {
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return UniqueFd();
  return fd;
}

// True when the peer closes (EOF or reset) within timeout_ms; bytes received are dropped.
[[maybe_unused]] bool closed_by_peer(int fd, int timeout_ms) {
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
[[maybe_unused]] std::vector<std::pair<std::string, double>> metric_samples(
    const std::string& text, const std::string& name) {
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

}  // namespace
}  // namespace weir::test
