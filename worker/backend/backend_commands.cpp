// The runtime-API commands on backends: `show backend` (doc/management.md,
// "Runtime API").

#include "worker/api/command.h"
#include "worker/backend/backend.h"
#include "worker/worker.h"

namespace weir {
namespace {

// One line per backend: its mode, its algorithm, its servers and how many of
// them are up (their checks and agent say so, whatever their admin state).
std::string show_backend(Worker& w, const ApiArgs& args) {
  if (args.size() > 1) return "Error: usage: show backend [<backend>]";
  std::string error;
  if (!args.empty() && !find_backend_arg(w, args[0], &error)) return error;
  std::string out = "# backend mode algorithm servers up\n";
  for (auto& be : w.backends()) {
    if (!args.empty() && be->name() != args[0]) continue;
    std::vector<Server*> servers = be->servers();
    size_t up = 0;
    for (Server* s : servers) up += s->up() ? 1 : 0;
    out += be->name() + " " + mode_name(be->mode()) + " " + be->config().balance.algorithm + " " +
           std::to_string(servers.size()) + " " + std::to_string(up) + "\n";
  }
  return out;
}

constexpr ApiCommand kBackendCommands[] = {
    {"show backend", ApiLevel::kUser,
     "show backend [backend]   mode, algorithm, servers and servers up of every backend",
     show_backend},
};
const Registrar<ApiCommand> kRegisterBackendCommands(kBackendCommands);

}  // namespace
}  // namespace weir
