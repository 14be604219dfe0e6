#pragma once
// The peers agent's state file (global.state_dir/tables.state, and the
// hand-over file of a binary upgrade): a StateHeader, then TableBatch
// SNAPSHOT records of every table, each record a 4-byte little-endian length
// and the message. Written to NAME.tmp, flushed to disk and renamed over NAME,
// so a crash leaves the old file or the new one, never half of one.
//
// Loading checks the whole file before it applies anything: a file cut short
// or damaged anywhere is reported and loads nothing.

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "common/servers/record.h"
#include "common/stick/table.h"

namespace weir::peers {

using Tables = std::map<std::string, std::shared_ptr<stick::Table>>;

struct LoadReport {
  bool missing = false;  // no file: nothing to say
  std::string error;     // unreadable: why (nothing was loaded)
  uint64_t entries = 0;  // loaded
  uint64_t expired = 0;  // saved, but their time ran out before this start
  uint64_t servers = 0;  // server records loaded
};

// `servers` (when given) takes the server states the file holds.
LoadReport load_tables(const std::string& path, const Tables& tables, const stick::Now& now,
                       servers::Store* servers = nullptr);
// The same from the file's bytes (what load_tables reads; the fuzz target's entry).
LoadReport load_tables_from(std::string_view data, const Tables& tables, const stick::Now& now,
                            servers::Store* servers = nullptr);
bool save_tables(const std::string& path, const Tables& tables, const stick::Now& now,
                 uint64_t* entries, std::string* error, const servers::Store* servers = nullptr);

// The server states of a `global.state_file` (the master's text format),
// merged into `servers` as records stamped with the file's time, so that any
// change made since is newer. Returns how many; nothing for a missing file,
// and for an unreadable one (with `error` set).
std::optional<size_t> import_state_file(const std::string& path, servers::Store& servers,
                                        std::string* error);

}  // namespace weir::peers
