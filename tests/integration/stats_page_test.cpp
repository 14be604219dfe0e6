// The HTML stats page of a frontend as an operator uses it: rendered by a real
// headless Chromium, cross-checked against the runtime API's show stat, guarded by
// basic authentication, with its CSV export and auto-refresh.

#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

#include "tests/support/http_client.h"
#include "tests/support/launcher.h"
#include "tests/support/origin.h"
#include "tests/support/weir_config.h"

namespace weir::test {
namespace {

std::string base64(std::string_view in) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    const unsigned v = static_cast<unsigned char>(in[i]) << 16 |
                       static_cast<unsigned char>(in[i + 1]) << 8 |
                       static_cast<unsigned char>(in[i + 2]);
    for (int s = 18; s >= 0; s -= 6) out += kAlphabet[(v >> s) & 63];
  }
  if (i + 1 == in.size()) {
    const unsigned v = static_cast<unsigned char>(in[i]) << 16;
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += "==";
  } else if (i + 2 == in.size()) {
    const unsigned v =
        static_cast<unsigned char>(in[i]) << 16 | static_cast<unsigned char>(in[i + 1]) << 8;
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += '=';
  }
  return out;
}

std::vector<std::string> split(std::string_view text, char sep) {
  std::vector<std::string> out;
  size_t pos = 0;
  for (;;) {
    const size_t next = text.find(sep, pos);
    out.emplace_back(text.substr(pos, next == std::string_view::npos ? next : next - pos));
    if (next == std::string_view::npos) return out;
    pos = next + 1;
  }
}

// A show-stat CSV (header line "# a,b,c,") as rows of column -> value, keyed by
// "pxname/svname".
std::map<std::string, std::map<std::string, std::string>> parse_stat_csv(const std::string& csv) {
  std::map<std::string, std::map<std::string, std::string>> rows;
  std::vector<std::string> lines = split(csv, '\n');
  if (lines.empty() || lines[0].rfind("# ", 0) != 0) return rows;
  const std::vector<std::string> header = split(lines[0].substr(2), ',');
  for (size_t l = 1; l < lines.size(); ++l) {
    if (lines[l].empty()) continue;
    const std::vector<std::string> cells = split(lines[l], ',');
    std::map<std::string, std::string> row;
    for (size_t i = 0; i < header.size() && i < cells.size(); ++i) row[header[i]] = cells[i];
    rows[row["pxname"] + "/" + row["svname"]] = row;
  }
  return rows;
}

// The <tr ...>...</tr> of the table row whose data-name is `name` inside the table
// with id `table_id`, or "".
std::string find_row(const std::string& dom, const std::string& table_id, const std::string& name) {
  const size_t table = dom.find("id=\"" + table_id + "\"");
  if (table == std::string::npos) return "";
  const size_t table_end = dom.find("</table>", table);
  const size_t attr = dom.find("data-name=\"" + name + "\"", table);
  if (attr == std::string::npos || attr > table_end) return "";
  const size_t start = dom.rfind("<tr ", attr);
  const size_t end = dom.find("</tr>", attr);
  if (start == std::string::npos || end == std::string::npos) return "";
  return dom.substr(start, end + 5 - start);
}

// The class attribute of a row's <tr>.
std::string row_class(const std::string& row) {
  const size_t start = row.find("class=\"");
  if (start == std::string::npos) return "";
  return row.substr(start + 7, row.find('"', start + 7) - start - 7);
}

// The text of the row's <td class="field">, or "<missing>".
std::string cell(const std::string& row, const std::string& field) {
  const std::string open = "<td class=\"" + field + "\">";
  const size_t start = row.find(open);
  if (start == std::string::npos) return "<missing>";
  const size_t end = row.find("</td>", start);
  return row.substr(start + open.size(), end - start - open.size());
}

