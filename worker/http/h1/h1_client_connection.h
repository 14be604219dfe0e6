#pragma once
// One client connection in http mode, the HTTP/1 side of it: the socket and
// its TLS, reading and parsing requests (keep-alive, pipelined one after the
// other), writing response heads and bodies, half-close, lingering on close,
// and the handshake, http_request, http_keep_alive and client timeouts. Each
// request is an HttpTransaction (transaction.h) that lives in the connection's
// per-request block, and talks to the connection as its ClientStream. A
// WebSocket upgrade (101) or an allowed CONNECT (2xx) turns the connection into
// a tunnel (h1_tunnel.cpp) until either side closes.

#include <cstdint>
#include <memory>
#include <string>

#include "common/base/address.h"
#include "common/event/timer.h"
#include "worker/http/client_stream.h"
#include "worker/http/transaction.h"
#include "worker/proxy_protocol/accept.h"
#include "worker/session.h"
#include "worker/stream.h"
#include "worker/thread_context.h"
#include "worker/tls/tls.h"

namespace weir {

class H1ClientConnection final : public Session,
                                 public IoHandler,
                                 public Deferred,
                                 public ClientStream,
                                 public UpstreamConnection::User {
 public:
  // tls: the bind's TLS (null: plain TCP).
  // proxied: what the PROXY protocol header said (null: none); peer is the
  // socket's peer either way.
  static void start(ThreadContext& ctx, Frontend& fe, UniqueFd fd, const SockAddr& peer,
                    const tls::FrontContext* tls, std::unique_ptr<Proxied> proxied);
  H1ClientConnection(ThreadContext& ctx, Frontend& fe, UniqueFd fd, const SockAddr& peer,
                     std::unique_ptr<Proxied> proxied);
  ~H1ClientConnection() override;

  void drain() override;
  void kill() override;
  void on_io(uint32_t events) override { on_client_io(events); }
  // Only this client's private server connection (http_reuse: never) is
  // attached to the connection itself, while no request uses it.
  void on_upstream_io(uint32_t events) override;
  void on_buffers_available() override { run(); }
  std::string describe(int64_t now_ms) const override;
  const Server* server() const override;

  enum class Phase : uint8_t {
    kWaitRequest,  // waiting for (the rest of) a request head
    kTransaction,  // a transaction runs (its phase says where: queued, exchange...)
    kTunnel,       // after 101 Switching Protocols or a CONNECT's 2xx: bytes both ways
    kFlushClose,   // sending a final (often proxy-generated) response, then close
    kLinger,       // response sent and write side shut: discard input until the client closes
    kClosed,       // done; waiting to be destroyed
  };
  // The name `show sess` gives the connection's state (state=...): its phase's,
  // or while a transaction runs, the transaction's.
  static const char* phase_name(Phase p, HttpTransaction::Phase t);

  // ClientStream.
  Frontend& frontend() const override { return fe_; }
  tls::Connection* client_tls() const override { return c_tls_; }
  const TlsBindConfig* client_tls_config() const override { return c_tls_cfg_; }
  bool local_address(SockAddr* out) const override;
  const Proxied* proxied() const override { return proxied_.get(); }
  std::unique_ptr<stick::Trackers>* trackers() override { return &sc_; }
  bool take_buffer(Buffer& b) override { return Session::take_buffer(b, kBufferClaim); }
  void wake() override { run(); }
  bool defer_write(bool to_server) override { return ctx_.loop().hold_write(this, to_server); }
  void run_deferred() override { run(); }
  std::string_view request_head() const override;
  void release_request_head() override;
  bool read_request_body() override;
  BodySpan request_body() const override;
  bool request_body_complete() const override;
  void consume_request_body(size_t n) override;
  bool prepare_response() override;
  bool send_interim(std::string_view raw_head) override;
  bool send_response_head(const ResponseHead& head) override;
  bool response_started() const override;
  bool response_flushed() const override;
  size_t send_local_response(int status, std::string_view fields, std::string body) override;
  void end_response() override;
  void abort(AbortKind kind) override;
  void start_tunnel() override;
  bool first_request() const override { return first_request_; }
  std::unique_ptr<UpstreamConnection> take_private_upstream() override {
    return std::move(private_srv_);
  }
  void keep_private_upstream(std::unique_ptr<UpstreamConnection> conn) override;

  struct RequestBlock;

 private:
  using Session::take_buffer;
  // Buffers a connection holds at most: req_in_, res_out_, and the transaction's
  // request head for the server and server input.
  static constexpr unsigned kBufferClaim = 4;

  void on_client_io(uint32_t events);
  // Drives the client's TLS handshake; true once it is done.
  bool client_handshake();

  static void on_timer(void* self);
  void handle_timeout();
  void run();
  void update_timer();

  // Steps of run() on the client's side; each returns true when it made progress.
  bool read_client();
  bool parse_request();
  bool write_client();
  // Tunnel mode (h1_tunnel.cpp): moves bytes both ways; true on progress.
  bool pump_tunnel();

  void extend_request_body_window();
  // Bytes of a next request have been read already (pipelining): closing after
  // the current response would leave them unanswered.
  bool next_request_buffered() const;
  // The transaction is over and the connection stays: ready for the next request.
  void reset_transaction();
  // A whole request waits for the response head (queued, connecting or sent).
  bool waiting_for_response() const;
  // A tarpit rule holds the request.
  bool tarpitted() const;
  // Returns every buffer, and the claim, to the pool, and leaves its queue: for
  // a connection that reads and relays nothing more.
  void release_buffers();
  // Bytes of a request wait unread in the socket (no buffer could be had).
  bool request_unread();
  void close_client();
  // Gives back an empty request buffer, and the claim on the pool once no buffer is held.
  void release_idle_buffers();
  void destroy();

  // The per-request block (h1_request_block.h): null while the connection
  // is idle. Taken by take_request_block() before a read, given back by
  // give_back_request_block() when the read found nothing to start a request
  // with, and at destruction.
  bool take_request_block();
  void give_back_request_block();
  const Timeouts& fe_to() const { return fe_.config().timeouts; }
  // The client's address: the PROXY header's source, else the socket's peer.
  SockAddr client_addr() const {
    return proxied_ && !proxied_->header.local ? proxied_->header.src : peer_addr_.expand();
  }

  Frontend& fe_;
  Stream client_;
  CompactAddr peer_addr_;  // the socket's peer (with a PROXY header: the balancer)
  Phase phase_ = Phase::kWaitRequest;
  // Client socket readiness (edge-triggered: true until a call returns EAGAIN).
  bool c_readable_ = true;
  bool c_writable_ = true;
  bool c_eof_ = false;
  bool c_hup_ = false;        // the peer shut its side (sticky): keep reading to see the end
  bool c_handshake_ = false;  // the client's TLS handshake is under way
  bool first_request_ = true;
  Timer timer_;
  int64_t c_last_activity_ = 0;
  tls::Connection* c_tls_ = nullptr;  // the client's TLS layer (owned by client_)
  const TlsBindConfig* c_tls_cfg_ = nullptr;

  int64_t t_start_ = 0;       // request start (accept, or end of previous response)
  int64_t t_start_wall_ = 0;  // same, wall clock
  RequestBlock* r_ = nullptr;
  // http_reuse: never: the server connection this client opened, kept between
  // its requests (attached to this connection, so that its close is seen).
  std::unique_ptr<UpstreamConnection> private_srv_;
  std::unique_ptr<const Proxied> proxied_;  // a PROXY protocol header came first
  std::unique_ptr<stick::Trackers> sc_;     // stick-table entries tracked (track rules)
};

}  // namespace weir
