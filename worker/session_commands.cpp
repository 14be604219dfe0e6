// The runtime-API commands on client connections: list them, close them
// (doc/management.md, "Runtime API").

#include <atomic>
#include <cstdlib>
#include <functional>
#include <mutex>

#include "common/event/event_loop.h"
#include "worker/api/command.h"
#include "worker/session.h"
#include "worker/thread_context.h"
#include "worker/worker.h"

namespace weir {
namespace {

std::string show_sess(Worker& w, const ApiArgs&) {
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

std::string shutdown_session(Worker& w, const ApiArgs& args) {
  if (args.size() != 1) return "Error: usage: shutdown session <id>";
  std::string id(args[0]);
  char* end = nullptr;
  unsigned long long n = std::strtoull(id.c_str(), &end, 10);
  if (id.empty() || *end != '\0') return "Error: '" + id + "' is not a session id";
  size_t killed = kill_sessions(w, [n](const Session& s) { return s.id() == n; });
  if (killed == 0) return "Error: no session with id " + id;
  return "";
}

std::string shutdown_sessions_server(Worker& w, const ApiArgs& args) {
  if (args.size() != 1) return "Error: usage: shutdown sessions server <backend>/<server>";
  std::string error;
  Server* target = find_server_arg(w, args[0], &error);
  if (!target) return error;
  size_t killed = kill_sessions(w, [target](const Session& s) { return s.server() == target; });
  return std::to_string(killed) + " session(s) closed";
}

constexpr ApiCommand kSessionCommands[] = {
    {"show sess", ApiLevel::kUser,
     "show sess          every client connection: id, frontend, client, server, state, age",
     show_sess},
    {"shutdown session", ApiLevel::kOperator, "shutdown session <id>   close one connection now",
     shutdown_session},
    {"shutdown sessions server", ApiLevel::kOperator,
     "shutdown sessions server <b>/<s>   close every connection using that server",
     shutdown_sessions_server},
};
const Registrar<ApiCommand> kRegisterSessionCommands(kSessionCommands);

}  // namespace
}  // namespace weir
