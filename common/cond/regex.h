#pragma once
// Regular expressions of conditions (`path_reg`, `-m reg`) and of the rules
// that rewrite with one (replace_header, replace_value): PCRE2, compiled once
// when the configuration is loaded, with its JIT when available.

#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace weir::cond {

// A compiled PCRE2 pattern (JIT when available).
class Regex {
 public:
  static std::shared_ptr<const Regex> compile(const std::string& pattern, bool icase,
                                              std::string* error);
  ~Regex();
  bool search(std::string_view s) const;
  // Replaces every match in `s` with `replacement` (\1..\9 name groups; \\ is a
  // backslash); nullopt when nothing matched.
  std::optional<std::string> replace(std::string_view s, std::string_view replacement) const;
  Regex() = default;
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;

 private:
  void* code_ = nullptr;  // pcre2_code*
};

}  // namespace weir::cond
