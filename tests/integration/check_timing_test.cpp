// The timing of active health checks, measured from outside the way an operator
// would see it: when each server is checked (the checked servers are loopback
// addresses served by one socket this test owns, which timestamps every
// connection and notes which address it was made to), how often, with which
// interval while a server goes down, stays down and comes back, whether a server
// that never answers holds up the checks of the others, and whether one that
// answers slowly pushes its own next checks back.
//
// Nothing asserts speed: the bounds are about behaviour (inter, fastinter and
// downinter are used when the documentation says so, the intervals do not
// drift, the first checks are spread out), each several times wider than what
// an idle machine measures, so that a loaded 2-core machine running ctest -j2
// passes. The measured figures are printed (and recorded as test properties).

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <iomanip>
#include <iostream>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "tests/support/launcher.h"
#include "tests/support/weir_config.h"

namespace weir::test {
namespace {

using Clock = std::chrono::steady_clock;

double ms_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

// 127.0.0.0/8 is all loopback on Linux: 127.0.1.1, 127.0.1.2, ... reach a socket
// bound to 0.0.0.0, and getsockname() on the accepted socket tells them apart.
uint32_t loopback(int net, int host) {
  return (127u << 24) | (static_cast<uint32_t>(net) << 8) | static_cast<uint32_t>(host);
}
std::string ip_text(uint32_t addr) {
  in_addr a{htonl(addr)};
  char buf[INET_ADDRSTRLEN];
  return inet_ntop(AF_INET, &a, buf, sizeof buf);
}

// What the checked servers see. One listening socket; a thread with epoll accepts every
// connection, timestamps it and notes the local address it was made to. In tcp mode the
// connection is closed at once (a tcp check only needs the handshake). In http mode the
// request head is read, then answered with the current status (after a delay for a slow
// address) and closed; connections to a black-hole address are read and never answered, and
// the time the checker gives up (closes) is noted.
class CheckTarget {
 public:
  enum class Mode { kTcp, kHttp };
  struct Hit {
    Clock::time_point at;        // connection established (accepted)
    uint32_t addr = 0;           // local IPv4 address (host order): the checked server
    int status = 0;              // http: the status answered; 0: none (black hole)
    Clock::time_point closed{};  // black hole: when the peer closed
    bool peer_closed = false;
  };

