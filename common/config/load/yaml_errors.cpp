#include "common/config/load/yaml_errors.h"

#include <algorithm>
#include <vector>

namespace weir::config_detail {
namespace {

// yaml-cpp's messages (yaml-cpp/exceptions.h, ErrorMsg), as far as they are explained.
constexpr std::string_view kEndOfMap = "end of map not found";
constexpr std::string_view kEndOfMapFlow = "end of map flow not found";
constexpr std::string_view kEndOfSeq = "end of sequence not found";
constexpr std::string_view kEndOfSeqFlow = "end of sequence flow not found";
constexpr std::string_view kFlowEnd = "illegal flow end";
constexpr std::string_view kMapValue = "illegal map value";
constexpr std::string_view kBlockEntry = "illegal block entry";
constexpr std::string_view kUnknownToken = "unknown token";
constexpr std::string_view kUnknownEscape = "unknown escape character: ";
constexpr std::string_view kUnknownAnchor = "the referenced anchor is not defined";
constexpr std::string_view kTabInIndentation = "illegal tab when looking for indentation";

bool is_blank(char c) {
  return c == ' ' || c == '\t';
}

bool is_name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '.' || c == '-';
}

std::string column_text(const SourceMark& m) {
  return "line " + std::to_string(m.line) + " column " + std::to_string(m.column);
}

std::string closer_of(char open) {
  return open == '[' ? "]" : "}";
}

// What the scanner learnt about one line.
struct LineInfo {
  std::string_view text;    // without its '\n'
  int indent = 0;           // spaces before the first other character
  int tab_column = 0;       // a tab in the indentation (0: none)
  bool content = false;     // something other than blanks and a comment
  bool continued = false;   // starts inside a block scalar, a quoted string or a flow collection
  bool entry = false;       // a list entry ("- ...")
  std::string key;          // the block-map key the line starts with, if any
  int key_column = 0;       // where that key starts
  std::string value;        // the key's value when it starts on this line (a comment cut off)
  int glued_colon = 0;      // column of the ':' in "key:value" written without a space
  std::string glued_key;    // that "key"
  std::string glued_value;  // and that "value"
};

struct Quote {
  char quote = '"';
  SourceMark open;
  SourceMark close;  // line 0: never closed
};

struct Scan {
  std::vector<LineInfo> lines;                          // lines[0] is line 1
  std::vector<std::pair<char, SourceMark>> open_flows;  // never closed, innermost last
  std::optional<SyntaxError> bad_closer;                // the first `]` or `}` that does not fit
  std::vector<Quote> long_quotes;  // quoted strings that span lines or never close
  std::optional<std::pair<SourceMark, Quote>> text_after_quote;      // the first one
  std::optional<std::pair<SourceMark, SourceMark>> text_after_flow;  // and where the flow closed
};

// "key: value", "- key: value", "key:value" at the start of a line in block context.
void read_key(LineInfo& li) {
  std::string_view t = li.text;
  size_t p = static_cast<size_t>(li.indent);
  while (p < t.size() && is_blank(t[p])) ++p;
  if (p + 1 < t.size() && t[p] == '-' && is_blank(t[p + 1])) {
    li.entry = true;
    p += 2;
    while (p < t.size() && is_blank(t[p])) ++p;
  } else if (p + 1 == t.size() && t[p] == '-') {
    li.entry = true;
    return;
  }
  const size_t start = p;
  if (p >= t.size() || !is_name_char(t[p])) return;
  while (p < t.size() && is_name_char(t[p])) ++p;
  if (p >= t.size() || t[p] != ':') return;
  const std::string_view name = t.substr(start, p - start);
  if (p + 1 == t.size() || is_blank(t[p + 1])) {
    li.key = std::string(name);
    li.key_column = static_cast<int>(start) + 1;
    std::string_view rest = t.substr(p + 1);
    const size_t comment = rest.find(" #");
    if (comment != std::string_view::npos) rest = rest.substr(0, comment);
    const size_t first = rest.find_first_not_of(" \t");
    const size_t last = rest.find_last_not_of(" \t");
    if (first != std::string_view::npos && rest[first] != '#') {
      li.value = std::string(rest.substr(first, last - first + 1));
    }
    return;
  }
  // "name:x" with no "key: " anywhere after it: a space forgotten after the colon.
  // An address ("127.0.0.1:80") starts with a digit, a URL has "//".
  const char first = t[start];
  const bool word = (first >= 'a' && first <= 'z') || (first >= 'A' && first <= 'Z');
  if (!word || t[p + 1] == '/' || t[p + 1] == ':') return;
  std::string_view rest = t.substr(p + 1);
  if (rest.find(": ") != std::string_view::npos || rest.back() == ':') return;
  const size_t comment = rest.find(" #");
  if (comment != std::string_view::npos) rest = rest.substr(0, comment);
  while (!rest.empty() && is_blank(rest.back())) rest.remove_suffix(1);
  li.glued_colon = static_cast<int>(p) + 1;
  li.glued_key = std::string(name);
  li.glued_value = std::string(rest);
}

// Walks the text the way a YAML reader does, as far as the explanations need:
// quoted strings, flow collections, comments, block scalars.
Scan scan(std::string_view text) {
  Scan s;
  std::vector<std::pair<char, SourceMark>> flows;
  std::optional<Quote> quote;    // a quoted string still open
  int block_scalar_parent = -1;  // >= 0: in a block scalar under a line of this indentation
  bool node_start = true;        // the next character may start a node
  bool after_quote = false;      // a quoted string just closed on this line
  Quote last_closed;             // the last quoted string that closed
  SourceMark after_flow;         // where the last flow collection closed
  size_t begin = 0;
  int number = 0;
  while (begin < text.size()) {
    size_t end = text.find('\n', begin);
    if (end == std::string_view::npos) end = text.size();
    ++number;
    LineInfo li;
    li.text = text.substr(begin, end - begin);
    if (!li.text.empty() && li.text.back() == '\r') li.text.remove_suffix(1);
    const std::string_view t = li.text;
    size_t p = 0;
    while (p < t.size() && t[p] == ' ') ++p;
    li.indent = static_cast<int>(p);
    while (p < t.size() && is_blank(t[p])) {
      if (t[p] == '\t' && li.tab_column == 0) li.tab_column = static_cast<int>(p) + 1;
      ++p;
    }
    li.content = p < t.size() && t[p] != '#';
    if (!li.content) li.tab_column = 0;
    if (block_scalar_parent >= 0) {
      if (!li.content || li.indent > block_scalar_parent) {
        li.continued = true;
        li.tab_column = 0;
        s.lines.push_back(std::move(li));
        begin = end + 1;
        continue;
      }
      block_scalar_parent = -1;
    }
    li.continued = quote.has_value() || !flows.empty();
    if (li.continued) {
      li.tab_column = 0;
    } else {
      node_start = true;
      if (li.content) read_key(li);
    }
    after_quote = false;
    for (size_t i = quote ? 0 : p; i < t.size();) {
      const char c = t[i];
      const SourceMark here{number, static_cast<int>(i) + 1};
      if (quote) {
        if (quote->quote == '"' && c == '\\') {
          i += 2;
          continue;
        }
        if (c == quote->quote) {
          if (c == '\'' && i + 1 < t.size() && t[i + 1] == '\'') {
            i += 2;
            continue;
          }
          quote->close = here;
          if (quote->open.line != number) s.long_quotes.push_back(*quote);
          last_closed = *quote;
          after_quote = true;
          quote.reset();
          node_start = false;
        }
        ++i;
        continue;
      }
      if (is_blank(c)) {
        ++i;
        continue;
      }
      if (c == '#' && (i == 0 || is_blank(t[i - 1]))) break;
      const char next = i + 1 < t.size() ? t[i + 1] : ' ';
      const bool next_blank = is_blank(next);
      if (after_flow.line == number && c != ']' && c != '}') {
        // Only a ':' (the collection was a key) may follow on its line.
        if (c != ':' && !s.text_after_flow) s.text_after_flow = std::pair(here, after_flow);
        after_flow = {};
      }
      if (after_quote) {
        after_quote = false;
        const bool fits = c == ':' || (!flows.empty() && (c == ',' || c == ']' || c == '}'));
        if (!fits && !s.text_after_quote) s.text_after_quote = std::pair(here, last_closed);
      }
      if (node_start) {
        if (c == '"' || c == '\'') {
          quote = Quote{c, here, {}};
          node_start = false;
          ++i;
          continue;
        }
        if (c == '[' || c == '{') {
          flows.emplace_back(c, here);
          ++i;
          continue;
        }
        if (flows.empty() && c == '-' && next_blank) {
          ++i;
          continue;
        }
        if (flows.empty() && (c == '|' || c == '>')) {
          block_scalar_parent = li.indent;
          break;
        }
        if (c == '&' || c == '!') {
          while (i < t.size() && !is_blank(t[i])) ++i;
          continue;
        }
        if (c == '?' && next_blank) {
          ++i;
          continue;
        }
      }
      if (c == ']' || c == '}') {
        if (!flows.empty()) {
          const auto [open, at] = flows.back();
          if (std::string(1, c) != closer_of(open) && !s.bad_closer) {
            s.bad_closer =
                SyntaxError{here, "this `" + std::string(1, c) + "` does not close the `" +
                                      std::string(1, open) + "` opened at " + column_text(at) +
                                      ": write `" + closer_of(open) + "` here, or close the `" +
                                      std::string(1, open) + "` first"};
          }
          flows.pop_back();
          if (flows.empty()) after_flow = here;
        } else if ((node_start || after_flow.line == number) && !s.bad_closer) {
          s.bad_closer = SyntaxError{here, "this `" + std::string(1, c) + "` closes nothing: no `" +
                                               (c == ']' ? "[" : "{") + "` is open here"};
        }
        node_start = false;
        ++i;
        continue;
      }
      if (!flows.empty() && (c == ',' || c == '[' || c == '{')) {
        if (c != ',') flows.emplace_back(c, here);
        node_start = true;
        ++i;
        continue;
      }
      if (c == ':' && (next_blank || i + 1 == t.size() ||
                       (!flows.empty() && (next == ',' || next == ']' || next == '}')))) {
        node_start = true;
        ++i;
        continue;
      }
      node_start = false;
      ++i;
    }
    s.lines.push_back(std::move(li));
    begin = end + 1;
  }
  s.open_flows = std::move(flows);
  if (quote) s.long_quotes.push_back(*quote);
  return s;
}

// The line before `line` that holds something, or nullptr.
const LineInfo* previous_content(const Scan& s, int line) {
  for (int n = line - 1; n >= 1; --n) {
    const LineInfo& li = s.lines[static_cast<size_t>(n - 1)];
    if (li.content && !li.continued) return &li;
  }
  return nullptr;
}

// The indentations of the block-map keys that are still open at `line`.
std::vector<int> open_indents(const Scan& s, int line) {
  std::vector<int> stack;
  for (int n = 1; n < line; ++n) {
    const LineInfo& li = s.lines[static_cast<size_t>(n - 1)];
    if (!li.content || li.continued) continue;
    const int at = li.key.empty() ? li.indent : li.key_column - 1;
    while (!stack.empty() && stack.back() >= at) stack.pop_back();
    if (!li.key.empty() && li.entry) stack.push_back(li.indent);
    stack.push_back(at);
  }
  return stack;
}

std::string list_of(const std::vector<int>& indents) {
  std::string out;
  for (size_t i = 0; i < indents.size(); ++i) {
    if (i) out += i + 1 == indents.size() ? " or " : ", ";
    out += std::to_string(indents[i]);
  }
  return out;
}

std::string spaces(int n) {
  return std::to_string(n) + (n == 1 ? " space" : " spaces");
}

std::optional<SyntaxError> explain_indentation(const Scan& s, int line,
                                               std::string_view parser_message) {
  if (line < 1 || line > static_cast<int>(s.lines.size())) return std::nullopt;
  const LineInfo& li = s.lines[static_cast<size_t>(line - 1)];
  if (!li.content || li.continued) return std::nullopt;
  const SourceMark start{line, li.indent + 1};
  const LineInfo* above = previous_content(s, line);
  const std::string what = li.key.empty() ? "this line" : "'" + li.key + "'";
  // Deeper than a key that already has its value on its line.
  if (above && !above->key.empty() && !above->value.empty() && li.indent > above->key_column - 1) {
    return SyntaxError{start, "bad indentation: " + what + " is indented " + spaces(li.indent) +
                                  ", deeper than '" + above->key + "' on the line above (" +
                                  std::to_string(above->key_column - 1) +
                                  "), which already has a value ('" + above->value + "'): indent " +
                                  what + " like '" + above->key + "', or like a key further up"};
  }
  // "key" without its colon, above the lines that were to be its value.
  if (above && li.indent > above->indent && above->key.empty() && !above->entry &&
      parser_message == kMapValue) {
    const std::string_view word = above->text.substr(static_cast<size_t>(above->indent));
    if (!word.empty() && std::all_of(word.begin(), word.end(), is_name_char)) {
      const int line_above = static_cast<int>(above - s.lines.data()) + 1;
      return SyntaxError{{line_above, above->indent + static_cast<int>(word.size()) + 1},
                         "a ':' is missing after '" + std::string(word) + "' (write '" +
                             std::string(word) + ":') to hold the lines below it"};
    }
  }
  if (above && li.indent == above->indent && above->entry && !li.entry) {
    const std::string_view rest = li.text.substr(static_cast<size_t>(li.indent));
    // "-item": the space after the dash is missing.
    if (rest.size() > 1 && rest[0] == '-' && !is_blank(rest[1])) {
      return SyntaxError{
          {line, li.indent + 2},
          "a space is missing after '-' (write '- " + std::string(rest.substr(1)) + "')"};
    }
  }
  // A key among list entries, or an entry among keys, at the same indentation.
  if (above && li.indent == above->indent && li.entry != above->entry &&
      (parser_message == kEndOfMap || parser_message == kBlockEntry ||
       parser_message == kEndOfSeq)) {
    if (li.entry) {
      return SyntaxError{start,
                         "a list entry ('- ') where the lines above at the same indentation are "
                         "keys of a map: a map and a list cannot be mixed at one level; indent "
                         "the list under a key"};
    }
    if (li.key.empty()) {
      return SyntaxError{start,
                         "this line is not a list entry like the lines above at the same "
                         "indentation: write '- " +
                             std::string(li.text.substr(static_cast<size_t>(li.indent))) + "'"};
    }
    return SyntaxError{start, what +
                                  " is a key where the lines above at the same indentation are "
                                  "list entries ('- '): a list and a map cannot be mixed at one "
                                  "level; write '- " +
                                  li.key +
                                  ": ...' for a map inside the list, or indent it under "
                                  "a key"};
  }
  // An indentation that lines up with no key above.
  const std::vector<int> open = open_indents(s, line);
  if (!open.empty() && std::find(open.begin(), open.end(), li.indent) == open.end() &&
      li.indent < open.back()) {
    return SyntaxError{start, "bad indentation: " + what + " is indented " + spaces(li.indent) +
                                  ", which lines up with no key above it (they are at " +
                                  list_of(open) + "): indent it like the key it belongs with"};
  }
  return std::nullopt;
}

}  // namespace

