#include "common/config/load/value_reader.h"

#include <algorithm>
#include <charconv>
#include <climits>
#include <set>
#include <tuple>

#include "common/base/units.h"
#include "common/config/load/yaml_errors.h"

namespace weir::config_detail {
namespace {

using Kind = YamlNode::Kind;

std::string format_size(uint64_t bytes) {
  for (const auto& [unit, suffix] :
       {std::pair{1ULL << 30, "g"}, {1ULL << 20, "m"}, {1ULL << 10, "k"}}) {
    if (bytes >= unit && bytes % unit == 0) return std::to_string(bytes / unit) + suffix;
  }
  return std::to_string(bytes);
}

}  // namespace

size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<size_t> previous(b.size() + 1);
  std::vector<size_t> current(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) previous[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    current[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t substitution = previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1);
      current[j] = std::min({previous[j] + 1, current[j - 1] + 1, substitution});
    }
    std::swap(previous, current);
  }
  return previous[b.size()];
}

std::string_view closest_match(std::string_view word,
                               std::span<const std::string_view> candidates) {
  std::string_view best;
  size_t best_distance = 3;
  for (const std::string_view candidate : candidates) {
    const size_t distance = edit_distance(word, candidate);
    if (distance < best_distance && distance < word.size()) {
      best = candidate;
      best_distance = distance;
    }
  }
  return best;
}

bool contains(std::span<const std::string_view> names, std::string_view name) {
  return std::find(names.begin(), names.end(), name) != names.end();
}

std::string join(std::span<const std::string_view> names) {
  std::string out;
  for (const std::string_view name : names) {
    if (!out.empty()) out += ", ";
    out += name;
  }
  return out;
}

std::string one_of(std::span<const std::string_view> names) {
  std::string out;
  for (size_t i = 0; i < names.size(); ++i) {
    if (i > 0) out += i + 1 == names.size() ? " or " : ", ";
    out += names[i];
  }
  return out;
}

std::string quoted(std::string_view text) {
  return "'" + std::string(text) + "'";
}

std::string suggestion(std::string_view word, std::span<const std::string_view> candidates) {
  const std::string_view best = closest_match(word, candidates);
  return best.empty() ? "" : "; did you mean " + quoted(best) + "?";
}

// What a node is, for "expected X (got Y)" messages.
std::string describe(const YamlNode& node) {
  switch (node.kind) {
    case Kind::kNull:
      return "nothing";
    case Kind::kScalar:
      return node.scalar.size() > 40 ? quoted(node.scalar.substr(0, 37) + "...")
                                     : quoted(node.scalar);
    case Kind::kSequence:
      return "a list";
    case Kind::kMap:
      return "a map";
  }
  return "?";
}

const Field* Fields::find(std::string_view key) const {
  for (const Field& field : list) {
    if (field.key == key) return &field;
  }
  return nullptr;
}

const YamlNode* Fields::get(std::string_view key) const {
  const Field* field = find(key);
  return field ? field->value : nullptr;
}

void ValueReader::error(const SourceMark& mark, std::string message) {
  result_.errors.push_back({file_, mark.line, mark.column, std::move(message)});
}

void ValueReader::warn(const SourceMark& mark, std::string message) {
  result_.warnings.push_back({file_, mark.line, mark.column, std::move(message)});
}

Fields ValueReader::map_fields(const YamlNode& node, const std::string& label,
                               std::string_view item, const std::string& dup_where) {
  Fields fields;
  if (node.kind == Kind::kNull) return fields;
  if (node.kind != Kind::kMap) {
    error(node.mark, label + ": expected a map (got " + describe(node) + ")" +
                         (node.kind == Kind::kScalar ? missing_space_hint(node.scalar) : ""));
    return fields;
  }
  for (const auto& [key, value] : node.entries) {
    if (key->kind != Kind::kScalar) {
      error(key->mark, label + ": keys must be plain strings (got " + describe(*key) + ")");
      continue;
    }
    if (const Field* first = fields.find(key->scalar)) {
      error(key->mark, "duplicate " + std::string(item) + " " + quoted(key->scalar) + dup_where +
                           " (first defined at line " + std::to_string(first->key_node->mark.line) +
                           ")");
      continue;
    }
    fields.list.push_back({key->scalar, key.get(), value.get()});
  }
  return fields;
}

