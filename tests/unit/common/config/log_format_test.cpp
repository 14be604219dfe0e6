#include "common/config/log_format.h"

#include <gtest/gtest.h>

namespace weir::logfmt {
namespace {

std::string parse_error(std::string_view format, size_t* offset) {
  std::string error;
  EXPECT_FALSE(parse(format, &error, offset).has_value()) << format;
  return error;
}

TEST(LogFormat, BuiltInLayoutsParse) {
  std::string error;
  size_t offset = 0;
  EXPECT_TRUE(parse(kHttpFormat, &error, &offset)) << error;
  EXPECT_TRUE(parse(kTcpFormat, &error, &offset)) << error;
}

TEST(LogFormat, VariableNamesAreWholeWordsAndLiteralsStay) {
  std::string error;
  size_t offset = 0;
  auto t = parse("%tsc|%ts|%t|%Ts|%T %b/%bc %s/%sc/%si %%x", &error, &offset);
  ASSERT_TRUE(t) << error;
  std::vector<Var> vars;
  std::string literals;
  for (const Token& tok : t->tokens) {
    if (tok.var == Var::kLiteral) {
      literals += tok.text;
    } else {
      vars.push_back(tok.var);
    }
  }
  EXPECT_EQ(vars, (std::vector<Var>{Var::kTermination, Var::kTermination, Var::kAcceptDate,
                                    Var::kEpochSec, Var::kAcceptIso, Var::kBackend, Var::kBeConn,
                                    Var::kServer, Var::kSrvConn, Var::kServerIp}));
  EXPECT_EQ(literals, "|||| / // %x");
}

TEST(LogFormat, RequestHeadersGetOneSlotPerNameCaseInsensitively) {
  std::string error;
  size_t offset = 0;
  auto t = parse("%hr{User-Agent} %hr{host} %hr{user-agent}", &error, &offset);
  ASSERT_TRUE(t) << error;
  EXPECT_EQ(t->headers, (std::vector<std::string>{"user-agent", "host"}));
  ASSERT_EQ(t->tokens.size(), 5u);
  EXPECT_EQ(t->tokens[0].slot, 0u);
  EXPECT_EQ(t->tokens[2].slot, 1u);
  EXPECT_EQ(t->tokens[4].slot, 0u);
}

TEST(LogFormat, ErrorsNameTheProblemAndItsPosition) {
  size_t offset = 99;
  EXPECT_NE(parse_error("%ci %zz %ST", &offset).find("unknown log variable '%zz'"),
            std::string::npos);
  EXPECT_EQ(offset, 4u);
  EXPECT_NE(parse_error("ok %hr{Host", &offset).find("missing '}'"), std::string::npos);
  EXPECT_EQ(offset, 3u);
  EXPECT_NE(parse_error("%hr{}", &offset).find("needs a header name"), std::string::npos);
  EXPECT_EQ(offset, 0u);
  EXPECT_NE(parse_error("%hr{a b}", &offset).find("invalid character"), std::string::npos);
  EXPECT_EQ(offset, 5u);
  EXPECT_NE(parse_error("trailing %", &offset).find("unknown log variable"), std::string::npos);
  EXPECT_EQ(offset, 9u);
  // A known name followed by more letters is not that name.
  EXPECT_NE(parse_error("%cix", &offset).find("unknown log variable '%cix'"), std::string::npos);
  EXPECT_NE(parse_error("%bogus", &offset).find("'%bogus'"), std::string::npos);
}

TEST(LogFormat, SamplesAndCaptures) {
  std::string error;
  size_t offset = 0;
  auto t = parse("%[hdr(host),lower] %[var(txn.user)] %hr %[hdr(host),lower] %hr{X-Id}", &error,
                 &offset);
  ASSERT_TRUE(t) << error;
  ASSERT_EQ(t->samples.size(), 2u);  // one slot per distinct expression
  EXPECT_EQ(t->samples[0], "hdr(host),lower");
  EXPECT_EQ(t->samples[1], "var(txn.user)");
  std::vector<Var> vars;
  for (const Token& tok : t->tokens)
    if (tok.var != Var::kLiteral) vars.push_back(tok.var);
  EXPECT_EQ(vars, (std::vector<Var>{Var::kSample, Var::kSample, Var::kCaptures, Var::kSample,
                                    Var::kReqHeader}));
  EXPECT_EQ(t->tokens[4].slot, 0u);

  EXPECT_NE(parse_error("%ci %[hdr(host),lowr]", &offset).find("unknown converter 'lowr'"),
            std::string::npos);
  EXPECT_EQ(offset, 16u);  // at the converter, inside the brackets
  EXPECT_NE(parse_error("%[path", &offset).find("missing ']'"), std::string::npos);
  EXPECT_EQ(offset, 0u);
}

}  // namespace
}  // namespace weir::logfmt
