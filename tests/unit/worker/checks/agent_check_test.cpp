// What an agent check reads in its server's reply (weight, maxconn, state).

#include <gtest/gtest.h>

#include "worker/checks/agent_check.h"

namespace weir {
namespace {

TEST(AgentReply, WeightsMaxconnAndStates) {
  AgentReply r = parse_agent_reply("75%, maxconn:30 drain\r\n");
  EXPECT_EQ(r.weight_percent, 75);
  EXPECT_EQ(r.weight, -1);
  EXPECT_EQ(r.maxconn, 30);
  EXPECT_EQ(r.admin, AgentReply::Admin::kDrain);
  EXPECT_EQ(r.op, AgentReply::Op::kNone);
  EXPECT_TRUE(r.unknown.empty());

  r = parse_agent_reply("weight:12\tUP\n");
  EXPECT_EQ(r.weight, 12);
  EXPECT_EQ(r.op, AgentReply::Op::kUp);

  r = parse_agent_reply("weight:50%");
  EXPECT_EQ(r.weight_percent, 50);
  EXPECT_EQ(r.weight, -1);

  EXPECT_EQ(parse_agent_reply("weight:900").weight, 256);  // clamped to the highest weight
  EXPECT_EQ(parse_agent_reply("maxconn:0").maxconn, 0);    // no limit
}

TEST(AgentReply, DownFailAndStoppedCarryAReason) {
  for (const char* word : {"down", "fail", "stopped", "DOWN"}) {
    AgentReply r = parse_agent_reply(std::string(word) + " #disk full, read-only \n");
    EXPECT_EQ(r.op, AgentReply::Op::kDown) << word;
    EXPECT_EQ(r.reason, "disk full, read-only") << word;
  }
  EXPECT_EQ(parse_agent_reply("maint").admin, AgentReply::Admin::kMaint);
  EXPECT_EQ(parse_agent_reply("ready").admin, AgentReply::Admin::kReady);
}

TEST(AgentReply, UnknownWordsAreReportedAndTheRestApplies) {
  AgentReply r = parse_agent_reply("sleepy 40% maxconn:x -5%");
  EXPECT_EQ(r.weight_percent, 40);
  EXPECT_EQ(r.maxconn, -1);
  EXPECT_EQ(r.unknown, "sleepy maxconn:x -5%");
  EXPECT_EQ(parse_agent_reply("").unknown, "");
}

}  // namespace
}  // namespace weir
