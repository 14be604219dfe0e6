// H1ClientConnection (h1_client_connection.h): the life of a client connection and its client
// side: reading and parsing requests, writing responses, keep-alive and
// pipelining, the end of a transaction, draining and killing, the timeouts.
#include "worker/http/h1/h1_client_connection.h"

#include "worker/stick/trackers.h"

#include <sys/epoll.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "common/base/log.h"
#include "common/base/net.h"
#include "worker/http/h1/h1_request_block.h"
#include "worker/worker.h"

namespace weir {

namespace {

// How long a closing connection keeps reading what its client still sends.
constexpr int64_t kLingerMs = 1000;
// The events a client socket is polled for (edge-triggered).
constexpr uint32_t kEvents = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;

}  // namespace

void H1ClientConnection::start(ThreadContext& ctx, Frontend& fe, UniqueFd fd, const SockAddr& peer,
                               const tls::FrontContext* tls, std::unique_ptr<Proxied> proxied) {
  auto s = std::make_unique<H1ClientConnection>(ctx, fe, std::move(fd), peer, std::move(proxied));
  H1ClientConnection* raw = s.get();
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
    const SockAddr src = raw->client_addr();
    SockAddr dst;
    const bool has_dst = raw->local_address(&dst);
    Vars vars;
    SampleSource f;
    f.src = &src;
    f.pp = raw->proxied_ ? &raw->proxied_->header : nullptr;
    f.tls_client = raw->c_tls_ != nullptr;
    f.dst = has_dst ? &dst : nullptr;
    f.vars = &vars;
    f.sc = &raw->sc_;
    std::string ignored;
    if (!run_tcp_rules(fe.config().rules.tcp_request, TcpRule::Stage::kConnection, f, &ignored)) {
      bump(fe.counters().local().denied_requests);
      raw->destroy();  // tcp_request connection reject: closed at once, nothing logged
      return;
    }
    if (raw->sc_) raw->sc_->session_accepted(stick::clock_now());
  }
  raw->run();
}

H1ClientConnection::H1ClientConnection(ThreadContext& ctx, Frontend& fe, UniqueFd fd,
                                       const SockAddr& peer, std::unique_ptr<Proxied> proxied)
    : Session(ctx),
      fe_(fe),
      client_(std::move(fd)),
      peer_addr_(peer),
      timer_(ctx.loop().timers(), &H1ClientConnection::on_timer, this),
      proxied_(std::move(proxied)) {
  net::set_nodelay(client_.fd());
  t_start_ = ctx_.loop().now_ms();
  t_start_wall_ = log::wall_clock_ms();
  c_last_activity_ = t_start_;
  fe_.counters().add_connection(t_start_);
}

H1ClientConnection::~H1ClientConnection() {
  give_back_request_block();
}

namespace {

// Request blocks given back on this thread, for the next request (of any
// connection) to take without allocating. Bounded: after a burst, blocks
// beyond kMaxFree go back to the allocator instead of staying resident.
constexpr size_t kMaxFree = 256;

struct RequestBlockCache {
  std::vector<H1ClientConnection::RequestBlock*> free;
  ~RequestBlockCache() {
    for (H1ClientConnection::RequestBlock* r : free) delete r;
  }
};
thread_local RequestBlockCache t_request_blocks;

}  // namespace

void H1ClientConnection::RequestBlock::clear() {
  static_cast<H1RequestScalars&>(*this) = H1RequestScalars{};
  req_chunks_.reset();
  clear_keeping_small(local_body_);
  txn.clear();
}

bool H1ClientConnection::take_request_block() {
  if (r_) return true;
  auto& cache = t_request_blocks.free;
  // A block's transaction keeps a timer of the thread it was made on.
  while (!cache.empty() && &cache.back()->txn.thread() != &ctx_) {
    delete cache.back();
    cache.pop_back();
  }
  if (cache.empty()) {
    r_ = new (std::nothrow) RequestBlock(ctx_);
    if (!r_) return false;
  } else {
    r_ = cache.back();
    cache.pop_back();
  }
  r_->txn.prepare(this, &fe_, client_addr(), t_start_, t_start_wall_);
  return true;
}

