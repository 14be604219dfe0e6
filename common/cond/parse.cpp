// The parser of the condition language (see condition.h): tests, conditions,
// sample expressions and value templates, with the position of every error.
// Fetches are looked up in their registry (fetch.h); matchers and converters
// are the language's own.

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>

#include "common/cond/condition.h"
#include "common/cond/stick_words.h"
#include "common/cond/text.h"

namespace weir::cond {
namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = lower_char(c);
  return out;
}

constexpr std::pair<std::string_view, Matcher> kMatchers[] = {
    {"str", Matcher::kExact},   {"beg", Matcher::kBeg},   {"end", Matcher::kEnd},
    {"sub", Matcher::kSub},     {"dir", Matcher::kDir},   {"dom", Matcher::kDom},
    {"reg", Matcher::kReg},     {"ip", Matcher::kIp},     {"int", Matcher::kInt},
    {"found", Matcher::kFound}, {"bool", Matcher::kBool},
};

std::optional<Matcher> find_matcher(std::string_view name) {
  for (auto [n, m] : kMatchers)
    if (n == name) return m;
  return std::nullopt;
}

// ---------------------------------------------------------------- tokens

struct Tok {
  std::string text;
  size_t offset = 0;
  bool quoted = false;
};

// Splits a test into words: blanks separate them, quotes ("..." with \ escapes,
// or '...') group, and parentheses keep a fetch's arguments in its word.
bool split_words(std::string_view s, size_t base, std::vector<Tok>* out, ParseError* error) {
  size_t i = 0;
  while (i < s.size()) {
    if (s[i] == ' ' || s[i] == '\t') {
      ++i;
      continue;
    }
    Tok t;
    t.offset = base + i;
    if (s[i] == '"' || s[i] == '\'') {
      char q = s[i++];
      t.quoted = true;
      bool closed = false;
      while (i < s.size()) {
        char c = s[i++];
        if (c == q) {
          closed = true;
          break;
        }
        if (q == '"' && c == '\\' && i < s.size()) c = s[i++];
        t.text += c;
      }
      if (!closed) {
        *error = {"unterminated quoted value", t.offset};
        return false;
      }
    } else {
      // Only the first word (the fetch and its converters) has arguments.
      const bool fetch_word = out->empty();
      int depth = 0;
      while (i < s.size() && (depth > 0 || (s[i] != ' ' && s[i] != '\t'))) {
        if (fetch_word && s[i] == '(') ++depth;
        if (fetch_word && s[i] == ')') --depth;
        t.text += s[i++];
      }
      if (depth != 0) {
        *error = {"unbalanced parentheses in '" + t.text + "'", t.offset};
        return false;
      }
    }
    out->push_back(std::move(t));
  }
  return true;
}

// "name(a, b)" -> name and trimmed args; false on a malformed call.
bool split_call(std::string_view s, std::string* name, std::vector<std::string>* args) {
  size_t open = s.find('(');
  if (open == std::string_view::npos) {
    *name = std::string(s);
    return true;
  }
  if (s.back() != ')') return false;
  *name = std::string(s.substr(0, open));
  std::string_view inner = s.substr(open + 1, s.size() - open - 2);
  size_t pos = 0;
  while (pos <= inner.size()) {
    size_t comma = inner.find(',', pos);
    std::string_view a =
        inner.substr(pos, comma == std::string_view::npos ? inner.npos : comma - pos);
    while (!a.empty() && (a.front() == ' ' || a.front() == '\t')) a.remove_prefix(1);
    while (!a.empty() && (a.back() == ' ' || a.back() == '\t')) a.remove_suffix(1);
    args->emplace_back(a);
    if (comma == std::string_view::npos) break;
    pos = comma + 1;
  }
  return true;
}

// Splits "a(x,y),b,c(z)" at the commas outside parentheses.
std::vector<std::pair<std::string, size_t>> split_chain(std::string_view s) {
  std::vector<std::pair<std::string, size_t>> parts;
  int depth = 0;
  size_t start = 0;
  for (size_t i = 0; i <= s.size(); ++i) {
    if (i == s.size() || (s[i] == ',' && depth == 0)) {
      parts.emplace_back(std::string(s.substr(start, i - start)), start);
      start = i + 1;
      continue;
    }
    if (s[i] == '(') ++depth;
    if (s[i] == ')') --depth;
  }
  return parts;
}

