#include "worker/upstream/upstream_connection.h"

#include <sys/socket.h>

#include <cerrno>

#include "common/base/net.h"
#include "worker/backend/backend.h"
#include "worker/tls/tls.h"
#include "worker/upstream/upstream_pool.h"

namespace weir {

std::unique_ptr<UpstreamConnection> UpstreamConnection::open(EventLoop& loop, int thread,
                                                             Server* server, const SockAddr& addr,
                                                             User* user, bool* in_progress,
                                                             int* err) {
  UniqueFd fd = net::connect_tcp(addr, in_progress, err);
  if (!fd) return nullptr;
  const int raw = fd.get();
  auto conn = std::make_unique<UpstreamConnection>(server, addr, Stream(std::move(fd)), thread);
  conn->attach(user);
  if (!loop.add(raw, kEvents, conn.get())) {
    *err = errno != 0 ? errno : ENOMEM;
    return nullptr;
  }
  return conn;
}

UpstreamConnection::Progress UpstreamConnection::fail(int err) {
  state_ = State::kFailed;
  error_ = err;
  return Progress::kFailed;
}

UpstreamConnection::Progress UpstreamConnection::advance(const std::function<std::string()>& sni) {
  if (state_ == State::kReady) return Progress::kReady;
  if (state_ == State::kFailed) return Progress::kFailed;
  if (state_ == State::kConnecting) {
    if (int err = net::socket_error(stream_.fd()); err != 0) return fail(err);
    state_ = State::kFirstBytes;
  }
  if (state_ == State::kFirstBytes) return after_connect(sni);
  auto* conn = static_cast<tls::Connection*>(stream_.secure());
  switch (conn->handshake()) {
    case SecureLayer::Handshake::kDone:
      state_ = State::kReady;
      return Progress::kReady;
    case SecureLayer::Handshake::kWantRead:
    case SecureLayer::Handshake::kWantWrite:
      return Progress::kPending;
    case SecureLayer::Handshake::kFailed:
      break;
  }
  // A failed handshake (verification, protocol) counts as a connection error.
  // The session offered may be the cause: the next connection starts afresh.
  server_->tls_session(thread_)->clear();
  failure_ = conn->failure();
  return fail(EPROTO);
}

UpstreamConnection::Progress UpstreamConnection::after_connect(
    const std::function<std::string()>& sni) {
  while (!first_.empty()) {
    const ssize_t n = ::send(stream_.fd(), first_.data(), first_.size(), MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return Progress::kPending;  // EPOLLOUT next
      return fail(errno);
    }
    first_.erase(0, static_cast<size_t>(n));
  }
  std::string().swap(first_);
  const tls::BackContext* tc = server_->tls();
  if (!tc) {
    state_ = State::kReady;
    return Progress::kReady;
  }
  auto conn = tls::connect(*tc, stream_.fd(), sni(), server_->tls_session(thread_));
  if (!conn) {
    failure_ = "cannot create the TLS connection";
    return fail(EPROTO);
  }
  stream_.set_secure(std::move(conn));
  state_ = State::kHandshake;
  return advance(sni);
}

void UpstreamConnection::on_io(uint32_t events) {
  if (user_) {
    user_->on_upstream_io(events);
    return;
  }
  // Idle in the pool: a writable edge alone means nothing; any other event means
  // the server closed it or sent something unexpected: it cannot be reused.
  if (!(events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))) return;
  if (pool_) pool_->drop(this);
}

}  // namespace weir
