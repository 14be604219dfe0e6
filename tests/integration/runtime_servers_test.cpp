// Changing servers while weir runs, as an operator does it with weirctl: adding
// and deleting servers, moving one to a new address, limiting its concurrency,
// and reopening log files after logrotate moved them.

#include <grp.h>
#include <gtest/gtest.h>
#include <pwd.h>
#include <stdio.h>
#include <sys/stat.h>

#include <algorithm>
#include <future>
#include <map>

#include "tests/support/http_client.h"
#include "tests/support/launcher.h"
#include "tests/support/origin.h"
#include "tests/support/weir_config.h"

namespace weir::test {
namespace {

class RuntimeServers : public ::testing::Test {
 protected:
  void start(const std::string& server_options = "") {
    ignore_sigpipe();
    dir_ = make_temp_dir();
    admin_ = dir_ + "/admin.sock";
    oper_ = dir_ + "/operator.sock";
    log_ = dir_ + "/access.log";
    spec_.servers = {a_.address()};
    spec_.server_options = server_options;
    spec_.logs = "[{target: " + log_ + "}]";
    spec_.global_extra = "  runtime_api: [{address: " + admin_ +
                         ", level: admin}, {address: " + oper_ + ", level: operator}]\n";
    weir_ = WeirProcess::start(proxy_yaml(spec_));
  }
  void TearDown() override {
    weir_.reset();
    if (!dir_.empty()) remove_tree(dir_);
  }
  std::string servers_of(int n, const std::string& target = "/") {
    std::string seen;
    for (int i = 0; i < n; ++i) {
      auto r = http_get(spec_.port, target);
      seen += r ? (r->status == 200 ? r->header("X-Server") : std::to_string(r->status)) : "?";
    }
    return seen;
  }
  std::map<std::string, std::string> stat_row(const std::string& px, const std::string& sv) {
    for (auto& row : parse_stat_csv(weirctl({"-s", admin_, "show", "stat"}).out)) {
      if (row["pxname"] == px && row["svname"] == sv) return row;
    }
    return {};
  }

  OriginServer a_{"a"}, b_{"b"};
  ProxySpec spec_;
  std::string dir_, admin_, oper_, log_;
  std::unique_ptr<WeirProcess> weir_;
};

TEST_F(RuntimeServers, AddedServerTakesTrafficOnceEnabledAndDeletedOneLeavesIt) {
  start();
  ASSERT_TRUE(weir_);
  EXPECT_EQ(servers_of(2), "aa");
  // Adding needs the admin level.
  CommandResult r = weirctl({"-s", oper_, "add", "server", "be/new", b_.address()});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.out.find("needs the admin level"), std::string::npos) << r.out;
  r = weirctl({"-s", admin_, "add", "server", "be/new", b_.address(), "weight", "2"});
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("New server registered: be/new " + b_.address() + " state maint"),
            std::string::npos)
      << r.out;
  // A new server starts in maint: no traffic until it is enabled.
  EXPECT_EQ(servers_of(3), "aaa");
  EXPECT_EQ(stat_row("be", "new")["status"], "MAINT");
  ASSERT_EQ(weirctl({"-s", oper_, "enable", "server", "be/new"}).exit_code, 0);
  std::string mix = servers_of(6);
  EXPECT_EQ(std::count(mix.begin(), mix.end(), 'b'), 4) << mix;  // weight 2 against 1
  EXPECT_EQ(stat_row("be", "new")["stot"], "4");
  EXPECT_EQ(stat_row("be", "new")["weight"], "2");

