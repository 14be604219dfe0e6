#include "worker/http_codec.h"

#include <cstring>

namespace weir::http {
namespace {

// Table of RFC 9110 tchar: "!#$%&'*+-.^_`|~" DIGIT ALPHA.
struct TcharTable {
  bool v[256] = {};
  constexpr TcharTable() {
    for (int c = '0'; c <= '9'; ++c) v[c] = true;
    for (int c = 'a'; c <= 'z'; ++c) v[c] = true;
    for (int c = 'A'; c <= 'Z'; ++c) v[c] = true;
    for (const char* p = "!#$%&'*+-.^_`|~"; *p; ++p) v[static_cast<unsigned char>(*p)] = true;
  }
};
constexpr TcharTable kTchar;

char lower(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c;
}

// Finds the end of the head: the index just past "\n\r\n" or "\n\n". Returns 0 if
// absent. *scan_from is advanced so a later call does not rescan old bytes.
size_t find_head_end(const char* data, size_t len, size_t* scan_from) {
  size_t i = *scan_from;
  while (i < len) {
    const void* nl = std::memchr(data + i, '\n', len - i);
    if (!nl) {
      *scan_from = len;
      return 0;
    }
    size_t pos = static_cast<size_t>(static_cast<const char*>(nl) - data);
    if (pos + 1 < len && data[pos + 1] == '\n') return pos + 2;
    if (pos + 2 < len && data[pos + 1] == '\r' && data[pos + 2] == '\n') return pos + 3;
    if (pos + 2 >= len) {
      // Not enough bytes after this LF to decide; resume here next time.
      *scan_from = pos;
      return 0;
    }
    i = pos + 1;
  }
  *scan_from = len;
  return 0;
}

struct Cursor {
  const char* base;
  size_t pos;
  size_t end;
  bool at_end() const { return pos >= end; }
  char peek() const { return base[pos]; }
};

ParseStatus fail(MessageHead* out, const char* msg, size_t offset) {
  out->error = msg;
  out->error_offset = offset;
  return ParseStatus::kError;
}

// Consumes a line ending (CRLF or LF) at the cursor.
bool eat_eol(Cursor& c) {
  if (!c.at_end() && c.peek() == '\r') {
    ++c.pos;
    if (c.at_end() || c.peek() != '\n') return false;
    ++c.pos;
    return true;
  }
  if (!c.at_end() && c.peek() == '\n') {
    ++c.pos;
    return true;
  }
  return false;
}

bool parse_version(Cursor& c, int* minor) {
  if (c.end - c.pos < 8 || std::memcmp(c.base + c.pos, "HTTP/1.", 7) != 0) return false;
  char d = c.base[c.pos + 7];
  if (d != '0' && d != '1') return false;
  *minor = d - '0';
  c.pos += 8;
  return true;
}

bool parse_u64(std::string_view s, uint64_t* v) {
  if (s.empty() || s.size() > 19) return false;
  uint64_t r = 0;
  for (char ch : s) {
    if (ch < '0' || ch > '9') return false;
    r = r * 10 + static_cast<uint64_t>(ch - '0');
  }
  *v = r;
  return true;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Calls fn(token) for each comma-separated, trimmed, non-empty element.
template <typename Fn>
void for_each_token(std::string_view v, Fn fn) {
  while (!v.empty()) {
    size_t comma = v.find(',');
    std::string_view tok = trim(v.substr(0, comma));
    if (!tok.empty()) fn(tok);
    if (comma == std::string_view::npos) break;
    v.remove_prefix(comma + 1);
  }
}

// Parses header lines from the cursor until the blank line.
ParseStatus parse_headers(Cursor& c, MessageHead* out) {
  out->header_count = 0;
  for (;;) {
    if (c.at_end()) return fail(out, "unterminated head", c.pos);
    char first = c.peek();
    if (first == '\r' || first == '\n') {
      if (!eat_eol(c)) return fail(out, "bare CR in head", c.pos);
      return ParseStatus::kComplete;
    }
    if (first == ' ' || first == '\t') return fail(out, "obsolete line folding", c.pos);
    size_t name_start = c.pos;
    while (!c.at_end() && kTchar.v[static_cast<unsigned char>(c.peek())]) ++c.pos;
    if (c.pos == name_start) return fail(out, "invalid character in header name", c.pos);
    if (c.at_end() || c.peek() != ':') {
      return fail(out, "invalid character in header name", c.pos);
    }
    std::string_view name(c.base + name_start, c.pos - name_start);
    ++c.pos;  // ':'
    size_t value_start = c.pos;
    while (!c.at_end()) {
      unsigned char ch = static_cast<unsigned char>(c.peek());
      if (ch == '\r' || ch == '\n') break;
      if ((ch < 0x20 && ch != '\t') || ch == 0x7f) {
        return fail(out, "invalid character in header value", c.pos);
      }
      ++c.pos;
    }
    std::string_view value = trim(std::string_view(c.base + value_start, c.pos - value_start));
    if (!eat_eol(c)) return fail(out, "bare CR in header value", c.pos);
    if (out->header_count == kMaxHeaders) return fail(out, "too many headers", name_start);
    out->headers[out->header_count++] = Header{name, value};
  }
}

// Interprets framing and connection headers shared by requests and responses.
ParseStatus derive(MessageHead* out, bool is_request, const char* base) {
  bool have_cl = false;
  bool have_te = false;
  bool chunked_last = false;
  int hosts = 0;
  for (size_t i = 0; i < out->header_count; ++i) {
    const Header& h = out->headers[i];
    size_t off = static_cast<size_t>(h.name.data() - base);
    if (iequals(h.name, "content-length")) {
      // A list "5, 5" is tolerated when every element agrees (RFC 9110 8.6).
      bool bad = false;
      for_each_token(h.value, [&](std::string_view tok) {
        uint64_t v;
        if (!parse_u64(tok, &v) || (have_cl && v != out->content_length)) {
          bad = true;
          return;
        }
        out->content_length = v;
        have_cl = true;
      });
      if (bad || h.value.empty()) return fail(out, "invalid or conflicting Content-Length", off);
    } else if (iequals(h.name, "transfer-encoding")) {
      have_te = true;
      for_each_token(h.value,
                     [&](std::string_view tok) { chunked_last = iequals(tok, "chunked"); });
    } else if (iequals(h.name, "connection")) {
      for_each_token(h.value, [&](std::string_view tok) {
        if (iequals(tok, "close")) out->conn_close = true;
        if (iequals(tok, "keep-alive")) out->conn_keep_alive = true;
        if (iequals(tok, "upgrade")) out->conn_upgrade = true;
      });
    } else if (is_request && iequals(h.name, "host")) {
      ++hosts;
    } else if (is_request && iequals(h.name, "expect")) {
      if (iequals(h.value, "100-continue")) out->expect_continue = true;
    }
  }
  out->has_host = hosts > 0;
  if (hosts > 1) return fail(out, "more than one Host header", 0);
  if (have_te) {
    // Both framings at once is the classic smuggling vector: refuse it.
    if (have_cl) return fail(out, "both Transfer-Encoding and Content-Length", 0);
    if (out->version_minor == 0) return fail(out, "Transfer-Encoding in an HTTP/1.0 message", 0);
    if (!chunked_last) {
      if (is_request) return fail(out, "Transfer-Encoding does not end with chunked", 0);
      out->body = BodyKind::kUntilClose;
      return ParseStatus::kComplete;
    }
    out->body = BodyKind::kChunked;
  } else if (have_cl) {
    out->body = out->content_length > 0 ? BodyKind::kContentLength : BodyKind::kNone;
  } else {
    out->body = is_request ? BodyKind::kNone : BodyKind::kUntilClose;
  }
  return ParseStatus::kComplete;
}

void reset_head(MessageHead* out) {
  out->method = {};
  out->target = {};
  out->status = 0;
  out->reason = {};
  out->version_minor = 1;
  out->header_count = 0;
  out->head_len = 0;
  out->body = BodyKind::kNone;
  out->content_length = 0;
  out->conn_close = out->conn_keep_alive = out->conn_upgrade = false;
  out->has_host = out->expect_continue = false;
  out->error = nullptr;
  out->error_offset = 0;
}

}  // namespace

bool is_tchar(unsigned char c) {
  return kTchar.v[c];
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (lower(a[i]) != lower(b[i])) return false;
  return true;
}

const Header* MessageHead::find(std::string_view name) const {
  for (size_t i = 0; i < header_count; ++i)
    if (iequals(headers[i].name, name)) return &headers[i];
  return nullptr;
}

ParseStatus parse_request(const char* data, size_t len, size_t max_head, size_t* scan_from,
                          MessageHead* out) {
  reset_head(out);
  // RFC 9112 2.2: ignore empty lines received before the request line.
  size_t skip = 0;
  while (skip < len && (data[skip] == '\r' || data[skip] == '\n')) {
    if (data[skip] == '\r' && (skip + 1 >= len || data[skip + 1] != '\n')) break;
    skip += data[skip] == '\r' ? 2 : 1;
  }
  if (*scan_from < skip) *scan_from = skip;
  size_t end = find_head_end(data, len, scan_from);
  if (end == 0) {
    if (len - skip >= max_head) return fail(out, "request head too large", max_head);
    return ParseStatus::kIncomplete;
  }
  if (end - skip > max_head) return fail(out, "request head too large", max_head);
  Cursor c{data, skip, end};
  size_t start = c.pos;
  while (!c.at_end() && kTchar.v[static_cast<unsigned char>(c.peek())]) ++c.pos;
  if (c.pos == start || c.at_end() || c.peek() != ' ') {
    return fail(out, "invalid method", c.pos);
  }
  out->method = std::string_view(data + start, c.pos - start);
  ++c.pos;
  start = c.pos;
  while (!c.at_end()) {
    unsigned char ch = static_cast<unsigned char>(c.peek());
    if (ch <= 0x20 || ch >= 0x7f) break;
    ++c.pos;
  }
  if (c.pos == start || c.at_end() || c.peek() != ' ') {
    return fail(out, "invalid request target", c.pos);
  }
  out->target = std::string_view(data + start, c.pos - start);
  ++c.pos;
  if (!parse_version(c, &out->version_minor)) return fail(out, "invalid HTTP version", c.pos);
  if (!eat_eol(c)) return fail(out, "invalid request line ending", c.pos);
  if (parse_headers(c, out) != ParseStatus::kComplete) return ParseStatus::kError;
  out->head_len = c.pos;
  if (out->version_minor == 1 && !out->find("host")) {
    return fail(out, "HTTP/1.1 request without Host", start);
  }
  return derive(out, true, data);
}

ParseStatus parse_response(const char* data, size_t len, size_t max_head, size_t* scan_from,
                           std::string_view request_method, MessageHead* out) {
  reset_head(out);
  size_t end = find_head_end(data, len, scan_from);
  if (end == 0) {
    if (len >= max_head) return fail(out, "response head too large", max_head);
    return ParseStatus::kIncomplete;
  }
  if (end > max_head) return fail(out, "response head too large", max_head);
  Cursor c{data, 0, end};
  if (!parse_version(c, &out->version_minor)) return fail(out, "invalid HTTP version", c.pos);
  if (c.at_end() || c.peek() != ' ') return fail(out, "invalid status line", c.pos);
  ++c.pos;
  if (c.end - c.pos < 3) return fail(out, "invalid status code", c.pos);
  int status = 0;
  for (int i = 0; i < 3; ++i) {
    char d = c.base[c.pos + static_cast<size_t>(i)];
    if (d < '0' || d > '9') return fail(out, "invalid status code", c.pos);
    status = status * 10 + (d - '0');
  }
  if (status < 100) return fail(out, "invalid status code", c.pos);
  c.pos += 3;
  out->status = status;
  size_t reason_start = c.pos;
  if (!c.at_end() && c.peek() == ' ') {
    ++c.pos;
    reason_start = c.pos;
    while (!c.at_end() && c.peek() != '\r' && c.peek() != '\n') {
      unsigned char ch = static_cast<unsigned char>(c.peek());
      if ((ch < 0x20 && ch != '\t') || ch == 0x7f) {
        return fail(out, "invalid character in reason", c.pos);
      }
      ++c.pos;
    }
  }
  out->reason = std::string_view(data + reason_start, c.pos - reason_start);
  if (!eat_eol(c)) return fail(out, "invalid status line ending", c.pos);
  if (parse_headers(c, out) != ParseStatus::kComplete) return ParseStatus::kError;
  out->head_len = c.pos;
  if (derive(out, false, data) != ParseStatus::kComplete) return ParseStatus::kError;
  // Messages that never carry a body, whatever their headers say (RFC 9112 6.3).
  if (iequals(request_method, "HEAD") || (status >= 100 && status < 200) || status == 204 ||
      status == 304) {
    out->body = BodyKind::kNone;
  }
  return ParseStatus::kComplete;
}

size_t ChunkedWalker::feed(const char* data, size_t len) {
  size_t i = 0;
  while (i < len) {
    char c = data[i];
    switch (state_) {
      case State::kSize: {
        int v = -1;
        if (c >= '0' && c <= '9')
          v = c - '0';
        else if (c >= 'a' && c <= 'f')
          v = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F')
          v = c - 'A' + 10;
        if (v >= 0) {
          if (++digits_ > 15) {
            state_ = State::kError;
            error_ = "chunk size too large";
            return i;
          }
          remaining_ = remaining_ * 16 + static_cast<uint64_t>(v);
          ++i;
          break;
        }
        if (digits_ == 0) {
          state_ = State::kError;
          error_ = "invalid chunk size";
          return i;
        }
        if (c == ';' || c == ' ' || c == '\t') {
          state_ = State::kSizeExt;
        } else if (c == '\r') {
          state_ = State::kSizeLf;
        } else if (c == '\n') {
          state_ = remaining_ ? State::kData : State::kTrailerStart;
        } else {
          state_ = State::kError;
          error_ = "invalid chunk size";
          return i;
        }
        ++i;
        break;
      }
      case State::kSizeExt:
        if (c == '\r')
          state_ = State::kSizeLf;
        else if (c == '\n')
          state_ = remaining_ ? State::kData : State::kTrailerStart;
        else if (static_cast<unsigned char>(c) < 0x20 && c != '\t') {
          state_ = State::kError;
          error_ = "invalid chunk extension";
          return i;
        }
        ++i;
        break;
      case State::kSizeLf:
        if (c != '\n') {
          state_ = State::kError;
          error_ = "bare CR after chunk size";
          return i;
        }
        state_ = remaining_ ? State::kData : State::kTrailerStart;
        ++i;
        break;
      case State::kData: {
        size_t take = len - i;
        if (take > remaining_) take = static_cast<size_t>(remaining_);
        remaining_ -= take;
        i += take;
        if (remaining_ == 0) state_ = State::kDataCr;
        break;
      }
      case State::kDataCr:
        if (c == '\r')
          state_ = State::kDataLf;
        else if (c == '\n')
          state_ = State::kSize, digits_ = 0;
        else {
          state_ = State::kError;
          error_ = "missing CRLF after chunk data";
          return i;
        }
        ++i;
        break;
      case State::kDataLf:
        if (c != '\n') {
          state_ = State::kError;
          error_ = "missing CRLF after chunk data";
          return i;
        }
        state_ = State::kSize;
        digits_ = 0;
        ++i;
        break;
      case State::kTrailerStart:
        if (c == '\r')
          state_ = State::kFinalLf;
        else if (c == '\n') {
          state_ = State::kDone;
          return i + 1;
        } else
          state_ = State::kTrailer;
        ++i;
        break;
      case State::kTrailer:
        if (c == '\r')
          state_ = State::kTrailerLf;
        else if (c == '\n')
          state_ = State::kTrailerStart;
        ++i;
        break;
      case State::kTrailerLf:
        if (c != '\n') {
          state_ = State::kError;
          error_ = "bare CR in trailer";
          return i;
        }
        state_ = State::kTrailerStart;
        ++i;
        break;
      case State::kFinalLf:
        if (c != '\n') {
          state_ = State::kError;
          error_ = "bare CR at end of chunked body";
          return i;
        }
        state_ = State::kDone;
        return i + 1;
      case State::kDone:
      case State::kError:
        return i;
    }
  }
  return i;
}

}  // namespace weir::http
