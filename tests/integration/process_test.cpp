// The master/worker life cycle as an operator meets it: -c, -v, signals,
// worker respawn, reload.

#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <cstring>
#include <fstream>
#include <thread>

#include "tests/support/http_client.h"
#include "tests/support/launcher.h"
#include "tests/support/origin.h"
#include "tests/support/weir_config.h"

namespace weir::test {
namespace {

class Process : public ::testing::Test {
 protected:
  void SetUp() override { ignore_sigpipe(); }
};

TEST_F(Process, CheckReportsEveryErrorWithFileLineColumn) {
  std::string dir = make_temp_dir();
  std::string path = dir + "/bad.yaml";
  write_file(path,
             "global:\n"
             "  threads: 2\n"
             "  maxconns: 10\n"
             "frontends:\n"
             "  web:\n"
             "    bind: [\"127.0.0.1:80\"]\n"
             "    default_backend: nope\n"
             "backends:\n"
             "  app:\n"
             "    timeouts: {server: 10parsecs}\n"
             "    servers: {s1: \"127.0.0.1:99999\"}\n");
  CommandResult r = run_weir({"-c", "-f", path});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find(path + ":3:3: "), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(path + ":7:22: "), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(path + ":10:24: "), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(path + ":11:19: "), std::string::npos) << r.err;

  std::string good = dir + "/good.yaml";
  write_file(good,
             "frontends:\n  web: {bind: [\"127.0.0.1:80\"], default_backend: app}\n"
             "backends:\n  app: {servers: {s1: \"127.0.0.1:9001\"}}\n");
  r = run_weir({"-c", "-f", good});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  // A bad configuration never starts a master.
  r = run_weir({"-f", path});
  EXPECT_EQ(r.exit_code, 1);
  remove_tree(dir);
}

TEST_F(Process, VersionListsLibraries) {
  CommandResult r = run_weir({"-v"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.out.find("weir "), std::string::npos);
  EXPECT_NE(r.out.find("OpenSSL"), std::string::npos);
  EXPECT_NE(r.out.find("yaml-cpp"), std::string::npos);
  EXPECT_NE(r.out.find("jemalloc"), std::string::npos);
}

TEST_F(Process, GracefulStopFinishesInFlightRequests) {
  OriginServer a("a");
  ProxySpec spec;
  spec.servers = {a.address()};
  auto weir = WeirProcess::start(proxy_yaml(spec));
  ASSERT_TRUE(weir);
  HttpClient c(spec.port);
  ASSERT_TRUE(c.send_raw("GET /?delay=1500 HTTP/1.1\r\nHost: x\r\n\r\n"));
  ASSERT_TRUE(wait_until([&] { return a.current_connections() > 0; }, 5000));
  weir->signal(SIGUSR1);
  auto r = c.read_response(10000);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->header("Connection"), "close");
  auto code = weir->wait_exit(15000);
  ASSERT_TRUE(code);
  EXPECT_EQ(*code, 0);
  EXPECT_FALSE(can_connect(spec.port));
}

TEST_F(Process, FastStopOnSigterm) {
  OriginServer a("a");
  ProxySpec spec;
  spec.servers = {a.address()};
  auto weir = WeirProcess::start(proxy_yaml(spec));
  ASSERT_TRUE(weir);
  pid_t worker = weir->current_worker();
  weir->signal(SIGTERM);
  auto code = weir->wait_exit(10000);
  ASSERT_TRUE(code);
  EXPECT_EQ(*code, 0);
  EXPECT_TRUE(wait_until([&] { return kill(worker, 0) != 0; }, 5000));
}

TEST_F(Process, KilledWorkerIsRespawnedAndTrafficResumes) {
  OriginServer a("a");
  ProxySpec spec;
  spec.servers = {a.address()};
  auto weir = WeirProcess::start(proxy_yaml(spec));
  ASSERT_TRUE(weir);
  pid_t first = weir->current_worker();
  ASSERT_GT(first, 0);
  kill(first, SIGKILL);
  ASSERT_TRUE(weir->wait_ready_count(2, 15000)) << weir->stderr_text();
  EXPECT_NE(weir->current_worker(), first);
  EXPECT_TRUE(weir->wait_for_stderr("exited unexpectedly", 1000));
  auto r = http_get(spec.port, "/");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
}

TEST_F(Process, ReloadAddsAServerAndABadReloadChangesNothing) {
  OriginServer a("a"), b("b");
  ProxySpec spec;
  spec.servers = {a.address()};
  auto weir = WeirProcess::start(proxy_yaml(spec));
  ASSERT_TRUE(weir);
  pid_t first = weir->current_worker();

  // A broken file: the reload is refused and generation 1 keeps serving.
  weir->write_config("frontends: [oops\n");
  weir->signal(SIGHUP);
  ASSERT_TRUE(weir->wait_for_stderr("reload failed", 10000)) << weir->stderr_text();
  EXPECT_TRUE(weir->wait_for_stderr(R"(weir\.yaml:\d+:\d+: )", 1000));
  auto r = http_get(spec.port, "/");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->header("X-Server"), "a");

