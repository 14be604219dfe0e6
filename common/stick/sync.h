#pragma once
// Stick-table entries as the peers agent and the worker processes exchange
// them (common/proto/peers.proto, doc/architecture.md "The peers agent"), and
// as the agent's state file keeps them.
//
// A worker sends what it counted since its last batch (DELTA rows): a
// counter's local part, a rate's unsent events, both then folded into the
// rest of the entry, so that the entry's value does not move and nothing is
// sent twice. A set or clear since (EntryData::kAbsolute) makes the row carry
// totals instead. Last-writer-wins data (gpt, server_key) travel with their
// stamp and the newest write wins everywhere.
//
// Absolute rows (SNAPSHOT, REFILL, the state file) carry an entry's totals
// without this process's unsent part, and what is left of its life.
//
// A receiver applies each column that its own table stores and skips the
// others, so generations whose `store:` differ still share what they have in
// common.

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/proto/peers.pb.h"
#include "common/stick/table.h"

namespace weir::stick::sync {

inline constexpr uint32_t kRowAbsolute = 1;
inline constexpr uint32_t kRowErased = 2;
// An absolute row of SNAPSHOT or REFILL whose epoch's base has not reached its
// sender's totals yet (a set or clear of its own not sent, or an update of
// the epoch that came ahead of its reset): the receiver waits for the base.
inline constexpr uint32_t kRowBasePending = 4;
// Rows per TableBatch message.
inline constexpr size_t kRowsPerBatch = 256;

// The columns of a table's rows: every element of every stored datum but the
// last-writer-wins ones, as datum << 8 | element.
std::vector<uint32_t> columns_of(const TableDef& def);

// Builds the batches of one table.
class BatchWriter {
 public:
  BatchWriter(Table& t, proto::TableBatch::Kind kind, int64_t wall_ms);
  // The pending change of `key` (queued by the table's journal): false when
  // there is none any more (the entry went, or was sent already).
  bool add_pending(std::string_view key, const Now& now);
  // A removal by a command, with its epoch (Table::bury).
  void add_erased(std::string_view key, const Epoch& e = {});
  // The entry `a` holds, as totals (`a` is under its shard's lock).
  void add_absolute(const Table::Access& a, const Now& now);
  size_t rows() const { return static_cast<size_t>(batch_.rows_size()); }
  bool full() const { return rows() >= kRowsPerBatch; }
  // The batch so far; the writer starts a new one.
  proto::TableBatch take();

 private:
  void add_lww(const EntryData& d, proto::Row* row) const;
  void add_epoch(const EntryData& d, proto::Row* row) const;
  // The entry's totals without this process's unsent part, column by column;
  // with `current`, the current values (conn_cur) as these, in order.
  void add_totals(const EntryData& d, proto::Row* row,
                  const std::vector<int64_t>* current = nullptr) const;
  Table& t_;
  std::vector<uint32_t> columns_;
  proto::TableBatch batch_;
};

struct ApplyResult {
  size_t rows = 0;     // applied
  size_t skipped = 0;  // no room (a table full of tracked entries) or unreadable
};
// Applies a batch that another process sent (DELTA, SNAPSHOT or REFILL) to t,
// without telling t's journal.
ApplyResult apply(Table& t, const proto::TableBatch& b, const Now& now);

// The entries of shards [from, to) of t's Table::kShards as absolute
// batches, to `out` (a walk in steps).
template <typename Out>
void write_shards(Table& t, unsigned from, unsigned to, proto::TableBatch::Kind kind,
                  const Now& now, Out&& out) {
  BatchWriter w(t, kind, now.wall_ms);
  t.walk_shards(from, to, now, [&](Table::Access& a) {
    w.add_absolute(a, now);
    if (w.full()) out(w.take());
    return true;
  });
  if (w.rows()) out(w.take());
}

// What one source (a worker process, another node) added to conn_cur and
// has not taken back yet, per table and key, from its DELTA rows: what is
// taken back when the source is gone without its last updates, since the
// connections it counted went with it.
class ConnCurLedger {
 public:
  void count(const proto::TableBatch& b);
  // Another ledger's contributions added to this one's.
  void add(const ConnCurLedger& o);
  bool empty() const { return keys() == 0; }
  size_t keys() const;
  // DELTA batches, one per table, that add the contributions (sign 1) or
  // take them back (sign -1).
  std::vector<proto::TableBatch> batches(int sign, int64_t wall_ms) const;
  void clear() { by_table_.clear(); }
  // Removes the contributions above 0 and returns them (one below 0 is
  // connections counted before this ledger began that ended since: nothing
  // to take back).
  ConnCurLedger take_positive();

 private:
  void add_to(const std::string& table, const std::string& key, int64_t n);
  std::map<std::string, std::unordered_map<std::string, int64_t>> by_table_;
};

// Every entry of t as absolute batches, to `out` (the agent's snapshots and
// state file; a worker's refill).
template <typename Out>
void write_all(Table& t, proto::TableBatch::Kind kind, const Now& now, Out&& out) {
  write_shards(t, 0, Table::kShards, kind, now, out);
}

}  // namespace weir::stick::sync
