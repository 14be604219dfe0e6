#include "worker/tcp/tcp_session.h"

#include "worker/stick/trackers.h"

#include "worker/rules/rules.h"

#include <fcntl.h>
#include <sys/epoll.h>

#include <cerrno>
#include <cstring>

#include "common/base/log.h"
#include "common/base/net.h"
#include "worker/backend/lb/lb.h"
#include "worker/proxy_protocol/send.h"
#include "worker/worker.h"

namespace weir {
namespace {
constexpr uint32_t kEvents = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
constexpr size_t kPipeChunk = 64 * 1024;
// A splice that moves less than this means the flow is no longer bulk.
constexpr size_t kSmallSplice = 8 * 1024;
// Out of file descriptors: how soon a server connection is tried again.
constexpr int64_t kFdRetryMs = 100;
}  // namespace

void TcpSession::start(ThreadContext& ctx, Frontend& fe, UniqueFd fd, const SockAddr& peer,
                       const tls::FrontContext* tls, std::unique_ptr<Proxied> proxied) {
  auto s = std::make_unique<TcpSession>(ctx, fe, std::move(fd), peer, std::move(proxied));
  TcpSession* raw = s.get();
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
    raw->client_.set_secure(std::move(conn));
    raw->phase_ = Phase::kHandshake;
  }
  const auto& rules = fe.config().rules.tcp_request;
  if (!rules.empty()) {
    SampleSource f;
    SockAddr local;
    bool have_local = false;
    raw->fill_fetch(f, &local, &have_local);
    std::string ignored;
    if (!run_tcp_rules(rules, TcpRule::Stage::kConnection, f, &ignored)) {
      bump(fe.counters().local().denied_requests);
      raw->destroy();  // closed at once, nothing logged
      return;
    }
    if (raw->sc_) raw->sc_->session_accepted(stick::clock_now());
  }
  if (raw->phase_ == Phase::kHandshake) {
    raw->run();  // goes on in begin_content() once the handshake is done
    return;
  }
  raw->begin_content();
  if (raw->phase_ != Phase::kClosed) raw->run();
}

void TcpSession::fill_fetch(SampleSource& f, SockAddr* local, bool* have_local) {
  if (proxied_ && !proxied_->header.local) {
    *local = proxied_->header.dst;  // where the client connected, behind the balancer
    *have_local = true;
  } else {
    local->len = sizeof local->storage;
    *have_local = ::getsockname(client_.fd(), local->sa(), &local->len) == 0;
  }
  f.pp = proxied_ ? &proxied_->header : nullptr;
  f.sc = &sc_;
  f.src = &peer_;
  f.dst = *have_local ? local : nullptr;
  f.tls_client = c_tls_ != nullptr;
  f.ssl = c_tls_ && phase_ != Phase::kHandshake ? c_tls_->ssl() : nullptr;
  f.hello = hello_done_;
  f.hello_sni = hello_.sni;
  f.hello_version = tls::version_name(hello_.max_version);
}

bool TcpSession::client_handshake() {
  switch (c_tls_->handshake()) {
    case SecureLayer::Handshake::kDone:
      readable_[kClient] = true;  // bytes may wait inside the TLS layer
      writable_[kClient] = true;
      last_activity_ = ctx_.loop().now_ms();
      begin_content();
      return phase_ != Phase::kClosed;
    case SecureLayer::Handshake::kWantRead:
    case SecureLayer::Handshake::kWantWrite:
      return false;
    case SecureLayer::Handshake::kFailed:
      break;
  }
  fe_.count_tls_failure();
  tls::note_handshake_failure(fe_.name(), peer_text_, c_tls_->failure());
  destroy();
  return false;
}

void TcpSession::begin_content() {
  const auto& rules = fe_.config().rules.tcp_request;
  bool content = false;
  for (const TcpRule& r : rules) content = content || r.stage == TcpRule::Stage::kContent;
  if (content && fe_.config().inspect_delay > 0) {
    // Wait for the ClientHello (or the delay, or a full buffer); see pump().
    phase_ = Phase::kInspect;
    t_inspect_start_ = ctx_.loop().now_ms();
    return;
  }
  run_content_rules();
}

