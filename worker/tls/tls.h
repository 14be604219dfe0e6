#pragma once
// TLS with OpenSSL 3 (doc/tls.md): the contexts built from a configuration (the
// certificates of a bind, chosen by SNI; the settings toward a server), the
// ticket keys every worker derives from the master's secret, and Connection,
// the SecureLayer that http and tcp sessions read and write through.

#include <openssl/ssl.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/config/config.h"
#include "worker/stream.h"

namespace weir::tls {

class Connection;
class SessionSlot;

// What `show ssl certs` and /metrics say about one loaded certificate.
struct CertInfo {
  std::string file;
  std::string key_type;  // RSA, ECDSA, Ed25519, ...
  std::string subject;   // /C=../O=../CN=..
  std::string issuer;
  std::string serial;              // upper-case hex
  std::vector<std::string> names;  // DNS subjectAltNames, else the CN
  int64_t not_before = 0;          // Unix seconds
  int64_t not_after = 0;
};

// The secret ticket keys are derived from (at least 32 bytes). The master makes
// one at start (or reads global.tls_ticket_secret_file) and hands it to every
// worker generation, so tickets survive reloads.
void set_ticket_secret(std::string_view secret);
std::string random_secret();
// Reads a secret file; false with *error when it is unreadable or too short.
bool read_secret_file(const std::string& path, std::string* out, std::string* error);

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

  // The TLS layer of an accepted socket (its handshake not started); null when
  // OpenSSL is out of memory.
  std::unique_ptr<Connection> accept(int fd) const;
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

  // The TLS layer of a connection to the server on `fd`, sending `sni` (empty:
  // none) and offering the session `slot` holds for that name; the sessions the
  // server hands out go to `slot`. The certificate must name verify_name, else
  // the SNI. Null when OpenSSL is out of memory.
  std::unique_ptr<Connection> connect(int fd, std::string_view sni, SessionSlot* slot) const;
  const TlsServerConfig& config() const { return cfg_; }

 private:
  BackContext() = default;
  TlsServerConfig cfg_;
  SSL_CTX* ctx_ = nullptr;
};

// The last session of a server, per thread, offered on the next connection.
// Sessions arrive through OpenSSL's new-session callback into the slot set on
// the connection (BackContext::connect), which must outlive the connection's handshake.
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

// One TLS connection: the SecureLayer of a Stream.
class Connection final : public SecureLayer {
 public:
  explicit Connection(SSL* ssl) : ssl_(ssl) {}
  ~Connection() override;
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  Handshake handshake() override;
  ssize_t read(char* buf, size_t len) override;
  ssize_t writev(const iovec* iov, int count) override;
  void shutdown_write() override;
  bool pending() const override { return eof_pending_ || SSL_has_pending(ssl_) == 1; }
  SSL* ssl() const { return ssl_; }
  // Why the handshake (or the connection) failed, in OpenSSL's words.
  const std::string& failure() const { return failure_; }

 private:
  SSL* ssl_;
  bool eof_ = false;
  bool eof_pending_ = false;  // eof_ seen after returning bytes: the next read says so
  int eof_errno_ = 0;         // the stream ended with an error (a reset): reads say so, not 0
  bool shut_ = false;
  std::string failure_;
};

// Facts about an established connection, for fetches and logs.
std::string_view version_name(const SSL* ssl);  // "TLSv1.3"
std::string_view cipher_name(const SSL* ssl);
std::string_view sni(const SSL* ssl);
std::string_view alpn(const SSL* ssl);
bool peer_cert_used(const SSL* ssl);
long peer_verify_result(const SSL* ssl);   // X509_V_OK (0) when valid or absent
std::string peer_subject(const SSL* ssl);  // "" without a certificate
std::string peer_issuer(const SSL* ssl);
std::string peer_serial(const SSL* ssl);

// A failed handshake, logged at most 10 times a second per thread (the rest are
// only counted): a client's on a frontend, weir's own toward a server.
void note_handshake_failure(const std::string& frontend, const std::string& peer,
                            const std::string& why);
void note_server_failure(const std::string& backend, const std::string& server,
                         const std::string& why);

// Subject/issuer in the /C=../CN=.. form (control characters shown as '?').
std::string name_text(const X509_NAME* name);

}  // namespace weir::tls
