#include "common/base/hex.h"

namespace weir {
namespace {

constexpr char kDigits[] = "0123456789abcdef";

int digit_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

std::string to_hex(const unsigned char* bytes, size_t n) {
  std::string out;
  out.reserve(n * 2);
  for (size_t i = 0; i < n; ++i) {
    out.push_back(kDigits[bytes[i] >> 4]);
    out.push_back(kDigits[bytes[i] & 15]);
  }
  return out;
}

std::string to_hex(std::string_view bytes) {
  return to_hex(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size());
}

std::optional<std::string> from_hex(std::string_view hex) noexcept {
  if (hex.size() % 2 != 0) return std::nullopt;
  std::string out;
  try {
    out.reserve(hex.size() / 2);
  } catch (...) {  // out of memory: no answer rather than an exception
    return std::nullopt;
  }
  for (size_t i = 0; i < hex.size(); i += 2) {
    int high = digit_value(hex[i]);
    int low = digit_value(hex[i + 1]);
    if (high < 0 || low < 0) return std::nullopt;
    out.push_back(static_cast<char>(high * 16 + low));
  }
  return out;
}

}  // namespace weir