void TcpSession::run_content_rules() {
  const auto& rules = fe_.config().rules.tcp_request;
  if (!rules.empty()) {
    SampleSource f;
    SockAddr local;
    bool have_local = false;
    fill_fetch(f, &local, &have_local);
    std::string backend;
    if (!run_tcp_rules(rules, TcpRule::Stage::kContent, f, &backend)) {
      bump(fe_.counters().local().denied_requests);
      finish('P', 'R');
      return;
    }
    if (!backend.empty()) {
      for (const auto& b : ctx_.worker().backends()) {
        if (b->name() == backend && b->config().mode == Mode::kTcp) be_ = b.get();
      }
    }
  }
  if (!be_) {
    finish('S', 'C');
    return;
  }
  begin_connect();
}

TcpSession::TcpSession(ThreadContext& ctx, Frontend& fe, UniqueFd fd, const SockAddr& peer,
                       std::unique_ptr<Proxied> proxied)
    : Session(ctx),
      fe_(fe),
      be_(fe.default_backend()),
      peer_(proxied ? proxied->client() : peer),
      peer_text_(peer_.to_string()),
      proxied_(std::move(proxied)),
      timer_(ctx.loop().timers(), &TcpSession::on_timer, this) {
  client_ = Stream(std::move(fd));
  net::set_nodelay(client_.fd());
  t_start_ = ctx_.loop().now_ms();
  t_start_wall_ = log::wall_clock_ms();
  last_activity_ = t_start_;
  fe_.counters().add_connection(t_start_);
}

TcpSession::~TcpSession() = default;

void TcpSession::on_side_io(Side side, uint32_t events) {
  if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) readable_[side] = true;
  if (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) hup_[side] = true;
  if (events & (EPOLLOUT | EPOLLHUP | EPOLLERR)) writable_[side] = true;
  if (side == kServer && phase_ == Phase::kConnecting && srv_ && srv_->wants_advance(events)) {
    connect_done();
  }
  if (side == kClient && phase_ == Phase::kQueued && (events & (EPOLLHUP | EPOLLERR))) {
    finish('C', 'Q');  // the client went away while waiting for a server
    return;
  }
  run();
}

void TcpSession::on_timer(void* self) {
  auto* s = static_cast<TcpSession*>(self);
  if (s->phase_ == Phase::kHandshake) {
    s->fe_.count_tls_failure();
    tls::note_handshake_failure(s->fe_.name(), s->peer_text_,
                                "timeout client during the handshake");
    s->destroy();
    return;
  }
  if (s->phase_ == Phase::kInspect) {
    s->run_content_rules();  // inspect_delay is over: decide with what has arrived
    if (s->phase_ != Phase::kClosed) s->run();
    return;
  }
  if (s->phase_ == Phase::kQueued) {
    if (s->be_->timeouts().queue > 0 && s->slot_.queue_timed_out(s->ctx_.loop().now_ms())) {
      s->finish('s', 'Q');  // queue timeout
      return;
    }
  } else if (s->phase_ == Phase::kConnecting && s->fd_wait_) {
    const int64_t limit = s->be_->timeouts().connect;
    const int64_t now = s->ctx_.loop().now_ms();
    if (limit > 0 && now >= s->t_connect_start_ + limit) {
      s->finish('R', 'C');  // weir ran out of a resource, not the server
      return;
    }
    if (now >= s->fd_retry_at_) s->connect_to();
  } else if (s->phase_ == Phase::kConnecting) {
    s->connect_failed(ETIMEDOUT);
  } else if (s->phase_ == Phase::kForwarding) {
    s->finish('c', 'D');  // inactivity on the tunnel
  }
  if (s->phase_ != Phase::kClosed) s->run();
}

void TcpSession::run() {
  if (phase_ == Phase::kClosed) return;
  if (phase_ == Phase::kHandshake && !client_handshake()) {
    if (phase_ != Phase::kClosed) update_timer();
    return;
  }
  for (int round = 0; round < 1000 && phase_ != Phase::kClosed; ++round) {
    bool progress = pump(up_);
    if (phase_ == Phase::kClosed) return;
    progress |= pump(down_);
    if (phase_ == Phase::kClosed) return;
    if (up_.shut_sent && down_.shut_sent) {
      finish('-', '-');
      return;
    }
    if (!progress) break;
  }
  // The claim goes back only once neither direction holds a buffer at the end
  // of a run. Giving it back as soon as one direction found nothing to read
  // let two sessions under a pool limit hand it to each other for ever: each
  // woke the other, and neither kept it long enough for its other direction.
  if (!up_.buf.allocated() && !down_.buf.allocated()) drop_buffer_claim();
  if (sc_) sc_->sync_bytes(up_.bytes, down_.bytes, stick::clock_now(), false);
  if (phase_ != Phase::kClosed) update_timer();
}

