// HttpSession (http_session.h): the life of a client connection and its client
// side: reading and parsing requests, writing responses, keep-alive and
// pipelining, the end of a transaction, draining and killing.
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

void HttpSession::start(ThreadContext& ctx, Frontend& fe, UniqueFd fd, const SockAddr& peer,
                        const tls::FrontContext* tls) {
  auto s = std::make_unique<HttpSession>(ctx, fe, std::move(fd), peer);
  HttpSession* raw = s.get();
  ctx.add_session(std::move(s));
  if (!ctx.loop().add(raw->client_.fd(), kEvents, &raw->client_handler_)) {
    raw->destroy();
    return;
  }
  if (tls) {
    auto conn = tls::accept(*tls, raw->client_.fd());
    if (!conn) {
      raw->destroy();
      return;
    }
    raw->c_tls_ = conn.get();
    raw->c_tls_cfg_ = &tls->config();
    raw->c_handshake_ = true;
    raw->client_.set_secure(std::move(conn));
  }
  if (!fe.config().rules.tcp_request.empty()) {
    SampleSource f;
    f.src = &raw->peer_;
    f.tls_client = raw->c_tls_ != nullptr;
    f.dst = raw->local_addr();
    f.vars = &raw->vars_;
    std::string ignored;
    if (!run_tcp_rules(fe.config().rules.tcp_request, TcpRule::Stage::kConnection, f, &ignored)) {
      bump(fe.counters().local().denied_requests);
      raw->destroy();  // tcp_request connection reject: closed at once, nothing logged
      return;
    }
  }
  raw->run();
}

HttpSession::HttpSession(ThreadContext& ctx, Frontend& fe, UniqueFd fd, const SockAddr& peer)
    : Session(ctx),
      fe_(fe),
      be_(fe.default_backend()),
      fe_to_(fe.config().timeouts),
      client_(std::move(fd)),
      peer_(peer),
      peer_text_(peer.to_string()),
      timer_(ctx.loop().timers(), &HttpSession::on_timer, this) {
  net::set_nodelay(client_.fd());
  t_start_ = ctx_.loop().now_ms();
  t_start_wall_ = log::wall_clock_ms();
  c_last_activity_ = t_start_;
  fe_.counters().add_connection(t_start_);
}

HttpSession::~HttpSession() = default;

void HttpSession::on_client_io(uint32_t events) {
  if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) c_readable_ = true;
  if (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) c_hup_ = true;
  if (events & (EPOLLOUT | EPOLLHUP | EPOLLERR)) c_writable_ = true;
  // A reset (or both directions shut): nobody is left to answer. A FIN is
  // looked at once it is read (read_client).
  if ((events & (EPOLLHUP | EPOLLERR)) && waiting_for_response()) {
    cancel_request();
    return;
  }
  run();
}

bool HttpSession::waiting_for_response() const {
  return be_ && req_parsed_ && req_body_complete_ && !res_parsed_ &&
         (phase_ == Phase::kQueued || phase_ == Phase::kConnecting || phase_ == Phase::kExchange);
}

void HttpSession::cancel_request() {
  // Finishing the request would keep a server slot (or a queue place) busy for
  // nobody: the server connection is closed, the slot or the place given back.
  term_[0] = 'C';
  term_[1] = phase_ == Phase::kQueued ? 'Q' : phase_ == Phase::kConnecting ? 'C' : 'H';
  if (ticket_) {
    be_->cancel(ticket_);
    ticket_.reset();
  }
  log_transaction();
  destroy();
}

void HttpSession::on_server_io(uint32_t events) {
  if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) s_readable_ = true;
  if (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) s_hup_ = true;
  if (events & (EPOLLOUT | EPOLLHUP | EPOLLERR)) s_writable_ = true;
  if (phase_ == Phase::kConnecting &&
      (s_handshake_ || (events & (EPOLLOUT | EPOLLERR | EPOLLHUP)))) {
    connect_done();
  }
  run();
}

