// The termination states of the access log (doc/operations.md, "Termination
// states") against the code that sets them: every letter the http and tcp
// sessions can write has a row in the doc's tables, and every row is a letter
// they write. The sessions are read as text, the way a reviewer greps them, so
// that a new code cannot be added without its documentation.

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace weir {
namespace {

std::string read_source(const std::string& relative) {
  std::ifstream in(std::string(WEIR_SOURCE_DIR) + "/" + relative);
  EXPECT_TRUE(in) << "cannot read " << relative;
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Every source file of the http and tcp sessions (worker/http/, worker/tcp/).
std::vector<std::string> session_sources() {
  std::vector<std::string> out;
  for (const char* dir : {"worker/http", "worker/tcp"}) {
    for (const auto& e :
         std::filesystem::directory_iterator(std::string(WEIR_SOURCE_DIR) + "/" + dir)) {
      if (e.path().extension() == ".cpp") out.push_back(dir + ("/" + e.path().filename().string()));
    }
  }
  EXPECT_GE(out.size(), 3u);
  return out;
}

struct Letters {
  std::set<char> first, second;  // who ended it, and in which phase
};

// The character literals ('X') in text.
std::set<char> char_literals(const std::string& text) {
  std::set<char> out;
  static const std::regex kChar(R"('([A-Za-z])')");
  for (auto it = std::sregex_iterator(text.begin(), text.end(), kChar);
       it != std::sregex_iterator(); ++it) {
    out.insert((*it)[1].str()[0]);
  }
  return out;
}

void add(std::set<char>& to, const std::set<char>& from) {
  to.insert(from.begin(), from.end());
}

// What the sessions write: "XY" given to send_error/respond/
// server_failed_before_response; term_[0] = 'X'; term_[1] = <expression>;
// finish(<who>, <phase>).
Letters letters_in_code() {
  Letters out;
  static const std::regex kCall(
      R"re((send_error|respond|server_failed_before_response)\([^;]*"([A-Za-z])([A-Za-z])"\))re");
  static const std::regex kFirst(R"(term_\[0\] = ([^;]*);)");
  static const std::regex kSecond(R"(term_\[1\] = ([^;]*);)");
  static const std::regex kFinish(R"(\bfinish\(([^,;]*), ([^;]*)\);)");
  for (const std::string& file : session_sources()) {
    const std::string text = read_source(file);
    for (auto it = std::sregex_iterator(text.begin(), text.end(), kCall);
         it != std::sregex_iterator(); ++it) {
      out.first.insert((*it)[2].str()[0]);
      out.second.insert((*it)[3].str()[0]);
    }
    for (auto it = std::sregex_iterator(text.begin(), text.end(), kFirst);
         it != std::sregex_iterator(); ++it) {
      add(out.first, char_literals((*it)[1].str()));
    }
    for (auto it = std::sregex_iterator(text.begin(), text.end(), kSecond);
         it != std::sregex_iterator(); ++it) {
      add(out.second, char_literals((*it)[1].str()));
    }
    for (auto it = std::sregex_iterator(text.begin(), text.end(), kFinish);
         it != std::sregex_iterator(); ++it) {
      add(out.first, char_literals((*it)[1].str()));
      add(out.second, char_literals((*it)[2].str()));
    }
  }
  return out;
}

// The rows "| `X` | meaning |" of the two tables under "### Termination states".
Letters letters_in_doc() {
  Letters out;
  const std::string text = read_source("doc/operations.md");
  size_t start = text.find("### Termination states");
  EXPECT_NE(start, std::string::npos);
  if (start == std::string::npos) return out;
  size_t end = text.find("\n## ", start);
  std::istringstream section(text.substr(start, end - start));
  std::set<char>* table = nullptr;
  static const std::regex kRow(R"(^\| `([A-Za-z])` \|)");
  for (std::string line; std::getline(section, line);) {
    if (line.rfind("| first |", 0) == 0) table = &out.first;
    if (line.rfind("| second |", 0) == 0) table = &out.second;
    std::smatch m;
    if (table && std::regex_search(line, m, kRow)) table->insert(m[1].str()[0]);
  }
  return out;
}

std::string letters(const std::set<char>& s) {
  return std::string(s.begin(), s.end());
}

TEST(TerminationStates, EveryCodeTheSessionsWriteIsDocumentedAndNoOther) {
  const Letters code = letters_in_code();
  const Letters doc = letters_in_doc();
  // The scan found what is known to be there (it cannot pass by finding nothing).
  for (char c : std::string("CSPLcsK")) EXPECT_TRUE(code.first.count(c)) << c;
  for (char c : std::string("RQCHDT")) EXPECT_TRUE(code.second.count(c)) << c;
  EXPECT_EQ(letters(code.first), letters(doc.first))
      << "first letters: the code writes " << letters(code.first) << ", doc/operations.md lists "
      << letters(doc.first);
  EXPECT_EQ(letters(code.second), letters(doc.second))
      << "second letters: the code writes " << letters(code.second) << ", doc/operations.md lists "
      << letters(doc.second);
}

}  // namespace
}  // namespace weir