// Calls fn(line) for every line of a value or map file, without its leading
// and trailing blanks (and '\r'); blank lines and '#' comments are skipped.
template <typename Fn>
void each_entry_line(std::istream& in, Fn fn) {
  std::string line;
  while (std::getline(in, line)) {
    std::string_view l(line);
    while (!l.empty() && (l.back() == '\r' || l.back() == ' ' || l.back() == '\t'))
      l.remove_suffix(1);
    while (!l.empty() && (l.front() == ' ' || l.front() == '\t')) l.remove_prefix(1);
    if (!l.empty() && l.front() != '#') fn(l);
  }
}

std::shared_ptr<const MapFile> load_map(const std::string& path, FileCache& files,
                                        std::string* error) {
  if (auto it = files.maps.find(path); it != files.maps.end()) return it->second;
  std::ifstream in(path);
  if (!in) {
    *error = "cannot read map file " + path + ": " + std::strerror(errno);
    return nullptr;
  }
  auto m = std::make_shared<MapFile>();
  m->path = path;
  each_entry_line(in, [&](std::string_view l) {
    size_t sp = l.find_first_of(" \t");
    std::string key(l.substr(0, sp));
    std::string_view value = sp == std::string_view::npos ? std::string_view() : l.substr(sp);
    while (!value.empty() && (value.front() == ' ' || value.front() == '\t'))
      value.remove_prefix(1);
    m->entries.emplace(std::move(key), std::string(value));  // the first entry of a key wins
  });
  files.maps[path] = m;
  return m;
}

}  // namespace

bool read_list_file(const std::string& path, std::vector<std::string>* out, std::string* error) {
  std::ifstream in(path);
  if (!in) {
    *error = "cannot read value file " + path + ": " + std::strerror(errno);
    return false;
  }
  each_entry_line(in, [out](std::string_view l) { out->emplace_back(l); });
  return true;
}

// ---------------------------------------------------------------- parsing

class Parser {
 public:
  Parser(std::string_view text, FileCache& files, ParseError* error)
      : text_(text), files_(files), error_(error) {}

  bool fail(std::string message, size_t offset) {
    if (!failed_) *error_ = {std::move(message), offset};
    failed_ = true;
    return false;
  }

