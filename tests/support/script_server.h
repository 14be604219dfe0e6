#pragma once
// A backend whose behaviour a test writes as code: every accepted connection
// runs the handler on its own thread with a blocking ScriptConn, which reads
// (and records) exact bytes and writes exact bytes. For what OriginServer is
// too well-behaved to do: malformed responses, interim responses, trailers,
// bodies where none belong, 101 Switching Protocols and echoing tunnels.

#include <atomic>
#include <cstdint>
#include <functional>
#include <list>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

#include "tests/support/util.h"

namespace weir::test {

class ScriptServer;

class ScriptConn {
 public:
  // Reads until `marker` has arrived; returns the bytes up to and including it
  // (consumed), or "" (and *ok false) on timeout or EOF.
  std::string read_until(std::string_view marker, int timeout_ms = 5000, bool* ok = nullptr);
  // The bytes buffered, or else the next bytes to arrive; "" on timeout or EOF.
  std::string read_some(int timeout_ms);
  // Reads exactly n bytes (fewer on timeout or EOF).
  std::string read_exact(size_t n, int timeout_ms = 5000);
  // Whatever is buffered plus what arrives until EOF or the timeout.
  std::string read_available(int timeout_ms);
  // True when the peer closed (EOF or error) within the time.
  bool wait_eof(int timeout_ms);
  bool send(std::string_view bytes);
  void shutdown_write();
  // Closes the connection now: with a FIN, or (reset) with a RST. Reads and
  // writes fail afterwards.
  void close();
  void reset();
  int index() const { return index_; }

 private:
  friend class ScriptServer;
  bool fill(int timeout_ms);
  ScriptServer* server_ = nullptr;
  int fd_ = -1;
  int index_ = 0;
  std::string buf_;
  bool eof_ = false;
};

class ScriptServer {
 public:
  using Handler = std::function<void(ScriptConn&)>;
  // Listens on 127.0.0.1 (ephemeral port) at once.
  explicit ScriptServer(Handler handler);
  ~ScriptServer();  // closes everything, joins every thread
  ScriptServer(const ScriptServer&) = delete;
  ScriptServer& operator=(const ScriptServer&) = delete;

  uint16_t port() const { return port_; }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  int connections() const { return accepted_.load(); }
  // Every byte received, connections concatenated in accept order.
  std::string received() const;

 private:
  friend class ScriptConn;
  void run();
  void record(int index, std::string_view bytes);

  Handler handler_;
  uint16_t port_ = 0;
  UniqueFd listen_fd_;
  UniqueFd wake_[2];
  std::thread acceptor_;
  std::atomic<int> accepted_{0};
  std::atomic<bool> stopping_{false};
  mutable std::mutex mu_;
  std::list<std::thread> threads_;
  std::list<int> fds_;  // open connection sockets (shut down at destruction)
  std::list<std::string> received_;
};

}  // namespace weir::test
