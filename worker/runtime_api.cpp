#include "worker/runtime_api.h"

#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <mutex>

#include "common/log.h"
#include "common/units.h"
#include "common/version.h"
#include "worker/backend.h"
#include "worker/session.h"
#include "worker/stats.h"
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

std::string cmd_show_info(Worker& w, const Args&) {
  uint64_t requests = 0, connections = 0, req_rate = 0, conn_rate = 0;
  const int64_t now = EventLoop::monotonic_ms();
  for (auto& fe : w.frontends()) {
    CounterTotals c = fe->counters().read(now);
    requests += c.sessions_total;
    connections += c.connections_total;
    req_rate += c.rate;
    conn_rate += c.conn_rate;
  }
  std::string out;
  auto line = [&out](const char* k, const std::string& v) {
    out += k;
    out += ": ";
    out += v;
    out += '\n';
  };
  int64_t up = now - w.start_ms();
  line("Name", "weir");
  line("Version", version());
  line("Pid", std::to_string(getpid()));
  line("Generation", std::to_string(w.generation()));
  line("Uptime", format_uptime_ms(up));
  line("Uptime_sec", std::to_string(up / 1000));
  line("Threads", std::to_string(w.config().global.threads));
  line("Maxconn", std::to_string(w.config().global.maxconn));
  line("CurrConns", std::to_string(w.current_connections()));
  line("CumConns", std::to_string(connections));
  line("CumReq", std::to_string(requests));
  line("ConnRate", std::to_string(conn_rate));
  line("SessRate", std::to_string(req_rate));
  line("DroppedLogs", std::to_string(w.dropped_log_lines()));
  line("Frontends", std::to_string(w.frontends().size()));
  line("Backends", std::to_string(w.backends().size()));
  line("State", w.draining() ? "draining" : "current");
  return out;
}

std::string cmd_help(Worker&, const Args&);

// --- statistics ---------------------------------------------------------------

std::string cmd_show_stat(Worker& w, const Args& args) {
  bool json = false;
  std::string_view only;
  for (std::string_view a : args) {
    if (a == "json") {
      json = true;
    } else if (a == "csv") {
      json = false;
    } else {
      only = a;
    }
  }
  std::vector<StatRow> rows = collect_stats(w, only);
  if (!only.empty() && rows.empty()) {
    return "Error: no frontend or backend named '" + std::string(only) + "'";
  }
  return json ? render_stat_json(rows) : render_stat_csv(rows);
}

std::string cmd_show_servers_state(Worker& w, const Args& args) {
  std::string_view only = args.empty() ? std::string_view() : args[0];
  const int64_t now = EventLoop::monotonic_ms();
  std::string out =
      "# backend server address admin_state weight configured_weight maxconn scur stot\n";
  bool found = only.empty();
  for (auto& be : w.backends()) {
    if (!only.empty() && be->name() != only) continue;
    found = true;
    for (Server* s : be->servers()) {
      CounterTotals c = s->counters().read(now);
      out += be->name() + " " + s->name() + " " + s->addr_text() + " " +
             admin_state_name(s->admin_state()) + " " + std::to_string(s->weight()) + " " +
             std::to_string(s->configured_weight()) + " " + std::to_string(s->maxconn()) + " " +
             std::to_string(s->counters().current()) + " " + std::to_string(c.sessions_total) +
             "\n";
    }
  }
  if (!found) return "Error: no backend named '" + std::string(only) + "'";
  return out;
}

// "backend/server" -> the server, or an error message in *error.
Server* find_server_arg(Worker& w, std::string_view arg, std::string* error) {
  size_t slash = arg.find('/');
  if (slash == std::string_view::npos) {
    *error = "Error: expected <backend>/<server>, got '" + std::string(arg) + "'";
    return nullptr;
  }
  std::string_view bname = arg.substr(0, slash);
  std::string_view sname = arg.substr(slash + 1);
  for (auto& be : w.backends()) {
    if (be->name() != bname) continue;
    if (Server* s = be->find_server(sname)) return s;
    *error =
        "Error: backend '" + std::string(bname) + "' has no server '" + std::string(sname) + "'";
    return nullptr;
  }
  *error = "Error: no backend named '" + std::string(bname) + "'";
  return nullptr;
}