void HttpSession::on_timer(void* self) {
  auto* s = static_cast<HttpSession*>(self);
  s->handle_timeout();
  s->run();
}

void HttpSession::run() {
  if (phase_ == Phase::kClosed) return;
  if (c_handshake_ && !client_handshake()) {
    if (phase_ != Phase::kClosed) update_timer();
    return;
  }
  for (int round = 0; round < 1000 && phase_ != Phase::kClosed; ++round) {
    bool progress = false;
    progress |= read_client();
    if (phase_ == Phase::kClosed) return;
    progress |= parse_request();
    if (phase_ == Phase::kClosed) return;
    progress |= write_server();
    if (phase_ == Phase::kClosed) return;
    progress |= read_server();
    if (phase_ == Phase::kClosed) return;
    progress |= parse_response();
    if (phase_ == Phase::kClosed) return;
    progress |= write_client();
    if (phase_ == Phase::kClosed) return;
    progress |= check_transaction_end();
    if (phase_ == Phase::kClosed) return;
    progress |= pump_tunnel();
    if (!progress) break;
  }
  if (phase_ != Phase::kClosed) update_timer();
}

bool HttpSession::client_handshake() {
  switch (c_tls_->handshake()) {
    case SecureLayer::Handshake::kDone:
      c_handshake_ = false;
      // Bytes that came with the end of the handshake may wait inside the TLS
      // layer: read as if the socket had signalled.
      c_readable_ = true;
      c_writable_ = true;
      c_last_activity_ = ctx_.loop().now_ms();
      return true;
    case SecureLayer::Handshake::kWantRead:
    case SecureLayer::Handshake::kWantWrite:
      return false;
    case SecureLayer::Handshake::kFailed:
      fe_.count_tls_failure();
      tls::note_handshake_failure(fe_.name(), peer_text_, c_tls_->failure());
      destroy();
      return false;
  }
  return false;
}

bool HttpSession::read_client() {
  if (!c_readable_ || c_eof_) return false;
  bool want = false;
  switch (phase_) {
    case Phase::kWaitRequest:
      want = true;
      break;
    case Phase::kQueued:
    case Phase::kConnecting:
    case Phase::kExchange:
      // The rest of an upload; or, once the client has shut its side while its
      // request waits, what it sent before its end (see the end of stream below).
      want = (req_parsed_ && !req_body_complete_ && phase_ != Phase::kQueued) ||
             (c_hup_ && waiting_for_response());
      break;
    case Phase::kLinger: {
      char sink[4096];
      ssize_t n = client_.read(sink, sizeof sink);
      if (n > 0) return true;
      if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
        c_readable_ = errno == EINTR;
        return false;
      }
      destroy();
      return true;
    }
    default:
      break;
  }
  if (!want) return false;
  if (!take_buffer(req_in_, kBufferClaim)) return false;  // run() again once it can be had
  req_in_.make_room();
  if (req_in_.space() == 0) return false;
  size_t want_bytes = req_in_.space();
  ssize_t n = client_.read(req_in_.write_ptr(), want_bytes);
  if (n > 0) {
    // A short read drained the socket; the next bytes bring a new edge.
    if (static_cast<size_t>(n) < want_bytes && !c_hup_ && client_.drained()) c_readable_ = false;
    if (phase_ == Phase::kWaitRequest && req_in_.empty()) t_req_first_byte_ = ctx_.loop().now_ms();
    req_in_.produce(static_cast<size_t>(n));
    bytes_in_ += static_cast<uint64_t>(n);
    c_last_activity_ = ctx_.loop().now_ms();
    if (phase_ != Phase::kWaitRequest) extend_request_body_window();
    return true;
  }
  if (n < 0 && errno == EAGAIN) {
    c_readable_ = false;
    // Nothing came (at accept, or after a response): an idle connection holds
    // no buffer and no claim on the pool until its client sends something.
    if (phase_ == Phase::kWaitRequest && req_in_.empty()) release_idle_buffers();
    return false;
  }
  if (n < 0 && errno == EINTR) return true;
  // End of stream or error from the client.
  c_eof_ = true;
  const bool reset = n < 0;
  if (phase_ == Phase::kWaitRequest) {
    // Whole requests already read (pipelined before the end) are answered;
    // parse_request drops a partial one.
    if (req_in_.empty()) destroy();  // an idle connection: nothing to answer
    return true;
  }
  if (!req_body_complete_) {
    // The client gave up in the middle of its upload.
    term_[0] = 'C';
    term_[1] = 'D';
    log_transaction();
    destroy();
    return true;
  }
  // The client ended while its request waits for the response head. A reset
  // leaves nobody to answer. A FIN with nothing sent behind the request means
  // the client gave up (curl -m, a browser's stop) unless abortonclose is off;
  // after further requests (pipelining, then shutting its side, as `printf ... |
  // nc -N` does), or when it came with the request itself, it is a half-close:
  // every request read is answered, and the connection closes once nothing
  // read is left unanswered (finish_transaction).
  if (waiting_for_response() && (reset || (be_->config().abortonclose && !req_after_client_end_ &&
                                           !next_request_buffered()))) {
    cancel_request();
  }
  return true;
}

