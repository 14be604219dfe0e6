// Access-log lines as the worker writes them (worker/observe/access_log.h): the
// sinks of global.log opened on real files, pipes and sockets, one entry logged
// and flushed, the bytes read back. The layouts are HAProxy's (httplog,
// tcplog), JSON, or a format string.

#include "worker/observe/access_log.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <regex>
#include <string>
#include <vector>

#include "common/config/config.h"
#include "tests/support/util.h"

namespace weir {
namespace {

class AccessLogLines : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = test::make_temp_dir(); }
  void TearDown() override { test::remove_tree(dir_); }

  // One sink writing to a file of the test's directory.
  LogSink file_sink(LogFormat format, const std::string& custom = "") {
    LogSink s;
    s.target = LogTarget::kFile;
    s.path = dir_ + "/access" + std::to_string(next_++) + ".log";
    s.format = custom.empty() ? format : LogFormat::kCustom;
    s.custom = custom;
    return s;
  }
  // Opens the sinks, logs each entry through one writer, flushes.
  void write(const std::vector<LogSink>& logs, const std::vector<AccessLogEntry>& entries) {
    GlobalConfig g;
    g.logs = logs;
    std::string error;
    sinks_.clear();
    captures_.clear();
    samples_.clear();
    ASSERT_TRUE(open_access_log_sinks(g, "weir.yaml", &sinks_, &captures_, &samples_, &error))
        << error;
    AccessLogWriter w(&sinks_);
    for (const AccessLogEntry& e : entries) w.log(e);
    w.flush();
    EXPECT_FALSE(w.has_pending());
  }
  std::string line(const LogFormat format, const AccessLogEntry& e,
                   const std::string& custom = "") {
    LogSink s = file_sink(format, custom);
    write({s}, {e});
    return test::read_file(s.path);
  }

  // A request answered by app/s1, on 2025-11-26 at 03:59:59.693 UTC.
  static AccessLogEntry http_entry() {
    AccessLogEntry e;
    e.client = "192.0.2.7:40000";
    e.frontend = "web";
    e.backend = "app";
    e.server = "s1";
    e.accept_epoch_ms = 1764129599693;
    e.t_request = 0;
    e.t_queue = 0;
    e.t_connect = 1;
    e.t_response = 2;
    e.t_total = 5;
    e.status = 200;
    e.bytes_out = 300;
    e.bytes_in = 107;
    e.retries = 1;
    e.actconn = 3;
    e.feconn = 2;
    e.beconn = 1;
    e.srvconn = 1;
    e.request_line = "GET /a?b=1 HTTP/1.1";
    return e;
  }
  static AccessLogEntry tcp_entry() {
    AccessLogEntry e = http_entry();
    e.http = false;
    e.status = 0;
    e.t_request = -1;
    e.t_response = -1;
    e.request_line = {};
    e.client = "[2001:db8::1]:50236";
    return e;
  }

  std::string dir_;
  int next_ = 0;
  std::vector<AccessLogSink> sinks_;
  std::vector<std::string> captures_, samples_;
};

TEST_F(AccessLogLines, HttpLayoutIsHaproxysHttplog) {
  EXPECT_EQ(line(LogFormat::kText, http_entry()),
            "192.0.2.7:40000 [26/Nov/2025:03:59:59.693] web app/s1 0/0/1/2/5 200 300 -- "
            "3/2/1/1/1 0/0 \"GET /a?b=1 HTTP/1.1\"\n");
}

// The default text layout follows each entry's mode; `http` and `tcp` force one.
TEST_F(AccessLogLines, TcpLayoutIsHaproxysTcplog) {
  EXPECT_EQ(line(LogFormat::kText, tcp_entry()),
            "2001:db8::1:50236 [26/Nov/2025:03:59:59.693] web app/s1 0/1/5 300 107 -- "
            "3/2/1/1/1 0/0\n");
  EXPECT_EQ(line(LogFormat::kTcp, http_entry()),
            "192.0.2.7:40000 [26/Nov/2025:03:59:59.693] web app/s1 0/1/5 300 107 -- "
            "3/2/1/1/1 0/0\n");
}

