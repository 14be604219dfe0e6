// The agent's writes to its own tables through peers::Backlog (peers/backlog.h):
// applied at once when nothing is kept, kept in order while a full resync is
// held or anything is kept already, and applied in that order later.

#include "peers/backlog.h"

#include <gtest/gtest.h>

#include "peers/cluster/cluster.h"

#include <memory>
#include <string>

namespace weir::peers {
namespace {

using stick::Datum;

std::shared_ptr<stick::Table> gpc_table() {
  stick::TableDef d;
  d.name = "t";
  d.type = stick::KeyType::kString;
  d.key_size = 32;
  d.size = 1000;
  d.expire_ms = 60000;
  std::string error;
  d.store.push_back(*stick::parse_stored("gpc(1)", &error));
  return std::make_shared<stick::Table>(d);
}

// Another process whose changes come as DELTA batches, as its link sends them.
class Origin : stick::Journal {
 public:
  Origin() : table_(gpc_table()) { table_->set_journal(this); }
  ~Origin() override { table_->set_journal(nullptr); }
  // `set table` of gpc0 to v (it travels as totals, in a new epoch).
  proto::TableBatch set(const std::string& key, int64_t v) {
    const stick::Now now = stick::clock_now();
    table_->find_or_make(key, now).data().set(Datum::kGpc, 0, v, now);
    return take(key, now);
  }
  // n more (a delta, in the same epoch).
  proto::TableBatch add(const std::string& key, int64_t n) {
    const stick::Now now = stick::clock_now();
    table_->find_or_make(key, now).data().add(Datum::kGpc, n, now);
    return take(key, now);
  }

 private:
  proto::TableBatch take(const std::string& key, const stick::Now& now) {
    stick::sync::BatchWriter w(*table_, proto::TableBatch::DELTA, now.wall_ms);
    w.add_pending(key, now);
    return w.take();
  }
  void changed(stick::Table&, std::string_view) override {}
  void coalesced() override {}
  void erased(stick::Table&, std::string_view, const stick::Epoch&) override {}
  std::shared_ptr<stick::Table> table_;
};

int64_t gpc_of(stick::Table& t, const std::string& key) {
  const stick::Now now = stick::clock_now();
  stick::Table::Access a = t.find(key, now);
  if (!a) return -1;
  return a.data().value(Datum::kGpc, 0, now).value_or(-2);
}

TEST(PeersBacklog, NothingKeptAndNoHoldAppliesAtOnce) {
  auto t = gpc_table();
  Backlog b;
  Origin o;
  b.apply(t, o.add("k", 3));
  EXPECT_TRUE(b.empty());
  EXPECT_EQ(gpc_of(*t, "k"), 3);
}

TEST(PeersBacklog, WhileHeldBatchesWaitAndThenApplyInTheOrderTheyCame) {
  auto t = gpc_table();
  Backlog b;
  Origin o;
  b.hold(true);
  // In this order the value is 7 + 2 + 1; applied the other way round, 7.
  const proto::TableBatch set = o.set("k", 7);
  b.apply(t, set, set.SerializeAsString());  // as it came on the wire
  b.apply(t, o.add("k", 2));
  EXPECT_EQ(gpc_of(*t, "k"), -1);  // nothing yet
  EXPECT_EQ(b.rows(), 2u);
  b.hold(false);
  // Released, but something is kept: a new batch goes behind it, not ahead.
  b.apply(t, o.add("k", 1));
  EXPECT_EQ(gpc_of(*t, "k"), -1);
  b.settle();
  EXPECT_TRUE(b.empty());
  EXPECT_EQ(b.rows(), 0u);
  EXPECT_EQ(gpc_of(*t, "k"), 10);  // 7, then +2, then +1
  b.apply(t, o.add("k", 5));       // nothing kept: at once again
  EXPECT_EQ(gpc_of(*t, "k"), 15);
}

TEST(PeersBacklog, WorkAppliesAtLeastOneBatchATurnUntilNoneIsLeft) {
  auto t = gpc_table();
  Backlog b;
  Origin o;
  b.hold(true);
  for (int i = 0; i < 50; ++i) b.apply(t, o.add("k" + std::to_string(i % 5), 1));
  b.hold(false);
  int turns = 0;
  while (!b.work(0)) ++turns;  // a zero budget: one batch per turn
  EXPECT_EQ(turns, 49);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(gpc_of(*t, "k" + std::to_string(i)), 10);
}

TEST(PeersBacklog, ABatchForATableDroppedMeanwhileIsSkipped) {
  auto t = gpc_table();
  auto kept_alive = gpc_table();
  Backlog b;
  Origin o;
  b.hold(true);
  b.apply(t, o.add("k", 1));
  b.apply(kept_alive, o.add("j", 4));
  t.reset();  // a reload dropped the table
  b.hold(false);
  b.settle();
  EXPECT_TRUE(b.empty());
  EXPECT_EQ(gpc_of(*kept_alive, "j"), 4);
}

// A reload that removes `peers:` while a full resync comes in ends the hold
// with the cluster: the agent's tables are not left waiting for a resync
// that will never end.
TEST(PeersBacklog, TheHoldEndsWithTheCluster) {
  zmq::context_t ctx;
  Tables tables;
  tables["t"] = gpc_table();
  Backlog b;
  auto cluster = std::make_unique<Cluster>(ctx, tables, b, 1,
                                           [](const proto::TableBatch&, std::string_view) {});
  b.hold(true);  // as on part 1 of a resync
  Origin o;
  b.apply(tables["t"], o.add("k", 1));
  cluster.reset();
  EXPECT_FALSE(b.held());
  EXPECT_EQ(b.releases(), 1u);
  EXPECT_EQ(b.held_rows(), 1u);
  EXPECT_TRUE(b.work(5));
  EXPECT_EQ(gpc_of(*tables["t"], "k"), 1);
}

}  // namespace
}  // namespace weir::peers
