#pragma once
// global.state_file: the server states of the serving generation (admin
// states, health, runtime weights and addresses), written at every change so
// that weir starts again from them after a restart. A write that fails (a full
// or read-only disk) costs that write only: the states stay in memory, go to
// the next generation through the master, and are written again at the next
// change.

#include <cstdint>
#include <optional>
#include <string>

namespace weir {

class StateFile {
 public:
  // Writes `states` to `path` (aside, then renamed: a crash never leaves half a
  // file); a failure is counted and warned about once per failing spell.
  void write(const std::string& path, const std::string& states);
  // What `path` holds, or nullopt when it cannot be read (a first start).
  static std::optional<std::string> read(const std::string& path);
  // The master CLI's `show state-file` for `path` ("" when not configured).
  std::string describe(const std::string& path) const;

 private:
  uint64_t written_ = 0;    // writes that succeeded
  uint64_t failed_ = 0;     // writes that failed
  std::string last_error_;  // of the last failed write
  bool failing_ = false;    // the last write failed
};

}  // namespace weir
