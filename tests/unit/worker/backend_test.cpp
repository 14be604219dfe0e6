#include "worker/backend.h"

#include <gtest/gtest.h>

#include <map>
#include <string>

namespace weir {
namespace {

BackendConfig backend_with(const std::vector<std::pair<std::string, uint32_t>>& servers) {
  BackendConfig b;
  b.name = "be";
  for (auto& [name, weight] : servers) {
    ServerConfig s;
    s.name = name;
    s.weight = weight;
    b.servers.push_back(s);
  }
  return b;
}

std::string picks(Backend& be, int n) {
  std::string out;
  TriedServers none;
  for (int i = 0; i < n; ++i) out += be.pick_server(none)->name();
  return out;
}

TEST(SmoothRoundRobin, EqualWeightsAlternate) {
  Backend be(backend_with({{"a", 1}, {"b", 1}, {"c", 1}}));
  EXPECT_EQ(picks(be, 9), "abcabcabc");
}

TEST(SmoothRoundRobin, WeightsAreInterleavedNotBursted) {
  Backend be(backend_with({{"a", 5}, {"b", 1}, {"c", 1}}));
  EXPECT_EQ(picks(be, 7), "aabacaa");
}

TEST(SmoothRoundRobin, DistributionMatchesWeightsExactlyOverACycle) {
  Backend be(backend_with({{"a", 10}, {"b", 3}, {"c", 1}, {"d", 0}}));
  std::map<char, int> count;
  for (char c : picks(be, 14 * 50)) ++count[c];
  EXPECT_EQ(count['a'], 500);
  EXPECT_EQ(count['b'], 150);
  EXPECT_EQ(count['c'], 50);
  EXPECT_EQ(count['d'], 0);
}

TEST(SmoothRoundRobin, RetriesAvoidTriedServersWhileOthersRemain) {
  Backend be(backend_with({{"a", 1}, {"b", 1}, {"c", 1}}));
  TriedServers tried;
  Server* first = be.pick_server(tried);
  tried.add(first->index());
  Server* second = be.pick_server(tried);
  EXPECT_NE(second, first);
  tried.add(second->index());
  Server* third = be.pick_server(tried);
  EXPECT_NE(third, first);
  EXPECT_NE(third, second);
  tried.add(third->index());
  // Every server tried: picking goes on among all of them rather than failing.
  EXPECT_NE(be.pick_server(tried), nullptr);
}

TEST(SmoothRoundRobin, NoUsableServer) {
  Backend empty(backend_with({}));
  EXPECT_EQ(empty.pick_server(TriedServers{}), nullptr);
  Backend zero(backend_with({{"a", 0}}));
  EXPECT_EQ(zero.pick_server(TriedServers{}), nullptr);
}

}  // namespace
}  // namespace weir
