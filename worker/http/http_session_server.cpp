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
#include "worker/http/http_request_state.h"
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
  r_->lb_req_ = lb_request(r_->be_->config().balance, r_->be_->lb_def().key, r_->peer_, h.target,
                           [&h](std::string_view name) -> std::optional<std::string_view> {
                             const http::Header* hd = h.find(name);
                             if (!hd) return std::nullopt;
                             return hd->value;
                           });
}

void HttpSession::begin_server_attempt() {
  int64_t now = ctx_.loop().now_ms();
  const ServerSlot::Result got = r_->slot_.acquire(r_->be_, r_->lb_req_, this, &ctx_.loop(), now);
  r_->server_ = r_->slot_.server();  // while queued for a retry: the server left (logs)
  switch (got) {
    case ServerSlot::Result::kServer:
      break;
    case ServerSlot::Result::kQueued:
      // Waits for on_server_granted(), or for the queue timeout.
      phase_ = Phase::kQueued;
      return;
    case ServerSlot::Result::kNoServer:
      send_error(503, "SC");
      return;
    case ServerSlot::Result::kQueueFull:
      send_error(503, "SQ");
      return;
  }
  start_on_server(now);
}

void HttpSession::on_server_granted() {
  if (!r_) return;
  if (phase_ != Phase::kQueued) return;
  int64_t now = ctx_.loop().now_ms();
  if (!r_->slot_.take_grant(now)) return;  // the queue timeout came first
  start_on_server(now);
  run();
}

void HttpSession::start_on_server(int64_t now) {
  r_->server_ = r_->slot_.server();
  r_->s_eof_ = false;
  r_->s_hup_ = false;
  r_->s_reset_ = false;
  r_->srv_reused_ = false;
  r_->fd_wait_ = false;
  if (auto idle = take_idle_connection()) {
    r_->srv_ = std::move(idle);
    r_->srv_->attach(this);
    r_->srv_reused_ = true;
    r_->s_readable_ = false;
    r_->s_writable_ = true;
    r_->s_last_activity_ = now;
    r_->t_connect_start_ = now;
    r_->t_connected_ = now;
    phase_ = Phase::kExchange;
    build_request_head();
    return;
  }
  bool in_progress = false;
  int err = 0;
  r_->srv_ = UpstreamConnection::open(ctx_.loop(), ctx_.id(), r_->server_, r_->server_->addr(),
                                      this, &in_progress, &err);
  if (!r_->srv_) {
    if (net::out_of_descriptors(err)) {
      wait_for_fd(err, now);
    } else {
      connect_failed(err);
    }
    return;
  }
  r_->s_readable_ = r_->s_writable_ = false;
  r_->t_connect_start_ = now;
  r_->s_last_activity_ = now;
  phase_ = Phase::kConnecting;
  if (!in_progress) connect_done();
}

void HttpSession::wait_for_fd(int err, int64_t now) {
  ctx_.worker().note_fd_shortage(
      "connection to server " + r_->be_->name() + "/" + r_->server_->name(), err);
  if (phase_ != Phase::kConnecting) r_->t_connect_start_ = now;  // timeout connect runs from here
  phase_ = Phase::kConnecting;
  r_->fd_wait_ = true;
  r_->fd_retry_at_ = now + kFdRetryMs;
}

void HttpSession::connect_done() {
  if (phase_ != Phase::kConnecting || !r_->srv_) return;
  switch (r_->srv_->advance([this] { return server_sni(); })) {
    case UpstreamConnection::Progress::kPending:
      return;
    case UpstreamConnection::Progress::kFailed:
      r_->tls_failure_ = r_->srv_->failure();
      if (!r_->tls_failure_.empty()) {
        tls::note_server_failure(r_->be_->name(), r_->server_->name(), r_->tls_failure_);
      }
      connect_failed(r_->srv_->error());
      return;
    case UpstreamConnection::Progress::kReady:
      break;
  }
  // Bytes may wait inside a TLS layer that just finished its handshake.
  if (!r_->srv_->stream().plain()) r_->s_readable_ = true;
  r_->t_connected_ = ctx_.loop().now_ms();
  r_->s_last_activity_ = r_->t_connected_;
  r_->s_writable_ = true;
  phase_ = Phase::kExchange;
  r_->server_->observe_result(false, false);
  build_request_head();
}

