#include "common/buffer.h"

#include <cstdlib>
#include <new>

namespace weir {

BufferPool::~BufferPool() {
  for (char* b : free_) std::free(b);
}

char* BufferPool::get() {
  ++in_use_;
  if (!free_.empty()) {
    char* b = free_.back();
    free_.pop_back();
    return b;
  }
  void* p = std::malloc(bufsize_);
  if (!p) throw std::bad_alloc();
  return static_cast<char*>(p);
}

void BufferPool::put(char* block) {
  --in_use_;
  if (free_.size() < max_cached_)
    free_.push_back(block);
  else
    std::free(block);
}

}  // namespace weir
