#pragma once
// The words of the condition language that read stick tables
// (doc/stick-tables.md): what follows the prefix of a fetch (sc0_, sc1_, sc2_,
// sc_, src_) or of a table_ converter, its arguments, and how it reads an entry.
//
//   sc0_http_req_rate            the entry tracked by counter 0
//   sc0_http_req_rate(TABLE)     its key, looked up in another table
//   sc_http_req_rate(N[,TABLE])  counter N
//   src_http_req_rate([TABLE])   the client's address, looked up (not tracked)
//   KEY,table_http_req_rate(TABLE)  any sample, looked up (a converter)
//   sc_get_gpc(IDX,N[,TABLE]), src_get_gpc(IDX[,TABLE]), table_gpc(IDX,TABLE)
//
// The fetches themselves run on the worker's connections
// (worker/stick/fetches.cpp); the converters run here (condition.cpp).

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/cond/condition.h"
#include "common/stick/table.h"

namespace weir::cond::stick_words {

struct Word {
  enum class Read : uint8_t {
    kValue,       // the datum's value
    kKbytes,      // a byte counter in units of 1024 (HAProxy's kbytes_in / kbytes_out)
    kServerName,  // server_key: the server's name
    kTrackers,    // the connections tracking the entry
    kTracked,     // sc only: the counter tracks an entry (no entry read)
  };
  std::string_view name;  // after the prefix
  stick::Datum datum;
  Read read;
  bool indexed;   // takes the element first: sc_get_gpc(IDX,N), table_gpc(IDX,TABLE)
  uint8_t index;  // the element when not indexed (gpc1: 1)
  Type type;
};

std::span<const Word> words();
const Word* find_word(std::string_view name);

// What prefixes the word: a fetch on a tracked counter (scN_ or sc_), on the
// client's address (src_), or the table_ converter.
enum class Prefix : uint8_t { kSc0, kSc1, kSc2, kSc, kSrc, kTable };

// Reads the arguments of a stick-table fetch or converter: [IDX,] for indexed
// words, N for sc_, then the table (required for table_; for src_ it may be
// left out when the configuration has one table). `what` is the word as
// written, for messages.
struct Args {
  std::shared_ptr<stick::Table> table;
  int sc = -1;
  uint32_t index = 0;
};
bool parse_args(Prefix p, const Word& w, const std::vector<std::string>& args, bool has_args,
                const FileCache& env, const std::string& what, Args* out, std::string* error);

// The value of `w` (element `index`) in an entry: nothing when the entry does
// not store it.
void read(const Word& w, uint32_t index, const stick::EntryData& d, const stick::Now& now,
          std::vector<Sample>& out);
// A missing entry reads as 0 for counters and rates (as HAProxy's fetches do
// once a key is tracked or looked up), and as nothing for server_key.
void read_absent(const Word& w, const stick::Table& t, std::vector<Sample>& out);

// The key a sample value has in table t (false: none of the table's type).
bool key_of(const Sample& s, const stick::TableDef& t, std::string* out);

// The table_ converter: replaces each value by what `c` reads in its table.
void convert(const Converter& c, std::vector<Sample>& vals);

}  // namespace weir::cond::stick_words
