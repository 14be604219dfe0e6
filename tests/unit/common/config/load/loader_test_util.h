#pragma once
// What the loader's tests share: load a text, and assert where an error is and
// what it says.

#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <vector>

#include "common/config/config.h"

namespace weir::config_test {

inline LoadResult load(std::string_view text) {
  return load_config_text(text, "test.yaml");
}

inline std::string describe(const std::vector<ConfigError>& messages) {
  std::string out;
  for (const ConfigError& e : messages) out += "\n  " + e.to_string();
  return out.empty() ? " (none)" : out;
}

// Some error is at line:column and its message contains `text`.
inline testing::AssertionResult has_error(const LoadResult& result, int line, int column,
                                          std::string_view text) {
  if (result.config) return testing::AssertionFailure() << "the configuration loaded";
  for (const ConfigError& e : result.errors) {
    if (e.line == line && e.column == column && e.message.find(text) != std::string::npos) {
      return testing::AssertionSuccess();
    }
  }
  return testing::AssertionFailure() << "no error at " << line << ":" << column << " containing '"
                                     << text << "'; errors:" << describe(result.errors);
}

// The only error is at line:column and its message contains `text`.
inline testing::AssertionResult only_error(const LoadResult& result, int line, int column,
                                           std::string_view text) {
  if (result.errors.size() != 1) {
    return testing::AssertionFailure()
           << "expected exactly one error, got:" << describe(result.errors);
  }
  return has_error(result, line, column, text);
}

inline testing::AssertionResult loads(const LoadResult& result) {
  if (result.config && result.errors.empty()) return testing::AssertionSuccess();
  return testing::AssertionFailure() << "errors:" << describe(result.errors);
}

inline constexpr std::string_view kMinimal = R"(frontends:
  web:
    bind: ["127.0.0.1:8080"]
    default_backend: app
backends:
  app:
    servers:
      s1: "127.0.0.1:9001"
)";

}  // namespace weir::config_test
