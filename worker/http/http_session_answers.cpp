// HttpSession (http_session.h): http rules, weir's own answers (errors, return,
// redirect, stats page, metrics), the access-log line and the timeouts.
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

namespace http_session_detail {
namespace {

constexpr StatusText kGenerated[] = {
    {400, "Bad Request", "Your browser sent a request that this server could not understand."},
    {408, "Request Timeout", "The request did not arrive in time."},
    {500, "Internal Server Error", "An internal error occurred."},
    {200, "OK", ""},
    {201, "Created", ""},
    {202, "Accepted", ""},
    {204, "No Content", ""},
    {301, "Moved Permanently", ""},
    {302, "Found", ""},
    {303, "See Other", ""},
    {304, "Not Modified", ""},
    {307, "Temporary Redirect", ""},
    {308, "Permanent Redirect", ""},
    {401, "Unauthorized", "This page needs a user name and password."},
    {403, "Forbidden", "Access to this resource is forbidden."},
    {404, "Not Found", "The requested resource was not found."},
    {405, "Method Not Allowed", "This method is not allowed here."},
    {407, "Proxy Authentication Required", "Authentication is required."},
    {410, "Gone", "The requested resource is gone."},
    {413, "Content Too Large", "The request is too large."},
    {425, "Too Early", "The request came too early."},
    {429, "Too Many Requests", "Too many requests: try again later."},
    {501, "Not Implemented", "This request method is not supported here."},
    {502, "Bad Gateway", "The server returned an invalid or incomplete response."},
    {503, "Service Unavailable", "No server is available to handle this request."},
    {504, "Gateway Timeout", "The server did not respond in time."},
};

}  // namespace

const StatusText& status_text(int status) {
  for (const StatusText& s : kGenerated)
    if (s.status == status) return s;
  static const StatusText kOther = {0, "Status", ""};
  return kOther;
}

}  // namespace http_session_detail

const SockAddr* HttpSession::local_addr() {
  if (!r_->local_addr_) {
    SockAddr a;
    a.len = sizeof a.storage;
    if (::getsockname(client_.fd(), a.sa(), &a.len) != 0) return nullptr;
    r_->local_addr_ = a;
  }
  return &*r_->local_addr_;
}

void HttpSession::eval_log_samples(LogStage stage, const http::MessageHead* req,
                                   const http::MessageHead* res) {
  const auto& samples = ctx_.worker().log_samples();
  r_->sample_values_.resize(samples.size());
  SampleSource f;
  f.src = &r_->peer_;
  f.tls_client = c_tls_ != nullptr;
  f.ssl = c_tls_ && !c_handshake_ ? c_tls_->ssl() : nullptr;
  f.dst = local_addr();
  f.req = req;
  f.req_edit = req && r_->req_edit_ ? &*r_->req_edit_ : nullptr;
  f.res = res;
  f.res_edit = res && r_->res_edit_ ? &*r_->res_edit_ : nullptr;
  f.status = res ? (r_->res_edit_ ? r_->res_edit_->status : res->status) : r_->res_status_;
  f.vars = &r_->vars_;
  f.req_len = req ? req->head_len : 0;
  // The status outlives the response head (r_->res_status_).
  static const cond::FetchDef* const status_fetch = cond::find_fetch("status");
  for (size_t i = 0; i < samples.size(); ++i) {
    const cond::FetchSpec& fs = samples[i].fetch;
    // Request fetches when the request is there, response ones with the
    // response; the rest (addresses, variables, status) when the line is written.
    const LogStage when = fs.response_only() && fs.def != status_fetch ? LogStage::kResponse
                          : fs.http_only() && !fs.response_only()      ? LogStage::kRequest
                                                                       : LogStage::kLog;
    if (when != stage) continue;
    r_->sample_values_[i] = samples[i].evaluate(f).value_or(std::string());
  }
}

