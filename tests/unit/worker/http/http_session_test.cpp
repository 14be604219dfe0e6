// What `show sess` says about an http session's phase.

#include "worker/http/http_session.h"

#include <gtest/gtest.h>

#include <set>
#include <string>

namespace weir {
namespace {

using Phase = HttpSession::Phase;

// Every phase has its own name, the last (closed) included: the names were an
// array of 8 for 9 phases once, so that a tarpitted session showed as "tunnel"
// and a closed one read past the end of the array.
TEST(HttpSessionPhase, EveryPhaseHasItsOwnName) {
  std::set<std::string> seen;
  for (int i = 0; i <= static_cast<int>(Phase::kClosed); ++i) {
    const std::string name = HttpSession::phase_name(static_cast<Phase>(i));
    EXPECT_NE(name, "?") << i;
    EXPECT_TRUE(seen.insert(name).second) << name << " twice";
  }
  EXPECT_STREQ(HttpSession::phase_name(Phase::kTarpit), "tarpit");
  EXPECT_STREQ(HttpSession::phase_name(Phase::kTunnel), "tunnel");
  EXPECT_STREQ(HttpSession::phase_name(Phase::kClosed), "closed");
  EXPECT_STREQ(HttpSession::phase_name(Phase::kFlushClose), "closing");
}

}  // namespace
}  // namespace weir
