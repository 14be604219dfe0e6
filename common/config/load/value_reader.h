#pragma once
// Typed values out of a YamlNode tree, each problem reported at its position:
// integers, booleans, durations and sizes with their ranges, the entries of a map
// with duplicate and unknown keys, and the words of messages ("did you mean").

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/config/config.h"
#include "common/config/load/yaml_tree.h"

namespace weir::config_detail {

// Levenshtein distance (insertions, deletions, substitutions).
size_t edit_distance(std::string_view a, std::string_view b);

// The candidate closest to `word` when it is at most 2 edits away (and closer than
// the word is long), else an empty view. Among equally close ones, the first.
std::string_view closest_match(std::string_view word, std::span<const std::string_view> candidates);

// Longer timeouts are almost certainly typos, and this bound means "now + timeout"
// cannot overflow anywhere in weir.
inline constexpr int64_t kMaxTimeoutMs = 365LL * 86'400'000;

bool contains(std::span<const std::string_view> names, std::string_view name);
// "a, b, c"
std::string join(std::span<const std::string_view> names);
// "a, b or c"
std::string one_of(std::span<const std::string_view> names);
// 'text'
std::string quoted(std::string_view text);
// "; did you mean 'x'?" when closest_match() finds one, else "".
std::string suggestion(std::string_view word, std::span<const std::string_view> candidates);
// What a node is, for "expected X (got Y)": "'text'", "a list", "a map", "nothing".
std::string describe(const YamlNode& node);
// File order, messages without a position last; the same message at the same place once.
void sort_messages(std::vector<ConfigError>& messages);

// The first occurrence of each key of a map, in file order.
struct Field {
  std::string key;
  const YamlNode* key_node;
  const YamlNode* value;
};
struct Fields {
  std::vector<Field> list;
  const Field* find(std::string_view key) const;
  const YamlNode* get(std::string_view key) const;  // nullptr when absent
};

// Reads typed values out of a YamlNode tree for one file. Every problem becomes one
// ConfigError at the node's position and the read returns nullopt, so that a caller
// can go on and find the next problem. Values have ${} expanded (expand_env).
class ValueReader {
 public:
  explicit ValueReader(std::string file) : file_(std::move(file)) {}

  const std::string& file() const { return file_; }
  void error(const SourceMark& mark, std::string message);
  void warn(const SourceMark& mark, std::string message);

  // The entries of a map (null counts as an empty map), reporting a non-map, non-string
  // keys and duplicates: "duplicate <item> 'k'<dup_where> (first defined at line N)".
  // `label` names the map in messages ("frontend 'web'").
  Fields map_fields(const YamlNode& node, const std::string& label, std::string_view item,
                    const std::string& dup_where);
  Fields map_fields(const YamlNode& node, const std::string& label) {
    return map_fields(node, label, "key", " in " + label);
  }
  // "unknown key 'k' <where>; did you mean 'x'?" for each key not in `known`.
  void reject_unknown(const Fields& fields, std::span<const std::string_view> known,
                      const std::string& where);

  // `what` starts every message ("frontend 'web': maxconn"); `expected` describes a
  // valid value ("an integer").
  std::optional<std::string> text_value(const YamlNode& node, const std::string& what,
                                        std::string_view expected);
  std::optional<std::string> string_value(const YamlNode& node, const std::string& what) {
    return text_value(node, what, "a string");
  }
  std::optional<int64_t> int_value(const YamlNode& node, const std::string& what, int64_t min,
                                   int64_t max);
  std::optional<bool> bool_value(const YamlNode& node, const std::string& what);
  // Milliseconds, at most kMaxTimeoutMs.
  std::optional<int64_t> duration_value(const YamlNode& node, const std::string& what);
  std::optional<uint64_t> size_value(const YamlNode& node, const std::string& what, uint64_t min,
                                     uint64_t max);

 protected:
  LoadResult result_;

 private:
  std::string file_;
};

}  // namespace weir::config_detail
