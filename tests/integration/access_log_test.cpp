// Access logs as an operator reads them: custom format strings parsed back field
// by field for a normal request, a 503 and a client abort; JSON lines; syslog
// over UDP and over a Unix datagram socket with both framings; and a log target
// that does not keep up, which must cost log lines, never traffic.

#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <map>
#include <regex>
#include <thread>

#include "tests/support/http_client.h"
#include "tests/support/launcher.h"
#include "tests/support/origin.h"
#include "tests/support/weir_config.h"

namespace weir::test {
namespace {

// Every variable, separated by '|', so that a line splits back into its fields.
const char* const kAllFields =
    "%ci|%cp|%ft|%b|%s|%si|%sp|%TR|%Tw|%Tc|%Tr|%Ta|%ST|%B|%U|%ts|%ac|%fc|%bc|%sc|%rc|%sq|%bq|"
    "%HM|%HP|%HQ|%HV|%hr{User-Agent}|%hr{x-trace}|%r|%mode|%pid|%Ts|%%";
const char* const kFieldNames[] = {"ci", "cp",    "ft", "b",    "s",   "si", "sp", "TR", "Tw",
                                   "Tc", "Tr",    "Ta", "ST",   "B",   "U",  "ts", "ac", "fc",
                                   "bc", "sc",    "rc", "sq",   "bq",  "HM", "HP", "HQ", "HV",
                                   "ua", "trace", "r",  "mode", "pid", "Ts", "pct"};

std::map<std::string, std::string> split_fields(const std::string& line) {
  std::map<std::string, std::string> out;
  size_t start = 0, i = 0;
  for (;;) {
    size_t bar = line.find('|', start);
    std::string v = line.substr(start, bar == std::string::npos ? std::string::npos : bar - start);
    if (i < std::size(kFieldNames)) out[kFieldNames[i]] = v;
    ++i;
    if (bar == std::string::npos) break;
    start = bar + 1;
  }
  out["count"] = std::to_string(i);
  return out;
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string::npos) break;
    out.push_back(text.substr(pos, nl - pos));
    pos = nl + 1;
  }
  return out;
}

class AccessLog : public ::testing::Test {
 protected:
  void SetUp() override {
    ignore_sigpipe();
    dir_ = make_temp_dir();
    log_ = dir_ + "/access.log";
  }
  void TearDown() override {
    weir_.reset();
    remove_tree(dir_);
  }
  // The log lines (with `needle`) once at least `n` are there.
  std::vector<std::string> wait_lines(size_t n, const std::string& needle = "") {
    std::vector<std::string> found;
    wait_until(
        [&] {
          found.clear();
          for (auto& l : lines_of(read_file(log_)))
            if (needle.empty() || l.find(needle) != std::string::npos) found.push_back(l);
          return found.size() >= n;
        },
        5000);
    return found;
  }

  std::string dir_, log_, admin_;
  ProxySpec spec_;
  std::unique_ptr<WeirProcess> weir_;
};

