#include "common/base/command_line.h"

namespace weir::command_line {
namespace {

bool blank(char c) {
  return c == ' ' || c == '\t';
}

}  // namespace

std::optional<std::string> take_line(std::string* pending, bool eof) {
  std::string line;
  size_t nl = pending->find('\n');
  if (nl == std::string::npos) {
    if (!eof || pending->empty()) return std::nullopt;
    line.swap(*pending);
  } else {
    line = pending->substr(0, nl);
    pending->erase(0, nl + 1);
  }
  if (!line.empty() && line.back() == '\r') line.pop_back();
  return line;
}

std::vector<std::string_view> split_commands(std::string_view line) {
  std::vector<std::string_view> out;
  size_t start = 0;
  while (start <= line.size()) {
    size_t semi = line.find(';', start);
    size_t end = semi == std::string_view::npos ? line.size() : semi;
    size_t b = start, e = end;
    while (b < e && blank(line[b])) ++b;
    while (e > b && blank(line[e - 1])) --e;
    if (e > b) out.push_back(line.substr(b, e - b));
    if (semi == std::string_view::npos) break;
    start = semi + 1;
  }
  return out;
}

std::vector<std::string_view> split_words(std::string_view command) {
  std::vector<std::string_view> words;
  size_t i = 0;
  while (i < command.size()) {
    while (i < command.size() && blank(command[i])) ++i;
    size_t start = i;
    while (i < command.size() && !blank(command[i])) ++i;
    if (i > start) words.push_back(command.substr(start, i - start));
  }
  return words;
}

size_t match_name(std::string_view name, const std::vector<std::string_view>& words) {
  std::vector<std::string_view> parts = split_words(name);
  if (parts.empty() || parts.size() > words.size()) return 0;
  for (size_t i = 0; i < parts.size(); ++i)
    if (parts[i] != words[i]) return 0;
  return parts.size();
}

}  // namespace weir::command_line
