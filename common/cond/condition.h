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
// FetchContext for a request, a response or a connection.

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

namespace weir::cond {

enum class Fetch : unsigned char {
  kSrc,          // client address (ip)
  kSrcPort,      // client port (int)
  kDst,          // address the client connected to (ip)
  kDstPort,      // port the client connected to (int)
  kMethod,       // request method
  kPath,         // request path, without the query string
  kUrl,          // the request target as received
  kQuery,        // the query string, without '?'
  kUrlParam,     // url_param(name): a query-string parameter's value
  kHdr,          // hdr(name[,occurrence]): request header values (comma-separated lists split)
  kHdrCnt,       // hdr_cnt(name): number of values of a request header (int)
  kHost,         // Host without its port, lower-cased
  kCookie,       // cookie(name): a cookie's value
  kReqLen,       // bytes of the request head (int)
  kHttpVersion,  // "1.1" or "1.0"
  kSslFc,        // the client connection uses TLS (bool)
  kSslSni,       // the TLS SNI the client sent
  kSslVersion,   // negotiated TLS version ("TLSv1.3")
  kSslCipher,    // negotiated cipher (OpenSSL's name)
  kSslAlpn,      // negotiated ALPN protocol
  kSslCUsed,     // the client presented a certificate (bool)
  kSslCVerify,   // verification result of the client certificate (int; 0: valid or none)
  kSslCSDn,      // client certificate subject (/C=../CN=..)
  kSslCIDn,      // client certificate issuer
  kSslCSerial,   // client certificate serial, upper-case hex
  kReqSslSni,    // tcp content inspection: the SNI of the ClientHello
  kReqSslVer,    // tcp content inspection: the highest version offered ("TLSv1.3")
  kReqSslHello,  // tcp content inspection: a whole ClientHello was read (bool)
  kStatus,       // response status (int; response rules only)
  kResHdr,       // res_hdr(name[,occurrence]): response header values (response rules only)
  kVar,          // var(txn.name): a variable set by set_var
  kAlways,       // always_true / always_false (bool constants)
};

enum class Type : unsigned char { kString, kInt, kIp, kBool };

// An IPv4 or IPv6 address in network order (IPv4 mapped into ::ffff:0:0/96).
struct IpValue {
  uint8_t bytes[16] = {};
  bool v4 = false;
};
std::optional<IpValue> parse_ip(std::string_view text);

struct FetchSpec {
  Fetch fetch = Fetch::kPath;
  std::string arg;        // header, parameter, cookie or variable name (lower-case for headers)
  int occurrence = 0;     // hdr/res_hdr: 0 all values, N the Nth, -1 the last
  bool constant = false;  // kAlways: the value
  Type type() const;
  // True for fetches that only make sense once a response exists.
  bool response_only() const { return fetch == Fetch::kStatus || fetch == Fetch::kResHdr; }
  // Needs an HTTP request (not available to tcp_request rules).
  bool http_only() const {
    return !(fetch == Fetch::kSrc || fetch == Fetch::kSrcPort || fetch == Fetch::kDst ||
             fetch == Fetch::kDstPort || (fetch >= Fetch::kSslFc && fetch <= Fetch::kReqSslHello) ||
             fetch == Fetch::kVar || fetch == Fetch::kAlways);
  }
};

// One value produced by a fetch. `str` may point into the request or response
// being evaluated; `own` holds the text when a converter made a new one.
struct Sample {
  Type type = Type::kString;
  std::string_view str;
  int64_t num = 0;
  IpValue ip;
  std::string own;
  bool owned = false;  // str views `own` (re-pointed when the sample moves)
  void set_owned(std::string s) {
    own = std::move(s);
    str = own;
    owned = true;
  }
  Sample() = default;
  Sample(const Sample& o) { *this = o; }
  Sample(Sample&& o) noexcept { *this = std::move(o); }
  Sample& operator=(const Sample& o) {
    type = o.type;
    num = o.num;
    ip = o.ip;
    own = o.own;
    owned = o.owned;
    str = owned ? std::string_view(own) : o.str;
    return *this;
  }
  Sample& operator=(Sample&& o) noexcept {
    type = o.type;
    num = o.num;
    ip = o.ip;
    owned = o.owned;
    str = o.str;
    own = std::move(o.own);
    if (owned) str = own;
    return *this;
  }
};

// The caller's side: appends the values of `f` (none when the fetch has no value).
class FetchContext {
 public:
  virtual void fetch(const FetchSpec& f, std::vector<Sample>& out) = 0;

 protected:
  ~FetchContext() = default;
};

// key -> value table loaded from a map file ("key value..." per line, '#' comments).
struct MapFile {
  std::string path;
  std::unordered_map<std::string, std::string> entries;
};

struct Converter {
  enum class Kind : unsigned char { kLower, kUpper, kMap } kind = Kind::kLower;
  std::shared_ptr<const MapFile> map;
  std::optional<std::string> fallback;  // map: the value when the key is absent
};

// A fetch followed by converters: "hdr(host),lower,map(/etc/weir/hosts.map,app)".
struct SampleExpr {
  FetchSpec fetch;
  std::vector<Converter> converters;
  std::string text;  // as written
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

// A compiled PCRE2 pattern (JIT when available).
class Regex {
 public:
  static std::shared_ptr<const Regex> compile(const std::string& pattern, bool icase,
                                              std::string* error);
  ~Regex();
  bool search(std::string_view s) const;
  // Replaces every match in `s` with `replacement` (\1..\9 name groups; \\ is a
  // backslash); nullopt when nothing matched.
  std::optional<std::string> replace(std::string_view s, std::string_view replacement) const;
  Regex() = default;
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;

 private:
  void* code_ = nullptr;  // pcre2_code*
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
  struct Cidr {
    IpValue ip;
    int bits = 0;  // prefix length over the 16-byte form
  };
  std::vector<Cidr> cidrs;
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
struct FileCache {
  std::map<std::string, std::shared_ptr<const MapFile>> maps;
  std::map<std::string, std::vector<std::string>> lists;
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
