// What `show sess` says about an HTTP/1 client connection's state.

#include "worker/http/h1/h1_client_connection.h"

#include <gtest/gtest.h>

#include <set>
#include <string>

namespace weir {
namespace {

using Phase = H1ClientConnection::Phase;
using TxnPhase = HttpTransaction::Phase;

// Every state has its own name, the last (closed) included: the names were an
// array of 8 for 9 phases once, so that a tarpitted session showed as "tunnel"
// and a closed one read past the end of the array. A connection's state is its
// phase's, or while a transaction runs, the transaction's (queued, connecting,
// exchange, tarpit).
TEST(H1ClientConnectionPhase, EveryPhaseHasItsOwnName) {
  std::set<std::string> seen;
  for (int i = 0; i <= static_cast<int>(Phase::kClosed); ++i) {
    const auto p = static_cast<Phase>(i);
    if (p == Phase::kTransaction) continue;
    const std::string name = H1ClientConnection::phase_name(p, TxnPhase::kIdle);
    EXPECT_NE(name, "?") << i;
    EXPECT_TRUE(seen.insert(name).second) << name << " twice";
  }
  for (TxnPhase t :
       {TxnPhase::kQueued, TxnPhase::kConnecting, TxnPhase::kExchange, TxnPhase::kTarpit}) {
    const std::string name = H1ClientConnection::phase_name(Phase::kTransaction, t);
    EXPECT_TRUE(seen.insert(name).second) << name << " twice";
  }
  EXPECT_EQ(seen.size(), 9u);
  EXPECT_STREQ(H1ClientConnection::phase_name(Phase::kTransaction, TxnPhase::kTarpit), "tarpit");
  EXPECT_STREQ(H1ClientConnection::phase_name(Phase::kTransaction, TxnPhase::kQueued), "queued");
  EXPECT_STREQ(H1ClientConnection::phase_name(Phase::kTunnel, TxnPhase::kTunnel), "tunnel");
  EXPECT_STREQ(H1ClientConnection::phase_name(Phase::kClosed, TxnPhase::kDone), "closed");
  EXPECT_STREQ(H1ClientConnection::phase_name(Phase::kFlushClose, TxnPhase::kDone), "closing");
  EXPECT_STREQ(H1ClientConnection::phase_name(Phase::kWaitRequest, TxnPhase::kIdle),
               "wait_request");
}

}  // namespace
}  // namespace weir
