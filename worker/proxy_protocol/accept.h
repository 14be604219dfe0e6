#pragma once
// The accept side of the PROXY protocol: a bind with `accept_proxy` hands each
// new connection to a HeaderWait session, which reads the balancer's header
// (and nothing after it) before the connection starts in its mode. What the
// header said then travels with the connection as a Proxied.

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "common/base/address.h"
#include "common/base/log.h"
#include "common/config/config.h"
#include "common/event/timer.h"
#include "worker/proxy_protocol/header.h"
#include "worker/session.h"

namespace weir {

class Frontend;
namespace tls {
class FrontContext;
}

// A connection that arrived with a PROXY protocol header. Held behind one
// pointer by the connection, null for the others.
struct Proxied {
  proxy_protocol::Header header;  // header.local: the real addresses stand
  SockAddr via;                   // the socket's own peer: the balancer in front
  // The client's address: the header's source, or with a LOCAL header the peer's.
  const SockAddr& client() const { return header.local ? via : header.src; }
};

// The connection's start in its frontend's mode (H1ClientConnection or
// TcpSession), from the listener or after a header: `peer` is the socket's peer.
void start_client_connection(ThreadContext& ctx, Frontend& fe, UniqueFd fd, const SockAddr& peer,
                             const tls::FrontContext* tls, std::unique_ptr<Proxied> proxied);

namespace proxy_protocol {

// Why a connection was refused before its header was read.
enum class Refusal : uint8_t { kUntrusted, kMissing, kMalformed, kTruncated, kTimeout };
inline constexpr int kRefusals = 5;
// "untrusted", "missing", ...: the reason's label in show info and /metrics.
const char* refusal_name(Refusal r);

// The worker's counts of headers accepted and connections refused (all
// threads), and the throttle of the refusal lines in the log (one a second).
class AcceptStats {
 public:
  void count_accepted() { accepted_.fetch_add(1, std::memory_order_relaxed); }
  // Counts the refusal and logs it, at most once a second.
  void refuse(Refusal r, const std::string& frontend, const SockAddr& peer, const std::string& why);
  uint64_t accepted() const { return accepted_.load(std::memory_order_relaxed); }
  uint64_t refused(Refusal r) const {
    return refused_[static_cast<int>(r)].load(std::memory_order_relaxed);
  }

 private:
  std::atomic<uint64_t> accepted_{0};
  std::atomic<uint64_t> refused_[kRefusals] = {};
  log::Throttle log_{1000};
};

// Owns a new connection until its header is read: refuses an untrusted peer at
// once, peeks at what arrived and parses it, then reads exactly the header's
// bytes (a TLS ClientHello or a request in the same segment stays in the
// socket for the connection) and starts the connection on the client's
// addresses. Missing, malformed, truncated or late: closed, counted and logged.
class HeaderWait final : public Session, public IoHandler {
 public:
  static void start(ThreadContext& ctx, Frontend& fe, const AcceptProxyConfig& cfg, UniqueFd fd,
                    const SockAddr& peer, const tls::FrontContext* tls);
  HeaderWait(ThreadContext& ctx, Frontend& fe, UniqueFd fd, const SockAddr& peer,
             const tls::FrontContext* tls);
  ~HeaderWait() override;

  void on_io(uint32_t events) override;
  // Draining: the header comes at once or not at all; the wait goes on to its
  // timeout and the connection, once started, closes after its first exchange.
  void drain() override {}
  void kill() override { close(); }
  std::string describe(int64_t now_ms) const override;
  const Server* server() const override { return nullptr; }
  void on_buffers_available() override {}  // holds no buffer

 private:
  static void on_timer(void* self);
  void read_header();
  void refuse(Refusal r, const std::string& why);
  void close();

  Frontend& fe_;
  UniqueFd fd_;
  SockAddr peer_;
  const tls::FrontContext* tls_;
  Timer timer_;
  int64_t t_start_ = 0;
  size_t seen_ = 0;  // bytes of the header seen so far
  bool done_ = false;
  bool peer_closed_ = false;  // the peer shut its side (or reset)
};

}  // namespace proxy_protocol
}  // namespace weir
