#pragma once
// What stick_tables_smoke_test.cpp and stick_tables_test.cpp share: a weir
// started from a whole configuration (a global block with a runtime API socket,
// then the test's stick_tables, frontends and backends as an operator writes
// them), `show table` read back field by field, clients from chosen source
// addresses, and a wait that keeps a test's requests inside one rate period.

#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "tests/support/http_client.h"
#include "tests/support/launcher.h"

namespace weir::test::sticky {

using Vars = std::vector<std::pair<std::string, std::string>>;
using Headers = std::vector<std::pair<std::string, std::string>>;
// name -> value of one line of `show table` ("key", "use", "exp", "conn_cur",
// "http_req_rate(10000)", ...) or of its header line ("table", "type", "used", ...).
using Fields = std::map<std::string, std::string>;

inline std::string replace_all(std::string s, const Vars& vars) {
  for (const auto& [key, value] : vars) {
    for (size_t pos = s.find(key); pos != std::string::npos; pos = s.find(key, pos + value.size()))
      s.replace(pos, key.size(), value);
  }
  return s;
}

// "key=K use=N exp=MS conn_cur=N ..." -> fields.
inline Fields parse_entry(const std::string& line) {
  Fields f;
  size_t pos = 0;
  while (pos < line.size()) {
    size_t end = line.find(' ', pos);
    if (end == std::string::npos) end = line.size();
    const std::string word = line.substr(pos, end - pos);
    const size_t eq = word.find('=');
    if (eq != std::string::npos) f[word.substr(0, eq)] = word.substr(eq + 1);
    pos = end + 1;
  }
  return f;
}

// "# table: NAME, type: T, size: N, used: N, evicted: N, expired: N, refused: N" -> fields.
inline Fields parse_table_line(const std::string& line) {
  Fields f;
  std::string rest = line.rfind("# ", 0) == 0 ? line.substr(2) : line;
  size_t pos = 0;
  while (pos < rest.size()) {
    size_t end = rest.find(", ", pos);
    if (end == std::string::npos) end = rest.size();
    const std::string item = rest.substr(pos, end - pos);
    const size_t colon = item.find(": ");
    if (colon != std::string::npos) f[item.substr(0, colon)] = item.substr(colon + 2);
    pos = end + 2;
  }
  return f;
}

// The lines of a `show table NAME` answer: the header line apart, entries by key.
struct TableView {
  Fields table;
  std::map<std::string, Fields> entries;
  std::string text;  // as answered, for failure messages
  bool has(const std::string& key) const { return entries.count(key) > 0; }
  // A field of the header line ("used", "evicted", ...).
  std::string info(const std::string& field) const {
    auto v = table.find(field);
    return v == table.end() ? "<no " + field + ">" : v->second;
  }
  std::string at(const std::string& key, const std::string& field) const {
    auto e = entries.find(key);
    if (e == entries.end()) return "<no entry>";
    auto v = e->second.find(field);
    return v == e->second.end() ? "<no " + field + ">" : v->second;
  }
};

inline TableView parse_table(const std::string& text) {
  TableView v;
  v.text = text;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string::npos) nl = text.size();
    const std::string line = text.substr(pos, nl - pos);
    pos = nl + 1;
    if (line.rfind("# table: ", 0) == 0) {
      v.table = parse_table_line(line);
    } else if (line.rfind("key=", 0) == 0) {
      Fields f = parse_entry(line);
      v.entries[f["key"]] = f;
    }
  }
  return v;
}

// Sleeps into the next period of `period_ms` (periods start at multiples of it
// on the wall clock, as weir's rates count them) when less than `need_ms` of the
// current one remain, so that the requests a test sends next in less than
// need_ms all land in one period: their rate then reads exactly their count.
inline void stay_within_one_period(int64_t period_ms, int64_t need_ms) {
  using namespace std::chrono;
  const int64_t now = duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
  const int64_t left = period_ms - now % period_ms;
  if (left < need_ms) std::this_thread::sleep_for(milliseconds(left + 20));
}

class StickTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ignore_sigpipe();
    dir_ = make_temp_dir();
    port_ = free_tcp_port();
  }
  void TearDown() override {
    weir_.reset();
    if (!dir_.empty()) remove_tree(dir_);
  }

  std::string admin() const { return dir_ + "/admin.sock"; }
  std::string user_socket() const { return dir_ + "/user.sock"; }

  // A global block (two threads, the access log on stdout, an admin and a
  // user-level runtime API socket), then `body` with @PORT@, @DIR@ and the
  // keys of `vars` replaced.
  std::string config(const std::string& body, const Vars& vars = {}) const {
    std::string y =
        "global:\n  threads: 2\n  log: [{target: stdout, format: text}]\n"
        "  runtime_api:\n    - {address: " +
        admin() + ", level: admin}\n    - {address: " + user_socket() + ", level: user}\n";
    Vars all = vars;
    all.emplace_back("@PORT@", std::to_string(port_));
    all.emplace_back("@DIR@", dir_);
    return y + replace_all(body, all);
  }
  bool start(const std::string& body, const Vars& vars = {}) {
    weir_ = WeirProcess::start(config(body, vars));
    return weir_ != nullptr;
  }

  // One runtime API command on the admin socket.
  std::string api(const std::string& command) const { return unix_command(admin(), command); }
  TableView show(const std::string& table) const { return parse_table(api("show table " + table)); }
  // Waits until pred(show table NAME) holds; the last view is left in *last.
  bool wait_table(const std::string& table, const std::function<bool(const TableView&)>& pred,
                  TableView* last, int timeout_ms = 10000) const {
    return wait_until(
        [&] {
          *last = show(table);
          return pred(*last);
        },
        timeout_ms);
  }
  // Waits until the entry of key shows field=value.
  bool wait_field(const std::string& table, const std::string& key, const std::string& field,
                  const std::string& value, TableView* last, int timeout_ms = 10000) const {
    return wait_table(
        table, [&](const TableView& v) { return v.at(key, field) == value; }, last, timeout_ms);
  }

  // wait_field as an assertion: ASSERT_TRUE(becomes("conns", ip, "conn_cur", "3")).
  ::testing::AssertionResult becomes(const std::string& table, const std::string& key,
                                     const std::string& field, const std::string& value) const {
    TableView t;
    if (wait_field(table, key, field, value, &t)) return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure() << "show table " << table << ": " << field << " of " << key
                                         << " never became " << value << ":\n"
                                         << t.text;
  }

  // One request on a new connection (Connection: close) from `source` (any
  // local IPv4 address; "" for the kernel's choice): the status, 0 when no
  // response came (the connection was refused or closed).
  int status_of(const std::string& target, const Headers& headers = {},
                const std::string& source = "", uint16_t port = 0) const {
    try {
      HttpClient c(port ? port : port_, "127.0.0.1", source);
      Headers h = headers;
      h.emplace_back("Connection", "close");
      auto r = c.request("GET", target, h);
      return r ? r->status : 0;
    } catch (const std::exception&) {
      return 0;
    }
  }

  std::string dir_;
  uint16_t port_ = 0;
  std::unique_ptr<WeirProcess> weir_;
};

}  // namespace weir::test::sticky
