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
#include "worker/http/http_request_state.h"
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
  if (!ctx.loop().add(raw->client_.fd(), kEvents, raw)) {
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
    // Connection-stage rules see the connection only (tcp actions set no variable).
    const SockAddr src = raw->peer_addr_.expand();
    SockAddr dst;
    dst.len = sizeof dst.storage;
    const bool has_dst = ::getsockname(raw->client_.fd(), dst.sa(), &dst.len) == 0;
    Vars vars;
    SampleSource f;
    f.src = &src;
    f.tls_client = raw->c_tls_ != nullptr;
    f.dst = has_dst ? &dst : nullptr;
    f.vars = &vars;
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
      client_(std::move(fd)),
      peer_addr_(peer),
      timer_(ctx.loop().timers(), &HttpSession::on_timer, this) {
  net::set_nodelay(client_.fd());
  t_start_ = ctx_.loop().now_ms();
  t_start_wall_ = log::wall_clock_ms();
  c_last_activity_ = t_start_;
  fe_.counters().add_connection(t_start_);
}

HttpSession::~HttpSession() {
  give_back_request_state();
}

namespace {

// Request blocks given back on this thread, for the next request (of any
// connection) to take without allocating. Bounded: after a burst, blocks
// beyond kMaxFree go back to the allocator instead of staying resident.
constexpr size_t kMaxFree = 256;

struct RequestStateCache {
  std::vector<HttpSession::RequestState*> free;
  ~RequestStateCache() {
    for (HttpSession::RequestState* r : free) delete r;
  }
};
thread_local RequestStateCache t_request_states;

// A string or vector that grew past this for one request is given back whole
// rather than kept for the next (a stats page body, a large edited head).
constexpr size_t kKeepCapacity = 4096;

template <typename T>
void clear_keeping_small(T& v) {
  if (v.capacity() > kKeepCapacity) {
    T().swap(v);
  } else {
    v.clear();
  }
}

}  // namespace

void HttpSession::RequestState::clear() {
  static_cast<HttpSessionScalars&>(*this) = HttpSessionScalars{};
  req_chunks_.reset();
  res_chunks_.reset();
  slot_.reset();
  peer_text_.clear();
  clear_keeping_small(tls_failure_);
  clear_keeping_small(req_method_);
  clear_keeping_small(request_line_);
  for (std::string& c : captures_) clear_keeping_small(c);
  clear_keeping_small(local_body_);
  req_edit_.reset();
  clear_keeping_small(edited_head_);
  clear_keeping_small(req_head_copy_);
  res_edit_.reset();
  vars_.clear();
  rule_captures_.clear();
  local_addr_.reset();
  for (std::string& v : sample_values_) clear_keeping_small(v);
}

bool HttpSession::take_request_state() {
  if (r_) return true;
  auto& cache = t_request_states.free;
  if (cache.empty()) {
    r_ = new (std::nothrow) RequestState;
    if (!r_) return false;
  } else {
    r_ = cache.back();
    cache.pop_back();
  }
  r_->be_ = fe_.default_backend();
  r_->peer_ = peer_addr_.expand();
  return true;
}

void HttpSession::give_back_request_state() {
  if (!r_) return;
  // Normally done already (finish_transaction, destroy).
  release_server_conn(false);
  r_->slot_.reset();
  // Normally released already (release_buffers, release_idle_buffers); the
  // pool claim is the caller's business.
  r_->req_in_.release(ctx_.buffers());
  r_->req_out_.release(ctx_.buffers());
  r_->res_in_.release(ctx_.buffers());
  r_->res_out_.release(ctx_.buffers());
  r_->clear();
  auto& cache = t_request_states.free;
  if (cache.size() < kMaxFree) {
    cache.push_back(r_);
  } else {
    delete r_;
  }
  r_ = nullptr;
}

const std::string& HttpSession::peer_text() {
  if (r_->peer_text_.empty()) r_->peer_text_ = r_->peer_.to_string();
  return r_->peer_text_;
}

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

const Server* HttpSession::server() const {
  return r_ ? r_->server_ : nullptr;
}

bool HttpSession::waiting_for_response() const {
  return r_ && r_->be_ && r_->req_parsed_ && r_->req_body_complete_ && !r_->res_parsed_ &&
         (phase_ == Phase::kQueued || phase_ == Phase::kConnecting || phase_ == Phase::kExchange);
}

void HttpSession::cancel_request() {
  // Finishing the request would keep a server slot (or a queue place) busy for
  // nobody: the server connection is closed, the slot or the place given back.
  r_->term_[0] = 'C';
  r_->term_[1] = phase_ == Phase::kQueued ? 'Q' : phase_ == Phase::kConnecting ? 'C' : 'H';
  r_->slot_.cancel();
  log_transaction();
  destroy();
}

void HttpSession::on_upstream_io(uint32_t events) {
  if (!r_ || !r_->srv_) {
    // Only this client's private connection (http_reuse: never) can be attached
    // while no request uses a server connection: the server closed it, or sent
    // what nobody asked for; either way it cannot carry the next request.
    if (private_srv_ && (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))) {
      ctx_.upstreams().close(std::move(private_srv_));
    }
    return;
  }
  if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) r_->s_readable_ = true;
  if (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) r_->s_hup_ = true;
  if (events & (EPOLLOUT | EPOLLHUP | EPOLLERR)) r_->s_writable_ = true;
  if (phase_ == Phase::kConnecting && r_->srv_ && r_->srv_->wants_advance(events)) {
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
      tls::note_handshake_failure(fe_.name(), peer_addr_.expand().to_string(), c_tls_->failure());
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
      want = (r_->req_parsed_ && !r_->req_body_complete_ && phase_ != Phase::kQueued) ||
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
  if (!take_request_state()) return false;
  if (!take_buffer(r_->req_in_, kBufferClaim)) return false;  // run() again once it can be had
  r_->req_in_.make_room();
  if (r_->req_in_.space() == 0) return false;
  size_t want_bytes = r_->req_in_.space();
  ssize_t n = client_.read(r_->req_in_.write_ptr(), want_bytes);
  if (n > 0) {
    // A short read drained the socket; the next bytes bring a new edge.
    if (static_cast<size_t>(n) < want_bytes && !c_hup_ && client_.drained()) c_readable_ = false;
    if (phase_ == Phase::kWaitRequest && r_->req_in_.empty())
      r_->t_req_first_byte_ = ctx_.loop().now_ms();
    r_->req_in_.produce(static_cast<size_t>(n));
    r_->bytes_in_ += static_cast<uint64_t>(n);
    c_last_activity_ = ctx_.loop().now_ms();
    if (phase_ != Phase::kWaitRequest) extend_request_body_window();
    return true;
  }
  if (n < 0 && errno == EAGAIN) {
    c_readable_ = false;
    // Nothing came (at accept, or after a response): an idle connection holds
    // no buffer and no claim on the pool until its client sends something.
    if (phase_ == Phase::kWaitRequest && r_->req_in_.empty()) {
      release_idle_buffers();
      give_back_request_state();
    }
    return false;
  }
  if (n < 0 && errno == EINTR) return true;
  // End of stream or error from the client.
  c_eof_ = true;
  const bool reset = n < 0;
  if (phase_ == Phase::kWaitRequest) {
    // Whole requests already read (pipelined before the end) are answered;
    // parse_request drops a partial one.
    if (r_->req_in_.empty()) destroy();  // an idle connection: nothing to answer
    return true;
  }
  if (!r_->req_body_complete_) {
    // The client gave up in the middle of its upload.
    r_->term_[0] = 'C';
    r_->term_[1] = 'D';
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
  if (waiting_for_response() &&
      (reset || (r_->be_->config().abortonclose && !r_->req_after_client_end_ &&
                 !next_request_buffered()))) {
    cancel_request();
  }
  return true;
}

bool HttpSession::parse_request() {
  if (!r_) return false;
  if (phase_ != Phase::kWaitRequest || r_->req_in_.empty()) return false;
  http::MessageHead& h = ctx_.scratch_head();
  size_t max_head = r_->req_in_.capacity();
  http::ParseStatus st =
      http::parse_request(r_->req_in_.data(), r_->req_in_.size(), max_head, &r_->req_scan_, &h,
                          ctx_.worker().config().global.max_headers);
  if (st == http::ParseStatus::kIncomplete) {
    if (c_eof_) {
      // The client ended its side in the middle of a (pipelined) request.
      bump(fe_.counters().local().request_errors);
      destroy();
      return true;
    }
    return false;
  }
  r_->t_head_ = ctx_.loop().now_ms();
  if (st == http::ParseStatus::kError) {
    log::debug("bad request from %s on frontend '%s': %s at offset %zu", peer_text().c_str(),
               fe_.name().c_str(), h.error, h.error_offset);
    bump(fe_.counters().local().request_errors);
    fe_.errors().record(peer_text(), h.error, h.error_offset,
                        std::string_view(r_->req_in_.data(), r_->req_in_.size()));
    r_->request_line_.assign("<BADREQ>");
    r_->req_in_.clear();
    send_error(400, "PR");
    return true;
  }
  r_->req_parsed_ = true;
  r_->req_after_client_end_ = c_hup_ || c_eof_;
  r_->req_head_raw_ = h.head_len;
  r_->req_method_.assign(h.method);
  r_->req_minor_ = h.version_minor;
  r_->req_keep_alive_ = h.keep_alive();
  r_->req_body_ = h.body;
  r_->req_body_left_ = h.body == http::BodyKind::kContentLength ? h.content_length : 0;
  r_->req_chunks_.reset();
  r_->req_body_window_ = 0;
  r_->req_body_complete_ = h.body == http::BodyKind::kNone;
  r_->request_line_.assign(h.method);
  r_->request_line_ += ' ';
  r_->request_line_ += h.target;
  r_->request_line_ += r_->req_minor_ ? " HTTP/1.1" : " HTTP/1.0";
  if (const auto& names = ctx_.worker().log_captures(); !names.empty()) {
    r_->captures_.resize(names.size());
    for (size_t i = 0; i < names.size(); ++i) {
      const http::Header* hd = h.find(names[i]);
      r_->captures_[i].assign(hd ? hd->value : std::string_view());
    }
  }
  if (!r_->req_keep_alive_) r_->close_after_response_ = true;
  r_->req_connect_ = h.method == "CONNECT";
  if (r_->req_connect_ && !fe_.config().allow_connect) {
    r_->req_in_.clear();
    send_error(501, "PR");  // weir is not a forward proxy unless told so
    return true;
  }
  extend_request_body_window();
  // A malformed chunked body already here was answered (400) or closed.
  if (phase_ != Phase::kWaitRequest) return true;
  if (!fe_.config().rules.http_request.empty() ||
      (r_->be_ && !r_->be_->config().rules.http_request.empty())) {
    if (!apply_request_rules(h)) return true;
  } else if (!ctx_.worker().log_samples().empty()) {
    eval_log_samples(LogStage::kRequest, &h, nullptr);
  }
  if (!fe_.config().rules.http_response.empty() ||
      (r_->be_ && !r_->be_->config().rules.http_response.empty())) {
    // Response rules may look at the request: keep its head (as rules left it).
    if (r_->edited_head_.empty()) {
      r_->req_head_copy_.assign(r_->req_in_.data(), r_->req_head_raw_);
    } else {
      r_->req_head_copy_ = r_->edited_head_;
    }
  }
  if (!fe_.config().metrics_uri.empty() &&
      (r_->req_method_ == "GET" || r_->req_method_ == "HEAD")) {
    std::string_view path = h.target.substr(0, h.target.find('?'));
    if (path == fe_.config().metrics_uri) {
      r_->req_in_.consume(r_->req_head_raw_);
      r_->req_head_raw_ = 0;
      serve_local(200, "text/plain; version=0.0.4; charset=utf-8",
                  render_prometheus(ctx_.worker()));
      return true;
    }
  }
  if (const StatsPageConfig& stats = fe_.config().stats;
      !stats.uri.empty() && (r_->req_method_ == "GET" || r_->req_method_ == "HEAD")) {
    const std::string_view path = h.target.substr(0, h.target.find('?'));
    const bool csv = path.size() == stats.uri.size() + 4 && path.ends_with(";csv") &&
                     path.starts_with(stats.uri);
    if (csv || path == stats.uri) {
      const http::Header* auth = h.find("authorization");
      const bool allowed = stats_authorized(stats, auth ? auth->value : std::string_view());
      r_->req_in_.consume(r_->req_head_raw_);
      r_->req_head_raw_ = 0;
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
  if (!r_->be_) {
    send_error(503, "SC");
    return true;
  }
  // The scratch head stays valid while this call stack runs: a pooled server
  // connection lets build_request_head() reuse it instead of parsing again.
  r_->scratch_fresh_ = true;
  compute_lb_request(h);
  begin_server_attempt();
  r_->scratch_fresh_ = false;
  return true;
}

void HttpSession::extend_request_body_window() {
  if (!r_->req_parsed_ || r_->req_body_complete_) return;
  size_t base = r_->req_head_raw_ + r_->req_body_window_;
  if (r_->req_in_.size() <= base) return;
  size_t avail = r_->req_in_.size() - base;
  if (r_->req_body_ == http::BodyKind::kContentLength) {
    size_t take = static_cast<size_t>(std::min<uint64_t>(avail, r_->req_body_left_));
    r_->req_body_window_ += take;
    r_->req_body_left_ -= take;
    if (r_->req_body_left_ == 0) r_->req_body_complete_ = true;
  } else if (r_->req_body_ == http::BodyKind::kChunked) {
    size_t take = r_->req_chunks_.feed(r_->req_in_.data() + base, avail);
    r_->req_body_window_ += take;
    if (r_->req_chunks_.failed()) {
      bump(fe_.counters().local().request_errors);
      fe_.errors().record(peer_text(), r_->req_chunks_.error(), base + take,
                          std::string_view(r_->req_in_.data(), r_->req_in_.size()));
      if (!r_->req_head_built_ || (r_->req_out_.empty() && !r_->req_sent_)) {
        send_error(400, "PR");
      } else {
        r_->term_[0] = 'P';
        r_->term_[1] = 'D';
        log_transaction();
        destroy();
      }
      return;
    }
    if (r_->req_chunks_.done()) r_->req_body_complete_ = true;
  }
}

bool HttpSession::write_client() {
  if (!r_) return false;
  if (!c_writable_) return false;
  if (phase_ != Phase::kExchange && phase_ != Phase::kFlushClose) return false;
  if (phase_ == Phase::kFlushClose && r_->local_sent_ < r_->local_body_.size()) {
    iovec iov[2];
    int cnt = 0;
    if (!r_->res_out_.empty()) iov[cnt++] = {r_->res_out_.data(), r_->res_out_.size()};
    iov[cnt++] = {r_->local_body_.data() + r_->local_sent_,
                  r_->local_body_.size() - r_->local_sent_};
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
    r_->bytes_out_ += left;
    c_last_activity_ = ctx_.loop().now_ms();
    size_t from_head = std::min(left, r_->res_out_.size());
    r_->res_out_.consume(from_head);
    r_->local_sent_ += left - from_head;
    return true;
  }
  size_t body = phase_ == Phase::kExchange ? r_->res_body_window_ : 0;
  if (r_->res_out_.empty() && body == 0) {
    if (phase_ == Phase::kFlushClose) {
      close_client();
      return true;
    }
    return false;
  }
  iovec iov[2];
  int cnt = 0;
  if (!r_->res_out_.empty()) iov[cnt++] = {r_->res_out_.data(), r_->res_out_.size()};
  if (body) iov[cnt++] = {r_->res_in_.data(), body};
  ssize_t n = client_.writev(iov, cnt);
  if (n < 0) {
    if (errno == EAGAIN) {
      c_writable_ = false;
      return false;
    }
    if (errno == EINTR) return true;
    // The client is gone (reset or closed): abandon the transaction.
    r_->term_[0] = 'C';
    r_->term_[1] = 'D';
    log_transaction();
    destroy();
    return true;
  }
  size_t left = static_cast<size_t>(n);
  if (left < r_->res_out_.size() + body) c_writable_ = false;
  r_->bytes_out_ += left;
  c_last_activity_ = ctx_.loop().now_ms();
  size_t from_head = std::min(left, r_->res_out_.size());
  r_->res_out_.consume(from_head);
  left -= from_head;
  if (left) {
    r_->res_in_.consume(left);
    r_->res_body_window_ -= left;
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
  r_->linger_deadline_ = ctx_.loop().now_ms() + kLingerMs;
}

void HttpSession::finish_transaction() {
  if (r_->tunnel_pending_) {
    start_tunnel();
    return;
  }
  bool reusable = r_->res_server_keep_alive_ && r_->req_sent_ && r_->res_in_.empty() && !r_->s_eof_;
  if (reusable && r_->s_readable_) {
    // Bytes may wait beyond the response: a server that sends more than it was
    // asked must not hand them to the next client's request.
    char probe;
    ssize_t n = ::recv(r_->srv_->stream().fd(), &probe, 1, MSG_PEEK | MSG_DONTWAIT);
    reusable = n < 0 && errno == EAGAIN;
  }
  release_server_conn(reusable);
  log_transaction();
  // Only a close this response announced ends the connection here: a client
  // that read a head without "Connection: close" may already be sending its
  // next request. A draining worker answers that one with the close instead.
  if (r_->close_after_response_) {
    close_client();
    return;
  }
  reset_transaction();
  if (c_eof_ && r_->req_in_.empty())
    close_client();  // the client ended, and all it sent is answered
}

bool HttpSession::next_request_buffered() const {
  return r_->req_body_complete_ && r_->req_in_.size() > r_->req_head_raw_ + r_->req_body_window_;
}

void HttpSession::release_idle_buffers() {
  if (!r_) {
    drop_buffer_claim();
    return;
  }
  r_->req_in_.release_if_empty(ctx_.buffers());
  if (!r_->req_in_.allocated() && !r_->req_out_.allocated() && !r_->res_in_.allocated() &&
      !r_->res_out_.allocated()) {
    drop_buffer_claim();
  }
}

void HttpSession::reset_transaction() {
  r_->req_out_.release(ctx_.buffers());
  r_->res_in_.release(ctx_.buffers());
  r_->res_out_.release(ctx_.buffers());
  release_idle_buffers();
  release_slot();
  // Everything of the request ends here but req_in_, which may hold the next
  // (pipelined) one; the block itself goes back when a read finds nothing.
  r_->clear();
  r_->be_ = fe_.default_backend();
  r_->peer_ = peer_addr_.expand();
  t_start_ = ctx_.loop().now_ms();
  t_start_wall_ = log::wall_clock_ms();
  first_request_ = false;
  phase_ = Phase::kWaitRequest;
  c_readable_ = true;  // pipelined bytes may already wait in the socket
}

void HttpSession::drain() {
  // Nothing is closed here. A connection whose current response head already
  // went out without "Connection: close" stays open: its client may be sending
  // the next request as we speak. The next response head says "Connection:
  // close" (parse_response checks draining()), and an idle connection ends at
  // http_keep_alive. A private server connection (http_reuse: never) is not
  // kept for a request that may never come.
  if (private_srv_) ctx_.upstreams().close(std::move(private_srv_));
  if (phase_ == Phase::kWaitRequest && (!r_ || r_->req_in_.empty())) {
    // Shorten the wait to the keep-alive timeout from now at most.
    update_timer();
  }
}

void HttpSession::kill() {
  // Killed by the operator (shutdown session(s)) or by a hard stop: a request in
  // progress is logged and counted with a K termination state; an idle
  // keep-alive connection just closes.
  bool in_progress = r_ && (r_->req_parsed_ || !r_->req_in_.empty());
  if (in_progress && !r_->logged_) {
    r_->term_[0] = 'K';
    switch (phase_) {
      case Phase::kWaitRequest:
        r_->term_[1] = 'R';
        break;
      case Phase::kQueued:
        r_->term_[1] = 'Q';
        break;
      case Phase::kConnecting:
        r_->term_[1] = 'C';
        break;
      case Phase::kExchange:
        r_->term_[1] = r_->res_parsed_ ? 'D' : 'H';
        break;
      case Phase::kTarpit:
        r_->term_[1] = 'T';
        break;
      default:
        r_->term_[1] = 'D';
        break;
    }
    if (phase_ == Phase::kWaitRequest) r_->request_line_.assign("<BADREQ>");
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
  std::string out = "id=" + std::to_string(id()) + " proto=http frontend=" + fe_.name() +
                    " src=" + peer_addr_.expand().to_string();
  const Backend* be = r_ ? r_->be_ : fe_.default_backend();
  out += " backend=" + (be ? be->name() : std::string("-"));
  out += " server=" + (r_ && r_->server_ ? r_->server_->name() : std::string("-"));
  out += " state=";
  out += phase_name(phase_);
  out += " age=" + std::to_string((now_ms - t_start_) / 1000) + "s";
  if (r_ && r_->req_parsed_) out += " req=\"" + r_->request_line_ + "\"";
  return out;
}

void HttpSession::destroy() {
  if (phase_ == Phase::kClosed) return;
  phase_ = Phase::kClosed;
  timer_.disarm();
  release_server_conn(false);
  if (private_srv_) ctx_.upstreams().close(std::move(private_srv_));
  if (r_) r_->slot_.cancel();  // gives back a slot granted while it was going away
  release_slot();
  release_buffers();
  client_.close();
  c_tls_ = nullptr;
  c_handshake_ = false;
  ctx_.worker().release(fe_);
  ctx_.remove_session(this);
}

}  // namespace weir
