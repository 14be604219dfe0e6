// Load-balancing algorithms (worker/backend/lb/lb.h), tested mostly through the Backend
// that drives them (worker/backend/backend.h): distribution per algorithm for given
// weights, runtime weight changes, consistent-hash movement when a server leaves,
// leastconn ordering, slowstart, minconn/fullconn and backup servers.
//
// Distributions are deterministic (smooth round robin, a seeded PRNG, fixed
// hashes); the tolerances below are still stated as a share of the picks so that
// a legitimate change of the hash or the PRNG does not break the tests.

#include "worker/backend/lb/lb.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <string>
#include <vector>

#include "worker/backend/backend.h"

namespace weir {
namespace {

struct Srv {
  std::string name;
  uint32_t weight = 1;
  uint32_t maxconn = 0;
};

BackendConfig make_backend(const std::string& algo, const std::vector<Srv>& servers) {
  BackendConfig b;
  b.name = "be";
  b.balance.algorithm = algo;
  for (const Srv& x : servers) {
    ServerConfig s;
    s.name = x.name;
    s.weight = x.weight;
    s.maxconn = x.maxconn;
    b.servers.push_back(s);
  }
  return b;
}

// Takes a slot without queueing; nullptr when the backend answers anything but kServer.
Server* take(Backend& be, LbRequest req = {}, int64_t now_ms = 0) {
  Server* s = nullptr;
  QueueTicket ticket;
  Backend::Acquire r =
      be.acquire(req, TriedServers{}, nullptr, nullptr, nullptr, now_ms, &s, &ticket);
  EXPECT_TRUE(ticket == nullptr);  // no waiter: never queued
  return r == Backend::Acquire::kServer ? s : nullptr;
}

// Takes a slot on `s` itself (the backend must have redispatch: false): a retry
// without redispatch goes back to the same server, whatever the algorithm.
bool hold_on(Backend& be, Server* s, int64_t now_ms = 0) {
  Server* got = nullptr;
  QueueTicket ticket;
  Backend::Acquire r =
      be.acquire(LbRequest{}, TriedServers{}, s, nullptr, nullptr, now_ms, &got, &ticket);
  if (r != Backend::Acquire::kServer) return false;
  EXPECT_EQ(got, s);
  return true;
}

// One pick that gives its slot back at once (loads stay equal).
Server* pick_once(Backend& be, LbRequest req = {}, int64_t now_ms = 0) {
  Server* s = take(be, req, now_ms);
  if (s) be.release_server(s);
  return s;
}

std::string picks(Backend& be, int n, int64_t now_ms = 0) {
  std::string out;
  for (int i = 0; i < n; ++i) {
    Server* s = pick_once(be, LbRequest{}, now_ms);
    out += s ? s->name() : "-";
  }
  return out;
}

std::map<std::string, int> count_picks(Backend& be, int n, int64_t now_ms = 0) {
  std::map<std::string, int> count;
  for (int i = 0; i < n; ++i) {
    Server* s = pick_once(be, LbRequest{}, now_ms);
    ++count[s ? s->name() : "-"];
  }
  return count;
}

void expect_idle(Backend& be) {
  EXPECT_EQ(be.counters().current(), 0);
  EXPECT_EQ(be.queued(), 0);
  for (Server* s : be.servers()) {
    EXPECT_EQ(s->counters().current(), 0) << s->name();
    EXPECT_EQ(s->queued(), 0) << s->name();
  }
}

void release_all(Backend& be, Server* s) {
  while (s->counters().current() > 0) be.release_server(s);
}

// Expects `count` picks of `name` out of `total`, the share within +-`tol` (0.02: 2%).
void expect_share(const std::map<std::string, int>& count, const std::string& name,
                  double expected_share, double tol, int total) {
  auto it = count.find(name);
  int got = it == count.end() ? 0 : it->second;
  EXPECT_NEAR(static_cast<double>(got) / total, expected_share, tol)
      << name << " got " << got << " of " << total;
}

// --- roundrobin ----------------------------------------------------------------

TEST(LbRoundRobin, EqualWeightsAlternate) {
  Backend be(make_backend("roundrobin", {{"a", 1}, {"b", 1}, {"c", 1}}), 1);
  EXPECT_EQ(picks(be, 9), "abcabcabc");
}

TEST(LbRoundRobin, SmoothInterleavingForWeights511) {
  Backend be(make_backend("roundrobin", {{"a", 5}, {"b", 1}, {"c", 1}}), 1);
  EXPECT_EQ(picks(be, 7), "aabacaa");
  // The same pattern every cycle of 7.
  EXPECT_EQ(picks(be, 14), "aabacaaaabacaa");
  expect_idle(be);
}

TEST(LbRoundRobin, DistributionFollowsWeights1234) {
  Backend be(make_backend("roundrobin", {{"a", 1}, {"b", 2}, {"c", 3}, {"d", 4}, {"z", 0}}), 1);
  constexpr int kPicks = 10000;
  auto count = count_picks(be, kPicks);
  // Tolerance: +-2% of the picks (smooth round robin is exact over whole cycles).
  expect_share(count, "a", 0.1, 0.02, kPicks);
  expect_share(count, "b", 0.2, 0.02, kPicks);
  expect_share(count, "c", 0.3, 0.02, kPicks);
  expect_share(count, "d", 0.4, 0.02, kPicks);
  EXPECT_EQ(count.count("z"), 0U);  // weight 0: nothing at all
  EXPECT_EQ(count.count("-"), 0U);
  expect_idle(be);
}

// Exact over whole cycles of 14 picks (10 + 3 + 1): smooth round robin has no
// randomness, so the tolerance is 0.
TEST(LbRoundRobin, DistributionIsExactOverWholeCycles) {
  Backend be(make_backend("roundrobin", {{"a", 10}, {"b", 3}, {"c", 1}, {"d", 0}}), 1);
  std::map<char, int> count;
  for (char c : picks(be, 14 * 50)) ++count[c];
  EXPECT_EQ(count['a'], 500);
  EXPECT_EQ(count['b'], 150);
  EXPECT_EQ(count['c'], 50);
  EXPECT_EQ(count['d'], 0);
}

TEST(LbRoundRobin, RuntimeWeightChangeTakesEffectOnNextPicks) {
  Backend be(make_backend("roundrobin", {{"a", 1}, {"b", 1}}), 1);
  EXPECT_EQ(picks(be, 4), "abab");
  Server* b = be.find_server("b");
  be.set_server_weight(b, 3, 0);
  auto count = count_picks(be, 400);
  // Exact: 100 cycles of 4 picks (1 a, 3 b); tolerance 0.
  EXPECT_EQ(count["a"], 100);
  EXPECT_EQ(count["b"], 300);
  // The first cycle after the change already follows the new weights.
  be.set_server_weight(b, 1, 0);
  EXPECT_EQ(picks(be, 4).find("bb"), std::string::npos);
  // Weight 0: b gets nothing, from the next pick on.
  be.set_server_weight(b, 0, 0);
  EXPECT_FALSE(b->selectable());
  EXPECT_EQ(picks(be, 6), "aaaaaa");
  be.set_server_weight(b, 1, 0);
  count = count_picks(be, 100);
  EXPECT_EQ(count["a"], 50);  // equal weights again, tolerance 0
  EXPECT_EQ(count["b"], 50);
  expect_idle(be);
}

TEST(LbRoundRobin, DirectPickInterleaves) {
  BalanceConfig cfg;
  cfg.algorithm = "roundrobin";
  auto lb = make_lb_algorithm(cfg);
  EXPECT_FALSE(lb->deterministic(true));
  std::vector<LbCandidate> c = {
      {nullptr, 0, 5, 5, 0}, {nullptr, 1, 1, 1, 0}, {nullptr, 2, 1, 1, 0}};
  std::string out;
  for (int i = 0; i < 7; ++i) out += static_cast<char>('a' + lb->pick(c, false, 0));
  EXPECT_EQ(out, "aabacaa");
}

// --- static-rr -----------------------------------------------------------------

TEST(LbStaticRr, DistributionFollowsConfiguredWeights1234) {
  Backend be(make_backend("static-rr", {{"a", 1}, {"b", 2}, {"c", 3}, {"d", 4}}), 1);
  constexpr int kPicks = 10000;
  auto count = count_picks(be, kPicks);
  // Tolerance: +-2% of the picks.
  expect_share(count, "a", 0.1, 0.02, kPicks);
  expect_share(count, "b", 0.2, 0.02, kPicks);
  expect_share(count, "c", 0.3, 0.02, kPicks);
  expect_share(count, "d", 0.4, 0.02, kPicks);
  expect_idle(be);
}

// Regression: static-rr once took the runtime weight (s.weight()) instead of the
// configured one, so `set server weight` changed its distribution (100/300
// instead of 200/200 below).
TEST(LbStaticRr, RuntimeWeightChangeDoesNotChangeDistribution) {
  Backend be(make_backend("static-rr", {{"a", 1}, {"b", 1}}), 1);
  Server* b = be.find_server("b");
  be.set_server_weight(b, 3, 0);
  EXPECT_EQ(b->weight(), 3U);
  EXPECT_EQ(b->configured_weight(), 1U);
  auto count = count_picks(be, 400);
  // Configured weights 1:1 still apply: 200 each, tolerance 0 (exact over whole cycles).
  EXPECT_EQ(count["a"], 200);
  EXPECT_EQ(count["b"], 200);
  expect_idle(be);
}

TEST(LbStaticRr, RuntimeWeightZeroExcludesTheServer) {
  Backend be(make_backend("static-rr", {{"a", 1}, {"b", 1}}), 1);
  Server* b = be.find_server("b");
  EXPECT_EQ(picks(be, 4), "abab");
  be.set_server_weight(b, 0, 0);
  EXPECT_FALSE(b->selectable());
  EXPECT_EQ(picks(be, 6), "aaaaaa");
  be.set_server_weight(b, 1, 0);
  auto count = count_picks(be, 100);
  EXPECT_EQ(count["a"], 50);  // tolerance 0
  EXPECT_EQ(count["b"], 50);
  expect_idle(be);
}

// --- leastconn -----------------------------------------------------------------

TEST(LbLeastConn, EqualLoadsTakeTurns) {
  Backend be(make_backend("leastconn", {{"a"}, {"b"}, {"c"}}), 1);
  // Every pick released at once: all loads stay 0, round robin among equals.
  EXPECT_EQ(picks(be, 9), "abcabcabc");
  expect_idle(be);
}

TEST(LbLeastConn, NextPickGoesToTheLeastLoaded) {
  Backend be(make_backend("leastconn", {{"a"}, {"b"}, {"c"}}), 1);
  Server* a = be.find_server("a");
  Server* b = be.find_server("b");
  Server* c = be.find_server("c");
  // Held (not released): loads 0,0,0 -> a; 1,0,0 -> b; 1,1,0 -> c; then equals again.
  std::string held;
  for (int i = 0; i < 6; ++i) held += take(be)->name();
  EXPECT_EQ(held, "abcabc");
  EXPECT_EQ(a->counters().current(), 2);
  // After releases the order follows the new loads: b (0) first, then b again
  // (1 < 2), then the equals in turn from after b.
  be.release_server(b);
  be.release_server(b);
  EXPECT_EQ(take(be), b);  // loads 2,1,2
  EXPECT_EQ(take(be), b);  // loads 2,2,2: b is not favoured any more below
  EXPECT_EQ(take(be), c);  // tie: the next one after the last pick (b)
  EXPECT_EQ(take(be), a);
  EXPECT_EQ(take(be), b);
  be.release_server(c);
  be.release_server(c);
  be.release_server(a);
  // Loads a 2, b 3, c 1: c, then a and c tie at 2 -> a (after c), then c.
  EXPECT_EQ(take(be), c);
  EXPECT_EQ(take(be), a);
  EXPECT_EQ(take(be), c);
  release_all(be, a);
  release_all(be, b);
  release_all(be, c);
  expect_idle(be);
}

TEST(LbLeastConn, WeightScalesTheLoad) {
  Backend be(make_backend("leastconn", {{"a", 2}, {"b", 1}}), 1);
  Server* a = be.find_server("a");
  Server* b = be.find_server("b");
  std::string held;
  for (int i = 0; i < 9; ++i) held += take(be)->name();
  // load/weight: a (weight 2) takes two requests for each one of b.
  EXPECT_EQ(held, "ababaabaa");
  for (int i = 0; i < 21; ++i) take(be);
  // Tolerance 0: with every pick held, load(a)/2 and load(b)/1 never differ by
  // more than one request's worth.
  EXPECT_EQ(a->counters().current(), 20);
  EXPECT_EQ(b->counters().current(), 10);
  release_all(be, a);
  release_all(be, b);
  expect_idle(be);
}

TEST(LbLeastConn, DirectPickComparesLoadPerWeight) {
  BalanceConfig cfg;
  cfg.algorithm = "leastconn";
  auto lb = make_lb_algorithm(cfg);
  std::vector<LbCandidate> c = {
      {nullptr, 0, 1, 1, 5}, {nullptr, 1, 1, 1, 2}, {nullptr, 2, 1, 1, 7}};
  EXPECT_EQ(lb->pick(c, false, 0), 1U);
  // 4/2 = 2 < 3/1.
  std::vector<LbCandidate> w = {{nullptr, 0, 2, 2, 4}, {nullptr, 1, 1, 1, 3}};
  EXPECT_EQ(lb->pick(w, false, 0), 0U);
  // 4/2 = 2 > 1/1.
  w[1].load = 1;
  EXPECT_EQ(lb->pick(w, false, 0), 1U);
}

// --- first ---------------------------------------------------------------------

TEST(LbFirst, AlwaysTheFirstServerWithAFreeSlot) {
  Backend be(make_backend("first", {{"a", 1, 2}, {"b", 1, 2}, {"c", 1, 2}}), 1);
  Server* a = be.find_server("a");
  Server* b = be.find_server("b");
  Server* c = be.find_server("c");
  // Released at once: always a.
  EXPECT_EQ(picks(be, 5), "aaaaa");
  // maxconn 2 each: the third concurrent request goes to b, the fifth to c.
  EXPECT_EQ(take(be), a);
  EXPECT_EQ(take(be), a);
  EXPECT_EQ(take(be), b);
  EXPECT_EQ(take(be), b);
  EXPECT_EQ(take(be), c);
  // A slot frees on a: a again, before c's second slot.
  be.release_server(a);
  EXPECT_EQ(take(be), a);
  EXPECT_EQ(take(be), c);
  EXPECT_EQ(take(be), nullptr);  // every slot taken, no waiter: kQueueFull
  release_all(be, a);
  release_all(be, b);
  release_all(be, c);
  expect_idle(be);
}

TEST(LbFirst, ServersInMaintAreSkipped) {
  Backend be(make_backend("first", {{"a"}, {"b"}}), 1);
  be.set_server_state(be.find_server("a"), AdminState::kMaint, 0);
  EXPECT_EQ(picks(be, 3), "bbb");
  be.set_server_state(be.find_server("a"), AdminState::kReady, 0);
  EXPECT_EQ(picks(be, 3), "aaa");
  expect_idle(be);
}

// --- random --------------------------------------------------------------------

TEST(LbRandom, DistributionFollowsWeights) {
  Backend be(make_backend("random", {{"a", 1}, {"b", 2}, {"c", 3}, {"d", 4}}), 1);
  constexpr int kPicks = 10000;
  auto count = count_picks(be, kPicks);
  // Equal loads (each pick released at once), so the first weighted draw wins.
  // Tolerance: +-2% of the picks (the binomial standard deviation is <= 0.5%).
  expect_share(count, "a", 0.1, 0.02, kPicks);
  expect_share(count, "b", 0.2, 0.02, kPicks);
  expect_share(count, "c", 0.3, 0.02, kPicks);
  expect_share(count, "d", 0.4, 0.02, kPicks);
  expect_idle(be);
}

TEST(LbRandom, LoadedServerGetsFewerPicks) {
  BackendConfig cfg = make_backend("random", {{"a"}, {"b"}, {"c"}});
  cfg.redispatch = false;  // hold_on() pins slots on one server
  Backend be(cfg, 1);
  Server* a = be.find_server("a");
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(hold_on(be, a));
  constexpr int kPicks = 9000;
  auto count = count_picks(be, kPicks);
  // Two draws, the less loaded kept: the busy server is picked only when both
  // draws land on it, 1/9 of the time, instead of 1/3 for one draw.
  // Tolerance: below 20% (expected 11.1%), and the idle ones each above 40%
  // (expected 44.4%).
  EXPECT_LT(count["a"], kPicks * 20 / 100) << count["a"];
  EXPECT_GT(count["b"], kPicks * 40 / 100) << count["b"];
  EXPECT_GT(count["c"], kPicks * 40 / 100) << count["c"];
  release_all(be, a);
  expect_idle(be);
}

TEST(LbRandom, DirectPickPrefersTheLessLoadedOfTwoDraws) {
  BalanceConfig cfg;
  cfg.algorithm = "random";
  cfg.draws = 2;
  auto lb = make_lb_algorithm(cfg);
  std::vector<LbCandidate> c = {{nullptr, 0, 1, 1, 100}, {nullptr, 1, 1, 1, 0}};
  int busy = 0;
  constexpr int kPicks = 4000;
  for (int i = 0; i < kPicks; ++i) busy += lb->pick(c, false, 0) == 0 ? 1 : 0;
  // Both draws on the busy one: 1/4 of the picks. Tolerance: 25% +- 5%.
  EXPECT_NEAR(static_cast<double>(busy) / kPicks, 0.25, 0.05);
}

// --- hashing (source, uri, url_param, hdr) ---------------------------------------

LbRequest key(const std::string& k) {
  return LbRequest::hashed(lb_hash(k));
}
std::string key_name(int i) {
  return "client-" + std::to_string(i);
}

BackendConfig hash_backend(const std::string& type, const std::vector<Srv>& servers) {
  BackendConfig cfg = make_backend("source", servers);
  cfg.balance.hash_type = type;
  return cfg;
}

// The server name of each of `n` keys.
std::vector<std::string> mapping(Backend& be, int n) {
  std::vector<std::string> out;
  out.reserve(n);
  for (int i = 0; i < n; ++i) {
    Server* s = pick_once(be, key(key_name(i)));
    out.push_back(s ? s->name() : "-");
  }
  return out;
}

TEST(LbHash, SameKeyAlwaysSameServer) {
  for (std::string type : {"map_based", "consistent"}) {
    Backend be(hash_backend(type, {{"s0"}, {"s1"}, {"s2"}, {"s3"}, {"s4"}}), 1);
    std::vector<std::string> first = mapping(be, 1000);
    // Other traffic in between (round robin without a key) changes nothing.
    picks(be, 7);
    EXPECT_EQ(mapping(be, 1000), first);
    std::map<std::string, int> used;
    for (auto& n : first) ++used[n];
    EXPECT_EQ(used.size(), 5U);  // every server gets keys
    EXPECT_EQ(used.count("-"), 0U);
    expect_idle(be);
  }
}

TEST(LbHash, MapBasedDistributionFollowsWeights) {
  Backend be(hash_backend("map_based", {{"a", 1}, {"b", 2}, {"c", 3}, {"d", 4}}), 1);
  constexpr int kKeys = 10000;
  std::map<std::string, int> count;
  for (auto& n : mapping(be, kKeys)) ++count[n];
  // Tolerance: +-2% of the keys (binomial standard deviation <= 0.5%).
  expect_share(count, "a", 0.1, 0.02, kKeys);
  expect_share(count, "b", 0.2, 0.02, kKeys);
  expect_share(count, "c", 0.3, 0.02, kKeys);
  expect_share(count, "d", 0.4, 0.02, kKeys);
  expect_idle(be);
}

// Removes (maint) each server of 5 in turn, and puts it back; returns the keys
// moved by each removal. With `check_consistency`, also checks that only the
// removed server's keys move and that they all come back when it returns.
std::vector<int> removal_experiment(const std::string& type, int keys, bool check_consistency) {
  Backend be(hash_backend(type, {{"s0"}, {"s1"}, {"s2"}, {"s3"}, {"s4"}}), 1);
  std::vector<std::string> before = mapping(be, keys);
  std::vector<int> moved_by;
  for (Server* gone : be.servers()) {
    be.set_server_state(gone, AdminState::kMaint, 0);
    std::vector<std::string> after = mapping(be, keys);
    int moved = 0;
    for (int i = 0; i < keys; ++i) {
      if (after[i] != before[i]) ++moved;
      EXPECT_NE(after[i], gone->name());
      EXPECT_NE(after[i], "-");
      if (check_consistency && before[i] != gone->name()) {
        EXPECT_EQ(after[i], before[i])
            << key_name(i) << " moved though " << gone->name() << " was not its server";
      }
    }
    moved_by.push_back(moved);
    // The server returns: every key goes back where it was.
    be.set_server_state(gone, AdminState::kReady, 0);
    if (check_consistency) {
      EXPECT_EQ(mapping(be, keys), before) << gone->name();
    }
  }
  expect_idle(be);
  return moved_by;
}

constexpr size_t kRemoved = 2;  // the experiment's "one of N = 5": s2

TEST(LbHash, ConsistentRemovalMovesOnlyTheRemovedServersKeys) {
  constexpr int kKeys = 10000;
  std::vector<int> moved = removal_experiment("consistent", kKeys, true);
  ASSERT_EQ(moved.size(), 5U);
  // Tolerance: removing s2 moves at most 1/N + 5% of the keys (N = 5: 25%).
  EXPECT_LE(moved[kRemoved], kKeys * 25 / 100) << moved[kRemoved];
  EXPECT_GT(moved[kRemoved], 0);
  // Exact: each removal moves exactly the keys of the removed server, and each
  // key has one server, so the five removals together move every key once.
  int total = 0;
  for (int m : moved) total += m;
  EXPECT_EQ(total, kKeys);
}

TEST(LbHash, MapBasedMovesManyMoreKeysInTheSameExperiment) {
  constexpr int kKeys = 10000;
  std::vector<int> consistent = removal_experiment("consistent", kKeys, true);
  std::vector<int> map_based = removal_experiment("map_based", kKeys, false);
  // Modulo 5 -> modulo 4 moves most keys (about 80%). Tolerance: more than half
  // of the keys, and more than twice what consistent hashing moves.
  for (size_t i = 0; i < map_based.size(); ++i) {
    EXPECT_GT(map_based[i], kKeys / 2) << "s" << i;
  }
  EXPECT_GT(map_based[kRemoved], 2 * consistent[kRemoved])
      << map_based[kRemoved] << " vs " << consistent[kRemoved];
}

TEST(LbHash, ConsistentServerDeletedAndAddedBackRestoresMapping) {
  Backend be(hash_backend("consistent", {{"s0"}, {"s1"}, {"s2"}, {"s3"}, {"s4"}}), 1);
  constexpr int kKeys = 2000;
  std::vector<std::string> before = mapping(be, kKeys);
  Server* s2 = be.find_server("s2");
  ServerConfig cfg = s2->config();
  be.set_server_state(s2, AdminState::kMaint, 0);
  std::string error;
  ASSERT_TRUE(be.delete_server("s2", &error)) << error;
  std::vector<std::string> without = mapping(be, kKeys);
  for (int i = 0; i < kKeys; ++i) {
    if (before[i] != "s2") {
      EXPECT_EQ(without[i], before[i]) << key_name(i);
    }
    EXPECT_NE(without[i], "s2");
  }
  // Added back under the same name (a new index): the ring points are the same.
  ASSERT_NE(be.add_server(cfg, AdminState::kReady, 0, &error), nullptr) << error;
  EXPECT_EQ(mapping(be, kKeys), before);
  expect_idle(be);
}

TEST(LbHash, NoKeyFallsBackToRoundRobin) {
  for (std::string type : {"map_based", "consistent"}) {
    Backend be(hash_backend(type, {{"a"}, {"b"}, {"c"}}), 1);
    EXPECT_EQ(picks(be, 6), "abcabc");
    expect_idle(be);
  }
  BalanceConfig cfg;
  cfg.algorithm = "hdr";
  auto lb = make_lb_algorithm(cfg);
  EXPECT_TRUE(lb->deterministic(true));
  EXPECT_FALSE(lb->deterministic(false));
}

TEST(LbHash, EveryHashedAlgorithmSharesTheSameMapping) {
  std::vector<std::string> reference;
  for (std::string algo : {"source", "uri", "url_param", "hdr"}) {
    BackendConfig cfg = make_backend(algo, {{"a"}, {"b"}, {"c"}, {"d"}});
    cfg.balance.hash_type = "consistent";
    Backend be(cfg, 1);
    std::vector<std::string> m = mapping(be, 500);
    if (reference.empty()) reference = m;
    EXPECT_EQ(m, reference);
  }
}

TEST(LbHash, HashIsStableAndSpreads) {
  EXPECT_EQ(lb_hash("abc"), lb_hash("abc"));
  EXPECT_NE(lb_hash("abc"), lb_hash("abd"));
  EXPECT_NE(lb_hash(""), lb_hash("a"));
}

// --- helpers of the hashing algorithms ---------------------------------------------

TEST(LbHelpers, UriHashInput) {
  // depth 0: the whole path, without the query string unless `whole`.
  EXPECT_EQ(uri_hash_input("/a/b/c?x=1&y=2", 0, false), "/a/b/c");
  EXPECT_EQ(uri_hash_input("/a/b/c?x=1&y=2", 0, true), "/a/b/c?x=1&y=2");
  EXPECT_EQ(uri_hash_input("/a/b/c", 0, true), "/a/b/c");
  // depth N: the first N path segments.
  EXPECT_EQ(uri_hash_input("/a/b/c?x=1", 1, false), "/a");
  EXPECT_EQ(uri_hash_input("/a/b/c?x=1", 2, false), "/a/b");
  EXPECT_EQ(uri_hash_input("/a/b/c?x=1", 3, false), "/a/b/c");
  EXPECT_EQ(uri_hash_input("/a/b/c?x=1", 9, false), "/a/b/c");
  EXPECT_EQ(uri_hash_input("/a/b/", 2, false), "/a/b");
  EXPECT_EQ(uri_hash_input("/a?x=/y/z", 2, false), "/a");  // slashes of the query do not count
  EXPECT_EQ(uri_hash_input("/", 1, false), "/");
  EXPECT_EQ(uri_hash_input("/", 0, false), "/");
  EXPECT_EQ(uri_hash_input("?x=1", 0, false), "");
  EXPECT_EQ(uri_hash_input("", 2, true), "");
  // Same key for requests that differ only beyond the depth.
  EXPECT_EQ(lb_hash(uri_hash_input("/img/1.png", 1, false)),
            lb_hash(uri_hash_input("/img/2.png?v=3", 1, false)));
}

// --- slowstart -----------------------------------------------------------------
//
// The clock of these tests is explicit (kT0 = 1000 s). release_server() reads the
// real monotonic clock instead, but only to serve queues, and these tests have
// none.

constexpr int64_t kT0 = 1000000;

TEST(LbSlowstart, WeightAndMaxconnRampLinearly) {
  BackendConfig cfg = make_backend("roundrobin", {{"a", 100, 100}, {"b", 1}});
  cfg.servers[0].slowstart = 10000;
  Backend be(cfg, 1);
  Server* a = be.find_server("a");
  be.set_server_state(a, AdminState::kMaint, kT0 - 5000);
  be.set_server_state(a, AdminState::kReady, kT0);
  // Tolerance: +-1 (integer rounding) around the linear ramp.
  EXPECT_NEAR(be.effective_weight(*a, kT0 + 2500), 25, 1);
  EXPECT_NEAR(be.effective_maxconn(*a, kT0 + 2500), 25, 1);
  EXPECT_NEAR(be.effective_weight(*a, kT0 + 5000), 50, 1);
  EXPECT_NEAR(be.effective_maxconn(*a, kT0 + 5000), 50, 1);
  EXPECT_EQ(be.effective_weight(*a, kT0 + 10000), 100U);
  EXPECT_EQ(be.effective_maxconn(*a, kT0 + 10000), 100U);
  EXPECT_EQ(be.effective_weight(*a, kT0 + 60000), 100U);
  EXPECT_EQ(be.effective_maxconn(*a, kT0 + 60000), 100U);
  // Never 0 (a maxconn of 0 would mean "no limit"), never decreasing.
  uint32_t last_w = 0, last_m = 0;
  for (int64_t t = kT0; t <= kT0 + 10000; t += 100) {
    uint32_t w = be.effective_weight(*a, t);
    uint32_t m = be.effective_maxconn(*a, t);
    EXPECT_GE(w, 1U) << t - kT0;
    EXPECT_GE(m, 1U) << t - kT0;
    EXPECT_LE(w, 100U) << t - kT0;
    EXPECT_LE(m, 100U) << t - kT0;
    EXPECT_GE(w, last_w) << t - kT0;
    EXPECT_GE(m, last_m) << t - kT0;
    last_w = w;
    last_m = m;
  }
  // A server without slowstart has no ramp.
  Server* b = be.find_server("b");
  EXPECT_EQ(be.effective_weight(*b, kT0), 1U);
}

TEST(LbSlowstart, NoRampAtStartup) {
  BackendConfig cfg = make_backend("roundrobin", {{"a", 100, 100}});
  cfg.servers[0].slowstart = 10000;
  Backend be(cfg, 1);
  Server* a = be.find_server("a");
  EXPECT_EQ(be.effective_weight(*a, 0), 100U);
  EXPECT_EQ(be.effective_maxconn(*a, 0), 100U);
  EXPECT_EQ(be.effective_weight(*a, 5), 100U);
  EXPECT_EQ(be.effective_maxconn(*a, 5), 100U);
  // The ramp starts whenever a server becomes usable again (here from drain).
  be.set_server_state(a, AdminState::kDrain, kT0 - 1);
  be.set_server_state(a, AdminState::kReady, kT0);
  EXPECT_NEAR(be.effective_weight(*a, kT0 + 1000), 10, 1);  // tolerance +-1
}

TEST(LbSlowstart, WeightFromZeroRampsAndAddedServerRamps) {
  BackendConfig cfg = make_backend("roundrobin", {{"a", 40}});
  cfg.servers[0].slowstart = 10000;
  Backend be(cfg, 1);
  Server* a = be.find_server("a");
  be.set_server_weight(a, 0, kT0 - 1);
  EXPECT_EQ(be.effective_weight(*a, kT0), 0U);  // weight 0 stays 0
  be.set_server_weight(a, 40, kT0);
  EXPECT_NEAR(be.effective_weight(*a, kT0 + 5000), 20, 1);  // tolerance +-1
  // A server added ready at runtime ramps up from then.
  ServerConfig c;
  c.name = "n";
  c.weight = 10;
  c.maxconn = 50;
  c.slowstart = 10000;
  std::string error;
  Server* n = be.add_server(c, AdminState::kReady, kT0, &error);
  ASSERT_NE(n, nullptr) << error;
  EXPECT_NEAR(be.effective_weight(*n, kT0 + 5000), 5, 1);    // tolerance +-1
  EXPECT_NEAR(be.effective_maxconn(*n, kT0 + 5000), 25, 1);  // tolerance +-1
  EXPECT_EQ(be.effective_maxconn(*n, kT0 + 10000), 50U);
}

TEST(LbSlowstart, RampShapesPicksAndSlots) {
  BackendConfig cfg = make_backend("roundrobin", {{"a", 10}, {"b", 10, 100}});
  cfg.servers[1].slowstart = 10000;
  cfg.redispatch = false;
  Backend be(cfg, 1);
  Server* b = be.find_server("b");
  be.set_server_state(b, AdminState::kMaint, kT0 - 1);
  be.set_server_state(b, AdminState::kReady, kT0);
  // At +1 s: b weighs 1 against a's 10: 100 of 1100 picks. Tolerance 0 (exact
  // over whole cycles of smooth round robin).
  auto count = count_picks(be, 1100, kT0 + 1000);
  EXPECT_EQ(count["b"], 100);
  EXPECT_EQ(count["a"], 1000);
  // At +10 s: the full weight.
  count = count_picks(be, 1000, kT0 + 10000);
  EXPECT_EQ(count["b"], 500);
  EXPECT_EQ(count["a"], 500);
  // At +1 s b takes 10 requests (maxconn 100 ramped to 10%), not 11.
  int held = 0;
  while (held < 200 && hold_on(be, b, kT0 + 1000)) ++held;
  EXPECT_EQ(held, 10);
  // Later in the ramp, more.
  while (held < 200 && hold_on(be, b, kT0 + 5000)) ++held;
  EXPECT_EQ(held, 50);
  release_all(be, b);
  expect_idle(be);
}

// Regression (Backend::effective_maxconn and effective_weight): when now_ms was
// before the ramp start, `elapsed` is negative and is cast to
// uint64_t, so the products wrap. Realistic: set_server_state() is called by the
// runtime API with a fresh EventLoop::monotonic_ms(), while worker threads call
// acquire() with their loop's cached now_ms(), refreshed once per iteration and
// so a little older. Input: weight 100, maxconn 100, slowstart 10 s, set ready at
// t0, asked at t0 - 1 ms. Expected: the start of the ramp (weight 1, maxconn 1;
// in any case never above the configured 100). Actual: effective_maxconn =
// 3133608139 (100 * (2^64 - 1) / 10000 truncated to 32 bits), so acquire() lets
// the server take far more than its maxconn; 200 ms early effective_weight wraps
// too (3133608138).
TEST(LbSlowstart, ClockSlightlyBeforeRampStartStaysWithinLimits) {
  BackendConfig cfg = make_backend("roundrobin", {{"a", 100, 100}});
  cfg.servers[0].slowstart = 10000;
  cfg.redispatch = false;
  Backend be(cfg, 1);
  Server* a = be.find_server("a");
  be.set_server_state(a, AdminState::kMaint, kT0 - 5000);
  be.set_server_state(a, AdminState::kReady, kT0);
  for (int64_t early : {1, 5, 200}) {
    uint32_t m = be.effective_maxconn(*a, kT0 - early);
    uint32_t w = be.effective_weight(*a, kT0 - early);
    EXPECT_GE(m, 1U) << early;
    EXPECT_LE(m, 100U) << "effective_maxconn " << early << " ms before the ramp start";
    EXPECT_GE(w, 1U) << early;
    EXPECT_LE(w, 100U) << "effective_weight " << early << " ms before the ramp start";
  }
  // What it means for traffic: requests 1 ms "before" the ramp start.
  int held = 0;
  while (held < 150 && hold_on(be, a, kT0 - 1)) ++held;
  EXPECT_LE(held, 100) << "maxconn 100 exceeded";
  release_all(be, a);
  expect_idle(be);
}

// --- minconn / fullconn ------------------------------------------------------------

TEST(LbMinconn, LimitGrowsWithBackendLoad) {
  BackendConfig cfg = make_backend("roundrobin", {{"a", 1, 100}, {"b", 1, 0}});
  cfg.servers[0].minconn = 10;
  cfg.redispatch = false;  // hold_on() pins slots on b
  Backend be(cfg, 1);
  Server* a = be.find_server("a");
  Server* b = be.find_server("b");
  // Without fullconn, minconn has no effect.
  EXPECT_EQ(be.effective_maxconn(*a, 0), 100U);
  be.set_fullconn(100);
  EXPECT_EQ(be.fullconn(), 100U);
  // Quiet backend: minconn.
  EXPECT_EQ(be.effective_maxconn(*a, 0), 10U);
  // The limit is maxconn * load / fullconn, between minconn and maxconn.
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(hold_on(be, b));
  EXPECT_EQ(be.effective_maxconn(*a, 0), 10U);  // 100 * 5 / 100 = 5 < minconn
  for (int i = 5; i < 50; ++i) ASSERT_TRUE(hold_on(be, b));
  EXPECT_EQ(be.counters().current(), 50);
  EXPECT_EQ(be.effective_maxconn(*a, 0), 50U);
  for (int i = 50; i < 100; ++i) ASSERT_TRUE(hold_on(be, b));
  EXPECT_EQ(be.effective_maxconn(*a, 0), 100U);
  for (int i = 100; i < 150; ++i) ASSERT_TRUE(hold_on(be, b));
  EXPECT_EQ(be.effective_maxconn(*a, 0), 100U);  // never above maxconn
  // Back down as the load falls.
  for (int i = 0; i < 120; ++i) be.release_server(b);
  EXPECT_EQ(be.effective_maxconn(*a, 0), 30U);
  release_all(be, b);
  EXPECT_EQ(be.effective_maxconn(*a, 0), 10U);
  expect_idle(be);
}

TEST(LbMinconn, QuietBackendAdmitsMinconn) {
  BackendConfig cfg = make_backend("roundrobin", {{"a", 1, 100}});
  cfg.servers[0].minconn = 10;
  cfg.fullconn = 100;  // from the configuration this time
  Backend be(cfg, 1);
  Server* a = be.find_server("a");
  int held = 0;
  while (held < 200 && take(be)) ++held;
  // Alone, a's own requests are the whole load: 10 at first, and 100 * 10 / 100
  // = 10 keeps it there.
  EXPECT_EQ(held, 10);
  release_all(be, a);
  expect_idle(be);
}

// A maxconn below minconn (runtime "set server be/a maxconn 5" on a server with
// minconn 10; the configuration loader accepts minconn > maxconn too) stays the
// limit. NOTE (latent, worker/backend/backend.cpp, Backend::effective_maxconn): this calls
// std::clamp(v, minconn, maxconn) with lo > hi, outside clamp's precondition
// (undefined behaviour; aborts with _GLIBCXX_ASSERTIONS). It passes with
// libstdc++ 12, whose clamp is min(max(v, lo), hi); with libc++ (lo if v < lo)
// it would return minconn, 10.
TEST(LbMinconn, MaxconnBelowMinconnStaysTheLimit) {
  BackendConfig cfg = make_backend("roundrobin", {{"a", 1, 100}});
  cfg.servers[0].minconn = 10;
  cfg.fullconn = 100;
  Backend be(cfg, 1);
  Server* a = be.find_server("a");
  be.set_server_maxconn(a, 5);
  EXPECT_LE(be.effective_maxconn(*a, 0), 5U);
  int held = 0;
  while (held < 50 && take(be)) ++held;
  EXPECT_LE(held, 5) << "maxconn 5 exceeded";
  release_all(be, a);
  expect_idle(be);
}

// --- backup servers ----------------------------------------------------------------

BackendConfig backup_backend(bool all_backups) {
  BackendConfig cfg = make_backend("roundrobin", {{"a"}, {"b"}, {"x"}, {"y"}});
  cfg.servers[2].backup = true;
  cfg.servers[3].backup = true;
  cfg.all_backups = all_backups;
  return cfg;
}

TEST(LbBackup, FirstBackupTakesOverWhenNoNormalServerIsUsable) {
  Backend be(backup_backend(false), 1);
  Server* a = be.find_server("a");
  Server* b = be.find_server("b");
  Server* x = be.find_server("x");
  EXPECT_EQ(picks(be, 6), "ababab");  // backups take nothing
  be.set_server_state(a, AdminState::kMaint, 0);
  EXPECT_EQ(picks(be, 4), "bbbb");  // still one normal server
  be.set_server_state(b, AdminState::kDrain, 0);
  EXPECT_EQ(picks(be, 4), "xxxx");  // the first backup takes everything
  be.set_server_state(x, AdminState::kMaint, 0);
  EXPECT_EQ(picks(be, 4), "yyyy");  // then the next one
  be.set_server_state(x, AdminState::kReady, 0);
  EXPECT_EQ(picks(be, 4), "xxxx");
  be.set_server_state(b, AdminState::kReady, 0);
  EXPECT_EQ(picks(be, 4), "bbbb");  // a normal server is back: backups stop
  be.set_server_state(a, AdminState::kReady, 0);
  EXPECT_EQ(picks(be, 4), "abab");
  expect_idle(be);
}

TEST(LbBackup, AllBackupsShareTheLoad) {
  Backend be(backup_backend(true), 1);
  Server* a = be.find_server("a");
  Server* b = be.find_server("b");
  EXPECT_EQ(picks(be, 4), "abab");
  be.set_server_state(a, AdminState::kMaint, 0);
  be.set_server_weight(b, 0, 0);  // weight 0 also makes it unusable
  EXPECT_EQ(picks(be, 4), "xyxy");
  be.set_server_weight(b, 1, 0);
  EXPECT_EQ(picks(be, 4), "bbbb");
  expect_idle(be);
}

TEST(LbBackup, OnlyTheFirstBackupEvenWhenItIsFull) {
  BackendConfig cfg = backup_backend(false);
  cfg.servers[2].maxconn = 1;
  Backend be(cfg, 1);
  Server* x = be.find_server("x");
  be.set_server_state(be.find_server("a"), AdminState::kMaint, 0);
  be.set_server_state(be.find_server("b"), AdminState::kMaint, 0);
  EXPECT_EQ(take(be), x);
  // y is not used without all_backups: the request would have to wait.
  EXPECT_EQ(take(be), nullptr);
  EXPECT_EQ(be.find_server("y")->counters().current(), 0);
  be.release_server(x);
  expect_idle(be);
}

}  // namespace
}  // namespace weir
