#include "tests/support/util.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <poll.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace weir::test {

namespace {

using Clock = std::chrono::steady_clock;

int remaining_ms(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  return left.count() < 0 ? 0 : static_cast<int>(left.count());
}

sockaddr_in loopback(uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return a;
}

void set_nonblocking(int fd) {
  int flags = ::fcntl(fd, F_GETFL);
  if (flags >= 0) ::fcntl(fd, F_SETFL, flags | O_NONBLOCK);
}

}  // namespace

void ignore_sigpipe() {
  static std::once_flag once;
  std::call_once(once, [] { ::signal(SIGPIPE, SIG_IGN); });
}

namespace {

// The kernel's ephemeral range: outgoing connections (of the tests, of weir, of the
// origins) take their local ports from it, so a port picked there may be taken by a
// connect() between the moment it is picked and the moment weir binds it.
std::pair<int, int> ephemeral_range() {
  int lo = 32768, hi = 60999;
  std::ifstream f("/proc/sys/net/ipv4/ip_local_port_range");
  if (f) f >> lo >> hi;
  return {lo, hi};
}

bool bindable(uint16_t port) {
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) return false;
  int one = 1;
  ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in a = loopback(port);
  return ::bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
}

// Ports handed out to this process stay reserved against the other test processes
// (ctest runs two at once) by a lock held on a file named after the port until the
// process exits.
bool reserve(uint16_t port) {
  static const std::string dir = [] {
    std::string d = std::filesystem::temp_directory_path() / "weir-test-ports";
    std::error_code ec;
    std::filesystem::create_directories(d, ec);
    std::filesystem::permissions(d, std::filesystem::perms::all, ec);
    return d;
  }();
  int fd = ::open((dir + "/" + std::to_string(port)).c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0666);
  if (fd < 0) return true;  // no lock directory: the bind check alone
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    ::close(fd);
    return false;
  }
  return true;  // fd kept open on purpose: the lock lasts as long as the process
}

}  // namespace

uint16_t free_tcp_port() {
  static std::mutex m;
  std::lock_guard<std::mutex> lock(m);
  // Below the ephemeral range, from 10000 up to it (or the 10000 ports above it when
  // the range starts too low to leave room).
  auto [lo, hi] = ephemeral_range();
  int first = 10000, last = lo - 1;
  if (last - first < 1000) first = hi + 1, last = std::min(65535, hi + 10000);
  static uint64_t state = static_cast<uint64_t>(::getpid()) * 0x9E3779B97F4A7C15ull ^
                          static_cast<uint64_t>(Clock::now().time_since_epoch().count());
  const int span = last - first + 1;
  for (int attempt = 0; attempt < 4 * span; ++attempt) {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    uint16_t port = static_cast<uint16_t>(first + static_cast<int>((state >> 33) % span));
    if (bindable(port) && reserve(port)) return port;
  }
  throw std::runtime_error("free_tcp_port: no free port in " + std::to_string(first) + "-" +
                           std::to_string(last));
}

bool can_connect(uint16_t port, const std::string& host, int timeout_ms) {
  sockaddr_in a = loopback(port);
  if (::inet_pton(AF_INET, host.c_str(), &a.sin_addr) != 1) return false;
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd) return false;
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) return true;
  if (errno != EINPROGRESS) return false;
  pollfd p{fd.get(), POLLOUT, 0};
  if (::poll(&p, 1, timeout_ms) <= 0) return false;
  int err = 0;
  socklen_t len = sizeof err;
  if (::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &len) != 0) return false;
  return err == 0;
}

// ---- SHA-256 -------------------------------------------------------------------------------

void Sha256::Deleter::operator()(evp_md_ctx_st* ctx) const {
  EVP_MD_CTX_free(ctx);
}

Sha256::Sha256() : ctx_(EVP_MD_CTX_new()) {
  if (!ctx_ || EVP_DigestInit_ex(ctx_.get(), EVP_sha256(), nullptr) != 1)
    throw std::runtime_error("Sha256: EVP init failed");
}
Sha256::~Sha256() = default;
Sha256::Sha256(Sha256&&) noexcept = default;
Sha256& Sha256::operator=(Sha256&&) noexcept = default;

void Sha256::update(std::string_view data) {
  update(data.data(), data.size());
}

void Sha256::update(const void* data, size_t n) {
  if (n > 0) EVP_DigestUpdate(ctx_.get(), data, n);
}

std::string Sha256::hex_final() {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(ctx_.get(), md, &len);
  EVP_DigestInit_ex(ctx_.get(), EVP_sha256(), nullptr);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(len * 2);
  for (unsigned int i = 0; i < len; ++i) {
    out.push_back(kHex[md[i] >> 4]);
    out.push_back(kHex[md[i] & 0xf]);
  }
  return out;
}