std::string HttpSession::server_sni() {
  const TlsServerConfig& c = r_->server_->tls()->config();
  if (c.sni.is_constant()) return c.sni.text;  // none, or a fixed name: no request to read
  http::MessageHead& h = ctx_.scratch_head();
  const char* head_src = r_->edited_head_.empty() ? r_->req_in_.data() : r_->edited_head_.data();
  const size_t head_len = r_->edited_head_.empty() ? r_->req_head_raw_ : r_->edited_head_.size();
  size_t scan = 0;
  SampleSource f;
  f.src = &r_->peer_;
  f.dst = local_addr();
  f.tls_client = c_tls_ != nullptr;
  f.ssl = c_tls_ ? c_tls_->ssl() : nullptr;
  f.vars = &r_->vars_;
  if (head_len > 0 && http::parse_request(head_src, head_len, head_len + 1, &scan, &h,
                                          ctx_.worker().config().global.max_headers) ==
                          http::ParseStatus::kComplete) {
    f.req = &h;
    f.req_len = h.head_len;
  }
  r_->scratch_fresh_ = false;
  return r_->server_->tls()->sni(f);
}

void HttpSession::connect_failed(int err) {
  const char* why = r_->tls_failure_.empty() ? std::strerror(err) : r_->tls_failure_.c_str();
  log::debug("connect to %s/%s failed: %s", r_->be_->name().c_str(),
             r_->server_ ? r_->server_->name().c_str() : "-", why);
  const bool retry = r_->slot_.connect_failed(err, why);
  r_->tls_failure_.clear();
  if (r_->srv_) ctx_.upstreams().close(std::move(r_->srv_));
  if (retry) {
    begin_server_attempt();
    return;
  }
  send_error(503, err == ETIMEDOUT ? "sC" : "SC");
}

bool HttpSession::write_server() {
  if (!r_) return false;
  if (phase_ != Phase::kExchange || !r_->s_writable_ || !r_->srv_) return false;
  if (!r_->req_head_built_ && !build_request_head()) return phase_ != Phase::kExchange;
  if (r_->req_out_.empty() && r_->req_body_window_ == 0) return false;
  iovec iov[2];
  int cnt = 0;
  if (!r_->req_out_.empty()) iov[cnt++] = {r_->req_out_.data(), r_->req_out_.size()};
  if (r_->req_body_window_)
    iov[cnt++] = {r_->req_in_.data() + r_->req_head_raw_, r_->req_body_window_};
  ssize_t n = r_->srv_->stream().writev(iov, cnt);
  if (n < 0) {
    if (errno == EAGAIN) {
      r_->s_writable_ = false;
      return false;
    }
    if (errno == EINTR) return true;
    if (!r_->res_parsed_) {
      server_failed_before_response("SH");
    } else {
      r_->s_eof_ = true;  // the response side will notice and finish or abort
    }
    return true;
  }
  size_t left = static_cast<size_t>(n);
  if (left < r_->req_out_.size() + r_->req_body_window_) r_->s_writable_ = false;
  r_->s_last_activity_ = ctx_.loop().now_ms();
  size_t from_head = std::min(left, r_->req_out_.size());
  r_->req_out_.consume(from_head);
  left -= from_head;
  if (left) {
    r_->req_in_.consume(left);
    r_->req_body_window_ -= left;
    extend_request_body_window();
  }
  if (r_->req_out_.empty() && r_->req_body_window_ == 0 && r_->req_body_complete_) {
    r_->req_sent_ = true;
    r_->req_out_.release(ctx_.buffers());
  }
  return true;
}

