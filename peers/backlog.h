#pragma once
// The agent's own writes to its tables, in order, some of them later
// (doc/peers.md, "A node that restarts").
//
// While a full resync from another node comes in, the agent hands each part
// to its workers at once and keeps the part's bytes instead of applying them
// itself: on a machine whose cores the workers need, two copies of a million
// entries built at the same time are slower than one after the other, and the
// workers, which serve traffic, come first. Every batch for the agent's tables
// goes through apply() here; while anything is kept it is kept too, behind
// the others, so the tables see the same order as before. work() applies what
// is kept a few milliseconds at a time once the workers have what they were
// sent; settle() applies it all before anything reads the tables (a snapshot
// for a new worker, a resync for another node, a save, a purge, a reload).
//
// A kept batch is applied with the time it came (its stick::Now), so the
// entries' expiry and rates are what they would have been.

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <string_view>

#include "common/proto/peers.pb.h"
#include "common/stick/sync.h"
#include "common/stick/table.h"

namespace weir::peers {

class Backlog {
 public:
  // Applies b (whose serialised bytes are `raw`, or empty when unknown) to t
  // now, or keeps it behind what is kept already.
  void apply(const std::shared_ptr<stick::Table>& t, const proto::TableBatch& b,
             std::string_view raw = {});
  // Keeps every batch from now on, until hold(false).
  void hold(bool on) {
    if (held_ && !on) ++releases_;
    if (!held_ && on) held_rows_ = 0;
    held_ = on;
  }
  bool held() const { return held_; }
  // How many holds have ended (a full resync in, or stalled), and the rows
  // kept during the last one (applied since or not).
  uint64_t releases() const { return releases_; }
  size_t held_rows() const { return held_rows_; }
  bool empty() const { return kept_.empty(); }
  size_t rows() const { return rows_; }
  // Applies kept batches, oldest first, for about budget_ms (at least one;
  // all of them when budget_ms < 0); true when none is left.
  bool work(int64_t budget_ms);
  // Applies everything kept (the hold stays as it is).
  void settle();

 private:
  struct Kept {
    std::weak_ptr<stick::Table> table;  // a table dropped by a reload meanwhile is skipped
    std::string bytes;                  // the TableBatch
    size_t rows;
    stick::Now at;
  };
  void apply_one(Kept& k);

  std::deque<Kept> kept_;
  size_t rows_ = 0;
  bool held_ = false;
  uint64_t releases_ = 0;
  size_t held_rows_ = 0;
};

}  // namespace weir::peers
