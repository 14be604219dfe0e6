// Stick-table rows between processes (common/stick/sync.h), with explicit
// clocks: what a table's journal hears, what a DELTA batch carries and folds,
// what absolute rows (snapshots, refills, sets) do on the other side, rates
// added to the sender's period, last-writer-wins data, columns that the
// receiver does not store, and keys the receiver's type could not hold.

#include "common/stick/sync.h"

#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

namespace weir::stick {
namespace {

constexpr int64_t kWall = 1'700'000'000'000;  // a multiple of 10 s

TableDef def_of(const std::string& name, std::vector<std::string> store,
                KeyType type = KeyType::kString) {
  TableDef d;
  d.name = name;
  d.type = type;
  d.key_size = 32;
  d.size = 1000;
  d.expire_ms = 60000;
  for (const std::string& s : store) {
    std::string error;
    auto st = parse_stored(s, &error);
    EXPECT_TRUE(st) << s << ": " << error;
    if (st) d.store.push_back(*st);
  }
  return d;
}

// What a worker's link hears from a table.
struct RecordingJournal : Journal {
  std::vector<std::string> changed_keys, erased_keys;
  std::vector<Epoch> erased_epochs;
  int coalesced_count = 0;
  void changed(Table&, std::string_view key) override { changed_keys.emplace_back(key); }
  void coalesced() override { ++coalesced_count; }
  void erased(Table&, std::string_view key, const Epoch& e) override {
    erased_keys.emplace_back(key);
    erased_epochs.push_back(e);
  }
};

int64_t value_of(Table& t, const std::string& key, Datum d, const Now& now, uint32_t i = 0) {
  Table::Access a = t.find(key, now);
  if (!a) return -1;
  return a.data().value(d, i, now).value_or(-2);
}

// The pending changes of `keys` as one DELTA batch (what the link sends).
proto::TableBatch delta_of(Table& t, const std::vector<std::string>& keys, const Now& now) {
  sync::BatchWriter w(t, proto::TableBatch::DELTA, now.wall_ms);
  for (const std::string& k : keys) w.add_pending(k, now);
  return w.take();
}

TEST(StickSync, TheJournalHearsOfAnEntryOnceUntilItIsSent) {
  Table t(def_of("t", {"http_req_cnt"}));
  RecordingJournal j;
  t.set_journal(&j);
  const Now now{1000, kWall};
  for (int i = 0; i < 3; ++i) t.find_or_make("a", now).data().add(Datum::kHttpReqCnt, 1, now);
  EXPECT_EQ(j.changed_keys, std::vector<std::string>{"a"});
  EXPECT_EQ(j.coalesced_count, 2);
  // A read changes nothing and says nothing.
  { auto a = t.find("a", now); }
  EXPECT_EQ(j.changed_keys.size(), 1u);
  // Once sent, the next change is news again.
  const proto::TableBatch b = delta_of(t, {"a"}, now);
  ASSERT_EQ(b.rows_size(), 1);
  t.find_or_make("a", now).data().add(Datum::kHttpReqCnt, 1, now);
  EXPECT_EQ(j.changed_keys.size(), 2u);
  // A removal by a command is heard; by the agent's batch (tell = false), not.
  t.erase("a");
  EXPECT_EQ(j.erased_keys, std::vector<std::string>{"a"});
  t.find_or_make("b", now).data().add(Datum::kHttpReqCnt, 1, now);
  t.erase("b", false);
  EXPECT_EQ(j.erased_keys.size(), 1u);
  t.set_journal(nullptr);
}

TEST(StickSync, ADeltaCarriesWhatWasCountedSinceTheLastOneAndTheValueDoesNotMove) {
  Table t(def_of("t", {"http_req_cnt", "conn_cur", "http_req_rate(10s)"}));
  RecordingJournal j;
  t.set_journal(&j);
  const Now now{1000, kWall + 2000};
  {
    auto a = t.find_or_make("k", now);
    a.data().add(Datum::kHttpReqCnt, 5, now);
    a.data().add(Datum::kConnCur, 2, now);
    a.data().add(Datum::kHttpReqRate, 5, now);
  }
  proto::TableBatch b = delta_of(t, {"k"}, now);
  ASSERT_EQ(b.rows_size(), 1);
  EXPECT_EQ(b.kind(), proto::TableBatch::DELTA);
  EXPECT_EQ(b.rows(0).flags(), 0u);
  // Columns in `store:` order, one value each.
  ASSERT_EQ(b.columns_size(), 3);
  EXPECT_EQ(b.rows(0).values(0), 5);
  EXPECT_EQ(b.rows(0).values(1), 2);
  EXPECT_EQ(b.rows(0).values(2), 5);
  // Sending folds the counts: the value stays, the next delta starts from 0.
  EXPECT_EQ(value_of(t, "k", Datum::kHttpReqCnt, now), 5);
  EXPECT_EQ(value_of(t, "k", Datum::kHttpReqRate, now), 5);
  {
    auto a = t.find_or_make("k", now);
    a.data().add(Datum::kHttpReqCnt, 1, now);
    a.data().add(Datum::kConnCur, -2, now);  // both connections closed
  }
  b = delta_of(t, {"k"}, now);
  EXPECT_EQ(b.rows(0).values(0), 1);
  EXPECT_EQ(b.rows(0).values(1), -2);
  EXPECT_EQ(b.rows(0).values(2), 0);
  EXPECT_EQ(value_of(t, "k", Datum::kConnCur, now), 0);
  // Nothing pending: nothing to send.
  sync::BatchWriter w(t, proto::TableBatch::DELTA, now.wall_ms);
  EXPECT_FALSE(w.add_pending("k", now));
  EXPECT_FALSE(w.add_pending("missing", now));
  t.set_journal(nullptr);
}

TEST(StickSync, DeltasFromTwoProcessesAddUpInAThird) {
  const TableDef d = def_of("t", {"http_req_cnt", "http_req_rate(10s)", "conn_cur"});
  Table a(d), b(d), agent(d);
  RecordingJournal ja, jb;
  a.set_journal(&ja);
  b.set_journal(&jb);
  const Now now{1000, kWall + 1000};
  for (int i = 0; i < 7; ++i) a.find_or_make("k", now).data().add(Datum::kHttpReqCnt, 1, now);
  for (int i = 0; i < 4; ++i) b.find_or_make("k", now).data().add(Datum::kHttpReqCnt, 1, now);
  a.find_or_make("k", now).data().add(Datum::kHttpReqRate, 7, now);
  b.find_or_make("k", now).data().add(Datum::kHttpReqRate, 4, now);
  const proto::TableBatch from_a = delta_of(a, {"k"}, now);
  const proto::TableBatch from_b = delta_of(b, {"k"}, now);
  sync::apply(agent, from_a, now);
  sync::apply(agent, from_b, now);
  // The agent forwards each to the other process.
  sync::apply(b, from_a, now);
  sync::apply(a, from_b, now);
  for (Table* t : {&a, &b, &agent}) {
    EXPECT_EQ(value_of(*t, "k", Datum::kHttpReqCnt, now), 11);
    EXPECT_EQ(value_of(*t, "k", Datum::kHttpReqRate, now), 11);
  }
  // A batch applied does not echo: neither journal heard of it.
  EXPECT_EQ(ja.changed_keys.size(), 1u);
  EXPECT_EQ(jb.changed_keys.size(), 1u);
  a.set_journal(nullptr);
  b.set_journal(nullptr);
}

TEST(StickSync, RateEventsLandInTheSendersPeriod) {
  const TableDef d = def_of("t", {"http_req_rate(10s)"});
  Table sender(d), receiver(d);
  RecordingJournal j;
  sender.set_journal(&j);
  // Sent just before a period ends, applied just after: they belong to the
  // previous period on the receiver (weighted by what is left of the new one).
  const Now before{1000, kWall + 9990};
  sender.find_or_make("k", before).data().add(Datum::kHttpReqRate, 10, before);
  const proto::TableBatch b = delta_of(sender, {"k"}, before);
  const Now after{1020, kWall + 10000 + 5000};  // half of the new period left
  sync::apply(receiver, b, after);
  EXPECT_EQ(value_of(receiver, "k", Datum::kHttpReqRate, after), 5);
  EXPECT_EQ(value_of(sender, "k", Datum::kHttpReqRate, after), 5);
  sender.set_journal(nullptr);
}

TEST(StickSync, ASnapshotSetsTotalsUnderWhatTheReceiverHasNotSentYet) {
  const TableDef d = def_of("t", {"http_req_cnt", "conn_cur", "http_req_rate(10s)"});
  Table agent(d), worker(d);
  RecordingJournal j;
  worker.set_journal(&j);
  const Now now{1000, kWall + 3000};
  {
    auto a = agent.find_or_make("k", now);
    a.data().counter(Datum::kHttpReqCnt)->others = 100;
    a.data().counter(Datum::kConnCur)->others = 3;
    a.data().rate(Datum::kHttpReqRate)->add_at(40, now.wall_ms, 10000);
  }
  // The worker counted 2 requests it has not sent yet.
  {
    auto a = worker.find_or_make("k", now);
    a.data().add(Datum::kHttpReqCnt, 2, now);
    a.data().add(Datum::kHttpReqRate, 2, now);
  }
  sync::write_all(agent, proto::TableBatch::SNAPSHOT, now,
                  [&](const proto::TableBatch& b) { sync::apply(worker, b, now); });
  EXPECT_EQ(value_of(worker, "k", Datum::kHttpReqCnt, now), 102);
  EXPECT_EQ(value_of(worker, "k", Datum::kConnCur, now), 3);
  EXPECT_EQ(value_of(worker, "k", Datum::kHttpReqRate, now), 42);
  // Its own 2 are still to be sent, and only them.
  const proto::TableBatch b = delta_of(worker, {"k"}, now);
  EXPECT_EQ(b.rows(0).values(0), 2);
  EXPECT_EQ(b.rows(0).values(2), 2);
  worker.set_journal(nullptr);
}

TEST(StickSync, ARefillKeepsTheLargerValueSoRepeatingItChangesNothing) {
  const TableDef d = def_of("t", {"http_req_cnt"});
  Table worker(d), agent(d);
  const Now now{1000, kWall};
  worker.find_or_make("k", now).data().counter(Datum::kHttpReqCnt)->others = 50;
  agent.find_or_make("k", now).data().counter(Datum::kHttpReqCnt)->others =
      53;  // a delta got there
  worker.find_or_make("j", now).data().counter(Datum::kHttpReqCnt)->others = 9;
  for (int round = 0; round < 2; ++round) {
    sync::write_all(worker, proto::TableBatch::REFILL, now,
                    [&](const proto::TableBatch& b) { sync::apply(agent, b, now); });
  }
  EXPECT_EQ(value_of(agent, "k", Datum::kHttpReqCnt, now), 53);
  EXPECT_EQ(value_of(agent, "j", Datum::kHttpReqCnt, now), 9);
}

TEST(StickSync, ASetTravelsAsTotalsAndAnEraseAsAnErase) {
  const TableDef d = def_of("t", {"gpc(1)"});
  Table a(d), b(d);
  RecordingJournal ja;
  a.set_journal(&ja);
  const Now now{1000, kWall};
  b.find_or_make("k", now).data().counter(Datum::kGpc)->others = 40;
  a.find_or_make("k", now).data().counter(Datum::kGpc)->others = 40;
  a.find_or_make("k", now).data().set(Datum::kGpc, 0, 7, now);  // `set table`
  proto::TableBatch batch = delta_of(a, {"k"}, now);
  ASSERT_EQ(batch.rows_size(), 1);
  EXPECT_EQ(batch.rows(0).flags(), sync::kRowAbsolute);
  sync::apply(b, batch, now);
  EXPECT_EQ(value_of(b, "k", Datum::kGpc, now), 7);
  sync::BatchWriter w(a, proto::TableBatch::DELTA, now.wall_ms);
  w.add_erased("k");
  sync::apply(b, w.take(), now);
  EXPECT_EQ(value_of(b, "k", Datum::kGpc, now), -1);  // gone
  a.set_journal(nullptr);
}

TEST(StickSync, TheNewestTagWinsWhateverTheOrderOfArrival) {
  const TableDef d = def_of("t", {"gpt(1)", "server_key"});
  Table x(d), y(d), agent(d);
  RecordingJournal jx, jy;
  x.set_journal(&jx);
  y.set_journal(&jy);
  const Now t1{1000, kWall}, t2{1000, kWall + 5};
  x.find_or_make("k", t1).data().set(Datum::kGpt, 0, 1, t1);
  y.find_or_make("k", t2).data().set(Datum::kGpt, 0, 2, t2);
  y.find_or_make("k", t2).data().set(Datum::kServerKey, 0, name_id("s2"), t2);
  const proto::TableBatch bx = delta_of(x, {"k"}, t1), by = delta_of(y, {"k"}, t2);
  sync::apply(agent, by, t2);
  sync::apply(agent, bx, t2);  // older: loses
  sync::apply(x, by, t2);
  sync::apply(y, bx, t2);
  for (Table* t : {&x, &y, &agent}) {
    EXPECT_EQ(value_of(*t, "k", Datum::kGpt, t2), 2);
    Table::Access a = t->find("k", t2);
    ASSERT_TRUE(a);
    EXPECT_EQ(name_of(*a.data().server_key()), "s2");
  }
  x.set_journal(nullptr);
  y.set_journal(nullptr);
}

TEST(StickSync, SettingATagLeavesTheCountersADelta) {
  const TableDef d = def_of("t", {"http_err_cnt", "gpt(1)"});
  Table a(d), agent(d);
  RecordingJournal j;
  a.set_journal(&j);
  const Now now{1000, kWall};
  agent.find_or_make("k", now).data().counter(Datum::kHttpErrCnt)->others = 30;  // others' errors
  {
    auto e = a.find_or_make("k", now);
    e.data().add(Datum::kHttpErrCnt, 1, now);
    e.data().set(Datum::kGpt, 0, 1, now);  // sc_set_gpt: block this client
  }
  const proto::TableBatch b = delta_of(a, {"k"}, now);
  ASSERT_EQ(b.rows_size(), 1);
  EXPECT_EQ(b.rows(0).flags(), 0u);
  sync::apply(agent, b, now);
  EXPECT_EQ(value_of(agent, "k", Datum::kHttpErrCnt, now), 31);
  EXPECT_EQ(value_of(agent, "k", Datum::kGpt, now), 1);
  a.set_journal(nullptr);
}

TEST(StickSync, TablesWithDifferentStoresShareWhatTheyHaveInCommon) {
  Table older(def_of("t", {"http_req_cnt", "gpc(2)"}));
  Table newer(def_of("t", {"gpc(1)", "conn_cnt", "http_req_cnt"}));
  RecordingJournal j;
  older.set_journal(&j);
  const Now now{1000, kWall};
  {
    auto a = older.find_or_make("k", now);
    a.data().add(Datum::kHttpReqCnt, 3, now);
    a.data().add(Datum::kGpc, 4, now, 0);
    a.data().add(Datum::kGpc, 5, now, 1);
  }
  sync::apply(newer, delta_of(older, {"k"}, now), now);
  EXPECT_EQ(value_of(newer, "k", Datum::kHttpReqCnt, now), 3);
  EXPECT_EQ(value_of(newer, "k", Datum::kGpc, now, 0), 4);
  EXPECT_EQ(value_of(newer, "k", Datum::kConnCnt, now), 0);
  older.set_journal(nullptr);
}

TEST(StickSync, KeysTheTableCouldNotHoldAreSkipped) {
  Table ip(def_of("t", {"conn_cnt"}, KeyType::kIp));
  proto::TableBatch b;
  b.set_table("t");
  b.set_kind(proto::TableBatch::DELTA);
  b.set_wall_ms(kWall);
  b.add_columns(static_cast<uint32_t>(Datum::kConnCnt) << 8);
  for (const std::string& key :
       {std::string("12345"), std::string(), std::string("\x7f\0\0\x01", 4)}) {
    proto::Row* r = b.add_rows();
    r->set_key(key);
    r->add_values(1);
  }
  const sync::ApplyResult res = sync::apply(ip, b, Now{1000, kWall});
  EXPECT_EQ(res.rows, 1u);
  EXPECT_EQ(res.skipped, 2u);
  EXPECT_EQ(ip.used(), 1u);
}

TEST(StickSync, ASnapshotRowCarriesWhatIsLeftOfTheEntrysLife) {
  const TableDef d = def_of("t", {"conn_cnt"});
  Table agent(d), worker(d);
  Now then{1000, kWall};
  agent.find_or_make("k", then).data().counter(Datum::kConnCnt)->others = 1;
  const Now now{1000 + 45000, kWall + 45000};  // 15 s of its minute left
  sync::write_all(agent, proto::TableBatch::SNAPSHOT, now,
                  [&](const proto::TableBatch& b) { sync::apply(worker, b, now); });
  Table::Access a = worker.find("k", now);
  ASSERT_TRUE(a);
  EXPECT_EQ(worker.expires_in(a.entry(), now), 15000);
}

proto::TableBatch conn_cur_batch(proto::TableBatch::Kind kind,
                                 const std::vector<std::pair<std::string, int64_t>>& rows) {
  proto::TableBatch b;
  b.set_table("t");
  b.set_kind(kind);
  b.add_columns(static_cast<uint32_t>(Datum::kConnCnt) << 8);
  b.add_columns(static_cast<uint32_t>(Datum::kConnCur) << 8);
  for (const auto& [key, n] : rows) {
    proto::Row* r = b.add_rows();
    r->set_key(key);
    r->add_values(1);
    r->add_values(n);
  }
  return b;
}

TEST(StickSync, AConnCurLedgerTakesBackWhatItsSourceStillHolds) {
  sync::ConnCurLedger l;
  l.count(conn_cur_batch(proto::TableBatch::DELTA, {{"x", 2}, {"y", 1}}));
  l.count(conn_cur_batch(proto::TableBatch::DELTA, {{"y", -1}, {"z", -1}}));
  // Totals (a full resync) say nothing of what the source added itself.
  l.count(conn_cur_batch(proto::TableBatch::REFILL, {{"w", 5}}));
  EXPECT_EQ(l.keys(), 2u);  // x at 2, z at -1; y back at 0
  std::map<std::string, int64_t> back;
  for (const proto::TableBatch& b : l.batches(-1, 1000)) {
    EXPECT_EQ(b.kind(), proto::TableBatch::DELTA);
    for (const proto::Row& r : b.rows()) back[r.key()] = r.values(0);
  }
  // z went below 0: connections counted before this ledger began, not taken back.
  EXPECT_EQ(back, (std::map<std::string, int64_t>{{"x", -2}}));
  // What a gone source still holds leaves the ledger; the rest stays.
  sync::ConnCurLedger gone = l.take_positive();
  EXPECT_EQ(gone.keys(), 1u);
  EXPECT_EQ(l.keys(), 1u);
  sync::ConnCurLedger again;
  again.add(gone);
  again.add(gone);
  std::map<std::string, int64_t> given;
  for (const proto::TableBatch& b : again.batches(1, 1000)) {
    for (const proto::Row& r : b.rows()) given[r.key()] = r.values(0);
  }
  EXPECT_EQ(given, (std::map<std::string, int64_t>{{"x", 4}}));
}

// Three processes (or nodes) that hold gpc0 = 40 of key k, each with a journal.
struct Trio {
  TableDef d = def_of("t", {"gpc(1)", "http_req_rate(10s)"});
  Table a{d}, b{d}, c{d};
  RecordingJournal ja, jb, jc;
  Now now{1000, kWall + 1000};
  Trio() {
    for (Table* t : {&a, &b, &c})
      t->find_or_make("k", now).data().counter(Datum::kGpc)->others = 40;
    a.set_journal(&ja);
    b.set_journal(&jb);
    c.set_journal(&jc);
  }
  ~Trio() {
    for (Table* t : {&a, &b, &c}) t->set_journal(nullptr);
  }
  void inc(Table& t, int n) {
    for (int i = 0; i < n; ++i) {
      Table::Access x = t.find_or_make("k", now);
      x.data().add(Datum::kGpc, 1, now);
      x.data().add(Datum::kHttpReqRate, 1, now);
    }
  }
  int64_t gpc(Table& t) { return value_of(t, "k", Datum::kGpc, now); }
  int64_t rate(Table& t) { return value_of(t, "k", Datum::kHttpReqRate, now); }
};

TEST(StickSync, AResetAndIncrementsThatCrossItEndTheSameEverywhere) {
  Trio t;
  t.a.find_or_make("k", t.now).data().clear(Datum::kGpc, 0);  // sc_clr_gpc on a
  t.inc(t.b, 3);                                              // meanwhile on b
  const proto::TableBatch reset = delta_of(t.a, {"k"}, t.now);
  const proto::TableBatch old = delta_of(t.b, {"k"}, t.now);
  ASSERT_EQ(reset.rows_size(), 1);
  EXPECT_NE(reset.rows(0).epoch_hlc(), 0u);
  EXPECT_EQ(old.rows(0).epoch_hlc(), 0u);
  // a hears of b's increments after its reset; c first; b of the reset only.
  sync::apply(t.a, old, t.now);
  sync::apply(t.c, old, t.now);
  sync::apply(t.c, reset, t.now);
  sync::apply(t.b, reset, t.now);
  // Without epochs a would count 3 and c 0 for ever: the increments made
  // before b heard of the reset belong to the epoch it closed.
  for (Table* x : {&t.a, &t.b, &t.c}) EXPECT_EQ(t.gpc(*x), 0);
  // What b counts now is of the new epoch, and adds up everywhere.
  t.inc(t.b, 2);
  const proto::TableBatch fresh = delta_of(t.b, {"k"}, t.now);
  EXPECT_EQ(fresh.rows(0).epoch_hlc(), reset.rows(0).epoch_hlc());
  sync::apply(t.a, fresh, t.now);
  sync::apply(t.c, fresh, t.now);
  for (Table* x : {&t.a, &t.b, &t.c}) EXPECT_EQ(t.gpc(*x), 2);
}

TEST(StickSync, UpdatesAheadOfTheirResetWaitForItsBase) {
  Trio t;
  t.a.find_or_make("k", t.now).data().set(Datum::kGpc, 0, 10, t.now);  // set table on a
  const proto::TableBatch reset = delta_of(t.a, {"k"}, t.now);
  sync::apply(t.b, reset, t.now);
  t.inc(t.b, 2);
  const proto::TableBatch after = delta_of(t.b, {"k"}, t.now);
  // c hears of b's increments before the reset they follow.
  sync::apply(t.c, after, t.now);
  EXPECT_EQ(t.gpc(t.c), 2);
  sync::apply(t.c, reset, t.now);
  sync::apply(t.a, after, t.now);
  for (Table* x : {&t.a, &t.b, &t.c}) EXPECT_EQ(t.gpc(*x), 12);
  // The reset heard twice does not add its base twice.
  sync::apply(t.c, reset, t.now);
  EXPECT_EQ(t.gpc(t.c), 12);
}

TEST(StickSync, OfTwoResetsMadeAtOnceTheLaterWinsInEveryOrder) {
  Trio t;
  t.a.find_or_make("k", t.now).data().set(Datum::kGpc, 0, 5, t.now);
  t.b.find_or_make("k", t.now).data().set(Datum::kGpc, 0, 9, t.now);  // a later epoch
  const proto::TableBatch from_a = delta_of(t.a, {"k"}, t.now);
  const proto::TableBatch from_b = delta_of(t.b, {"k"}, t.now);
  sync::apply(t.a, from_b, t.now);
  sync::apply(t.b, from_a, t.now);
  sync::apply(t.c, from_b, t.now);
  sync::apply(t.c, from_a, t.now);
  for (Table* x : {&t.a, &t.b, &t.c}) EXPECT_EQ(t.gpc(*x), 9);
}

TEST(StickSync, AResetDropsWhatTheReceiverCountedBeforeItAndHadNotSent) {
  Trio t;
  t.inc(t.c, 4);  // c's part, not sent yet
  t.a.find_or_make("k", t.now).data().set(Datum::kGpc, 0, 1, t.now);
  t.inc(t.a, 1);  // after the set, before it leaves: part of the base
  const proto::TableBatch reset = delta_of(t.a, {"k"}, t.now);
  sync::apply(t.c, reset, t.now);
  EXPECT_EQ(t.gpc(t.c), 2);
  EXPECT_EQ(t.rate(t.c), 1);  // the rate restarted with the entry
  // c's next update carries nothing of the closed epoch.
  const proto::TableBatch next = delta_of(t.c, {"k"}, t.now);
  sync::apply(t.b, reset, t.now);
  sync::apply(t.b, next, t.now);
  EXPECT_EQ(t.gpc(t.b), 2);
  // A snapshot of an older epoch (an agent that has not heard of the reset)
  // does not undo it; one of the same epoch sets the totals.
  Trio old;
  sync::BatchWriter w(old.a, proto::TableBatch::SNAPSHOT, t.now.wall_ms);
  w.add_absolute(old.a.find("k", t.now), t.now);
  sync::apply(t.c, w.take(), t.now);
  EXPECT_EQ(t.gpc(t.c), 2);
  sync::BatchWriter same(t.b, proto::TableBatch::SNAPSHOT, t.now.wall_ms);
  t.inc(t.b, 5);
  same.add_absolute(t.b.find("k", t.now), t.now);
  sync::apply(t.c, same.take(), t.now);
  EXPECT_EQ(t.gpc(t.c), 2);  // b's 5 are unsent: its snapshot holds what it has sent and heard
}

TEST(StickSync, ARemovalIsAResetForWhatCrossesItAndForEntriesThatCannotGo) {
  Trio t;
  t.inc(t.b, 3);  // b counts, its update not sent yet
  {
    Table::Access held = t.b.track("k", t.now);  // and a connection there tracks k
  }
  ASSERT_TRUE(t.a.erase("k"));  // `clear table st key k` on a
  ASSERT_EQ(t.ja.erased_epochs.size(), 1u);
  const Epoch gone = t.ja.erased_epochs[0];
  EXPECT_FALSE(gone.none());
  sync::BatchWriter w(t.a, proto::TableBatch::DELTA, t.now.wall_ms);
  w.add_erased("k", gone);
  const proto::TableBatch removal = w.take();
  const proto::TableBatch old = delta_of(t.b, {"k"}, t.now);
  sync::apply(t.c, removal, t.now);
  sync::apply(t.b, removal, t.now);
  EXPECT_EQ(t.gpc(t.c), -1);  // gone from c
  EXPECT_EQ(t.gpc(t.b), 0);   // tracked on b: it stays, counting from nothing
  // b's update from before the removal makes nothing again on a or c.
  sync::apply(t.a, old, t.now);
  sync::apply(t.c, old, t.now);
  EXPECT_EQ(t.gpc(t.a), -1);
  EXPECT_EQ(t.gpc(t.c), -1);
  // What b and a count afterwards is of the removal's epoch and adds up.
  t.inc(t.b, 2);
  t.inc(t.a, 1);  // made again on a: in its grave's epoch
  const proto::TableBatch from_b = delta_of(t.b, {"k"}, t.now);
  const proto::TableBatch from_a = delta_of(t.a, {"k"}, t.now);
  EXPECT_EQ(from_a.rows(0).epoch_hlc(), gone.hlc);
  sync::apply(t.a, from_b, t.now);
  sync::apply(t.c, from_b, t.now);
  sync::apply(t.b, from_a, t.now);
  sync::apply(t.c, from_a, t.now);
  for (Table* x : {&t.a, &t.b, &t.c}) EXPECT_EQ(t.gpc(*x), 3);
  t.b.untrack(t.b.find("k", t.now), t.now);
}

TEST(StickSync, ConnectionsStillCountedAcrossAResetOfTheirEntry) {
  const TableDef d = def_of("t", {"conn_cur", "gpc(1)", "http_req_rate(10s)"});
  Table a(d), b(d);
  RecordingJournal ja, jb;
  a.set_journal(&ja);
  b.set_journal(&jb);
  const Now now{1000, kWall + 1000};
  b.find_or_make("k", now).data().add(Datum::kConnCur, 1, now);  // a connection opens on b
  sync::apply(a, delta_of(b, {"k"}, now), now);
  EXPECT_EQ(value_of(a, "k", Datum::kConnCur, now), 1);
  b.find_or_make("k", now).data().add(Datum::kConnCur, -1, now);  // and closes
  const proto::TableBatch closed = delta_of(b, {"k"}, now);
  a.find_or_make("k", now).data().add(Datum::kConnCur, 1, now);  // one opens on a
  a.find_or_make("k", now).data().clear(Datum::kGpc, 0);         // and a clears gpc0
  const proto::TableBatch reset = delta_of(a, {"k"}, now);
  sync::ConnCurLedger ledger;
  ledger.count(reset);
  EXPECT_EQ(ledger.keys(), 1u);  // the reset carries a's new connection as added
  // The close, counted before the reset, crosses it: the connection still ends.
  sync::apply(a, closed, now);
  sync::apply(b, reset, now);
  for (Table* t : {&a, &b}) EXPECT_EQ(value_of(*t, "k", Datum::kConnCur, now), 1);
  // `set table ... data.conn_cur 0` on b: connections open elsewhere still count.
  b.find_or_make("k", now).data().set(Datum::kConnCur, 0, 0, now);
  const proto::TableBatch set = delta_of(b, {"k"}, now);
  EXPECT_EQ(set.rows(0).flags(), 0u);  // an update, not a reset
  sync::apply(a, set, now);
  for (Table* t : {&a, &b}) EXPECT_EQ(value_of(*t, "k", Datum::kConnCur, now), 0);
  a.set_journal(nullptr);
  b.set_journal(nullptr);
}

TEST(StickSync, AnEntryMadeAgainInARemovalsEpochStaysWhenTheRemovalComesLater) {
  Trio t;
  ASSERT_TRUE(t.a.erase("k"));
  sync::BatchWriter w(t.a, proto::TableBatch::DELTA, t.now.wall_ms);
  w.add_erased("k", t.ja.erased_epochs.at(0));
  const proto::TableBatch removal = w.take();
  sync::apply(t.b, removal, t.now);
  t.inc(t.b, 2);  // made again on b, in the removal's epoch
  const proto::TableBatch after = delta_of(t.b, {"k"}, t.now);
  sync::apply(t.c, after, t.now);  // ahead of the removal on c
  sync::apply(t.c, removal, t.now);
  sync::apply(t.a, after, t.now);
  for (Table* x : {&t.a, &t.b, &t.c}) EXPECT_EQ(t.gpc(*x), 2);
}

TEST(StickSync, WholeTablesSentBeforeAResetLeavesWaitForItsBase) {
  Trio t;
  t.a.find_or_make("k", t.now).data().set(Datum::kGpc, 0, 5, t.now);
  // A refill of a (a new agent) made before a's reset row leaves.
  sync::BatchWriter w(t.a, proto::TableBatch::REFILL, t.now.wall_ms);
  w.add_absolute(t.a.find("k", t.now), t.now);
  const proto::TableBatch refill = w.take();
  EXPECT_TRUE(refill.rows(0).flags() & sync::kRowBasePending);
  const proto::TableBatch reset = delta_of(t.a, {"k"}, t.now);
  sync::apply(t.b, refill, t.now);
  sync::apply(t.b, reset, t.now);
  EXPECT_EQ(t.gpc(t.b), 5);
  // And a snapshot of b taken while it waits tells c to wait as well.
  sync::apply(t.a, reset, t.now);  // (a has it)
  Trio u;
  sync::apply(u.b, refill, u.now);
  sync::BatchWriter sw(u.b, proto::TableBatch::SNAPSHOT, u.now.wall_ms);
  sw.add_absolute(u.b.find("k", u.now), u.now);
  const proto::TableBatch snap = sw.take();
  sync::apply(u.c, snap, u.now);
  sync::apply(u.c, reset, u.now);
  EXPECT_EQ(u.gpc(u.c), 5);
}

TEST(StickSync, AResetMadeAfterHearingOneIsLaterWhateverTheClocks) {
  Trio t;
  t.a.find_or_make("k", t.now).data().clear(Datum::kGpc, 0);
  proto::TableBatch ahead = delta_of(t.a, {"k"}, t.now);
  // As if a's clock ran a minute ahead of b's.
  const uint64_t future = ahead.rows(0).epoch_hlc() + (uint64_t{60000} << 16);
  ahead.mutable_rows(0)->set_epoch_hlc(future);
  sync::apply(t.b, ahead, t.now);
  t.b.find_or_make("k", t.now).data().clear(Datum::kGpc, 0);
  const proto::TableBatch mine = delta_of(t.b, {"k"}, t.now);
  EXPECT_GT(mine.rows(0).epoch_hlc(), future);
}

TEST(StickSync, AConnectionEndingAfterARemovalIsStillTakenOff) {
  const TableDef d = def_of("t", {"conn_cur", "gpc(1)"});
  Table w(d), agent(d);
  RecordingJournal jw;
  w.set_journal(&jw);
  const Now now{1000, kWall + 1000};
  w.find_or_make("k", now).data().add(Datum::kGpc, 1, now);
  sync::apply(agent, delta_of(w, {"k"}, now), now);
  ASSERT_TRUE(w.erase("k"));  // clear table k on the worker
  sync::BatchWriter bw(w, proto::TableBatch::DELTA, now.wall_ms);
  bw.add_erased("k", jw.erased_epochs.at(0));
  sync::apply(agent, bw.take(), now);
  w.find_or_make("k", now).data().add(Datum::kConnCur, 1, now);  // a connection opens
  const proto::TableBatch opened = delta_of(w, {"k"}, now);
  sync::apply(agent, opened, now);
  EXPECT_EQ(value_of(agent, "k", Datum::kConnCur, now), 1);
  // The worker dies: the agent takes back what it counted (no epoch).
  sync::ConnCurLedger ledger;
  ledger.count(opened);
  for (const proto::TableBatch& b : ledger.batches(-1, now.wall_ms)) sync::apply(agent, b, now);
  EXPECT_EQ(value_of(agent, "k", Datum::kConnCur, now), 0);
  w.set_journal(nullptr);
}

}  // namespace
}  // namespace weir::stick
