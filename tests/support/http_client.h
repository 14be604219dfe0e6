#pragma once
// A small blocking HTTP/1.1 client for tests that need exact bytes on the wire.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tests/support/util.h"

namespace weir::test {

struct HttpResponse {
  int status = 0;
  std::string version, reason;
  std::vector<std::pair<std::string, std::string>> headers;  // in order, values trimmed
  std::string body;                                          // de-chunked
  std::string raw_head;  // status line + headers including the final CRLFCRLF
  bool chunked = false;  // the body came with Transfer-Encoding: chunked
  std::vector<std::pair<std::string, std::string>> trailers;

  // Case-insensitive; first value, "" if absent.
  std::string header(std::string_view name) const;
  bool has_header(std::string_view name) const;
  // Every value of the header, in order.
  std::vector<std::string> header_values(std::string_view name) const;
};

class HttpClient {
 public:
  // Connects (within 5 s), from `source` when given (an IPv4 address of this
  // machine, 127.0.0.2 say: any port); throws std::runtime_error on failure.
  explicit HttpClient(uint16_t port, std::string host = "127.0.0.1", std::string source = "");
  HttpClient(HttpClient&&) noexcept = default;
  HttpClient& operator=(HttpClient&&) noexcept = default;
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // True until close(), or until the peer's EOF/RST has been seen.
  bool connected() const;
  // Writes every byte (waiting up to the send timeout); false on error or timeout.
  bool send_raw(std::string_view bytes);
  void set_send_timeout_ms(int ms) { send_timeout_ms_ = ms; }

  // Reads one response (1xx interim responses are returned as responses of their own).
  // No body for HEAD (head_request), 1xx, 204, 304; otherwise chunked (de-chunked),
  // Content-Length, or close-delimited. Bytes after the response stay buffered for the next
  // call. nullopt on timeout, EOF before a full response, or unparsable bytes.
  std::optional<HttpResponse> read_response(int timeout_ms = 10000, bool head_request = false);
  // Sends "METHOD TARGET HTTP/1.1" with Host: test (unless headers has Host) and
  // Content-Length when body is non-empty (unless headers has Content-Length or
  // Transfer-Encoding), then reads the response, skipping 1xx interim responses (except 101).
  std::optional<HttpResponse> request(
      std::string_view method, std::string_view target,
      const std::vector<std::pair<std::string, std::string>>& headers = {},
      std::string_view body = {}, int timeout_ms = 10000);

  // True if the peer closes (EOF or RST) within the time; data received meanwhile is discarded.
  bool wait_closed(int timeout_ms);
  // Buffered bytes plus whatever arrives until timeout or EOF.
  std::string read_available(int timeout_ms);
  void close();
  int fd() const { return fd_.get(); }
  uint16_t local_port() const;

 private:
  // Reads more bytes into buf_ before the deadline; false on timeout, EOF or error.
  bool fill(std::chrono::steady_clock::time_point deadline);

  UniqueFd fd_;
  std::string buf_;
  bool eof_ = false;
  int send_timeout_ms_ = 30000;
};

// One request on a fresh connection: GET with Connection: close. nullopt if the connection
// cannot be made or no full response arrives.
std::optional<HttpResponse> http_get(uint16_t port, std::string_view target,
                                     int timeout_ms = 10000);

}  // namespace weir::test
