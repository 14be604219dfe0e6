#pragma once
// Server states set at runtime (the runtime API's set/add/del server), as
// the peers agent keeps them in state_dir and the nodes of a cluster share
// them: one ServerRecord per backend/server, each part (admin state, weight,
// address, added, deleted) last-writer-wins on its own stamp. Health is not
// here: each node checks its servers for itself.

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "common/proto/peers.pb.h"

namespace weir::servers {

// a is newer than b: the later hybrid clock, then the higher node number.
bool newer(const proto::ServerStamp& a, const proto::ServerStamp& b);

// Takes into `into` (the same backend and server) each part of `from` that
// is newer. True when anything changed.
bool merge(proto::ServerRecord& into, const proto::ServerRecord& from);

// Whether the record wants the server to exist: added after its last delete,
// or, for a server the configuration has (`configured`), never deleted at
// runtime or added again since.
bool present(const proto::ServerRecord& r, bool configured);

// Every record of a node (the agent's store, and a worker's copy of it).
class Store {
 public:
  // Merges r into the store; true when it changed what the store holds.
  bool merge(const proto::ServerRecord& r);
  const proto::ServerRecord* find(std::string_view backend, std::string_view server) const;
  void all(proto::ServerRecords* out) const;
  size_t size() const { return records_.size(); }

 private:
  std::map<std::string, proto::ServerRecord, std::less<>> records_;  // "backend/server"
};

// Whether r can become command lines: its backend and server names are words
// (no space, slash or control character) and what it would put on a line
// (state, address, `add server` arguments) holds no line break. A record
// that is not (another node's mistake, or damage) is not applied.
bool well_formed(const proto::ServerRecord& r);

// The runtime-API command lines that bring a worker's server to what r says,
// given whether it exists there now and whether its configuration has it
// (with its configured weight and address). Empty when nothing is to do.
struct ServerNow {
  bool exists = false;
  bool configured = false;
  std::string admin_state;  // ready, drain, maint
  uint32_t weight = 0;
  uint32_t configured_weight = 0;
  std::string address;
  std::string configured_address;
};
std::vector<std::string> commands_for(const proto::ServerRecord& r, const ServerNow& now);

}  // namespace weir::servers
