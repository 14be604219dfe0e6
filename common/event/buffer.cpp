#include "common/event/buffer.h"

#include <algorithm>
#include <cstdlib>

namespace weir {

BufferPool::~BufferPool() {
  for (char* b : free_) std::free(b);
}

char* BufferPool::get() {
  char* b;
  if (!free_.empty()) {
    b = free_.back();
    free_.pop_back();
  } else {
    b = static_cast<char*>(std::malloc(bufsize_));
    if (!b) return nullptr;
  }
  return b;
}

void BufferPool::put(char* block) {
  if (free_.size() < max_cached_) {
    free_.push_back(block);
  } else {
    std::free(block);
  }
  if (!queue_.empty()) dispatch();
}

void BufferPool::enqueue(BufferUser& u) {
  u.queued_ = true;
  queue_.push_back(&u);
  waits_.fetch_add(1, std::memory_order_relaxed);
}

void BufferPool::forget(BufferUser& u) {
  if (u.queued_) {
    queue_.erase(std::find(queue_.begin(), queue_.end(), &u));
    u.queued_ = false;
    if (u.wanted_) --claim_waiters_;
    u.wanted_ = 0;
  }
  if (u.woken_) {
    woken_.erase(std::find(woken_.begin(), woken_.end(), &u));
    u.woken_ = false;
  }
}

void BufferPool::dispatch() {
  // Claims are granted in the order they were asked for: one that does not fit
  // yet holds back those behind it, so a big claim is never starved. Users
  // waiting for memory are all woken: a buffer came back, any of them may use it.
  bool blocked = false;
  size_t kept = 0;
  for (BufferUser* u : queue_) {
    bool wake = false;
    if (u->wanted_ == 0) {
      wake = true;
    } else if (!blocked && (limit_ == 0 || claimed_ + u->wanted_ <= limit_)) {
      u->claimed_ = u->wanted_;
      claimed_ += u->wanted_;
      u->wanted_ = 0;
      --claim_waiters_;
      wake = true;
    } else {
      blocked = true;
    }
    if (wake) {
      u->queued_ = false;
      u->woken_ = true;
      woken_.push_back(u);
    } else {
      queue_[kept++] = u;
    }
  }
  queue_.resize(kept);
}

}  // namespace weir
