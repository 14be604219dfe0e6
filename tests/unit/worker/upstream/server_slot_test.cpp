// ServerSlot (worker/upstream/server_slot.h): the one claim on a server that
// http requests and tcp sessions share. Every scenario ends with the backend's
// and servers' counters back to 0, which is what `show stat` scur/qcur show.

#include "worker/upstream/server_slot.h"

#include <gtest/gtest.h>

#include <cerrno>
#include <string>
#include <vector>

#include "common/event/event_loop.h"
#include "worker/backend/backend.h"

namespace weir {
namespace {

struct Waiter final : LbWaiter {
  void on_server_granted() override { ++granted; }
  int granted = 0;
};

BackendConfig backend_of(const std::vector<std::string>& names, int maxconn, int retries) {
  BackendConfig b;
  b.name = "be";
  b.balance.algorithm = "roundrobin";
  b.retries = retries;
  for (const std::string& n : names) {
    ServerConfig s;
    s.name = n;
    s.maxconn = maxconn;
    b.servers.push_back(s);
  }
  return b;
}

// Runs what was posted to `loop` (a stopped loop's run() only drains its tasks).
void run_posted(EventLoop& loop) {
  loop.stop();
  loop.run();
}

TEST(ServerSlot, ReleaseGivesTheSlotBackExactlyOnce) {
  Backend be(backend_of({"a"}, 0, 0), 1);
  EventLoop loop;
  Waiter w;
  ServerSlot slot;
  ASSERT_EQ(slot.acquire(&be, LbRequest{}, &w, &loop, 0), ServerSlot::Result::kServer);
  Server* a = be.find_server("a");
  EXPECT_EQ(slot.server(), a);
  EXPECT_EQ(a->counters().current(), 1);
  EXPECT_EQ(be.counters().current(), 1);
  slot.release();
  slot.release();  // idempotent: a second release must not count twice
  slot.reset();
  EXPECT_EQ(a->counters().current(), 0);
  EXPECT_EQ(be.counters().current(), 0);
}

TEST(ServerSlot, ARetryMovesOnCountsTheRedispatchOnTheServerLeftAndHoldsOneSlot) {
  Backend be(backend_of({"a", "b"}, 0, 3), 1);
  EventLoop loop;
  Waiter w;
  ServerSlot slot;
  ASSERT_EQ(slot.acquire(&be, LbRequest{}, &w, &loop, 0), ServerSlot::Result::kServer);
  Server* first = slot.server();
  ASSERT_TRUE(slot.connect_failed(ECONNREFUSED, "refused"));  // a retry is allowed
  EXPECT_EQ(first->counters().local().connect_errors.load(), 1u);
  EXPECT_EQ(first->counters().local().retries.load(), 1u);
  ASSERT_EQ(slot.acquire(&be, LbRequest{}, &w, &loop, 0), ServerSlot::Result::kServer);
  Server* second = slot.server();
  ASSERT_NE(second, first);  // the tried server is avoided
  EXPECT_EQ(first->counters().local().redispatches.load(), 1u);
  EXPECT_EQ(second->counters().local().redispatches.load(), 0u);
  EXPECT_EQ(be.counters().local().redispatches.load(), 1u);
  // The first attempt's slot went back when the second was taken.
  EXPECT_EQ(first->counters().current(), 0);
  EXPECT_EQ(second->counters().current(), 1);
  EXPECT_EQ(slot.attempts(), 2);
  slot.reset();
  EXPECT_EQ(be.counters().current(), 0);
}

TEST(ServerSlot, RetriesStopAtTheBackendsLimit) {
  Backend be(backend_of({"a"}, 0, 1), 1);
  EventLoop loop;
  Waiter w;
  ServerSlot slot;
  ASSERT_EQ(slot.acquire(&be, LbRequest{}, &w, &loop, 0), ServerSlot::Result::kServer);
  EXPECT_TRUE(slot.connect_failed(ECONNREFUSED, "refused"));  // attempt 1 of 1 + 1 retry
  ASSERT_EQ(slot.acquire(&be, LbRequest{}, &w, &loop, 0), ServerSlot::Result::kServer);
  EXPECT_FALSE(slot.connect_failed(ECONNREFUSED, "refused"));
  EXPECT_EQ(be.counters().local().connect_errors.load(), 2u);
  EXPECT_EQ(be.counters().local().retries.load(), 1u);
  slot.reset();
  EXPECT_EQ(be.counters().current(), 0);
}

TEST(ServerSlot, AQueuedClaimIsGrantedOnItsLoopAndCancelGivesAGrantBack) {
  Backend be(backend_of({"a"}, 1, 0), 1);
  EventLoop loop;
  Waiter holder_w, w1, w2;
  ServerSlot holder, s1, s2;
  ASSERT_EQ(holder.acquire(&be, LbRequest{}, &holder_w, &loop, 0), ServerSlot::Result::kServer);
  ASSERT_EQ(s1.acquire(&be, LbRequest{}, &w1, &loop, 100), ServerSlot::Result::kQueued);
  ASSERT_EQ(s2.acquire(&be, LbRequest{}, &w2, &loop, 100), ServerSlot::Result::kQueued);
  EXPECT_TRUE(s1.queued());
  EXPECT_FALSE(s1.take_grant(150));  // nothing granted yet
  holder.release();
  run_posted(loop);
  ASSERT_EQ(w1.granted, 1);
  ASSERT_TRUE(s1.take_grant(250));
  EXPECT_EQ(s1.queue_ms(250), 150);
  EXPECT_EQ(s1.server(), be.find_server("a"));
  s1.release();  // the slot goes straight to the next in the queue
  run_posted(loop);
  ASSERT_EQ(w2.granted, 1);
  s2.cancel();  // gone before taking it: the granted slot must come back
  EXPECT_EQ(be.counters().current(), 0);
  EXPECT_EQ(be.queued(), 0);
  s1.reset();
  s2.reset();
  holder.reset();
  EXPECT_EQ(be.counters().current(), 0);
}

}  // namespace
}  // namespace weir
