// The runtime-API command on frontends: `set maxconn frontend`
// (doc/management.md, "Runtime API").

#include <cstdlib>

#include "worker/api/command.h"
#include "worker/worker.h"

namespace weir {
namespace {

std::string set_maxconn_frontend(Worker& w, const ApiArgs& args) {
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

constexpr ApiCommand kFrontendCommands[] = {
    {"set maxconn frontend", ApiLevel::kAdmin,
     "set maxconn frontend <name> <n>   change a frontend's connection limit (0: none)",
     set_maxconn_frontend},
};
const Registrar<ApiCommand> kRegisterFrontendCommands(kFrontendCommands);

}  // namespace
}  // namespace weir
