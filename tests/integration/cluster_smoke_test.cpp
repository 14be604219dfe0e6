// The peers cluster under the sanitizers (label "sanitize": ASan+UBSan and
// TSan builds): three nodes exchanging updates from clients on every node at
// once, then a node cut and healed, so that the agents' cluster code (the
// CURVE sockets, the ZAP handler, updates, acks, gaps and resyncs) runs where
// the sanitizers watch it.

#include <atomic>
#include <thread>

#include "tests/integration/cluster.h"

namespace weir::test::cluster {
namespace {

int64_t count_of(const TableView& v, const std::string& key) {
  const std::string s = v.at(key, "http_req_cnt");
  return s.empty() || s[0] == '<' ? -1 : std::stoll(s);
}

TEST_F(Cluster, ClientsOnEveryNodeConvergeAndACutNodeCatchesUp) {
  ASSERT_TRUE(start_all());
  ASSERT_TRUE(wait_mesh(60000)) << api("a", "show peers");
  std::atomic<int> ok{0};
  std::vector<std::thread> clients;
  for (const std::string& n : kNodes) {
    clients.emplace_back([&, n] {
      for (int i = 0; i < 30; ++i) {
        if (request(n, "shared") == 200) ok.fetch_add(1);
        request(n, n + std::to_string(i % 5));
      }
    });
  }
  for (std::thread& t : clients) t.join();
  const int64_t want = ok.load();
  ASSERT_GT(want, 0);
  for (const std::string& n : kNodes) {
    EXPECT_TRUE(wait_table(
        n, [&](const TableView& v) { return count_of(v, "shared") == want; },
        "shared at " + std::to_string(want), 60000));
  }
  cut("a", "b");
  cut("a", "c");
  for (int i = 0; i < 20; ++i) ASSERT_EQ(request("b", "during" + std::to_string(i)), 200);
  heal("a", "b");
  heal("a", "c");
  EXPECT_TRUE(wait_table(
      "a",
      [](const TableView& v) {
        for (int i = 0; i < 20; ++i) {
          if (!v.has("during" + std::to_string(i))) return false;
        }
        return true;
      },
      "every entry made during the cut", 60000));
}

}  // namespace
}  // namespace weir::test::cluster