bool TcpSession::pump(Direction& d) {
  // Until the server is connected, only read the client into the buffer; and
  // not while waiting in a queue: a connection without a server slot holds no
  // buffer, so that buffers short (the pool's limit) cannot all be held by
  // connections that wait for the slot of one that waits for a buffer.
  if (phase_ != Phase::kForwarding && d.src == kServer) return false;
  if (phase_ == Phase::kQueued) return false;
  bool progress = d.pipe ? pump_spliced(d) : pump_buffered(d);
  if (phase_ == Phase::kInspect && progress) {
    // Content inspection: decide once the ClientHello is whole, the bytes are
    // not one, the buffer is full, or the client has finished sending.
    tls::ClientHello h;
    auto st = tls::parse_client_hello(std::string_view(d.buf.data(), d.buf.size()), h);
    if (st == tls::HelloStatus::kComplete) {
      hello_ = std::move(h);
      hello_done_ = true;
    }
    if (st != tls::HelloStatus::kNeedMore || d.buf.space() == 0 || d.src_eof) {
      run_content_rules();
      return true;
    }
  }
  if (phase_ != Phase::kForwarding) return progress;
  if (d.src_eof && d.buf.empty() && (!d.pipe || d.pipe->bytes == 0) && !d.shut_sent) {
    stream(d.dst).shutdown_write();
    d.shut_sent = true;
    progress = true;
  }
  return progress;
}

bool TcpSession::pump_buffered(Direction& d) {
  bool progress = false;
  Stream& src = stream(d.src);
  Stream& dst = stream(d.dst);
  if (readable_[d.src] && !d.src_eof && take_buffer(d.buf, kBufferClaim)) {
    d.buf.make_room();
    size_t want = d.buf.space();
    if (want > 0) {
      ssize_t n = src.read(d.buf.write_ptr(), want);
      if (n > 0) {
        d.buf.produce(static_cast<size_t>(n));
        if (static_cast<size_t>(n) < want) {
          d.bulk = 0;
          if (!hup_[d.src] && src.drained()) readable_[d.src] = false;
        } else {
          d.bulk += static_cast<uint64_t>(n);
        }
        last_activity_ = ctx_.loop().now_ms();
        progress = true;
      } else if (n == 0) {
        d.src_eof = true;
        progress = true;
      } else if (errno == EAGAIN) {
        readable_[d.src] = false;
      } else if (errno != EINTR) {
        fail(d.src);
        return true;
      }
    }
  }
  if (phase_ == Phase::kForwarding && writable_[d.dst] && !d.buf.empty() &&
      !ctx_.loop().hold_write(this, d.dst == kServer)) {
    iovec iov{d.buf.data(), d.buf.size()};
    ssize_t n = dst.writev(&iov, 1);
    if (n > 0) {
      if (static_cast<size_t>(n) < d.buf.size()) writable_[d.dst] = false;
      d.buf.consume(static_cast<size_t>(n));
      d.bytes += static_cast<uint64_t>(n);
      last_activity_ = ctx_.loop().now_ms();
      progress = true;
    } else if (n < 0 && errno == EAGAIN) {
      writable_[d.dst] = false;
    } else if (n < 0 && errno != EINTR) {
      fail(d.dst);
      return true;
    }
  }
  if (d.buf.empty()) {
    d.buf.release(ctx_.buffers());  // the claim goes at the end of run()
    size_t threshold = ctx_.worker().config().global.splice_threshold;
    // Bulk transfer: move to splice() once enough bytes have streamed this way.
    if (phase_ == Phase::kForwarding && threshold > 0 && d.bulk >= threshold && !d.src_eof &&
        src.plain() && dst.plain()) {
      d.pipe = ctx_.take_pipe();
    }
  }
  return progress;
}

