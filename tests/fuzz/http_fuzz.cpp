// libFuzzer target: the HTTP/1.1 request and response head parsers and the
// chunked-body walker must never crash, read out of bounds or loop, whatever
// bytes they are given, and must agree with themselves when the same bytes
// arrive in two pieces.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "worker/http_codec.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace weir::http;
  const char* p = reinterpret_cast<const char*>(data);
  MessageHead h;
  size_t scan = 0;
  ParseStatus whole = parse_request(p, size, 16384, &scan, &h);
  if (whole == ParseStatus::kComplete && (h.head_len == 0 || h.head_len > size)) std::abort();

  // Incremental arrival: a prefix first, then everything; same verdict at the end.
  MessageHead h2;
  size_t scan2 = 0;
  size_t cut = size / 2;
  ParseStatus first = parse_request(p, cut, 16384, &scan2, &h2);
  if (first == ParseStatus::kIncomplete) {
    ParseStatus again = parse_request(p, size, 16384, &scan2, &h2);
    if (again != whole) std::abort();
    if (again == ParseStatus::kComplete && h2.head_len != h.head_len) std::abort();
  }

  scan = 0;
  parse_response(p, size, 16384, &scan, size % 2 ? "HEAD" : "GET", &h);

  ChunkedWalker w;
  size_t used = w.feed(p, size);
  if (used > size) std::abort();
  ChunkedWalker w2;
  size_t used2 = w2.feed(p, cut);
  if (!w2.done() && !w2.failed()) used2 += w2.feed(p + used2, size - used2);
  if (w.done() != w2.done() || (w.done() && used != used2)) std::abort();
  return 0;
}
