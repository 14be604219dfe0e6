#include "tests/support/line_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <stdexcept>

namespace weir::test {

LineServer::LineServer(std::string host, uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::runtime_error("LineServer: socket: " + std::string(strerror(errno)));
  listen_fd_ = UniqueFd(fd);
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  if (::inet_pton(AF_INET, host.c_str(), &a.sin_addr) != 1) {
    throw std::runtime_error("LineServer: not an IPv4 address: " + host);
  }
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(fd, 128) != 0) {
    throw std::runtime_error("LineServer: bind/listen: " + std::string(strerror(errno)));
  }
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  port_ = ntohs(a.sin_port);
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) throw std::runtime_error("LineServer: pipe");
  wake_[0] = UniqueFd(p[0]);
  wake_[1] = UniqueFd(p[1]);
  thread_ = std::thread([this] { run(); });
}

LineServer::~LineServer() {
  char c = 1;
  ssize_t ignored = ::write(wake_[1].get(), &c, 1);
  (void)ignored;
  if (thread_.joinable()) thread_.join();
}

void LineServer::set_reply(std::string reply) {
  std::lock_guard lock(mu_);
  reply_ = std::move(reply);
  reply_for_.clear();
}

void LineServer::set_reply_for(const std::string& local_ip, std::string reply) {
  std::lock_guard lock(mu_);
  reply_for_[local_ip] = std::move(reply);
}

void LineServer::set_wait_for(std::string text) {
  std::lock_guard lock(mu_);
  wait_for_ = std::move(text);
}

int LineServer::connections(const std::string& local_ip) const {
  std::lock_guard lock(mu_);
  if (local_ip.empty()) return accepted_total_;
  auto it = accepted_.find(local_ip);
  return it == accepted_.end() ? 0 : it->second;
}

std::string LineServer::last_received() const {
  std::lock_guard lock(mu_);
  return last_received_;
}

void LineServer::run() {
  for (;;) {
    pollfd p[2] = {{listen_fd_.get(), POLLIN, 0}, {wake_[0].get(), POLLIN, 0}};
    int n = ::poll(p, 2, -1);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 || (p[1].revents & POLLIN)) return;
    if (p[0].revents & POLLIN) {
      int fd = ::accept4(listen_fd_.get(), nullptr, nullptr, SOCK_CLOEXEC);
      if (fd >= 0) serve(fd);
    }
  }
}

void LineServer::serve(int raw) {
  UniqueFd fd(raw);
  sockaddr_in local{};
  socklen_t len = sizeof local;
  ::getsockname(raw, reinterpret_cast<sockaddr*>(&local), &len);
  char ip[INET_ADDRSTRLEN] = "";
  ::inet_ntop(AF_INET, &local.sin_addr, ip, sizeof ip);
  std::string reply, wait_for;
  {
    std::lock_guard lock(mu_);
    ++accepted_[ip];
    ++accepted_total_;
    auto it = reply_for_.find(ip);
    reply = it != reply_for_.end() ? it->second : reply_;
    wait_for = wait_for_;
  }
  std::string got;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(1);
  while (!wait_for.empty() && got.find(wait_for) == std::string::npos) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                    deadline - std::chrono::steady_clock::now())
                    .count();
    if (left <= 0) break;
    pollfd p{raw, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left)) <= 0) break;
    char buf[1024];
    ssize_t n = ::recv(raw, buf, sizeof buf, 0);
    if (n <= 0) break;
    got.append(buf, static_cast<size_t>(n));
  }
  {
    std::lock_guard lock(mu_);
    last_received_ = got;
  }
  size_t off = 0;
  while (off < reply.size()) {
    ssize_t n = ::send(raw, reply.data() + off, reply.size() - off, MSG_NOSIGNAL);
    if (n <= 0) break;
    off += static_cast<size_t>(n);
  }
}

}  // namespace weir::test
