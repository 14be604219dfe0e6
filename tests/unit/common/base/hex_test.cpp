#include "common/base/hex.h"

#include <gtest/gtest.h>

#include <string>

namespace weir {
namespace {

TEST(Hex, EncodesEveryByteAsTwoLowerCaseDigits) {
  EXPECT_EQ(to_hex(std::string_view()), "");
  EXPECT_EQ(to_hex(std::string("\x00\x01\x7f\x80\xab\xff", 6)), "00017f80abff");
  const unsigned char id[] = {0xde, 0xad, 0xbe, 0xef};
  EXPECT_EQ(to_hex(id, sizeof id), "deadbeef");
}

TEST(Hex, DecodesWhatItEncodesAndEitherCase) {
  std::string all;
  for (int i = 0; i < 256; ++i) all.push_back(static_cast<char>(i));
  EXPECT_EQ(from_hex(to_hex(all)), all);
  EXPECT_EQ(from_hex("DEADbeef"), std::string("\xde\xad\xbe\xef"));
  EXPECT_EQ(from_hex(""), std::string());
}

// Bad input is refused without an exception: the worker decodes what its master
// sends before it can report anything (the decoder it had used std::stoi, which
// threw on a non-digit and ended the process with an uncaught exception).
TEST(Hex, BadInputIsRefusedNotThrown) {
  for (std::string_view bad :
       {"0", "abc", "zz", "0g", "g0", "12 4", "-1", "+1", "0x12", "\xff\xff"}) {
    EXPECT_EQ(from_hex(bad), std::nullopt) << bad;
  }
  EXPECT_EQ(from_hex(std::string_view("00\0", 4)), std::nullopt);  // a NUL is no digit
}

}  // namespace
}  // namespace weir