bool HttpSession::apply_request_rules(http::MessageHead& h) {
  SampleSource f;
  f.src = &r_->peer_;
  f.tls_client = c_tls_ != nullptr;
  f.ssl = c_tls_ && !c_handshake_ ? c_tls_->ssl() : nullptr;
  f.dst = local_addr();
  f.req = &h;
  f.vars = &r_->vars_;
  f.req_len = h.head_len;
  RuleVerdict v;
  if (!fe_.config().rules.http_request.empty()) {
    v = run_http_rules(fe_.config().rules.http_request, f, h, &r_->req_edit_, &r_->vars_,
                       &r_->rule_captures_, false);
    if (v.kind == RuleVerdict::Kind::kContinue && v.use_backend) {
      // A name no backend has (from a map, say) keeps the default backend.
      for (const auto& b : ctx_.worker().backends()) {
        if (b->name() == v.backend && b->config().mode == Mode::kHttp) r_->be_ = b.get();
      }
    }
  }
  if (v.kind == RuleVerdict::Kind::kContinue && r_->be_ &&
      !r_->be_->config().rules.http_request.empty()) {
    v = run_http_rules(r_->be_->config().rules.http_request, f, h, &r_->req_edit_, &r_->vars_,
                       &r_->rule_captures_, false);
  }
  if (!ctx_.worker().log_samples().empty()) eval_log_samples(LogStage::kRequest, &h, nullptr);
  if (v.kind != RuleVerdict::Kind::kContinue) {
    answer_rule(v);
    return false;
  }
  if (r_->req_edit_) {
    r_->edited_head_ = r_->req_edit_->request_text();
    size_t scan = 0;
    if (http::parse_request(
            r_->edited_head_.data(), r_->edited_head_.size(), r_->edited_head_.size() + 1, &scan,
            &h, ctx_.worker().config().global.max_headers) != http::ParseStatus::kComplete) {
      log::warning("frontend '%s': the request as rules changed it is not valid HTTP: %s",
                   fe_.name().c_str(), h.error ? h.error : "?");
      r_->edited_head_.clear();
      send_error(500, "PR");
      return false;
    }
    r_->req_method_.assign(h.method);
  }
  return true;
}

void HttpSession::answer_rule(const RuleVerdict& v) {
  const HttpRule& r = *v.rule;
  r_->req_in_.consume(r_->req_head_raw_);
  r_->req_head_raw_ = 0;
  switch (v.kind) {
    case RuleVerdict::Kind::kDeny:
      bump(fe_.counters().local().denied_requests);
      if (r.body.empty()) {
        send_error(r.status, "PR");
      } else {
        respond(r.status, r.content_type.empty() ? "text/plain" : r.content_type, r.body, {}, "PR");
      }
      return;
    case RuleVerdict::Kind::kReturn:
      respond(r.status, r.content_type.empty() && !r.body.empty() ? "text/plain" : r.content_type,
              r.body, {}, "LR");
      return;
    case RuleVerdict::Kind::kRedirect:
      respond(r.status, {}, {}, "Location: " + v.location + "\r\n", "LR");
      return;
    case RuleVerdict::Kind::kTarpit:
      bump(fe_.counters().local().denied_requests);
      r_->tarpit_rule_ = &r;
      r_->tarpit_until_ = ctx_.loop().now_ms() + r.delay;
      phase_ = Phase::kTarpit;
      return;
    case RuleVerdict::Kind::kContinue:
      return;
  }
}

bool HttpSession::apply_response_rules(const http::MessageHead& h) {
  SampleSource f;
  f.src = &r_->peer_;
  f.tls_client = c_tls_ != nullptr;
  f.ssl = c_tls_ && !c_handshake_ ? c_tls_->ssl() : nullptr;
  f.dst = local_addr();
  f.res = &h;
  f.status = h.status;
  f.vars = &r_->vars_;
  // The request as it was sent (kept for the response rules: the original may
  // have left with its body).
  std::unique_ptr<http::MessageHead> req;
  if (!r_->req_head_copy_.empty()) {
    req = std::make_unique<http::MessageHead>();
    size_t scan = 0;
    if (http::parse_request(r_->req_head_copy_.data(), r_->req_head_copy_.size(),
                            r_->req_head_copy_.size() + 1, &scan, req.get(),
                            http::kMaxHeaders) == http::ParseStatus::kComplete) {
      f.req = req.get();
      f.req_len = req->head_len;
    }
  }
  r_->res_edit_.reset();
  RuleVerdict v;
  for (const std::vector<HttpRule>* rules :
       {r_->be_ ? &r_->be_->config().rules.http_response : nullptr,
        &fe_.config().rules.http_response}) {
    if (!rules || rules->empty()) continue;
    v = run_http_rules(*rules, f, h, &r_->res_edit_, &r_->vars_, &r_->rule_captures_, true);
    if (v.kind != RuleVerdict::Kind::kContinue) break;
  }
  if (v.kind == RuleVerdict::Kind::kContinue) return true;
  // The server's response is dropped: its connection cannot be reused.
  const HttpRule& r = *v.rule;
  r_->res_parsed_ = false;
  if (v.kind == RuleVerdict::Kind::kDeny) {
    bump(r_->be_->counters().local().denied_responses);
    if (r.body.empty()) {
      send_error(r.status, "PH");
    } else {
      respond(r.status, r.content_type.empty() ? "text/plain" : r.content_type, r.body, {}, "PH");
    }
  } else {
    respond(r.status, r.content_type.empty() && !r.body.empty() ? "text/plain" : r.content_type,
            r.body, {}, "LR");
  }
  return false;
}

