// The local peers agent (issue 20, peers/agent.h, worker/peers/link.h) as an
// operator sees it: counts that survive ten reloads under load, 100,000
// entries carried across reloads exactly, a rate limit that holds while two
// generations serve, conn_cur of connections still open on a draining
// generation, a restart with state_dir (and a truncated state file), the agent
// SIGKILLed under load and respawned, a reload while the agent cannot answer,
// and `show peers` while a reload drains. Real weir, real clients, real
// origins; every check is on `show table`, statuses and logs.

#include "tests/integration/peers_agent.h"
#include "tests/support/traffic_loop.h"

namespace weir::test::sticky {
namespace {

// ---------------------------------------------------------------------------
// 100,000 entries across ten reloads: 99,000 made over the runtime API (each
// with a counter of its own), 1,000 by HTTP requests sent while the reloads
// run. Afterwards the table holds exactly 100,000 entries and every counter
// has its exact value: no entry lost, none changed by a reload.

TEST_F(PeersAgent, HundredThousandEntriesSurviveTenReloadsExactly) {
  OriginServer app("app");
  ASSERT_TRUE(start(kCounting, {{"@SIZE@", "128k"}, {"@APP@", app.address()}}));
  constexpr int kSet = 99000, kHttpKeys = 1000, kHttpRounds = 2, kReloads = 10;
  auto set_value = [](int i) { return i % 97 + 1; };
  // The bulk: `set table` commands, many to a connection (the runtime API
  // takes one command per line).
  constexpr int kPerConnection = 1000;
  for (int first = 0; first < kSet; first += kPerConnection) {
    std::string commands;
    for (int i = first; i < std::min(kSet, first + kPerConnection); ++i) {
      if (!commands.empty()) commands += '\n';
      commands += "set table t key e" + std::to_string(i) + " data.http_req_cnt " +
                  std::to_string(set_value(i));
    }
    const std::string answer = api(commands);
    ASSERT_EQ(answer.find("Error"), std::string::npos) << answer.substr(0, 500);
  }
  TableView t;
  ASSERT_TRUE(wait_table(
      "t", [&](const TableView& v) { return v.info("used") == "99000"; }, &t))
      << t.info("used");

  // HTTP requests while ten reloads run: each of 1,000 new keys twice.
  constexpr int kRequests = kHttpKeys * kHttpRounds;
  KeyClient client(port_);
  ASSERT_NO_FATAL_FAILURE(requests_across_reloads(
      client, kRequests, kReloads, [](int i) { return "h" + std::to_string(i % kHttpKeys); }, 0));
  EXPECT_EQ(client.failed(), 0) << client.problems();
  ASSERT_EQ(client.ok(), kRequests);

  int64_t expected = kRequests;
  for (int i = 0; i < kSet; ++i) expected += set_value(i);
  ASSERT_TRUE(wait_current(
      "t",
      [&](const TableView& v) {
        return v.info("used") == "100000" && total(v, "http_req_cnt") == expected;
      },
      &t, 20000))
      << "used: " << t.info("used") << ", sum of http_req_cnt " << total(t, "http_req_cnt");
  // Every entry, not a sample.
  ASSERT_EQ(t.entries.size(), 100000u);
  int wrong = 0;
  for (int i = 0; i < kSet; ++i) {
    const std::string key = "e" + std::to_string(i);
    if (t.at(key, "http_req_cnt") != std::to_string(set_value(i)) && ++wrong <= 5) {
      ADD_FAILURE() << key << ": http_req_cnt " << t.at(key, "http_req_cnt") << ", expected "
                    << set_value(i);
    }
  }
  for (int k = 0; k < kHttpKeys; ++k) {
    const std::string key = "h" + std::to_string(k);
    if (t.at(key, "http_req_cnt") != std::to_string(kHttpRounds) && ++wrong <= 5) {
      ADD_FAILURE() << key << ": http_req_cnt " << t.at(key, "http_req_cnt") << ", expected "
                    << kHttpRounds;
    }
  }
  EXPECT_EQ(wrong, 0);
}

// ---------------------------------------------------------------------------
// A limit of 10 requests per period holds while two generations serve. The
// old generation keeps eleven keep-alive connections open (so it drains for
// as long as they stay); a draining generation answers one more request on
// each. The period is a day so that every request of the test lands in one
// period and the rate reads exactly the count (doc/stick-tables.md, "Rates").

constexpr const char* kLimit = R"y(  master_socket: @DIR@/master.sock
  timeouts: {hard_stop_after: 5m}
stick_tables:
  per_key:
    type: string
    size: 1k
    expire: 25h
    store: ["http_req_rate(24h)"]
frontends:
  web:
    bind: ["127.0.0.1:@PORT@"]
    default_backend: app
    timeouts: {http_keep_alive: 1m}
    http_request:
      - track: {table: per_key, key: "req.hdr(x-key)"}
      - deny: {status: 429}
        if: "{ sc0_http_req_rate gt 10 }"
backends:
  app:
    servers: {a1: "@APP@"}
)y";

TEST_F(PeersAgent, ALimitHoldsAcrossTheDrainingAndTheNewGeneration) {
  OriginServer app("app");
  ASSERT_TRUE(start(kLimit, {{"@APP@", app.address()}}));
  const std::string rate = "http_req_rate(86400000)";
  stay_within_one_period(86400000, 60000);
  std::vector<std::unique_ptr<HttpClient>> old;
  for (int i = 0; i < 11; ++i) {
    old.push_back(std::make_unique<HttpClient>(port_));
    auto r = old.back()->request("GET", "/", {{"X-Key", "warm" + std::to_string(i)}});
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 200);
  }
  ASSERT_TRUE(reload());

