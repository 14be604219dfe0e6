// libFuzzer target: what a master reads from outside its own memory besides
// its workers' messages: the state that a binary upgrade hands over
// (ipc::decode_upgrade_state: a Protobuf frame, or the text of a master from
// before Protobuf) and global.state_file (ipc::server_states_from_text, a
// file an operator may edit). Whatever the bytes: no crash, and what was read
// survives being written again (the upgrade state as a frame, the server
// states as text) and read back.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/ipc/ipc.h"
#include "common/ipc/state_text.h"
#include "tests/fuzz/fuzz_common.h"

using weir::fuzz::check;
namespace ipc = weir::ipc;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view bytes(reinterpret_cast<const char*>(data), size);

  weir::proto::UpgradeState st;
  std::string error;
  if (ipc::decode_upgrade_state(bytes, &st, &error)) {
    check(st.counts().newest() > 0, "a state that was read names a generation");
    weir::proto::Envelope env;
    *env.mutable_upgrade_state() = st;
    std::string frame;
    check(ipc::encode_frame(env, ipc::kFrameProtobuf, 0, &frame, &error), "the state encodes");
    weir::proto::UpgradeState back;
    check(ipc::decode_upgrade_state(frame, &back, &error), "the encoded state decodes");
    check(back.SerializeAsString() == st.SerializeAsString(), "the encoded state reads the same");
  } else {
    check(!error.empty(), "a refused state says why");
  }

  weir::proto::StateHandover servers = ipc::server_states_from_text(bytes);
  weir::proto::StateHandover again =
      ipc::server_states_from_text(ipc::server_states_to_text(servers));
  check(again.SerializeAsString() == servers.SerializeAsString(),
        "the server states written as text read the same");
  return 0;
}
