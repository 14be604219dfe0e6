#pragma once
// Fetches: the words of the condition language that read a value from the
// traffic (`path`, `hdr(host)`, `src`, `ssl_sni`, `status`, `var(txn.user)`).
// They are not listed here: each is a FetchDef that the file implementing it
// registers (common/base/registry.h), by family under worker/rules/
// (fetches_conn.cpp, fetches_http.cpp, fetches_tls.cpp, fetches_misc.cpp). The
// parser looks names up in Registry<FetchDef>, so adding a fetch is one table
// entry and its function.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace weir::stick {
class Table;
}

namespace weir::cond {

enum class Type : unsigned char { kString, kInt, kIp, kBool };

// An IPv4 or IPv6 address in network order (IPv4 mapped into ::ffff:0:0/96).
struct IpValue {
  uint8_t bytes[16] = {};
  bool v4 = false;
};
std::optional<IpValue> parse_ip(std::string_view text);

// A network (10.0.0.0/8, 2001:db8::/32) or one address (a full-length prefix).
struct IpNetwork {
  IpValue ip;
  int bits = 0;  // prefix length over the 16-byte form (IPv4: 96 + its own)
  bool contains(const IpValue& a) const;
};
// "10.0.0.0/8", "2001:db8::/32", "192.0.2.7": nullopt with *error (one line) otherwise.
std::optional<IpNetwork> parse_ip_network(std::string_view text, std::string* error);

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

// Appending a value to a fetch's output: a view of text that outlives the
// evaluation, a text of its own, a number or boolean.
inline void push_string(std::vector<Sample>& out, std::string_view v) {
  Sample s;
  s.str = v;
  out.push_back(std::move(s));
}
inline void push_owned(std::vector<Sample>& out, std::string v) {
  Sample s;
  s.set_owned(std::move(v));
  out.push_back(std::move(s));
}
inline void push_number(std::vector<Sample>& out, int64_t n, Type t = Type::kInt) {
  Sample s;
  s.type = t;
  s.num = n;
  out.push_back(std::move(s));
}

// What a fetch takes between parentheses.
enum class FetchArg : unsigned char {
  kNone,      // nothing: `path`
  kName,      // a name, as written: `cookie(sid)`, `url_param(id)`
  kHeader,    // a header name, compared without case (kept lower-case): `hdr_cnt(accept)`
  kVariable,  // a variable, txn.<name>: `var(txn.user)`
};

// Where a fetch can have a value.
enum class FetchScope : unsigned char {
  kConnection,  // anywhere: tcp_request rules, http rules, log lines, checks
  kRequest,     // needs an HTTP request (not in tcp_request rules)
  kResponse,    // needs the response (http_response rules, log lines)
};

struct FetchSpec;
class FetchContext;
struct FileCache;

// One fetch (a registry entry).
struct FetchDef {
  std::string_view name;  // the word a condition or sample starts with
  Type type;              // what its values are (and so the default matcher)
  FetchScope scope;
  FetchArg arg;
  bool occurrence;  // also takes ",N" after the name: the Nth value (1-based, -1 the last)
  // Appends the values of `spec` in `ctx` (none when it has no value). The
  // worker's fetches run on its SampleSource (worker/rules/rules.h), which is
  // the context that calls them.
  void (*run)(const FetchSpec& spec, FetchContext& ctx, std::vector<Sample>& out);
  // A fetch that reads its own arguments (the stick-table fetches:
  // sc0_conn_rate(TABLE), sc_get_gpc(IDX,SC[,TABLE])): the parser calls it
  // with what was between the parentheses instead of reading `arg`. False with
  // *error (one line) when they are not valid.
  bool (*parse_args)(FetchSpec& spec, const std::vector<std::string>& args, bool has_args,
                     const FileCache& env, std::string* error) = nullptr;
  // A family of generated fetches (sc0_*, src_*): messages list the family
  // once instead of every member.
  std::string_view family = {};
  uint32_t tag = 0;  // what a family's run function reads (set by the code that makes it)
};

// A fetch as written in one expression: the fetch and its arguments.
struct FetchSpec {
  const FetchDef* def = nullptr;  // set by the parser: never null in a parsed expression
  std::string arg;                // header, parameter, cookie or variable name (headers lower-case)
  int occurrence = 0;             // def->occurrence: 0 all values, N the Nth, -1 the last
  // Stick-table fetches: the table named (null: the tracked entry's own), the
  // tracked counter (sc_*(N)), the element of gpc / gpt / gpc_rate.
  std::shared_ptr<stick::Table> table;
  int sc = -1;
  uint32_t index = 0;
  std::string_view name() const { return def->name; }
  Type type() const { return def->type; }
  // Only valid once a response exists (status, res_hdr).
  bool response_only() const { return def->scope == FetchScope::kResponse; }
  // Needs an HTTP request (not available to tcp_request rules).
  bool http_only() const { return def->scope != FetchScope::kConnection; }
};

// The caller's side: appends the values of `f` (none when the fetch has no value).
class FetchContext {
 public:
  virtual void fetch(const FetchSpec& f, std::vector<Sample>& out) = 0;

 protected:
  ~FetchContext() = default;
};

// The registered fetch called `name`, or null.
const FetchDef* find_fetch(std::string_view name);
// Every registered fetch's name, sorted, comma-separated: for messages.
std::string fetch_names();

}  // namespace weir::cond