bool HttpSession::read_server() {
  if (!r_) return false;
  if (phase_ != Phase::kExchange || !r_->s_readable_ || r_->s_eof_ || !r_->srv_) return false;
  if (r_->res_parsed_ && r_->res_body_complete_) return false;
  if (!take_buffer(r_->res_in_, kBufferClaim)) return false;
  r_->res_in_.make_room();
  if (r_->res_in_.space() == 0) return false;
  size_t want_bytes = r_->res_in_.space();
  ssize_t n = r_->srv_->stream().read(r_->res_in_.write_ptr(), want_bytes);
  if (n > 0) {
    if (static_cast<size_t>(n) < want_bytes && !r_->s_hup_ && r_->srv_->stream().drained()) {
      r_->s_readable_ = false;
    }
    r_->res_in_.produce(static_cast<size_t>(n));
    r_->s_last_activity_ = ctx_.loop().now_ms();
    if (r_->res_parsed_) extend_response_body_window();
    return true;
  }
  if (n < 0 && errno == EAGAIN) {
    r_->s_readable_ = false;
    return false;
  }
  if (n < 0 && errno == EINTR) return true;
  r_->s_eof_ = true;
  // A reset is no end of message: it cuts a body delimited by the close short.
  r_->s_reset_ = n < 0;
  if (r_->res_parsed_ && r_->res_body_ == http::BodyKind::kUntilClose && !r_->s_reset_) {
    r_->res_body_complete_ = true;
  }
  return true;
}

void HttpSession::count_response_error() {
  bump(r_->be_->counters().local().response_errors);
  if (r_->server_) bump(r_->server_->counters().local().response_errors);
}

void HttpSession::server_failed_before_response(const char* term) {
  // A kept-alive connection that the server closed just as weir reused it is a
  // classic race, not a server failure; but the server may also have received
  // the request and died working on it. The request is replayed, once and on a
  // fresh connection, only when a second copy cannot do harm: an idempotent
  // method without a body, whose head weir still holds (no byte of a response).
  const bool replay = r_->srv_reused_ && !r_->replayed_ && r_->res_in_.empty() &&
                      !r_->res_parsed_ && r_->req_head_raw_ > 0 &&
                      r_->req_body_ == http::BodyKind::kNone && idempotent(r_->req_method_);
  if (r_->srv_) ctx_.upstreams().close(std::move(r_->srv_));
  if (replay) {
    r_->replayed_ = true;
    bump(r_->be_->counters().local().retries);
    if (r_->server_) bump(r_->server_->counters().local().retries);
    r_->req_out_.clear();
    r_->req_head_built_ = false;
    r_->res_scan_ = 0;
    r_->slot_.forget_tried();
    begin_server_attempt();
    return;
  }
  count_response_error();
  if (r_->server_)
    r_->server_->observe_result(true, true, "L7RSP", "server closed without a response");
  send_error(502, term);
}

std::unique_ptr<UpstreamConnection> HttpSession::take_idle_connection() {
  std::unique_ptr<UpstreamConnection> own = std::move(private_srv_);
  // A replay goes on a fresh connection: another idle one may be as stale.
  if (r_->replayed_) {
    if (own) ctx_.upstreams().close(std::move(own));
    return nullptr;
  }
  // This client's own connection, if it goes where this request goes (a
  // `set server addr` since it was opened makes it useless too).
  if (own && own->server() == r_->server_ && own->connected_to(r_->server_->addr())) return own;
  if (own) ctx_.upstreams().close(std::move(own));  // a request for another server
  switch (r_->be_->config().http_reuse) {
    case HttpReuse::kNever:
      return nullptr;
    case HttpReuse::kSafe:
      // A client's first request never meets a connection another client left:
      // if it went stale, the client could not tell and retry.
      if (first_request_) return nullptr;
      break;
    case HttpReuse::kAlways:
      break;
  }
  return ctx_.upstreams().take(r_->server_);
}

void HttpSession::release_server_conn(bool reusable) {
  if (!r_) return;
  if (!r_->srv_) return;
  if (reusable && !ctx_.draining()) {
    if (r_->srv_->server()->backend()->config().http_reuse == HttpReuse::kNever) {
      // Stays this client's, between its requests, until it closes.
      private_srv_ = std::move(r_->srv_);
      private_srv_->attach(this);
      return;
    }
    ctx_.upstreams().put(std::move(r_->srv_));
  } else {
    ctx_.upstreams().close(std::move(r_->srv_));
  }
}

void HttpSession::release_slot() {
  if (r_) r_->slot_.release();
}

}  // namespace weir
