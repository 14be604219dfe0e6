// Tunnel mode of an http session: after a 101 Switching Protocols answering a
// forwarded WebSocket upgrade, or a 2xx answering an allowed CONNECT, weir stops
// reading HTTP and moves bytes both ways, like a tcp-mode connection, until both
// sides have closed (half-closes are passed on), an error, or `timeout tunnel`
// of inactivity. One access-log line is written at the end, with status 101 (or
// the CONNECT's status) and the bytes of the whole connection.

#include <sys/uio.h>

#include <algorithm>
#include <cerrno>

#include "worker/http/http_request_state.h"
#include "worker/http/http_session.h"
#include "worker/worker.h"

namespace weir {

int64_t HttpSession::tunnel_timeout() const {
  int64_t t = r_->be_->timeouts().tunnel;
  if (t > 0) return t;
  int64_t a = fe_to().client;
  int64_t b = r_->be_->timeouts().server;
  return (a > 0 && b > 0) ? std::min(a, b) : (a > 0 ? a : b);
}

void HttpSession::start_tunnel() {
  r_->tunnel_pending_ = false;
  phase_ = Phase::kTunnel;
  // The request head went to the server already; what follows it in r_->req_in_
  // (bytes the client sent early) is tunnel data.
  if (r_->req_head_raw_ > 0) {
    r_->req_in_.consume(r_->req_head_raw_);
    r_->req_head_raw_ = 0;
  }
  r_->req_body_window_ = 0;
  r_->res_body_window_ = 0;
  r_->tun_client_shut_ = r_->tun_server_shut_ = false;
  // Edge-triggered sockets: bytes may already wait on either side.
  c_readable_ = r_->s_readable_ = true;
  c_writable_ = r_->s_writable_ = true;
  int64_t now = ctx_.loop().now_ms();
  c_last_activity_ = r_->s_last_activity_ = now;
}

bool HttpSession::pump_tunnel() {
  if (!r_) return false;
  if (phase_ != Phase::kTunnel || !r_->srv_) return false;
  bool progress = false;
  int64_t now = ctx_.loop().now_ms();
  // Ends the tunnel after a socket error on one side ('C' client, 'S' server).
  // Both connections are reset: a FIN would pass the broken stream off as a
  // whole one.
  auto abort = [this](char who) {
    r_->term_[0] = who;
    r_->term_[1] = 'D';
    log_transaction();
    client_.abort();
    r_->srv_->stream().abort();
    destroy();
  };
  // One direction: read src into `in`, write `pending` (a head not fully sent
  // yet) then `in` to dst, pass the FIN on once src ended and all is written.
  struct Way {
    Stream& src;
    Stream& dst;
    Buffer& pending;
    Buffer& in;
    bool& readable;
    bool hup;
    bool& eof;
    bool& writable;
    bool& shut;
    char src_who;
    char dst_who;
    bool from_client;
  };
  Way ways[2] = {
      {client_, r_->srv_->stream(), r_->req_out_, r_->req_in_, c_readable_, c_hup_, c_eof_,
       r_->s_writable_, r_->tun_client_shut_, 'C', 'S', true},
      {r_->srv_->stream(), client_, r_->res_out_, r_->res_in_, r_->s_readable_, r_->s_hup_,
       r_->s_eof_, c_writable_, r_->tun_server_shut_, 'S', 'C', false},
  };
  for (Way& w : ways) {
    if (w.readable && !w.eof && take_buffer(w.in, kBufferClaim)) {
      w.in.make_room();
      size_t want = w.in.space();
      if (want > 0) {
        ssize_t n = w.src.read(w.in.write_ptr(), want);
        if (n > 0) {
          w.in.produce(static_cast<size_t>(n));
          if (static_cast<size_t>(n) < want && !w.hup && w.src.drained()) w.readable = false;
          if (w.from_client) {
            r_->bytes_in_ += static_cast<uint64_t>(n);
            c_last_activity_ = now;
          } else {
            r_->s_last_activity_ = now;
          }
          progress = true;
        } else if (n == 0) {
          w.eof = true;
          progress = true;
        } else if (errno == EAGAIN) {
          w.readable = false;
        } else if (errno != EINTR) {
          abort(w.src_who);
          return true;
        }
      }
    }
    if (w.writable && (!w.pending.empty() || !w.in.empty())) {
      iovec iov[2];
      int cnt = 0;
      if (!w.pending.empty()) iov[cnt++] = {w.pending.data(), w.pending.size()};
      if (!w.in.empty()) iov[cnt++] = {w.in.data(), w.in.size()};
      size_t total = w.pending.size() + w.in.size();
      ssize_t n = w.dst.writev(iov, cnt);
      if (n > 0) {
        size_t left = static_cast<size_t>(n);
        if (left < total) w.writable = false;
        size_t from_pending = std::min(left, w.pending.size());
        w.pending.consume(from_pending);
        w.in.consume(left - from_pending);
        if (!w.from_client) {
          r_->bytes_out_ += left;
          c_last_activity_ = now;
        } else {
          r_->s_last_activity_ = now;
        }
        progress = true;
      } else if (n < 0 && errno == EAGAIN) {
        w.writable = false;
      } else if (n < 0 && errno != EINTR) {
        abort(w.dst_who);
        return true;
      }
    }
    if (w.eof && w.pending.empty() && w.in.empty() && !w.shut) {
      w.dst.shutdown_write();
      w.shut = true;
      progress = true;
    }
    if (w.in.empty()) w.in.release_if_empty(ctx_.buffers());
  }
  if (r_->tun_client_shut_ && r_->tun_server_shut_) {
    log_transaction();
    destroy();
    return true;
  }
  return progress;
}

}  // namespace weir
