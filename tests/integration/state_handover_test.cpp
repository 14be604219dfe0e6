// Server states across reloads and restarts: what an operator set (maint, a
// runtime weight) and what the health checks found (DOWN) carries over to the
// next worker generation, and through global.state_file to the next start.

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <set>
#include <thread>

#include "tests/support/http_client.h"
#include "tests/support/launcher.h"
#include "tests/support/origin.h"
#include "tests/support/weir_config.h"

namespace weir::test {
namespace {

class StateHandover : public ::testing::Test {
 protected:
  void SetUp() override {
    ignore_sigpipe();
    dir_ = make_temp_dir();
    admin_ = dir_ + "/admin.sock";
    spec_.servers = {a_.address(), b_.address()};
    spec_.global_extra = "  runtime_api: " + admin_ + "\n  state_file: " + dir_ + "/state\n";
  }
  void TearDown() override {
    weir_.reset();
    remove_tree(dir_);
  }
  std::string state_of(const std::string& server) {
    std::string all = unix_command(admin_, "show servers state be");
    size_t at = all.find("be " + server + " ");
    return at == std::string::npos ? "" : all.substr(at, all.find('\n', at) - at);
  }
  std::set<std::string> servers_of(int n) {
    std::set<std::string> seen;
    for (int i = 0; i < n; ++i) {
      auto r = http_get(spec_.port, "/");
      seen.insert(r ? (r->status == 200 ? r->header("X-Server") : std::to_string(r->status)) : "?");
    }
    return seen;
  }
  // weir starts, s2 goes to maint, and the master's state file says so (it
  // writes it a moment after the command: it may not exist yet); weir stops.
  void stop_with_s2_in_maint_in_the_state_file() {
    weir_ = WeirProcess::start(proxy_yaml(spec_));
    ASSERT_TRUE(weir_);
    ASSERT_EQ(weirctl({"-s", admin_, "set", "server", "be/s2", "state", "maint"}).exit_code, 0);
    const std::string state = dir_ + "/state";
    ASSERT_TRUE(wait_until(
        [&] {
          return ::access(state.c_str(), R_OK) == 0 &&
                 read_file(state).find("be s2 maint") != std::string::npos;
        },
        5000));
    weir_.reset();  // stops it
  }
  void reload_to(int generation) {
    weir_->signal(SIGHUP);
    ASSERT_TRUE(wait_until([&] { return weir_->current_generation() >= generation; }, 15000));
    // The socket is answered by the new generation once it serves.
    ASSERT_TRUE(wait_until(
        [&] {
          return unix_command(admin_, "show info")
                     .find("Generation: " + std::to_string(generation)) != std::string::npos;
        },
        10000));
  }

  OriginServer a_{"a"}, b_{"b"};
  ProxySpec spec_;
  std::string dir_, admin_;
  std::unique_ptr<WeirProcess> weir_;
};

TEST_F(StateHandover, MaintAndRuntimeWeightSurviveAReloadUnlessTheConfigChangedThem) {
  weir_ = WeirProcess::start(proxy_yaml(spec_));
  ASSERT_TRUE(weir_);
  ASSERT_EQ(weirctl({"-s", admin_, "set", "server", "be/s2", "state", "maint"}).exit_code, 0);
  ASSERT_EQ(weirctl({"-s", admin_, "set", "server", "be/s1", "weight", "7"}).exit_code, 0);
  reload_to(2);
  EXPECT_NE(state_of("s2").find(" maint "), std::string::npos) << state_of("s2");
  EXPECT_NE(state_of("s1").find(" ready 7 1 "), std::string::npos) << state_of("s1");
  EXPECT_EQ(servers_of(4), (std::set<std::string>{"a"}));
  // A weight changed in the file wins over the runtime one.
  spec_.weights = {3, 1};
  weir_->write_config(proxy_yaml(spec_));
  reload_to(3);
  EXPECT_NE(state_of("s1").find(" ready 3 3 "), std::string::npos) << state_of("s1");
  EXPECT_NE(state_of("s2").find(" maint "), std::string::npos) << state_of("s2");
}

TEST_F(StateHandover, ADownServerStaysDownAcrossAReload) {
  // First checks come up to one interval after start: without the hand-over a
  // new generation would treat b as UP until then.
  spec_.backend_extra = "    check: {type: http, inter: 2s, rise: 2, fall: 1}\n";
  weir_ = WeirProcess::start(proxy_yaml(spec_));
  ASSERT_TRUE(weir_);
  b_.set_default_status(503);
  ASSERT_TRUE(wait_until([&] { return state_of("s2").find(" down ") != std::string::npos; }, 10000))
      << state_of("s2");
  reload_to(2);
  EXPECT_NE(state_of("s2").find(" down "), std::string::npos) << state_of("s2");
  EXPECT_EQ(servers_of(6), (std::set<std::string>{"a"}));
}

TEST_F(StateHandover, TheStateFileCarriesMaintAcrossARestart) {
  ASSERT_NO_FATAL_FAILURE(stop_with_s2_in_maint_in_the_state_file());
  weir_ = WeirProcess::start(proxy_yaml(spec_));
  ASSERT_TRUE(weir_);
  EXPECT_NE(state_of("s2").find(" maint "), std::string::npos) << state_of("s2");
  EXPECT_EQ(servers_of(4), (std::set<std::string>{"a"}));
  EXPECT_TRUE(weir_->wait_for_stderr("server states restored from", 2000));
}

// The migration to state_dir: a configuration that adds state_dir beside
// state_file starts from the state file's server states (imported once by the
// peers agent), keeps them in state_dir from then on, and no longer writes the
// state file.
TEST_F(StateHandover, StateDirTakesOverTheStateFilesServerStates) {
  ASSERT_NO_FATAL_FAILURE(stop_with_s2_in_maint_in_the_state_file());
  const std::string state = dir_ + "/state";
  const std::string state_dir = dir_ + "/statedir";
  ASSERT_EQ(::mkdir(state_dir.c_str(), 0700), 0);
  spec_.global_extra += "  state_dir: " + state_dir + "\n";
  weir_ = WeirProcess::start(proxy_yaml(spec_));
  ASSERT_TRUE(weir_);
  EXPECT_TRUE(weir_->wait_for_stderr("imported 2 server states from global.state_file", 5000));
  EXPECT_TRUE(wait_until([&] { return state_of("s2").find(" maint ") != std::string::npos; }, 5000))
      << state_of("s2");
  // A change now goes to state_dir, not to the state file.
  ASSERT_EQ(weirctl({"-s", admin_, "set", "server", "be/s1", "state", "drain"}).exit_code, 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  EXPECT_EQ(read_file(state).find("be s1 drain"), std::string::npos) << read_file(state);
  weir_.reset();
  weir_ = WeirProcess::start(proxy_yaml(spec_));
  ASSERT_TRUE(weir_);
  EXPECT_TRUE(wait_until(
      [&] {
        return state_of("s1").find(" drain ") != std::string::npos &&
               state_of("s2").find(" maint ") != std::string::npos;
      },
      5000))
      << state_of("s1") << "\n"
      << state_of("s2");
}

}  // namespace
}  // namespace weir::test