// What was not reached is -1 (timers) or - (names, status).
TEST_F(AccessLogLines, WhatWasNotReachedIsADash) {
  AccessLogEntry e = http_entry();
  e.backend = {};
  e.server = {};
  e.status = 0;
  e.t_connect = -1;
  e.t_response = -1;
  e.termination[0] = 'C';
  e.termination[1] = 'R';
  EXPECT_EQ(line(LogFormat::kHttp, e),
            "192.0.2.7:40000 [26/Nov/2025:03:59:59.693] web -/- 0/0/-1/-1/5 - 300 CR "
            "3/2/1/1/1 0/0 \"GET /a?b=1 HTTP/1.1\"\n");
}

TEST_F(AccessLogLines, JsonLineHasEveryFieldOfItsMode) {
  EXPECT_EQ(line(LogFormat::kJson, http_entry()),
            R"({"time":"2025-11-26T03:59:59.693Z","client":"192.0.2.7:40000","frontend":"web",)"
            R"("backend":"app","server":"s1","mode":"http","t_request":0,"t_queue":0,)"
            R"("t_connect":1,"t_response":2,"t_total":5,"status":200,"bytes_out":300,)"
            R"("bytes_in":107,"termination":"--","retries":1,"actconn":3,"feconn":2,)"
            R"("beconn":1,"srv_conn":1,"srv_queue":0,"backend_queue":0,)"
            R"("request":"GET /a?b=1 HTTP/1.1"})"
            "\n");
  EXPECT_EQ(line(LogFormat::kJson, tcp_entry()),
            R"({"time":"2025-11-26T03:59:59.693Z","client":"[2001:db8::1]:50236",)"
            R"("frontend":"web","backend":"app","server":"s1","mode":"tcp","t_queue":0,)"
            R"("t_connect":1,"t_total":5,"bytes_out":300,"bytes_in":107,"termination":"--",)"
            R"("retries":1,"actconn":3,"feconn":2,"beconn":1,"srv_conn":1,"srv_queue":0,)"
            R"("backend_queue":0})"
            "\n");
}

// JSON strings are escaped as everywhere weir writes JSON (common/base/json.h):
// the access log wrote each byte from 0x7F up as \u00XX, so UTF-8 came out as
// Latin-1 ("é" read back as "Ã©").
TEST_F(AccessLogLines, JsonStringsAreEscapedOnce) {
  AccessLogEntry e = http_entry();
  e.request_line = "GET /caf\xc3\xa9?q=\"x\"\\\x01\xff HTTP/1.1";
  const std::string l = line(LogFormat::kJson, e);
  EXPECT_NE(l.find(R"("request":"GET /caf\u00e9?q=\"x\"\\\u0001\ufffd HTTP/1.1"})"),
            std::string::npos)
      << l;
}

// Text lines never carry a quote, a control character or a non-ASCII byte from
// a request: they are written as #XX (and '#' itself, so that it stays
// unambiguous).
TEST_F(AccessLogLines, TextLinesShowRequestBytesAsHashHex) {
  AccessLogEntry e = http_entry();
  e.request_line = "GET /a\"b#c\xc3\xa9 HTTP/1.1";
  EXPECT_EQ(line(LogFormat::kCustom, e, "%HM %HP %HV|%r"),
            "GET /a#22b#23c#C3#A9 HTTP/1.1|GET /a#22b#23c#C3#A9 HTTP/1.1\n");
}

// %hr{...} prints request headers, %[...] samples, %hr the rule captures; the
// worker fills them in the order the sinks asked for them.
TEST_F(AccessLogLines, CustomFormatWithHeadersSamplesAndCaptures) {
  LogSink s =
      file_sink(LogFormat::kCustom, "%ci %b %hr{user-agent} %[hdr(x-user)] %hr %{+Q}x %ST %HQ%%");
  GlobalConfig g;
  g.logs = {s};
  std::string error;
  // %{+Q}x is not a variable: the loader would have refused it; the sink too.
  EXPECT_FALSE(open_access_log_sinks(g, "weir.yaml", &sinks_, &captures_, &samples_, &error));
  s.custom = "%ci %b %hr{user-agent} %[hdr(x-user)] %hr %ST %HQ%%";
  sinks_.clear();
  write({s}, {});
  ASSERT_EQ(captures_, std::vector<std::string>{"user-agent"});
  ASSERT_EQ(samples_, std::vector<std::string>{"hdr(x-user)"});
  AccessLogEntry e = http_entry();
  const std::vector<std::string> captures = {"curl/8.0"};
  const std::vector<std::string> samples = {"alice"};
  const std::vector<std::string> rule_captures = {"one", "two"};
  e.captures = &captures;
  e.samples = &samples;
  e.rule_captures = &rule_captures;
  AccessLogWriter w(&sinks_);
  w.log(e);
  e.captures = nullptr;
  e.samples = nullptr;
  e.rule_captures = nullptr;
  w.log(e);
  w.flush();
  EXPECT_EQ(test::read_file(s.path),
            "192.0.2.7 app curl/8.0 alice {one|two} 200 ?b=1%\n"
            "192.0.2.7 app - - - 200 ?b=1%\n");
}

