// What `weir -c` accepts, weir starts; and when a start or a reload fails, weir
// says why and stops trying: `weir -c`, `weir -f` in the foreground, `weir -D`,
// and a reload through the master CLI, as an operator runs them.

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <regex>

#include "common/base/net.h"
#include "common/ipc/ipc.h"
#include "tests/support/http_client.h"
#include "tests/support/launcher.h"
#include "tests/support/origin.h"
#include "tests/support/weir_config.h"

namespace weir::test {
namespace {

class StartupFailures : public ::testing::Test {
 protected:
  void SetUp() override {
    ignore_sigpipe();
    dir_ = make_temp_dir();
    spec_.servers = {origin_.address()};
  }
  void TearDown() override { remove_tree(dir_); }

  // A configuration file in the test's directory.
  std::string write_config(const std::string& name, const std::string& yaml) {
    const std::string path = dir_ + "/" + name;
    write_file(path, yaml);
    return path;
  }
  // A named pipe that no process reads: `weir -c` cannot know that nobody will
  // read it, the worker cannot open it (the documented gap of the checks).
  std::string fifo_without_reader() {
    const std::string path = dir_ + "/access.fifo";
    EXPECT_EQ(::mkfifo(path.c_str(), 0600), 0) << std::strerror(errno);
    return path;
  }

