#pragma once
// The YAML access layer of the configuration loader: a document tree that keeps
// every node's position and every duplicate map key (yaml-cpp's YAML::Node keeps
// neither for null values and silently lets a later duplicate key hide behind the
// first), and ${VAR} expansion of scalar values.

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/config/config.h"

namespace weir::config_detail {

struct YamlNode;
using YamlNodePtr = std::shared_ptr<const YamlNode>;

struct YamlNode {
  enum class Kind {
    kNull,      // "~", "null" or an absent value ("key:" with nothing after it)
    kScalar,    // any other scalar, quoted or not
    kSequence,  // block or flow list
    kMap,       // block or flow mapping
  };
  Kind kind = Kind::kNull;
  // Where the node starts. For an absent map value ("key:"), the key's position:
  // yaml-cpp reports the position of whatever token follows, often on another line.
  SourceMark mark;
  std::string scalar;                                        // kScalar: text before ${} expansion
  std::vector<YamlNodePtr> items;                            // kSequence
  std::vector<std::pair<YamlNodePtr, YamlNodePtr>> entries;  // kMap: file order, duplicates kept
};

struct YamlDocument {
  YamlNodePtr root;                 // null when the text holds no document at all
  std::vector<ConfigError> errors;  // a syntax error, or a second document
};

// Parses the first YAML document of `text`; `name` is used as ConfigError::file.
// Aliases share the anchored node. A second, non-empty document is an error.
YamlDocument parse_yaml(std::string_view text, const std::string& name);

// Expands ${VAR} and ${VAR:-default} (the default also applies when VAR is set but
// empty); "$${" stands for a literal "${". Returns nullopt and sets *error for an
// unset VAR without default, an unterminated "${" or an invalid variable name.
std::optional<std::string> expand_env(std::string_view text, std::string* error);

}  // namespace weir::config_detail
