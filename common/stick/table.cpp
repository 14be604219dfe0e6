// The stick-table store (table.h): shards, entries, tracking, expiry, eviction,
// rates and keys.

#include "common/stick/table.h"

#include <arpa/inet.h>
#include <sys/mman.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <deque>
#include <functional>
#include <limits>
#include <new>
#include <random>
#include <thread>
#include <unordered_map>
#include <utility>

#include "common/base/hash.h"
#include "common/base/hex.h"

namespace weir::stick {

// An entry: its links, then the data block (Layout::size bytes), then its key.
struct Link {
  Link* prev = nullptr;
  Link* next = nullptr;
};
struct Entry {
  Link lru;             // first: a Link* of an entry is the entry (not linked while tracked)
  int64_t touched = 0;  // monotonic ms of the last refresh
  uint32_t hash = 0;    // the low bits of the key's hash
  uint32_t trackers = 0;
  uint16_t key_len = 0;
  uint8_t shard = 0;
  uint8_t flags = 0;  // EntryData::kQueued...
  unsigned char* data() { return reinterpret_cast<unsigned char*>(this) + kDataOffset; }
  static const size_t kDataOffset;
};
const size_t Entry::kDataOffset = (sizeof(Entry) + 7) & ~size_t{7};

// An index's array of slots, zeroed: from the heap, or a part of the table's
// presized block (Table::presize), which the table owns.
class Slots {
 public:
  Slots() = default;
  ~Slots() { free_owned(); }
  Slots(const Slots&) = delete;
  Slots& operator=(const Slots&) = delete;

  size_t size() const { return n_; }
  bool empty() const { return n_ == 0; }
  uint64_t* data() { return p_; }
  const uint64_t* data() const { return p_; }
  uint64_t& operator[](size_t i) { return p_[i]; }
  uint64_t operator[](size_t i) const { return p_[i]; }
  const uint64_t* begin() const { return p_; }
  const uint64_t* end() const { return p_ + n_; }
  bool borrowed() const { return p_ && !owned_; }
  // n zeroed slots from the heap (calloc: fresh pages are not written twice).
  void allocate(size_t n) {
    free_owned();
    p_ = static_cast<uint64_t*>(std::calloc(n, sizeof(uint64_t)));
    if (!p_) throw std::bad_alloc();
    n_ = n;
    owned_ = true;
  }
  // n zeroed slots that someone else owns.
  void borrow(uint64_t* p, size_t n) {
    free_owned();
    p_ = p;
    n_ = n;
    owned_ = false;
  }
  void swap(Slots& o) {
    std::swap(p_, o.p_);
    std::swap(n_, o.n_);
    std::swap(owned_, o.owned_);
  }

 private:
  void free_owned() {
    if (owned_) std::free(p_);
    p_ = nullptr;
    n_ = 0;
    owned_ = false;
  }
  uint64_t* p_ = nullptr;
  size_t n_ = 0;
  bool owned_ = false;
};

// A shard's entries by the low bits of their hash: open addressing with linear
// probing in an array of 8-byte slots. A slot packs an entry's address (16-byte
// aligned and below 2^47, so 43 bits) with the low 21 bits of its hash: a
// lookup reads the key of an entry only when those bits match its own (a
// missing key costs a cache line of slots, not a walk through entries), a
// walk reads the slots in order and fetches the entries ahead, and the array
// grows without reading the entries while it has at most 2^21 slots. A slot
// is 0 when empty. Deletion shifts the slots that follow back, so there are
// no tombstones.
struct Index {
  static constexpr unsigned kTagBits = 21;
  static constexpr uint64_t kTagMask = (uint64_t{1} << kTagBits) - 1;
  static constexpr unsigned kAddrBits = 64 - kTagBits;
  static bool packable(const Entry* e) {
    const auto a = reinterpret_cast<uintptr_t>(e);
    return (a & 15) == 0 && (a >> (kAddrBits + 4)) == 0;
  }
  static uint64_t pack(Entry* e) {
    return (uint64_t{e->hash} & kTagMask) << kAddrBits | reinterpret_cast<uintptr_t>(e) >> 4;
  }
  static Entry* entry(uint64_t v) {
    return reinterpret_cast<Entry*>((v & ((uint64_t{1} << kAddrBits) - 1)) << 4);
  }
  static uint32_t tag(uint64_t v) { return static_cast<uint32_t>(v >> kAddrBits); }

  Slots slots;  // a power of two, or empty before the first entry
  size_t count = 0;
  // The array and its mask for Table::prefetch, read without the shard's lock
  // (a stale value only makes a useless prefetch).
  std::atomic<const uint64_t*> hint{nullptr};
  std::atomic<size_t> hint_mask{0};

