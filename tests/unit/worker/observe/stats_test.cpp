// The statistics table: its rows as `show stat` and the stats page's CSV export
// render them (HAProxy's layout), and as `show stat json` does.

#include "worker/observe/stats.h"

#include <gtest/gtest.h>

#include <string>

namespace weir {
namespace {

StatRow row_with(std::initializer_list<std::pair<const char*, std::string>> values) {
  StatRow row(kStatCount);
  for (const auto& [name, value] : values) {
    const int i = stat_index(name);
    EXPECT_GE(i, 0) << name;
    if (i >= 0) row[static_cast<size_t>(i)] = value;
  }
  return row;
}

TEST(StatCsv, ValuesWithCommasOrQuotesAreQuoted) {
  StatRow row = row_with({{"pxname", "be"}, {"last_chk", "expected '+OK', got \"x\"\nmore"}});
  std::string csv = render_stat_csv({row});
  EXPECT_NE(csv.find(",\"expected '+OK', got \"\"x\"\" more\","), std::string::npos) << csv;
  EXPECT_EQ(csv.find("\nmore"), std::string::npos);
  EXPECT_EQ(csv.find("\n"
                     "be,"),
            csv.find('\n'));  // the row follows the header line
}

// Strings are escaped as the access log's JSON lines escape them
// (common/base/json.h): a control character is \u00XX, never dropped, and text
// from outside (an agent's words, a check's answer) stays readable and valid.
// `show stat json` used to drop control characters silently.
TEST(StatJson, StringsAreEscapedAsEverywhereElse) {
  StatRow row = row_with({{"pxname", "be"},
                          {"svname", "s\"1\""},
                          {"agent_desc", "down\x01 \\ caf\xc3\xa9 \xff"}});
  EXPECT_EQ(render_stat_json({row}),
            "[\n {\"pxname\":\"be\",\"svname\":\"s\\\"1\\\"\","
            "\"agent_desc\":\"down\\u0001 \\\\ caf\\u00e9 \\ufffd\"}\n]\n");
}

}  // namespace
}  // namespace weir
