#pragma once
// HTTP/1.1 message heads (RFC 9110/9112) parsed in place, and the chunked
// transfer-coding walker. The parser works on the bytes received so far: it
// answers kIncomplete until the blank line that ends the head has arrived, then
// parses the whole head at once. Header names and values are views into the
// caller's buffer, valid while that buffer is unchanged.

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace weir::http {

inline constexpr size_t kMaxHeaders = 100;

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

struct Header {
  std::string_view name;
  std::string_view value;
};

struct MessageHead {
  // Request line or status line.
  std::string_view method;  // requests
  std::string_view target;  // requests
  int status = 0;           // responses
  std::string_view reason;  // responses
  int version_minor = 1;    // HTTP/1.<minor>; 0 or 1

  Header headers[kMaxHeaders];
  size_t header_count = 0;
  size_t head_len = 0;  // bytes from the start of the buffer through the blank line

  // Derived from the headers.
  BodyKind body = BodyKind::kNone;
  uint64_t content_length = 0;
  bool conn_close = false;       // "Connection: close"
  bool conn_keep_alive = false;  // "Connection: keep-alive"
  bool conn_upgrade = false;     // "Connection: upgrade"
  bool has_host = false;
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
// not ended within it is an error ("request head too large").
ParseStatus parse_request(const char* data, size_t len, size_t max_head, size_t* scan_from,
                          MessageHead* out);

// Parses a response head. `request_method` decides bodies (HEAD); `max_head` as above.
ParseStatus parse_response(const char* data, size_t len, size_t max_head, size_t* scan_from,
                           std::string_view request_method, MessageHead* out);

// Walks a chunked body: tells how many of the bytes handed to it belong to the
// message, and when the message (last chunk + trailers) is complete. Bytes are
// forwarded unchanged; the walker only validates and finds the end.
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
  enum class State {
    kSize,          // hex digits of the chunk size
    kSizeExt,       // chunk extension after ';' until CR LF
    kSizeLf,        // LF after the size line's CR
    kData,          // chunk data
    kDataCr,        // CR after the data
    kDataLf,        // LF after the data
    kTrailerStart,  // start of a trailer line (or the final CRLF)
    kTrailer,       // inside a trailer line
    kTrailerLf,     // LF after a trailer line's CR
    kFinalLf,       // LF of the final empty line
    kDone,          // the message is complete
    kError,         // malformed
  };
  State state_ = State::kSize;
  uint64_t remaining_ = 0;
  int digits_ = 0;
  const char* error_ = nullptr;
};

// RFC 9110 token character.
bool is_tchar(unsigned char c);
// Case-insensitive ASCII comparison.
bool iequals(std::string_view a, std::string_view b);

}  // namespace weir::http