  size_t mask() const { return slots.size() - 1; }
  // Where the slot's entry would be with no collision.
  size_t home(uint64_t v) const {
    return slots.size() <= (size_t{1} << kTagBits) ? tag(v) & mask() : entry(v)->hash & mask();
  }
  void put(uint64_t v) {
    size_t i = home(v);
    while (slots[i]) i = (i + 1) & mask();
    slots[i] = v;
  }
  // Room for one more entry: the array doubles past three quarters full.
  void reserve_one() {
    if (slots.empty()) {
      Slots first;
      first.allocate(8);
      move_to(first);
    } else if ((count + 1) * 4 > slots.size() * 3) {
      Slots next;
      next.allocate(slots.size() * 2);
      move_to(next);
    }
  }
  // The entries into `next` (larger, zeroed), which becomes the array.
  void move_to(Slots& next) {
    next.swap(slots);
    for (uint64_t v : next) {
      if (v) put(v);
    }
    if (next.borrowed()) {
      // Its part of a presized block (page-aligned) goes back to the system.
      madvise(next.data(), next.size() * sizeof(uint64_t), MADV_DONTNEED);
    }
    hint.store(slots.data(), std::memory_order_relaxed);
    hint_mask.store(mask(), std::memory_order_relaxed);
  }
  void insert(Entry* e) {
    reserve_one();
    put(pack(e));
    ++count;
  }
  void remove(Entry* e) {
    size_t hole = e->hash & mask();
    while (entry(slots[hole]) != e) hole = (hole + 1) & mask();
    // The slots after it move back when the hole lies between their home and them.
    for (size_t j = (hole + 1) & mask(); slots[j]; j = (j + 1) & mask()) {
      if (((j - home(slots[j])) & mask()) >= ((j - hole) & mask())) {
        slots[hole] = slots[j];
        hole = j;
      }
    }
    slots[hole] = 0;
    --count;
  }
};

// Memory for a table's entries. Entries are many, small and read in bursts
// (a full resync reads or writes a million of them): taken one by one from
// malloc they would be spread over 4 KiB pages, and a walk would pay a TLB
// miss and a page fault for almost every one. The pool takes chunks from the
// system with mmap: the first of 1 MiB, the next ones of 2 MiB, aligned and
// given transparent huge pages (MADV_HUGEPAGE), so that a table that grows
// large sits on few pages while a small one costs no more than the pages it
// touches. Each shard cuts blocks (multiples of 16 bytes) from a run of a
// chunk of its own, under its lock; a freed entry's block goes to its shard's
// free list of its size and is used again there. Chunks go back to the system
// with the table. Under AddressSanitizer, entries come from malloc so that
// their misuse is still caught.
#if defined(__SANITIZE_ADDRESS__)
#define WEIR_STICK_MALLOC_ENTRIES 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define WEIR_STICK_MALLOC_ENTRIES 1
#endif
#endif

// `bytes` (a multiple of 2 MiB) of fresh zeroed memory, 2 MiB aligned and
// advised to transparent huge pages (without THP the pages stay small);
// nullptr when the system refuses. Freed with munmap(p, bytes).
static void* map_huge(size_t bytes) {
  constexpr size_t kHuge = size_t{2} << 20;
  const size_t mapped = bytes + kHuge;  // one more huge page's worth; the edges go back
  void* p = mmap(nullptr, mapped, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return nullptr;
  const auto at = reinterpret_cast<uintptr_t>(p);
  const uintptr_t aligned = (at + kHuge - 1) & ~(uintptr_t{kHuge} - 1);
  if (aligned > at) munmap(p, aligned - at);
  const uintptr_t tail = aligned + bytes;
  if (at + mapped > tail) munmap(reinterpret_cast<void*>(tail), at + mapped - tail);
  auto* base = reinterpret_cast<void*>(aligned);
  madvise(base, bytes, MADV_HUGEPAGE);
  return base;
}

class EntryPool {
 public:
  struct Run {
    char* cur = nullptr;
    char* end = nullptr;
    std::vector<void*> free_heads;  // by size / 16: a list through the blocks' first word
  };
#ifdef WEIR_STICK_MALLOC_ENTRIES
  static constexpr bool kMalloc = true;
#else
  static constexpr bool kMalloc = false;
#endif
  explicit EntryPool(size_t largest) : classes_(largest / 16 + 1) {}
  ~EntryPool() {
    if (filler_.joinable()) {
      {
        std::lock_guard<std::mutex> g(mu_);
        stop_ = true;
      }
      moved_.notify_one();
      filler_.join();
    }
    for (const auto& [base, bytes] : chunks_) munmap(base, bytes);
  }
  EntryPool(const EntryPool&) = delete;
  EntryPool& operator=(const EntryPool&) = delete;

  // bytes: a multiple of 16, at most the pool's largest.
  void* take(Run& r, size_t bytes) {
    if (bytes / 16 >= classes_) return nullptr;  // a key longer than the table's
#ifdef WEIR_STICK_MALLOC_ENTRIES
    (void)r;
    return std::aligned_alloc(16, bytes);
#else
    if (r.free_heads.empty()) r.free_heads.assign(classes_, nullptr);
    void*& head = r.free_heads[bytes / 16];
    if (head) {
      void* b = head;
      head = *static_cast<void**>(b);
      return b;
    }
    if (static_cast<size_t>(r.end - r.cur) < bytes && !refill(r, bytes)) return nullptr;
    void* b = r.cur;
    r.cur += bytes;
    return b;
#endif
  }
  void give_back(Run& r, void* b, size_t bytes) {
#ifdef WEIR_STICK_MALLOC_ENTRIES
    (void)r;
    (void)bytes;
    std::free(b);
#else
    void*& head = r.free_heads[bytes / 16];
    *static_cast<void**>(b) = head;
    head = b;
#endif
  }

  // About `bytes` more of entries are coming at once (a full resync, or a
  // snapshot for a new worker): the next chunk is one region that large, and
  // a thread of the pool's own makes its pages present a few MiB ahead of the
  // entries written into it. The kernel clears every fresh page, which on a
  // virtual machine costs as much as writing the entries (0.4-0.6 GB/s for
  // memory the host has not backed yet): done ahead, on a core the writer does
  // not use, it leaves the writer's path. Only for big arrivals, and never
  // more than kFillAhead beyond what is used; without MADV_POPULATE_WRITE
  // (Linux before 5.14) the pages are made as the entries come, as before.
  void expect(size_t bytes) {
    if (kMalloc || bytes < kExpectAtLeast) return;
    std::lock_guard<std::mutex> g(mu_);
    if (reserve_state_ != Reserve::kNone) return;  // once per pool
    bytes = (bytes + kHugeChunk - 1) & ~(kHugeChunk - 1);
    auto* base = static_cast<char*>(map_huge(bytes));
    if (!base) return;
    chunks_.emplace_back(base, bytes);
    reserve_ = base;
    reserve_end_ = base + bytes;
    filled_ = base;
    reserve_state_ = Reserve::kWaiting;
    filler_ = std::thread([this] { fill(); });
  }

 private:
  static constexpr size_t kFirstChunk = size_t{1} << 20;
  static constexpr size_t kHugeChunk = size_t{2} << 20;
  static constexpr size_t kSmallRun = 4 << 10;  // a shard's run while the table is small
  static constexpr size_t kRun = 64 << 10;
  static constexpr size_t kExpectAtLeast = size_t{16} << 20;
  static constexpr size_t kFillAhead = size_t{4} << 20;

  // The filler thread: makes the reserve's pages present, a huge page at a
  // time, up to kFillAhead past where the writers are in it.
  void fill() {
#ifdef MADV_POPULATE_WRITE
    std::unique_lock<std::mutex> g(mu_);
    while (!stop_ && reserve_state_ != Reserve::kLeft && filled_ < reserve_end_) {
      char* from = reserve_state_ == Reserve::kInUse ? chunk_cur_ : reserve_;
      char* at = std::max(from, filled_);
      const size_t ahead = std::min(kFillAhead, static_cast<size_t>(reserve_end_ - from));
      if (at >= from + ahead) {
        moved_.wait(g);
        continue;
      }
      // To the next huge-page boundary (the reserve starts and ends on one).
      const size_t n = kHugeChunk - static_cast<size_t>(at - reserve_) % kHugeChunk;
      filled_ = at + n;
      g.unlock();
      const bool ok = madvise(at, n, MADV_POPULATE_WRITE) == 0 || errno == EINTR;
      g.lock();
      if (!ok) break;  // not supported here, or memory is short: the writers fault as before
    }
#endif
  }

  // A new run for r, of at least `bytes`.
  bool refill(Run& r, size_t bytes) {
    std::lock_guard<std::mutex> g(mu_);
    const bool small = chunks_.size() <= 1 && reserve_state_ == Reserve::kNone;
    const size_t want = std::max(small ? kSmallRun : kRun, bytes);
    if (static_cast<size_t>(chunk_end_ - chunk_cur_) < want && !new_chunk(want)) return false;
    r.cur = chunk_cur_;
    r.end = chunk_cur_ + want;
    chunk_cur_ += want;
    if (reserve_state_ == Reserve::kInUse) moved_.notify_one();
    return true;
  }
  bool new_chunk(size_t want) {
    if (reserve_state_ == Reserve::kInUse) {
      reserve_state_ = Reserve::kLeft;  // used up: the filler stops
      moved_.notify_one();
    }
    if (reserve_state_ == Reserve::kWaiting &&
        static_cast<size_t>(reserve_end_ - reserve_) >= want) {
      reserve_state_ = Reserve::kInUse;  // the region expect() made (already in chunks_)
      chunk_cur_ = reserve_;
      chunk_end_ = reserve_end_;
      return true;
    }
    if (chunks_.empty()) {
      const size_t bytes = std::max(kFirstChunk, want);
      void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      if (p == MAP_FAILED) return false;
      chunks_.emplace_back(static_cast<char*>(p), bytes);
      chunk_cur_ = static_cast<char*>(p);
      chunk_end_ = chunk_cur_ + bytes;
      return true;
    }
    const size_t bytes = std::max(kHugeChunk, (want + kHugeChunk - 1) & ~(kHugeChunk - 1));
    auto* base = static_cast<char*>(map_huge(bytes));
    if (!base) return false;
    chunks_.emplace_back(base, bytes);
    chunk_cur_ = base;
    chunk_end_ = base + bytes;
    return true;
  }

  const size_t classes_;
  std::mutex mu_;
  std::vector<std::pair<char*, size_t>> chunks_;
  char* chunk_cur_ = nullptr;
  char* chunk_end_ = nullptr;
  // expect()'s region, how far the filler has made it present, and the filler.
  char* reserve_ = nullptr;
  char* reserve_end_ = nullptr;
  char* filled_ = nullptr;
  enum class Reserve : uint8_t { kNone, kWaiting, kInUse, kLeft };
  Reserve reserve_state_ = Reserve::kNone;
  bool stop_ = false;
  std::condition_variable moved_;  // the writers took more of the chunk
  std::thread filler_;
};

struct Table::Shard {
  std::mutex mu;
  Index index;
  EntryPool::Run run;  // where its entries' memory comes from
  Link lru;            // sentinel: lru.next is the most recent, lru.prev the oldest
  // The epochs of the entries that were ever reset (EntryData::kEpoch): few,
  // so they live here rather than in every entry.
  std::unordered_map<const Entry*, Epoch> epochs;
  // Table::bury's graves, and their keys oldest first.
  struct Grave {
    Epoch epoch;
    int64_t mono_ms = 0;
  };
  struct KeyHash {
    using is_transparent = void;
    size_t operator()(std::string_view k) const { return std::hash<std::string_view>{}(k); }
  };
  std::unordered_map<std::string, Grave, KeyHash, std::equal_to<>> graves;
  std::deque<std::pair<int64_t, std::string>> grave_order;
  Shard() { lru.prev = lru.next = &lru; }
};

namespace {

void lru_unlink(Entry* e) {
  if (!e->lru.prev) return;
  e->lru.prev->next = e->lru.next;
  e->lru.next->prev = e->lru.prev;
  e->lru.prev = e->lru.next = nullptr;
}

void lru_push_front(Link& head, Entry* e) {
  e->lru.next = head.next;
  e->lru.prev = &head;
  head.next->prev = &e->lru;
  head.next = &e->lru;
}

Entry* as_entry(Link* l) {
  return reinterpret_cast<Entry*>(l);
}

// The shard takes the high bits of a key's hash, the bucket the low ones.
uint64_t hash_key(std::string_view key) {
  return hash_bytes(key);
}

uint32_t saturate32(uint64_t v) {
  return v > std::numeric_limits<uint32_t>::max() ? std::numeric_limits<uint32_t>::max()
                                                  : static_cast<uint32_t>(v);
}

struct Names {
  std::mutex mu;
  std::vector<std::string> list{std::string()};
  std::unordered_map<std::string, uint32_t> ids;
};
Names& names() {
  static Names* n = new Names;  // never destroyed: threads may still read it at exit
  return *n;
}

}  // namespace

std::string_view key_type_name(KeyType t) {
  switch (t) {
    case KeyType::kIp:
      return "ip";
    case KeyType::kIpv6:
      return "ipv6";
    case KeyType::kInteger:
      return "integer";
    case KeyType::kString:
      return "string";
    case KeyType::kBinary:
      return "binary";
  }
  return "?";
}

Now clock_now() {
  // The coarse clocks (a tick, a few milliseconds, of resolution) cost a
  // fraction of the precise ones, and a request reads the time several times.
  timespec m{}, w{};
  ::clock_gettime(CLOCK_MONOTONIC_COARSE, &m);
  ::clock_gettime(CLOCK_REALTIME_COARSE, &w);
  return {m.tv_sec * 1000LL + m.tv_nsec / 1000000, w.tv_sec * 1000LL + w.tv_nsec / 1000000};
}

// ---- rates, stamps, names

void Rate::roll(int64_t wall_ms, int64_t period_ms) {
  const auto k = static_cast<uint32_t>(wall_ms / period_ms);
  if (k == period_no) return;
  prev = k == period_no + 1 ? cur : 0;
  cur = 0;
  period_no = k;
}

void Rate::add(uint64_t n, int64_t wall_ms, int64_t period_ms) {
  roll(wall_ms, period_ms);
  // n is capped first: cur + n must not wrap around 64 bits.
  n = std::min<uint64_t>(n, std::numeric_limits<uint32_t>::max());
  cur = saturate32(cur + n);
  unsent = saturate32(unsent + n);
}

void Rate::add_at(uint64_t n, int64_t wall_ms, int64_t period_ms) {
  const auto k = static_cast<uint32_t>(wall_ms / period_ms);
  n = std::min<uint64_t>(n, std::numeric_limits<uint32_t>::max());
  if (k == period_no) {
    cur = saturate32(cur + n);
  } else if (k + 1 == period_no) {
    prev = saturate32(prev + n);
  } else if (static_cast<int32_t>(k - period_no) > 0) {
    // A period this process has not reached yet (clocks a little apart).
    roll(wall_ms, period_ms);
    cur = saturate32(cur + n);
  }
}

uint64_t Rate::value(int64_t wall_ms, int64_t period_ms) const {
  const auto k = static_cast<uint32_t>(wall_ms / period_ms);
  const int64_t remain = period_ms - wall_ms % period_ms;  // of the current period, 1..period
  uint64_t c = 0, p = 0;
  if (k == period_no) {
    c = cur;
    p = prev;
  } else if (k == period_no + 1) {
    p = cur;  // the period of `cur` ended: it is now the previous one
  }
  return c + p * static_cast<uint64_t>(remain) / static_cast<uint64_t>(period_ms);
}

namespace {
std::atomic<uint64_t> g_hlc_last{0};
}  // namespace

void hlc_observe(uint64_t hlc) {
  uint64_t seen = g_hlc_last.load(std::memory_order_relaxed);
  while (seen < hlc && !g_hlc_last.compare_exchange_weak(seen, hlc, std::memory_order_relaxed)) {
  }
}

namespace {
std::atomic<uint32_t> g_local_node{0};
}  // namespace

uint32_t node_id(std::string_view name) {
  uint32_t h = 2166136261u;  // FNV-1a
  for (const char c : name) h = (h ^ static_cast<uint8_t>(c)) * 16777619u;
  return h ? h : 1;
}

void set_local_node(uint32_t id) {
  g_local_node.store(id, std::memory_order_relaxed);
}

uint32_t local_node() {
  return g_local_node.load(std::memory_order_relaxed);
}

uint32_t local_writer() {
  static const uint32_t writer = [] {
    std::random_device rd;
    uint32_t w = 0;
    while (w == 0) w = rd();
    return w;
  }();
  return writer;
}

uint64_t hlc_now(int64_t wall_ms) {
  std::atomic<uint64_t>& last = g_hlc_last;
  const uint64_t physical = static_cast<uint64_t>(wall_ms) << 16;
  uint64_t seen = last.load(std::memory_order_relaxed);
  for (;;) {
    const uint64_t next = std::max(physical, seen + 1);
    if (last.compare_exchange_weak(seen, next, std::memory_order_relaxed)) return next;
  }
}

uint32_t name_id(std::string_view name) {
  if (name.empty()) return 0;
  Names& n = names();
  std::lock_guard<std::mutex> g(n.mu);
  auto it = n.ids.find(std::string(name));
  if (it != n.ids.end()) return it->second;
  const auto id = static_cast<uint32_t>(n.list.size());
  n.list.emplace_back(name);
  n.ids.emplace(std::string(name), id);
  return id;
}

std::string name_of(uint32_t id) {
  Names& n = names();
  std::lock_guard<std::mutex> g(n.mu);
  return id < n.list.size() ? n.list[id] : std::string();
}

// ---- layout and entry data

Layout Layout::of(const std::vector<Stored>& store) {
  Layout l;
  size_t off = 0;
  // Eight-byte data first (counters, the stamp), then four-byte data (rates,
  // tags, server keys): no padding inside the block.
  for (const Stored& s : store) {
    const Shape sh = info(s.datum).shape;
    if (sh != Shape::kCounter && sh != Shape::kCurrent) continue;
    auto& slot = l.slot[static_cast<int>(s.datum)];
    slot = {static_cast<uint16_t>(off), static_cast<uint16_t>(s.count), 0};
    off += sizeof(Counter) * s.count;
  }
  for (const Stored& s : store) {
    if (s.datum == Datum::kServerKey || s.datum == Datum::kGpt) l.has_stamp = true;
  }
  if (l.has_stamp) {
    l.stamp_offset = static_cast<uint16_t>(off);
    off += sizeof(Stamp);
  }
  for (const Stored& s : store) {
    const Shape sh = info(s.datum).shape;
    if (sh == Shape::kCounter || sh == Shape::kCurrent) continue;
    auto& slot = l.slot[static_cast<int>(s.datum)];
    slot = {static_cast<uint16_t>(off), static_cast<uint16_t>(s.count), s.period_ms};
    off += (sh == Shape::kRate ? sizeof(Rate) : sizeof(uint32_t)) * s.count;
  }
  l.size = static_cast<uint16_t>((off + 7) & ~size_t{7});
  return l;
}

template <typename T>
T* EntryData::at(Datum d, uint32_t i) const {
  const Layout::Slot& s = l_->slot[static_cast<int>(d)];
  if (i >= s.count) return nullptr;
  return reinterpret_cast<T*>(e_->data() + s.offset) + i;
}

// The accessors of table.h use these.
template Counter* EntryData::at<Counter>(Datum, uint32_t) const;
template Rate* EntryData::at<Rate>(Datum, uint32_t) const;
template uint32_t* EntryData::at<uint32_t>(Datum, uint32_t) const;

Stamp* EntryData::stamp() const {
  return l_->has_stamp ? reinterpret_cast<Stamp*>(e_->data() + l_->stamp_offset) : nullptr;
}

uint8_t EntryData::flags() const {
  return e_->flags;
}

void EntryData::set_flags(uint8_t f) const {
  e_->flags = f;
}

void EntryData::mark_set(Datum d, int64_t wall_ms) const {
  // (Every epoch this process heard of was observed: the new one is later.)
  // A counter or rate set travels as totals, the base of a new epoch; a tag or
  // server key with its stamp, whatever else the row carries, so that it does
  // not turn the counters' row into totals.
  e_->flags |= kChanged;
  const Shape shape = info(d).shape;
  // A current value (conn_cur) is set by what it takes to get there, which
  // travels as an update: connections open elsewhere still count.
  if (shape == Shape::kTag || shape == Shape::kServerKey || shape == Shape::kCurrent) return;
  e_->flags = static_cast<uint8_t>((e_->flags | kAbsolute) & ~kAwaitBase);
  set_epoch({hlc_now(wall_ms), local_writer()});
}

Epoch EntryData::epoch() const {
  if (!(e_->flags & kEpoch) || !t_) return {};
  const auto& epochs = t_->shards_[e_->shard].epochs;
  auto it = epochs.find(e_);
  return it == epochs.end() ? Epoch{} : it->second;
}

void EntryData::set_epoch(const Epoch& ep) const {
  if (!t_) return;
  auto& epochs = t_->shards_[e_->shard].epochs;
  if (ep.none()) {
    if (e_->flags & kEpoch) epochs.erase(e_);
    e_->flags &= static_cast<uint8_t>(~kEpoch);
    return;
  }
  epochs[e_] = ep;
  e_->flags |= kEpoch;
}

uint32_t EntryData::trackers() const {
  return e_->trackers;
}

std::string_view EntryData::key() const {
  return {reinterpret_cast<const char*>(e_->data() + l_->size), e_->key_len};
}

std::optional<int64_t> EntryData::value(Datum d, uint32_t i, const Now& now) const {
  switch (info(d).shape) {
    case Shape::kCounter:
    case Shape::kCurrent:
      if (const Counter* c = counter(d, i)) return c->value();
      return std::nullopt;
    case Shape::kRate:
      if (const Rate* r = rate(d, i)) {
        return static_cast<int64_t>(r->value(now.wall_ms, period(d)));
      }
      return std::nullopt;
    case Shape::kTag:
      if (const uint32_t* t = tag(i)) return *t;
      return std::nullopt;
    case Shape::kServerKey:
      if (const uint32_t* k = server_key()) return *k;
      return std::nullopt;
  }
  return std::nullopt;
}

void EntryData::add(Datum d, int64_t n, const Now& now, uint32_t i) const {
  switch (info(d).shape) {
    case Shape::kCounter:
      if (Counter* c = counter(d, i)) {
        c->local = Counter::wrapping_add(c->local, n);
        e_->flags |= kChanged;
      }
      return;
    case Shape::kCurrent:
      // Never below 0: `set table` may have lowered it under connections that
      // then end. (The local part alone may be: what was sent is in `others`.)
      if (Counter* c = counter(d, i)) {
        c->local = std::max(Counter::wrapping_neg(c->others), Counter::wrapping_add(c->local, n));
        e_->flags |= kChanged;
      }
      return;
    case Shape::kRate:
      if (Rate* r = rate(d, i)) {
        r->add(n > 0 ? static_cast<uint64_t>(n) : 0, now.wall_ms, period(d));
        e_->flags |= kChanged;
      }
      return;
    case Shape::kTag:
    case Shape::kServerKey:
      return;
  }
}

void EntryData::set(Datum d, uint32_t i, int64_t v, const Now& now) const {
  mark_set(d, now.wall_ms);
  switch (info(d).shape) {
    case Shape::kCounter:
      if (Counter* c = counter(d, i)) *c = {v, 0};
      return;
    case Shape::kCurrent:
      if (Counter* c = counter(d, i)) {
        c->local = Counter::wrapping_add(
            c->local, Counter::wrapping_add(v, Counter::wrapping_neg(c->value())));
      }
      return;
    case Shape::kRate:
      if (Rate* r = rate(d, i)) {
        r->clear();
        r->add(v > 0 ? static_cast<uint64_t>(v) : 0, now.wall_ms, period(d));
      }
      return;
    case Shape::kTag:
      if (uint32_t* t = tag(i)) *t = static_cast<uint32_t>(v);
      break;
    case Shape::kServerKey:
      if (uint32_t* k = server_key()) *k = static_cast<uint32_t>(v);
      break;
  }
  if (Stamp* s = stamp()) *s = {hlc_now(now.wall_ms), local_node()};
}

void EntryData::clear(Datum d, uint32_t i) const {
  mark_set(d, clock_now().wall_ms);
  switch (info(d).shape) {
    case Shape::kCounter:
      if (Counter* c = counter(d, i)) *c = {};
      return;
    case Shape::kCurrent:
      if (Counter* c = counter(d, i))
        c->local = Counter::wrapping_add(c->local, Counter::wrapping_neg(c->value()));
      return;
    case Shape::kRate:
      if (Rate* r = rate(d, i)) r->clear();
      return;
    case Shape::kTag:
      if (uint32_t* t = tag(i)) *t = 0;
      return;
    case Shape::kServerKey:
      if (uint32_t* k = server_key()) *k = 0;
      return;
  }
}

// ---- the table

Table::Table(TableDef def)
    : def_(std::move(def)), layout_(Layout::of(def_.store)), shards_(new Shard[kShards]) {
  size_t longest_key = def_.key_size;
  if (def_.type == KeyType::kIp) longest_key = 4;
  if (def_.type == KeyType::kIpv6) longest_key = 16;
  if (def_.type == KeyType::kInteger) longest_key = 8;
  pool_largest_ = entry_bytes(std::max<size_t>(longest_key, 1));
  pool_ = std::make_unique<EntryPool>(pool_largest_);
}

Table::~Table() {
  for (unsigned i = 0; i < kShards; ++i) {
    if (!EntryPool::kMalloc) break;  // the pool's chunks go with it
    for (uint64_t v : shards_[i].index.slots) {
      if (v) release(shards_[i], Index::entry(v));
    }
  }
  for (unsigned i = 0; i < kShards; ++i) shards_[i].index.slots.borrow(nullptr, 0);
  for (const auto& [base, bytes] : presized_) munmap(base, bytes);
}

void Table::presize(size_t entries) {
  entries = std::min<size_t>(entries, def_.size);
  // Their memory: sized for the longest key (what is not used stays virtual).
  const size_t have = used();
  if (entries > have) pool_->expect((entries - have) * pool_largest_);
  // Each shard's share with room for an uneven spread, at most three quarters
  // full: the size its index would double to while the entries come.
  const size_t share = entries / kShards + entries / kShards / 8 + 8;
  size_t n = 8;
  while (n * 3 < share * 4) n *= 2;
  const size_t bytes = n * sizeof(uint64_t) * kShards;
  if (bytes < (size_t{2} << 20)) return;  // small: doubling costs little
  std::lock_guard<std::mutex> g(presize_mu_);
  bool smaller = false;
  for (unsigned i = 0; i < kShards && !smaller; ++i) {
    std::lock_guard<std::mutex> gs(shards_[i].mu);
    smaller = shards_[i].index.slots.size() < n;
  }
  if (!smaller) return;
  // One block for every shard, on transparent huge pages: a million entries'
  // slots are 16 MiB, which in 4 KiB pages cost 4,096 page faults.
  auto* block = static_cast<uint64_t*>(map_huge(bytes));
  if (!block) return;  // the indexes double as they would have
  presized_.emplace_back(block, bytes);
  for (unsigned i = 0; i < kShards; ++i) {
    Shard& s = shards_[i];
    std::lock_guard<std::mutex> gs(s.mu);
    if (s.index.slots.size() >= n) continue;
    Slots next;
    next.borrow(block + size_t{i} * n, n);
    s.index.move_to(next);
  }
}

void Table::release(Shard& s, Entry* e) {
  pool_->give_back(s.run, e, entry_bytes(e->key_len));
}

size_t Table::entry_bytes(size_t key_len) const {
  return (Entry::kDataOffset + layout_.size + key_len + 15) & ~size_t{15};
}

Table::Shard& Table::shard_of(uint64_t hash) const {
  return shards_[hash >> (64 - kShardBits)];
}

bool Table::expired_at(const Entry* e, const Now& now) const {
  return def_.expire_ms > 0 && e->trackers == 0 && now.mono_ms - e->touched >= def_.expire_ms;
}

int64_t Table::expires_in(const Entry* e, const Now& now) const {
  if (def_.expire_ms <= 0) return -1;
  if (e->trackers > 0) return def_.expire_ms;
  return std::max<int64_t>(0, e->touched + def_.expire_ms - now.mono_ms);
}

int64_t Table::idle_for(const Entry* e, const Now& now) const {
  if (e->trackers > 0) return 0;
  return std::max<int64_t>(0, now.mono_ms - e->touched);
}

Entry* Table::lookup_locked(Shard& s, std::string_view key, uint64_t hash) const {
  const Index& ix = s.index;
  if (ix.slots.empty()) return nullptr;
  const auto h = static_cast<uint32_t>(hash);
  const auto want = static_cast<uint32_t>(h & Index::kTagMask);
  for (size_t i = h & ix.mask();; i = (i + 1) & ix.mask()) {
    const uint64_t v = ix.slots[i];
    if (!v) return nullptr;
    if (Index::tag(v) != want) continue;
    Entry* e = Index::entry(v);
    if (e->hash == h && e->key_len == key.size() &&
        std::memcmp(e->data() + layout_.size, key.data(), key.size()) == 0) {
      return e;
    }
  }
}

Entry* Table::make_locked(Shard& s, std::string_view key, uint64_t hash, const Now& now) {
  const size_t bytes = entry_bytes(key.size());
  void* mem = pool_->take(s.run, bytes);
  if (!mem) return nullptr;
  Entry* e = new (mem) Entry;
  if (!Index::packable(e)) {
    // An address the index cannot hold (above 2^47): refused as if memory ran out.
    pool_->give_back(s.run, mem, bytes);
    return nullptr;
  }
  std::memset(e->data(), 0, layout_.size);
  std::memcpy(e->data() + layout_.size, key.data(), key.size());
  e->key_len = static_cast<uint16_t>(key.size());
  e->hash = static_cast<uint32_t>(hash);
  e->shard = static_cast<uint8_t>(hash >> (64 - kShardBits));
  e->touched = now.mono_ms;
  s.index.insert(e);
  adopt_grave_locked(s, e, key, now.mono_ms);
  return e;
}

void Table::adopt_grave_locked(Shard& s, Entry* e, std::string_view key, int64_t mono_ms) {
  if (s.graves.empty()) return;
  const Epoch g = grave_locked(s, key, mono_ms);
  if (g.none()) return;
  s.epochs[e] = g;
  e->flags |= EntryData::kEpoch;
}

void Table::expire_graves_locked(Shard& s, int64_t mono_ms, size_t room) {
  while (!s.grave_order.empty() &&
         (s.grave_order.size() > room || mono_ms - s.grave_order.front().first >= kGraveMs)) {
    auto it = s.graves.find(s.grave_order.front().second);
    if (it != s.graves.end() && it->second.mono_ms == s.grave_order.front().first) {
      s.graves.erase(it);
      graves_.fetch_sub(1, std::memory_order_relaxed);
    }
    s.grave_order.pop_front();
  }
}

void Table::bury_locked(Shard& s, std::string_view key, const Epoch& e, int64_t mono_ms) {
  expire_graves_locked(s, mono_ms, kGravesPerShard - 1);
  auto [it, fresh] = s.graves.try_emplace(std::string(key));
  if (fresh) graves_.fetch_add(1, std::memory_order_relaxed);
  if (!fresh && it->second.epoch > e) return;
  it->second = {e, mono_ms};
  s.grave_order.emplace_back(mono_ms, std::string(key));
}

Epoch Table::grave_locked(Shard& s, std::string_view key, int64_t mono_ms) {
  auto it = s.graves.find(key);
  if (it == s.graves.end() || mono_ms - it->second.mono_ms >= kGraveMs) return {};
  return it->second.epoch;
}

void Table::bury(std::string_view key, const Epoch& e, const Now& now) {
  Shard& s = shard_of(hash_key(key));
  std::lock_guard<std::mutex> g(s.mu);
  bury_locked(s, key, e, now.mono_ms);
}

Epoch Table::grave_of(std::string_view key, const Now& now) {
  if (!has_graves()) return {};
  Shard& s = shard_of(hash_key(key));
  std::lock_guard<std::mutex> g(s.mu);
  return grave_locked(s, key, now.mono_ms);
}

void Table::removed_here(Shard& s, std::string_view key, int64_t mono_ms) {
  if (!journal_) return;
  const Epoch e{hlc_now(clock_now().wall_ms), local_writer()};
  bury_locked(s, key, e, mono_ms);
  journal_->erased(*this, key, e);
}

void Table::free_locked(Shard& s, Entry* e) {
  if (e->flags & EntryData::kEpoch) s.epochs.erase(e);
  s.index.remove(e);
  lru_unlink(e);
  release(s, e);
  used_.fetch_sub(1, std::memory_order_relaxed);
}

bool Table::evict_one() {
  // The oldest of the shards' old ends (tracked entries are not in the lists).
  for (int attempt = 0; attempt < 4; ++attempt) {
    int best = -1;
    int64_t oldest = std::numeric_limits<int64_t>::max();
    for (unsigned i = 0; i < kShards; ++i) {
      Shard& s = shards_[i];
      std::lock_guard<std::mutex> g(s.mu);
      if (s.lru.prev != &s.lru && as_entry(s.lru.prev)->touched < oldest) {
        oldest = as_entry(s.lru.prev)->touched;
        best = static_cast<int>(i);
      }
    }
    if (best < 0) return false;
    Shard& s = shards_[best];
    std::lock_guard<std::mutex> g(s.mu);
    if (s.lru.prev == &s.lru) continue;  // taken meanwhile: look again
    free_locked(s, as_entry(s.lru.prev));
    evicted_.fetch_add(1, std::memory_order_relaxed);
    return true;
  }
  return false;
}

bool Table::reserve() {
  if (used_.fetch_add(1, std::memory_order_relaxed) < def_.size) return true;
  // Full: the new entry takes the place of the least recently used one.
  if (evict_one()) return true;
  used_.fetch_sub(1, std::memory_order_relaxed);
  refused_.fetch_add(1, std::memory_order_relaxed);
  return false;
}

Entry* Table::get_or_make(std::string_view key, const Now& now, std::unique_lock<std::mutex>* lock,
                          bool track, int64_t touched_mono_ms) {
  const uint64_t hash = hash_key(key);
  Shard& s = shard_of(hash);
  std::unique_lock<std::mutex> g(s.mu);
  Entry* e = lookup_locked(s, key, hash);
  if (e && expired_at(e, now)) {
    // Expired but not purged yet: it starts again empty (and unsent: a change
    // still queued for the peers agent went with it).
    std::memset(e->data(), 0, layout_.size);
    if (e->flags & EntryData::kEpoch) s.epochs.erase(e);
    e->flags = 0;
    adopt_grave_locked(s, e, key, now.mono_ms);
    expired_.fetch_add(1, std::memory_order_relaxed);
  }
  bool fresh = false;
  if (!e) {
    g.unlock();
    if (!reserve()) return nullptr;
    g.lock();
    e = lookup_locked(s, key, hash);  // another thread may have made it meanwhile
    if (e) {
      used_.fetch_sub(1, std::memory_order_relaxed);
    } else {
      e = make_locked(s, key, hash, now);
      if (!e) {
        used_.fetch_sub(1, std::memory_order_relaxed);
        refused_.fetch_add(1, std::memory_order_relaxed);
        return nullptr;
      }
      fresh = true;
    }
  }
  if (touched_mono_ms == INT64_MIN) {
    e->touched = now.mono_ms;
  } else if (fresh || touched_mono_ms > e->touched) {
    e->touched = std::min(touched_mono_ms, now.mono_ms);
  }
  if (track) {
    ++e->trackers;
    lru_unlink(e);
  } else if (e->trackers == 0) {
    lru_unlink(e);
    lru_push_front(s.lru, e);
  }
  if (lock) *lock = std::move(g);
  return e;
}

Table::Access Table::opened(std::unique_lock<std::mutex> lock, Entry* e) {
  Access a;
  if (!e) return a;
  a.lock_ = std::move(lock);
  a.e_ = e;
  a.flags_ = &e->flags;
  a.table_ = this;
  return a;
}

Table::Access::Access(Access&& o) noexcept
    : lock_(std::move(o.lock_)),
      e_(std::exchange(o.e_, nullptr)),
      flags_(o.flags_),
      table_(o.table_) {}

Table::Access& Table::Access::operator=(Access&& o) noexcept {
  if (this != &o) {
    finish();
    lock_ = std::move(o.lock_);
    e_ = std::exchange(o.e_, nullptr);
    flags_ = o.flags_;
    table_ = o.table_;
  }
  return *this;
}

void Table::note_changed(Entry* e) {
  e->flags &= static_cast<uint8_t>(~EntryData::kChanged);
  if (!journal_) return;
  if (e->flags & EntryData::kQueued) {
    journal_->coalesced();
    return;
  }
  e->flags |= EntryData::kQueued;
  journal_->changed(*this, EntryData(e, &layout_).key());
}

Table::Access Table::track(std::string_view key, const Now& now) {
  std::unique_lock<std::mutex> g;
  Entry* e = get_or_make(key, now, &g, true);
  return opened(std::move(g), e);
}

void Table::untrack(Access&& a, const Now& now) {
  Entry* e = a.e_;
  e->touched = now.mono_ms;
  if (e->trackers > 0 && --e->trackers == 0) lru_push_front(shards_[e->shard].lru, e);
  a = Access();
}

Table::Access Table::open(Entry* tracked, const Now& now) {
  Access a = peek(tracked);
  tracked->touched = now.mono_ms;
  return a;
}

Table::Access Table::peek(Entry* tracked) {
  return opened(std::unique_lock<std::mutex>(shards_[tracked->shard].mu), tracked);
}

void Table::prefetch(std::string_view key) const {
  const uint64_t hash = hash_key(key);
  const Index& ix = shard_of(hash).index;
  const uint64_t* slots = ix.hint.load(std::memory_order_relaxed);
  if (slots) __builtin_prefetch(slots + (hash & ix.hint_mask.load(std::memory_order_relaxed)));
}

Table::Access Table::find(std::string_view key, const Now& now) {
  Access a;
  const uint64_t hash = hash_key(key);
  Shard& s = shard_of(hash);
  std::unique_lock<std::mutex> g(s.mu);
  Entry* e = lookup_locked(s, key, hash);
  if (!e || expired_at(e, now)) return a;
  return opened(std::move(g), e);
}

Table::Access Table::find_or_make(std::string_view key, const Now& now, int64_t touched_mono_ms) {
  std::unique_lock<std::mutex> g;
  Entry* e = get_or_make(key, now, &g, false, touched_mono_ms);
  return opened(std::move(g), e);
}

bool Table::erase(std::string_view key, bool tell, int64_t unless_touched_after) {
  const uint64_t hash = hash_key(key);
  Shard& s = shard_of(hash);
  std::lock_guard<std::mutex> g(s.mu);
  Entry* e = lookup_locked(s, key, hash);
  if (!e || e->trackers > 0 || e->touched > unless_touched_after) return false;
  if (tell) removed_here(s, key, clock_now().mono_ms);
  free_locked(s, e);
  return true;
}

size_t Table::walk_impl(const Now& now, bool (*fn)(void*, Access&), void* arg, unsigned from,
                        unsigned to) {
  size_t removed = 0;
  for (unsigned i = from; i < std::min(to, kShards); ++i) {
    Shard& s = shards_[i];
    std::unique_lock<std::mutex> g(s.mu);
    std::vector<Entry*> gone;
    const Slots& slots = s.index.slots;
    // Entries lie all over memory: the walk asks for the ones a few slots
    // ahead while it handles this one, so that their cache misses overlap.
    constexpr size_t kAhead = 16;
    for (size_t j = 0; j < slots.size(); ++j) {
      if (j + kAhead < slots.size() && slots[j + kAhead]) {
        const auto* ahead = reinterpret_cast<const char*>(Index::entry(slots[j + kAhead]));
        __builtin_prefetch(ahead);
        __builtin_prefetch(ahead + Entry::kDataOffset + layout_.size);
      }
      if (!slots[j]) continue;
      Entry* e = Index::entry(slots[j]);
      if (expired_at(e, now)) continue;
      Access a;
      a.e_ = e;
      a.flags_ = &e->flags;
      a.table_ = this;
      if (!fn(arg, a) && e->trackers == 0) gone.push_back(e);
    }
    for (Entry* e : gone) {
      removed_here(s, EntryData(e, &layout_).key(), now.mono_ms);
      free_locked(s, e);
    }
    removed += gone.size();
  }
  return removed;
}

size_t Table::purge_expired(const Now& now) {
  if (def_.expire_ms <= 0 && !has_graves()) return 0;
  size_t n = 0;
  for (unsigned i = 0; i < kShards; ++i) {
    Shard& s = shards_[i];
    std::lock_guard<std::mutex> g(s.mu);
    while (s.lru.prev != &s.lru && expired_at(as_entry(s.lru.prev), now)) {
      free_locked(s, as_entry(s.lru.prev));
      ++n;
    }
    expire_graves_locked(s, now.mono_ms, kGravesPerShard);
  }
  expired_.fetch_add(n, std::memory_order_relaxed);
  return n;
}

// ---- keys

bool key_from_ip(const TableDef& t, const uint8_t ip16[16], bool v4, std::string* out) {
  if (t.type == KeyType::kIp) {
    if (!v4) return false;
    out->assign(reinterpret_cast<const char*>(ip16) + 12, 4);
    return true;
  }
  if (t.type == KeyType::kIpv6) {
    out->assign(reinterpret_cast<const char*>(ip16), 16);
    return true;
  }
  char text[INET6_ADDRSTRLEN] = {};
  if (v4) {
    ::inet_ntop(AF_INET, ip16 + 12, text, sizeof text);
  } else {
    ::inet_ntop(AF_INET6, ip16, text, sizeof text);
  }
  return key_from_text(t, text, out);
}

bool key_from_int(const TableDef& t, int64_t v, std::string* out) {
  if (t.type == KeyType::kInteger) {
    out->resize(8);
    const auto u = static_cast<uint64_t>(v);
    for (int i = 0; i < 8; ++i) (*out)[i] = static_cast<char>(u >> (56 - 8 * i));
    return true;
  }
  return key_from_text(t, std::to_string(v), out);
}

bool key_from_text(const TableDef& t, std::string_view text, std::string* out) {
  switch (t.type) {
    case KeyType::kIp:
    case KeyType::kIpv6: {
      if (text.find('\0') != std::string_view::npos) return false;
      const std::string s(text);
      uint8_t ip16[16] = {};
      in_addr a4{};
      if (::inet_pton(AF_INET, s.c_str(), &a4) == 1) {
        ip16[10] = ip16[11] = 0xff;
        std::memcpy(ip16 + 12, &a4, 4);
        return key_from_ip(t, ip16, true, out);
      }
      in6_addr a6{};
      if (::inet_pton(AF_INET6, s.c_str(), &a6) != 1) return false;
      std::memcpy(ip16, &a6, 16);
      const bool mapped = std::all_of(ip16, ip16 + 10, [](uint8_t b) { return b == 0; }) &&
                          ip16[10] == 0xff && ip16[11] == 0xff;
      return key_from_ip(t, ip16, mapped, out);
    }
    case KeyType::kInteger: {
      if (text.empty() || text.size() > 20) return false;
      bool neg = text[0] == '-';
      std::string_view d = neg ? text.substr(1) : text;
      if (d.empty()) return false;
      uint64_t v = 0;
      for (char c : d) {
        if (c < '0' || c > '9') return false;
        const uint64_t next = v * 10 + static_cast<uint64_t>(c - '0');
        if (next / 10 != v) return false;
        v = next;
      }
      if (v > (neg ? uint64_t{1} << 63 : (uint64_t{1} << 63) - 1)) return false;
      return key_from_int(t, neg ? static_cast<int64_t>(0 - v) : static_cast<int64_t>(v), out);
    }
    case KeyType::kString:
    case KeyType::kBinary:
      // An empty value (an empty header) is no key: every client sending one
      // would share an entry.
      if (text.empty()) return false;
      out->assign(text.substr(0, t.key_size));
      return true;
  }
  return false;
}

bool key_from_command(const TableDef& t, std::string_view text, std::string* out) {
  if (t.type != KeyType::kBinary) return key_from_text(t, text, out);
  auto bytes = from_hex(text);
  if (!bytes) return false;
  out->assign(bytes->substr(0, t.key_size));
  return true;
}

std::string key_text(const TableDef& t, std::string_view key) {
  char text[INET6_ADDRSTRLEN] = {};
  switch (t.type) {
    case KeyType::kIp:
      if (key.size() == 4) ::inet_ntop(AF_INET, key.data(), text, sizeof text);
      return text;
    case KeyType::kIpv6:
      if (key.size() == 16) ::inet_ntop(AF_INET6, key.data(), text, sizeof text);
      return text;
    case KeyType::kInteger: {
      uint64_t u = 0;
      for (unsigned char c : key) u = u << 8 | c;
      return std::to_string(static_cast<int64_t>(u));
    }
    case KeyType::kString:
      return std::string(key);
    case KeyType::kBinary:
      return to_hex(key);
  }
  return {};
}

}  // namespace weir::stick
