#pragma once
// Small text helpers that the condition parser and the evaluation share
// (internal to common/cond/).

#include <charconv>
#include <cstdint>
#include <optional>
#include <string_view>

namespace weir::cond {

inline char lower_char(char c) {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

// A decimal integer with an optional sign, nothing else; nullopt otherwise.
inline std::optional<int64_t> parse_int(std::string_view s) {
  int64_t v = 0;
  if (s.empty()) return std::nullopt;
  const char* b = s.data();
  if (*b == '+') ++b;
  auto [p, ec] = std::from_chars(b, s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
  return v;
}

}  // namespace weir::cond