  // Refusals: same name, bad address, unknown option, deleting a live server.
  EXPECT_EQ(weirctl({"-s", admin_, "add", "server", "be/s1", b_.address()}).exit_code, 1);
  r = weirctl({"-s", admin_, "add", "server", "be/x", "127.0.0.1"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.out.find("missing port"), std::string::npos) << r.out;
  EXPECT_EQ(
      weirctl({"-s", admin_, "add", "server", "be/x", b_.address(), "colour", "red"}).exit_code, 1);
  r = weirctl({"-s", admin_, "del", "server", "be/new"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.out.find("put it in maint first"), std::string::npos) << r.out;

  // A request in flight on the server blocks its deletion until it ends.
  ASSERT_EQ(weirctl({"-s", oper_, "disable", "server", "be/s1"}).exit_code, 0);
  auto slow =
      std::async(std::launch::async, [this] { return http_get(spec_.port, "/?delay=1500"); });
  ASSERT_TRUE(wait_until([&] { return stat_row("be", "new")["scur"] == "1"; }, 5000));
  ASSERT_EQ(weirctl({"-s", oper_, "disable", "server", "be/new"}).exit_code, 0);
  r = weirctl({"-s", admin_, "del", "server", "be/new"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.out.find("still has 1 request"), std::string::npos) << r.out;
  auto done = slow.get();
  ASSERT_TRUE(done);
  EXPECT_EQ(done->status, 200);
  EXPECT_EQ(done->header("X-Server"), "b");
  // The client may hold the whole response a moment before weir has counted the
  // request out of the server: the deletion succeeds once it has.
  EXPECT_TRUE(wait_until(
      [&] {
        r = weirctl({"-s", admin_, "del", "server", "be/new"});
        return r.exit_code == 0;
      },
      5000))
      << r.out;
  EXPECT_TRUE(stat_row("be", "new").empty());
  ASSERT_EQ(weirctl({"-s", oper_, "enable", "server", "be/s1"}).exit_code, 0);
  int b_before = b_.requests_served();
  EXPECT_EQ(servers_of(3), "aaa");
  EXPECT_EQ(b_.requests_served(), b_before);
  EXPECT_EQ(weirctl({"-s", admin_, "del", "server", "be/new"}).exit_code, 1);
  EXPECT_TRUE(weir_->wait_for_stderr(R"(server be/new deleted \(runtime API\))", 2000));
}

TEST_F(RuntimeServers, SetServerAddrMovesTrafficIncludingReusedConnections) {
  start();
  ASSERT_TRUE(weir_);
  EXPECT_EQ(servers_of(3), "aaa");  // leaves idle keep-alive connections to a in weir's pool
  CommandResult r = weirctl({"-s", oper_, "set", "server", "be/s1", "addr", "127.0.0.1"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.out.find("needs the admin level"), std::string::npos) << r.out;
  r = weirctl({"-s", admin_, "set", "server", "be/s1", "addr", "127.0.0.1", "port",
               std::to_string(b_.port())});
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_EQ(servers_of(3), "bbb");
  EXPECT_EQ(stat_row("be", "s1")["addr"], b_.address());
  CommandResult st = weirctl({"-s", admin_, "show", "servers", "state"});
  EXPECT_NE(st.out.find("be s1 " + b_.address() + " ready"), std::string::npos) << st.out;
  EXPECT_EQ(
      weirctl({"-s", admin_, "set", "server", "be/s1", "addr", "127.0.0.1", "port", "0"}).exit_code,
      1);
  EXPECT_EQ(weirctl({"-s", admin_, "set", "server", "be/s1", "addr", "not..an..ip"}).exit_code, 1);
  EXPECT_EQ(servers_of(1), "b");
}

// `set server ... addr` takes HAProxy's `<ip> port <port>`, the `ip:port` of the
// configuration and of `add server`, and IPv6 with or without brackets. A name is
// refused with what to give instead.
TEST_F(RuntimeServers, SetServerAddrTakesIpPortAndIpv6Forms) {
  start();
  ASSERT_TRUE(weir_);
  EXPECT_EQ(servers_of(2), "aa");
  CommandResult r = weirctl({"-s", admin_, "set", "server", "be/s1", "addr", b_.address()});
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(servers_of(2), "bb");

  OriginServer c6("c", 0, "::1");
  r = weirctl(
      {"-s", admin_, "set", "server", "be/s1", "addr", "[::1]", "port", std::to_string(c6.port())});
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_EQ(servers_of(2), "cc");
  EXPECT_EQ(stat_row("be", "s1")["addr"], c6.address());
  r = weirctl({"-s", admin_, "set", "server", "be/s1", "addr", a_.address()});
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_EQ(servers_of(2), "aa");
  // Without brackets and without a port: the port stays.
  r = weirctl({"-s", admin_, "set", "server", "be/s1", "addr", "::1"});
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_EQ(stat_row("be", "s1")["addr"], "[::1]:" + std::to_string(a_.port()));
  r = weirctl({"-s", admin_, "set", "server", "be/s1", "addr", c6.address()});
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_EQ(servers_of(2), "cc");

  r = weirctl({"-s", admin_, "set", "server", "be/s1", "addr", "app.internal", "port", "80"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.out.find("'app.internal' is not an IP address: give the server's IP"),
            std::string::npos)
      << r.out;
  r = weirctl({"-s", admin_, "set", "server", "be/s1", "addr", b_.address(), "port", "80"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.out.find("the port is given twice"), std::string::npos) << r.out;
  r = weirctl({"-s", admin_, "add", "server", "be/x", "app.internal:80"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.out.find("is not an IP address"), std::string::npos) << r.out;
  EXPECT_EQ(servers_of(1), "c");
  EXPECT_TRUE(weir_->wait_for_stderr(R"(server be/s1: address \[::1\]:\d+ -> )" +
                                         std::string("127\\.0\\.0\\.1:") +
                                         std::to_string(a_.port()) + R"( \(runtime API\))",
                                     2000));
}

TEST_F(RuntimeServers, ServerMaxconnBoundsConcurrentRequests) {
  start("maxconn: 1");
  ASSERT_TRUE(weir_);
  EXPECT_EQ(stat_row("be", "s1")["slim"], "1");
  auto slow =
      std::async(std::launch::async, [this] { return http_get(spec_.port, "/?delay=1500"); });
  ASSERT_TRUE(wait_until([&] { return stat_row("be", "s1")["scur"] == "1"; }, 5000));
  // The only server is full: the next request waits in the backend's queue
  // until the first one ends, then is served.
  auto second = std::async(std::launch::async, [this] { return http_get(spec_.port, "/"); });
  ASSERT_TRUE(wait_until([&] { return stat_row("be", "BACKEND")["qcur"] == "1"; }, 5000));
  EXPECT_EQ(stat_row("be", "s1")["scur"], "1");
  ASSERT_TRUE(slow.get());
  auto queued = second.get();
  ASSERT_TRUE(queued);
  EXPECT_EQ(queued->status, 200);
  EXPECT_EQ(stat_row("be", "BACKEND")["qcur"], "0");
  EXPECT_EQ(stat_row("be", "BACKEND")["qmax"], "1");
  EXPECT_EQ(stat_row("be", "s1")["smax"], "1");
  // Raising the limit at runtime lets two run together.
  ASSERT_EQ(weirctl({"-s", admin_, "set", "server", "be/s1", "maxconn", "2"}).exit_code, 0);
  auto one = std::async(std::launch::async, [this] { return http_get(spec_.port, "/?delay=800"); });
  auto two = std::async(std::launch::async, [this] { return http_get(spec_.port, "/?delay=800"); });
  auto r1 = one.get(), r2 = two.get();
  ASSERT_TRUE(r1 && r2);
  EXPECT_EQ(r1->status, 200);
  EXPECT_EQ(r2->status, 200);
  EXPECT_EQ(stat_row("be", "s1")["smax"], "2");
  EXPECT_EQ(stat_row("be", "s1")["slim"], "2");
  EXPECT_EQ(weirctl({"-s", oper_, "set", "server", "be/s1", "maxconn", "5"}).exit_code, 1);
  EXPECT_EQ(weirctl({"-s", admin_, "set", "server", "be/s1", "maxconn", "-1"}).exit_code, 1);
}

TEST_F(RuntimeServers, ReopenLogsFollowsLogrotate) {
  start();
  ASSERT_TRUE(weir_);
  ASSERT_TRUE(http_get(spec_.port, "/before"));
  ASSERT_TRUE(
      wait_until([&] { return read_file(log_).find("/before") != std::string::npos; }, 5000));
  // logrotate: move the file away, then tell weir.
  ASSERT_EQ(::rename(log_.c_str(), (log_ + ".1").c_str()), 0);
  CommandResult r = weirctl({"-s", oper_, "reopen", "logs"});
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("reopened " + log_), std::string::npos) << r.out;
  ASSERT_TRUE(http_get(spec_.port, "/after"));
  ASSERT_TRUE(
      wait_until([&] { return read_file(log_).find("/after") != std::string::npos; }, 5000));
  EXPECT_EQ(read_file(log_).find("/before"), std::string::npos);
  EXPECT_NE(read_file(log_ + ".1").find("/before"), std::string::npos);
  EXPECT_EQ(read_file(log_ + ".1").find("/after"), std::string::npos);
}

}  // namespace
}  // namespace weir::test

namespace weir::test {
namespace {

TEST(RuntimeApiSocket, UnixSocketGetsItsModeOwnerAndGroupAndABarePortMeansLoopback) {
  ignore_sigpipe();
  OriginServer a("a");
  std::string dir = make_temp_dir();
  const std::string sock = dir + "/ops.sock";
  uint16_t port = free_tcp_port();
  ProxySpec spec;
  spec.servers = {a.address()};
  spec.global_extra = "  runtime_api:\n    - {address: " + sock +
                      ", level: operator, mode: \"0640\", owner: nobody, group: nogroup}\n"
                      "    - {address: \"" +
                      std::to_string(port) + "\", level: user}\n";
  auto weir = WeirProcess::start(proxy_yaml(spec));
  ASSERT_TRUE(weir);
  struct stat st {};
  ASSERT_EQ(::stat(sock.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0640u);
  struct passwd* pw = getpwnam("nobody");
  struct group* gr = getgrnam("nogroup");
  ASSERT_TRUE(pw && gr);
  EXPECT_EQ(st.st_uid, pw->pw_uid);
  EXPECT_EQ(st.st_gid, gr->gr_gid);
  CommandResult r = weirctl({"-s", "127.0.0.1:" + std::to_string(port), "show", "info"});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  weir.reset();
  remove_tree(dir);
}

}  // namespace
}  // namespace weir::test
