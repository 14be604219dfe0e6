#pragma once
// One client connection in tcp mode: connects to a server chosen by the backend
// (with retries) and forwards bytes both ways until both sides have closed.
// Half-closes are propagated. A direction that streams in bulk (reads that fill
// the whole buffer, global.tune.splice_threshold bytes in a row) switches to
// splice() through a pipe so the bytes are not copied through user space; it
// switches back when the flow turns into small messages, where two splice()
// calls cost more than a read and a write.

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/base/address.h"
#include "common/event/buffer.h"
#include "common/event/timer.h"
#include "common/tls/tls_hello.h"
#include "worker/backend/backend.h"
#include "worker/backend/persistence.h"
#include "worker/proxy_protocol/accept.h"
#include "worker/rules/rules.h"
#include "worker/session.h"
#include "worker/stream.h"
#include "worker/thread_context.h"
#include "worker/tls/tls.h"
#include "worker/upstream/server_slot.h"

namespace weir {
namespace stick {
class Trackers;
}

class TcpSession final : public Session,
                         public LbWaiter,
                         public UpstreamConnection::User,
                         public Deferred {
 public:
  // tls: the bind's TLS (null: plain TCP): weir terminates it and forwards clear bytes.
  // proxied: what the PROXY protocol header said (null: none); peer is the
  // socket's peer either way.
  static void start(ThreadContext& ctx, Frontend& fe, UniqueFd fd, const SockAddr& peer,
                    const tls::FrontContext* tls, std::unique_ptr<Proxied> proxied);
  TcpSession(ThreadContext& ctx, Frontend& fe, UniqueFd fd, const SockAddr& peer,
             std::unique_ptr<Proxied> proxied);
  ~TcpSession() override;

  void drain() override {}  // a tunnel ends when its peers end it (or at hard_stop_after)
  void kill() override;
  void on_buffers_available() override { run(); }
  void run_deferred() override { run(); }
  std::string describe(int64_t now_ms) const override;
  const Server* server() const override { return t_connected_ >= 0 ? slot_.server() : nullptr; }

 private:
  // Buffers a connection holds at most: one per direction.
  static constexpr unsigned kBufferClaim = 2;

  enum class Phase {
    kHandshake,   // the client's TLS handshake
    kInspect,     // tcp_request content rules wait for the client's first bytes
    kQueued,      // waiting in a queue for a server slot
    kConnecting,  // waiting for the server connection
    kForwarding,  // bytes flow both ways
    kClosed,      // done; waiting to be destroyed
  };
  enum Side { kClient = 0, kServer = 1 };

  class SideHandler final : public IoHandler {
   public:
    SideHandler(TcpSession& s, Side side) : s_(s), side_(side) {}
    void on_io(uint32_t events) override { s_.on_side_io(side_, events); }

   private:
    TcpSession& s_;
    Side side_;
  };

  // One direction of the tunnel (client to server, or server to client).
  struct Direction {
    Side src;
    Side dst;
    Buffer buf;
    std::unique_ptr<SplicePipe> pipe;
    uint64_t bytes = 0;      // forwarded so far
    uint64_t bulk = 0;       // bytes read in a row by reads that filled the whole buffer
    bool src_eof = false;    // the source sent its FIN
    bool shut_sent = false;  // the FIN was passed on
  };

  void on_side_io(Side side, uint32_t events);
  void on_upstream_io(uint32_t events) override { on_side_io(kServer, events); }
  // The socket of one side; before a server connection exists, an empty
  // stream whose calls fail (EBADF), as the side's readiness flags say none come.
  Stream& stream(Side side) {
    if (side == kClient) return client_;
    return srv_ ? srv_->stream() : no_server_;
  }
  static void on_timer(void* self);
  void run();
  bool pump(Direction& d);
  bool pump_buffered(Direction& d);
  bool pump_spliced(Direction& d);
  // After the connection rules (and the handshake): content rules, then connect.
  void begin_content();
  void run_content_rules();
  bool client_handshake();
  // Fetch context of the connection (addresses, TLS, the inspected ClientHello).
  void fill_fetch(SampleSource& f, SockAddr* local, bool* have_local);
  void begin_connect();
  void on_server_granted() override;
  // Connects to slot_.server() (a slot on it is held).
  void connect_to();
  void connect_done();
  void connect_failed(int err);
  void update_timer();
  void finish(char who, char phase);
  // A read or write on `side` failed (a reset, mostly): ends the session in the data phase.
  void fail(Side side);
  void destroy();

  Frontend& fe_;
  Backend* be_;
  Stream client_;
  SideHandler client_handler_{*this, kClient};
  std::unique_ptr<UpstreamConnection> srv_;  // once a server is chosen
  Stream no_server_;
  bool readable_[2] = {true, false};
  bool writable_[2] = {true, false};
  bool hup_[2] = {false, false};
  int64_t last_activity_ = 0;
  Direction up_{kClient, kServer, {}, {}, 0, 0, false, false};
  Direction down_{kServer, kClient, {}, {}, 0, 0, false, false};
  SockAddr peer_;  // the client (with a PROXY header: the address it named)
  std::string peer_text_;
  // Persistence: the server the client's stick entry names (its server_key), and
  // the keys its store rules write once a server is connected.
  uint32_t stuck_key_ = 0;
  std::vector<persist::PendingStore> stores_;
  std::unique_ptr<const Proxied> proxied_;  // a PROXY protocol header came first
  std::unique_ptr<stick::Trackers> sc_;     // stick-table entries tracked (track rules)
  Timer timer_;
  Phase phase_ = Phase::kConnecting;
  ServerSlot slot_;  // the claim on a server: attempts, queue, slot
  int64_t t_start_ = 0;
  int64_t t_start_wall_ = 0;
  int64_t t_connect_start_ = -1;
  int64_t t_connected_ = -1;
  char term_[3] = {'-', '-', 0};
  tls::Connection* c_tls_ = nullptr;  // the client's TLS layer (owned by client_)
  int64_t t_inspect_start_ = -1;
  tls::ClientHello hello_;  // what content inspection found
  bool hello_done_ = false;
  bool reset_both_ = false;  // close both connections with a reset (fail())
  bool fd_wait_ = false;     // kConnecting without a socket: waiting for a descriptor
  int64_t fd_retry_at_ = 0;  // when to try for one again
};

}  // namespace weir
