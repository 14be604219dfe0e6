#pragma once
// Access logs: one line per HTTP request or TCP connection, formatted on the
// worker thread that handled it, buffered per thread and written once per event
// loop iteration (a few large writes per batch, not one per request).
//
// No log target may slow traffic down: every file descriptor is non-blocking
// (pipes and sockets) or a regular file, a batch that a target cannot take now
// waits in a bounded per-thread buffer, and lines beyond that bound, or refused
// by a syslog socket, are dropped and counted (show info: DroppedLogs; metrics:
// weir_process_dropped_logs_total).

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "common/base/fd.h"
#include "common/config/config.h"
#include "common/config/log_format.h"

namespace weir {

class Server;

struct AccessLogEntry {
  std::string_view client;  // "1.2.3.4:5678" or "[::1]:5678"
  std::string_view frontend;
  std::string_view backend;            // "" when none was chosen
  std::string_view server;             // "" when none was reached
  const Server* server_ptr = nullptr;  // for %si/%sp
  int64_t accept_epoch_ms = 0;         // wall clock when the request (or connection) started
  // Timings in ms, -1 when the phase was not reached (HAProxy's TR/Tw/Tc/Tr/Ta).
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
  // Connections and requests in progress when the line was written (HAProxy's
  // actconn/feconn/beconn/srv_conn) and queue lengths (srv_queue/backend_queue).
  int64_t actconn = 0;
  int64_t feconn = 0;
  int64_t beconn = 0;
  int64_t srvconn = 0;
  int64_t srv_queue = 0;
  int64_t be_queue = 0;
  std::string_view request_line;  // http only: "GET /x HTTP/1.1"
  // http only: values of the request headers named by %hr{} in any format, in
  // the order of Worker::log_captures() ("" when absent).
  const std::vector<std::string>* captures = nullptr;
  // Values of the %[...] samples of any format, in the order of
  // Worker::log_samples() ("" when absent), and the values of capture rules.
  const std::vector<std::string>* samples = nullptr;
  const std::vector<std::string>* rule_captures = nullptr;
  bool http = true;
};

// Shared state of a sink that every thread may update.
struct AccessLogSinkState {
  std::atomic<uint64_t> dropped{0};
  std::mutex reconnect_mu;  // Unix syslog socket re-connection
  std::atomic<int64_t> last_reconnect_ms{0};
};

// One destination, opened by the worker before it drops privileges.
struct AccessLogSink {
  LogSink config;
  UniqueFd owned;  // files, syslog sockets, re-opened pipes
  int fd = -1;
  enum class Io { kWrite, kSend, kDatagram } io = Io::kWrite;
  // Pipes and sockets: write whole lines in pieces of at most PIPE_BUF bytes, so
  // that lines of several threads never interleave. Regular files take a
  // whole batch in one O_APPEND write.
  bool pipe_sized_writes = true;
  logfmt::Template http_format;  // used for http sessions (unless json)
  logfmt::Template tcp_format;   // used for tcp sessions (unless json)
  // For each %hr slot of http_format and tcp_format: its index in the captures.
  std::vector<size_t> http_capture_map;
  std::vector<size_t> tcp_capture_map;
  // For each %[] slot of http_format and tcp_format: its index in the samples.
  std::vector<size_t> http_sample_map;
  std::vector<size_t> tcp_sample_map;
  std::string hostname;  // syslog header
  std::string name;
  std::unique_ptr<AccessLogSinkState> state = std::make_unique<AccessLogSinkState>();
};

class AccessLogWriter {
 public:
  explicit AccessLogWriter(const std::vector<AccessLogSink>* sinks);
  void log(const AccessLogEntry& e);
  // Writes what every target accepts now; the rest waits for the next call.
  void flush();
  bool enabled() const { return sinks_ && !sinks_->empty(); }
  bool has_pending() const;

  // Bytes a thread may hold for one sink before it drops lines.
  static constexpr size_t kMaxPending = 256 * 1024;

 private:
  void format_template(const logfmt::Template& t, const std::vector<size_t>& capture_map,
                       const std::vector<size_t>& sample_map, const AccessLogEntry& e,
                       std::string& out);
  void format_json(const AccessLogEntry& e, std::string& out);
  void syslog_header(const AccessLogSink& sink, std::string& out);
  void flush_stream(const AccessLogSink& sink, std::string& p);
  void flush_datagrams(const AccessLogSink& sink, std::string& p);
  const std::string& date_for(int64_t epoch_ms);
  const std::vector<AccessLogSink>* sinks_;
  std::vector<std::string> pending_;  // one per sink
  std::string line_;
  int64_t cached_second_ = -1;
  std::string cached_date_;
  int64_t cached_syslog_second_ = -1;
  std::string cached_syslog_date_;  // RFC 3164 "Mmm dd hh:mm:ss"
};

// Opens the sinks of global.log and compiles their formats; `captures` receives
// the request headers that formats print (%hr{}). On failure returns false with
// *error set ("file:line:column: global: log: ..." at the target, `source_name`
// being the configuration's name). A Unix syslog socket that cannot be reached
// now is not an error: its lines are dropped and counted until it can.
bool open_access_log_sinks(const GlobalConfig& g, const std::string& source_name,
                           std::vector<AccessLogSink>* sinks, std::vector<std::string>* captures,
                           std::vector<std::string>* samples, std::string* error);

// Re-opens the log files (after logrotate moved them) and re-connects Unix syslog
// sockets; the same file descriptor numbers keep being used, so threads writing
// concurrently never see a closed one. Returns one line per sink.
std::string reopen_access_log_sinks(std::vector<AccessLogSink>* sinks, bool* ok);

uint64_t dropped_access_log_lines(const std::vector<AccessLogSink>& sinks);

}  // namespace weir
