// libFuzzer target: the HTTP/1.1 request head parser. Whatever the bytes, it
// must not crash, read out of bounds or loop; it must give the same verdict when
// the bytes arrive in two pieces; a smaller header limit may only turn a
// success into "too many headers"; and a head it accepts, written back the way
// weir forwards it, must parse again with the same meaning (so that nothing
// weir sends on can be read differently by a weir behind it). The persistence
// cookie's parser runs on every head it accepts (worker/backend/persistence.h):
// in each mode, what it reads, the Cookie field the server would get and the
// response fields it would write keep their invariants.

#include <cstddef>
#include <cstdint>
#include <string>

#include "tests/fuzz/fuzz_common.h"
#include "worker/backend/persistence.h"
#include "worker/http/h1/http_codec.h"
#include "worker/rules/rules.h"

namespace {

using namespace weir::http;
using weir::fuzz::check;

constexpr size_t kMaxHead = 16384;

ParseStatus parse(const char* p, size_t n, MessageHead* h,
                  size_t max_headers = kDefaultMaxHeaders) {
  size_t scan = 0;
  return parse_request(p, n, kMaxHead, &scan, h, max_headers);
}

// The persistence cookie of every mode over the head's fields.
void check_cookies(const MessageHead& h) {
  namespace persist = weir::persist;
  constexpr int64_t kNow = 1800000000;
  for (weir::CookieMode mode :
       {weir::CookieMode::kInsert, weir::CookieMode::kRewrite, weir::CookieMode::kPrefix}) {
    weir::CookieConfig c;
    c.name = "SRV";
    c.mode = mode;
    c.indirect = true;
    if (mode == weir::CookieMode::kInsert) c.maxidle_ms = c.maxlife_ms = 3600000;
    persist::ClientCookie got;
    persist::read_client_cookie(c, h, kNow, &got);
    if (got.found) {
      check(!got.value.empty(), "a found cookie names a value");
      check(got.value.find_first_of(";,") == std::string::npos, "one cookie's value");
      if (mode == weir::CookieMode::kPrefix)
        check(got.value.find('~') == std::string::npos, "the prefix ends at its '~'");
      if (mode == weir::CookieMode::kInsert) {
        check(got.value.find('|') == std::string::npos, "the value ends at its dates");
        check(got.first_s <= got.last_s && got.last_s <= kNow + 60, "dates in order");
      }
    }
    for (size_t i = 0; i < h.header_count; ++i) {
      if (!iequals(h.headers[i].name, "cookie")) continue;
      std::string out;
      if (!persist::request_cookie_for_server(c, h.headers[i].value, &out)) continue;
      check(out.find_first_of("\r\n") == std::string::npos, "no line break toward the server");
      if (mode == weir::CookieMode::kInsert) {
        // indirect: nothing of weir's cookie is left for the server.
        std::string req = "GET / HTTP/1.1\r\nHost: x\r\nCookie: " + out + "\r\n\r\n";
        static MessageHead again;
        size_t scan = 0;
        if (!out.empty() && parse_request(req.data(), req.size(), kMaxHead, &scan, &again,
                                          kDefaultMaxHeaders) == ParseStatus::kComplete) {
          persist::ClientCookie left;
          persist::read_client_cookie(c, again, kNow, &left);
          check(!left.found, "indirect removes weir's cookie");
        }
      }
    }
    // The head's fields as a response's: the cookie weir writes.
    weir::EditableHead e = weir::EditableHead::from(h);
    persist::edit_response(c, got, "s1", h.host, kNow, e);
    for (const auto& [name, value] : e.headers) {
      check(value.find_first_of("\r\n") == std::string::npos, "no line break in a field");
    }
  }
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
    check_cookies(h);
  }
  return 0;
}