void H1ClientConnection::give_back_request_block() {
  if (!r_) return;
  // Normally done already (the end of the response, destroy).
  r_->txn.close();
  // Normally released already (release_buffers, release_idle_buffers); the
  // pool claim is the caller's business.
  r_->req_in_.release(ctx_.buffers());
  r_->txn.release_buffers();
  r_->res_out_.release(ctx_.buffers());
  r_->clear();
  auto& cache = t_request_blocks.free;
  if (cache.size() < kMaxFree) {
    cache.push_back(r_);
  } else {
    delete r_;
  }
  r_ = nullptr;
}

void H1ClientConnection::on_client_io(uint32_t events) {
  if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) c_readable_ = true;
  if (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) c_hup_ = true;
  if (events & (EPOLLOUT | EPOLLHUP | EPOLLERR)) c_writable_ = true;
  // A reset (or both directions shut): nobody is left to answer, nor to hold
  // in a tarpit. A FIN is looked at once it is read (read_client).
  if ((events & (EPOLLHUP | EPOLLERR)) && (waiting_for_response() || tarpitted())) {
    r_->txn.on_client_gone();
    destroy();
    return;
  }
  run();
}

void H1ClientConnection::on_upstream_io(uint32_t events) {
  // The server closed the private connection, or sent what nobody asked for:
  // either way it cannot carry the next request.
  if (private_srv_ && (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))) {
    ctx_.upstreams().close(std::move(private_srv_));
  }
}

void H1ClientConnection::keep_private_upstream(std::unique_ptr<UpstreamConnection> conn) {
  if (private_srv_) ctx_.upstreams().close(std::move(private_srv_));
  private_srv_ = std::move(conn);
  private_srv_->attach(this);
}

const Server* H1ClientConnection::server() const {
  return r_ ? r_->txn.server() : nullptr;
}

bool H1ClientConnection::tarpitted() const {
  return r_ && phase_ == Phase::kTransaction && r_->txn.phase() == HttpTransaction::Phase::kTarpit;
}

bool H1ClientConnection::waiting_for_response() const {
  return r_ && phase_ == Phase::kTransaction && r_->req_parsed_ && r_->req_body_complete_ &&
         r_->txn.waiting_for_response();
}

void H1ClientConnection::on_timer(void* self) {
  auto* s = static_cast<H1ClientConnection*>(self);
  s->handle_timeout();
  s->run();
}

void H1ClientConnection::run() {
  if (phase_ == Phase::kClosed) return;
  if (c_handshake_ && !client_handshake()) {
    if (phase_ != Phase::kClosed) update_timer();
    return;
  }
  // The client's side and the transaction's steps, in the order bytes flow:
  // request in, to the server, response in, to the client.
  for (int round = 0; round < 1000 && phase_ != Phase::kClosed; ++round) {
    bool progress = false;
    progress |= read_client();
    if (phase_ == Phase::kClosed) return;
    progress |= parse_request();
    if (phase_ == Phase::kClosed) return;
    if (r_) progress |= r_->txn.write_server();
    if (phase_ == Phase::kClosed) return;
    if (r_) progress |= r_->txn.read_server();
    if (phase_ == Phase::kClosed) return;
    if (r_) progress |= r_->txn.parse_response();
    if (phase_ == Phase::kClosed) return;
    progress |= write_client();
    if (phase_ == Phase::kClosed) return;
    if (r_) progress |= r_->txn.check_end();
    if (phase_ == Phase::kClosed) return;
    progress |= pump_tunnel();
    if (!progress) break;
  }
  if (phase_ == Phase::kClosed) return;
  if (phase_ == Phase::kWaitRequest && r_ && r_->req_in_.empty() && !c_readable_ && !c_eof_) {
    // Idle between requests (at accept, or after a response), and the last
    // read drained the socket: the next bytes bring an event. Until then the
    // connection holds no buffer, no claim on the pool and no request block.
    release_idle_buffers();
    give_back_request_block();
  }
  update_timer();
  if (r_) {
    r_->txn.update_timer();
    r_->txn.before_wait();
  }
}

