#include "common/config/load/yaml_tree.h"

#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/exceptions.h>
#include <yaml-cpp/mark.h>
#include <yaml-cpp/parser.h>

#include <cstdlib>
#include <map>
#include <set>
#include <sstream>

#include "common/config/load/yaml_errors.h"

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

}  // namespace weir::config_detail