  // A good one with a second server: generation 2 takes over, generation 1 exits.
  spec.servers = {a.address(), b.address()};
  weir->write_config(proxy_yaml(spec));
  weir->signal(SIGHUP);
  ASSERT_TRUE(weir->wait_ready_count(2, 15000)) << weir->stderr_text();
  EXPECT_EQ(weir->current_generation(), 2);
  EXPECT_TRUE(wait_until([&] { return kill(first, 0) != 0; }, 10000));
  std::set<std::string> servers;
  for (int i = 0; i < 4; ++i) {
    auto rr = http_get(spec.port, "/");
    ASSERT_TRUE(rr);
    servers.insert(rr->header("X-Server"));
  }
  EXPECT_EQ(servers, (std::set<std::string>{"a", "b"}));
}

TEST_F(Process, DaemonModeWritesPidFileAndKeepsItsSockets) {
  OriginServer a("a");
  ProxySpec spec;
  spec.servers = {a.address()};
  std::string dir = make_temp_dir();
  std::string cfg = dir + "/weir.yaml";
  const std::string admin = dir + "/admin.sock";
  spec.global_extra = "  runtime_api: " + admin + "\n";
  write_file(cfg, proxy_yaml(spec));
  std::string pidfile = dir + "/weir.pid";
  CommandResult r = run_weir({"-D", "-f", cfg, "-p", pidfile}, 20000);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::string pid_text = read_file(pidfile);
  pid_t pid = static_cast<pid_t>(std::atoi(pid_text.c_str()));
  ASSERT_GT(pid, 0);
  EXPECT_EQ(kill(pid, 0), 0);
  auto resp = http_get(spec.port, "/");
  ASSERT_TRUE(resp);
  EXPECT_EQ(resp->status, 200);
  // The parent that returned to the shell must not take the daemon's runtime-API
  // socket file with it.
  struct stat st {};
  EXPECT_EQ(::stat(admin.c_str(), &st), 0) << admin << " is gone";
  EXPECT_NE(unix_command(admin, "show info").find("Generation: 1"), std::string::npos);
  kill(pid, SIGTERM);
  EXPECT_TRUE(wait_until([&] { return kill(pid, 0) != 0 || !can_connect(spec.port); }, 10000));
  remove_tree(dir);
}

}  // namespace
}  // namespace weir::test