  // Key a: ten requests counted by generation 1 after the reload, on ten of
  // its connections; generation 2 hears of them and refuses the next one.
  for (int i = 0; i < 10; ++i) {
    auto r = old[i]->request("GET", "/", {{"X-Key", "a"}});
    ASSERT_TRUE(r) << "request " << i;
    ASSERT_EQ(r->status, 200) << "request " << i;
    EXPECT_EQ(r->header("Connection"), "close") << "not answered by the draining generation";
  }
  ASSERT_TRUE(generation_shows(2, "per_key", "a", rate, "10"));
  EXPECT_EQ(status_of("/", {{"X-Key", "a"}}), 429);

  // Key b: ten requests on generation 2; the draining generation 1 hears of
  // them and refuses the next one, on the connection it still holds.
  {
    HttpClient fresh(port_);
    for (int i = 0; i < 10; ++i) {
      auto r = fresh.request("GET", "/", {{"X-Key", "b"}});
      ASSERT_TRUE(r) << "request " << i;
      ASSERT_EQ(r->status, 200) << "request " << i;
      EXPECT_NE(r->header("Connection"), "close") << "answered by a draining generation";
    }
  }
  ASSERT_TRUE(generation_shows(1, "per_key", "b", rate, "10"));
  auto r = old[10]->request("GET", "/", {{"X-Key", "b"}});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 429);
  // Both generations count every request, the refused ones too.
  EXPECT_TRUE(generation_shows(2, "per_key", "a", rate, "11"));
  EXPECT_TRUE(generation_shows(2, "per_key", "b", rate, "11"));
  EXPECT_TRUE(generation_shows(1, "per_key", "a", rate, "11"));
  EXPECT_TRUE(generation_shows(1, "per_key", "b", rate, "11"));
  EXPECT_EQ(app.requests_served(), 11 + 10 + 10);
}

// ---------------------------------------------------------------------------
// conn_cur of the connections still open on a draining generation stays
// counted in the new one until they close, then comes back to 0. A draining
// generation that is killed with connections open stops counting at once
// (the agent takes its contribution back).

constexpr const char* kConnCur = R"y(  master_socket: @DIR@/master.sock
  timeouts: {hard_stop_after: 5m}
