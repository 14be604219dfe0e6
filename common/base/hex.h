#pragma once
// Bytes as hexadecimal text and back (ticket secrets between processes, build
// ids). Decoding never throws: bad input is an answer, not an exception.

#include <optional>
#include <string>
#include <string_view>

namespace weir {

// Two lower-case digits per byte: "\x01\xab" -> "01ab".
std::string to_hex(std::string_view bytes);
std::string to_hex(const unsigned char* bytes, size_t n);

// The bytes of an even number of hex digits (either case); nullopt for an odd
// length or any other character. "" decodes to an empty string.
std::optional<std::string> from_hex(std::string_view hex) noexcept;

}  // namespace weir
