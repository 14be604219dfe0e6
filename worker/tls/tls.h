#pragma once
// TLS on the traffic path (doc/tls.md): Connection, the SecureLayer that http and
// tcp sessions and health checks read and write through, made from the contexts
// of common/tls; facts about a connection for fetches and logs.

#include <openssl/ssl.h>

#include <memory>
#include <string>
#include <string_view>

#include "common/tls/tls_context.h"
#include "worker/stream.h"

namespace weir::tls {

class Connection;

// The TLS layer of an accepted socket (its handshake not started); null when
// OpenSSL is out of memory.
std::unique_ptr<Connection> accept(const FrontContext& ctx, int fd);
// The TLS layer of a connection to a server on `fd` (see BackContext::new_ssl).
std::unique_ptr<Connection> connect(const BackContext& ctx, int fd, std::string_view sni,
                                    SessionSlot* slot);

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

}  // namespace weir::tls
