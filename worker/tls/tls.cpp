#include "worker/tls/tls.h"

#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <ctime>

#include "common/base/log.h"
#include "common/tls/certs.h"
#include "common/tls/ssl_util.h"

namespace weir::tls {
namespace {

// ---- the socket BIO ---------------------------------------------------------
// OpenSSL's socket BIO, plus one fact: whether the last recv() returned less
// than asked (the socket is drained, so its next data brings a new edge). A read
// that has emptied OpenSSL's buffers then needs no extra recv() just to see EAGAIN.

struct SockBio {
  int fd = -1;
  bool drained = false;
};

int sock_bio_read(BIO* b, char* buf, int len) {
  auto* sb = static_cast<SockBio*>(BIO_get_data(b));
  BIO_clear_retry_flags(b);
  ssize_t n = ::recv(sb->fd, buf, static_cast<size_t>(len), 0);
  if (n < 0) {
    sb->drained = errno == EAGAIN || errno == EWOULDBLOCK;
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) BIO_set_retry_read(b);
    return -1;
  }
  sb->drained = n < len;
  return static_cast<int>(n);
}

int sock_bio_write(BIO* b, const char* buf, int len) {
  auto* sb = static_cast<SockBio*>(BIO_get_data(b));
  BIO_clear_retry_flags(b);
  ssize_t n = ::send(sb->fd, buf, static_cast<size_t>(len), MSG_NOSIGNAL);
  if (n < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) BIO_set_retry_write(b);
    return -1;
  }
  return static_cast<int>(n);
}

long sock_bio_ctrl(BIO*, int cmd, long, void*) {
  switch (cmd) {
    case BIO_CTRL_FLUSH:
    case BIO_CTRL_PUSH:
    case BIO_CTRL_POP:
      return 1;
    default:
      return 0;
  }
}

int sock_bio_destroy(BIO* b) {
  delete static_cast<SockBio*>(BIO_get_data(b));
  BIO_set_data(b, nullptr);
  return 1;
}

BIO_METHOD* sock_bio_method() {
  static BIO_METHOD* m = [] {
    BIO_METHOD* bm = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "weir socket");
    BIO_meth_set_read(bm, sock_bio_read);
    BIO_meth_set_write(bm, sock_bio_write);
    BIO_meth_set_ctrl(bm, sock_bio_ctrl);
    BIO_meth_set_destroy(bm, sock_bio_destroy);
    return bm;
  }();
  return m;
}

// Attaches `fd` to `ssl` through the BIO above; false when out of memory.
bool attach_socket(SSL* ssl, int fd) {
  BIO* b = BIO_new(sock_bio_method());
  if (!b) return false;
  BIO_set_data(b, new SockBio{fd, false});
  BIO_set_init(b, 1);
  SSL_set_bio(ssl, b, b);
  return true;
}

bool socket_drained(const SSL* ssl) {
  const auto* sb = static_cast<const SockBio*>(BIO_get_data(SSL_get_rbio(ssl)));
  return sb && sb->drained;
}

// 10 lines per second per thread; true when this one may be logged.
bool log_budget() {
  thread_local int64_t second = 0;
  thread_local int used = 0;
  int64_t now = static_cast<int64_t>(time(nullptr));
  if (now != second) {
    second = now;
    used = 0;
  }
  return ++used <= 10;
}

}  // namespace

void note_handshake_failure(const std::string& frontend, const std::string& peer,
                            const std::string& why) {
  if (!log_budget()) return;
  log::warning("frontend '%s': TLS handshake with %s failed: %s", frontend.c_str(), peer.c_str(),
               why.c_str());
}

void note_server_failure(const std::string& backend, const std::string& server,
                         const std::string& why) {
  if (!log_budget()) return;
  log::warning("server %s/%s: TLS handshake failed: %s", backend.c_str(), server.c_str(),
               why.c_str());
}

