#pragma once
// Accepts connections on one of the master's listening sockets, on one thread.
// Every thread polls every listener with EPOLLEXCLUSIVE, so one connection wakes
// one thread.

#include <cstdint>
#include <memory>

#include "common/config/config.h"
#include "common/event/event_loop.h"
#include "common/event/timer.h"

namespace weir {

class Frontend;
namespace tls {
class FrontContext;
}
class ThreadContext;

class Listener final : public IoHandler {
 public:
  // tls: the bind's TLS (null: plain TCP).
  // bind: the bind's configuration (accept_proxy), owned by the frontend's.
  Listener(ThreadContext& ctx, Frontend& frontend, const BindConfig& bind, int fd,
           std::shared_ptr<const tls::FrontContext> tls);
  ~Listener();
  void on_io(uint32_t events) override;

  // Stops polling (maxconn reached, or draining) / polls again.
  void pause();
  void resume();
  // Accepts every connection waiting in the backlog, polled or not (the
  // master is gone and the socket is about to be closed); returns how many.
  int accept_backlog();
  Frontend& frontend() { return frontend_; }

 private:
  // Accepts up to max connections, while polled (or always, with paused_too),
  // within maxconn; returns how many.
  int accept_up_to(int max, bool paused_too);

  ThreadContext& ctx_;
  Frontend& frontend_;
  const BindConfig& bind_;
  int fd_;  // owned by the Worker
  std::shared_ptr<const tls::FrontContext> tls_;
  bool paused_ = true;
  Timer retry_;  // resumes after running out of file descriptors
};

}  // namespace weir
