// Server queues end to end: per-server maxconn under heavy concurrency with
// clients that give up, the queue timeout, maxqueue overflow with a hashing
// algorithm, a server put in maint while requests wait for it, backup servers,
// leastconn, and the hashing algorithms (url_param, hdr, source).
//
// What the servers saw is checked on the origins themselves
// (OriginServer::peak_concurrent_requests()), what weir did in its access log
// (a file, one '|'-separated line per request) and in `show stat`.
// These tests also run under TSan and ASan (the file name puts them in the
// "sanitize" binary): no assertion depends on speed; waits have generous deadlines.

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <future>
#include <iostream>
#include <map>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/http_client.h"
#include "tests/support/launcher.h"
#include "tests/support/origin.h"
#include "tests/support/weir_config.h"

namespace weir::test {
namespace {

using Clock = std::chrono::steady_clock;
using Row = std::map<std::string, std::string>;

// The access-log format of these tests: fields split back on '|'.
constexpr const char* kLogFormat = "%b|%s|%ST|%ts|%Tw|%sq|%bq|%r";
struct LogLine {
  std::string backend, server, status, term, tw, sq, bq, request;
  std::string target() const {  // "/path?query" out of "GET /path?query HTTP/1.1"
    size_t sp1 = request.find(' ');
    size_t sp2 = request.rfind(' ');
    if (sp1 == std::string::npos || sp2 <= sp1) return request;
    return request.substr(sp1 + 1, sp2 - sp1 - 1);
  }
};

std::vector<LogLine> parse_log(const std::string& text) {
  std::vector<LogLine> out;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string::npos) break;  // a line still being written
    std::string line = text.substr(pos, nl - pos);
    pos = nl + 1;
    std::vector<std::string> f;
    size_t start = 0;
    for (int i = 0; i < 7; ++i) {
      size_t bar = line.find('|', start);
      if (bar == std::string::npos) break;
      f.push_back(line.substr(start, bar - start));
      start = bar + 1;
    }
    if (f.size() != 7) continue;
    f.push_back(line.substr(start));
    out.push_back({f[0], f[1], f[2], f[3], f[4], f[5], f[6], f[7]});
  }
  return out;
}

std::string describe(const LogLine& l) {
  return l.backend + "|" + l.server + "|" + l.status + "|" + l.term + "|" + l.tw + "|" + l.sq +
         "|" + l.bq + "|" + l.request;
}

// One weir in front of the given origins, with a file access log and an admin
// runtime API socket.
class Queue : public ::testing::Test {
 protected:
  void SetUp() override {
    ignore_sigpipe();
    dir_ = make_temp_dir();
    log_ = dir_ + "/access.log";
    admin_ = dir_ + "/admin.sock";
  }
  void TearDown() override {
    weir_.reset();
    if (!dir_.empty()) remove_tree(dir_);
  }

  // Fills spec_ (servers, log, runtime API) and starts weir; `edit` may change the
  // YAML before it is written (e.g. to make one server a backup).
  void start(const std::vector<const OriginServer*>& origins,
             const std::function<void(std::string&)>& edit = {}) {
    spec_.threads = 2;
    spec_.servers.clear();
    for (const OriginServer* o : origins) spec_.servers.push_back(o->address());
    spec_.logs = "[{target: " + log_ + ", format: \"" + kLogFormat + "\"}]";
    spec_.global_extra = "  runtime_api: [{address: " + admin_ + ", level: admin}]\n";
    std::string yaml = proxy_yaml(spec_);
    if (edit) edit(yaml);
    weir_ = WeirProcess::start(yaml);
  }

  std::vector<Row> stats() { return parse_stat_csv(weirctl({"-s", admin_, "show", "stat"}).out); }
  Row stat_row(const std::string& sv) {
    for (auto& row : stats())
      if (row["pxname"] == "be" && row["svname"] == sv) return row;
    return {};
  }
  // scur and qcur are 0 on every listed server and on BACKEND.
  bool all_idle(std::string* last) {
    bool idle = true;
    std::string seen;
    int rows = 0;
    for (auto& row : stats()) {
      if (row["pxname"] != "be") continue;
      ++rows;
      seen += row["svname"] + " scur=" + row["scur"] + " qcur=" + row["qcur"] + "; ";
      if (row["scur"] != "0" || row["qcur"] != "0") idle = false;
    }
    *last = seen;
    return idle && rows > 0;
  }
  void expect_counters_return_to_zero() {
    std::string last;
    EXPECT_TRUE(wait_until([&] { return all_idle(&last); }, 20000, 50)) << last;
  }

