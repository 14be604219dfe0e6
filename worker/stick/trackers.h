#pragma once
// The stick-table entries one client connection tracks (`track` rules, HAProxy's
// track-sc0/1/2), and the events that feed them (doc/stick-tables.md):
//
//   tracking starts         conn_cnt, conn_rate, conn_cur + 1
//   the connection is kept  sess_cnt, sess_rate + 1 (after the tcp_request
//                           connection rules; at once for a later track)
//   each request            http_req_cnt, http_req_rate + 1
//   each answered request   http_err_* (4xx but 401 and 407), http_fail_*
//                           (5xx but 501 and 505), bytes_in_* and bytes_out_*
//   tracking ends           conn_cur - 1
//
// A track in tcp_request rules lasts as long as the connection; a track in
// http_request rules lasts for its request. A counter already tracking keeps
// its entry: a later track of the same counter does nothing (as in HAProxy).
// A connection makes its Trackers with its first track; destroying it lets go
// of every entry, so conn_cur returns to 0 whichever way connections end.

#include <cstdint>
#include <memory>
#include <string_view>

#include "common/stick/table.h"

namespace weir::stick {

inline constexpr int kTrackedCounters = 3;

class Trackers {
 public:
  enum class Stage : uint8_t { kConnection, kContent, kRequest };

  Trackers() = default;
  ~Trackers() { release_all(clock_now()); }
  Trackers(const Trackers&) = delete;
  Trackers& operator=(const Trackers&) = delete;

  struct Slot {
    Table* table = nullptr;  // null: the counter tracks nothing
    Entry* entry = nullptr;
    bool request = false;          // lasts for the request (an http_request track)
    bool session_pending = false;  // tracked by connection rules: sess_* once they pass
  };
  const Slot& slot(int sc) const { return slots_[sc]; }
  bool tracked(int sc) const { return slots_[sc].table != nullptr; }

  // Starts tracking `key` of `table` on counter sc; false when the counter
  // tracks already (nothing changes) or the table is full of tracked entries.
  bool track(int sc, Table& table, std::string_view key, Stage stage, const Now& now);
  // The connection passed its tcp_request connection rules.
  void session_accepted(const Now& now);
  // A request starts: every tracked entry counts it (a track left by an
  // earlier request that was never answered ends first).
  void request_started(const Now& now);
  // A response with `status` is about to go to the client: errors and failures
  // are counted now, before the client can see the answer and come back.
  void response_answered(int status, const Now& now);
  // A request ended after `in` bytes from the client and `out` to it: the
  // bytes are counted and the tracks of the request end.
  void request_ended(uint64_t in, uint64_t out, const Now& now);
  // Bytes a tcp session or a tunnel moved since the last call.
  void add_bytes(uint64_t in, uint64_t out, const Now& now);
  // A tcp session's byte totals so far: what they grew by since the last call
  // is counted, at most once a second unless `force` (the session ends).
  void sync_bytes(uint64_t total_in, uint64_t total_out, const Now& now, bool force);
  // Ends every track.
  void release_all(const Now& now);

  // gpc / gpt actions on counter sc's entry (nothing when it tracks none or
  // its table does not store the datum).
  void inc_gpc(int sc, uint32_t idx, const Now& now);
  void clear_gpc(int sc, uint32_t idx, const Now& now);
  void set_gpt(int sc, uint32_t idx, int64_t value, const Now& now);

 private:
  void release(Slot& s, const Now& now);
  // The same, on the entry `a` opened.
  void release(Slot& s, Table::Access&& a, const Now& now);
  Slot slots_[kTrackedCounters];
  uint64_t synced_in_ = 0, synced_out_ = 0;  // sync_bytes: the totals counted
  int64_t synced_at_ = 0;
};

// What counts as an HTTP error (http_err_*) and failure (http_fail_*).
inline bool is_http_error(int status) {
  return status >= 400 && status <= 499 && status != 401 && status != 407;
}
inline bool is_http_failure(int status) {
  return status >= 500 && status <= 599 && status != 501 && status != 505;
}

}  // namespace weir::stick
