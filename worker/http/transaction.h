#pragma once
// One HTTP request and its response, whatever protocol brought the request
// (issue 16): the frontend's and backend's http_request rules, the choice of a
// backend and of a server (slot, queue), an UpstreamConnection to it (idle or
// new, retries, redispatch, the replay of a stale connection's request), the
// exchange with the server (HTTP/1: h1/h1_upstream.cpp), http_response rules,
// weir's own answers (errors, return, redirect, tarpit, stats page, metrics),
// the queue, connect, server and tarpit timeouts, and the access-log line.
//
// It never touches the client socket: it talks to a ClientStream
// (client_stream.h), which calls its events. It lives inside its client
// connection's per-request block, taken from the thread's free list when a
// request starts and given back when the connection is idle again; clear()
// makes it ready for the next request of any connection: every scalar is
// reset by one assignment, and the containers keep a small capacity (no
// allocation per request).
//
// Files: transaction.cpp (the request head, phases, timeouts, the client's
// end), transaction_upstream.cpp (server slot, connection, retries, replay),
// transaction_rules.cpp (rules and weir's own answers), transaction_log.cpp
// (the log line and its samples), h1/h1_upstream.cpp (HTTP/1 toward the server).

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/base/address.h"
#include "common/event/buffer.h"
#include "common/event/timer.h"
#include "worker/backend/backend.h"
#include "worker/backend/lb/lb.h"
#include "worker/backend/persistence.h"
#include "worker/http/client_stream.h"
#include "worker/http/h1/http_codec.h"
#include "worker/rules/rules.h"
#include "worker/upstream/server_slot.h"
#include "worker/upstream/upstream_connection.h"

namespace weir {

class ThreadContext;
class Frontend;

// The reason phrase of a status weir may generate, with the line of text its
// error page says ("" for other statuses).
struct StatusText {
  int status;
  const char* reason;
  const char* detail;
};
const StatusText& status_text(int status);

// A string or vector of a per-request block that grew past this for one
// request is given back whole rather than kept for the next (a stats page body,
// a large edited head); smaller ones keep their capacity.
inline constexpr size_t kKeepCapacity = 4096;
template <typename T>
void clear_keeping_small(T& v) {
  if (v.capacity() > kKeepCapacity) {
    T().swap(v);
  } else {
    v.clear();
  }
}

// Every scalar of a transaction, reset by one assignment (HttpTransaction::clear).
struct HttpTransactionScalars {
  ClientStream* client_ = nullptr;
  Frontend* fe_ = nullptr;
  Backend* be_ = nullptr;
  SockAddr peer_;             // the client, as the accept gave it (rules, logs, headers)
  int64_t t_start_ = 0;       // the request's clock: accept, or the end of the previous response
  int64_t t_start_wall_ = 0;  // same, wall clock (the log's accept date)

  // The request.
  bool req_parsed_ = false;
  http::BodyKind req_body_ = http::BodyKind::kNone;
  int req_minor_ = 1;
  bool req_sent_ = false;  // head and whole body written to the server
  bool req_head_built_ = false;
  bool req_upgrade_ = false;     // a WebSocket upgrade was forwarded with this request
  bool req_connect_ = false;     // this request is an (allowed) CONNECT
  bool tunnel_pending_ = false;  // the response switches to a tunnel once it is sent
  bool scratch_fresh_ = false;   // the thread's scratch head holds this request's parse

  // Server side.
  Server* server_ = nullptr;  // the slot's server while connected (slot_.server())
  LbRequest lb_req_;          // hashing key of the current request
  bool srv_reused_ = false;
  bool replayed_ = false;  // the request was replayed after a reused connection failed
  bool s_readable_ = false;
  bool s_writable_ = false;
  bool s_eof_ = false;
  bool s_reset_ = false;  // the server's side ended with an error (a reset), not a FIN
  bool s_hup_ = false;
  int64_t s_last_activity_ = 0;
  bool fd_wait_ = false;     // kConnecting without a socket: waiting for a descriptor
  int64_t fd_retry_at_ = 0;  // when to try for one again

