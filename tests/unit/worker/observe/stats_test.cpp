// The statistics table: its rows as `show stat` and the stats page's CSV export
// render them (HAProxy's layout), and as `show stat json` does.

#include "worker/observe/stats.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <map>
#include <memory>
#include <string>

#include "common/event/event_loop.h"
#include "worker/backend/backend.h"

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
  StatRow row = row_with(
      {{"pxname", "be"}, {"svname", "s\"1\""}, {"agent_desc", "down\x01 \\ caf\xc3\xa9 \xff"}});
  EXPECT_EQ(render_stat_json({row}),
            "[\n {\"pxname\":\"be\",\"svname\":\"s\\\"1\\\"\","
            "\"agent_desc\":\"down\\u0001 \\\\ caf\\u00e9 \\ufffd\"}\n]\n");
}

// HAProxy's columns in HAProxy's order, up to conn_tot: tools that read the CSV
// by position find the same data in the same place.
TEST(StatCsv, ColumnsAreHaproxysInItsOrder) {
  ASSERT_EQ(kStatCount, 80u);
  const std::pair<const char*, int> positions[] = {
      {"pxname", 0},   {"svname", 1}, {"scur", 4},          {"stot", 7},
      {"econ", 13},    {"wretr", 15}, {"status", 17},       {"weight", 18},
      {"pid", 26},     {"type", 32},  {"check_status", 36}, {"hrsp_2xx", 40},
      {"req_tot", 48}, {"addr", 73},  {"algo", 76},         {"conn_tot", 79}};
  for (const auto& [name, at] : positions) EXPECT_EQ(stat_index(name), at) << name;
  EXPECT_EQ(stat_index("nope"), -1);
  const std::string header = render_stat_csv({}).substr(0, 41);
  EXPECT_EQ(header, "# pxname,svname,qcur,qmax,scur,smax,slim,");
}

// A worker's table built from a configuration: its frontends and backends with
// the counters traffic would have left, read as show stat reads them.
class StatTable : public ::testing::Test {
 protected:
  void SetUp() override {
    LoadResult r = load_config_text(R"y(frontends:
  web:
    bind: ["127.0.0.1:8080"]
    maxconn: 500
    default_backend: app
  raw:
    mode: tcp
    bind: ["127.0.0.1:8081"]
    default_backend: db
backends:
  app:
    balance: leastconn
    servers:
      s1: {address: "127.0.0.1:9001", weight: 3, maxconn: 20, maxqueue: 7}
      s2: {address: "127.0.0.1:9002", weight: 2}
      spare: {address: "127.0.0.1:9003", backup: true}
  db:
    mode: tcp
    servers: {pg: "127.0.0.1:5432"}
)y",
                                    "weir.yaml");
    ASSERT_TRUE(r.config) << r.errors[0].to_string();
    config_ = std::move(*r.config);
    for (const BackendConfig& bc : config_.backends) {
      backends_.push_back(std::make_unique<Backend>(bc, 1));
    }
    for (const FrontendConfig& fc : config_.frontends) {
      Backend* be = backends_[static_cast<size_t>(config_.backend_index(fc.default_backend))].get();
      frontends_.push_back(std::make_unique<Frontend>(fc, be, 1));
    }
    start_ms_ = EventLoop::monotonic_ms() - 5000;  // the worker started 5 s ago
  }

  // Rows by "proxy/server".
  std::map<std::string, StatRow> rows(std::string_view only = "", bool draining = false) {
    std::map<std::string, StatRow> by;
    order_.clear();
    for (StatRow& row :
         collect_stats(StatSource{frontends_, backends_, draining, start_ms_}, only)) {
      order_.push_back(stat_field(row, "pxname") + "/" + stat_field(row, "svname"));
      by[order_.back()] = std::move(row);
    }
    return by;
  }
  static std::string f(const StatRow& row, std::string_view name) { return stat_field(row, name); }

  Config config_;
  std::vector<std::unique_ptr<Backend>> backends_;
  std::vector<std::unique_ptr<Frontend>> frontends_;
  int64_t start_ms_ = 0;
  std::vector<std::string> order_;
};