  CheckTarget(Mode mode, const std::string& bind_ip) : mode_(mode) {
    listener_.reset(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    int one = 1;
    ::setsockopt(listener_.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    ::inet_pton(AF_INET, bind_ip.c_str(), &sa.sin_addr);
    if (::bind(listener_.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0 ||
        ::listen(listener_.get(), 4096) != 0) {
      throw std::runtime_error(std::string("CheckTarget: cannot listen: ") + strerror(errno));
    }
    socklen_t len = sizeof sa;
    ::getsockname(listener_.get(), reinterpret_cast<sockaddr*>(&sa), &len);
    port_ = ntohs(sa.sin_port);
    epoll_.reset(::epoll_create1(EPOLL_CLOEXEC));
    wake_.reset(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
    add(listener_.get(), EPOLLIN);
    add(wake_.get(), EPOLLIN);
    thread_ = std::thread([this] { run(); });
  }
  ~CheckTarget() {
    stop_ = true;
    uint64_t one = 1;
    (void)!::write(wake_.get(), &one, sizeof one);
    thread_.join();
    for (auto& [fd, c] : conns_) ::close(fd);
  }
  CheckTarget(const CheckTarget&) = delete;
  CheckTarget& operator=(const CheckTarget&) = delete;

  uint16_t port() const { return port_; }
  void set_status(int status) { status_ = status; }
  void add_black_hole(uint32_t addr) {
    std::lock_guard lock(mu_);
    black_holes_.insert(addr);
  }
  // http: answer the requests made to addr only `ms` after their head has arrived.
  void add_slow(uint32_t addr, int ms) {
    std::lock_guard lock(mu_);
    slow_[addr] = ms;
  }
  std::vector<Hit> hits() const {
    std::lock_guard lock(mu_);
    return hits_;
  }

 private:
  struct Conn {
    size_t hit = 0;
    std::string head;
    bool black_hole = false;
    int delay_ms = 0;
    bool waiting = false;  // head received, answer due at `due`
    Clock::time_point due{};
  };

  void add(int fd, uint32_t events) {
    epoll_event ev{};
    ev.events = events;
    ev.data.fd = fd;
    ::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd, &ev);
  }

  void run() {
    epoll_event events[256];
    while (!stop_) {
      int timeout = 1000;
      for (auto& [fd, c] : conns_) {
        if (!c.waiting) continue;
        auto left = std::chrono::ceil<std::chrono::milliseconds>(c.due - Clock::now()).count();
        timeout = std::clamp(static_cast<int>(left), 0, timeout);
      }
      int n = ::epoll_wait(epoll_.get(), events, 256, timeout);
      for (int i = 0; i < n; ++i) {
        int fd = events[i].data.fd;
        if (fd == wake_.get()) continue;
        if (fd == listener_.get()) {
          accept_all();
        } else {
          readable(fd);
        }
      }
      for (auto it = conns_.begin(); it != conns_.end();) {
        auto next = std::next(it);
        if (it->second.waiting && it->second.due <= Clock::now()) answer(it);
        it = next;
      }
    }
  }

  void accept_all() {
    for (;;) {
      int fd = ::accept4(listener_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) return;  // EAGAIN (or a transient error: the next event retries)
      Hit h;
      h.at = Clock::now();
      // When this thread was late to accept (a loaded machine), the kernel knows how long
      // ago the handshake completed (in jiffies, 4 ms here): go back by that much, so that
      // a delay of the test's own thread does not bunch or shift the measured checks.
      tcp_info ti{};
      socklen_t ti_len = sizeof ti;
      if (::getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &ti_len) == 0 &&
          ti.tcpi_last_ack_recv >= 8) {
        h.at -= std::chrono::milliseconds(ti.tcpi_last_ack_recv);
      }
      sockaddr_in local{};
      socklen_t len = sizeof local;
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&local), &len);
      h.addr = ntohl(local.sin_addr.s_addr);
      size_t index;
      bool black_hole;
      int delay_ms;
      {
        std::lock_guard lock(mu_);
        index = hits_.size();
        hits_.push_back(h);
        black_hole = black_holes_.count(h.addr) > 0;
        auto slow = slow_.find(h.addr);
        delay_ms = slow == slow_.end() ? 0 : slow->second;
      }
      if (mode_ == Mode::kTcp) {
        ::close(fd);
        continue;
      }
      conns_[fd] = Conn{index, {}, black_hole, delay_ms};
      add(fd, EPOLLIN | EPOLLRDHUP);
    }
  }

  void readable(int fd) {
    auto it = conns_.find(fd);
    if (it == conns_.end()) return;
    Conn& c = it->second;
    char buf[4096];
    for (;;) {
      ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n > 0) {
        c.head.append(buf, static_cast<size_t>(n));
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && errno == EAGAIN) break;
      // The checker closed (or reset) the connection.
      if (c.black_hole) {
        std::lock_guard lock(mu_);
        hits_[c.hit].closed = Clock::now();
        hits_[c.hit].peer_closed = true;
      }
      close_conn(it);
      return;
    }
    if (c.black_hole || c.waiting || c.head.find("\r\n\r\n") == std::string::npos) return;
    c.waiting = true;
    c.due = Clock::now() + std::chrono::milliseconds(c.delay_ms);
    if (c.delay_ms == 0) answer(it);
  }

  void answer(std::unordered_map<int, Conn>::iterator it) {
    int fd = it->first;
    Conn& c = it->second;
    int status = status_;
    std::string resp = "HTTP/1.1 " + std::to_string(status) +
                       " Check\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
    (void)!::send(fd, resp.data(), resp.size(), MSG_NOSIGNAL);
    {
      std::lock_guard lock(mu_);
      hits_[c.hit].status = status;
    }
    close_conn(it);
  }

  void close_conn(std::unordered_map<int, Conn>::iterator it) {
    ::close(it->first);  // also leaves the epoll set
    conns_.erase(it);
  }