std::string sha256_hex(std::string_view data) {
  Sha256 h;
  h.update(data);
  return h.hex_final();
}

// ---- pattern -------------------------------------------------------------------------------

void fill_pattern(char* dst, size_t offset, size_t n) {
  constexpr size_t kPeriod = 4093;
  size_t i = offset;
  unsigned v = static_cast<unsigned>((i * 7 + i / kPeriod) % 26);
  size_t next_bump = (i / kPeriod + 1) * kPeriod;
  for (size_t k = 0; k < n; ++k) {
    dst[k] = static_cast<char>('a' + v);
    ++i;
    v += 7;
    if (i == next_bump) {
      v += 1;
      next_bump += kPeriod;
    }
    if (v >= 26) v -= 26;
  }
}

std::string pattern_bytes(size_t offset, size_t n) {
  std::string s(n, '\0');
  fill_pattern(s.data(), offset, n);
  return s;
}

std::string pattern_sha256(size_t n) {
  static std::mutex mu;
  static std::map<size_t, std::string> cache;
  {
    std::lock_guard<std::mutex> lock(mu);
    auto it = cache.find(n);
    if (it != cache.end()) return it->second;
  }
  Sha256 h;
  std::string slice(64 * 1024, '\0');
  for (size_t off = 0; off < n; off += slice.size()) {
    size_t len = std::min(slice.size(), n - off);
    fill_pattern(slice.data(), off, len);
    h.update(slice.data(), len);
  }
  std::string hex = h.hex_final();
  std::lock_guard<std::mutex> lock(mu);
  if (cache.size() > 256) cache.clear();
  cache.emplace(n, hex);
  return hex;
}

// ---- commands ------------------------------------------------------------------------------

CommandResult run_command(const std::vector<std::string>& argv, int timeout_ms,
                          const std::string& stdin_data) {
  ignore_sigpipe();
  CommandResult result;
  if (argv.empty()) return result;

  int in_pipe[2], out_pipe[2], err_pipe[2];
  if (::pipe2(in_pipe, O_CLOEXEC) != 0) return result;
  UniqueFd in_r(in_pipe[0]), in_w(in_pipe[1]);
  if (::pipe2(out_pipe, O_CLOEXEC) != 0) return result;
  UniqueFd out_r(out_pipe[0]), out_w(out_pipe[1]);
  if (::pipe2(err_pipe, O_CLOEXEC) != 0) return result;
  UniqueFd err_r(err_pipe[0]), err_w(err_pipe[1]);

  // Everything the child needs is prepared before fork (only async-signal-safe calls after).
  std::vector<char*> cargv;
  cargv.reserve(argv.size() + 1);
  for (const auto& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
  cargv.push_back(nullptr);

  pid_t pid = ::fork();
  if (pid < 0) {
    result.err = "fork: " + std::string(strerror(errno));
    return result;
  }
  if (pid == 0) {
    ::setpgid(0, 0);
    ::dup2(in_r.get(), 0);
    ::dup2(out_w.get(), 1);
    ::dup2(err_w.get(), 2);
    ::signal(SIGPIPE, SIG_DFL);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::execvp(cargv[0], cargv.data());
    const char msg[] = "run_command: exec failed\n";
    [[maybe_unused]] ssize_t w = ::write(2, msg, sizeof msg - 1);
    ::_exit(127);
  }
  ::setpgid(pid, pid);  // also done by the child; whichever runs first wins the race
  in_r.reset();
  out_w.reset();
  err_w.reset();
  set_nonblocking(in_w.get());
  set_nonblocking(out_r.get());
  set_nonblocking(err_r.get());
  if (stdin_data.empty()) in_w.reset();

  const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  size_t in_off = 0;
  bool reaped = false;
  int status = 0;
  Clock::time_point reaped_at{};
  char buf[65536];

  for (;;) {
    pollfd fds[3];
    nfds_t n = 0;
    int idx_in = -1, idx_out = -1, idx_err = -1;
    if (in_w) {
      idx_in = static_cast<int>(n);
      fds[n++] = {in_w.get(), POLLOUT, 0};
    }
    if (out_r) {
      idx_out = static_cast<int>(n);
      fds[n++] = {out_r.get(), POLLIN, 0};
    }
    if (err_r) {
      idx_err = static_cast<int>(n);
      fds[n++] = {err_r.get(), POLLIN, 0};
    }
    if (n > 0) {
      ::poll(fds, n, std::max(1, std::min(20, remaining_ms(deadline))));
    } else {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    if (idx_in >= 0 && fds[idx_in].revents != 0) {
      ssize_t w = ::write(in_w.get(), stdin_data.data() + in_off, stdin_data.size() - in_off);
      if (w > 0) in_off += static_cast<size_t>(w);
      if ((w < 0 && errno != EAGAIN && errno != EINTR) || in_off >= stdin_data.size()) in_w.reset();
    }
    auto drain = [&](int idx, UniqueFd& fd, std::string& sink) {
      if (idx < 0 || fds[idx].revents == 0) return;
      for (;;) {
        ssize_t r = ::read(fd.get(), buf, sizeof buf);
        if (r > 0) {
          sink.append(buf, static_cast<size_t>(r));
          continue;
        }
        if (r < 0 && (errno == EAGAIN || errno == EINTR)) return;
        fd.reset();  // EOF or error
        return;
      }
    };
    drain(idx_out, out_r, result.out);
    drain(idx_err, err_r, result.err);

    if (!reaped) {
      pid_t w = ::waitpid(pid, &status, WNOHANG);
      if (w == pid) {
        reaped = true;
        reaped_at = Clock::now();
      }
    }
    if (reaped) {
      // Grandchildren may keep the pipes open: give them a short grace, then stop reading.
      if ((!out_r && !err_r) || Clock::now() - reaped_at > std::chrono::milliseconds(300)) break;
      continue;
    }
    if (Clock::now() >= deadline) {
      ::kill(-pid, SIGKILL);
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      result.exit_code = -1;
      return result;
    }
  }
  if (WIFEXITED(status)) {
    result.exit_code = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    result.exit_code = 128 + WTERMSIG(status);
  }
  return result;
}

bool wait_until(std::function<bool()> pred, int timeout_ms, int poll_ms) {
  const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  for (;;) {
    if (pred()) return true;
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(
        std::chrono::milliseconds(std::max(1, std::min(poll_ms, remaining_ms(deadline)))));
  }
}

// ---- files ---------------------------------------------------------------------------------

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("read_file: cannot open " + path);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void write_file(const std::string& path, std::string_view data) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) throw std::runtime_error("write_file: cannot open " + path);
  out.write(data.data(), static_cast<std::streamsize>(data.size()));
  out.flush();
  if (!out) throw std::runtime_error("write_file: write failed: " + path);
}

