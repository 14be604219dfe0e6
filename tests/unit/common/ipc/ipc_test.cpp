#include "common/ipc/ipc.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <thread>

namespace weir::ipc {
namespace {

TEST(IpcChannel, MessagesAndFdsCrossARealSocketpair) {
  Channel a, b;
  ASSERT_TRUE(make_pair(&a, &b));
  int p[2];
  ASSERT_EQ(pipe(p), 0);
  ASSERT_TRUE(a.send(MsgType::kHello, "generation=7"));
  ASSERT_TRUE(a.send(MsgType::kFdMap, "pipe-read\npipe-write\n", {p[0], p[1]}));
  auto m1 = b.receive();
  ASSERT_TRUE(m1);
  EXPECT_EQ(m1->type, MsgType::kHello);
  EXPECT_EQ(m1->payload, "generation=7");
  EXPECT_TRUE(m1->fds.empty());
  auto m2 = b.receive();
  ASSERT_TRUE(m2);
  EXPECT_EQ(m2->type, MsgType::kFdMap);
  ASSERT_EQ(m2->fds.size(), 2u);
  // The received descriptors are new numbers for the same pipe.
  ASSERT_EQ(::write(m2->fds[1].get(), "x", 1), 1);
  char c = 0;
  ASSERT_EQ(::read(p[0], &c, 1), 1);
  EXPECT_EQ(c, 'x');
  ::close(p[0]);
  ::close(p[1]);
}

TEST(IpcChannel, LargePayloadArrivesWhole) {
  Channel a, b;
  ASSERT_TRUE(make_pair(&a, &b));
  std::string big(3 << 20, 'q');
  big[12345] = 'z';
  std::thread sender([&] { a.send(MsgType::kConfig, big); });
  auto m = b.receive();
  sender.join();
  ASSERT_TRUE(m);
  EXPECT_EQ(m->payload, big);
}

TEST(IpcChannel, PeerCloseAndVersionMismatch) {
  Channel a, b;
  ASSERT_TRUE(make_pair(&a, &b));
  a.close();
  EXPECT_FALSE(b.receive());

  int sv[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  Channel reader{UniqueFd(sv[0])};
  const char bogus[12] = {9, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0};  // version 9
  ASSERT_EQ(::write(sv[1], bogus, sizeof bogus), 12);
  EXPECT_FALSE(reader.receive());
  EXPECT_NE(reader.error().find("version mismatch"), std::string::npos);
  ::close(sv[1]);
}

}  // namespace
}  // namespace weir::ipc
