#include "common/event/event_loop.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <memory>
#include <string>
#include <vector>

namespace weir {
namespace {

// One end of a socket pair in the loop: on its event it reads what came and
// asks to write later; its deferred run records the loop's stage, and asks once
// more when told to (what a connection does with a client write in round 1).
class Conn final : public IoHandler, public Deferred {
 public:
  Conn(EventLoop& loop, std::vector<std::string>& log, int id, int defer_again)
      : loop_(loop), log_(log), id_(id), defer_again_(defer_again) {
    int sv[2];
    EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
    mine_ = UniqueFd(sv[0]);
    peer_ = UniqueFd(sv[1]);
    EXPECT_TRUE(loop_.add(mine_.get(), EPOLLIN | EPOLLET, this));
  }
  void poke() { EXPECT_EQ(::write(peer_.get(), "x", 1), 1); }

  void on_io(uint32_t) override {
    char c;
    while (::read(mine_.get(), &c, 1) == 1) {
    }
    log_.push_back("read " + std::to_string(id_));
    EXPECT_EQ(loop_.stage(), EventLoop::Stage::kDispatch);
    loop_.defer(this);
    loop_.defer(this);  // asking twice runs it once
  }
  void run_deferred() override {
    const bool first = loop_.stage() == EventLoop::Stage::kDeferred1;
    log_.push_back((first ? "round1 " : "round2 ") + std::to_string(id_));
    if (first && defer_again_-- > 0) loop_.defer(this);
  }

 private:
  EventLoop& loop_;
  std::vector<std::string>& log_;
  int id_;
  int defer_again_;
  UniqueFd mine_, peer_;
};

// The loop hands out a whole batch of events before anything a handler put off
// runs: every read of the batch comes before every deferred write, each handler
// runs once per round however often it asked, and what the first round puts off
// again runs in the second (nothing is put off past it).
TEST(EventLoop, DeferredWorkRunsAfterTheWholeBatchInTwoRounds) {
  EventLoop loop;
  std::vector<std::string> log;
  std::vector<std::unique_ptr<Conn>> conns;
  for (int i = 0; i < 3; ++i) conns.push_back(std::make_unique<Conn>(loop, log, i, i == 1 ? 1 : 0));
  for (auto& c : conns) c->poke();
  loop.add_iteration_hook([&] {
    log.push_back("end");
    EXPECT_EQ(loop.stage(), EventLoop::Stage::kOther);
    loop.stop();
  });
  loop.run();

  ASSERT_EQ(log.size(), 8u);
  for (size_t i = 0; i < 3; ++i) EXPECT_EQ(log[i].rfind("read ", 0), 0u) << log[i];
  std::vector<std::string> rest(log.begin() + 3, log.end());
  std::vector<std::string> rounds;
  for (size_t i = 0; i < 3; ++i) rounds.push_back("round1 " + log[i].substr(5));
  rounds.push_back("round2 1");
  rounds.push_back("end");
  EXPECT_EQ(rest, rounds);
}

// A connection with bytes for one side: it writes when the loop lets it.
class Writer final : public IoHandler, public Deferred {
 public:
  Writer(EventLoop& loop, std::vector<std::string>& log, std::string name, bool to_server)
      : loop_(loop), log_(log), name_(std::move(name)), to_server_(to_server) {
    int sv[2];
    EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
    mine_ = UniqueFd(sv[0]);
    peer_ = UniqueFd(sv[1]);
    EXPECT_TRUE(loop_.add(mine_.get(), EPOLLIN | EPOLLET, this));
    EXPECT_EQ(::write(peer_.get(), "x", 1), 1);
  }
  void on_io(uint32_t) override {
    char c;
    while (::read(mine_.get(), &c, 1) == 1) {
    }
    log_.push_back("read " + name_);
    try_write();
  }
  void run_deferred() override { try_write(); }
  void try_write() {
    if (!loop_.hold_write(this, to_server_)) log_.push_back("write " + name_);
  }

 private:
  EventLoop& loop_;
  std::vector<std::string>& log_;
  std::string name_;
  bool to_server_;
  UniqueFd mine_, peer_;
};

// Writes found while a batch is handed out wait for all of its reads; then
// writes to servers leave before writes to clients, whatever the events'
// order. Outside a batch (a timer, a posted task) nothing waits.
TEST(EventLoop, HeldWritesLeaveAfterTheReadsServersFirst) {
  EventLoop loop;
  std::vector<std::string> log;
  Writer to_client(loop, log, "to-client", false);
  Writer to_server(loop, log, "to-server", true);
  loop.add_iteration_hook([&] { loop.stop(); });
  loop.run();
  ASSERT_EQ(log.size(), 4u);
  EXPECT_EQ(log[0].rfind("read ", 0), 0u);
  EXPECT_EQ(log[1].rfind("read ", 0), 0u);
  EXPECT_EQ(log[2], "write to-server");
  EXPECT_EQ(log[3], "write to-client");
  log.clear();
  to_client.try_write();
  to_server.try_write();
  EXPECT_EQ(log, (std::vector<std::string>{"write to-client", "write to-server"}));
}

}  // namespace
}  // namespace weir
