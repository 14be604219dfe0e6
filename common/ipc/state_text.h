#pragma once
// The server states as text, one server per line:
//   backend server admin_state weight configured_weight address configured_address up|down
//   [agent-down]
// global.state_file holds this text (an operator can read and edit it, as
// HAProxy's server-state file), and weir before Protobuf sent it between
// processes (legacy_text.h).

#include <string>
#include <string_view>

#include "common/proto/ipc.pb.h"

namespace weir::ipc {

std::string server_states_to_text(const proto::StateHandover& states);
// Lines that do not have the 8 or 9 fields above are skipped.
proto::StateHandover server_states_from_text(std::string_view text);

}  // namespace weir::ipc
