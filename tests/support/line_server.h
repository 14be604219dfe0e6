#pragma once
// A small TCP server for agent checks and tcp check sequences: it accepts, waits
// for an expected text (if any), writes one configured reply and closes. The
// reply can depend on the local address a connection came to, so one server
// bound to 0.0.0.0 can play the agents of servers at 127.0.0.1, 127.0.0.2, ...

#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <thread>

#include "tests/support/util.h"

namespace weir::test {

class LineServer {
 public:
  // Listens on host (numeric IPv4; "0.0.0.0" for every local address), port 0:
  // an ephemeral one. Throws std::runtime_error if it cannot listen.
  explicit LineServer(std::string host = "127.0.0.1", uint16_t port = 0);
  ~LineServer();
  LineServer(const LineServer&) = delete;
  LineServer& operator=(const LineServer&) = delete;

  uint16_t port() const { return port_; }
  // The answer for every connection, or for those that came to `local_ip`.
  void set_reply(std::string reply);
  void set_reply_for(const std::string& local_ip, std::string reply);
  // Read until this text has arrived (or 1 s passed) before answering; "" answers at once.
  void set_wait_for(std::string text);
  // Connections accepted (on `local_ip`, or on any address when empty).
  int connections(const std::string& local_ip = "") const;
  // What arrived on the last connection before the reply.
  std::string last_received() const;

 private:
  void run();
  void serve(int fd);

  uint16_t port_ = 0;
  UniqueFd listen_fd_;
  UniqueFd wake_[2];
  std::thread thread_;
  mutable std::mutex mu_;
  std::string reply_;
  std::map<std::string, std::string> reply_for_;
  std::string wait_for_;
  std::map<std::string, int> accepted_;
  int accepted_total_ = 0;
  std::string last_received_;
};

}  // namespace weir::test
