// HttpSession (http_session.h): the request head sent to the server and the
// response head sent to the client (hop-by-hop headers, framing in canonical
// form, Connection), and the end of a response.
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

// Removed from every forwarded message (RFC 9110 7.6.1). Trailer stays: the
// trailers it announces are forwarded with the chunked body.
bool is_hop_by_hop(std::string_view name) {
  return http::iequals(name, "connection") || http::iequals(name, "keep-alive") ||
         http::iequals(name, "proxy-connection") || http::iequals(name, "upgrade") ||
         http::iequals(name, "te") || http::iequals(name, "proxy-authenticate");
}

// Fields a Connection header may not remove: dropping the framing, the Host or
// weir's own X-Forwarded-For on a client's say-so would let it smuggle a body
// past the server or hide its address.
bool protected_from_connection(std::string_view name) {
  return http::iequals(name, "content-length") || http::iequals(name, "transfer-encoding") ||
         http::iequals(name, "host") || http::iequals(name, "x-forwarded-for");
}

// Writes a framing header in one canonical form instead of copying it: the
// parsed Content-Length in decimal; every Transfer-Encoding header merged into
// one list (written at the first one, `*te_done` then set). Returns false when
// `hd` is not a framing header.
template <typename Put>
bool put_framing(const http::MessageHead& h, const http::Header& hd, bool* te_done, Put& put) {
  if (http::iequals(hd.name, "content-length")) {
    char num[24];
    int n =
        std::snprintf(num, sizeof num, "%llu", static_cast<unsigned long long>(h.content_length));
    put("Content-Length: ");
    put(std::string_view(num, static_cast<size_t>(n)));
    put("\r\n");
    return true;
  }
  if (!http::iequals(hd.name, "transfer-encoding")) return false;
  if (*te_done) return true;
  *te_done = true;
  put("Transfer-Encoding: ");
  bool first = true;
  for (size_t i = 0; i < h.header_count; ++i) {
    if (!http::iequals(h.headers[i].name, "transfer-encoding")) continue;
    http::for_each_list_element(h.headers[i].value, [&](std::string_view tok) {
      if (!first) put(", ");
      first = false;
      put(http::iequals(tok, "chunked") ? std::string_view("chunked") : tok);
    });
  }
  put("\r\n");
  return true;
}

// The header names listed in the message's Connection headers (other than
// close, keep-alive and upgrade): hop-by-hop too (RFC 9110 7.6.1). Collected once
// per message; almost always none.
class ConnectionNamed {
 public:
  explicit ConnectionNamed(const http::MessageHead& h) {
    for (size_t i = 0; i < h.header_count; ++i) {
      if (!http::iequals(h.headers[i].name, "connection")) continue;
      std::string_view v = h.headers[i].value;
      while (!v.empty()) {
        size_t comma = v.find(',');
        std::string_view tok = v.substr(0, comma);
        while (!tok.empty() && (tok.front() == ' ' || tok.front() == '\t')) tok.remove_prefix(1);
        while (!tok.empty() && (tok.back() == ' ' || tok.back() == '\t')) tok.remove_suffix(1);
        if (!tok.empty() && !http::iequals(tok, "close") && !http::iequals(tok, "keep-alive") &&
            !http::iequals(tok, "upgrade") && !protected_from_connection(tok) && count_ < kMax) {
          names_[count_++] = tok;
        }
        if (comma == std::string_view::npos) break;
        v.remove_prefix(comma + 1);
      }
    }
  }
  bool has(std::string_view name) const {
    for (size_t i = 0; i < count_; ++i)
      if (http::iequals(names_[i], name)) return true;
    return false;
  }

 private:
  static constexpr size_t kMax = 16;
  std::string_view names_[kMax];
  size_t count_ = 0;
};

}  // namespace