  // fetch[(args)]{,converter[(args)]}; `fetch_name` already without a matcher suffix.
  std::optional<SampleExpr> sample(std::string_view word, size_t offset,
                                   std::optional<Matcher>* suffix_matcher) {
    SampleExpr out;
    out.text = std::string(word);
    auto parts = split_chain(word);
    // The fetch.
    std::string name;
    std::vector<std::string> args;
    if (!split_call(parts[0].first, &name, &args)) {
      fail("malformed fetch '" + parts[0].first + "'", offset);
      return std::nullopt;
    }
    const FetchDef* def = find_fetch(name);
    if (!def && suffix_matcher) {
      size_t us = name.rfind('_');
      if (us != std::string::npos) {
        if (auto m = find_matcher(name.substr(us + 1)); m && find_fetch(name.substr(0, us))) {
          *suffix_matcher = m;
          def = find_fetch(name.substr(0, us));
        }
      }
    }
    if (!def) {
      fail("unknown fetch '" + name + "' (known: " + fetch_names() + ")", offset);
      return std::nullopt;
    }
    out.fetch.def = def;
    const std::string fname(def->name);
    const bool takes_arg = def->arg != FetchArg::kNone;
    const bool has_args = parts[0].first.find('(') != std::string::npos;
    if (def->parse_args) {
      std::string err;
      if (!def->parse_args(out.fetch, args, has_args, files_, &err)) {
        fail(err, offset);
        return std::nullopt;
      }
    } else if (takes_arg && (!has_args || args.empty() || args[0].empty())) {
      fail(fname + " needs a name: " + fname + "(name)", offset);
      return std::nullopt;
    }
    if (!def->parse_args && !takes_arg && has_args) {
      fail(fname + " takes no argument", offset);
      return std::nullopt;
    }
    if (takes_arg && !def->parse_args) {
      out.fetch.arg = def->arg == FetchArg::kHeader ? lower(args[0]) : args[0];
      if (args.size() > (def->occurrence ? 2u : 1u)) {
        fail(fname + ": too many arguments", offset);
        return std::nullopt;
      }
      if (args.size() == 2) {
        auto n = parse_int(args[1]);
        if (!n || *n == 0 || *n < -1 || *n > 1000) {
          fail(fname + ": the occurrence must be 1..1000 or -1 (the last)", offset);
          return std::nullopt;
        }
        out.fetch.occurrence = static_cast<int>(*n);
      }
      if (def->arg == FetchArg::kVariable && out.fetch.arg.rfind("txn.", 0) != 0) {
        fail(fname + ": variables are named txn.<name>", offset);
        return std::nullopt;
      }
    }
    // Converters.
    for (size_t i = 1; i < parts.size(); ++i) {
      const size_t at = offset + parts[i].second;
      std::string cname;
      std::vector<std::string> cargs;
      if (!split_call(parts[i].first, &cname, &cargs)) {
        fail("malformed converter '" + parts[i].first + "'", at);
        return std::nullopt;
      }
      Converter c;
      if (cname == "lower" || cname == "upper") {
        c.kind = cname == "lower" ? Converter::Kind::kLower : Converter::Kind::kUpper;
      } else if (cname == "map") {
        if (cargs.empty() || cargs[0].empty() || cargs.size() > 2) {
          fail("map needs a file and an optional default: map(/path/file.map[,default])", at);
          return std::nullopt;
        }
        c.kind = Converter::Kind::kMap;
        std::string err;
        c.map = load_map(cargs[0], files_, &err);
        if (!c.map) {
          fail(err, at);
          return std::nullopt;
        }
        if (cargs.size() == 2) c.fallback = cargs[1];
      } else if (cname.rfind("table_", 0) == 0 && stick_words::find_word(cname.substr(6)) &&
                 stick_words::find_word(cname.substr(6))->read !=
                     stick_words::Word::Read::kTracked) {
        const stick_words::Word* w = stick_words::find_word(cname.substr(6));
        stick_words::Args a;
        std::string err;
        if (!stick_words::parse_args(stick_words::Prefix::kTable, *w, cargs,
                                     parts[i].first.find('(') != std::string::npos, files_, cname,
                                     &a, &err)) {
          fail(err, at);
          return std::nullopt;
        }
        c.kind = Converter::Kind::kTable;
        c.table = std::move(a.table);
        c.index = a.index;
        c.word = static_cast<uint32_t>(w - stick_words::words().data());
      } else {
        fail("unknown converter '" + cname + "' (known: lower, upper, map, table_*)", at);
        return std::nullopt;
      }
      out.converters.push_back(std::move(c));
    }
    return out;
  }

