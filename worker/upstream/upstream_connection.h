#pragma once
// One connection from a worker thread to one server, whoever uses it: an http
// request (and, kept alive, the next requests of any client of the thread), a
// tcp session, and later health checks. It knows how to connect (non-blocking,
// then TLS with the SNI its user computes and the thread's TLS session of the
// server) and where its events go: to the user it is attached to, or, while it
// waits idle in the thread's UpstreamPool, to the pool (any event then means the
// server closed it or sent what nobody asked for). It knows nothing of requests.

#include <sys/epoll.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "common/base/address.h"
#include "common/event/event_loop.h"
#include "worker/stream.h"

namespace weir {

class Server;
class UpstreamPool;

class UpstreamConnection final : public IoHandler, public Retired {
 public:
  // Receives the events of an attached connection.
  class User {
   public:
    virtual void on_upstream_io(uint32_t events) = 0;

   protected:
    ~User() = default;
  };

  // The events every upstream socket is polled for (edge-triggered).
  static constexpr uint32_t kEvents = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;

  // Starts a non-blocking connect to `server` at `addr`, registered with `loop`,
  // its events going to `user`. Null, with *err set, when no socket could be
  // made or registered; net::out_of_descriptors(*err) then means weir lacks a
  // descriptor (the server is not at fault). *in_progress false: the connect
  // completed at once (call advance() now). `thread` selects the server's TLS
  // session slot.
  static std::unique_ptr<UpstreamConnection> open(EventLoop& loop, int thread, Server* server,
                                                  const SockAddr& addr, User* user,
                                                  bool* in_progress, int* err);
  UpstreamConnection(Server* server, const SockAddr& addr, Stream stream, int thread)
      : server_(server), addr_(addr), stream_(std::move(stream)), thread_(thread) {}

  // Bytes to write first, once connected and before any TLS: a PROXY protocol
  // header (send_proxy). Set after open(), before the first advance().
  void send_first(std::string bytes) { first_ = std::move(bytes); }

  enum class Progress { kReady, kPending, kFailed };
  // Drives the connect, then the TLS handshake when the server speaks TLS (the
  // SNI is asked of `sni` only then). Call after open() and on each event that
  // wants_advance() until kReady; on kFailed, error() says why (EPROTO: TLS,
  // described by failure(); after a failed handshake the server's TLS session
  // is dropped). Logging the failure is the user's choice (traffic logs it,
  // health checks report it in the check status).
  Progress advance(const std::function<std::string()>& sni);
  // The connection is being established and `events` may move it on.
  bool wants_advance(uint32_t events) const {
    return state_ == State::kHandshake ||
           ((state_ == State::kConnecting || state_ == State::kFirstBytes) &&
            (events & (EPOLLOUT | EPOLLERR | EPOLLHUP)));
  }
  bool established() const { return state_ == State::kReady; }
  bool tcp_connecting() const {
    return state_ == State::kConnecting || state_ == State::kFirstBytes;
  }
  bool in_handshake() const { return state_ == State::kHandshake; }
  int error() const { return error_; }
  const std::string& failure() const { return failure_; }

  Server* server() const { return server_; }
  // Was it opened to `addr` (a server's address may change at runtime)?
  bool connected_to(const SockAddr& addr) const { return addr_ == CompactAddr(addr); }
  Stream& stream() { return stream_; }
  void attach(User* user) { user_ = user; }
  bool attached() const { return user_ != nullptr; }
  void on_io(uint32_t events) override;

 private:
  friend class UpstreamPool;
  enum class State : uint8_t { kConnecting, kFirstBytes, kHandshake, kReady, kFailed };
  Progress fail(int err);
  // Writes first_ (kFirstBytes until all of it is out), then starts TLS if the server speaks it.
  Progress after_connect(const std::function<std::string()>& sni);

  Server* server_;
  CompactAddr addr_;  // where it was opened to
  Stream stream_;
  int thread_;
  State state_ = State::kConnecting;
  int error_ = 0;
  std::string failure_;
  std::string first_;  // what send_first() asked, until written
  User* user_ = nullptr;
  UpstreamPool* pool_ = nullptr;  // while idle in a pool
  int64_t idle_since_ = 0;
};

}  // namespace weir
