// TLS contexts built from a configuration (common/tls/tls_context.h), with
// certificates made by the openssl tool as an operator makes them
// (tests/support/tls_certs.h): which certificate a client's SNI gets, what
// `show ssl certs` says about each, how broken files are reported at their key,
// and the settings toward a server, its SNI included.

#include "common/tls/tls_context.h"

#include <gtest/gtest.h>
#include <openssl/x509v3.h>

#include <memory>
#include <string>
#include <vector>

#include "tests/support/tls_certs.h"

namespace weir {
namespace {

using test::Cert;
using test::CertSpec;
using test::KeyType;
using test::TestPki;

// The CN of the certificate a context serves.
std::string served_cn(SSL_CTX* ctx) {
  if (!ctx) return "<no context>";
  X509* leaf = SSL_CTX_get0_certificate(ctx);
  if (!leaf) return "<no certificate>";
  char cn[256] = {};
  X509_NAME_get_text_by_NID(X509_get_subject_name(leaf), NID_commonName, cn, sizeof cn);
  return cn;
}

class TlsContexts : public ::testing::Test {
 protected:
  void SetUp() override { pki_ = std::make_unique<TestPki>(); }

  // A configuration with one https frontend whose bind has `tls` (a YAML flow
  // map body), and a backend "app" whose server has `server_tls`.
  Config load(const std::string& tls, const std::string& server_tls = "enabled: false") {
    const std::string yaml =
        "frontends:\n  web:\n    bind:\n      - address: \"127.0.0.1:8443\"\n"
        "        tls: {" +
        tls +
        "}\n    default_backend: app\nbackends:\n  app:\n    servers:\n"
        "      s1: {address: \"127.0.0.1:9443\", tls: {" +
        server_tls + "}}\n";
    LoadResult r = load_config_text(yaml, "tls.yaml");
    EXPECT_TRUE(r.config) << (r.errors.empty() ? yaml : r.errors[0].to_string());
    return r.config ? std::move(*r.config) : Config{};
  }
  std::shared_ptr<tls::FrontContext> front(const Config& c) {
    return tls::FrontContext::build(c.frontends[0].binds[0].tls, Mode::kHttp, "bind", problems());
  }
  tls::Problems problems() { return tls::Problems{"tls.yaml", &errors_, &warnings_}; }
  std::string messages(const std::vector<ConfigError>& list) const {
    std::string out;
    for (const ConfigError& e : list) out += e.to_string() + "\n";
    return out;
  }

