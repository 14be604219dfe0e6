#pragma once
// I/O buffers of one fixed size (global.tune.bufsize) from a per-thread pool.
// A connection holds buffers only while it has bytes in flight, so an idle
// keep-alive connection costs no buffer memory.

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <vector>

namespace weir {

class BufferPool;

// Something that takes buffers from a pool and can wait for them: a session.
// Before its first buffer it claims the most it will hold at once; once the
// claim is granted, its buffers come without waiting (while memory lasts), so
// that sessions already at work always finish and give their buffers back.
class BufferUser {
 public:
  // The claim was granted, or a buffer came back while this user waited for
  // memory: try again (called at the end of an event-loop iteration).
  virtual void on_buffers_available() = 0;

 protected:
  virtual ~BufferUser() = default;

 private:
  friend class BufferPool;
  unsigned claimed_ = 0;  // buffers claimed (0: none)
  unsigned wanted_ = 0;   // the claim it waits for in the queue (0: it waits for memory)
  bool queued_ = false;   // waiting in the pool's queue
  bool woken_ = false;    // in the pool's list of users to call back
};

class BufferPool {
 public:
  explicit BufferPool(size_t bufsize, size_t max_cached = 1024)
      : bufsize_(bufsize), max_cached_(max_cached) {}
  ~BufferPool();
  BufferPool(const BufferPool&) = delete;
  BufferPool& operator=(const BufferPool&) = delete;

  // At most `n` buffers out at once (0: no limit but memory); at least 4, what
  // one http session claims.
  void set_limit(size_t n) { limit_ = n == 0 ? 0 : (n < 4 ? 4 : n); }
  size_t limit() const { return limit_; }

  // A claim of `n` buffers for `u`. True when granted (or already held); false
  // when `u` must wait: it is queued, first come first served, and called back.
  bool claim(BufferUser& u, unsigned n) {
    if (u.claimed_) return true;
    if (limit_ && (claim_waiters_ > 0 || claimed_ + n > limit_)) {
      if (!u.queued_) {
        u.wanted_ = n;
        ++claim_waiters_;
        enqueue(u);
      }
      return false;
    }
    u.claimed_ = n;
    claimed_ += n;
    return true;
  }
  // Gives the claim back: the user holds no buffer any more. A place in the
  // queue for a claim is kept.
  void unclaim(BufferUser& u) {
    if (!u.claimed_) return;
    if (u.queued_ || u.woken_) forget(u);  // it waited for memory: it needs none now
    claimed_ -= u.claimed_;
    u.claimed_ = 0;
    if (!queue_.empty()) dispatch();
  }
  // The user goes away: its claim and its place in the queue.
  void leave(BufferUser& u) {
    if (u.queued_ || u.woken_) forget(u);
    unclaim(u);
  }
  // Memory ran out under a granted claim: `u` is called back when a buffer returns.
  void wait_for_memory(BufferUser& u) {
    if (!u.queued_) {
      u.wanted_ = 0;
      enqueue(u);
    }
  }
  // Calls back the users whose turn came (end of every event-loop iteration).
  void run_callbacks() {
    while (!woken_.empty()) {
      BufferUser* u = woken_.front();
      woken_.erase(woken_.begin());
      u->woken_ = false;
      u->on_buffers_available();
    }
  }

  // A block of bufsize() bytes, or nullptr when memory is out (never throws).
  char* get();
  void put(char* block);
  size_t bufsize() const { return bufsize_; }
  size_t claimed() const { return claimed_; }
  size_t waiting() const { return queue_.size(); }
  // Times a user had to wait (for a claim or for memory), since the start; any thread.
  uint64_t waits() const { return waits_.load(std::memory_order_relaxed); }

 private:
  void enqueue(BufferUser& u);
  void forget(BufferUser& u);
  // Grants queued claims in order while they fit; wakes users waiting for memory.
  void dispatch();

  size_t bufsize_;
  size_t max_cached_;
  size_t limit_ = 0;
  size_t claimed_ = 0;
  size_t claim_waiters_ = 0;  // users in queue_ waiting for a claim
  std::atomic<uint64_t> waits_{0};
  std::vector<char*> free_;
  std::vector<BufferUser*> queue_;  // waiting for a claim (claimed_ 0) or for memory
  std::vector<BufferUser*> woken_;
};

// A window [head, tail) over one pooled block.
class Buffer {
 public:
  Buffer() = default;
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  ~Buffer() = default;  // the owner must release() into its pool first

  bool allocated() const { return data_ != nullptr; }
  // Takes a block from the pool unless one is held; false when memory is out.
  bool acquire(BufferPool& pool) {
    if (!data_) {
      data_ = pool.get();
      if (!data_) return false;
      cap_ = pool.bufsize();
      head_ = tail_ = 0;
    }
    return true;
  }
  // Returns the block to the pool (any bytes left are dropped).
  void release(BufferPool& pool) {
    if (data_) pool.put(data_);
    data_ = nullptr;
    head_ = tail_ = cap_ = 0;
  }
  // Releases the block only if no bytes are pending.
  void release_if_empty(BufferPool& pool) {
    if (data_ && head_ == tail_) release(pool);
  }

  const char* data() const { return data_ + head_; }
  char* data() { return data_ + head_; }
  size_t size() const { return tail_ - head_; }
  bool empty() const { return head_ == tail_; }
  size_t capacity() const { return cap_; }
  bool full() const { return data_ && head_ == 0 && tail_ == cap_; }

  // Writable room at the end; compacts first when that gives more room.
  char* write_ptr() { return data_ + tail_; }
  size_t space() const { return cap_ - tail_; }
  void make_room() {
    if (head_ > 0 && (tail_ == cap_ || head_ == tail_)) compact();
  }
  void produce(size_t n) { tail_ += n; }
  void consume(size_t n) {
    head_ += n;
    if (head_ == tail_) head_ = tail_ = 0;
  }
  void compact() {
    if (head_ == 0) return;
    std::memmove(data_, data_ + head_, tail_ - head_);
    tail_ -= head_;
    head_ = 0;
  }
  // Appends bytes; returns false (and appends nothing) if they do not fit.
  bool append(const void* p, size_t n) {
    if (n == 0) return true;  // p may be null (an empty string_view)
    if (space() < n) compact();
    if (space() < n) return false;
    std::memcpy(data_ + tail_, p, n);
    tail_ += n;
    return true;
  }
  void clear() { head_ = tail_ = 0; }

 private:
  char* data_ = nullptr;
  size_t head_ = 0;
  size_t tail_ = 0;
  size_t cap_ = 0;
};

}  // namespace weir
