#include "tests/support/script_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <stdexcept>

namespace weir::test {

namespace {
using Clock = std::chrono::steady_clock;

int left_ms(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  return left.count() < 0 ? 0 : static_cast<int>(left.count());
}
}  // namespace

bool ScriptConn::fill(int timeout_ms) {
  if (eof_) return false;
  pollfd p{fd_, POLLIN, 0};
  int r;
  do r = ::poll(&p, 1, timeout_ms);
  while (r < 0 && errno == EINTR);
  if (r <= 0) return false;
  char tmp[65536];
  ssize_t n;
  do n = ::recv(fd_, tmp, sizeof tmp, 0);
  while (n < 0 && errno == EINTR);
  if (n <= 0) {
    eof_ = true;
    return false;
  }
  buf_.append(tmp, static_cast<size_t>(n));
  server_->record(index_, std::string_view(tmp, static_cast<size_t>(n)));
  return true;
}

std::string ScriptConn::read_until(std::string_view marker, int timeout_ms, bool* ok) {
  const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  for (;;) {
    size_t at = buf_.find(marker);
    if (at != std::string::npos) {
      std::string out = buf_.substr(0, at + marker.size());
      buf_.erase(0, at + marker.size());
      if (ok) *ok = true;
      return out;
    }
    if (!fill(left_ms(deadline))) {
      if (ok) *ok = false;
      return {};
    }
  }
}

std::string ScriptConn::read_some(int timeout_ms) {
  if (buf_.empty()) fill(timeout_ms);
  std::string out;
  out.swap(buf_);
  return out;
}

std::string ScriptConn::read_exact(size_t n, int timeout_ms) {
  const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  while (buf_.size() < n && fill(left_ms(deadline))) {
  }
  std::string out = buf_.substr(0, n);
  buf_.erase(0, out.size());
  return out;
}

std::string ScriptConn::read_available(int timeout_ms) {
  const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  while (fill(left_ms(deadline))) {
  }
  std::string out;
  out.swap(buf_);
  return out;
}

bool ScriptConn::wait_eof(int timeout_ms) {
  const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  while (!eof_) {
    if (!fill(left_ms(deadline)) && !eof_) return false;
    buf_.clear();
  }
  return true;
}

bool ScriptConn::send(std::string_view bytes) {
  while (!bytes.empty()) {
    ssize_t w = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    bytes.remove_prefix(static_cast<size_t>(w));
  }
  return true;
}

void ScriptConn::shutdown_write() {
  ::shutdown(fd_, SHUT_WR);
}

void ScriptConn::reset() {
  linger lg{1, 0};
  ::setsockopt(fd_, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
  close();
}

void ScriptConn::close() {
  if (fd_ < 0) return;
  std::lock_guard lock(server_->mu_);
  server_->fds_.remove(fd_);
  ::close(fd_);
  fd_ = -1;
  eof_ = true;
}

ScriptServer::ScriptServer(Handler handler) : handler_(std::move(handler)) {
  ignore_sigpipe();
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) throw std::runtime_error("ScriptServer: socket: " + std::string(strerror(errno)));
  int one = 1;
  ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      ::listen(fd.get(), 128) != 0) {
    throw std::runtime_error("ScriptServer: bind/listen: " + std::string(strerror(errno)));
  }
  socklen_t len = sizeof a;
  ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&a), &len);
  port_ = ntohs(a.sin_port);
  listen_fd_ = std::move(fd);
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) throw std::runtime_error("ScriptServer: pipe");
  wake_[0] = UniqueFd(p[0]);
  wake_[1] = UniqueFd(p[1]);
  acceptor_ = std::thread([this] { run(); });
}

ScriptServer::~ScriptServer() {
  stopping_ = true;
  char c = 1;
  ssize_t ignored = ::write(wake_[1].get(), &c, 1);
  (void)ignored;
  if (acceptor_.joinable()) acceptor_.join();
  std::list<std::thread> threads;
  {
    std::lock_guard lock(mu_);
    for (int fd : fds_) ::shutdown(fd, SHUT_RDWR);
    threads.swap(threads_);
  }
  for (auto& t : threads)
    if (t.joinable()) t.join();
}

void ScriptServer::run() {
  for (;;) {
    pollfd fds[2] = {{listen_fd_.get(), POLLIN, 0}, {wake_[0].get(), POLLIN, 0}};
    int r = ::poll(fds, 2, -1);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0 || fds[1].revents != 0) return;
    int fd = ::accept4(listen_fd_.get(), nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    std::lock_guard lock(mu_);
    if (stopping_) {
      ::close(fd);
      return;
    }
    int index = accepted_++;
    received_.emplace_back();
    fds_.push_back(fd);
    threads_.emplace_back([this, fd, index] {
      ScriptConn conn;
      conn.server_ = this;
      conn.fd_ = fd;
      conn.index_ = index;
      handler_(conn);
      conn.close();
    });
  }
}

void ScriptServer::record(int index, std::string_view bytes) {
  std::lock_guard lock(mu_);
  auto it = received_.begin();
  std::advance(it, index);
  it->append(bytes);
}

std::string ScriptServer::received() const {
  std::lock_guard lock(mu_);
  std::string out;
  for (const auto& r : received_) out += r;
  return out;
}

}  // namespace weir::test
