#pragma once
// What the peers agent's tests share (peers_agent_test.cpp and
// peers_agent_smoke_test.cpp): the configurations, a keep-alive client that
// counts its answers, a load thread, and the PeersAgent fixture (reloads, the
// agent's pid from `show proc`, `show table` as the current generation answers
// it, requests spread over reloads).

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

// A string table keyed on a request header, counting requests: what most of
// the tests run. The body's first lines continue the global block of
// StickTest::config.
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
inline int64_t total(const TableView& v, const std::string& field) {
  int64_t sum = 0;
  for (const auto& [key, fields] : v.entries) {
    auto f = fields.find(field);
    if (f != fields.end()) sum += std::stoll(f->second);
  }
  return sum;
}

// The value of a sample of /metrics ("<missing>" when absent).
inline std::string metric(const std::string& text, const std::string& series) {
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

}  // namespace weir::test::sticky
