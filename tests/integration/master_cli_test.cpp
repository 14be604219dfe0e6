// The master CLI, systemd notifications and the cap on old generations, used the
// way an operator (or systemd) uses them.

#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <sys/stat.h>

#include <atomic>
#include <cstring>
#include <regex>
#include <thread>

#include "tests/support/http_client.h"
#include "tests/support/installed_weir.h"
#include "tests/support/launcher.h"
#include "tests/support/origin.h"
#include "tests/support/traffic_loop.h"
#include "tests/support/weir_config.h"

namespace weir::test {
namespace {

std::string cli(const std::string& path, const std::string& command) {
  return unix_command(path, command);
}

struct Fixture {
  OriginServer a{"a"};
  OriginServer b{"b"};
  ProxySpec spec;
  std::string dir;
  std::string sock;
  std::unique_ptr<WeirProcess> weir;

  ~Fixture() {
    weir.reset();
    remove_tree(dir);
  }

  explicit Fixture(const std::string& global_extra = "", WeirOptions opts = {}) {
    ignore_sigpipe();
    spec.servers = {a.address()};
    spec.global_extra = global_extra;
    dir = make_temp_dir();
    sock = dir + "/master.sock";
    opts.extra_args = {"-S", sock};
    weir = WeirProcess::start(proxy_yaml(spec), opts);
  }
  std::string cli_answer(const std::string& command) { return cli(sock, command); }
};

TEST(MasterCli, ShowProcListsTheMasterAndItsWorker) {
  Fixture f;
  ASSERT_TRUE(f.weir);
  std::string out = f.cli_answer("show proc");
  EXPECT_NE(out.find(std::to_string(f.weir->pid()) + " "), std::string::npos) << out;
  EXPECT_NE(out.find("master"), std::string::npos);
  EXPECT_EQ(count_matching_lines(out, R"(^\d+\s+worker\s+1\s+current\s+)"), 1u) << out;
  std::string help = cli(f.sock, "help");
  EXPECT_NE(help.find("show proc"), std::string::npos);
  std::string unknown = cli(f.sock, "frobnicate");
  EXPECT_NE(unknown.find("Unknown command"), std::string::npos);
}

TEST(MasterCli, ReloadAnswersOnceTheNewGenerationServes) {
  Fixture f;
  ASSERT_TRUE(f.weir);
  f.spec.servers = {f.a.address(), f.b.address()};
  f.weir->write_config(proxy_yaml(f.spec));
  std::string out = cli(f.sock, "reload");
  EXPECT_EQ(out.rfind("Success=1\n--\n", 0), 0u) << out;
  EXPECT_NE(out.find("generation=2 ready"), std::string::npos) << out;
  // By the time the answer arrives, generation 2 is the current one.
  std::string proc = cli(f.sock, "show proc");
  EXPECT_EQ(count_matching_lines(proc, R"(^\d+\s+worker\s+2\s+current\s.*\s\d+\.\d+\.\d+$)"), 1u)
      << proc;
  std::set<std::string> servers;
  for (int i = 0; i < 4; ++i) {
    auto r = http_get(f.spec.port, "/");
    ASSERT_TRUE(r);
    servers.insert(r->header("X-Server"));
  }
  EXPECT_EQ(servers.size(), 2u);
  EXPECT_NE(cli(f.sock, "show startup-logs").find("reload complete"), std::string::npos);
}

TEST(MasterCli, InvalidReloadReturnsTheErrorAndTrafficGoesOn) {
  Fixture f;
  ASSERT_TRUE(f.weir);
  f.weir->write_config("frontends:\n  web: {bind: [\"127.0.0.1:1\"], default_backend: nope}\n");
  std::string out = cli(f.sock, "reload");
  EXPECT_EQ(out.rfind("Success=0\n--\n", 0), 0u) << out;
  EXPECT_NE(out.find("weir.yaml:2:"), std::string::npos) << out;
  auto r = http_get(f.spec.port, "/");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(count_matching_lines(cli(f.sock, "show proc"), R"(worker\s+1\s+current)"), 1u);
}

TEST(MasterCli, OldestDrainingGenerationIsForcedOutBeyondTheCap) {
  Fixture f("  max_old_generations: 1\n");
  ASSERT_TRUE(f.weir);
  // Idle keep-alive clients hold each generation in its draining state.
  HttpClient c1(f.spec.port);
  ASSERT_TRUE(c1.request("GET", "/"));
  pid_t gen1 = f.weir->current_worker();
  ASSERT_EQ(cli(f.sock, "reload").rfind("Success=1", 0), 0u);
  HttpClient c2(f.spec.port);
  ASSERT_TRUE(c2.request("GET", "/"));
  pid_t gen2 = f.weir->current_worker();
  ASSERT_EQ(cli(f.sock, "reload").rfind("Success=1", 0), 0u);
  EXPECT_TRUE(wait_until([&] { return kill(gen1, 0) != 0; }, 10000));
  EXPECT_EQ(kill(gen2, 0), 0);
  EXPECT_TRUE(f.weir->wait_for_stderr("max_old_generations \\(1\\) exceeded", 5000));
  std::string proc = cli(f.sock, "show proc");
  EXPECT_EQ(count_matching_lines(proc, R"(worker\s+\d+\s+draining)"), 1u) << proc;
}

TEST(SdNotify, ReadyReloadingReadyStoppingInOrder) {
  ignore_sigpipe();
  std::string dir = make_temp_dir();
  std::string path = dir + "/notify.sock";
  UniqueFd fd(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.c_str(), path.size());
  ASSERT_EQ(::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  auto next = [&]() -> std::string {
    pollfd p{fd.get(), POLLIN, 0};
    if (::poll(&p, 1, 20000) <= 0) return "<timeout>";
    char buf[4096];
    ssize_t n = ::recv(fd.get(), buf, sizeof buf, 0);
    return n > 0 ? std::string(buf, static_cast<size_t>(n)) : "<error>";
  };
  OriginServer a("a");
  ProxySpec spec;
  spec.servers = {a.address()};
  WeirOptions opts;
  opts.env = {{"NOTIFY_SOCKET", path}};
  auto weir = WeirProcess::start(proxy_yaml(spec), opts);
  ASSERT_TRUE(weir);
  std::string ready = next();
  EXPECT_EQ(ready.rfind("READY=1\nMAINPID=" + std::to_string(weir->pid()), 0), 0u) << ready;
  weir->signal(SIGHUP);
  std::string reloading = next();
  EXPECT_EQ(reloading.rfind("RELOADING=1\nMONOTONIC_USEC=", 0), 0u) << reloading;
  std::string ready2 = next();
  EXPECT_EQ(ready2.rfind("READY=1\nSTATUS=generation 2 serving", 0), 0u) << ready2;
  // A refused reload: systemd still sees READY, with the reason in STATUS.
  weir->write_config("frontends: {web: {bind: [\"127.0.0.1:1\"], default_backend: nope}}\n");
  weir->signal(SIGHUP);
  EXPECT_EQ(next().rfind("RELOADING=1\n", 0), 0u);
  std::string refused = next();
  EXPECT_EQ(refused.rfind("READY=1\nSTATUS=reload failed: ", 0), 0u) << refused;
  EXPECT_NE(refused.find("default_backend 'nope' does not exist"), std::string::npos) << refused;
  EXPECT_NE(refused.find("generation 2 serving"), std::string::npos) << refused;
  weir->signal(SIGTERM);
  EXPECT_EQ(next(), "STOPPING=1");
  EXPECT_TRUE(weir->wait_exit(10000));
  remove_tree(dir);
}

}  // namespace
}  // namespace weir::test

namespace weir::test {
namespace {

size_t open_fds(pid_t pid) {
  CommandResult r = run_command({"ls", "/proc/" + std::to_string(pid) + "/fd"});
  return count_matching_lines(r.out, ".");
}

TEST(BinaryUpgrade, ReloadReExecutesTheMasterFromTheNewBinaryWithoutLosingRequests) {
  OriginServer a("a");
  ProxySpec spec;
  spec.servers = {a.address()};
  InstalledWeir w(weir_binary());
  ASSERT_TRUE(w.start(proxy_yaml(spec)));
  pid_t master = w.weir->pid();
  {
    TrafficLoop traffic(spec.port);
    ASSERT_TRUE(wait_until([&] { return traffic.ok() > 20; }, 10000));
    w.unpack(WEIR_NEXT_BINARY);
    std::string out = w.cli("reload");
    EXPECT_EQ(out.rfind("Success=1\n--\n", 0), 0u) << out;
    EXPECT_NE(out.find("master re-executed"), std::string::npos) << out;
    int before = traffic.ok();
    ASSERT_TRUE(wait_until([&] { return traffic.ok() > before + 20; }, 10000));
    traffic.stop();
    EXPECT_EQ(traffic.failed(), 0);
  }
  std::string proc = w.cli("show proc");
  EXPECT_EQ(count_matching_lines(proc, "^" + std::to_string(master) + R"(\s+master\s.*\+next$)"),
            1u)
      << proc;
  EXPECT_EQ(count_matching_lines(proc, R"(worker\s+2\s+current\s.*\+next$)"), 1u) << proc;
  EXPECT_EQ(run_command({w.bin, "-v"}).out.rfind("weir 0.2.0+next", 0), 0u);
}

// An operator's maint and a runtime weight survive the master's re-execution
// (the upgrade carries the servers' states) into the generation it starts.
TEST(BinaryUpgrade, ServerStatesSurviveTheMasterReExecution) {
  OriginServer a("a"), b("b");
  ProxySpec spec;
  spec.servers = {a.address(), b.address()};
  InstalledWeir w(weir_binary());
  std::string admin = w.dir + "/admin.sock";
  spec.global_extra = "  runtime_api: {address: " + admin + ", level: admin}\n";
  ASSERT_TRUE(w.start(proxy_yaml(spec)));
  ASSERT_EQ(weirctl({"-s", admin, "set", "server", "be/s2", "state", "maint"}).exit_code, 0);
  ASSERT_EQ(weirctl({"-s", admin, "set", "server", "be/s1", "weight", "7"}).exit_code, 0);
  w.unpack(WEIR_NEXT_BINARY);
  std::string out = w.cli("reload");
  ASSERT_NE(out.find("master re-executed"), std::string::npos) << out;
  std::string state = unix_command(admin, "show servers state");
  EXPECT_EQ(count_matching_lines(state, "^be s2 .* maint "), 1u) << state;
  EXPECT_EQ(count_matching_lines(state, "^be s1 \\S+ ready 7 "), 1u) << state;
  for (int i = 0; i < 4; ++i) {
    auto r = http_get(spec.port, "/");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->header("X-Server"), "a");
  }
}

// A package upgrade replaced the binary, then the worker died before the
// reload: the master respawns a worker from the binary on disk, a newer one.
// It serves, the master says in its log that it runs another binary, and the
// next reload re-executes the master.
TEST(BinaryUpgrade, AWorkerRespawnedFromANewerBinaryServesUntilTheReload) {
  OriginServer a("a");
  ProxySpec spec;
  spec.servers = {a.address()};
  InstalledWeir w(weir_binary());
  ASSERT_TRUE(w.start(proxy_yaml(spec)));
  WeirProcess* weir = w.weir.get();
  std::smatch m;
  std::string proc = w.cli("show proc");
  ASSERT_TRUE(std::regex_search(proc, m, std::regex(R"((\d+)\s+worker\s+1\s+current)"))) << proc;
  pid_t first = std::stoi(m[1]);
  w.unpack(WEIR_NEXT_BINARY);
  ASSERT_EQ(::kill(first, SIGKILL), 0);
  ASSERT_TRUE(weir->wait_ready_count(2, 20000)) << weir->stderr_text();
  EXPECT_TRUE(wait_until(
      [&] {
        return count_matching_lines(
                   weir->stderr_text(),
                   "worker pid=\\d+ runs another binary than the master \\(build-id:") == 1;
      },
      5000))
      << weir->stderr_text();
  proc = w.cli("show proc");
  EXPECT_EQ(count_matching_lines(proc, R"(worker\s+1\s+current\s.*\+next$)"), 1u) << proc;
  EXPECT_EQ(count_matching_lines(proc, R"(master\s.*\+next$)"), 0u) << proc;
  auto r = http_get(spec.port, "/");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  std::string out = w.cli("reload");
  EXPECT_EQ(out.rfind("Success=1\n--\n", 0), 0u) << out;
  EXPECT_NE(out.find("master re-executed"), std::string::npos) << out;
  proc = w.cli("show proc");
  EXPECT_EQ(count_matching_lines(proc, R"(master\s.*\+next$)"), 1u) << proc;
}

TEST(MasterCli, ManyReloadsUnderTrafficLoseNothingAndLeakNoDescriptors) {
  Fixture f("  max_old_generations: 50\n");
  ASSERT_TRUE(f.weir);
  ASSERT_EQ(cli(f.sock, "reload").rfind("Success=1", 0), 0u);
  ASSERT_TRUE(wait_until(
      [&] { return count_matching_lines(cli(f.sock, "show proc"), "draining") == 0; }, 20000));
  size_t fds_before = open_fds(f.weir->pid());
  TrafficLoop traffic(f.spec.port);
  for (int i = 0; i < 30; ++i) {
    if (i % 2) {
      f.weir->signal(SIGHUP);
      ASSERT_TRUE(f.weir->wait_ready_count(static_cast<size_t>(i + 3), 20000)) << i;
    } else {
      ASSERT_EQ(cli(f.sock, "reload").rfind("Success=1", 0), 0u) << i;
    }
  }
  traffic.stop();
  EXPECT_EQ(traffic.failed(), 0);
  EXPECT_GT(traffic.ok(), 30);
  ASSERT_TRUE(wait_until(
      [&] { return count_matching_lines(cli(f.sock, "show proc"), "draining") == 0; }, 30000))
      << cli(f.sock, "show proc");
  EXPECT_EQ(open_fds(f.weir->pid()), fds_before);
}

}  // namespace
}  // namespace weir::test
