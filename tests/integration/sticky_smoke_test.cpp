// Sticky sessions under the sanitizers (label "sanitize": ASan+UBSan and TSan
// builds): a stick rule and an inserted cookie, with two worker threads
// serving clients at once, so that the stick table, the backend's choice and
// the cookie code run concurrently.

#include <atomic>
#include <thread>

#include "tests/integration/sticky.h"

namespace weir::test::sticky {
namespace {

// The fixture's global block gives two threads.
constexpr const char* kBoth = R"y(stick_tables:
  users: {type: string, size: 1k, expire: 10m, store: [server_key]}
frontends:
  web:
    bind: ["127.0.0.1:@PORT@"]
    default_backend: by_table
  cookies:
    bind: ["127.0.0.1:@PORT2@"]
    default_backend: by_cookie
backends:
  by_table:
    stick: {match: "hdr(X-User)", store: "hdr(X-User)", table: users}
    servers: {s1: "@S1@", s2: "@S2@", s3: "@S3@"}
  by_cookie:
    cookie: {name: SRV, indirect: true, maxidle: 10m}
    servers: {s1: "@S1@", s2: "@S2@", s3: "@S3@"}
)y";

TEST_F(Sticky, ConcurrentClientsKeepTheirServerByTableAndByCookie) {
  ASSERT_TRUE(start(kBoth, servers()));
  // Four threads of clients, each with its own users, at once.
  std::atomic<int> wrong{0};
  std::vector<std::thread> clients;
  for (int t = 0; t < 4; ++t) {
    clients.emplace_back([&, t] {
      for (int u = 0; u < 5; ++u) {
        const std::string name = "t" + std::to_string(t) + "u" + std::to_string(u);
        const std::string first = user(name);
        for (int i = 0; i < 5; ++i)
          if (user(name) != first) ++wrong;
        // The cookie: the first answer sets it, the next ones follow it.
        CurlReply r = with_jar(name, "/", port2_);
        const std::string server = r.server();
        for (int i = 0; i < 3; ++i)
          if (with_jar(name, "/", port2_).server() != server) ++wrong;
      }
    });
  }
  for (auto& c : clients) c.join();
  EXPECT_EQ(wrong.load(), 0);
  TableView t;
  EXPECT_TRUE(wait_table(
      "users", [](const TableView& v) { return v.entries.size() == 20; }, &t))
      << t.text;
}

}  // namespace
}  // namespace weir::test::sticky
