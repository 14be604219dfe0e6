#pragma once
// The arguments of runtime-API commands as an operator types them: counts
// (maxconn, a port), weights (absolute or a percentage of the configured
// weight). Each parser says what it accepts and refuses anything else; the
// command turns a refusal into its "Error: ..." answer. Server states are read
// by parse_admin_state (worker/backend/backend.h), addresses by
// parse_numeric_address (common/base/address.h).

#include <cstdint>
#include <optional>
#include <string_view>

namespace weir {

// Decimal digits only, within [0, max]: no sign, no spaces, no "0x", at most 10
// digits (so that nothing overflows before the comparison).
std::optional<uint32_t> parse_count(std::string_view text, uint32_t max);

// A TCP port, 1..65535.
std::optional<uint16_t> parse_port(std::string_view text);

// `set server ... weight` and `add server ... weight`: "N" (0..256), or, where a
// percentage is allowed, "N%" of the configured weight (0%..100000%).
struct WeightArg {
  uint32_t value = 0;
  bool percent = false;
  // The weight to set on a server configured with `configured`: a percentage
  // is of the configured weight, as in HAProxy, so that 100% restores it
  // whatever was set in between (weight_from_percent).
  uint32_t resolve(uint32_t configured) const;
};
std::optional<WeightArg> parse_weight(std::string_view text, bool percent_allowed);

}  // namespace weir
