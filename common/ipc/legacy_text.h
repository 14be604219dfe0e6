#pragma once
// The text messages weir spoke between its processes before Protobuf (frame
// format ipc::kFrameText, protocol 1), read and written only to work with a
// process from before that change during an upgrade:
// - a master re-executed into this binary keeps the workers of the old one
//   (it drains them, forwards @<gen> commands to them and reads their answers),
//   and reads the old master's state (decode_upgrade_state);
// - an old master that respawns a crashed worker after a package upgrade has
//   replaced the binary starts this one, which answers it in text.
// It goes away once upgrades from before Protobuf are no longer supported
// (doc/architecture.md, "Messages between processes").

#include <cstdint>
#include <string>
#include <string_view>

#include "common/proto/ipc.pb.h"

namespace weir::ipc::legacy_text {

// The message types of format 1.
enum Type : uint16_t {
  kHello = 1,    // "generation=N\n" ["ticket_secret=HEX\n"]
  kConfig = 2,   // source name, '\0', the validated bytes
  kFdMap = 3,    // one listener key per line
  kReady = 4,    // "pid=P threads=T version=V"
  kDrain = 5,    // empty
  kStop = 6,     // empty
  kFailed = 7,   // the reason
  kCommand = 8,  // the command line
  kReply = 9,    // the answer
  kState = 10,   // server states (state_text.h)
};

// One text frame's payload into an envelope (protocol 1); false with *error when
// it is not a message of format 1 or does not say what it must.
bool decode(uint16_t type, std::string_view payload, proto::Envelope* out, std::string* error);
// An envelope into a text frame's type and payload; false for a message format 1
// has no form of (the upgrade state).
bool encode(const proto::Envelope& env, uint16_t* type, std::string* payload);

// Whether `bytes` is the text state of a master from before Protobuf (it starts
// with "generation ").
bool is_upgrade_state(std::string_view bytes);
// That text into an UpgradeState (its workers speak protocol 1); false with
// *error when it names no generation.
bool decode_upgrade_state(std::string_view text, proto::UpgradeState* out, std::string* error);

}  // namespace weir::ipc::legacy_text