std::string make_temp_dir() {
  std::string tmpl = "/tmp/weir-test-XXXXXX";
  if (::mkdtemp(tmpl.data()) == nullptr)
    throw std::runtime_error("make_temp_dir: mkdtemp: " + std::string(strerror(errno)));
  return tmpl;
}

void remove_tree(const std::string& path) {
  std::error_code ec;
  std::filesystem::remove_all(path, ec);
}

std::string tail_lines(std::string_view text, size_t n) {
  if (n == 0) return {};
  size_t end = text.size();
  if (end > 0 && text[end - 1] == '\n') --end;
  size_t pos = end;
  size_t lines = 0;
  while (pos > 0) {
    if (text[pos - 1] == '\n' && ++lines == n) break;
    --pos;
  }
  return std::string(text.substr(pos));
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

std::string_view trim_ows(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

std::string ascii_lower(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

std::vector<std::map<std::string, std::string>> parse_stat_csv(const std::string& text) {
  std::vector<std::map<std::string, std::string>> rows;
  std::vector<std::string> header;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    std::string line = text.substr(pos, nl == std::string::npos ? std::string::npos : nl - pos);
    pos = nl == std::string::npos ? text.size() : nl + 1;
    if (line.empty()) continue;
    std::vector<std::string> cells;
    size_t start = line.rfind("# ", 0) == 0 ? 2 : 0;
    // Cells end with a comma; a quoted cell may hold commas and doubled quotes.
    std::string cell;
    bool quoted = false;
    for (size_t i = start; i < line.size(); ++i) {
      char c = line[i];
      if (quoted) {
        if (c == '"' && i + 1 < line.size() && line[i + 1] == '"') {
          cell += '"';
          ++i;
        } else if (c == '"') {
          quoted = false;
        } else {
          cell += c;
        }
      } else if (c == '"') {
        quoted = true;
      } else if (c == ',') {
        cells.push_back(cell);
        cell.clear();
      } else {
        cell += c;
      }
    }
    if (header.empty()) {
      header = cells;
      continue;
    }
    std::map<std::string, std::string> row;
    for (size_t i = 0; i < header.size() && i < cells.size(); ++i) row[header[i]] = cells[i];
    rows.push_back(row);
  }
  return rows;
}

int64_t info_number(const std::string& text, const std::string& name) {
  const std::string key = name + ": ";
  size_t at = text.rfind('\n' + key) != std::string::npos ? text.rfind('\n' + key) + 1 : 0;
  if (text.compare(at, key.size(), key) != 0) return -1;
  const char* digits = text.c_str() + at + key.size();
  if (*digits < '0' || *digits > '9') return -1;
  return std::strtoll(digits, nullptr, 10);
}

}  // namespace weir::test