stick_tables:
  conns:
    type: ip
    size: 1k
    store: [conn_cur, conn_cnt]
frontends:
  web:
    bind: ["127.0.0.1:@PORT@"]
    default_backend: app
    timeouts: {http_keep_alive: 1m}
    tcp_request:
      - connection: {track: conns}
backends:
  app:
    servers: {a1: "@APP@"}
)y";

std::unique_ptr<HttpClient> open_from(uint16_t port, const std::string& source) {
  auto c = std::make_unique<HttpClient>(port, "127.0.0.1", source);
  auto r = c->request("GET", "/");
  if (!r || r->status != 200) return nullptr;
  return c;
}

TEST_F(PeersAgent, ConnCurOfTheDrainingGenerationCountsUntilItsConnectionsClose) {
  OriginServer app("app");
  ASSERT_TRUE(start(kConnCur, {{"@APP@", app.address()}}));
  const std::string ip = "127.0.0.2";
  std::vector<std::unique_ptr<HttpClient>> old;
  for (int i = 0; i < 3; ++i) {
    old.push_back(open_from(port_, ip));
    ASSERT_TRUE(old.back());
  }
  ASSERT_TRUE(becomes("conns", ip, "conn_cur", "3"));
  ASSERT_TRUE(reload());
  ASSERT_TRUE(generation_shows(2, "conns", ip, "conn_cur", "3"));
  auto fresh = open_from(port_, ip);
  ASSERT_TRUE(fresh);
  EXPECT_TRUE(generation_shows(2, "conns", ip, "conn_cur", "4"));
  EXPECT_TRUE(generation_shows(1, "conns", ip, "conn_cur", "4"));
  old[0]->close();
  old[1]->close();
  EXPECT_TRUE(generation_shows(2, "conns", ip, "conn_cur", "2"));
  // The last one: generation 1 drains, exits, and its connection no longer counts.
  old[2]->close();
  ASSERT_TRUE(weir_->wait_for_stderr("worker generation 1 drained, exiting", 10000));
  EXPECT_TRUE(generation_shows(2, "conns", ip, "conn_cur", "1"));
  fresh->close();
  EXPECT_TRUE(generation_shows(2, "conns", ip, "conn_cur", "0"));
  EXPECT_TRUE(generation_shows(2, "conns", ip, "conn_cnt", "4"));

  // Two connections of another address on generation 2; a reload; generation
  // 2 is killed while it drains them.
  const std::string ip3 = "127.0.0.3";
  auto k1 = open_from(port_, ip3);
  auto k2 = open_from(port_, ip3);
  ASSERT_TRUE(k1 && k2);
  ASSERT_TRUE(reload());
  ASSERT_TRUE(generation_shows(3, "conns", ip3, "conn_cur", "2"));
  const pid_t second = pid_of(2);
  ASSERT_GT(second, 0);
  ASSERT_EQ(::kill(second, SIGKILL), 0);
  EXPECT_TRUE(generation_shows(3, "conns", ip3, "conn_cur", "0"));
  EXPECT_TRUE(weir_->wait_for_stderr(
      "peers: worker pid=" + std::to_string(second) +
          " generation=2 exited without a goodbye with connections open on 1 keys",
      10000))
      << tail_lines(weir_->stderr_text(), 20);
}

// ---------------------------------------------------------------------------
// A restart with global.state_dir keeps the tables and what is left of each
// entry's life; a truncated state file is a warning and empty tables, and
// weir still starts and serves.

constexpr const char* kStateDir = R"y(  state_dir: @DIR@/state
stick_tables:
  t:
    type: string
    size: 1k
    expire: 10m
    store: [http_req_cnt, gpc0]
frontends:
  web:
    bind: ["127.0.0.1:@PORT@"]
    default_backend: app
    http_request:
      - track: {table: t, key: "req.hdr(x-key)"}
backends:
  app:
    servers: {a1: "@APP@"}
)y";