namespace weir::test {
namespace {

// Three operators ask for a reload at the same moment: the first runs, the two
// asked while it runs become exactly one more, and each operator is answered
// by the reload that covers its request. The master is held (SIGSTOP) while the
// three requests arrive, so that all three wait when it resumes: it reads them
// in one pass, starts generation 2 for the first, and the other two find that
// reload in progress. (The master CLI rather than SIGHUP: the kernel merges
// SIGHUPs that are pending together, so how many would reach the master is up
// to timing, and the test could not say 2 or 3.)
TEST_F(Process, ReloadsAskedDuringAReloadAreCoalescedNeverLost) {
  OriginServer a("a");
  ProxySpec spec;
  spec.servers = {a.address()};
  const std::string dir = make_temp_dir();
  const std::string cli = dir + "/master.sock";
  WeirOptions opts;
  opts.extra_args = {"-S", cli};
  auto weir = WeirProcess::start(proxy_yaml(spec), opts);
  ASSERT_TRUE(weir);
  ASSERT_EQ(::kill(weir->pid(), SIGSTOP), 0);
  std::vector<UniqueFd> operators;
  for (int i = 0; i < 3; ++i) {
    UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, cli.c_str(), cli.size());
    ASSERT_EQ(::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0)
        << std::strerror(errno);
    ASSERT_EQ(::write(fd.get(), "reload\n", 7), 7);
    ::shutdown(fd.get(), SHUT_WR);
    operators.push_back(std::move(fd));
  }
  ASSERT_EQ(::kill(weir->pid(), SIGCONT), 0);
  // Each operator's answer, in full (the master closes the connection after it).
  std::vector<std::string> answers;
  for (UniqueFd& fd : operators) {
    std::string out;
    char buf[4096];
    for (;;) {
      pollfd p{fd.get(), POLLIN, 0};
      if (::poll(&p, 1, 30000) <= 0) break;
      ssize_t n = ::read(fd.get(), buf, sizeof buf);
      if (n <= 0) break;
      out.append(buf, static_cast<size_t>(n));
    }
    answers.push_back(out);
  }
  for (const std::string& answer : answers) {
    EXPECT_EQ(answer.rfind("Success=1\n", 0), 0u) << answer << weir->stderr_text();
  }
  // Both later answers came with generation 3 ready, the first with generation 2.
  EXPECT_TRUE(weir->wait_ready_count(3, 1000));
  EXPECT_EQ(weir->current_generation(), 3);
  const std::string err = weir->stderr_text();
  EXPECT_EQ(count_matching_lines(err, "reload requested while one is in progress"), 2u) << err;
  EXPECT_EQ(count_matching_lines(err, "generation=[0-9]+ started"), 3u) << err;
  // Never two generations starting at once: each "started" is followed by its "ready".
  EXPECT_EQ(count_matching_lines(err, "generation=[0-9]+ started"),
            count_matching_lines(err, "generation=[0-9]+ ready"));
  weir.reset();
  remove_tree(dir);
}

TEST_F(Process, ReloadAddsAndRemovesFrontends) {
  OriginServer a("a");
  ProxySpec spec;
  spec.servers = {a.address()};
  auto weir = WeirProcess::start(proxy_yaml(spec));
  ASSERT_TRUE(weir);
  uint16_t extra = free_tcp_port();
  std::string yaml = proxy_yaml(spec);
  std::string added = yaml;
  size_t pos = added.find("backends:");
  added.insert(
      pos, "  extra: {bind: [\"127.0.0.1:" + std::to_string(extra) + "\"], default_backend: be}\n");
  weir->write_config(added);
  weir->signal(SIGHUP);
  ASSERT_TRUE(weir->wait_ready_count(2, 15000)) << weir->stderr_text();
  auto r = http_get(extra, "/");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  weir->write_config(yaml);
  weir->signal(SIGHUP);
  ASSERT_TRUE(weir->wait_ready_count(3, 15000)) << weir->stderr_text();
  EXPECT_TRUE(wait_until([&] { return !can_connect(extra); }, 10000));
  auto still = http_get(spec.port, "/");
  ASSERT_TRUE(still);
  EXPECT_EQ(still->status, 200);
}

}  // namespace
}  // namespace weir::test

namespace weir::test {
namespace {

TEST_F(Process, HardStopAfterEndsADrainingGenerationHeldByATunnel) {
  OriginServer a("a");
  ProxySpec spec;
  spec.mode = "tcp";
  spec.servers = {a.address()};
  spec.global_extra = "  timeouts: {hard_stop_after: 1s}\n";
  auto weir = WeirProcess::start(proxy_yaml(spec));
  ASSERT_TRUE(weir);
  pid_t first = weir->current_worker();
  HttpClient tunnel(spec.port);  // a tcp connection that never ends by itself
  ASSERT_TRUE(tunnel.request("GET", "/"));
  weir->signal(SIGHUP);
  ASSERT_TRUE(weir->wait_ready_count(2, 15000));
  // The old generation gives up on the tunnel at hard_stop_after and exits.
  EXPECT_TRUE(weir->wait_for_stderr("hard_stop_after reached with 1 connections left", 10000))
      << weir->stderr_text();
  EXPECT_TRUE(wait_until([&] { return kill(first, 0) != 0; }, 10000));
  EXPECT_TRUE(tunnel.wait_closed(5000));
}

}  // namespace
}  // namespace weir::test
