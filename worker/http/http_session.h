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

class HttpSession final : public Session, public ServerConn::Owner, public LbWaiter {
 public:
  // tls: the bind's TLS (null: plain TCP).
  static void start(ThreadContext& ctx, Frontend& fe, UniqueFd fd, const SockAddr& peer,
                    const tls::FrontContext* tls);
  HttpSession(ThreadContext& ctx, Frontend& fe, UniqueFd fd, const SockAddr& peer);
  ~HttpSession() override;

  void drain() override;
  void kill() override;
  void on_server_io(uint32_t events) override;
  void on_buffers_available() override { run(); }
  std::string describe(int64_t now_ms) const override;
  const Server* server() const override { return server_; }

  enum class Phase {
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

  class ClientHandler final : public IoHandler {
   public:
    explicit ClientHandler(HttpSession& s) : s_(s) {}
    void on_io(uint32_t events) override { s_.on_client_io(events); }

   private:
    HttpSession& s_;
  };

  void on_client_io(uint32_t events);
  // Drives the client's TLS handshake; true once it is done.
  bool client_handshake();
  // Drives the server's TLS handshake (phase kConnecting); true once it is done.
  bool server_handshake();
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
  // Gives back the server slot taken by Backend::acquire() or take_grant(), if any.
  void release_slot();
  // A whole request waits for the response head (queued, connecting or sent).
  bool waiting_for_response() const;
  // The client left while its request waits: cancel it (CQ, CC or CH).
  void cancel_request();
  void on_server_granted() override;
  void start_on_server(Server* server, int64_t now);
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

  Frontend& fe_;
  Backend* be_;
  const Timeouts& fe_to_;
  Stream client_;
  ClientHandler client_handler_{*this};
  SockAddr peer_;
  std::string peer_text_;
  Timer timer_;
  Phase phase_ = Phase::kWaitRequest;

  // Client socket readiness (edge-triggered: true until a call returns EAGAIN).
  bool c_readable_ = true;
  bool c_writable_ = true;
  bool c_eof_ = false;
  bool c_hup_ = false;  // the peer shut its side (sticky): keep reading to see the end
  int64_t c_last_activity_ = 0;
  tls::Connection* c_tls_ = nullptr;  // the client's TLS layer (owned by client_)
  const TlsBindConfig* c_tls_cfg_ = nullptr;
  bool c_handshake_ = false;  // the client's TLS handshake is under way
  bool s_handshake_ = false;  // the server's TLS handshake is under way (kConnecting)
  bool s_tcp_up_ = false;     // the server's TCP connection is established
  std::string tls_failure_;   // why the server's TLS handshake failed

  Buffer req_in_;   // raw bytes from the client
  Buffer req_out_;  // rewritten request head for the server
  Buffer res_in_;   // raw bytes from the server
  Buffer res_out_;  // rewritten response head (or a generated response) for the client

  // Current request.
  size_t req_scan_ = 0;      // where the search for the end of the head resumes
  size_t req_head_raw_ = 0;  // raw head bytes still at the front of req_in_ (kept for a retry)
  bool req_parsed_ = false;
  bool req_after_client_end_ = false;  // the client had shut its side when the head was parsed
  std::string req_method_;
  std::string request_line_;           // for the access log
  std::vector<std::string> captures_;  // request headers printed by %hr{} in log formats
  int req_minor_ = 1;
  bool req_keep_alive_ = true;
  http::BodyKind req_body_ = http::BodyKind::kNone;
  uint64_t req_body_left_ = 0;  // content-length bytes not yet in the window
  http::ChunkedWalker req_chunks_;
  size_t req_body_window_ = 0;      // body bytes at the front of req_in_ ready to send
  bool req_body_complete_ = false;  // every body byte has entered the window
  bool req_sent_ = false;           // head and whole body written to the server
  bool req_head_built_ = false;
  bool req_upgrade_ = false;     // a WebSocket upgrade was forwarded with this request
  bool req_connect_ = false;     // this request is an (allowed) CONNECT
  bool tunnel_pending_ = false;  // the response switches to a tunnel once it is sent
  bool scratch_fresh_ = false;   // the thread's scratch head holds this request's parse

  // Server side.
  Server* server_ = nullptr;
  Server* slot_server_ = nullptr;  // the server whose slot this request holds
  Backend* slot_backend_ = nullptr;
  QueueTicket ticket_;          // while waiting in a queue
  LbRequest lb_req_;            // hashing key of the current request
  int64_t t_queue_start_ = -1;  // when the current wait in a queue began; -1: not waiting
  int64_t queue_ms_ = 0;        // time spent in queues by this request
  std::unique_ptr<ServerConn> srv_;
  bool srv_reused_ = false;
  bool replayed_ = false;  // the request was replayed after a reused connection failed
  bool s_readable_ = false;
  bool s_writable_ = false;
  bool s_eof_ = false;
  bool s_reset_ = false;  // the server's side ended with an error (a reset), not a FIN
  bool s_hup_ = false;
  int64_t s_last_activity_ = 0;
  TriedServers tried_;
  int attempts_ = 0;
  bool fd_wait_ = false;     // kConnecting without a socket: waiting for a descriptor
  int64_t fd_retry_at_ = 0;  // when to try for one again

  // Current response.
  size_t res_scan_ = 0;
  bool res_parsed_ = false;
  int res_status_ = 0;
  http::BodyKind res_body_ = http::BodyKind::kNone;
  uint64_t res_body_left_ = 0;
  http::ChunkedWalker res_chunks_;
  size_t res_body_window_ = 0;
  bool res_body_complete_ = false;
  bool res_server_keep_alive_ = false;
  bool close_after_response_ = false;  // tell the client Connection: close and close after

  // Timing for the log (loop-monotonic ms) and counters.
  int64_t t_start_ = 0;           // request start (accept, or end of previous response)
  int64_t t_start_wall_ = 0;      // same, wall clock
  int64_t t_req_first_byte_ = 0;  // first byte of the current request head
  int64_t t_head_ = -1;           // request head complete
  int64_t t_connect_start_ = -1;
  int64_t t_connected_ = -1;
  int64_t t_response_ = -1;
  uint64_t bytes_in_ = 0;
  uint64_t bytes_out_ = 0;
  char term_[3] = {'-', '-', 0};
  bool first_request_ = true;
  bool logged_ = false;
  int64_t linger_deadline_ = 0;
  std::string local_body_;  // body of a response weir generates itself (kFlushClose)

  // Rules.
  std::optional<EditableHead> req_edit_;    // the request as rules changed it
  std::string edited_head_;                 // its text; the server gets this head
  std::string req_head_copy_;               // the request head, kept for response rules
  std::optional<EditableHead> res_edit_;    // the response as rules changed it
  Vars vars_;                               // set_var
  std::vector<std::string> rule_captures_;  // capture
  int64_t tarpit_until_ = 0;
  const HttpRule* tarpit_rule_ = nullptr;
  std::optional<SockAddr> local_addr_;
  std::vector<std::string> sample_values_;  // log samples, Worker::log_samples() order
  size_t local_sent_ = 0;
  // Tunnel: the FIN of one side was passed on to the other.
  bool tun_client_shut_ = false;  // client -> server direction finished
  bool tun_server_shut_ = false;  // server -> client direction finished
};

}  // namespace weir
