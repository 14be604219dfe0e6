#include "common/config/log_format.h"

#include "common/cond/condition.h"

#include <cctype>

namespace weir::logfmt {

const char* const kHttpFormat =
    "%ci:%cp [%tr] %ft %b/%s %TR/%Tw/%Tc/%Tr/%Ta %ST %B %ts %ac/%fc/%bc/%sc/%rc %sq/%bq \"%r\"";
const char* const kTcpFormat =
    "%ci:%cp [%t] %ft %b/%s %Tw/%Tc/%Tt %B %U %ts %ac/%fc/%bc/%sc/%rc %sq/%bq";

namespace {

struct Name {
  std::string_view name;
  Var var;
};

constexpr Name kNames[] = {
    {"pid", Var::kPid},      {"mode", Var::kMode},      {"tsc", Var::kTermination},
    {"ci", Var::kClientIp},  {"cp", Var::kClientPort},  {"ft", Var::kFrontend},
    {"si", Var::kServerIp},  {"sp", Var::kServerPort},  {"sq", Var::kSrvQueue},
    {"sc", Var::kSrvConn},   {"tr", Var::kAcceptDate},  {"ts", Var::kTermination},
    {"Ts", Var::kEpochSec},  {"ms", Var::kEpochMs},     {"TR", Var::kTimeRequest},
    {"Tw", Var::kTimeQueue}, {"Tc", Var::kTimeConnect}, {"Tr", Var::kTimeResponse},
    {"Ta", Var::kTimeTotal}, {"Tt", Var::kTimeTotal},   {"ST", Var::kStatus},
    {"ac", Var::kActConn},   {"fc", Var::kFeConn},      {"bc", Var::kBeConn},
    {"bq", Var::kBeQueue},   {"rc", Var::kRetries},     {"HM", Var::kMethod},
    {"HU", Var::kUri},       {"HP", Var::kPath},        {"HQ", Var::kQuery},
    {"HV", Var::kVersion},   {"f", Var::kFrontend},     {"b", Var::kBackend},
    {"s", Var::kServer},     {"t", Var::kAcceptDate},   {"T", Var::kAcceptIso},
    {"B", Var::kBytesOut},   {"U", Var::kBytesIn},      {"r", Var::kRequest},
    {"H", Var::kHostname},   {"hr", Var::kCaptures},
};

bool header_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_';
}

}  // namespace

std::optional<Template> parse(std::string_view format, std::string* error, size_t* error_offset) {
  Template t;
  std::string literal;
  auto flush_literal = [&] {
    if (literal.empty()) return;
    t.tokens.push_back({Var::kLiteral, literal, 0});
    literal.clear();
  };
  size_t i = 0;
  while (i < format.size()) {
    char c = format[i];
    if (c != '%') {
      literal += c;
      ++i;
      continue;
    }
    if (i + 1 < format.size() && format[i + 1] == '%') {
      literal += '%';
      i += 2;
      continue;
    }
    const size_t at = i;
    std::string_view rest = format.substr(i + 1);
    if (rest.substr(0, 3) == "hr{") {
      size_t close = rest.find('}');
      std::string_view name =
          close == std::string_view::npos ? rest.substr(3) : rest.substr(3, close - 3);
      if (close == std::string_view::npos) {
        *error = "missing '}' after %hr{";
        *error_offset = at;
        return std::nullopt;
      }
      if (name.empty()) {
        *error = "%hr{} needs a header name";
        *error_offset = at;
        return std::nullopt;
      }
      for (size_t k = 0; k < name.size(); ++k) {
        if (!header_char(name[k])) {
          *error = "invalid character in header name of %hr{" + std::string(name) + "}";
          *error_offset = at + 4 + k;
          return std::nullopt;
        }
      }
      std::string lower;
      for (char h : name) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(h)));
      size_t slot = 0;
      while (slot < t.headers.size() && t.headers[slot] != lower) ++slot;
      if (slot == t.headers.size()) t.headers.push_back(lower);
      flush_literal();
      t.tokens.push_back({Var::kReqHeader, lower, slot});
      i += 1 + close + 1;
      continue;
    }
    if (rest.substr(0, 1) == "[") {
      // %[sample]: checked with the condition language's own parser.
      int depth = 0;
      size_t close = 1;
      for (; close < rest.size(); ++close) {
        if (rest[close] == '(') ++depth;
        if (rest[close] == ')') --depth;
        if (rest[close] == ']' && depth == 0) break;
      }
      if (close >= rest.size()) {
        *error = "missing ']' after %[";
        *error_offset = at;
        return std::nullopt;
      }
      std::string expr(rest.substr(1, close - 1));
      cond::FileCache files;
      cond::ParseError pe;
      if (!cond::parse_sample(expr, files, &pe)) {
        *error = "%[" + expr + "]: " + pe.message;
        *error_offset = at + 2 + pe.offset;
        return std::nullopt;
      }
      size_t slot = 0;
      while (slot < t.samples.size() && t.samples[slot] != expr) ++slot;
      if (slot == t.samples.size()) t.samples.push_back(expr);
      flush_literal();
      t.tokens.push_back({Var::kSample, expr, slot});
      i += 1 + close + 1;
      continue;
    }
    // The name is the run of letters after '%', looked up exactly: "%cix" is an
    // error, not "%ci" followed by "x".
    size_t len = 0;
    while (len < rest.size() && std::isalpha(static_cast<unsigned char>(rest[len]))) ++len;
    const Name* found = nullptr;
    for (const Name& n : kNames) {
      if (rest.substr(0, len) == n.name) found = &n;
    }
    if (!found) {
      *error = "unknown log variable '%" + std::string(rest.substr(0, len)) +
               "' (see the list in doc/operations.md; write %% for a literal %)";
      *error_offset = at;
      return std::nullopt;
    }
    flush_literal();
    t.tokens.push_back({found->var, "", 0});
    i += 1 + found->name.size();
  }
  flush_literal();
  return t;
}

}  // namespace weir::logfmt
