// What start-up needs from the machine (master/startup_check.cpp), on real
// directories and files: each problem once, at the value that names it.

#include "master/startup_check.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <memory>
#include <string>

#include "common/base/net.h"
#include "common/stick/table.h"
#include "tests/support/util.h"

namespace weir {
namespace {

class StartupCheck : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = test::make_temp_dir(); }
  void TearDown() override { test::remove_tree(dir_); }

  // Every message of check_startup_environment(), "E file:line:column: ..." or "W ...".
  std::string check(const StartupCheckOptions& opts = {}) {
    std::vector<ConfigError> errors, warnings;
    check_startup_environment(cfg_, opts, &errors, &warnings);
    std::string out;
    for (const ConfigError& e : errors) out += "E " + e.to_string() + "\n";
    for (const ConfigError& w : warnings) out += "W " + w.to_string() + "\n";
    return out;
  }
  void add_log(const std::string& path, int line) {
    LogSink sink;
    sink.target = LogTarget::kFile;
    sink.path = path;
    sink.mark = {line, 9};
    cfg_.global.logs.push_back(sink);
  }
  void add_api(const std::string& path, int line) {
    RuntimeApiEndpoint ep;
    ep.path = path;
    ep.mark = {line, 17};
    cfg_.global.runtime_api.push_back(ep);
  }

  std::string dir_;
  Config cfg_ = [] {
    Config c;
    c.source_name = "weir.yaml";
    return c;
  }();
};

TEST_F(StartupCheck, WhatStartUpCanUseIsFine) {
  add_log(dir_ + "/access.log", 3);
  test::write_file(dir_ + "/existing.log", "");
  add_log(dir_ + "/existing.log", 4);
  add_api(dir_ + "/admin.sock", 5);
  cfg_.global.master_socket = dir_ + "/master.sock";
  cfg_.global.pidfile = dir_ + "/weir.pid";
  cfg_.global.state_file = dir_ + "/state";
  EXPECT_EQ(check(), "");
}

TEST_F(StartupCheck, MissingDirectoriesAreErrorsForLogsAndSocketsWarningsForTheRest) {
  add_log(dir_ + "/log/access.log", 3);
  add_api(dir_ + "/run/admin.sock", 4);
  cfg_.global.master_socket = dir_ + "/cli/master.sock";
  cfg_.global.master_socket_mark = {5, 18};
  cfg_.global.pidfile = dir_ + "/pid/weir.pid";
  cfg_.global.pidfile_mark = {6, 12};
  cfg_.global.state_file = dir_ + "/lib/state";
  cfg_.global.state_file_mark = {7, 15};
  const auto missing = [&](const std::string& d) {
    return "the directory " + dir_ + "/" + d + " does not exist: create it (mkdir -p " + dir_ +
           "/" + d + ") or choose another path";
  };
  EXPECT_EQ(check(), "E weir.yaml:3:9: global: log: " + missing("log") + "\n" +
                         "E weir.yaml:4:17: global: runtime_api: " + missing("run") + "\n" +
                         "E weir.yaml:5:18: global: master_socket: " + missing("cli") + "\n" +
                         "W weir.yaml:6:12: global: pidfile: " + missing("pid") +
                         "; the pid file will not be written\n" +
                         "W weir.yaml:7:15: global: state_file: " + missing("lib") +
                         "; server states will not be kept across restarts\n");
  // -S and -p replace the file's, and have no position in it.
  StartupCheckOptions opts;
  opts.master_socket = dir_ + "/s/master.sock";
  opts.pidfile = dir_ + "/p/weir.pid";
  const std::string out = check(opts);
  EXPECT_NE(out.find("E -S " + dir_ + "/s/master.sock: " + missing("s") + "\n"), std::string::npos)
      << out;
  EXPECT_NE(out.find("W -p " + dir_ + "/p/weir.pid: " + missing("p")), std::string::npos) << out;
  EXPECT_EQ(out.find("cli/master.sock"), std::string::npos) << out;
}

TEST_F(StartupCheck, ALogPathThatIsADirectoryAndASocketPathThatIsAFile) {
  add_log(dir_, 3);
  test::write_file(dir_ + "/notes.txt", "keep me");
  add_api(dir_ + "/notes.txt", 4);
  EXPECT_EQ(check(), "E weir.yaml:3:9: global: log: " + dir_ +
                         " is a directory; give the path of a file\n"
                         "E weir.yaml:4:17: global: runtime_api: " +
                         dir_ +
                         "/notes.txt exists and is not a socket; weir does not replace it: remove "
                         "it or choose another path\n");
}

