// Tunnel mode of an HTTP/1 client connection: after a 101 Switching Protocols answering a
// forwarded WebSocket upgrade, or a 2xx answering an allowed CONNECT, weir stops
// reading HTTP and moves bytes both ways, like a tcp-mode connection, until both
// sides have closed (half-closes are passed on), an error, or `timeout tunnel`
// of inactivity. The transaction's server connection carries the server's side;
// the transaction writes one access-log line at the end, with status 101 (or
// the CONNECT's status) and the bytes of the whole connection.

#include <sys/uio.h>

#include <algorithm>
#include <cerrno>

#include "worker/http/h1/h1_client_connection.h"
#include "worker/http/h1/h1_request_block.h"
#include "worker/worker.h"

namespace weir {

void H1ClientConnection::start_tunnel() {
  phase_ = Phase::kTunnel;
  // The request head went to the server already; what follows it in r_->req_in_
  // (bytes the client sent early) is tunnel data.
  release_request_head();
  r_->req_body_window_ = 0;
  r_->tun_client_shut_ = r_->tun_server_shut_ = false;
  // Edge-triggered sockets: bytes may already wait on the client's side.
  c_readable_ = true;
  c_writable_ = true;
  c_last_activity_ = ctx_.loop().now_ms();
}

bool H1ClientConnection::pump_tunnel() {
  if (!r_) return false;
  if (phase_ != Phase::kTunnel || !r_->txn.upstream_attached()) return false;
  bool progress = false;
  int64_t now = ctx_.loop().now_ms();
  HttpTransaction::TunnelSide server = r_->txn.tunnel_side();
  // Ends the tunnel after a socket error on one side ('C' client, 'S' server).
  // Both connections are reset: a FIN would pass the broken stream off as a
  // whole one.
  auto abort = [this, &server](char who) {
    const char term[3] = {who, 'D', 0};
    r_->txn.terminate(term);
    client_.abort();
    server.stream.abort();
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
      {client_, server.stream, server.pending, r_->req_in_, c_readable_, c_hup_, c_eof_,
       server.writable, r_->tun_client_shut_, 'C', 'S', true},
      {server.stream, client_, r_->res_out_, server.in, server.readable, server.hup, server.eof,
       c_writable_, r_->tun_server_shut_, 'S', 'C', false},
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
            r_->txn.count_client_bytes(static_cast<uint64_t>(n), 0);
            c_last_activity_ = now;
          } else {
            server.last_activity = now;
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
          r_->txn.count_client_bytes(0, left);
          c_last_activity_ = now;
        } else {
          server.last_activity = now;
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
    r_->txn.terminate(nullptr);
    destroy();
    return true;
  }
  return progress;
}

}  // namespace weir
