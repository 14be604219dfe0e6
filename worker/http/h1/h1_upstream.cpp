// HttpTransaction (worker/http/transaction.h): the HTTP/1 exchange with the
// server: the request head weir writes (hop-by-hop fields removed, framing in
// canonical form, X-Forwarded-For, client certificate fields), the request and
// its body sent, the response read and parsed, and its body window for the
// client side.
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>

#include "common/base/log.h"
#include "worker/http/h1/h1_fields.h"
#include "worker/http/transaction.h"
#include "worker/thread_context.h"
#include "worker/tls/tls.h"
#include "worker/worker.h"

namespace weir {

using h1::ConnectionNamed;
using h1::is_hop_by_hop;
using h1::put_framing;

bool HttpTransaction::build_request_head() {
  http::MessageHead& h = ctx_.scratch_head();
  size_t scan = 0;
  // The head as rules left it, else as the client sent it.
  const std::string_view head = edited_head_.empty() ? client_->request_head() : edited_head_;
  if (!scratch_fresh_ && http::parse_request(head.data(), head.size(), head.size() + 1, &scan, &h,
                                             ctx_.worker().config().global.max_headers) !=
                             http::ParseStatus::kComplete) {
    send_error(400, "PR");
    return false;
  }
  // Without a buffer now, write_server() builds the head once one comes.
  if (!client_->take_buffer(req_out_)) return false;
  req_out_.clear();
  Buffer& o = req_out_;
  bool ok = true;
  auto put = [&](std::string_view s) { ok = ok && o.append(s.data(), s.size()); };
  put(h.method);
  put(" ");
  put(h.target);
  put(h.version_minor ? " HTTP/1.1\r\n" : " HTTP/1.0\r\n");
  const ConnectionNamed connection_named(h);
  bool te_done = false;
  tls::Connection* client_tls = client_->client_tls();
  const bool cert_headers = client_tls && client_->client_tls_config()->client_cert_headers;
  const bool forwardfor = fe_->config().forwardfor;
  const CookieConfig& cookie = be_->config().cookie;
  const bool cookie_rewrite = persist::rewrites_request(cookie);
  for (size_t i = 0; i < h.header_count; ++i) {
    const http::Header& hd = h.headers[i];
    if (put_framing(h, hd, &te_done, put)) continue;
    if (is_hop_by_hop(hd.name) || connection_named.has(hd.name)) continue;
    if (cookie_rewrite && http::iequals(hd.name, "cookie")) {
      // Persistence: weir's cookie (insert, indirect) or prefix is not the server's.
      thread_local std::string value;
      if (persist::request_cookie_for_server(cookie, hd.value, &value)) {
        if (!value.empty()) {
          put(hd.name);
          put(": ");
          put(value);
          put("\r\n");
        }
        continue;
      }
    }
    // Only weir may tell the server about the client's certificate.
    if (cert_headers && hd.name.size() > 14 &&
        http::iequals(hd.name.substr(0, 14), "x-client-cert-")) {
      continue;
    }
    if (forwardfor && http::iequals(hd.name, "x-forwarded-for")) {
      // Extend the client's list with the address that connected to us.
      put(hd.name);
      put(": ");
      put(hd.value);
      put(", ");
      put(peer_.host_string());
      put("\r\n");
      continue;
    }
    put(hd.name);
    put(": ");
    put(hd.value);
    put("\r\n");
  }
  if (!h.has_host) {
    // HTTP/1.0 without Host: name the server so HTTP/1.1-only servers accept it.
    put("Host: ");
    put(server_->addr_text());
    put("\r\n");
  }
  if (forwardfor && !h.find("x-forwarded-for")) {
    put("X-Forwarded-For: ");
    put(peer_.host_string());
    put("\r\n");
  }
  if (cert_headers) {
    const SSL* ssl = client_tls->ssl();
    const bool used = tls::peer_cert_used(ssl);
    put("X-Client-Cert-Verify: ");
    put(!used ? "NONE" : tls::peer_verify_result(ssl) == X509_V_OK ? "SUCCESS" : "FAILED");
    put("\r\n");
    if (used) {
      put("X-Client-Cert-Subject: ");
      put(tls::peer_subject(ssl));
      put("\r\nX-Client-Cert-Issuer: ");
      put(tls::peer_issuer(ssl));
      put("\r\nX-Client-Cert-Serial: ");
      put(tls::peer_serial(ssl));
      put("\r\n");
    }
  }
  // A WebSocket handshake keeps its Upgrade (only "websocket": weir cannot
  // tunnel what it does not know); anything else asks for a persistent server
  // connection whatever the client does.
  req_upgrade_ = h.version_minor == 1 && h.conn_upgrade && h.upgrade_websocket &&
                 h.method == "GET" && h.body == http::BodyKind::kNone;
  if (req_upgrade_) {
    put("Connection: upgrade\r\nUpgrade: websocket\r\n");
  } else if (h.version_minor == 0) {
    put("Connection: keep-alive\r\n");
  }
  put("\r\n");
  if (!ok) {
    send_error(400, "PR");
    return false;
  }
  req_head_built_ = true;
  req_sent_ = false;
  if (req_body_ != http::BodyKind::kNone) {
    // A body is about to stream: the raw head is no longer needed (and no retry
    // is possible once body bytes have left).
    client_->release_request_head();
  }
  return true;
}

bool HttpTransaction::write_server() {
  if (phase_ != Phase::kExchange || !s_writable_ || !srv_) return false;
  if (!req_head_built_ && !build_request_head()) return phase_ != Phase::kExchange;
  const ClientStream::BodySpan body = client_->request_body();
  if (req_out_.empty() && body.size == 0) return false;
  if (client_->defer_write(true)) return false;
  iovec iov[2];
  int cnt = 0;
  if (!req_out_.empty()) iov[cnt++] = {req_out_.data(), req_out_.size()};
  if (body.size) iov[cnt++] = {const_cast<char*>(body.data), body.size};
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
  if (left < req_out_.size() + body.size) s_writable_ = false;
  s_last_activity_ = ctx_.loop().now_ms();
  size_t from_head = std::min(left, req_out_.size());
  req_out_.consume(from_head);
  left -= from_head;
  if (left) client_->consume_request_body(left);
  if (req_out_.empty() && client_->request_body().size == 0 && client_->request_body_complete()) {
    req_sent_ = true;
    req_out_.release(ctx_.buffers());
  }
  return true;
}

bool HttpTransaction::read_server() {
  if (phase_ != Phase::kExchange || !s_readable_ || s_eof_ || !srv_) return false;
  if (res_parsed_ && res_body_complete_) return false;
  if (!client_->take_buffer(res_in_)) return false;
  res_in_.make_room();
  if (res_in_.space() == 0) return false;
  size_t want_bytes = res_in_.space();
  ssize_t n = srv_->stream().read(res_in_.write_ptr(), want_bytes);
  if (n > 0) {
    if (static_cast<size_t>(n) < want_bytes && !s_hup_ && srv_->stream().drained()) {
      s_readable_ = false;
    }
    res_in_.produce(static_cast<size_t>(n));
    res_read_ += static_cast<uint64_t>(n);
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

void HttpTransaction::before_wait() {
  if (s_quick_acked_ || phase_ != Phase::kExchange || !srv_ || !res_parsed_ || res_body_complete_ ||
      s_readable_ || s_eof_ || res_read_ != res_heads_) {
    return;
  }
  s_quick_acked_ = true;
  const int one = 1;
  ::setsockopt(srv_->stream().fd(), IPPROTO_TCP, TCP_QUICKACK, &one, sizeof one);
}

bool HttpTransaction::parse_response() {
  if (phase_ != Phase::kExchange || res_parsed_) return false;
  if (res_in_.empty()) {
    if (s_eof_) {
      server_failed_before_response("SH");
      return true;
    }
    return false;
  }
  // The head weir writes to the client goes there (taken first: nothing is
  // decided about the response until it can be relayed).
  if (!client_->prepare_response()) return false;
  http::MessageHead& h = ctx_.scratch_head();
  http::ParseStatus st =
      http::parse_response(res_in_.data(), res_in_.size(), res_in_.capacity(), &res_scan_,
                           req_method_, &h, ctx_.worker().config().global.max_headers);
  if (st == http::ParseStatus::kIncomplete) {
    if (s_eof_) {
      // The server closed in the middle of a response head.
      count_response_error();
      send_error(502, "SH");
      return true;
    }
    return false;
  }
  if (st == http::ParseStatus::kError) {
    log::debug("bad response from %s/%s: %s at offset %zu", be_->name().c_str(),
               server_->name().c_str(), h.error, h.error_offset);
    count_response_error();
    server_->observe_result(true, true, "L7RSP", "invalid response");
    be_->errors().record(be_->name() + "/" + server_->name(), h.error, h.error_offset,
                         std::string_view(res_in_.data(), res_in_.size()));
    send_error(502, "PH");
    return true;
  }
  res_scan_ = 0;
  // A 101 to the WebSocket upgrade weir forwarded, or a 2xx to an allowed
  // CONNECT: the response is relayed, then the connection becomes a tunnel.
  const bool switching = h.status == 101 && req_upgrade_ && h.upgrade_websocket;
  if (h.status >= 100 && h.status < 200 && !switching) {
    if (h.status == 101) {
      // Only a forwarded WebSocket upgrade may switch protocols.
      send_error(502, "PH");
      return true;
    }
    // Interim response (100 Continue, 103 Early Hints): relayed to HTTP/1.1 clients.
    if (!client_->send_interim(std::string_view(res_in_.data(), h.head_len))) {
      send_error(502, "PH");
      return true;
    }
    res_in_.consume(h.head_len);
    res_heads_ += h.head_len;
    return true;
  }
  t_response_ = ctx_.loop().now_ms();
  res_parsed_ = true;
  res_heads_ += h.head_len;
  res_status_ = h.status;
  if (server_) {
    // Passive layer7 checks: 5xx from the server, except 501 and 505 (the
    // request's fault, not the server's), count as errors.
    const bool bad = h.status >= 500 && h.status != 501 && h.status != 505;
    char what[32] = "";
    if (bad) std::snprintf(what, sizeof what, "HTTP status %d", h.status);
    server_->observe_result(bad, true, "L7STS", what);
  }
  res_body_ = h.body;
  res_body_left_ = h.body == http::BodyKind::kContentLength ? h.content_length : 0;
  res_chunks_.reset();
  res_body_window_ = 0;
  res_body_complete_ = h.body == http::BodyKind::kNone;
  res_server_keep_alive_ = h.keep_alive() && h.body != http::BodyKind::kUntilClose;
  // A body delimited by the close, or an upload the server answered before its
  // end, ends the client's connection too; the client side adds its own reasons
  // (draining, a client that shut its side).
  const bool close = h.body == http::BodyKind::kUntilClose || !client_->request_body_complete();
  tunnel_pending_ = switching || (req_connect_ && h.status / 100 == 2);
  if (!tunnel_pending_ && ((be_ && !be_->config().rules.http_response.empty()) ||
                           !fe_->config().rules.http_response.empty())) {
    if (!apply_response_rules(h)) return true;
  }
  if (server_ && persistent()) persist_response(h);
  if (!ctx_.worker().log_samples().empty()) eval_log_samples(LogStage::kResponse, nullptr, &h);
  count_status_in_trackers();
  const ResponseHead head{h, std::string_view(res_in_.data(), h.head_len),
                          res_edit_ ? &*res_edit_ : nullptr,
                          switching         ? ResponseHead::Kind::kWebSocket
                          : tunnel_pending_ ? ResponseHead::Kind::kConnect
                                            : ResponseHead::Kind::kNormal,
                          close};
  if (!client_->send_response_head(head)) {
    send_error(502, "PH");
    return true;
  }
  res_in_.consume(h.head_len);
  if (req_body_ == http::BodyKind::kNone) {
    // The response has begun: the request can no longer be replayed.
    client_->release_request_head();
  }
  extend_response_body_window();
  if (s_eof_ && !s_reset_ && res_body_ == http::BodyKind::kUntilClose) res_body_complete_ = true;
  return true;
}

void HttpTransaction::extend_response_body_window() {
  if (!res_parsed_ || res_body_complete_) return;
  if (res_in_.size() <= res_body_window_) return;
  size_t avail = res_in_.size() - res_body_window_;
  switch (res_body_) {
    case http::BodyKind::kContentLength: {
      size_t take = static_cast<size_t>(std::min<uint64_t>(avail, res_body_left_));
      res_body_window_ += take;
      res_body_left_ -= take;
      if (res_body_left_ == 0) res_body_complete_ = true;
      break;
    }
    case http::BodyKind::kChunked: {
      size_t take = res_chunks_.feed(res_in_.data() + res_body_window_, avail);
      res_body_window_ += take;
      if (res_chunks_.failed()) {
        log::debug("bad chunked response from %s/%s: %s", be_->name().c_str(),
                   server_->name().c_str(), res_chunks_.error());
        count_response_error();
        s_eof_ = true;  // treat like a truncated response: relay what is valid, then abort
        res_server_keep_alive_ = false;
      }
      if (res_chunks_.done()) res_body_complete_ = true;
      break;
    }
    case http::BodyKind::kUntilClose:
      res_body_window_ += avail;
      break;
    case http::BodyKind::kNone:
      res_body_complete_ = true;
      break;
  }
}

ClientStream::BodySpan HttpTransaction::response_body() const {
  return {res_in_.data(), res_body_window_};
}

void HttpTransaction::consume_response_body(size_t n) {
  res_in_.consume(n);
  res_body_window_ -= n;
  extend_response_body_window();
}

}  // namespace weir