void ValueReader::reject_unknown(const Fields& fields, std::span<const std::string_view> known,
                                 const std::string& where) {
  for (const Field& field : fields.list) {
    if (contains(known, field.key)) continue;
    if (field.key == "<<") {
      error(field.key_node->mark, "merge keys ('<<') are not supported");
      continue;
    }
    // "user:weir" is a key with no value for YAML: say what was meant.
    const std::string hint = missing_space_hint(field.key);
    error(field.key_node->mark, "unknown key " + quoted(field.key) + " " + where +
                                    (hint.empty() ? suggestion(field.key, known) : hint));
  }
}

std::optional<std::string> ValueReader::text_value(const YamlNode& node, const std::string& what,
                                                   std::string_view expected) {
  if (node.kind == Kind::kNull) {
    error(node.mark, what + ": missing value (expected " + std::string(expected) + ")");
    return std::nullopt;
  }
  if (node.kind != Kind::kScalar) {
    error(node.mark,
          what + ": expected " + std::string(expected) + " (got " + describe(node) + ")");
    return std::nullopt;
  }
  std::string problem;
  auto expanded = expand_env(node.scalar, &problem);
  if (!expanded) error(node.mark, what + ": " + problem);
  return expanded;
}

std::optional<int64_t> ValueReader::int_value(const YamlNode& node, const std::string& what,
                                              int64_t min, int64_t max) {
  const auto text = text_value(node, what, "an integer");
  if (!text) return std::nullopt;
  int64_t value = 0;
  const char* end = text->data() + text->size();
  const auto [ptr, ec] = std::from_chars(text->data(), end, value);
  if (text->empty() || ptr != end || (ec != std::errc() && ec != std::errc::result_out_of_range)) {
    error(node.mark, what + ": expected an integer (got " + quoted(*text) + ")");
    return std::nullopt;
  }
  if (ec == std::errc::result_out_of_range || value < min || value > max) {
    error(node.mark, what + ": must be between " + std::to_string(min) + " and " +
                         std::to_string(max) + " (got " + *text + ")");
    return std::nullopt;
  }
  return value;
}

std::optional<bool> ValueReader::bool_value(const YamlNode& node, const std::string& what) {
  const auto text = text_value(node, what, "true or false");
  if (!text) return std::nullopt;
  if (*text == "true" || *text == "True" || *text == "TRUE") return true;
  if (*text == "false" || *text == "False" || *text == "FALSE") return false;
  error(node.mark, what + ": expected true or false (got " + quoted(*text) + ")");
  return std::nullopt;
}

std::optional<int64_t> ValueReader::duration_value(const YamlNode& node, const std::string& what) {
  const auto text = text_value(node, what, "a duration");
  if (!text) return std::nullopt;
  std::string problem;
  const auto ms = parse_duration_ms(*text, &problem);
  if (!ms) {
    error(node.mark, what + ": invalid duration " + quoted(*text) + ": " + problem);
    return std::nullopt;
  }
  if (*ms > kMaxTimeoutMs) {
    error(node.mark,
          what + ": must be at most " + format_duration_ms(kMaxTimeoutMs) + " (got " + *text + ")");
    return std::nullopt;
  }
  return ms;
}

std::optional<uint64_t> ValueReader::size_value(const YamlNode& node, const std::string& what,
                                                uint64_t min, uint64_t max) {
  const auto text = text_value(node, what, "a size");
  if (!text) return std::nullopt;
  std::string problem;
  const auto bytes = parse_size(*text, &problem);
  if (!bytes) {
    error(node.mark, what + ": invalid size " + quoted(*text) + ": " + problem);
    return std::nullopt;
  }
  if (*bytes < min || *bytes > max) {
    error(node.mark, what + ": must be between " + format_size(min) + " and " + format_size(max) +
                         " (got " + *text + ")");
    return std::nullopt;
  }
  return bytes;
}

// File order; messages without a position last; the same message at the same place once.
void sort_messages(std::vector<ConfigError>& messages) {
  const auto position = [](const ConfigError& e) {
    return std::pair(e.line > 0 ? e.line : INT_MAX, e.column);
  };
  std::stable_sort(
      messages.begin(), messages.end(),
      [&](const ConfigError& a, const ConfigError& b) { return position(a) < position(b); });
  std::set<std::tuple<int, int, std::string>> seen;
  std::erase_if(messages, [&](const ConfigError& e) {
    return !seen.insert({e.line, e.column, e.message}).second;
  });
}

}  // namespace weir::config_detail