std::unique_ptr<Connection> accept(const FrontContext& ctx, int fd) {
  SSL* ssl = ctx.new_ssl();
  if (!ssl) return nullptr;
  if (!attach_socket(ssl, fd)) {
    SSL_free(ssl);
    return nullptr;
  }
  return std::make_unique<Connection>(ssl);
}

std::unique_ptr<Connection> connect(const BackContext& ctx, int fd, std::string_view sni,
                                    SessionSlot* slot) {
  SSL* ssl = ctx.new_ssl(sni, slot);
  if (!ssl) return nullptr;
  if (!attach_socket(ssl, fd)) {
    SSL_free(ssl);
    return nullptr;
  }
  return std::make_unique<Connection>(ssl);
}

// ---- Connection -------------------------------------------------------------

Connection::~Connection() {
  // OpenSSL takes a connection freed without a close_notify exchange for a
  // truncated one and makes its session unresumable, yet weir closes most
  // connections that way (a server's idle connection, a client gone after its
  // response). Fatal errors still void the session (OpenSSL does that when it
  // sends the alert).
  if (SSL_is_init_finished(ssl_)) SSL_set_shutdown(ssl_, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
  SSL_free(ssl_);
}

SecureLayer::Handshake Connection::handshake() {
  ERR_clear_error();
  int r = SSL_do_handshake(ssl_);
  if (r == 1) return Handshake::kDone;
  int e = SSL_get_error(ssl_, r);
  if (e == SSL_ERROR_WANT_READ) return Handshake::kWantRead;
  if (e == SSL_ERROR_WANT_WRITE) return Handshake::kWantWrite;
  if (e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0) {
    failure_ = errno ? std::string("connection error: ") + std::strerror(errno)
                     : "connection closed during the handshake";
  } else {
    failure_ = openssl_error();
    long v = SSL_get_verify_result(ssl_);
    if (v != X509_V_OK) failure_ += std::string(" (") + X509_verify_cert_error_string(v) + ")";
  }
  ERR_clear_error();
  return Handshake::kFailed;
}

ssize_t Connection::read(char* buf, size_t len) {
  if (eof_) {
    eof_pending_ = false;
    if (eof_errno_ == 0) return 0;
    errno = eof_errno_;
    return -1;
  }
  size_t got = 0;
  while (got < len) {
    size_t n = 0;
    int r = SSL_read_ex(ssl_, buf + got, len - got, &n);
    if (r == 1) {
      got += n;
      // Nothing left in OpenSSL's buffers and the socket was found drained:
      // stop here rather than pay a recv() only to hear EAGAIN.
      if (got < len && SSL_has_pending(ssl_) == 0 && socket_drained(ssl_)) break;
      continue;
    }
    int e = SSL_get_error(ssl_, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
      if (got) return static_cast<ssize_t>(got);
      errno = EAGAIN;
      return -1;
    }
    int saved = errno;
    eof_ = true;
    if (e != SSL_ERROR_ZERO_RETURN) {
      failure_ = e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0
                     ? std::string(std::strerror(saved ? saved : ECONNRESET))
                     : openssl_error();
    }
    ERR_clear_error();
    if (e != SSL_ERROR_ZERO_RETURN) eof_errno_ = saved && saved != EAGAIN ? saved : ECONNRESET;
    if (got) {
      eof_pending_ = true;
      return static_cast<ssize_t>(got);
    }
    if (eof_errno_ == 0) return 0;
    errno = eof_errno_;
    return -1;
  }
  return static_cast<ssize_t>(got);
}

ssize_t Connection::writev(const iovec* iov, int count) {
  // One record per SSL_write (partial-write mode returns after each): small
  // pieces are gathered so a head and its body go out as one record. After a
  // want-write the caller passes the same bytes again, as for a socket, so the
  // first chunk is never shorter than the one OpenSSL kept pending.
  constexpr size_t kRecord = 16384;
  static thread_local char stage[kRecord];
  size_t total = 0;
  for (int i = 0; i < count; ++i) total += iov[i].iov_len;
  size_t done = 0;
  int idx = 0;
  size_t off = 0;
  while (done < total) {
    while (idx < count && off == iov[idx].iov_len) {
      ++idx;
      off = 0;
    }
    const char* ptr;
    size_t n;
    size_t rem = iov[idx].iov_len - off;
    if (rem >= kRecord || idx == count - 1 || total - done <= rem) {
      ptr = static_cast<const char*>(iov[idx].iov_base) + off;
      n = std::min(rem, kRecord);
    } else {
      n = 0;
      int j = idx;
      size_t o = off;
      while (j < count && n < kRecord) {
        size_t take = std::min(iov[j].iov_len - o, kRecord - n);
        std::memcpy(stage + n, static_cast<const char*>(iov[j].iov_base) + o, take);
        n += take;
        o += take;
        if (o == iov[j].iov_len) {
          ++j;
          o = 0;
        }
      }
      ptr = stage;
    }
    size_t w = 0;
    ERR_clear_error();
    int r = SSL_write_ex(ssl_, ptr, n, &w);
    if (r == 1) {
      done += w;
      // Advance the position by w bytes.
      size_t left = w;
      while (left > 0) {
        size_t take = std::min(left, iov[idx].iov_len - off);
        off += take;
        left -= take;
        if (off == iov[idx].iov_len && left > 0) {
          ++idx;
          off = 0;
        }
      }
      continue;
    }
    int e = SSL_get_error(ssl_, r);
    if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ) {
      if (done) return static_cast<ssize_t>(done);
      errno = EAGAIN;
      return -1;
    }
    int saved = errno;
    failure_ = e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0
                   ? std::string(std::strerror(saved ? saved : EPIPE))
                   : openssl_error();
    ERR_clear_error();
    if (done) return static_cast<ssize_t>(done);
    errno = saved && saved != EAGAIN ? saved : EPIPE;
    return -1;
  }
  return static_cast<ssize_t>(done);
}

