// Upgrades from a real build of an older weir (WEIR_PREVIOUS_BINARY: the last
// commit before the messages between processes became Protobuf, built by
// tests/upgrade/from-commit.sh) to this build, the way a package upgrade does
// them: the new binary is renamed over the running one, then
// `systemctl reload` (here: the master CLI's reload) re-executes the master.

#include <gtest/gtest.h>
#include <signal.h>

#include <regex>
#include <string>

#include "tests/support/http_client.h"
#include "tests/support/installed_weir.h"
#include "tests/support/launcher.h"
#include "tests/support/origin.h"
#include "tests/support/traffic_loop.h"
#include "tests/support/util.h"
#include "tests/support/weir_config.h"

namespace weir::test {
namespace {

// The version this build reports (show proc's last column).
constexpr const char* kNewVersion = WEIR_NEW_VERSION;

// The older weir, installed and started, in front of two origins, with a
// runtime API socket.
struct Installed : InstalledWeir {
  OriginServer a{"a"};
  OriginServer b{"b"};
  ProxySpec spec;
  std::string admin = dir + "/admin.sock";

  Installed() : InstalledWeir(WEIR_PREVIOUS_BINARY) {
    spec.servers = {a.address(), b.address()};
    spec.global_extra = "  runtime_api: {address: " + admin + ", level: admin}\n";
    start(proxy_yaml(spec));
  }
  void unpack_new_binary() { unpack(weir_binary()); }
  std::string proc() const { return unix_command(sock, "show proc"); }
  // The pid of the worker of `generation` in show proc, or 0.
  pid_t worker_pid(int generation, const std::string& state) const {
    std::smatch m;
    std::string text = proc();
    std::regex re("(?:^|\\n)(\\d+)\\s+worker\\s+" + std::to_string(generation) + "\\s+" + state +
                  "\\s");
    return std::regex_search(text, m, re) ? std::stoi(m[1]) : 0;
  }
};

TEST(UpgradeFromBeforeProtobuf, ABinaryUpgradeUnderTrafficLosesNoRequestAndKeepsServerStates) {
  Installed w;
  ASSERT_TRUE(w.weir);
  pid_t master = w.weir->pid();
  ASSERT_NE(w.proc().find(" master "), std::string::npos);
  EXPECT_EQ(count_matching_lines(w.proc(), std::string("master .*") + kNewVersion + "$"), 0u)
      << "the previous build reports the same version as this one:\n"
      << w.proc();
  // What operators set at runtime crosses the upgrade (the old master's text
  // state, then Protobuf to the new generation).
  ASSERT_EQ(weirctl({"-s", w.admin, "set", "server", "be/s2", "weight", "7"}).exit_code, 0);
  {
    TrafficLoop traffic(w.spec.port);
    ASSERT_TRUE(wait_until([&] { return traffic.ok() > 20; }, 10000));
    w.unpack_new_binary();
    std::string out = unix_command(w.sock, "reload");
    EXPECT_EQ(out.rfind("Success=1\n--\n", 0), 0u) << out << w.weir->stderr_text();
    EXPECT_NE(out.find("master re-executed"), std::string::npos) << out;
    // Traffic goes on until the old generation, which reads text only, has
    // been told to drain and is gone.
    int before = traffic.ok();
    ASSERT_TRUE(wait_until(
        [&] {
          return traffic.ok() > before + 200 && count_matching_lines(w.proc(), "worker") == 1;
        },
        30000))
        << w.proc();
    traffic.stop();
    EXPECT_EQ(traffic.failed(), 0) << w.weir->stderr_text();
  }
  std::string proc = w.proc();
  EXPECT_EQ(count_matching_lines(
                proc, "^" + std::to_string(master) + R"(\s+master\s.*\s)" + kNewVersion + "$"),
            1u)
      << proc;
  EXPECT_EQ(
      count_matching_lines(proc, std::string(R"(worker\s+2\s+current\s.*\s)") + kNewVersion + "$"),
      1u)
      << proc;
  std::string state = unix_command(w.admin, "show servers state");
  EXPECT_EQ(count_matching_lines(state, "^be s2 \\S+ ready 7 "), 1u) << state;
  std::string info = unix_command(w.sock, "@2 show info");
  EXPECT_NE(info.find("Pid: "), std::string::npos) << info;
}

// A package upgrade unpacked the new binary, then the worker crashed before the
// reload: the old master respawns a worker from the binary on disk, the new
// one. It reads the old master's text and answers in text: it serves, answers
// the master CLI's @ commands, and the next reload upgrades the master and
// drains it without a failed request.
TEST(UpgradeFromBeforeProtobuf, AWorkerRespawnedByTheOldMasterAfterAPackageUpgradeServes) {
  Installed w;
  ASSERT_TRUE(w.weir);
  pid_t first = w.worker_pid(1, "current");
  ASSERT_GT(first, 0) << w.proc();
  w.unpack_new_binary();
  ASSERT_EQ(::kill(first, SIGKILL), 0);
  pid_t respawned = 0;
  ASSERT_TRUE(wait_until(
      [&] {
        respawned = w.worker_pid(1, "current");
        return respawned > 0 && respawned != first;
      },
      20000))
      << w.proc() << w.weir->stderr_text();
  // The old master shows the version the new worker reported.
  EXPECT_EQ(
      count_matching_lines(w.proc(), "^" + std::to_string(respawned) +
                                         R"(\s+worker\s+1\s+current\s.*\s)" + kNewVersion + "$"),
      1u)
      << w.proc();
  for (int i = 0; i < 4; ++i) {
    auto r = http_get(w.spec.port, "/");
    ASSERT_TRUE(r) << w.weir->stderr_text();
    EXPECT_EQ(r->status, 200);
  }
  std::string info = unix_command(w.sock, "@1 show info");
  EXPECT_NE(info.find("Pid: " + std::to_string(respawned)), std::string::npos) << info;

  TrafficLoop traffic(w.spec.port);
  ASSERT_TRUE(wait_until([&] { return traffic.ok() > 20; }, 10000));
  std::string out = unix_command(w.sock, "reload");
  EXPECT_EQ(out.rfind("Success=1\n--\n", 0), 0u) << out << w.weir->stderr_text();
  EXPECT_NE(out.find("master re-executed"), std::string::npos) << out;
  int before = traffic.ok();
  ASSERT_TRUE(wait_until(
      [&] { return traffic.ok() > before + 200 && count_matching_lines(w.proc(), "worker") == 1; },
      30000))
      << w.proc();
  traffic.stop();
  EXPECT_EQ(traffic.failed(), 0) << w.weir->stderr_text();
  EXPECT_EQ(w.worker_pid(1, "\\S+"), 0) << w.proc();
  EXPECT_GT(w.worker_pid(2, "current"), 0) << w.proc();
}

}  // namespace
}  // namespace weir::test
