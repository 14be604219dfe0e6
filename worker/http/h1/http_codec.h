#pragma once
// HTTP/1.1 message heads (RFC 9110/9112) parsed in place, and the chunked
// transfer-coding walker. The parser works on the bytes received so far: it
// answers kIncomplete until the blank line that ends the head has arrived, then
// parses the whole head at once. Header names and values are views into the
// caller's buffer, valid while that buffer is unchanged.
//
// The parser is strict (RFC 9110/9112): whatever could be read two ways by two
// implementations is an error, never guessed at. Lines end with CRLF only; no
// obs-fold, no whitespace before a colon, no control characters in names,
// values or the request target; one Content-Length value at most, never with
// Transfer-Encoding; in requests, Transfer-Encoding must end with a single
// "chunked"; one Host, matching the authority of an absolute-form target.
// doc/http.md lists every case.

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace weir::http {

// Capacity of MessageHead::headers: the highest global.tune.max_headers.
inline constexpr size_t kMaxHeaders = 1000;
// Header fields allowed in one head unless the caller says otherwise.
inline constexpr size_t kDefaultMaxHeaders = 100;
// Bytes of chunk extensions allowed on one chunk-size line: everything between
// the hex digits and the CRLF.
inline constexpr size_t kMaxChunkExtension = 1024;
// Bytes allowed in the trailer fields of a chunked body, each line with its
// CRLF (the final empty line not counted).
inline constexpr size_t kMaxTrailerBytes = 16384;

enum class ParseStatus {
  kIncomplete,  // the head has not fully arrived yet
  kComplete,    // parsed; see head_len
  kError,       // malformed; see error / error_offset
};

enum class BodyKind {
  kNone,           // no body (or empty)
  kContentLength,  // exactly content_length bytes
  kChunked,        // chunked transfer coding, ends with the last-chunk and trailers
  kUntilClose,     // response only: ends when the server closes
};

// The four forms of request-target (RFC 9112 3.2).
enum class TargetForm {
  kOrigin,     // "/path?query"
  kAbsolute,   // "http://host:port/path?query" (http and https only)
  kAuthority,  // "host:port", CONNECT only
  kAsterisk,   // "*", OPTIONS only
};

struct Header {
  std::string_view name;
  std::string_view value;
};

struct MessageHead {
  // Request line or status line.
  std::string_view method;  // requests
  std::string_view target;  // requests
  TargetForm target_form = TargetForm::kOrigin;
  int status = 0;           // responses
  std::string_view reason;  // responses
  int version_minor = 1;    // HTTP/1.<minor>; 0 or 1

  Header headers[kMaxHeaders];
  size_t header_count = 0;
  size_t head_len = 0;  // bytes from the start of the buffer through the blank line

  // Derived from the headers.
  BodyKind body = BodyKind::kNone;
  uint64_t content_length = 0;
  bool conn_close = false;         // "Connection: close"
  bool conn_keep_alive = false;    // "Connection: keep-alive"
  bool conn_upgrade = false;       // "Connection: upgrade"
  bool upgrade_websocket = false;  // an Upgrade header lists "websocket"
  bool has_host = false;
  std::string_view host;  // requests: the Host header's value
  bool expect_continue = false;

  const char* error = nullptr;  // static message when kError
  size_t error_offset = 0;      // byte offset of the problem in the buffer

  // Keep-alive semantics of this message given its version and Connection header.
  bool keep_alive() const { return version_minor >= 1 ? !conn_close : conn_keep_alive; }
  const Header* find(std::string_view name) const;
};

// Parses a request head at the start of data[0..len). `scan_from` lets the caller
// resume the search for the end of the head (pass the value left by the
// previous call; start at 0). max_head bounds the head's size: a head that has
// not ended within it is an error ("request head too large"). max_headers
// (at most kMaxHeaders) bounds the number of header fields.
ParseStatus parse_request(const char* data, size_t len, size_t max_head, size_t* scan_from,
                          MessageHead* out, size_t max_headers = kDefaultMaxHeaders);

// Parses a response head. `request_method` decides bodies (HEAD, CONNECT);
// `max_head` and `max_headers` as above.
ParseStatus parse_response(const char* data, size_t len, size_t max_head, size_t* scan_from,
                           std::string_view request_method, MessageHead* out,
                           size_t max_headers = kDefaultMaxHeaders);

// Calls fn(element) for each element of a comma-separated header list, with
// the surrounding whitespace removed; empty elements are skipped (RFC 9110 5.6.1).
template <typename Fn>
void for_each_list_element(std::string_view v, Fn fn) {
  while (!v.empty()) {
    size_t comma = v.find(',');
    std::string_view tok = v.substr(0, comma);
    while (!tok.empty() && (tok.front() == ' ' || tok.front() == '\t')) tok.remove_prefix(1);
    while (!tok.empty() && (tok.back() == ' ' || tok.back() == '\t')) tok.remove_suffix(1);
    if (!tok.empty()) fn(tok);
    if (comma == std::string_view::npos) break;
    v.remove_prefix(comma + 1);
  }
}

// Walks a chunked body: tells how many of the bytes handed to it belong to the
// message, and when the message (last chunk + trailers) is complete. Bytes are
// forwarded unchanged, so the walker validates all of them: hex sizes of at
// most 15 digits, chunk extensions by their grammar and within
// kMaxChunkExtension bytes, CRLF after every line and chunk, trailer fields
// well formed (no framing or Host fields) and within kMaxTrailerBytes.
class ChunkedWalker {
 public:
  // Consumes from data[0..len) and returns how many bytes belong to the body;
  // stops at the end of the message. Check error() after each call.
  size_t feed(const char* data, size_t len);
  bool done() const { return state_ == State::kDone; }
  bool failed() const { return state_ == State::kError; }
  const char* error() const { return error_; }
  void reset() { *this = ChunkedWalker(); }

 private:
  enum class State : uint8_t {
    kSize,           // hex digits of the chunk size
    kExtBws,         // whitespace after the size or a value: a ';' must follow
    kExtPreName,     // after ';': whitespace, then an extension name
    kExtName,        // extension name
    kExtAfterName,   // whitespace after a name: '=' or ';' must follow
    kExtPreValue,    // after '=': whitespace, then a token or a quoted string
    kExtToken,       // token value
    kExtQuoted,      // inside a quoted-string value
    kExtQuotedEsc,   // after a backslash in a quoted string
    kExtAfterQuote,  // after the closing quote
    kSizeLf,         // LF after the size line's CR
    kData,           // chunk data
    kDataCr,         // CR after the data
    kDataLf,         // LF after the data
    kTrailerStart,   // start of a trailer line (or the final CRLF)
    kTrailerName,    // trailer field name
    kTrailerValue,   // trailer field value
    kTrailerLf,      // LF after a trailer line's CR
    kFinalLf,        // LF of the final empty line
    kDone,           // the message is complete
    kError,          // malformed
  };
  size_t fail(size_t at, const char* msg) {
    state_ = State::kError;
    error_ = msg;
    return at;
  }
  State after_size_line() const { return remaining_ ? State::kData : State::kTrailerStart; }

  State state_ = State::kSize;
  uint8_t name_len_ = 0;  // trailer name bytes kept in name_ (lower case)
  char name_[18] = {};    // enough to recognise "transfer-encoding"
  int digits_ = 0;
  uint32_t ext_len_ = 0;      // chunk-extension bytes on this size line
  uint32_t trailer_len_ = 0;  // bytes of the trailer section so far
  uint64_t remaining_ = 0;
  const char* error_ = nullptr;
};

// RFC 9110 token character.
bool is_tchar(unsigned char c);
// Case-insensitive ASCII comparison.
bool iequals(std::string_view a, std::string_view b);

}  // namespace weir::http
