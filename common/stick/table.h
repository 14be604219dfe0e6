#pragma once
// A stick table: entries found by a key (a client address, an API key, a
// session id...) that hold the counters, rates and tags of `store:`. Rules
// track entries (worker/stick/), fetches read them, the runtime API lists and
// edits them (doc/stick-tables.md).
//
// A table is shared by every thread of a worker without a global lock: it is
// cut into shards by the key's hash, each with its own lock, index and
// least-recently-used list. An entry that a connection tracks leaves the LRU
// list, so it is neither expired nor evicted until its last tracker lets go.
// Expiry follows the LRU order (every refresh moves an entry to the front and
// sets its expiry to now + expire), so purging walks the lists from their old
// ends. When the table is full, the least recently used untracked entry of the
// whole table makes room (the oldest of the shards' old ends).
//
// The entry layout carries what the peers agent needs (ARCHITECTURE.md,
// "Cluster semantics", and common/stick/sync.h): a counter's local part is
// what this process counted and has not sent yet, its `others` part the rest
// of the value (what this process sent, and what the agent brought from the
// other processes); a rate counts every process's events and knows how many
// of them are this process's unsent ones; last-writer-wins data (server_key,
// gpt) carry a hybrid-logical-clock stamp with the writer's node. A table
// with a Journal tells it which entries changed, once until they are sent.

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/stick/datum.h"