  const Mode mode_;
  UniqueFd listener_, epoll_, wake_;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> status_{200};
  std::unordered_map<int, Conn> conns_;  // the thread's own
  mutable std::mutex mu_;
  std::vector<Hit> hits_;
  std::set<uint32_t> black_holes_;
  std::map<uint32_t, int> slow_;
  std::thread thread_;
};

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t i = static_cast<size_t>(p * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(i, v.size() - 1)];
}
double median(std::vector<double> v) {
  return percentile(std::move(v), 0.5);
}
double mean(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return v.empty() ? 0 : s / static_cast<double>(v.size());
}
// The most timestamps that fall within any window of `width_ms`.
size_t busiest_window(std::vector<Clock::time_point> t, double width_ms) {
  std::sort(t.begin(), t.end());
  size_t best = 0;
  for (size_t i = 0, j = 0; j < t.size(); ++j) {
    while (ms_between(t[i], t[j]) >= width_ms) ++i;
    best = std::max(best, j - i + 1);
  }
  return best;
}
std::string fmt(double x) {
  std::ostringstream o;
  o << std::fixed << std::setprecision(1) << x;
  return o.str();
}
std::string join(const std::vector<double>& v) {
  std::string s;
  for (double x : v) s += (s.empty() ? "" : " ") + fmt(x);
  return s;
}
void report(const std::string& key, const std::string& value) {
  std::cout << "[ timing ] " << key << ": " << value << std::endl;
  ::testing::Test::RecordProperty(key, value);
}

class CheckTiming : public ::testing::Test {
 protected:
  void SetUp() override {
    ignore_sigpipe();
    dir_ = make_temp_dir();
    admin_ = dir_ + "/admin.sock";
    spec_.global_extra = "  runtime_api: " + admin_ + "\n";
  }
  void TearDown() override {
    weir_.reset();
    remove_tree(dir_);
  }
  std::map<std::string, std::map<std::string, std::string>> server_rows() {
    std::map<std::string, std::map<std::string, std::string>> rows;
    for (auto& r : parse_stat_csv(unix_command(admin_, "show stat"))) {
      if (r["pxname"] == "be" && r["svname"] != "BACKEND" && r["svname"] != "FRONTEND") {
        rows[r["svname"]] = r;
      }
    }
    return rows;
  }
  std::string status_of(const std::string& sv) { return server_rows()[sv]["status"]; }
  bool wait_status(const std::string& sv, const std::string& status, int timeout_ms = 15000) {
    return wait_until([&] { return status_of(sv) == status; }, timeout_ms, 20);
  }

  ProxySpec spec_;
  std::string dir_, admin_;
  std::unique_ptr<WeirProcess> weir_;
};