class StatsPage : public ::testing::Test {
 protected:
  void SetUp() override {
    ignore_sigpipe();
    dir_ = make_temp_dir();
    admin_ = dir_ + "/admin.sock";
    port_ = free_tcp_port();
    auth_port_ = free_tcp_port();
    while (auth_port_ == port_) auth_port_ = free_tcp_port();
    std::string yaml = "global:\n  threads: 2\n  runtime_api: " + admin_ + "\n";
    yaml += "frontends:\n";
    yaml += "  fe:\n";
    yaml += "    bind: [\"127.0.0.1:" + std::to_string(port_) + "\"]\n";
    yaml += "    default_backend: be\n";
    yaml += "    stats: {uri: /stats, refresh: 5s}\n";
    yaml += "  private:\n";
    yaml += "    bind: [\"127.0.0.1:" + std::to_string(auth_port_) + "\"]\n";
    yaml += "    default_backend: be\n";
    yaml += "    stats:\n";
    yaml += "      uri: /admin/stats\n";
    yaml += "      auth:\n";
    yaml += "        realm: \"weir admin\"\n";
    yaml += "        users: {admin: \"s3cret:x\", ops: other}\n";
    yaml += "backends:\n";
    yaml += "  be:\n";
    yaml += "    servers:\n";
    yaml += "      s1: {address: \"" + a_.address() + "\", maxconn: 50}\n";
    yaml += "      s2: {address: \"" + b_.address() + "\", weight: 2}\n";
    weir_ = WeirProcess::start(yaml);
  }
  void TearDown() override {
    weir_.reset();
    remove_tree(dir_);
  }

  std::string show_stat() {
    CommandResult r = weirctl({"-s", admin_, "show", "stat"});
    EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
    return r.out;
  }

  OriginServer a_{"a"}, b_{"b"};
  std::string dir_, admin_;
  uint16_t port_ = 0, auth_port_ = 0;
  std::unique_ptr<WeirProcess> weir_;
};

TEST_F(StatsPage, ChromiumRendersEveryServerRowAndAgreesWithShowStat) {
  ASSERT_TRUE(weir_);
  // Debian's chromium package (scripts/deps.sh test installs it).
  CommandResult which = run_command({"sh", "-c", "command -v chromium"}, 10000);
  const std::string chromium(trim_ows(which.out.substr(0, which.out.find('\n'))));
  ASSERT_EQ(which.exit_code, 0) << "chromium is not installed: run scripts/deps.sh test";
  ASSERT_FALSE(chromium.empty());

  constexpr int kRequests = 9;
  for (int i = 0; i < kRequests; ++i) ASSERT_TRUE(http_get(port_, "/")) << i;
  ASSERT_TRUE(http_get(port_, "/?status=503"));
  CommandResult maint = weirctl({"-s", admin_, "set", "server", "be/s2", "state", "maint"});
  ASSERT_EQ(maint.exit_code, 0) << maint.out << maint.err;
  const int served_a = a_.requests_served(), served_b = b_.requests_served();
  ASSERT_EQ(served_a + served_b, kRequests + 1);

  CommandResult page = run_command(
      {chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
       "--no-first-run", "--user-data-dir=" + dir_ + "/chrome", "--dump-dom",
       "http://127.0.0.1:" + std::to_string(port_) + "/stats"},
      180000);
  ASSERT_EQ(page.exit_code, 0) << tail_lines(page.err, 30);
  const std::string& dom = page.out;
  ASSERT_NE(dom.find("<h1>weir statistics</h1>"), std::string::npos) << dom.substr(0, 2000);

  // The page asked nothing of the servers (no favicon either).
  EXPECT_EQ(a_.requests_served(), served_a);
  EXPECT_EQ(b_.requests_served(), served_b);
  const auto stat = parse_stat_csv(show_stat());
  ASSERT_TRUE(stat.count("be/s1") && stat.count("be/s2")) << show_stat();

  // One table per frontend and backend.
  EXPECT_NE(dom.find("id=\"frontend-fe\""), std::string::npos);
  EXPECT_NE(dom.find("id=\"frontend-private\""), std::string::npos);
  EXPECT_NE(dom.find("id=\"backend-be\""), std::string::npos);

  const std::string s1 = find_row(dom, "backend-be", "s1");
  const std::string s2 = find_row(dom, "backend-be", "s2");
  const std::string total = find_row(dom, "backend-be", "BACKEND");
  ASSERT_FALSE(s1.empty()) << dom;
  ASSERT_FALSE(s2.empty()) << dom;
  ASSERT_FALSE(total.empty()) << dom;
  EXPECT_EQ(row_class(s1), "server state-up");
  EXPECT_EQ(row_class(s2), "server state-maint");
  EXPECT_EQ(row_class(total), "backend state-up");
  EXPECT_EQ(cell(s1, "name"), "s1");
  EXPECT_EQ(cell(s2, "name"), "s2");
  EXPECT_EQ(cell(s1, "status"), "UP");
  EXPECT_EQ(cell(s2, "status"), "MAINT");
  EXPECT_EQ(cell(s1, "weight"), "1");
  EXPECT_EQ(cell(s2, "weight"), "2");
  EXPECT_EQ(cell(s1, "slim"), "50");
  EXPECT_EQ(cell(s1, "check_status"), "-");  // no health checks yet
  EXPECT_EQ(cell(s1, "addr"), a_.address());
  const std::string lastchg = cell(s2, "lastchg");
  EXPECT_TRUE(!lastchg.empty() && lastchg.back() == 's') << lastchg;  // "0s", "1s", ...
  // The page and show stat agree, and both count what the servers saw.
  EXPECT_EQ(cell(s1, "stot"), stat.at("be/s1").at("stot"));
  EXPECT_EQ(cell(s2, "stot"), stat.at("be/s2").at("stot"));
  EXPECT_EQ(cell(s1, "stot"), std::to_string(served_a));
  EXPECT_EQ(cell(s2, "stot"), std::to_string(served_b));
  EXPECT_EQ(cell(total, "stot"), std::to_string(kRequests + 1));
  EXPECT_EQ(cell(total, "hrsp_5xx"), "1");
  EXPECT_EQ(cell(total, "hrsp_2xx"), std::to_string(kRequests));
  EXPECT_EQ(cell(s1, "hrsp_2xx"), stat.at("be/s1").at("hrsp_2xx"));
  EXPECT_EQ(cell(s2, "bout"), stat.at("be/s2").at("bout"));
  const std::string fe = find_row(dom, "frontend-fe", "FRONTEND");
  EXPECT_EQ(row_class(fe), "frontend state-open");
  // The configured auto-refresh, as the browser parsed it.
  EXPECT_NE(dom.find("<meta http-equiv=\"refresh\" content=\"5\">"), std::string::npos);
}