namespace weir::stick {

enum class KeyType : uint8_t { kIp, kIpv6, kInteger, kString, kBinary };
std::string_view key_type_name(KeyType t);

// `stick_tables: {NAME: {...}}`, resolved.
struct TableDef {
  std::string name;
  KeyType type = KeyType::kIp;
  uint32_t key_size = 32;     // string / binary: the longest key kept (longer keys are cut)
  uint64_t size = 0;          // the most entries
  int64_t expire_ms = 0;      // an entry nobody refreshed for this long goes; 0: never
  std::vector<Stored> store;  // one item per datum, in the order written
  bool sync = false;          // shared with the other nodes of the cluster (peers:)
};

// Time as tables see it: a monotonic clock for expiry and the LRU order, and
// the wall clock for rate periods (so that the nodes of a cluster cut their
// periods at the same instants). clock_now() reads the coarse clocks (to a
// tick of a few milliseconds).
struct Now {
  int64_t mono_ms = 0;
  int64_t wall_ms = 0;
};
Now clock_now();

// A counter: what this process counted and has not sent to the peers agent
// yet, and the rest; their sum is the value.
struct Counter {
  int64_t local = 0;
  int64_t others = 0;
  // Wrapping, never undefined, whatever a message from another process held.
  int64_t value() const { return wrapping_add(local, others); }
  static int64_t wrapping_add(int64_t a, int64_t b) {
    return static_cast<int64_t>(static_cast<uint64_t>(a) + static_cast<uint64_t>(b));
  }
  static int64_t wrapping_neg(int64_t a) {
    return static_cast<int64_t>(0 - static_cast<uint64_t>(a));
  }
};

// Events per period, HAProxy's two-period estimate: the count of the current
// period plus the previous period's weighted by the share of the period still
// to run. Periods start at multiples of the period on the wall clock, so that
// every process (and node) cuts them at the same instants and adds its events
// to the same period.
struct Rate {
  uint32_t cur = 0;
  uint32_t prev = 0;
  uint32_t period_no = 0;  // wall_ms / period of `cur` (the low 32 bits)
  uint32_t unsent = 0;     // this process's events not sent to the peers agent yet
  void add(uint64_t n, int64_t wall_ms, int64_t period_ms);
  // n events of the period that holds wall_ms, counted elsewhere: added to
  // that period when it is the current or the previous one.
  void add_at(uint64_t n, int64_t wall_ms, int64_t period_ms);
  // Moves cur and prev to the period of wall_ms (as time passing would).
  void roll(int64_t wall_ms, int64_t period_ms);
  uint64_t value(int64_t wall_ms, int64_t period_ms) const;
  void clear() { *this = Rate{}; }
};

// The last write of an entry's last-writer-wins data.
struct Stamp {
  uint64_t hlc = 0;   // hybrid logical clock: wall ms << 16 | a counter
  uint32_t node = 0;  // the writer: node_id() of its node's name (0 before a cluster is set)
};
// A node's number in stamps: a hash of its name (never 0), the same on every node.
uint32_t node_id(std::string_view name);
// This process's node (peers.local), which its writes carry; 0 without a cluster.
void set_local_node(uint32_t id);
uint32_t local_node();
// A fresh hybrid-logical-clock value, after every one this process gave or saw.
uint64_t hlc_now(int64_t wall_ms);
// A stamp another process gave: later fresh values come after it.
void hlc_observe(uint64_t hlc);

// The reset epoch of an entry's summed data (counters, current values,
// rates): a set or clear of one of them starts a new epoch, named by when it
// was made and by whom, and the entry's next update carries its totals as
// that epoch's base. Updates travel with the epoch they were counted in: one
// of an older epoch than the entry's is dropped, one of a newer epoch
// restarts the entry (sync.cpp). {0, 0}: never reset. Ordered by time, then
// writer, so every process picks the same winner of two resets made at once.
struct Epoch {
  uint64_t hlc = 0;
  uint32_t writer = 0;  // local_writer() of the process that reset
  bool none() const { return hlc == 0 && writer == 0; }
  friend auto operator<=>(const Epoch&, const Epoch&) = default;
};
// This process's number in epochs: random, so that two processes of one
// node that reset an entry within the same millisecond still differ.
uint32_t local_writer();

// Server names as server_key holds them: an id per name, for the process's life.
uint32_t name_id(std::string_view name);  // 0 for ""
std::string name_of(uint32_t id);

// Where each stored datum lives in an entry's data block.
struct Layout {
  struct Slot {
    uint16_t offset = 0;
    uint16_t count = 0;  // 0: not stored
    int64_t period_ms = 0;
  };
  Slot slot[kDatumCount];
  uint16_t stamp_offset = 0;  // has_stamp
  bool has_stamp = false;
  uint16_t size = 0;  // bytes of the data block
  static Layout of(const std::vector<Stored>& store);
};

struct Entry;
class Table;
class EntryPool;

// One entry's data (valid while its Access holds the shard's lock).
class EntryData {
 public:
  EntryData(Entry* e, const Layout* l, Table* t = nullptr) : e_(e), l_(l), t_(t) {}
  // What the peers link keeps per entry (sync.cpp): kQueued, the entry waits in
  // the journal; kAbsolute, a set or clear happened since, so its next update
  // carries totals rather than what was added; kEpoch, it has a reset epoch
  // (kept beside the entry, by its shard); kAwaitBase, an update of a newer
  // epoch restarted it before that epoch's base came.
  static constexpr uint8_t kQueued = 1, kChanged = 2, kAbsolute = 4, kEpoch = 8, kAwaitBase = 16;
  uint8_t flags() const;
  void set_flags(uint8_t f) const;
  bool stores(Datum d) const { return l_->slot[static_cast<int>(d)].count > 0; }
  uint32_t count(Datum d) const { return l_->slot[static_cast<int>(d)].count; }
  int64_t period(Datum d) const { return l_->slot[static_cast<int>(d)].period_ms; }
  // null when the datum (or its element i) is not stored.
  Counter* counter(Datum d, uint32_t i = 0) const { return at<Counter>(d, i); }
  Rate* rate(Datum d, uint32_t i = 0) const { return at<Rate>(d, i); }
  uint32_t* tag(uint32_t i) const { return at<uint32_t>(Datum::kGpt, i); }
  uint32_t* server_key() const { return at<uint32_t>(Datum::kServerKey, 0); }
  Stamp* stamp() const;
  // The datum's value as fetches and `show table` give it: counters and
  // current values, rates over their period, tags, a server's name id.
  std::optional<int64_t> value(Datum d, uint32_t i, const Now& now) const;
  // Counts n events: a counter grows, a rate counts them in its period.
  void add(Datum d, int64_t n, const Now& now, uint32_t i = 0) const;
  // Sets a datum (`set table`): counters and current values take v, rates
  // restart with v events, tags and server keys take v.
  void set(Datum d, uint32_t i, int64_t v, const Now& now) const;
  void clear(Datum d, uint32_t i) const;
  // The reset epoch of the entry's summed data ({} when never reset); only an
  // entry reached through a Table::Access has one.
  Epoch epoch() const;
  void set_epoch(const Epoch& e) const;
  // The number of connections tracking the entry, and its key's bytes.
  uint32_t trackers() const;
  std::string_view key() const;

 private:
  template <typename T>
  T* at(Datum d, uint32_t i) const;
  // A set or clear of d changed the entry (kAbsolute and a new epoch for
  // counters and rates).
  void mark_set(Datum d, int64_t wall_ms) const;
  Entry* e_;
  const Layout* l_;
  Table* t_;
};

// Where a table reports what changed in this process (the peers link,
// worker/peers/): called under the entry's shard lock, so quickly.
class Journal {
 public:
  // The entry of `key` changed for the first time since it was last sent.
  virtual void changed(Table& t, std::string_view key) = 0;
  // It changed again before it was sent: one update folded into another.
  virtual void coalesced() = 0;
  // A command removed it (not expiry or eviction, which every process does
  // itself); `e` is the removal's reset epoch (Table::bury).
  virtual void erased(Table& t, std::string_view key, const Epoch& e) = 0;
  virtual ~Journal() = default;
};

class Table {
 public:
  explicit Table(TableDef def);
  ~Table();
  Table(const Table&) = delete;
  Table& operator=(const Table&) = delete;