  std::unique_ptr<TestPki> pki_;
  std::vector<ConfigError> errors_, warnings_;
};

TEST_F(TlsContexts, TheSniPicksAnExactNameThenAWildcardThenTheDefault) {
  Cert fallback = pki_->server("fallback", {.dns = {"fallback.example"}});
  Cert shop = pki_->server("shop", {.dns = {"shop.example.com", "www.shop.example.com"}});
  Cert wild = pki_->server("wild", {.dns = {"*.example.org"}});
  auto ctx =
      front(load("certificates: [" + fallback.pem + ", " + shop.pem + ", " + wild.pem + "]"));
  ASSERT_TRUE(ctx) << messages(errors_);
  EXPECT_EQ(served_cn(ctx->select("shop.example.com")), "shop.example.com");
  EXPECT_EQ(served_cn(ctx->select("www.shop.example.com")), "shop.example.com");
  EXPECT_EQ(served_cn(ctx->select("api.example.org")), "*.example.org");
  EXPECT_EQ(served_cn(ctx->select("a.b.example.org")), "fallback.example");  // one label only
  EXPECT_EQ(served_cn(ctx->select("example.org")), "fallback.example");
  EXPECT_EQ(served_cn(ctx->select("")), "fallback.example");  // no SNI: the first loaded
  EXPECT_TRUE(errors_.empty()) << messages(errors_);
  EXPECT_TRUE(warnings_.empty()) << messages(warnings_);
}

TEST_F(TlsContexts, DefaultCertificateCanBeNamed) {
  Cert a = pki_->server("a", {.dns = {"a.example"}});
  Cert b = pki_->server("b", {.dns = {"b.example"}});
  auto ctx =
      front(load("certificates: [" + a.pem + ", " + b.pem + "], default_certificate: " + b.pem));
  ASSERT_TRUE(ctx) << messages(errors_);
  EXPECT_EQ(served_cn(ctx->select("unknown.example")), "b.example");
  EXPECT_EQ(served_cn(ctx->select("a.example")), "a.example");
}

// What `show ssl certs` and /metrics print comes from the file as loaded.
TEST_F(TlsContexts, EachLoadedCertificateIsDescribed) {
  Cert shop = pki_->server("shop", {.dns = {"shop.example.com", "www.shop.example.com"}});
  Cert rsa = pki_->server("shop-rsa", {.dns = {"shop.example.com"}, .key = KeyType::rsa});
  auto ctx = front(load("certificates: [" + shop.pem + ", " + rsa.pem + "]"));
  ASSERT_TRUE(ctx) << messages(errors_);
  ASSERT_EQ(ctx->certs().size(), 2u);
  const tls::CertInfo& c = ctx->certs()[0];
  EXPECT_EQ(c.file, shop.pem);
  EXPECT_EQ(c.key_type, "ECDSA");
  EXPECT_EQ(c.subject, shop.subject);
  EXPECT_EQ(c.issuer, shop.issuer);
  EXPECT_EQ(c.serial, shop.serial);
  EXPECT_EQ(c.names, (std::vector<std::string>{"shop.example.com", "www.shop.example.com"}));
  EXPECT_EQ(c.not_before, shop.not_before);
  EXPECT_EQ(c.not_after, shop.not_after);
  EXPECT_EQ(ctx->certs()[1].key_type, "RSA");
  // An ECDSA and an RSA certificate for the same name serve it together: the
  // client's signature algorithms choose.
  EXPECT_EQ(ctx->select("shop.example.com"), ctx->select("shop.example.com"));
  SSL_CTX* served = ctx->select("shop.example.com");
  ASSERT_NE(served, nullptr);
  EXPECT_EQ(served_cn(served), "shop.example.com");
}

// A broken file is an error at its bind's `tls:` key, saying which file and
// what is wrong; weir -c and reloads report them all (check_config).
TEST_F(TlsContexts, BrokenFilesAreReportedAtTheirKey) {
  struct Case {
    std::string file;
    std::string says;
  };
  const std::vector<Case> cases = {
      {pki_->mismatched_key("mismatch"), "the private key does not match the certificate"},
      {pki_->missing_key("nokey"), "no private key in the file nor in "},
      {pki_->garbage("garbage"), "holds no PEM certificate"},
      {pki_->key_only("keyonly"), "holds no PEM certificate"},
      {pki_->dir() + "/absent.pem", "cannot read "},
  };
  for (const Case& c : cases) {
    errors_.clear();
    Config config = load("certificates: [" + c.file + "]");
    EXPECT_FALSE(tls::check_config(config, &errors_, &warnings_)) << c.file;
    ASSERT_FALSE(errors_.empty()) << c.file;
    const std::string text = errors_[0].to_string();
    EXPECT_EQ(
        text.rfind("tls.yaml:5:14: frontend 'web': bind 127.0.0.1:8443: tls: certificates: ", 0),
        0u)
        << text;
    EXPECT_NE(text.find(c.says), std::string::npos) << text;
  }
}

// An expired certificate still loads (a client may accept it), with a warning.
TEST_F(TlsContexts, AnExpiredCertificateIsAWarning) {
  Cert old = pki_->server(
      "old",
      {.dns = {"old.example"}, .not_before = "20200101000000Z", .not_after = "20200201000000Z"});
  Config config = load("certificates: [" + old.pem + "]");
  EXPECT_TRUE(tls::check_config(config, &errors_, &warnings_)) << messages(errors_);
  ASSERT_EQ(warnings_.size(), 1u) << messages(warnings_);
  EXPECT_NE(warnings_[0].message.find("expired"), std::string::npos) << messages(warnings_);
}

// Toward a server: the CA file and the client certificate are checked when the
// context is built.
TEST_F(TlsContexts, ServerSettingsAreCheckedWhenBuilt) {
  Cert site = pki_->server("site", {.dns = {"site.example"}});
  Cert client = pki_->client("weir-client", {.subject = "/O=weir-tests/CN=weir"});
  Config good = load("certificates: [" + site.pem + "]",
                     "enabled: true, ca_file: " + pki_->root_ca() + ", cert: " + client.pem);
  EXPECT_TRUE(tls::check_config(good, &errors_, &warnings_)) << messages(errors_);
  Config bad_ca =
      load("certificates: [" + site.pem + "]", "enabled: true, ca_file: " + pki_->garbage("ca"));
  EXPECT_FALSE(tls::check_config(bad_ca, &errors_, &warnings_));
  EXPECT_NE(messages(errors_).find("tls.yaml:10:44: server 's1' of backend 'app': tls: ca_file"),
            std::string::npos)
      << messages(errors_);
  EXPECT_NE(messages(errors_).find("ca_file"), std::string::npos) << messages(errors_);
  errors_.clear();
  Config bad_cert = load("certificates: [" + site.pem + "]",
                         "enabled: true, verify: none, cert: " + pki_->mismatched_key("client"));
  EXPECT_FALSE(tls::check_config(bad_cert, &errors_, &warnings_));
  EXPECT_NE(messages(errors_).find("cert"), std::string::npos) << messages(errors_);
}

// A request's Host, as the fetch of a template gives it.
struct HostOnly final : cond::FetchContext {
  std::string host;
  void fetch(const cond::FetchSpec& f, std::vector<cond::Sample>& out) override {
    if (f.name() != "hdr" || host.empty()) return;
    cond::Sample s;
    s.str = host;
    out.push_back(s);
  }
};

// The SNI toward a server: none, a fixed name as written, or a template
// rendered without a port (http mode, tcp mode and checks all take it here).
TEST_F(TlsContexts, ServerSniIsFixedOrRenderedWithoutAPort) {
  auto back = [&](const std::string& sni) {
    Config c = load("certificates: [" + pki_->server("s", {.dns = {"s.example"}}).pem + "]",
                    "enabled: true, verify: none" + (sni.empty() ? "" : ", sni: " + sni));
    return tls::BackContext::build(c.backends[0].servers[0].tls, "server", problems());
  };
  HostOnly req;
  req.host = "a.example.com:8443";
  auto none = back("");
  ASSERT_TRUE(none) << messages(errors_);
  EXPECT_EQ(none->sni(req), "");
  auto fixed = back("backend.internal");
  ASSERT_TRUE(fixed);
  EXPECT_EQ(fixed->sni(req), "backend.internal");
  auto from_host = back("\"%[hdr(host)]\"");
  ASSERT_TRUE(from_host);
  EXPECT_EQ(from_host->sni(req), "a.example.com");
  req.host = "b.example.com";
  EXPECT_EQ(from_host->sni(req), "b.example.com");
  req.host = "[2001:db8::1]:8443";
  EXPECT_EQ(from_host->sni(req), "[2001:db8::1]:8443");  // a bracketed literal stays whole
  req.host = "";
  EXPECT_EQ(from_host->sni(req), "");
}

}  // namespace
}  // namespace weir
