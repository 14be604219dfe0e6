#include "worker/runtime_api.h"

#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>

#include "common/log.h"
#include "common/units.h"
#include "common/version.h"
#include "worker/backend.h"
#include "worker/thread_context.h"
#include "worker/worker.h"

namespace weir {
namespace {

constexpr size_t kMaxPending = 64 * 1024;

using Args = std::vector<std::string_view>;

struct ApiCommand {
  std::string_view name;   // one or more words
  ApiLevel level;          // minimum endpoint level
  std::string_view usage;  // for help
  std::string (*run)(Worker& w, const Args& args);
};

const char* level_name(ApiLevel l) {
  switch (l) {
    case ApiLevel::kUser:
      return "user";
    case ApiLevel::kOperator:
      return "operator";
    case ApiLevel::kAdmin:
      return "admin";
  }
  return "?";
}

uint64_t load(const std::atomic<uint64_t>& a) {
  return a.load(std::memory_order_relaxed);
}
int64_t load(const std::atomic<int64_t>& a) {
  return a.load(std::memory_order_relaxed);
}

std::string cmd_show_info(Worker& w, const Args&) {
  uint64_t total = 0;
  int64_t current = 0;
  for (auto& fe : w.frontends()) {
    total += load(fe->counters().sessions_total);
    current += load(fe->counters().sessions_current);
  }
  std::string out;
  auto line = [&out](const char* k, const std::string& v) {
    out += k;
    out += ": ";
    out += v;
    out += '\n';
  };
  int64_t up = EventLoop::monotonic_ms() - w.start_ms();
  line("Name", "weir");
  line("Version", version());
  line("Pid", std::to_string(getpid()));
  line("Generation", std::to_string(w.generation()));
  line("Uptime", format_uptime_ms(up));
  line("Uptime_sec", std::to_string(up / 1000));
  line("Threads", std::to_string(w.config().global.threads));
  line("Maxconn", std::to_string(w.config().global.maxconn));
  line("CurrConns", std::to_string(w.current_connections()));
  line("CurrSessions", std::to_string(current));
  line("CumSessions", std::to_string(total));
  line("Frontends", std::to_string(w.frontends().size()));
  line("Backends", std::to_string(w.backends().size()));
  line("State", w.draining() ? "draining" : "current");
  return out;
}

std::string cmd_help(Worker&, const Args&);

std::string cmd_set_maxconn_frontend(Worker& w, const Args& args) {
  if (args.size() != 2) return "Error: usage: set maxconn frontend <name> <n>";
  Frontend* fe = nullptr;
  for (auto& f : w.frontends())
    if (f->name() == args[0]) fe = f.get();
  if (!fe) return "Error: no frontend named '" + std::string(args[0]) + "'";
  std::string n(args[1]);
  char* end = nullptr;
  unsigned long v = std::strtoul(n.c_str(), &end, 10);
  if (n.empty() || *end != '\0' || v > 10000000) {
    return "Error: '" + n + "' is not a connection count (0..10000000, 0: no frontend limit)";
  }
  fe->set_maxconn(static_cast<uint32_t>(v));
  w.resume_listeners_if_paused();
  return "";
}

constexpr ApiCommand kCommands[] = {
    {"help", ApiLevel::kUser, "help                this list", cmd_help},
    {"show info", ApiLevel::kUser,
     "show info           version, pid, generation, uptime, threads, connections", cmd_show_info},
    {"set maxconn frontend", ApiLevel::kAdmin,
     "set maxconn frontend <name> <n>   change a frontend's connection limit (0: none)",
     cmd_set_maxconn_frontend},
};

std::string cmd_help(Worker&, const Args&) {
  std::string out = "Commands, with the level each needs (user < operator < admin):\n";
  for (const ApiCommand& c : kCommands) {
    out += "  ";
    out += c.usage;
    out += "  [";
    out += level_name(c.level);
    out += "]\n";
  }
  return out;
}

Args split_words(std::string_view line) {
  Args words;
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
    size_t start = i;
    while (i < line.size() && line[i] != ' ' && line[i] != '\t') ++i;
    if (i > start) words.push_back(line.substr(start, i - start));
  }
  return words;
}

// Matches the longest command name that the words start with.
const ApiCommand* find_command(const Args& words, size_t* consumed) {
  const ApiCommand* best = nullptr;
  size_t best_len = 0;
  for (const ApiCommand& c : kCommands) {
    Args name = split_words(c.name);
    if (name.size() > words.size() || name.size() <= best_len) continue;
    bool match = true;
    for (size_t i = 0; i < name.size(); ++i) match = match && name[i] == words[i];
    if (match) {
      best = &c;
      best_len = name.size();
    }
  }
  *consumed = best_len;
  return best;
}

// One client connection to the runtime API.
class ApiConnection final : public IoHandler, public Retired {
 public:
  ApiConnection(ThreadContext& ctx, Worker& worker, UniqueFd fd, ApiLevel level)
      : ctx_(ctx), worker_(worker), fd_(std::move(fd)), level_(level) {}
  void start() {
    if (!ctx_.loop().add(fd_.get(), EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, this)) close();
  }
  void on_io(uint32_t) override {
    if (closed_) return;
    char buf[4096];
    for (;;) {
      ssize_t n = ::read(fd_.get(), buf, sizeof buf);
      if (n > 0) {
        in_.append(buf, static_cast<size_t>(n));
        if (in_.size() > kMaxPending) eof_ = true;
        continue;
      }
      if (n == 0 || (errno != EAGAIN && errno != EINTR)) eof_ = true;
      break;
    }
    process();
    flush();
    if (eof_ && out_.empty()) close();
  }

