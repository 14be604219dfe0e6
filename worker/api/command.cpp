#include "worker/api/command.h"

#include "common/base/command_line.h"
#include "worker/backend/backend.h"
#include "worker/worker.h"

namespace weir {

const char* api_level_name(ApiLevel level) {
  switch (level) {
    case ApiLevel::kUser:
      return "user";
    case ApiLevel::kOperator:
      return "operator";
    case ApiLevel::kAdmin:
      return "admin";
  }
  return "?";
}

const ApiCommand* find_api_command(const std::vector<std::string_view>& words, size_t* consumed) {
  const ApiCommand* best = nullptr;
  size_t best_len = 0;
  for (const ApiCommand* c : Registry<ApiCommand>::instance().entries()) {
    size_t n = command_line::match_name(c->name, words);
    if (n > best_len) {
      best = c;
      best_len = n;
    }
  }
  *consumed = best_len;
  return best;
}

std::string api_help() {
  std::vector<const ApiCommand*> commands = Registry<ApiCommand>::instance().sorted();
  std::string out = "Commands, with the level each needs (user < operator < admin):\n";
  for (const ApiCommand* c : commands) {
    out += "  ";
    out += c->usage;
    out += "  [";
    out += api_level_name(c->level);
    out += "]\n";
  }
  return out;
}

Backend* find_backend_arg(Worker& w, std::string_view name, std::string* error) {
  for (auto& be : w.backends())
    if (be->name() == name) return be.get();
  *error = "Error: no backend named '" + std::string(name) + "'";
  return nullptr;
}

Server* find_server_arg(Worker& w, std::string_view arg, std::string* error) {
  size_t slash = arg.find('/');
  if (slash == std::string_view::npos) {
    *error = "Error: expected <backend>/<server>, got '" + std::string(arg) + "'";
    return nullptr;
  }
  std::string_view sname = arg.substr(slash + 1);
  Backend* be = find_backend_arg(w, arg.substr(0, slash), error);
  if (!be) return nullptr;
  if (Server* s = be->find_server(sname)) return s;
  *error = "Error: backend '" + be->name() + "' has no server '" + std::string(sname) + "'";
  return nullptr;
}

}  // namespace weir
