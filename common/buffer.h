#pragma once
// I/O buffers of one fixed size (global.tune.bufsize) from a per-thread pool.
// A connection holds buffers only while it has bytes in flight, so an idle
// keep-alive connection costs no buffer memory.

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <vector>

namespace weir {

class BufferPool {
 public:
  explicit BufferPool(size_t bufsize, size_t max_cached = 1024)
      : bufsize_(bufsize), max_cached_(max_cached) {}
  ~BufferPool();
  BufferPool(const BufferPool&) = delete;
  BufferPool& operator=(const BufferPool&) = delete;

  char* get();
  void put(char* block);
  size_t bufsize() const { return bufsize_; }
  size_t in_use() const { return in_use_; }

 private:
  size_t bufsize_;
  size_t max_cached_;
  size_t in_use_ = 0;
  std::vector<char*> free_;
};

// A window [head, tail) over one pooled block.
class Buffer {
 public:
  Buffer() = default;
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  ~Buffer() = default;  // the owner must release() into its pool first

  bool allocated() const { return data_ != nullptr; }
  void acquire(BufferPool& pool) {
    if (!data_) {
      data_ = pool.get();
      cap_ = pool.bufsize();
      head_ = tail_ = 0;
    }
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
