// Process faults as an operator meets them: a worker killed in the middle of
// traffic, and a master that dies outside systemd while its worker still has
// connections (and connections waiting in the listen backlog).

#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <list>
#include <mutex>
#include <thread>

#include "tests/support/http_client.h"
#include "tests/support/launcher.h"
#include "tests/support/origin.h"
#include "tests/support/weir_config.h"

namespace weir::test {
namespace {

// True while pid runs (a zombie left by a dead parent does not count).
bool process_running(pid_t pid) {
  std::string stat;
  try {
    stat = read_file("/proc/" + std::to_string(pid) + "/stat");
  } catch (const std::exception&) {
    return false;
  }
  size_t paren = stat.rfind(')');
  return paren != std::string::npos && paren + 2 < stat.size() && stat[paren + 2] != 'Z';
}

std::string yaml_with_cli(ProxySpec& spec, const std::string& sock) {
  spec.global_extra = "  master_socket: " + sock + "\n";
  spec.logs = "[]";
  return proxy_yaml(spec);
}

// A worker killed with SIGKILL is replaced; the master keeps the listening
// sockets open, so no client is ever refused: only the requests that worker
// had in flight (at most one per client connection here) are lost.
TEST(ProcessFaults, AWorkerKilledInTheMiddleOfTrafficIsReplacedAndOnlyItsRequestsFail) {
  ignore_sigpipe();
  OriginServer origin("o");
  origin.set_default_delay_ms(5);
  const std::string dir = make_temp_dir();
  const std::string sock = dir + "/master.sock";
  ProxySpec spec;
  spec.servers = {origin.address()};
  auto weir = WeirProcess::start(yaml_with_cli(spec, sock));
  ASSERT_TRUE(weir);

  std::atomic<bool> stop{false};
  std::atomic<bool> after_respawn{false};
  std::atomic<int> ok{0}, failed{0}, refused{0}, failed_after_respawn{0};
  std::mutex mu;
  std::vector<std::string> refusals;
  auto fail = [&] {
    ++failed;
    if (after_respawn) ++failed_after_respawn;
  };
  std::list<std::thread> clients;
  constexpr int kClients = 4;
  for (int i = 0; i < kClients; ++i) {
    clients.emplace_back([&, i] {
      std::unique_ptr<HttpClient> c;
      while (!stop) {
        if (!c) {
          try {
            c = std::make_unique<HttpClient>(spec.port);
          } catch (const std::exception& e) {
            ++refused;
            std::lock_guard lock(mu);
            refusals.push_back(e.what());
            continue;
          }
        }
        // Half the clients keep their connection, half open one per request.
        auto r = c->request(
            "GET", "/",
            i % 2 ? std::vector<std::pair<std::string, std::string>>{}
                  : std::vector<std::pair<std::string, std::string>>{{"Connection", "close"}});
        if (r && r->status == 200) {
          ++ok;
        } else {
          fail();
        }
        if (!r || i % 2 == 0 || r->header("Connection") == "close") c.reset();
      }
    });
  }
  ASSERT_TRUE(wait_until([&] { return ok > 50; }, 10000));
  const pid_t victim = weir->current_worker();
  ASSERT_EQ(::kill(victim, SIGKILL), 0);
  ASSERT_TRUE(weir->wait_ready_count(2, 15000)) << weir->stderr_text();
  EXPECT_NE(weir->current_worker(), victim);
  // Connections accepted by the dead worker may still fail for a moment after
  // the new one is ready; from then on, nothing does.
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  after_respawn = true;
  const int ok_at_respawn = ok;
  ASSERT_TRUE(wait_until([&] { return ok > ok_at_respawn + 200; }, 15000));
  stop = true;
  for (auto& t : clients) t.join();

  EXPECT_EQ(refused.load(), 0) << ::testing::PrintToString(refusals);
  EXPECT_LE(failed.load(), kClients) << "more requests failed than the dead worker had";
  EXPECT_EQ(failed_after_respawn.load(), 0);
  EXPECT_TRUE(weir->wait_for_stderr(R"(generation=1 exited unexpectedly \(signal Killed\))", 1000))
      << weir->stderr_text();
  // show proc counts the crash on the master's line.
  const std::string proc = unix_command(sock, "show proc");
  EXPECT_EQ(count_matching_lines(proc, R"(master\s+-\s+running\s+\S+\s+0\s+1\s)"), 1u) << proc;
  weir.reset();
  remove_tree(dir);
}

// The master dies (SIGKILL, outside systemd). Its worker serves what waited in
// the listen backlog, closes its copies of the listening sockets so that a new
// master can bind the same port at once, and finishes the request in flight.
TEST(ProcessFaults, WhenTheMasterDiesItsWorkerServesTheBacklogAndFreesThePorts) {
  ignore_sigpipe();
  OriginServer origin("o");
  const std::string dir = make_temp_dir();
  ProxySpec spec;
  spec.servers = {origin.address()};
  spec.threads = 2;
  const std::string yaml = yaml_with_cli(spec, dir + "/master.sock");
  auto first = WeirProcess::start(yaml);
  ASSERT_TRUE(first);
  const pid_t worker = first->current_worker();

  HttpClient slow(spec.port);
  // Long enough to outlast every step below on a loaded machine: the old worker
  // must still be draining it when the new master starts.
  ASSERT_TRUE(slow.send_raw("GET /?delay=12000 HTTP/1.1\r\nHost: x\r\n\r\n"));
  ASSERT_TRUE(wait_until([&] { return origin.current_requests() == 1; }, 5000));

  // Connections that the kernel completes while nobody accepts: the backlog.
  ASSERT_EQ(::kill(worker, SIGSTOP), 0);
  std::vector<std::unique_ptr<HttpClient>> waiting;
  for (int i = 0; i < 5; ++i) {
    waiting.push_back(std::make_unique<HttpClient>(spec.port));
    ASSERT_TRUE(waiting.back()->send_raw("GET /backlog HTTP/1.1\r\nHost: x\r\n\r\n"));
  }
  first->signal(SIGKILL);
  ASSERT_TRUE(first->wait_exit(5000));
  ASSERT_EQ(::kill(worker, SIGCONT), 0);

  for (size_t i = 0; i < waiting.size(); ++i) {
    auto r = waiting[i]->read_response(10000);
    ASSERT_TRUE(r) << "connection " << i << " waiting in the backlog was not served";
    EXPECT_EQ(r->status, 200);
    // Then the draining worker ends the connection. (Whether the response itself
    // says Connection: close depends on whether the worker had seen its master's
    // channel close when it answered: both events come out of one wait.)
    EXPECT_TRUE(waiting[i]->wait_closed(10000)) << "connection " << i << " was left open";
  }
  ASSERT_TRUE(first->wait_for_stderr("closed its listening sockets", 10000))
      << first->stderr_text();

  // A new master binds the same port while the old worker still drains.
  auto second = WeirProcess::start(yaml);
  ASSERT_TRUE(second) << "a new master could not start on the port";
  auto fresh = http_get(spec.port, "/new");
  ASSERT_TRUE(fresh);
  EXPECT_EQ(fresh->status, 200);
  EXPECT_TRUE(process_running(worker)) << "the old worker should still be finishing its request";

  auto r = slow.read_response(30000);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_TRUE(wait_until([&] { return !process_running(worker); }, 10000))
      << "the old worker did not exit once its last connection ended";
  second.reset();
  first.reset();
  remove_tree(dir);
}

}  // namespace
}  // namespace weir::test
