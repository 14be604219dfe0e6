// A connection's tracked entries and the events that feed them (trackers.h).

#include "worker/stick/trackers.h"

namespace weir::stick {

bool Trackers::track(int sc, Table& table, std::string_view key, Stage stage, const Now& now) {
  Slot& s = slots_[sc];
  if (s.table) return false;
  Table::Access a = table.track(key, now);
  if (!a) return false;
  s = {&table, a.entry(), stage == Stage::kRequest, stage == Stage::kConnection};
  const EntryData d = a.data();
  d.add(Datum::kConnCnt, 1, now);
  d.add(Datum::kConnRate, 1, now);
  d.add(Datum::kConnCur, 1, now);
  if (stage != Stage::kConnection) {
    d.add(Datum::kSessCnt, 1, now);
    d.add(Datum::kSessRate, 1, now);
  }
  if (stage == Stage::kRequest) {
    d.add(Datum::kHttpReqCnt, 1, now);
    d.add(Datum::kHttpReqRate, 1, now);
  }
  return true;
}

void Trackers::session_accepted(const Now& now) {
  for (Slot& s : slots_) {
    if (!s.table || !s.session_pending) continue;
    s.session_pending = false;
    Table::Access a = s.table->open(s.entry, now);
    a.data().add(Datum::kSessCnt, 1, now);
    a.data().add(Datum::kSessRate, 1, now);
  }
}

void Trackers::request_started(const Now& now) {
  for (Slot& s : slots_) {
    // A track of a request that ended without being answered (its connection
    // went on) ends here, before the new request counts.
    if (s.table && s.request) release(s, now);
    if (!s.table) continue;
    Table::Access a = s.table->open(s.entry, now);
    a.data().add(Datum::kHttpReqCnt, 1, now);
    a.data().add(Datum::kHttpReqRate, 1, now);
  }
}

void Trackers::response_answered(int status, const Now& now) {
  const bool error = is_http_error(status);
  const bool failure = is_http_failure(status);
  if (!error && !failure) return;
  for (Slot& s : slots_) {
    if (!s.table) continue;
    Table::Access a = s.table->open(s.entry, now);
    const EntryData d = a.data();
    if (error) {
      d.add(Datum::kHttpErrCnt, 1, now);
      d.add(Datum::kHttpErrRate, 1, now);
    }
    if (failure) {
      d.add(Datum::kHttpFailCnt, 1, now);
      d.add(Datum::kHttpFailRate, 1, now);
    }
  }
}

void Trackers::request_ended(uint64_t in, uint64_t out, const Now& now) {
  for (Slot& s : slots_) {
    if (!s.table) continue;
    Table::Access a = s.table->open(s.entry, now);
    const EntryData d = a.data();
    d.add(Datum::kBytesInCnt, static_cast<int64_t>(in), now);
    d.add(Datum::kBytesInRate, static_cast<int64_t>(in), now);
    d.add(Datum::kBytesOutCnt, static_cast<int64_t>(out), now);
    d.add(Datum::kBytesOutRate, static_cast<int64_t>(out), now);
    if (s.request) release(s, std::move(a), now);
  }
}

void Trackers::add_bytes(uint64_t in, uint64_t out, const Now& now) {
  if (in == 0 && out == 0) return;
  for (Slot& s : slots_) {
    if (!s.table) continue;
    Table::Access a = s.table->open(s.entry, now);
    const EntryData d = a.data();
    d.add(Datum::kBytesInCnt, static_cast<int64_t>(in), now);
    d.add(Datum::kBytesInRate, static_cast<int64_t>(in), now);
    d.add(Datum::kBytesOutCnt, static_cast<int64_t>(out), now);
    d.add(Datum::kBytesOutRate, static_cast<int64_t>(out), now);
  }
}

void Trackers::sync_bytes(uint64_t total_in, uint64_t total_out, const Now& now, bool force) {
  if (!force && now.mono_ms - synced_at_ < 1000) return;
  synced_at_ = now.mono_ms;
  add_bytes(total_in - synced_in_, total_out - synced_out_, now);
  synced_in_ = total_in;
  synced_out_ = total_out;
}

void Trackers::release(Slot& s, const Now& now) {
  release(s, s.table->open(s.entry, now), now);
}

void Trackers::release(Slot& s, Table::Access&& a, const Now& now) {
  a.data().add(Datum::kConnCur, -1, now);
  s.table->untrack(std::move(a), now);
  s = Slot{};
}

void Trackers::release_all(const Now& now) {
  for (Slot& s : slots_)
    if (s.table) release(s, now);
}

void Trackers::inc_gpc(int sc, uint32_t idx, const Now& now) {
  Slot& s = slots_[sc];
  if (!s.table) return;
  Table::Access a = s.table->open(s.entry, now);
  a.data().add(Datum::kGpc, 1, now, idx);
  a.data().add(Datum::kGpcRate, 1, now, idx);
}

void Trackers::clear_gpc(int sc, uint32_t idx, const Now& now) {
  Slot& s = slots_[sc];
  if (!s.table) return;
  Table::Access a = s.table->open(s.entry, now);
  a.data().clear(Datum::kGpc, idx);
}

void Trackers::set_gpt(int sc, uint32_t idx, int64_t value, const Now& now) {
  Slot& s = slots_[sc];
  if (!s.table) return;
  Table::Access a = s.table->open(s.entry, now);
  a.data().set(Datum::kGpt, idx, value, now);
}

}  // namespace weir::stick
