// Active health checks as an operator sees them: a server that fails its checks
// leaves the rotation after `fall` failures, with a log line saying why, and
// comes back after `rise` successes. Short intervals; every wait has a generous
// deadline and nothing asserts speed.

#include <gtest/gtest.h>

#include <map>
#include <set>

#include "tests/support/http_client.h"
#include "tests/support/launcher.h"
#include "tests/support/origin.h"
#include "tests/support/weir_config.h"

namespace weir::test {
namespace {

class HealthCheck : public ::testing::Test {
 protected:
  void start(const std::string& check) {
    ignore_sigpipe();
    dir_ = make_temp_dir();
    admin_ = dir_ + "/admin.sock";
    spec_.servers = {a_.address(), b_.address()};
    spec_.global_extra = "  runtime_api: " + admin_ + "\n";
    spec_.backend_extra = "    check: " + check + "\n";
    weir_ = WeirProcess::start(proxy_yaml(spec_));
  }
  void TearDown() override {
    weir_.reset();
    if (!dir_.empty()) remove_tree(dir_);
  }
  std::map<std::string, std::string> row(const std::string& sv) {
    for (auto& r : parse_stat_csv(unix_command(admin_, "show stat"))) {
      if (r["pxname"] == "be" && r["svname"] == sv) return r;
    }
    return {};
  }
  bool wait_status(const std::string& sv, const std::string& status) {
    return wait_until([&] { return row(sv)["status"] == status; }, 10000, 50);
  }
  std::set<std::string> servers_of(int n) {
    std::set<std::string> seen;
    for (int i = 0; i < n; ++i) {
      auto r = http_get(spec_.port, "/");
      seen.insert(r ? (r->status == 200 ? r->header("X-Server") : std::to_string(r->status)) : "?");
    }
    return seen;
  }

