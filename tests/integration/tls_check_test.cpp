// Health checks of TLS servers (doc/tls.md): they run over TLS with the
// server's settings. The TLS server is `openssl s_server -www`, which answers
// any GET with a 200 page; the certificates are made with the openssl command
// in a temporary directory. Every wait has a generous deadline and nothing
// asserts speed.

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include "tests/support/http_client.h"
#include "tests/support/launcher.h"
#include "tests/support/line_server.h"
#include "tests/support/weir_config.h"

namespace weir::test {
namespace {

bool openssl(const std::vector<std::string>& args, std::string* err) {
  std::vector<std::string> argv{"openssl"};
  argv.insert(argv.end(), args.begin(), args.end());
  CommandResult r = run_command(argv, 60000);
  if (r.exit_code != 0) *err += "openssl " + args[0] + ": " + r.err + "\n";
  return r.exit_code == 0;
}

// `openssl s_server -www` on 127.0.0.1, killed with its process group at the end.
class TlsServer {
 public:
  TlsServer(const std::string& dir, const std::string& cert, const std::string& key) {
    for (int attempt = 0; attempt < 5 && !ready_; ++attempt) {
      port_ = free_tcp_port();
      const std::string log = dir + "/s_server." + std::to_string(port_) + ".log";
      std::vector<std::string> args{
          "openssl", "s_server", "-accept", "127.0.0.1:" + std::to_string(port_), "-cert", cert,
          "-key",    key,        "-www"};
      pid_ = ::fork();
      if (pid_ == 0) {
        ::setpgid(0, 0);
        ::signal(SIGPIPE, SIG_DFL);
        int in = ::open("/dev/null", O_RDONLY);
        int out = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (in >= 0) ::dup2(in, 0);
        if (out >= 0) {
          ::dup2(out, 1);
          ::dup2(out, 2);
        }
        std::vector<char*> cargv;
        for (auto& a : args) cargv.push_back(a.data());
        cargv.push_back(nullptr);
        ::execvp(cargv[0], cargv.data());
        ::_exit(127);
      }
      if (pid_ < 0) return;
      // Listening (and still alive: the port may have been taken meanwhile).
      ready_ = wait_until(
          [&] {
            int status = 0;
            if (::waitpid(pid_, &status, WNOHANG) == pid_) return true;
            return can_connect(port_, "127.0.0.1", 500);
          },
          10000, 50);
      int status = 0;
      if (ready_ && ::waitpid(pid_, &status, WNOHANG) == pid_) {
        ready_ = false;
        pid_ = -1;
      }
      if (!ready_) stop();
    }
  }
  ~TlsServer() { stop(); }
  TlsServer(const TlsServer&) = delete;
  TlsServer& operator=(const TlsServer&) = delete;
  bool ready() const { return ready_; }
  uint16_t port() const { return port_; }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }

