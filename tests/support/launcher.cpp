#include "tests/support/launcher.h"
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <regex>
#include <sstream>
#include <thread>

extern char** environ;

#ifndef WEIR_BINARY
#define WEIR_BINARY "weir"
#endif
#ifndef WEIR_ORIGIN_BINARY
#define WEIR_ORIGIN_BINARY "weir-origin"
#endif

namespace weir::test {

namespace {

using Clock = std::chrono::steady_clock;

const char* const kReadyRegex = R"(worker pid=([0-9]+) generation=([0-9]+) ready)";

std::string read_file_or_empty(const std::string& path) {
  try {
    return read_file(path);
  } catch (const std::exception&) {
    return {};
  }
}

// Every (pid, generation) from the ready lines of text, in order.
std::vector<std::pair<pid_t, int>> ready_lines(const std::string& text) {
  static const std::regex re(kReadyRegex);
  std::vector<std::pair<pid_t, int>> out;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t eol = text.find('\n', pos);
    if (eol == std::string::npos) eol = text.size();
    std::string_view line(text.data() + pos, eol - pos);
    pos = eol + 1;
    if (line.find(" ready") == std::string_view::npos) continue;
    std::match_results<std::string_view::const_iterator> m;
    if (std::regex_search(line.begin(), line.end(), m, re))
      out.emplace_back(static_cast<pid_t>(std::stol(m[1].str())), std::stoi(m[2].str()));
  }
  return out;
}

bool line_matches(std::string_view text, const std::regex& re, size_t from, size_t* complete) {
  size_t pos = from;
  while (pos < text.size()) {
    size_t eol = text.find('\n', pos);
    bool full = eol != std::string_view::npos;
    if (!full) eol = text.size();
    if (std::regex_search(text.begin() + static_cast<std::ptrdiff_t>(pos),
                          text.begin() + static_cast<std::ptrdiff_t>(eol), re))
      return true;
    if (full) *complete = eol + 1;
    pos = eol + 1;
  }
  return false;
}

std::string describe_logs(const std::string& dir) {
  return "--- " + dir + "/stdout.log (last 40 lines) ---\n" +
         tail_lines(read_file_or_empty(dir + "/stdout.log"), 40) + "\n--- " + dir +
         "/stderr.log (last 40 lines) ---\n" +
         tail_lines(read_file_or_empty(dir + "/stderr.log"), 40);
}

}  // namespace

std::string weir_binary() {
  const char* env = std::getenv("WEIR_BINARY");
  return env != nullptr && *env != '\0' ? env : WEIR_BINARY;
}

std::string weir_origin_binary() {
  const char* env = std::getenv("WEIR_ORIGIN_BINARY");
  return env != nullptr && *env != '\0' ? env : WEIR_ORIGIN_BINARY;
}