// A target that cannot take more lines holds them in a bounded buffer: beyond
// it, lines are dropped and counted, never waited for; once the target reads
// again, writing goes on.
TEST_F(AccessLogLines, AFullPipeDropsAndCountsLinesInsteadOfWaiting) {
  const AccessLogEntry e = http_entry();
  const std::string one = line(LogFormat::kHttp, e);
  const std::string fifo = dir_ + "/log.fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  test::UniqueFd reader(::open(fifo.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC));
  ASSERT_TRUE(reader);
  LogSink s;
  s.target = LogTarget::kFile;
  s.path = fifo;
  s.format = LogFormat::kHttp;
  write({s}, {});
  AccessLogWriter w(&sinks_);
  uint64_t logged = 0;
  while (dropped_access_log_lines(sinks_) == 0 && logged < 1000000) {
    w.log(e);
    w.flush();
    ++logged;
  }
  ASSERT_GT(dropped_access_log_lines(sinks_), 0u) << "nothing dropped after " << logged;
  EXPECT_TRUE(w.has_pending());
  // The reader catches up: what waited is written, whole lines only.
  std::string got;
  char buf[65536];
  for (int rounds = 0; rounds < 10000 && w.has_pending(); ++rounds) {
    ssize_t n;
    while ((n = ::read(reader.get(), buf, sizeof buf)) > 0) got.append(buf, static_cast<size_t>(n));
    w.flush();
  }
  ssize_t n;
  while ((n = ::read(reader.get(), buf, sizeof buf)) > 0) got.append(buf, static_cast<size_t>(n));
  EXPECT_FALSE(w.has_pending());
  ASSERT_EQ(got.size() % one.size(), 0u);
  EXPECT_EQ(got.size() / one.size() + dropped_access_log_lines(sinks_), logged);
  EXPECT_EQ(got.substr(0, one.size()), one);
}

// Syslog over UDP, in both framings: the priority of local0.info (134), then
// RFC 5424's or RFC 3164's header, then the line without its newline.
TEST_F(AccessLogLines, SyslogDatagramsCarryTheirHeader) {
  test::UniqueFd server(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(server.get(), reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  socklen_t len = sizeof a;
  ASSERT_EQ(::getsockname(server.get(), reinterpret_cast<sockaddr*>(&a), &len), 0);
  LogSink s;
  s.target = LogTarget::kSyslog;
  s.syslog_addr = sockaddr_from(reinterpret_cast<sockaddr*>(&a), len);
  s.format = LogFormat::kCustom;
  s.custom = "%ft %ST";
  s.tag = "edge";
  LogSink old = s;
  s.framing = SyslogFraming::kRfc5424;
  old.framing = SyslogFraming::kRfc3164;
  write({s, old}, {http_entry()});
  char buf[2048];
  const std::string pid = std::to_string(::getpid());
  ssize_t n = ::recv(server.get(), buf, sizeof buf, 0);
  ASSERT_GT(n, 0);
  EXPECT_TRUE(
      std::regex_match(std::string(buf, static_cast<size_t>(n)),
                       std::regex(R"(<134>1 \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z \S+ edge )" +
                                  pid + " - - web 200")))
      << std::string(buf, static_cast<size_t>(n));
  n = ::recv(server.get(), buf, sizeof buf, 0);
  ASSERT_GT(n, 0);
  EXPECT_TRUE(
      std::regex_match(std::string(buf, static_cast<size_t>(n)),
                       std::regex(R"(<134>[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d \S+ edge\[)" + pid +
                                  R"(\]: web 200)")))
      << std::string(buf, static_cast<size_t>(n));
}

}  // namespace
}  // namespace weir