TEST_F(StatTable, RowsComeFrontendsFirstThenEachBackendsServersAndItself) {
  rows();
  EXPECT_EQ(order_, (std::vector<std::string>{"web/FRONTEND", "raw/FRONTEND", "app/s1", "app/s2",
                                              "app/spare", "app/BACKEND", "db/pg", "db/BACKEND"}));
  rows("app");
  EXPECT_EQ(order_, (std::vector<std::string>{"app/s1", "app/s2", "app/spare", "app/BACKEND"}));
  rows("raw");
  EXPECT_EQ(order_, std::vector<std::string>{"raw/FRONTEND"});
  EXPECT_TRUE(collect_stats(StatSource{frontends_, backends_, false, start_ms_}, "nope").empty());
}

TEST_F(StatTable, CountersLandInTheirColumns) {
  const int64_t now = EventLoop::monotonic_ms();
  Frontend& web = *frontends_[0];
  Backend& app = *backends_[0];
  Server* s1 = app.find_server("s1");
  // Two connections carrying three requests: two 200s and a 503.
  web.counters().add_connection(now);
  web.counters().add_connection(now);
  for (int status : {200, 200, 503}) {
    web.counters().add_session(now);
    web.counters().add_status(status);
  }
  bump(web.counters().local().bytes_in, 321);
  s1->counters().add_session(now);
  s1->counters().add_status(200);
  bump(s1->counters().local().connect_errors, 2);
  bump(s1->counters().local().retries, 2);
  app.counters().add_session(now);
  bump(app.counters().local().connect_errors, 2);
  bump(app.counters().local().retries, 2);
  auto by = rows();
  const StatRow& fe = by["web/FRONTEND"];
  EXPECT_EQ(f(fe, "stot"), "2");  // http: a frontend's sessions are its connections
  EXPECT_EQ(f(fe, "conn_tot"), "2");
  EXPECT_EQ(f(fe, "req_tot"), "3");
  EXPECT_EQ(f(fe, "hrsp_2xx"), "2");
  EXPECT_EQ(f(fe, "hrsp_5xx"), "1");
  EXPECT_EQ(f(fe, "bin"), "321");
  EXPECT_EQ(f(fe, "slim"), "500");
  EXPECT_EQ(f(fe, "status"), "OPEN");
  EXPECT_EQ(f(fe, "type"), "0");
  EXPECT_EQ(f(fe, "mode"), "http");
  EXPECT_EQ(f(fe, "pid"), std::to_string(::getpid()));
  EXPECT_EQ(f(fe, "econ"), "");  // no such thing for a frontend: empty
  const StatRow& srv = by["app/s1"];
  EXPECT_EQ(f(srv, "stot"), "1");
  EXPECT_EQ(f(srv, "lbtot"), "1");
  EXPECT_EQ(f(srv, "econ"), "2");
  EXPECT_EQ(f(srv, "wretr"), "2");
  EXPECT_EQ(f(srv, "slim"), "20");
  EXPECT_EQ(f(srv, "qlimit"), "7");
  EXPECT_EQ(f(srv, "addr"), "127.0.0.1:9001");
  EXPECT_EQ(f(srv, "sid"), "1");
  EXPECT_EQ(f(srv, "type"), "2");
  EXPECT_EQ(f(srv, "lastchg"), "5");      // never changed: since the worker started
  EXPECT_EQ(f(srv, "check_status"), "");  // no checks configured
  const StatRow& be = by["app/BACKEND"];
  EXPECT_EQ(f(be, "econ"), "2");
  EXPECT_EQ(f(be, "wretr"), "2");
  EXPECT_EQ(f(be, "algo"), "leastconn");
  EXPECT_EQ(f(be, "type"), "1");
  // tcp mode: no HTTP columns.
  EXPECT_EQ(f(by["raw/FRONTEND"], "hrsp_2xx"), "");
  EXPECT_EQ(f(by["raw/FRONTEND"], "mode"), "tcp");
  EXPECT_EQ(f(by["db/BACKEND"], "req_tot"), "");
}

