#pragma once
// Traffic for the tests that reload or upgrade weir under load.

#include <atomic>
#include <cstdint>
#include <exception>
#include <memory>
#include <thread>

#include "tests/support/http_client.h"

namespace weir::test {

// Requests in a loop on fresh connections and on one keep-alive connection;
// counts anything that is not a 200.
class TrafficLoop {
 public:
  explicit TrafficLoop(uint16_t port) : port_(port) {
    thread_ = std::thread([this] { run(); });
  }
  ~TrafficLoop() { stop(); }
  void stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  int ok() const { return ok_; }
  int failed() const { return failed_; }

 private:
  void run() {
    std::unique_ptr<HttpClient> ka;
    while (!stop_) {
      auto r = http_get(port_, "/fresh");
      (r && r->status == 200) ? ++ok_ : ++failed_;
      try {
        if (!ka || !ka->connected()) ka = std::make_unique<HttpClient>(port_);
        auto k = ka->request("GET", "/ka");
        (k && k->status == 200) ? ++ok_ : ++failed_;
        if (k && k->header("Connection") == "close") ka.reset();
      } catch (const std::exception&) {
        ++failed_;
        ka.reset();
      }
    }
  }
  uint16_t port_;
  std::atomic<bool> stop_{false};
  std::atomic<int> ok_{0};
  std::atomic<int> failed_{0};
  std::thread thread_;
};

}  // namespace weir::test
