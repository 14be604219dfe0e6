// The stick-table store (common/stick/table.h), driven with explicit clocks:
// rates at the edges of their periods, counters, expiry, LRU eviction at the
// table's size (tracked entries never go), keys of every type, a random run
// against a model of the table, and many threads on the same entries.

#include "common/stick/table.h"

#include <gtest/gtest.h>

#include <arpa/inet.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <limits>
#include <map>
#include <random>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "tests/unit/common/stick/rate_model.h"

namespace weir::stick {
namespace {

// Tracking as a connection does it, one call each (Table::track keeps the
// shard locked for the caller's counting; these tests count nothing then).
Entry* track(Table& t, std::string_view key, const Now& now) {
  return t.track(key, now).entry();
}
void untrack(Table& t, Entry* e, const Now& now) {
  t.untrack(t.open(e, now), now);
}

using stick_test::model_rate;

// A wall clock that is a multiple of every period used here (10 s, 100 ms,
// 30 ms...): period k starts at kWall0 + k * period.
constexpr int64_t kWall0 = 1'700'000'040'000 - 1'700'000'040'000 % 3'000'000;

TableDef make_def(KeyType type, uint64_t size, int64_t expire_ms,
                  std::initializer_list<std::string_view> store, uint32_t key_size = 32) {
  TableDef d;
  d.name = "t";
  d.type = type;
  d.size = size;
  d.expire_ms = expire_ms;
  d.key_size = key_size;
  for (std::string_view item : store) {
    std::string error;
    auto s = parse_stored(item, &error);
    EXPECT_TRUE(s) << item << ": " << error;
    if (s) d.store.push_back(*s);
  }
  return d;
}

std::string key_of(const Table& t, std::string_view text) {
  std::string key;
  EXPECT_TRUE(key_from_text(t.def(), text, &key)) << text;
  return key;
}

// Time ms after a start: the monotonic clock and the wall clock move together.
Now at(int64_t ms) {
  return {1'000'000 + ms, kWall0 + ms};
}

// ---------------------------------------------------------------- rates

TEST(StickRate, FirstEventAndTheEdgesOfItsPeriod) {
  constexpr int64_t P = 10'000;
  Rate r;
  EXPECT_EQ(r.value(kWall0, P), 0u);
  r.add(1, kWall0 + 3000, P);
  EXPECT_EQ(r.value(kWall0 + 3000, P), 1u);
  EXPECT_EQ(r.value(kWall0 + P - 1, P), 1u);  // the last ms of its period
  EXPECT_EQ(r.value(kWall0 + P, P), 1u);      // the next one starts: all of it still counts
  EXPECT_EQ(r.value(kWall0 + 2 * P - 1, P), 0u);
  EXPECT_EQ(r.value(kWall0 + 2 * P, P), 0u);  // two periods later: gone
  EXPECT_EQ(r.value(kWall0 + 50 * P, P), 0u);
}

TEST(StickRate, ThePreviousPeriodIsWeightedByWhatIsLeftOfTheCurrentOne) {
  constexpr int64_t P = 10'000;
  Rate r;
  for (int i = 0; i < 100; ++i) r.add(1, kWall0 + i * 99, P);  // 100 events in period k
  EXPECT_EQ(r.value(kWall0 + P - 1, P), 100u);
  EXPECT_EQ(r.value(kWall0 + P, P), 100u);        // exactly at the boundary
  EXPECT_EQ(r.value(kWall0 + P + 1, P), 99u);     // 100 * 9999 / 10000
  EXPECT_EQ(r.value(kWall0 + P + 2500, P), 75u);  // 25% into period k+1
  EXPECT_EQ(r.value(kWall0 + P + 5000, P), 50u);  // half-way
  EXPECT_EQ(r.value(kWall0 + 2 * P - 1, P), 0u);  // 100 * 1 / 10000
  r.add(10, kWall0 + P + 2500, P);                // events of period k+1 add up
  EXPECT_EQ(r.value(kWall0 + P + 2500, P), 85u);
  EXPECT_EQ(r.value(kWall0 + 2 * P, P), 10u);  // k+2: k+1's count is the previous one
  EXPECT_EQ(r.value(kWall0 + 2 * P + P / 2, P), 5u);
  r.add(4, kWall0 + 2 * P, P);  // the first ms of k+2 belongs to it
  EXPECT_EQ(r.value(kWall0 + 2 * P, P), 14u);
  EXPECT_EQ(r.prev, 10u);
  EXPECT_EQ(r.cur, 4u);
}

TEST(StickRate, ASkippedPeriodForgetsTheOlderOne) {
  constexpr int64_t P = 1000;
  Rate r;
  r.add(100, kWall0 + 10, P);
  r.add(7, kWall0 + 2 * P + 10, P);  // nothing happened in period k+1
  EXPECT_EQ(r.prev, 0u);
  EXPECT_EQ(r.value(kWall0 + 2 * P + 10, P), 7u);
  // An event one ms before its period ends, and one exactly on the next start.
  Rate s;
  s.add(1, kWall0 + P - 1, P);
  s.add(1, kWall0 + P, P);
  EXPECT_EQ(s.prev, 1u);
  EXPECT_EQ(s.cur, 1u);
  EXPECT_EQ(s.value(kWall0 + P, P), 2u);
  EXPECT_EQ(s.value(kWall0 + P + 500, P), 1u);  // 1 + 1 * 500 / 1000 (rounded down)
}

TEST(StickRate, OthersEventsAddUpAndCountsSaturate) {
  constexpr int64_t P = 1000;
  Rate r;
  r.add(3, kWall0, P);
  EXPECT_EQ(r.unsent, 3u);
  r.add_at(40, kWall0, P);  // another process's events of the same period
  EXPECT_EQ(r.value(kWall0, P), 43u);
  EXPECT_EQ(r.unsent, 3u);
  r.add_at(10, kWall0 - P, P);  // of the previous period: weighted as it is
  EXPECT_EQ(r.prev, 10u);
  r.add_at(10, kWall0 - 2 * P, P);  // older: gone already
  EXPECT_EQ(r.prev, 10u);
  r.add(std::numeric_limits<uint64_t>::max(), kWall0, P);
  EXPECT_EQ(r.cur, std::numeric_limits<uint32_t>::max());
  r.add(1, kWall0, P);
  EXPECT_EQ(r.cur, std::numeric_limits<uint32_t>::max());
  r.clear();
  EXPECT_EQ(r.value(kWall0, P), 0u);
}

TEST(StickRate, PeriodNumbersWrapAroundTheirThirtyTwoBits) {
  constexpr int64_t P = 1000;
  // Period 2^32 - 1, then period 2^32 (whose low 32 bits are 0).
  const int64_t last = ((int64_t{1} << 32) - 1) * P;
  Rate r;
  r.add(100, last + 500, P);
  EXPECT_EQ(r.value(last + P + 250, P), 75u);
  r.add(1, last + P + 250, P);
  EXPECT_EQ(r.prev, 100u);
  EXPECT_EQ(r.value(last + P + 250, P), 76u);
}

TEST(StickRate, AgreesWithTheModelOverRandomEvents) {
  std::mt19937_64 rng(19);
  for (const int64_t P : {1, 7, 100, 1000}) {
    Rate r;
    std::vector<std::pair<int64_t, uint64_t>> events;
    int64_t t = kWall0 + static_cast<int64_t>(rng() % 1000);
    for (int i = 0; i < 2000; ++i) {
      t += static_cast<int64_t>(rng() % (3 * P));
      if (rng() % 2) {
        const uint64_t n = rng() % 5;
        r.add(n, t, P);
        events.emplace_back(t, n);
      }
      ASSERT_EQ(r.value(t, P), model_rate(events, t, P)) << "period " << P << " step " << i;
    }
  }
}

// ---------------------------------------------------------------- entry data

TEST(StickTable, CountersCurrentValuesTagsAndServerKeys) {
  Table t(make_def(KeyType::kString, 10, 0,
                   {"conn_cnt", "conn_cur", "gpc(2)", "gpt(2)", "server_key", "gpc_rate(2,10s)",
                    "http_req_rate(10s)"}));
  const Now now = at(0);
  Table::Access a = t.find_or_make("k", now);
  ASSERT_TRUE(a);
  const EntryData d = a.data();
  EXPECT_EQ(d.key(), "k");
  EXPECT_EQ(d.trackers(), 0u);
  EXPECT_EQ(d.value(Datum::kConnCnt, 0, now), 0);
  // conn_cur goes up and down, never below 0 (set table may lower it under
  // connections that then end).
  d.add(Datum::kConnCur, 1, now);
  d.add(Datum::kConnCur, 1, now);
  EXPECT_EQ(d.value(Datum::kConnCur, 0, now), 2);
  d.add(Datum::kConnCur, -3, now);
  EXPECT_EQ(d.value(Datum::kConnCur, 0, now), 0);
  d.add(Datum::kConnCur, 1, now);
  EXPECT_EQ(d.value(Datum::kConnCur, 0, now), 1);
  d.add(Datum::kConnCur, -1, now);
  // The elements of an array are apart; one past the end is not stored.
  d.add(Datum::kGpc, 5, now, 1);
  EXPECT_EQ(d.value(Datum::kGpc, 0, now), 0);
  EXPECT_EQ(d.value(Datum::kGpc, 1, now), 5);
  EXPECT_EQ(d.counter(Datum::kGpc, 2), nullptr);
  EXPECT_FALSE(d.value(Datum::kGpc, 2, now));
  d.add(Datum::kGpc, 1, now, 2);  // ignored
  EXPECT_EQ(d.count(Datum::kGpc), 2u);
  // Data the table does not store: no value, and adding does nothing.
  EXPECT_FALSE(d.stores(Datum::kSessCnt));
  EXPECT_FALSE(d.value(Datum::kSessCnt, 0, now));
  d.add(Datum::kSessCnt, 1, now);
  EXPECT_FALSE(d.value(Datum::kBytesInRate, 0, now));
  // The others' part adds to a counter; set takes the local part and clears it.
  d.counter(Datum::kConnCnt)->others = 10;
  d.add(Datum::kConnCnt, 2, now);
  EXPECT_EQ(d.value(Datum::kConnCnt, 0, now), 12);
  d.set(Datum::kConnCnt, 0, 42, now);
  EXPECT_EQ(d.counter(Datum::kConnCnt)->local, 42);
  EXPECT_EQ(d.counter(Datum::kConnCnt)->others, 0);
  EXPECT_EQ(d.value(Datum::kConnCnt, 0, now), 42);
  // Rates: set restarts them with v events; negative adds count nothing.
  d.add(Datum::kHttpReqRate, 3, now);
  d.add(Datum::kHttpReqRate, -2, now);
  EXPECT_EQ(d.value(Datum::kHttpReqRate, 0, now), 3);
  EXPECT_EQ(d.period(Datum::kHttpReqRate), 10'000);
  d.set(Datum::kHttpReqRate, 0, 7, now);
  EXPECT_EQ(d.value(Datum::kHttpReqRate, 0, now), 7);
  EXPECT_EQ(d.value(Datum::kHttpReqRate, 0, at(10'000 + 5000)), 3);  // weighted next period
  d.add(Datum::kGpcRate, 2, now, 1);
  EXPECT_EQ(d.value(Datum::kGpcRate, 0, now), 0);
  EXPECT_EQ(d.value(Datum::kGpcRate, 1, now), 2);
  // Tags and the server key: last writer wins, with a fresh stamp each time.
  ASSERT_NE(d.stamp(), nullptr);
  EXPECT_EQ(d.stamp()->hlc, 0u);
  d.set(Datum::kGpt, 1, 77, now);
  EXPECT_EQ(d.value(Datum::kGpt, 1, now), 77);
  EXPECT_EQ(d.value(Datum::kGpt, 0, now), 0);
  const uint64_t first = d.stamp()->hlc;
  EXPECT_GE(first, static_cast<uint64_t>(now.wall_ms) << 16);
  d.set(Datum::kServerKey, 0, name_id("srv-a"), now);
  EXPECT_GT(d.stamp()->hlc, first);
  EXPECT_EQ(name_of(static_cast<uint32_t>(*d.value(Datum::kServerKey, 0, now))), "srv-a");
  EXPECT_EQ(name_id("srv-a"), *d.server_key());
  EXPECT_EQ(name_id(""), 0u);
  EXPECT_EQ(name_of(0), "");
  // Clear: every shape back to 0.
  for (Datum x : {Datum::kConnCnt, Datum::kHttpReqRate, Datum::kServerKey}) d.clear(x, 0);
  d.clear(Datum::kGpt, 1);
  d.clear(Datum::kGpc, 1);
  d.clear(Datum::kGpcRate, 1);
  for (Datum x : {Datum::kConnCnt, Datum::kHttpReqRate, Datum::kServerKey})
    EXPECT_EQ(d.value(x, 0, now), 0);
  for (Datum x : {Datum::kGpt, Datum::kGpc, Datum::kGpcRate}) EXPECT_EQ(d.value(x, 1, now), 0);
}

TEST(StickTable, LayoutGivesEveryStoredDatumItsOwnPlace) {
  std::vector<std::string_view> all = {"server_key",
                                       "gpt(3)",
                                       "gpc(4)",
                                       "gpc_rate(2,1m)",
                                       "conn_cnt",
                                       "conn_cur",
                                       "conn_rate(10s)",
                                       "sess_cnt",
                                       "sess_rate(10s)",
                                       "http_req_cnt",
                                       "http_req_rate(1s)",
                                       "http_err_cnt",
                                       "http_err_rate(10s)",
                                       "http_fail_cnt",
                                       "http_fail_rate(10s)",
                                       "bytes_in_cnt",
                                       "bytes_out_cnt",
                                       "bytes_in_rate(10s)",
                                       "bytes_out_rate(10s)"};
  TableDef def;
  for (std::string_view s : all) {
    std::string error;
    def.store.push_back(*parse_stored(s, &error));
  }
  def.size = 4;
  Table t(def);
  const Now now = at(0);
  Table::Access a = t.find_or_make("k", now);
  ASSERT_TRUE(a);
  const EntryData d = a.data();
  // Give each element of each datum a value of its own, then read them all.
  int64_t v = 1;
  for (int i = 0; i < kDatumCount; ++i) {
    const auto x = static_cast<Datum>(i);
    ASSERT_TRUE(t.stores(x)) << info(x).name;
    for (uint32_t e = 0; e < d.count(x); ++e) d.set(x, e, v++, now);
  }
  v = 1;
  for (int i = 0; i < kDatumCount; ++i) {
    const auto x = static_cast<Datum>(i);
    for (uint32_t e = 0; e < d.count(x); ++e) EXPECT_EQ(d.value(x, e, now), v++) << info(x).name;
  }
  EXPECT_EQ(t.layout().size % 8, 0u);
  // Blocks of 16 bytes: the header, the data and the key, rounded up.
  EXPECT_EQ(t.entry_bytes(0) % 16, 0u);
  EXPECT_EQ(t.entry_bytes(16) - t.entry_bytes(0), 16u);
  EXPECT_GE(t.entry_bytes(5), t.entry_bytes(0));
  EXPECT_LE(t.entry_bytes(5), t.entry_bytes(0) + 16);
  EXPECT_EQ(d.key(), "k");  // the key lies after the data, untouched by it
}

// ---------------------------------------------------------------- expiry

TEST(StickTable, AnEntryNobodyRefreshedExpires) {
  Table t(make_def(KeyType::kIp, 10, 1000, {"gpc(1)"}));
  const std::string k = key_of(t, "192.0.2.1");
  ASSERT_TRUE(t.find_or_make(k, at(0)));
  EXPECT_TRUE(t.find(k, at(500)));  // find does not refresh
  EXPECT_TRUE(t.find(k, at(999)));
  EXPECT_FALSE(t.find(k, at(1000)));
  EXPECT_EQ(t.expires_in(t.find(k, at(400)).entry(), at(400)), 600);
  EXPECT_EQ(t.purge_expired(at(999)), 0u);
  EXPECT_EQ(t.used(), 1u);
  EXPECT_EQ(t.purge_expired(at(1000)), 1u);
  EXPECT_EQ(t.used(), 0u);
  EXPECT_EQ(t.expired(), 1u);
  EXPECT_EQ(t.purge_expired(at(5000)), 0u);
  // find_or_make refreshes.
  ASSERT_TRUE(t.find_or_make(k, at(2000)));
  ASSERT_TRUE(t.find_or_make(k, at(2900)));
  EXPECT_TRUE(t.find(k, at(3899)));
  EXPECT_FALSE(t.find(k, at(3900)));
}

TEST(StickTable, AnExpiredEntryThatIsAskedForAgainStartsEmpty) {
  Table t(make_def(KeyType::kIp, 10, 1000, {"gpc(1)"}));
  const std::string k = key_of(t, "192.0.2.1");
  t.find_or_make(k, at(0)).data().add(Datum::kGpc, 3, at(0));
  EXPECT_EQ(t.find_or_make(k, at(999)).data().value(Datum::kGpc, 0, at(999)), 3);
  Table::Access a = t.find_or_make(k, at(1999));
  ASSERT_TRUE(a);
  EXPECT_EQ(a.data().value(Datum::kGpc, 0, at(1999)), 0);
  a = {};
  EXPECT_EQ(t.expired(), 1u);
  EXPECT_EQ(t.used(), 1u);
}

TEST(StickTable, ATrackedEntryNeverExpiresAndUntrackRefreshesIt) {
  Table t(make_def(KeyType::kIp, 10, 1000, {"conn_cur"}));
  const std::string k = key_of(t, "192.0.2.1");
  Entry* e = track(t, k, at(0));
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(t.purge_expired(at(60'000)), 0u);
  EXPECT_TRUE(t.find(k, at(60'000)));
  EXPECT_EQ(t.expires_in(e, at(60'000)), 1000);
  // A second tracker; the first lets go: still tracked.
  EXPECT_EQ(track(t, k, at(60'000)), e);
  untrack(t, e, at(61'000));
  EXPECT_EQ(t.purge_expired(at(70'000)), 0u);
  EXPECT_EQ(t.peek(e).data().trackers(), 1u);
  // The last tracker lets go at 70 s: it may expire a second later.
  untrack(t, e, at(70'000));
  EXPECT_EQ(t.expires_in(e, at(70'400)), 600);
  EXPECT_TRUE(t.find(k, at(70'999)));
  EXPECT_EQ(t.purge_expired(at(70'999)), 0u);
  EXPECT_FALSE(t.find(k, at(71'000)));
  EXPECT_EQ(t.purge_expired(at(71'000)), 1u);
  EXPECT_EQ(t.used(), 0u);
}

TEST(StickTable, WithoutExpireEntriesStay) {
  Table t(make_def(KeyType::kInteger, 10, 0, {"conn_cnt"}));
  std::string k;
  ASSERT_TRUE(key_from_int(t.def(), 7, &k));
  ASSERT_TRUE(t.find_or_make(k, at(0)));
  EXPECT_TRUE(t.find(k, at(int64_t{1} << 40)));
  EXPECT_EQ(t.purge_expired(at(int64_t{1} << 40)), 0u);
  EXPECT_EQ(t.expires_in(t.find(k, at(5)).entry(), at(5)), -1);
}

// ---------------------------------------------------------------- LRU at size

std::string int_key(const Table& t, int64_t v) {
  std::string k;
  EXPECT_TRUE(key_from_int(t.def(), v, &k));
  return k;
}

TEST(StickTable, AFullTableDropsTheLeastRecentlyUsedEntry) {
  Table t(make_def(KeyType::kInteger, 3, 0, {"conn_cnt"}));
  for (int i = 1; i <= 3; ++i) ASSERT_TRUE(t.find_or_make(int_key(t, i), at(i)));
  EXPECT_EQ(t.used(), 3u);
  ASSERT_TRUE(t.find_or_make(int_key(t, 4), at(4)));
  EXPECT_EQ(t.used(), 3u);
  EXPECT_EQ(t.evicted(), 1u);
  EXPECT_FALSE(t.find(int_key(t, 1), at(4)));
  // A refresh makes an entry the most recent: 2, refreshed, stays and 3 goes.
  ASSERT_TRUE(t.find_or_make(int_key(t, 2), at(5)));
  ASSERT_TRUE(t.find_or_make(int_key(t, 5), at(6)));
  EXPECT_FALSE(t.find(int_key(t, 3), at(6)));
  EXPECT_TRUE(t.find(int_key(t, 2), at(6)));
  // find does not refresh: 4 is the oldest and goes although it was just read.
  EXPECT_TRUE(t.find(int_key(t, 4), at(7)));
  ASSERT_TRUE(t.find_or_make(int_key(t, 6), at(8)));
  EXPECT_FALSE(t.find(int_key(t, 4), at(8)));
  EXPECT_EQ(t.evicted(), 3u);
  EXPECT_EQ(t.used(), 3u);
}

TEST(StickTable, TrackedEntriesAreNeverEvicted) {
  Table t(make_def(KeyType::kInteger, 3, 0, {"conn_cur"}));
  Entry* a = track(t, int_key(t, 1), at(1));
  Entry* b = track(t, int_key(t, 2), at(2));
  ASSERT_TRUE(a && b);
  ASSERT_TRUE(t.find_or_make(int_key(t, 3), at(3)));
  // 1 and 2 are older, but tracked: 3 goes, then 4.
  ASSERT_TRUE(t.find_or_make(int_key(t, 4), at(4)));
  EXPECT_FALSE(t.find(int_key(t, 3), at(4)));
  Entry* c = track(t, int_key(t, 5), at(5));
  ASSERT_NE(c, nullptr);
  EXPECT_FALSE(t.find(int_key(t, 4), at(5)));
  EXPECT_EQ(t.evicted(), 2u);
  // Every entry tracked: nothing can make room.
  EXPECT_EQ(track(t, int_key(t, 6), at(6)), nullptr);
  EXPECT_EQ(t.refused(), 1u);
  EXPECT_FALSE(t.find_or_make(int_key(t, 6), at(6)));
  EXPECT_EQ(t.refused(), 2u);
  EXPECT_EQ(t.used(), 3u);
  // A tracked key is found and tracked again without room.
  EXPECT_EQ(track(t, int_key(t, 1), at(7)), a);
  EXPECT_TRUE(t.find_or_make(int_key(t, 2), at(7)));
  EXPECT_EQ(t.refused(), 2u);
  // Its trackers let go: it is the most recent, and the oldest untracked goes.
  untrack(t, b, at(8));
  untrack(t, a, at(9));
  ASSERT_TRUE(t.find_or_make(int_key(t, 7), at(10)));  // a still tracked once: b goes
  EXPECT_FALSE(t.find(int_key(t, 2), at(10)));
  EXPECT_TRUE(t.find(int_key(t, 1), at(10)));
  untrack(t, a, at(11));
  untrack(t, c, at(12));
  ASSERT_TRUE(t.find_or_make(int_key(t, 8), at(13)));  // 7 (at 10) is older than 1 (at 11)
  EXPECT_FALSE(t.find(int_key(t, 7), at(13)));
  ASSERT_TRUE(t.find_or_make(int_key(t, 9), at(14)));
  EXPECT_FALSE(t.find(int_key(t, 1), at(14)));
  EXPECT_TRUE(t.find(int_key(t, 5), at(14)));
  EXPECT_EQ(t.evicted(), 5u);
  EXPECT_EQ(t.used(), 3u);
}

TEST(StickTable, EvictionFollowsTheOrderOfUseAcrossTheWholeTable) {
  // Enough keys to fill every shard: the oldest of all goes, whatever its shard.
  constexpr int kSize = 200;
  Table t(make_def(KeyType::kInteger, kSize, 0, {"conn_cnt"}));
  int64_t ms = 0;
  for (int i = 0; i < kSize; ++i) ASSERT_TRUE(t.find_or_make(int_key(t, i), at(++ms)));
  for (int i = 0; i < kSize; i += 2) ASSERT_TRUE(t.find_or_make(int_key(t, i), at(++ms)));
  for (int i = 0; i < kSize / 2; ++i) ASSERT_TRUE(t.find_or_make(int_key(t, 1000 + i), at(++ms)));
  EXPECT_EQ(t.evicted(), static_cast<uint64_t>(kSize / 2));
  for (int i = 0; i < kSize; ++i)
    EXPECT_EQ(static_cast<bool>(t.find(int_key(t, i), at(ms))), i % 2 == 0) << i;
  EXPECT_EQ(t.used(), static_cast<uint64_t>(kSize));
}

// ---------------------------------------------------------------- walk, erase

TEST(StickTable, WalkRemovesWhatItIsToldToButNotTrackedEntries) {
  Table t(make_def(KeyType::kInteger, 10, 1000, {"conn_cnt"}));
  for (int i = 1; i <= 4; ++i) ASSERT_TRUE(t.find_or_make(int_key(t, i), at(0)));
  Entry* tracked = track(t, int_key(t, 3), at(0));
  ASSERT_TRUE(t.find_or_make(int_key(t, 5), at(500)));
  // At 1200 ms 1, 2 and 4 have expired: the walk does not see them.
  std::vector<std::string> seen;
  const size_t removed = t.walk(at(1200), [&](Table::Access& a) {
    seen.push_back(key_text(t.def(), a.data().key()));
    return false;  // remove every one
  });
  std::sort(seen.begin(), seen.end());
  EXPECT_EQ(seen, (std::vector<std::string>{"3", "5"}));
  EXPECT_EQ(removed, 1u);  // 5; 3 is tracked
  EXPECT_TRUE(t.find(int_key(t, 3), at(1200)));
  EXPECT_FALSE(t.find(int_key(t, 5), at(1200)));
  EXPECT_EQ(t.used(), 4u);  // 3 and the three expired ones
  EXPECT_EQ(t.purge_expired(at(1200)), 3u);
  EXPECT_EQ(t.used(), 1u);
  untrack(t, tracked, at(1200));
  EXPECT_EQ(t.walk(at(1200), [](Table::Access&) { return false; }), 1u);
  EXPECT_EQ(t.used(), 0u);
}

// The index (open addressing, slots shifted back on delete) and the entry
// pool (blocks reused by size): a table that grows to many thousands of
// entries a shard, loses most of them in a random order and takes new ones,
// of keys of every length, finds every key it holds and no other, walks each
// entry once, and a reused block starts empty.
TEST(StickTable, ManyKeysComeAndGoAndEveryOneIsFoundExactlyWhileItIsThere) {
  Table t(make_def(KeyType::kString, 1'000'000, 0, {"http_req_cnt"}, 40));
  const Now now = at(0);
  std::mt19937 rng(7);
  std::map<std::string, int64_t> model;
  auto key_of = [](uint32_t i) {
    // Lengths 1 to 40: entries of several sizes.
    std::string k = std::to_string(i);
    k.append(i % 40 >= k.size() ? i % 40 - k.size() + 1 : 0, 'x');
    return k;
  };
  for (int round = 0; round < 3; ++round) {
    for (uint32_t i = 0; i < 30'000; ++i) {
      const std::string k = key_of(static_cast<uint32_t>(rng() % 100'000));
      Table::Access a = t.find_or_make(k, now);
      ASSERT_TRUE(a);
      auto [it, fresh] = model.try_emplace(k, 0);
      // A new entry starts empty, whatever the block held before.
      if (fresh) {
        ASSERT_EQ(*a.data().value(Datum::kHttpReqCnt, 0, now), 0) << k;
      }
      a.data().add(Datum::kHttpReqCnt, 1 + k.size(), now);
      it->second += static_cast<int64_t>(1 + k.size());
    }
    std::vector<std::string> keys;
    for (const auto& [k, v] : model) keys.push_back(k);
    std::shuffle(keys.begin(), keys.end(), rng);
    for (size_t i = 0; i < keys.size() * 3 / 4; ++i) {
      ASSERT_TRUE(t.erase(keys[i])) << keys[i];
      model.erase(keys[i]);
    }
    ASSERT_EQ(t.used(), model.size());
    for (uint32_t i = 0; i < 100'000; ++i) {
      const std::string k = key_of(i);
      Table::Access a = t.find(k, now);
      auto it = model.find(k);
      ASSERT_EQ(static_cast<bool>(a), it != model.end()) << k;
      if (a) {
        ASSERT_EQ(*a.data().value(Datum::kHttpReqCnt, 0, now), it->second) << k;
      }
    }
    std::map<std::string, int> walked;
    t.walk(now, [&](Table::Access& a) {
      ++walked[std::string(a.data().key())];
      return true;
    });
    ASSERT_EQ(walked.size(), model.size());
    for (const auto& [k, n] : walked) ASSERT_EQ(n, 1) << k;
  }
}

// presize() before a full resync or a snapshot: the entries already there
// stay findable, the ones that come are found too, twice over (a second
// presize moves the indexes again), and walks and erases see the same keys.
TEST(StickTable, APresizedTableKeepsItsEntriesAndFindsEveryOneThatComesAfter) {
  Table t(make_def(KeyType::kString, 1'000'000, 0, {"http_req_cnt"}));
  const Now now = at(0);
  std::map<std::string, int64_t> model;
  auto add = [&](uint32_t from, uint32_t to) {
    for (uint32_t i = from; i < to; ++i) {
      const std::string k = "key-" + std::to_string(i);
      Table::Access a = t.find_or_make(k, now);
      ASSERT_TRUE(a) << k;
      a.data().add(Datum::kHttpReqCnt, i % 7 + 1, now);
      model[k] += i % 7 + 1;
    }
  };
  auto check = [&] {
    ASSERT_EQ(t.used(), model.size());
    for (const auto& [k, v] : model) {
      Table::Access a = t.find(k, now);
      ASSERT_TRUE(a) << k;
      ASSERT_EQ(*a.data().value(Datum::kHttpReqCnt, 0, now), v) << k;
    }
    EXPECT_FALSE(t.find("key-absent", now));
    size_t walked = 0;
    t.walk(now, [&](Table::Access&) {
      ++walked;
      return true;
    });
    ASSERT_EQ(walked, model.size());
  };
  add(0, 5'000);
  t.presize(300'000);
  check();
  add(5'000, 300'000);
  check();
  add(300'000, 450'000);  // past what was presized: the indexes double off the block
  check();
  t.presize(100);        // smaller: nothing changes
  t.presize(5'000'000);  // more than the table holds: its size
  check();
  for (uint32_t i = 0; i < 450'000; i += 3) {
    const std::string k = "key-" + std::to_string(i);
    ASSERT_TRUE(t.erase(k)) << k;
    model.erase(k);
  }
  add(450'000, 470'000);
  check();
}

// A presize for many entries makes their memory present ahead of them on a
// thread of the table's own: a table dropped at once (a reload, a resync that
// never came) stops that thread and goes, and one filled from two threads while
// it works gets every entry right.
TEST(StickTable, APresizedTableGoesAtOnceAndFillsFromTwoThreads) {
  {
    Table gone(make_def(KeyType::kString, 2'000'000, 0, {"http_req_cnt"}));
    gone.presize(2'000'000);
  }
  Table t(make_def(KeyType::kString, 1'000'000, 0, {"http_req_cnt"}));
  t.presize(400'000);
  const Now now = at(0);
  auto fill = [&](uint32_t from, uint32_t to) {
    for (uint32_t i = from; i < to; ++i) {
      Table::Access a = t.find_or_make("key-" + std::to_string(i), now);
      if (a) a.data().add(Datum::kHttpReqCnt, i % 5 + 1, now);
    }
  };
  std::thread other(fill, 200'000, 450'000);  // past the presized count
  fill(0, 200'000);
  other.join();
  ASSERT_EQ(t.used(), 450'000u);
  for (uint32_t i = 0; i < 450'000; i += 7) {
    Table::Access a = t.find("key-" + std::to_string(i), now);
    ASSERT_TRUE(a) << i;
    ASSERT_EQ(*a.data().value(Datum::kHttpReqCnt, 0, now), static_cast<int64_t>(i % 5 + 1)) << i;
  }
}

TEST(StickTable, EraseRefusesTrackedEntries) {
  Table t(make_def(KeyType::kInteger, 10, 0, {"conn_cnt"}));
  Entry* e = track(t, int_key(t, 1), at(0));
  ASSERT_TRUE(t.find_or_make(int_key(t, 2), at(0)));
  EXPECT_FALSE(t.erase(int_key(t, 1)));
  EXPECT_FALSE(t.erase(int_key(t, 3)));
  EXPECT_TRUE(t.erase(int_key(t, 2)));
  EXPECT_FALSE(t.erase(int_key(t, 2)));
  EXPECT_EQ(t.used(), 1u);
  untrack(t, e, at(1));
  EXPECT_TRUE(t.erase(int_key(t, 1)));
  EXPECT_EQ(t.used(), 0u);
  EXPECT_EQ(t.evicted(), 0u);
  EXPECT_EQ(t.expired(), 0u);
}

// ---------------------------------------------------------------- keys

TEST(StickKeys, IpTablesTakeIpv4AndMapIntoIpv6) {
  const TableDef ip = make_def(KeyType::kIp, 1, 0, {});
  const TableDef v6 = make_def(KeyType::kIpv6, 1, 0, {});
  std::string k;
  ASSERT_TRUE(key_from_text(ip, "192.0.2.7", &k));
  EXPECT_EQ(k, std::string("\xc0\x00\x02\x07", 4));
  EXPECT_EQ(key_text(ip, k), "192.0.2.7");
  ASSERT_TRUE(key_from_text(ip, "::ffff:192.0.2.7", &k));  // a mapped address is IPv4
  EXPECT_EQ(key_text(ip, k), "192.0.2.7");
  EXPECT_FALSE(key_from_text(ip, "2001:db8::1", &k));
  EXPECT_FALSE(key_from_text(ip, "192.0.2", &k));
  EXPECT_FALSE(key_from_text(ip, "", &k));
  EXPECT_FALSE(key_from_text(ip, "name.example", &k));
  // An IPv4 address in an ipv6 table: ::ffff:a.b.c.d, the same as written so.
  ASSERT_TRUE(key_from_text(v6, "192.0.2.7", &k));
  EXPECT_EQ(k.size(), 16u);
  EXPECT_EQ(key_text(v6, k), "::ffff:192.0.2.7");
  std::string mapped;
  ASSERT_TRUE(key_from_text(v6, "::ffff:192.0.2.7", &mapped));
  EXPECT_EQ(mapped, k);
  for (const char* text :
       {"2001:db8::1", "::1", "::", "fe80::1:2:3:4", "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff"}) {
    ASSERT_TRUE(key_from_text(v6, text, &k)) << text;
    EXPECT_EQ(k.size(), 16u);
    EXPECT_EQ(key_text(v6, k), text);
  }
  ASSERT_TRUE(key_from_text(v6, "2001:DB8:0:0::1", &k));
  EXPECT_EQ(key_text(v6, k), "2001:db8::1");
  // From an address in the 16-byte form fetches give.
  uint8_t ip16[16] = {};
  ip16[10] = ip16[11] = 0xff;
  ip16[12] = 10;
  ip16[15] = 9;
  ASSERT_TRUE(key_from_ip(ip, ip16, true, &k));
  EXPECT_EQ(key_text(ip, k), "10.0.0.9");
  ASSERT_TRUE(key_from_ip(v6, ip16, true, &k));
  EXPECT_EQ(key_text(v6, k), "::ffff:10.0.0.9");
  in6_addr a6{};
  ASSERT_EQ(::inet_pton(AF_INET6, "2001:db8::42", &a6), 1);
  std::memcpy(ip16, &a6, 16);
  EXPECT_FALSE(key_from_ip(ip, ip16, false, &k));
  ASSERT_TRUE(key_from_ip(v6, ip16, false, &k));
  EXPECT_EQ(key_text(v6, k), "2001:db8::42");
  // Numbers are no addresses.
  EXPECT_FALSE(key_from_int(ip, 3221225991, &k));
  EXPECT_FALSE(key_from_int(v6, 1, &k));
}

TEST(StickKeys, IntegersNegativeAndBig) {
  const TableDef t = make_def(KeyType::kInteger, 1, 0, {});
  std::string k;
  for (int64_t v :
       {int64_t{0}, int64_t{1}, int64_t{-1}, int64_t{255}, int64_t{256}, int64_t{-123456789012},
        std::numeric_limits<int64_t>::max(), std::numeric_limits<int64_t>::min()}) {
    ASSERT_TRUE(key_from_int(t, v, &k)) << v;
    EXPECT_EQ(k.size(), 8u);
    EXPECT_EQ(key_text(t, k), std::to_string(v));
    std::string from_text;
    ASSERT_TRUE(key_from_text(t, std::to_string(v), &from_text)) << v;
    EXPECT_EQ(from_text, k) << v;
  }
  ASSERT_TRUE(key_from_int(t, 258, &k));
  EXPECT_EQ(k, std::string("\0\0\0\0\0\0\x01\x02", 8));  // big-endian
  ASSERT_TRUE(key_from_int(t, -2, &k));
  EXPECT_EQ(k, std::string("\xff\xff\xff\xff\xff\xff\xff\xfe", 8));
  for (const char* bad :
       {"", "-", "+5", "5x", " 5", "1.5", "9223372036854775808", "-9223372036854775809",
        "18446744073709551616", "99999999999999999999", "123456789012345678901", "192.0.2.1"}) {
    EXPECT_FALSE(key_from_text(t, bad, &k)) << bad;
  }
  ASSERT_TRUE(key_from_text(t, "-0", &k));
  EXPECT_EQ(key_text(t, k), "0");
  ASSERT_TRUE(key_from_text(t, "007", &k));
  EXPECT_EQ(key_text(t, k), "7");
  uint8_t ip16[16] = {};
  EXPECT_FALSE(key_from_ip(t, ip16, false, &k));
}

TEST(StickKeys, StringsAreCutAtTheKeySize) {
  const TableDef t = make_def(KeyType::kString, 1, 0, {}, 8);
  std::string k;
  ASSERT_TRUE(key_from_text(t, "abcdefghijkl", &k));
  EXPECT_EQ(k, "abcdefgh");
  EXPECT_EQ(key_text(t, k), "abcdefgh");
  ASSERT_TRUE(key_from_text(t, "abc", &k));
  EXPECT_EQ(k, "abc");
  // An empty value is no key: every client sending one would share an entry.
  EXPECT_FALSE(key_from_text(t, "", &k));
  ASSERT_TRUE(key_from_command(t, "0123456789", &k));  // typed: the same as a sample
  EXPECT_EQ(k, "01234567");
  // Numbers and addresses as their text.
  ASSERT_TRUE(key_from_int(t, -42, &k));
  EXPECT_EQ(k, "-42");
  ASSERT_TRUE(key_from_int(t, std::numeric_limits<int64_t>::min(), &k));
  EXPECT_EQ(k, "-9223372");  // cut
  uint8_t ip16[16] = {};
  ip16[10] = ip16[11] = 0xff;
  ip16[12] = 1;
  ip16[15] = 4;
  ASSERT_TRUE(key_from_ip(t, ip16, true, &k));
  EXPECT_EQ(k, "1.0.0.4");
  const TableDef wide = make_def(KeyType::kString, 1, 0, {}, 64);
  in6_addr a6{};
  ASSERT_EQ(::inet_pton(AF_INET6, "2001:db8::1:2", &a6), 1);
  std::memcpy(ip16, &a6, 16);
  ASSERT_TRUE(key_from_ip(wide, ip16, false, &k));
  EXPECT_EQ(k, "2001:db8::1:2");
  // Long keys (the largest key_size) are kept whole, and two keys that differ
  // only past key_size are one entry.
  const TableDef big = make_def(KeyType::kString, 4, 0, {"conn_cnt"}, 1024);
  const std::string long_text(3000, 'x');
  ASSERT_TRUE(key_from_text(big, long_text, &k));
  EXPECT_EQ(k.size(), 1024u);
  Table table(big);
  std::string k1, k2;
  ASSERT_TRUE(key_from_text(big, std::string(1024, 'y') + "1", &k1));
  ASSERT_TRUE(key_from_text(big, std::string(1024, 'y') + "2", &k2));
  table.find_or_make(k1, at(0)).data().add(Datum::kConnCnt, 1, at(0));
  table.find_or_make(k2, at(0)).data().add(Datum::kConnCnt, 1, at(0));
  EXPECT_EQ(table.used(), 1u);
  EXPECT_EQ(table.find(k1, at(0)).data().value(Datum::kConnCnt, 0, at(0)), 2);
  EXPECT_EQ(table.find(k1, at(0)).data().key(), std::string(1024, 'y'));
}

TEST(StickKeys, BinaryKeysAreHexInCommands) {
  const TableDef t = make_def(KeyType::kBinary, 1, 0, {}, 4);
  std::string k;
  ASSERT_TRUE(key_from_text(t, std::string("\x00\xff\x10", 3), &k));  // a sample: its bytes
  EXPECT_EQ(k, std::string("\x00\xff\x10", 3));
  EXPECT_EQ(key_text(t, k), "00ff10");
  std::string typed;
  ASSERT_TRUE(key_from_command(t, "00FF10", &typed));
  EXPECT_EQ(typed, k);
  ASSERT_TRUE(key_from_command(t, "0102030405", &typed));  // cut at key_size bytes
  EXPECT_EQ(typed, std::string("\x01\x02\x03\x04", 4));
  EXPECT_FALSE(key_from_command(t, "0g", &typed));
  EXPECT_FALSE(key_from_command(t, "123", &typed));
  ASSERT_TRUE(key_from_command(t, "", &typed));
  EXPECT_EQ(typed, "");
  // Other types read commands as samples.
  const TableDef ip = make_def(KeyType::kIp, 1, 0, {});
  ASSERT_TRUE(key_from_command(ip, "10.1.2.3", &typed));
  EXPECT_EQ(key_text(ip, typed), "10.1.2.3");
  const TableDef s = make_def(KeyType::kString, 1, 0, {});
  ASSERT_TRUE(key_from_command(s, "00ff", &typed));
  EXPECT_EQ(typed, "00ff");
}

TEST(StickKeys, TypeNames) {
  EXPECT_EQ(key_type_name(KeyType::kIp), "ip");
  EXPECT_EQ(key_type_name(KeyType::kIpv6), "ipv6");
  EXPECT_EQ(key_type_name(KeyType::kInteger), "integer");
  EXPECT_EQ(key_type_name(KeyType::kString), "string");
  EXPECT_EQ(key_type_name(KeyType::kBinary), "binary");
}

// ---------------------------------------------------------------- the model

// A table as the documentation describes it, kept in a std::map: entries with
// their counters and the events of their rates, a last-use time, trackers.
struct ModelEntry {
  int64_t conn_cnt = 0, conn_cur = 0;
  int64_t gpc[2] = {};
  std::vector<std::pair<int64_t, uint64_t>> req_events, gpc_events[2];
  int trackers = 0;
  int64_t touched = 0;
};

struct Model {
  uint64_t size = 0;
  int64_t expire = 0;
  std::map<int64_t, ModelEntry> entries;
  uint64_t evicted = 0, expired = 0, refused = 0;

  bool expired_at(const ModelEntry& e, int64_t mono) const {
    return expire > 0 && e.trackers == 0 && mono - e.touched >= expire;
  }
  // The entry of key, made (and room made) when missing; null when every
  // entry is tracked.
  ModelEntry* get(int64_t key, int64_t mono, bool track) {
    auto it = entries.find(key);
    if (it != entries.end() && expired_at(it->second, mono)) {
      it->second = ModelEntry{};
      ++expired;
    }
    if (it == entries.end()) {
      if (entries.size() >= size) {
        auto victim = entries.end();
        for (auto v = entries.begin(); v != entries.end(); ++v) {
          if (v->second.trackers == 0 &&
              (victim == entries.end() || v->second.touched < victim->second.touched)) {
            victim = v;
          }
        }
        if (victim == entries.end()) {
          ++refused;
          return nullptr;
        }
        entries.erase(victim);
        ++evicted;
      }
      it = entries.emplace(key, ModelEntry{}).first;
    }
    it->second.touched = mono;
    if (track) ++it->second.trackers;
    return &it->second;
  }
  const ModelEntry* find(int64_t key, int64_t mono) const {
    auto it = entries.find(key);
    return it == entries.end() || expired_at(it->second, mono) ? nullptr : &it->second;
  }
};

constexpr int64_t kReqPeriod = 100, kGpcPeriod = 30;

void expect_same(const Table& t, const Model& m, const Now& now, int keys, int step) {
  ASSERT_EQ(t.used(), m.entries.size()) << "step " << step;
  ASSERT_EQ(t.evicted(), m.evicted) << "step " << step;
  ASSERT_EQ(t.expired(), m.expired) << "step " << step;
  ASSERT_EQ(t.refused(), m.refused) << "step " << step;
  for (int key = 0; key < keys; ++key) {
    const ModelEntry* me = m.find(key, now.mono_ms);
    Table::Access a = const_cast<Table&>(t).find(int_key(t, key), now);
    ASSERT_EQ(static_cast<bool>(a), me != nullptr) << "step " << step << " key " << key;
    if (!me) continue;
    const EntryData d = a.data();
    ASSERT_EQ(d.value(Datum::kConnCnt, 0, now), me->conn_cnt) << "step " << step;
    ASSERT_EQ(d.value(Datum::kConnCur, 0, now), me->conn_cur) << "step " << step;
    ASSERT_EQ(d.trackers(), static_cast<uint32_t>(me->trackers)) << "step " << step;
    ASSERT_EQ(d.value(Datum::kHttpReqRate, 0, now),
              static_cast<int64_t>(model_rate(me->req_events, now.wall_ms, kReqPeriod)))
        << "step " << step << " key " << key;
    for (int i = 0; i < 2; ++i) {
      ASSERT_EQ(d.value(Datum::kGpc, i, now), me->gpc[i]) << "step " << step;
      ASSERT_EQ(d.value(Datum::kGpcRate, i, now),
                static_cast<int64_t>(model_rate(me->gpc_events[i], now.wall_ms, kGpcPeriod)))
          << "step " << step << " key " << key;
    }
  }
}

// A small table (its few entries mostly in shards of their own) with and
// without expiry, and a larger one whose shards hold several entries each.
struct ModelRun {
  uint64_t size;
  int keys;
  int64_t expire;
};

TEST(StickTable, AgreesWithAModelOverRandomOperations) {
  for (const ModelRun run : {ModelRun{6, 12, 0}, ModelRun{6, 12, 120}, ModelRun{64, 160, 0}}) {
    SCOPED_TRACE("size " + std::to_string(run.size) + " expire " + std::to_string(run.expire));
    const int kKeys = run.keys;
    Table t(
        make_def(KeyType::kInteger, run.size, run.expire,
                 {"conn_cnt", "conn_cur", "http_req_rate(100ms)", "gpc(2)", "gpc_rate(2,30ms)"}));
    Model m;
    m.size = run.size;
    m.expire = run.expire;
    std::mt19937 rng(1919);
    std::vector<std::pair<Entry*, int64_t>> tracks;  // what this "connection" tracks
    int64_t ms = 0;
    for (int step = 0; step < 4000; ++step) {
      ms += 1 + (rng() % 4 == 0 ? static_cast<int64_t>(rng() % 200) : 0);
      const Now now = at(ms);
      const int64_t key = static_cast<int64_t>(rng() % kKeys);
      switch (rng() % 10) {
        case 0:
        case 1: {  // track (conn_cnt, conn_cur + 1), up to 8 at a time
          if (tracks.size() >= run.size + 2) break;
          Entry* e = track(t, int_key(t, key), now);
          ModelEntry* me = m.get(key, now.mono_ms, true);
          ASSERT_EQ(e != nullptr, me != nullptr) << "step " << step;
          if (!e) break;
          Table::Access a = t.open(e, now);
          const EntryData d = a.data();
          d.add(Datum::kConnCnt, 1, now);
          d.add(Datum::kConnCur, 1, now);
          ++me->conn_cnt;
          ++me->conn_cur;
          tracks.emplace_back(e, key);
          break;
        }
        case 2:
        case 9: {  // a tracker lets go
          if (tracks.empty()) break;
          const size_t i = rng() % tracks.size();
          auto [e, k] = tracks[i];
          tracks.erase(tracks.begin() + static_cast<ptrdiff_t>(i));
          t.open(e, now).data().add(Datum::kConnCur, -1, now);
          untrack(t, e, now);
          ModelEntry& me = m.entries.at(k);
          --me.conn_cur;
          --me.trackers;
          me.touched = now.mono_ms;
          break;
        }
        case 3: {  // a tracked entry counts requests
          if (tracks.empty()) break;
          auto [e, k] = tracks[rng() % tracks.size()];
          const uint64_t n = 1 + rng() % 3;
          t.open(e, now).data().add(Datum::kHttpReqRate, static_cast<int64_t>(n), now);
          ModelEntry& me = m.entries.at(k);
          me.req_events.emplace_back(now.wall_ms, n);
          me.touched = now.mono_ms;
          break;
        }
        case 4:
        case 5: {  // a lookup that makes the entry (sc_inc_gpc on a looked-up key)
          Table::Access a = t.find_or_make(int_key(t, key), now);
          ModelEntry* me = m.get(key, now.mono_ms, false);
          ASSERT_EQ(static_cast<bool>(a), me != nullptr) << "step " << step;
          if (!a) break;
          const uint32_t i = rng() % 2;
          a.data().add(Datum::kGpc, 1, now, i);
          a.data().add(Datum::kGpcRate, 1, now, i);
          ++me->gpc[i];
          me->gpc_events[i].emplace_back(now.wall_ms, 1);
          break;
        }
        case 6: {  // purge
          size_t n = 0;
          for (auto it = m.entries.begin(); it != m.entries.end();) {
            if (m.expired_at(it->second, now.mono_ms)) {
              it = m.entries.erase(it);
              ++n;
            } else {
              ++it;
            }
          }
          m.expired += n;
          ASSERT_EQ(t.purge_expired(now), n) << "step " << step;
          break;
        }
        case 7: {  // erase
          auto it = m.entries.find(key);
          const bool gone = it != m.entries.end() && it->second.trackers == 0;
          if (gone) m.entries.erase(it);
          ASSERT_EQ(t.erase(int_key(t, key)), gone) << "step " << step;
          break;
        }
        case 8: {  // a walk that removes the multiples of 3 (not tracked, not expired)
          size_t n = 0;
          for (auto it = m.entries.begin(); it != m.entries.end();) {
            if (it->first % 3 == 0 && it->second.trackers == 0 &&
                !m.expired_at(it->second, now.mono_ms)) {
              it = m.entries.erase(it);
              ++n;
            } else {
              ++it;
            }
          }
          const size_t removed = t.walk(now, [&](Table::Access& a) {
            std::string_view k = a.data().key();
            return !k.empty() && static_cast<uint8_t>(k.back()) % 3 != 0;
          });
          ASSERT_EQ(removed, n) << "step " << step;
          break;
        }
      }
      expect_same(t, m, now, kKeys, step);
      if (HasFatalFailure()) return;
    }
    // Every tracker lets go: conn_cur back to 0 everywhere.
    const Now end = at(++ms);
    for (auto [e, k] : tracks) {
      t.open(e, end).data().add(Datum::kConnCur, -1, end);
      untrack(t, e, end);
    }
    t.walk(end, [&](Table::Access& a) {
      EXPECT_EQ(a.data().value(Datum::kConnCur, 0, end), 0);
      EXPECT_EQ(a.data().trackers(), 0u);
      return true;
    });
    EXPECT_GT(t.evicted(), 0u);
    if (run.size < 10) {
      EXPECT_GT(t.refused(), 0u);
    }
    if (run.expire) {
      EXPECT_GT(t.expired(), 0u);
    }
  }
}

// ---------------------------------------------------------------- threads

// Four threads track, count and let go of the same few keys and of their own,
// on a roomy table (every count must add up) and on a small one (evictions,
// refusals and purges meanwhile); at the end conn_cur is 0 everywhere and
// used() is the number of entries.
TEST(StickTable, ManyThreadsTrackAndCountTheSameEntries) {
  constexpr int kThreads = 4, kRounds = 3000;
  Table roomy(make_def(KeyType::kInteger, 1000, 0, {"conn_cnt", "conn_cur", "http_req_cnt"}));
  Table tight(make_def(KeyType::kInteger, 8, 5, {"conn_cnt", "conn_cur", "http_req_cnt"}));
  std::atomic<int64_t> tracked_roomy{0};
  std::vector<std::thread> threads;
  for (int id = 0; id < kThreads; ++id) {
    threads.emplace_back([&, id] {
      std::mt19937 rng(static_cast<unsigned>(id));
      std::vector<std::pair<Table*, Entry*>> held;
      auto release = [&](size_t i) {
        auto [tb, e] = held[i];
        const Now now = clock_now();
        tb->open(e, now).data().add(Datum::kConnCur, -1, now);
        untrack(*tb, e, now);
        held.erase(held.begin() + static_cast<ptrdiff_t>(i));
      };
      for (int r = 0; r < kRounds; ++r) {
        const Now now = clock_now();
        // Keys 0..5 are everyone's; 100 * (id + 1) + 0..3 this thread's.
        const int64_t key = rng() % 2 ? rng() % 6 : 100 * (id + 1) + rng() % 4;
        Table& tb = rng() % 2 ? roomy : tight;
        if (held.size() < 3) {
          std::string k;
          key_from_int(tb.def(), key, &k);
          if (Entry* e = track(tb, k, now)) {
            Table::Access a = tb.open(e, now);
            const EntryData d = a.data();
            d.add(Datum::kConnCnt, 1, now);
            d.add(Datum::kConnCur, 1, now);
            if (&tb == &roomy) tracked_roomy.fetch_add(1, std::memory_order_relaxed);
            held.emplace_back(&tb, e);
          }
        }
        if (!held.empty()) {
          auto [tb2, e] = held[rng() % held.size()];
          tb2->open(e, now).data().add(Datum::kHttpReqCnt, 1, now);
        }
        if (!held.empty() && rng() % 2) release(rng() % held.size());
        if (r % 64 == 0) {
          std::string k;
          key_from_int(tight.def(), key, &k);
          if (auto a = tight.find(k, now)) (void)a.data().value(Datum::kConnCnt, 0, now);
          tight.purge_expired(now);
          tight.walk(now, [](Table::Access&) { return true; });
        }
      }
      while (!held.empty()) release(held.size() - 1);
    });
  }
  for (auto& th : threads) th.join();
  const Now end = clock_now();
  int64_t conn_cnt = 0;
  size_t entries = 0;
  roomy.walk(end, [&](Table::Access& a) {
    EXPECT_EQ(a.data().value(Datum::kConnCur, 0, end), 0);
    EXPECT_EQ(a.data().trackers(), 0u);
    conn_cnt += *a.data().value(Datum::kConnCnt, 0, end);
    ++entries;
    return true;
  });
  EXPECT_EQ(conn_cnt, tracked_roomy.load());
  EXPECT_EQ(entries, roomy.used());
  EXPECT_EQ(roomy.evicted(), 0u);
  entries = 0;
  const Now never = {end.mono_ms - 1'000'000, end.wall_ms};  // sees expired entries too
  tight.walk(never, [&](Table::Access& a) {
    EXPECT_EQ(a.data().value(Datum::kConnCur, 0, end), 0);
    EXPECT_EQ(a.data().trackers(), 0u);
    ++entries;
    return true;
  });
  EXPECT_EQ(entries, tight.used());
  EXPECT_LE(tight.used(), 8u);
}

}  // namespace
}  // namespace weir::stick
