#pragma once
// One client connection in http mode: reads requests (keep-alive, pipelined),
// sends each to a server chosen by the backend (reusing idle server
// connections), relays the response, and logs one line per request. A
// WebSocket upgrade (101) or an allowed CONNECT (2xx) turns the connection
// into a tunnel (http_tunnel.cpp) until either side closes.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "common/base/address.h"
#include "common/event/buffer.h"
#include "common/event/timer.h"
#include "worker/backend/backend.h"
#include "worker/http/http_codec.h"
#include "worker/rules/rules.h"
#include "worker/session.h"
#include "worker/stream.h"
#include "worker/thread_context.h"
#include "worker/tls/tls.h"

namespace weir {

class HttpSession final : public Session,
                          public IoHandler,
                          public UpstreamConnection::User,
                          public LbWaiter {
 public:
  // tls: the bind's TLS (null: plain TCP).
  static void start(ThreadContext& ctx, Frontend& fe, UniqueFd fd, const SockAddr& peer,
                    const tls::FrontContext* tls);
  HttpSession(ThreadContext& ctx, Frontend& fe, UniqueFd fd, const SockAddr& peer);
  ~HttpSession() override;

  void drain() override;
  void kill() override;
  void on_io(uint32_t events) override { on_client_io(events); }
  void on_upstream_io(uint32_t events) override;
  void on_buffers_available() override { run(); }
  std::string describe(int64_t now_ms) const override;
  const Server* server() const override;

  enum class Phase : uint8_t {
    kWaitRequest,  // waiting for (the rest of) a request head
    kQueued,       // waiting in a queue for a server slot
    kConnecting,   // a server connection is being established
    kExchange,     // request and response are flowing
    kTarpit,       // a tarpit rule holds the client until tarpit_until_
    kTunnel,       // after 101 Switching Protocols or a CONNECT's 2xx: bytes both ways
    kFlushClose,   // sending a final (often proxy-generated) response, then close
    kLinger,       // response sent and write side shut: discard input until the client closes
    kClosed,       // done; waiting to be destroyed
  };
  // The name `show sess` gives a phase (state=...).
  static const char* phase_name(Phase p);

 private:
  // Buffers a session holds at most: req_in_, req_out_, res_in_, res_out_.
  static constexpr unsigned kBufferClaim = 4;

 public:
  struct RequestState;

 private:
  void on_client_io(uint32_t events);
  // Drives the client's TLS handshake; true once it is done.
  bool client_handshake();
  // The SNI toward the server (its `sni` template over the current request).
  std::string server_sni();

  static void on_timer(void* self);
  void handle_timeout();
  void run();
  void update_timer();

  // Steps of run(); each returns true when it made progress.
  bool read_client();
  bool parse_request();
  bool write_server();
  bool read_server();
  bool parse_response();
  bool write_client();
  bool check_transaction_end();
  // Tunnel mode (http_tunnel.cpp): moves bytes both ways; true on progress.
  bool pump_tunnel();
  void start_tunnel();
  // The timeout of an established tunnel: the backend's `tunnel`, else the
  // shorter of client and server.
  int64_t tunnel_timeout() const;

  void begin_server_attempt();
  void connect_done();
  void connect_failed(int err);
  bool build_request_head();
  void extend_request_body_window();
  void extend_response_body_window();
  void server_failed_before_response(const char* term);
  // An invalid, truncated or timed-out response: counted on the backend and the server.
  void count_response_error();
  void finish_transaction();
  // Bytes of a next request have been read already (pipelining): closing after
  // the current response would leave them unanswered.
  bool next_request_buffered() const;
  void reset_transaction();
  // The server connection goes back to the thread's idle pool (reusable, and
  // not draining) or is closed. Not the slot: see release_slot().
  void release_server_conn(bool reusable);
  // An idle connection the request may use, as the backend's http_reuse allows
  // (this client's private one first); nullptr: connect.
  std::unique_ptr<UpstreamConnection> take_idle_connection();
  // Gives back the server slot taken by Backend::acquire() or take_grant(), if any.
  void release_slot();
  // A whole request waits for the response head (queued, connecting or sent).
  bool waiting_for_response() const;
  // The client left while its request waits: cancel it (CQ, CC or CH).
  void cancel_request();
  void on_server_granted() override;
  // A slot on r_->slot_.server() is held: an idle connection to it, or a new one.
  void start_on_server(int64_t now);
  // The request's key for hashing algorithms (lb_req_).
  void compute_lb_request(const http::MessageHead& h);
  void send_error(int status, const char* term);
  // A response of weir's own (errors, rules), then close.
  void respond(int status, std::string_view content_type, std::string body,
               std::string_view extra_headers, const char* term);
  // http_request rules of the frontend, then of the chosen backend. False when a
  // rule answered (deny, return, redirect, tarpit); `h` then no longer matters.
  // A rule that changed the request leaves `h` parsed from the edited head.
  bool apply_request_rules(http::MessageHead& h);
  // http_response rules of the backend, then of the frontend. False when a rule
  // answered instead of the server's response.
  bool apply_response_rules(const http::MessageHead& h);
  void answer_rule(const RuleVerdict& v);
  // Fills sample_values_ for the %[...] of access-log formats, each at the
  // moment its fetch has a value.
  enum class LogStage { kRequest, kResponse, kLog };
  void eval_log_samples(LogStage stage, const http::MessageHead* req, const http::MessageHead* res);
  const SockAddr* local_addr();
  // Answers the request from weir itself (metrics, stats page), then closes the
  // connection. extra_headers: complete header lines, each ending in CRLF.
  void serve_local(int status, std::string_view content_type, std::string body,
                   std::string_view extra_headers = {});
  // Returns every buffer, and the claim, to the pool, and leaves its queue: for
  // a session that reads and relays nothing more.
  void release_buffers();
  // Bytes of a request wait unread in the socket (no buffer could be had).
  bool request_unread();
  // Sends head + body (kFlushClose), then closes.
  void set_local_response(std::string head, std::string body, int status);
  // The server connection found weir out of file descriptors: try again soon,
  // until timeout connect, keeping the server slot (the server is not at fault).
  void wait_for_fd(int err, int64_t now);
  void close_client();
  // Gives back an empty request buffer, and the claim on the pool once no buffer is held.
  void release_idle_buffers();
  void destroy();
  void log_transaction();

  // The per-request block (http_request_state.h): null while the connection
  // is idle. Taken by take_request_state() before a read, given back by
  // give_back_request_state() when the read found nothing to start a request
  // with, and at destruction.
  bool take_request_state();
  void give_back_request_state();
  // The peer as text, made once per request block (logs, error captures).
  const std::string& peer_text();
  const Timeouts& fe_to() const { return fe_.config().timeouts; }

  Frontend& fe_;
  Stream client_;
  CompactAddr peer_addr_;
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
  RequestState* r_ = nullptr;
  // http_reuse: never: the server connection this client opened, kept between
  // its requests (attached to this session, so that its close is seen).
  std::unique_ptr<UpstreamConnection> private_srv_;
};

}  // namespace weir