  std::shared_ptr<const Test> test(std::string_view s, size_t base) {
    std::vector<Tok> words;
    if (!split_words(s, base, &words, error_)) {
      failed_ = true;
      return nullptr;
    }
    if (words.empty()) {
      fail("empty test: expected a fetch such as path_beg /api/", base);
      return nullptr;
    }
    auto t = std::make_shared<Test>();
    std::optional<Matcher> matcher;
    auto smp = sample(words[0].text, words[0].offset, &matcher);
    if (!smp) return nullptr;
    t->sample = std::move(*smp);
    std::vector<std::pair<std::string, size_t>> values;
    size_t i = 1;
    for (; i < words.size(); ++i) {
      const Tok& w = words[i];
      if (w.quoted || w.text.empty() || w.text[0] != '-') break;
      if (w.text == "--") {
        ++i;
        break;
      }
      if (w.text == "-i") {
        t->icase = true;
      } else if (w.text == "-m" || w.text == "-f") {
        if (i + 1 >= words.size()) {
          fail(w.text + " needs a value", w.offset);
          return nullptr;
        }
        const Tok& v = words[++i];
        if (w.text == "-m") {
          auto m = find_matcher(v.text);
          if (!m) {
            fail("unknown matcher '" + v.text +
                     "' (known: str, beg, end, sub, dir, dom, reg, ip, int, found, bool)",
                 v.offset);
            return nullptr;
          }
          matcher = m;
        } else {
          auto it = files_.lists.find(v.text);
          if (it == files_.lists.end()) {
            std::vector<std::string> lines;
            std::string err;
            if (!read_list_file(v.text, &lines, &err)) {
              fail(err, v.offset);
              return nullptr;
            }
            it = files_.lists.emplace(v.text, std::move(lines)).first;
          }
          for (const auto& line : it->second) values.emplace_back(line, v.offset);
        }
      } else {
        break;  // a negative number, say: a value
      }
    }
    for (; i < words.size(); ++i) values.emplace_back(words[i].text, words[i].offset);

    const Type type = t->sample.type();
    if (!matcher) {
      matcher = type == Type::kIp     ? Matcher::kIp
                : type == Type::kInt  ? Matcher::kInt
                : type == Type::kBool ? Matcher::kBool
                                      : Matcher::kExact;
    }
    t->matcher = *matcher;
    if (t->matcher == Matcher::kFound || t->matcher == Matcher::kBool) {
      if (!values.empty()) {
        fail("this test takes no value (it checks that the fetch has one)", values[0].second);
        return nullptr;
      }
      return t;
    }
    if (values.empty()) {
      fail("no value to compare with (use -m found to test that the fetch has a value)",
           words.back().offset);
      return nullptr;
    }
    if (t->matcher == Matcher::kInt) {
      // "gt 5", "eq 3", "200:299", ":10", "7".
      for (size_t v = 0; v < values.size(); ++v) {
        const std::string& w = values[v].first;
        Test::IntRange r;
        static constexpr std::string_view kOps[] = {"eq", "ge", "gt", "le", "lt"};
        if (std::find(std::begin(kOps), std::end(kOps), w) != std::end(kOps)) {
          if (v + 1 >= values.size()) {
            fail(w + " needs a number", values[v].second);
            return nullptr;
          }
          auto n = parse_int(values[v + 1].first);
          if (!n) {
            fail("'" + values[v + 1].first + "' is not an integer", values[v + 1].second);
            return nullptr;
          }
          ++v;
          if (w == "eq") r.lo = r.hi = *n;
          if (w == "ge") r.lo = *n;
          if (w == "gt") r.lo = *n == INT64_MAX ? INT64_MAX : *n + 1;
          if (w == "le") r.hi = *n;
          if (w == "lt") r.hi = *n == INT64_MIN ? INT64_MIN : *n - 1;
        } else if (size_t colon = w.find(':'); colon != std::string::npos) {
          auto lo = colon ? parse_int(w.substr(0, colon)) : std::optional<int64_t>(INT64_MIN);
          auto hi = colon + 1 < w.size() ? parse_int(w.substr(colon + 1))
                                         : std::optional<int64_t>(INT64_MAX);
          if (!lo || !hi || *lo > *hi) {
            fail("'" + w + "' is not a range like 200:299", values[v].second);
            return nullptr;
          }
          r.lo = *lo;
          r.hi = *hi;
        } else {
          auto n = parse_int(w);
          if (!n) {
            fail("'" + w + "' is not an integer (or eq/ge/gt/le/lt N, or a range N:M)",
                 values[v].second);
            return nullptr;
          }
          r.lo = r.hi = *n;
        }
        t->ints.push_back(r);
      }
      return t;
    }
    for (const auto& [w, off] : values) {
      switch (t->matcher) {
        case Matcher::kExact:
          t->exact.insert(t->icase ? lower(w) : w);
          break;
        case Matcher::kBeg:
        case Matcher::kEnd:
        case Matcher::kSub:
        case Matcher::kDir:
        case Matcher::kDom:
          t->strings.push_back(w);
          break;
        case Matcher::kReg: {
          std::string err;
          auto re = Regex::compile(w, t->icase, &err);
          if (!re) {
            fail(err, off);
            return nullptr;
          }
          t->regexes.push_back(std::move(re));
          break;
        }
        case Matcher::kIp: {
          std::string problem;
          const auto net = parse_ip_network(w, &problem);
          if (!net) {
            fail(problem, off);
            return nullptr;
          }
          t->cidrs.push_back(*net);
          break;
        }
        default:
          break;
      }
    }
    return t;
  }

  // ---- boolean expressions

  struct CTok {
    enum class Kind { kEnd, kLParen, kRParen, kAnd, kOr, kNot, kName, kTest } kind = Kind::kEnd;
    std::string text;
    size_t offset = 0;
  };

