// The master's books on its workers, driven as the supervisor drives them:
// start, READY, reloads that succeed or fail, crashes and their back-off,
// max_old_generations and the @N lookup. No process is forked.

#include "master/generations.h"

#include <gtest/gtest.h>

#include <vector>

namespace weir {
namespace {

using Kind = Generations::ExitKind;

std::vector<pid_t> pids(const std::vector<WorkerProc*>& ws) {
  std::vector<pid_t> out;
  for (const WorkerProc* w : ws) out.push_back(w->pid);
  return out;
}

// A master whose first generation (worker pid 100) is ready at t=0.
struct Started {
  Generations g;
  Started() {
    WorkerProc& w = g.add(100, g.begin_generation(), ipc::Channel(), 0);
    Generations::Ready r = g.on_ready(w, "0.1.0");
    EXPECT_TRUE(r.start_done);
    EXPECT_FALSE(r.reload_done);
    EXPECT_TRUE(r.to_drain.empty());
  }
  // A reload at `now` whose new worker is `pid`; returns its generation.
  int reload(pid_t pid, int64_t now) {
    g.count_reload();
    g.reload_started(now);
    int gen = g.begin_generation();
    g.add(pid, gen, ipc::Channel(), now);
    return gen;
  }
};

TEST(Generations, TheFirstStartEndsWhenItsWorkerIsReady) {
  Generations g;
  EXPECT_FALSE(g.started());
  EXPECT_EQ(g.begin_generation(), 1);
  WorkerProc& w = g.add(100, 1, ipc::Channel(), 0);
  EXPECT_EQ(g.serving(), 0);
  Generations::Ready r = g.on_ready(w, "1.2.3+x");
  EXPECT_TRUE(r.start_done);
  EXPECT_TRUE(g.started());
  EXPECT_EQ(g.serving(), 1);
  EXPECT_EQ(w.version, "1.2.3+x");
  EXPECT_TRUE(g.serves(w));
  EXPECT_EQ(g.counts().reloads, 0);
}

TEST(Generations, AReloadServesOnlyOnceTheNewGenerationIsReadyThenTheOldOneDrains) {
  Started s;
  int gen = s.reload(200, 1000);
  EXPECT_EQ(gen, 2);
  EXPECT_TRUE(s.g.reloading());
  // Until READY, generation 1 serves: its server states are the ones kept.
  EXPECT_EQ(s.g.serving(), 1);
  EXPECT_TRUE(s.g.serves(*s.g.find(100)));
  Generations::Ready r = s.g.on_ready(*s.g.find(200), "0.1.0");
  EXPECT_TRUE(r.reload_done);
  EXPECT_FALSE(r.start_done);
  EXPECT_EQ(pids(r.to_drain), std::vector<pid_t>{100});
  EXPECT_TRUE(s.g.find(100)->draining);
  EXPECT_FALSE(s.g.serves(*s.g.find(100)));
  EXPECT_EQ(s.g.serving(), 2);
  s.g.reload_over();
  EXPECT_FALSE(s.g.reloading());
  EXPECT_EQ(s.g.counts().reloads, 1);
  // The drained worker's exit is expected: no crash.
  Generations::Exit e = s.g.on_exit(100, 5000, false);
  EXPECT_EQ(e.kind, Kind::kExpected);
  EXPECT_EQ(e.proc->pid, 100);
  EXPECT_EQ(s.g.counts().crashes, 0);
  EXPECT_EQ(s.g.find(100), nullptr);
}

TEST(Generations, EveryReloadIsCountedAndEachTakesAGenerationNumber) {
  Started s;
  for (int i = 0; i < 3; ++i) {
    int gen = s.reload(200 + i, 1000 * i);
    EXPECT_EQ(gen, 2 + i);
    s.g.on_ready(*s.g.find(200 + i), "");
    s.g.reload_over();
  }
  EXPECT_EQ(s.g.counts().reloads, 3);
  EXPECT_EQ(s.g.serving(), 4);
  EXPECT_EQ(s.g.newest(), 4);
  // Generations 1, 2 and 3 drain, newest first in show proc.
  std::vector<int> gens;
  for (const WorkerProc* w : s.g.newest_first()) gens.push_back(w->generation);
  EXPECT_EQ(gens, (std::vector<int>{4, 3, 2, 1}));
  // A reload refused before any worker started still counts.
  s.g.count_reload();
  EXPECT_EQ(s.g.counts().reloads, 4);
  EXPECT_EQ(s.g.newest(), 4);
}

TEST(Generations, ANewGenerationThatDiesBeforeReadyFailsTheReloadNotTheServingOne) {
  Started s;
  s.reload(200, 1000);
  Generations::Exit e = s.g.on_exit(200, 1500, false);
  EXPECT_EQ(e.kind, Kind::kReloadFailed);
  EXPECT_EQ(e.respawn_in_ms, -1);
  EXPECT_EQ(s.g.counts().crashes, 0);
  EXPECT_EQ(s.g.serving(), 1);
  EXPECT_FALSE(s.g.find(100)->draining);
  // The number it used stays used: the next reload's generation is 3.
  s.g.reload_over();
  EXPECT_EQ(s.reload(300, 2000), 3);
}

TEST(Generations, AReloadNotReadyInTimeIsAbandoned) {
  Started s;
  s.reload(200, 1000);
  EXPECT_FALSE(s.g.reload_late(1000 + Generations::kReadyTimeoutMs - 1));
  ASSERT_TRUE(s.g.reload_late(1000 + Generations::kReadyTimeoutMs));
  EXPECT_EQ(pids(s.g.abandon_reload()), std::vector<pid_t>{200});
  s.g.reload_over();
  EXPECT_FALSE(s.g.reload_late(1000 + Generations::kReadyTimeoutMs));
  // Killed, its exit is expected.
  EXPECT_EQ(s.g.on_exit(200, 62000, false).kind, Kind::kExpected);
  EXPECT_EQ(s.g.serving(), 1);
  EXPECT_EQ(s.g.counts().crashes, 0);
}

TEST(Generations, TheFirstStartFailsWhenItsWorkerDiesOrIsLate) {
  Generations g;
  g.add(100, g.begin_generation(), ipc::Channel(), 0);
  EXPECT_EQ(g.on_exit(100, 10, false).kind, Kind::kStartFailed);
  EXPECT_EQ(g.counts().crashes, 0);

  Generations late;
  late.add(100, late.begin_generation(), ipc::Channel(), 0);
  EXPECT_TRUE(late.overdue_first_start(Generations::kReadyTimeoutMs - 1).empty());
  std::vector<WorkerProc*> overdue = late.overdue_first_start(Generations::kReadyTimeoutMs);
  ASSERT_EQ(pids(overdue), std::vector<pid_t>{100});
  EXPECT_EQ(overdue[0]->failure, "not ready within 60 s");
  // Named once: the next tick does not kill it again.
  EXPECT_TRUE(late.overdue_first_start(Generations::kReadyTimeoutMs + 1000).empty());
  EXPECT_EQ(late.on_exit(100, Generations::kReadyTimeoutMs + 5, false).kind, Kind::kStartFailed);
}

TEST(Generations, CrashesInARowBackOffAndALongLifeStartsAgain) {
  Started s;
  const int64_t expected[] = {100, 200, 400, 800, 1600, 3200, 6400, 10000, 10000};
  int64_t now = 0;
  pid_t pid = 100;
  for (int64_t delay : expected) {
    now += 1000;  // each worker dies a second after it started
    Generations::Exit e = s.g.on_exit(pid, now, false);
    EXPECT_EQ(e.kind, Kind::kCrashed);
    EXPECT_EQ(e.respawn_in_ms, delay);
    // The respawned worker belongs to the serving generation.
    EXPECT_EQ(s.g.respawn_generation(), 1);
    s.g.add(++pid, s.g.respawn_generation(), ipc::Channel(), now);
  }
  EXPECT_EQ(s.g.counts().crashes, 9);
  EXPECT_EQ(s.g.counts().crash_streak, 9);
  // A worker that served long enough proves the generation runs: back to 100 ms.
  now += Generations::kStableWorkerMs + 1;
  Generations::Exit e = s.g.on_exit(pid, now, false);
  EXPECT_EQ(e.respawn_in_ms, 100);
  EXPECT_EQ(s.g.counts().crash_streak, 1);
  EXPECT_EQ(s.g.counts().crashes, 10);
}

TEST(Generations, ACrashWhileAnotherWorkerServesCountsButRespawnsNothing) {
  Started s;
  s.reload(200, 1000);
  s.g.on_ready(*s.g.find(200), "");
  s.g.reload_over();
  // A reload's new worker dies before READY while generation 2 serves: a
  // crash (not a failed reload: none is in progress), and 2 still serves.
  s.reload(300, 2000);
  s.g.reload_over();  // (as if it had failed already)
  Generations::Exit e = s.g.on_exit(300, 2500, false);
  EXPECT_EQ(e.kind, Kind::kCrashed);
  EXPECT_EQ(e.respawn_in_ms, -1);
  EXPECT_EQ(s.g.counts().crashes, 1);
  EXPECT_EQ(s.g.counts().crash_streak, 0);
}

TEST(Generations, NothingIsACrashOnceTheMasterStops) {
  Started s;
  EXPECT_EQ(s.g.on_exit(100, 10, true).kind, Kind::kExpected);
  EXPECT_EQ(s.g.counts().crashes, 0);
  EXPECT_TRUE(s.g.empty());
  // An unknown pid (not a worker) is not in the books.
  EXPECT_EQ(s.g.on_exit(999, 10, false).proc, nullptr);
}

TEST(Generations, BeyondMaxOldGenerationsTheOldestDrainingGoFirst) {
  Started s;
  for (int i = 0; i < 3; ++i) {
    s.reload(200 + i, 1000 * i);
    s.g.on_ready(*s.g.find(200 + i), "");
    s.g.reload_over();
  }
  // Generations 1, 2, 3 drain; 4 serves.
  EXPECT_EQ(pids(s.g.beyond_old_generations(1)), (std::vector<pid_t>{100, 200}));
  EXPECT_EQ(pids(s.g.beyond_old_generations(3)), std::vector<pid_t>{});
  EXPECT_EQ(pids(s.g.beyond_old_generations(0)), (std::vector<pid_t>{100, 200, 201}));
}

TEST(Generations, AtCommandsReachTheNewestWorkerOfAGenerationOrAPid) {
  Started s;
  // Two workers of generation 1 (one respawned while the other had not exited
  // yet): "@1" is the one started last.
  s.g.add(101, 1, ipc::Channel(), 1100);
  EXPECT_EQ(s.g.command_target(1, false)->pid, 101);
  EXPECT_EQ(s.g.command_target(100, true)->pid, 100);
  EXPECT_EQ(s.g.command_target(101, true)->pid, 101);
  EXPECT_EQ(s.g.command_target(102, true), nullptr);
  EXPECT_EQ(s.g.command_target(2, false), nullptr);
}

TEST(Generations, AGracefulStopDrainsEveryWorker) {
  Started s;
  s.reload(200, 1000);
  EXPECT_EQ(pids(s.g.drain_all()), (std::vector<pid_t>{100, 200}));
  EXPECT_TRUE(s.g.find(100)->draining);
  EXPECT_TRUE(s.g.find(200)->draining);
  EXPECT_EQ(s.g.on_exit(200, 1200, false).kind, Kind::kExpected);
}

TEST(Generations, ABinaryUpgradeCarriesTheBooksOver) {
  Generations::Counts c;
  c.newest = 5;
  c.serving = 4;
  c.reloads = 7;
  c.crashes = 2;
  c.crash_streak = 1;
  Generations g;
  g.restore(c);
  auto w = std::make_unique<WorkerProc>();
  w->pid = 400;
  w->generation = 4;
  w->ready = true;
  g.adopt(std::move(w));
  EXPECT_TRUE(g.started());
  EXPECT_EQ(g.counts().reloads, 7);
  EXPECT_EQ(g.serving(), 4);
  // The upgrade's reload takes generation 6.
  EXPECT_EQ(g.begin_generation(), 6);
  // The adopted worker crashing now is a crash, respawned in its generation.
  Generations::Exit e = g.on_exit(400, 100, false);
  EXPECT_EQ(e.kind, Kind::kCrashed);
  EXPECT_EQ(g.counts().crashes, 3);
}

}  // namespace
}  // namespace weir
