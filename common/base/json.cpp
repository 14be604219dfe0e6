#include "common/base/json.h"

#include <cstdint>

namespace weir {
namespace {

constexpr char kHex[] = "0123456789abcdef";

void append_u16(std::string& out, uint32_t unit) {
  out += "\\u";
  out += kHex[(unit >> 12) & 15];
  out += kHex[(unit >> 8) & 15];
  out += kHex[(unit >> 4) & 15];
  out += kHex[unit & 15];
}

void append_code_point(std::string& out, uint32_t cp) {
  if (cp < 0x10000) {
    append_u16(out, cp);
    return;
  }
  cp -= 0x10000;
  append_u16(out, 0xD800 + (cp >> 10));
  append_u16(out, 0xDC00 + (cp & 0x3FF));
}

// Decodes the UTF-8 sequence that starts s[0] (a byte from 0x80 up). Returns how
// many bytes it takes; *cp is its code point, or -1 when those bytes are a
// maximal ill-formed subsequence (Unicode 15, table 3-7 and section 3.9).
size_t decode_utf8(std::string_view s, int32_t* cp) {
  const auto byte = [&](size_t i) { return static_cast<unsigned char>(s[i]); };
  const unsigned char lead = byte(0);
  size_t len = 0;
  unsigned char lo = 0x80, hi = 0xBF;  // the range of the second byte
  uint32_t value = 0;
  if (lead >= 0xC2 && lead <= 0xDF) {
    len = 2;
    value = lead & 0x1F;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    len = 3;
    value = lead & 0x0F;
    if (lead == 0xE0) lo = 0xA0;  // no overlong forms
    if (lead == 0xED) hi = 0x9F;  // no surrogates
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    len = 4;
    value = lead & 0x07;
    if (lead == 0xF0) lo = 0x90;  // no overlong forms
    if (lead == 0xF4) hi = 0x8F;  // nothing above U+10FFFF
  } else {
    *cp = -1;  // a continuation byte, C0, C1 or F5..FF: never a lead
    return 1;
  }
  for (size_t i = 1; i < len; ++i) {
    const unsigned char b = i < s.size() ? byte(i) : 0;
    const bool fits = i == 1 ? (b >= lo && b <= hi) : (b >= 0x80 && b <= 0xBF);
    if (!fits) {
      *cp = -1;
      return i;
    }
    value = (value << 6) | (b & 0x3F);
  }
  *cp = static_cast<int32_t>(value);
  return len;
}

}  // namespace

void append_json_string(std::string& out, std::string_view s) {
  out += '"';
  size_t i = 0;
  while (i < s.size()) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0x80) {
      int32_t cp = 0;
      i += decode_utf8(s.substr(i), &cp);
      append_code_point(out, cp < 0 ? 0xFFFD : static_cast<uint32_t>(cp));
      continue;
    }
    ++i;
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20 || c == 0x7F) {
          append_u16(out, c);
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  out += '"';
}

std::string json_string(std::string_view s) {
  std::string out;
  out.reserve(s.size() + 2);
  append_json_string(out, s);
  return out;
}

}  // namespace weir