  OriginServer a_{"a"}, b_{"b"};
  ProxySpec spec_;
  std::string dir_, admin_;
  std::unique_ptr<WeirProcess> weir_;
};

TEST_F(HealthCheck, HttpCheckTakesAFailingServerOutAndBringsItBack) {
  start("{type: http, path: /health, inter: 100ms, rise: 2, fall: 2, expect: {status: 200-399}}");
  ASSERT_TRUE(weir_);
  EXPECT_EQ(servers_of(4), (std::set<std::string>{"a", "b"}));
  ASSERT_TRUE(wait_until([&] { return row("s2")["check_status"] == "L7OK"; }, 10000, 50));

  // b answers 503 from now on: two failed checks take it DOWN.
  b_.set_default_status(503);
  ASSERT_TRUE(wait_status("s2", "DOWN")) << unix_command(admin_, "show stat");
  EXPECT_TRUE(weir_->wait_for_stderr(
      R"(server be/s2 is DOWN, reason: Layer7 wrong status: 503, check duration: \d+ms\. 1 active and 0 backup servers left\.)",
      5000));
  auto r = row("s2");
  EXPECT_EQ(r["check_status"], "L7STS");
  EXPECT_EQ(r["check_code"], "503");
  EXPECT_EQ(r["chkdown"], "1");
  EXPECT_GE(std::stoi(r["chkfail"]), 2);
  EXPECT_NE(unix_command(admin_, "show servers state be").find(" down L7STS\n"), std::string::npos)
      << unix_command(admin_, "show servers state be");
  // No client request reaches it any more.
  EXPECT_EQ(servers_of(6), (std::set<std::string>{"a"}));

  // Healthy again: two good checks bring it back UP.
  b_.set_default_status(200);
  ASSERT_TRUE(wait_status("s2", "UP")) << unix_command(admin_, "show stat");
  EXPECT_TRUE(
      weir_->wait_for_stderr(R"(server be/s2 is UP, reason: Layer7 check passed: 200)", 5000));
  EXPECT_EQ(servers_of(4), (std::set<std::string>{"a", "b"}));
}

TEST_F(HealthCheck, TcpCheckSeesARefusedConnection) {
  start("{type: tcp, inter: 100ms, rise: 1, fall: 1}");
  ASSERT_TRUE(weir_);
  ASSERT_TRUE(wait_until([&] { return row("s1")["check_status"] == "L4OK"; }, 10000, 50));
  b_.stop();
  ASSERT_TRUE(wait_status("s2", "DOWN")) << unix_command(admin_, "show stat");
  EXPECT_EQ(row("s2")["check_status"], "L4CON");
  EXPECT_TRUE(weir_->wait_for_stderr(
      R"(server be/s2 is DOWN, reason: Layer4 connection problem: Connection refused)", 5000));
  EXPECT_EQ(servers_of(4), (std::set<std::string>{"a"}));
  // Both down: the backend answers 503 at once rather than queueing.
  a_.stop();
  ASSERT_TRUE(wait_status("s1", "DOWN"));
  auto resp = http_get(spec_.port, "/");
  ASSERT_TRUE(resp);
  EXPECT_EQ(resp->status, 503);
  b_.restart();
  ASSERT_TRUE(wait_status("s2", "UP"));
  EXPECT_EQ(servers_of(3), (std::set<std::string>{"b"}));
}

TEST_F(HealthCheck, ABlackHoleTimesOut) {
  start("{type: http, inter: 100ms, timeout: 200ms, rise: 1, fall: 1}");
  ASSERT_TRUE(weir_);
  b_.set_blackhole(true);  // accepts and reads, never answers
  ASSERT_TRUE(wait_status("s2", "DOWN")) << unix_command(admin_, "show stat");
  EXPECT_EQ(row("s2")["check_status"], "L7TOUT");
  b_.set_blackhole(false);
  ASSERT_TRUE(wait_status("s2", "UP"));
}

TEST_F(HealthCheck, OnMarkedDownShutdownSessionsEndsRequestsInProgress) {
  start(
      "{type: http, path: /health, inter: 100ms, rise: 1, fall: 1, "
      "on_marked_down: shutdown_sessions}");
  ASSERT_TRUE(weir_);
  ASSERT_TRUE(wait_until([&] { return row("s2")["check_status"] == "L7OK"; }, 10000, 50));
  // A long request on each server, then b starts failing its checks.
  HttpClient c1(spec_.port), c2(spec_.port);
  ASSERT_TRUE(c1.send_raw("GET /?delay=8000&status=200 HTTP/1.1\r\nHost: t\r\n\r\n"));
  ASSERT_TRUE(c2.send_raw("GET /?delay=8000&status=200 HTTP/1.1\r\nHost: t\r\n\r\n"));
  ASSERT_TRUE(
      wait_until([&] { return row("s1")["scur"] == "1" && row("s2")["scur"] == "1"; }, 5000, 50));
  b_.set_default_status(503);
  ASSERT_TRUE(wait_status("s2", "DOWN"));
  // The request on b is ended at once (well before its 8 s), the one on a goes on.
  EXPECT_TRUE(wait_until([&] { return row("s2")["scur"] == "0"; }, 5000, 50));
  EXPECT_EQ(row("s1")["scur"], "1");
  EXPECT_TRUE(weir_->wait_for_stderr("server be/s2 is DOWN", 2000));
}

TEST_F(HealthCheck, DisableOn404PutsTheServerInNolb) {
  start("{type: http, path: /health, inter: 100ms, rise: 1, fall: 1, disable_on_404: true}");
  ASSERT_TRUE(weir_);
  b_.set_default_status(404);
  ASSERT_TRUE(wait_status("s2", "NOLB")) << unix_command(admin_, "show stat");
  EXPECT_EQ(row("s2")["check_status"], "L7OKC");
  EXPECT_EQ(row("s2")["chkdown"], "0");  // alive: not DOWN
  EXPECT_EQ(servers_of(4), (std::set<std::string>{"a"}));
  b_.set_default_status(200);
  ASSERT_TRUE(wait_status("s2", "UP"));
  EXPECT_EQ(servers_of(4), (std::set<std::string>{"a", "b"}));
}

TEST_F(HealthCheck, HttpCheckCanExpectABody) {
  // The test origin answers its name: "a\n" or "b\n".
  start(
      "{type: http, path: /health, inter: 100ms, rise: 1, fall: 1, "
      "expect: {status: 200, body: \"^a\"}}");
  ASSERT_TRUE(weir_);
  ASSERT_TRUE(wait_status("s2", "DOWN")) << unix_command(admin_, "show stat");
  EXPECT_EQ(row("s2")["check_status"], "L7RSP");
  EXPECT_EQ(row("s2")["last_chk"], "Layer7 response body does not match /^a/");
  EXPECT_EQ(row("s1")["status"], "UP");
}

TEST_F(HealthCheck, DownServersAreCheckedAtDowninter) {
  // inter 1s, downinter 100ms: once DOWN, b is checked ten times as often. Six
  // checks within 3 s cannot happen at inter (it would take 6 s).
  start("{type: http, path: /health, inter: 1s, downinter: 100ms, rise: 100, fall: 1}");
  ASSERT_TRUE(weir_);
  b_.set_default_status(503);
  ASSERT_TRUE(wait_status("s2", "DOWN")) << unix_command(admin_, "show stat");
  int base = b_.requests_served();
  EXPECT_TRUE(wait_until([&] { return b_.requests_served() - base >= 6; }, 3000, 20))
      << b_.requests_served() - base << " checks";
}

TEST_F(HealthCheck, HttpCheckSendsItsRequestAsConfigured) {
  start(
      "{type: http, method: HEAD, path: /ready, host: app.internal, inter: 100ms, "
      "headers: {X-Check: weir, Authorization: Bearer t0k}}");
  ASSERT_TRUE(weir_);
  ASSERT_TRUE(a_.wait_for_requests(1, 10000));
  RecordedRequest r = a_.requests().front();
  EXPECT_EQ(r.method, "HEAD");
  EXPECT_EQ(r.target, "/ready");
  EXPECT_EQ(r.header("Host"), "app.internal");
  EXPECT_EQ(r.header("X-Check"), "weir");
  EXPECT_EQ(r.header("Authorization"), "Bearer t0k");
  EXPECT_EQ(r.header("User-Agent"), "weir-health-check");
}

TEST_F(HealthCheck, OnMarkedUpShutdownBackupSessionsMovesTrafficBackAtOnce) {
  // s1 normal and checked; s2 a backup. While s1 is DOWN a long request runs on
  // the backup; when s1 comes back UP, that request is ended.
  ignore_sigpipe();
  dir_ = make_temp_dir();
  admin_ = dir_ + "/admin.sock";
  spec_.servers = {a_.address(), b_.address()};
  spec_.global_extra = "  runtime_api: " + admin_ + "\n";
  std::string yaml = proxy_yaml(spec_);
  size_t s1 = yaml.find("      s1: {address: \"" + a_.address() + "\"}");
  ASSERT_NE(s1, std::string::npos) << yaml;
  yaml.replace(s1, std::string("      s1: {address: \"" + a_.address() + "\"}").size(),
               "      s1: {address: \"" + a_.address() +
                   "\", check: {type: http, inter: 100ms, rise: 1, fall: 1, "
                   "on_marked_up: shutdown_backup_sessions}}");
  size_t s2 = yaml.find("      s2: {address: \"" + b_.address() + "\"}");
  ASSERT_NE(s2, std::string::npos) << yaml;
  yaml.replace(s2, std::string("      s2: {address: \"" + b_.address() + "\"}").size(),
               "      s2: {address: \"" + b_.address() + "\", backup: true}");
  weir_ = WeirProcess::start(yaml);
  ASSERT_TRUE(weir_);
  a_.set_default_status(503);
  ASSERT_TRUE(wait_status("s1", "DOWN")) << unix_command(admin_, "show stat");
  HttpClient c(spec_.port);
  ASSERT_TRUE(c.send_raw("GET /?delay=8000&status=200 HTTP/1.1\r\nHost: t\r\n\r\n"));
  ASSERT_TRUE(wait_until([&] { return row("s2")["scur"] == "1"; }, 5000, 50));
  a_.set_default_status(200);
  ASSERT_TRUE(wait_status("s1", "UP"));
  EXPECT_TRUE(wait_until([&] { return row("s2")["scur"] == "0"; }, 5000, 50))
      << unix_command(admin_, "show stat");
  EXPECT_TRUE(c.wait_closed(5000));
  EXPECT_EQ(servers_of(3), (std::set<std::string>{"a"}));
}

}  // namespace
}  // namespace weir::test
