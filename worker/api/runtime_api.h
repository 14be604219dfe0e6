#pragma once
// The runtime API of a worker: commands that operators (and weirctl) send over
// the endpoints of global.runtime_api, or through the master CLI's @N prefix.
// Each command has a minimum level; an endpoint's level bounds what it may run.
// Answers end with an empty line on the wire; errors start with "Error: ".

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/base/fd.h"
#include "common/config/config.h"
#include "common/event/event_loop.h"
#include "common/event/timer.h"

namespace weir {

class Worker;
class ThreadContext;
class ApiConnection;

// Runs one command line at `level`; returns the answer without its final empty line.
std::string run_api_command(Worker& worker, ApiLevel level, std::string_view line);

// Accepts runtime-API connections on one endpoint (on thread 0 of the worker).
class ApiListener final : public IoHandler {
 public:
  ApiListener(ThreadContext& ctx, Worker& worker, int fd, ApiLevel level);
  ~ApiListener();
  void on_io(uint32_t events) override;
  void start();
  void stop();  // a draining generation stops answering here
  // A connection that closed hands itself back to be destroyed.
  void release(ApiConnection* conn);

 private:
  ThreadContext& ctx_;
  Worker& worker_;
  int fd_;  // owned by the Worker
  ApiLevel level_;
  bool active_ = false;   // between start() and stop()
  bool polling_ = false;  // in the event loop: active, with room for a connection
  std::vector<std::unique_ptr<ApiConnection>> conns_;
  Timer retry_;  // polls again after running out of file descriptors
  // Polls while active and under kApiConnectionsPerEndpoint connections (the
  // descriptor budget counts that many); otherwise clients wait in the backlog.
  void update_polling();
};

}  // namespace weir