  // The response.
  size_t res_scan_ = 0;
  bool res_parsed_ = false;
  int res_status_ = 0;
  http::BodyKind res_body_ = http::BodyKind::kNone;
  uint64_t res_body_left_ = 0;
  size_t res_body_window_ = 0;  // body bytes at the front of res_in_ ready for the client
  bool res_body_complete_ = false;
  bool res_server_keep_alive_ = false;
  bool res_status_counted_ = false;  // the tracked entries counted the status
  uint64_t res_read_ = 0;            // bytes read from the server for this request
  uint64_t res_heads_ = 0;           // of which response heads (interim ones too)
  bool s_quick_acked_ = false;       // see before_wait()

  // Timing for the log (loop-monotonic ms) and counters.
  int64_t t_head_ = -1;  // request head complete
  int64_t t_connect_start_ = -1;
  int64_t t_connected_ = -1;
  int64_t t_response_ = -1;
  uint64_t bytes_in_ = 0;
  uint64_t bytes_out_ = 0;
  char term_[3] = {'-', '-', 0};
  bool logged_ = false;
  int64_t tarpit_until_ = 0;
  const HttpRule* tarpit_rule_ = nullptr;
};

class HttpTransaction final : public LbWaiter,
                              public UpstreamConnection::User,
                              private HttpTransactionScalars {
 public:
  enum class Phase : uint8_t {
    kIdle,        // no request handed over yet (the client side reads one)
    kQueued,      // waiting in a queue for a server slot
    kConnecting,  // a server connection is being established
    kExchange,    // request and response are flowing
    kTarpit,      // a tarpit rule holds the client until tarpit_until_
    kTunnel,      // the client side tunnels over the server connection
    kDone,        // answered or ended, logged: nothing more until clear()
  };
  // The name `show sess` gives a phase of a transaction under way (state=...);
  // null for kIdle, kTunnel and kDone, which the client side names.
  static const char* phase_name(Phase p);

  // A transaction's timer is on `ctx`'s loop: it serves requests of that thread
  // only. Destroyed cleared (its client side gave everything back).
  explicit HttpTransaction(ThreadContext& ctx);
  HttpTransaction(const HttpTransaction&) = delete;
  HttpTransaction& operator=(const HttpTransaction&) = delete;

  // Ready for a request of `client`: the request's clock started at `t_start`
  // (loop ms; wall clock `t_start_wall`). After clear(), or on a fresh block.
  void prepare(ClientStream* client, Frontend* fe, const SockAddr& peer, int64_t t_start,
               int64_t t_start_wall);
  // Everything back to its state before a request (the server connection, the
  // slot and the buffers must have been given back). Strings keep their
  // capacity up to a bound.
  void clear();
  ThreadContext& thread() const { return ctx_; }

  // --- Events from the client side.
  // The request head is complete (parse time, for the log).
  void note_head_time();
  // A whole request head, parsed into the thread's scratch head `h` (over the
  // text ClientStream::request_head() gives): rules, weir's own pages, the
  // backend and a server. `h` may be reparsed from a head rules changed.
  void on_request_head(http::MessageHead& h);
  // The request is refused before it starts (its head is invalid, it did not
  // come in time): answered with `status`, logged with `term` as "<BADREQ>".
  void reject(int status, const char* term);
  // The request body's framing is invalid (chunked): 400 while nothing went to
  // the server, else the exchange is abandoned (PD).
  void on_request_body_error();
  // The client left while its request waits for the response head (a reset, or
  // a FIN with abortonclose), or reset in a tarpit: the request is cancelled
  // (CQ, CC, CH or CT), logged.
  void on_client_gone();
  // The client side ended the exchange (`term`, e.g. "CD", "cD"; null: the
  // state as it stands): logged.
  void terminate(const char* term);
  // Killed by the operator or a hard stop: logged with a K termination state
  // by phase; `reading_head`: the client side was reading the request head (KR).
  void kill(bool reading_head);
  // The client connection ends: the server connection is closed, a queue place
  // cancelled, the slot given back, the timer stopped.
  void close();
  // The server connection and the slot go back (the client side closes after a
  // response of its own); a server connection is never reused from here.
  void release_server();
  // Client bytes, counted for the log (both directions).
  void count_client_bytes(uint64_t in, uint64_t out) {
    bytes_in_ += in;
    bytes_out_ += out;
  }

  // --- The exchange, one step each (the client side calls them in its run
  // loop, in this order between reading and writing the client); each returns
  // true when it made progress.
  bool write_server();
  bool read_server();
  bool parse_response();
  // After the client side wrote what it could: the end of the response.
  bool check_end();

  // Response body bytes ready for the client (a span of the server's input).
  ClientStream::BodySpan response_body() const;
  void consume_response_body(size_t n);

  // The server half, for the tunnel the client side runs after a 101 or a
  // CONNECT's 2xx: it moves the bytes; the transaction keeps the log line.
  struct TunnelSide {
    Stream& stream;
    Buffer& pending;  // the request head not fully sent yet
    Buffer& in;       // bytes from the server
    bool& readable;
    bool hup;
    bool& eof;
    bool& writable;
    int64_t& last_activity;
  };
  TunnelSide tunnel_side();
  bool upstream_attached() const { return srv_ != nullptr; }
  int64_t server_last_activity() const { return s_last_activity_; }
  // Inactivity limit of a tunnel: the backend's `tunnel`, else the shorter of
  // client and server.
  int64_t tunnel_timeout() const;

  // Gives back the buffers the transaction holds (the server's side).
  void release_buffers();
  bool holds_buffers() const { return req_out_.allocated() || res_in_.allocated(); }
  // Arms the transaction's timer for its phase (queue, connect, server, tarpit).
  void update_timer();
  // The client side is about to wait for events. A response whose head came
  // alone, its body still due, is what a server that writes head and body
  // apart without TCP_NODELAY sends: its body waits (Nagle's algorithm) for
  // the ACK of its head, which this side would delay (up to 40 ms on Linux,
  // on a reused connection). The server's socket ACKs at once, once per
  // response (doc/http.md, "Message handling").
  void before_wait();

  // --- What the client side and `show sess` read.
  Phase phase() const { return phase_; }
  // A whole request waits for the response head (queued, connecting or sent).
  bool waiting_for_response() const;
  Backend* backend() const { return be_; }
  Server* server() const { return server_; }
  const std::string& request_line() const { return request_line_; }
  // The peer as text, made once per request (logs, error captures).
  const std::string& peer_text();

  // LbWaiter, UpstreamConnection::User.
  void on_server_granted() override;
  void on_upstream_io(uint32_t events) override;

 private:
  static void on_timer(void* self);
  void handle_timeout();
  const Timeouts& fe_to() const;

  // transaction_upstream.cpp
  // The request's key for hashing algorithms (lb_req_).
  void compute_lb_request(const http::MessageHead& h);
  // Persistence (worker/backend/persistence.h): does the backend have stick rules
  // or a cookie? The request's stuck server (into lb_req_) and the keys to store;
  // then, on the response, the stores and the cookie.
  bool persistent() const {
    return be_ && (!be_->config().stick_rules.empty() || !be_->config().cookie.name.empty());
  }
  void compute_persistence(const http::MessageHead& h);
  void persist_response(const http::MessageHead& h);
  void begin_server_attempt();
  // A slot on slot_.server() is held: an idle connection to it, or a new one.
  void start_on_server(int64_t now);
  // The server connection found weir out of file descriptors: try again soon,
  // until timeout connect, keeping the server slot (the server is not at fault).
  void wait_for_fd(int err, int64_t now);
  void connect_done();
  void connect_failed(int err);
  // The SNI toward the server (its `sni` template over the current request).
  std::string server_sni();
  void server_failed_before_response(const char* term);
  // An invalid, truncated or timed-out response: counted on the backend and the server.
  void count_response_error();
  // The server connection goes back to the thread's idle pool (reusable, and
  // not draining) or is closed. Not the slot: see release_slot().
  void release_server_conn(bool reusable);
  // An idle connection the request may use, as the backend's http_reuse allows
  // (the client connection's private one first); nullptr: connect.
  std::unique_ptr<UpstreamConnection> take_idle_connection();
  // Gives back the server slot taken by Backend::acquire() or take_grant(), if any.
  void release_slot() { slot_.release(); }
  void finish();

  // h1/h1_upstream.cpp
  bool build_request_head();
  void extend_response_body_window();

  // transaction_rules.cpp
  // weir answers the request itself with its error page (or an errorfile).
  void send_error(int status, const char* term);
  // http_request rules of the frontend, then of the chosen backend. False when a
  // rule answered (deny, return, redirect, tarpit); `h` then no longer matters.
  // A rule that changed the request leaves `h` parsed from the edited head.
  bool apply_request_rules(http::MessageHead& h);
  // http_response rules of the backend, then of the frontend. False when a rule
  // answered instead of the server's response.
  bool apply_response_rules(const http::MessageHead& h);
  void answer_rule(const RuleVerdict& v);
  // A response of weir's own (errors, rules), then close.
  void respond(int status, std::string_view content_type, std::string body,
               std::string_view extra_headers, const char* term);
  // Answers the request from weir itself (metrics, stats page), then closes the
  // connection. extra_headers: complete header lines, each ending in CRLF.
  void serve_local(int status, std::string_view content_type, std::string body,
                   std::string_view extra_headers = {});
  // Hands a response of weir's own to the client side; false when it closed instead.
  bool send_local(int status, std::string_view fields, std::string body);
  // Answers weir's own pages (metrics, stats) when the request asks for one.
  bool serve_own_page(const http::MessageHead& h);

  // transaction_log.cpp
  // Fills sample_values_ for the %[...] of access-log formats, each at the
  // moment its fetch has a value.
  enum class LogStage { kRequest, kResponse, kLog };
  void eval_log_samples(LogStage stage, const http::MessageHead* req, const http::MessageHead* res);
  const SockAddr* local_addr();
  // Fills what every fetch of a rule or sample sees of the connection.
  void connection_facts(SampleSource& f);
  void log();
  // The tracked entries count res_status_ (errors, failures), once per request.
  void count_status_in_trackers();
  // The access-log line of log() (when the frontend logs).
  void write_log_line(int64_t t_queue, int64_t t_connect, int64_t t_response, int64_t t_total);

  void set_term(const char* term) {
    term_[0] = term[0];
    term_[1] = term[1];
  }

  ThreadContext& ctx_;
  Phase phase_ = Phase::kIdle;
  Timer timer_;
  Buffer req_out_;  // rewritten request head for the server
  Buffer res_in_;   // raw bytes from the server
  http::ChunkedWalker res_chunks_;
  std::unique_ptr<UpstreamConnection> srv_;
  ServerSlot slot_;  // the claim on a server: attempts, queue, slot

  std::string peer_text_;    // peer_ as text, made when first needed (peer_text())
  std::string tls_failure_;  // why the server's TLS handshake failed
  std::string req_method_;
  std::string request_line_;           // for the access log
  std::vector<std::string> captures_;  // request headers printed by %hr{} in log formats

  // Rules.
  std::optional<EditableHead> req_edit_;    // the request as rules changed it
  std::string edited_head_;                 // its text; the server gets this head
  std::string req_head_copy_;               // the request head, kept for response rules
  std::optional<EditableHead> res_edit_;    // the response as rules changed it
  Vars vars_;                               // set_var
  std::vector<std::string> rule_captures_;  // capture
  std::optional<SockAddr> local_addr_;
  std::vector<std::string> sample_values_;  // log samples, Worker::log_samples() order

  // Persistence: the request's cookie (lb_req_ views its value), its Host (for
  // the cookie's Domain) and the keys to store.
  persist::ClientCookie cookie_;
  std::string cookie_host_;
  std::vector<persist::PendingStore> stores_;
};

}  // namespace weir
