#include "worker/observe/error_capture.h"

#include <cstdio>

#include "common/base/log.h"

namespace weir {

void ErrorCapture::record(std::string_view peer, std::string_view what, size_t offset,
                          std::string_view data) {
  std::lock_guard lock(mu_);
  ++count_;
  last_.when_ms = log::wall_clock_ms();
  last_.peer.assign(peer);
  last_.what.assign(what);
  last_.offset = offset;
  last_.total = data.size();
  last_.bytes.assign(data.substr(0, kMaxBytes));
}

uint64_t ErrorCapture::count(CapturedError* last) const {
  std::lock_guard lock(mu_);
  if (last) *last = last_;
  return count_;
}

std::string dump_capture(const CapturedError& e) {
  std::string out;
  constexpr size_t kPerLine = 64;
  for (size_t start = 0; start < e.bytes.size(); start += kPerLine) {
    size_t end = std::min(e.bytes.size(), start + kPerLine);
    char prefix[40];
    std::snprintf(prefix, sizeof prefix, "  %05zu  ", start);
    std::string line = prefix;
    size_t caret_col = std::string::npos;
    for (size_t i = start; i < end; ++i) {
      if (i == e.offset) caret_col = line.size();
      unsigned char c = static_cast<unsigned char>(e.bytes[i]);
      if (c == '\r') {
        line += "\\r";
      } else if (c == '\n') {
        line += "\\n";
      } else if (c == '\t') {
        line += "\\t";
      } else if (c < 0x20 || c >= 0x7f || c == '\\') {
        char hex[8];
        std::snprintf(hex, sizeof hex, "\\x%02x", c);
        line += hex;
      } else {
        line += static_cast<char>(c);
      }
    }
    if (e.offset == end && end == e.bytes.size()) caret_col = line.size();
    out += line;
    out += '\n';
    if (caret_col != std::string::npos) {
      out += std::string(caret_col, ' ');
      out += "^\n";
    }
  }
  return out;
}

}  // namespace weir
