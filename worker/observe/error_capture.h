#pragma once
// The last malformed request (per frontend) or response (per backend), kept with
// its bytes and the position of the error, for `show errors` in the runtime API:
// protocol debugging without a packet capture.

#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>

namespace weir {

struct CapturedError {
  int64_t when_ms = 0;  // wall clock
  std::string peer;     // client address, or backend/server
  std::string what;     // the parser's message
  size_t offset = 0;    // where in `bytes` the error was found
  size_t total = 0;     // bytes received when the error was found
  std::string bytes;    // up to kMaxBytes of them
};

class ErrorCapture {
 public:
  static constexpr size_t kMaxBytes = 4096;
  void record(std::string_view peer, std::string_view what, size_t offset, std::string_view data);
  // Number of errors seen, and a copy of the last one.
  uint64_t count(CapturedError* last) const;

 private:
  mutable std::mutex mu_;  // errors are rare: a lock off the normal path is fine
  uint64_t count_ = 0;
  CapturedError last_;
};

// The bytes with control characters escaped, in lines of at most 64 input bytes,
// each prefixed by its offset, and a caret under the error position.
std::string dump_capture(const CapturedError& e);

}  // namespace weir