bool H1ClientConnection::client_handshake() {
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
      tls::note_handshake_failure(fe_.name(), client_addr().to_string(), c_tls_->failure());
      destroy();
      return false;
  }
  return false;
}

bool H1ClientConnection::read_client() {
  if (!c_readable_ || c_eof_) return false;
  bool want = false;
  switch (phase_) {
    case Phase::kWaitRequest:
      want = true;
      break;
    case Phase::kTransaction: {
      // The rest of an upload; or, once the client has shut its side while its
      // request waits, what it sent before its end (see the end of stream below).
      const HttpTransaction::Phase t = r_->txn.phase();
      if (t != HttpTransaction::Phase::kQueued && t != HttpTransaction::Phase::kConnecting &&
          t != HttpTransaction::Phase::kExchange) {
        break;
      }
      want = (r_->req_parsed_ && !r_->req_body_complete_ && t != HttpTransaction::Phase::kQueued) ||
             (c_hup_ && waiting_for_response());
      break;
    }
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
  if (!take_request_block()) return false;
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
    r_->txn.count_client_bytes(static_cast<uint64_t>(n), 0);
    c_last_activity_ = ctx_.loop().now_ms();
    if (phase_ != Phase::kWaitRequest) extend_request_body_window();
    return true;
  }
  if (n < 0 && errno == EAGAIN) {
    c_readable_ = false;  // nothing came: an idle connection lets go at the end of run()
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
    r_->txn.terminate("CD");
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
      (reset || (r_->txn.backend()->config().abortonclose && !r_->req_after_client_end_ &&
                 !next_request_buffered()))) {
    r_->txn.on_client_gone();
    destroy();
  }
  return true;
}

bool H1ClientConnection::parse_request() {
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
  r_->txn.note_head_time();
  if (st == http::ParseStatus::kError) {
    const std::string& peer = r_->txn.peer_text();
    log::debug("bad request from %s on frontend '%s': %s at offset %zu", peer.c_str(),
               fe_.name().c_str(), h.error, h.error_offset);
    bump(fe_.counters().local().request_errors);
    fe_.errors().record(peer, h.error, h.error_offset,
                        std::string_view(r_->req_in_.data(), r_->req_in_.size()));
    r_->req_in_.clear();
    phase_ = Phase::kTransaction;
    r_->txn.reject(400, "PR");
    return true;
  }
  r_->req_parsed_ = true;
  r_->req_after_client_end_ = c_hup_ || c_eof_;
  r_->req_head_raw_ = h.head_len;
  r_->req_minor_ = h.version_minor;
  r_->req_keep_alive_ = h.keep_alive();
  r_->req_body_ = h.body;
  r_->req_body_left_ = h.body == http::BodyKind::kContentLength ? h.content_length : 0;
  r_->req_chunks_.reset();
  r_->req_body_window_ = 0;
  r_->req_body_complete_ = h.body == http::BodyKind::kNone;
  if (!r_->req_keep_alive_) r_->close_after_response_ = true;
  // The transaction takes it from here: rules, weir's own pages, a server.
  phase_ = Phase::kTransaction;
  r_->txn.on_request_head(h);
  return true;
}

void H1ClientConnection::extend_request_body_window() {
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
      fe_.errors().record(r_->txn.peer_text(), r_->req_chunks_.error(), base + take,
                          std::string_view(r_->req_in_.data(), r_->req_in_.size()));
      r_->txn.on_request_body_error();
      return;
    }
    if (r_->req_chunks_.done()) r_->req_body_complete_ = true;
  }
}

