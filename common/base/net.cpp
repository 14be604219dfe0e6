#include "common/base/net.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace weir::net {

bool set_nonblocking(int fd, bool on) {
  int flags = fcntl(fd, F_GETFL, 0);
  if (flags < 0) return false;
  flags = on ? (flags | O_NONBLOCK) : (flags & ~O_NONBLOCK);
  return fcntl(fd, F_SETFL, flags) == 0;
}

bool set_cloexec(int fd, bool on) {
  int flags = fcntl(fd, F_GETFD, 0);
  if (flags < 0) return false;
  flags = on ? (flags | FD_CLOEXEC) : (flags & ~FD_CLOEXEC);
  return fcntl(fd, F_SETFD, flags) == 0;
}

void set_nodelay(int fd) {
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

UniqueFd listen_tcp(const SockAddr& addr, int backlog, bool v6only, std::string* error) {
  UniqueFd fd(::socket(addr.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd) {
    *error = "cannot create socket for " + addr.to_string() + ": " + std::strerror(errno);
    return {};
  }
  int one = 1;
  setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (addr.family() == AF_INET6) {
    int v6 = v6only ? 1 : 0;
    setsockopt(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, &v6, sizeof v6);
  }
  if (::bind(fd.get(), addr.sa(), addr.len) != 0) {
    *error = "cannot bind " + addr.to_string() + ": " + std::strerror(errno);
    return {};
  }
  if (::listen(fd.get(), backlog) != 0) {
    *error = "cannot listen on " + addr.to_string() + ": " + std::strerror(errno);
    return {};
  }
  return fd;
}

UniqueFd listen_unix(const std::string& path, unsigned mode, int backlog, std::string* error) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path) {
    *error = "socket path too long: " + path;
    return {};
  }
  std::memcpy(addr.sun_path, path.data(), path.size());
  UniqueFd probe(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (::connect(probe.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
    *error = "socket " + path + " is in use by another process";
    return {};
  }
  // A socket left by an earlier run is replaced; anything else stays.
  struct stat st {};
  if (::lstat(path.c_str(), &st) == 0 && !S_ISSOCK(st.st_mode)) {
    *error = path + " exists and is not a socket; weir does not replace it";
    return {};
  }
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd) {
    *error = std::string("socket: ") + std::strerror(errno);
    return {};
  }
  ::unlink(path.c_str());
  mode_t old = umask(0177);
  int rc = ::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  umask(old);
  if (rc != 0 || ::chmod(path.c_str(), mode) != 0 || ::listen(fd.get(), backlog) != 0) {
    *error = "cannot listen on " + path + ": " + std::strerror(errno);
    return {};
  }
  return fd;
}

UniqueFd connect_tcp(const SockAddr& addr, bool* in_progress, int* err) {
  *in_progress = false;
  *err = 0;
  UniqueFd fd(::socket(addr.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd) {
    *err = errno;
    return {};
  }
  set_nodelay(fd.get());
  if (::connect(fd.get(), addr.sa(), addr.len) != 0) {
    if (errno != EINPROGRESS) {
      *err = errno;
      return {};
    }
    *in_progress = true;
  }
  return fd;
}

bool out_of_descriptors(int err) {
  return err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM;
}

int socket_error(int fd) {
  int err = 0;
  socklen_t len = sizeof err;
  if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) return errno;
  return err;
}

}  // namespace weir::net
