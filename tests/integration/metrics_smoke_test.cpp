// The Prometheus endpoint of a frontend: format rules, promtool, and the numbers
// cross-checked against the runtime API's show stat.

#include <gtest/gtest.h>
#include <unistd.h>

#include <map>
#include <regex>
#include <set>

#include "tests/support/http_client.h"
#include "tests/support/launcher.h"
#include "tests/support/origin.h"
#include "tests/support/weir_config.h"

namespace weir::test {
namespace {

struct Sample {
  std::string name;
  std::string labels;  // as written, without braces
  std::string value;
};

// Checks the text exposition rules weir promises and returns the samples.
std::vector<Sample> parse_exposition(const std::string& text, std::vector<std::string>* problems) {
  static const std::regex kSample(
      R"(^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([a-zA-Z_][a-zA-Z0-9_]*="(\\.|[^"\\])*"(,[a-zA-Z_][a-zA-Z0-9_]*="(\\.|[^"\\])*")*)\})? ([0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?)$)");
  std::map<std::string, std::string> type_of;
  std::set<std::string> helped;
  std::vector<Sample> samples;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string::npos) {
      problems->push_back("last line has no newline");
      break;
    }
    std::string line = text.substr(pos, nl - pos);
    pos = nl + 1;
    if (line.rfind("# HELP ", 0) == 0) {
      helped.insert(line.substr(7, line.find(' ', 7) - 7));
      continue;
    }
    if (line.rfind("# TYPE ", 0) == 0) {
      std::string rest = line.substr(7);
      std::string name = rest.substr(0, rest.find(' '));
      std::string type = rest.substr(rest.find(' ') + 1);
      if (type != "counter" && type != "gauge") problems->push_back("odd type: " + line);
      if (type == "counter" && name.size() < 6) problems->push_back("short counter " + name);
      if (type == "counter" && name.compare(name.size() - 6, 6, "_total") != 0) {
        problems->push_back("counter without _total: " + name);
      }
      if (name.rfind("weir_", 0) != 0) problems->push_back("not weir_: " + name);
      type_of[name] = type;
      continue;
    }
    std::smatch m;
    if (!std::regex_match(line, m, kSample)) {
      problems->push_back("bad sample line: " + line);
      continue;
    }
    Sample s{m[1], m[3], m[7]};
    if (!type_of.count(s.name)) problems->push_back("sample before its TYPE: " + line);
    if (!helped.count(s.name)) problems->push_back("sample without HELP: " + line);
    samples.push_back(s);
  }
  return samples;
}

std::string value_of(const std::vector<Sample>& samples, const std::string& name,
                     const std::string& labels) {
  for (const Sample& s : samples)
    if (s.name == name && s.labels == labels) return s.value;
  return "<missing>";
}

TEST(MetricsSmoke, PrometheusEndpointFollowsTheFormatAndMatchesShowStat) {
  ignore_sigpipe();
  OriginServer a("a"), b("b");
  std::string dir = make_temp_dir();
  std::string admin = dir + "/admin.sock";
  ProxySpec spec;
  spec.servers = {a.address(), b.address()};
  spec.global_extra = "  runtime_api: " + admin + "\n";
  std::string yaml = proxy_yaml(spec);
  size_t pos = yaml.find("    default_backend: be\n");
  ASSERT_NE(pos, std::string::npos);
  yaml.insert(pos, "    metrics: {uri: /metrics}\n");
  auto weir = WeirProcess::start(yaml);
  ASSERT_TRUE(weir);
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(http_get(spec.port, "/"));
  auto notfound = http_get(spec.port, "/?status=404");
  ASSERT_TRUE(notfound);
  // A client can read its response before the worker has counted its request:
  // wait for the sixth to be counted (backend and frontend) before reading /metrics.
  ASSERT_TRUE(wait_until(
      [&] {
        for (auto& row : parse_stat_csv(unix_command(admin, "show stat"))) {
          if (row["svname"] == "BACKEND" && row["stot"] != "6") return false;
          if (row["svname"] == "FRONTEND" && row["hrsp_4xx"] != "1") return false;
        }
        return true;
      },
      10000))
      << unix_command(admin, "show stat");

  auto r = http_get(spec.port, "/metrics");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->header("Content-Type"), "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_EQ(a.requests_served() + b.requests_served(), 6);  // /metrics never reached a server
  std::vector<std::string> problems;
  std::vector<Sample> samples = parse_exposition(r->body, &problems);
  EXPECT_TRUE(problems.empty()) << ::testing::PrintToString(problems);
  EXPECT_EQ(value_of(samples, "weir_frontend_sessions_total", R"(proxy="fe")"), "6");
  EXPECT_EQ(value_of(samples, "weir_frontend_http_responses_total", R"(proxy="fe",code="2xx")"),
            "5");
  EXPECT_EQ(value_of(samples, "weir_frontend_http_responses_total", R"(proxy="fe",code="4xx")"),
            "1");
  EXPECT_EQ(value_of(samples, "weir_server_admin_state", R"(proxy="be",server="s1",state="ready")"),
            "1");
  EXPECT_EQ(value_of(samples, "weir_process_info", R"(version="0.2.0",generation="1")"), "1");

  // The same numbers as show stat, column by column.
  auto rows = parse_stat_csv(unix_command(admin, "show stat"));
  ASSERT_EQ(rows.size(), 4u);
  for (auto& row : rows) {
    const std::string px = row["pxname"], sv = row["svname"];
    if (sv == "FRONTEND") {
      const std::string l = R"(proxy=")" + px + "\"";
      EXPECT_EQ(value_of(samples, "weir_frontend_connections_total", l), row["conn_tot"]);
      // The /metrics request itself was counted once answered, after its body was made.
      EXPECT_EQ(row["req_tot"], "7");
      continue;
    }
    const bool backend = sv == "BACKEND";
    const std::string prefix = backend ? "weir_backend_" : "weir_server_";
    const std::string l = R"(proxy=")" + px + "\"" + (backend ? "" : R"(,server=")" + sv + "\"");
    EXPECT_EQ(value_of(samples, prefix + "sessions_total", l), row["stot"]) << sv;
    EXPECT_EQ(value_of(samples, prefix + "bytes_in_total", l), row["bin"]) << sv;
    EXPECT_EQ(value_of(samples, prefix + "bytes_out_total", l), row["bout"]) << sv;
    EXPECT_EQ(value_of(samples, prefix + "max_sessions", l), row["smax"]) << sv;
    EXPECT_EQ(value_of(samples, prefix + "connection_errors_total", l), row["econ"]) << sv;
    EXPECT_EQ(value_of(samples, prefix + "http_responses_total", l + R"(,code="2xx")"),
              row["hrsp_2xx"])
        << sv;
    EXPECT_NE(row["stot"], "0") << sv;
  }

  // promtool, the Prometheus project's own checker, when the test set-up fetched it.
  if (access(WEIR_PROMTOOL, X_OK) == 0) {
    CommandResult check = run_command({WEIR_PROMTOOL, "check", "metrics"}, 30000, r->body);
    EXPECT_EQ(check.exit_code, 0) << check.out << check.err;
  } else {
    std::cout << "[ note ] promtool not available; format checked by the test's own parser\n";
  }
  weir.reset();
  remove_tree(dir);
}