void HttpSession::send_error(int status, const char* term) {
  // An errorfile of the backend, else of the frontend, else weir's own page.
  const std::string* custom = nullptr;
  if (r_->be_) {
    auto it = r_->be_->config().rules.errorfiles.find(status);
    if (it != r_->be_->config().rules.errorfiles.end()) custom = &it->second;
  }
  if (!custom) {
    auto it = fe_.config().rules.errorfiles.find(status);
    if (it != fe_.config().rules.errorfiles.end()) custom = &it->second;
  }
  if (custom) {
    respond(status, "text/html", *custom, "Cache-Control: no-cache\r\n", term);
    return;
  }
  const StatusText& st = status_text(status);
  char body[512];
  int blen = std::snprintf(body, sizeof body, "<html><body><h1>%d %s</h1>\n%s\n</body></html>\n",
                           status, st.reason, st.detail);
  respond(status, "text/html", std::string(body, static_cast<size_t>(blen)),
          "Cache-Control: no-cache\r\n", term);
}

void HttpSession::respond(int status, std::string_view content_type, std::string body,
                          std::string_view extra_headers, const char* term) {
  if (r_->res_parsed_ && (r_->bytes_out_ > 0 || !r_->res_out_.empty())) {
    // Part of the real response already left: all we can do is close.
    r_->term_[0] = term[0];
    r_->term_[1] = term[1];
    log_transaction();
    destroy();
    return;
  }
  release_server_conn(false);
  // The whole answer is built in r_->local_body_, outside the buffer pool, so that
  // an error can always be sent, also to a client that waited for a buffer.
  release_buffers();
  // 204 and 304 carry neither a body nor a Content-Length (RFC 9110 8.6).
  const bool bodiless = status == 204 || status == 304;
  if (bodiless) body.clear();
  std::string head =
      "HTTP/1.1 " + std::to_string(status) + " " + status_text(status).reason + "\r\n";
  if (!bodiless) head += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  if (!content_type.empty()) head += "Content-Type: " + std::string(content_type) + "\r\n";
  head += extra_headers;
  head += "Connection: close\r\n\r\n";
  if (head.size() > ctx_.buffers().bufsize()) {
    destroy();  // as when it did not fit the response buffer
    return;
  }
  set_local_response(std::move(head), std::move(body), status);
  r_->res_parsed_ = false;
  r_->term_[0] = term[0];
  r_->term_[1] = term[1];
  log_transaction();
}

void HttpSession::serve_local(int status, std::string_view content_type, std::string body,
                              std::string_view extra_headers) {
  release_server_conn(false);
  release_buffers();
  char head[256];
  int hlen = std::snprintf(head, sizeof head,
                           "HTTP/1.1 %d %s\r\nContent-Type: %.*s\r\nContent-Length: %zu\r\n"
                           "Cache-Control: no-cache\r\n",
                           status, status_text(status).reason,
                           static_cast<int>(content_type.size()), content_type.data(), body.size());
  std::string text(head, static_cast<size_t>(hlen));
  text += extra_headers;
  text += "Connection: close\r\n\r\n";
  set_local_response(std::move(text), std::move(body), status);
  // weir answered itself (stats page, metrics): logged like a return rule.
  r_->term_[0] = 'L';
  r_->term_[1] = 'R';
  log_transaction();
}

void HttpSession::release_buffers() {
  if (!r_) {
    leave_buffer_pool();
    return;
  }
  r_->req_in_.release(ctx_.buffers());
  r_->req_out_.release(ctx_.buffers());
  r_->res_in_.release(ctx_.buffers());
  r_->res_out_.release(ctx_.buffers());
  leave_buffer_pool();
}

