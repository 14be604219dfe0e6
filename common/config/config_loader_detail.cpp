#include "common/config/config_loader_detail.h"

#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/exceptions.h>
#include <yaml-cpp/mark.h>
#include <yaml-cpp/parser.h>

#include <algorithm>
#include <charconv>
#include <climits>
#include <cstdlib>
#include <map>
#include <set>
#include <sstream>
#include <tuple>

#include "common/base/units.h"
#include "common/config/yaml_errors.h"

namespace weir::config_detail {
namespace {

using Kind = YamlNode::Kind;

SourceMark to_source_mark(const YAML::Mark& mark) {
  if (mark.is_null() || mark.line < 0) return {};
  return {mark.line + 1, mark.column + 1};
}

// Builds a YamlNode tree from yaml-cpp's parser events (one document).
class TreeBuilder final : public YAML::EventHandler {
 public:
  YamlNodePtr root() const { return root_; }
  SourceMark document_mark() const { return document_mark_; }
  const std::vector<std::pair<SourceMark, std::string>>& problems() const { return problems_; }

  void OnDocumentStart(const YAML::Mark& mark) override { document_mark_ = to_source_mark(mark); }
  void OnDocumentEnd() override {}

  void OnNull(const YAML::Mark& mark, YAML::anchor_t anchor) override {
    auto node = std::make_shared<YamlNode>();
    node->mark = to_source_mark(mark);
    // A null map value is reported at its key (see YamlNode::mark).
    if (!stack_.empty() && stack_.back().key) node->mark = stack_.back().key->mark;
    complete(node, anchor);
  }

  void OnAlias(const YAML::Mark& mark, YAML::anchor_t anchor) override {
    const auto it = anchors_.find(anchor);
    if (it != anchors_.end()) {
      add(it->second);
      return;
    }
    // yaml-cpp accepts an alias to a node that is still open (a cycle); a tree cannot.
    problems_.emplace_back(to_source_mark(mark),
                           "an alias cannot refer to a node that contains it");
    auto node = std::make_shared<YamlNode>();
    node->mark = to_source_mark(mark);
    add(node);
  }

  void OnScalar(const YAML::Mark& mark, const std::string& /*tag*/, YAML::anchor_t anchor,
                const std::string& value) override {
    auto node = std::make_shared<YamlNode>();
    node->kind = Kind::kScalar;
    node->mark = to_source_mark(mark);
    node->scalar = value;
    complete(node, anchor);
  }

  void OnSequenceStart(const YAML::Mark& mark, const std::string& /*tag*/, YAML::anchor_t anchor,
                       YAML::EmitterStyle::value /*style*/) override {
    open(Kind::kSequence, mark, anchor);
  }
  void OnSequenceEnd() override { close(); }

  void OnMapStart(const YAML::Mark& mark, const std::string& /*tag*/, YAML::anchor_t anchor,
                  YAML::EmitterStyle::value /*style*/) override {
    open(Kind::kMap, mark, anchor);
  }
  void OnMapEnd() override { close(); }

 private:
  struct Frame {
    std::shared_ptr<YamlNode> node;
    YAML::anchor_t anchor;
    YamlNodePtr key;  // map: a key waiting for its value
  };

  void open(Kind kind, const YAML::Mark& mark, YAML::anchor_t anchor) {
    auto node = std::make_shared<YamlNode>();
    node->kind = kind;
    node->mark = to_source_mark(mark);
    stack_.push_back({std::move(node), anchor, nullptr});
  }

  void close() {
    Frame frame = std::move(stack_.back());
    stack_.pop_back();
    complete(frame.node, frame.anchor);
  }

  void complete(YamlNodePtr node, YAML::anchor_t anchor) {
    if (anchor != YAML::NullAnchor) anchors_[anchor] = node;
    add(std::move(node));
  }

  void add(YamlNodePtr node) {
    if (stack_.empty()) {
      root_ = std::move(node);
      return;
    }
    Frame& parent = stack_.back();
    if (parent.node->kind == Kind::kSequence) {
      parent.node->items.push_back(std::move(node));
    } else if (!parent.key) {
      parent.key = std::move(node);
    } else {
      parent.node->entries.emplace_back(std::move(parent.key), std::move(node));
      parent.key = nullptr;
    }
  }