bool HttpSession::parse_request() {
  if (phase_ != Phase::kWaitRequest || req_in_.empty()) return false;
  http::MessageHead& h = ctx_.scratch_head();
  size_t max_head = req_in_.capacity();
  http::ParseStatus st = http::parse_request(req_in_.data(), req_in_.size(), max_head, &req_scan_,
                                             &h, ctx_.worker().config().global.max_headers);
  if (st == http::ParseStatus::kIncomplete) {
    if (c_eof_) {
      // The client ended its side in the middle of a (pipelined) request.
      bump(fe_.counters().local().request_errors);
      destroy();
      return true;
    }
    return false;
  }
  t_head_ = ctx_.loop().now_ms();
  if (st == http::ParseStatus::kError) {
    log::debug("bad request from %s on frontend '%s': %s at offset %zu", peer_text_.c_str(),
               fe_.name().c_str(), h.error, h.error_offset);
    bump(fe_.counters().local().request_errors);
    fe_.errors().record(peer_text_, h.error, h.error_offset,
                        std::string_view(req_in_.data(), req_in_.size()));
    request_line_.assign("<BADREQ>");
    req_in_.clear();
    send_error(400, "PR");
    return true;
  }
  req_parsed_ = true;
  req_after_client_end_ = c_hup_ || c_eof_;
  req_head_raw_ = h.head_len;
  req_method_.assign(h.method);
  req_minor_ = h.version_minor;
  req_keep_alive_ = h.keep_alive();
  req_body_ = h.body;
  req_body_left_ = h.body == http::BodyKind::kContentLength ? h.content_length : 0;
  req_chunks_.reset();
  req_body_window_ = 0;
  req_body_complete_ = h.body == http::BodyKind::kNone;
  request_line_.assign(h.method);
  request_line_ += ' ';
  request_line_ += h.target;
  request_line_ += req_minor_ ? " HTTP/1.1" : " HTTP/1.0";
  if (const auto& names = ctx_.worker().log_captures(); !names.empty()) {
    captures_.resize(names.size());
    for (size_t i = 0; i < names.size(); ++i) {
      const http::Header* hd = h.find(names[i]);
      captures_[i].assign(hd ? hd->value : std::string_view());
    }
  }
  if (!req_keep_alive_) close_after_response_ = true;
  req_connect_ = h.method == "CONNECT";
  if (req_connect_ && !fe_.config().allow_connect) {
    req_in_.clear();
    send_error(501, "PR");  // weir is not a forward proxy unless told so
    return true;
  }
  extend_request_body_window();
  // A malformed chunked body already here was answered (400) or closed.
  if (phase_ != Phase::kWaitRequest) return true;
  if (!fe_.config().rules.http_request.empty() ||
      (be_ && !be_->config().rules.http_request.empty())) {
    if (!apply_request_rules(h)) return true;
  } else if (!ctx_.worker().log_samples().empty()) {
    eval_log_samples(LogStage::kRequest, &h, nullptr);
  }
  if (!fe_.config().rules.http_response.empty() ||
      (be_ && !be_->config().rules.http_response.empty())) {
    // Response rules may look at the request: keep its head (as rules left it).
    if (edited_head_.empty()) {
      req_head_copy_.assign(req_in_.data(), req_head_raw_);
    } else {
      req_head_copy_ = edited_head_;
    }
  }
  if (!fe_.config().metrics_uri.empty() && (req_method_ == "GET" || req_method_ == "HEAD")) {
    std::string_view path = h.target.substr(0, h.target.find('?'));
    if (path == fe_.config().metrics_uri) {
      req_in_.consume(req_head_raw_);
      req_head_raw_ = 0;
      serve_local(200, "text/plain; version=0.0.4; charset=utf-8",
                  render_prometheus(ctx_.worker()));
      return true;
    }
  }
  if (const StatsPageConfig& stats = fe_.config().stats;
      !stats.uri.empty() && (req_method_ == "GET" || req_method_ == "HEAD")) {
    const std::string_view path = h.target.substr(0, h.target.find('?'));
    const bool csv = path.size() == stats.uri.size() + 4 && path.ends_with(";csv") &&
                     path.starts_with(stats.uri);
    if (csv || path == stats.uri) {
      const http::Header* auth = h.find("authorization");
      const bool allowed = stats_authorized(stats, auth ? auth->value : std::string_view());
      req_in_.consume(req_head_raw_);
      req_head_raw_ = 0;
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
  }
  if (!be_) {
    send_error(503, "SC");
    return true;
  }
  // The scratch head stays valid while this call stack runs: a pooled server
  // connection lets build_request_head() reuse it instead of parsing again.
  scratch_fresh_ = true;
  compute_lb_request(h);
  begin_server_attempt();
  scratch_fresh_ = false;
  return true;
}

void HttpSession::extend_request_body_window() {
  if (!req_parsed_ || req_body_complete_) return;
  size_t base = req_head_raw_ + req_body_window_;
  if (req_in_.size() <= base) return;
  size_t avail = req_in_.size() - base;
  if (req_body_ == http::BodyKind::kContentLength) {
    size_t take = static_cast<size_t>(std::min<uint64_t>(avail, req_body_left_));
    req_body_window_ += take;
    req_body_left_ -= take;
    if (req_body_left_ == 0) req_body_complete_ = true;
  } else if (req_body_ == http::BodyKind::kChunked) {
    size_t take = req_chunks_.feed(req_in_.data() + base, avail);
    req_body_window_ += take;
    if (req_chunks_.failed()) {
      bump(fe_.counters().local().request_errors);
      fe_.errors().record(peer_text_, req_chunks_.error(), base + take,
                          std::string_view(req_in_.data(), req_in_.size()));
      if (!req_head_built_ || (req_out_.empty() && !req_sent_)) {
        send_error(400, "PR");
      } else {
        term_[0] = 'P';
        term_[1] = 'D';
        log_transaction();
        destroy();
      }
      return;
    }
    if (req_chunks_.done()) req_body_complete_ = true;
  }
}

bool HttpSession::write_client() {
  if (!c_writable_) return false;
  if (phase_ != Phase::kExchange && phase_ != Phase::kFlushClose) return false;
  if (phase_ == Phase::kFlushClose && local_sent_ < local_body_.size()) {
    iovec iov[2];
    int cnt = 0;
    if (!res_out_.empty()) iov[cnt++] = {res_out_.data(), res_out_.size()};
    iov[cnt++] = {local_body_.data() + local_sent_, local_body_.size() - local_sent_};
    ssize_t n = client_.writev(iov, cnt);
    if (n < 0) {
      if (errno == EAGAIN) {
        c_writable_ = false;
        return false;
      }
      if (errno == EINTR) return true;
      destroy();
      return true;
    }
    size_t left = static_cast<size_t>(n);
    bytes_out_ += left;
    c_last_activity_ = ctx_.loop().now_ms();
    size_t from_head = std::min(left, res_out_.size());
    res_out_.consume(from_head);
    local_sent_ += left - from_head;
    return true;
  }
  size_t body = phase_ == Phase::kExchange ? res_body_window_ : 0;
  if (res_out_.empty() && body == 0) {
    if (phase_ == Phase::kFlushClose) {
      close_client();
      return true;
    }
    return false;
  }
  iovec iov[2];
  int cnt = 0;
  if (!res_out_.empty()) iov[cnt++] = {res_out_.data(), res_out_.size()};
  if (body) iov[cnt++] = {res_in_.data(), body};
  ssize_t n = client_.writev(iov, cnt);
  if (n < 0) {
    if (errno == EAGAIN) {
      c_writable_ = false;
      return false;
    }
    if (errno == EINTR) return true;
    // The client is gone (reset or closed): abandon the transaction.
    term_[0] = 'C';
    term_[1] = 'D';
    log_transaction();
    destroy();
    return true;
  }
  size_t left = static_cast<size_t>(n);
  if (left < res_out_.size() + body) c_writable_ = false;
  bytes_out_ += left;
  c_last_activity_ = ctx_.loop().now_ms();
  size_t from_head = std::min(left, res_out_.size());
  res_out_.consume(from_head);
  left -= from_head;
  if (left) {
    res_in_.consume(left);
    res_body_window_ -= left;
    extend_response_body_window();
  }
  return true;
}

bool HttpSession::request_unread() {
  char probe;
  return c_readable_ && !c_tls_ && ::recv(client_.fd(), &probe, 1, MSG_PEEK | MSG_DONTWAIT) == 1;
}

void HttpSession::close_client() {
  // Shut our side, then read and drop what the client still sends until it closes,
  // so that the kernel does not answer late bytes with a reset that could destroy
  // the response before the client has read it.
  release_server_conn(false);
  release_slot();
  release_buffers();  // what is read from here on is dropped
  client_.shutdown_write();
  phase_ = Phase::kLinger;
  c_readable_ = true;
  linger_deadline_ = ctx_.loop().now_ms() + kLingerMs;
}

void HttpSession::finish_transaction() {
  if (tunnel_pending_) {
    start_tunnel();
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
  log_transaction();
  // Only a close this response announced ends the connection here: a client
  // that read a head without "Connection: close" may already be sending its
  // next request. A draining worker answers that one with the close instead.
  if (close_after_response_) {
    close_client();
    return;
  }
  reset_transaction();
  if (c_eof_ && req_in_.empty()) close_client();  // the client ended, and all it sent is answered
}

bool HttpSession::next_request_buffered() const {
  return req_body_complete_ && req_in_.size() > req_head_raw_ + req_body_window_;
}

void HttpSession::release_idle_buffers() {
  req_in_.release_if_empty(ctx_.buffers());
  if (!req_in_.allocated() && !req_out_.allocated() && !res_in_.allocated() &&
      !res_out_.allocated()) {
    drop_buffer_claim();
  }
}

void HttpSession::reset_transaction() {
  req_out_.release(ctx_.buffers());
  res_in_.release(ctx_.buffers());
  res_out_.release(ctx_.buffers());
  release_idle_buffers();
  release_slot();
  req_scan_ = 0;
  req_head_raw_ = 0;
  req_parsed_ = false;
  req_body_ = http::BodyKind::kNone;
  req_body_left_ = 0;
  req_body_window_ = 0;
  req_body_complete_ = false;
  req_sent_ = false;
  req_head_built_ = false;
  req_upgrade_ = req_connect_ = tunnel_pending_ = false;
  server_ = nullptr;
  srv_reused_ = false;
  replayed_ = false;
  s_readable_ = s_writable_ = s_eof_ = s_reset_ = false;
  tried_.clear();
  attempts_ = 0;
  res_scan_ = 0;
  res_parsed_ = false;
  res_status_ = 0;
  res_body_ = http::BodyKind::kNone;
  res_body_left_ = 0;
  res_body_window_ = 0;
  res_body_complete_ = false;
  res_server_keep_alive_ = false;
  close_after_response_ = false;
  req_method_.clear();
  for (std::string& c : captures_) c.clear();
  be_ = fe_.default_backend();
  req_edit_.reset();
  edited_head_.clear();
  req_head_copy_.clear();
  res_edit_.reset();
  vars_.clear();
  rule_captures_.clear();
  for (std::string& v : sample_values_) v.clear();
  tarpit_rule_ = nullptr;
  t_start_ = ctx_.loop().now_ms();
  t_start_wall_ = log::wall_clock_ms();
  t_head_ = t_connect_start_ = t_connected_ = t_response_ = -1;
  bytes_in_ = bytes_out_ = 0;
  t_queue_start_ = -1;
  queue_ms_ = 0;
  lb_req_ = LbRequest{};
  term_[0] = term_[1] = '-';
  first_request_ = false;
  logged_ = false;
  phase_ = Phase::kWaitRequest;
  c_readable_ = true;  // pipelined bytes may already wait in the socket
}

void HttpSession::drain() {
  // Nothing is closed here. A connection whose current response head already
  // went out without "Connection: close" stays open: its client may be sending
  // the next request as we speak. The next response head says "Connection:
  // close" (parse_response checks draining()), and an idle connection ends at
  // http_keep_alive.
  if (phase_ == Phase::kWaitRequest && req_in_.empty()) {
    // Shorten the wait to the keep-alive timeout from now at most.
    update_timer();
  }
}

void HttpSession::kill() {
  // Killed by the operator (shutdown session(s)) or by a hard stop: a request in
  // progress is logged and counted with a K termination state; an idle
  // keep-alive connection just closes.
  bool in_progress = req_parsed_ || !req_in_.empty();
  if (in_progress && !logged_) {
    term_[0] = 'K';
    switch (phase_) {
      case Phase::kWaitRequest:
        term_[1] = 'R';
        break;
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
      default:
        term_[1] = 'D';
        break;
    }
    if (phase_ == Phase::kWaitRequest) request_line_.assign("<BADREQ>");
    log_transaction();
  }
  destroy();
}

const char* HttpSession::phase_name(Phase p) {
  // A switch, not an array: a new phase without a name does not compile
  // (-Wswitch), where an array shorter than the enum was read past its end.
  switch (p) {
    case Phase::kWaitRequest:
      return "wait_request";
    case Phase::kQueued:
      return "queued";
    case Phase::kConnecting:
      return "connecting";
    case Phase::kExchange:
      return "exchange";
    case Phase::kTarpit:
      return "tarpit";
    case Phase::kTunnel:
      return "tunnel";
    case Phase::kFlushClose:
      return "closing";
    case Phase::kLinger:
      return "linger";
    case Phase::kClosed:
      return "closed";
  }
  return "?";
}

std::string HttpSession::describe(int64_t now_ms) const {
  std::string out =
      "id=" + std::to_string(id()) + " proto=http frontend=" + fe_.name() + " src=" + peer_text_;
  out += " backend=" + (be_ ? be_->name() : std::string("-"));
  out += " server=" + (server_ ? server_->name() : std::string("-"));
  out += " state=";
  out += phase_name(phase_);
  out += " age=" + std::to_string((now_ms - t_start_) / 1000) + "s";
  if (req_parsed_) out += " req=\"" + request_line_ + "\"";
  return out;
}

void HttpSession::destroy() {
  if (phase_ == Phase::kClosed) return;
  phase_ = Phase::kClosed;
  timer_.disarm();
  release_server_conn(false);
  if (ticket_) {
    be_->cancel(ticket_);  // gives back a slot granted while it was going away
    ticket_.reset();
  }
  release_slot();
  release_buffers();
  client_.close();
  c_tls_ = nullptr;
  c_handshake_ = false;
  ctx_.worker().release(fe_);
  ctx_.remove_session(this);
}

}  // namespace weir