TEST_F(AccessLog, CustomFormatFieldsForANormalRequestA503AndAClientAbort) {
  OriginServer a("a");
  spec_.servers = {a.address()};
  spec_.threads = 1;
  spec_.logs = "[{target: " + log_ + ", format: \"" + std::string(kAllFields) + "\"}]";
  spec_.backend_timeouts = "connect: 1s";
  spec_.backend_extra = "    abortonclose: true\n";
  admin_ = dir_ + "/admin.sock";
  spec_.global_extra = "  runtime_api: [{address: " + admin_ + ", level: user}]\n";
  weir_ = WeirProcess::start(proxy_yaml(spec_));
  ASSERT_TRUE(weir_);

  // 1. A normal request.
  {
    HttpClient c(spec_.port);
    auto r = c.request("GET", "/ok/path?x=1&y=2", {{"User-Agent", "curl/8.0"}, {"X-Trace", "t-1"}});
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
  }
  auto lines = wait_lines(1, "/ok/path");
  ASSERT_EQ(lines.size(), 1u);
  auto f = split_fields(lines[0]);
  EXPECT_EQ(f["count"], std::to_string(std::size(kFieldNames))) << lines[0];
  EXPECT_EQ(f["ci"], "127.0.0.1");
  EXPECT_GT(std::stoi(f["cp"]), 0);
  EXPECT_EQ(f["ft"], "fe");
  EXPECT_EQ(f["b"], "be");
  EXPECT_EQ(f["s"], "s1");
  EXPECT_EQ(f["si"], "127.0.0.1");
  EXPECT_EQ(f["sp"], std::to_string(a.port()));
  for (const char* t : {"TR", "Tw", "Tc", "Tr", "Ta"}) EXPECT_GE(std::stoi(f[t]), 0) << t;
  EXPECT_GE(std::stoi(f["Ta"]), std::stoi(f["Tr"]));
  EXPECT_EQ(f["ST"], "200");
  EXPECT_GT(std::stoi(f["B"]), 0);
  EXPECT_GT(std::stoi(f["U"]), 0);
  EXPECT_EQ(f["ts"], "--");
  EXPECT_EQ(f["ac"], "1");  // this connection
  EXPECT_EQ(f["fc"], "1");
  EXPECT_EQ(f["bc"], "1");  // the request being logged still holds its slot
  EXPECT_EQ(f["sc"], "1");
  EXPECT_EQ(f["rc"], "0");
  EXPECT_EQ(f["sq"], "0");
  EXPECT_EQ(f["bq"], "0");
  EXPECT_EQ(f["HM"], "GET");
  EXPECT_EQ(f["HP"], "/ok/path");
  EXPECT_EQ(f["HQ"], "?x=1&y=2");
  EXPECT_EQ(f["HV"], "HTTP/1.1");
  EXPECT_EQ(f["ua"], "curl/8.0");
  EXPECT_EQ(f["trace"], "t-1");
  EXPECT_EQ(f["r"], "GET /ok/path?x=1&y=2 HTTP/1.1");
  EXPECT_EQ(f["mode"], "http");
  EXPECT_EQ(f["pid"], std::to_string(weir_->current_worker()));
  EXPECT_NEAR(std::stoll(f["Ts"]), static_cast<long long>(time(nullptr)), 30);
  EXPECT_EQ(f["pct"], "%");
  {
    // The next request on a keep-alive connection does not inherit the headers of
    // the previous one.
    HttpClient c(spec_.port);
    ASSERT_TRUE(c.request("GET", "/first", {{"User-Agent", "first-agent"}}));
    ASSERT_TRUE(c.request("GET", "/second"));
  }
  lines = wait_lines(1, "/second");
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(split_fields(lines[0])["ua"], "-") << lines[0];

  // 2. No server answers: 503 after the retries, refused at connect.
  a.stop();
  {
    auto r = http_get(spec_.port, "/down");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 503);
  }
  lines = wait_lines(1, "/down");
  ASSERT_EQ(lines.size(), 1u);
  f = split_fields(lines[0]);
  EXPECT_EQ(f["ST"], "503");
  EXPECT_EQ(f["ts"], "SC");  // the server side refused, at connect
  EXPECT_EQ(f["Tc"], "-1");  // never connected
  EXPECT_EQ(f["Tr"], "-1");
  EXPECT_EQ(f["rc"], "3");            // retries: 3
  EXPECT_EQ(f["ua"], "-");            // absent header
  EXPECT_GT(std::stoi(f["B"]), 100);  // the error page weir wrote

  // 3. The client gives up while the server is still thinking (abortonclose):
  // weir ends the request and frees the server at once.
  a.restart();
  {
    HttpClient c(spec_.port);
    ASSERT_TRUE(c.send_raw("GET /slow?delay=5000 HTTP/1.1\r\nHost: t\r\n\r\n"));
    ASSERT_TRUE(wait_until([&] { return a.connections_accepted() > 0; }, 5000));
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    c.close();
  }
  lines = wait_lines(1, "/slow");
  ASSERT_EQ(lines.size(), 1u);
  f = split_fields(lines[0]);
  EXPECT_EQ(f["ts"], "CH") << lines[0];  // client, while waiting for the response headers
  EXPECT_EQ(f["ST"], "-");               // no response was sent
  EXPECT_EQ(f["Tr"], "-1");
  EXPECT_GE(std::stoi(f["Ta"]), 150);
  EXPECT_LT(std::stoi(f["Ta"]), 4000);
  EXPECT_EQ(f["s"], "s1");

  // 4. The client goes away in the middle of a large download.
  {
    HttpClient c(spec_.port);
    ASSERT_TRUE(c.send_raw("GET /big?size=50000000 HTTP/1.1\r\nHost: t\r\n\r\n"));
    // Read the first bytes only: the socket buffers fill and weir waits to write more.
    std::string head;
    ASSERT_TRUE(wait_until(
        [&] {
          char b[64];
          ssize_t n = ::recv(c.fd(), b, sizeof b, 0);
          if (n > 0) head.append(b, static_cast<size_t>(n));
          return head.size() >= 12;
        },
        5000));
    EXPECT_EQ(head.substr(0, 12), "HTTP/1.1 200");
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    c.close();  // unread bytes: the kernel answers with a reset
  }
  lines = wait_lines(1, "/big");
  ASSERT_EQ(lines.size(), 1u);
  f = split_fields(lines[0]);
  EXPECT_EQ(f["ts"], "CD") << lines[0];  // client, during the data
  EXPECT_EQ(f["ST"], "200");
  EXPECT_GT(std::stoll(f["B"]), 0);
  EXPECT_LT(std::stoll(f["B"]), 50000000LL);
  std::string stat = weirctl({"-s", admin_, "show", "stat"}).out;
  for (auto& row : parse_stat_csv(stat)) {
    if (row["svname"] == "s1") {
      EXPECT_EQ(row["cli_abrt"], "2") << stat;
    }
  }
}

