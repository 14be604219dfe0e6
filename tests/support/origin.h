#pragma once
// A programmable HTTP/1.1 origin server for the integration tests: a real socket server on
// 127.0.0.1 (a thread per connection) whose answers are steered by the request's query string.
//
// Query parameters (each overrides the server-wide default where there is one):
//   status=N     answer with status N (200..599; default set_default_status(), 200)
//   delay=MS     sleep MS before answering (default set_default_delay_ms(), 0)
//   size=N       response body is pattern_bytes(0, N) (otherwise "<name>\n")
//   chunked=1    send the body with Transfer-Encoding: chunked, chunks of chunk=N bytes
//                (default 4096) and a final "0\r\n\r\n"
//   close=1      answer with "Connection: close" and close afterwards
//   blackhole=1  never answer; keep reading until the peer closes or stop()
//                (blackhole=0 overrides set_blackhole(true))
//   reset=1      close the socket without answering, with SO_LINGER 0 (the peer sees a RST)
//   header=N:V   add response header "N: V" (value percent-decoded; may be repeated)
//   split=MS     write the head, wait MS, then write the body (two writes, as most servers do)
//   pause=MS     chunked: each chunk is a write of its own, MS apart (the last one too)
//   interim=N    send an interim response N (1xx, e.g. 103) before the final one (HTTP/1.1);
//                with split=MS the final response follows MS later
// The request body (Content-Length or chunked) is always read completely and hashed.
// "Expect: 100-continue" gets an interim "100 Continue" (except for blackholed requests).
// Response headers: X-Server, X-Body-Size, X-Body-Sha256, X-Conn-Index, X-Request-Index,
// X-Response-Sha256, Content-Type, Content-Length (or Transfer-Encoding: chunked), and
// Connection: close / keep-alive where relevant. HEAD gets the headers only; 204 and 304 have
// neither a body nor Content-Length.
// Keep-alive: HTTP/1.1 unless "Connection: close"; HTTP/1.0 only with "Connection: keep-alive".
// Malformed requests (bad request line, bad header syntax, bad/conflicting framing) get 400
// and the connection is closed; well-formed versions other than 1.0/1.1 get 505. The origin
// does not require a Host header.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace weir::test {

struct RecordedRequest {
  std::string method, target, version;
  std::string head;  // raw request head bytes including the final CRLFCRLF
  std::vector<std::pair<std::string, std::string>> headers;  // as received (value trimmed)
  size_t body_size = 0;
  std::string body_sha256;   // hex
  int connection_index = 0;  // which accepted connection (0-based, counts across restart())
  int index_on_connection = 0;
  bool chunked_body = false;  // the body came with Transfer-Encoding: chunked
  std::vector<std::pair<std::string, std::string>> trailers;  // chunked trailer fields

  // Case-insensitive; first value, "" if absent.
  std::string header(std::string_view name) const;
  bool has_header(std::string_view name) const;
};

class OriginServer {
 public:
  // Listens on host (numeric IPv4 or IPv6, default 127.0.0.1) at once; port 0 picks an ephemeral
  // port. Throws std::runtime_error if it cannot listen.
  explicit OriginServer(std::string name, uint16_t port = 0, std::string host = "127.0.0.1");
  ~OriginServer();  // stop()
  OriginServer(const OriginServer&) = delete;
  OriginServer& operator=(const OriginServer&) = delete;

  uint16_t port() const;
  const std::string& name() const;
  const std::string& host() const;
  std::string address() const;  // "127.0.0.1:PORT", "[::1]:PORT"

  // Closes the listener and every open connection (pending delays are cut short); the port
  // refuses connections afterwards. Joins every thread. Idempotent.
  void stop();
  // Listens again on the same port (retries up to 2 s while the port is busy).
  void restart();
  bool running() const;

  // Defaults for requests that do not override them in the query string.
  void set_default_status(int status);
  void set_default_delay_ms(int ms);
  void set_blackhole(bool on);  // accept and read, never answer
  // Close keep-alive connections that stay idle (no byte of a new request) this long;
  // 0 (default) = never.
  void set_idle_timeout_ms(int ms);

  int connections_accepted() const;
  int requests_served() const;  // requests whose response started to be written
  // Peak number of requests in progress at once (head received -> response fully written).
  int peak_concurrency() const;
  int current_connections() const;  // accepted and not yet closed by the origin
  // Requests in progress now, and the most ever at once (thread-safe), as the origin itself
  // sees them: a request counts from the moment its head is parsed until its response is
  // written (the count drops just before the response's last send(), so before the peer
  // can have read all of it), or until the peer has shut its connection (FIN or RST; a
  // proxy frees its slot when it drops a server connection, while the delay of that
  // request may still be running here). The origin checks for such closed peers whenever
  // a request starts, so the peak never counts a request whose peer was already gone.
  int current_requests() const;
  int peak_concurrent_requests() const;

  std::vector<RecordedRequest> requests() const;  // recorded once the body has been read
  // Every raw byte received, per connection in arrival order, connections concatenated in
  // accept order. Capped at 64 MiB in total (later bytes are dropped here, still hashed).
  std::string received_bytes() const;
  std::string received_bytes(int connection_index) const;
  // Forgets requests() and received_bytes(), resets requests_served() to 0 and
  // peak_concurrency() and peak_concurrent_requests() to the number of requests in progress.
  // connections_accepted() (and hence connection indexes) keeps counting.
  void clear_records();

  // Waits until requests().size() >= n.
  bool wait_for_requests(size_t n, int timeout_ms) const;

  class Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace weir::test
