#pragma once
// Helpers shared by the HTTP fuzz targets: the checks every parsed head must
// pass, and the head written back the way weir forwards it (which weir's own
// parser must then accept with the same meaning).

#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "worker/http/h1/http_codec.h"

namespace weir::fuzz {

// Aborts (a finding for libFuzzer) when `cond` is false.
inline void check(bool cond, const char* what) {
  if (!cond) {
    std::fprintf(stderr, "fuzz check failed: %s\n", what);
    std::abort();
  }
}

// Invariants of any head the parser accepted from data[0..size).
inline void check_head(const http::MessageHead& h, size_t size) {
  check(h.head_len > 0 && h.head_len <= size, "head_len within the input");
  check(h.header_count <= http::kMaxHeaders, "header_count within the table");
  for (size_t i = 0; i < h.header_count; ++i) {
    const http::Header& hd = h.headers[i];
    check(!hd.name.empty(), "empty header name");
    for (char c : hd.name) check(http::is_tchar(static_cast<unsigned char>(c)), "name is a token");
    for (char c : hd.value) {
      unsigned char u = static_cast<unsigned char>(c);
      check(u != '\r' && u != '\n' && u != 0 && u != 0x7f && (u >= 0x20 || u == '\t'),
            "value without controls");
    }
    if (!hd.value.empty()) {
      check(hd.value.front() != ' ' && hd.value.front() != '\t', "value trimmed");
      check(hd.value.back() != ' ' && hd.value.back() != '\t', "value trimmed");
    }
  }
  bool has_cl = h.find("content-length") != nullptr;
  bool has_te = h.find("transfer-encoding") != nullptr;
  check(!(has_cl && has_te), "never both framings");
  if (h.body == http::BodyKind::kChunked) check(has_te, "chunked needs Transfer-Encoding");
  if (h.body == http::BodyKind::kContentLength) check(has_cl && h.content_length > 0, "length");
}

// The head as weir forwards it: start line, every header (Content-Length in
// decimal, Transfer-Encoding headers merged), CRLF line endings.
inline std::string serialize(const http::MessageHead& h, std::string_view start_line) {
  std::string out(start_line);
  out += "\r\n";
  bool te_done = false;
  for (size_t i = 0; i < h.header_count; ++i) {
    const http::Header& hd = h.headers[i];
    if (http::iequals(hd.name, "content-length")) {
      out += "Content-Length: " + std::to_string(h.content_length) + "\r\n";
      continue;
    }
    if (http::iequals(hd.name, "transfer-encoding")) {
      if (te_done) continue;
      te_done = true;
      out += "Transfer-Encoding: ";
      bool first = true;
      for (size_t j = 0; j < h.header_count; ++j) {
        if (!http::iequals(h.headers[j].name, "transfer-encoding")) continue;
        http::for_each_list_element(h.headers[j].value, [&](std::string_view tok) {
          if (!first) out += ", ";
          first = false;
          out += tok;
        });
      }
      out += "\r\n";
      continue;
    }
    out.append(hd.name).append(": ").append(hd.value).append("\r\n");
  }
  out += "\r\n";
  return out;
}

// Same meaning: what a proxy decides from a head.
inline void check_same_meaning(const http::MessageHead& a, const http::MessageHead& b) {
  check(a.method == b.method, "method");
  check(a.target == b.target, "target");
  check(a.target_form == b.target_form, "target form");
  check(a.status == b.status, "status");
  check(a.version_minor == b.version_minor, "version");
  check(a.body == b.body, "body kind");
  check(a.content_length == b.content_length, "content length");
  check(a.conn_close == b.conn_close && a.conn_keep_alive == b.conn_keep_alive &&
            a.conn_upgrade == b.conn_upgrade && a.upgrade_websocket == b.upgrade_websocket,
        "connection flags");
  check(a.has_host == b.has_host && a.host == b.host, "host");
  check(a.expect_continue == b.expect_continue, "expect");
}

}  // namespace weir::fuzz
