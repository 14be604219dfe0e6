#pragma once
// TLS contexts built from a configuration (doc/tls.md): the certificates of a
// bind, chosen by SNI, and the settings toward a server. The master builds them
// to check a configuration (weir -c, reloads); the worker builds them to serve.

#include <openssl/ssl.h>

#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/config/config.h"
#include "common/tls/certs.h"
#include "common/tls/tickets.h"

namespace weir::tls {

class SessionSlot;

// Problems found while building contexts, at the `tls:` entry of the configuration.
struct Problems {
  std::string file;  // the configuration file
  std::vector<ConfigError>* errors;
  std::vector<ConfigError>* warnings;
  void error(const SourceMark& m, std::string msg) const;
  void warn(const SourceMark& m, std::string msg) const;
};

// The TLS side of one bind: an SSL_CTX per group of certificates serving the
// same names (an RSA and an ECDSA certificate together), chosen by SNI.
class FrontContext {
 public:
  // Null when a certificate or setting does not load (reported to `p`).
  // `label` starts every message ("frontend 'web': bind :443: tls").
  static std::shared_ptr<FrontContext> build(const TlsBindConfig& cfg, Mode mode,
                                             const std::string& label, const Problems& p);
  ~FrontContext();
  FrontContext(const FrontContext&) = delete;
  FrontContext& operator=(const FrontContext&) = delete;

  // A new server-side SSL for an accepted connection (the caller owns it), on
  // the default certificate until the client's SNI selects another; null when
  // OpenSSL is out of memory.
  SSL* new_ssl() const;
  const TlsBindConfig& config() const { return cfg_; }
  const std::vector<CertInfo>& certs() const { return certs_; }
  // The context serving `name` (lower-case): exact, then wildcard, then default.
  SSL_CTX* select(std::string_view name) const;

 private:
  FrontContext() = default;
  friend struct FrontBuilder;
  friend int ocsp_status_cb(SSL*, void*);
  TlsBindConfig cfg_;
  std::string alpn_wire_;  // length-prefixed protocols
  std::vector<SSL_CTX*> ctxs_;
  SSL_CTX* default_ = nullptr;
  std::unordered_map<std::string, SSL_CTX*> exact_;
  std::unordered_map<std::string, SSL_CTX*> wildcard_;  // "example.com" for *.example.com
  std::map<const X509*, std::string> ocsp_;             // leaf -> DER OCSP response
  std::vector<CertInfo> certs_;
};

// The TLS settings toward one server (or a backend's default).
class BackContext {
 public:
  static std::shared_ptr<BackContext> build(const TlsServerConfig& cfg, const std::string& label,
                                            const Problems& p);
  ~BackContext();
  BackContext(const BackContext&) = delete;
  BackContext& operator=(const BackContext&) = delete;

  // A new client-side SSL toward the server (the caller owns it), sending `sni`
  // (empty: none) and offering the session `slot` holds for that name; the
  // sessions the server hands out go to `slot`, which must outlive the
  // handshake. The certificate must name verify_name, else the SNI. Null when
  // OpenSSL is out of memory.
  SSL* new_ssl(std::string_view sni, SessionSlot* slot) const;
  // The SNI to send: none (""), the configured name as written, or its template
  // rendered from `f` without a port ("%[hdr(host)]" giving "a.example:8443"
  // sends "a.example"; a bracketed IPv6 literal stays whole). The one place
  // http mode, tcp mode and health checks take it from.
  std::string sni(cond::FetchContext& f) const;
  const TlsServerConfig& config() const { return cfg_; }

 private:
  BackContext() = default;
  TlsServerConfig cfg_;
  SSL_CTX* ctx_ = nullptr;
};

// The last session of a server, per thread, offered on the next connection.
// Sessions arrive through OpenSSL's new-session callback into the slot set on
// the connection (BackContext::new_ssl), which must outlive the connection's handshake.
class SessionSlot {
 public:
  SessionSlot() = default;
  ~SessionSlot();
  SessionSlot(const SessionSlot&) = delete;
  SessionSlot& operator=(const SessionSlot&) = delete;
  // The session made for server name `sni`, or null: a session is offered only
  // to a connection asking for the same name (its certificate was checked
  // against that name, and resuming skips the check).
  SSL_SESSION* get(std::string_view sni) const { return sni == sni_ ? session_ : nullptr; }
  void replace(SSL_SESSION* s, std::string_view sni);  // takes ownership
  void clear() { replace(nullptr, {}); }

 private:
  SSL_SESSION* session_ = nullptr;
  std::string sni_;
};

// Labels of configuration messages about TLS.
std::string bind_label(const FrontendConfig& fe, const BindConfig& b);
std::string backend_label(const BackendConfig& be);
std::string server_label(const BackendConfig& be, const ServerConfig& s);
bool same_mark(const SourceMark& a, const SourceMark& b);

// Builds every context of a configuration to report problems (weir -c, reloads).
bool check_config(const Config& cfg, std::vector<ConfigError>* errors,
                  std::vector<ConfigError>* warnings);

}  // namespace weir::tls
