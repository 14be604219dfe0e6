#pragma once
// A TCP relay the tests control, between two nodes of a cluster: it listens
// on 127.0.0.1 and forwards every connection to a target, both ways, with an
// added delay if asked. cut() resets every connection it carries and resets
// new ones as they come (a network partition); heal() lets them through
// again. One thread; safe to call from the test's thread.

#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>

namespace weir::test {

class Relay {
 public:
  // Listens on 127.0.0.1 at a free port and forwards to target_host:target_port.
  Relay(std::string target_host, uint16_t target_port);
  ~Relay();
  Relay(const Relay&) = delete;
  Relay& operator=(const Relay&) = delete;

  uint16_t port() const { return port_; }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  void cut();
  void heal();
  // Every byte waits this long in the relay (each direction).
  void set_delay_ms(int ms) { delay_ms_.store(ms); }
  // Connections carried so far.
  uint64_t connections() const { return connections_.load(); }

 private:
  void run();
  std::string host_;
  uint16_t target_port_;
  uint16_t port_ = 0;
  int listen_fd_ = -1;
  int wake_[2] = {-1, -1};
  std::atomic<bool> stop_{false};
  std::atomic<bool> cut_{false};
  std::atomic<int> cut_generation_{0};
  std::atomic<int> delay_ms_{0};
  std::atomic<uint64_t> connections_{0};
  std::thread thread_;
};

}  // namespace weir::test
