// HttpSession (http_session.h): choosing a server (slot, queue), taking an idle
// connection or connecting (retries, TLS toward the server), moving the request
// and response bytes, and giving the server back.
#include "worker/http/http_session.h"

#include <sys/epoll.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "common/base/log.h"
#include "common/base/net.h"
#include "worker/backend/lb/lb.h"
#include "worker/http/http_session_detail.h"
#include "worker/observe/metrics.h"
#include "worker/observe/stats_page.h"
#include "worker/worker.h"

namespace weir {

using namespace http_session_detail;

namespace {

// Out of file descriptors: how soon a server connection is tried again.
constexpr int64_t kFdRetryMs = 100;

// RFC 9110 9.2.2: sending the request twice has the effect of sending it once.
bool idempotent(std::string_view method) {
  return method == "GET" || method == "HEAD" || method == "OPTIONS" || method == "TRACE" ||
         method == "PUT" || method == "DELETE";
}

}  // namespace

void HttpSession::compute_lb_request(const http::MessageHead& h) {
  lb_req_ = lb_request(be_->config().balance, be_->lb_def().key, peer_, h.target,
                       [&h](std::string_view name) -> std::optional<std::string_view> {
                         const http::Header* hd = h.find(name);
                         if (!hd) return std::nullopt;
                         return hd->value;
                       });
}

void HttpSession::begin_server_attempt() {
  ++attempts_;
  int64_t now = ctx_.loop().now_ms();
  Server* previous = server_;
  release_slot();  // a retry gives back the slot of the previous attempt first
  Server* s = nullptr;
  switch (be_->acquire(lb_req_, tried_, attempts_ > 1 ? previous : nullptr, this, &ctx_.loop(), now,
                       &s, &ticket_)) {
    case Backend::Acquire::kServer:
      break;
    case Backend::Acquire::kQueued:
      // Waits for on_server_granted(), or for the queue timeout. server_ still
      // names the previous attempt's server (for redispatch accounting).
      phase_ = Phase::kQueued;
      t_queue_start_ = now;
      return;
    case Backend::Acquire::kNoServer:
      server_ = nullptr;
      send_error(503, "SC");
      return;
    case Backend::Acquire::kQueueFull:
      server_ = nullptr;
      send_error(503, "SQ");
      return;
  }
  start_on_server(s, now);
}

void HttpSession::on_server_granted() {
  if (phase_ != Phase::kQueued || !ticket_) return;
  Server* s = be_->take_grant(ticket_);
  if (!s) return;  // the queue timeout came first
  ticket_.reset();
  int64_t now = ctx_.loop().now_ms();
  queue_ms_ += now - t_queue_start_;
  t_queue_start_ = -1;
  start_on_server(s, now);
  run();
}

void HttpSession::start_on_server(Server* server, int64_t now) {
  if (attempts_ > 1 && server_ && server_ != server) {
    // A retry that moved to another server: a redispatch, counted on the one left.
    bump(be_->counters().local().redispatches);
    bump(server_->counters().local().redispatches);
  }
  server_ = server;
  slot_server_ = server_;
  slot_backend_ = be_;
  tried_.add(server_->index());
  s_eof_ = false;
  s_hup_ = false;
  s_reset_ = false;
  srv_reused_ = false;
  fd_wait_ = false;
  // A replay goes on a fresh connection: another pooled one may be as stale.
  if (auto idle = replayed_ ? nullptr : ctx_.take_idle(server_)) {
    srv_ = std::move(idle);
    srv_->attach(this);
    srv_reused_ = true;
    s_readable_ = false;
    s_writable_ = true;
    s_last_activity_ = now;
    t_connect_start_ = now;
    t_connected_ = now;
    phase_ = Phase::kExchange;
    build_request_head();
    return;
  }
  bool in_progress = false;
  int err = 0;
  UniqueFd fd = net::connect_tcp(server_->addr(), &in_progress, &err);
  if (!fd) {
    if (net::out_of_descriptors(err)) {
      wait_for_fd(err, now);
    } else {
      connect_failed(err);
    }
    return;
  }
  int raw_fd = fd.get();
  srv_ = std::make_unique<ServerConn>(ctx_, server_, Stream(std::move(fd)));
  srv_->attach(this);
  s_readable_ = s_writable_ = false;
  s_tcp_up_ = false;
  s_handshake_ = false;
  t_connect_start_ = now;
  s_last_activity_ = now;
  phase_ = Phase::kConnecting;
  if (!ctx_.loop().add(raw_fd, kEvents, srv_.get())) {
    connect_failed(EMFILE);
    return;
  }
  if (!in_progress) connect_done();
}

void HttpSession::wait_for_fd(int err, int64_t now) {
  ctx_.worker().note_fd_shortage("connection to server " + be_->name() + "/" + server_->name(),
                                 err);
  if (phase_ != Phase::kConnecting) t_connect_start_ = now;  // timeout connect runs from here
  phase_ = Phase::kConnecting;
  fd_wait_ = true;
  fd_retry_at_ = now + kFdRetryMs;
}

void HttpSession::connect_done() {
  if (phase_ != Phase::kConnecting || !srv_) return;
  if (!s_tcp_up_) {
    int err = net::socket_error(srv_->stream().fd());
    if (err != 0) {
      connect_failed(err);
      return;
    }
    s_tcp_up_ = true;
    if (const tls::BackContext* tc = server_->tls()) {
      auto conn =
          tls::connect(*tc, srv_->stream().fd(), server_sni(), server_->tls_session(ctx_.id()));
      if (!conn) {
        connect_failed(ENOMEM);
        return;
      }
      srv_->stream().set_secure(std::move(conn));
      s_handshake_ = true;
    }
  }
  if (s_handshake_ && !server_handshake()) return;
  t_connected_ = ctx_.loop().now_ms();
  s_last_activity_ = t_connected_;
  s_writable_ = true;
  phase_ = Phase::kExchange;
  server_->observe_result(false, false);
  build_request_head();
}

bool HttpSession::server_handshake() {
  auto* conn = static_cast<tls::Connection*>(srv_->stream().secure());
  switch (conn->handshake()) {
    case SecureLayer::Handshake::kDone:
      s_handshake_ = false;
      s_readable_ = true;
      return true;
    case SecureLayer::Handshake::kWantRead:
    case SecureLayer::Handshake::kWantWrite:
      return false;
    case SecureLayer::Handshake::kFailed:
      break;
  }
  // A failed handshake (verification, protocol) counts as a connection error.
  // The session offered may be the cause: the next connection starts afresh.
  server_->tls_session(ctx_.id())->clear();
  tls::note_server_failure(be_->name(), server_->name(), conn->failure());
  tls_failure_ = conn->failure();
  connect_failed(EPROTO);
  return false;
}

std::string HttpSession::server_sni() {
  const TlsServerConfig& c = server_->tls()->config();
  if (c.sni.is_constant()) return c.sni.text;  // none, or a fixed name: no request to read
  http::MessageHead& h = ctx_.scratch_head();
  const char* head_src = edited_head_.empty() ? req_in_.data() : edited_head_.data();
  const size_t head_len = edited_head_.empty() ? req_head_raw_ : edited_head_.size();
  size_t scan = 0;
  SampleSource f;
  f.src = &peer_;
  f.dst = local_addr();
  f.tls_client = c_tls_ != nullptr;
  f.ssl = c_tls_ ? c_tls_->ssl() : nullptr;
  f.vars = &vars_;
  if (head_len > 0 && http::parse_request(head_src, head_len, head_len + 1, &scan, &h,
                                          ctx_.worker().config().global.max_headers) ==
                          http::ParseStatus::kComplete) {
    f.req = &h;
    f.req_len = h.head_len;
  }
  scratch_fresh_ = false;
  return server_->tls()->sni(f);
}

void HttpSession::connect_failed(int err) {
  bump(be_->counters().local().connect_errors);
  if (server_) {
    bump(server_->counters().local().connect_errors);
    server_->observe_result(true, false, err == ETIMEDOUT ? "L4TOUT" : "L4CON",
                            err == ETIMEDOUT        ? "connect timeout"
                            : !tls_failure_.empty() ? tls_failure_.c_str()
                                                    : std::strerror(err));
  }
  log::debug("connect to %s/%s failed: %s", be_->name().c_str(),
             server_ ? server_->name().c_str() : "-",
             tls_failure_.empty() ? std::strerror(err) : tls_failure_.c_str());
  tls_failure_.clear();
  if (srv_) ctx_.close_server_conn(std::move(srv_));
  if (attempts_ <= be_->retries() && server_) {
    bump(be_->counters().local().retries);
    bump(server_->counters().local().retries);
    begin_server_attempt();
    return;
  }
  send_error(503, err == ETIMEDOUT ? "sC" : "SC");
}

bool HttpSession::write_server() {
  if (phase_ != Phase::kExchange || !s_writable_ || !srv_) return false;
  if (!req_head_built_ && !build_request_head()) return phase_ != Phase::kExchange;
  if (req_out_.empty() && req_body_window_ == 0) return false;
  iovec iov[2];
  int cnt = 0;
  if (!req_out_.empty()) iov[cnt++] = {req_out_.data(), req_out_.size()};
  if (req_body_window_) iov[cnt++] = {req_in_.data() + req_head_raw_, req_body_window_};
  ssize_t n = srv_->stream().writev(iov, cnt);
  if (n < 0) {
    if (errno == EAGAIN) {
      s_writable_ = false;
      return false;
    }
    if (errno == EINTR) return true;
    if (!res_parsed_) {
      server_failed_before_response("SH");
    } else {
      s_eof_ = true;  // the response side will notice and finish or abort
    }
    return true;
  }
  size_t left = static_cast<size_t>(n);
  if (left < req_out_.size() + req_body_window_) s_writable_ = false;
  s_last_activity_ = ctx_.loop().now_ms();
  size_t from_head = std::min(left, req_out_.size());
  req_out_.consume(from_head);
  left -= from_head;
  if (left) {
    req_in_.consume(left);
    req_body_window_ -= left;
    extend_request_body_window();
  }
  if (req_out_.empty() && req_body_window_ == 0 && req_body_complete_) {
    req_sent_ = true;
    req_out_.release(ctx_.buffers());
  }
  return true;
}

bool HttpSession::read_server() {
  if (phase_ != Phase::kExchange || !s_readable_ || s_eof_ || !srv_) return false;
  if (res_parsed_ && res_body_complete_) return false;
  if (!take_buffer(res_in_, kBufferClaim)) return false;
  res_in_.make_room();
  if (res_in_.space() == 0) return false;
  size_t want_bytes = res_in_.space();
  ssize_t n = srv_->stream().read(res_in_.write_ptr(), want_bytes);
  if (n > 0) {
    if (static_cast<size_t>(n) < want_bytes && !s_hup_ && srv_->stream().drained()) {
      s_readable_ = false;
    }
    res_in_.produce(static_cast<size_t>(n));
    s_last_activity_ = ctx_.loop().now_ms();
    if (res_parsed_) extend_response_body_window();
    return true;
  }
  if (n < 0 && errno == EAGAIN) {
    s_readable_ = false;
    return false;
  }
  if (n < 0 && errno == EINTR) return true;
  s_eof_ = true;
  // A reset is no end of message: it cuts a body delimited by the close short.
  s_reset_ = n < 0;
  if (res_parsed_ && res_body_ == http::BodyKind::kUntilClose && !s_reset_) {
    res_body_complete_ = true;
  }
  return true;
}

void HttpSession::count_response_error() {
  bump(be_->counters().local().response_errors);
  if (server_) bump(server_->counters().local().response_errors);
}

void HttpSession::server_failed_before_response(const char* term) {
  // A kept-alive connection that the server closed just as weir reused it is a
  // classic race, not a server failure; but the server may also have received
  // the request and died working on it. The request is replayed, once and on a
  // fresh connection, only when a second copy cannot do harm: an idempotent
  // method without a body, whose head weir still holds (no byte of a response).
  const bool replay = srv_reused_ && !replayed_ && res_in_.empty() && !res_parsed_ &&
                      req_head_raw_ > 0 && req_body_ == http::BodyKind::kNone &&
                      idempotent(req_method_);
  if (srv_) ctx_.close_server_conn(std::move(srv_));
  if (replay) {
    replayed_ = true;
    bump(be_->counters().local().retries);
    if (server_) bump(server_->counters().local().retries);
    req_out_.clear();
    req_head_built_ = false;
    res_scan_ = 0;
    tried_.clear();
    begin_server_attempt();
    return;
  }
  count_response_error();
  if (server_) server_->observe_result(true, true, "L7RSP", "server closed without a response");
  send_error(502, term);
}

void HttpSession::release_server_conn(bool reusable) {
  if (!srv_) return;
  if (reusable && !ctx_.draining()) {
    ctx_.put_idle(std::move(srv_));
  } else {
    ctx_.close_server_conn(std::move(srv_));
  }
}

void HttpSession::release_slot() {
  if (!slot_server_) return;
  slot_backend_->release_server(slot_server_);
  slot_server_ = nullptr;
  slot_backend_ = nullptr;
}

}  // namespace weir
