// The runtime API and weirctl as an operator uses them, and the master CLI's
// forwarding of runtime commands to worker generations.

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>

#include <algorithm>
#include <map>
#include <regex>

#include "tests/support/http_client.h"
#include "tests/support/launcher.h"
#include "tests/support/origin.h"
#include "tests/support/weir_config.h"

namespace weir::test {
namespace {

class RuntimeApi : public ::testing::Test {
 protected:
  void SetUp() override {
    ignore_sigpipe();
    dir_ = make_temp_dir();
    admin_ = dir_ + "/admin.sock";
    master_ = dir_ + "/master.sock";
    user_port_ = free_tcp_port();
    spec_.servers = {origin_.address()};
    spec_.global_extra = "  runtime_api:\n    - {address: " + admin_ +
                         ", level: admin, mode: \"0660\"}\n    - {address: \"127.0.0.1:" +
                         std::to_string(user_port_) + "\", level: user}\n";
    WeirOptions opts;
    opts.extra_args = {"-S", master_};
    weir_ = WeirProcess::start(proxy_yaml(spec_), opts);
  }
  void TearDown() override {
    weir_.reset();
    remove_tree(dir_);
  }
  std::string user_endpoint() const { return "127.0.0.1:" + std::to_string(user_port_); }

  OriginServer origin_{"a"};
  ProxySpec spec_;
  std::string dir_, admin_, master_;
  uint16_t user_port_ = 0;
  std::unique_ptr<WeirProcess> weir_;
};

TEST_F(RuntimeApi, ShowInfoOverTheUnixSocketWithWeirctl) {
  ASSERT_TRUE(weir_);
  struct stat st {};
  ASSERT_EQ(::stat(admin_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0660u);
  ASSERT_TRUE(http_get(spec_.port, "/"));
  // The worker counts the request once its last byte is written, which the
  // client may see first: wait for the count.
  CommandResult r;
  EXPECT_TRUE(wait_until(
      [&] {
        r = weirctl({"-s", admin_, "show", "info"});
        return r.out.find("CumReq: 1\n") != std::string::npos;
      },
      5000));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("Pid: " + std::to_string(weir_->current_worker())), std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("Generation: 1\n"), std::string::npos);
  EXPECT_NE(r.out.find("CumReq: 1\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("CumConns: 1\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("DroppedLogs: 0\n"), std::string::npos) << r.out;
  EXPECT_NE(weirctl({"-s", admin_, "help"}).out.find("show info"), std::string::npos);
}

TEST_F(RuntimeApi, LevelsAndErrorsGiveClearRefusalsAndExitCodes) {
  ASSERT_TRUE(weir_);
  // Read-only endpoint: reading works, changing is refused.
  CommandResult r = weirctl({"-s", user_endpoint(), "show info"});
  EXPECT_EQ(r.exit_code, 0);
  r = weirctl({"-s", user_endpoint(), "set", "maxconn", "frontend", "fe", "5"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.out.find("needs the admin level"), std::string::npos) << r.out;
  r = weirctl({"-s", admin_, "frobnicate"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.out.rfind("Error: unknown command", 0), 0u) << r.out;
  r = weirctl({"-s", admin_, "set", "maxconn", "frontend", "nope", "5"});
  EXPECT_EQ(r.exit_code, 1);
  r = weirctl({"-s", dir_ + "/missing.sock", "show", "info"});
  EXPECT_EQ(r.exit_code, 2);
  // Several commands on one connection, separated by ';', each answered.
  r = weirctl({"-s", admin_, "help; show info"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.out.find("Commands"), std::string::npos);
  EXPECT_NE(r.out.find("Name: weir"), std::string::npos);
}

TEST_F(RuntimeApi, SetMaxconnFrontendTakesEffectAtOnce) {
  ASSERT_TRUE(weir_);
  ASSERT_EQ(weirctl({"-s", admin_, "set", "maxconn", "frontend", "fe", "1"}).exit_code, 0);
  HttpClient first(spec_.port);
  ASSERT_TRUE(first.request("GET", "/"));
  // The second connection waits in the backlog while the first one is open.
  HttpClient second(spec_.port);
  ASSERT_TRUE(second.send_raw("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
  EXPECT_FALSE(second.read_response(500));
  // An empty answer prints nothing (doc/management.md), directly or through the master.
  CommandResult set = weirctl({"-s", admin_, "set", "maxconn", "frontend", "fe", "0"});
  ASSERT_EQ(set.exit_code, 0) << set.out;
  EXPECT_EQ(set.out, "");
  set = weirctl({"-m", master_, "@1", "set", "maxconn", "frontend", "fe", "0"});
  ASSERT_EQ(set.exit_code, 0) << set.out;
  EXPECT_EQ(set.out, "");
  auto r = second.read_response(10000);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
}

TEST_F(RuntimeApi, MasterForwardsToGenerationsAndOnlyTheCurrentOneAnswersTheSocket) {
  ASSERT_TRUE(weir_);
  pid_t gen1 = weir_->current_worker();
  CommandResult r = weirctl({"-m", master_, "@1", "show", "info"});
  EXPECT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("Generation: 1\n"), std::string::npos) << r.out;
  // Keep generation 1 alive (draining) with an idle keep-alive connection.
  HttpClient idle(spec_.port);
  ASSERT_TRUE(idle.request("GET", "/"));
  r = weirctl({"-m", master_, "reload"});
  ASSERT_EQ(r.exit_code, 0) << r.out;
  r = weirctl({"-m", master_, "@!" + std::to_string(gen1), "show", "info"});
  EXPECT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("State: draining"), std::string::npos) << r.out;
  r = weirctl({"-m", master_, "@2 show info"});
  EXPECT_NE(r.out.find("Generation: 2\n"), std::string::npos) << r.out;
  r = weirctl({"-s", admin_, "show", "info"});
  EXPECT_NE(r.out.find("Generation: 2\n"), std::string::npos) << r.out;
  r = weirctl({"-m", master_, "@9", "show", "info"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.out.find("no running worker of generation 9"), std::string::npos);
  r = weirctl({"-m", master_, "show", "proc"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(count_matching_lines(r.out, R"(worker\s+1\s+draining)"), 1u) << r.out;
}

TEST_F(RuntimeApi, WeirctlReadsCommandsFromStandardInput) {
  ASSERT_TRUE(weir_);
  std::vector<std::string> argv = {WEIRCTL_BINARY, "-s", admin_};
  CommandResult r = run_command(argv, 30000, "show info\nhelp\n");
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.out.find("Name: weir"), std::string::npos);
  EXPECT_NE(r.out.find("Commands"), std::string::npos);
  r = run_command(argv, 30000, "show info\nnonsense\n");
  EXPECT_EQ(r.exit_code, 1);
  // A command that answers nothing leaves no empty line in the output.
  r = run_command(argv, 30000, "set maxconn frontend fe 0\nshow info\n");
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.out.rfind("Name: weir\n", 0), 0u) << r.out;
}

}  // namespace
}  // namespace weir::test

namespace weir::test {
namespace {

class RuntimeApiServers : public ::testing::Test {
 protected:
  void SetUp() override {
    ignore_sigpipe();
    dir_ = make_temp_dir();
    admin_ = dir_ + "/admin.sock";
    user_ = dir_ + "/user.sock";
    spec_.servers = {a_.address(), b_.address()};
    spec_.global_extra = "  runtime_api: [{address: " + admin_ +
                         ", level: operator}, {address: " + user_ + ", level: user}]\n";
    weir_ = WeirProcess::start(proxy_yaml(spec_));
  }
  void TearDown() override {
    weir_.reset();
    remove_tree(dir_);
  }
  std::string servers_of(int n) {
    std::string seen;
    for (int i = 0; i < n; ++i) {
      auto r = http_get(spec_.port, "/");
      seen += r ? r->header("X-Server") : "?";
    }
    return seen;
  }

  OriginServer a_{"a"}, b_{"b"};
  ProxySpec spec_;
  std::string dir_, admin_, user_;
  std::unique_ptr<WeirProcess> weir_;
};

TEST_F(RuntimeApiServers, ShowStatCountsWhatHappened) {
  ASSERT_TRUE(weir_);
  servers_of(4);
  b_.stop();
  servers_of(2);  // refused by b, retried on a
  CommandResult r = weirctl({"-s", user_, "show", "stat"});
  ASSERT_EQ(r.exit_code, 0);
  auto rows = parse_stat_csv(r.out);
  ASSERT_EQ(rows.size(), 4u) << r.out;  // FRONTEND, s1, s2, BACKEND
  std::map<std::string, std::map<std::string, std::string>> by;
  for (auto& row : rows) by[row["pxname"] + "/" + row["svname"]] = row;
  EXPECT_EQ(by["fe/FRONTEND"]["stot"], "6");
  EXPECT_EQ(by["fe/FRONTEND"]["hrsp_2xx"], "6");
  EXPECT_EQ(by["fe/FRONTEND"]["status"], "OPEN");
  EXPECT_EQ(by["be/s1"]["stot"], "4");
  EXPECT_EQ(by["be/s2"]["stot"], "2");
  EXPECT_EQ(by["be/s2"]["econ"], "1") << r.out;  // the 6th request met the stopped b
  EXPECT_EQ(by["be/BACKEND"]["stot"], "6");
  EXPECT_EQ(by["be/BACKEND"]["wretr"], "1");
  EXPECT_EQ(by["be/s1"]["status"], "UP");
  EXPECT_EQ(by["be/s1"]["scur"], "0");  // nothing in flight any more
  r = weirctl({"-s", user_, "--json", "show", "stat", "be"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.out.find(R"("pxname":"be","svname":"s1")"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("FRONTEND"), std::string::npos);
  EXPECT_EQ(weirctl({"-s", user_, "show", "stat", "nope"}).exit_code, 1);
}

TEST_F(RuntimeApiServers, ServerStatesAndWeightsSteerTrafficAtOnce) {
  ASSERT_TRUE(weir_);
  EXPECT_EQ(servers_of(4), "abab");
  ASSERT_EQ(weirctl({"-s", admin_, "set", "server", "be/s2", "state", "maint"}).exit_code, 0);
  EXPECT_EQ(servers_of(4), "aaaa");
  CommandResult st = weirctl({"-s", admin_, "show", "servers", "state", "be"});
  EXPECT_NE(st.out.find("be s2 " + b_.address() + " maint 1 1"), std::string::npos) << st.out;
  ASSERT_EQ(weirctl({"-s", admin_, "set", "server", "be/s1", "state", "drain"}).exit_code, 0);
  // No server takes new traffic: 503 at once.
  auto r = http_get(spec_.port, "/");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 503);
  ASSERT_EQ(weirctl({"-s", admin_, "enable", "server", "be/s2"}).exit_code, 0);
  EXPECT_EQ(servers_of(3), "bbb");
  ASSERT_EQ(weirctl({"-s", admin_, "set", "server", "be/s1", "state", "ready"}).exit_code, 0);
  ASSERT_EQ(weirctl({"-s", admin_, "set", "server", "be/s2", "weight", "0%"}).exit_code, 0);
  EXPECT_EQ(servers_of(3), "aaa");
  ASSERT_EQ(weirctl({"-s", admin_, "set", "server", "be/s2", "weight", "3"}).exit_code, 0);
  std::string mix = servers_of(8);
  EXPECT_EQ(std::count(mix.begin(), mix.end(), 'b'), 6) << mix;
  // A percentage is of the configured weight (1 here): 50% slows the server down as
  // far as it goes but keeps it in rotation (only 0% takes it out); above 100% raises
  // the weight, up to 256.
  ASSERT_EQ(weirctl({"-s", admin_, "set", "server", "be/s2", "weight", "50%"}).exit_code, 0);
  st = weirctl({"-s", admin_, "show", "servers", "state", "be"});
  EXPECT_NE(st.out.find("be s2 " + b_.address() + " ready 1 1"), std::string::npos) << st.out;
  EXPECT_EQ(servers_of(4), "abab");
  ASSERT_EQ(weirctl({"-s", admin_, "set", "server", "be/s2", "weight", "300%"}).exit_code, 0);
  mix = servers_of(8);
  EXPECT_EQ(std::count(mix.begin(), mix.end(), 'b'), 6) << mix;
  ASSERT_EQ(weirctl({"-s", admin_, "set", "server", "be/s2", "weight", "100000%"}).exit_code, 0);
  st = weirctl({"-s", admin_, "show", "servers", "state", "be"});
  EXPECT_NE(st.out.find("be s2 " + b_.address() + " ready 256 1"), std::string::npos) << st.out;
  CommandResult bad = weirctl({"-s", admin_, "set", "server", "be/s2", "weight", "100001%"});
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_NE(bad.out.find("0%..100000%"), std::string::npos) << bad.out;
  EXPECT_TRUE(weir_->wait_for_stderr(R"(server be/s2: weight 3 -> 1 \(runtime API\))", 2000));
  // Refusals: level, unknown names, bad values.
  EXPECT_EQ(weirctl({"-s", user_, "disable", "server", "be/s1"}).exit_code, 1);
  EXPECT_EQ(weirctl({"-s", admin_, "set", "server", "be/zz", "state", "maint"}).exit_code, 1);
  EXPECT_EQ(weirctl({"-s", admin_, "set", "server", "nope/s1", "state", "maint"}).exit_code, 1);
  EXPECT_EQ(weirctl({"-s", admin_, "set", "server", "be/s1", "weight", "300"}).exit_code, 1);
  EXPECT_EQ(weirctl({"-s", admin_, "set", "server", "be/s1", "state", "sideways"}).exit_code, 1);
  EXPECT_TRUE(weir_->wait_for_stderr("server be/s2: state ready -> maint", 2000));
}

}  // namespace
}  // namespace weir::test

namespace weir::test {
namespace {

TEST_F(RuntimeApiServers, ShowErrorsKeepsTheLastMalformedRequestAndResponse) {
  ASSERT_TRUE(weir_);
  CommandResult none = weirctl({"-s", admin_, "show", "errors"});
  EXPECT_EQ(none.out, "No errors captured.\n");
  HttpClient c(spec_.port);
  ASSERT_TRUE(c.send_raw("GET /x HTTP/1.1\r\nHost: t\r\n folded: y\r\n\r\n"));
  auto r = c.read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 400);
  // A server answering with a header name that contains a space: 502, captured.
  auto bad = http_get(spec_.port, "/?header=Bad%20Name:v");
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->status, 502);
  CommandResult out = weirctl({"-s", admin_, "show", "errors"});
  EXPECT_EQ(out.exit_code, 0);
  EXPECT_NE(out.out.find("frontend fe: invalid request (1 so far)"), std::string::npos) << out.out;
  EXPECT_NE(out.out.find("obsolete line folding at byte 26 of 40"), std::string::npos) << out.out;
  EXPECT_NE(out.out.find(R"(GET /x HTTP/1.1\r\nHost: t\r\n folded: y\r\n\r\n)"), std::string::npos);
  EXPECT_NE(out.out.find("backend be: invalid response (1 so far)"), std::string::npos) << out.out;
  EXPECT_NE(out.out.find("invalid character in header name"), std::string::npos) << out.out;
  EXPECT_NE(out.out.find(R"(\r\nBad Nam)"), std::string::npos) << out.out;  // the dump wraps
  // Raw bytes are for operators, not for read-only endpoints.
  EXPECT_EQ(weirctl({"-s", user_, "show", "errors"}).exit_code, 1);
}

}  // namespace
}  // namespace weir::test

namespace weir::test {
namespace {

TEST_F(RuntimeApiServers, ShowSessAndShutdownEndLiveConnections) {
  ASSERT_TRUE(weir_);
  HttpClient slow(spec_.port);
  ASSERT_TRUE(slow.send_raw("GET /?delay=20000&blackhole=0 HTTP/1.1\r\nHost: x\r\n\r\n"));
  HttpClient idle(spec_.port);
  ASSERT_TRUE(idle.request("GET", "/"));
  std::string sess;
  ASSERT_TRUE(wait_until(
      [&] {
        sess = weirctl({"-s", user_, "show", "sess"}).out;
        return sess.find("state=exchange") != std::string::npos;
      },
      5000))
      << sess;
  EXPECT_EQ(count_matching_lines(sess, R"(^id=\d+ proto=http frontend=fe src=127\.0\.0\.1:\d+ )"),
            2u)
      << sess;
  EXPECT_NE(sess.find(R"(req="GET /?delay=20000&blackhole=0 HTTP/1.1")"), std::string::npos);

  // The idle one by its id.
  std::string port = std::to_string(idle.local_port());
  std::smatch m;
  ASSERT_TRUE(
      std::regex_search(sess, m, std::regex("id=(\\d+) [^\\n]*src=127\\.0\\.0\\.1:" + port)))
      << sess;
  EXPECT_EQ(weirctl({"-s", user_, "shutdown", "session", m[1].str()}).exit_code, 1);  // level
  EXPECT_EQ(weirctl({"-s", admin_, "shutdown", "session", m[1].str()}).exit_code, 0);
  EXPECT_TRUE(idle.wait_closed(5000));
  EXPECT_EQ(weirctl({"-s", admin_, "shutdown", "session", "999999"}).exit_code, 1);

  // The slow one through its server.
  std::string server =
      sess.find("server=s1 state=exchange") != std::string::npos ? "be/s1" : "be/s2";
  CommandResult r = weirctl({"-s", admin_, "shutdown", "sessions", "server", server});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.out, "1 session(s) closed\n");
  EXPECT_TRUE(slow.wait_closed(5000));
  EXPECT_TRUE(wait_until(
      [&] {
        return weirctl({"-s", user_, "show", "sess"}).out == "No sessions.\n";
      },
      5000));
  // The killed request is logged with a K (killed) termination state, waiting for
  // the headers; the idle keep-alive connection had no request to log.
  EXPECT_TRUE(
      weir_->wait_for_stdout(R"( - \d+ KH .*"GET /\?delay=20000&blackhole=0 HTTP/1.1")", 5000))
      << weir_->stdout_text();
}

}  // namespace
}  // namespace weir::test

namespace weir::test {
namespace {

TEST_F(RuntimeApi, PromptModeKeepsAConversationGoing) {
  ASSERT_TRUE(weir_);
  HttpClient c(user_port_);  // a raw TCP connection to the user-level endpoint
  ASSERT_TRUE(c.send_raw("prompt\n"));
  std::string got;
  ASSERT_TRUE(wait_until(
      [&] {
        got += c.read_available(50);
        return got == "> ";
      },
      5000))
      << got;
  ASSERT_TRUE(c.send_raw("show info\n"));
  got.clear();
  ASSERT_TRUE(wait_until(
      [&] {
        got += c.read_available(50);
        return got.size() > 2 && got.compare(got.size() - 3, 3, "\n> ") == 0;
      },
      5000))
      << got;
  EXPECT_EQ(got.rfind("Name: weir\n", 0), 0u) << got;
  EXPECT_NE(got.find("\n\n> "), std::string::npos);
  ASSERT_TRUE(c.send_raw("quit\n"));
  EXPECT_TRUE(c.wait_closed(5000));
}

}  // namespace
}  // namespace weir::test

namespace weir::test {
namespace {

TEST(RuntimeApiBackends, ShowBackendListsModeAlgorithmServersAndServersUp) {
  ignore_sigpipe();
  OriginServer a{"a"};
  const std::string dir = make_temp_dir();
  const std::string admin = dir + "/admin.sock", user = dir + "/user.sock";
  const std::string down = "127.0.0.1:" + std::to_string(free_tcp_port());  // nothing listens
  const std::string yaml = "global:\n  runtime_api: [{address: " + admin +
                           ", level: admin}, {address: " + user +
                           ", level: user}]\n"
                           "frontends:\n"
                           "  web: {bind: [\"127.0.0.1:" +
                           std::to_string(free_tcp_port()) +
                           "\"], default_backend: app}\n"
                           "  raw: {mode: tcp, bind: [\"127.0.0.1:" +
                           std::to_string(free_tcp_port()) +
                           "\"], default_backend: tcp_app}\n"
                           "backends:\n"
                           "  app:\n"
                           "    balance: leastconn\n"
                           "    check: {type: tcp, inter: 100ms, rise: 1, fall: 1}\n"
                           "    servers: {s1: \"" +
                           a.address() + "\", s2: \"" + down +
                           "\"}\n"
                           "  tcp_app:\n"
                           "    mode: tcp\n"
                           "    balance: {algorithm: source}\n"
                           "    servers: {t1: \"" +
                           a.address() + "\"}\n";
  auto weir = WeirProcess::start(yaml);
  ASSERT_TRUE(weir);
  const std::string header = "# backend mode algorithm servers up\n";
  // s2 fails its checks: one of app's two servers is up; tcp_app's server has
  // no check, so it counts as up.
  std::string out;
  ASSERT_TRUE(wait_until(
      [&] {
        out = weirctl({"-s", user, "show", "backend"}).out;
        return out == header + "app http leastconn 2 1\ntcp_app tcp source 1 1\n";
      },
      10000))
      << out;
  CommandResult one = weirctl({"-s", user, "show backend tcp_app"});
  EXPECT_EQ(one.exit_code, 0);
  EXPECT_EQ(one.out, header + "tcp_app tcp source 1 1\n");
  // A server added at runtime counts at once (unchecked here: up).
  ASSERT_EQ(weirctl({"-s", admin, "add", "server", "app/s3", a.address(), "state", "ready", "check",
                     "off"})
                .exit_code,
            0);
  EXPECT_EQ(weirctl({"-s", user, "show", "backend", "app"}).out,
            header + "app http leastconn 3 2\n");
  CommandResult unknown = weirctl({"-s", user, "show", "backend", "nope"});
  EXPECT_EQ(unknown.exit_code, 1);
  EXPECT_EQ(unknown.out, "Error: no backend named 'nope'\n");
  CommandResult extra = weirctl({"-s", user, "show", "backend", "app", "tcp_app"});
  EXPECT_EQ(extra.exit_code, 1);
  EXPECT_EQ(extra.out, "Error: usage: show backend [<backend>]\n");
  EXPECT_NE(weirctl({"-s", user, "help"}).out.find("\n  show backend [backend]"),
            std::string::npos);
  weir.reset();
  remove_tree(dir);
}

}  // namespace
}  // namespace weir::test
