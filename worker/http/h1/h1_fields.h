#pragma once
// The rules every HTTP/1 head weir writes follows, toward a server
// (h1_upstream.cpp) and toward a client (the client connection's response
// heads): which fields are hop-by-hop (RFC 9110 7.6.1), and the framing fields
// in one canonical form.

#include <cstdio>
#include <string_view>

#include "worker/http/h1/http_codec.h"

namespace weir::h1 {

// Removed from every forwarded message (RFC 9110 7.6.1). Trailer stays: the
// trailers it announces are forwarded with the chunked body.
inline bool is_hop_by_hop(std::string_view name) {
  return http::iequals(name, "connection") || http::iequals(name, "keep-alive") ||
         http::iequals(name, "proxy-connection") || http::iequals(name, "upgrade") ||
         http::iequals(name, "te") || http::iequals(name, "proxy-authenticate");
}

// Fields a Connection header may not remove: dropping the framing, the Host or
// weir's own X-Forwarded-For on a client's say-so would let it smuggle a body
// past the server or hide its address.
inline bool protected_from_connection(std::string_view name) {
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

}  // namespace weir::h1