class PeersStateDir : public PeersAgent {
 protected:
  // Three entries: a (3 requests), b (1), c (set over the runtime API), then a
  // clean stop (SIGTERM), which saves them. The table as it was just before.
  void fill_and_stop(TableView* before) {
    ::mkdir((dir_ + "/state").c_str(), 0700);
    ASSERT_TRUE(start(kStateDir, {{"@APP@", app_.address()}}));
    for (int i = 0; i < 3; ++i) ASSERT_EQ(status_of("/", {{"X-Key", "a"}}), 200);
    ASSERT_EQ(status_of("/", {{"X-Key", "b"}}), 200);
    ASSERT_EQ(api("set table t key c data.http_req_cnt 42 data.gpc0 7"), "\n");
    ASSERT_TRUE(becomes("t", "a", "http_req_cnt", "3"));
    *before = show("t");
    ASSERT_EQ(before->info("used"), "3") << before->text;
    weir_->signal(SIGTERM);
    ASSERT_EQ(weir_->wait_exit(20000), std::optional<int>(0));
    EXPECT_TRUE(weir_->wait_for_stderr(R"(peers: saved 3 entries to .*/state/tables\.state)", 1000))
        << tail_lines(weir_->stderr_text(), 20);
    weir_.reset();
  }
  std::string state_file() const { return dir_ + "/state/tables.state"; }
  OriginServer app_{"app"};
};

TEST_F(PeersStateDir, ARestartKeepsTheTablesAndTheirExpiry) {
  TableView before;
  fill_and_stop(&before);
  if (HasFatalFailure()) return;
  ASSERT_TRUE(start(kStateDir, {{"@APP@", app_.address()}}));
  EXPECT_TRUE(
      weir_->wait_for_stderr(R"(peers: loaded 3 entries from .*/state/tables\.state)", 1000))
      << tail_lines(weir_->stderr_text(), 20);
  const TableView after = show("t");
  EXPECT_EQ(after.info("used"), "3") << after.text;
  EXPECT_EQ(after.at("a", "http_req_cnt"), "3") << after.text;
  EXPECT_EQ(after.at("b", "http_req_cnt"), "1") << after.text;
  EXPECT_EQ(after.at("c", "http_req_cnt"), "42") << after.text;
  EXPECT_EQ(after.at("c", "gpc(0)"), "7") << after.text;
  for (const std::string key : {"a", "b", "c"}) {
    // What was left of its life, not a new one.
    const int64_t exp = std::stoll(after.at(key, "exp"));
    EXPECT_GT(exp, 0) << key << "\n" << after.text;
    EXPECT_LE(exp, std::stoll(before.at(key, "exp"))) << key << "\n" << after.text;
    EXPECT_LT(exp, 600000) << key;
  }
  // It serves, and counts on.
  EXPECT_EQ(status_of("/", {{"X-Key", "a"}}), 200);
  EXPECT_TRUE(becomes("t", "a", "http_req_cnt", "4"));
}

TEST_F(PeersStateDir, ATruncatedStateFileIsAWarningAndEmptyTables) {
  TableView before;
  fill_and_stop(&before);
  if (HasFatalFailure()) return;
  const auto size = std::filesystem::file_size(state_file());
  ASSERT_GT(size, 10u);
  std::filesystem::resize_file(state_file(), size - 5);
  ASSERT_TRUE(start(kStateDir, {{"@APP@", app_.address()}}));
  EXPECT_TRUE(weir_->wait_for_stderr(
      R"(peers: state file .*/state/tables\.state is unreadable \(.+\): the tables start empty)",
      5000))
      << tail_lines(weir_->stderr_text(), 20);
  const TableView empty = show("t");
  EXPECT_EQ(empty.info("used"), "0") << empty.text;
  EXPECT_EQ(status_of("/", {{"X-Key", "a"}}), 200);
  EXPECT_TRUE(becomes("t", "a", "http_req_cnt", "1"));
}