 private:
  void process() {
    for (;;) {
      size_t nl = in_.find('\n');
      std::string line;
      if (nl == std::string::npos) {
        if (!eof_ || in_.empty()) return;
        line.swap(in_);
      } else {
        line = in_.substr(0, nl);
        in_.erase(0, nl + 1);
      }
      if (!line.empty() && line.back() == '\r') line.pop_back();
      size_t start = 0;
      while (start <= line.size()) {
        size_t semi = line.find(';', start);
        std::string_view cmd(line);
        cmd = cmd.substr(start, semi == std::string::npos ? std::string_view::npos : semi - start);
        if (!split_words(cmd).empty()) {
          out_ += run_api_command(worker_, level_, cmd);
          if (!out_.empty() && out_.back() != '\n') out_ += '\n';
          out_ += '\n';
        }
        if (semi == std::string::npos) break;
        start = semi + 1;
      }
    }
  }
  void flush() {
    while (!out_.empty()) {
      ssize_t n = ::send(fd_.get(), out_.data(), out_.size(), MSG_NOSIGNAL);
      if (n > 0) {
        out_.erase(0, static_cast<size_t>(n));
        continue;
      }
      if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
      out_.clear();
      eof_ = true;
      return;
    }
  }
  void close() {
    if (closed_) return;
    closed_ = true;
    fd_.reset();
    ctx_.loop().retire(std::unique_ptr<Retired>(this));
  }

  ThreadContext& ctx_;
  Worker& worker_;
  UniqueFd fd_;
  ApiLevel level_;
  std::string in_;
  std::string out_;
  bool eof_ = false;
  bool closed_ = false;
};

}  // namespace

std::string run_api_command(Worker& worker, ApiLevel level, std::string_view line) {
  Args words = split_words(line);
  if (words.empty()) return "";
  size_t consumed = 0;
  const ApiCommand* cmd = find_command(words, &consumed);
  if (!cmd) {
    return "Error: unknown command '" + std::string(line) + "'; type 'help' for the list";
  }
  if (level < cmd->level) {
    return "Error: '" + std::string(cmd->name) + "' needs the " + level_name(cmd->level) +
           " level; this endpoint is " + level_name(level);
  }
  Args args(words.begin() + static_cast<std::ptrdiff_t>(consumed), words.end());
  return cmd->run(worker, args);
}

ApiListener::~ApiListener() {
  stop();
}

void ApiListener::start() {
  if (!polling_) polling_ = ctx_.loop().add(fd_, EPOLLIN, this);
}

void ApiListener::stop() {
  if (polling_) ctx_.loop().remove(fd_);
  polling_ = false;
}

void ApiListener::on_io(uint32_t) {
  for (int i = 0; i < 16; ++i) {
    int fd = ::accept4(fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) return;
    // Owned by the event loop from here: it retires itself when closed.
    auto* conn = new ApiConnection(ctx_, worker_, UniqueFd(fd), level_);
    conn->start();
  }
}

}  // namespace weir
