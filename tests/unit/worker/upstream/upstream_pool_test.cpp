// UpstreamPool and UpstreamConnection (worker/upstream/): real connections to a
// listening socket on 127.0.0.1, kept idle per server, taken back LIFO, bounded,
// purged, and closed when the server goes or closes one.

#include "worker/upstream/upstream_pool.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <memory>
#include <string>
#include <vector>

#include "common/base/address.h"
#include "common/base/fd.h"
#include "common/event/event_loop.h"
#include "worker/backend/backend.h"
#include "worker/upstream/upstream_connection.h"

namespace weir {
namespace {

// A listening socket on an ephemeral port of 127.0.0.1.
struct Listener {
  UniqueFd fd;
  SockAddr addr;
  Listener() {
    fd = UniqueFd(::socket(AF_INET, SOCK_STREAM, 0));
    sockaddr_in sin{};
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::bind(fd.get(), reinterpret_cast<sockaddr*>(&sin), sizeof sin), 0);
    EXPECT_EQ(::listen(fd.get(), 64), 0);
    addr.len = sizeof addr.storage;
    EXPECT_EQ(::getsockname(fd.get(), addr.sa(), &addr.len), 0);
  }
};

BackendConfig backend_at(const SockAddr& addr, const std::vector<std::string>& names) {
  BackendConfig b;
  b.name = "be";
  b.balance.algorithm = "roundrobin";
  for (const std::string& n : names) {
    ServerConfig s;
    s.name = n;
    s.addr = addr;
    s.address_text = addr.to_string();
    b.servers.push_back(s);
  }
  return b;
}

struct NoUser final : UpstreamConnection::User {
  void on_upstream_io(uint32_t) override { ++events; }
  int events = 0;
};

class UpstreamPoolTest : public ::testing::Test {
 protected:
  std::unique_ptr<UpstreamConnection> connect(Server* s) {
    bool in_progress = false;
    int err = 0;
    auto c = UpstreamConnection::open(loop, 0, s, s->addr(), &user, &in_progress, &err);
    EXPECT_NE(c, nullptr) << err;
    return c;
  }