// The agent saves at state_save_interval too: after a crash of the whole of
// weir (SIGKILL to every process, nothing saved at the end), a start finds
// what the last periodic save held.
TEST_F(PeersStateDir, ThePeriodicSaveSurvivesACrashOfEveryProcess) {
  ::mkdir((dir_ + "/state").c_str(), 0700);
  const std::string body = std::string(kStateDir).replace(
      std::string(kStateDir).find("\nstick_tables:"), 0, "\n  state_save_interval: 200ms");
  ASSERT_TRUE(start(body, {{"@APP@", app_.address()}}));
  for (int i = 0; i < 5; ++i) ASSERT_EQ(status_of("/", {{"X-Key", "p"}}), 200);
  ASSERT_TRUE(becomes("t", "p", "http_req_cnt", "5"));
  // Once the agent has every update of this worker (show peers: what it
  // received from this process equals what the process sent), two more saves
  // (the file written twice more) hold them.
  ASSERT_TRUE(wait_until(
      [&] {
        const std::string p = api("show peers");
        std::smatch sent, received;
        static const std::regex kSent(R"(this process: pid=(\d+) generation=\d+ sent=(\d+) )");
        if (!std::regex_search(p, sent, kSent)) return false;
        const std::regex line("\n" + sent[1].str() + R"( \d+ yes (\d+) )");
        return std::regex_search(p, received, line) && received[1].str() == sent[2].str();
      },
      10000))
      << api("show peers");
  auto written = [&] {
    std::error_code ec;
    return std::filesystem::last_write_time(state_file(), ec);
  };
  for (int i = 0; i < 2; ++i) {
    const auto before = written();
    ASSERT_TRUE(wait_until([&] { return written() != before; }, 10000));
  }
  ::kill(-weir_->pid(), SIGKILL);  // the whole process group: master, agent, worker
  weir_->wait_exit(10000);
  weir_.reset();
  ASSERT_TRUE(start(body, {{"@APP@", app_.address()}}));
  const TableView after = show("t");
  EXPECT_EQ(after.at("p", "http_req_cnt"), "5") << after.text;
}

// ---------------------------------------------------------------------------
// A reload while the agent cannot answer (SIGSTOP): the new generation still
// becomes ready (after its short wait for a silent agent) and serves; once
// the agent runs again, every generation's counts come together, those the
// new generation made before it had the snapshot included.

TEST_F(PeersAgent, AReloadWhileTheAgentIsStoppedStillServesAndCatchesUp) {
  OriginServer app("app");
  ASSERT_TRUE(start(kCounting, {{"@SIZE@", "1k"}, {"@APP@", app.address()}}));
  const pid_t agent = agent_pid();
  ASSERT_GT(agent, 0);
  for (int i = 0; i < 5; ++i) ASSERT_EQ(status_of("/", {{"X-Key", "s"}}), 200);
  ASSERT_EQ(::kill(agent, SIGSTOP), 0);
  struct Resume {
    pid_t pid;
    ~Resume() { ::kill(pid, SIGCONT); }
  } resume{agent};
  for (int i = 0; i < 5; ++i) ASSERT_EQ(status_of("/", {{"X-Key", "s"}}), 200);
  ASSERT_TRUE(reload());
  for (int i = 0; i < 5; ++i) ASSERT_EQ(status_of("/", {{"X-Key", "s"}}), 200);
  ASSERT_EQ(::kill(agent, SIGCONT), 0);
  TableView t;
  EXPECT_TRUE(wait_current(
      "t", [&](const TableView& v) { return v.at("s", "http_req_cnt") == "15"; }, &t, 20000))
      << t.text;
  EXPECT_TRUE(wait_until(
      [&] {
        return peers_of_current().find("agent: pid=" + std::to_string(agent) +
                                       " linked snapshot=loaded") != std::string::npos;
      },
      10000))
      << api("show peers");
  // And the next generation starts with them.
  ASSERT_TRUE(reload());
  EXPECT_TRUE(wait_current(
      "t", [&](const TableView& v) { return v.at("s", "http_req_cnt") == "15"; }, &t))
      << t.text;
}

