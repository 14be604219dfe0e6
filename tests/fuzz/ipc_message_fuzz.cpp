// libFuzzer target: the master <-> worker channel's decoder (common/ipc/ipc.h),
// both frame formats: Protobuf envelopes and the text messages of weir before
// Protobuf (legacy_text.h). Whatever the bytes, it must not crash, loop or
// leak the descriptors that came with them; it must read the same messages
// (and fail the same way) however the bytes are cut into pieces; and what it
// read must survive being written again: an envelope re-encoded decodes to
// the same envelope, and every text message it read has a text form that
// reads back the same.
//
// Input: byte 0 = how many descriptors arrive with the bytes (0-3), byte 1 =
// where the bytes are cut in two, the rest = what the peer wrote.

#include <fcntl.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/ipc/ipc.h"
#include "common/ipc/legacy_text.h"
#include "tests/fuzz/fuzz_common.h"

namespace {

using weir::UniqueFd;
using weir::fuzz::check;
namespace ipc = weir::ipc;

int dev_null() {
  static int fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  return fd;
}

struct Outcome {
  std::vector<std::string> messages;  // each envelope serialised, with its fd count and format
  bool failed = false;
};

Outcome run(std::string_view bytes, size_t fds, size_t cut) {
  ipc::Decoder d;
  for (size_t i = 0; i < fds; ++i) d.add_fd(UniqueFd(::dup(dev_null())));
  Outcome out;
  auto drain = [&] {
    for (;;) {
      ipc::Message m;
      ipc::Decoder::Status st = d.next(&m);
      if (st == ipc::Decoder::Status::kNeedMore) return;
      if (st == ipc::Decoder::Status::kError) {
        check(!d.error().empty(), "an error says why");
        out.failed = true;
        return;
      }
      std::string enc = m.env.SerializeAsString();
      // Written again and read back: the same envelope.
      std::string frame, error;
      check(ipc::encode_frame(m.env, ipc::kFrameProtobuf, m.fds.size(), &frame, &error),
            "a decoded envelope encodes");
      ipc::Decoder again;
      for (size_t i = 0; i < m.fds.size(); ++i) again.add_fd(UniqueFd(::dup(dev_null())));
      again.append(frame);
      ipc::Message m2;
      check(again.next(&m2) == ipc::Decoder::Status::kMessage, "a re-encoded envelope decodes");
      check(m2.env.SerializeAsString() == enc, "a re-encoded envelope reads the same");
      if (m.frame == ipc::kFrameText) {
        uint16_t type = 0;
        std::string payload;
        check(ipc::legacy_text::encode(m.env, &type, &payload), "a text message has a text form");
        weir::proto::Envelope back;
        check(ipc::legacy_text::decode(type, payload, &back, &error), "its text form decodes");
        check(back.SerializeAsString() == enc, "its text form reads the same");
      }
      out.messages.push_back(std::to_string(m.frame) + "/" + std::to_string(m.fds.size()) + "/" +
                             enc);
    }
  };
  cut = std::min(cut, bytes.size());
  d.append(bytes.substr(0, cut));
  drain();
  if (!out.failed) {
    d.append(bytes.substr(cut));
    drain();
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  size_t fds = data[0] % 4;
  size_t cut = data[1];
  std::string_view bytes(reinterpret_cast<const char*>(data) + 2, size - 2);
  Outcome whole = run(bytes, fds, bytes.size());
  Outcome pieces = run(bytes, fds, cut);
  check(whole.failed == pieces.failed, "the same verdict however the bytes are cut");
  check(whole.messages == pieces.messages, "the same messages however the bytes are cut");
  return 0;
}