  std::vector<LogLine> log_lines() {
    try {
      return parse_log(read_file(log_));
    } catch (const std::exception&) {
      return {};  // not created yet
    }
  }
  // The log lines whose request target contains `needle`, once there are at least n.
  std::vector<LogLine> wait_log(const std::string& needle, size_t n = 1) {
    std::vector<LogLine> found;
    wait_until(
        [&] {
          found.clear();
          for (auto& l : log_lines())
            if (l.request.find(needle) != std::string::npos) found.push_back(l);
          return found.size() >= n;
        },
        15000, 50);
    return found;
  }

  // A path that `balance: uri` sends to the origin named `want` (probed with fast
  // requests: the hash depends on the path only). Returns once weir counts nothing in
  // progress any more (it gives a slot back just after writing the response), with the
  // origins' records cleared.
  std::string path_for(const std::string& want, const std::vector<OriginServer*>& origins) {
    std::string found;
    for (int i = 0; i < 64 && found.empty(); ++i) {
      std::string path = "/k" + std::to_string(i);
      auto r = http_get(spec_.port, path);
      if (r && r->status == 200 && r->header("X-Server") == want) found = path;
    }
    std::string last;
    EXPECT_TRUE(wait_until([&] { return all_idle(&last); }, 20000, 50)) << last;
    for (OriginServer* o : origins) o->clear_records();
    return found;
  }

  std::string dir_, log_, admin_;
  ProxySpec spec_;
  std::unique_ptr<WeirProcess> weir_;
};

// ---------------------------------------------------------------------------------------------
// A crowd of non-blocking HTTP clients driven by a poll loop per thread.

struct Outcome {
  std::string target;    // the request's target, unique
  bool aborted = false;  // the client closed before the whole response arrived
  int status = 0;        // of the response, when not aborted
  std::string server;    // its X-Server
  std::string error;     // a client that should have had a response and did not
};

struct CrowdClient {
  int id = 0;
  bool aborter = false;  // closes each request after a random 0..100 ms
  bool reset = false;    // aborts with a RST (SO_LINGER 0) rather than a FIN
  int round = 0;
  int rounds = 2;
  UniqueFd fd;
  bool connecting = false;
  std::string out;
  size_t sent = 0;
  std::string in;
  Clock::time_point abort_at{};
  bool finished = false;
};

std::string crowd_target(int id, int round) {
  return "/q/c" + std::to_string(id) + "r" + std::to_string(round) + "?delay=50";
}

