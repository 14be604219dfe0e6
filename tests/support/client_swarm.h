#pragma once
// Many client connections at once, driven by one thread (epoll), for tests that
// need hundreds or thousands of concurrent clients: each connects to
// 127.0.0.1:port, sends its request (all at once, or a byte at a time like a
// slowloris client), and reads whatever comes back until the peer closes.

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/util.h"

namespace weir::test {

struct SwarmResult {
  bool connected = false;  // the TCP handshake completed
  int connect_error = 0;   // errno of a failed connect (ECONNREFUSED, ...)
  bool reset = false;      // the peer reset the connection (ECONNRESET)
  bool closed = false;     // the peer closed (EOF)
  size_t sent = 0;         // request bytes sent
  std::string response;    // bytes received (up to SwarmOptions::keep)
  size_t received = 0;     // bytes received in all
  // Status code of the first response line, 0 when none arrived.
  int status() const;
  // The body after the first head (as received: not de-chunked).
  std::string_view body() const;
};

struct SwarmOptions {
  std::string request;     // sent once connected
  int trickle_ms = 0;      // > 0: after `first_bytes`, one more byte of `request` every trickle_ms
  size_t first_bytes = 0;  // with trickle_ms: sent at once
  size_t keep = 1 << 20;   // response bytes kept per client
};

class ClientSwarm {
 public:
  // Opens n connections at once and drives them on a thread of its own.
  ClientSwarm(uint16_t port, size_t n, SwarmOptions opts);
  ~ClientSwarm();  // stops the thread, closes what is still open
  ClientSwarm(const ClientSwarm&) = delete;
  ClientSwarm& operator=(const ClientSwarm&) = delete;

  // Connections that ended (closed, reset or never connected) so far.
  size_t finished() const { return finished_.load(); }
  size_t connected() const { return connected_.load(); }
  // Waits until every connection has ended; false on timeout.
  bool wait_finished(int timeout_ms) const;
  // Stops the thread (closing what is open) and returns the results.
  const std::vector<SwarmResult>& results();

 private:
  struct Conn;
  void run();

  uint16_t port_;
  SwarmOptions opts_;
  std::vector<Conn> conns_;
  std::vector<SwarmResult> results_;
  UniqueFd epfd_;
  std::atomic<bool> stop_{false};
  std::atomic<size_t> finished_{0};
  std::atomic<size_t> connected_{0};
  std::thread thread_;
};

}  // namespace weir::test