TEST_F(AccessLog, JsonLinesCarryEveryField) {
  OriginServer a("a");
  spec_.servers = {a.address()};
  spec_.logs = "[{target: " + log_ + ", format: json}]";
  weir_ = WeirProcess::start(proxy_yaml(spec_));
  ASSERT_TRUE(weir_);
  ASSERT_TRUE(http_get(spec_.port, "/j?q=\"quoted\""));
  auto lines = wait_lines(1);
  ASSERT_EQ(lines.size(), 1u);
  const std::string& l = lines[0];
  EXPECT_TRUE(std::regex_search(
      l, std::regex(
             R"(^\{"time":"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z","client":"127\.0\.0\.1:\d+",)"
             R"("frontend":"fe","backend":"be","server":"s1","mode":"http",)")))
      << l;
  for (const char* key : {"\"t_request\":", "\"t_queue\":0",
                          "\"t_connect\":", "\"t_response\":", "\"t_total\":", "\"status\":200",
                          "\"bytes_out\":", "\"bytes_in\":", "\"termination\":\"--\"",
                          "\"retries\":0", "\"actconn\":1", "\"feconn\":1", "\"beconn\":1",
                          "\"srv_conn\":1", "\"srv_queue\":0", "\"backend_queue\":0"}) {
    EXPECT_NE(l.find(key), std::string::npos) << key << " in " << l;
  }
  EXPECT_NE(l.find(R"("request":"GET /j?q=\"quoted\" HTTP/1.1"})"), std::string::npos) << l;
}