// A server's status and the backend's weight and act/bck follow what can take
// traffic: the backup counts only as a backup, maint and drain take a server out.
TEST_F(StatTable, StatusesWeightsAndUsableServers) {
  Backend& app = *backends_[0];
  auto by = rows();
  EXPECT_EQ(f(by["app/s1"], "status"), "UP");
  EXPECT_EQ(f(by["app/spare"], "act"), "0");
  EXPECT_EQ(f(by["app/spare"], "bck"), "1");
  EXPECT_EQ(f(by["app/BACKEND"], "status"), "UP");
  EXPECT_EQ(f(by["app/BACKEND"], "weight"), "5");
  EXPECT_EQ(f(by["app/BACKEND"], "act"), "2");
  EXPECT_EQ(f(by["app/BACKEND"], "bck"), "1");
  const int64_t now = EventLoop::monotonic_ms();
  app.set_server_state(app.find_server("s1"), AdminState::kMaint, now);
  app.set_server_state(app.find_server("s2"), AdminState::kDrain, now);
  app.set_server_up(app.find_server("spare"), false, now);
  by = rows();
  EXPECT_EQ(f(by["app/s1"], "status"), "MAINT");
  EXPECT_EQ(f(by["app/s1"], "lastchg"), "0");  // it just changed
  EXPECT_EQ(f(by["app/s2"], "status"), "DRAIN");
  EXPECT_EQ(f(by["app/spare"], "status"), "DOWN");
  EXPECT_EQ(f(by["app/BACKEND"], "status"), "DOWN");
  EXPECT_EQ(f(by["app/BACKEND"], "weight"), "0");
  EXPECT_EQ(f(by["app/BACKEND"], "act"), "0");
  app.set_server_nolb(app.find_server("spare"), true, now);
  app.set_server_up(app.find_server("spare"), true, now);
  EXPECT_EQ(f(rows()["app/spare"], "status"), "NOLB");
  EXPECT_EQ(f(rows("web", true)["web/FRONTEND"], "status"), "STOP");  // a draining worker
}

// show stat json: one object per row, empty columns left out, numbers as
// numbers, the rest as strings.
TEST_F(StatTable, JsonRowsLeaveEmptyColumnsOutAndWriteNumbersAsNumbers) {
  auto table = collect_stats(StatSource{frontends_, backends_, false, start_ms_}, "db");
  const std::string json = render_stat_json(table);
  EXPECT_EQ(json.rfind("[\n {\"pxname\":\"db\",\"svname\":\"pg\",\"qcur\":0,", 0), 0u) << json;
  EXPECT_NE(json.find(",\"status\":\"UP\",\"weight\":1,"), std::string::npos) << json;
  EXPECT_NE(json.find(",\"addr\":\"127.0.0.1:5432\",\"mode\":\"tcp\"}"), std::string::npos) << json;
  EXPECT_NE(json.find("\"svname\":\"BACKEND\""), std::string::npos) << json;
  EXPECT_EQ(json.find("\"check_status\""), std::string::npos) << json;  // empty: left out
  EXPECT_EQ(json.substr(json.size() - 4), "}\n]\n");
  // The CSV of the same rows has every column, empty ones too: 80 values and a
  // trailing comma on each line.
  const std::string csv = render_stat_csv(table);
  size_t lines = 0, commas = 0;
  for (char c : csv) {
    lines += c == '\n';
    commas += c == ',';
  }
  EXPECT_EQ(lines, 3u);
  EXPECT_EQ(commas, 3u * kStatCount);
}

}  // namespace
}  // namespace weir