bool TcpSession::pump_spliced(Direction& d) {
  bool progress = false;
  SplicePipe& p = *d.pipe;
  int src = stream(d.src).fd();
  int dst = stream(d.dst).fd();
  if (readable_[d.src] && !d.src_eof && p.bytes < kPipeChunk) {
    size_t want = kPipeChunk - p.bytes;
    ssize_t n = splice(src, nullptr, p.wr.get(), nullptr, want, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
    if (n > 0) {
      p.bytes += static_cast<size_t>(n);
      last_activity_ = ctx_.loop().now_ms();
      progress = true;
      if (static_cast<size_t>(n) < kSmallSplice) d.bulk = 0;
    } else if (n == 0) {
      d.src_eof = true;
      progress = true;
    } else if (errno == EAGAIN) {
      // With an empty pipe this can only mean the socket is drained; with a
      // partly full one the pipe may be out of slots, so try again after it drains.
      if (p.bytes == 0) readable_[d.src] = false;
    } else if (errno != EINTR) {
      fail(d.src);
      return true;
    }
  }
  if (writable_[d.dst] && p.bytes > 0) {
    ssize_t n =
        splice(p.rd.get(), nullptr, dst, nullptr, p.bytes, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
    if (n > 0) {
      if (static_cast<size_t>(n) < p.bytes) writable_[d.dst] = false;
      p.bytes -= static_cast<size_t>(n);
      d.bytes += static_cast<uint64_t>(n);
      last_activity_ = ctx_.loop().now_ms();
      progress = true;
    } else if (n < 0 && errno == EAGAIN) {
      writable_[d.dst] = false;
    } else if (n < 0 && errno != EINTR) {
      fail(d.dst);
      return true;
    }
  }
  if (p.bytes == 0 && d.bulk == 0) {
    // Small messages again: back to read/write, which costs fewer system calls.
    ctx_.put_pipe(std::move(d.pipe));
  }
  return progress;
}

void TcpSession::begin_connect() {
  int64_t now = ctx_.loop().now_ms();
  // Only the client's address is known in tcp mode (the loader refuses the http keys).
  LbRequest req =
      lb_request(be_->config().balance, be_->lb_def().key, peer_, {},
                 [](std::string_view) -> std::optional<std::string_view> { return std::nullopt; });
  if (const auto& rules = be_->config().stick_rules; !rules.empty()) {
    if (slot_.attempts() == 0) {
      // Persistence: the server the client's entry names, and the keys to store
      // once a server is connected.
      SampleSource f;
      SockAddr local;
      bool have_local = false;
      fill_fetch(f, &local, &have_local);
      stuck_key_ = persist::match(rules, f);
      persist::collect_stores(rules, f, false, &stores_);
    }
    req.stuck_key = stuck_key_;
  }
  switch (slot_.acquire(be_, req, this, &ctx_.loop(), now)) {
    case ServerSlot::Result::kServer:
      break;
    case ServerSlot::Result::kQueued:
      phase_ = Phase::kQueued;
      update_timer();
      return;
    case ServerSlot::Result::kNoServer:
      finish('S', 'C');
      return;
    case ServerSlot::Result::kQueueFull:
      finish('S', 'Q');
      return;
  }
  connect_to();
}

void TcpSession::on_server_granted() {
  if (phase_ != Phase::kQueued) return;
  if (!slot_.take_grant(ctx_.loop().now_ms())) return;  // the queue timeout came first
  connect_to();
  if (phase_ != Phase::kClosed) run();
}

void TcpSession::connect_to() {
  Server* const server = slot_.server();
  bool in_progress = false;
  int err = 0;
  const int64_t now = ctx_.loop().now_ms();
  srv_ = UpstreamConnection::open(ctx_.loop(), ctx_.id(), server, server->addr(), this,
                                  &in_progress, &err);
  if (!srv_) {
    if (!net::out_of_descriptors(err)) {
      connect_failed(err);
      return;
    }
    // weir is out of descriptors, the server is not at fault: keep the slot and
    // try again soon, until timeout connect.
    ctx_.worker().note_fd_shortage("connection to server " + be_->name() + "/" + server->name(),
                                   err);
    if (!fd_wait_) t_connect_start_ = now;
    fd_wait_ = true;
    fd_retry_at_ = now + kFdRetryMs;
    phase_ = Phase::kConnecting;
    update_timer();
    return;
  }
  fd_wait_ = false;
  if (const SendProxyConfig& pp = server->config().send_proxy; pp.version != 0) {
    SockAddr local;
    bool have_local = false;
    SampleSource ignored;
    fill_fetch(ignored, &local, &have_local);
    srv_->send_first(proxy_protocol::header_for_client(
        pp, peer_, have_local ? &local : nullptr,
        c_tls_ && phase_ != Phase::kHandshake ? c_tls_->ssl() : nullptr,
        proxied_ ? &proxied_->header : nullptr));
  }
  readable_[kServer] = writable_[kServer] = hup_[kServer] = false;
  t_connect_start_ = now;
  phase_ = Phase::kConnecting;
  if (!in_progress) connect_done();
  update_timer();
}

void TcpSession::connect_done() {
  if (phase_ != Phase::kConnecting || !srv_) return;
  const auto sni = [this] {
    const tls::BackContext* tc = slot_.server()->tls();
    if (tc->config().sni_text.empty()) return std::string();
    SampleSource f;
    SockAddr local;
    bool have_local = false;
    fill_fetch(f, &local, &have_local);
    return tc->sni(f);
  };
  switch (srv_->advance(sni)) {
    case UpstreamConnection::Progress::kPending:
      return;
    case UpstreamConnection::Progress::kFailed:
      if (!srv_->failure().empty()) {
        tls::note_server_failure(be_->name(), slot_.server()->name(), srv_->failure());
      }
      connect_failed(srv_->error());
      return;
    case UpstreamConnection::Progress::kReady:
      break;
  }
  // Bytes may wait inside a TLS layer that just finished its handshake.
  if (!srv_->stream().plain()) readable_[kServer] = true;
  t_connected_ = ctx_.loop().now_ms();
  last_activity_ = t_connected_;
  writable_[kServer] = true;
  slot_.server()->observe_result(false, false);
  if (!stores_.empty()) {
    persist::store(stores_, slot_.server()->name_key());
    stores_.clear();
  }
  phase_ = Phase::kForwarding;
}

void TcpSession::connect_failed(int err) {
  Server* const server = slot_.server();
  log::debug("tcp connect to %s/%s failed: %s", be_->name().c_str(),
             server ? server->name().c_str() : "-", std::strerror(err));
  const bool retry = slot_.connect_failed(
      err, srv_ && !srv_->failure().empty() ? srv_->failure().c_str() : std::strerror(err));
  if (srv_) ctx_.upstreams().close(std::move(srv_));
  if (retry) {
    begin_connect();
    return;
  }
  finish(err == ETIMEDOUT ? 's' : 'S', 'C');
}

void TcpSession::update_timer() {
  int64_t deadline = 0;
  if (phase_ == Phase::kHandshake) {
    int64_t c = fe_.config().timeouts.client;
    if (c > 0) deadline = t_start_ + c;
  } else if (phase_ == Phase::kInspect) {
    deadline = t_inspect_start_ + fe_.config().inspect_delay;
  } else if (phase_ == Phase::kQueued) {
    int64_t q = be_->timeouts().queue;
    if (q > 0) deadline = slot_.queue_start() + q;
  } else if (phase_ == Phase::kConnecting) {
    int64_t c = be_->timeouts().connect;
    if (c > 0) deadline = t_connect_start_ + c;
    if (fd_wait_ && (deadline == 0 || fd_retry_at_ < deadline)) deadline = fd_retry_at_;
  } else if (phase_ == Phase::kForwarding) {
    int64_t t = be_->timeouts().tunnel;
    if (t <= 0) {
      int64_t a = fe_.config().timeouts.client;
      int64_t b = be_->timeouts().server;
      t = (a > 0 && b > 0) ? std::min(a, b) : (a > 0 ? a : b);
    }
    if (t > 0) deadline = last_activity_ + t;
  }
  timer_.set(deadline);
}

void TcpSession::finish(char who, char phase) {
  if (phase_ == Phase::kClosed) return;
  term_[0] = who;
  term_[1] = phase;
  int64_t now = ctx_.loop().now_ms();
  slot_.cancel();  // still waiting (or just granted): give the place back
  int64_t t_queue = slot_.attempts() > 0 ? slot_.queue_ms(now) : -1;
  int64_t t_connect = t_connected_ >= 0 ? t_connected_ - t_connect_start_ : -1;
  int64_t t_total = now - t_start_;
  if (sc_) sc_->sync_bytes(up_.bytes, down_.bytes, stick::clock_now(), true);
  TrafficCounters& fc = fe_.counters();
  fc.add_session(now);
  bump(fc.local().bytes_in, up_.bytes);
  bump(fc.local().bytes_out, down_.bytes);
  if (be_ && slot_.attempts() > 0) {
    TrafficCounters& bc = be_->counters();
    bc.add_session(now);
    bump(bc.local().bytes_in, up_.bytes);
    bump(bc.local().bytes_out, down_.bytes);
    if (slot_.server() && t_connected_ >= 0) {
      bc.add_times(t_queue, t_connect, -1, t_total);
      bc.add_termination(term_);
      fc.add_termination(term_);
    }
  }
  if (slot_.server()) {
    TrafficCounters& sc = slot_.server()->counters();
    if (t_connected_ >= 0) {
      sc.add_session(now);
      bump(sc.local().bytes_in, up_.bytes);
      bump(sc.local().bytes_out, down_.bytes);
      sc.add_times(t_queue, t_connect, -1, t_total);
      sc.add_termination(term_);
    }
  }
  if (fe_.config().log && ctx_.access_log().enabled()) {
    AccessLogEntry e;
    e.http = false;
    e.client = peer_text_;
    e.frontend = fe_.name();
    e.backend = be_ ? std::string_view(be_->name()) : std::string_view();
    e.server = slot_.server() ? std::string_view(slot_.server()->name()) : std::string_view();
    e.accept_epoch_ms = t_start_wall_;
    e.t_queue = t_queue;
    e.t_connect = t_connected_ >= 0 ? t_connect : -1;
    e.t_total = t_total;
    e.bytes_out = down_.bytes;
    e.bytes_in = up_.bytes;
    e.termination[0] = term_[0];
    e.termination[1] = term_[1];
    e.retries = slot_.attempts() > 1 ? slot_.attempts() - 1 : 0;
    fill_access_log_counts(e, ctx_.worker(), fe_, be_, slot_.server());
    std::vector<std::string> samples;
    if (const auto& list = ctx_.worker().log_samples(); !list.empty()) {
      // tcp mode: the connection's fetches (addresses, ports); HTTP ones are empty.
      SockAddr local;
      bool have_local = false;
      SampleSource f;
      fill_fetch(f, &local, &have_local);
      for (const auto& smp : list) samples.push_back(smp.evaluate(f).value_or(std::string()));
      e.samples = &samples;
    }
    ctx_.access_log().log(e);
  }
  slot_.release();
  destroy();
}

void TcpSession::fail(Side side) {
  // The other side is reset too: a FIN would pass the broken stream off as a
  // whole one.
  reset_both_ = true;
  finish(side == kClient ? 'C' : 'S', 'D');
}

void TcpSession::kill() {
  finish('K', phase_ == Phase::kQueued ? 'Q' : phase_ == Phase::kConnecting ? 'C' : 'D');
}

std::string TcpSession::describe(int64_t now_ms) const {
  std::string out =
      "id=" + std::to_string(id()) + " proto=tcp frontend=" + fe_.name() + " src=" + peer_text_;
  if (proxied_) out += " via=" + proxied_->via.to_string();  // the PROXY header's sender
  out += " backend=" + (be_ ? be_->name() : std::string("-"));
  out += " server=" + (slot_.server() ? slot_.server()->name() : std::string("-"));
  out += phase_ == Phase::kHandshake    ? " state=handshake"
         : phase_ == Phase::kInspect    ? " state=inspecting"
         : phase_ == Phase::kQueued     ? " state=queued"
         : phase_ == Phase::kConnecting ? " state=connecting"
                                        : " state=forwarding";
  out += " age=" + std::to_string((now_ms - t_start_) / 1000) + "s";
  out += " bytes_in=" + std::to_string(up_.bytes) + " bytes_out=" + std::to_string(down_.bytes);
  return out;
}

void TcpSession::destroy() {
  if (phase_ == Phase::kClosed) return;
  phase_ = Phase::kClosed;
  timer_.disarm();
  up_.buf.release(ctx_.buffers());
  down_.buf.release(ctx_.buffers());
  leave_buffer_pool();
  if (up_.pipe) ctx_.put_pipe(std::move(up_.pipe));
  if (down_.pipe) ctx_.put_pipe(std::move(down_.pipe));
  if (reset_both_ && client_.valid()) {
    client_.abort();
  } else {
    client_.close();
  }
  if (srv_) ctx_.upstreams().close(std::move(srv_), reset_both_);
  c_tls_ = nullptr;
  ctx_.worker().release(fe_);
  ctx_.remove_session(this);
}

}  // namespace weir
