// The local peers agent (issue 20, peers/agent.h, worker/peers/link.h) as an
// operator sees it: counts that survive ten reloads under load, 100,000
// entries carried across reloads exactly, a rate limit that holds while two
// generations serve, conn_cur of connections still open on a draining
// generation, a restart with state_dir (and a truncated state file), the agent
// SIGKILLed under load and respawned, a reload while the agent cannot answer,
// and `show peers` while a reload drains. Real weir, real clients, real
// origins; every check is on `show table`, statuses and logs.

#include <gtest/gtest.h>
#include <pwd.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/stick_tables.h"
#include "tests/support/http_client.h"
#include "tests/support/installed_weir.h"
#include "tests/support/launcher.h"
#include "tests/support/origin.h"
#include "tests/support/weir_config.h"

namespace weir::test::sticky {
namespace {

// A string table keyed on a request header, counting requests, as the brief
// of the reload tests writes it. The body's first lines continue the global
// block of StickTest::config.
constexpr const char* kCounting = R"y(  master_socket: @DIR@/master.sock
  max_old_generations: 60
stick_tables:
  t:
    type: string
    size: @SIZE@
    expire: 1h
    store: [http_req_cnt, "http_req_rate(10s)"]
frontends:
  web:
    bind: ["127.0.0.1:@PORT@"]
    default_backend: app
    timeouts: {http_keep_alive: 1m}
    metrics: {uri: /metrics}
    http_request:
      - track: {table: t, key: "req.hdr(x-key)"}
backends:
  app:
    servers: {a1: "@APP@"}
)y";

// The sum of a field over every entry of a table.
int64_t total(const TableView& v, const std::string& field) {
  int64_t sum = 0;
  for (const auto& [key, fields] : v.entries) {
    auto f = fields.find(field);
    if (f != fields.end()) sum += std::stoll(f->second);
  }
  return sum;
}

// The value of a sample of /metrics ("<missing>" when absent).
std::string metric(const std::string& text, const std::string& series) {
  size_t at = text.find("\n" + series + " ");
  if (at == std::string::npos) return "<missing>";
  at += series.size() + 2;
  return text.substr(at, text.find('\n', at) - at);
}

// Requests with an X-Key header on a keep-alive connection, a new one when
// weir answers "Connection: close" (as a draining generation does). Counts
// what succeeded and what did not; thread-safe to read.
class KeyClient {
 public:
  explicit KeyClient(uint16_t port) : port_(port) {}
  // One request: true when answered 200.
  bool get(const std::string& key) {
    try {
      if (!c_) c_ = std::make_unique<HttpClient>(port_);
    } catch (const std::exception& e) {
      fail(std::string("connect: ") + e.what());
      return false;
    }
    auto r = c_->request("GET", "/", {{"X-Key", key}});
    if (!r) {
      fail("no response for key " + key);
      c_.reset();
      return false;
    }
    if (r->header("Connection") == "close") {
      ++closes_;
      c_.reset();
    }
    if (r->status != 200) {
      fail("status " + std::to_string(r->status) + " for key " + key);
      return false;
    }
    ++ok_;
    return true;
  }
  int ok() const { return ok_; }
  int failed() const { return failed_; }
  // Responses that closed their connection: the draining generations' answers.
  int closes() const { return closes_; }
  std::string problems() const {
    std::lock_guard<std::mutex> g(mu_);
    return ::testing::PrintToString(problems_);
  }

 private:
  void fail(const std::string& what) {
    ++failed_;
    std::lock_guard<std::mutex> g(mu_);
    if (problems_.size() < 10) problems_.push_back(what);
  }
  uint16_t port_;
  std::unique_ptr<HttpClient> c_;
  std::atomic<int> ok_{0}, failed_{0}, closes_{0};
  mutable std::mutex mu_;
  std::vector<std::string> problems_;
};

// Joins a load thread on every way out of a test (a failed ASSERT included).
class LoadThread {
 public:
  explicit LoadThread(std::function<void(const std::atomic<bool>& stop)> body)
      : thread_([this, body = std::move(body)] { body(stop_); }) {}
  ~LoadThread() { join(); }
  void join() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }

 private:
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

class PeersAgent : public StickTest {
 protected:
  std::string master_cli() const { return dir_ + "/master.sock"; }

  // Rewrites the same configuration and sends SIGHUP; waits until the next
  // generation is ready and the previous one drains (it then no longer
  // accepts connections nor answers the runtime API).
  ::testing::AssertionResult reload() {
    const int before = weir_->current_generation();
    const size_t ready = weir_->ready_workers().size();
    weir_->write_config(read_file(weir_->config_path()));
    weir_->signal(SIGHUP);
    if (!weir_->wait_ready_count(ready + 1, 40000)) {
      return ::testing::AssertionFailure() << "no generation after " << before << " became ready:\n"
                                           << tail_lines(weir_->stderr_text(), 30);
    }
    if (!weir_->wait_for_stderr("worker generation " + std::to_string(before) + " draining",
                                10000)) {
      return ::testing::AssertionFailure() << "generation " << before << " never drained:\n"
                                           << tail_lines(weir_->stderr_text(), 30);
    }
    return ::testing::AssertionSuccess();
  }

