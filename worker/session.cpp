#include "worker/session.h"

#include "worker/thread_context.h"

namespace weir {

Session::~Session() {
  leave_buffer_pool();
}

bool Session::take_buffer(Buffer& b, unsigned claim) {
  if (b.allocated()) return true;
  BufferPool& pool = ctx_.buffers();
  if (!pool.claim(*this, claim)) return false;
  if (b.acquire(pool)) return true;
  pool.wait_for_memory(*this);
  return false;
}

void Session::drop_buffer_claim() {
  ctx_.buffers().unclaim(*this);
}

void Session::leave_buffer_pool() {
  ctx_.buffers().leave(*this);
}

}  // namespace weir
