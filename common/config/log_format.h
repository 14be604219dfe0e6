#pragma once
// Access-log format strings: "%ci:%cp [%tr] %ft %b/%s %ST %B" and the like.
// Parsed once (by the configuration loader to report errors, by the worker to
// run), then executed per line by worker/observe/access_log.cpp. The variables follow
// HAProxy's log-format names so that existing formats and log parsers carry over;
// doc/operations.md lists them.

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace weir::logfmt {

enum class Var : unsigned char {
  kLiteral,       // text copied as is
  kClientIp,      // %ci
  kClientPort,    // %cp
  kFrontend,      // %ft, %f
  kBackend,       // %b
  kServer,        // %s
  kServerIp,      // %si
  kServerPort,    // %sp
  kAcceptDate,    // %t, %tr: 26/Nov/2026:03:42:36.123 (UTC)
  kAcceptIso,     // %T: 2026-11-26T03:42:36.123Z
  kEpochSec,      // %Ts
  kEpochMs,       // %ms: the milliseconds of the accept date (000..999)
  kTimeRequest,   // %TR
  kTimeQueue,     // %Tw
  kTimeConnect,   // %Tc
  kTimeResponse,  // %Tr
  kTimeTotal,     // %Ta, %Tt
  kStatus,        // %ST
  kBytesOut,      // %B
  kBytesIn,       // %U
  kTermination,   // %ts
  kActConn,       // %ac
  kFeConn,        // %fc
  kBeConn,        // %bc
  kSrvConn,       // %sc
  kRetries,       // %rc
  kSrvQueue,      // %sq
  kBeQueue,       // %bq
  kRequest,       // %r
  kMethod,        // %HM
  kUri,           // %HU
  kPath,          // %HP
  kQuery,         // %HQ (with its '?', empty when none)
  kVersion,       // %HV
  kReqHeader,     // %hr{Name}
  kPid,           // %pid
  kHostname,      // %H
  kMode,          // %mode: http or tcp
  kSample,        // %[fetch,converter...]: any fetch of the condition language
  kCaptures,      // %hr: the values kept by capture rules, as {a|b}
};

struct Token {
  Var var = Var::kLiteral;
  std::string text;  // the literal, or the header name of %hr{...} (lower-case)
  size_t slot = 0;   // %hr{}: index into headers; %[]: index into samples
};

struct Template {
  std::vector<Token> tokens;
  // Lower-case names of the request headers %hr{} prints, in slot order.
  std::vector<std::string> headers;
  // The sample expressions %[...] prints, in slot order (as written).
  std::vector<std::string> samples;
};

// Parses a format string. On error returns nullopt, sets *error to a one-line
// reason and *error_offset to the 0-based position of the problem in `format`.
std::optional<Template> parse(std::string_view format, std::string* error, size_t* error_offset);

// The built-in formats, as format strings.
extern const char* const kHttpFormat;
extern const char* const kTcpFormat;

}  // namespace weir::logfmt
