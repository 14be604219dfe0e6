// H1ClientConnection (h1_client_connection.h): the response heads written to the client in
// HTTP/1 (hop-by-hop fields removed, framing in canonical form, Connection),
// interim responses included.
#include "worker/http/h1/h1_client_connection.h"
#include "worker/http/h1/h1_fields.h"
#include "worker/http/h1/h1_request_block.h"

namespace weir {

using h1::ConnectionNamed;
using h1::is_hop_by_hop;
using h1::put_framing;

bool H1ClientConnection::send_interim(std::string_view raw_head) {
  if (r_->req_minor_ != 1) return true;  // HTTP/1.0 clients know no interim response
  return r_->res_out_.append(raw_head.data(), raw_head.size());
}

bool H1ClientConnection::send_response_head(const ResponseHead& rh) {
  const http::MessageHead& h = rh.head;
  // A draining worker, or a client that shut its side, closes after this
  // response, unless a next request has already been read: that one is
  // answered first, and the last one read says "Connection: close".
  if (rh.close || ((ctx_.draining() || c_eof_) && !next_request_buffered())) {
    r_->close_after_response_ = true;
  }
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
  if (rh.edit) {
    // Rules changed the response: its head as they left it (rules cannot touch
    // the framing headers).
    const EditableHead& e = *rh.edit;
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
    std::string_view raw = rh.text;
    size_t eol = raw.find('\n');
    std::string_view status_line = raw.substr(0, eol);
    if (!status_line.empty() && status_line.back() == '\r') status_line.remove_suffix(1);
    put(status_line);
    put("\r\n");
    for (size_t i = 0; i < h.header_count; ++i) put_header(h.headers[i]);
  }
  switch (rh.kind) {
    case ResponseHead::Kind::kWebSocket:
      put("Connection: upgrade\r\nUpgrade: websocket\r\n");
      break;
    case ResponseHead::Kind::kConnect:
      break;  // nothing to add, the tunnel follows the blank line
    case ResponseHead::Kind::kNormal:
      if (r_->close_after_response_) {
        put("Connection: close\r\n");
      } else if (r_->req_minor_ == 0) {
        put("Connection: keep-alive\r\n");
      }
      break;
  }
  put("\r\n");
  return ok;
}

}  // namespace weir
