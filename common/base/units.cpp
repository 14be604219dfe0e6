#include "common/base/units.h"
#include <cstdio>

#include <limits>

namespace weir {
namespace {

struct Unit {
  std::string_view suffix;
  uint64_t multiplier;
};

// Longest suffix first so that "ms" is not read as "m" followed by garbage.
constexpr Unit kDurationUnits[] = {
    {"ms", 1}, {"s", 1000}, {"m", 60'000}, {"h", 3'600'000}, {"d", 86'400'000}, {"", 1},
};

constexpr Unit kSizeUnits[] = {
    {"k", 1024ULL},
    {"K", 1024ULL},
    {"m", 1024ULL * 1024},
    {"M", 1024ULL * 1024},
    {"g", 1024ULL * 1024 * 1024},
    {"G", 1024ULL * 1024 * 1024},
    {"", 1},
};

void set_error(std::string* error, std::string message) {
  if (error) *error = std::move(message);
}

// Parses "<digits><unit>" where unit is one of `units`; shared by durations and sizes.
// `what` names the quantity in messages ("durations", "sizes").
template <size_t N>
std::optional<uint64_t> parse_with_unit(std::string_view text, const Unit (&units)[N], uint64_t max,
                                        std::string_view what, std::string_view unit_help,
                                        std::string* error) {
  if (text.empty()) {
    set_error(error, "empty value");
    return std::nullopt;
  }
  if (text.front() == '-') {
    set_error(error, "negative " + std::string(what) + " are not allowed");
    return std::nullopt;
  }
  size_t i = 0;
  uint64_t value = 0;
  bool overflow = false;
  while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
    const auto digit = static_cast<uint64_t>(text[i] - '0');
    if (value > (std::numeric_limits<uint64_t>::max() - digit) / 10) overflow = true;
    if (!overflow) value = value * 10 + digit;
    ++i;
  }
  if (i == 0) {
    set_error(error, "not a number");
    return std::nullopt;
  }
  const std::string_view suffix = text.substr(i);
  if (!suffix.empty() && suffix.front() == '.') {
    set_error(error, "fractions are not supported; use a smaller unit");
    return std::nullopt;
  }
  for (const Unit& unit : units) {
    if (unit.suffix != suffix) continue;
    if (overflow || value > max / unit.multiplier) {
      set_error(error, "value too large");
      return std::nullopt;
    }
    return value * unit.multiplier;
  }
  set_error(error,
            "unknown unit '" + std::string(suffix) + "' (use " + std::string(unit_help) + ")");
  return std::nullopt;
}

}  // namespace

std::optional<int64_t> parse_duration_ms(std::string_view text, std::string* error) {
  auto value = parse_with_unit(text, kDurationUnits,
                               static_cast<uint64_t>(std::numeric_limits<int64_t>::max()),
                               "durations", "ms, s, m, h or d", error);
  if (!value) return std::nullopt;
  return static_cast<int64_t>(*value);
}

std::optional<uint64_t> parse_size(std::string_view text, std::string* error) {
  return parse_with_unit(text, kSizeUnits, std::numeric_limits<uint64_t>::max(), "sizes",
                         "k, m or g", error);
}

std::string format_duration_ms(int64_t ms) {
  if (ms < 0) {
    // Negate in unsigned arithmetic: -INT64_MIN does not fit in int64_t.
    const uint64_t magnitude = 0 - static_cast<uint64_t>(ms);
    if (magnitude > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      return "-" + std::to_string(magnitude) + "ms";
    }
    return "-" + format_duration_ms(static_cast<int64_t>(magnitude));
  }
  if (ms == 0) return "0ms";
  struct Whole {
    int64_t ms;
    const char* suffix;
  };
  for (const Whole& unit :
       {Whole{86'400'000, "d"}, Whole{3'600'000, "h"}, Whole{60'000, "m"}, Whole{1000, "s"}}) {
    if (ms % unit.ms == 0) return std::to_string(ms / unit.ms) + unit.suffix;
  }
  if (ms < 1000) return std::to_string(ms) + "ms";
  // Seconds with up to three decimals, trailing zeros dropped: 1500 -> "1.5s".
  std::string fraction = std::to_string(1000 + ms % 1000).substr(1);
  while (fraction.back() == '0') fraction.pop_back();
  return std::to_string(ms / 1000) + "." + fraction + "s";
}

std::string format_uptime_ms(int64_t ms) {
  int64_t s = ms / 1000;
  char buf[48];
  std::snprintf(buf, sizeof buf, "%lldd%02lldh%02lldm%02llds", static_cast<long long>(s / 86400),
                static_cast<long long>(s / 3600 % 24), static_cast<long long>(s / 60 % 60),
                static_cast<long long>(s % 60));
  return buf;
}

}  // namespace weir
