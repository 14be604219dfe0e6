#pragma once
// The transport seam: a connected socket, read and written through Stream so that
// a TLS layer can slot in later without http or tcp sessions changing. Plain
// sockets go straight to the system calls (no virtual call, no allocation).

#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <memory>

#include "common/base/fd.h"

namespace weir {

// A security layer over a socket (TLS, worker/tls/tls.h). read and writev keep the
// contract of read(2)/writev(2): >0 bytes, 0 on orderly end, -1 with errno
// (EAGAIN to wait). As with a socket, a read shorter than asked means nothing
// more is buffered anywhere, and a short write means the socket is full, so the
// sessions' edge-triggered bookkeeping holds unchanged.
class SecureLayer {
 public:
  enum class Handshake { kDone, kWantRead, kWantWrite, kFailed };
  virtual ~SecureLayer() = default;
  // Drives the handshake; called until kDone before read/writev.
  virtual Handshake handshake() = 0;
  // Something can be read without the socket signalling: decrypted bytes kept
  // back, or the end of the stream seen but not reported yet.
  virtual bool pending() const = 0;
  virtual ssize_t read(char* buf, size_t len) = 0;
  virtual ssize_t writev(const iovec* iov, int count) = 0;
  virtual void shutdown_write() = 0;
};

class Stream {
 public:
  Stream() = default;
  explicit Stream(UniqueFd fd) : fd_(std::move(fd)) {}

  int fd() const { return fd_.get(); }
  bool valid() const { return fd_.valid(); }
  // Raw byte splicing is only possible without a security layer.
  bool plain() const { return !secure_; }
  SecureLayer* secure() const { return secure_.get(); }
  // After a short read: is it safe to wait for the socket's next edge?
  bool drained() const { return !secure_ || !secure_->pending(); }
  void set_secure(std::unique_ptr<SecureLayer> layer) { secure_ = std::move(layer); }

  ssize_t read(char* buf, size_t len) {
    if (secure_) return secure_->read(buf, len);
    return ::recv(fd_.get(), buf, len, 0);
  }
  ssize_t writev(const iovec* iov, int count) {
    if (secure_) return secure_->writev(iov, count);
    msghdr msg{};
    msg.msg_iov = const_cast<iovec*>(iov);
    msg.msg_iovlen = static_cast<size_t>(count);
    return ::sendmsg(fd_.get(), &msg, MSG_NOSIGNAL);
  }
  void shutdown_write() {
    if (secure_) secure_->shutdown_write();
    ::shutdown(fd_.get(), SHUT_WR);
  }
  void close() {
    secure_.reset();
    fd_.reset();
  }
  // Closes with an RST instead of a FIN (for aborts).
  void abort() {
    linger lg{1, 0};
    ::setsockopt(fd_.get(), SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    close();
  }

 private:
  UniqueFd fd_;
  std::unique_ptr<SecureLayer> secure_;
};

}  // namespace weir