// Runs the clients [first, first + n) to completion; returns one outcome per request.
std::vector<Outcome> run_crowd(uint16_t port, int first, int n, uint32_t seed,
                               Clock::time_point deadline) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> abort_ms(0, 100);
  std::vector<CrowdClient> clients(static_cast<size_t>(n));
  std::vector<Outcome> outcomes;

  auto open = [&](CrowdClient& c) -> bool {
    c.fd = UniqueFd(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!c.fd) return false;
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int r = ::connect(c.fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a);
    if (r != 0 && errno != EINPROGRESS) return false;
    c.connecting = r != 0;
    return true;
  };
  // Prepares round c.round; a client that does not abort keeps its connection
  // between its two requests (keep-alive), an aborting one connects anew.
  auto begin_round = [&](CrowdClient& c) {
    bool last = c.round + 1 == c.rounds;
    c.out = "GET " + crowd_target(c.id, c.round) + " HTTP/1.1\r\nHost: crowd\r\n" +
            (last || c.aborter ? "Connection: close\r\n" : "") + "\r\n";
    c.sent = 0;
    c.in.clear();
    c.abort_at = Clock::time_point::max();
    if (!c.fd && !open(c)) {
      outcomes.push_back({crowd_target(c.id, c.round), false, 0, "", "cannot connect"});
      c.finished = true;
    }
  };
  auto next_round = [&](CrowdClient& c, bool keep_connection) {
    if (!keep_connection) c.fd.reset();
    if (++c.round >= c.rounds) {
      c.fd.reset();
      c.finished = true;
      return;
    }
    begin_round(c);
  };
  auto fail = [&](CrowdClient& c, const std::string& why) {
    outcomes.push_back({crowd_target(c.id, c.round), false, 0, "", why});
    next_round(c, false);
  };
  // A complete response in c.in? Fills status/server.
  auto complete = [](const std::string& in, int* status, std::string* server, bool* close) {
    size_t end = in.find("\r\n\r\n");
    if (end == std::string::npos || in.size() < 12) return false;
    *status = std::atoi(in.c_str() + 9);
    size_t length = 0;
    *close = false;
    size_t pos = in.find("\r\n") + 2;
    while (pos < end) {
      size_t eol = in.find("\r\n", pos);
      std::string line = in.substr(pos, eol - pos);
      pos = eol + 2;
      size_t colon = line.find(':');
      if (colon == std::string::npos) continue;
      std::string name = ascii_lower(line.substr(0, colon));
      std::string value(trim_ows(std::string_view(line).substr(colon + 1)));
      if (name == "content-length") length = static_cast<size_t>(std::atoll(value.c_str()));
      if (name == "x-server") *server = value;
      if (name == "connection" && ascii_lower(value) == "close") *close = true;
    }
    return in.size() >= end + 4 + length;
  };

  for (int i = 0; i < n; ++i) {
    CrowdClient& c = clients[static_cast<size_t>(i)];
    c.id = first + i;
    c.aborter = c.id % 3 == 0;  // a third of the clients
    c.reset = (c.id / 3) % 2 == 0;
    begin_round(c);
  }

  std::vector<pollfd> fds;
  std::vector<CrowdClient*> owners;
  for (;;) {
    fds.clear();
    owners.clear();
    auto now = Clock::now();
    auto wake = now + std::chrono::milliseconds(50);
    for (CrowdClient& c : clients) {
      if (c.finished) continue;
      short ev = c.connecting || c.sent < c.out.size() ? POLLOUT : POLLIN;
      fds.push_back({c.fd.get(), ev, 0});
      owners.push_back(&c);
      wake = std::min(wake, c.abort_at);
    }
    if (fds.empty()) break;
    if (now > deadline) {
      for (CrowdClient* c : owners) {
        outcomes.push_back({crowd_target(c->id, c->round), false, 0, "", "no response in time"});
        c->finished = true;
      }
      break;
    }
    int timeout = static_cast<int>(std::max<int64_t>(
        0, std::chrono::duration_cast<std::chrono::milliseconds>(wake - now).count() + 1));
    int r = ::poll(fds.data(), fds.size(), timeout);
    if (r < 0 && errno != EINTR) break;
    now = Clock::now();
    for (size_t i = 0; i < fds.size(); ++i) {
      CrowdClient& c = *owners[i];
      if (c.finished) continue;
      short re = r > 0 ? fds[i].revents : 0;
      if (re != 0 && c.connecting) {
        int err = 0;
        socklen_t len = sizeof err;
        ::getsockopt(c.fd.get(), SOL_SOCKET, SO_ERROR, &err, &len);
        if (err != 0) {
          fail(c, std::string("connect: ") + std::strerror(err));
          continue;
        }
        c.connecting = false;
      }
      if (!c.connecting && c.sent < c.out.size() && re != 0) {
        ssize_t w = ::send(c.fd.get(), c.out.data() + c.sent, c.out.size() - c.sent, MSG_NOSIGNAL);
        if (w < 0 && errno != EAGAIN && errno != EINTR) {
          fail(c, std::string("send: ") + std::strerror(errno));
          continue;
        }
        if (w > 0) c.sent += static_cast<size_t>(w);
        if (c.sent == c.out.size() && c.aborter) {
          c.abort_at = Clock::now() + std::chrono::milliseconds(abort_ms(rng));
        }
        continue;
      }
      if (c.sent == c.out.size() && (re & (POLLIN | POLLHUP | POLLERR))) {
        char buf[4096];
        ssize_t got = ::recv(c.fd.get(), buf, sizeof buf, 0);
        if (got > 0) c.in.append(buf, static_cast<size_t>(got));
        int status = 0;
        std::string server;
        bool close = false;
        if (complete(c.in, &status, &server, &close)) {
          // A response that beat the abort timer counts as a normal request.
          outcomes.push_back({crowd_target(c.id, c.round), false, status, server, ""});
          next_round(c, !close && !c.aborter);
          continue;
        }
        if (got == 0 || (got < 0 && errno != EAGAIN && errno != EINTR)) {
          fail(c, "connection closed before a whole response (" + std::to_string(c.in.size()) +
                      " bytes)");
          continue;
        }
      }
      if (c.aborter && now >= c.abort_at) {
        if (c.reset) {
          linger lg{1, 0};
          ::setsockopt(c.fd.get(), SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
        }
        outcomes.push_back({crowd_target(c.id, c.round), true, 0, "", ""});
        next_round(c, false);
      }
    }
  }
  return outcomes;
}

