// Listeners, privileges and log destinations as an operator configures them.

#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>

#include "tests/support/http_client.h"
#include "tests/support/launcher.h"
#include "tests/support/origin.h"
#include "tests/support/weir_config.h"

namespace weir::test {
namespace {

std::string base_yaml(uint16_t port, const std::string& binds, const std::string& origin,
                      const std::string& global_extra) {
  return "global:\n  threads: 2\n" + global_extra + "frontends:\n  web:\n    bind: " + binds +
         "\n    default_backend: app\n" + "backends:\n  app: {servers: {s1: \"" + origin +
         "\"}}\n" + "# port " + std::to_string(port) + "\n";
}

TEST(Listeners, Ipv4AndIpv6WildcardsCoexistOnOnePort) {
  ignore_sigpipe();
  OriginServer a("a");
  uint16_t port = free_tcp_port();
  std::string p = std::to_string(port);
  auto weir = WeirProcess::start(
      base_yaml(port, "[\"0.0.0.0:" + p + "\", {address: \"[::]:" + p + "\", backlog: 512}]",
                a.address(), "  log: [stdout]\n"));
  ASSERT_TRUE(weir);
  CommandResult v4 = run_command(
      {"curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "http://127.0.0.1:" + p + "/"});
  EXPECT_EQ(v4.out, "200") << v4.err;
  CommandResult v6 = run_command(
      {"curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "http://[::1]:" + p + "/"});
  EXPECT_EQ(v6.out, "200") << v6.err;
  EXPECT_TRUE(weir->wait_for_stdout(R"(^\[?::1\]?:\d+ .* 200 )", 5000)) << weir->stdout_text();
}

TEST(Listeners, WorkerDropsPrivilegesAndWritesTheAccessLogFile) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to change user";
  ignore_sigpipe();
  OriginServer a("a");
  uint16_t port = free_tcp_port();
  std::string dir = make_temp_dir();
  std::string log = dir + "/access.log";
  auto weir = WeirProcess::start(base_yaml(
      port, "[\"127.0.0.1:" + std::to_string(port) + "\"]", a.address(),
      "  user: nobody\n  group: nogroup\n  log: [{target: " + log + ", format: json}]\n"));
  ASSERT_TRUE(weir);
  pid_t worker = weir->current_worker();
  std::string status = read_file("/proc/" + std::to_string(worker) + "/status");
  EXPECT_NE(status.find("Uid:\t65534\t65534\t65534\t65534"), std::string::npos) << status;
  EXPECT_NE(status.find("Gid:\t65534\t65534\t65534\t65534"), std::string::npos) << status;
  // The master keeps root.
  std::string master = read_file("/proc/" + std::to_string(weir->pid()) + "/status");
  EXPECT_NE(master.find("Uid:\t0\t0\t0\t0"), std::string::npos);

  auto r = http_get(port, "/to-file");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_TRUE(
      wait_until([&] { return read_file(log).find("/to-file") != std::string::npos; }, 5000));
  EXPECT_NE(read_file(log).find("\"status\":200"), std::string::npos);
  weir.reset();
  remove_tree(dir);
}

TEST(Listeners, EnvironmentVariablesFillTheConfiguration) {
  ignore_sigpipe();
  OriginServer a("a");
  uint16_t port = free_tcp_port();
  WeirOptions opts;
  opts.env = {{"WEIR_TEST_PORT", std::to_string(port)}, {"WEIR_TEST_ORIGIN", a.address()}};
  auto weir = WeirProcess::start(
      "frontends:\n  web: {bind: [\"127.0.0.1:${WEIR_TEST_PORT}\"], default_backend: app}\n"
      "backends:\n"
      "  app:\n"
      "    servers: {s1: \"${WEIR_TEST_ORIGIN}\"}\n"
      "    retries: ${WEIR_NOT_SET:-1}\n",
      opts);
  ASSERT_TRUE(weir);
  auto r = http_get(port, "/");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
}

}  // namespace
}  // namespace weir::test
