// The configuration side of stick tables: the `stick_tables:` section
// (load/stick_tables.cpp), the track / sc_inc_gpc / sc_clr_gpc / sc_set_gpt
// actions of http and tcp_request rules (worker/stick/actions.cpp, which the
// loader runs), and conditions naming a table. Every mistake is an error at
// the line and column of what is wrong.

#include <gtest/gtest.h>

#include <string>
#include <string_view>

#include "common/config/config.h"
#include "common/stick/table.h"
#include "tests/unit/common/config/load/loader_test_util.h"

namespace weir {
namespace {

using namespace config_test;

// `tables` (the lines under stick_tables:, from line 2) before a frontend 'web'
// whose lines `frontend` start at line 2 + the lines of `tables` + 4.
std::string config(std::string_view tables, std::string_view frontend = "") {
  return "stick_tables:\n" + std::string(tables) +
         "frontends:\n"
         "  web:\n"
         "    bind: [\"127.0.0.1:8080\"]\n"
         "    default_backend: app\n" +
         std::string(frontend) +
         "backends:\n"
         "  app:\n"
         "    servers: {s1: \"127.0.0.1:9001\"}\n";
}

// Two tables (lines 2 and 3), then the frontend's lines from line 8.
constexpr std::string_view kTables =
    "  per_ip: {type: ip, size: 100k, store: [conn_cur, \"http_req_rate(10s)\", \"gpc(2)\"]}\n"
    "  per_key: {type: string, key_size: 64, size: 1m, store: [http_req_cnt, gpt0]}\n";

std::string with_rules(std::string_view frontend) {
  return config(kTables, frontend);
}

// ---- stick_tables: -------------------------------------------------------------------------

TEST(ConfigStickTables, ATableLoadsAsWritten) {
  const LoadResult r =
      load(config("  per_ip:\n"
                  "    type: ipv6\n"
                  "    size: 100k\n"
                  "    expire: 30s\n"
                  "    store: [conn_cur, \"http_req_rate(10s)\", gpc1, \"gpc_rate(2, 1m)\", gpt0]\n"
                  "  per_key: {type: string, key_size: 64, size: 10}\n"
                  "  plain: {size: 1}\n"));
  ASSERT_TRUE(loads(r));
  ASSERT_EQ(r.config->stick_tables.size(), 3U);
  const stick::TableDef& ip = r.config->stick_tables[0]->def();
  EXPECT_EQ(ip.name, "per_ip");
  EXPECT_EQ(ip.type, stick::KeyType::kIpv6);
  EXPECT_EQ(ip.size, 100U * 1024);
  EXPECT_EQ(ip.expire_ms, 30000);
  ASSERT_EQ(ip.store.size(), 5U);
  EXPECT_EQ(stick::stored_text(ip.store[1]), "http_req_rate(10s)");
  EXPECT_EQ(stick::stored_text(ip.store[2]), "gpc(2)");  // gpc1: gpc's elements 0 and 1
  EXPECT_EQ(stick::stored_text(ip.store[3]), "gpc_rate(2,1m)");
  EXPECT_EQ(stick::stored_text(ip.store[4]), "gpt(1)");
  const stick::TableDef& key = r.config->stick_tables[1]->def();
  EXPECT_EQ(key.type, stick::KeyType::kString);
  EXPECT_EQ(key.key_size, 64U);
  // The defaults: an ip table, 32-byte keys, no expiry, nothing stored.
  const stick::TableDef& plain = r.config->stick_tables[2]->def();
  EXPECT_EQ(plain.type, stick::KeyType::kIp);
  EXPECT_EQ(plain.key_size, 32U);
  EXPECT_EQ(plain.expire_ms, 0);
  EXPECT_TRUE(plain.store.empty());
}

TEST(ConfigStickTables, EachMistakeIsReportedWhereItIs) {
  struct Case {
    std::string_view table;  // the line under stick_tables: (line 2)
    int column;
    std::string_view message;
  };
  constexpr Case kCases[] = {
      {"  t: {type: ipv4, size: 10}", 13,
       "stick table 't': type: unknown type 'ipv4' (expected ip, ipv6, integer, string or "
       "binary)"},
      {"  t: {type: ip, size: 10, key_size: 8}", 37,
       "stick table 't': key_size is for string and binary tables (an ip key has a fixed size)"},
      {"  t: {key_size: 8, size: 10}", 17, "key_size is for string and binary tables"},
      {"  t: {type: ip}", 6, "stick table 't' needs a size: the most entries it holds (e.g. 100k)"},
      {"  t: {type: ip, size: 0}", 23, "stick table 't': size: must be between 1 and 4g (got 0)"},
      {"  t: {size: 10, expire: 10x}", 25,
       "stick table 't': expire: invalid duration '10x': unknown unit 'x'"},
      {"  t: {size: 10, store: conn_cur}", 24,
       "stick table 't': store must be a list such as [conn_cur, \"http_req_rate(10s)\"]"},
      {"  t: {size: 10, store: [conn_curr]}", 25,
       "stick table 't': store: unknown data type 'conn_curr' (known: server_key, gpt, gpc, "},
      {"  t: {size: 10, store: [conn_cur, http_req_cnt, conn_cur]}", 49,
       "stick table 't': store: 'conn_cur' is stored twice"},
      {"  t: {size: 10, store: [gpc0, gpc1]}", 31,
       "stick table 't': store: 'gpc1' and 'gpc0' both store gpc (gpc0 and gpc1 are its elements "
       "0 and 1, gpt0 is element 0 of gpt): store it once, as 'gpc(2)'"},
      {"  t: {size: 10, store: [\"http_req_rate(10s)\", \"http_req_rate(1m)\"]}", 47,
       "stick table 't': store: 'http_req_rate(1m)' and 'http_req_rate(10s)' both store "
       "http_req_rate: a table keeps one period per rate"},
      {"  t: {size: 10, store: [\"http_req_rate(10x)\"]}", 25,
       "stick table 't': store: http_req_rate: the period must be a duration from 1ms to 30d"},
      {"  t: {size: 10, store: [http_req_rate]}", 25,
       "stick table 't': store: http_req_rate needs a period: http_req_rate(10s)"},
      {"  t: {size: 10, store: [\"gpc(0)\"]}", 25,
       "stick table 't': store: gpc: the number of elements must be 1..100 (got '0')"},
      // YAML splits a flow list at every comma: one error, which says to quote the item.
      {"  t: {size: 10, store: [conn_cur, gpc_rate(2,1m)]}", 35,
       "stick table 't': store: put \"gpc_rate(2,1m)\" in quotes (in a [...] list, YAML splits "
       "it at the comma)"},
      {"  t: {size: 10, expiry: 1m}", 17, "unknown key 'expiry' in stick table 't'"},
      {"  'a b': {size: 10}", 3,
       "invalid stick table name 'a b' (use letters, digits, '_', '.' and '-')"},
  };
  for (const Case& c : kCases) {
    const LoadResult r = load(config(std::string(c.table) + "\n"));
    EXPECT_TRUE(only_error(r, 2, c.column, c.message)) << c.table;
  }
}

// ---- the actions ---------------------------------------------------------------------------

TEST(ConfigStickActions, EachActionLoadsWithItsDefaults) {
  const LoadResult r =
      load(with_rules("    tcp_request:\n"
                      "      - connection: {track: per_ip}\n"
                      "      - connection: {sc_inc_gpc: ~}\n"
                      "    http_request:\n"
                      "      - track: {table: per_key, key: \"hdr(x-api-key)\", counter: 2}\n"
                      "      - sc_clr_gpc: {index: 1, counter: 0}\n"
                      "      - sc_set_gpt: {index: 0, counter: 2, value: 7}\n"
                      "      - sc_set_gpt: {value: sc0_http_req_rate}\n"
                      "    http_response:\n"
                      "      - sc_inc_gpc:\n"));
  ASSERT_TRUE(loads(r));
  const RuleSet& rules = r.config->frontends.at(0).rules;
  ASSERT_EQ(rules.tcp_request.size(), 2U);
  const StickAction& track_ip = *rules.tcp_request[0].stick;
  EXPECT_EQ(track_ip.table, r.config->stick_tables[0]);
  EXPECT_EQ(track_ip.key.text, "src");  // the default key
  EXPECT_EQ(track_ip.counter, 0);
  const StickAction& inc = *rules.tcp_request[1].stick;
  EXPECT_EQ(inc.index, 0U);
  EXPECT_EQ(inc.counter, 0);

  ASSERT_EQ(rules.http_request.size(), 4U);
  const StickAction& track_key = *rules.http_request[0].stick;
  EXPECT_EQ(track_key.table, r.config->stick_tables[1]);
  EXPECT_EQ(track_key.key.text, "hdr(x-api-key)");
  EXPECT_EQ(track_key.counter, 2);
  EXPECT_EQ(rules.http_request[1].stick->index, 1U);
  const StickAction& constant = *rules.http_request[2].stick;
  EXPECT_EQ(constant.counter, 2);
  EXPECT_EQ(constant.constant, 7);
  EXPECT_FALSE(constant.value.has_value());
  const StickAction& sampled = *rules.http_request[3].stick;
  ASSERT_TRUE(sampled.value.has_value());
  EXPECT_EQ(sampled.value->text, "sc0_http_req_rate");
  ASSERT_EQ(rules.http_response.size(), 1U);
  EXPECT_NE(rules.http_response[0].stick, nullptr);
}

TEST(ConfigStickActions, EachMistakeIsReportedWhereItIs) {
  struct Case {
    std::string_view rules;  // the frontend's lines from line 8; the mistake is on line 9
    int column;
    std::string_view message;
  };
  constexpr Case kCases[] = {
      {"    http_request:\n      - track: nosuch\n", 16,
       "frontend 'web': http_request rule 1: track: no stick table named 'nosuch' (known: "
       "per_ip, per_key)"},
      {"    http_request:\n      - track: {key: src}\n", 16,
       "http_request rule 1: track needs a table: {table: NAME, key: src}"},
      {"    http_request:\n      - track: {table: per_ip, kye: src}\n", 32,
       "unknown key 'kye' in frontend 'web': http_request rule 1: track; did you mean 'key'?"},
      {"    tcp_request:\n      - connection: {track: {table: per_key, key: \"hdr(x-api-key)\"}}\n",
       51,
       "tcp_request rule 1: track: key 'hdr(x-api-key)' needs an HTTP request (track it in "
       "http_request)"},
      {"    http_request:\n      - track: {table: per_ip, key: status}\n", 37,
       "http_request rule 1: track: key 'status' needs the response"},
      {"    http_response:\n      - track: per_ip\n", 9,
       "http_response rule 1: track is not a response action here"},
      {"    http_request:\n      - sc_set_gpt: {index: 0}\n", 21,
       "http_request rule 1: sc_set_gpt needs a value: a number or a sample"},
      {"    http_request:\n      - sc_set_gpt:\n", 9,
       "http_request rule 1: sc_set_gpt needs a value: {index: 0, counter: 0, value: 1}"},
      {"    http_request:\n      - sc_set_gpt: {value: -1}\n", 29,
       "http_request rule 1: sc_set_gpt: value: must be between 0 and 4294967295 (got -1)"},
      {"    tcp_request:\n      - connection: {sc_set_gpt: {value: \"hdr(x-gpt)\"}}\n", 42,
       "tcp_request rule 1: sc_set_gpt: value 'hdr(x-gpt)' needs an HTTP request"},
      {"    http_request:\n      - sc_inc_gpc: {counter: 3}\n", 31,
       "http_request rule 1: sc_inc_gpc: counter: must be between 0 and 2 (got 3)"},
      {"    http_request:\n      - track: {table: per_ip, counter: 3}\n", 41,
       "http_request rule 1: track: counter: must be between 0 and 2 (got 3)"},
      {"    http_request:\n      - sc_clr_gpc: {index: 100}\n", 29,
       "http_request rule 1: sc_clr_gpc: index: must be between 0 and 99 (got 100)"},
      {"    http_request:\n      - sc_inc_gpc: 1\n", 21,
       "http_request rule 1: sc_inc_gpc: a map such as {index: 0, counter: 0}"},
      {"    tcp_request:\n      - connection: sc_inc_gpc\n", 21,
       "tcp_request rule 1: sc_inc_gpc is written as a map: {sc_inc_gpc: {index, counter}}"},
      {"    http_request:\n      - deny: ~\n        if: \"{ sc0_http_req_rate(nosuch) gt 10 }\"\n",
       16,
       "http_request rule 1: if: sc0_http_req_rate: no stick table named 'nosuch' (known: "
       "per_ip, per_key)"},
  };
  for (const Case& c : kCases) {
    const LoadResult r = load(with_rules(c.rules));
    const int line = std::string_view(c.rules).find("if:") != std::string_view::npos ? 10 : 9;
    EXPECT_TRUE(only_error(r, line, c.column, c.message)) << c.rules;
  }
}

TEST(ConfigStickActions, TrackNamingATableWithoutStickTablesSaysNoneIsDefined) {
  const LoadResult r = load(
      "frontends:\n  web: {bind: \"127.0.0.1:8080\", default_backend: app, http_request: "
      "[{track: t}]}\nbackends:\n  app: {servers: {s1: \"127.0.0.1:9001\"}}\n");
  EXPECT_TRUE(only_error(r, 2, 78,
                         "http_request rule 1: track: no stick table named 't' (stick_tables "
                         "defines none)"));
}

}  // namespace
}  // namespace weir
