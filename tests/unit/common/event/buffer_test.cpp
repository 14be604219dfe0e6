#include "common/event/buffer.h"

#include <gtest/gtest.h>

#include <vector>

namespace weir {
namespace {

// A user that records when the pool calls it back.
struct User final : BufferUser {
  int woken = 0;
  void on_buffers_available() override { ++woken; }
};

TEST(BufferPool, WithoutALimitEveryClaimIsGrantedAtOnce) {
  BufferPool pool(1024);
  std::vector<User> users(100);
  for (User& u : users) EXPECT_TRUE(pool.claim(u, 4));
  EXPECT_EQ(pool.claimed(), 400u);
  for (User& u : users) pool.unclaim(u);
  EXPECT_EQ(pool.claimed(), 0u);
  EXPECT_EQ(pool.waits(), 0u);
}

TEST(BufferPool, ClaimsBeyondTheLimitWaitAndAreGrantedInOrder) {
  BufferPool pool(1024);
  pool.set_limit(8);
  User a, b, c, d;
  EXPECT_TRUE(pool.claim(a, 4));
  EXPECT_TRUE(pool.claim(b, 4));
  EXPECT_FALSE(pool.claim(c, 4));
  EXPECT_FALSE(pool.claim(d, 2));  // fits nowhere either, and c came first
  EXPECT_EQ(pool.waiting(), 2u);
  EXPECT_EQ(pool.waits(), 2u);
  pool.unclaim(a);
  pool.run_callbacks();
  EXPECT_EQ(c.woken, 1);
  EXPECT_EQ(d.woken, 0);          // 4 + 4 + 2 > 8
  EXPECT_TRUE(pool.claim(c, 4));  // already granted
  pool.unclaim(b);
  pool.run_callbacks();
  EXPECT_EQ(d.woken, 1);
  EXPECT_TRUE(pool.claim(d, 2));
  EXPECT_EQ(pool.claimed(), 6u);
}

TEST(BufferPool, AClaimantThatHoldsNothingKeepsItsPlaceUntilItLeaves) {
  BufferPool pool(1024);
  pool.set_limit(4);
  User a, b, c;
  EXPECT_TRUE(pool.claim(a, 4));
  EXPECT_FALSE(pool.claim(b, 4));
  EXPECT_FALSE(pool.claim(c, 4));
  pool.unclaim(b);  // nothing to give back: b stays in line
  EXPECT_EQ(pool.waiting(), 2u);
  pool.leave(b);  // b goes away
  EXPECT_EQ(pool.waiting(), 1u);
  pool.unclaim(a);
  pool.run_callbacks();
  EXPECT_EQ(b.woken, 0);
  EXPECT_EQ(c.woken, 1);
  // A granted claim of a user that leaves before its callback goes back.
  EXPECT_FALSE(pool.claim(a, 4));
  pool.leave(c);
  pool.run_callbacks();
  EXPECT_EQ(a.woken, 1);
  pool.leave(a);
  EXPECT_EQ(pool.claimed(), 0u);
}

TEST(BufferPool, BuffersComeBackToTheFreeListAndWakeMemoryWaiters) {
  BufferPool pool(64);
  User u;
  ASSERT_TRUE(pool.claim(u, 2));
  Buffer x, y;
  ASSERT_TRUE(x.acquire(pool));
  ASSERT_TRUE(y.acquire(pool));
  const char* block = x.data();
  pool.wait_for_memory(u);  // as when malloc failed
  x.release(pool);
  pool.run_callbacks();
  EXPECT_EQ(u.woken, 1);
  EXPECT_EQ(pool.waiting(), 0u);
  Buffer z;  // the block x gave back is the next one handed out
  ASSERT_TRUE(z.acquire(pool));
  EXPECT_EQ(z.data(), block);
  z.release(pool);
  y.release(pool);
  pool.leave(u);
}

TEST(BufferPool, ALimitBelowOneHttpClaimIsRaisedToIt) {
  BufferPool pool(64);
  pool.set_limit(1);
  EXPECT_EQ(pool.limit(), 4u);
  pool.set_limit(0);
  EXPECT_EQ(pool.limit(), 0u);
}

}  // namespace
}  // namespace weir
