#pragma once
// The transport seam: a connected socket, read and written through Stream so that
// a TLS layer can slot in later without http or tcp sessions changing. Plain
// sockets go straight to the system calls (no virtual call, no allocation).

#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <memory>

#include "common/fd.h"

namespace weir {

// A security layer over a socket (TLS arrives with its own issue). Same contract as
// read(2)/writev(2): >0 bytes, 0 on orderly end, -1 with errno (EAGAIN to wait).
class SecureLayer {
 public:
  virtual ~SecureLayer() = default;
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