// 1. 200 clients at once against two servers that each take at most 5 requests at
// once (50 ms each). Each client makes two requests (400 in all): two thirds on one
// keep-alive connection; the other third connect for each request and give up 0..100 ms
// after sending it (half with a RST, half with a FIN: either cancels the request in weir,
// abortonclose being on by default), mostly while queued.
// `timeouts: {queue: 60s}` is generous on purpose: no request may time out in the
// queue, so every request that was not aborted must get a 200 (a 503 would fail).
TEST_F(Queue, ConcurrencyNeverExceedsMaxconnAndCountersReturnToZero) {
  OriginServer a("a"), b("b");
  spec_.server_options = "maxconn: 5";
  spec_.backend_timeouts = "queue: 60s, server: 60s";
  start({&a, &b});
  ASSERT_TRUE(weir_);

  constexpr int kClients = 200;
  constexpr int kThreads = 4;
  const auto deadline = Clock::now() + std::chrono::seconds(90);
  std::vector<std::future<std::vector<Outcome>>> parts;
  for (int t = 0; t < kThreads; ++t) {
    int per = kClients / kThreads;
    parts.push_back(std::async(std::launch::async, [this, t, per, deadline] {
      return run_crowd(spec_.port, t * per, per, 12345u + static_cast<uint32_t>(t), deadline);
    }));
  }
  std::vector<Outcome> outcomes;
  for (auto& p : parts) {
    auto part = p.get();
    outcomes.insert(outcomes.end(), part.begin(), part.end());
  }
  ASSERT_EQ(outcomes.size(), static_cast<size_t>(kClients * 2));

  // What the servers saw: never more than maxconn requests at once.
  EXPECT_LE(a.peak_concurrent_requests(), 5);
  EXPECT_LE(b.peak_concurrent_requests(), 5);
  EXPECT_GE(a.peak_concurrent_requests(), 1);
  EXPECT_GE(b.peak_concurrent_requests(), 1);

  // Every request that was not aborted got its 200.
  std::set<std::string> completed, aborted;
  int failures = 0;
  for (const Outcome& o : outcomes) {
    if (o.aborted) {
      aborted.insert(o.target);
      continue;
    }
    if (!o.error.empty() || o.status != 200 || (o.server != "a" && o.server != "b")) {
      if (++failures <= 10) {
        ADD_FAILURE() << o.target << ": status " << o.status << " server '" << o.server << "' "
                      << o.error;
      }
      continue;
    }
    completed.insert(o.target);
  }
  EXPECT_EQ(failures, 0);
  EXPECT_GT(aborted.size(), 0u);
  EXPECT_GT(completed.size(), static_cast<size_t>(kClients));

  // The access log agrees: one 200 line per completed request, on s1 or s2, no queue
  // timeout anywhere; aborted requests (when they were logged at all) show a client
  // abort or a normal end (answered before the client left), never a 5xx.
  std::map<std::string, std::vector<LogLine>> by_target;
  wait_until(
      [&] {
        by_target.clear();
        for (auto& l : log_lines()) by_target[l.target()].push_back(l);
        return std::all_of(completed.begin(), completed.end(),
                           [&](const std::string& t) { return by_target.count(t) > 0; });
      },
      15000, 100);
  int log_problems = 0;
  auto report = [&](const std::string& what) {
    if (++log_problems <= 10) ADD_FAILURE() << what;
  };
  for (const std::string& t : completed) {
    auto it = by_target.find(t);
    if (it == by_target.end() || it->second.size() != 1) {
      report(t + ": expected one log line, found " +
             std::to_string(it == by_target.end() ? 0 : it->second.size()));
      continue;
    }
    const LogLine& l = it->second[0];
    if (l.status != "200" || l.term != "--" || (l.server != "s1" && l.server != "s2")) {
      report("completed request logged as " + describe(l));
    }
  }
  for (auto& [t, lines] : by_target) {
    if (lines.size() > 1) report(t + ": " + std::to_string(lines.size()) + " log lines");
    for (const LogLine& l : lines) {
      if (l.term == "sQ" || l.term == "SQ" || l.status.starts_with("5")) {
        report("unexpected error: " + describe(l));
      }
      if (aborted.count(t) && l.term != "--" && l.term[0] != 'C') report("aborted: " + describe(l));
    }
  }
  EXPECT_EQ(log_problems, 0);

  std::cout << "[ crowd    ] " << completed.size() << " requests completed, " << aborted.size()
            << " aborted; peak requests at once on a " << a.peak_concurrent_requests() << ", b "
            << b.peak_concurrent_requests() << std::endl;

  // Once the load is over, nothing is left in progress or queued anywhere.
  expect_counters_return_to_zero();
  EXPECT_TRUE(
      wait_until([&] { return a.current_requests() == 0 && b.current_requests() == 0; }, 20000));
  for (const char* sv : {"s1", "s2"}) {
    Row row = stat_row(sv);
    ASSERT_FALSE(row.empty()) << sv;
    EXPECT_LE(std::stoi(row["smax"]), 5) << sv;
    EXPECT_EQ(row["slim"], "5") << sv;
  }
  Row be = stat_row("BACKEND");
  // 200 clients for 10 slots: requests waited in the backend's queue.
  EXPECT_GE(std::stoi(be["qmax"]), 1);
  EXPECT_LE(std::stoi(be["smax"]), 10);
}