void HttpSession::set_local_response(std::string head, std::string body, int status) {
  r_->local_body_ = std::move(head);
  if (r_->req_method_ != "HEAD") r_->local_body_ += body;
  r_->local_sent_ = 0;
  r_->res_status_ = status;
  r_->bytes_out_ = r_->local_body_.size();  // logged now, before it is written
  r_->close_after_response_ = true;
  phase_ = Phase::kFlushClose;
  c_writable_ = true;
}

void HttpSession::log_transaction() {
  if (r_->logged_) return;
  r_->logged_ = true;
  int64_t now = ctx_.loop().now_ms();
  int64_t t_queue = r_->slot_.attempts() > 0 ? r_->slot_.queue_ms(now) : -1;
  int64_t t_connect = r_->t_connected_ >= 0 ? r_->t_connected_ - r_->t_connect_start_ : -1;
  int64_t t_response =
      r_->t_response_ >= 0 && r_->t_connected_ >= 0 ? r_->t_response_ - r_->t_connected_ : -1;
  int64_t t_total = now - t_start_;
  TrafficCounters& fc = fe_.counters();
  fc.add_session(now);
  bump(fc.local().bytes_in, r_->bytes_in_);
  bump(fc.local().bytes_out, r_->bytes_out_);
  if (r_->res_status_) fc.add_status(r_->res_status_);
  for (TrafficCounters* c : {r_->be_ && r_->slot_.attempts() > 0 ? &r_->be_->counters() : nullptr,
                             r_->server_ ? &r_->server_->counters() : nullptr}) {
    if (!c) continue;
    c->add_session(now);
    bump(c->local().bytes_in, r_->bytes_in_);
    bump(c->local().bytes_out, r_->bytes_out_);
    if (r_->res_status_) c->add_status(r_->res_status_);
    if (r_->server_) c->add_times(t_queue, t_connect, t_response, t_total);
    if (r_->server_) c->add_termination(r_->term_);
  }
  if (r_->server_) fc.add_termination(r_->term_);
  if (!fe_.config().log || !ctx_.access_log().enabled()) return;
  AccessLogEntry e;
  e.client = peer_text();
  e.frontend = fe_.name();
  e.backend = r_->be_ ? std::string_view(r_->be_->name()) : std::string_view();
  e.server = r_->server_ ? std::string_view(r_->server_->name()) : std::string_view();
  e.accept_epoch_ms = t_start_wall_;
  e.t_request = r_->t_head_ >= 0 ? r_->t_head_ - t_start_ : -1;
  e.t_queue = t_queue;
  e.t_connect = t_connect;
  e.t_response = t_response;
  e.t_total = t_total;
  e.status = r_->res_status_;
  e.bytes_out = r_->bytes_out_;
  e.bytes_in = r_->bytes_in_;
  e.termination[0] = r_->term_[0];
  e.termination[1] = r_->term_[1];
  e.retries = r_->slot_.attempts() > 1 ? r_->slot_.attempts() - 1 : 0;
  e.request_line = r_->request_line_;
  e.captures = &r_->captures_;
  if (!ctx_.worker().log_samples().empty()) {
    eval_log_samples(LogStage::kLog, nullptr, nullptr);
    e.samples = &r_->sample_values_;
  }
  e.rule_captures = &r_->rule_captures_;
  fill_access_log_counts(e, ctx_.worker(), fe_, r_->be_, r_->server_);
  e.http = true;
  ctx_.access_log().log(e);
}

