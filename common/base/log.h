#pragma once
// Operational log lines (start, stop, reload, errors) for the master and the
// workers, on standard error:
//   2026-11-26T01:02:03.456Z [notice] weir-master[1234]: message
// Access logs are a separate path (worker/observe/access_log.h).

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

namespace weir::log {

enum class Level {
  kDebug,    // developer detail, off unless WEIR_DEBUG=1 is set in the environment
  kInfo,     // routine events
  kNotice,   // lifecycle events an operator wants to see (start, ready, stop)
  kWarning,  // something is off but service continues
  kError,    // an operation failed
  kAlert,    // the process cannot continue
};

// Sets the tag printed before the pid ("weir-master", "weir-worker").
void set_process_tag(std::string_view tag);
void write(Level level, std::string_view message);
// Also hands every line written by this process to `observer` (the master keeps
// the lines of a start or reload for its CLI). Not thread-safe: for the master.
void set_observer(std::function<void(std::string_view line)> observer);
const char* level_name(Level level);

void debug(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
void info(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
void notice(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
void warning(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
void error(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
void alert(const char* fmt, ...) __attribute__((format(printf, 1, 2)));

// Lets a recurring line (an error that repeats while a condition lasts) through
// at most once per interval, and counts the occurrences held back in between.
// Thread-safe.
class Throttle {
 public:
  explicit Throttle(int64_t interval_ms) : interval_ms_(interval_ms) {}
  // True when this occurrence may be logged; *held_back is then the number of
  // occurrences not logged since the previous one that was.
  bool allow(int64_t now_ms, uint64_t* held_back);

 private:
  int64_t interval_ms_;
  std::atomic<int64_t> next_ms_{INT64_MIN};
  std::atomic<uint64_t> held_{0};
};

// "2026-11-26T01:02:03.456Z" for a wall-clock time in milliseconds since the epoch.
std::string iso8601_ms(int64_t epoch_ms);
int64_t wall_clock_ms();

}  // namespace weir::log
