#pragma once
// A request's (http) or a connection's (tcp) claim on one server of a backend:
// the attempts made, the servers tried, the place in a queue while it waits,
// and the slot the backend granted. One type for both modes so that the slot
// is given back by one path (release()) and counted the same way.

#include <cstdint>
#include <string_view>

#include "worker/backend/backend.h"
#include "worker/backend/lb/lb.h"

namespace weir {

class EventLoop;

class ServerSlot {
 public:
  enum class Result {
    kServer,     // a slot on server() is held
    kQueued,     // waiting in a queue: LbWaiter::on_server_granted, then take_grant()
    kNoServer,   // no usable server
    kQueueFull,  // the queue is at its limit
  };

  ServerSlot() = default;
  ServerSlot(const ServerSlot&) = delete;
  ServerSlot& operator=(const ServerSlot&) = delete;

  // A new attempt on `be`: gives back the slot of the previous attempt first,
  // then asks the backend (a retry avoids the servers already tried).
  Result acquire(Backend* be, const LbRequest& req, LbWaiter* waiter, EventLoop* loop,
                 int64_t now_ms);
  // After on_server_granted(): true when the granted slot is now held (false:
  // the queue timeout came first, or nothing is queued).
  bool take_grant(int64_t now_ms);
  // Leaves the queue (queue timeout, client gone); a slot granted meanwhile goes back.
  void cancel();
  // Gives the slot back to its backend, if one is held. Idempotent.
  void release();
  // Everything back to its state before the first attempt (the slot must be released).
  void reset();
  // A connection to server() failed: counts it on the backend and the server,
  // tells the server's observer (`why` for its log), and says whether another
  // attempt is allowed (`retries`), counting the retry when it is.
  bool connect_failed(int err, const char* why);
  // The request may start over on any server (a replay after a stale connection).
  void forget_tried() { tried_.clear(); }

  bool queued() const { return ticket_ != nullptr; }
  bool queue_timed_out(int64_t now_ms) const;
  // The server of the current (or, while queued for a retry, the previous) attempt.
  Server* server() const { return server_; }
  Backend* backend() const { return be_; }
  int attempts() const { return attempts_; }
  // Time spent in queues by this request, including a wait under way.
  int64_t queue_ms(int64_t now_ms) const {
    return queue_ms_ + (t_queue_start_ >= 0 ? now_ms - t_queue_start_ : 0);
  }
  int64_t queue_start() const { return t_queue_start_; }

 private:
  // The slot on `s` is now held: counts a redispatch when the attempt moved.
  void granted(Server* s);

  Backend* be_ = nullptr;
  Server* server_ = nullptr;
  Server* slot_server_ = nullptr;  // the server whose slot is held
  Backend* slot_backend_ = nullptr;
  QueueTicket ticket_;
  TriedServers tried_;
  int attempts_ = 0;
  int64_t t_queue_start_ = -1;  // when the current wait in a queue began; -1: not waiting
  int64_t queue_ms_ = 0;
};

}  // namespace weir