bool H1ClientConnection::write_client() {
  if (!r_) return false;
  if (!c_writable_) return false;
  const bool exchange =
      phase_ == Phase::kTransaction && r_->txn.phase() == HttpTransaction::Phase::kExchange;
  if (!exchange && phase_ != Phase::kFlushClose) return false;
  if (phase_ == Phase::kFlushClose && r_->local_sent_ < r_->local_body_.size()) {
    if (defer_write(false)) return false;
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
    r_->txn.count_client_bytes(0, left);
    c_last_activity_ = ctx_.loop().now_ms();
    size_t from_head = std::min(left, r_->res_out_.size());
    r_->res_out_.consume(from_head);
    r_->local_sent_ += left - from_head;
    return true;
  }
  const BodySpan body = exchange ? r_->txn.response_body() : BodySpan{nullptr, 0};
  if (r_->res_out_.empty() && body.size == 0) {
    if (phase_ == Phase::kFlushClose) {
      close_client();
      return true;
    }
    return false;
  }
  if (defer_write(false)) return false;
  iovec iov[2];
  int cnt = 0;
  if (!r_->res_out_.empty()) iov[cnt++] = {r_->res_out_.data(), r_->res_out_.size()};
  if (body.size) iov[cnt++] = {const_cast<char*>(body.data), body.size};
  ssize_t n = client_.writev(iov, cnt);
  if (n < 0) {
    if (errno == EAGAIN) {
      c_writable_ = false;
      return false;
    }
    if (errno == EINTR) return true;
    // The client is gone (reset or closed): abandon the transaction.
    r_->txn.terminate("CD");
    destroy();
    return true;
  }
  size_t left = static_cast<size_t>(n);
  if (left < r_->res_out_.size() + body.size) c_writable_ = false;
  r_->txn.count_client_bytes(0, left);
  c_last_activity_ = ctx_.loop().now_ms();
  size_t from_head = std::min(left, r_->res_out_.size());
  r_->res_out_.consume(from_head);
  left -= from_head;
  if (left) r_->txn.consume_response_body(left);
  return true;
}

bool H1ClientConnection::local_address(SockAddr* out) const {
  if (proxied_ && !proxied_->header.local) {
    *out = proxied_->header.dst;
    return true;
  }
  out->len = sizeof out->storage;
  return ::getsockname(client_.fd(), out->sa(), &out->len) == 0;
}

std::string_view H1ClientConnection::request_head() const {
  return r_->req_head_raw_ ? std::string_view(r_->req_in_.data(), r_->req_head_raw_)
                           : std::string_view();
}

void H1ClientConnection::release_request_head() {
  if (r_->req_head_raw_ == 0) return;
  r_->req_in_.consume(r_->req_head_raw_);
  r_->req_head_raw_ = 0;
}

bool H1ClientConnection::read_request_body() {
  extend_request_body_window();
  return phase_ == Phase::kTransaction;
}

ClientStream::BodySpan H1ClientConnection::request_body() const {
  return {r_->req_in_.data() + r_->req_head_raw_, r_->req_body_window_};
}

bool H1ClientConnection::request_body_complete() const {
  return r_->req_body_complete_;
}

void H1ClientConnection::consume_request_body(size_t n) {
  r_->req_in_.consume(n);
  r_->req_body_window_ -= n;
  extend_request_body_window();
}

bool H1ClientConnection::prepare_response() {
  return take_buffer(r_->res_out_, kBufferClaim);
}

bool H1ClientConnection::response_started() const {
  return !r_->res_out_.empty();
}

bool H1ClientConnection::response_flushed() const {
  return r_->res_out_.empty();
}

size_t H1ClientConnection::send_local_response(int status, std::string_view fields,
                                               std::string body) {
  // The whole answer is built in local_body_, outside the buffer pool, so that
  // an error can always be sent, also to a client that waited for a buffer.
  release_buffers();
  std::string head =
      "HTTP/1.1 " + std::to_string(status) + " " + status_text(status).reason + "\r\n";
  head += fields;
  head += "Connection: close\r\n\r\n";
  if (head.size() > ctx_.buffers().bufsize()) {
    destroy();  // as when it did not fit the response buffer
    return 0;
  }
  r_->local_body_ = std::move(head);
  r_->local_body_ += body;
  r_->local_sent_ = 0;
  r_->close_after_response_ = true;
  phase_ = Phase::kFlushClose;
  c_writable_ = true;
  return r_->local_body_.size();
}

bool H1ClientConnection::request_unread() {
  char probe;
  return c_readable_ && !c_tls_ && ::recv(client_.fd(), &probe, 1, MSG_PEEK | MSG_DONTWAIT) == 1;
}

