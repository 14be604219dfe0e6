#pragma once
// JSON strings, as every JSON answer and log line of weir writes them (the
// access log's `format: json`, `show stat json`).
//
// The output is plain ASCII, so no transport (syslog, a terminal, a pipe) can
// mangle it, and it decodes to the right text:
//   - `"` and `\` get a backslash; \b \f \n \r \t their short forms; every other
//     byte below 0x20, and 0x7F, is \u00XX;
//   - a well-formed UTF-8 sequence is its code point, \uXXXX (a surrogate pair
//     above U+FFFF): "café" -> "caf\u00e9";
//   - bytes that are not well-formed UTF-8 become U+FFFD, written \ufffd, one
//     per maximal ill-formed subsequence (Unicode's recommended practice, as
//     browsers and Python decode): the line stays valid JSON whatever a client
//     or a server sent.

#include <string>
#include <string_view>

namespace weir {

// Appends s as a JSON string, quotes included.
void append_json_string(std::string& out, std::string_view s);
std::string json_string(std::string_view s);

}  // namespace weir
