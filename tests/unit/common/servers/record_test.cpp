// Server records (common/servers/record.h): the newer part wins whatever
// order the records come in, and a worker is told the commands that bring its
// server to the record.

#include "common/servers/record.h"

#include <gtest/gtest.h>

namespace weir::servers {
namespace {

proto::ServerStamp at(uint64_t hlc, uint32_t node) {
  proto::ServerStamp s;
  s.set_hlc(hlc);
  s.set_node(node);
  return s;
}

proto::ServerRecord admin(const char* state, uint64_t hlc, uint32_t node) {
  proto::ServerRecord r;
  r.set_backend("app");
  r.set_server("s1");
  r.set_admin_state(state);
  *r.mutable_admin_at() = at(hlc, node);
  return r;
}

TEST(ServerRecord, TheNewerPartWinsInAnyOrderAndTheNodeBreaksTies) {
  const proto::ServerRecord a = admin("maint", 100, 1), b = admin("drain", 200, 1),
                            tie = admin("ready", 200, 7);
  for (const auto& order : std::vector<std::vector<proto::ServerRecord>>{
           {a, b, tie}, {tie, b, a}, {b, tie, a}, {a, tie, b}}) {
    Store s;
    for (const auto& r : order) s.merge(r);
    ASSERT_NE(s.find("app", "s1"), nullptr);
    EXPECT_EQ(s.find("app", "s1")->admin_state(), "ready");
  }
  Store s;
  EXPECT_TRUE(s.merge(b));
  EXPECT_FALSE(s.merge(a)) << "an older state changes nothing";
  EXPECT_FALSE(s.merge(b)) << "the same one again changes nothing";
}

TEST(ServerRecord, PartsMergeApart) {
  proto::ServerRecord w;
  w.set_backend("app");
  w.set_server("s1");
  w.set_weight(7);
  w.set_configured_weight(10);
  *w.mutable_weight_at() = at(50, 2);
  Store s;
  s.merge(admin("maint", 100, 1));
  s.merge(w);  // older than the admin state, but another part
  const proto::ServerRecord* r = s.find("app", "s1");
  EXPECT_EQ(r->admin_state(), "maint");
  EXPECT_EQ(r->weight(), 7u);
}

TEST(ServerRecord, AddedAndDeletedDecidePresence) {
  proto::ServerRecord r;
  EXPECT_TRUE(present(r, true));
  EXPECT_FALSE(present(r, false));
  r.set_added("127.0.0.1:8080 weight 5");
  *r.mutable_added_at() = at(100, 1);
  EXPECT_TRUE(present(r, false));
  *r.mutable_deleted_at() = at(200, 1);
  EXPECT_FALSE(present(r, false));
  EXPECT_FALSE(present(r, true));
  *r.mutable_added_at() = at(300, 2);
  EXPECT_TRUE(present(r, false));
}

TEST(ServerRecord, CommandsBringAServerToTheRecord) {
  proto::ServerRecord r = admin("drain", 100, 1);
  r.set_added("10.0.0.9:80 weight 3");
  *r.mutable_added_at() = at(90, 1);
  ServerNow none;
  EXPECT_EQ(commands_for(r, none),
            (std::vector<std::string>{"add server app/s1 10.0.0.9:80 weight 3",
                                      "set server app/s1 state drain"}));
  ServerNow there{true, false, "drain", 3, 3, "10.0.0.9:80", ""};
  EXPECT_TRUE(commands_for(r, there).empty());
  *r.mutable_deleted_at() = at(150, 2);
  EXPECT_EQ(commands_for(r, there),
            (std::vector<std::string>{"set server app/s1 state maint", "del server app/s1"}));
}

// A record turns into command lines only when its names are words and no
// field would break a line: another node's damaged record is not applied.
TEST(ServerRecord, OnlyAWellFormedRecordBecomesCommands) {
  proto::ServerRecord r = admin("drain", 100, 1);
  r.set_added("10.0.0.9:80 weight 3");
  r.set_address("10.0.0.9:8080");
  EXPECT_TRUE(well_formed(r));
  for (const char* name : {"", "s 1", "s/1", "s1\n", "s\t1", "s\x7f"}) {
    proto::ServerRecord bad = r;
    bad.set_server(name);
    EXPECT_FALSE(well_formed(bad)) << "server name '" << name << "'";
    bad = r;
    bad.set_backend(name);
    EXPECT_FALSE(well_formed(bad)) << "backend name '" << name << "'";
  }
  proto::ServerRecord bad = r;
  bad.set_added("10.0.0.9:80\nshutdown sessions server app/s2");
  EXPECT_FALSE(well_formed(bad));
  bad = r;
  bad.set_address("10.0.0.9:80\r\ndel server app/s2");
  EXPECT_FALSE(well_formed(bad));
  bad = r;
  bad.set_admin_state("ready\ndisable health app/s2");
  EXPECT_FALSE(well_formed(bad));
  // A record that sets no state at all is still well formed.
  bad = r;
  bad.clear_admin_state();
  EXPECT_TRUE(well_formed(bad));
}

TEST(ServerRecord, ARuntimeWeightOrAddressYieldsToAChangedConfiguration) {
  proto::ServerRecord r;
  r.set_backend("app");
  r.set_server("s1");
  r.set_weight(5);
  r.set_configured_weight(10);
  *r.mutable_weight_at() = at(100, 1);
  r.set_address("10.0.0.2:80");
  r.set_configured_address("10.0.0.1:80");
  *r.mutable_address_at() = at(100, 1);
  ServerNow same{true, true, "ready", 10, 10, "10.0.0.1:80", "10.0.0.1:80"};
  EXPECT_EQ(commands_for(r, same),
            (std::vector<std::string>{"set server app/s1 weight 5",
                                      "set server app/s1 addr 10.0.0.2:80"}));
  ServerNow changed{true, true, "ready", 20, 20, "10.0.0.7:80", "10.0.0.7:80"};
  EXPECT_TRUE(commands_for(r, changed).empty());
}

}  // namespace
}  // namespace weir::servers