  const TableDef& def() const { return def_; }
  // About `entries` entries are coming (a full resync, a snapshot): each
  // shard's index is made that large at once, on huge pages, rather than
  // doubled all the way as they come. Nothing for a table that small.
  void presize(size_t entries);
  const std::string& name() const { return def_.name; }
  const Layout& layout() const { return layout_; }
  bool stores(Datum d) const { return layout_.slot[static_cast<int>(d)].count > 0; }
  // Bytes one entry takes in memory with a key of key_len bytes (its block: a
  // multiple of 16).
  size_t entry_bytes(size_t key_len) const;

  // An entry under its shard's lock, released with the Access (which first
  // tells the table's journal when the entry changed).
  class Access {
   public:
    Access() = default;
    Access(Access&& o) noexcept;
    Access& operator=(Access&& o) noexcept;
    ~Access() { finish(); }
    explicit operator bool() const { return e_ != nullptr; }
    EntryData data() const { return EntryData(e_, &table_->layout_, table_); }
    Entry* entry() const { return e_; }

   private:
    friend class Table;
    void finish() {
      if (e_ && (*flags_ & EntryData::kChanged)) table_->note_changed(e_);
      e_ = nullptr;
    }
    std::unique_lock<std::mutex> lock_;
    Entry* e_ = nullptr;
    uint8_t* flags_ = nullptr;  // e_'s (EntryData::kChanged...)
    Table* table_ = nullptr;
  };

  // Changes made through EntryData reach `j` (set before any thread uses the
  // table; null: nobody listens).
  void set_journal(Journal* j) { journal_ = j; }

  // Tracking: finds or makes the entry of `key` and counts one more tracker,
  // and keeps its shard locked for the caller. A tracked entry is neither
  // expired nor evicted. Empty: the table is full of tracked entries (counted
  // in refused()).
  Access track(std::string_view key, const Now& now);
  // The tracker lets go of the entry it opened: the entry is refreshed and may
  // expire again once nobody tracks it; the lock goes with the Access.
  void untrack(Access&& a, const Now& now);
  // A tracked entry, refreshed.
  Access open(Entry* tracked, const Now& now);
  // A tracked entry, to read (not refreshed).
  Access peek(Entry* tracked);
  // Asks the CPU for the memory where the entry of key is looked up, ahead of
  // a find or find_or_make of it (as a batch of rows is applied).
  void prefetch(std::string_view key) const;
  // The entry of key when it exists and has not expired (not refreshed).
  Access find(std::string_view key, const Now& now);
  // The entry of key, made when missing (evicting as track does), refreshed.
  // `touched_mono_ms`: refreshed as of then instead (an update that another
  // process or node made earlier): a new entry takes it, an existing one only
  // when it is later than its own last refresh.
  Access find_or_make(std::string_view key, const Now& now, int64_t touched_mono_ms = INT64_MIN);
  // Removes the entry of key unless it is tracked; true when one went. `tell`:
  // the journal hears of it (false when the removal came from the agent).
  // `unless_touched_after`: a delete made then (monotonic ms) leaves an entry
  // refreshed since.
  bool erase(std::string_view key, bool tell = true, int64_t unless_touched_after = INT64_MAX);
  // Graves: the reset epochs of keys removed lately by a command, here or in
  // another process (sync.h). An entry made again for such a key starts in
  // that epoch, so that an update counted before the removal and still on its
  // way is not counted in it. A grave is kept kGraveMs, and a shard keeps at
  // most kGravesPerShard (the oldest go first). A removal this process makes
  // buries its key when the table has a journal (someone else must hear of it).
  void bury(std::string_view key, const Epoch& e, const Now& now);
  // The key's grave ({} when none).
  Epoch grave_of(std::string_view key, const Now& now);
  bool has_graves() const { return graves_.load(std::memory_order_relaxed) > 0; }
  static constexpr int64_t kGraveMs = 60000;
  static constexpr size_t kGravesPerShard = 2048;
  // Every entry, shard by shard (each shard's lock held while it is walked):
  // fn(Access&) returns false to remove the entry (tracked entries stay).
  // Returns the number removed.
  template <typename Fn>
  size_t walk(const Now& now, Fn&& fn);
  // The same over shards [from, to) of kShards: a long walk in steps.
  template <typename Fn>
  size_t walk_shards(unsigned from, unsigned to, const Now& now, Fn&& fn);
  // Removes the entries that have expired; returns how many.
  size_t purge_expired(const Now& now);