// 2. A request that waits longer than `timeouts.queue` gets a 503, logged with sQ
// and the time it waited.
TEST_F(Queue, QueueTimeoutAnswers503WithSQ) {
  OriginServer a("a");
  spec_.server_options = "maxconn: 1";
  spec_.backend_timeouts = "queue: 300ms";
  start({&a});
  ASSERT_TRUE(weir_);

  auto slow =
      std::async(std::launch::async, [this] { return http_get(spec_.port, "/slow?delay=3000"); });
  ASSERT_TRUE(wait_until([&] { return a.current_requests() == 1; }, 10000));
  auto r = http_get(spec_.port, "/waits", 20000);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 503);
  // The waiter left the queue before its 503 was written.
  EXPECT_EQ(stat_row("BACKEND")["qcur"], "0");
  auto lines = wait_log("/waits");
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0].status, "503") << describe(lines[0]);
  EXPECT_EQ(lines[0].term, "sQ") << describe(lines[0]);
  EXPECT_GE(std::stoi(lines[0].tw), 250) << describe(lines[0]);
  EXPECT_EQ(lines[0].backend, "be");
  EXPECT_EQ(lines[0].bq, "0") << describe(lines[0]);  // it left the queue before the line

  auto s = slow.get();
  ASSERT_TRUE(s);
  EXPECT_EQ(s->status, 200);
  expect_counters_return_to_zero();
  EXPECT_EQ(stat_row("BACKEND")["qmax"], "1");
  EXPECT_EQ(a.peak_concurrent_requests(), 1);
  auto after = http_get(spec_.port, "/after");
  ASSERT_TRUE(after);
  EXPECT_EQ(after->status, 200);
}

// 3. balance uri with maxconn 1 and maxqueue 1: a request whose server is full
// waits in that server's queue; when that queue is full too it goes to another
// server with a free slot; when there is none, 503 with SQ.
TEST_F(Queue, MaxqueueOverflowGoesToAFreeServerThenSQ) {
  OriginServer a("a"), b("b");
  spec_.server_options = "maxconn: 1, maxqueue: 1";
  spec_.backend_extra = "    balance: uri\n";
  spec_.backend_timeouts = "queue: 30s";
  start({&a, &b});
  ASSERT_TRUE(weir_);
  const std::string pa = path_for("a", {&a, &b});
  ASSERT_FALSE(pa.empty());
  EXPECT_EQ(stat_row("s1")["qlimit"], "1");

  // Hold A.
  auto hold_a = std::async(std::launch::async,
                           [&] { return http_get(spec_.port, pa + "?delay=6000&n=1", 30000); });
  ASSERT_TRUE(wait_until([&] { return a.current_requests() == 1 && stat_row("s1")["scur"] == "1"; },
                         10000));
  // One more for A waits in A's own queue (not the backend's), although B is free.
  auto queued_a =
      std::async(std::launch::async, [&] { return http_get(spec_.port, pa + "?n=2", 30000); });
  ASSERT_TRUE(wait_until([&] { return stat_row("s1")["qcur"] == "1"; }, 10000));
  EXPECT_EQ(stat_row("BACKEND")["qcur"], "0");
  EXPECT_EQ(b.requests().size(), 0u);
  // A's queue is full: the next one for A goes to B, which has a free slot (and holds it).
  auto overflow = std::async(std::launch::async,
                             [&] { return http_get(spec_.port, pa + "?delay=6000&n=3", 30000); });
  ASSERT_TRUE(wait_until([&] { return stat_row("s2")["scur"] == "1"; }, 10000));
  ASSERT_TRUE(b.wait_for_requests(1, 10000));
  EXPECT_NE(b.requests()[0].target.find("n=3"), std::string::npos) << b.requests()[0].target;
  // Now B is full too: no slot anywhere and A's queue is full -> 503 SQ at once.
  auto refused = http_get(spec_.port, pa + "?n=4", 30000);
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status, 503);
  auto lines = wait_log("n=4");
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0].term, "SQ") << describe(lines[0]);
  EXPECT_EQ(lines[0].status, "503") << describe(lines[0]);

  auto r1 = hold_a.get(), r2 = queued_a.get(), r3 = overflow.get();
  ASSERT_TRUE(r1 && r2 && r3);
  EXPECT_EQ(r1->status, 200);
  EXPECT_EQ(r1->header("X-Server"), "a");
  EXPECT_EQ(r2->status, 200);
  EXPECT_EQ(r2->header("X-Server"), "a");  // it waited for its own server
  EXPECT_EQ(r3->status, 200);
  EXPECT_EQ(r3->header("X-Server"), "b");
  auto l2 = wait_log("n=2");
  ASSERT_EQ(l2.size(), 1u);
  EXPECT_EQ(l2[0].server, "s1") << describe(l2[0]);
  EXPECT_EQ(l2[0].term, "--") << describe(l2[0]);
  auto l3 = wait_log("n=3");
  ASSERT_EQ(l3.size(), 1u);
  EXPECT_EQ(l3[0].server, "s2") << describe(l3[0]);
  expect_counters_return_to_zero();
  EXPECT_EQ(stat_row("s1")["qmax"], "1");
  EXPECT_EQ(a.peak_concurrent_requests(), 1);
  EXPECT_EQ(b.peak_concurrent_requests(), 1);
}

