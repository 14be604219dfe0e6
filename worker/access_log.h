#pragma once
// Access logs: one line per HTTP request or TCP connection, formatted on the
// worker thread that handled it, buffered per thread and written once per event
// loop iteration (one write(2) per batch, not per request).

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/config.h"
#include "common/fd.h"

namespace weir {

struct AccessLogEntry {
  std::string_view client;  // "1.2.3.4:5678"
  std::string_view frontend;
  std::string_view backend;     // "" when none was chosen
  std::string_view server;      // "" when none was reached
  int64_t accept_epoch_ms = 0;  // wall clock when the request (or connection) started
  // Timings in ms, -1 when the phase was not reached (HAProxy's Tq/Tw/Tc/Tr/Ta).
  int64_t t_request = -1;               // waiting for the full request head
  int64_t t_queue = -1;                 // waiting in a queue (always 0 so far)
  int64_t t_connect = -1;               // establishing the server connection
  int64_t t_response = -1;              // server response time to the head
  int64_t t_total = 0;                  // whole request or connection
  int status = 0;                       // http only; 0 for tcp
  uint64_t bytes_out = 0;               // to the client
  uint64_t bytes_in = 0;                // from the client
  char termination[3] = {'-', '-', 0};  // who ended it, and in which phase
  int retries = 0;
  std::string_view request_line;  // http only: "GET /x HTTP/1.1"
  bool http = true;
};

// One destination, opened by the worker before it drops privileges.
struct AccessLogSink {
  UniqueFd owned;  // for files
  int fd = -1;
  LogFormat format = LogFormat::kText;
  std::string name;
};

class AccessLogWriter {
 public:
  explicit AccessLogWriter(const std::vector<AccessLogSink>* sinks);
  void log(const AccessLogEntry& e);
  void flush();
  bool enabled() const { return sinks_ && !sinks_->empty(); }

 private:
  void format_text(const AccessLogEntry& e, std::string& out);
  void format_json(const AccessLogEntry& e, std::string& out);
  const std::string& date_for(int64_t epoch_ms);
  const std::vector<AccessLogSink>* sinks_;
  std::vector<std::string> pending_;  // one per sink
  int64_t cached_second_ = -1;
  std::string cached_date_;
};

// Opens the sinks of global.log; on failure returns false with *error set.
bool open_access_log_sinks(const GlobalConfig& g, std::vector<AccessLogSink>* sinks,
                           std::string* error);

}  // namespace weir