std::unique_ptr<WeirProcess> WeirProcess::start(const std::string& yaml, WeirOptions opts) {
  ignore_sigpipe();
  auto proc = std::make_unique<WeirProcess>(Private{});
  proc->dir_ = make_temp_dir();
  const std::string config = proc->config_path();
  write_file(config, yaml);

  UniqueFd null_in(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  UniqueFd out(::open((proc->dir_ + "/stdout.log").c_str(),
                      O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644));
  UniqueFd err(::open((proc->dir_ + "/stderr.log").c_str(),
                      O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644));
  if (!null_in || !out || !err) {
    ADD_FAILURE() << "WeirProcess: cannot open log files in " << proc->dir_ << ": "
                  << strerror(errno);
    return nullptr;
  }

  // Everything the child needs is built before fork.
  const std::string binary = weir_binary();
  std::vector<std::string> args = {binary, "-f", config};
  args.insert(args.end(), opts.extra_args.begin(), opts.extra_args.end());
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);

  std::vector<std::string> env_strings;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    std::string_view entry(*e);
    std::string_view key = entry.substr(0, entry.find('='));
    bool overridden = false;
    for (const auto& [k, v] : opts.env) overridden = overridden || k == key;
    if (!overridden) env_strings.emplace_back(entry);
  }
  for (const auto& [k, v] : opts.env) env_strings.push_back(k + "=" + v);
  std::vector<char*> envp;
  for (auto& e : env_strings) envp.push_back(e.data());
  envp.push_back(nullptr);

  pid_t pid = ::fork();
  if (pid < 0) {
    ADD_FAILURE() << "WeirProcess: fork: " << strerror(errno);
    return nullptr;
  }
  if (pid == 0) {
    ::setsid();
    ::dup2(null_in.get(), 0);
    ::dup2(out.get(), 1);
    ::dup2(err.get(), 2);
    ::signal(SIGPIPE, SIG_DFL);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    if (opts.nofile > 0) {
      rlimit rl{static_cast<rlim_t>(opts.nofile), static_cast<rlim_t>(opts.nofile)};
      if (::setrlimit(RLIMIT_NOFILE, &rl) != 0) ::_exit(126);
    }
    ::execve(argv[0], argv.data(), envp.data());
    const char msg[] = "WeirProcess: exec failed\n";
    [[maybe_unused]] ssize_t w = ::write(2, msg, sizeof msg - 1);
    ::_exit(127);
  }
  proc->pid_ = pid;
  if (!opts.wait_ready) return proc;

  const auto deadline = Clock::now() + std::chrono::milliseconds(opts.ready_timeout_ms);
  for (;;) {
    if (!proc->ready_workers().empty()) return proc;
    if (!proc->alive()) {
      ADD_FAILURE() << "weir exited before becoming ready (status " << proc->exit_status_ << ")\n"
                    << describe_logs(proc->dir_);
      return nullptr;
    }
    if (Clock::now() >= deadline) {
      ADD_FAILURE() << "weir did not log a ready worker within " << opts.ready_timeout_ms << " ms\n"
                    << describe_logs(proc->dir_);
      return nullptr;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

namespace {

// A process of group `pgid` that is not a zombie (a zombie has closed its
// descriptors already; init may take a while to reap it).
bool group_has_live_process(pid_t pgid) {
  DIR* proc = ::opendir("/proc");
  if (!proc) return false;
  bool live = false;
  while (dirent* d = ::readdir(proc)) {
    if (d->d_name[0] < '0' || d->d_name[0] > '9') continue;
    std::ifstream in(std::string("/proc/") + d->d_name + "/stat");
    std::string stat;
    if (!std::getline(in, stat)) continue;
    // pid (comm) state ppid pgrp ...: comm may hold spaces and parentheses.
    const size_t close = stat.rfind(')');
    if (close == std::string::npos) continue;
    std::istringstream rest(stat.substr(close + 1));
    char state = 0;
    long ppid = 0, pgrp = 0;
    rest >> state >> ppid >> pgrp;
    if (pgrp == pgid && state != 'Z' && state != 'X') {
      live = true;
      break;
    }
  }
  ::closedir(proc);
  return live;
}

}  // namespace

WeirProcess::~WeirProcess() {
  if (pid_ > 0) {
    ::kill(-pid_, SIGKILL);
    if (!reaped_) {
      ::kill(pid_, SIGKILL);
      int status = 0;
      while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
      }
      reaped_ = true;
    }
    // The workers and the agent (the master's children, in its process group)
    // die on their own time: wait until they are gone, so that their
    // listening sockets are closed before a test binds the same addresses.
    for (int i = 0; i < 400 && group_has_live_process(pid_); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }
  if (dir_.empty()) return;
  // A sanitizer report from the master or any worker (they share this log)
  // fails the test, whatever else it checked: a worker that aborts on an error
  // would otherwise show only when a test happened to depend on it.
  const std::string log = read_file_or_empty(dir_ + "/stderr.log");
  for (const char* report : {"ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
                             "WARNING: ThreadSanitizer", ": runtime error: "}) {
    size_t at = log.find(report);
    if (at != std::string::npos) {
      size_t from = log.rfind('\n', at);
      from = from == std::string::npos ? 0 : from + 1;
      ADD_FAILURE() << "a sanitizer report in weir's stderr:\n" << log.substr(from, 2000);
    }
  }
  const char* keep = std::getenv("WEIR_TEST_KEEP");
  if (::testing::Test::HasFailure() || (keep != nullptr && *keep != '\0')) {
    std::fprintf(stderr, "[weir-test] kept %s\n--- stderr.log (last 40 lines) ---\n%s\n",
                 dir_.c_str(), tail_lines(read_file_or_empty(dir_ + "/stderr.log"), 40).c_str());
  } else {
    remove_tree(dir_);
  }
}

std::vector<pid_t> WeirProcess::ready_workers() const {
  std::vector<pid_t> out;
  for (const auto& [pid, gen] : ready_lines(stderr_text())) out.push_back(pid);
  return out;
}

pid_t WeirProcess::current_worker() const {
  auto lines = ready_lines(stderr_text());
  return lines.empty() ? 0 : lines.back().first;
}

int WeirProcess::current_generation() const {
  auto lines = ready_lines(stderr_text());
  return lines.empty() ? 0 : lines.back().second;
}

bool WeirProcess::wait_ready_count(size_t n, int timeout_ms) {
  return wait_until([&] { return ready_workers().size() >= n; }, timeout_ms);
}

bool WeirProcess::wait_for_log(const std::string& file, const std::string& regex, int timeout_ms) {
  const std::regex re(regex, std::regex::ECMAScript);
  size_t complete = 0;  // lines before this offset have been searched already
  return wait_until(
      [&] {
        std::string text = read_file_or_empty(file);
        if (complete > text.size()) complete = 0;  // truncated
        if (line_matches(text, re, complete, &complete)) return true;
        return text.size() < (1u << 20) && std::regex_search(text, re);
      },
      timeout_ms);
}

bool WeirProcess::wait_for_stderr(const std::string& regex, int timeout_ms) {
  return wait_for_log(dir_ + "/stderr.log", regex, timeout_ms);
}

bool WeirProcess::wait_for_stdout(const std::string& regex, int timeout_ms) {
  return wait_for_log(dir_ + "/stdout.log", regex, timeout_ms);
}

std::string WeirProcess::stdout_text() const {
  return read_file_or_empty(dir_ + "/stdout.log");
}
std::string WeirProcess::stderr_text() const {
  return read_file_or_empty(dir_ + "/stderr.log");
}

void WeirProcess::write_config(const std::string& yaml) const {
  // Write-then-rename so that weir never reads a half-written file.
  const std::string tmp = config_path() + ".tmp";
  write_file(tmp, yaml);
  if (std::rename(tmp.c_str(), config_path().c_str()) != 0)
    throw std::runtime_error("write_config: rename: " + std::string(strerror(errno)));
}

void WeirProcess::signal(int sig) {
  if (pid_ > 0 && !try_reap()) ::kill(pid_, sig);
}

bool WeirProcess::try_reap() const {
  if (reaped_) return true;
  if (pid_ <= 0) return false;
  int status = 0;
  pid_t r = ::waitpid(pid_, &status, WNOHANG);
  if (r != pid_) return false;
  reaped_ = true;
  if (WIFEXITED(status)) {
    exit_status_ = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    exit_status_ = 128 + WTERMSIG(status);
  }
  return true;
}

std::optional<int> WeirProcess::wait_exit(int timeout_ms) {
  if (wait_until([&] { return try_reap(); }, timeout_ms, 10)) return exit_status_;
  return std::nullopt;
}

bool WeirProcess::alive() const {
  return pid_ > 0 && !try_reap();
}

CommandResult run_weir(const std::vector<std::string>& args, int timeout_ms) {
  std::vector<std::string> argv = {weir_binary()};
  argv.insert(argv.end(), args.begin(), args.end());
  return run_command(argv, timeout_ms);
}

std::string yaml_quote(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\x%02x", static_cast<unsigned char>(c));
          out += buf;
        } else {
          out += c;
        }
    }
  }
  out += "\"";
  return out;
}

size_t count_matching_lines(std::string_view text, const std::string& regex) {
  const std::regex re(regex, std::regex::ECMAScript);
  size_t n = 0;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t eol = text.find('\n', pos);
    if (eol == std::string_view::npos) eol = text.size();
    if (std::regex_search(text.begin() + static_cast<std::ptrdiff_t>(pos),
                          text.begin() + static_cast<std::ptrdiff_t>(eol), re))
      ++n;
    pos = eol + 1;
  }
  return n;
}

std::string unix_command(const std::string& path, const std::string& command, int timeout_ms) {
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path) return "";
  std::memcpy(addr.sun_path, path.c_str(), path.size());
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) return "";
  std::string line = command + "\n";
  if (::write(fd.get(), line.data(), line.size()) != static_cast<ssize_t>(line.size())) return "";
  ::shutdown(fd.get(), SHUT_WR);
  std::string out;
  char buf[4096];
  for (;;) {
    pollfd p{fd.get(), POLLIN, 0};
    if (::poll(&p, 1, timeout_ms) <= 0) break;
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

CommandResult weirctl(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {WEIRCTL_BINARY};
  argv.insert(argv.end(), args.begin(), args.end());
  return run_command(argv, 30000);
}

}  // namespace weir::test