// 4. A server put in maint while requests wait in its own queue: they move to
// the other server; once the server has drained it can be deleted.
TEST_F(Queue, MaintMovesWaitersToOtherServersThenDelete) {
  OriginServer a("a"), b("b");
  spec_.server_options = "maxconn: 1";
  spec_.backend_extra = "    balance: uri\n";
  spec_.backend_timeouts = "queue: 30s";
  start({&a, &b});
  ASSERT_TRUE(weir_);
  const std::string pa = path_for("a", {&a, &b});
  ASSERT_FALSE(pa.empty());

  auto slow = std::async(std::launch::async,
                         [&] { return http_get(spec_.port, pa + "?delay=6000&w=0", 30000); });
  ASSERT_TRUE(wait_until([&] { return a.current_requests() == 1 && stat_row("s1")["scur"] == "1"; },
                         10000));
  std::vector<std::future<std::optional<HttpResponse>>> waiters;
  for (int i = 1; i <= 3; ++i) {
    waiters.push_back(std::async(std::launch::async, [&, i] {
      return http_get(spec_.port, pa + "?w=" + std::to_string(i), 30000);
    }));
  }
  ASSERT_TRUE(wait_until([&] { return stat_row("s1")["qcur"] == "3"; }, 10000));
  EXPECT_EQ(b.requests().size(), 0u);

  CommandResult r = weirctl({"-s", admin_, "set", "server", "be/s1", "state", "maint"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  // The waiters are served by s2, one at a time (its maxconn is 1).
  for (auto& w : waiters) {
    auto resp = w.get();
    ASSERT_TRUE(resp);
    EXPECT_EQ(resp->status, 200);
    EXPECT_EQ(resp->header("X-Server"), "b");
  }
  // s1 still has its slow request (unless it ended meanwhile): it cannot be deleted yet.
  if (a.current_requests() == 1) {
    r = weirctl({"-s", admin_, "del", "server", "be/s1"});
    if (a.current_requests() == 1) {
      EXPECT_EQ(r.exit_code, 1) << r.out;
      EXPECT_NE(r.out.find("still has 1 request"), std::string::npos) << r.out;
    }
  }
  auto s = slow.get();
  ASSERT_TRUE(s);
  EXPECT_EQ(s->status, 200);
  EXPECT_EQ(s->header("X-Server"), "a");  // maint does not cut a request in progress
  for (int i = 1; i <= 3; ++i) {
    auto lines = wait_log("?w=" + std::to_string(i));
    ASSERT_EQ(lines.size(), 1u) << i;
    EXPECT_EQ(lines[0].server, "s2") << describe(lines[0]);
    EXPECT_EQ(lines[0].status, "200") << describe(lines[0]);
    EXPECT_EQ(lines[0].term, "--") << describe(lines[0]);
  }
  expect_counters_return_to_zero();
  EXPECT_EQ(b.peak_concurrent_requests(), 1);

  r = weirctl({"-s", admin_, "del", "server", "be/s1"});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_TRUE(stat_row("s1").empty());
  EXPECT_FALSE(stat_row("s2").empty());
  auto after = http_get(spec_.port, pa);
  ASSERT_TRUE(after);
  EXPECT_EQ(after->status, 200);
  EXPECT_EQ(after->header("X-Server"), "b");
  expect_counters_return_to_zero();
}

// 5. A backup server takes traffic only while no normal server is usable.
TEST_F(Queue, BackupServerOnlyWhenNoNormalServerIsUsable) {
  OriginServer a("a"), b("b"), c("c");
  start({&a, &b, &c}, [&](std::string& yaml) {
    const std::string s3 = "s3: {address: \"" + c.address() + "\"";
    size_t at = yaml.find(s3);
    ASSERT_NE(at, std::string::npos) << yaml;
    yaml.insert(at + s3.size(), ", backup: true");
  });
  ASSERT_TRUE(weir_);
  auto servers_of = [&](int n) {
    std::string seen;
    for (int i = 0; i < n; ++i) {
      auto r = http_get(spec_.port, "/");
      seen += r ? (r->status == 200 ? r->header("X-Server") : "<" + std::to_string(r->status) + ">")
                : "?";
    }
    return seen;
  };
  EXPECT_EQ(stat_row("s3")["bck"], "1");
  EXPECT_EQ(stat_row("s1")["bck"], "0");
  EXPECT_EQ(stat_row("BACKEND")["act"], "2");
  EXPECT_EQ(stat_row("BACKEND")["bck"], "1");

  std::string mix = servers_of(8);
  EXPECT_EQ(mix.find_first_not_of("ab"), std::string::npos) << mix;
  EXPECT_EQ(c.requests_served(), 0);

  // s1 alone in maint: s2 takes everything, still not the backup.
  ASSERT_EQ(weirctl({"-s", admin_, "disable", "server", "be/s1"}).exit_code, 0);
  EXPECT_EQ(servers_of(4), "bbbb");
  EXPECT_EQ(c.requests_served(), 0);
  // Both normal servers in maint: the backup takes everything.
  ASSERT_EQ(weirctl({"-s", admin_, "set", "server", "be/s2", "state", "maint"}).exit_code, 0);
  EXPECT_EQ(servers_of(4), "cccc");
  Row be = stat_row("BACKEND");
  EXPECT_EQ(be["act"], "0");
  EXPECT_EQ(be["bck"], "1");
  EXPECT_EQ(be["status"], "UP");
  EXPECT_EQ(stat_row("s3")["stot"], "4");

  // s1 comes back: traffic returns to it, none to the backup.
  ASSERT_EQ(weirctl({"-s", admin_, "enable", "server", "be/s1"}).exit_code, 0);
  int c_before = c.requests_served();
  EXPECT_EQ(servers_of(4), "aaaa");
  EXPECT_EQ(c.requests_served(), c_before);
  EXPECT_EQ(stat_row("s3")["stot"], "4");
  expect_counters_return_to_zero();
}

// 6. leastconn: while s1 is busy with a slow request, the next requests go to s2.
TEST_F(Queue, LeastconnAvoidsTheBusyServer) {
  OriginServer a("a"), b("b");
  spec_.backend_extra = "    balance: leastconn\n";
  start({&a, &b});
  ASSERT_TRUE(weir_);
  EXPECT_EQ(stat_row("BACKEND")["algo"], "leastconn");

  auto slow = std::async(std::launch::async,
                         [&] { return http_get(spec_.port, "/slow?delay=4000", 30000); });
  ASSERT_TRUE(wait_until([&] { return a.current_requests() + b.current_requests() == 1; }, 10000));
  OriginServer& busy = a.current_requests() == 1 ? a : b;
  const std::string idle = &busy == &a ? "b" : "a";
  const std::string idle_sv = idle == "a" ? "s1" : "s2";
  int checked = 0;
  for (int i = 0; i < 6; ++i) {
    // weir gives a request's slot back just after writing the response, so the client
    // may send its next request a moment before: wait until weir counts the idle server
    // as idle again, or the two would be tied (1 and 1) and take turns.
    ASSERT_TRUE(wait_until([&] { return stat_row(idle_sv)["scur"] == "0"; }, 10000));
    auto r = http_get(spec_.port, "/fast");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
    // Only while the slow request is still in progress does the busy server count as loaded.
    if (busy.current_requests() == 1) {
      EXPECT_EQ(r->header("X-Server"), idle) << i;
      ++checked;
    }
  }
  EXPECT_GE(checked, 1);
  auto s = slow.get();
  ASSERT_TRUE(s);
  EXPECT_EQ(s->header("X-Server"), busy.name());
  // Idle again: both take turns.
  std::set<std::string> seen;
  for (int i = 0; i < 4; ++i) {
    auto r = http_get(spec_.port, "/again");
    ASSERT_TRUE(r);
    seen.insert(r->header("X-Server"));
  }
  EXPECT_EQ(seen.size(), 2u);
  expect_counters_return_to_zero();
}

// 7a. balance url_param(user): one user always reaches the same server.
TEST_F(Queue, UrlParamHashPinsEachUser) {
  OriginServer a("a"), b("b"), c("c");
  spec_.backend_extra = "    balance: url_param(user)\n";
  start({&a, &b, &c});
  ASSERT_TRUE(weir_);
  std::set<std::string> used;
  for (int u = 0; u < 12; ++u) {
    std::set<std::string> servers;
    for (int i = 0; i < 4; ++i) {
      auto r = http_get(spec_.port, "/p" + std::to_string(i) + "?x=" + std::to_string(i) +
                                        "&user=u" + std::to_string(u));
      ASSERT_TRUE(r);
      ASSERT_EQ(r->status, 200);
      servers.insert(r->header("X-Server"));
    }
    EXPECT_EQ(servers.size(), 1u) << "user u" << u;
    used.insert(servers.begin(), servers.end());
  }
  EXPECT_GE(used.size(), 2u);  // the users spread over the servers
  // Without the parameter: round robin.
  std::set<std::string> rr;
  for (int i = 0; i < 3; ++i) {
    auto r = http_get(spec_.port, "/nouser");
    ASSERT_TRUE(r);
    rr.insert(r->header("X-Server"));
  }
  EXPECT_EQ(rr.size(), 3u);
}

// 7b. balance hdr(X-Tenant): one tenant always reaches the same server.
TEST_F(Queue, HdrHashPinsEachTenant) {
  OriginServer a("a"), b("b"), c("c");
  spec_.backend_extra = "    balance: hdr(X-Tenant)\n";
  start({&a, &b, &c});
  ASSERT_TRUE(weir_);
  std::set<std::string> used;
  for (int t = 0; t < 12; ++t) {
    std::set<std::string> servers;
    HttpClient client(spec_.port);  // keep-alive: each request is balanced on its own
    for (int i = 0; i < 4; ++i) {
      auto r = client.request("GET", "/t" + std::to_string(i),
                              {{"X-Tenant", "tenant-" + std::to_string(t)}});
      ASSERT_TRUE(r);
      ASSERT_EQ(r->status, 200);
      servers.insert(r->header("X-Server"));
    }
    EXPECT_EQ(servers.size(), 1u) << "tenant " << t;
    used.insert(servers.begin(), servers.end());
  }
  EXPECT_GE(used.size(), 2u);
}

// One HTTP request over a plain TCP connection from a chosen local address
// (127.0.0.N); returns the X-Server of the answer ("" on failure).
std::string server_from(uint16_t port, const std::string& local) {
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) return "";
  sockaddr_in src{};
  src.sin_family = AF_INET;
  ::inet_pton(AF_INET, local.c_str(), &src.sin_addr);
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&src), sizeof src) != 0) return "";
  sockaddr_in dst{};
  dst.sin_family = AF_INET;
  dst.sin_port = htons(port);
  dst.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&dst), sizeof dst) != 0) return "";
  timeval tv{10, 0};
  ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  std::string req = "GET / HTTP/1.1\r\nHost: tcp\r\nConnection: close\r\n\r\n";
  if (::send(fd.get(), req.data(), req.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(req.size()))
    return "";
  std::string in;
  char buf[4096];
  for (;;) {
    ssize_t n = ::recv(fd.get(), buf, sizeof buf, 0);
    if (n <= 0) break;
    in.append(buf, static_cast<size_t>(n));
  }
  size_t at = in.find("\r\nX-Server: ");
  if (at == std::string::npos) return "";
  at += 12;
  return in.substr(at, in.find("\r\n", at) - at);
}

// 7c. balance source in tcp mode: a client address always reaches the same server.
TEST_F(Queue, SourceHashPinsEachClientAddressInTcpMode) {
  OriginServer a("a"), b("b"), c("c");
  spec_.mode = "tcp";
  spec_.backend_extra = "    balance: source\n";
  start({&a, &b, &c});
  ASSERT_TRUE(weir_);
  std::set<std::string> used;
  for (int h = 1; h <= 12; ++h) {
    const std::string local = "127.0.0." + std::to_string(h);
    std::set<std::string> servers;
    for (int i = 0; i < 3; ++i) servers.insert(server_from(spec_.port, local));
    EXPECT_EQ(servers.size(), 1u) << local;
    EXPECT_EQ(servers.count(""), 0u) << local;
    used.insert(servers.begin(), servers.end());
  }
  EXPECT_GE(used.size(), 2u);
  expect_counters_return_to_zero();
}

}  // namespace
}  // namespace weir::test