void HttpSession::handle_timeout() {
  int64_t now = ctx_.loop().now_ms();
  if (c_handshake_) {
    // A client stalled in its TLS handshake: nothing can be answered.
    fe_.count_tls_failure();
    tls::note_handshake_failure(fe_.name(), peer_addr_.expand().to_string(),
                                "timeout client during the handshake");
    destroy();
    return;
  }
  switch (phase_) {
    case Phase::kWaitRequest:
      if (r_ && !r_->req_in_.empty()) {
        bump(fe_.counters().local().request_errors);
        r_->request_line_.assign("<BADREQ>");
        send_error(408, "cR");
      } else if (request_unread() && take_request_state()) {
        // The request came, but no buffer could be had to read it in time.
        r_->request_line_.assign("<BADREQ>");
        send_error(503, "RR");
      } else {
        destroy();  // idle keep-alive connection: close quietly
      }
      return;
    case Phase::kQueued:
      if (r_->slot_.queue_timed_out(now)) {
        // Waited too long for a server slot: 503, queue timeout.
        r_->slot_.cancel();
        send_error(503, "sQ");
      }
      return;
    case Phase::kConnecting:
      if (r_->fd_wait_) {
        const int64_t limit = r_->be_->timeouts().connect;
        if (limit > 0 && now >= r_->t_connect_start_ + limit) {
          r_->fd_wait_ = false;
          send_error(503, "RC");  // weir ran out of a resource, not the server
        } else if (now >= r_->fd_retry_at_) {
          start_on_server(now);
        }
        return;
      }
      if (r_->srv_) ctx_.upstreams().close(std::move(r_->srv_));
      connect_failed(ETIMEDOUT);
      return;
    case Phase::kExchange: {
      const Timeouts& bt = r_->be_->timeouts();
      if (bt.server && !r_->res_body_complete_ && now >= r_->s_last_activity_ + bt.server) {
        count_response_error();
        if (!r_->res_parsed_) {
          if (r_->server_) r_->server_->observe_result(true, true, "L7TOUT", "server timeout");
          send_error(504, "sH");
        } else {
          r_->term_[0] = 's';
          r_->term_[1] = 'D';
          log_transaction();
          destroy();
        }
        return;
      }
      if (fe_to().client && now >= c_last_activity_ + fe_to().client) {
        r_->term_[0] = 'c';
        r_->term_[1] = 'D';
        log_transaction();
        destroy();
      }
      return;
    }
    case Phase::kTarpit:
      if (now >= r_->tarpit_until_ && r_->tarpit_rule_) {
        const HttpRule* r = r_->tarpit_rule_;
        r_->tarpit_rule_ = nullptr;
        if (r->body.empty()) {
          send_error(r->status, "PT");
        } else {
          respond(r->status, r->content_type.empty() ? "text/plain" : r->content_type, r->body, {},
                  "PT");
        }
      }
      return;
    case Phase::kTunnel:
      // Nothing moved either way for `tunnel_timeout()`.
      r_->term_[0] = 'c';
      r_->term_[1] = 'D';
      log_transaction();
      destroy();
      return;
    case Phase::kFlushClose:
    case Phase::kLinger:
      destroy();
      return;
    case Phase::kClosed:
      return;
  }
}

void HttpSession::update_timer() {
  int64_t deadline = 0;
  auto consider = [&deadline](int64_t base, int64_t timeout) {
    if (timeout <= 0) return;
    int64_t d = base + timeout;
    if (deadline == 0 || d < deadline) deadline = d;
  };
  if (c_handshake_) {
    consider(t_start_, fe_to().client ? fe_to().client : fe_to().http_request);
    timer_.set(deadline);
    return;
  }
  switch (phase_) {
    case Phase::kWaitRequest:
      if (!r_ || r_->req_in_.empty()) {
        consider(t_start_, first_request_ ? fe_to().http_request : fe_to().http_keep_alive);
      } else {
        consider(first_request_ ? t_start_ : r_->t_req_first_byte_, fe_to().http_request);
      }
      consider(c_last_activity_, fe_to().client);
      break;
    case Phase::kQueued:
      consider(r_->slot_.queue_start(), r_->be_->timeouts().queue);
      break;
    case Phase::kConnecting:
      consider(r_->t_connect_start_, r_->be_->timeouts().connect);
      if (r_->fd_wait_ && (deadline == 0 || r_->fd_retry_at_ < deadline))
        deadline = r_->fd_retry_at_;
      break;
    case Phase::kExchange:
      if (!r_->res_body_complete_) consider(r_->s_last_activity_, r_->be_->timeouts().server);
      if (!r_->req_body_complete_ ||
          (!c_writable_ && (!r_->res_out_.empty() || r_->res_body_window_))) {
        consider(c_last_activity_, fe_to().client);
      }
      break;
    case Phase::kTunnel:
      consider(std::max(c_last_activity_, r_->s_last_activity_), tunnel_timeout());
      break;
    case Phase::kFlushClose:
      consider(c_last_activity_, fe_to().client ? fe_to().client : kLingerMs);
      break;
    case Phase::kLinger:
      deadline = r_->linger_deadline_;
      break;
    case Phase::kTarpit:
      deadline = r_->tarpit_until_;
      break;
    case Phase::kClosed:
      break;
  }
  timer_.set(deadline);
}

}  // namespace weir