 private:
  void stop() {
    if (pid_ <= 0) return;
    ::kill(-pid_, SIGKILL);
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }
  pid_t pid_ = -1;
  uint16_t port_ = 0;
  bool ready_ = false;
};

class TlsCheck : public ::testing::Test {
 protected:
  void SetUp() override {
    ignore_sigpipe();
    if (run_command({"openssl", "version"}, 10000).exit_code != 0) {
      GTEST_SKIP() << "the openssl command is not available";
    }
    dir_ = make_temp_dir();
    admin_ = dir_ + "/admin.sock";
    spec_.global_extra = "  runtime_api: {address: " + admin_ + ", level: admin}\n";
    spec_.frontend_extra = "    metrics: {uri: /metrics}\n";
    // A CA and a certificate for "localhost" signed by it; another CA that signed nothing.
    const std::vector<std::string> ec{"-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                                      "-nodes"};
    auto with = [&](std::vector<std::string> a) {
      a.insert(a.begin() + 1, ec.begin(), ec.end());
      return a;
    };
    std::string err;
    write_file(dir_ + "/ext.cnf", "subjectAltName=DNS:localhost\n");
    bool ok =
        openssl(with({"req", "-x509", "-keyout", dir_ + "/ca.key", "-out", ca(), "-days", "2",
                      "-subj", "/CN=weir test CA"}),
                &err) &&
        openssl(with({"req", "-x509", "-keyout", dir_ + "/other-ca.key", "-out", other_ca(),
                      "-days", "2", "-subj", "/CN=weir other CA"}),
                &err) &&
        openssl(with({"req", "-new", "-keyout", key(), "-out", dir_ + "/srv.csr", "-subj",
                      "/CN=localhost"}),
                &err) &&
        openssl({"x509", "-req", "-in", dir_ + "/srv.csr", "-CA", ca(), "-CAkey", dir_ + "/ca.key",
                 "-CAcreateserial", "-out", cert(), "-days", "2", "-extfile", dir_ + "/ext.cnf"},
                &err);
    ASSERT_TRUE(ok) << err;
  }
  void TearDown() override {
    weir_.reset();
    if (!dir_.empty()) remove_tree(dir_);
  }
  std::string ca() const { return dir_ + "/ca.pem"; }
  std::string other_ca() const { return dir_ + "/other-ca.pem"; }
  std::string cert() const { return dir_ + "/srv.pem"; }
  std::string key() const { return dir_ + "/srv.key"; }

  void start(const std::string& ca_file, const std::string& check) {
    spec_.backend_extra = "    tls: {enabled: true, ca_file: " + yaml_quote(ca_file) +
                          ", sni: localhost}\n    check: " + check + "\n";
    weir_ = WeirProcess::start(proxy_yaml(spec_));
  }
  std::map<std::string, std::string> row(const std::string& sv) {
    for (auto& r : parse_stat_csv(unix_command(admin_, "show stat"))) {
      if (r["pxname"] == "be" && r["svname"] == sv) return r;
    }
    return {};
  }
  bool wait_field(const std::string& sv, const std::string& field, const std::string& value) {
    return wait_until([&] { return row(sv)[field] == value; }, 15000, 50);
  }
  std::string stat() { return unix_command(admin_, "show stat"); }
  // The metrics sample of one check status of one server ("" when absent).
  std::string check_metric(const std::string& sv, const std::string& state) {
    auto r = http_get(spec_.port, "/metrics");
    if (!r) return "";
    const std::string key =
        "weir_server_check_status{proxy=\"be\",server=\"" + sv + "\",state=\"" + state + "\"} ";
    size_t at = r->body.find(key);
    if (at == std::string::npos) return "";
    size_t end = r->body.find('\n', at);
    return r->body.substr(at + key.size(), end - at - key.size());
  }

  ProxySpec spec_;
  std::string dir_, admin_;
  std::unique_ptr<WeirProcess> weir_;
};

TEST_F(TlsCheck, HttpCheckRunsOverTls) {
  TlsServer srv(dir_, cert(), key());
  ASSERT_TRUE(srv.ready());
  spec_.servers = {srv.address()};
  start(ca(), "{type: http, inter: 100ms, rise: 1, fall: 1, timeout: 2s}");
  ASSERT_TRUE(weir_);
  // s_server -www answers 200 only inside TLS: L7OK means the request went through it.
  ASSERT_TRUE(wait_field("s1", "check_status", "L7OK")) << stat();
  auto r = row("s1");
  EXPECT_EQ(r["status"], "UP") << stat();
  EXPECT_EQ(r["check_code"], "200") << stat();
  EXPECT_EQ(r["last_chk"], "Layer7 check passed: 200") << stat();
  EXPECT_EQ(check_metric("s1", "L7OK"), "1");
  EXPECT_EQ(check_metric("s1", "L6RSP"), "0");
}

TEST_F(TlsCheck, TcpCheckPassesOnceTheHandshakeIsDone) {
  TlsServer srv(dir_, cert(), key());
  ASSERT_TRUE(srv.ready());
  spec_.servers = {srv.address()};
  start(ca(), "{inter: 100ms, rise: 1, fall: 1, timeout: 2s}");
  ASSERT_TRUE(weir_);
  ASSERT_TRUE(wait_field("s1", "check_status", "L6OK")) << stat();
  EXPECT_EQ(row("s1")["status"], "UP") << stat();
  EXPECT_EQ(row("s1")["last_chk"], "Layer6 check passed: TLS handshake done") << stat();
}

TEST_F(TlsCheck, WrongCaKeepsTheServerDown) {
  TlsServer srv(dir_, cert(), key());
  ASSERT_TRUE(srv.ready());
  spec_.servers = {srv.address()};
  start(other_ca(), "{type: http, inter: 100ms, rise: 1, fall: 1, timeout: 2s}");
  ASSERT_TRUE(weir_);
  ASSERT_TRUE(wait_field("s1", "status", "DOWN")) << stat();
  auto r = row("s1");
  EXPECT_EQ(r["check_status"], "L6RSP") << stat();
  EXPECT_EQ(r["last_chk"].rfind("TLS handshake failed: ", 0), 0u) << stat();
  EXPECT_TRUE(weir_->wait_for_stderr("server be/s1 is DOWN, reason: TLS handshake failed: ", 5000))
      << weir_->stderr_text();
  // It stays down: more checks fail the same way.
  const long failed = std::atol(r["chkfail"].c_str());
  ASSERT_TRUE(
      wait_until([&] { return std::atol(row("s1")["chkfail"].c_str()) >= failed + 3; }, 15000, 50))
      << stat();
  r = row("s1");
  EXPECT_EQ(r["status"], "DOWN") << stat();
  EXPECT_EQ(r["check_status"], "L6RSP") << stat();
  EXPECT_EQ(check_metric("s1", "L6RSP"), "1");
  EXPECT_EQ(check_metric("s1", "L7OK"), "0");
}

// A tcp check with TLS enabled toward listeners that do not speak TLS: one
// answers plain text and closes (a protocol error), one says nothing (the
// handshake runs out of time).
TEST_F(TlsCheck, TcpCheckOfAPlainListenerFails) {
  LineServer talker;
  talker.set_reply("+OK plain text here\r\n");
  LineServer silent;
  silent.set_wait_for("never sent");  // holds each connection 1 s, then closes
  spec_.servers = {"127.0.0.1:" + std::to_string(talker.port()),
                   "127.0.0.1:" + std::to_string(silent.port())};
  start(ca(), "{inter: 100ms, rise: 1, fall: 1, timeout: 300ms}");
  ASSERT_TRUE(weir_);
  ASSERT_TRUE(wait_field("s1", "status", "DOWN")) << stat();
  ASSERT_TRUE(wait_field("s2", "status", "DOWN")) << stat();
  auto r1 = row("s1");
  EXPECT_EQ(r1["check_status"], "L6RSP") << stat();
  EXPECT_EQ(r1["last_chk"].rfind("TLS handshake failed: ", 0), 0u) << stat();
  auto r2 = row("s2");
  EXPECT_TRUE(r2["check_status"] == "L6TOUT" || r2["check_status"] == "L6RSP") << stat();
  ASSERT_TRUE(wait_field("s2", "check_status", "L6TOUT")) << stat();
  EXPECT_EQ(row("s2")["last_chk"], "Layer6 timeout: TLS handshake not done") << stat();
  EXPECT_EQ(check_metric("s2", "L6TOUT"), "1");
}

}  // namespace
}  // namespace weir::test