TEST_F(CheckTiming, FiveHundredServersAreCheckedWithoutDriftAndSpreadOverTheInterval) {
  constexpr int kServers = 500;
  constexpr double kInter = 1000;  // ms
  constexpr int kIntervals = 8;    // the measured window, after every server's first check
  CheckTarget target(CheckTarget::Mode::kTcp, "0.0.0.0");
  std::map<uint32_t, int> index_of;  // address -> server index (s1 is 0)
  for (int i = 0; i < kServers; ++i) {
    uint32_t a = loopback(1 + i / 250, 1 + i % 250);  // 127.0.1.1 .. 127.0.2.250
    index_of[a] = i;
    spec_.servers.push_back(ip_text(a) + ":" + std::to_string(target.port()));
  }
  spec_.mode = "tcp";
  spec_.backend_extra = "    check: {type: tcp, inter: 1s, rise: 2, fall: 3}\n";
  Clock::time_point launched = Clock::now();
  weir_ = WeirProcess::start(proxy_yaml(spec_));
  ASSERT_TRUE(weir_);

  // Every server's first check, then kIntervals intervals of checks.
  auto first_checks = [&] {
    std::vector<Clock::time_point> first(kServers, Clock::time_point::max());
    for (const auto& h : target.hits()) {
      auto it = index_of.find(h.addr);
      if (it != index_of.end()) first[it->second] = std::min(first[it->second], h.at);
    }
    return first;
  };
  ASSERT_TRUE(wait_until(
      [&] {
        auto f = first_checks();
        return std::none_of(f.begin(), f.end(),
                            [](auto t) { return t == Clock::time_point::max(); });
      },
      15000))
      << "servers checked at least once: " << [&] {
           auto f = first_checks();
           return std::count_if(f.begin(), f.end(),
                                [](auto t) { return t != Clock::time_point::max(); });
         }();
  std::vector<Clock::time_point> first = first_checks();
  Clock::time_point all_started = *std::max_element(first.begin(), first.end());
  Clock::time_point window_end =
      all_started + std::chrono::milliseconds(static_cast<int>(kIntervals * kInter));
  std::this_thread::sleep_until(window_end + std::chrono::milliseconds(300));
  std::vector<CheckTarget::Hit> hits = target.hits();

  // Every server is UP as far as weir is concerned.
  auto rows = server_rows();
  int up = 0;
  std::string not_up;
  for (int i = 1; i <= kServers; ++i) {
    auto& r = rows["s" + std::to_string(i)];
    if (r["status"] == "UP" && r["check_status"] == "L4OK") {
      ++up;
    } else if (not_up.size() < 300) {
      not_up += " s" + std::to_string(i) + "=" + r["status"] + "/" + r["check_status"];
    }
  }
  EXPECT_EQ(up, kServers) << "not UP/L4OK:" << not_up;

  // Per server: the checks in [all_started, window_end), and the intervals between
  // consecutive checks over the whole run.
  std::vector<std::vector<Clock::time_point>> per(kServers);
  size_t unknown = 0;
  for (const auto& h : hits) {
    auto it = index_of.find(h.addr);
    if (it == index_of.end()) {
      ++unknown;
      continue;
    }
    if (h.at <= window_end) per[it->second].push_back(h.at);
  }
  EXPECT_EQ(unknown, 0u) << "connections to addresses that are not servers";
  std::vector<double> all_gaps, server_means;
  std::vector<Clock::time_point> window_checks;
  int min_count = 1 << 30, max_count = 0;
  int count_outliers = 0, mean_outliers = 0;
  std::string outliers;
  for (int i = 0; i < kServers; ++i) {
    auto& t = per[i];
    std::sort(t.begin(), t.end());
    int in_window = 0;
    for (auto at : t) {
      if (at >= all_started && at < window_end) {
        ++in_window;
        window_checks.push_back(at);
      }
    }
    for (size_t k = 1; k < t.size(); ++k) all_gaps.push_back(ms_between(t[k - 1], t[k]));
    double m =
        t.size() > 1 ? ms_between(t.front(), t.back()) / static_cast<double>(t.size() - 1) : 0;
    server_means.push_back(m);
    min_count = std::min(min_count, in_window);
    max_count = std::max(max_count, in_window);
    // kIntervals checks expected in the window; [0.7, 1.2] x that.
    if (in_window < 0.7 * kIntervals || in_window > 1.2 * kIntervals) {
      ++count_outliers;
      if (outliers.size() < 300)
        outliers += " s" + std::to_string(i + 1) + ":" + std::to_string(in_window);
    }
    // No drift: the mean interval is inter, within 25%.
    if (m < 0.75 * kInter || m > 1.25 * kInter) {
      ++mean_outliers;
      if (outliers.size() < 600) outliers += " s" + std::to_string(i + 1) + ":mean=" + fmt(m);
    }
  }
  EXPECT_EQ(count_outliers, 0) << "servers whose number of checks in " << kIntervals
                               << " intervals is outside [0.7, 1.2] x " << kIntervals << ":"
                               << outliers;
  EXPECT_EQ(mean_outliers, 0) << "servers whose mean check interval is outside inter +-25%:"
                              << outliers;
  double overall_mean = mean(server_means);
  EXPECT_GT(overall_mean, 0.9 * kInter);
  EXPECT_LT(overall_mean, 1.1 * kInter);
  // No server is checked twice in a row much sooner than inter (a timer armed twice would
  // show up as gaps near 0). The 1st percentile allows for this test's own thread being
  // delayed now and then (a tcp check completes in the kernel, before the accept is seen).
  EXPECT_GT(percentile(all_gaps, 0.01), 0.5 * kInter);

  // Spread: the first checks cover the first interval rather than coming all at once.
  // Evenly spread, a 10 ms window holds 1% of them; all at once, 100%.
  size_t busiest_first = busiest_window(first, 10);
  size_t busiest_first_100 = busiest_window(first, 100);
  double first_span = ms_between(*std::min_element(first.begin(), first.end()), all_started);
  EXPECT_LT(busiest_first, kServers / 5) << "first checks in the busiest 10 ms";
  EXPECT_GT(first_span, 0.5 * kInter) << "first checks spread over (ms)";
  // And they stay spread: no 10 ms window of the measured window holds a fifth of them.
  size_t busiest_steady = busiest_window(window_checks, 10);
  EXPECT_LT(busiest_steady, kServers / 5u);

  report("servers", std::to_string(kServers) + ", inter " + fmt(kInter) + " ms, " +
                        std::to_string(kIntervals) + " intervals measured");
  report("first check after launch (ms)",
         fmt(ms_between(launched, *std::min_element(first.begin(), first.end()))) +
             ", last first check after " + fmt(ms_between(launched, all_started)));
  report("first checks spread over (ms)", fmt(first_span));
  report("busiest 10 ms / 100 ms window of first checks (servers)",
         std::to_string(busiest_first) + " / " + std::to_string(busiest_first_100));
  report("busiest 10 ms window of checks in the measured window",
         std::to_string(busiest_steady) + " of " + std::to_string(window_checks.size()));
  report("checks per server in the window (min..max)",
         std::to_string(min_count) + ".." + std::to_string(max_count) + " (expected " +
             std::to_string(kIntervals) + ")");
  report("mean interval per server (ms): min/mean/max",
         fmt(*std::min_element(server_means.begin(), server_means.end())) + " / " +
             fmt(overall_mean) + " / " +
             fmt(*std::max_element(server_means.begin(), server_means.end())));
  report("single intervals (ms): min/p1/median/p99/max",
         fmt(percentile(all_gaps, 0)) + " / " + fmt(percentile(all_gaps, 0.01)) + " / " +
             fmt(median(all_gaps)) + " / " + fmt(percentile(all_gaps, 0.99)) + " / " +
             fmt(percentile(all_gaps, 1)) + " over " + std::to_string(all_gaps.size()));
}