TEST_F(StartupCheck, ASocketLeftByAnEarlierRunIsFineAndAPathTooLongIsNot) {
  const std::string left = dir_ + "/left.sock";
  std::string error;
  UniqueFd fd = net::listen_unix(left, 0600, 1, &error);
  ASSERT_TRUE(fd) << error;
  add_api(left, 4);
  add_api(dir_ + "/" + std::string(120, 'x') + ".sock", 5);
  const std::string out = check();
  EXPECT_EQ(out.find(":4:17:"), std::string::npos) << out;
  EXPECT_NE(out.find("E weir.yaml:5:17: global: runtime_api: the path is too long for a Unix "
                     "socket ("),
            std::string::npos)
      << out;
}

TEST_F(StartupCheck, ADirectoryTheUserCannotWriteIsAnError) {
  // Made for the user running the check: as root, a child becomes 'nobody'.
  ASSERT_EQ(::chmod(dir_.c_str(), 0755), 0);
  const std::string ro = dir_ + "/ro";
  ASSERT_EQ(::mkdir(ro.c_str(), 0755), 0);
  if (geteuid() != 0) {
    ASSERT_EQ(::chmod(ro.c_str(), 0555), 0);
  }
  add_log(ro + "/access.log", 3);
  int pipefd[2];
  ASSERT_EQ(::pipe(pipefd), 0);
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    if (geteuid() == 0 && (::setegid(65534) != 0 || ::seteuid(65534) != 0)) _exit(2);
    const std::string out = check();
    ssize_t n = ::write(pipefd[1], out.data(), out.size());
    _exit(n == static_cast<ssize_t>(out.size()) ? 0 : 3);
  }
  ::close(pipefd[1]);
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(pipefd[0], buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
  ::close(pipefd[0]);
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  EXPECT_EQ(out.rfind("E weir.yaml:3:9: global: log: cannot create " + ro +
                          "/access.log: the directory " + ro + " is not writable by ",
                      0),
            0u)
      << out;
  EXPECT_NE(out.find("(Permission denied)"), std::string::npos) << out;
}

TEST_F(StartupCheck, AReloadChecksOnlyWhatItMakesAgain) {
  // Sockets the master keeps, the master CLI and the pid file are not made again.
  add_api(dir_ + "/gone/admin.sock", 4);
  cfg_.global.master_socket = dir_ + "/gone/master.sock";
  cfg_.global.pidfile = dir_ + "/gone/weir.pid";
  add_log(dir_ + "/gone/access.log", 3);
  StartupCheckOptions reload;
  reload.reload = true;
  reload.bound_sockets = {dir_ + "/gone/admin.sock"};
  const std::string out = check(reload);
  EXPECT_EQ(out, "E weir.yaml:3:9: global: log: the directory " + dir_ +
                     "/gone does not exist: create it (mkdir -p " + dir_ +
                     "/gone) or choose another path\n");
}

// state_dir must take the peers agent's state file, when there are tables to keep.
TEST_F(StartupCheck, AStateDirThatIsMissingIsAWarning) {
  // It keeps the stick tables and the server states set at runtime: a
  // warning with or without tables.
  cfg_.global.state_dir = dir_ + "/lib";
  cfg_.global.state_dir_mark = {8, 14};
  const std::string warning = "W weir.yaml:8:14: global: state_dir: the directory " + dir_ +
                              "/lib does not exist: create it (mkdir -p " + dir_ +
                              "/lib) or choose another path; stick tables and server states will "
                              "not be kept across restarts\n";
  EXPECT_EQ(check(), warning);
  stick::TableDef def;
  def.name = "t";
  def.size = 10;
  cfg_.stick_tables.push_back(std::make_shared<stick::Table>(def));
  EXPECT_EQ(check(), warning);
  ASSERT_EQ(::mkdir((dir_ + "/lib").c_str(), 0700), 0);
  EXPECT_EQ(check(), "");
}

TEST_F(StartupCheck, AStateFileBesideAStateDirIsAWarningToRemoveIt) {
  ASSERT_EQ(::mkdir((dir_ + "/lib").c_str(), 0700), 0);
  cfg_.global.state_dir = dir_ + "/lib";
  cfg_.global.state_file = dir_ + "/lib/server-state";
  cfg_.global.state_file_mark = {5, 15};
  EXPECT_EQ(check(),
            "W weir.yaml:5:15: global: state_file: state_dir keeps the server states now; the "
            "agent imports this file once, and it is no longer written: remove state_file once "
            "weir has run with state_dir (doc/management.md, \"Migrating from "
            "global.state_file\")\n");
}

}  // namespace
}  // namespace weir