std::string missing_space_hint(std::string_view scalar) {
  LineInfo li;
  li.text = scalar;
  read_key(li);
  if (li.glued_colon == 0) return "";
  return "; a space is missing after ':' (write '" + li.glued_key + ": " + li.glued_value + "')";
}

std::optional<SyntaxError> unclosed_quote_at(std::string_view text, SourceMark mark) {
  if (mark.line < 1 || mark.column < 1) return std::nullopt;
  size_t pos = 0;
  for (int line = 1; line < mark.line; ++line) {
    pos = text.find('\n', pos);
    if (pos == std::string_view::npos) return std::nullopt;
    ++pos;
  }
  pos += static_cast<size_t>(mark.column - 1);
  if (pos >= text.size() || (text[pos] != '"' && text[pos] != '\'')) return std::nullopt;
  const char quote = text[pos];
  for (size_t i = pos + 1; i < text.size(); ++i) {
    if (quote == '"' && text[i] == '\\') {
      ++i;
    } else if (text[i] == quote) {
      if (quote == '\'' && i + 1 < text.size() && text[i + 1] == '\'') {
        ++i;
        continue;
      }
      return std::nullopt;
    }
  }
  return SyntaxError{mark, std::string("this `") + quote +
                               "` is never closed: the string runs to the end of the file; add "
                               "the closing `" +
                               quote + "`"};
}

