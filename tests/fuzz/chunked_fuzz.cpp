// libFuzzer target: the chunked transfer-coding walker. Whatever the bytes, it
// must not crash or loop; it must find the same end (or the same fault) however
// the bytes are cut into pieces; and it must agree with a reference decoder
// written the plain way (whole lines, the RFC 9112 7.1 grammar, weir's limits):
// where the reference finds the end of the body the walker finds the same end,
// where the reference finds a fault the walker fails, and the walker never finds
// an end the reference does not. (The walker may fail earlier, on a line whose
// end has not arrived; the reference then says "incomplete".)

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "tests/fuzz/fuzz_common.h"
#include "worker/http/h1/http_codec.h"

namespace {

using weir::fuzz::check;
using weir::http::ChunkedWalker;

enum class Ref { kDone, kError, kIncomplete };

bool tchar(unsigned char c) {
  return weir::http::is_tchar(c);
}
bool ctl(unsigned char c) {
  return (c < 0x20 && c != '\t') || c == 0x7f;
}

// chunk-ext = *( BWS ";" BWS name [ BWS "=" BWS ( token / quoted-string ) ] )
bool valid_extensions(std::string_view e) {
  size_t i = 0;
  auto skip_ws = [&] {
    while (i < e.size() && (e[i] == ' ' || e[i] == '\t')) ++i;
  };
  auto token = [&] {
    size_t from = i;
    while (i < e.size() && tchar(static_cast<unsigned char>(e[i]))) ++i;
    return i > from;
  };
  while (i < e.size()) {
    skip_ws();
    if (i == e.size() || e[i] != ';') return false;
    ++i;
    skip_ws();
    if (!token()) return false;
    if (i == e.size()) return true;
    size_t after_name = i;
    skip_ws();
    if (i < e.size() && e[i] == '=') {
      ++i;
      skip_ws();
      if (i < e.size() && e[i] == '"') {
        ++i;
        bool closed = false;
        while (i < e.size()) {
          unsigned char c = static_cast<unsigned char>(e[i]);
          if (c == '"') {
            ++i;
            closed = true;
            break;
          }
          if (c == '\\') {
            if (++i == e.size() || ctl(static_cast<unsigned char>(e[i]))) return false;
          } else if (ctl(c)) {
            return false;
          }
          ++i;
        }
        if (!closed) return false;
      } else if (!token()) {
        return false;
      }
    } else {
      i = after_name;  // whitespace after a name: a ';' must follow
    }
  }
  return true;
}

int hex_value(unsigned char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

Ref reference(std::string_view d, size_t* end) {
  size_t pos = 0;
  for (;;) {
    size_t eol = d.find("\r\n", pos);
    if (eol == std::string_view::npos) return Ref::kIncomplete;
    std::string_view line = d.substr(pos, eol - pos);
    size_t digits = 0;
    uint64_t size = 0;
    while (digits < line.size() && hex_value(static_cast<unsigned char>(line[digits])) >= 0) {
      if (digits == 15) return Ref::kError;
      size = size * 16 + static_cast<uint64_t>(hex_value(static_cast<unsigned char>(line[digits])));
      ++digits;
    }
    if (digits == 0) return Ref::kError;
    std::string_view ext = line.substr(digits);
    if (ext.size() > weir::http::kMaxChunkExtension || !valid_extensions(ext)) return Ref::kError;
    pos = eol + 2;
    if (size == 0) break;
    if (d.size() - pos < size) return Ref::kIncomplete;
    pos += static_cast<size_t>(size);
    if (pos < d.size() && d[pos] != '\r') return Ref::kError;
    if (pos + 1 < d.size() && d[pos + 1] != '\n') return Ref::kError;
    if (d.size() - pos < 2) return Ref::kIncomplete;
    pos += 2;
  }
  size_t trailer_bytes = 0;
  for (;;) {
    size_t eol = d.find("\r\n", pos);
    if (eol == std::string_view::npos) return Ref::kIncomplete;
    std::string_view line = d.substr(pos, eol - pos);
    pos = eol + 2;
    if (line.empty()) {
      *end = pos;
      return Ref::kDone;
    }
    trailer_bytes += line.size() + 2;
    if (trailer_bytes > weir::http::kMaxTrailerBytes) return Ref::kError;
    size_t colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) return Ref::kError;
    std::string_view name = line.substr(0, colon);
    for (char c : name)
      if (!tchar(static_cast<unsigned char>(c))) return Ref::kError;
    for (char c : line.substr(colon + 1))
      if (ctl(static_cast<unsigned char>(c))) return Ref::kError;
    using weir::http::iequals;
    if (iequals(name, "content-length") || iequals(name, "transfer-encoding") ||
        iequals(name, "host")) {
      return Ref::kError;
    }
  }
}

// Feeds data in pieces ending at the given cuts; returns the bytes consumed.
size_t feed_in_pieces(ChunkedWalker& w, const char* p, size_t size, const size_t* cuts,
                      size_t ncuts) {
  size_t used = 0;
  size_t from = 0;
  for (size_t k = 0; k <= ncuts; ++k) {
    size_t to = k < ncuts ? cuts[k] : size;
    if (to < from || to > size) continue;
    if (w.done() || w.failed()) break;
    // The walker may stop before the piece's end only when done or failed.
    size_t n = w.feed(p + from, to - from);
    check(n <= to - from, "consumed within the piece");
    check(n == to - from || w.done() || w.failed(), "a piece is eaten whole unless it ends");
    used += n;
    from = to;
  }
  return used;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const char* p = reinterpret_cast<const char*>(data);
  ChunkedWalker w;
  size_t used = w.feed(p, size);
  check(used <= size, "consumed within the input");
  check(!(w.done() && w.failed()), "done or failed, not both");
  if (w.failed()) check(used < size && w.error() != nullptr, "fails on a byte it names");
  if (!w.done() && !w.failed()) check(used == size, "eats everything while the body goes on");

  size_t end = 0;
  Ref r = reference(std::string_view(p, size), &end);
  if (r == Ref::kDone) check(w.done() && used == end, "finds the reference's end");
  if (w.done()) check(r == Ref::kDone && end == used, "no end the reference does not find");
  if (r == Ref::kError) check(w.failed(), "fails where the reference does");
  if (w.failed()) check(r != Ref::kDone, "never fails on a body the reference accepts");

  // Cut into pieces: at the half, at a third, and (for small inputs) every byte.
  const size_t cuts[] = {size / 3, size / 2};
  ChunkedWalker w2;
  size_t used2 = feed_in_pieces(w2, p, size, cuts, 2);
  check(w2.done() == w.done() && w2.failed() == w.failed() && used2 == used, "same in pieces");
  if (size <= 512) {
    ChunkedWalker w3;
    size_t used3 = 0;
    for (size_t i = 0; i < size && !w3.done() && !w3.failed(); ++i) used3 += w3.feed(p + i, 1);
    check(w3.done() == w.done() && w3.failed() == w.failed() && used3 == used, "same by bytes");
  }
  return 0;
}