bool HttpSession::build_request_head() {
  http::MessageHead& h = ctx_.scratch_head();
  size_t scan = 0;
  // The head as rules left it, else as the client sent it.
  const char* head_src = r_->edited_head_.empty() ? r_->req_in_.data() : r_->edited_head_.data();
  const size_t head_len = r_->edited_head_.empty() ? r_->req_head_raw_ : r_->edited_head_.size();
  if (!r_->scratch_fresh_ && http::parse_request(head_src, head_len, head_len + 1, &scan, &h,
                                                 ctx_.worker().config().global.max_headers) !=
                                 http::ParseStatus::kComplete) {
    send_error(400, "PR");
    return false;
  }
  // Without a buffer now, write_server() builds the head once one comes.
  if (!take_buffer(r_->req_out_, kBufferClaim)) return false;
  r_->req_out_.clear();
  Buffer& o = r_->req_out_;
  bool ok = true;
  auto put = [&](std::string_view s) { ok = ok && o.append(s.data(), s.size()); };
  put(h.method);
  put(" ");
  put(h.target);
  put(h.version_minor ? " HTTP/1.1\r\n" : " HTTP/1.0\r\n");
  const ConnectionNamed connection_named(h);
  bool te_done = false;
  const bool cert_headers = c_tls_ && c_tls_cfg_->client_cert_headers;
  for (size_t i = 0; i < h.header_count; ++i) {
    const http::Header& hd = h.headers[i];
    if (put_framing(h, hd, &te_done, put)) continue;
    if (is_hop_by_hop(hd.name) || connection_named.has(hd.name)) continue;
    // Only weir may tell the server about the client's certificate.
    if (cert_headers && hd.name.size() > 14 &&
        http::iequals(hd.name.substr(0, 14), "x-client-cert-")) {
      continue;
    }
    if (fe_.config().forwardfor && http::iequals(hd.name, "x-forwarded-for")) {
      // Extend the client's list with the address that connected to us.
      put(hd.name);
      put(": ");
      put(hd.value);
      put(", ");
      put(r_->peer_.host_string());
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
    put(r_->server_->addr_text());
    put("\r\n");
  }
  if (fe_.config().forwardfor && !h.find("x-forwarded-for")) {
    put("X-Forwarded-For: ");
    put(r_->peer_.host_string());
    put("\r\n");
  }
  if (cert_headers) {
    const SSL* ssl = c_tls_->ssl();
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
  r_->req_upgrade_ = h.version_minor == 1 && h.conn_upgrade && h.upgrade_websocket &&
                     h.method == "GET" && h.body == http::BodyKind::kNone;
  if (r_->req_upgrade_) {
    put("Connection: upgrade\r\nUpgrade: websocket\r\n");
  } else if (h.version_minor == 0) {
    put("Connection: keep-alive\r\n");
  }
  put("\r\n");
  if (!ok) {
    send_error(400, "PR");
    return false;
  }
  r_->req_head_built_ = true;
  r_->req_sent_ = false;
  if (r_->req_body_ != http::BodyKind::kNone) {
    // A body is about to stream: the raw head is no longer needed (and no retry
    // is possible once body bytes have left).
    r_->req_in_.consume(r_->req_head_raw_);
    r_->req_head_raw_ = 0;
  }
  return true;
}

bool HttpSession::parse_response() {
  if (!r_) return false;
  if (phase_ != Phase::kExchange || r_->res_parsed_) return false;
  if (r_->res_in_.empty()) {
    if (r_->s_eof_) {
      server_failed_before_response("SH");
      return true;
    }
    return false;
  }
  // The head weir writes to the client goes there (taken first: nothing is
  // decided about the response until it can be relayed).
  if (!take_buffer(r_->res_out_, kBufferClaim)) return false;
  http::MessageHead& h = ctx_.scratch_head();
  http::ParseStatus st = http::parse_response(
      r_->res_in_.data(), r_->res_in_.size(), r_->res_in_.capacity(), &r_->res_scan_,
      r_->req_method_, &h, ctx_.worker().config().global.max_headers);
  if (st == http::ParseStatus::kIncomplete) {
    if (r_->s_eof_) {
      // The server closed in the middle of a response head.
      count_response_error();
      send_error(502, "SH");
      return true;
    }
    return false;
  }
  if (st == http::ParseStatus::kError) {
    log::debug("bad response from %s/%s: %s at offset %zu", r_->be_->name().c_str(),
               r_->server_->name().c_str(), h.error, h.error_offset);
    count_response_error();
    r_->server_->observe_result(true, true, "L7RSP", "invalid response");
    r_->be_->errors().record(r_->be_->name() + "/" + r_->server_->name(), h.error, h.error_offset,
                             std::string_view(r_->res_in_.data(), r_->res_in_.size()));
    send_error(502, "PH");
    return true;
  }
  r_->res_scan_ = 0;
  // A 101 to the WebSocket upgrade weir forwarded, or a 2xx to an allowed
  // CONNECT: the response is relayed, then the connection becomes a tunnel.
  const bool switching = h.status == 101 && r_->req_upgrade_ && h.upgrade_websocket;
  if (h.status >= 100 && h.status < 200 && !switching) {
    if (h.status == 101) {
      // Only a forwarded WebSocket upgrade may switch protocols.
      send_error(502, "PH");
      return true;
    }
    // Interim response (100 Continue, 103 Early Hints): relay to HTTP/1.1 clients.
    if (r_->req_minor_ == 1) {
      if (!r_->res_out_.append(r_->res_in_.data(), h.head_len)) {
        send_error(502, "PH");
        return true;
      }
    }
    r_->res_in_.consume(h.head_len);
    return true;
  }
  r_->t_response_ = ctx_.loop().now_ms();
  r_->res_parsed_ = true;
  r_->res_status_ = h.status;
  if (r_->server_) {
    // Passive layer7 checks: 5xx from the server, except 501 and 505 (the
    // request's fault, not the server's), count as errors.
    const bool bad = h.status >= 500 && h.status != 501 && h.status != 505;
    char what[32] = "";
    if (bad) std::snprintf(what, sizeof what, "HTTP status %d", h.status);
    r_->server_->observe_result(bad, true, "L7STS", what);
  }
  r_->res_body_ = h.body;
  r_->res_body_left_ = h.body == http::BodyKind::kContentLength ? h.content_length : 0;
  r_->res_chunks_.reset();
  r_->res_body_window_ = 0;
  r_->res_body_complete_ = h.body == http::BodyKind::kNone;
  r_->res_server_keep_alive_ = h.keep_alive() && h.body != http::BodyKind::kUntilClose;
  if (h.body == http::BodyKind::kUntilClose || !r_->req_body_complete_)
    r_->close_after_response_ = true;
  // A draining worker, or a client that shut its side, closes after this
  // response, unless a next request has already been read: that one is
  // answered first, and the last one read says "Connection: close".
  if ((ctx_.draining() || c_eof_) && !next_request_buffered()) r_->close_after_response_ = true;
  r_->tunnel_pending_ = switching || (r_->req_connect_ && h.status / 100 == 2);
  if (!r_->tunnel_pending_ && ((r_->be_ && !r_->be_->config().rules.http_response.empty()) ||
                               !fe_.config().rules.http_response.empty())) {
    if (!apply_response_rules(h)) return true;
  }
  if (!ctx_.worker().log_samples().empty()) eval_log_samples(LogStage::kResponse, nullptr, &h);

  Buffer& o = r_->res_out_;
  bool ok = true;
  auto put = [&](std::string_view s) { ok = ok && o.append(s.data(), s.size()); };
  const ConnectionNamed connection_named(h);
  bool te_done = false;
  auto put_header = [&](const http::Header& hd) {
    if (put_framing(h, hd, &te_done, put)) return;
    if (is_hop_by_hop(hd.name) || connection_named.has(hd.name)) return;
    put(hd.name);
    put(": ");
    put(hd.value);
    put("\r\n");
  };
  if (r_->res_edit_) {
    // Rules changed the response: its head as they left it (rules cannot touch
    // the framing headers).
    const EditableHead& e = *r_->res_edit_;
    put(e.version_minor ? "HTTP/1.1 " : "HTTP/1.0 ");
    put(std::to_string(e.status));
    put(" ");
    put(e.status == h.status && e.reason.empty() ? h.reason
        : e.reason.empty()                       ? std::string_view(status_text(e.status).reason)
                                                 : std::string_view(e.reason));
    put("\r\n");
    for (const auto& [name, value] : e.headers) put_header(http::Header{name, value});
  } else {
    // Status line as the server wrote it (without its line ending).
    std::string_view raw(r_->res_in_.data(), h.head_len);
    size_t eol = raw.find('\n');
    std::string_view status_line = raw.substr(0, eol);
    if (!status_line.empty() && status_line.back() == '\r') status_line.remove_suffix(1);
    put(status_line);
    put("\r\n");
    for (size_t i = 0; i < h.header_count; ++i) put_header(h.headers[i]);
  }
  if (switching) {
    put("Connection: upgrade\r\nUpgrade: websocket\r\n");
  } else if (r_->tunnel_pending_) {
    // CONNECT: nothing to add, the tunnel follows the blank line.
  } else if (r_->close_after_response_) {
    put("Connection: close\r\n");
  } else if (r_->req_minor_ == 0) {
    put("Connection: keep-alive\r\n");
  }
  put("\r\n");
  if (!ok) {
    send_error(502, "PH");
    return true;
  }
  r_->res_in_.consume(h.head_len);
  if (r_->req_head_raw_ > 0 && r_->req_body_ == http::BodyKind::kNone) {
    // The response has begun: the request can no longer be replayed.
    r_->req_in_.consume(r_->req_head_raw_);
    r_->req_head_raw_ = 0;
  }
  extend_response_body_window();
  if (r_->s_eof_ && !r_->s_reset_ && r_->res_body_ == http::BodyKind::kUntilClose)
    r_->res_body_complete_ = true;
  return true;
}

void HttpSession::extend_response_body_window() {
  if (!r_->res_parsed_ || r_->res_body_complete_) return;
  if (r_->res_in_.size() <= r_->res_body_window_) return;
  size_t avail = r_->res_in_.size() - r_->res_body_window_;
  switch (r_->res_body_) {
    case http::BodyKind::kContentLength: {
      size_t take = static_cast<size_t>(std::min<uint64_t>(avail, r_->res_body_left_));
      r_->res_body_window_ += take;
      r_->res_body_left_ -= take;
      if (r_->res_body_left_ == 0) r_->res_body_complete_ = true;
      break;
    }
    case http::BodyKind::kChunked: {
      size_t take = r_->res_chunks_.feed(r_->res_in_.data() + r_->res_body_window_, avail);
      r_->res_body_window_ += take;
      if (r_->res_chunks_.failed()) {
        log::debug("bad chunked response from %s/%s: %s", r_->be_->name().c_str(),
                   r_->server_->name().c_str(), r_->res_chunks_.error());
        count_response_error();
        r_->s_eof_ = true;  // treat like a truncated response: relay what is valid, then abort
        r_->res_server_keep_alive_ = false;
      }
      if (r_->res_chunks_.done()) r_->res_body_complete_ = true;
      break;
    }
    case http::BodyKind::kUntilClose:
      r_->res_body_window_ += avail;
      break;
    case http::BodyKind::kNone:
      r_->res_body_complete_ = true;
      break;
  }
}

bool HttpSession::check_transaction_end() {
  if (!r_) return false;
  if (phase_ != Phase::kExchange || !r_->res_parsed_) return false;
  bool flushed = r_->res_out_.empty() && r_->res_body_window_ == 0;
  if (!flushed) return false;
  if (r_->res_body_complete_) {
    finish_transaction();
    return true;
  }
  if (r_->s_eof_) {
    // The server closed in the middle of the body: the client cannot get a whole
    // response, so close its connection too rather than let it wait. A body
    // delimited by the close is ended with a reset, or the client would take
    // what it got for the whole body.
    r_->term_[0] = 'S';
    r_->term_[1] = 'D';
    count_response_error();
    log_transaction();
    if (r_->res_body_ == http::BodyKind::kUntilClose) client_.abort();
    destroy();
    return true;
  }
  return false;
}

}  // namespace weir
