#pragma once
// What an HttpSession holds only while a request is under way (issue 16, step
// 2): the buffers, the parse, the server attempt and connection, the rule
// state and the log's figures. An idle connection (accepted and silent, or
// between keep-alive requests) holds none of it: a session takes a block from
// its thread's free list when it reads (http_session.cpp, read_client) and
// gives it back when the read finds nothing to start a request with.
//
// Reset in two parts so that nothing of one request (or of another client)
// survives into the next: every scalar lives in Scalars and is reset by one
// assignment; the containers below keep their capacity (no allocation per
// request) and are cleared by clear().

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/base/address.h"
#include "common/event/buffer.h"
#include "worker/backend/backend.h"
#include "worker/backend/lb/lb.h"
#include "worker/http/http_codec.h"
#include "worker/http/http_session.h"
#include "worker/rules/rules.h"
#include "worker/thread_context.h"
#include "worker/upstream/server_slot.h"

namespace weir {

struct HttpSessionScalars {
  Backend* be_ = nullptr;
  SockAddr peer_;  // the client, as the accept gave it (rules, logs, headers)

  // Current request.
  size_t req_scan_ = 0;      // where the search for the end of the head resumes
  size_t req_head_raw_ = 0;  // raw head bytes still at the front of req_in_ (kept for a retry)
  bool req_parsed_ = false;
  bool req_after_client_end_ = false;  // the client had shut its side when the head was parsed
  int req_minor_ = 1;
  bool req_keep_alive_ = true;
  http::BodyKind req_body_ = http::BodyKind::kNone;
  uint64_t req_body_left_ = 0;      // content-length bytes not yet in the window
  size_t req_body_window_ = 0;      // body bytes at the front of req_in_ ready to send
  bool req_body_complete_ = false;  // every body byte has entered the window
  bool req_sent_ = false;           // head and whole body written to the server
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

  // Current response.
  size_t res_scan_ = 0;
  bool res_parsed_ = false;
  int res_status_ = 0;
  http::BodyKind res_body_ = http::BodyKind::kNone;
  uint64_t res_body_left_ = 0;
  size_t res_body_window_ = 0;
  bool res_body_complete_ = false;
  bool res_server_keep_alive_ = false;
  bool close_after_response_ = false;  // tell the client Connection: close and close after

  // Timing for the log (loop-monotonic ms) and counters.
  int64_t t_req_first_byte_ = 0;  // first byte of the current request head
  int64_t t_head_ = -1;           // request head complete
  int64_t t_connect_start_ = -1;
  int64_t t_connected_ = -1;
  int64_t t_response_ = -1;
  uint64_t bytes_in_ = 0;
  uint64_t bytes_out_ = 0;
  char term_[3] = {'-', '-', 0};
  bool logged_ = false;
  size_t local_sent_ = 0;
  int64_t linger_deadline_ = 0;  // kLinger: when to stop waiting for the client's close
  int64_t tarpit_until_ = 0;
  const HttpRule* tarpit_rule_ = nullptr;
  // Tunnel: the FIN of one side was passed on to the other.
  bool tun_client_shut_ = false;  // client -> server direction finished
  bool tun_server_shut_ = false;  // server -> client direction finished
};

struct HttpSession::RequestState : HttpSessionScalars {
  Buffer req_in_;   // raw bytes from the client
  Buffer req_out_;  // rewritten request head for the server
  Buffer res_in_;   // raw bytes from the server
  Buffer res_out_;  // rewritten response head (or a generated response) for the client
  http::ChunkedWalker req_chunks_;
  http::ChunkedWalker res_chunks_;
  std::unique_ptr<UpstreamConnection> srv_;
  ServerSlot slot_;  // the claim on a server: attempts, queue, slot

  std::string peer_text_;    // peer_ as text, made when first needed (peer_text())
  std::string tls_failure_;  // why the server's TLS handshake failed
  std::string req_method_;
  std::string request_line_;           // for the access log
  std::vector<std::string> captures_;  // request headers printed by %hr{} in log formats
  std::string local_body_;             // body of a response weir generates itself (kFlushClose)

  // Rules.
  std::optional<EditableHead> req_edit_;    // the request as rules changed it
  std::string edited_head_;                 // its text; the server gets this head
  std::string req_head_copy_;               // the request head, kept for response rules
  std::optional<EditableHead> res_edit_;    // the response as rules changed it
  Vars vars_;                               // set_var
  std::vector<std::string> rule_captures_;  // capture
  std::optional<SockAddr> local_addr_;
  std::vector<std::string> sample_values_;  // log samples, Worker::log_samples() order

  // Everything but req_in_ back to its state before a request (the buffers
  // other than req_in_ must have been released). Strings keep their capacity
  // up to kKeepCapacity.
  void clear();
};

}  // namespace weir
