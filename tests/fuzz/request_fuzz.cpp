// libFuzzer target: the HTTP/1.1 request head parser. Whatever the bytes, it
// must not crash, read out of bounds or loop; it must give the same verdict when
// the bytes arrive in two pieces; a smaller header limit may only turn a
// success into "too many headers"; and a head it accepts, written back the way
// weir forwards it, must parse again with the same meaning (so that nothing
// weir sends on can be read differently by a weir behind it).

#include <cstddef>
#include <cstdint>
#include <string>

#include "tests/fuzz/fuzz_common.h"
#include "worker/http/h1/http_codec.h"

namespace {

using namespace weir::http;
using weir::fuzz::check;

constexpr size_t kMaxHead = 16384;

ParseStatus parse(const char* p, size_t n, MessageHead* h,
                  size_t max_headers = kDefaultMaxHeaders) {
  size_t scan = 0;
  return parse_request(p, n, kMaxHead, &scan, h, max_headers);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const char* p = reinterpret_cast<const char*>(data);
  static MessageHead h, h2, h3;  // large: keep them off the stack
  ParseStatus whole = parse(p, size, &h);
  if (whole == ParseStatus::kComplete) weir::fuzz::check_head(h, size);
  if (whole == ParseStatus::kError) check(h.error != nullptr, "an error says why");

  // Incremental arrival at two cut points: the same verdict at the end.
  for (size_t cut : {size / 2, size / 3 + 1}) {
    if (cut > size) continue;
    size_t scan = 0;
    ParseStatus first = parse_request(p, cut, kMaxHead, &scan, &h2);
    if (first == ParseStatus::kIncomplete) {
      first = parse_request(p, size, kMaxHead, &scan, &h2);
      check(first == whole, "same verdict after a split");
    } else {
      // A verdict on a prefix is final: the head ended (or overflowed) there.
      check(first == whole, "a prefix's verdict stands");
    }
    if (first == ParseStatus::kComplete) check(h2.head_len == h.head_len, "same head length");
  }

  // A lower header limit: success only when the head has few enough fields.
  ParseStatus small = parse(p, size, &h3, 4);
  if (small == ParseStatus::kComplete) {
    check(whole == ParseStatus::kComplete && h3.head_len == h.head_len, "limit only refuses");
  } else if (whole == ParseStatus::kComplete) {
    check(small == ParseStatus::kError && h.header_count > 4, "refused for the count only");
  }

  if (whole == ParseStatus::kComplete) {
    std::string start(h.method);
    start.append(" ").append(h.target).append(h.version_minor ? " HTTP/1.1" : " HTTP/1.0");
    std::string again = weir::fuzz::serialize(h, start);
    ParseStatus st = parse(again.data(), again.size(), &h2);
    check(st == ParseStatus::kComplete, "weir's own output parses");
    check(h2.head_len == again.size(), "the whole output is the head");
    weir::fuzz::check_same_meaning(h, h2);
  }
  return 0;
}