  bool next(CTok* t) {
    while (pos_ < text_.size() && (text_[pos_] == ' ' || text_[pos_] == '\t')) ++pos_;
    t->offset = pos_;
    t->text.clear();
    if (pos_ >= text_.size()) {
      t->kind = CTok::Kind::kEnd;
      return true;
    }
    char c = text_[pos_];
    if (c == '(' || c == ')') {
      t->kind = c == '(' ? CTok::Kind::kLParen : CTok::Kind::kRParen;
      ++pos_;
      return true;
    }
    if (c == '!') {
      t->kind = CTok::Kind::kNot;
      ++pos_;
      return true;
    }
    if (text_.substr(pos_, 2) == "&&" || text_.substr(pos_, 2) == "||") {
      t->kind = c == '&' ? CTok::Kind::kAnd : CTok::Kind::kOr;
      pos_ += 2;
      return true;
    }
    if (c == '{') {
      // The test runs to the matching '}' outside quotes.
      size_t i = pos_ + 1;
      char q = 0;
      for (; i < text_.size(); ++i) {
        char d = text_[i];
        if (q) {
          if (d == '\\' && q == '"') {
            ++i;
          } else if (d == q) {
            q = 0;
          }
        } else if (d == '"' || d == '\'') {
          q = d;
        } else if (d == '}') {
          break;
        }
      }
      if (i >= text_.size()) return fail("missing '}' after an inline test", pos_);
      t->kind = CTok::Kind::kTest;
      t->text = std::string(text_.substr(pos_ + 1, i - pos_ - 1));
      t->offset = pos_ + 1;
      pos_ = i + 1;
      return true;
    }
    size_t start = pos_;
    while (pos_ < text_.size()) {
      char d = text_[pos_];
      bool word = (d >= 'a' && d <= 'z') || (d >= 'A' && d <= 'Z') || (d >= '0' && d <= '9') ||
                  d == '_' || d == '-' || d == '.';
      if (!word) break;
      ++pos_;
    }
    if (pos_ == start) return fail(std::string("unexpected '") + c + "'", start);
    t->text = std::string(text_.substr(start, pos_ - start));
    t->kind = t->text == "and"   ? CTok::Kind::kAnd
              : t->text == "or"  ? CTok::Kind::kOr
              : t->text == "not" ? CTok::Kind::kNot
                                 : CTok::Kind::kName;
    return true;
  }

  bool peek(CTok* t) {
    size_t save = pos_;
    bool ok = next(t);
    pos_ = save;
    return ok;
  }

  int add(Condition::Node n) {
    cond_->nodes_.push_back(std::move(n));
    return static_cast<int>(cond_->nodes_.size() - 1);
  }

  // Left-associative chains: "or" over "and" over "not".
  int parse_binary(CTok::Kind op) {
    const bool is_or = op == CTok::Kind::kOr;
    auto operand = [&] { return is_or ? parse_binary(CTok::Kind::kAnd) : parse_not(); };
    int left = operand();
    if (left < 0) return -1;
    CTok t;
    while (peek(&t) && t.kind == op) {
      next(&t);
      int right = operand();
      if (right < 0) return -1;
      left = add(
          {is_or ? Condition::Node::Kind::kOr : Condition::Node::Kind::kAnd, nullptr, left, right});
    }
    return failed_ ? -1 : left;
  }
  int parse_or() { return parse_binary(CTok::Kind::kOr); }

  int parse_not() {
    CTok t;
    if (!next(&t)) return -1;
    switch (t.kind) {
      case CTok::Kind::kNot: {
        int a = parse_not();
        if (a < 0) return -1;
        return add({Condition::Node::Kind::kNot, nullptr, a, -1});
      }
      case CTok::Kind::kLParen: {
        int inner = parse_or();
        if (inner < 0) return -1;
        CTok close;
        if (!next(&close)) return -1;
        if (close.kind != CTok::Kind::kRParen) {
          fail("expected ')'", close.offset);
          return -1;
        }
        return inner;
      }
      case CTok::Kind::kName: {
        auto it = names_->find(t.text);
        if (it == names_->end()) {
          std::string known;
          for (const auto& [n, _] : *names_) known += (known.empty() ? "" : ", ") + n;
          fail("unknown condition '" + t.text + "'" +
                   (known.empty() ? std::string(" (no acls are defined here; write an inline "
                                                "test between braces: { path_beg /api/ })")
                                  : " (defined here: " + known + ")"),
               t.offset);
          return -1;
        }
        if (!it->second) {
          fail("condition '" + t.text + "' is invalid (see its definition)", t.offset);
          error_->reported_already = true;
          return -1;
        }
        if (it->second->sample.fetch.response_only()) cond_->uses_response_ = true;
        if (it->second->sample.fetch.http_only()) cond_->uses_http_ = true;
        return add({Condition::Node::Kind::kTest, it->second, -1, -1});
      }
      case CTok::Kind::kTest: {
        auto test_ptr = test(t.text, t.offset);
        if (!test_ptr) return -1;
        if (test_ptr->sample.fetch.response_only()) cond_->uses_response_ = true;
        if (test_ptr->sample.fetch.http_only()) cond_->uses_http_ = true;
        return add({Condition::Node::Kind::kTest, test_ptr, -1, -1});
      }
      case CTok::Kind::kEnd:
        fail("expected a condition name, '{ test }', 'not' or '(' here", t.offset);
        return -1;
      default:
        fail("unexpected '" + std::string(text_.substr(t.offset, 2)) + "'", t.offset);
        return -1;
    }
  }

