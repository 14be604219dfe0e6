// weir short of resources, as an operator meets it (issue 13, item 3): a low
// open-file limit, a worker out of file descriptors, a full disk under the
// access log and the state file, fork() failing at a reload, thousands of
// slowloris clients, and a client that reads a big response slowly (the
// buffer pool running dry is in resources_smoke_test.cpp, which the sanitizers
// run too). Each test says what must hold; none measures a duration.

#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <thread>

#include "tests/support/client_swarm.h"
#include "tests/support/http_client.h"
#include "tests/support/launcher.h"
#include "tests/support/origin.h"

namespace weir::test {
namespace {

using Clock = std::chrono::steady_clock;

// CPU time (user + system, all threads) a process has used, in milliseconds.
int64_t cpu_ms(pid_t pid) {
  std::string stat = read_file("/proc/" + std::to_string(pid) + "/stat");
  // Fields after the command name (which may hold spaces): state is field 3,
  // utime and stime fields 14 and 15.
  std::string rest = stat.substr(stat.rfind(')') + 2);
  std::vector<std::string> f;
  size_t pos = 0;
  while (pos < rest.size()) {
    size_t sp = rest.find(' ', pos);
    if (sp == std::string::npos) sp = rest.size();
    f.push_back(rest.substr(pos, sp - pos));
    pos = sp + 1;
  }
  const int64_t ticks = std::stoll(f.at(11)) + std::stoll(f.at(12));
  return ticks * 1000 / sysconf(_SC_CLK_TCK);
}

// Resident memory of a process, in KiB.
int64_t rss_kib(pid_t pid) {
  std::string status = read_file("/proc/" + std::to_string(pid) + "/status");
  size_t at = status.find("VmRSS:");
  return at == std::string::npos ? -1 : std::stoll(status.substr(at + 6));
}

// Wall and worker CPU time over a window: a worker that only waits (clients in
// the listen backlog, requests at a slow server) uses next to no CPU; one
// caught in a busy loop (a readable listener it never accepts from, a
// descriptor error retried at once) burns a whole core for as long as the
// window lasts. The bound is a fifth of the wall time: an idle worker stays
// under 1%, and a spinning thread gets far more than a fifth of a core even
// when the test machine is heavily shared. It is a ratio of the same window,
// not a duration, so a slow machine cannot make it fail.
struct CpuWindow {
  pid_t pid;
  int64_t cpu0;
  Clock::time_point t0;
  explicit CpuWindow(pid_t p) : pid(p), cpu0(cpu_ms(p)), t0(Clock::now()) {}
  // CPU used since the start, and the wall time it was used in.
  std::pair<int64_t, int64_t> read() const {
    int64_t wall = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count();
    return {cpu_ms(pid) - cpu0, wall};
  }
};

// An open-file limit for process `pid` that leaves it exactly `free` new
// descriptors: the limit bounds descriptor numbers, and a new descriptor takes
// the lowest free number. Read once the open ones have stopped changing
// (connections of a moment ago are still being closed).
rlim_t limit_leaving(pid_t pid, size_t free) {
  auto open_fds = [pid] {
    std::set<long> fds;
    for (const auto& e :
         std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/fd")) {
      fds.insert(std::stol(e.path().filename().string()));
    }
    return fds;
  };
  std::set<long> fds = open_fds();
  for (int i = 0; i < 50; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    std::set<long> now = open_fds();
    if (now == fds) break;
    fds = std::move(now);
  }
  long n = 0;
  for (size_t left = free + 1;; ++n) {
    if (!fds.count(n) && --left == 0) return static_cast<rlim_t>(n);
  }
}

std::string get_request(const std::string& target) {
  return "GET " + target + " HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n";
}

// Raises this test process's own open-file limit (for thousands of clients).
void raise_own_nofile(rlim_t want) {
  rlimit rl{};
  getrlimit(RLIMIT_NOFILE, &rl);
  if (rl.rlim_cur >= want) return;
  rl.rlim_cur = std::min(want, rl.rlim_max);
  setrlimit(RLIMIT_NOFILE, &rl);
}

// One http frontend in front of one server; `extra` goes into global:,
// `frontend_extra` into the frontend (indented 4 spaces).
std::string http_frontend_yaml(uint16_t port, const std::string& server, const std::string& extra,
                               const std::string& frontend_extra = "") {
  return "global:\n"
         "  threads: 2\n" +
         extra +
         "frontends:\n"
         "  web:\n"
         "    bind: [{address: \"127.0.0.1:" +
         std::to_string(port) +
         "\", backlog: 4096}]\n"
         "    default_backend: app\n" +
         frontend_extra +
         "backends:\n"
         "  app:\n"
         "    timeouts: {connect: 5s, server: 30s, queue: 30s}\n"
         "    servers:\n"
         "      s1: \"" +
         server + "\"\n";
}

// weir with a runtime API at `api`, started under an open-file limit of
// `nofile` (soft and hard, as after `ulimit -n`).
std::unique_ptr<WeirProcess> start_limited(uint16_t port, const OriginServer& origin,
                                           const std::string& api, uint64_t nofile,
                                           const std::string& extra = "") {
  WeirOptions opts;
  opts.nofile = nofile;
  return WeirProcess::start(
      http_frontend_yaml(port, origin.address(),
                         extra + "  runtime_api: [" + yaml_quote(api) + "]\n"),
      opts);
}

// --- the open-file limit -------------------------------------------------------

// Issue 14: without global.maxconn, a start on a stock machine says which
// maxconn it runs with and warns about nothing.
TEST(Resources, DefaultMaxconnFitsTheLimitWithoutAWarning) {
  OriginServer origin("o");
  const uint16_t port = free_tcp_port();
  const std::string api = make_temp_dir() + "/api.sock";
  auto weir = WeirProcess::start(
      http_frontend_yaml(port, origin.address(), "  runtime_api: [" + yaml_quote(api) + "]\n"));
  ASSERT_NE(weir, nullptr);
  const std::string log = weir->stderr_text();
  EXPECT_EQ(log.find("[warning]"), std::string::npos) << log;
  std::smatch m;
  ASSERT_TRUE(std::regex_search(log, m, std::regex(R"(maxconn (\d+): the )"))) << log;
  const std::string info = unix_command(api, "show info");
  EXPECT_EQ(info_number(info, "Maxconn"), std::stoll(m[1].str())) << info;
  rlimit rl{};
  getrlimit(RLIMIT_NOFILE, &rl);
  // weir may have raised its soft limit up to the hard one; 2 per connection at least.
  EXPECT_LE(2 * info_number(info, "Maxconn"), static_cast<int64_t>(rl.rlim_max)) << info;
  EXPECT_LE(info_number(info, "Maxsock"), info_number(info, "Ulimit-n")) << info;
  EXPECT_EQ(http_get(port, "/")->status, 200);
}

// An explicit maxconn the limit cannot hold is lowered, with a warning that
// says what to do; a limit that cannot hold one connection stops the start.
TEST(Resources, ExplicitMaxconnAboveTheLimitIsLoweredWithAdvice) {
  OriginServer origin("o");
  const uint16_t port = free_tcp_port();
  const std::string api = make_temp_dir() + "/api.sock";
  auto weir = start_limited(port, origin, api, 256, "  maxconn: 5000\n");
  ASSERT_NE(weir, nullptr);
  EXPECT_TRUE(weir->wait_for_stderr(
      R"(\[warning\].*global.maxconn 5000 needs \d+ open files but the limit is 256 \(hard )"
      R"(limit 256\): weir runs with maxconn \d+; raise LimitNOFILE=.*ulimit -n)",
      5000))
      << weir->stderr_text();
  const int64_t maxconn = info_number(unix_command(api, "show info"), "Maxconn");
  EXPECT_GT(maxconn, 0);
  EXPECT_LT(maxconn, 128);
  EXPECT_EQ(http_get(port, "/")->status, 200);

  WeirOptions tiny;
  tiny.nofile = 40;
  tiny.wait_ready = false;
  auto refused =
      WeirProcess::start(http_frontend_yaml(free_tcp_port(), origin.address(), ""), tiny);
  ASSERT_NE(refused, nullptr);
  EXPECT_EQ(refused->wait_exit(10000), 1);
  EXPECT_NE(refused->stderr_text().find("the open-file limit of 40 (hard limit 40) is too low"),
            std::string::npos)
      << refused->stderr_text();
}

// `ulimit -n 256` (soft and hard) and 1,000 clients at once: maxconn is what
// 256 descriptors hold; the clients beyond it wait in the listen backlog and
// are served as others finish; nobody is refused, nobody gets a 5xx (no
// server connection lacks its descriptor), and the worker does not spin
// while they wait.
TEST(Resources, ThousandClientsUnderUlimit256AllServedWithoutSpinning) {
  raise_own_nofile(4096);
  OriginServer origin("o");
  const uint16_t port = free_tcp_port();
  const std::string api = make_temp_dir() + "/api.sock";
  auto weir = start_limited(port, origin, api, 256);
  ASSERT_NE(weir, nullptr);
  EXPECT_EQ(weir->stderr_text().find("[warning]"), std::string::npos) << weir->stderr_text();
  EXPECT_TRUE(
      weir->wait_for_stderr(R"(maxconn \d+: the most the open-file limit of 256 holds)", 1000));
  const int64_t maxconn = info_number(unix_command(api, "show info"), "Maxconn");
  ASSERT_GT(maxconn, 10);
  ASSERT_LT(maxconn, 128);

  // First, clients whose requests the server holds: they fill maxconn.
  const size_t holders = static_cast<size_t>(maxconn);
  SwarmOptions slow;
  slow.request = get_request("/?delay=2500");
  ClientSwarm first(port, holders, slow);
  ASSERT_TRUE(wait_until([&] { return origin.current_requests() >= maxconn; }, 20000))
      << origin.current_requests();
  // Then the rest of the thousand, which wait in the backlog.
  SwarmOptions fast;
  fast.request = get_request("/?delay=20");
  ClientSwarm rest(port, 1000 - holders, fast);
  ASSERT_TRUE(
      wait_until([&] { return rest.connected() + rest.finished() == 1000 - holders; }, 20000));
  const std::string info = unix_command(api, "show info");
  EXPECT_EQ(info_number(info, "CurrConns"), maxconn) << info;

  CpuWindow window(weir->current_worker());
  std::this_thread::sleep_for(std::chrono::milliseconds(800));
  auto [cpu, wall] = window.read();
  EXPECT_LT(cpu * 5, wall) << "worker CPU " << cpu << " ms in " << wall
                           << " ms while 1000 clients waited";

  ASSERT_TRUE(first.wait_finished(60000));
  ASSERT_TRUE(rest.wait_finished(60000));
  size_t ok = 0;
  for (ClientSwarm* s : {&first, &rest}) {
    for (const SwarmResult& r : s->results()) {
      EXPECT_TRUE(r.connected) << "connect error " << r.connect_error;
      EXPECT_FALSE(r.reset);
      EXPECT_EQ(r.status(), 200) << r.response.substr(0, 200);
      ok += r.status() == 200;
    }
  }
  EXPECT_EQ(ok, 1000u);
  EXPECT_EQ(origin.requests_served(), 1000);
  EXPECT_EQ(info_number(unix_command(api, "show info"), "FdShortages"), 0);
}

// A worker whose descriptors run out anyway (here its limit is lowered under
// it, as when something else holds them): accept fails with EMFILE; the
// clients wait in the backlog and are all answered as descriptors free up
// (by a tarpit rule, which holds each one 250 ms without a server);
// the error is logged once per 10 s however often it happens, counted in
// `show info`, and the worker does not spin on the readable listener.
TEST(Resources, OutOfDescriptorsAtAcceptIsThrottledAndDoesNotSpin) {
  const uint16_t port = free_tcp_port();
  const std::string api = make_temp_dir() + "/api.sock";
  auto weir = WeirProcess::start(
      http_frontend_yaml(port, "127.0.0.1:1", "  runtime_api: [" + yaml_quote(api) + "]\n",
                         "    http_request:\n"
                         "      - tarpit: {delay: 250ms, status: 429, body: \"held\\n\"}\n"));
  ASSERT_NE(weir, nullptr);
  const pid_t worker = weir->current_worker();
  // Room for a handful of clients beyond what the worker holds open now.
  rlimit low{};
  ASSERT_EQ(prlimit(worker, RLIMIT_NOFILE, nullptr, &low), 0);
  low.rlim_cur = limit_leaving(worker, 24);
  ASSERT_EQ(prlimit(worker, RLIMIT_NOFILE, &low, nullptr), 0) << strerror(errno);

  SwarmOptions opts;
  opts.request = get_request("/");
  ClientSwarm clients(port, 80, opts);
  ASSERT_TRUE(wait_until([&] { return clients.connected() + clients.finished() == 80; }, 20000));
  ASSERT_TRUE(weir->wait_for_stderr("out of file descriptors: accept on frontend 'web'", 10000));
  const auto first_line = Clock::now();
  CpuWindow window(worker);
  std::this_thread::sleep_for(std::chrono::milliseconds(600));
  auto [cpu, wall] = window.read();
  EXPECT_LT(cpu * 5, wall) << "worker CPU " << cpu << " ms in " << wall
                           << " ms while out of descriptors";
  ASSERT_TRUE(clients.wait_finished(60000));
  size_t answered = 0;
  for (const SwarmResult& r : clients.results()) {
    EXPECT_TRUE(r.connected);
    EXPECT_FALSE(r.reset);
    answered += r.status() == 429 && r.body() == "held\n";
  }
  EXPECT_EQ(answered, 80u);
  const int64_t shortages = info_number(unix_command(api, "show info"), "FdShortages");
  EXPECT_GE(shortages, 3);
  // One line per 10 s at most (and a machine slower than that gets more).
  const auto seconds =
      std::chrono::duration_cast<std::chrono::seconds>(Clock::now() - first_line).count();
  EXPECT_LE(count_matching_lines(weir->stderr_text(), "out of file descriptors"),
            static_cast<size_t>(1 + seconds / 10))
      << weir->stderr_text();
}

// The descriptor for a server connection missing (the worker's limit lowered
// under it so that the client's accept takes the last one): the request waits
// and tries again, holding its server slot, until timeouts.connect (503, RC);
// once a descriptor is free again it goes through. The server is not blamed.
TEST(Resources, ServerConnectionWaitsForADescriptor) {
  OriginServer origin("o");
  const uint16_t port = free_tcp_port();
  const std::string api = make_temp_dir() + "/api.sock";
  std::string yaml = http_frontend_yaml(
      port, origin.address(),
      "  runtime_api: [" + yaml_quote(api) + "]\n  log: [{target: stdout, format: text}]\n");
  yaml.replace(yaml.find("connect: 5s"), 11, "connect: 1s");
  auto weir = WeirProcess::start(yaml);
  ASSERT_NE(weir, nullptr);
  const pid_t worker = weir->current_worker();
  // The server closes after it: no idle connection is left to reuse.
  ASSERT_EQ(http_get(port, "/warm?close=1")->status, 200);
  rlimit old{};
  ASSERT_EQ(prlimit(worker, RLIMIT_NOFILE, nullptr, &old), 0);
  rlimit low{limit_leaving(worker, 1), old.rlim_max};
  ASSERT_EQ(prlimit(worker, RLIMIT_NOFILE, &low, nullptr), 0) << strerror(errno);

  auto timed_out = http_get(port, "/a");
  ASSERT_TRUE(timed_out.has_value());
  EXPECT_EQ(timed_out->status, 503);
  EXPECT_TRUE(weir->wait_for_stdout(R"("GET /a HTTP/1.1")", 5000));
  EXPECT_EQ(count_matching_lines(weir->stdout_text(), R"( 503 \d+ RC .*"GET /a)"), 1u)
      << weir->stdout_text();
  // (The line may name the accept instead: one per 10 s says it.)
  EXPECT_TRUE(weir->wait_for_stderr("out of file descriptors: ", 1000));

  HttpClient c(port);
  ASSERT_TRUE(c.send_raw(get_request("/b")));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // accepted, and waiting
  ASSERT_EQ(prlimit(worker, RLIMIT_NOFILE, &old, nullptr), 0) << strerror(errno);
  auto served = c.read_response(10000);
  ASSERT_TRUE(served.has_value());
  EXPECT_EQ(served->status, 200);
  const std::string info = unix_command(api, "show info");
  EXPECT_GE(info_number(info, "FdShortages"), 2) << info;
  auto rows = parse_stat_csv(unix_command(api, "show stat"));
  for (const auto& row : rows) {
    if (row.at("svname") != "s1") continue;
    EXPECT_EQ(row.at("econ"), "0");  // no connection error counted against the server
    EXPECT_EQ(row.at("status"), "UP");
  }
}

// --- memory --------------------------------------------------------------------

// A client that reads a 50 MB response slowly, with a small receive buffer:
// weir reads from the server only as fast as the client takes, so its memory
// stays at its buffers, and the response arrives whole.
TEST(Resources, SlowReaderHoldsWeirMemoryToItsBuffers) {
  OriginServer origin("o");
  const uint16_t port = free_tcp_port();
  auto weir = WeirProcess::start(http_frontend_yaml(port, origin.address(), ""));
  ASSERT_NE(weir, nullptr);
  const pid_t worker = weir->current_worker();
  ASSERT_EQ(http_get(port, "/?size=100000")->status, 200);  // the pool and caches warm
  const int64_t rss0 = rss_kib(worker);

  constexpr size_t kSize = 50u << 20;
  HttpClient c(port);
  const int small = 256 * 1024;
  setsockopt(c.fd(), SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
  ASSERT_TRUE(c.send_raw(get_request("/?size=" + std::to_string(kSize))));
  Sha256 sha;
  std::string head;
  size_t body = 0;
  int64_t peak = rss0;
  char buf[65536];
  int reads = 0;
  while (body < kSize) {
    pollfd p{c.fd(), POLLIN, 0};
    ASSERT_EQ(::poll(&p, 1, 30000), 1) << "after " << body << " body bytes";
    ssize_t n = ::recv(c.fd(), buf, sizeof buf, 0);
    if (n < 0 && errno == EAGAIN) continue;
    ASSERT_GT(n, 0) << "after " << body << " body bytes";
    std::string_view got(buf, static_cast<size_t>(n));
    if (head.find("\r\n\r\n") == std::string::npos) {
      head.append(got);
      size_t end = head.find("\r\n\r\n");
      if (end == std::string::npos) continue;
      got = std::string_view(head).substr(end + 4);
    }
    sha.update(got);
    body += got.size();
    // Slowly: a pause every 256 KiB read (about 25 MB/s at most), far below
    // what the server sends over loopback.
    if (++reads % 4 == 0) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
      peak = std::max(peak, rss_kib(worker));
    }
  }
  EXPECT_EQ(body, kSize);
  EXPECT_EQ(sha.hex_final(), pattern_sha256(kSize));
  EXPECT_LT(peak - rss0, 8 * 1024) << "worker RSS grew from " << rss0 << " KiB to " << peak;
}

// --- slow clients --------------------------------------------------------------

// 2,000 slowloris clients (each sends part of a request head, then a byte
// every second) do not starve 50 normal clients, which are all answered while
// the slowloris clients are connected; timeout http_request then cuts every
// slowloris connection (408).
TEST(Resources, SlowlorisClientsAreCutAndDoNotStarveOthers) {
  raise_own_nofile(8192);
  OriginServer origin("o");
  const uint16_t port = free_tcp_port();
  WeirOptions opts;
  opts.nofile = 8192;  // maxconn above 2,050 whatever the machine's limit
  auto weir =
      WeirProcess::start(http_frontend_yaml(port, origin.address(), "",
                                            "    timeouts: {http_request: 4s, client: 30s}\n"),
                         opts);
  ASSERT_NE(weir, nullptr);
  SwarmOptions loris;
  loris.request =
      "GET /slow HTTP/1.1\r\nHost: test\r\nX-Padding: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n";
  loris.first_bytes = 20;
  loris.trickle_ms = 1000;
  ClientSwarm slow(port, 2000, loris);
  ASSERT_TRUE(wait_until([&] { return slow.connected() == 2000; }, 20000))
      << slow.connected() << " connected";

  SwarmOptions normal;
  normal.request = get_request("/");
  ClientSwarm others(port, 50, normal);
  ASSERT_TRUE(others.wait_finished(20000));
  // The slowloris clients were all still connected meanwhile.
  EXPECT_EQ(slow.finished(), 0u);
  for (const SwarmResult& r : others.results()) EXPECT_EQ(r.status(), 200) << r.response;

  ASSERT_TRUE(slow.wait_finished(30000)) << slow.finished() << " of 2000 cut";
  size_t timed_out = 0;
  for (const SwarmResult& r : slow.results()) {
    EXPECT_TRUE(r.closed || r.reset);
    timed_out += r.status() == 408;
  }
  EXPECT_EQ(timed_out, 2000u);
  EXPECT_EQ(origin.requests_served(), 50);
}

// --- disk --------------------------------------------------------------------

// A tmpfs of 64 KiB mounted for the test, or nullopt when the test may not
// mount (not root, or no CAP_SYS_ADMIN in its container).
class TinyDisk {
 public:
  TinyDisk() : dir_(make_temp_dir()) {
    mounted_ = ::mount("tmpfs", dir_.c_str(), "tmpfs", 0, "size=64k") == 0;
  }
  ~TinyDisk() {
    if (mounted_) ::umount2(dir_.c_str(), MNT_DETACH);
    remove_tree(dir_);
  }
  bool mounted() const { return mounted_; }
  const std::string& dir() const { return dir_; }
  // Fills the file system to the last byte.
  void fill() {
    std::FILE* f = std::fopen((dir_ + "/filler").c_str(), "w");
    std::string block(4096, 'x');
    while (f && std::fwrite(block.data(), 1, block.size(), f) == block.size()) {
    }
    if (f) std::fclose(f);
    f = std::fopen((dir_ + "/filler2").c_str(), "w");
    while (f && std::fputc('x', f) != EOF && std::fflush(f) == 0) {
    }
    if (f) std::fclose(f);
  }
  void free_space() {
    ::unlink((dir_ + "/filler").c_str());
    ::unlink((dir_ + "/filler2").c_str());
  }

 private:
  std::string dir_;
  bool mounted_ = false;
};

// A full disk under the access log: lines are dropped and counted
// (DroppedLogs), traffic goes on; once there is room, lines are written again.
TEST(Resources, FullDiskUnderTheAccessLogCostsLinesNotTraffic) {
  OriginServer origin("o");
  TinyDisk disk;
  // Without a tmpfs, /dev/full: every write fails with ENOSPC.
  const std::string log = disk.mounted() ? disk.dir() + "/access.log" : "/dev/full";
  if (disk.mounted()) disk.fill();
  const uint16_t port = free_tcp_port();
  const std::string api = make_temp_dir() + "/api.sock";
  auto weir = WeirProcess::start(http_frontend_yaml(
      port, origin.address(),
      "  runtime_api: [" + yaml_quote(api) + "]\n  log: [" + yaml_quote(log) + "]\n"));
  ASSERT_NE(weir, nullptr);
  for (int i = 0; i < 200; ++i) {
    HttpClient c(port);
    auto r = c.request("GET", "/?size=100");
    ASSERT_TRUE(r.has_value()) << "request " << i;
    ASSERT_EQ(r->status, 200);
  }
  ASSERT_TRUE(wait_until(
      [&] { return info_number(unix_command(api, "show info"), "DroppedLogs") >= 200; }, 10000))
      << unix_command(api, "show info");
  if (!disk.mounted()) return;
  disk.free_space();
  for (int i = 0; i < 5; ++i) ASSERT_EQ(http_get(port, "/after")->status, 200);
  EXPECT_TRUE(
      wait_until([&] { return read_file(log).find("GET /after") != std::string::npos; }, 10000));
}

// A full disk under global.state_file: the write fails, the master warns once
// and counts it (`show state-file`), the server states stay in memory and
// traffic goes on; the next change after room comes back is written.
TEST(Resources, FullDiskUnderTheStateFileIsCountedAndRecovers) {
  TinyDisk disk;
  if (!disk.mounted()) GTEST_SKIP() << "cannot mount a tmpfs here (needs CAP_SYS_ADMIN)";
  OriginServer origin("o");
  const uint16_t port = free_tcp_port();
  const std::string dir = make_temp_dir();
  const std::string api = dir + "/api.sock";
  const std::string master = dir + "/master.sock";
  const std::string state = disk.dir() + "/state";
  WeirOptions opts;
  opts.extra_args = {"-S", master};
  auto weir =
      WeirProcess::start(http_frontend_yaml(port, origin.address(),
                                            "  runtime_api: [" + yaml_quote(api) +
                                                "]\n  state_file: " + yaml_quote(state) + "\n"),
                         opts);
  ASSERT_NE(weir, nullptr);
  disk.fill();
  ASSERT_EQ(weirctl({"-s", api, "set", "server", "app/s1", "weight", "7"}).exit_code, 0);
  ASSERT_TRUE(weir->wait_for_stderr(
      R"(\[warning\].*cannot write state file .*: No space left on device)", 10000))
      << weir->stderr_text();
  EXPECT_NE(unix_command(master, "show state-file").find("state: failing"), std::string::npos);
  for (int i = 0; i < 20; ++i) ASSERT_EQ(http_get(port, "/")->status, 200);
  ASSERT_EQ(weirctl({"-s", api, "set", "server", "app/s1", "weight", "8"}).exit_code, 0);
  ASSERT_TRUE(wait_until(
      [&] {
        return unix_command(master, "show state-file").find("failed: 2\n") != std::string::npos;
      },
      10000))
      << unix_command(master, "show state-file");
  EXPECT_EQ(count_matching_lines(weir->stderr_text(), "cannot write state file"), 1u);

  disk.free_space();
  ASSERT_EQ(weirctl({"-s", api, "set", "server", "app/s1", "weight", "9"}).exit_code, 0);
  ASSERT_TRUE(weir->wait_for_stderr(R"(state file \S+ written again \()", 10000))
      << weir->stderr_text();
  EXPECT_NE(read_file(state).find("app s1 ready 9 "), std::string::npos) << read_file(state);
  EXPECT_NE(unix_command(master, "show state-file").find("state: ok"), std::string::npos);
}

// --- processes -----------------------------------------------------------------

// fork() failing at a reload (test hook WEIR_TEST_FAIL_FORK: while the file it
// names exists, the master's fork() fails with EAGAIN): the reload fails with
// the reason, the running generation keeps serving; once fork works again the
// next reload succeeds.
TEST(Resources, ForkFailingAtReloadFailsTheReloadCleanly) {
  OriginServer origin("o");
  const uint16_t port = free_tcp_port();
  const std::string dir = make_temp_dir();
  const std::string master = dir + "/master.sock";
  const std::string no_fork = dir + "/no-fork";
  WeirOptions opts;
  opts.extra_args = {"-S", master};
  opts.env = {{"WEIR_TEST_FAIL_FORK", no_fork}};
  auto weir = WeirProcess::start(http_frontend_yaml(port, origin.address(), ""), opts);
  ASSERT_NE(weir, nullptr);
  const pid_t worker = weir->current_worker();
  HttpClient kept(port);  // a keep-alive connection across the failed reload
  ASSERT_EQ(kept.request("GET", "/")->status, 200);

  write_file(no_fork, "");
  const std::string answer = unix_command(master, "reload");
  EXPECT_EQ(answer.rfind("Success=0\n", 0), 0u) << answer;
  EXPECT_NE(answer.find("cannot start a worker: fork: Resource temporarily unavailable"),
            std::string::npos)
      << answer;
  EXPECT_NE(answer.find("keeps serving"), std::string::npos) << answer;
  EXPECT_TRUE(weir->wait_for_stderr("reload failed: cannot start generation", 1000));
  EXPECT_EQ(kept.request("GET", "/")->status, 200);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(http_get(port, "/")->status, 200);
  EXPECT_EQ(weir->current_worker(), worker);
  EXPECT_TRUE(weir->alive());

  ::unlink(no_fork.c_str());
  EXPECT_EQ(unix_command(master, "reload").rfind("Success=1\n", 0), 0u);
  EXPECT_NE(weir->current_worker(), worker);
  EXPECT_EQ(http_get(port, "/")->status, 200);
  remove_tree(dir);
}

}  // namespace
}  // namespace weir::test
