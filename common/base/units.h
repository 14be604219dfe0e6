#pragma once
// Durations ("100ms", "5s", "2m", "1h", "1d", bare integers are milliseconds) and
// sizes ("512", "16k", "1m", "1g"; binary multiples).

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace weir {

// Milliseconds, or nullopt with *error set ("unknown unit 'x'", "not a number", overflow).
std::optional<int64_t> parse_duration_ms(std::string_view text, std::string* error);
// Bytes, or nullopt with *error set.
std::optional<uint64_t> parse_size(std::string_view text, std::string* error);
// "1500ms" -> "1.5s" style rendering for logs and messages.
std::string format_duration_ms(int64_t ms);
// An uptime as "1d02h03m04s".
std::string format_uptime_ms(int64_t ms);

}  // namespace weir