SyntaxError explain_syntax_error(std::string_view text, SourceMark parser_mark,
                                 std::string_view parser_message) {
  const Scan s = scan(text);
  const int lines = static_cast<int>(s.lines.size());
  int line = parser_mark.line;
  if (line < 1 || line > lines) line = lines;
  // A tab in the indentation up to where the parser stopped: YAML never allows it.
  for (int n = 1; n <= line && n <= lines; ++n) {
    const LineInfo& li = s.lines[static_cast<size_t>(n - 1)];
    if (li.tab_column > 0) {
      return {{n, li.tab_column}, "a tab is not allowed for indentation; indent with spaces"};
    }
  }
  if (parser_message == kTabInIndentation) {
    return {parser_mark, "a tab is not allowed for indentation; indent with spaces"};
  }
  if (parser_message == kFlowEnd && s.bad_closer) return *s.bad_closer;
  if ((parser_message == kEndOfSeqFlow || parser_message == kEndOfMapFlow) &&
      !s.open_flows.empty()) {
    const auto& [open, at] = s.open_flows.back();
    return {at, "this `" + std::string(1, open) + "` is never closed: a `" + closer_of(open) +
                    "` is missing"};
  }
  // A quoted string that runs on to the line where the parser stopped: its
  // closing quote is missing on its own line.
  for (const Quote& q : s.long_quotes) {
    if (q.close.line == 0) {
      return {q.open, std::string("this `") + q.quote +
                          "` is never closed: the string runs to the end of the file; add the "
                          "closing `" +
                          q.quote + "`"};
    }
    if (q.open.line < line && q.close.line >= line) {
      return {q.open, std::string("this `") + q.quote +
                          "` is not closed on its line: the string runs on to " +
                          column_text(q.close) + "; add the closing `" + q.quote + "`"};
    }
  }
  if (s.text_after_quote && s.text_after_quote->first.line == line) {
    const auto& [at, q] = *s.text_after_quote;
    return {at, std::string("unexpected text after the closing `") + q.quote +
                    "` of the string at " + column_text(q.open) +
                    ": put the whole value inside the quotes"};
  }
  if (s.text_after_flow && s.text_after_flow->first.line == line) {
    const auto& [at, closed] = *s.text_after_flow;
    const std::string closer(
        1,
        s.lines[static_cast<size_t>(closed.line - 1)].text[static_cast<size_t>(closed.column - 1)]);
    return {at, "unexpected text after the `" + closer + "` at " + column_text(closed) +
                    " that closes the value: move it inside the brackets, or remove it"};
  }
  // "key:value" on this line or on the lines the parser took as one with it.
  if (parser_message == kMapValue || parser_message == kEndOfMap) {
    for (int n = line; n >= 1 && n > line - 3; --n) {
      const LineInfo& li = s.lines[static_cast<size_t>(n - 1)];
      if (li.glued_colon > 0) {
        return {
            {n, li.glued_colon + 1},
            "a space is missing after ':' (write '" + li.glued_key + ": " + li.glued_value + "')"};
      }
      if (n < line && (li.content && !li.key.empty())) break;
    }
  }
  if (parser_message == kMapValue && line >= 1 && line <= lines) {
    const LineInfo& li = s.lines[static_cast<size_t>(line - 1)];
    // "global: threads: 2": a map cannot start on the line of its key.
    if (!li.key.empty() && parser_mark.column > li.key_column + static_cast<int>(li.key.size()) &&
        li.value.find(": ") != std::string::npos) {
      return {{line, li.key_column + static_cast<int>(li.key.size()) + 2},
              "a map cannot start on the line of its key '" + li.key + "': put '" + li.value +
                  "' on the next line, indented under '" + li.key + "', or write it as {" +
                  li.value + "}"};
    }
  }
  if (parser_message == kBlockEntry && line >= 1 && line <= lines) {
    const LineInfo& li = s.lines[static_cast<size_t>(line - 1)];
    if (!li.key.empty() && !li.value.empty() && li.value[0] == '-') {
      std::string item = li.value.substr(1);
      item.erase(0, item.find_first_not_of(" \t"));
      return {parser_mark, "a list cannot start on the line of its key '" + li.key + "': put '" +
                               li.value + "' on the next line, indented under '" + li.key +
                               "', or write it as [" + item + "]"};
    }
  }
  if (parser_message == kMapValue || parser_message == kEndOfMap || parser_message == kEndOfSeq ||
      parser_message == kBlockEntry) {
    if (auto indentation = explain_indentation(s, line, parser_message)) return *indentation;
  }
  if (parser_message == kUnknownToken && line >= 1 && line <= lines && parser_mark.column >= 1) {
    const std::string_view t = s.lines[static_cast<size_t>(line - 1)].text;
    const size_t at = static_cast<size_t>(parser_mark.column - 1);
    if (at < t.size()) {
      size_t end = at;
      while (end < t.size() && t[end] != '#') ++end;
      std::string value(t.substr(at, end - at));
      while (!value.empty() && is_blank(value.back())) value.pop_back();
      return {parser_mark, "a value cannot start with '" + std::string(1, t[at]) +
                               "' unless it is quoted: write '" + value + "'"};
    }
  }
  if (parser_message.substr(0, kUnknownEscape.size()) == kUnknownEscape && line >= 1 &&
      line <= lines) {
    const std::string escape(parser_message.substr(kUnknownEscape.size()));
    const std::string_view t = s.lines[static_cast<size_t>(line - 1)].text;
    const size_t end = std::min(t.size(), static_cast<size_t>(std::max(parser_mark.column, 1)));
    const size_t backslash = t.substr(0, end).rfind('\\');
    const SourceMark at = backslash == std::string_view::npos
                              ? parser_mark
                              : SourceMark{line, static_cast<int>(backslash) + 1};
    return {at, "unknown escape '\\" + escape +
                    "' in a double-quoted string: write '\\\\' for a backslash, or use single "
                    "quotes, in which a backslash is an ordinary character"};
  }
  if (parser_message == kUnknownAnchor && line >= 1 && line <= lines) {
    const std::string_view t = s.lines[static_cast<size_t>(line - 1)].text;
    size_t star = t.rfind('*', static_cast<size_t>(std::max(parser_mark.column, 1)));
    if (star != std::string_view::npos) {
      size_t end = star + 1;
      while (end < t.size() && !is_blank(t[end]) && t[end] != ',' && t[end] != ']' &&
             t[end] != '}') {
        ++end;
      }
      const std::string name(t.substr(star + 1, end - star - 1));
      return {{line, static_cast<int>(star) + 1},
              "'*" + name + "' refers to no anchor: define '&" + name +
                  "' on a value before this line"};
    }
  }
  return {parser_mark, "invalid YAML: " + std::string(parser_message)};
}

}  // namespace weir::config_detail
