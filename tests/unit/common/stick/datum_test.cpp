// What a stick table can store, as `store:` writes it (common/stick/datum.h):
// every datum and shorthand is read, every bad item gets its own message, and
// stored_text writes what parse_stored reads back.

#include "common/stick/datum.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace weir::stick {
namespace {

std::string error_of(std::string_view text) {
  std::string error;
  auto s = parse_stored(text, &error);
  EXPECT_FALSE(s) << text << " was read as " << (s ? stored_text(*s) : "");
  return error;
}

struct Read {
  std::string text;
  Datum datum;
  uint32_t count;
  int64_t period_ms;
};

TEST(StickDatum, ReadsEveryDatumAndShorthand) {
  const std::vector<Read> cases = {
      {"server_key", Datum::kServerKey, 1, 0},
      {"gpt(3)", Datum::kGpt, 3, 0},
      {"gpc(2)", Datum::kGpc, 2, 0},
      {"gpc_rate(2,1m)", Datum::kGpcRate, 2, 60'000},
      {"conn_cnt", Datum::kConnCnt, 1, 0},
      {"conn_cur", Datum::kConnCur, 1, 0},
      {"conn_rate(10s)", Datum::kConnRate, 1, 10'000},
      {"sess_cnt", Datum::kSessCnt, 1, 0},
      {"sess_rate(1h)", Datum::kSessRate, 1, 3'600'000},
      {"http_req_cnt", Datum::kHttpReqCnt, 1, 0},
      {"http_req_rate(10s)", Datum::kHttpReqRate, 1, 10'000},
      {"http_err_cnt", Datum::kHttpErrCnt, 1, 0},
      {"http_err_rate(500ms)", Datum::kHttpErrRate, 1, 500},
      {"http_fail_cnt", Datum::kHttpFailCnt, 1, 0},
      {"http_fail_rate(1d)", Datum::kHttpFailRate, 1, 86'400'000},
      {"bytes_in_cnt", Datum::kBytesInCnt, 1, 0},
      {"bytes_out_cnt", Datum::kBytesOutCnt, 1, 0},
      {"bytes_in_rate(1m)", Datum::kBytesInRate, 1, 60'000},
      {"bytes_out_rate(30d)", Datum::kBytesOutRate, 1, 30LL * 86'400'000},
      // HAProxy's shorthands: the first elements of the arrays.
      {"gpc0", Datum::kGpc, 1, 0},
      {"gpc1", Datum::kGpc, 2, 0},
      {"gpt0", Datum::kGpt, 1, 0},
      {"gpc0_rate(10s)", Datum::kGpcRate, 1, 10'000},
      {"gpc1_rate(10s)", Datum::kGpcRate, 2, 10'000},
      // Blanks around the name and the arguments; the limits of both.
      {"  conn_cur\t", Datum::kConnCur, 1, 0},
      {"gpc_rate( 3 , 1s )", Datum::kGpcRate, 3, 1000},
      {"gpc(100)", Datum::kGpc, 100, 0},
      {"gpt(1)", Datum::kGpt, 1, 0},
      {"conn_rate(1ms)", Datum::kConnRate, 1, 1},
      {"conn_rate(1500)", Datum::kConnRate, 1, 1500},  // a bare number is milliseconds
  };
  std::vector<bool> seen(kDatumCount, false);
  for (const Read& c : cases) {
    std::string error;
    auto s = parse_stored(c.text, &error);
    ASSERT_TRUE(s) << c.text << ": " << error;
    EXPECT_EQ(s->datum, c.datum) << c.text;
    EXPECT_EQ(s->count, c.count) << c.text;
    EXPECT_EQ(s->period_ms, c.period_ms) << c.text;
    seen[static_cast<int>(c.datum)] = true;
  }
  for (int d = 0; d < kDatumCount; ++d)
    EXPECT_TRUE(seen[d]) << "no case for " << info(static_cast<Datum>(d)).name;
}

TEST(StickDatum, NamesAndShapesAgree) {
  for (int i = 0; i < kDatumCount; ++i) {
    const auto d = static_cast<Datum>(i);
    EXPECT_EQ(datum_named(info(d).name), d) << info(d).name;
  }
  EXPECT_FALSE(datum_named("gpc0"));  // a shorthand, not a datum
  EXPECT_FALSE(datum_named(""));
  EXPECT_EQ(info(Datum::kConnCur).shape, Shape::kCurrent);
  EXPECT_EQ(info(Datum::kGpcRate).shape, Shape::kRate);
  EXPECT_TRUE(info(Datum::kGpcRate).array);
  EXPECT_FALSE(info(Datum::kHttpReqRate).array);
}

TEST(StickDatum, UnknownNameListsTheKnownOnes) {
  EXPECT_EQ(error_of("conn_curr"),
            "unknown data type 'conn_curr' (known: server_key, gpt, gpc, gpc_rate, conn_cnt, "
            "conn_cur, conn_rate, sess_cnt, sess_rate, http_req_cnt, http_req_rate, "
            "http_err_cnt, http_err_rate, http_fail_cnt, http_fail_rate, bytes_in_cnt, "
            "bytes_out_cnt, bytes_in_rate, bytes_out_rate, and the shorthands gpc0, gpc1, gpt0, "
            "gpc0_rate, gpc1_rate)");
  EXPECT_EQ(error_of("gpc2").substr(0, 30), "unknown data type 'gpc2' (know");
  EXPECT_EQ(error_of("").substr(0, 26), "unknown data type '' (know");
  EXPECT_EQ(error_of("conn_cur x").substr(0, 32), "unknown data type 'conn_cur x' (");
}

TEST(StickDatum, BadItemsHaveTheirOwnMessage) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      // A period missing.
      {"conn_rate", "conn_rate needs a period: conn_rate(10s)"},
      {"gpc0_rate", "gpc0_rate needs a period: gpc0_rate(10s)"},
      {"gpc_rate", "gpc_rate needs a period: gpc_rate(1, 10s)"},
      {"gpc_rate(2)", "gpc_rate takes a count and a period: gpc_rate(2, 10s)"},
      // Elements missing, zero, too many, not a number.
      {"gpc", "gpc needs a number of elements: gpc(1)"},
      {"gpt", "gpt needs a number of elements: gpt(1)"},
      {"gpc(0)", "gpc: the number of elements must be 1..100 (got '0')"},
      {"gpt(101)", "gpt: the number of elements must be 1..100 (got '101')"},
      {"gpc(99999999999)", "gpc: the number of elements must be 1..100 (got '99999999999')"},
      {"gpc(-1)", "gpc: the number of elements must be 1..100 (got '-1')"},
      {"gpc(x)", "gpc: the number of elements must be 1..100 (got 'x')"},
      {"gpc()", "gpc: the number of elements must be 1..100 (got '')"},
      {"gpc_rate(0,10s)", "gpc_rate: the number of elements must be 1..100 (got '0')"},
      {"gpc_rate(,10s)", "gpc_rate: the number of elements must be 1..100 (got '')"},
      // Bad durations.
      {"conn_rate(0s)", "conn_rate: the period must be a duration from 1ms to 30d"},
      {"conn_rate(31d)", "conn_rate: the period must be a duration from 1ms to 30d"},
      {"conn_rate(10x)",
       "conn_rate: the period must be a duration from 1ms to 30d: unknown unit 'x' (use ms, s, "
       "m, h or d)"},
      {"conn_rate(1.5s)",
       "conn_rate: the period must be a duration from 1ms to 30d: fractions are not supported; "
       "use a smaller unit"},
      {"conn_rate()", "conn_rate: the period must be a duration from 1ms to 30d: empty value"},
      {"gpc_rate(2,)", "gpc_rate: the period must be a duration from 1ms to 30d: empty value"},
      {"conn_rate(-1s)",
       "conn_rate: the period must be a duration from 1ms to 30d: negative durations are not "
       "allowed"},
      // Stray arguments, and a missing parenthesis.
      {"conn_cnt(5)", "conn_cnt takes no argument"},
      {"server_key()", "server_key takes no argument"},
      {"gpc0(3)", "gpc0 takes no argument"},
      {"gpt0(1)", "gpt0 takes no argument"},
      {"conn_rate(10s,1)", "conn_rate: too many arguments"},
      {"gpc0_rate(1,10s)", "gpc0_rate: too many arguments"},
      {"gpc(1,2)", "gpc: too many arguments"},
      {"gpc_rate(2,10s,3)", "gpc_rate: too many arguments"},
      {"conn_rate(10s", "'conn_rate(10s': a closing ')' is missing"},
      {"conn_rate(10s) x", "'conn_rate(10s) x': a closing ')' is missing"},
  };
  for (const auto& [text, message] : cases) EXPECT_EQ(error_of(text), message) << text;
}

TEST(StickDatum, StoredTextReadsBackAsTheSameItem) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"server_key", "server_key"},
      {"gpt0", "gpt(1)"},
      {"gpc1", "gpc(2)"},
      {"gpc(7)", "gpc(7)"},
      {"gpc1_rate(1m)", "gpc_rate(2,1m)"},
      {"gpc_rate( 3 , 90s )", "gpc_rate(3,90s)"},
      {"conn_cur", "conn_cur"},
      {"http_req_rate(10s)", "http_req_rate(10s)"},
      {"http_req_rate(60000ms)", "http_req_rate(1m)"},
      {"bytes_out_rate(1ms)", "bytes_out_rate(1ms)"},
      // A period in no whole unit is written in milliseconds, which store:
      // reads (it takes no fractions).
      {"conn_rate(1500ms)", "conn_rate(1500ms)"},
      {"sess_rate(61001ms)", "sess_rate(61001ms)"},
      {"gpc_rate(1,2500)", "gpc_rate(1,2500ms)"},
  };
  for (const auto& [text, written] : cases) {
    std::string error;
    auto s = parse_stored(text, &error);
    ASSERT_TRUE(s) << text << ": " << error;
    EXPECT_EQ(stored_text(*s), written) << text;
    auto again = parse_stored(stored_text(*s), &error);
    ASSERT_TRUE(again) << stored_text(*s) << ": " << error;
    EXPECT_EQ(again->datum, s->datum) << text;
    EXPECT_EQ(again->count, s->count) << text;
    EXPECT_EQ(again->period_ms, s->period_ms) << text;
  }
  // Every datum and every period from 1ms to a few seconds reads back.
  for (int d = 0; d < kDatumCount; ++d) {
    const DatumInfo& in = info(static_cast<Datum>(d));
    for (int64_t ms = 1; ms < 5000; ms += 7) {
      Stored s{static_cast<Datum>(d), in.array ? static_cast<uint32_t>(ms % kMaxArray + 1) : 1,
               in.shape == Shape::kRate ? ms : 0};
      std::string error;
      auto again = parse_stored(stored_text(s), &error);
      ASSERT_TRUE(again) << stored_text(s) << ": " << error;
      EXPECT_EQ(again->count, s.count) << stored_text(s);
      EXPECT_EQ(again->period_ms, s.period_ms) << stored_text(s);
    }
  }
}

}  // namespace
}  // namespace weir::stick
