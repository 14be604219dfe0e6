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
  if (!s.local_node.empty()) {
    out += "cluster node: " + s.local_node + "\n";
    out +=
        "# node address out in state_for heartbeat_age in_flight lag_ms resync refused "
        "updates_sent updates_received resyncs_sent resyncs_received\n";
    for (const proto::NodeStats& n : s.nodes) {
      const std::string age =
          n.heartbeat_age_ms() < 0 ? std::string("-") : std::to_string(n.heartbeat_age_ms()) + "ms";
      std::snprintf(line, sizeof line, "%s %s %s %s %s %s %llu %lld %s %llu %llu %llu %llu %llu\n",
                    n.name().c_str(), n.address().c_str(), n.out_linked() ? "up" : "down",
                    n.in_linked() ? "up" : "down", format_uptime_ms(n.since_ms()).c_str(),
                    age.c_str(), static_cast<unsigned long long>(n.in_flight()),
                    static_cast<long long>(n.lag_ms()), n.resync().c_str(),
                    static_cast<unsigned long long>(n.refused()),
                    static_cast<unsigned long long>(n.updates_sent()),
                    static_cast<unsigned long long>(n.updates_received()),
                    static_cast<unsigned long long>(n.resyncs_sent()),
                    static_cast<unsigned long long>(n.resyncs_received()));
      out += line;
    }
  }
  if (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

constexpr ApiCommand kPeersCommands[] = {
    {"show peers", ApiLevel::kUser,
     "show peers   the link to the peers agent, every worker process the agent links, and "
     "the other nodes of the cluster",
     show_peers},
};
const Registrar<ApiCommand> kRegister(kPeersCommands);

}  // namespace
}  // namespace weir
