#include "common/cond/regex.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

namespace weir::cond {

std::shared_ptr<const Regex> Regex::compile(const std::string& pattern, bool icase,
                                            std::string* error) {
  int code = 0;
  PCRE2_SIZE where = 0;
  pcre2_code* re = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                                 icase ? PCRE2_CASELESS : 0, &code, &where, nullptr);
  if (!re) {
    PCRE2_UCHAR buf[256];
    pcre2_get_error_message(code, buf, sizeof buf);
    *error = "invalid regular expression '" + pattern + "': " + reinterpret_cast<const char*>(buf) +
             " at offset " + std::to_string(where);
    return nullptr;
  }
  pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);  // falls back to the interpreter if unavailable
  auto r = std::make_shared<Regex>();
  r->code_ = re;
  return r;
}

Regex::~Regex() {
  if (code_) pcre2_code_free(static_cast<pcre2_code*>(code_));
}

namespace {
pcre2_match_data* thread_match_data() {
  // One match-data block per thread, large enough for "matched or not".
  thread_local std::unique_ptr<pcre2_match_data, void (*)(pcre2_match_data*)> md(
      pcre2_match_data_create(1, nullptr), pcre2_match_data_free);
  return md.get();
}
}  // namespace

bool Regex::search(std::string_view s) const {
  int rc =
      pcre2_match(static_cast<const pcre2_code*>(code_), reinterpret_cast<PCRE2_SPTR>(s.data()),
                  s.size(), 0, 0, thread_match_data(), nullptr);
  return rc >= 0;
}

std::optional<std::string> Regex::replace(std::string_view s, std::string_view replacement) const {
  // HAProxy-style \1 references become PCRE2's $1; a literal '$' is "$$".
  std::string rep;
  for (size_t i = 0; i < replacement.size(); ++i) {
    char c = replacement[i];
    if (c == '\\' && i + 1 < replacement.size()) {
      char d = replacement[++i];
      if (d >= '0' && d <= '9') {
        rep += '$';
        rep += d;
      } else {
        rep += d == '$' ? "$$" : std::string(1, d);
      }
    } else if (c == '$') {
      rep += "$$";
    } else {
      rep += c;
    }
  }
  std::string out(s.size() + rep.size() + 64, '\0');
  for (int attempt = 0; attempt < 2; ++attempt) {
    PCRE2_SIZE len = out.size();
    int rc = pcre2_substitute(static_cast<const pcre2_code*>(code_),
                              reinterpret_cast<PCRE2_SPTR>(s.data()), s.size(), 0,
                              PCRE2_SUBSTITUTE_GLOBAL | PCRE2_SUBSTITUTE_OVERFLOW_LENGTH, nullptr,
                              nullptr, reinterpret_cast<PCRE2_SPTR>(rep.data()), rep.size(),
                              reinterpret_cast<PCRE2_UCHAR*>(out.data()), &len);
    if (rc == PCRE2_ERROR_NOMEMORY) {
      out.resize(len);
      continue;
    }
    if (rc <= 0) return std::nullopt;  // no match (or an error: leave the value alone)
    out.resize(len);
    return out;
  }
  return std::nullopt;
}

}  // namespace weir::cond
