#include "master/generations.h"

#include <algorithm>

namespace weir {

WorkerProc& Generations::add(pid_t pid, int generation, ipc::Channel channel, int64_t now_ms) {
  auto w = std::make_unique<WorkerProc>();
  w->pid = pid;
  w->generation = generation;
  w->channel = std::move(channel);
  w->started_ms = now_ms;
  workers_.push_back(std::move(w));
  return *workers_.back();
}

void Generations::reload_started(int64_t now_ms) {
  reloading_ = true;
  reload_deadline_ms_ = now_ms + kReadyTimeoutMs;
}

Generations::Ready Generations::on_ready(WorkerProc& w, std::string_view version) {
  Ready out;
  w.ready = true;
  w.version = std::string(version);
  if (w.generation > counts_.serving) counts_.serving = w.generation;
  for (auto& other : workers_) {
    if (other.get() != &w && other->generation < w.generation && !other->draining) {
      other->draining = true;
      out.to_drain.push_back(other.get());
    }
  }
  if (reloading_ && w.generation == counts_.newest) {
    out.reload_done = true;
  } else if (w.generation == counts_.newest && !started_) {
    started_ = true;
    out.start_done = true;
  }
  return out;
}

Generations::Exit Generations::on_exit(pid_t pid, int64_t now_ms, bool stopping) {
  Exit out;
  auto it = std::find_if(workers_.begin(), workers_.end(),
                         [pid](const auto& w) { return w->pid == pid; });
  if (it == workers_.end()) return out;
  out.proc = std::move(*it);
  workers_.erase(it);
  const WorkerProc& w = *out.proc;
  out.lived_ms = now_ms - w.started_ms;
  if (stopping || w.draining) {
    out.kind = ExitKind::kExpected;
    return out;
  }
  if (!w.ready && w.generation == counts_.newest && reloading_) {
    out.kind = ExitKind::kReloadFailed;
    return out;
  }
  if (!w.ready && !started_) {
    out.kind = ExitKind::kStartFailed;
    return out;
  }
  out.kind = ExitKind::kCrashed;
  ++counts_.crashes;
  bool any_serving = false;
  for (auto& o : workers_)
    if (!o->draining) any_serving = true;
  if (!any_serving) {
    // Crashes in a row back off exponentially; a worker that had lived long
    // enough proves the generation can run, and the streak starts again.
    counts_.crash_streak = out.lived_ms > kStableWorkerMs ? 1 : counts_.crash_streak + 1;
    out.respawn_in_ms = backoff_ms(counts_.crash_streak, kFirstRespawnDelayMs, kMaxRespawnDelayMs);
  }
  return out;
}

std::vector<WorkerProc*> Generations::abandon_reload() {
  std::vector<WorkerProc*> out;
  for (auto& w : workers_) {
    if (w->generation == counts_.newest && !w->ready) {
      w->draining = true;
      out.push_back(w.get());
    }
  }
  return out;
}

std::vector<WorkerProc*> Generations::overdue_first_start(int64_t now_ms) {
  std::vector<WorkerProc*> out;
  if (started_) return out;
  for (auto& w : workers_) {
    if (!w->ready && w->failure.empty() && now_ms - w->started_ms >= kReadyTimeoutMs) {
      w->failure = "not ready within " + std::to_string(kReadyTimeoutMs / 1000) + " s";
      out.push_back(w.get());
    }
  }
  return out;
}

std::vector<WorkerProc*> Generations::beyond_old_generations(int max_old) const {
  std::vector<WorkerProc*> old;
  for (auto& w : workers_)
    if (w->draining) old.push_back(w.get());
  std::sort(old.begin(), old.end(),
            [](WorkerProc* a, WorkerProc* b) { return a->generation < b->generation; });
  const size_t keep = max_old < 0 ? 0 : static_cast<size_t>(max_old);
  if (old.size() > keep) {
    old.resize(old.size() - keep);
  } else {
    old.clear();
  }
  return old;
}

std::vector<WorkerProc*> Generations::drain_all() {
  std::vector<WorkerProc*> out;
  for (auto& w : workers_) {
    w->draining = true;
    out.push_back(w.get());
  }
  return out;
}

WorkerProc* Generations::find(pid_t pid) const {
  for (auto& w : workers_)
    if (w->pid == pid) return w.get();
  return nullptr;
}

WorkerProc* Generations::command_target(long number, bool by_pid) const {
  WorkerProc* found = nullptr;
  for (auto& w : workers_) {
    if ((by_pid && w->pid == number) || (!by_pid && w->generation == number)) {
      if (!found || w->started_ms > found->started_ms) found = w.get();
    }
  }
  return found;
}

std::vector<const WorkerProc*> Generations::newest_first() const {
  std::vector<const WorkerProc*> out;
  for (auto& w : workers_) out.push_back(w.get());
  std::sort(out.begin(), out.end(),
            [](const WorkerProc* a, const WorkerProc* b) { return a->generation > b->generation; });
  return out;
}

}  // namespace weir