// A syslog server for the test: one datagram socket (UDP or Unix).
class SyslogReceiver {
 public:
  static std::unique_ptr<SyslogReceiver> udp() {
    auto r = std::unique_ptr<SyslogReceiver>(new SyslogReceiver);
    r->fd_.reset(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::bind(r->fd_.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) return nullptr;
    socklen_t len = sizeof sa;
    ::getsockname(r->fd_.get(), reinterpret_cast<sockaddr*>(&sa), &len);
    r->port_ = ntohs(sa.sin_port);
    return r;
  }
  static std::unique_ptr<SyslogReceiver> unix_socket(const std::string& path) {
    auto r = std::unique_ptr<SyslogReceiver>(new SyslogReceiver);
    r->fd_.reset(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    std::strncpy(sa.sun_path, path.c_str(), sizeof sa.sun_path - 1);
    if (::bind(r->fd_.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) return nullptr;
    return r;
  }
  uint16_t port() const { return port_; }
  // The next datagram, or "" after the timeout.
  std::string receive(int timeout_ms = 5000) {
    timeval tv{timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    ::setsockopt(fd_.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    char buf[8192];
    ssize_t n = ::recv(fd_.get(), buf, sizeof buf, 0);
    return n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string();
  }

 private:
  SyslogReceiver() = default;
  UniqueFd fd_;
  uint16_t port_ = 0;
};

std::string host_name() {
  char buf[256] = {};
  gethostname(buf, sizeof buf - 1);
  return buf;
}

TEST_F(AccessLog, SyslogOverUdpInBothFramings) {
  OriginServer a("a");
  auto rfc5424 = SyslogReceiver::udp();
  auto rfc3164 = SyslogReceiver::udp();
  ASSERT_TRUE(rfc5424 && rfc3164);
  spec_.servers = {a.address()};
  spec_.logs = "[{target: syslog, address: \"127.0.0.1:" + std::to_string(rfc5424->port()) +
               "\"}, {target: syslog, address: \"127.0.0.1:" + std::to_string(rfc3164->port()) +
               "\", framing: rfc3164, facility: local3, tag: edge, format: \"%ci %ST %r\"}]";
  weir_ = WeirProcess::start(proxy_yaml(spec_));
  ASSERT_TRUE(weir_);
  ASSERT_TRUE(http_get(spec_.port, "/via-syslog"));
  const std::string pid = std::to_string(weir_->current_worker());
  std::string m = rfc5424->receive();
  // <local0.info = 134>1 TIMESTAMP HOST weir PID - - MESSAGE (the default http layout)
  EXPECT_TRUE(std::regex_match(
      m, std::regex(
             R"(<134>1 \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z )" + host_name() + " weir " + pid +
             R"( - - 127\.0\.0\.1:\d+ \[.*\] fe be/s1 .* 200 .* "GET /via-syslog HTTP/1\.1")")))
      << m;
  m = rfc3164->receive();
  // <local3.info = 158>Mmm dd hh:mm:ss HOST edge[PID]: MESSAGE
  EXPECT_TRUE(std::regex_match(
      m, std::regex(R"(<158>[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d )" + host_name() + " edge\\[" +
                    pid + R"(\]: 127\.0\.0\.1 200 GET /via-syslog HTTP/1\.1)")))
      << m;
}

TEST_F(AccessLog, SyslogOverAUnixSocketAndDroppedLinesWhenNobodyListens) {
  OriginServer a("a");
  const std::string sock = dir_ + "/log.sock";
  const std::string nobody = dir_ + "/nobody.sock";
  const std::string admin = dir_ + "/admin.sock";
  auto rx = SyslogReceiver::unix_socket(sock);
  ASSERT_TRUE(rx);
  spec_.servers = {a.address()};
  spec_.logs =
      "[{target: syslog, address: " + sock + "}, {target: syslog, address: " + nobody + "}]";
  spec_.global_extra = "  runtime_api: [{address: " + admin + ", level: user}]\n";
  weir_ = WeirProcess::start(proxy_yaml(spec_));
  ASSERT_TRUE(weir_);
  EXPECT_TRUE(weir_->wait_for_stderr("syslog socket " + nobody, 2000));
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(http_get(spec_.port, "/u" + std::to_string(i)));
  std::string m = rx->receive();
  EXPECT_TRUE(std::regex_match(
      m,
      std::regex(
          R"(<134>[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d \S+ weir\[\d+\]: 127\.0\.0\.1:\d+ .*"GET /u0 HTTP/1\.1")")))
      << m;
  // The target with no listener lost its five lines, and said so.
  std::string info;
  ASSERT_TRUE(wait_until(
      [&] {
        info = weirctl({"-s", admin, "show", "info"}).out;
        return info.find("DroppedLogs: 5\n") != std::string::npos;
      },
      5000))
      << info;
}

TEST_F(AccessLog, ALogTargetThatStopsReadingCostsLinesNotTraffic) {
  OriginServer a("a");
  // A FIFO whose reader never reads: the pipe fills after 64 KiB, then weir's
  // own buffer, then lines are dropped. Requests must not wait for it.
  const std::string fifo = dir_ + "/stuck.fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  UniqueFd reader(::open(fifo.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC));
  ASSERT_TRUE(reader);
  const std::string admin = dir_ + "/admin.sock";
  spec_.servers = {a.address()};
  spec_.threads = 1;
  spec_.logs = "[{target: " + fifo + "}]";
  spec_.global_extra = "  runtime_api: [{address: " + admin + ", level: user}]\n";
  weir_ = WeirProcess::start(proxy_yaml(spec_));
  ASSERT_TRUE(weir_);
  // ~2 KiB per line: 400 lines is well beyond 64 KiB + 256 KiB.
  const std::string long_path = "/" + std::string(2000, 'p');
  HttpClient c(spec_.port);
  for (int i = 0; i < 400; ++i) {
    auto r = c.request("GET", long_path + "?i=" + std::to_string(i), {}, "", 10000);
    ASSERT_TRUE(r) << "request " << i << " got no answer";
    ASSERT_EQ(r->status, 200);
  }
  std::string info = weirctl({"-s", admin, "show", "info"}).out;
  std::smatch m;
  ASSERT_TRUE(std::regex_search(info, m, std::regex(R"(DroppedLogs: (\d+))"))) << info;
  EXPECT_GT(std::stoi(m[1]), 100) << info;
}

// The termination states of doc/operations.md for answers that never reach a
// server: weir's own (the stats page and a return rule: LR) and a tarpit, which
// is PT when its delay ends and KT when the operator kills the held request.
TEST_F(AccessLog, WeirsOwnAnswersAndTarpitsHaveTheirTerminationStates) {
  OriginServer a("a");
  spec_.servers = {a.address()};
  admin_ = dir_ + "/admin.sock";
  spec_.global_extra = "  runtime_api: [{address: " + admin_ + ", level: admin}]\n";
  spec_.frontend_extra =
      "    stats: {uri: /stats}\n"
      "    http_request:\n"
      "      - return: {status: 200, body: pong}\n"
      "        if: \"{ path /ping }\"\n"
      "      - tarpit: {delay: 60s}\n"
      "        if: \"{ path_beg /held }\"\n"
      "      - tarpit: {delay: 100ms, status: 429}\n"
      "        if: \"{ path_beg /slowed }\"\n";
  weir_ = WeirProcess::start(proxy_yaml(spec_));
  ASSERT_TRUE(weir_);
  auto r = http_get(spec_.port, "/stats");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  r = http_get(spec_.port, "/ping");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->body, "pong");
  r = http_get(spec_.port, "/slowed");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 429);

  HttpClient held(spec_.port);
  ASSERT_TRUE(held.send_raw("GET /held HTTP/1.1\r\nHost: x\r\n\r\n"));
  std::smatch m;
  std::string sess;
  ASSERT_TRUE(wait_until(
      [&] {
        sess = weirctl({"-s", admin_, "show", "sess"}).out;
        // show sess names the phase: a held request is in "tarpit".
        return std::regex_search(sess, m,
                                 std::regex(R"(id=(\d+) [^\n]*state=tarpit [^\n]*GET /held)"));
      },
      5000))
      << sess;
  ASSERT_EQ(weirctl({"-s", admin_, "shutdown", "session", m[1].str()}).exit_code, 0);
  EXPECT_TRUE(held.wait_closed(5000));

  EXPECT_TRUE(weir_->wait_for_stdout(R"( 200 \d+ LR .*"GET /stats HTTP/1.1")", 5000))
      << weir_->stdout_text();
  EXPECT_TRUE(weir_->wait_for_stdout(R"( 200 \d+ LR .*"GET /ping HTTP/1.1")", 5000));
  EXPECT_TRUE(weir_->wait_for_stdout(R"( 429 \d+ PT .*"GET /slowed HTTP/1.1")", 5000));
  EXPECT_TRUE(weir_->wait_for_stdout(R"( KT .*"GET /held HTTP/1.1")", 5000))
      << weir_->stdout_text();
  EXPECT_EQ(a.requests().size(), 0u);
}

}  // namespace
}  // namespace weir::test