TEST_F(StatsPage, BasicAuthenticationGuardsThePage) {
  ASSERT_TRUE(weir_);
  const std::string header_ok = "Basic " + base64("admin:s3cret:x");
  {
    auto r = http_get(auth_port_, "/admin/stats");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 401);
    EXPECT_EQ(r->reason, "Unauthorized");
    EXPECT_EQ(r->header("WWW-Authenticate"), "Basic realm=\"weir admin\"");
    EXPECT_EQ(r->header("Cache-Control"), "no-cache");
    EXPECT_EQ(r->body.find("<table"), std::string::npos);
  }
  const std::vector<std::string> refused = {
      "Basic " + base64("admin:wrong"),
      "Basic " + base64("admin:s3cret"),
      "Basic " + base64("nobody:s3cret:x"),
      "Basic " + base64("admin"),
      "Basic !!!",
      "Bearer " + base64("admin:s3cret:x"),
      "Basic " + base64("ops:other:"),
  };
  for (const std::string& value : refused) {
    HttpClient c(auth_port_);
    auto r = c.request("GET", "/admin/stats", {{"Authorization", value}});
    ASSERT_TRUE(r) << value;
    EXPECT_EQ(r->status, 401) << value;
    EXPECT_EQ(r->header("WWW-Authenticate"), "Basic realm=\"weir admin\"") << value;
  }
  for (const std::string& value : {header_ok, "basic  " + base64("ops:other")}) {
    HttpClient c(auth_port_);
    auto r = c.request("GET", "/admin/stats?x=1", {{"Authorization", value}});
    ASSERT_TRUE(r) << value;
    EXPECT_EQ(r->status, 200) << value;
    EXPECT_EQ(r->header("Content-Type"), "text/html; charset=utf-8");
    EXPECT_EQ(r->header("Cache-Control"), "no-cache");
    EXPECT_NE(r->body.find("data-name=\"s1\""), std::string::npos);
    EXPECT_EQ(r->body.find("http-equiv=\"refresh\""), std::string::npos);  // not configured here
  }
  {
    // HEAD: the headers only.
    HttpClient c(auth_port_);
    ASSERT_TRUE(c.send_raw("HEAD /admin/stats HTTP/1.1\r\nHost: x\r\nAuthorization: " + header_ok +
                           "\r\n\r\n"));
    auto r = c.read_response(10000, /*head_request=*/true);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
    EXPECT_NE(r->header("Content-Length"), "0");
    EXPECT_TRUE(r->body.empty());
  }
  // The CSV export is guarded too.
  auto csv = http_get(auth_port_, "/admin/stats;csv");
  ASSERT_TRUE(csv);
  EXPECT_EQ(csv->status, 401);
  // curl, as an operator would type it (the password holds a ':').
  CommandResult r =
      run_command({"curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-u", "admin:s3cret:x",
                   "http://127.0.0.1:" + std::to_string(auth_port_) + "/admin/stats"},
                  30000);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "200");
  // The page of the other frontend needs no credentials, and no request reached a server.
  auto open = http_get(port_, "/stats");
  ASSERT_TRUE(open);
  EXPECT_EQ(open->status, 200);
  EXPECT_EQ(a_.requests_served() + b_.requests_served(), 0);
}

