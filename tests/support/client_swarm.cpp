#include "tests/support/client_swarm.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <stdexcept>

namespace weir::test {

namespace {
using Clock = std::chrono::steady_clock;

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now().time_since_epoch())
      .count();
}
}  // namespace

struct ClientSwarm::Conn {
  UniqueFd fd;
  bool open = false;         // still being driven
  bool writing = false;      // EPOLLOUT wanted
  int64_t next_byte_ms = 0;  // trickle: when the next byte goes
};

int SwarmResult::status() const {
  if (response.compare(0, 5, "HTTP/") != 0) return 0;
  size_t sp = response.find(' ');
  if (sp == std::string::npos || sp + 4 > response.size()) return 0;
  return std::atoi(response.c_str() + sp + 1);
}

std::string_view SwarmResult::body() const {
  size_t end = response.find("\r\n\r\n");
  if (end == std::string::npos) return {};
  return std::string_view(response).substr(end + 4);
}

ClientSwarm::ClientSwarm(uint16_t port, size_t n, SwarmOptions opts)
    : port_(port), opts_(std::move(opts)), conns_(n), results_(n) {
  ignore_sigpipe();
  epfd_.reset(::epoll_create1(EPOLL_CLOEXEC));
  if (!epfd_) throw std::runtime_error("ClientSwarm: epoll_create1 failed");
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port_);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  for (size_t i = 0; i < n; ++i) {
    Conn& c = conns_[i];
    c.fd.reset(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!c.fd) throw std::runtime_error("ClientSwarm: socket: " + std::string(strerror(errno)));
    if (::connect(c.fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 &&
        errno != EINPROGRESS) {
      results_[i].connect_error = errno;
      c.fd.reset();
      finished_.fetch_add(1);
      continue;
    }
    c.open = true;
    c.writing = true;
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP;
    ev.data.u64 = i;
    ::epoll_ctl(epfd_.get(), EPOLL_CTL_ADD, c.fd.get(), &ev);
  }
  thread_ = std::thread([this] { run(); });
}

ClientSwarm::~ClientSwarm() {
  stop_.store(true);
  if (thread_.joinable()) thread_.join();
}

bool ClientSwarm::wait_finished(int timeout_ms) const {
  return wait_until([&] { return finished_.load() == conns_.size(); }, timeout_ms);
}

const std::vector<SwarmResult>& ClientSwarm::results() {
  stop_.store(true);
  if (thread_.joinable()) thread_.join();
  for (Conn& c : conns_) c.fd.reset();
  return results_;
}

void ClientSwarm::run() {
  const std::string& req = opts_.request;
  const bool trickle = opts_.trickle_ms > 0;
  auto end = [&](size_t i) {
    Conn& c = conns_[i];
    if (!c.open) return;
    c.open = false;
    c.fd.reset();  // as a client does once it has read the response
    finished_.fetch_add(1);
  };
  auto want_write = [&](size_t i, bool on) {
    Conn& c = conns_[i];
    if (c.writing == on) return;
    c.writing = on;
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLRDHUP | (on ? EPOLLOUT : 0u);
    ev.data.u64 = i;
    ::epoll_ctl(epfd_.get(), EPOLL_CTL_MOD, c.fd.get(), &ev);
  };
  // Sends what is due: everything, or up to first_bytes then a byte per tick.
  auto send_due = [&](size_t i, int64_t now) {
    Conn& c = conns_[i];
    SwarmResult& r = results_[i];
    size_t limit = req.size();
    if (trickle) {
      limit = std::min(req.size(), std::max(opts_.first_bytes, r.sent));
      if (r.sent >= opts_.first_bytes && now >= c.next_byte_ms && r.sent < req.size()) {
        limit = r.sent + 1;
        c.next_byte_ms = now + opts_.trickle_ms;
      }
    }
    while (r.sent < limit) {
      ssize_t n = ::send(c.fd.get(), req.data() + r.sent, limit - r.sent, MSG_NOSIGNAL);
      if (n > 0) {
        r.sent += static_cast<size_t>(n);
        continue;
      }
      if (n < 0 && errno == EAGAIN) return;  // EPOLLOUT stays wanted
      return;                                // the peer is gone: reading tells how
    }
    want_write(i, false);
  };
  epoll_event events[256];
  char buf[65536];
  while (!stop_.load() && finished_.load() < conns_.size()) {
    int n = ::epoll_wait(epfd_.get(), events, 256, trickle ? 20 : 100);
    const int64_t now = now_ms();
    for (int e = 0; e < n; ++e) {
      size_t i = events[e].data.u64;
      Conn& c = conns_[i];
      SwarmResult& r = results_[i];
      if (!c.open) continue;
      if (!r.connected && (events[e].events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) {
        int err = 0;
        socklen_t len = sizeof err;
        ::getsockopt(c.fd.get(), SOL_SOCKET, SO_ERROR, &err, &len);
        if (err != 0) {
          r.connect_error = err;
          end(i);
          continue;
        }
        r.connected = true;
        connected_.fetch_add(1);
        c.next_byte_ms = now + opts_.trickle_ms;
      }
      if (r.connected && (events[e].events & EPOLLOUT)) send_due(i, now);
      if (events[e].events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
        for (;;) {
          ssize_t got = ::recv(c.fd.get(), buf, sizeof buf, 0);
          if (got > 0) {
            r.received += static_cast<size_t>(got);
            size_t room = opts_.keep > r.response.size() ? opts_.keep - r.response.size() : 0;
            r.response.append(buf, std::min(room, static_cast<size_t>(got)));
            continue;
          }
          if (got == 0) {
            r.closed = true;
            end(i);
          } else if (errno != EAGAIN && errno != EINTR) {
            r.reset = errno == ECONNRESET;
            if (!r.connected) r.connect_error = errno;
            end(i);
          }
          break;
        }
      }
    }
    if (trickle) {
      for (size_t i = 0; i < conns_.size(); ++i) {
        Conn& c = conns_[i];
        if (c.open && results_[i].connected && !c.writing && now >= c.next_byte_ms &&
            results_[i].sent < req.size()) {
          want_write(i, true);
        }
      }
    }
  }
}

}  // namespace weir::test
