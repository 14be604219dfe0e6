// The tests' TCP relay (relay.h).

#include "tests/support/relay.h"

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
#include <deque>
#include <list>
#include <stdexcept>
#include <vector>

namespace weir::test {
namespace {

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

void set_nonblocking(int fd) {
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
}

// Closes with a reset rather than a FIN, as a broken network path looks.
void reset_close(int fd) {
  if (fd < 0) return;
  linger l{1, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
  ::close(fd);
}

struct Chunk {
  int64_t due;
  std::string bytes;
};

// One direction of a relayed connection.
struct Flow {
  std::deque<Chunk> queue;  // read from `from`, not yet written to `to`
  bool eof = false;         // `from` closed its side
  bool shut = false;        // `to` was told
};

struct Pair {
  int client = -1;
  int server = -1;
  bool connected = false;  // the connection to the target completed
  Flow up;                 // client -> server
  Flow down;               // server -> client
  bool dead = false;
};

}  // namespace

Relay::Relay(std::string target_host, uint16_t target_port)
    : host_(std::move(target_host)), target_port_(target_port) {
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      ::listen(listen_fd_, 64) != 0) {
    throw std::runtime_error(std::string("relay: cannot listen: ") + std::strerror(errno));
  }
  socklen_t len = sizeof a;
  ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&a), &len);
  port_ = ntohs(a.sin_port);
  set_nonblocking(listen_fd_);
  if (::pipe2(wake_, O_CLOEXEC | O_NONBLOCK) != 0) throw std::runtime_error("relay: pipe");
  thread_ = std::thread([this] { run(); });
}

Relay::~Relay() {
  stop_.store(true);
  (void)!::write(wake_[1], "x", 1);
  thread_.join();
  ::close(listen_fd_);
  ::close(wake_[0]);
  ::close(wake_[1]);
}

void Relay::cut() {
  cut_.store(true);
  cut_generation_.fetch_add(1);
  (void)!::write(wake_[1], "x", 1);
}

void Relay::heal() {
  cut_.store(false);
  (void)!::write(wake_[1], "x", 1);
}

void Relay::run() {
  std::list<Pair> pairs;
  int seen_cut = cut_generation_.load();
  char buf[65536];
  while (!stop_.load()) {
    if (cut_generation_.load() != seen_cut) {
      seen_cut = cut_generation_.load();
      for (Pair& p : pairs) {
        reset_close(p.client);
        reset_close(p.server);
      }
      pairs.clear();
    }
    const int64_t now = now_ms();
    int64_t next_due = -1;
    std::vector<pollfd> fds = {{wake_[0], POLLIN, 0}, {listen_fd_, POLLIN, 0}};
    std::vector<std::pair<Pair*, bool>> owners = {{nullptr, false}, {nullptr, false}};
    for (Pair& p : pairs) {
      for (int side = 0; side < 2; ++side) {
        const bool is_client = side == 0;
        const int fd = is_client ? p.client : p.server;
        Flow& in = is_client ? p.up : p.down;   // what this fd sends us
        Flow& out = is_client ? p.down : p.up;  // what we write to this fd
        short ev = 0;
        if (!is_client && !p.connected) {
          ev = POLLOUT;
        } else {
          if (!in.eof && in.queue.size() < 64) ev |= POLLIN;
          if (!out.queue.empty()) {
            if (out.queue.front().due <= now) {
              ev |= POLLOUT;
            } else if (next_due < 0 || out.queue.front().due < next_due) {
              next_due = out.queue.front().due;
            }
          }
        }
        fds.push_back({fd, ev, 0});
        owners.push_back({&p, is_client});
      }
    }
    int timeout = next_due < 0 ? 200 : static_cast<int>(std::max<int64_t>(0, next_due - now));
    ::poll(fds.data(), fds.size(), timeout);
    if (fds[0].revents & POLLIN) {
      while (::read(wake_[0], buf, sizeof buf) > 0) {
      }
    }
    if (fds[1].revents & POLLIN) {
      for (;;) {
        int c = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (c < 0) break;
        if (cut_.load()) {
          reset_close(c);
          continue;
        }
        int s = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        sockaddr_in t{};
        t.sin_family = AF_INET;
        t.sin_port = htons(target_port_);
        ::inet_pton(AF_INET, host_.c_str(), &t.sin_addr);
        int one = 1;
        ::setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        ::setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (::connect(s, reinterpret_cast<sockaddr*>(&t), sizeof t) != 0 && errno != EINPROGRESS) {
          reset_close(c);
          ::close(s);
          continue;
        }
        Pair p;
        p.client = c;
        p.server = s;
        pairs.push_back(std::move(p));
        connections_.fetch_add(1);
      }
    }
    const int64_t after = now_ms();
    const int delay = delay_ms_.load();
    for (size_t i = 2; i < fds.size(); ++i) {
      Pair& p = *owners[i].first;
      if (p.dead) continue;
      const bool is_client = owners[i].second;
      const int fd = fds[i].fd;
      Flow& in = is_client ? p.up : p.down;
      Flow& out = is_client ? p.down : p.up;
      const short re = fds[i].revents;
      if (!is_client && !p.connected) {
        if (re & (POLLOUT | POLLERR | POLLHUP)) {
          int err = 0;
          socklen_t len = sizeof err;
          ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
          if (err != 0) {
            p.dead = true;
          } else {
            p.connected = true;
          }
        }
        continue;
      }
      if (re & (POLLIN | POLLHUP | POLLERR)) {
        ssize_t n = ::read(fd, buf, sizeof buf);
        if (n > 0) {
          in.queue.push_back({after + delay, std::string(buf, static_cast<size_t>(n))});
        } else if (n == 0) {
          in.eof = true;
        } else if (errno != EAGAIN && errno != EINTR) {
          p.dead = true;  // reset by the peer: reset the other side too
          continue;
        }
      }
      if (re & POLLOUT) {
        while (!out.queue.empty() && out.queue.front().due <= after) {
          Chunk& c = out.queue.front();
          ssize_t n = ::send(fd, c.bytes.data(), c.bytes.size(), MSG_NOSIGNAL);
          if (n < 0) {
            if (errno != EAGAIN && errno != EINTR) p.dead = true;
            break;
          }
          c.bytes.erase(0, static_cast<size_t>(n));
          if (!c.bytes.empty()) break;
          out.queue.pop_front();
        }
      }
    }
    for (auto it = pairs.begin(); it != pairs.end();) {
      Pair& p = *it;
      for (Flow* f : {&p.up, &p.down}) {
        if (f->eof && f->queue.empty() && !f->shut) {
          ::shutdown(f == &p.up ? p.server : p.client, SHUT_WR);
          f->shut = true;
        }
      }
      if (p.dead || (p.up.shut && p.down.shut)) {
        reset_close(p.client);
        reset_close(p.server);
        it = pairs.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (Pair& p : pairs) {
    reset_close(p.client);
    reset_close(p.server);
  }
}

}  // namespace weir::test
