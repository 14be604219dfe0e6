#include "worker/api/arguments.h"

#include "worker/backend/backend.h"

namespace weir {

std::optional<uint32_t> parse_count(std::string_view text, uint32_t max) {
  if (text.empty() || text.size() > 10) return std::nullopt;
  uint64_t n = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    n = n * 10 + static_cast<uint64_t>(c - '0');
  }
  if (n > max) return std::nullopt;
  return static_cast<uint32_t>(n);
}

std::optional<uint16_t> parse_port(std::string_view text) {
  std::optional<uint32_t> n = parse_count(text, 65535);
  if (!n || *n == 0) return std::nullopt;
  return static_cast<uint16_t>(*n);
}

uint32_t WeightArg::resolve(uint32_t configured) const {
  return percent ? weight_from_percent(configured, value) : value;
}

std::optional<WeightArg> parse_weight(std::string_view text, bool percent_allowed) {
  WeightArg w;
  w.percent = percent_allowed && !text.empty() && text.back() == '%';
  if (w.percent) text.remove_suffix(1);
  std::optional<uint32_t> n = parse_count(text, w.percent ? kMaxWeightPercent : kMaxServerWeight);
  if (!n) return std::nullopt;
  w.value = *n;
  return w;
}

}  // namespace weir
