#include "common/ipc/state_text.h"

#include <cstdlib>
#include <vector>

namespace weir::ipc {

std::string server_states_to_text(const proto::StateHandover& states) {
  std::string out;
  for (const proto::ServerState& s : states.servers()) {
    out += s.backend() + " " + s.server() + " " + s.admin_state() + " " +
           std::to_string(s.weight()) + " " + std::to_string(s.configured_weight()) + " " +
           s.address() + " " + s.configured_address() + " " + (s.down() ? "down" : "up") +
           (s.agent_down() ? " agent-down" : "") + "\n";
  }
  return out;
}

proto::StateHandover server_states_from_text(std::string_view text) {
  proto::StateHandover out;
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
    std::vector<std::string> f;
    while (true) {
      size_t sp = line.find(' ');
      f.emplace_back(line.substr(0, sp));
      if (sp == std::string_view::npos) break;
      line.remove_prefix(sp + 1);
    }
    if (f.size() != 8 && f.size() != 9) continue;
    proto::ServerState* s = out.add_servers();
    s->set_backend(f[0]);
    s->set_server(f[1]);
    s->set_admin_state(f[2]);
    s->set_weight(static_cast<uint32_t>(std::strtoul(f[3].c_str(), nullptr, 10)));
    s->set_configured_weight(static_cast<uint32_t>(std::strtoul(f[4].c_str(), nullptr, 10)));
    s->set_address(f[5]);
    s->set_configured_address(f[6]);
    s->set_down(f[7] == "down");
    s->set_agent_down(f.size() == 9 && f[8] == "agent-down");
  }
  return out;
}

}  // namespace weir::ipc