// ---------------------------------------------------------------------------
// `show peers` while a reload drains: the agent links both worker processes.

TEST_F(PeersAgent, ShowPeersListsTheCurrentAndTheDrainingProcess) {
  OriginServer app("app");
  ASSERT_TRUE(start(kCounting, {{"@SIZE@", "1k"}, {"@APP@", app.address()}}));
  HttpClient held(port_);
  auto r = held.request("GET", "/", {{"X-Key", "x"}});
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200);
  const pid_t p1 = weir_->current_worker();
  ASSERT_TRUE(reload());
  const pid_t p2 = weir_->current_worker();
  const std::string agent = std::to_string(agent_pid());
  auto has_line = [](const std::string& text, const std::string& start) {
    return text.rfind(start, 0) == 0 || text.find("\n" + start) != std::string::npos;
  };
  std::string peers;
  EXPECT_TRUE(wait_until(
      [&] {
        peers = peers_of_current();
        return has_line(peers, "agent: pid=" + agent + " linked snapshot=loaded") &&
               has_line(peers, "this process: pid=" + std::to_string(p2) + " generation=2 ") &&
               has_line(peers, std::to_string(p1) + " 1 yes ") &&
               has_line(peers, std::to_string(p2) + " 2 yes ");
      },
      10000))
      << peers;
  // Once the draining process has gone, the agent forgets it.
  held.close();
  ASSERT_TRUE(weir_->wait_for_stderr("worker generation 1 drained, exiting", 10000));
  EXPECT_TRUE(wait_until(
      [&] {
        peers = peers_of_current();
        return has_line(peers, std::to_string(p2) + " 2 yes ") &&
               !has_line(peers, std::to_string(p1) + " 1 ");
      },
      10000))
      << peers;
}

// Started as root with global.user: the agent runs as that user, and its
// socket is in a directory only that user can reach (0700, owned by it).
TEST_F(PeersAgent, TheAgentRunsAsWeirsUserBehindAPrivateDirectory) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root (to switch to nobody)";
  const passwd* pw = ::getpwnam("nobody");
  if (!pw) GTEST_SKIP() << "no user nobody";
  OriginServer app("app");
  ASSERT_TRUE(start("  user: nobody\n" + std::string(kCounting),
                    {{"@SIZE@", "1k"}, {"@APP@", app.address()}}));
  const pid_t agent = agent_pid();
  ASSERT_GT(agent, 0);
  // Its real and effective uid.
  const std::string status = read_file("/proc/" + std::to_string(agent) + "/status");
  const std::string uid = std::to_string(pw->pw_uid);
  EXPECT_NE(status.find("\nUid:\t" + uid + "\t" + uid), std::string::npos) << status;
  std::smatch m;
  const std::string log = weir_->stderr_text();
  ASSERT_TRUE(std::regex_search(log, m, std::regex(R"(run directory (\S+)\))"))) << log;
  struct stat st {};
  ASSERT_EQ(::stat(m[1].str().c_str(), &st), 0) << m[1];
  EXPECT_EQ(st.st_mode & 07777, 0700u);
  EXPECT_EQ(st.st_uid, pw->pw_uid);
  EXPECT_EQ(::access((m[1].str() + "/peers.sock").c_str(), F_OK), 0);
  // The worker (the same user) is linked and counts reach the agent.
  EXPECT_EQ(status_of("/", {{"X-Key", "u"}}), 200);
  EXPECT_TRUE(
      wait_until([&] { return api("show peers").find(" linked ") != std::string::npos; }, 10000))
      << api("show peers");
  ASSERT_TRUE(reload());
  TableView t;
  EXPECT_TRUE(wait_current(
      "t", [&](const TableView& v) { return v.at("u", "http_req_cnt") == "1"; }, &t))
      << t.text;
}

