#pragma once
// The master's books on its workers: which generation serves, which drain,
// which are still starting, how many reloads and crashes there were, and how
// long to wait before respawning. Nothing here makes a system call: the
// supervisor (master/supervisor.cpp) forks, signals and reads the workers,
// tells these books what happened, and does what they answer; so the
// bookkeeping is tested without a process (tests/unit/master/generations_test.cpp).

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/ipc/ipc.h"

namespace weir {

// One worker process.
struct WorkerProc {
  pid_t pid = 0;
  int generation = 0;
  ipc::Channel channel;
  bool ready = false;     // it said READY
  bool draining = false;  // told to drain (or its exit is expected)
  int64_t started_ms = 0;
  std::string version;                    // from its Ready message
  uint32_t protocol = 0;                  // the protocol of its messages (0: none yet)
  std::string failure;                    // from its kFailed message: why it could not start
  std::vector<uint64_t> command_waiters;  // CLI clients waiting for a kReply, in order
};

class Generations {
 public:
  // A new generation (the first start's or a reload's) has this long to say READY.
  static constexpr int64_t kReadyTimeoutMs = 60000;
  // A worker that lived this long before it died starts a new crash streak.
  static constexpr int64_t kStableWorkerMs = 30000;
  // The respawn back-off: the first delay, doubled at each crash of a streak, up to the last.
  static constexpr int64_t kFirstRespawnDelayMs = 100;
  static constexpr int64_t kMaxRespawnDelayMs = 10000;
  // The delay before the next start after `streak` deaths in a row: first_ms,
  // doubled at each death after the first, at most max_ms (workers here, the
  // peers agent in peers_agent.cpp).
  static int64_t backoff_ms(int streak, int64_t first_ms, int64_t max_ms) {
    int64_t delay = first_ms;
    for (int i = 1; i < streak && delay < max_ms; ++i) delay *= 2;
    return delay < max_ms ? delay : max_ms;
  }

  struct Counts {
    int newest = 0;        // the newest generation started
    int serving = 0;       // the newest generation that said READY
    int reloads = 0;       // reloads run, failed ones included (show proc)
    int crashes = 0;       // workers that exited without being asked to (show proc)
    int crash_streak = 0;  // crashes in a row, none after a life of kStableWorkerMs
  };
  const Counts& counts() const { return counts_; }
  int newest() const { return counts_.newest; }
  int serving() const { return counts_.serving; }

  // --- starting workers
  // The number of a new generation: the first start and each reload take one.
  int begin_generation() { return ++counts_.newest; }
  // The generation a worker respawned after a crash belongs to.
  int respawn_generation() const { return counts_.serving ? counts_.serving : counts_.newest; }
  // A worker process now runs `generation`.
  WorkerProc& add(pid_t pid, int generation, ipc::Channel channel, int64_t now_ms);
  // Whether the first generation has said READY (the start is over).
  bool started() const { return started_; }

  // --- reloads
  // A reload was asked for (counted whatever its outcome).
  void count_reload() { ++counts_.reloads; }
  // The reload's new generation was started: it has kReadyTimeoutMs to say READY.
  void reload_started(int64_t now_ms);
  // The reload succeeded or failed.
  void reload_over() { reloading_ = false; }
  bool reloading() const { return reloading_; }

  // --- what happens to workers
  struct Ready {
    std::vector<WorkerProc*> to_drain;  // older workers, now marked draining: tell them
    bool reload_done = false;           // it is the reload's new generation
    bool start_done = false;            // it is the first start's generation
  };
  // `w` said Ready (`version`: the version it runs): its generation
  // serves and every older one drains.
  Ready on_ready(WorkerProc& w, std::string_view version);

  enum class ExitKind {
    kExpected,      // it was draining, or the master is stopping
    kReloadFailed,  // the reload's new generation died before READY
    kStartFailed,   // the first start's generation died before READY
    kCrashed,       // anything else: counted in crashes
  };
  struct Exit {
    ExitKind kind = ExitKind::kExpected;
    std::unique_ptr<WorkerProc> proc;  // its record, now out of the books
    int64_t lived_ms = 0;
    // kCrashed and no worker serves any more: respawn after this delay (the
    // back-off of the crash streak); -1 otherwise.
    int64_t respawn_in_ms = -1;
  };
  // The worker `pid` exited. nullptr-proc Exit when it is not in the books.
  Exit on_exit(pid_t pid, int64_t now_ms, bool stopping);

  // Whether `w`'s server states are the ones to keep (kState): it serves.
  bool serves(const WorkerProc& w) const { return w.generation >= counts_.serving && !w.draining; }

  // --- deadlines and limits
  // The reload's new generation did not say READY in time: its workers, now
  // marked draining (their exit is expected); the caller kills them and fails
  // the reload. Empty when the reload is not late.
  bool reload_late(int64_t now_ms) const { return reloading_ && now_ms >= reload_deadline_ms_; }
  std::vector<WorkerProc*> abandon_reload();
  // During the first start: the workers not READY after kReadyTimeoutMs, now
  // given that failure; the caller kills them.
  std::vector<WorkerProc*> overdue_first_start(int64_t now_ms);
  // The oldest draining workers beyond `max_old` draining generations.
  std::vector<WorkerProc*> beyond_old_generations(int max_old) const;
  // Graceful stop: every worker, now marked draining.
  std::vector<WorkerProc*> drain_all();
  // Fast stop: every worker was killed and waited for.
  void forget_all() { workers_.clear(); }

  // --- lookups
  WorkerProc* find(pid_t pid) const;
  // "@<generation>" or "@!<pid>": the most recently started worker that matches.
  WorkerProc* command_target(long number, bool by_pid) const;
  // Every worker, newest generation first (show proc).
  std::vector<const WorkerProc*> newest_first() const;
  const std::vector<std::unique_ptr<WorkerProc>>& workers() const { return workers_; }
  bool empty() const { return workers_.empty(); }

  // --- binary upgrade: the new master takes the books over
  void restore(const Counts& counts) {
    counts_ = counts;
    started_ = true;
  }
  void adopt(std::unique_ptr<WorkerProc> w) { workers_.push_back(std::move(w)); }

 private:
  Counts counts_;
  std::vector<std::unique_ptr<WorkerProc>> workers_;
  bool started_ = false;
  bool reloading_ = false;
  int64_t reload_deadline_ms_ = 0;
};

}  // namespace weir
