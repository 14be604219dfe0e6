#include "worker/http/h1/http_codec.h"

#include <cstring>

namespace weir::http {
namespace {

// Character classes, one table lookup each.
enum : uint8_t {
  kTcharBit = 1,    // RFC 9110 tchar: "!#$%&'*+-.^_`|~" DIGIT ALPHA
  kHostBit = 2,     // RFC 3986 reg-name / IPv4: unreserved, pct-encoded ('%'), sub-delims
  kLiteralBit = 4,  // inside an IP-literal's brackets: hex digits, ':', '.', and IPvFuture's set
};
struct CharTable {
  uint8_t v[256] = {};
  constexpr CharTable() {
    auto set = [this](const char* chars, uint8_t bit) {
      for (const char* p = chars; *p; ++p) v[static_cast<unsigned char>(*p)] |= bit;
    };
    for (int c = '0'; c <= '9'; ++c) v[c] |= kTcharBit | kHostBit | kLiteralBit;
    for (int c = 'a'; c <= 'z'; ++c) v[c] |= kTcharBit | kHostBit | kLiteralBit;
    for (int c = 'A'; c <= 'Z'; ++c) v[c] |= kTcharBit | kHostBit | kLiteralBit;
    set("!#$%&'*+-.^_`|~", kTcharBit);
    set("-._~%!$&'()*+,;=", kHostBit);
    set("-._~!$&'()*+,;=:", kLiteralBit);
  }
};
constexpr CharTable kChars;

bool tchar(unsigned char c) {
  return (kChars.v[c] & kTcharBit) != 0;
}

char lower(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c;
}

bool is_token(std::string_view s) {
  if (s.empty()) return false;
  for (char ch : s)
    if (!tchar(static_cast<unsigned char>(ch))) return false;
  return true;
}

// Finds the end of the head: the index just past "\n\r\n" or "\n\n". Returns 0 if
// absent. *scan_from is advanced so a later call does not rescan old bytes. A
// bare LF ends the search too, so that a head written with bare LFs is refused
// at once (by the line parser) instead of waiting for a CRLF that never comes.
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

// Consumes a CRLF at the cursor. Returns nullptr, or why there is none.
const char* eat_crlf(Cursor& c) {
  if (c.at_end()) return "unterminated line";
  if (c.peek() == '\n') return "bare LF in head";
  if (c.peek() != '\r') return "invalid character at end of line";
  ++c.pos;
  if (c.at_end() || c.peek() != '\n') return "bare CR in head";
  ++c.pos;
  return nullptr;
}

bool parse_version(Cursor& c, int* minor) {
  if (c.end - c.pos < 8 || std::memcmp(c.base + c.pos, "HTTP/1.", 7) != 0) return false;
  char d = c.base[c.pos + 7];
  if (d != '0' && d != '1') return false;
  *minor = d - '0';
  c.pos += 8;
  return true;
}

// Why the first bytes of a response (as many as have arrived) cannot start a
// status line "HTTP/1.0" or "HTTP/1.1"; nullptr when they still can.
const char* bad_response_start(const char* data, size_t len) {
  constexpr std::string_view kStart = "HTTP/1.";
  for (size_t i = 0; i < len && i <= kStart.size(); ++i) {
    const bool ok = i < kStart.size() ? data[i] == kStart[i] : data[i] == '0' || data[i] == '1';
    if (!ok) return i < 5 ? "not an HTTP response" : "invalid HTTP version";
  }
  return nullptr;
}

// 1*DIGIT, at most 19 digits (fits in 64 bits).
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

// Case-insensitive, with '_' standing for '-': a name such as "Content_Length"
// that some servers (CGI-style environments) read as the framing header.
bool mimics(std::string_view name, std::string_view target) {
  if (name.size() != target.size()) return false;
  bool underscore = false;
  for (size_t i = 0; i < name.size(); ++i) {
    char c = lower(name[i]);
    if (c == '_') {
      underscore = true;
      c = '-';
    }
    if (c != target[i]) return false;
  }
  return underscore;
}

// uri-host [ ":" port ] (RFC 3986), as in Host and authority-form targets. An
// empty port is allowed unless require_port.
bool valid_authority(std::string_view s, bool require_port) {
  if (s.empty()) return false;
  size_t i = 0;
  if (s[0] == '[') {
    size_t close = s.find(']');
    if (close == std::string_view::npos || close == 1) return false;
    for (i = 1; i < close; ++i)
      if (!(kChars.v[static_cast<unsigned char>(s[i])] & kLiteralBit)) return false;
    i = close + 1;
  } else {
    while (i < s.size() && (kChars.v[static_cast<unsigned char>(s[i])] & kHostBit)) ++i;
    if (i == 0) return false;
  }
  if (i == s.size()) return !require_port;
  if (s[i] != ':') return false;
  std::string_view port = s.substr(i + 1);
  if (port.size() > 5 || (require_port && port.empty())) return false;
  for (char ch : port)
    if (ch < '0' || ch > '9') return false;
  return true;
}

// The authority without a port equal to the scheme's default, nor an empty port.
std::string_view without_default_port(std::string_view a, std::string_view default_port) {
  size_t colon = a.rfind(':');
  if (colon == std::string_view::npos || (a[0] == '[' && a.rfind(']') > colon)) return a;
  std::string_view port = a.substr(colon + 1);
  if (port.empty() || port == default_port) return a.substr(0, colon);
  return a;
}

// Parses header lines from the cursor until the blank line.
ParseStatus parse_headers(Cursor& c, MessageHead* out, size_t max_headers) {
  out->header_count = 0;
  for (;;) {
    if (c.at_end()) return fail(out, "unterminated head", c.pos);
    char first = c.peek();
    if (first == '\r' || first == '\n') {
      size_t at = c.pos;
      if (const char* e = eat_crlf(c)) return fail(out, e, at);
      return ParseStatus::kComplete;
    }
    if (first == ' ' || first == '\t') return fail(out, "obsolete line folding", c.pos);
    size_t name_start = c.pos;
    while (!c.at_end() && tchar(static_cast<unsigned char>(c.peek()))) ++c.pos;
    if (c.pos == name_start || c.at_end() || c.peek() != ':') {
      // Covers whitespace before the colon, controls and separators in names.
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
    size_t eol = c.pos;
    if (const char* e = eat_crlf(c)) return fail(out, e, eol);
    if (out->header_count >= max_headers) return fail(out, "too many headers", name_start);
    out->headers[out->header_count++] = Header{name, value};
  }
}

// Interprets framing and connection headers shared by requests and responses.
ParseStatus derive(MessageHead* out, bool is_request, const char* base) {
  bool have_cl = false;
  bool have_te = false;
  bool chunked_last = false;
  int te_elements = 0;
  int chunked_count = 0;
  size_t te_offset = 0;
  int hosts = 0;
  for (size_t i = 0; i < out->header_count; ++i) {
    const Header& h = out->headers[i];
    size_t off = static_cast<size_t>(h.name.data() - base);
    if (iequals(h.name, "content-length")) {
      // One value only: "5, 5" or a second header is refused rather than merged,
      // so that no two readers can disagree on it.
      if (have_cl) return fail(out, "more than one Content-Length", off);
      have_cl = true;
      if (!parse_u64(h.value, &out->content_length)) {
        return fail(out, "invalid Content-Length", off);
      }
    } else if (iequals(h.name, "transfer-encoding")) {
      if (!have_te) te_offset = off;
      have_te = true;
      bool bad = false;
      for_each_list_element(h.value, [&](std::string_view tok) {
        if (!is_token(tok)) bad = true;
        chunked_last = iequals(tok, "chunked");
        if (chunked_last) ++chunked_count;
        ++te_elements;
      });
      if (bad) return fail(out, "invalid Transfer-Encoding", off);
    } else if (iequals(h.name, "connection")) {
      for_each_list_element(h.value, [&](std::string_view tok) {
        if (iequals(tok, "close")) out->conn_close = true;
        if (iequals(tok, "keep-alive")) out->conn_keep_alive = true;
        if (iequals(tok, "upgrade")) out->conn_upgrade = true;
      });
    } else if (is_request && iequals(h.name, "host")) {
      if (++hosts > 1) return fail(out, "more than one Host header", off);
      out->host = h.value;
      if (!h.value.empty() && !valid_authority(h.value, false)) {
        return fail(out, "invalid Host", off);
      }
    } else if (is_request && iequals(h.name, "expect")) {
      if (iequals(h.value, "100-continue")) out->expect_continue = true;
    } else if (iequals(h.name, "upgrade")) {
      for_each_list_element(h.value, [&](std::string_view tok) {
        if (iequals(tok, "websocket")) out->upgrade_websocket = true;
      });
    } else if (mimics(h.name, "content-length") || mimics(h.name, "transfer-encoding")) {
      return fail(out, "header name with '_' resembling a framing header", off);
    }
  }
  out->has_host = hosts > 0;
  if (have_te) {
    // Both framings at once is the classic smuggling vector: refuse it.
    if (have_cl) return fail(out, "both Transfer-Encoding and Content-Length", te_offset);
    if (out->version_minor == 0) {
      return fail(out, "Transfer-Encoding in an HTTP/1.0 message", te_offset);
    }
    if (te_elements == 0) return fail(out, "empty Transfer-Encoding", te_offset);
    if (chunked_count > 1) return fail(out, "chunked applied more than once", te_offset);
    if (!chunked_last) {
      if (is_request) return fail(out, "Transfer-Encoding does not end with chunked", te_offset);
      out->body = BodyKind::kUntilClose;  // RFC 9112 6.3: read until the server closes
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

// Classifies and checks the request target against the method and Host.
ParseStatus check_target(MessageHead* out, size_t target_offset) {
  std::string_view t = out->target;
  const bool connect = out->method == "CONNECT";
  if (t == "*") {
    out->target_form = TargetForm::kAsterisk;
    if (out->method != "OPTIONS") return fail(out, "'*' target outside OPTIONS", target_offset);
    return ParseStatus::kComplete;
  }
  if (connect) {
    out->target_form = TargetForm::kAuthority;
    if (!valid_authority(t, true)) return fail(out, "invalid CONNECT target", target_offset);
    if (out->has_host && !iequals(out->host, t)) {
      return fail(out, "Host does not match the CONNECT target", target_offset);
    }
    if (out->body != BodyKind::kNone) return fail(out, "CONNECT with a body", target_offset);
    return ParseStatus::kComplete;
  }
  if (t[0] == '/') {
    out->target_form = TargetForm::kOrigin;
    return ParseStatus::kComplete;
  }
  // absolute-form: http or https only, with an authority and no user info.
  std::string_view default_port;
  size_t skip = 0;
  if (t.size() >= 7 && iequals(t.substr(0, 7), "http://")) {
    default_port = "80";
    skip = 7;
  } else if (t.size() >= 8 && iequals(t.substr(0, 8), "https://")) {
    default_port = "443";
    skip = 8;
  } else {
    return fail(out, "invalid request target", target_offset);
  }
  out->target_form = TargetForm::kAbsolute;
  std::string_view rest = t.substr(skip);
  size_t auth_end = rest.find_first_of("/?");
  std::string_view authority = rest.substr(0, auth_end);
  if (!valid_authority(authority, false)) {
    return fail(out, "invalid authority in request target", target_offset + skip);
  }
  if (out->has_host && !iequals(without_default_port(authority, default_port),
                                without_default_port(out->host, default_port))) {
    return fail(out, "Host does not match the request target", target_offset + skip);
  }
  return ParseStatus::kComplete;
}

void reset_head(MessageHead* out) {
  out->method = {};
  out->target = {};
  out->target_form = TargetForm::kOrigin;
  out->status = 0;
  out->reason = {};
  out->version_minor = 1;
  out->header_count = 0;
  out->head_len = 0;
  out->body = BodyKind::kNone;
  out->content_length = 0;
  out->conn_close = out->conn_keep_alive = out->conn_upgrade = false;
  out->upgrade_websocket = false;
  out->has_host = out->expect_continue = false;
  out->host = {};
  out->error = nullptr;
  out->error_offset = 0;
}

}  // namespace

bool is_tchar(unsigned char c) {
  return tchar(c);
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
                          MessageHead* out, size_t max_headers) {
  reset_head(out);
  if (max_headers > kMaxHeaders) max_headers = kMaxHeaders;
  // RFC 9112 2.2: ignore empty lines (CRLF) received before the request line.
  size_t skip = 0;
  while (skip + 1 < len && data[skip] == '\r' && data[skip + 1] == '\n') skip += 2;
  if (*scan_from < skip) *scan_from = skip;
  size_t end = find_head_end(data, len, scan_from);
  if (end == 0) {
    if (len >= max_head) return fail(out, "request head too large", max_head);
    return ParseStatus::kIncomplete;
  }
  if (end > max_head) return fail(out, "request head too large", max_head);
  Cursor c{data, skip, end};
  size_t start = c.pos;
  while (!c.at_end() && tchar(static_cast<unsigned char>(c.peek()))) ++c.pos;
  if (c.pos == start || c.at_end() || c.peek() != ' ') {
    return fail(out, "invalid method", c.pos);
  }
  out->method = std::string_view(data + start, c.pos - start);
  ++c.pos;
  start = c.pos;
  while (!c.at_end()) {
    unsigned char ch = static_cast<unsigned char>(c.peek());
    // Visible ASCII only; a fragment never belongs in a request (RFC 9112 3.2).
    if (ch <= 0x20 || ch >= 0x7f || ch == '#') break;
    ++c.pos;
  }
  if (c.pos == start || c.at_end() || c.peek() != ' ') {
    return fail(out, "invalid request target", c.pos);
  }
  out->target = std::string_view(data + start, c.pos - start);
  size_t target_offset = start;
  ++c.pos;
  if (!parse_version(c, &out->version_minor)) return fail(out, "invalid HTTP version", c.pos);
  size_t eol = c.pos;
  if (const char* e = eat_crlf(c)) {
    return fail(out, *e == 'b' ? e : "invalid request line ending", eol);
  }
  if (parse_headers(c, out, max_headers) != ParseStatus::kComplete) return ParseStatus::kError;
  out->head_len = c.pos;
  if (derive(out, true, data) != ParseStatus::kComplete) return ParseStatus::kError;
  if (out->version_minor == 1 && !out->has_host) {
    return fail(out, "HTTP/1.1 request without Host", target_offset);
  }
  return check_target(out, target_offset);
}

ParseStatus parse_response(const char* data, size_t len, size_t max_head, size_t* scan_from,
                           std::string_view request_method, MessageHead* out, size_t max_headers) {
  reset_head(out);
  if (max_headers > kMaxHeaders) max_headers = kMaxHeaders;
  size_t end = find_head_end(data, len, scan_from);
  if (end == 0) {
    if (len >= max_head) return fail(out, "response head too large", max_head);
    // A server speaking another protocol (an SSH or Redis banner, a TLS alert)
    // may then wait for ever: its first bytes already tell.
    if (const char* e = bad_response_start(data, len)) return fail(out, e, 0);
    return ParseStatus::kIncomplete;
  }
  if (end > max_head) return fail(out, "response head too large", max_head);
  Cursor c{data, 0, end};
  if (const char* e = bad_response_start(data, end)) return fail(out, e, 0);
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
  size_t eol = c.pos;
  if (const char* e = eat_crlf(c)) {
    return fail(out, *e == 'b' ? e : "invalid status line ending", eol);
  }
  if (parse_headers(c, out, max_headers) != ParseStatus::kComplete) return ParseStatus::kError;
  out->head_len = c.pos;
  if (derive(out, false, data) != ParseStatus::kComplete) return ParseStatus::kError;
  // Messages that never carry a body, whatever their headers say (RFC 9112 6.3);
  // a 2xx answer to CONNECT turns the connection into a tunnel right after it.
  if (iequals(request_method, "HEAD") || (status >= 100 && status < 200) || status == 204 ||
      status == 304 || (status / 100 == 2 && request_method == "CONNECT")) {
    out->body = BodyKind::kNone;
  }
  return ParseStatus::kComplete;
}

size_t ChunkedWalker::feed(const char* data, size_t len) {
  size_t i = 0;
  while (i < len) {
    const unsigned char c = static_cast<unsigned char>(data[i]);
    const bool ws = c == ' ' || c == '\t';
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
          if (++digits_ > 15) return fail(i, "chunk size too large");
          remaining_ = remaining_ * 16 + static_cast<uint64_t>(v);
          break;
        }
        if (digits_ == 0) return fail(i, "invalid chunk size");
        ext_len_ = 1;  // this byte starts the extensions (or ends the line)
        if (c == ';')
          state_ = State::kExtPreName;
        else if (ws)
          state_ = State::kExtBws;
        else if (c == '\r')
          state_ = State::kSizeLf;
        else
          return fail(i, "invalid chunk size");
        break;
      }
      case State::kExtBws:
      case State::kExtPreName:
      case State::kExtName:
      case State::kExtAfterName:
      case State::kExtPreValue:
      case State::kExtToken:
      case State::kExtQuoted:
      case State::kExtQuotedEsc:
      case State::kExtAfterQuote: {
        // chunk-ext = *( BWS ";" BWS name [ BWS "=" BWS ( token / quoted-string ) ] )
        if (c == '\r' && state_ != State::kExtQuoted && state_ != State::kExtQuotedEsc) {
          // The line may end right after a name or a value, nowhere else.
          if (state_ != State::kExtName && state_ != State::kExtToken &&
              state_ != State::kExtAfterQuote) {
            return fail(i, "invalid chunk extension");
          }
          state_ = State::kSizeLf;
          break;
        }
        if (++ext_len_ > kMaxChunkExtension) return fail(i, "chunk extension too long");
        State next = State::kError;
        switch (state_) {
          case State::kExtBws:  // whitespace: a ';' must follow
            next = ws ? state_ : c == ';' ? State::kExtPreName : State::kError;
            break;
          case State::kExtPreName:
            next = ws ? state_ : tchar(c) ? State::kExtName : State::kError;
            break;
          case State::kExtName:
            next = tchar(c)   ? state_
                   : c == '=' ? State::kExtPreValue
                   : c == ';' ? State::kExtPreName
                   : ws       ? State::kExtAfterName
                              : State::kError;
            break;
          case State::kExtAfterName:
            next = ws         ? state_
                   : c == '=' ? State::kExtPreValue
                   : c == ';' ? State::kExtPreName
                              : State::kError;
            break;
          case State::kExtPreValue:
            next = ws         ? state_
                   : c == '"' ? State::kExtQuoted
                   : tchar(c) ? State::kExtToken
                              : State::kError;
            break;
          case State::kExtToken:
            next = tchar(c)   ? state_
                   : c == ';' ? State::kExtPreName
                   : ws       ? State::kExtBws
                              : State::kError;
            break;
          case State::kExtQuoted:
            next = c == '"'                               ? State::kExtAfterQuote
                   : c == '\\'                            ? State::kExtQuotedEsc
                   : (c < 0x20 && c != '\t') || c == 0x7f ? State::kError
                                                          : state_;
            break;
          case State::kExtQuotedEsc:
            next = (c < 0x20 && c != '\t') || c == 0x7f ? State::kError : State::kExtQuoted;
            break;
          case State::kExtAfterQuote:
            next = c == ';' ? State::kExtPreName : ws ? State::kExtBws : State::kError;
            break;
          default:
            break;
        }
        if (next == State::kError) return fail(i, "invalid chunk extension");
        state_ = next;
        break;
      }
      case State::kSizeLf:
        if (c != '\n') return fail(i, "bare CR after chunk size");
        state_ = after_size_line();
        break;
      case State::kData: {
        size_t take = len - i;
        if (take > remaining_) take = static_cast<size_t>(remaining_);
        remaining_ -= take;
        i += take;
        if (remaining_ == 0) state_ = State::kDataCr;
        continue;
      }
      case State::kDataCr:
        if (c != '\r') return fail(i, "missing CRLF after chunk data");
        state_ = State::kDataLf;
        break;
      case State::kDataLf:
        if (c != '\n') return fail(i, "missing CRLF after chunk data");
        state_ = State::kSize;
        digits_ = 0;
        break;
      case State::kTrailerStart:
        if (c == '\r') {
          state_ = State::kFinalLf;
          break;
        }
        if (!tchar(c)) return fail(i, "invalid trailer field");
        // Field lines count with their CRLF; the final empty line does not.
        if (++trailer_len_ > kMaxTrailerBytes) return fail(i, "trailer section too large");
        state_ = State::kTrailerName;
        name_len_ = 0;
        name_[name_len_++] = static_cast<char>(c | 0x20);  // tchar: only A-Z change
        break;
      case State::kTrailerName:
        if (++trailer_len_ > kMaxTrailerBytes) return fail(i, "trailer section too large");
        if (c == ':') {
          std::string_view name(name_, name_len_ < sizeof name_ ? name_len_ : 0);
          // Framing and routing fields have no place after the body.
          if (name == "content-length" || name == "transfer-encoding" || name == "host") {
            return fail(i, "framing field in trailers");
          }
          state_ = State::kTrailerValue;
        } else if (tchar(c)) {
          if (name_len_ < sizeof name_) name_[name_len_++] = static_cast<char>(c | 0x20);
        } else {
          return fail(i, "invalid trailer field");
        }
        break;
      case State::kTrailerValue:
        if (++trailer_len_ > kMaxTrailerBytes) return fail(i, "trailer section too large");
        if (c == '\r')
          state_ = State::kTrailerLf;
        else if ((c < 0x20 && c != '\t') || c == 0x7f)
          return fail(i, "invalid trailer field");
        break;
      case State::kTrailerLf:
        if (c != '\n') return fail(i, "bare CR in trailer");
        if (++trailer_len_ > kMaxTrailerBytes) return fail(i, "trailer section too large");
        state_ = State::kTrailerStart;
        break;
      case State::kFinalLf:
        if (c != '\n') return fail(i, "bare CR at end of chunked body");
        state_ = State::kDone;
        return i + 1;
      case State::kDone:
      case State::kError:
        return i;
    }
    ++i;
  }
  return i;
}

}  // namespace weir::http
