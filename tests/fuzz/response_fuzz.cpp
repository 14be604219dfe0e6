// libFuzzer target: the HTTP/1.1 response head parser. The first byte chooses
// the request method the response answers (GET, HEAD or CONNECT: they decide
// whether a body follows); the rest is the response. The same properties as the
// request target: no crash, same verdict when split, a lower header limit only
// refuses, and a response written back as weir relays it parses again with the
// same meaning.

#include <cstddef>
#include <cstdint>
#include <string>

#include "tests/fuzz/fuzz_common.h"
#include "worker/http/h1/http_codec.h"

namespace {

using namespace weir::http;
using weir::fuzz::check;

constexpr size_t kMaxHead = 16384;
constexpr std::string_view kMethods[] = {"GET", "HEAD", "CONNECT"};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  std::string_view method = kMethods[data[0] % 3];
  const char* p = reinterpret_cast<const char*>(data) + 1;
  size_t n = size - 1;
  static MessageHead h, h2, h3;
  size_t scan = 0;
  ParseStatus whole = parse_response(p, n, kMaxHead, &scan, method, &h);
  if (whole == ParseStatus::kComplete) {
    weir::fuzz::check_head(h, n);
    check(h.status >= 100 && h.status <= 999, "status in range");
    if (method == "HEAD" || h.status / 100 == 1 || h.status == 204 || h.status == 304) {
      check(h.body == BodyKind::kNone, "no body where none belongs");
    }
  }
  if (whole == ParseStatus::kError) check(h.error != nullptr, "an error says why");

  for (size_t cut : {n / 2, n / 3 + 1}) {
    if (cut > n) continue;
    size_t s2 = 0;
    ParseStatus first = parse_response(p, cut, kMaxHead, &s2, method, &h2);
    if (first == ParseStatus::kIncomplete) first = parse_response(p, n, kMaxHead, &s2, method, &h2);
    check(first == whole, "same verdict after a split");
    if (first == ParseStatus::kComplete) check(h2.head_len == h.head_len, "same head length");
  }

  size_t s3 = 0;
  ParseStatus small = parse_response(p, n, kMaxHead, &s3, method, &h3, 4);
  if (small == ParseStatus::kComplete) {
    check(whole == ParseStatus::kComplete && h3.head_len == h.head_len, "limit only refuses");
  } else if (whole == ParseStatus::kComplete) {
    check(small == ParseStatus::kError && h.header_count > 4, "refused for the count only");
  }

  if (whole == ParseStatus::kComplete) {
    // The status line as relayed: version, code, reason (what the server wrote).
    std::string start(h.version_minor ? "HTTP/1.1 " : "HTTP/1.0 ");
    start += std::to_string(h.status);
    if (!h.reason.empty()) start.append(" ").append(h.reason);
    std::string again = weir::fuzz::serialize(h, start);
    size_t s4 = 0;
    ParseStatus st = parse_response(again.data(), again.size(), kMaxHead, &s4, method, &h2);
    check(st == ParseStatus::kComplete, "weir's own output parses");
    check(h2.head_len == again.size(), "the whole output is the head");
    weir::fuzz::check_same_meaning(h, h2);
  }
  return 0;
}
