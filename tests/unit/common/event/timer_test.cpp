#include "common/event/timer.h"

#include <gtest/gtest.h>

#include <memory>
#include <vector>

namespace weir {
namespace {

struct Probe {
  std::vector<int>* fired;
  int id;
};

void record(void* p) {
  auto* probe = static_cast<Probe*>(p);
  probe->fired->push_back(probe->id);
}

TEST(TimerQueue, FiresInDeadlineOrder) {
  TimerQueue q;
  std::vector<int> fired;
  Probe p1{&fired, 1}, p2{&fired, 2}, p3{&fired, 3};
  Timer t1(q, record, &p1), t2(q, record, &p2), t3(q, record, &p3);
  t1.set(300);
  t2.set(100);
  t3.set(200);
  q.run_due(150);
  EXPECT_EQ(fired, (std::vector<int>{2}));
  q.run_due(1000);
  EXPECT_EQ(fired, (std::vector<int>{2, 3, 1}));
  EXPECT_EQ(q.size(), 0u);
}

TEST(TimerQueue, PushingLaterIsHonouredLazily) {
  TimerQueue q;
  std::vector<int> fired;
  Probe p{&fired, 1};
  Timer t(q, record, &p);
  t.set(100);
  t.set(500);  // later: the heap keeps the old key, but the timer must not fire at 100
  q.run_due(100);
  EXPECT_TRUE(fired.empty());
  EXPECT_EQ(q.next_timeout_ms(100), 400);
  q.run_due(499);
  EXPECT_TRUE(fired.empty());
  q.run_due(500);
  EXPECT_EQ(fired, (std::vector<int>{1}));
}

TEST(TimerQueue, EarlierAndDisarmAndDestroy) {
  TimerQueue q;
  std::vector<int> fired;
  Probe p1{&fired, 1}, p2{&fired, 2};
  Timer t1(q, record, &p1);
  t1.set(500);
  t1.set(50);
  {
    Timer t2(q, record, &p2);
    t2.set(60);
  }  // destroyed while queued
  q.run_due(60);
  EXPECT_EQ(fired, (std::vector<int>{1}));
  t1.set(100);
  t1.disarm();
  q.run_due(1000);
  EXPECT_EQ(fired, (std::vector<int>{1}));
  EXPECT_EQ(q.next_timeout_ms(1000), -1);
}

// A stopped timer leaves the heap at once (a disarmed one stays until its key
// comes up), so that it may outlive its queue; set() arms it again.
TEST(TimerQueue, StopLeavesTheHeapAtOnce) {
  TimerQueue q;
  std::vector<int> fired;
  Probe p1{&fired, 1}, p2{&fired, 2};
  Timer t1(q, record, &p1), t2(q, record, &p2);
  t1.set(100);
  t2.set(200);
  t1.disarm();
  EXPECT_EQ(q.size(), 2u);
  t1.stop();
  t2.stop();
  EXPECT_EQ(q.size(), 0u);
  t2.stop();  // twice: nothing
  EXPECT_EQ(q.size(), 0u);
  t1.set(300);
  q.run_due(1000);
  EXPECT_EQ(fired, (std::vector<int>{1}));
  auto outlived = std::make_unique<TimerQueue>();
  auto t3 = std::make_unique<Timer>(*outlived, record, &p2);
  t3->set(50);
  t3->stop();
  outlived.reset();
  t3.reset();  // destroyed after its queue: it must not touch it (ASan)
}

// The earliest deadline wins; an unset timeout (0) and a deadline of 0 count
// for nothing.
TEST(Deadline, KeepsTheEarliestSetOne) {
  Deadline d;
  EXPECT_EQ(d.at(), 0);
  d.consider(1000, 0);
  EXPECT_EQ(d.at(), 0);
  d.consider(1000, 500);
  d.consider(900, 700);
  EXPECT_EQ(d.at(), 1500);
  d.consider_at(0);
  d.consider_at(1600);
  EXPECT_EQ(d.at(), 1500);
  d.consider_at(1200);
  EXPECT_EQ(d.at(), 1200);
}

TEST(TimerQueue, ManyTimersKeepHeapOrder) {
  TimerQueue q;
  std::vector<int> fired;
  std::vector<Probe> probes(200);
  std::vector<std::unique_ptr<Timer>> timers;
  for (int i = 0; i < 200; ++i) {
    probes[static_cast<size_t>(i)] = Probe{&fired, i};
    timers.push_back(std::make_unique<Timer>(q, record, &probes[static_cast<size_t>(i)]));
    timers.back()->set(1000 + (i * 7919) % 200);
  }
  for (int i = 0; i < 200; i += 3) timers[static_cast<size_t>(i)].reset();
  q.run_due(5000);
  EXPECT_EQ(fired.size(), 200u - 67u);
  for (size_t i = 1; i < fired.size(); ++i) {
    EXPECT_LE((fired[i - 1] * 7919) % 200, (fired[i] * 7919) % 200);
  }
}

}  // namespace
}  // namespace weir