// Health-check results as Prometheus sees them: the failing server is down,
// its last check status is L7STS, and its failures and transitions are counted.
TEST(MetricsSmoke, HealthChecksShowInTheMetrics) {
  ignore_sigpipe();
  OriginServer a("a"), b("b");
  b.set_default_status(503);
  std::string dir = make_temp_dir();
  std::string admin = dir + "/admin.sock";
  ProxySpec spec;
  spec.servers = {a.address(), b.address()};
  spec.global_extra = "  runtime_api: " + admin + "\n";
  // A check timeout well above inter: under TSan a first check can take longer
  // than 50 ms and would end as L7TOUT instead of the L7STS asserted below.
  spec.backend_extra = "    check: {type: http, inter: 50ms, timeout: 3s, fall: 1, rise: 1}\n";
  std::string yaml = proxy_yaml(spec);
  size_t pos = yaml.find("    default_backend: be\n");
  ASSERT_NE(pos, std::string::npos);
  yaml.insert(pos, "    metrics: {uri: /metrics}\n");
  auto weir = WeirProcess::start(yaml);
  ASSERT_TRUE(weir);
  std::vector<Sample> samples;
  ASSERT_TRUE(wait_until(
      [&] {
        auto r = http_get(spec.port, "/metrics");
        if (!r) return false;
        std::vector<std::string> problems;
        samples = parse_exposition(r->body, &problems);
        return value_of(samples, "weir_server_up", R"(proxy="be",server="s2")") == "0" &&
               value_of(samples, "weir_server_up", R"(proxy="be",server="s1")") == "1" &&
               value_of(samples, "weir_server_check_status",
                        R"(proxy="be",server="s2",state="L7STS")") == "1";
      },
      10000));
  EXPECT_EQ(value_of(samples, "weir_server_up", R"(proxy="be",server="s1")"), "1");
  EXPECT_EQ(
      value_of(samples, "weir_server_check_status", R"(proxy="be",server="s2",state="L7STS")"),
      "1");
  EXPECT_EQ(value_of(samples, "weir_server_check_status", R"(proxy="be",server="s2",state="L7OK")"),
            "0");
  EXPECT_EQ(value_of(samples, "weir_server_check_status", R"(proxy="be",server="s1",state="L7OK")"),
            "1");
  EXPECT_EQ(
      value_of(samples, "weir_server_check_down_transitions_total", R"(proxy="be",server="s2")"),
      "1");
  EXPECT_NE(value_of(samples, "weir_server_check_failures_total", R"(proxy="be",server="s2")"),
            "0");
  remove_tree(dir);
}

}  // namespace
}  // namespace weir::test
