// libFuzzer target: the PROXY protocol header parser (v1 and v2,
// worker/proxy_protocol/header.h). Whatever the bytes, no crash; a header it
// reads is also read from the same bytes followed by anything, and every
// shorter prefix of it asks for more (so a header split across reads is read
// the same); a refusal says why; and what weir would write for a header it
// read (same version, same addresses and TLVs) reads back the same.

#include <sys/socket.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "tests/fuzz/fuzz_common.h"
#include "worker/proxy_protocol/header.h"

namespace pp = weir::proxy_protocol;
using weir::fuzz::check;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  pp::Header h;
  size_t consumed = 0;
  std::string error;
  pp::Status st = pp::parse(in, &h, &consumed, &error);
  if (st == pp::Status::kError) {
    check(!error.empty(), "a refusal says why");
    return 0;
  }
  if (st == pp::Status::kNeedMore) return 0;
  check(consumed > 0 && consumed <= in.size(), "a header lies within the input");
  check(consumed <= (h.version == 1 ? pp::kMaxV1 : pp::kMaxV2), "a header within its limit");
  std::string_view header = in.substr(0, consumed);
  // A cut chosen by the input's last byte: a shorter prefix waits.
  size_t cut = size ? data[size - 1] % consumed : 0;
  pp::Header part;
  size_t part_len = 0;
  check(pp::parse(header.substr(0, cut), &part, &part_len, &error) == pp::Status::kNeedMore,
        "a prefix of a header asks for more");
  pp::Header again;
  size_t again_len = 0;
  check(pp::parse(header, &again, &again_len, &error) == pp::Status::kDone && again == h &&
            again_len == consumed,
        "the header alone reads the same");
  // Written again by weir: the same header (UNIX addresses are not written).
  if (h.src.family() != AF_UNIX) {
    std::string bytes = pp::encode(h);
    pp::Header back;
    size_t back_len = 0;
    check(pp::parse(bytes, &back, &back_len, &error) == pp::Status::kDone,
          "what weir writes reads");
    check(back_len == bytes.size(), "what weir writes reads whole");
    check(back == h, "what weir writes reads back the same");
  }
  return 0;
}
