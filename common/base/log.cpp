#include "common/base/log.h"

#include <sys/time.h>
#include <unistd.h>

#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <ctime>

namespace weir::log {
namespace {

std::string g_tag = "weir";
std::function<void(std::string_view)> g_observer;
bool g_debug = std::getenv("WEIR_DEBUG") != nullptr;

void vwrite(Level level, const char* fmt, va_list ap) {
  if (level == Level::kDebug && !g_debug) return;
  char buf[2048];
  int n = std::vsnprintf(buf, sizeof buf, fmt, ap);
  if (n < 0) return;
  size_t len = static_cast<size_t>(n) < sizeof buf ? static_cast<size_t>(n) : sizeof buf - 1;
  write(level, std::string_view(buf, len));
}

}  // namespace

void set_process_tag(std::string_view tag) {
  g_tag = std::string(tag);
}

void set_observer(std::function<void(std::string_view line)> observer) {
  g_observer = std::move(observer);
}

const char* level_name(Level level) {
  switch (level) {
    case Level::kDebug:
      return "debug";
    case Level::kInfo:
      return "info";
    case Level::kNotice:
      return "notice";
    case Level::kWarning:
      return "warning";
    case Level::kError:
      return "error";
    case Level::kAlert:
      return "alert";
  }
  return "?";
}

int64_t wall_clock_ms() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

std::string iso8601_ms(int64_t epoch_ms) {
  time_t secs = static_cast<time_t>(epoch_ms / 1000);
  tm t{};
  gmtime_r(&secs, &t);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", t.tm_year + 1900,
                t.tm_mon + 1, t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec,
                static_cast<int>(epoch_ms % 1000));
  return buf;
}

void write(Level level, std::string_view message) {
  if (level == Level::kDebug && !g_debug) return;
  std::string line;
  line.reserve(message.size() + 64);
  line += iso8601_ms(wall_clock_ms());
  line += " [";
  line += level_name(level);
  line += "] ";
  line += g_tag;
  line += '[';
  line += std::to_string(getpid());
  line += "]: ";
  line += message;
  line += '\n';
  // One write() per line keeps lines from different processes and threads whole.
  ssize_t ignored = ::write(STDERR_FILENO, line.data(), line.size());
  (void)ignored;
  if (g_observer) g_observer(line);
}

#define WEIR_LOG_FN(name, level)    \
  void name(const char* fmt, ...) { \
    va_list ap;                     \
    va_start(ap, fmt);              \
    vwrite(level, fmt, ap);         \
    va_end(ap);                     \
  }
WEIR_LOG_FN(debug, Level::kDebug)
WEIR_LOG_FN(info, Level::kInfo)
WEIR_LOG_FN(notice, Level::kNotice)
WEIR_LOG_FN(warning, Level::kWarning)
WEIR_LOG_FN(error, Level::kError)
WEIR_LOG_FN(alert, Level::kAlert)
#undef WEIR_LOG_FN

bool Throttle::allow(int64_t now_ms, uint64_t* held_back) {
  int64_t next = next_ms_.load(std::memory_order_relaxed);
  if (now_ms < next || !next_ms_.compare_exchange_strong(next, now_ms + interval_ms_)) {
    held_.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  *held_back = held_.exchange(0, std::memory_order_relaxed);
  return true;
}

}  // namespace weir::log