TEST_F(CheckTiming, FastinterIsUsedWhileAServerIsGoingDown) {
  constexpr double kInter = 2000, kFast = 100, kDown = 500;  // ms
  constexpr int kFall = 4, kRise = 3;
  CheckTarget target(CheckTarget::Mode::kHttp, "127.0.0.1");
  spec_.servers = {"127.0.0.1:" + std::to_string(target.port())};
  spec_.backend_extra =
      "    check: {type: http, path: /health, inter: 2s, fastinter: 100ms, downinter: 500ms, "
      "fall: 4, rise: 3}\n";
  weir_ = WeirProcess::start(proxy_yaml(spec_));
  ASSERT_TRUE(weir_);
  auto count = [&](int status) {
    auto h = target.hits();
    return std::count_if(h.begin(), h.end(), [&](auto& x) { return x.status == status; });
  };

  // Steady and UP: checked every inter.
  ASSERT_TRUE(wait_until([&] { return count(200) >= 2; }, 15000));
  // Failing from now on: fall checks at fastinter take it DOWN, then it is checked every
  // downinter.
  target.set_status(503);
  ASSERT_TRUE(wait_status("s1", "DOWN")) << unix_command(admin_, "show stat");
  Clock::time_point down_seen = Clock::now();
  EXPECT_TRUE(
      weir_->wait_for_stderr(R"(server be/s1 is DOWN, reason: Layer7 wrong status: 503)", 5000));
  ASSERT_TRUE(wait_until([&] { return count(503) >= kFall + 4; }, 15000));
  // Healthy again: rise checks at fastinter bring it back UP, then inter again.
  target.set_status(200);
  ASSERT_TRUE(wait_status("s1", "UP")) << unix_command(admin_, "show stat");
  EXPECT_TRUE(
      weir_->wait_for_stderr(R"(server be/s1 is UP, reason: Layer7 check passed: 200)", 5000));
  auto h = target.hits();
  size_t f = 0;
  while (f < h.size() && h[f].status != 503) ++f;
  size_t r = f;
  while (r < h.size() && h[r].status == 503) ++r;
  // (the check after UP answered too)
  ASSERT_TRUE(wait_until(
      [&] {
        auto now = target.hits();
        return now.size() > r + kRise && now[r + kRise].status != 0;
      },
      15000));
  h = target.hits();
  for (size_t k = 0; k <= r + kRise; ++k) {
    ASSERT_TRUE(h[k].status == 200 || h[k].status == 503) << "check " << k << " unanswered";
  }
  auto gap = [&](size_t k) { return ms_between(h[k - 1].at, h[k].at); };

  // Before: steady at inter.
  ASSERT_GE(f, 2u);
  std::vector<double> steady_before;
  for (size_t k = 1; k < f; ++k) steady_before.push_back(gap(k));
  // The fall: the first failure, then fall-1 more at fastinter, and DOWN.
  std::vector<double> falling;
  for (size_t k = f + 1; k < f + kFall; ++k) falling.push_back(gap(k));
  double fall_took = ms_between(h[f].at, h[f + kFall - 1].at);
  // Down: every downinter (the first one right after the fall-th failure).
  ASSERT_GE(r, f + kFall + 3);
  std::vector<double> down;
  for (size_t k = f + kFall; k < r; ++k) down.push_back(gap(k));
  // Rising: the first success comes a downinter after the last failure, then rise-1 more at
  // fastinter, UP, and the next check an inter later.
  double first_success_gap = gap(r);
  std::vector<double> rising;
  for (size_t k = r + 1; k < r + kRise; ++k) rising.push_back(gap(k));
  double after_up = gap(r + kRise);

  report("intervals (ms) steady before", join(steady_before));
  report("intervals (ms) falling (fastinter 100)", join(falling));
  report("first failure to the fall-th (ms)",
         fmt(fall_took) + " (at inter it would be " + fmt((kFall - 1) * kInter) + ")");
  report("intervals (ms) while DOWN (downinter 500)", join(down));
  report("intervals (ms) rising (last failure -> first success, then fastinter)",
         fmt(first_success_gap) + " | " + join(rising));
  report("interval (ms) after UP (inter 2000)", fmt(after_up));

  for (double g : steady_before) {
    EXPECT_GT(g, 0.75 * kInter) << "steady interval";
    EXPECT_LT(g, 1.5 * kInter) << "steady interval";
  }
  // fastinter, not inter: each gap closer to 100 ms than to 500 ms (and far from 2 s).
  for (double g : falling) {
    EXPECT_GT(g, 0.5 * kFast) << "falling interval";
    EXPECT_LT(g, 3 * kFast) << "falling interval";
  }
  EXPECT_LT(fall_took, (kFall - 1) * kInter / 4) << "DOWN well before (fall-1) x inter";
  // downinter: each gap near 500 ms, neither fastinter nor inter.
  for (double g : down) {
    EXPECT_GT(g, 0.6 * kDown) << "down interval";
    EXPECT_LT(g, 2 * kDown) << "down interval";
  }
  EXPECT_GT(first_success_gap, 0.6 * kDown);
  EXPECT_LT(first_success_gap, 2 * kDown);
  for (double g : rising) {
    EXPECT_GT(g, 0.5 * kFast) << "rising interval";
    EXPECT_LT(g, 3 * kFast) << "rising interval";
  }
  EXPECT_GT(after_up, 0.75 * kInter);
  EXPECT_LT(after_up, 1.5 * kInter);
  // DOWN was reported after the fall-th failure, not before.
  size_t failures_before_down_seen = 0;
  for (size_t k = f; k < r; ++k) failures_before_down_seen += h[k].at < down_seen;
  EXPECT_GE(failures_before_down_seen, static_cast<size_t>(kFall));
  auto row = server_rows()["s1"];
  EXPECT_EQ(row["chkdown"], "1");
  EXPECT_EQ(row["check_status"], "L7OK");
  EXPECT_EQ(row["chkfail"], std::to_string(r - f)) << "every failed check counted";
}

