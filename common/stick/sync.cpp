// Stick-table rows between processes (sync.h).

#include "common/stick/sync.h"

#include <algorithm>
#include <limits>

namespace weir::stick::sync {
namespace {

bool is_lww(Datum d) {
  return d == Datum::kGpt || d == Datum::kServerKey;
}

uint32_t clamp32(int64_t v) {
  if (v <= 0) return 0;
  return v > std::numeric_limits<uint32_t>::max() ? std::numeric_limits<uint32_t>::max()
                                                  : static_cast<uint32_t>(v);
}

// The rate's count of the period holding wall_ms and of the one before.
void rate_at(Rate r, int64_t wall_ms, int64_t period_ms, uint32_t* cur, uint32_t* prev) {
  r.roll(wall_ms, period_ms);
  *cur = r.cur;
  *prev = r.prev;
}

// Whether a key from another process is one this table could have made.
bool key_fits(const TableDef& d, std::string_view key) {
  switch (d.type) {
    case KeyType::kIp:
      return key.size() == 4;
    case KeyType::kIpv6:
      return key.size() == 16;
    case KeyType::kInteger:
      return key.size() == 8;
    case KeyType::kString:
    case KeyType::kBinary:
      return !key.empty() && key.size() <= d.key_size;
  }
  return false;
}

}  // namespace

std::vector<uint32_t> columns_of(const TableDef& def) {
  std::vector<uint32_t> cols;
  for (const Stored& s : def.store) {
    if (is_lww(s.datum)) continue;
    for (uint32_t i = 0; i < s.count; ++i) cols.push_back(static_cast<uint32_t>(s.datum) << 8 | i);
  }
  return cols;
}

BatchWriter::BatchWriter(Table& t, proto::TableBatch::Kind kind, int64_t wall_ms)
    : t_(t), columns_(columns_of(t.def())) {
  batch_.set_table(t.name());
  batch_.set_kind(kind);
  batch_.set_wall_ms(wall_ms);
  for (uint32_t c : columns_) batch_.add_columns(c);
}

proto::TableBatch BatchWriter::take() {
  proto::TableBatch out = std::move(batch_);
  batch_ = proto::TableBatch();
  batch_.set_table(out.table());
  batch_.set_kind(out.kind());
  batch_.set_wall_ms(out.wall_ms());
  for (uint32_t c : columns_) batch_.add_columns(c);
  return out;
}

void BatchWriter::add_epoch(const EntryData& d, proto::Row* row) const {
  if (!(d.flags() & EntryData::kEpoch)) return;
  const Epoch e = d.epoch();
  row->set_epoch_hlc(e.hlc);
  row->set_epoch_writer(e.writer);
}

void BatchWriter::add_lww(const EntryData& d, proto::Row* row) const {
  const Stamp* st = d.stamp();
  if (!st) return;
  row->set_has_lww(true);
  row->set_hlc(st->hlc);
  row->set_node(st->node);
  for (uint32_t i = 0; i < d.count(Datum::kGpt); ++i) row->add_tags(*d.tag(i));
  if (const uint32_t* k = d.server_key()) row->set_server(name_of(*k));
}

bool BatchWriter::add_pending(std::string_view key, const Now& now) {
  Table::Access a = t_.find(key, now);
  if (!a) return false;
  const EntryData d = a.data();
  const uint8_t flags = d.flags();
  if (!(flags & EntryData::kQueued)) return false;
  d.set_flags(flags & static_cast<uint8_t>(~(EntryData::kQueued | EntryData::kAbsolute)));
  const bool absolute = flags & EntryData::kAbsolute;
  proto::Row* row = batch_.add_rows();
  row->set_key(key.data(), key.size());
  // What was counted since the last row goes (unless totals do) and is folded
  // into the rest of the entry. A current value (conn_cur) always goes as
  // what was added: connections that open and close are never reset.
  std::vector<int64_t> current;
  for (uint32_t col : columns_) {
    const auto datum = static_cast<Datum>(col >> 8);
    const uint32_t i = col & 0xff;
    if (info(datum).shape == Shape::kRate) {
      Rate* r = d.rate(datum, i);
      if (!absolute) row->add_values(r->unsent);
      r->unsent = 0;
    } else {
      Counter* c = d.counter(datum, i);
      if (!absolute) row->add_values(c->local);
      if (absolute && info(datum).shape == Shape::kCurrent) current.push_back(c->local);
      c->others = Counter::wrapping_add(c->others, c->local);
      c->local = 0;
    }
  }
  if (absolute) {
    row->set_flags(kRowAbsolute);
    add_totals(d, row, &current);
  }
  add_epoch(d, row);
  add_lww(d, row);
  return true;
}

void BatchWriter::add_erased(std::string_view key, const Epoch& e) {
  proto::Row* row = batch_.add_rows();
  row->set_key(key.data(), key.size());
  row->set_flags(kRowErased);
  if (!e.none()) {
    row->set_epoch_hlc(e.hlc);
    row->set_epoch_writer(e.writer);
  }
}

void BatchWriter::add_totals(const EntryData& d, proto::Row* row,
                             const std::vector<int64_t>* current) const {
  size_t next_current = 0;
  for (uint32_t col : columns_) {
    const auto datum = static_cast<Datum>(col >> 8);
    const uint32_t i = col & 0xff;
    if (info(datum).shape == Shape::kRate) {
      Rate r = *d.rate(datum, i);
      // Without this process's unsent events (they follow in a DELTA row).
      r.cur = r.cur >= r.unsent ? r.cur - r.unsent : 0;
      uint32_t cur = 0, prev = 0;
      rate_at(r, batch_.wall_ms(), d.period(datum), &cur, &prev);
      row->add_values(cur);
      row->add_values(prev);
    } else if (current && info(datum).shape == Shape::kCurrent) {
      row->add_values((*current)[next_current++]);
    } else {
      row->add_values(d.counter(datum, i)->others);
    }
  }
}

void BatchWriter::add_absolute(const Table::Access& a, const Now& now) {
  const EntryData d = a.data();
  proto::Row* row = batch_.add_rows();
  const std::string_view key = d.key();
  row->set_key(key.data(), key.size());
  const bool pending = d.flags() & (EntryData::kAbsolute | EntryData::kAwaitBase);
  row->set_flags(kRowAbsolute | (pending ? kRowBasePending : 0));
  add_totals(d, row);
  add_epoch(d, row);
  add_lww(d, row);
  const int64_t left = t_.expires_in(a.entry(), now);
  row->set_expire_in_ms(left < 0 ? -1 : std::max<int64_t>(1, left));
  row->set_idle_ms(static_cast<uint64_t>(t_.idle_for(a.entry(), now)));
}

namespace {

// How a row's summed values meet the entry's (sync.h, table.h Epoch).
enum class Fold {
  kAdd,      // DELTA values are added; absolute ones replace the totals
  kMax,      // a REFILL's or another node's resync: the larger wins
  kAddBase,  // the base of the epoch the entry entered before it came
  kSkip,     // an older epoch's, or a reset this entry has already
};

// The entry's summed data back to nothing, this process's unsent part with
// it: what was counted in an epoch that a reset has closed.
void restart(const EntryData& d, const Layout& layout) {
  for (int id = 0; id < kDatumCount; ++id) {
    const Layout::Slot& slot = layout.slot[id];
    const auto datum = static_cast<Datum>(id);
    for (uint32_t i = 0; i < slot.count; ++i) {
      switch (info(datum).shape) {
        case Shape::kCounter:
          *d.counter(datum, i) = {};
          break;
        case Shape::kRate:
          d.rate(datum, i)->clear();
          break;
        case Shape::kCurrent:  // connections open now: never reset
        case Shape::kTag:
        case Shape::kServerKey:
          break;
      }
    }
  }
}

// Compares the row's epoch with the entry's, moves the entry to a newer one,
// and says how the row's values apply.
Fold fold_of(const EntryData& d, const proto::Row& row, proto::TableBatch::Kind kind,
             const Layout& layout) {
  const bool reset = kind == proto::TableBatch::DELTA && (row.flags() & kRowAbsolute);
  const Fold plain = kind == proto::TableBatch::REFILL ? Fold::kMax : Fold::kAdd;
  const Epoch theirs{row.epoch_hlc(), row.epoch_writer()};
  if (theirs.none() && !(d.flags() & EntryData::kEpoch)) return plain;  // neither was reset
  const Epoch mine = d.epoch();
  if (theirs < mine) return Fold::kSkip;
  if (theirs > mine) {
    // A reset made elsewhere after this entry's own: what it counted before
    // goes, and a set or clear of its own not sent yet is overtaken.
    restart(d, layout);
    d.set_epoch(theirs);
    auto nf = static_cast<uint8_t>(d.flags() & ~(EntryData::kAbsolute | EntryData::kAwaitBase));
    // Updates counted after the reset, ahead of the reset itself (another
    // node heard of it first), or totals without its base: the base is added
    // when the reset comes.
    if ((kind == proto::TableBatch::DELTA && !reset) || (row.flags() & kRowBasePending)) {
      nf |= EntryData::kAwaitBase;
    }
    d.set_flags(nf);
    return plain;
  }
  const uint8_t f = d.flags();
  if (reset) {
    if (!(f & EntryData::kAwaitBase)) return Fold::kSkip;  // had it
    d.set_flags(f & static_cast<uint8_t>(~EntryData::kAwaitBase));
    return Fold::kAddBase;
  }
  if (kind != proto::TableBatch::DELTA) {
    // Whole values of the same epoch: with its base, they stand; without,
    // they stand only for an entry that has not had the base either.
    if (!(row.flags() & kRowBasePending)) {
      d.set_flags(f & static_cast<uint8_t>(~EntryData::kAwaitBase));
    } else if (!(f & EntryData::kAwaitBase)) {
      return Fold::kSkip;
    }
  }
  return plain;
}

}  // namespace

ApplyResult apply(Table& t, const proto::TableBatch& b, const Now& now) {
  ApplyResult res;
  const Layout& layout = t.layout();
  // The index slots of the rows a few ahead are fetched while this one is applied.
  constexpr int kAhead = 8;
  for (int n = 0; n < std::min(kAhead, b.rows_size()); ++n) t.prefetch(b.rows(n).key());
  for (int at = 0; at < b.rows_size(); ++at) {
    if (at + kAhead < b.rows_size()) t.prefetch(b.rows(at + kAhead).key());
    const proto::Row& row = b.rows(at);
    const Epoch epoch{row.epoch_hlc(), row.epoch_writer()};
    if (row.flags() & kRowErased) {
      // A tombstone (a resync's delete) carries when the delete was made: an
      // entry refreshed since then stays.
      int64_t made = INT64_MAX;
      if (row.hlc() != 0) {
        const int64_t wall = static_cast<int64_t>(row.hlc() >> 16);
        made = now.mono_ms - std::max<int64_t>(0, now.wall_ms - wall);
      }
      if (!epoch.none()) {
        // A command's removal: in its epoch, the entry is made again, and
        // what was counted before it (here too) no longer counts.
        hlc_observe(epoch.hlc);
        t.bury(row.key(), epoch, now);
        if (Table::Access a = t.find(row.key(), now); a && a.data().epoch() >= epoch) {
          // Made again in the removal's epoch (an update that came ahead of
          // it) or reset since: it stays, and the removal is its base.
          const EntryData d = a.data();
          if (d.epoch() == epoch) {
            d.set_flags(d.flags() & static_cast<uint8_t>(~EntryData::kAwaitBase));
          }
          ++res.rows;
          continue;
        }
      }
      if (!t.erase(row.key(), false, made) && !epoch.none()) {
        // Tracked here: it stays, restarted in the removal's epoch.
        if (Table::Access a = t.find(row.key(), now)) {
          const EntryData d = a.data();
          if (d.epoch() < epoch) {
            restart(d, layout);
            d.set_epoch(epoch);
            d.set_flags(d.flags() &
                        static_cast<uint8_t>(~(EntryData::kAbsolute | EntryData::kAwaitBase)));
          }
        }
      }
      ++res.rows;
      continue;
    }
    if (!epoch.none()) hlc_observe(epoch.hlc);  // a reset made here later is later
    // An update made before a removal that this process heard of first: its
    // counters and rates are of the epoch the removal closed (conn_cur still
    // applies to an entry that is there).
    bool stale = false;
    if (t.has_graves()) {
      const Epoch grave = t.grave_of(row.key(), now);
      stale = !grave.none() && epoch < grave;
    }
    if (!key_fits(t.def(), row.key())) {
      ++res.skipped;
      continue;
    }
    // When the entry was last refreshed, as the sender saw it: an absolute row
    // says what is left of its life; a DELTA row was refreshed when its batch
    // was made (an update that arrives late, after a cut, does not give the
    // entry a fresh life). A later refresh of this process's own stays.
    int64_t touched = INT64_MIN;
    const int64_t expire = t.def().expire_ms;
    const bool absolute_row = (row.flags() & kRowAbsolute) || b.kind() != proto::TableBatch::DELTA;
    if (expire > 0 && row.expire_in_ms() > 0) {
      touched = now.mono_ms - std::max<int64_t>(0, expire - row.expire_in_ms());
    } else if (expire <= 0 && absolute_row && b.wall_ms() > 0) {
      // No expiry to tell the age by: the row's idle time, plus the batch's.
      touched = now.mono_ms - static_cast<int64_t>(row.idle_ms()) -
                std::max<int64_t>(0, now.wall_ms - b.wall_ms());
    } else if (expire > 0 && b.kind() == proto::TableBatch::DELTA && b.wall_ms() > 0) {
      touched = now.mono_ms - std::max<int64_t>(0, now.wall_ms - b.wall_ms());
    }
    Table::Access a = stale ? t.find(row.key(), now) : t.find_or_make(row.key(), now, touched);
    if (!a) {
      if (stale) {
        ++res.rows;
      } else {
        ++res.skipped;
      }
      continue;
    }
    const EntryData d = a.data();
    const bool absolute = (row.flags() & kRowAbsolute) || b.kind() != proto::TableBatch::DELTA;
    const Fold fold = stale ? Fold::kSkip : fold_of(d, row, b.kind(), layout);
    int v = 0;  // the next value of the row
    bool readable = true;
    for (uint32_t col : b.columns()) {
      const uint32_t id = col >> 8;
      if (id >= static_cast<uint32_t>(kDatumCount)) {
        readable = false;  // a datum this build does not know: its width is unknown
        break;
      }
      const auto datum = static_cast<Datum>(id);
      const uint32_t i = col & 0xff;
      const Shape shape = info(datum).shape;
      if (shape == Shape::kTag || shape == Shape::kServerKey) continue;  // not in values
      const int width = shape == Shape::kRate && absolute ? 2 : 1;
      if (v + width > row.values_size()) {
        readable = false;
        break;
      }
      const int64_t x = row.values(v);
      const int64_t y = width == 2 ? row.values(v + 1) : 0;
      v += width;
      const Layout::Slot& slot = layout.slot[id];
      if (i >= slot.count) continue;  // not stored here
      if (shape == Shape::kCurrent) {
        // Outside epochs: a DELTA row (a reset too) carries what was added,
        // whole tables the total.
        Counter* c = d.counter(datum, i);
        if (b.kind() == proto::TableBatch::DELTA) {
          c->others = Counter::wrapping_add(c->others, x);
        } else if (b.kind() == proto::TableBatch::REFILL) {
          c->others = std::max(c->others, x);
        } else {
          c->others = x;
        }
        if (c->value() < 0) c->others = Counter::wrapping_neg(c->local);
        continue;
      }
      if (fold == Fold::kSkip) continue;
      if (shape == Shape::kRate) {
        Rate* r = d.rate(datum, i);
        if (!absolute) {
          r->add_at(clamp32(x), b.wall_ms(), slot.period_ms);
          continue;
        }
        // The sender's two periods, brought to now, beside this process's own
        // unsent events.
        Rate theirs;
        theirs.period_no = static_cast<uint32_t>(b.wall_ms() / slot.period_ms);
        theirs.cur = clamp32(x);
        theirs.prev = clamp32(y);
        theirs.roll(now.wall_ms, slot.period_ms);
        r->roll(now.wall_ms, slot.period_ms);
        if (fold == Fold::kMax) {
          r->cur = std::max(r->cur, theirs.cur);
          r->prev = std::max(r->prev, theirs.prev);
        } else if (fold == Fold::kAddBase) {
          r->cur = clamp32(int64_t{r->cur} + theirs.cur);
          r->prev = clamp32(int64_t{r->prev} + theirs.prev);
        } else {
          const uint32_t mine = std::min(r->unsent, r->cur);
          r->cur = clamp32(int64_t{theirs.cur} + mine);
          r->prev = theirs.prev;
        }
        continue;
      }
      Counter* c = d.counter(datum, i);
      if (!absolute || fold == Fold::kAddBase) {
        c->others = Counter::wrapping_add(c->others, x);
      } else if (fold == Fold::kMax) {
        c->others = std::max(c->others, x);
      } else {
        c->others = x;
      }
    }
    if (!readable) {
      ++res.skipped;
      continue;
    }
    if (row.has_lww() && !stale) {
      hlc_observe(row.hlc());
      if (Stamp* st = d.stamp()) {
        if (row.hlc() > st->hlc || (row.hlc() == st->hlc && row.node() > st->node)) {
          *st = {row.hlc(), row.node()};
          const uint32_t n =
              std::min<uint32_t>(d.count(Datum::kGpt), static_cast<uint32_t>(row.tags_size()));
          for (uint32_t k = 0; k < n; ++k) *d.tag(k) = row.tags(static_cast<int>(k));
          if (uint32_t* sk = d.server_key()) *sk = name_id(row.server());
        }
      }
    }
    ++res.rows;
  }
  return res;
}

void ConnCurLedger::add_to(const std::string& table, const std::string& key, int64_t n) {
  auto& mine = by_table_[table];
  auto [it, fresh] = mine.try_emplace(key, 0);
  it->second = Counter::wrapping_add(it->second, n);
  if (it->second == 0) mine.erase(it);
}

void ConnCurLedger::count(const proto::TableBatch& b) {
  if (b.kind() != proto::TableBatch::DELTA) return;
  // Where conn_cur sits in the rows' values: each column is one value in a
  // DELTA row; a rate takes two in a reset's row.
  int pos = -1, reset_pos = -1, at = 0;
  for (int c = 0; c < b.columns_size(); ++c) {
    if (b.columns(c) == static_cast<uint32_t>(Datum::kConnCur) << 8) {
      pos = c;
      reset_pos = at;
    }
    const uint32_t id = b.columns(c) >> 8;
    at += id < static_cast<uint32_t>(kDatumCount) &&
                  info(static_cast<Datum>(id)).shape == Shape::kRate
              ? 2
              : 1;
  }
  if (pos < 0) return;
  for (const proto::Row& row : b.rows()) {
    // A reset (an absolute row with an epoch) carries conn_cur as added too.
    const bool reset = row.flags() == kRowAbsolute && (row.epoch_hlc() || row.epoch_writer());
    if (row.flags() != 0 && !reset) continue;
    const int p = reset ? reset_pos : pos;
    if (p >= row.values_size() || row.values(p) == 0) continue;
    add_to(b.table(), row.key(), row.values(p));
  }
}

void ConnCurLedger::add(const ConnCurLedger& o) {
  for (const auto& [table, keys] : o.by_table_) {
    for (const auto& [key, n] : keys) add_to(table, key, n);
  }
}

ConnCurLedger ConnCurLedger::take_positive() {
  ConnCurLedger out;
  for (auto& [table, keys] : by_table_) {
    for (auto it = keys.begin(); it != keys.end();) {
      if (it->second > 0) {
        out.by_table_[table][it->first] = it->second;
        it = keys.erase(it);
      } else {
        ++it;
      }
    }
  }
  return out;
}

size_t ConnCurLedger::keys() const {
  size_t n = 0;
  for (const auto& [table, keys] : by_table_) n += keys.size();
  return n;
}

std::vector<proto::TableBatch> ConnCurLedger::batches(int sign, int64_t wall_ms) const {
  std::vector<proto::TableBatch> out;
  for (const auto& [table, keys] : by_table_) {
    if (keys.empty()) continue;
    proto::TableBatch& b = out.emplace_back();
    b.set_table(table);
    b.set_kind(proto::TableBatch::DELTA);
    b.set_wall_ms(wall_ms);
    b.add_columns(static_cast<uint32_t>(Datum::kConnCur) << 8);
    for (const auto& [key, n] : keys) {
      // Below 0, the source took back connections it had counted before
      // this process heard of it (they came in a full resync, as part of a
      // total): taking that back would count them again.
      if (sign < 0 && n < 0) continue;
      proto::Row* row = b.add_rows();
      row->set_key(key);
      row->add_values(sign < 0 ? Counter::wrapping_neg(n) : n);
    }
  }
  return out;
}

}  // namespace weir::stick::sync
