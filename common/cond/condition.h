#pragma once
// Conditions: the small expression language of `acls:` and of every rule's
// `if:` / `unless:`, and sample expressions (a fetch and its converters, as in
// `%[hdr(host),lower]` or `host,map(/etc/weir/hosts.map,app)`).
//
//   condition := or
//   or        := and { ("or" | "||") and }
//   and       := not { ("and" | "&&") not }
//   not       := ("not" | "!") not | "(" or ")" | NAME | "{" test "}"
//   test      := fetch[_matcher]["(" args ")"] { flag } { value }
//   flag      := "-i" | "-m" matcher | "-f" file | "--"
//
// Everything is parsed and compiled once, when the configuration is loaded
// (regular expressions with PCRE2's JIT, value lists from files into hash sets,
// map files into hash tables); evaluating a condition allocates nothing for
// the common fetches and matchers. Fetching is the caller's: it implements
// FetchContext for a request, a response or a connection; the fetches are a
// registry (fetch.h).
//
// The parser is parse.cpp, evaluation condition.cpp, regular expressions
// regex.cpp.

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "common/cond/fetch.h"
#include "common/cond/regex.h"

namespace weir::cond {

// key -> value table loaded from a map file ("key value..." per line, '#' comments).
struct MapFile {
  std::string path;
  std::unordered_map<std::string, std::string> entries;
};

struct Converter {
  enum class Kind : unsigned char {
    kLower,
    kUpper,
    kMap,
    kTable,  // table_<datum>(TABLE): the value looked up in a stick table (stick_words.h)
  } kind = Kind::kLower;
  std::shared_ptr<const MapFile> map;
  std::optional<std::string> fallback;  // map: the value when the key is absent
  std::shared_ptr<stick::Table> table;  // kTable
  uint32_t word = 0;                    // kTable: what it reads (stick_words::words())
  uint32_t index = 0;                   // kTable: the element of gpc / gpt / gpc_rate
};

// A fetch followed by converters: "hdr(host),lower,map(/etc/weir/hosts.map,app)".
struct SampleExpr {
  FetchSpec fetch;
  std::vector<Converter> converters;
  std::string text;  // as written
  // The type of its values: the fetch's, or the last converter's.
  Type type() const;
  // The first value (after the converters), or nullopt when there is none.
  std::optional<std::string> evaluate(FetchContext& ctx) const;
};

enum class Matcher : unsigned char {
  kExact,  // str: equal
  kBeg,    // starts with
  kEnd,    // ends with
  kSub,    // contains
  kDir,    // a '/'-delimited segment sequence of the value
  kDom,    // a '.'-delimited label sequence of the value
  kReg,    // PCRE2 regular expression
  kIp,     // address or CIDR
  kInt,    // integer comparison or range
  kFound,  // the fetch has a value
  kBool,   // the value is true (non-zero)
};

// One test: a sample, a matcher and its values. True when any value of the
// sample matches any pattern (kFound / kBool: see above).
struct Test {
  SampleExpr sample;
  Matcher matcher = Matcher::kExact;
  bool icase = false;
  std::unordered_set<std::string> exact;  // kExact (lower-cased with -i)
  std::vector<std::string> strings;       // kBeg..kDom (lower-cased with -i)
  std::vector<std::shared_ptr<const Regex>> regexes;
  std::vector<IpNetwork> cidrs;
  struct IntRange {
    int64_t lo = INT64_MIN, hi = INT64_MAX;
  };
  std::vector<IntRange> ints;
  bool evaluate(FetchContext& ctx, std::vector<Sample>& scratch) const;
};

// A boolean combination of tests and named conditions.
class Condition {
 public:
  bool evaluate(FetchContext& ctx) const;
  // Needs the response (status, res_hdr): only valid in response rules.
  bool uses_response() const { return uses_response_; }
  // Needs an HTTP request: not usable in tcp_request rules.
  bool uses_http() const { return uses_http_; }
  const std::string& text() const { return text_; }

 private:
  friend class Parser;
  struct Node {
    enum class Kind : unsigned char { kTest, kNot, kAnd, kOr } kind = Kind::kTest;
    std::shared_ptr<const Test> test;  // kTest
    int a = -1, b = -1;                // children (kNot: a)
  };
  bool eval(int node, FetchContext& ctx, std::vector<Sample>& scratch) const;
  std::vector<Node> nodes_;
  int root_ = -1;
  bool uses_response_ = false;
  bool uses_http_ = false;
  std::string text_;
};

// A string with samples in it: "https://%[host]%[url]". "%%" is a '%'.
struct ValueTemplate {
  struct Part {
    std::string literal;
    std::optional<SampleExpr> sample;
  };
  std::vector<Part> parts;
  std::string text;  // as written
  bool is_constant() const {
    for (const Part& p : parts)
      if (p.sample) return false;
    return true;
  }
  // Missing samples render as nothing.
  std::string render(FetchContext& ctx) const;
};

// Where files named in conditions (-f lists, maps) are read from, and a cache
// so that one file named many times is loaded once.
// The stick tables of the configuration are there too, by name, for the
// fetches and converters that name one (sc0_conn_rate(TABLE), table_gpc0(TABLE)).
struct FileCache {
  std::map<std::string, std::shared_ptr<const MapFile>> maps;
  std::map<std::string, std::vector<std::string>> lists;
  std::map<std::string, std::shared_ptr<stick::Table>, std::less<>> stick_tables;
};

struct ParseError {
  std::string message;
  size_t offset = 0;              // 0-based position in the text
  bool reported_already = false;  // names an acl whose own definition failed (and was reported)
};

// Named conditions visible to an expression (a frontend's or backend's acls).
// A null test stands for an acl that is defined but failed to load: an
// expression that names it fails with `reported_already`, so that one mistake
// (a missing list file, say) is reported once, where it is.
using NamedTests = std::map<std::string, std::shared_ptr<const Test>, std::less<>>;

// A test on its own (an `acls:` entry).
std::shared_ptr<const Test> parse_test(std::string_view text, FileCache& files, ParseError* error);
// An `if:` / `unless:` expression over `names` and inline `{ tests }`.
std::shared_ptr<const Condition> parse_condition(std::string_view text, const NamedTests& names,
                                                 FileCache& files, ParseError* error);
// A sample expression ("hdr(host),lower"), for log formats, header values and use_backend.
std::optional<SampleExpr> parse_sample(std::string_view text, FileCache& files, ParseError* error);

// A value template ("text %[sample] text").
std::optional<ValueTemplate> parse_template(std::string_view text, FileCache& files,
                                            ParseError* error);

// Reads a file of values (one per line; blank lines and '#' comments skipped).
bool read_list_file(const std::string& path, std::vector<std::string>* out, std::string* error);

}  // namespace weir::cond