TEST_F(StatsPage, CsvExportParsesAndMatchesShowStat) {
  ASSERT_TRUE(weir_);
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(http_get(port_, "/"));
  // A client can read its response before the worker has counted its request:
  // wait for the fourth to be counted before comparing the two views.
  ASSERT_TRUE(wait_until(
      [&] {
        auto now = parse_stat_csv(show_stat());
        return now.count("be/BACKEND") && now.at("be/BACKEND").at("stot") == "4";
      },
      10000))
      << show_stat();
  auto r = http_get(port_, "/stats;csv");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->header("Content-Type"), "text/csv; charset=utf-8");
  EXPECT_EQ(r->header("Cache-Control"), "no-cache");
  const std::vector<std::string> lines = split(r->body, '\n');
  ASSERT_GE(lines.size(), 2U);
  ASSERT_EQ(lines[0].rfind("# pxname,svname,", 0), 0U) << lines[0];
  const size_t columns = split(lines[0], ',').size();
  for (size_t i = 1; i < lines.size(); ++i) {
    if (lines[i].empty()) continue;
    EXPECT_EQ(split(lines[i], ',').size(), columns) << lines[i];
  }
  const auto rows = parse_stat_csv(r->body);
  for (const char* key : {"fe/FRONTEND", "private/FRONTEND", "be/s1", "be/s2", "be/BACKEND"}) {
    EXPECT_TRUE(rows.count(key)) << key << "\n" << r->body;
  }
  EXPECT_EQ(rows.at("be/BACKEND").at("stot"), "4");
  const auto stat = parse_stat_csv(show_stat());
  EXPECT_EQ(rows.at("be/s1").at("stot"), stat.at("be/s1").at("stot"));
  EXPECT_EQ(rows.at("be/s2").at("stot"), stat.at("be/s2").at("stot"));
  // A query string does not matter; other paths go to the backend as usual.
  auto q = http_get(port_, "/stats;csv?refresh=1");
  ASSERT_TRUE(q);
  EXPECT_EQ(q->header("Content-Type"), "text/csv; charset=utf-8");
  auto other = http_get(port_, "/statsx");
  ASSERT_TRUE(other);
  EXPECT_EQ(other->header("X-Server").empty(), false);
  EXPECT_EQ(a_.requests_served() + b_.requests_served(), 5);
}

TEST_F(StatsPage, PageCarriesTheRefreshAndProcessInformation) {
  ASSERT_TRUE(weir_);
  auto r = http_get(port_, "/stats");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->header("Content-Type"), "text/html; charset=utf-8");
  EXPECT_EQ(r->header("Cache-Control"), "no-cache");
  const std::string& body = r->body;
  EXPECT_EQ(body.rfind("<!DOCTYPE html>", 0), 0U);
  EXPECT_NE(body.find("<meta http-equiv=\"refresh\" content=\"5\">"), std::string::npos);
  EXPECT_NE(body.find("<span class=\"version\">version "), std::string::npos);
  EXPECT_NE(body.find("pid " + std::to_string(weir_->current_worker())), std::string::npos);
  EXPECT_NE(body.find("generation 1"), std::string::npos);
  EXPECT_NE(body.find("uptime "), std::string::npos);
  EXPECT_NE(body.find("href=\"/stats;csv\""), std::string::npos);
  // Self-contained: nothing to fetch from anywhere.
  EXPECT_EQ(body.find("<script"), std::string::npos);
  EXPECT_EQ(body.find("src="), std::string::npos);
  EXPECT_EQ(body.find("http://"), std::string::npos);
  EXPECT_EQ(body.find("https://"), std::string::npos);
  // A POST is not answered by the page: it goes to the backend.
  HttpClient c(port_);
  auto post = c.request("POST", "/stats", {}, "x=1");
  ASSERT_TRUE(post);
  EXPECT_FALSE(post->header("X-Server").empty());
}

}  // namespace
}  // namespace weir::test
