#include "worker/upstream/server_slot.h"

#include <cerrno>

#include "worker/backend/counters.h"

namespace weir {

ServerSlot::Result ServerSlot::acquire(Backend* be, const LbRequest& req, LbWaiter* waiter,
                                       EventLoop* loop, int64_t now_ms) {
  ++attempts_;
  Server* previous = server_;
  release();
  be_ = be;
  Server* s = nullptr;
  switch (be->acquire(req, tried_, attempts_ > 1 ? previous : nullptr, waiter, loop, now_ms, &s,
                      &ticket_)) {
    case Backend::Acquire::kServer:
      granted(s);
      return Result::kServer;
    case Backend::Acquire::kQueued:
      // server_ still names the previous attempt's server (redispatch accounting).
      t_queue_start_ = now_ms;
      return Result::kQueued;
    case Backend::Acquire::kNoServer:
      server_ = nullptr;
      return Result::kNoServer;
    case Backend::Acquire::kQueueFull:
      server_ = nullptr;
      return Result::kQueueFull;
  }
  return Result::kNoServer;
}

bool ServerSlot::take_grant(int64_t now_ms) {
  if (!ticket_) return false;
  Server* s = be_->take_grant(ticket_);
  if (!s) return false;  // the queue timeout came first
  ticket_.reset();
  queue_ms_ += now_ms - t_queue_start_;
  t_queue_start_ = -1;
  granted(s);
  return true;
}

void ServerSlot::granted(Server* s) {
  if (attempts_ > 1 && server_ && server_ != s) {
    // A retry that moved to another server: a redispatch, counted on the one left.
    bump(be_->counters().local().redispatches);
    bump(server_->counters().local().redispatches);
  }
  server_ = s;
  slot_server_ = s;
  slot_backend_ = be_;
  tried_.add(s->index());
}

void ServerSlot::cancel() {
  if (!ticket_) return;
  be_->cancel(ticket_);  // gives back a slot granted while it was going away
  ticket_.reset();
}

void ServerSlot::release() {
  if (!slot_server_) return;
  slot_backend_->release_server(slot_server_);
  slot_server_ = nullptr;
  slot_backend_ = nullptr;
}

void ServerSlot::reset() {
  cancel();
  release();
  be_ = nullptr;
  server_ = nullptr;
  tried_.clear();
  attempts_ = 0;
  t_queue_start_ = -1;
  queue_ms_ = 0;
}

bool ServerSlot::queue_timed_out(int64_t now_ms) const {
  const int64_t limit = be_->timeouts().queue;
  return limit > 0 && t_queue_start_ >= 0 && now_ms >= t_queue_start_ + limit;
}

bool ServerSlot::connect_failed(int err, const char* why) {
  bump(be_->counters().local().connect_errors);
  if (!server_) return false;
  bump(server_->counters().local().connect_errors);
  server_->observe_result(true, false, err == ETIMEDOUT ? "L4TOUT" : "L4CON",
                          err == ETIMEDOUT ? "connect timeout" : why);
  if (attempts_ > be_->retries()) return false;
  bump(be_->counters().local().retries);
  bump(server_->counters().local().retries);
  return true;
}

}  // namespace weir