  uint64_t used() const { return used_.load(std::memory_order_relaxed); }
  uint64_t size() const { return def_.size; }
  uint64_t evicted() const { return evicted_.load(std::memory_order_relaxed); }
  uint64_t expired() const { return expired_.load(std::memory_order_relaxed); }
  uint64_t refused() const { return refused_.load(std::memory_order_relaxed); }
  // Milliseconds until the entry expires (-1: never); for `show table`.
  int64_t expires_in(const Entry* e, const Now& now) const;
  // Milliseconds since e was last refreshed (0 while it is tracked).
  int64_t idle_for(const Entry* e, const Now& now) const;

  static constexpr unsigned kShardBits = 5;
  static constexpr unsigned kShards = 1u << kShardBits;

 private:
  friend class EntryData;
  struct Shard;

  Shard& shard_of(uint64_t hash) const;
  Entry* lookup_locked(Shard& s, std::string_view key, uint64_t hash) const;
  bool expired_at(const Entry* e, const Now& now) const;
  Entry* make_locked(Shard& s, std::string_view key, uint64_t hash, const Now& now);
  void bury_locked(Shard& s, std::string_view key, const Epoch& e, int64_t mono_ms);
  Epoch grave_locked(Shard& s, std::string_view key, int64_t mono_ms);
  // A new (or revived) entry of a key removed lately starts in its grave's epoch.
  void adopt_grave_locked(Shard& s, Entry* e, std::string_view key, int64_t mono_ms);
  // Forgets graves older than kGraveMs, and the oldest beyond `room`.
  void expire_graves_locked(Shard& s, int64_t mono_ms, size_t room);
  // A removal by a command here: its epoch, buried and told to the journal.
  void removed_here(Shard& s, std::string_view key, int64_t mono_ms);
  void free_locked(Shard& s, Entry* e);
  // e's memory goes back to the pool (e is out of the index and the LRU list).
  void release(Shard& s, Entry* e);
  // Frees the least recently used untracked entry of the table; false when
  // every entry is tracked.
  bool evict_one();
  // Room for one more entry (used_ counts it); false when the table is full
  // of tracked entries.
  bool reserve();
  Entry* get_or_make(std::string_view key, const Now& now, std::unique_lock<std::mutex>* lock,
                     bool track, int64_t touched_mono_ms = INT64_MIN);
  size_t walk_impl(const Now& now, bool (*fn)(void*, Access&), void* arg, unsigned from,
                   unsigned to);
  // An Access holding `lock` on e (empty when e is null).
  Access opened(std::unique_lock<std::mutex> lock, Entry* e);
  // An Access is released: tells the journal when its entry changed.
  void note_changed(Entry* e);
  Journal* journal_ = nullptr;

  TableDef def_;
  Layout layout_;
  std::unique_ptr<EntryPool> pool_;
  size_t pool_largest_ = 0;  // the bytes of an entry with the longest key
  std::unique_ptr<Shard[]> shards_;
  std::mutex presize_mu_;
  std::vector<std::pair<void*, size_t>> presized_;  // presize()'s blocks, unmapped with the table
  std::atomic<uint64_t> used_{0};
  std::atomic<uint64_t> evicted_{0};
  std::atomic<uint64_t> expired_{0};
  std::atomic<uint64_t> refused_{0};
  std::atomic<uint64_t> graves_{0};
};

template <typename Fn>
size_t Table::walk(const Now& now, Fn&& fn) {
  return walk_shards(0, kShards, now, std::forward<Fn>(fn));
}

template <typename Fn>
size_t Table::walk_shards(unsigned from, unsigned to, const Now& now, Fn&& fn) {
  return walk_impl(
      now, [](void* f, Access& a) { return (*static_cast<Fn*>(f))(a); }, static_cast<void*>(&fn),
      from, to);
}

// Keys as a table holds them: ip 4 bytes, ipv6 16, integer 8 (big-endian),
// string and binary up to key_size bytes (longer ones cut). Each returns false
// when the value has no key of the table's type (an IPv6 address for an ip
// table, text that is no number for an integer table).
bool key_from_ip(const TableDef& t, const uint8_t ip16[16], bool v4, std::string* out);
bool key_from_int(const TableDef& t, int64_t v, std::string* out);
// Text from a sample: an address for ip / ipv6, a number for integer, the
// bytes themselves for string and binary (empty text is no key).
bool key_from_text(const TableDef& t, std::string_view text, std::string* out);
// Text an operator types (`show table NAME key K`): as key_from_text, except
// that binary keys are written in hexadecimal, as `show table` prints them.
bool key_from_command(const TableDef& t, std::string_view text, std::string* out);
// The key as `show table` prints it.
std::string key_text(const TableDef& t, std::string_view key);

}  // namespace weir::stick