std::string set_state(Worker& w, std::string_view target, AdminState st) {
  std::string error;
  Server* s = find_server_arg(w, target, &error);
  if (!s) return error;
  AdminState before = s->admin_state();
  s->set_admin_state(st, EventLoop::monotonic_ms());
  if (before != st) {
    log::notice("server %.*s: state %s -> %s (runtime API)", static_cast<int>(target.size()),
                target.data(), admin_state_name(before), admin_state_name(st));
  }
  return "";
}

std::string cmd_set_server(Worker& w, const Args& args) {
  if (args.size() != 3) {
    return "Error: usage: set server <backend>/<server> state ready|drain|maint, or "
           "set server <backend>/<server> weight <n>|<n>%";
  }
  if (args[1] == "state") {
    if (args[2] == "ready") return set_state(w, args[0], AdminState::kReady);
    if (args[2] == "drain") return set_state(w, args[0], AdminState::kDrain);
    if (args[2] == "maint") return set_state(w, args[0], AdminState::kMaint);
    return "Error: unknown state '" + std::string(args[2]) + "' (ready, drain or maint)";
  }
  if (args[1] == "weight") {
    std::string error;
    Server* s = find_server_arg(w, args[0], &error);
    if (!s) return error;
    std::string v(args[2]);
    bool percent = !v.empty() && v.back() == '%';
    if (percent) v.pop_back();
    char* end = nullptr;
    unsigned long n = std::strtoul(v.c_str(), &end, 10);
    if (v.empty() || *end != '\0' || (percent ? n > 100 : n > 256)) {
      return "Error: weight must be 0..256, or 0%..100% of the configured weight";
    }
    uint32_t weight = percent ? static_cast<uint32_t>(s->configured_weight() * n / 100)
                              : static_cast<uint32_t>(n);
    s->set_weight(weight);
    return "";
  }
  return "Error: set server: unknown setting '" + std::string(args[1]) + "' (state or weight)";
}

std::string cmd_show_errors(Worker& w, const Args&) {
  std::string out;
  auto one = [&out](const char* kind, const std::string& name, const char* side,
                    ErrorCapture& cap) {
    CapturedError e;
    uint64_t n = cap.count(&e);
    if (n == 0) return;
    out += "[" + log::iso8601_ms(e.when_ms) + "] " + kind + " " + name + ": invalid " + side +
           " (" + std::to_string(n) + " so far)\n";
    out += "  from " + e.peer + ": " + e.what + " at byte " + std::to_string(e.offset) + " of " +
           std::to_string(e.total) + "\n";
    out += dump_capture(e);
    out += "\n";
  };
  for (auto& fe : w.frontends()) one("frontend", fe->name(), "request", fe->errors());
  for (auto& be : w.backends()) one("backend", be->name(), "response", be->errors());
  if (out.empty()) return "No errors captured.";
  return out;
}

std::string cmd_show_sess(Worker& w, const Args&) {
  std::mutex mu;
  std::vector<std::string> lines;
  int64_t now = EventLoop::monotonic_ms();
  w.on_every_thread([&](ThreadContext& ctx) {
    std::vector<std::string> mine;
    ctx.for_each_session([&](Session& s) {
      mine.push_back(s.describe(now) + " thread=" + std::to_string(ctx.id()));
    });
    std::lock_guard lock(mu);
    lines.insert(lines.end(), mine.begin(), mine.end());
  });
  std::string out;
  for (const std::string& l : lines) out += l + "\n";
  if (out.empty()) out = "No sessions.\n";
  return out;
}

// Kills the sessions for which `match` is true, on their own threads; returns how many.
size_t kill_sessions(Worker& w, const std::function<bool(const Session&)>& match) {
  std::atomic<size_t> killed{0};
  w.on_every_thread([&](ThreadContext& ctx) {
    ctx.for_each_session([&](Session& s) {
      if (match(s)) {
        s.kill();
        ++killed;
      }
    });
  });
  return killed.load();
}

std::string cmd_shutdown_session(Worker& w, const Args& args) {
  if (args.size() != 1) return "Error: usage: shutdown session <id>";
  std::string id(args[0]);
  char* end = nullptr;
  unsigned long long n = std::strtoull(id.c_str(), &end, 10);
  if (id.empty() || *end != '\0') return "Error: '" + id + "' is not a session id";
  size_t killed = kill_sessions(w, [n](const Session& s) { return s.id() == n; });
  if (killed == 0) return "Error: no session with id " + id;
  return "";
}

