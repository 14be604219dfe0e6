// Evaluating conditions (condition.h): the matchers over a fetch's values,
// the converters, sample expressions and value templates. Parsing is in
// parse.cpp; the fetches themselves are the caller's (FetchContext).

#include <algorithm>
#include <cstring>

#include "common/cond/condition.h"
#include "common/cond/stick_words.h"
#include "common/cond/text.h"

namespace weir::cond {
namespace {

// ---------------------------------------------------------------- matching text

bool iequal(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (lower_char(a[i]) != lower_char(b[i])) return false;
  return true;
}

bool starts_with(std::string_view s, std::string_view p, bool icase) {
  return s.size() >= p.size() && (icase ? iequal(s.substr(0, p.size()), p) : s.starts_with(p));
}

bool ends_with(std::string_view s, std::string_view p, bool icase) {
  return s.size() >= p.size() &&
         (icase ? iequal(s.substr(s.size() - p.size()), p) : s.ends_with(p));
}

size_t find(std::string_view s, std::string_view p, size_t from, bool icase) {
  if (!icase) return s.find(p, from);
  if (p.empty()) return from <= s.size() ? from : std::string_view::npos;
  for (size_t i = from; i + p.size() <= s.size(); ++i) {
    if (iequal(s.substr(i, p.size()), p)) return i;
  }
  return std::string_view::npos;
}

// `p` occurs in `s` delimited on both sides by one of `delims` (or the ends).
bool delimited(std::string_view s, std::string_view p, std::string_view delims, bool icase) {
  if (p.empty()) return false;
  for (size_t at = find(s, p, 0, icase); at != std::string_view::npos;
       at = find(s, p, at + 1, icase)) {
    bool left = at == 0 || delims.find(s[at - 1]) != std::string_view::npos;
    size_t end = at + p.size();
    bool right = end == s.size() || delims.find(s[end]) != std::string_view::npos;
    if (left && right) return true;
  }
  return false;
}

// ---------------------------------------------------------------- samples

// Runs the converters over every value in `vals`.
void convert(const std::vector<Converter>& convs, std::vector<Sample>& vals) {
  for (const Converter& c : convs) {
    if (c.kind == Converter::Kind::kTable) {
      stick_words::convert(c, vals);
      continue;
    }
    for (Sample& s : vals) {
      std::string text = s.type == Type::kString ? std::string(s.str)
                         : s.type == Type::kInt  ? std::to_string(s.num)
                                                 : std::string(s.str);
      switch (c.kind) {
        case Converter::Kind::kLower:
          for (char& ch : text) ch = lower_char(ch);
          break;
        case Converter::Kind::kUpper:
          for (char& ch : text)
            ch = ch >= 'a' && ch <= 'z' ? static_cast<char>(ch - 'a' + 'A') : ch;
          break;
        case Converter::Kind::kTable:
          break;  // above
        case Converter::Kind::kMap: {
          auto it = c.map->entries.find(text);
          if (it != c.map->entries.end()) {
            text = it->second;
          } else if (c.fallback) {
            text = *c.fallback;
          } else {
            text.clear();
            s.type = Type::kBool;  // marks "no value"; removed below
            s.num = -1;
          }
          break;
        }
      }
      if (!(s.type == Type::kBool && s.num == -1)) {
        s.type = Type::kString;
        s.set_owned(std::move(text));
      }
    }
    vals.erase(std::remove_if(vals.begin(), vals.end(),
                              [](const Sample& s) { return s.type == Type::kBool && s.num == -1; }),
               vals.end());
  }
}

}  // namespace

Type SampleExpr::type() const {
  if (converters.empty()) return fetch.type();
  const Converter& last = converters.back();
  if (last.kind == Converter::Kind::kTable) return stick_words::words()[last.word].type;
  return Type::kString;
}

std::optional<std::string> SampleExpr::evaluate(FetchContext& ctx) const {
  std::vector<Sample> vals;
  ctx.fetch(fetch, vals);
  if (fetch.def->occurrence) {
    // As a value (log, header, backend name): the last occurrence unless one is named.
    if (fetch.occurrence == 0 && vals.size() > 1) vals.erase(vals.begin(), vals.end() - 1);
  }
  convert(converters, vals);
  if (vals.empty()) return std::nullopt;
  const Sample& s = vals.front();
  switch (s.type) {
    case Type::kInt:
      return std::to_string(s.num);
    case Type::kBool:
      return std::string(s.num ? "1" : "0");
    default:
      return std::string(s.str);
  }
}

// ---------------------------------------------------------------- tests

bool Test::evaluate(FetchContext& ctx, std::vector<Sample>& vals) const {
  vals.clear();
  ctx.fetch(sample.fetch, vals);
  if (!sample.converters.empty()) convert(sample.converters, vals);
  switch (matcher) {
    case Matcher::kFound:
      return !vals.empty();
    case Matcher::kBool:
      for (const Sample& s : vals) {
        if (s.type == Type::kBool || s.type == Type::kInt ? s.num != 0 : !s.str.empty())
          return true;
      }
      return false;
    default:
      break;
  }
  thread_local std::string folded;
  for (const Sample& s : vals) {
    switch (matcher) {
      case Matcher::kExact: {
        std::string_view v = s.str;
        std::string num;
        if (s.type == Type::kInt) {
          num = std::to_string(s.num);
          v = num;
        }
        if (icase) {
          folded.assign(v);
          for (char& c : folded) c = lower_char(c);
          if (exact.count(folded)) return true;
        } else if (exact.count(std::string(v))) {
          return true;
        }
        break;
      }
      case Matcher::kBeg:
        for (const auto& p : strings)
          if (starts_with(s.str, p, icase)) return true;
        break;
      case Matcher::kEnd:
        for (const auto& p : strings)
          if (ends_with(s.str, p, icase)) return true;
        break;
      case Matcher::kSub:
        for (const auto& p : strings)
          if (find(s.str, p, 0, icase) != std::string_view::npos) return true;
        break;
      case Matcher::kDir:
        for (const auto& p : strings)
          if (delimited(s.str, p, "/?", icase)) return true;
        break;
      case Matcher::kDom:
        for (const auto& p : strings)
          if (delimited(s.str, p, "./:", icase)) return true;
        break;
      case Matcher::kReg:
        for (const auto& r : regexes)
          if (r->search(s.str)) return true;
        break;
      case Matcher::kIp: {
        std::optional<IpValue> ip;
        if (s.type == Type::kIp) {
          ip = s.ip;
        } else {
          ip = parse_ip(s.str);
        }
        if (!ip) break;
        for (const IpNetwork& c : cidrs)
          if (c.contains(*ip)) return true;
        break;
      }
      case Matcher::kInt: {
        std::optional<int64_t> n;
        if (s.type == Type::kInt || s.type == Type::kBool) {
          n = s.num;
        } else {
          n = parse_int(s.str);
        }
        if (!n) break;
        for (const IntRange& r : ints)
          if (*n >= r.lo && *n <= r.hi) return true;
        break;
      }
      default:
        break;
    }
  }
  return false;
}

std::string ValueTemplate::render(FetchContext& ctx) const {
  std::string out;
  for (const Part& p : parts) {
    if (p.sample) {
      if (auto v = p.sample->evaluate(ctx)) out += *v;
    } else {
      out += p.literal;
    }
  }
  return out;
}

bool Condition::eval(int node, FetchContext& ctx, std::vector<Sample>& scratch) const {
  const Node& n = nodes_[static_cast<size_t>(node)];
  switch (n.kind) {
    case Node::Kind::kTest:
      return n.test->evaluate(ctx, scratch);
    case Node::Kind::kNot:
      return !eval(n.a, ctx, scratch);
    case Node::Kind::kAnd:
      return eval(n.a, ctx, scratch) && eval(n.b, ctx, scratch);
    case Node::Kind::kOr:
      return eval(n.a, ctx, scratch) || eval(n.b, ctx, scratch);
  }
  return false;
}

bool Condition::evaluate(FetchContext& ctx) const {
  thread_local std::vector<Sample> scratch;
  return root_ >= 0 && eval(root_, ctx, scratch);
}

}  // namespace weir::cond