void H1ClientConnection::close_client() {
  // Shut our side, then read and drop what the client still sends until it closes,
  // so that the kernel does not answer late bytes with a reset that could destroy
  // the response before the client has read it.
  if (r_) r_->txn.release_server();
  release_buffers();  // what is read from here on is dropped
  client_.shutdown_write();
  phase_ = Phase::kLinger;
  c_readable_ = true;
  r_->linger_deadline_ = ctx_.loop().now_ms() + kLingerMs;
}

void H1ClientConnection::end_response() {
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

void H1ClientConnection::abort(AbortKind kind) {
  if (kind == AbortKind::kReset) client_.abort();
  destroy();
}

bool H1ClientConnection::next_request_buffered() const {
  return r_->req_body_complete_ && r_->req_in_.size() > r_->req_head_raw_ + r_->req_body_window_;
}

void H1ClientConnection::release_idle_buffers() {
  if (!r_) {
    drop_buffer_claim();
    return;
  }
  r_->req_in_.release_if_empty(ctx_.buffers());
  if (!r_->req_in_.allocated() && !r_->txn.holds_buffers() && !r_->res_out_.allocated()) {
    drop_buffer_claim();
  }
}

void H1ClientConnection::release_buffers() {
  if (!r_) {
    leave_buffer_pool();
    return;
  }
  r_->req_in_.release(ctx_.buffers());
  r_->txn.release_buffers();
  r_->res_out_.release(ctx_.buffers());
  leave_buffer_pool();
}

void H1ClientConnection::reset_transaction() {
  r_->txn.release_buffers();
  r_->res_out_.release(ctx_.buffers());
  release_idle_buffers();
  r_->txn.release_server();
  // Everything of the request ends here but req_in_, which may hold the next
  // (pipelined) one; the block itself goes back when a read finds nothing.
  r_->clear();
  t_start_ = ctx_.loop().now_ms();
  t_start_wall_ = log::wall_clock_ms();
  r_->txn.prepare(this, &fe_, client_addr(), t_start_, t_start_wall_);
  first_request_ = false;
  phase_ = Phase::kWaitRequest;
  // c_readable_ is left as it is: false only once a read drained the socket,
  // and an event sets it again when the client sends more (edge-triggered), so
  // a pipelined request is read at once and an idle client costs no recv().
}

void H1ClientConnection::drain() {
  // Nothing is closed here. A connection whose current response head already
  // went out without "Connection: close" stays open: its client may be sending
  // the next request as we speak. The next response head says "Connection:
  // close" (send_response_head checks draining()), and an idle connection ends
  // at http_keep_alive. A private server connection (http_reuse: never) is not
  // kept for a request that may never come.
  if (private_srv_) ctx_.upstreams().close(std::move(private_srv_));
  if (phase_ == Phase::kWaitRequest && (!r_ || r_->req_in_.empty())) {
    // Shorten the wait to the keep-alive timeout from now at most.
    update_timer();
  }
}

void H1ClientConnection::kill() {
  // Killed by the operator (shutdown session(s)) or by a hard stop: a request in
  // progress is logged and counted with a K termination state; an idle
  // keep-alive connection just closes.
  bool in_progress = r_ && (r_->req_parsed_ || !r_->req_in_.empty());
  if (in_progress) r_->txn.kill(phase_ == Phase::kWaitRequest);
  destroy();
}

const char* H1ClientConnection::phase_name(Phase p, HttpTransaction::Phase t) {
  // A switch, not an array: a new phase without a name does not compile
  // (-Wswitch), where an array shorter than the enum was read past its end.
  switch (p) {
    case Phase::kWaitRequest:
      return "wait_request";
    case Phase::kTransaction:
      if (const char* name = HttpTransaction::phase_name(t)) return name;
      return "wait_request";  // between a head and its transaction: not seen outside
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

std::string H1ClientConnection::describe(int64_t now_ms) const {
  std::string out = "id=" + std::to_string(id()) + " proto=http frontend=" + fe_.name() +
                    " src=" + client_addr().to_string();
  if (proxied_) out += " via=" + peer_addr_.expand().to_string();  // the PROXY header's sender
  const Backend* be = r_ ? r_->txn.backend() : fe_.default_backend();
  out += " backend=" + (be ? be->name() : std::string("-"));
  const Server* srv = server();
  out += " server=" + (srv ? srv->name() : std::string("-"));
  out += " state=";
  out += phase_name(phase_, r_ ? r_->txn.phase() : HttpTransaction::Phase::kIdle);
  out += " age=" + std::to_string((now_ms - t_start_) / 1000) + "s";
  if (r_ && r_->req_parsed_) out += " req=\"" + r_->txn.request_line() + "\"";
  return out;
}

void H1ClientConnection::handle_timeout() {
  int64_t now = ctx_.loop().now_ms();
  if (c_handshake_) {
    // A client stalled in its TLS handshake: nothing can be answered.
    fe_.count_tls_failure();
    tls::note_handshake_failure(fe_.name(), client_addr().to_string(),
                                "timeout client during the handshake");
    destroy();
    return;
  }
  switch (phase_) {
    case Phase::kWaitRequest:
      if (r_ && !r_->req_in_.empty()) {
        bump(fe_.counters().local().request_errors);
        phase_ = Phase::kTransaction;
        r_->txn.reject(408, "cR");
      } else if (request_unread() && take_request_block()) {
        // The request came, but no buffer could be had to read it in time.
        phase_ = Phase::kTransaction;
        r_->txn.reject(503, "RR");
      } else {
        destroy();  // idle keep-alive connection: close quietly
      }
      return;
    case Phase::kTransaction:
      // The transaction's own deadlines (queue, connect, server, tarpit) are on
      // its timer; the client's inactivity while the exchange runs is here.
      if (r_->txn.phase() == HttpTransaction::Phase::kExchange && fe_to().client &&
          now >= c_last_activity_ + fe_to().client) {
        r_->txn.terminate("cD");
        destroy();
      }
      return;
    case Phase::kTunnel:
      // Nothing moved either way for the tunnel's timeout.
      r_->txn.terminate("cD");
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

void H1ClientConnection::update_timer() {
  Deadline d;
  if (c_handshake_) {
    d.consider(t_start_, fe_to().client ? fe_to().client : fe_to().http_request);
    timer_.set(d.at());
    return;
  }
  switch (phase_) {
    case Phase::kWaitRequest:
      if (!r_ || r_->req_in_.empty()) {
        d.consider(t_start_, first_request_ ? fe_to().http_request : fe_to().http_keep_alive);
      } else {
        d.consider(first_request_ ? t_start_ : r_->t_req_first_byte_, fe_to().http_request);
      }
      d.consider(c_last_activity_, fe_to().client);
      break;
    case Phase::kTransaction:
      if (r_->txn.phase() == HttpTransaction::Phase::kExchange &&
          (!r_->req_body_complete_ ||
           (!c_writable_ && (!r_->res_out_.empty() || r_->txn.response_body().size)))) {
        d.consider(c_last_activity_, fe_to().client);
      }
      break;
    case Phase::kTunnel:
      d.consider(std::max(c_last_activity_, r_->txn.server_last_activity()),
                 r_->txn.tunnel_timeout());
      break;
    case Phase::kFlushClose:
      d.consider(c_last_activity_, fe_to().client ? fe_to().client : kLingerMs);
      break;
    case Phase::kLinger:
      d.consider_at(r_->linger_deadline_);
      break;
    case Phase::kClosed:
      break;
  }
  timer_.set(d.at());
}

void H1ClientConnection::destroy() {
  if (phase_ == Phase::kClosed) return;
  phase_ = Phase::kClosed;
  timer_.disarm();
  if (private_srv_) ctx_.upstreams().close(std::move(private_srv_));
  if (r_) r_->txn.close();
  release_buffers();
  client_.close();
  c_tls_ = nullptr;
  c_handshake_ = false;
  ctx_.worker().release(fe_);
  ctx_.remove_session(this);
}

}  // namespace weir