std::string cmd_shutdown_sessions_server(Worker& w, const Args& args) {
  if (args.size() != 1) return "Error: usage: shutdown sessions server <backend>/<server>";
  std::string error;
  Server* target = find_server_arg(w, args[0], &error);
  if (!target) return error;
  size_t killed = kill_sessions(w, [target](const Session& s) { return s.server() == target; });
  return std::to_string(killed) + " session(s) closed";
}

std::string cmd_enable_server(Worker& w, const Args& args) {
  if (args.size() != 1) return "Error: usage: enable server <backend>/<server>";
  return set_state(w, args[0], AdminState::kReady);
}

std::string cmd_disable_server(Worker& w, const Args& args) {
  if (args.size() != 1) return "Error: usage: disable server <backend>/<server>";
  return set_state(w, args[0], AdminState::kMaint);
}

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
    {"help", ApiLevel::kUser,
     "help                this list (also: 'prompt' toggles an interactive '> ' prompt, "
     "'quit' closes the connection)",
     cmd_help},
    {"show info", ApiLevel::kUser,
     "show info           version, pid, generation, uptime, threads, connections", cmd_show_info},
    {"show stat", ApiLevel::kUser,
     "show stat [csv|json] [name]   counters per frontend, backend and server", cmd_show_stat},
    {"show servers state", ApiLevel::kUser,
     "show servers state [backend]  address, state and weight of every server",
     cmd_show_servers_state},
    {"set server", ApiLevel::kOperator,
     "set server <b>/<s> state ready|drain|maint | weight <n>|<n>%", cmd_set_server},
    {"enable server", ApiLevel::kOperator, "enable server <b>/<s>   same as state ready",
     cmd_enable_server},
    {"disable server", ApiLevel::kOperator, "disable server <b>/<s>  same as state maint",
     cmd_disable_server},
    {"show sess", ApiLevel::kUser,
     "show sess          every client connection: id, frontend, client, server, state, age",
     cmd_show_sess},
    {"shutdown session", ApiLevel::kOperator, "shutdown session <id>   close one connection now",
     cmd_shutdown_session},
    {"shutdown sessions server", ApiLevel::kOperator,
     "shutdown sessions server <b>/<s>   close every connection using that server",
     cmd_shutdown_sessions_server},
    {"show errors", ApiLevel::kOperator,
     "show errors        the last malformed request and response, with their bytes",
     cmd_show_errors},
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
}  // namespace

class ApiConnection final : public IoHandler, public Retired {
 public:
  ApiConnection(ApiListener& owner, ThreadContext& ctx, Worker& worker, UniqueFd fd, ApiLevel level)
      : owner_(owner), ctx_(ctx), worker_(worker), fd_(std::move(fd)), level_(level) {}
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
        Args words = split_words(cmd);
        if (words.size() == 1 && words[0] == "prompt") {
          prompt_ = !prompt_;  // interactive mode: a "> " after every answer
        } else if (words.size() == 1 && words[0] == "quit") {
          eof_ = true;
          in_.clear();
          return;
        } else if (!words.empty()) {
          out_ += run_api_command(worker_, level_, cmd);
          if (!out_.empty() && out_.back() != '\n') out_ += '\n';
          out_ += '\n';
        }
        if (semi == std::string::npos) break;
        start = semi + 1;
      }
      if (prompt_) out_ += "> ";
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
    owner_.release(this);
  }

  ApiListener& owner_;
  ThreadContext& ctx_;
  Worker& worker_;
  UniqueFd fd_;
  ApiLevel level_;
  std::string in_;
  std::string out_;
  bool eof_ = false;
  bool closed_ = false;
  bool prompt_ = false;
};

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

ApiListener::ApiListener(ThreadContext& ctx, Worker& worker, int fd, ApiLevel level)
    : ctx_(ctx), worker_(worker), fd_(fd), level_(level) {}

ApiListener::~ApiListener() {
  stop();
}

void ApiListener::release(ApiConnection* conn) {
  for (auto it = conns_.begin(); it != conns_.end(); ++it) {
    if (it->get() == conn) {
      ctx_.loop().retire(std::move(*it));  // destroyed after the current batch of events
      conns_.erase(it);
      return;
    }
  }
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
    conns_.push_back(std::make_unique<ApiConnection>(*this, ctx_, worker_, UniqueFd(fd), level_));
    conns_.back()->start();
  }
}

}  // namespace weir
