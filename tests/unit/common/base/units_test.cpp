#include "common/base/units.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <string>

namespace weir {
namespace {

struct DurationCase {
  const char* text;
  int64_t ms;
};

TEST(ParseDuration, AcceptsEveryUnitAndBareMilliseconds) {
  const DurationCase cases[] = {
      {"0", 0},
      {"250", 250},
      {"100ms", 100},
      {"0ms", 0},
      {"5s", 5000},
      {"2m", 120000},
      {"1h", 3600000},
      {"1d", 86400000},
      {"15m", 900000},
      {"1500ms", 1500},
      {"007s", 7000},
      {"90s", 90000},
      {"9223372036854775807", std::numeric_limits<int64_t>::max()},
  };
  for (const auto& c : cases) {
    std::string error;
    const auto ms = parse_duration_ms(c.text, &error);
    ASSERT_TRUE(ms.has_value()) << c.text << ": " << error;
    EXPECT_EQ(*ms, c.ms) << c.text;
  }
}

struct InvalidCase {
  const char* text;
  const char* error;
};

TEST(ParseDuration, RejectsMalformedValuesWithAReason) {
  const InvalidCase cases[] = {
      {"", "empty value"},
      {"-5s", "negative durations are not allowed"},
      {"-1", "negative durations are not allowed"},
      {"s", "not a number"},
      {"abc", "not a number"},
      {"+5s", "not a number"},
      {" 5s", "not a number"},
      {"5x", "unknown unit 'x' (use ms, s, m, h or d)"},
      {"1500us", "unknown unit 'us' (use ms, s, m, h or d)"},
      {"5S", "unknown unit 'S' (use ms, s, m, h or d)"},
      {"5 s", "unknown unit ' s' (use ms, s, m, h or d)"},
      {"5sec", "unknown unit 'sec' (use ms, s, m, h or d)"},
      {"1.5s", "fractions are not supported; use a smaller unit"},
      {"9223372036854775808", "value too large"},
      {"106751991167301d", "value too large"},
      {"99999999999999999999999s", "value too large"},
  };
  for (const auto& c : cases) {
    std::string error;
    EXPECT_FALSE(parse_duration_ms(c.text, &error).has_value()) << c.text;
    EXPECT_EQ(error, c.error) << "'" << c.text << "'";
  }
}

TEST(ParseDuration, NullErrorPointerIsAllowed) {
  EXPECT_FALSE(parse_duration_ms("bad", nullptr).has_value());
  EXPECT_EQ(parse_duration_ms("1s", nullptr), 1000);
}

struct SizeCase {
  const char* text;
  uint64_t bytes;
};

TEST(ParseSize, AcceptsBinaryMultiplesInEitherCase) {
  const SizeCase cases[] = {
      {"0", 0},
      {"512", 512},
      {"16k", 16384},
      {"16K", 16384},
      {"1m", 1048576},
      {"1M", 1048576},
      {"1g", 1073741824},
      {"2G", 2147483648ULL},
      {"18446744073709551615", std::numeric_limits<uint64_t>::max()},
      {"17179869183g", 17179869183ULL << 30},
  };
  for (const auto& c : cases) {
    std::string error;
    const auto bytes = parse_size(c.text, &error);
    ASSERT_TRUE(bytes.has_value()) << c.text << ": " << error;
    EXPECT_EQ(*bytes, c.bytes) << c.text;
  }
}

TEST(ParseSize, RejectsMalformedValuesWithAReason) {
  const InvalidCase cases[] = {
      {"", "empty value"},
      {"-1", "negative sizes are not allowed"},
      {"k", "not a number"},
      {"16kb", "unknown unit 'kb' (use k, m or g)"},
      {"16KB", "unknown unit 'KB' (use k, m or g)"},
      {"1t", "unknown unit 't' (use k, m or g)"},
      {"1.5k", "fractions are not supported; use a smaller unit"},
      {"18446744073709551616", "value too large"},
      {"17179869184g", "value too large"},
  };
  for (const auto& c : cases) {
    std::string error;
    EXPECT_FALSE(parse_size(c.text, &error).has_value()) << c.text;
    EXPECT_EQ(error, c.error) << "'" << c.text << "'";
  }
}

TEST(FormatDuration, UsesTheLargestExactUnitOrDecimalSeconds) {
  const std::pair<int64_t, const char*> cases[] = {
      {0, "0ms"},
      {1, "1ms"},
      {999, "999ms"},
      {1000, "1s"},
      {1500, "1.5s"},
      {1234, "1.234s"},
      {1050, "1.05s"},
      {90000, "90s"},
      {120000, "2m"},
      {3600000, "1h"},
      {86400000, "1d"},
      {900000, "15m"},
      {-1500, "-1.5s"},
      {-2000, "-2s"},
      {std::numeric_limits<int64_t>::min(), "-9223372036854775808ms"},
  };
  for (const auto& [ms, text] : cases) EXPECT_EQ(format_duration_ms(ms), text) << ms;
}

TEST(FormatDuration, RoundTripsThroughTheParserForWholeUnits) {
  for (const int64_t ms : {0LL, 7LL, 1000LL, 60000LL, 3600000LL, 86400000LL * 3}) {
    EXPECT_EQ(parse_duration_ms(format_duration_ms(ms), nullptr), ms);
  }
}

}  // namespace
}  // namespace weir
