// The loader's side of TLS (doc/tls.md): the `tls:` keys of binds, backends and
// servers, inspect_delay and tls_ticket_secret_file. Certificates themselves are
// read by worker/tls/tls.cpp and tested with real files in tests/integration/tls_*.

#include <gtest/gtest.h>

#include <string>
#include <string_view>

#include "common/config/config.h"

namespace weir {
namespace {

LoadResult load(std::string_view text) {
  return load_config_text(text, "tls.yaml");
}

std::string errors_of(const LoadResult& r) {
  std::string out;
  for (const ConfigError& e : r.errors) out += "\n  " + e.to_string();
  return out;
}

testing::AssertionResult has_error(const LoadResult& r, int line, std::string_view text) {
  for (const ConfigError& e : r.errors) {
    if (e.line == line && e.message.find(text) != std::string::npos) {
      return testing::AssertionSuccess();
    }
  }
  return testing::AssertionFailure()
         << "no error on line " << line << " with '" << text << "'; errors:" << errors_of(r);
}

TEST(ConfigTls, BindTlsKeysAreRead) {
  LoadResult r = load(R"(frontends:
  web:
    bind:
      - address: "127.0.0.1:8443"
        tls:
          certificates: [/etc/weir/a.pem, /etc/weir/certs/]
          default_certificate: /etc/weir/a.pem
          alpn: [h2, http/1.1]
          min_version: TLSv1.3
          max_version: TLSv1.3
          ciphers: ECDHE-ECDSA-AES128-GCM-SHA256
          ciphersuites: TLS_AES_128_GCM_SHA256
          curves: X25519:P-256
          session_tickets: false
          session_cache: 0
          session_timeout: 10m
          verify: required
          ca_file: /etc/weir/ca.pem
          crl_file: /etc/weir/crl.pem
          client_cert_headers: true
    default_backend: app
backends:
  app: {servers: {s1: "127.0.0.1:9001"}}
)");
  ASSERT_TRUE(r.config) << errors_of(r);
  const TlsBindConfig& t = r.config->frontends[0].binds[0].tls;
  EXPECT_TRUE(t.enabled);
  ASSERT_EQ(t.certificates.size(), 2u);
  EXPECT_EQ(t.certificates[1], "/etc/weir/certs/");
  EXPECT_EQ(t.default_certificate, "/etc/weir/a.pem");
  ASSERT_EQ(t.alpn.size(), 2u);
  EXPECT_EQ(t.alpn[0], "h2");
  EXPECT_TRUE(t.alpn_set);
  EXPECT_EQ(t.min_version, kTls13);
  EXPECT_EQ(t.max_version, kTls13);
  EXPECT_EQ(t.curves, "X25519:P-256");
  EXPECT_FALSE(t.session_tickets);
  EXPECT_EQ(t.session_cache, 0u);
  EXPECT_EQ(t.session_timeout, 600000);
  EXPECT_EQ(t.verify, TlsBindConfig::Verify::kRequired);
  EXPECT_EQ(t.crl_file, "/etc/weir/crl.pem");
  EXPECT_TRUE(t.client_cert_headers);
}

TEST(ConfigTls, BindDefaultsAreTls12To13WithTicketsAndACache) {
  LoadResult r = load(R"(frontends:
  web:
    bind: [{address: "127.0.0.1:8443", tls: {certificates: /etc/weir/a.pem}}]
    default_backend: app
backends:
  app: {servers: {s1: "127.0.0.1:9001"}}
)");
  ASSERT_TRUE(r.config) << errors_of(r);
  const TlsBindConfig& t = r.config->frontends[0].binds[0].tls;
  ASSERT_EQ(t.certificates.size(), 1u);  // a single string is a list of one
  EXPECT_EQ(t.min_version, kTls12);
  EXPECT_EQ(t.max_version, kTls13);
  EXPECT_TRUE(t.session_tickets);
  EXPECT_EQ(t.session_cache, 20000u);
  EXPECT_EQ(t.session_timeout, 300000);
  EXPECT_EQ(t.verify, TlsBindConfig::Verify::kNone);
  EXPECT_FALSE(t.alpn_set);
  EXPECT_FALSE(r.config->frontends[0].binds[0].tls.client_cert_headers);
}

TEST(ConfigTls, BindErrorsPointAtTheirValue) {
  LoadResult r = load(R"(frontends:
  web:
    bind:
      - address: "127.0.0.1:8443"
        tls:
          certificates: [/etc/weir/a.pem]
          min_version: TLSv1.4
          verify: sometimes
          session_timeout: 0
          ciphers_suites: x
      - address: "127.0.0.1:8444"
        tls: {verify: required}
      - address: "127.0.0.1:8445"
        tls: {certificates: [/a.pem], min_version: TLSv1.3, max_version: TLSv1.2}
    default_backend: app
backends:
  app: {servers: {s1: "127.0.0.1:9001"}}
)");
  EXPECT_FALSE(r.config);
  EXPECT_TRUE(has_error(r, 7, "unknown TLS version 'TLSv1.4'"));
  EXPECT_TRUE(has_error(r, 8, "verify: unknown value 'sometimes'"));
  EXPECT_TRUE(has_error(r, 9, "session_timeout: must be between 1s and 7d"));
  EXPECT_TRUE(has_error(r, 10, "unknown key 'ciphers_suites'"));
  EXPECT_TRUE(has_error(r, 12, "at least one certificate"));
  EXPECT_TRUE(has_error(r, 12, "verify: required needs ca_file"));
  EXPECT_TRUE(has_error(r, 14, "min_version is above max_version"));
}

TEST(ConfigTls, ServersInheritTheBackendsTlsKeyByKey) {
  LoadResult r = load(R"(frontends:
  web: {bind: ["127.0.0.1:8080"], default_backend: app}
backends:
  app:
    tls: {ca_file: /etc/weir/ca.pem, sni: "%[hdr(host)]", alpn: http/1.1}
    servers:
      a: "10.0.0.1:443"
      b: {address: "10.0.0.2:443", tls: {verify: none, sni: api.internal}}
      c: {address: "10.0.0.3:80", tls: false}
  plain:
    servers:
      d: {address: "10.0.0.4:443", tls: true}
)");
  ASSERT_TRUE(r.config) << errors_of(r);
  const BackendConfig& app = r.config->backends[0];
  EXPECT_TRUE(app.default_tls.enabled);
  const TlsServerConfig& a = app.servers[0].tls;
  EXPECT_TRUE(a.enabled);
  EXPECT_TRUE(a.verify);
  EXPECT_EQ(a.ca_file, "/etc/weir/ca.pem");
  EXPECT_EQ(a.sni_text, "%[hdr(host)]");
  EXPECT_FALSE(a.sni.is_constant());
  const TlsServerConfig& b = app.servers[1].tls;
  EXPECT_TRUE(b.enabled);
  EXPECT_FALSE(b.verify);
  EXPECT_EQ(b.ca_file, "/etc/weir/ca.pem");  // kept from the backend
  EXPECT_EQ(b.sni_text, "api.internal");
  EXPECT_TRUE(b.sni.is_constant());
  ASSERT_EQ(b.alpn.size(), 1u);
  EXPECT_FALSE(app.servers[2].tls.enabled);
  EXPECT_TRUE(r.config->backends[1].servers[0].tls.enabled);
  EXPECT_TRUE(r.config->backends[1].servers[0].tls.verify);
}

TEST(ConfigTls, ServerTlsErrors) {
  LoadResult r = load(R"(frontends:
  web: {bind: ["127.0.0.1:8080"], default_backend: app}
backends:
  app:
    tls: {verify: maybe, sni: "%[nosuchfetch]"}
    servers:
      a: {address: "10.0.0.1:443", tls: {enabld: true}}
)");
  EXPECT_FALSE(r.config);
  EXPECT_TRUE(has_error(r, 5, "verify: unknown value 'maybe'"));
  EXPECT_TRUE(has_error(r, 5, "sni"));
  EXPECT_TRUE(has_error(r, 7, "unknown key 'enabld'"));
}

TEST(ConfigTls, InspectDelayAndTicketSecretFile) {
  LoadResult r = load(R"(global:
  tls_ticket_secret_file: /etc/weir/ticket.key
frontends:
  tin:
    mode: tcp
    bind: ["127.0.0.1:8443"]
    inspect_delay: 5s
    tcp_request:
      - content: {use_backend: mail}
        if: "{ req_ssl_sni -i mail.example.com } or { req_ssl_ver TLSv1.3 } or { req_ssl_hello }"
    default_backend: web
  web:
    bind: ["127.0.0.1:8080"]
    inspect_delay: 1s
    default_backend: app
backends:
  web: {mode: tcp, servers: {a: "10.0.0.1:443"}}
  mail: {mode: tcp, servers: {a: "10.0.0.2:443"}}
  app: {servers: {a: "10.0.0.3:80"}}
)");
  ASSERT_TRUE(r.config) << errors_of(r);
  EXPECT_EQ(r.config->global.tls_ticket_secret_file, "/etc/weir/ticket.key");
  EXPECT_EQ(r.config->frontends[0].inspect_delay, 5000);
  bool warned = false;
  for (const ConfigError& w : r.warnings) {
    warned =
        warned || (w.line == 14 && w.message.find("no effect in http mode") != std::string::npos);
  }
  EXPECT_TRUE(warned);
}

TEST(ConfigTls, TlsFetchesAreConnectionFetchesInTcpRules) {
  LoadResult r = load(R"(frontends:
  tin:
    mode: tcp
    bind: [{address: "127.0.0.1:8443", tls: {certificates: [/a.pem]}}]
    tcp_request:
      - content: reject
        unless: "{ ssl_sni -m end .example.com } and { ssl_version TLSv1.3 } and { ssl_c_verify 0 }"
      - content: reject
        if: "{ path_beg /x }"
    default_backend: web
backends:
  web: {mode: tcp, servers: {a: "10.0.0.1:443"}}
)");
  EXPECT_FALSE(r.config);
  EXPECT_EQ(r.errors.size(), 1u) << errors_of(r);
  EXPECT_TRUE(has_error(r, 9, "HTTP fetches belong to http_request"));
}

}  // namespace
}  // namespace weir
