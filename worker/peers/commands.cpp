// `show peers` (runtime API): this worker process's link to the peers agent,
// and the agent's view of every worker process it links (doc/management.md).

#include <unistd.h>

#include <cstdio>
#include <string>

#include "common/base/registry.h"
#include "common/base/units.h"
#include "worker/api/command.h"
#include "worker/peers/link.h"
#include "worker/worker.h"

namespace weir {
namespace {

std::string show_peers(Worker& w, const ApiArgs&) {
  PeersLink* link = PeersLink::current();
  if (!link) {
    return w.config().stick_tables.empty()
               ? "No peers agent: no stick table is configured"
               : "No link to the peers agent (see the worker's start-up log)";
  }
  const PeersLink::Stats s = link->stats();
  char line[512];
  std::string out;
  std::snprintf(line, sizeof line, "agent: pid=%d %s snapshot=%s\n", s.agent_pid,
                s.linked ? "linked" : "away", s.snapshot ? "loaded" : "waiting");
  out += line;
  std::snprintf(
      line, sizeof line,
      "this process: pid=%d generation=%d sent=%llu received=%llu pending=%llu "
      "coalesced=%llu refills=%llu\n",
      getpid(), w.generation(), static_cast<unsigned long long>(s.sent),
      static_cast<unsigned long long>(s.received), static_cast<unsigned long long>(s.pending),
      static_cast<unsigned long long>(s.coalesced), static_cast<unsigned long long>(s.refills));
  out += line;
  out +=
      "# pid generation connected updates_received updates_sent queue coalesced dropped "
      "linked_for\n";
  for (const proto::LinkStats& l : s.links) {
    std::snprintf(
        line, sizeof line, "%d %d %s %llu %llu %llu %llu %llu %s\n", l.pid(), l.generation(),
        l.connected() ? "yes" : "no", static_cast<unsigned long long>(l.updates_received()),
        static_cast<unsigned long long>(l.updates_sent()),
        static_cast<unsigned long long>(l.pending()),
        static_cast<unsigned long long>(l.coalesced()),
        static_cast<unsigned long long>(l.dropped()), format_uptime_ms(l.age_ms()).c_str());
    out += line;
  }
  if (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

constexpr ApiCommand kPeersCommands[] = {
    {"show peers", ApiLevel::kUser,
     "show peers   the link to the peers agent, and every worker process the agent links",
     show_peers},
};
const Registrar<ApiCommand> kRegister(kPeersCommands);

}  // namespace
}  // namespace weir