  std::vector<Frame> stack_;
  std::map<YAML::anchor_t, YamlNodePtr> anchors_;
  YamlNodePtr root_;
  SourceMark document_mark_;
  std::vector<std::pair<SourceMark, std::string>> problems_;
};

std::string format_size(uint64_t bytes) {
  for (const auto& [unit, suffix] :
       {std::pair{1ULL << 30, "g"}, {1ULL << 20, "m"}, {1ULL << 10, "k"}}) {
    if (bytes >= unit && bytes % unit == 0) return std::to_string(bytes / unit) + suffix;
  }
  return std::to_string(bytes);
}

bool is_variable_name(std::string_view name) {
  if (name.empty() || (name.front() >= '0' && name.front() <= '9')) return false;
  for (const char c : name) {
    const bool ok =
        (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
    if (!ok) return false;
  }
  return true;
}

// The quoted scalar that starts last in the text (its mark), if any: the only one
// that can have run to the end of the file for want of its closing quote.
SourceMark last_quoted_scalar(const YamlNodePtr& root, std::string_view text) {
  std::vector<size_t> line_start{0};
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\n') line_start.push_back(i + 1);
  }
  const auto quoted_at = [&](const SourceMark& m) {
    if (m.line < 1 || m.column < 1 || static_cast<size_t>(m.line) > line_start.size()) return false;
    const size_t at =
        line_start[static_cast<size_t>(m.line - 1)] + static_cast<size_t>(m.column - 1);
    return at < text.size() && (text[at] == '"' || text[at] == '\'');
  };
  SourceMark last;
  std::set<const YamlNode*> seen;  // aliases share nodes
  std::vector<const YamlNode*> todo{root.get()};
  while (!todo.empty()) {
    const YamlNode* node = todo.back();
    todo.pop_back();
    if (!node || !seen.insert(node).second) continue;
    if (node->kind == Kind::kScalar && quoted_at(node->mark) &&
        std::pair(node->mark.line, node->mark.column) > std::pair(last.line, last.column)) {
      last = node->mark;
    }
    for (const auto& item : node->items) todo.push_back(item.get());
    for (const auto& [key, value] : node->entries) {
      todo.push_back(key.get());
      todo.push_back(value.get());
    }
  }
  return last;
}

}  // namespace

YamlDocument parse_yaml(std::string_view text, const std::string& name) {
  YamlDocument doc;
  auto add_error = [&](SourceMark mark, std::string message) {
    doc.errors.push_back({name, mark.line, mark.column, std::move(message)});
  };
  std::istringstream in{std::string(text)};
  try {
    YAML::Parser parser(in);
    TreeBuilder first;
    if (!parser.HandleNextDocument(first)) return doc;
    doc.root = first.root();
    for (const auto& [mark, message] : first.problems()) add_error(mark, message);
    // yaml-cpp lets a string whose closing quote is missing run to the end of the file.
    if (auto unclosed = unclosed_quote_at(text, last_quoted_scalar(doc.root, text))) {
      add_error(unclosed->mark, unclosed->message);
      return doc;
    }
    TreeBuilder second;
    if (parser.HandleNextDocument(second) && second.root() && second.root()->kind != Kind::kNull) {
      add_error(second.document_mark(),
                "only one YAML document is allowed; remove the second '---' and what follows");
    }
  } catch (const YAML::Exception& e) {
    // Where the mistake is and what to write, rather than where yaml-cpp stopped.
    const SyntaxError explained = explain_syntax_error(text, to_source_mark(e.mark), e.msg);
    add_error(explained.mark, explained.message);
  }
  return doc;
}

std::optional<std::string> expand_env(std::string_view text, std::string* error) {
  std::string out;
  out.reserve(text.size());
  size_t i = 0;
  while (i < text.size()) {
    if (text.substr(i, 3) == "$${") {
      out += "${";
      i += 3;
      continue;
    }
    if (text.substr(i, 2) != "${") {
      out += text[i++];
      continue;
    }
    const size_t close = text.find('}', i + 2);
    if (close == std::string_view::npos) {
      if (error) *error = "unterminated '${' (expected '}')";
      return std::nullopt;
    }
    const std::string_view body = text.substr(i + 2, close - i - 2);
    const size_t separator = body.find(":-");
    const std::string var_name(body.substr(0, separator));
    if (!is_variable_name(var_name)) {
      if (error) *error = "invalid environment variable name '" + var_name + "'";
      return std::nullopt;
    }
    const char* value = std::getenv(var_name.c_str());
    if (separator != std::string_view::npos) {
      if (value && *value) {
        out += value;
      } else {
        out += body.substr(separator + 2);
      }
    } else if (value) {
      out += value;
    } else {
      if (error) {
        *error = "environment variable '" + var_name + "' is not set (write ${" + var_name +
                 ":-default} to give a default)";
      }
      return std::nullopt;
    }
    i = close + 1;
  }
  return out;
}

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