  Listener listener;
  Backend be{backend_at(listener.addr, {"a", "b"}), 1};
  Server* a = be.find_server("a");
  Server* b = be.find_server("b");
  EventLoop loop;
  NoUser user;
};

TEST_F(UpstreamPoolTest, TakesTheWarmestConnectionOfTheServerAsked) {
  UpstreamPool pool(loop);
  pool.set_limit(100);
  auto a1 = connect(a);
  auto a2 = connect(a);
  auto b1 = connect(b);
  UpstreamConnection* a1_raw = a1.get();
  UpstreamConnection* a2_raw = a2.get();
  UpstreamConnection* b1_raw = b1.get();
  pool.put(std::move(a1));
  pool.put(std::move(a2));
  pool.put(std::move(b1));
  EXPECT_EQ(pool.idle(), 3u);
  auto got = pool.take(a);
  EXPECT_EQ(got.get(), a2_raw);  // LIFO: the last one put back
  EXPECT_FALSE(got->attached());
  auto next = pool.take(a);
  EXPECT_EQ(next.get(), a1_raw);
  EXPECT_EQ(pool.take(a), nullptr);
  EXPECT_EQ(pool.take(b).get(), b1_raw);
  EXPECT_EQ(pool.idle(), 0u);
  pool.close(std::move(got));
  pool.close(std::move(next));
  loop.destroy_retired();
}

TEST_F(UpstreamPoolTest, KeepsNoMoreThanItsShareOfDescriptors) {
  UpstreamPool pool(loop);
  pool.set_limit(2);
  for (int i = 0; i < 3; ++i) pool.put(connect(a));
  EXPECT_EQ(pool.idle(), 2u);  // the third was closed, not kept
  loop.destroy_retired();
}

TEST_F(UpstreamPoolTest, PurgeClosesConnectionsIdleSinceBeforeTheLimit) {
  UpstreamPool pool(loop);
  pool.set_limit(10);
  pool.put(connect(a));  // idle since the loop's now
  pool.purge(loop.now_ms());
  EXPECT_EQ(pool.idle(), 1u);
  pool.purge(loop.now_ms() + 1);
  EXPECT_EQ(pool.idle(), 0u);
  EXPECT_EQ(pool.take(a), nullptr);
  loop.destroy_retired();
}

TEST_F(UpstreamPoolTest, CloseToAndCloseAllEmptyThePool) {
  UpstreamPool pool(loop);
  pool.set_limit(10);
  pool.put(connect(a));
  pool.put(connect(b));
  pool.close_to(a);  // `set server addr` or `del server`
  EXPECT_EQ(pool.idle(), 1u);
  EXPECT_EQ(pool.take(a), nullptr);
  pool.close_all();  // the thread drains: nothing is kept from now on
  EXPECT_EQ(pool.idle(), 0u);
  pool.put(connect(b));
  EXPECT_EQ(pool.idle(), 0u);
  loop.destroy_retired();
}

TEST_F(UpstreamPoolTest, AnIdleConnectionTheServerClosesLeavesThePool) {
  UpstreamPool pool(loop);
  pool.set_limit(10);
  auto c = connect(a);
  UpstreamConnection* raw = c.get();
  pool.put(std::move(c));
  raw->on_io(EPOLLOUT);  // a writable edge alone means nothing
  EXPECT_EQ(pool.idle(), 1u);
  raw->on_io(EPOLLIN | EPOLLRDHUP);  // the server closed it (or sent unasked bytes)
  EXPECT_EQ(pool.idle(), 0u);
  EXPECT_EQ(pool.take(a), nullptr);
  EXPECT_EQ(user.events, 0);  // idle: nobody is told
  loop.destroy_retired();
}

TEST_F(UpstreamPoolTest, APlainConnectionIsReadyOnceTheConnectCompletes) {
  auto c = connect(a);
  // Accept it, so that the connect has certainly completed.
  UniqueFd accepted(::accept(listener.fd.get(), nullptr, nullptr));
  ASSERT_TRUE(accepted.valid());
  EXPECT_TRUE(c->tcp_connecting());
  EXPECT_TRUE(c->wants_advance(EPOLLOUT));
  EXPECT_FALSE(c->wants_advance(EPOLLIN));
  EXPECT_EQ(c->advance([] { return std::string(); }), UpstreamConnection::Progress::kReady);
  EXPECT_TRUE(c->established());
  UpstreamPool pool(loop);
  pool.close(std::move(c));
  loop.destroy_retired();
}

TEST(UpstreamConnection, ARefusedConnectFailsWithItsError) {
  // A port nothing listens on: bind one, learn it, close it.
  SockAddr addr;
  {
    Listener l;
    addr = l.addr;
  }
  Backend be(backend_at(addr, {"a"}), 1);
  EventLoop loop;
  NoUser user;
  bool in_progress = false;
  int err = 0;
  auto c = UpstreamConnection::open(loop, 0, be.find_server("a"), addr, &user, &in_progress, &err);
  if (!c) {
    EXPECT_EQ(err, ECONNREFUSED);  // refused at once
    return;
  }
  // Wait for the refusal to be known to the socket.
  pollfd p{c->stream().fd(), POLLOUT, 0};
  ASSERT_EQ(::poll(&p, 1, 5000), 1);
  EXPECT_EQ(c->advance([] { return std::string(); }), UpstreamConnection::Progress::kFailed);
  EXPECT_EQ(c->error(), ECONNREFUSED);
  EXPECT_TRUE(c->failure().empty());  // not a TLS failure
  UpstreamPool pool(loop);
  pool.close(std::move(c));
  loop.destroy_retired();
}

}  // namespace
}  // namespace weir
