// HttpTransaction (transaction.h): its life (prepare, clear), the request head
// handed over by the client side, the end of the exchange, the ways a client
// ends it, and the timeouts of the transaction's own phases.
#include "worker/http/transaction.h"
#include "worker/stick/trackers.h"

#include <sys/socket.h>

#include <algorithm>
#include <cerrno>

#include "common/base/log.h"
#include "worker/observe/metrics.h"
#include "worker/observe/stats_page.h"
#include "worker/thread_context.h"
#include "worker/worker.h"

namespace weir {

HttpTransaction::HttpTransaction(ThreadContext& ctx)
    : ctx_(ctx), timer_(ctx.loop().timers(), &HttpTransaction::on_timer, this) {}

const char* HttpTransaction::phase_name(Phase p) {
  // A switch, not an array: a new phase without a decision does not compile
  // (-Wswitch), where an array shorter than the enum was read past its end.
  switch (p) {
    case Phase::kQueued:
      return "queued";
    case Phase::kConnecting:
      return "connecting";
    case Phase::kExchange:
      return "exchange";
    case Phase::kTarpit:
      return "tarpit";
    case Phase::kIdle:
    case Phase::kTunnel:
    case Phase::kDone:
      return nullptr;
  }
  return nullptr;
}

void HttpTransaction::prepare(ClientStream* client, Frontend* fe, const SockAddr& peer,
                              int64_t t_start, int64_t t_start_wall) {
  client_ = client;
  fe_ = fe;
  be_ = fe->default_backend();
  peer_ = peer;
  t_start_ = t_start;
  t_start_wall_ = t_start_wall;
}

void HttpTransaction::clear() {
  static_cast<HttpTransactionScalars&>(*this) = HttpTransactionScalars{};
  phase_ = Phase::kIdle;
  // Out of the heap now: a block in the thread's free list may outlive the
  // event loop (the free list goes at thread exit).
  timer_.stop();
  res_chunks_.reset();
  slot_.reset();
  peer_text_.clear();
  clear_keeping_small(tls_failure_);
  clear_keeping_small(req_method_);
  clear_keeping_small(request_line_);
  for (std::string& c : captures_) clear_keeping_small(c);
  req_edit_.reset();
  clear_keeping_small(edited_head_);
  clear_keeping_small(req_head_copy_);
  res_edit_.reset();
  vars_.clear();
  rule_captures_.clear();
  local_addr_.reset();
  for (std::string& v : sample_values_) clear_keeping_small(v);
  cookie_.clear();
  cookie_host_.clear();
  stores_.clear();
}

const std::string& HttpTransaction::peer_text() {
  if (peer_text_.empty()) peer_text_ = peer_.to_string();
  return peer_text_;
}

const Timeouts& HttpTransaction::fe_to() const {
  return fe_->config().timeouts;
}

void HttpTransaction::release_buffers() {
  req_out_.release(ctx_.buffers());
  res_in_.release(ctx_.buffers());
}

void HttpTransaction::note_head_time() {
  t_head_ = ctx_.loop().now_ms();
}

void HttpTransaction::on_request_head(http::MessageHead& h) {
  req_parsed_ = true;
  if (std::unique_ptr<stick::Trackers>* sc = client_->trackers(); *sc) {
    (*sc)->request_started(stick::clock_now());
  }
  req_body_ = h.body;
  req_method_.assign(h.method);
  request_line_.assign(h.method);
  request_line_ += ' ';
  request_line_ += h.target;
  request_line_ += h.version_minor ? " HTTP/1.1" : " HTTP/1.0";
  if (const auto& names = ctx_.worker().log_captures(); !names.empty()) {
    captures_.resize(names.size());
    for (size_t i = 0; i < names.size(); ++i) {
      const http::Header* hd = h.find(names[i]);
      captures_[i].assign(hd ? hd->value : std::string_view());
    }
  }
  req_connect_ = h.method == "CONNECT";
  if (req_connect_ && !fe_->config().allow_connect) {
    send_error(501, "PR");  // weir is not a forward proxy unless told so
    return;
  }
  // A malformed chunked body already here is answered (400) or closed.
  if (!client_->read_request_body()) return;
  if (!fe_->config().rules.http_request.empty() ||
      (be_ && !be_->config().rules.http_request.empty())) {
    if (!apply_request_rules(h)) return;
  } else if (!ctx_.worker().log_samples().empty()) {
    eval_log_samples(LogStage::kRequest, &h, nullptr);
  }
  if (!fe_->config().rules.http_response.empty() ||
      (be_ && !be_->config().rules.http_response.empty())) {
    // Response rules may look at the request: keep its head (as rules left it).
    if (edited_head_.empty()) {
      req_head_copy_.assign(client_->request_head());
    } else {
      req_head_copy_ = edited_head_;
    }
  }
  if (serve_own_page(h)) return;
  if (!be_) {
    send_error(503, "SC");
    return;
  }
  // The scratch head stays valid while this call stack runs: a pooled server
  // connection lets build_request_head() reuse it instead of parsing again.
  scratch_fresh_ = true;
  compute_lb_request(h);
  if (persistent()) compute_persistence(h);
  begin_server_attempt();
  scratch_fresh_ = false;
}

bool HttpTransaction::serve_own_page(const http::MessageHead& h) {
  if (req_method_ != "GET" && req_method_ != "HEAD") return false;
  const FrontendConfig& fc = fe_->config();
  const std::string_view path = h.target.substr(0, h.target.find('?'));
  if (!fc.metrics_uri.empty() && path == fc.metrics_uri) {
    client_->release_request_head();
    serve_local(200, "text/plain; version=0.0.4; charset=utf-8", render_prometheus(ctx_.worker()));
    return true;
  }
  const StatsPageConfig& stats = fc.stats;
  if (stats.uri.empty()) return false;
  const bool csv =
      path.size() == stats.uri.size() + 4 && path.ends_with(";csv") && path.starts_with(stats.uri);
  if (!csv && path != stats.uri) return false;
  const http::Header* auth = h.find("authorization");
  const bool allowed = stats_authorized(stats, auth ? auth->value : std::string_view());
  client_->release_request_head();
  if (!allowed) {
    serve_local(401, "text/html; charset=utf-8",
                "<html><body><h1>401 Unauthorized</h1>\nThis page needs a user name and "
                "password.\n</body></html>\n",
                "WWW-Authenticate: Basic realm=\"" + stats.realm + "\"\r\n");
  } else if (csv) {
    serve_local(200, "text/csv; charset=utf-8", render_stats_csv(ctx_.worker()));
  } else {
    serve_local(200, "text/html; charset=utf-8", render_stats_html(ctx_.worker(), stats));
  }
  return true;
}

void HttpTransaction::reject(int status, const char* term) {
  request_line_.assign("<BADREQ>");
  send_error(status, term);
}

void HttpTransaction::on_request_body_error() {
  if (!req_head_built_ || (req_out_.empty() && !req_sent_)) {
    send_error(400, "PR");
    return;
  }
  terminate("PD");
  client_->abort(ClientStream::AbortKind::kClose);
}

bool HttpTransaction::waiting_for_response() const {
  return be_ && !res_parsed_ &&
         (phase_ == Phase::kQueued || phase_ == Phase::kConnecting || phase_ == Phase::kExchange);
}

void HttpTransaction::on_client_gone() {
  // Finishing the request would keep a server slot (or a queue place) busy for
  // nobody: the server connection is closed, the slot or the place given back
  // (close(), when the client side closes).
  term_[0] = 'C';
  term_[1] = phase_ == Phase::kQueued       ? 'Q'
             : phase_ == Phase::kConnecting ? 'C'
             : phase_ == Phase::kTarpit     ? 'T'
                                            : 'H';
  slot_.cancel();
  log();
}

void HttpTransaction::terminate(const char* term) {
  if (term) set_term(term);
  log();
}

void HttpTransaction::kill(bool reading_head) {
  if (logged_) return;
  term_[0] = 'K';
  if (reading_head) {
    term_[1] = 'R';
    request_line_.assign("<BADREQ>");
  } else {
    switch (phase_) {
      case Phase::kQueued:
        term_[1] = 'Q';
        break;
      case Phase::kConnecting:
        term_[1] = 'C';
        break;
      case Phase::kExchange:
        term_[1] = res_parsed_ ? 'D' : 'H';
        break;
      case Phase::kTarpit:
        term_[1] = 'T';
        break;
      case Phase::kIdle:
      case Phase::kTunnel:
      case Phase::kDone:
        term_[1] = 'D';
        break;
    }
  }
  log();
}

void HttpTransaction::close() {
  phase_ = Phase::kDone;
  timer_.disarm();
  release_server_conn(false);
  slot_.cancel();  // gives back a slot granted while it was going away
  release_slot();
}

void HttpTransaction::release_server() {
  release_server_conn(false);
  release_slot();
}

bool HttpTransaction::check_end() {
  if (phase_ != Phase::kExchange || !res_parsed_) return false;
  if (!client_->response_flushed() || res_body_window_ != 0) return false;
  if (res_body_complete_) {
    finish();
    return true;
  }
  if (s_eof_) {
    // The server closed in the middle of the body: the client cannot get a whole
    // response, so close its connection too rather than let it wait. A body
    // delimited by the close is ended with a reset, or the client would take
    // what it got for the whole body.
    set_term("SD");
    count_response_error();
    log();
    client_->abort(res_body_ == http::BodyKind::kUntilClose ? ClientStream::AbortKind::kReset
                                                            : ClientStream::AbortKind::kClose);
    return true;
  }
  return false;
}

void HttpTransaction::finish() {
  if (tunnel_pending_) {
    tunnel_pending_ = false;
    phase_ = Phase::kTunnel;
    // Edge-triggered sockets: bytes may already wait on the server's side.
    res_body_window_ = 0;
    s_readable_ = true;
    s_writable_ = true;
    s_last_activity_ = ctx_.loop().now_ms();
    client_->start_tunnel();
    return;
  }
  bool reusable = res_server_keep_alive_ && req_sent_ && res_in_.empty() && !s_eof_;
  if (reusable && s_readable_) {
    // Bytes may wait beyond the response: a server that sends more than it was
    // asked must not hand them to the next client's request.
    char probe;
    ssize_t n = ::recv(srv_->stream().fd(), &probe, 1, MSG_PEEK | MSG_DONTWAIT);
    reusable = n < 0 && errno == EAGAIN;
  }
  release_server_conn(reusable);
  log();
  phase_ = Phase::kDone;
  client_->end_response();  // may clear() this transaction for the next request
}

HttpTransaction::TunnelSide HttpTransaction::tunnel_side() {
  return TunnelSide{srv_->stream(), req_out_, res_in_,     s_readable_,
                    s_hup_,         s_eof_,   s_writable_, s_last_activity_};
}

int64_t HttpTransaction::tunnel_timeout() const {
  int64_t t = be_->timeouts().tunnel;
  if (t > 0) return t;
  int64_t a = fe_to().client;
  int64_t b = be_->timeouts().server;
  return (a > 0 && b > 0) ? std::min(a, b) : (a > 0 ? a : b);
}

void HttpTransaction::on_timer(void* self) {
  auto* t = static_cast<HttpTransaction*>(self);
  ClientStream* client = t->client_;
  t->handle_timeout();
  client->wake();
}

void HttpTransaction::handle_timeout() {
  int64_t now = ctx_.loop().now_ms();
  switch (phase_) {
    case Phase::kQueued:
      if (slot_.queue_timed_out(now)) {
        // Waited too long for a server slot: 503, queue timeout.
        slot_.cancel();
        send_error(503, "sQ");
      }
      return;
    case Phase::kConnecting:
      if (fd_wait_) {
        const int64_t limit = be_->timeouts().connect;
        if (limit > 0 && now >= t_connect_start_ + limit) {
          fd_wait_ = false;
          send_error(503, "RC");  // weir ran out of a resource, not the server
        } else if (now >= fd_retry_at_) {
          start_on_server(now);
        }
        return;
      }
      if (srv_) ctx_.upstreams().close(std::move(srv_));
      connect_failed(ETIMEDOUT);
      return;
    case Phase::kExchange: {
      // The client's inactivity is the client side's timer.
      const Timeouts& bt = be_->timeouts();
      if (bt.server && !res_body_complete_ && now >= s_last_activity_ + bt.server) {
        count_response_error();
        if (!res_parsed_) {
          if (server_) server_->observe_result(true, true, "L7TOUT", "server timeout");
          send_error(504, "sH");
        } else {
          terminate("sD");
          client_->abort(ClientStream::AbortKind::kClose);
        }
      }
      return;
    }
    case Phase::kTarpit:
      if (now >= tarpit_until_ && tarpit_rule_) {
        const HttpRule* r = tarpit_rule_;
        tarpit_rule_ = nullptr;
        if (r->body.empty()) {
          send_error(r->status, "PT");
        } else {
          respond(r->status, r->content_type.empty() ? "text/plain" : r->content_type, r->body, {},
                  "PT");
        }
      }
      return;
    case Phase::kIdle:
    case Phase::kTunnel:
    case Phase::kDone:
      return;
  }
}

void HttpTransaction::update_timer() {
  Deadline d;
  switch (phase_) {
    case Phase::kQueued:
      d.consider(slot_.queue_start(), be_->timeouts().queue);
      break;
    case Phase::kConnecting:
      d.consider(t_connect_start_, be_->timeouts().connect);
      if (fd_wait_) d.consider_at(fd_retry_at_);
      break;
    case Phase::kExchange:
      if (!res_body_complete_) d.consider(s_last_activity_, be_->timeouts().server);
      break;
    case Phase::kTarpit:
      d.consider_at(tarpit_until_);
      break;
    case Phase::kIdle:
    case Phase::kTunnel:
    case Phase::kDone:
      break;
  }
  timer_.set(d.at());
}

}  // namespace weir