  OriginServer origin_{"a"};
  ProxySpec spec_;
  std::string dir_;
};

// Datagrams sent to $NOTIFY_SOCKET, as systemd receives them.
class NotifySocket {
 public:
  explicit NotifySocket(const std::string& path) : path_(path) {
    fd_.reset(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, path.c_str(), path.size());
    EXPECT_EQ(::bind(fd_.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  }
  const std::string& path() const { return path_; }
  // The next message that contains `text` (the others are skipped).
  std::string next_with(const std::string& text) {
    for (;;) {
      pollfd p{fd_.get(), POLLIN, 0};
      if (::poll(&p, 1, 20000) <= 0) return "<timeout>";
      char buf[4096];
      ssize_t n = ::recv(fd_.get(), buf, sizeof buf, 0);
      if (n <= 0) return "<error>";
      std::string message(buf, static_cast<size_t>(n));
      if (message.find(text) != std::string::npos) return message;
    }
  }

 private:
  std::string path_;
  UniqueFd fd_;
};

// The number in the master's <reloads> column of `show proc`.
int reloads_in(const std::string& show_proc) {
  std::smatch m;
  static const std::regex kMaster(R"(\n\d+\s+master\s+-\s+\S+\s+\S+\s+(\d+)\s)");
  return std::regex_search(show_proc, m, kMaster) ? std::stoi(m[1]) : -1;
}

TEST_F(StartupFailures, CheckNamesMissingLogAndSocketDirectoriesAndWhatToDo) {
  const std::string logs = dir_ + "/log/weir";
  const std::string run = dir_ + "/run/weir";
  spec_.logs = "[{target: " + logs + "/access.log}]";
  spec_.global_extra = "  runtime_api: [" + run + "/admin.sock]\n";
  const std::string path = write_config("weir.yaml", proxy_yaml(spec_));
  const std::string cli = dir_ + "/cli/master.sock";

  CommandResult r = run_weir({"-c", "-f", path, "-S", cli});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  // At the value that names it, in file order, with the command that fixes it.
  EXPECT_NE(r.err.find(path + ":3:18: global: log: the directory " + logs +
                       " does not exist: create it (mkdir -p " + logs + ")"),
            std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find(path + ":4:17: global: runtime_api: the directory " + run +
                       " does not exist: create it (mkdir -p " + run + ")"),
            std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("-S " + cli + ": the directory " + dir_ + "/cli does not exist"),
            std::string::npos)
      << r.err;
  EXPECT_LT(r.err.find(":3:18:"), r.err.find(":4:17:")) << r.err;
  EXPECT_EQ(tail_lines(r.err, 1), "Configuration file is not valid: " + path + " (3 errors)\n");

  // The master refuses to start on the same grounds, before any worker.
  WeirOptions opts;
  opts.wait_ready = false;
  auto refused = WeirProcess::start(proxy_yaml(spec_), opts);
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->wait_exit(20000), 1);
  EXPECT_NE(refused->stderr_text().find("global: log: the directory " + logs + " does not exist"),
            std::string::npos)
      << refused->stderr_text();
  EXPECT_NE(refused->stderr_text().find("start-up failed: the configuration is not valid"),
            std::string::npos)
      << refused->stderr_text();
  EXPECT_EQ(count_matching_lines(refused->stderr_text(), "generation=1 started"), 0u);

  // Once the directories exist, what -c accepts starts.
  for (const std::string& d : {logs, run, dir_ + "/cli"}) {
    ASSERT_EQ(run_command({"mkdir", "-p", d}).exit_code, 0);
  }
  r = run_weir({"-c", "-f", path, "-S", cli});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "Configuration file is valid: " + path + "\n");
  WeirOptions with_cli;
  with_cli.extra_args = {"-S", cli};
  auto weir = WeirProcess::start(proxy_yaml(spec_), with_cli);
  ASSERT_TRUE(weir);
  auto resp = http_get(spec_.port, "/");
  ASSERT_TRUE(resp);
  EXPECT_EQ(resp->status, 200);
  EXPECT_TRUE(wait_until(
      [&] { return read_file(logs + "/access.log").find("GET /") != std::string::npos; }, 10000));
}

TEST_F(StartupFailures, CheckPrintsWarningsAndErrorsInFileOrderThenItsVerdict) {
  const std::string path =
      write_config("order.yaml",
                   "frontends:\n"
                   "  web: {bind: [\"127.0.0.1:" +
                       std::to_string(free_tcp_port()) +
                       "\"], default_backend: app}\n"
                       "backends:\n"
                       "  app: {servers: {s1: \"127.0.0.1:9\"}}\n"
                       "  spare: {servers: {s1: \"127.0.0.1:9\"}}\n"  // 5: warning
                       "global:\n"
                       "  log: [" +
                       dir_ +
                       "/none/access.log]\n"  // 7: error
                       "  pidfile: " +
                       dir_ + "/none/weir.pid\n");  // 8: warning
  CommandResult r = run_weir({"-c", "-f", path});
  EXPECT_EQ(r.exit_code, 1);
  std::vector<std::string> lines;
  for (size_t pos = 0; pos < r.err.size();) {
    size_t eol = r.err.find('\n', pos);
    lines.push_back(r.err.substr(pos, eol - pos));
    pos = eol + 1;
  }
  ASSERT_EQ(lines.size(), 4u) << r.err;
  EXPECT_EQ(lines[0], path + ":5:3: warning: backend 'spare' is not used by any frontend");
  EXPECT_EQ(lines[1].rfind(path + ":7:9: global: log: the directory " + dir_ + "/none ", 0), 0u)
      << lines[1];
  EXPECT_EQ(lines[2].rfind(path + ":8:12: warning: global: pidfile: the directory ", 0), 0u)
      << lines[2];
  EXPECT_NE(lines[2].find("; the pid file will not be written"), std::string::npos) << lines[2];
  EXPECT_EQ(lines[3], "Configuration file is not valid: " + path + " (1 error)");
}

TEST_F(StartupFailures, AWorkerThatCannotStartFailsTheForegroundStartWithItsReason) {
  const std::string fifo = fifo_without_reader();
  spec_.logs = "[{target: " + fifo + "}]";
  const std::string yaml = proxy_yaml(spec_);
  EXPECT_EQ(run_weir({"-c", "-f", write_config("weir.yaml", yaml)}).exit_code, 0);
  WeirOptions opts;
  opts.wait_ready = false;
  auto weir = WeirProcess::start(yaml, opts);
  ASSERT_TRUE(weir);
  // Exit 1 with the worker's reason at its key; no respawn, no crash loop.
  ASSERT_EQ(weir->wait_exit(20000), 1) << weir->stderr_text();
  const std::string err = weir->stderr_text();
  EXPECT_NE(err.find("[alert] weir-master[" + std::to_string(weir->pid()) +
                     "]: start-up failed: generation 1 could not start: " + weir->config_path() +
                     ":3:18: global: log: cannot open access log " + fifo +
                     ": No such device or address (a named pipe that no process reads)"),
            std::string::npos)
      << err;
  EXPECT_EQ(count_matching_lines(err, "generation=1 started"), 1u) << err;
  EXPECT_EQ(err.find("crash loop"), std::string::npos) << err;
}

TEST_F(StartupFailures, DaemonReturnsOneAndPrintsWhyWhateverFailed) {
  const std::string pidfile = dir_ + "/weir.pid";
  // A worker that cannot start.
  const std::string fifo = fifo_without_reader();
  ProxySpec broken = spec_;
  broken.logs = "[{target: " + fifo + "}]";
  const std::string path = write_config("worker.yaml", proxy_yaml(broken));
  CommandResult r = run_weir({"-D", "-f", path, "-p", pidfile});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("start-up failed: generation 1 could not start: " + path +
                       ":3:18: global: log: cannot open access log " + fifo),
            std::string::npos)
      << r.err;
  EXPECT_FALSE(can_connect(broken.port));