TEST_F(CheckTiming, ASlowServerDoesNotDelayTheChecksOfOthers) {
  // One event loop for every check: a check waiting on the black hole must not hold up the
  // others. And a server that answers slowly (but within the timeout) is still checked every
  // inter: the next check is due inter after the start of the previous one
  // (doc/configuration.md), not after its end.
  constexpr int kServers = 6;     // s1 is the black hole, s2 answers after kSlow
  constexpr double kInter = 200;  // ms
  constexpr double kTimeout = 1000;
  constexpr int kSlow = 150;
  constexpr double kWindow = 4000;
  CheckTarget target(CheckTarget::Mode::kHttp, "0.0.0.0");
  std::map<uint32_t, int> index_of;
  for (int i = 0; i < kServers; ++i) {
    uint32_t a = loopback(3, 1 + i);  // 127.0.3.1 .. 127.0.3.6
    index_of[a] = i;
    spec_.servers.push_back(ip_text(a) + ":" + std::to_string(target.port()));
    if (i == 0) target.add_black_hole(a);
    if (i == 1) target.add_slow(a, kSlow);
  }
  spec_.threads = 1;
  spec_.backend_extra = "    check: {type: http, inter: 200ms, timeout: 1s, rise: 2, fall: 2}\n";
  weir_ = WeirProcess::start(proxy_yaml(spec_));
  ASSERT_TRUE(weir_);
  Clock::time_point begin = Clock::now();
  std::this_thread::sleep_until(begin + std::chrono::milliseconds(static_cast<int>(kWindow)));
  auto rows = server_rows();
  auto hits = target.hits();

  std::vector<std::vector<CheckTarget::Hit>> per(kServers);
  for (const auto& x : hits) {
    auto it = index_of.find(x.addr);
    ASSERT_NE(it, index_of.end()) << ip_text(x.addr);
    per[it->second].push_back(x);
  }
  // The black hole: each check waits for the timeout, then the connection is closed, and the
  // next one starts only after that.
  const auto& bh = per[0];
  std::vector<double> held, bh_gaps;
  for (size_t k = 0; k < bh.size(); ++k) {
    if (bh[k].peer_closed) held.push_back(ms_between(bh[k].at, bh[k].closed));
    if (k > 0) bh_gaps.push_back(ms_between(bh[k - 1].at, bh[k].at));
  }
  EXPECT_GE(held.size(), 2u) << "black-hole checks given up";
  for (double d : held) {
    EXPECT_GT(d, 0.8 * kTimeout) << "a black-hole check was given up before its timeout";
    EXPECT_LT(d, kTimeout + 1000) << "a black-hole check was held beyond its timeout";
  }
  // (Overlapping checks would start one every inter, 200 ms.)
  for (double g : bh_gaps) EXPECT_GT(g, 0.9 * kTimeout) << "black-hole checks overlapped";
  EXPECT_EQ(rows["s1"]["status"], "DOWN");
  EXPECT_EQ(rows["s1"]["check_status"], "L7TOUT");

  // The others, the slow one included, keep their interval meanwhile.
  std::vector<double> others_gaps, slow_gaps;
  for (int i = 1; i < kServers; ++i) {
    const auto& t = per[i];
    std::string sv = "s" + std::to_string(i + 1);
    ASSERT_GE(t.size(), 2u) << sv;
    std::vector<double> gaps;
    for (size_t k = 1; k < t.size(); ++k) gaps.push_back(ms_between(t[k - 1].at, t[k].at));
    double m = ms_between(t.front().at, t.back().at) / static_cast<double>(t.size() - 1);
    double last_to_end =
        ms_between(t.back().at, begin + std::chrono::milliseconds(static_cast<int>(kWindow)));
    EXPECT_GT(m, 0.75 * kInter) << sv;
    EXPECT_LT(m, 1.25 * kInter) << sv << " mean interval";
    EXPECT_LT(*std::max_element(gaps.begin(), gaps.end()), kTimeout)
        << sv << ": a check waited for the black hole's timeout";
    EXPECT_LT(last_to_end, kTimeout) << sv << " stopped being checked";
    EXPECT_EQ(rows[sv]["status"], "UP") << sv;
    EXPECT_EQ(rows[sv]["check_status"], "L7OK") << sv;
    auto& into = i == 1 ? slow_gaps : others_gaps;
    into.insert(into.end(), gaps.begin(), gaps.end());
  }
  // At the end of each slow check (rather than its start) plus inter, it would be 350 ms.
  EXPECT_GE(std::stoi("0" + rows["s2"]["check_duration"]), kSlow / 2) << "s2 check_duration";
  report("black hole: check held (ms)", join(held));
  report("black hole: intervals between its checks (ms)", join(bh_gaps));
  report("others: intervals (ms) min/median/mean/max",
         fmt(percentile(others_gaps, 0)) + " / " + fmt(median(others_gaps)) + " / " +
             fmt(mean(others_gaps)) + " / " + fmt(percentile(others_gaps, 1)) + " over " +
             std::to_string(others_gaps.size()));
  report("slow server (answers after 150 ms): intervals (ms) min/median/mean/max",
         fmt(percentile(slow_gaps, 0)) + " / " + fmt(median(slow_gaps)) + " / " +
             fmt(mean(slow_gaps)) + " / " + fmt(percentile(slow_gaps, 1)) + " over " +
             std::to_string(slow_gaps.size()) + ", check_duration " + rows["s2"]["check_duration"] +
             " ms");
}

}  // namespace
}  // namespace weir::test