  std::shared_ptr<const Condition> condition(const NamedTests& names) {
    names_ = &names;
    auto c = std::make_shared<Condition>();
    cond_ = c.get();
    c->text_ = std::string(text_);
    int root = parse_or();
    if (root < 0) return nullptr;
    CTok t;
    if (!next(&t)) return nullptr;
    if (t.kind != CTok::Kind::kEnd) {
      fail("expected 'and', 'or' or the end of the condition", t.offset);
      return nullptr;
    }
    c->root_ = root;
    return c;
  }

  bool failed() const { return failed_; }

 private:
  std::string_view text_;
  FileCache& files_;
  ParseError* error_;
  bool failed_ = false;
  size_t pos_ = 0;
  const NamedTests* names_ = nullptr;
  Condition* cond_ = nullptr;
};

std::shared_ptr<const Test> parse_test(std::string_view text, FileCache& files, ParseError* error) {
  Parser p(text, files, error);
  return p.test(text, 0);
}

std::shared_ptr<const Condition> parse_condition(std::string_view text, const NamedTests& names,
                                                 FileCache& files, ParseError* error) {
  Parser p(text, files, error);
  return p.condition(names);
}

std::optional<SampleExpr> parse_sample(std::string_view text, FileCache& files, ParseError* error) {
  Parser p(text, files, error);
  if (text.empty()) {
    p.fail("empty sample expression", 0);
    return std::nullopt;
  }
  if (text.find_first_of(" \t") != std::string_view::npos) {
    // Spaces are allowed inside arguments only.
    int depth = 0;
    for (size_t i = 0; i < text.size(); ++i) {
      if (text[i] == '(') ++depth;
      if (text[i] == ')') --depth;
      if ((text[i] == ' ' || text[i] == '\t') && depth == 0) {
        p.fail("unexpected space in a sample expression", i);
        return std::nullopt;
      }
    }
  }
  return p.sample(text, 0, nullptr);
}

std::optional<ValueTemplate> parse_template(std::string_view text, FileCache& files,
                                            ParseError* error) {
  ValueTemplate t;
  t.text = std::string(text);
  std::string lit;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '%') {
      lit += text[i];
      continue;
    }
    if (i + 1 < text.size() && text[i + 1] == '%') {
      lit += '%';
      ++i;
      continue;
    }
    if (i + 1 >= text.size() || text[i + 1] != '[') {
      *error = {"a '%' starts a sample, %[fetch] (write %% for a percent sign)", i};
      return std::nullopt;
    }
    int depth = 0;
    size_t end = i + 2;
    for (; end < text.size(); ++end) {
      if (text[end] == '(') ++depth;
      if (text[end] == ')') --depth;
      if (text[end] == ']' && depth == 0) break;
    }
    if (end >= text.size()) {
      *error = {"missing ']' after %[", i};
      return std::nullopt;
    }
    if (!lit.empty()) {
      t.parts.push_back({std::move(lit), std::nullopt});
      lit.clear();
    }
    ParseError inner;
    auto smp = parse_sample(text.substr(i + 2, end - i - 2), files, &inner);
    if (!smp) {
      *error = {inner.message, i + 2 + inner.offset};
      return std::nullopt;
    }
    t.parts.push_back({std::string(), std::move(*smp)});
    i = end;
  }
  if (!lit.empty()) t.parts.push_back({std::move(lit), std::nullopt});
  return t;
}

}  // namespace weir::cond