void Connection::shutdown_write() {
  if (shut_) return;
  shut_ = true;
  // close_notify, best effort: a full socket or a broken connection loses it.
  if (SSL_is_init_finished(ssl_)) SSL_shutdown(ssl_);
  ERR_clear_error();
}

// ---- facts ------------------------------------------------------------------

std::string_view version_name(const SSL* ssl) {
  return SSL_get_version(ssl);
}

std::string_view cipher_name(const SSL* ssl) {
  const char* n = SSL_get_cipher_name(ssl);
  return n ? n : "";
}

std::string_view sni(const SSL* ssl) {
  const char* n = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
  return n ? n : "";
}

std::string_view alpn(const SSL* ssl) {
  const unsigned char* p = nullptr;
  unsigned int len = 0;
  SSL_get0_alpn_selected(ssl, &p, &len);
  return p ? std::string_view(reinterpret_cast<const char*>(p), len) : std::string_view();
}

bool peer_cert_used(const SSL* ssl) {
  X509* x = SSL_get0_peer_certificate(ssl);
  return x != nullptr;
}

long peer_verify_result(const SSL* ssl) {
  if (!SSL_get0_peer_certificate(ssl)) return X509_V_OK;
  return SSL_get_verify_result(ssl);
}

std::string peer_subject(const SSL* ssl) {
  X509* x = SSL_get0_peer_certificate(ssl);
  return x ? name_text(X509_get_subject_name(x)) : std::string();
}

std::string peer_issuer(const SSL* ssl) {
  X509* x = SSL_get0_peer_certificate(ssl);
  return x ? name_text(X509_get_issuer_name(x)) : std::string();
}

std::string peer_serial(const SSL* ssl) {
  X509* x = SSL_get0_peer_certificate(ssl);
  return x ? serial_hex(x) : std::string();
}

}  // namespace weir::tls
