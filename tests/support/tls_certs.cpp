#include "tests/support/tls_certs.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <regex>
#include <stdexcept>
#include <thread>

#include "tests/support/launcher.h"

namespace weir::test {

namespace {

std::string join_args(const std::vector<std::string>& args) {
  std::string s;
  for (const auto& a : args) s += (s.empty() ? "" : " ") + a;
  return s;
}

// "/C=FR/O=x/CN=y" -> "y"
std::string cn_of(const std::string& subject) {
  size_t pos = subject.find("/CN=");
  if (pos == std::string::npos) return "";
  std::string cn = subject.substr(pos + 4);
  size_t end = cn.find('/');
  return end == std::string::npos ? cn : cn.substr(0, end);
}

long long parse_openssl_date(const std::string& text) {
  // "Nov 26 10:02:28 2026 GMT"
  std::tm tm{};
  if (::strptime(text.c_str(), "%b %d %H:%M:%S %Y", &tm) == nullptr) return 0;
  return static_cast<long long>(::timegm(&tm));
}

std::string line_value(const std::string& text, const std::string& prefix) {
  size_t pos = text.find(prefix);
  if (pos == std::string::npos) return "";
  pos += prefix.size();
  size_t end = text.find('\n', pos);
  return text.substr(pos, end == std::string::npos ? std::string::npos : end - pos);
}

std::string fresh_key(const std::string& path, KeyType type) {
  if (type == KeyType::ecdsa) {
    openssl({"genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", path});
  } else {
    openssl({"genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", path});
  }
  return path;
}

int next_serial() {
  static int serial = 0;
  return ++serial;
}

const char* kReqConfig =
    "[ req ]\n"
    "distinguished_name = dn\n"
    "prompt = no\n"
    "[ dn ]\n"
    "CN = unused\n";

}  // namespace

CommandResult openssl(const std::vector<std::string>& args, const std::string& stdin_data) {
  std::vector<std::string> argv = {"openssl"};
  argv.insert(argv.end(), args.begin(), args.end());
  CommandResult r = run_command(argv, 60000, stdin_data);
  if (r.exit_code != 0) {
    throw std::runtime_error("openssl " + join_args(args) + " failed (" +
                             std::to_string(r.exit_code) + "): " + r.out + r.err);
  }
  return r;
}

long long unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string asn1_time(long long t) {
  std::time_t tt = static_cast<std::time_t>(t);
  std::tm tm{};
  ::gmtime_r(&tt, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y%m%d%H%M%SZ", &tm);
  return buf;
}

int openssl_verify(const std::string& ca, const std::string& cert, const std::string& untrusted,
                   const std::string& crl) {
  std::vector<std::string> argv = {"openssl", "verify", "-CAfile", ca};
  if (!untrusted.empty()) argv.insert(argv.end(), {"-untrusted", untrusted});
  if (!crl.empty()) argv.insert(argv.end(), {"-crl_check", "-CRLfile", crl});
  argv.push_back(cert);
  CommandResult r = run_command(argv, 30000);
  if (r.exit_code == 0 && r.out.find(": OK") != std::string::npos) return 0;
  std::smatch m;
  std::string all = r.out + r.err;
  if (std::regex_search(all, m, std::regex(R"(error (\d+) at)"))) return std::stoi(m[1]);
  return -1;
}

// ---------------------------------------------------------------------------
// TestCa

TestCa::TestCa(const std::string& dir, const std::string& name, const std::string& subject,
               const TestCa* parent)
    : dir_(dir + "/" + name), name_(name), subject_(subject), parent_(parent) {
  ::mkdir(dir_.c_str(), 0755);
  ::mkdir((dir_ + "/newcerts").c_str(), 0755);
  write_file(dir_ + "/index.txt", "");
  write_file(dir_ + "/index.txt.attr", "unique_subject = no\n");
  write_file(dir_ + "/crlnumber", "1000\n");
  write_file(dir_ + "/serial", "01\n");
  write_file(config_path(),
             "[ ca ]\n"
             "default_ca = ca_default\n"
             "[ ca_default ]\n"
             "dir = " +
                 dir_ +
                 "\n"
                 "database = $dir/index.txt\n"
                 "certificate = $dir/ca.crt\n"
                 "private_key = $dir/ca.key\n"
                 "new_certs_dir = $dir/newcerts\n"
                 "serial = $dir/serial\n"
                 "crlnumber = $dir/crlnumber\n"
                 "default_md = sha256\n"
                 "default_days = 30\n"
                 "default_crl_days = 30\n"
                 "policy = policy_any\n"
                 "unique_subject = no\n"
                 "copy_extensions = none\n"
                 "email_in_dn = no\n"
                 "[ policy_any ]\n"
                 "countryName = optional\n"
                 "stateOrProvinceName = optional\n"
                 "localityName = optional\n"
                 "organizationName = optional\n"
                 "organizationalUnitName = optional\n"
                 "commonName = supplied\n"
                 "emailAddress = optional\n");
  write_file(dir_ + "/req.cnf", kReqConfig);
  key_ = fresh_key(dir_ + "/ca.key", KeyType::ecdsa);
  cert_ = dir_ + "/ca.crt";
  if (parent == nullptr) {
    openssl({"req", "-config", dir_ + "/req.cnf", "-x509", "-new", "-key", key_, "-subj", subject,
             "-days", "3650", "-sha256", "-addext", "basicConstraints=critical,CA:TRUE", "-addext",
             "keyUsage=critical,keyCertSign,cRLSign,digitalSignature", "-out", cert_});
    return;
  }
  openssl({"req", "-config", dir_ + "/req.cnf", "-new", "-key", key_, "-subj", subject, "-out",
           dir_ + "/ca.csr"});
  write_file(dir_ + "/ca.ext",
             "[ ext ]\n"
             "basicConstraints = critical, CA:TRUE, pathlen:0\n"
             "keyUsage = critical, keyCertSign, cRLSign, digitalSignature\n"
             "subjectKeyIdentifier = hash\n"
             "authorityKeyIdentifier = keyid\n");
  char serial[32];
  std::snprintf(serial, sizeof serial, "4CA0%04X", next_serial());
  write_file(parent->dir() + "/serial", std::string(serial) + "\n");
  openssl({"ca", "-batch", "-config", parent->config_path(), "-notext", "-preserveDN", "-days",
           "3650", "-in", dir_ + "/ca.csr", "-out", cert_, "-extfile", dir_ + "/ca.ext",
           "-extensions", "ext"});
}

std::string TestCa::chain_text() const {
  if (parent_ == nullptr) return "";
  return read_file(cert_) + parent_->chain_text();
}

Cert TestCa::issue(const std::string& out_dir, const std::string& name,
                   const CertSpec& spec) const {
  Cert c;
  c.name = name;
  const std::string base = out_dir + "/" + name;
  c.key = fresh_key(base + ".key.pem", spec.key);
  std::string subject = spec.subject;
  if (subject.empty()) subject = "/O=weir-tests/CN=" + (spec.dns.empty() ? "leaf" : spec.dns[0]);
  openssl({"req", "-config", dir_ + "/req.cnf", "-new", "-key", c.key, "-subj", subject, "-out",
           base + ".csr"});
  std::string ext =
      "[ ext ]\n"
      "basicConstraints = critical, CA:FALSE\n"
      "keyUsage = critical, digitalSignature" +
      std::string(spec.key == KeyType::rsa ? ", keyEncipherment" : "") +
      "\n"
      "extendedKeyUsage = " +
      (spec.client ? "clientAuth" : "serverAuth") +
      "\n"
      "subjectKeyIdentifier = hash\n"
      "authorityKeyIdentifier = keyid\n";
  if (!spec.dns.empty()) {
    std::string san;
    for (const auto& d : spec.dns) san += (san.empty() ? "DNS:" : ", DNS:") + d;
    ext += "subjectAltName = " + san + "\n";
  }
  write_file(base + ".ext", ext);
  // Serial numbers with letters and a non-zero first digit: "5EC0" + 12 hex digits.
  char serial[32];
  std::snprintf(serial, sizeof serial, "5EC0%012X", 0xA0000 + next_serial());
  write_file(dir_ + "/serial", std::string(serial) + "\n");
  std::vector<std::string> args = {
      "ca",          "-batch", "-config",     config_path(), "-notext",     "-preserveDN", "-in",
      base + ".csr", "-out",   base + ".crt", "-extfile",    base + ".ext", "-extensions", "ext"};
  if (!spec.not_before.empty() || !spec.not_after.empty()) {
    args.insert(args.end(), {"-startdate", spec.not_before.empty() ? asn1_time(unix_now() - 60)
                                                                   : spec.not_before});
    args.insert(args.end(),
                {"-enddate", spec.not_after.empty() ? asn1_time(unix_now() + 86400LL * spec.days)
                                                    : spec.not_after});
  } else {
    args.insert(args.end(), {"-days", std::to_string(spec.days)});
  }
  openssl(args);
  c.cert = base + ".crt";
  c.root = root_cert();
  c.chain = base + ".chain.pem";
  const std::string leaf = read_file(c.cert);
  const std::string chain = chain_text();
  write_file(c.chain, chain);
  const std::string key = read_file(c.key);
  c.bundle = base + ".bundle.pem";
  write_file(c.bundle, leaf + chain);
  c.pem = base + ".pem";
  write_file(c.pem, leaf + chain + key);
  CommandResult info = openssl({"x509", "-in", c.cert, "-noout", "-serial", "-startdate",
                                "-enddate", "-subject", "-issuer", "-nameopt", "compat"});
  c.serial = line_value(info.out, "serial=");
  c.subject = line_value(info.out, "subject=");
  c.issuer = line_value(info.out, "issuer=");
  c.not_before = parse_openssl_date(line_value(info.out, "notBefore="));
  c.not_after = parse_openssl_date(line_value(info.out, "notAfter="));
  c.cn = cn_of(c.subject);
  return c;
}

void TestCa::revoke(const Cert& cert) const {
  openssl({"ca", "-batch", "-config", config_path(), "-revoke", cert.cert});
}

std::string TestCa::crl(const std::string& path) const {
  openssl({"ca", "-batch", "-config", config_path(), "-gencrl", "-crldays", "30", "-out", path});
  return path;
}

void TestCa::ocsp_response(const Cert& cert, const std::string& path) const {
  const std::string req = path + ".req.der";
  openssl({"ocsp", "-issuer", cert_, "-cert", cert.cert, "-no_nonce", "-reqout", req});
  openssl({"ocsp", "-index", dir_ + "/index.txt", "-rsigner", cert_, "-rkey", key_, "-CA", cert_,
           "-reqin", req, "-respout", path, "-ndays", "7"});
  ::unlink(req.c_str());
}

// ---------------------------------------------------------------------------
// TestPki

TestPki::TestPki()
    : dir_(make_temp_dir()),
      root_(dir_, "root", "/C=FR/O=weir-tests/CN=weir-test-root", nullptr),
      inter_(dir_, "intermediate", "/C=FR/O=weir-tests/CN=weir-test-intermediate", &root_),
      other_(dir_, "other", "/C=FR/O=elsewhere/CN=untrusted-root", nullptr),
      client_(dir_, "clients", "/C=FR/O=weir-tests/CN=weir-client-ca", nullptr) {}

TestPki::~TestPki() {
  const bool failed = ::testing::Test::HasFailure();
  if (failed || std::getenv("WEIR_TEST_KEEP") != nullptr) {
    std::cout << "[ pki  ] kept " << dir_ << "\n";
    return;
  }
  remove_tree(dir_);
}

Cert TestPki::server(const std::string& name, CertSpec spec) {
  spec.client = false;
  return inter_.issue(dir_, name, spec);
}
Cert TestPki::root_server(const std::string& name, CertSpec spec) {
  spec.client = false;
  return root_.issue(dir_, name, spec);
}
Cert TestPki::untrusted_server(const std::string& name, CertSpec spec) {
  spec.client = false;
  return other_.issue(dir_, name, spec);
}
Cert TestPki::client(const std::string& name, CertSpec spec) {
  spec.client = true;
  return client_.issue(dir_, name, spec);
}
Cert TestPki::untrusted_client(const std::string& name, CertSpec spec) {
  spec.client = true;
  return other_.issue(dir_, name, spec);
}

std::string TestPki::revoke_client(const Cert& cert) {
  client_.revoke(cert);
  return client_crl();
}

std::string TestPki::client_crl() {
  static int n = 0;
  return client_.crl(dir_ + "/clients-crl-" + std::to_string(++n) + ".pem");
}

std::string TestPki::staple_ocsp(const Cert& cert) {
  inter_.ocsp_response(cert, cert.pem + ".ocsp");
  return cert.pem + ".ocsp";
}

std::string TestPki::write(const std::string& name, const std::string& text) const {
  const std::string path = dir_ + "/" + name;
  write_file(path, text);
  return path;
}

std::string TestPki::mismatched_key(const std::string& name) {
  Cert c = server(name + "-src", {.dns = {name + ".example.com"}});
  std::string other = fresh_key(dir_ + "/" + name + "-other.key.pem", KeyType::ecdsa);
  return write(name + ".pem", read_file(c.cert) + read_file(c.chain) + read_file(other));
}

std::string TestPki::bad_chain(const std::string& name) {
  Cert c = server(name + "-src", {.dns = {name + ".example.com"}});
  return write(name + ".pem", read_file(c.cert) + read_file(other_.cert()) + read_file(c.key));
}

std::string TestPki::missing_key(const std::string& name) {
  Cert c = server(name + "-src", {.dns = {name + ".example.com"}});
  return write(name + ".pem", read_file(c.cert) + read_file(c.chain));
}

std::string TestPki::key_only(const std::string& name) {
  return fresh_key(dir_ + "/" + name + ".pem", KeyType::ecdsa);
}

std::string TestPki::garbage(const std::string& name) {
  return write(name + ".pem", "this is not a certificate\n-----BEGIN NOTHING-----\nxx\n");
}

Cert TestPki::key_apart(const std::string& name, CertSpec spec) {
  Cert c = server(name + "-src", std::move(spec));
  Cert out = c;
  out.name = name;
  out.pem = write(name + ".pem", read_file(c.cert) + read_file(c.chain));
  write(name + ".pem.key", read_file(c.key));
  return out;
}

// ---------------------------------------------------------------------------
// ChildProcess

ChildProcess::ChildProcess(const std::vector<std::string>& argv, const std::string& cwd,
                           const std::string& log_path)
    : log_(log_path) {
  std::vector<char*> cargv;
  for (const auto& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
  cargv.push_back(nullptr);
  int log_fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  int null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (log_fd < 0 || null_fd < 0) throw std::runtime_error("ChildProcess: cannot open " + log_path);
  pid_ = ::fork();
  if (pid_ < 0) throw std::runtime_error("ChildProcess: fork failed");
  if (pid_ == 0) {
    ::setpgid(0, 0);
    if (!cwd.empty() && ::chdir(cwd.c_str()) != 0) ::_exit(126);
    ::dup2(null_fd, 0);
    ::dup2(log_fd, 1);
    ::dup2(log_fd, 2);
    ::signal(SIGPIPE, SIG_DFL);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::execvp(cargv[0], cargv.data());
    ::_exit(127);
  }
  ::setpgid(pid_, pid_);
  ::close(log_fd);
  ::close(null_fd);
}

ChildProcess::~ChildProcess() {
  stop();
}

bool ChildProcess::alive() {
  if (reaped_ || pid_ <= 0) return false;
  int status = 0;
  pid_t r = ::waitpid(pid_, &status, WNOHANG);
  if (r == pid_) {
    reaped_ = true;
    return false;
  }
  return true;
}

void ChildProcess::stop() {
  if (pid_ <= 0 || reaped_) return;
  ::kill(-pid_, SIGKILL);
  ::kill(pid_, SIGKILL);
  int status = 0;
  ::waitpid(pid_, &status, 0);
  reaped_ = true;
}

std::string ChildProcess::output() const {
  try {
    return read_file(log_);
  } catch (const std::exception&) {
    return "";
  }
}

// ---------------------------------------------------------------------------
// TlsServer

TlsServer::TlsServer(std::string name, const Cert& cert, TlsServerOptions options)
    : name_(std::move(name)), dir_(make_temp_dir()), cert_(cert), options_(std::move(options)) {
  const std::string body = name_ + "\n";
  write_file(dir_ + "/id.txt", options_.close_delimited
                                   ? body
                                   : "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                                     "Content-Length: " +
                                         std::to_string(body.size()) +
                                         "\r\nConnection: close\r\n\r\n" + body);
  for (int attempt = 0; attempt < 5; ++attempt) {
    port_ = free_tcp_port();
    if (start()) return;
  }
  ADD_FAILURE() << "openssl s_server " << name_ << " did not start: " << log();
}

TlsServer::~TlsServer() {
  stop();
  if (!::testing::Test::HasFailure()) remove_tree(dir_);
}

std::string TlsServer::log() const {
  return process_ ? process_->output() : "";
}

void TlsServer::stop() {
  process_.reset();
}

int TlsServer::handshakes() const {
  return static_cast<int>(count_matching_lines(log(), R"(^<<< TLS.*, ClientHello$)"));
}

int TlsServer::full_handshakes() const {
  return static_cast<int>(count_matching_lines(log(), R"(^>>> TLS.*, Certificate$)"));
}

bool TlsServer::start() {
  process_.reset();
  std::vector<std::string> argv = {
      "openssl", "s_server", "-accept", "127.0.0.1:" + std::to_string(port_),
      "-cert",   cert_.cert, "-key",    cert_.key};
  if (!read_file(cert_.chain).empty()) argv.insert(argv.end(), {"-cert_chain", cert_.chain});
  if (options_.sni_cert != nullptr) {
    // s_server sends no chain with -cert2: that certificate must come from a root.
    if (!read_file(options_.sni_cert->chain).empty()) {
      ADD_FAILURE() << "TlsServer: sni_cert " << options_.sni_cert->name << " needs a chain";
    }
    argv.insert(argv.end(), {"-servername", options_.sni_name, "-cert2", options_.sni_cert->cert,
                             "-key2", options_.sni_cert->key});
  }
  if (!options_.client_ca.empty()) {
    argv.insert(argv.end(), {"-Verify", "1", "-CAfile", options_.client_ca});
  }
  argv.push_back(options_.close_delimited ? "-WWW" : "-HTTP");
  if (options_.trace) argv.push_back("-msg");
  argv.insert(argv.end(), options_.extra.begin(), options_.extra.end());
  process_.emplace(argv, dir_, dir_ + "/s_server.log");
  const bool ready = wait_until(
      [&] { return !process_->alive() || process_->output().find("ACCEPT") != std::string::npos; },
      15000);
  return ready && process_->alive();
}

// ---------------------------------------------------------------------------
// s_client

bool SClient::handshake() const {
  std::smatch m;
  return std::regex_search(out, m, std::regex(R"((New|Reused), (TLSv[0-9.]+), Cipher is (\S+))")) &&
         m[3] != "(NONE)";
}
bool SClient::reused() const {
  return out.find("\nReused, TLSv") != std::string::npos;
}
std::string SClient::subject() const {
  std::smatch m;
  return std::regex_search(out, m, std::regex(R"((?:^|\n)subject=([^\n]*))")) ? m[1].str() : "";
}
std::string SClient::issuer() const {
  std::smatch m;
  return std::regex_search(out, m, std::regex(R"((?:^|\n)issuer=([^\n]*))")) ? m[1].str() : "";
}
std::string SClient::cn() const {
  std::smatch m;
  std::string s = subject();
  return std::regex_search(s, m, std::regex(R"(CN = ([^,]+))")) ? m[1].str() : "";
}
std::string SClient::protocol() const {
  std::smatch m;
  return std::regex_search(out, m, std::regex(R"((?:New|Reused), (TLSv[0-9.]+), Cipher is)"))
             ? m[1].str()
             : "";
}
std::string SClient::cipher() const {
  std::smatch m;
  return std::regex_search(out, m, std::regex(R"((?:New|Reused), \S+, Cipher is (\S+))"))
             ? m[1].str()
             : "";
}
std::string SClient::alpn() const {
  std::smatch m;
  return std::regex_search(out, m, std::regex(R"(ALPN protocol: (\S+))")) ? m[1].str() : "";
}
int SClient::server_key_bits() const {
  std::smatch m;
  return std::regex_search(out, m, std::regex(R"(Server public key is (\d+) bit)"))
             ? std::stoi(m[1])
             : 0;
}
int SClient::verify_code() const {
  std::smatch m;
  return std::regex_search(out, m, std::regex(R"(Verify return code: (\d+))")) ? std::stoi(m[1])
                                                                               : -1;
}
bool SClient::has(const std::string& text) const {
  return out.find(text) != std::string::npos || err.find(text) != std::string::npos;
}
std::string SClient::http_body() const {
  size_t start = out.find("HTTP/1.");
  if (start == std::string::npos) return "";
  size_t end = out.find("\r\n\r\n", start);
  if (end == std::string::npos) return "";
  std::string body = out.substr(end + 4);
  size_t cut = body.find("\n---\n");
  if (cut != std::string::npos) body = body.substr(0, cut + 1);
  if (body.rfind("---\n", 0) == 0) body.clear();
  return body;
}

std::string default_sclient_input() {
  return "GET /id.txt HTTP/1.1\r\nHost: weir-test\r\nConnection: close\r\n\r\n";
}

SClient s_client(uint16_t port, const std::vector<std::string>& args,
                 std::optional<std::string> input, int timeout_ms) {
  std::vector<std::string> argv = {"openssl", "s_client", "-connect",
                                   "127.0.0.1:" + std::to_string(port)};
  argv.insert(argv.end(), args.begin(), args.end());
  std::string in = input ? *input : default_sclient_input();
  if (!in.empty()) argv.push_back("-ign_eof");
  CommandResult r = run_command(argv, timeout_ms, in);
  return SClient{r.exit_code, r.out, r.err};
}

// ---------------------------------------------------------------------------
// curl

std::string CurlResult::header(const std::string& name) const {
  size_t pos = 0;
  while (pos < head.size()) {
    size_t end = head.find("\r\n", pos);
    if (end == std::string::npos) end = head.size();
    std::string line = head.substr(pos, end - pos);
    size_t colon = line.find(':');
    if (colon != std::string::npos && iequals(line.substr(0, colon), name)) {
      return std::string(trim_ows(line.substr(colon + 1)));
    }
    pos = end + 2;
  }
  return "";
}

CurlResult curl_https(uint16_t port, const std::string& name, const std::string& path,
                      const std::string& cacert, const std::vector<std::string>& extra) {
  const std::string p = std::to_string(port);
  std::vector<std::string> argv = {"curl", "-sS", "-i", "--http1.1", "--max-time", "20"};
  if (name != "127.0.0.1") argv.insert(argv.end(), {"--resolve", name + ":" + p + ":127.0.0.1"});
  if (!cacert.empty()) argv.insert(argv.end(), {"--cacert", cacert});
  argv.insert(argv.end(), extra.begin(), extra.end());
  argv.push_back("https://" + name + ":" + p + path);
  CommandResult r = run_command(argv, 30000);
  CurlResult c;
  c.exit_code = r.exit_code;
  c.err = r.err;
  size_t end = r.out.find("\r\n\r\n");
  if (end != std::string::npos) {
    c.head = r.out.substr(0, end + 2);
    c.body = r.out.substr(end + 4);
    if (c.head.rfind("HTTP/", 0) == 0 && c.head.size() > 12)
      c.status = std::atoi(c.head.c_str() + 9);
  }
  return c;
}

}  // namespace weir::test