  // The peers agent's line of the master CLI's `show proc`: its pid (0: none)
  // and state ("running", "starting").
  pid_t agent_pid(std::string* state = nullptr) const {
    std::istringstream in(unix_command(master_cli(), "show proc"));
    std::string line;
    while (std::getline(in, line)) {
      std::istringstream words(line);
      std::string pid, type, generation, st;
      words >> pid >> type >> generation >> st;
      if (type != "peers") continue;
      if (state) *state = st;
      return static_cast<pid_t>(std::stol(pid));
    }
    return 0;
  }

  // Whether an answer that starts with `show peers` came from the current
  // generation (in the moment after a reload, a draining one may still take
  // a command).
  bool from_current(const std::string& answer) const {
    const std::string me = "generation=" + std::to_string(weir_->current_generation()) + " ";
    return answer.find(me) != std::string::npos;
  }
  // `show peers` as the current generation answers it ("" when another did).
  std::string peers_of_current() const {
    const std::string answer = api("show peers");
    return from_current(answer) ? answer : "";
  }
  // Waits until pred holds for `show table NAME` as the current generation
  // answers it (`show peers` on the same connection says which one did).
  bool wait_current(const std::string& table, const std::function<bool(const TableView&)>& pred,
                    TableView* last, int timeout_ms = 10000) const {
    return wait_until(
        [&] {
          const std::string answer = api("show peers;show table " + table);
          *last = parse_table(answer);
          return from_current(answer) && pred(*last);
        },
        timeout_ms, 50);
  }
  // Waits until the entry of key in generation `generation` (current or
  // draining, through the master CLI's @N) shows field=value.
  ::testing::AssertionResult generation_shows(int generation, const std::string& table,
                                              const std::string& key, const std::string& field,
                                              const std::string& value) const {
    TableView t;
    const std::string command =
        "@" + std::to_string(generation) + " show table " + table + " key " + key;
    if (wait_until(
            [&] {
              t = parse_table(unix_command(master_cli(), command));
              return t.at(key, field) == value;
            },
            10000)) {
      return ::testing::AssertionSuccess();
    }
    return ::testing::AssertionFailure() << "generation " << generation << ": " << field << " of "
                                         << key << " never became " << value << ":\n"
                                         << t.text;
  }
  // Sends `requests` requests with `client` (request i with key_of(i), then
  // a pause of pause_ms) from a thread of its own while `reloads` reloads
  // run. The client is never more than its share of the requests ahead of
  // the reloads, and at least one request goes between each reload and the
  // next: every generation serves, and after each reload the next request on
  // the connection the client holds is the draining generation's last (it
  // then exits). Returns when every request has been answered or failed.
  void requests_across_reloads(KeyClient& client, int requests, int reloads,
                               const std::function<std::string(int)>& key_of, int pause_ms) {
    const int share = requests / (reloads + 1);
    std::atomic<int> reloaded{0};
    auto answered = [&] { return client.ok() + client.failed(); };
    LoadThread load([&](const std::atomic<bool>& stop) {
      for (int i = 0; i < requests && !stop; ++i) {
        while (i >= share * (reloaded + 1) && reloaded < reloads && !stop) {
          std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }
        client.get(key_of(i));
        if (pause_ms) std::this_thread::sleep_for(std::chrono::milliseconds(pause_ms));
      }
    });
    int before = 0;
    for (int r = 1; r <= reloads; ++r) {
      ASSERT_TRUE(wait_until([&] { return answered() > before; }, 20000));
      ASSERT_TRUE(reload()) << "reload " << r;
      before = answered();
      ++reloaded;
    }
    ASSERT_TRUE(wait_until([&] { return answered() >= requests; }, 60000));
  }
  // The pid of the worker of a generation, from the ready lines.
  pid_t pid_of(int generation) const {
    const std::string text = weir_->stderr_text();
    const std::regex ready(R"(worker pid=([0-9]+) generation=([0-9]+) ready)");
    pid_t pid = 0;
    for (auto it = std::sregex_iterator(text.begin(), text.end(), ready);
         it != std::sregex_iterator(); ++it) {
      if (std::stoi((*it)[2]) == generation) pid = static_cast<pid_t>(std::stol((*it)[1]));
    }
    return pid;
  }
};

// ---------------------------------------------------------------------------
// 600 increments spread over ten reloads: none is lost (HAProxy 2.6 loses 4
// to 9), none counted twice. The client keeps one keep-alive connection, so
// after each reload its next request is answered by the draining generation
// (with "Connection: close"), which then exits: its last count must reach the
// agent and the new generation.

TEST_F(PeersAgent, CountsSurviveTenReloadsUnderLoad) {
  OriginServer app("app");
  ASSERT_TRUE(start(kCounting, {{"@SIZE@", "1k"}, {"@APP@", app.address()}}));
  constexpr int kRequests = 600, kReloads = 10, kKeys = 20;
  KeyClient client(port_);
  ASSERT_NO_FATAL_FAILURE(requests_across_reloads(
      client, kRequests, kReloads, [](int i) { return "k" + std::to_string(i % kKeys); }, 2));
  EXPECT_EQ(client.failed(), 0) << client.problems();
  ASSERT_EQ(client.ok(), kRequests);
  EXPECT_GE(client.closes(), kReloads);
  EXPECT_EQ(weir_->current_generation(), kReloads + 1);

  TableView t;
  EXPECT_TRUE(wait_current(
      "t", [&](const TableView& v) { return total(v, "http_req_cnt") == kRequests; }, &t))
      << "the sum of http_req_cnt never became " << kRequests << ":\n"
      << t.text;
  ASSERT_EQ(t.entries.size(), static_cast<size_t>(kKeys)) << t.text;
  for (int k = 0; k < kKeys; ++k) {
    const std::string key = "k" + std::to_string(k);
    EXPECT_EQ(t.at(key, "http_req_cnt"), std::to_string(kRequests / kKeys)) << t.text;
    // No reload inflated a rate: it never reads more events than were counted.
    EXPECT_LE(std::stoll(t.at(key, "http_req_rate(10000)")), kRequests / kKeys) << t.text;
  }
}

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
// The agent SIGKILLed under load: the master respawns it, the worker refills
// it, no request fails, and the tables come back complete (a reload
// afterwards loads them from the new agent).

TEST_F(PeersAgent, AKilledAgentIsRespawnedAndRefilledWithoutAFailedRequest) {
  OriginServer app("app");
  ASSERT_TRUE(start(kCounting, {{"@SIZE@", "1k"}, {"@APP@", app.address()}}));
  std::string state;
  const pid_t first = agent_pid(&state);
  ASSERT_GT(first, 0) << unix_command(master_cli(), "show proc");
  EXPECT_EQ(state, "running");
  EXPECT_NE(api("show peers").find(" refills=0"), std::string::npos) << api("show peers");
  KeyClient client(port_);
  LoadThread load([&](const std::atomic<bool>& stop) {
    for (int i = 0; !stop; ++i) {
      client.get("k" + std::to_string(i % 10));
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  });
  ASSERT_TRUE(wait_until([&] { return client.ok() >= 100; }, 20000));
  ASSERT_EQ(::kill(first, SIGKILL), 0);
  pid_t second = 0;
  ASSERT_TRUE(wait_until(
      [&] {
        second = agent_pid(&state);
        return second > 0 && second != first && state == "running";
      },
      10000))
      << unix_command(master_cli(), "show proc");
  const int at_respawn = client.ok();
  ASSERT_TRUE(wait_until([&] { return client.ok() >= at_respawn + 100; }, 20000));
  load.join();
  EXPECT_EQ(client.failed(), 0) << client.problems();
  const int sent = client.ok();
  EXPECT_TRUE(weir_->wait_for_stderr(
      "peers agent pid=" + std::to_string(first) + " exited unexpectedly", 1000));

  TableView t;
  EXPECT_TRUE(wait_current(
      "t", [&](const TableView& v) { return total(v, "http_req_cnt") == sent; }, &t))
      << "the sum of http_req_cnt never became " << sent << ":\n"
      << t.text;
  const std::string linked = "agent: pid=" + std::to_string(second) + " linked";
  EXPECT_TRUE(
      wait_until([&] { return api("show peers").find(linked) != std::string::npos; }, 10000))
      << api("show peers");
  auto m = http_get(port_, "/metrics");
  ASSERT_TRUE(m);
  EXPECT_EQ(metric(m->body, "weir_peers_link_up"), "1") << m->body;
  // The worker filled the new agent (the first agent it never had to).
  EXPECT_EQ(metric(m->body, "weir_peers_refills_total"), "1") << m->body;

  // The next generation loads the tables from the new agent.
  ASSERT_TRUE(reload());
  EXPECT_TRUE(wait_current(
      "t", [&](const TableView& v) { return total(v, "http_req_cnt") == sent; }, &t))
      << "after the reload, the sum of http_req_cnt never became " << sent << ":\n"
      << t.text;
  EXPECT_EQ(agent_pid(), second);
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
  spec.global_extra = "  runtime_api: {address: " + admin + ", level: admin}\n";
  spec.frontend_extra =
      "    http_request:\n"
      "      - track: {table: t, key: \"req.hdr(x-key)\"}\n";
  const std::string yaml = proxy_yaml(spec) +
                           "stick_tables:\n"
                           "  t: {type: string, size: 1k, expire: 1h, store: [http_req_cnt]}\n";
  ASSERT_TRUE(w.start(yaml));
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

}  // namespace
}  // namespace weir::test::sticky
