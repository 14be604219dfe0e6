#pragma once
// Active health checks: one HealthChecker per checked server, running on one of
// the worker's event loops (servers are spread over the threads), with no
// thread of its own. A check is a non-blocking connection (tcp), or a request
// whose response status is checked (http), over TLS when the server's traffic
// is (the handshake comes first, doc/tls.md); `fall` failures in a row take the
// server DOWN (out of every load-balancing choice), `rise` successes in a row
// bring it back UP. Checks start spread over the first interval, so that many
// servers are not all checked in the same millisecond.

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <regex>
#include <string>
#include <vector>

#include "common/base/fd.h"
#include "common/config/config.h"
#include "common/event/event_loop.h"
#include "common/event/timer.h"
#include "worker/upstream/upstream_connection.h"

namespace weir {

class Backend;
class Server;
class ThreadContext;
namespace tls {
class Connection;
}

class HealthChecker final : public UpstreamConnection::User {
 public:
  HealthChecker(ThreadContext& ctx, Backend& backend, Server& server);
  ~HealthChecker();
  // Starts checking after `first_delay_ms` (on the checker's thread).
  void start(int64_t first_delay_ms);
  void stop();
  void on_upstream_io(uint32_t events) override;
  ThreadContext& thread() { return ctx_; }
  int64_t interval_hint() const { return cfg_.inter; }
  // Passive checks: live traffic saw `count` errors in a row on the server
  // (observe + error_limit); applies on_error. On the checker's thread.
  void on_observed_errors(const std::string& status, const std::string& what, int count);

 private:
  static void on_timer(void* self);
  void begin();
  // Moves the connection (and its TLS handshake) on; then the exchange.
  void connect_step();
  // The http or tcp part of the check, once connected (and the handshake done).
  void exchange();
  void read_response();
  // send/recv through TLS when the server is checked over TLS; the contract
  // of send(2)/recv(2) (-1 with errno EAGAIN to wait).
  ssize_t send_some(const char* data, size_t len);
  ssize_t recv_some(char* buf, size_t len);
  // tcp checks with steps: sends and expects in order; false when it waits.
  void run_tcp_steps();
  // Ends the current check: success or failure with HAProxy's status code
  // (L4OK, L4CON, L4TOUT, L6OK, L6RSP, L6TOUT, L7OK, L7STS, L7TOUT, L7RSP) and
  // a description.
  void finish(bool ok, const char* status, int code, std::string description);
  // Counts one result (a check's, or a passive one: duration -1) toward
  // rise/fall and applies a resulting transition.
  void record(bool ok, const std::string& status, int code, int64_t duration,
              const std::string& description);
  int64_t interval() const;
  void schedule_next(int64_t now);

  ThreadContext& ctx_;
  Backend& backend_;
  Server& server_;
  const HealthCheckConfig& cfg_;
  Timer timer_;
  std::unique_ptr<UpstreamConnection> conn_;  // while a check runs
  bool running_ = false;
  int64_t started_ms_ = 0;
  std::string request_;
  size_t sent_ = 0;
  std::string response_;
  size_t step_ = 0;  // tcp steps: the one in progress
  bool peer_closed_ = false;
  int ok_in_row_ = 0;
  int failed_in_row_ = 0;
  bool stopped_ = false;
  bool hurry_ = false;                   // passive fastinter: the next check comes at fastinter
  std::unique_ptr<std::regex> body_re_;  // expect: body, compiled at the first use
  std::vector<std::unique_ptr<std::regex>> step_re_;  // tcp expect regexes, by step
};

}  // namespace weir
