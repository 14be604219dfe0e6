// tcp mode as an operator watches it: what show stat counts for connections
// that fail and are retried.

#include <gtest/gtest.h>

#include <map>

#include "tests/support/http_client.h"
#include "tests/support/launcher.h"
#include "tests/support/origin.h"
#include "tests/support/weir_config.h"

namespace weir::test {
namespace {

class TcpProxy : public ::testing::Test {
 protected:
  void SetUp() override {
    ignore_sigpipe();
    dir_ = make_temp_dir();
    admin_ = dir_ + "/admin.sock";
    spec_.mode = "tcp";
    spec_.global_extra = "  runtime_api: [{address: " + admin_ + ", level: user}]\n";
  }
  void TearDown() override { remove_tree(dir_); }

  // `show stat` rows by "proxy/server".
  std::map<std::string, std::map<std::string, std::string>> stats() {
    CommandResult r = weirctl({"-s", admin_, "show", "stat"});
    EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
    std::map<std::string, std::map<std::string, std::string>> by;
    for (auto& row : parse_stat_csv(r.out)) by[row["pxname"] + "/" + row["svname"]] = row;
    return by;
  }

  ProxySpec spec_;
  std::string dir_, admin_;
};

// Every failed attempt is a connection error of its server; every attempt after
// the first is a retry, counted on the backend and on the server that failed,
// as in http mode. (tcp mode counted retries on the backend only: the server's
// wretr stayed 0.)
TEST_F(TcpProxy, RetriesAreCountedOnTheServerAndTheBackend) {
  const uint16_t closed = free_tcp_port();  // nothing listens there
  spec_.servers = {"127.0.0.1:" + std::to_string(closed)};
  spec_.retries = 2;
  auto weir = WeirProcess::start(proxy_yaml(spec_));
  ASSERT_TRUE(weir);
  HttpClient c(spec_.port);
  EXPECT_TRUE(c.wait_closed(10000));  // three attempts refused, then the client is closed
  auto by = stats();
  EXPECT_EQ(by["be/s1"]["econ"], "3");
  EXPECT_EQ(by["be/s1"]["wretr"], "2");
  EXPECT_EQ(by["be/BACKEND"]["econ"], "3");
  EXPECT_EQ(by["be/BACKEND"]["wretr"], "2");
}

}  // namespace
}  // namespace weir::test
