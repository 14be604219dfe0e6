#include "common/base/json.h"

#include <gtest/gtest.h>

#include <string>

namespace weir {
namespace {

TEST(JsonString, PlainAsciiIsQuotedAsItIs) {
  EXPECT_EQ(json_string(""), R"("")");
  EXPECT_EQ(json_string("GET /a?b=1 HTTP/1.1"), R"("GET /a?b=1 HTTP/1.1")");
  std::string out = "x=";
  append_json_string(out, "y");
  EXPECT_EQ(out, R"(x="y")");
}

TEST(JsonString, QuotesAndBackslashesGetABackslash) {
  EXPECT_EQ(json_string(R"(say "hi")"), R"("say \"hi\"")");
  EXPECT_EQ(json_string(R"(C:\dir\)"), R"("C:\\dir\\")");
}

TEST(JsonString, ControlCharactersAreEscapedNeverDropped) {
  EXPECT_EQ(json_string("a\tb\nc\rd\be\ff"), R"("a\tb\nc\rd\be\ff")");
  EXPECT_EQ(json_string(std::string("\x00\x01\x1f\x7f", 4)), R"("\u0000\u0001\u001f\u007f")");
}

TEST(JsonString, Utf8IsWrittenAsItsCodePoints) {
  EXPECT_EQ(json_string("caf\xc3\xa9"), R"("caf\u00e9")");          // 2 bytes
  EXPECT_EQ(json_string("\xe2\x82\xac"), R"("\u20ac")");            // 3 bytes: euro sign
  EXPECT_EQ(json_string("\xf0\x9f\x98\x80"), R"("\ud83d\ude00")");  // 4 bytes: a surrogate pair
  EXPECT_EQ(json_string("\xef\xbf\xbf\xf4\x8f\xbf\xbf"), R"("\uffff\udbff\udfff")");  // the ends
}

// Each maximal ill-formed subsequence becomes one U+FFFD (Unicode 15 section 3.9,
// "U+FFFD Substitution of Maximal Subparts"); what follows is decoded afresh.
TEST(JsonString, InvalidUtf8BecomesTheReplacementCharacter) {
  const std::string fffd = "\\ufffd";
  EXPECT_EQ(json_string("\x80"), "\"" + fffd + "\"");  // a lone continuation byte
  EXPECT_EQ(json_string("a\xff"
                        "b"),
            "\"a" + fffd + "b\"");                                // never a lead byte
  EXPECT_EQ(json_string("\xc0\xaf"), "\"" + fffd + fffd + "\"");  // overlong '/': C0 is no lead
  EXPECT_EQ(json_string("\xe0\x80\xaf"), "\"" + fffd + fffd + fffd + "\"");  // overlong
  EXPECT_EQ(json_string("\xe2\x82"
                        "A"),
            "\"" + fffd + "A\"");                          // truncated, then ASCII
  EXPECT_EQ(json_string("\xe2\x82"), "\"" + fffd + "\"");  // truncated at the end
  EXPECT_EQ(json_string("\xed\xa0\x80"), "\"" + fffd + fffd + fffd + "\"");  // a surrogate
  EXPECT_EQ(json_string("\xf4\x90\x80\x80"),
            "\"" + fffd + fffd + fffd + fffd + "\"");  // > U+10FFFF
  EXPECT_EQ(json_string("\xf0\x9f\x98"
                        "\xc3\xa9"),
            "\"" + fffd + "\\u00e9\"");
}

// Whatever the bytes, the result is printable ASCII between two quotes, and
// every quote or backslash inside is escaped.
TEST(JsonString, AnyBytesGiveOneAsciiJsonString) {
  uint32_t state = 12345;
  for (int round = 0; round < 2000; ++round) {
    std::string in;
    for (int i = 0; i < 16; ++i) {
      state = state * 1103515245 + 12345;
      in.push_back(static_cast<char>(state >> 16));
    }
    const std::string out = json_string(in);
    ASSERT_GE(out.size(), 2u);
    ASSERT_EQ(out.front(), '"');
    ASSERT_EQ(out.back(), '"');
    for (size_t i = 1; i + 1 < out.size(); ++i) {
      const unsigned char c = static_cast<unsigned char>(out[i]);
      ASSERT_TRUE(c >= 0x20 && c < 0x7f) << out;
      if (c == '\\') {
        ++i;  // the escaped character
        continue;
      }
      ASSERT_NE(c, '"') << out;
    }
  }
}

}  // namespace
}  // namespace weir
