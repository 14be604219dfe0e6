#include "common/config/config.h"

#include <algorithm>
#include <climits>
#include <tuple>

namespace weir {

std::string BindConfig::key() const {
  // The resolved address, so that "*:80", ":80" and "0.0.0.0:80" name the same listener.
  return "tcp:" + (addr.len != 0 ? addr.to_string() : address_text);
}

const BackendConfig* Config::find_backend(std::string_view name) const {
  const int index = backend_index(name);
  return index < 0 ? nullptr : &backends[static_cast<size_t>(index)];
}

int Config::backend_index(std::string_view name) const {
  for (size_t i = 0; i < backends.size(); ++i) {
    if (backends[i].name == name) return static_cast<int>(i);
  }
  return -1;
}

std::string RuntimeApiEndpoint::key() const {
  return path.empty() ? "tcp:" + addr.to_string() : "unix:" + path;
}

std::string ConfigError::to_string() const {
  if (line <= 0) return file + ": " + message;
  std::string out = file + ":" + std::to_string(line);
  if (column > 0) out += ":" + std::to_string(column);
  return out + ": " + message;
}

std::string ConfigError::to_warning_string() const {
  ConfigError w = *this;
  w.message = "warning: " + message;
  return w.to_string();
}

std::vector<ConfigMessage> in_file_order(const std::vector<ConfigError>& errors,
                                         const std::vector<ConfigError>& warnings) {
  std::vector<std::pair<const ConfigError*, bool>> all;
  for (const ConfigError& e : errors) all.emplace_back(&e, false);
  for (const ConfigError& w : warnings) all.emplace_back(&w, true);
  // Messages without a position (a file that cannot be read, a command-line
  // option) last; at the same place an error before a warning.
  const auto position = [](const std::pair<const ConfigError*, bool>& m) {
    return std::tuple(m.first->line > 0 ? m.first->line : INT_MAX, m.first->column, m.second);
  };
  std::stable_sort(all.begin(), all.end(),
                   [&](const auto& a, const auto& b) { return position(a) < position(b); });
  std::vector<ConfigMessage> out;
  for (const auto& [message, warning] : all) {
    out.push_back({warning ? message->to_warning_string() : message->to_string(), warning});
  }
  return out;
}

}  // namespace weir