  // A master CLI socket in a directory that does not exist: refused before going
  // to the background.
  const std::string good = write_config("good.yaml", proxy_yaml(spec_));
  r = run_weir({"-D", "-f", good, "-S", "/missing/dir/master.sock"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("-S /missing/dir/master.sock: the directory /missing/dir does not exist"),
            std::string::npos)
      << r.err;

  // A master CLI socket that another process listens on: the daemon finds out
  // after the fork, and its parent still prints why.
  const std::string taken = dir_ + "/taken.sock";
  std::string error;
  UniqueFd other = net::listen_unix(taken, 0600, 4, &error);
  ASSERT_TRUE(other) << error;
  r = run_weir({"-D", "-f", good, "-S", taken, "-p", pidfile});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("master socket: socket " + taken + " is in use by another process"),
            std::string::npos)
      << r.err;
  EXPECT_TRUE(wait_until([&] { return !can_connect(spec_.port); }, 10000));
}

TEST_F(StartupFailures, AReloadWhoseWorkerCannotStartAnswersWhyAndTheOldGenerationServes) {
  const std::string sock = dir_ + "/master.sock";
  NotifySocket notify(dir_ + "/notify.sock");
  WeirOptions opts;
  opts.extra_args = {"-S", sock};
  opts.env = {{"NOTIFY_SOCKET", notify.path()}};
  const std::string good = proxy_yaml(spec_);
  auto weir = WeirProcess::start(good, opts);
  ASSERT_TRUE(weir);
  EXPECT_NE(notify.next_with("READY=1"), "<timeout>");

  ProxySpec broken = spec_;
  broken.logs = "[{target: " + fifo_without_reader() + "}]";
  weir->write_config(proxy_yaml(broken));
  const std::string answer = unix_command(sock, "reload");
  EXPECT_EQ(answer.rfind("Success=0\n--\n", 0), 0u) << answer;
  const std::string reason = "generation 2 could not start: " + weir->config_path() +
                             ":3:18: global: log: cannot open access log ";
  EXPECT_NE(answer.find("reload failed: " + reason), std::string::npos) << answer;
  EXPECT_NE(answer.find("generation 1 keeps serving"), std::string::npos) << answer;
  const std::string status = notify.next_with("STATUS=reload failed");
  EXPECT_NE(status.find("STATUS=reload failed: " + reason), std::string::npos) << status;
  EXPECT_NE(status.find("; generation 1 serving"), std::string::npos) << status;
  EXPECT_NE(weir->stderr_text().find("reload failed: " + reason), std::string::npos);
  for (int i = 0; i < 3; ++i) {
    auto r = http_get(spec_.port, "/");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
  }
  std::string proc = unix_command(sock, "show proc");
  EXPECT_EQ(count_matching_lines(proc, R"(worker\s+1\s+current)"), 1u) << proc;
  EXPECT_EQ(reloads_in(proc), 1) << proc;

  // A worker respawned after a crash runs the configuration that serves, not the
  // one that failed.
  kill(weir->current_worker(), SIGKILL);
  ASSERT_TRUE(weir->wait_ready_count(2, 15000)) << weir->stderr_text();
  auto after_crash = http_get(spec_.port, "/");
  ASSERT_TRUE(after_crash);
  EXPECT_EQ(after_crash->status, 200);

  // The failed start used generation 2: the next one is 3, after 2 reloads.
  weir->write_config(good);
  EXPECT_EQ(unix_command(sock, "reload").rfind("Success=1\n", 0), 0u);
  proc = unix_command(sock, "show proc");
  EXPECT_EQ(count_matching_lines(proc, R"(worker\s+3\s+current)"), 1u) << proc;
  EXPECT_EQ(reloads_in(proc), 2) << proc;
  // A reload refused for an invalid file counts too, and uses no generation.
  weir->write_config("frontends: {web: {bind: [\"127.0.0.1:1\"], default_backend: nope}}\n");
  EXPECT_EQ(unix_command(sock, "reload").rfind("Success=0\n", 0), 0u);
  weir->write_config(good);
  EXPECT_EQ(unix_command(sock, "reload").rfind("Success=1\n", 0), 0u);
  proc = unix_command(sock, "show proc");
  EXPECT_EQ(count_matching_lines(proc, R"(worker\s+4\s+current)"), 1u) << proc;
  EXPECT_EQ(reloads_in(proc), 4) << proc;
}

TEST_F(StartupFailures, AWorkerThatHadBeenReadyIsRespawnedWithBackOffUntilItCanStart) {
  const std::string logs = dir_ + "/logs";
  ASSERT_EQ(::mkdir(logs.c_str(), 0755), 0);
  spec_.logs = "[{target: " + logs + "/access.log}]";
  auto weir = WeirProcess::start(proxy_yaml(spec_));
  ASSERT_TRUE(weir);
  // The directory goes away under a running weir, then its worker crashes: each
  // respawn fails, says why, and waits longer; the master stays.
  remove_tree(logs);
  kill(weir->current_worker(), SIGKILL);
  EXPECT_TRUE(weir->wait_for_stderr("crash loop: workers died 3 times in a row", 15000))
      << weir->stderr_text();
  EXPECT_TRUE(weir->wait_for_stderr("generation 1 could not start: " + weir->config_path() +
                                        ":3:18: global: log: cannot open access log " + logs +
                                        "/access.log: No such file or directory",
                                    1000))
      << weir->stderr_text();
  EXPECT_TRUE(weir->alive());
  EXPECT_LE(count_matching_lines(weir->stderr_text(), "generation=1 started"), 6u);
  // Once the cause is gone, the next attempt serves.
  ASSERT_EQ(::mkdir(logs.c_str(), 0755), 0);
  ASSERT_TRUE(weir->wait_ready_count(2, 15000)) << weir->stderr_text();
  auto r = http_get(spec_.port, "/");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
}

}  // namespace
}  // namespace weir::test
