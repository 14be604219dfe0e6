#include "common/event/timer.h"

#include <algorithm>

namespace weir {

Timer::~Timer() {
  if (index_ != kNotQueued) queue_.remove(this);
}

void Timer::set(int64_t deadline_ms) {
  deadline_ = deadline_ms;
  if (deadline_ms == 0) return;  // lazily dropped when its key comes up
  if (index_ == kNotQueued) {
    key_ = deadline_ms;
    queue_.push(this);
  } else if (deadline_ms < key_) {
    queue_.rekey(this, deadline_ms);
  }
}

void Timer::stop() {
  deadline_ = 0;
  if (index_ != kNotQueued) queue_.remove(this);
}

void TimerQueue::push(Timer* t) {
  heap_.push_back(t);
  t->index_ = heap_.size() - 1;
  sift_up(t->index_);
}

void TimerQueue::remove(Timer* t) {
  size_t i = t->index_;
  Timer* last = heap_.back();
  heap_.pop_back();
  t->index_ = Timer::kNotQueued;
  if (last == t) return;
  place(i, last);
  sift_up(i);
  sift_down(last->index_);
}

void TimerQueue::rekey(Timer* t, int64_t key) {
  int64_t old = t->key_;
  t->key_ = key;
  if (key < old)
    sift_up(t->index_);
  else
    sift_down(t->index_);
}

void TimerQueue::sift_up(size_t i) {
  Timer* t = heap_[i];
  while (i > 0) {
    size_t parent = (i - 1) / 2;
    if (heap_[parent]->key_ <= t->key_) break;
    place(i, heap_[parent]);
    i = parent;
  }
  place(i, t);
}

void TimerQueue::sift_down(size_t i) {
  Timer* t = heap_[i];
  size_t n = heap_.size();
  for (;;) {
    size_t child = 2 * i + 1;
    if (child >= n) break;
    if (child + 1 < n && heap_[child + 1]->key_ < heap_[child]->key_) ++child;
    if (t->key_ <= heap_[child]->key_) break;
    place(i, heap_[child]);
    i = child;
  }
  place(i, t);
}

void TimerQueue::run_due(int64_t now_ms) {
  while (!heap_.empty() && heap_[0]->key_ <= now_ms) {
    Timer* t = heap_[0];
    if (t->deadline_ == 0) {
      remove(t);
    } else if (t->deadline_ > now_ms) {
      rekey(t, t->deadline_);
    } else {
      remove(t);
      t->deadline_ = 0;
      t->cb_(t->ctx_);  // may re-arm or destroy the timer's owner
    }
  }
}

int TimerQueue::next_timeout_ms(int64_t now_ms) const {
  if (heap_.empty()) return -1;
  int64_t d = heap_[0]->key_ - now_ms;
  return static_cast<int>(std::clamp<int64_t>(d, 0, 60000));
}

}  // namespace weir