// weir with a runtime API on `admin` and a table t of `type` that counts the
// requests by `key`.
std::string counting_yaml(ProxySpec& spec, const std::string& admin, const std::string& type,
                          const std::string& key) {
  spec.global_extra = "  runtime_api: {address: " + admin + ", level: admin}\n";
  spec.frontend_extra =
      "    http_request:\n"
      "      - track: {table: t, key: " +
      key + "}\n";
  return proxy_yaml(spec) + "stick_tables:\n  t: {type: " + type +
         ", size: 1k, expire: 1h, store: [http_req_cnt]}\n";
}

// A binary upgrade (the package replaced the binary, then a reload): the
// master stops the old binary's agent, which leaves its tables in the run
// directory, and starts the new binary's, which loads them; the next
// generation starts from them.
TEST(PeersUpgrade, ABinaryUpgradeKeepsTheTablesAndRunsTheNewAgent) {
  OriginServer app("app");
  ProxySpec spec;
  spec.servers = {app.address()};
  InstalledWeir w(weir_binary());
  const std::string admin = w.dir + "/admin.sock";
  ASSERT_TRUE(w.start(counting_yaml(spec, admin, "string", "\"req.hdr(x-key)\"")));
  for (int i = 0; i < 12; ++i) {
    HttpClient c(spec.port);
    auto r = c.request("GET", "/", {{"X-Key", i % 2 ? "odd" : "even"}, {"Connection", "close"}});
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 200);
  }
  TableView t;
  auto counted = [&](const TableView& v) {
    return v.at("odd", "http_req_cnt") == "6" && v.at("even", "http_req_cnt") == "6";
  };
  ASSERT_TRUE(wait_until(
      [&] {
        t = parse_table(unix_command(admin, "show table t"));
        return counted(t);
      },
      10000))
      << t.text;
  w.unpack(WEIR_NEXT_BINARY);
  const std::string out = w.cli("reload");
  ASSERT_NE(out.find("master re-executed"), std::string::npos) << out;
  const std::string proc = w.cli("show proc");
  EXPECT_EQ(count_matching_lines(proc, R"(peers\s+-\s+running\s.*\+next$)"), 1u) << proc;
  EXPECT_EQ(count_matching_lines(proc, R"(worker\s+2\s+current\s.*\+next$)"), 1u) << proc;
  t = parse_table(unix_command(admin, "show table t"));
  EXPECT_TRUE(counted(t)) << t.text;
  EXPECT_TRUE(w.weir->wait_for_stderr("peers: loaded 2 entries from .*tables.handover", 1000));
}

// The same under traffic: what the old generation counted while no agent read
// it (from the old agent's stop to the new one's start) comes with its refill,
// which the new agent waits for before the next generation takes its
// snapshot. Every request is counted once.
TEST(PeersUpgrade, ABinaryUpgradeUnderTrafficCountsEveryRequestOnce) {
  OriginServer app("app");
  ProxySpec spec;
  spec.servers = {app.address()};
  InstalledWeir w(weir_binary());
  const std::string admin = w.dir + "/admin.sock";
  ASSERT_TRUE(w.start(counting_yaml(spec, admin, "ip", "src")));
  TrafficLoop traffic(spec.port);
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  w.unpack(WEIR_NEXT_BINARY);
  const std::string out = w.cli("reload");
  ASSERT_NE(out.find("master re-executed"), std::string::npos) << out;
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  traffic.stop();
  EXPECT_EQ(traffic.failed(), 0);
  ASSERT_GT(traffic.ok(), 0);
  EXPECT_TRUE(w.weir->wait_for_stderr("ran before this agent refilled it", 1000));
  TableView t;
  const std::string want = std::to_string(traffic.ok());
  EXPECT_TRUE(wait_until(
      [&] {
        t = parse_table(unix_command(admin, "show table t"));
        return t.at("127.0.0.1", "http_req_cnt") == want;
      },
      5000))
      << "requests: " << want << "\n"
      << t.text;
}

}  // namespace
}  // namespace weir::test::sticky
