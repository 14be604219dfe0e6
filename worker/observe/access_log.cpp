#include "worker/observe/access_log.h"

#include <fcntl.h>
#include <limits.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>

#include "common/base/json.h"
#include "common/base/log.h"
#include "worker/backend/backend.h"

namespace weir {
namespace {

void append_int(std::string& out, int64_t v) {
  char buf[24];
  int n = std::snprintf(buf, sizeof buf, "%lld", static_cast<long long>(v));
  out.append(buf, static_cast<size_t>(n));
}

// Text lines never carry raw control characters, quotes or non-ASCII bytes from
// a request: they are written as #XX.
void append_sanitized(std::string& out, std::string_view s) {
  for (char c : s) {
    unsigned char u = static_cast<unsigned char>(c);
    if (u < 0x20 || u >= 0x7f || c == '"' || c == '#') {
      char buf[8];
      std::snprintf(buf, sizeof buf, "#%02X", u);
      out += buf;
    } else {
      out += c;
    }
  }
}

std::string_view or_dash(std::string_view s) {
  return s.empty() ? std::string_view("-") : s;
}

// "1.2.3.4:5678" -> ("1.2.3.4", "5678"); "[::1]:80" -> ("::1", "80").
void split_host_port(std::string_view text, std::string_view* host, std::string_view* port) {
  size_t colon = text.rfind(':');
  if (colon == std::string_view::npos) {
    *host = text;
    *port = {};
    return;
  }
  *host = text.substr(0, colon);
  *port = text.substr(colon + 1);
  if (host->size() >= 2 && host->front() == '[' && host->back() == ']') {
    *host = host->substr(1, host->size() - 2);
  }
}

// The parts of "GET /a?b HTTP/1.1".
struct RequestParts {
  std::string_view method, uri, version;
};

RequestParts split_request(std::string_view line) {
  RequestParts p;
  size_t a = line.find(' ');
  if (a == std::string_view::npos) return p;
  size_t b = line.find(' ', a + 1);
  if (b == std::string_view::npos) return p;
  p.method = line.substr(0, a);
  p.uri = line.substr(a + 1, b - a - 1);
  p.version = line.substr(b + 1);
  return p;
}

size_t count_lines(std::string_view s) {
  return static_cast<size_t>(std::count(s.begin(), s.end(), '\n'));
}

const std::string& host_name() {
  static const std::string name = [] {
    char buf[256] = {};
    if (gethostname(buf, sizeof buf - 1) != 0 || !buf[0]) return std::string("-");
    std::string n(buf);
    for (char& c : n)
      if (c == ' ') c = '-';
    return n;
  }();
  return name;
}

bool connect_unix_dgram(int fd, const std::string& path) {
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  if (path.size() >= sizeof sa.sun_path) return false;
  std::memcpy(sa.sun_path, path.data(), path.size());
  return ::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0;
}

// A private, non-blocking open file description for an inherited pipe, so that
// O_NONBLOCK does not leak to the other processes sharing the original one.
int nonblocking_pipe(int fd) {
  std::string path = "/proc/self/fd/" + std::to_string(fd);
  return ::open(path.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
}

// For each name of a format: its index in the worker-wide list (added when new).
std::vector<size_t> slot_map(const std::vector<std::string>& names, std::vector<std::string>* all) {
  std::vector<size_t> map;
  for (const std::string& n : names) {
    auto it = std::find(all->begin(), all->end(), n);
    if (it == all->end()) {
      all->push_back(n);
      it = all->end() - 1;
    }
    map.push_back(static_cast<size_t>(it - all->begin()));
  }
  return map;
}

std::vector<size_t> capture_map(const logfmt::Template& t, std::vector<std::string>* captures) {
  std::vector<size_t> map;
  for (const std::string& h : t.headers) {
    auto it = std::find(captures->begin(), captures->end(), h);
    if (it == captures->end()) {
      captures->push_back(h);
      it = captures->end() - 1;
    }
    map.push_back(static_cast<size_t>(it - captures->begin()));
  }
  return map;
}

}  // namespace

AccessLogWriter::AccessLogWriter(const std::vector<AccessLogSink>* sinks) : sinks_(sinks) {
  if (sinks_) pending_.resize(sinks_->size());
}

const std::string& AccessLogWriter::date_for(int64_t epoch_ms) {
  int64_t second = epoch_ms / 1000;
  if (second != cached_second_) {
    cached_second_ = second;
    time_t t = static_cast<time_t>(second);
    tm tmv{};
    gmtime_r(&t, &tmv);
    char buf[40];
    strftime(buf, sizeof buf, "%d/%b/%Y:%H:%M:%S", &tmv);
    cached_date_ = buf;
  }
  return cached_date_;
}

void AccessLogWriter::format_template(const logfmt::Template& t,
                                      const std::vector<size_t>& capture_map,
                                      const std::vector<size_t>& sample_map,
                                      const AccessLogEntry& e, std::string& out) {
  using logfmt::Var;
  auto timer = [&out](int64_t v) { append_int(out, v); };
  auto ms_part = [&out](int64_t epoch_ms) {
    char ms[8];
    std::snprintf(ms, sizeof ms, "%03d", static_cast<int>(epoch_ms % 1000));
    out += ms;
  };
  for (const logfmt::Token& tok : t.tokens) {
    switch (tok.var) {
      case Var::kLiteral:
        out += tok.text;
        break;
      case Var::kClientIp:
      case Var::kClientPort: {
        std::string_view host, port;
        split_host_port(e.client, &host, &port);
        out += or_dash(tok.var == Var::kClientIp ? host : port);
        break;
      }
      case Var::kFrontend:
        out += e.frontend;
        break;
      case Var::kBackend:
        out += or_dash(e.backend);
        break;
      case Var::kServer:
        out += or_dash(e.server);
        break;
      case Var::kServerIp:
      case Var::kServerPort: {
        if (!e.server_ptr || e.server.empty()) {
          out += '-';
          break;
        }
        SockAddr a = e.server_ptr->addr();
        if (tok.var == Var::kServerIp) {
          out += a.host_string();
        } else {
          append_int(out, a.port());
        }
        break;
      }
      case Var::kAcceptDate:
        out += date_for(e.accept_epoch_ms);
        out += '.';
        ms_part(e.accept_epoch_ms);
        break;
      case Var::kAcceptIso:
        out += log::iso8601_ms(e.accept_epoch_ms);
        break;
      case Var::kEpochSec:
        append_int(out, e.accept_epoch_ms / 1000);
        break;
      case Var::kEpochMs:
        ms_part(e.accept_epoch_ms);
        break;
      case Var::kTimeRequest:
        timer(e.http ? e.t_request : -1);
        break;
      case Var::kTimeQueue:
        timer(e.t_queue);
        break;
      case Var::kTimeConnect:
        timer(e.t_connect);
        break;
      case Var::kTimeResponse:
        timer(e.http ? e.t_response : -1);
        break;
      case Var::kTimeTotal:
        timer(e.t_total);
        break;
      case Var::kStatus:
        if (e.http && e.status) {
          append_int(out, e.status);
        } else {
          out += '-';  // tcp mode, or no response was sent
        }
        break;
      case Var::kBytesOut:
        append_int(out, static_cast<int64_t>(e.bytes_out));
        break;
      case Var::kBytesIn:
        append_int(out, static_cast<int64_t>(e.bytes_in));
        break;
      case Var::kTermination:
        out += e.termination;
        break;
      case Var::kActConn:
        append_int(out, e.actconn);
        break;
      case Var::kFeConn:
        append_int(out, e.feconn);
        break;
      case Var::kBeConn:
        append_int(out, e.beconn);
        break;
      case Var::kSrvConn:
        append_int(out, e.srvconn);
        break;
      case Var::kRetries:
        append_int(out, e.retries);
        break;
      case Var::kSrvQueue:
        append_int(out, e.srv_queue);
        break;
      case Var::kBeQueue:
        append_int(out, e.be_queue);
        break;
      case Var::kRequest:
        if (e.http && !e.request_line.empty()) {
          append_sanitized(out, e.request_line);
        } else {
          out += '-';
        }
        break;
      case Var::kMethod:
      case Var::kUri:
      case Var::kPath:
      case Var::kQuery:
      case Var::kVersion: {
        RequestParts p = e.http ? split_request(e.request_line) : RequestParts{};
        std::string_view v;
        if (tok.var == Var::kMethod) v = p.method;
        if (tok.var == Var::kUri) v = p.uri;
        if (tok.var == Var::kVersion) v = p.version;
        if (tok.var == Var::kPath || tok.var == Var::kQuery) {
          size_t q = p.uri.find('?');
          v = tok.var == Var::kPath
                  ? p.uri.substr(0, q)
                  : (q == std::string_view::npos ? std::string_view() : p.uri.substr(q));
        }
        if (v.empty() && tok.var != Var::kQuery) {
          out += '-';
        } else {
          append_sanitized(out, v);
        }
        break;
      }
      case Var::kReqHeader: {
        std::string_view v;
        if (e.captures && tok.slot < capture_map.size() &&
            capture_map[tok.slot] < e.captures->size()) {
          v = (*e.captures)[capture_map[tok.slot]];
        }
        if (v.empty()) {
          out += '-';
        } else {
          append_sanitized(out, v);
        }
        break;
      }
      case Var::kPid:
        append_int(out, getpid());
        break;
      case Var::kHostname:
        out += host_name();
        break;
      case Var::kMode:
        out += e.http ? "http" : "tcp";
        break;
      case Var::kSample: {
        std::string_view v;
        if (e.samples && tok.slot < sample_map.size() && sample_map[tok.slot] < e.samples->size()) {
          v = (*e.samples)[sample_map[tok.slot]];
        }
        if (v.empty()) {
          out += '-';
        } else {
          append_sanitized(out, v);
        }
        break;
      }
      case Var::kCaptures:
        if (!e.rule_captures || e.rule_captures->empty()) {
          out += '-';
        } else {
          out += '{';
          for (size_t k = 0; k < e.rule_captures->size(); ++k) {
            if (k) out += '|';
            append_sanitized(out, (*e.rule_captures)[k]);
          }
          out += '}';
        }
        break;
    }
  }
}

void AccessLogWriter::format_json(const AccessLogEntry& e, std::string& out) {
  out += "{\"time\":";
  append_json_string(out, log::iso8601_ms(e.accept_epoch_ms));
  out += ",\"client\":";
  append_json_string(out, e.client);
  out += ",\"frontend\":";
  append_json_string(out, e.frontend);
  out += ",\"backend\":";
  append_json_string(out, e.backend);
  out += ",\"server\":";
  append_json_string(out, e.server);
  out += ",\"mode\":";
  out += e.http ? "\"http\"" : "\"tcp\"";
  if (e.http) {
    out += ",\"t_request\":";
    append_int(out, e.t_request);
  }
  out += ",\"t_queue\":";
  append_int(out, e.t_queue);
  out += ",\"t_connect\":";
  append_int(out, e.t_connect);
  if (e.http) {
    out += ",\"t_response\":";
    append_int(out, e.t_response);
  }
  out += ",\"t_total\":";
  append_int(out, e.t_total);
  if (e.http) {
    out += ",\"status\":";
    append_int(out, e.status);  // 0: no response was sent
  }
  out += ",\"bytes_out\":";
  append_int(out, static_cast<int64_t>(e.bytes_out));
  out += ",\"bytes_in\":";
  append_int(out, static_cast<int64_t>(e.bytes_in));
  out += ",\"termination\":";
  append_json_string(out, e.termination);
  out += ",\"retries\":";
  append_int(out, e.retries);
  out += ",\"actconn\":";
  append_int(out, e.actconn);
  out += ",\"feconn\":";
  append_int(out, e.feconn);
  out += ",\"beconn\":";
  append_int(out, e.beconn);
  out += ",\"srv_conn\":";
  append_int(out, e.srvconn);
  out += ",\"srv_queue\":";
  append_int(out, e.srv_queue);
  out += ",\"backend_queue\":";
  append_int(out, e.be_queue);
  if (e.http) {
    out += ",\"request\":";
    append_json_string(out, e.request_line);
  }
  out += "}";
}

void AccessLogWriter::syslog_header(const AccessLogSink& sink, std::string& out) {
  const LogSink& c = sink.config;
  int64_t now = log::wall_clock_ms();
  out += '<';
  append_int(out, c.facility * 8 + 6);  // severity: informational
  out += '>';
  if (c.framing == SyslogFraming::kRfc5424) {
    out += "1 ";
    out += log::iso8601_ms(now);
    out += ' ';
    out += sink.hostname;
    out += ' ';
    out += c.tag;
    out += ' ';
    append_int(out, getpid());
    out += " - - ";
    return;
  }
  int64_t second = now / 1000;
  if (second != cached_syslog_second_) {
    cached_syslog_second_ = second;
    time_t t = static_cast<time_t>(second);
    tm tmv{};
    localtime_r(&t, &tmv);
    char buf[32];
    strftime(buf, sizeof buf, "%b %e %H:%M:%S", &tmv);
    cached_syslog_date_ = buf;
  }
  out += cached_syslog_date_;
  out += ' ';
  out += sink.hostname;
  out += ' ';
  out += c.tag;
  out += '[';
  append_int(out, getpid());
  out += "]: ";
}

void AccessLogWriter::log(const AccessLogEntry& e) {
  if (!sinks_) return;
  for (size_t i = 0; i < sinks_->size(); ++i) {
    const AccessLogSink& sink = (*sinks_)[i];
    line_.clear();
    if (sink.config.target == LogTarget::kSyslog) syslog_header(sink, line_);
    if (sink.config.format == LogFormat::kJson) {
      format_json(e, line_);
    } else if (e.http) {
      format_template(sink.http_format, sink.http_capture_map, sink.http_sample_map, e, line_);
    } else {
      format_template(sink.tcp_format, sink.tcp_capture_map, sink.tcp_sample_map, e, line_);
    }
    line_ += '\n';
    std::string& p = pending_[i];
    if (p.size() + line_.size() > kMaxPending) {
      // The target has not taken the previous lines: drop this one rather than
      // grow without bound or wait.
      sink.state->dropped.fetch_add(1, std::memory_order_relaxed);
      continue;
    }
    p += line_;
    if (p.size() > 64 * 1024) {
      if (sink.io == AccessLogSink::Io::kDatagram) {
        flush_datagrams(sink, p);
      } else {
        flush_stream(sink, p);
      }
    }
  }
}

bool AccessLogWriter::has_pending() const {
  for (const std::string& p : pending_)
    if (!p.empty()) return true;
  return false;
}

void AccessLogWriter::flush_stream(const AccessLogSink& sink, std::string& p) {
  size_t off = 0;
  while (off < p.size()) {
    // Whole lines, at most PIPE_BUF bytes per write when possible: such writes to
    // a pipe are atomic, so lines from several threads never interleave.
    size_t end = sink.pipe_sized_writes ? std::min(p.size(), off + PIPE_BUF) : p.size();
    if (end < p.size()) {
      size_t nl = p.rfind('\n', end - 1);
      if (nl != std::string::npos && nl >= off) {
        end = nl + 1;
      } else {
        nl = p.find('\n', off);
        end = nl == std::string::npos ? p.size() : nl + 1;
      }
    }
    ssize_t n = sink.io == AccessLogSink::Io::kSend
                    ? ::send(sink.fd, p.data() + off, end - off, MSG_DONTWAIT | MSG_NOSIGNAL)
                    : ::write(sink.fd, p.data() + off, end - off);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;  // later
    if (n <= 0) {
      // A full disk, a closed pipe: these lines are lost, never traffic.
      sink.state->dropped.fetch_add(count_lines(std::string_view(p).substr(off)),
                                    std::memory_order_relaxed);
      off = p.size();
      break;
    }
    off += static_cast<size_t>(n);
  }
  p.erase(0, off);
}

void AccessLogWriter::flush_datagrams(const AccessLogSink& sink, std::string& p) {
  size_t off = 0;
  uint64_t dropped = 0;
  bool reconnect = false;
  while (off < p.size()) {
    size_t nl = p.find('\n', off);
    size_t end = nl == std::string::npos ? p.size() : nl;
    ssize_t n = ::send(sink.fd, p.data() + off, end - off, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      // Syslog is best effort: a full queue (EAGAIN), an absent daemon
      // (ECONNREFUSED, ENOENT, ENOTCONN) or an ICMP error loses the line.
      ++dropped;
      if (errno == ECONNREFUSED || errno == ENOTCONN || errno == ENOENT) reconnect = true;
    }
    off = end + 1;
  }
  p.clear();
  if (dropped) sink.state->dropped.fetch_add(dropped, std::memory_order_relaxed);
  if (reconnect && !sink.config.path.empty()) {
    // The syslog daemon restarted and made a new socket: connect to it again, at
    // most once a second.
    int64_t now = log::wall_clock_ms();
    int64_t last = sink.state->last_reconnect_ms.load(std::memory_order_relaxed);
    if (now - last >= 1000 && sink.state->last_reconnect_ms.compare_exchange_strong(last, now)) {
      std::lock_guard lock(sink.state->reconnect_mu);
      connect_unix_dgram(sink.fd, sink.config.path);
    }
  }
}

void AccessLogWriter::flush() {
  if (!sinks_) return;
  for (size_t i = 0; i < sinks_->size(); ++i) {
    std::string& p = pending_[i];
    if (p.empty()) continue;
    const AccessLogSink& sink = (*sinks_)[i];
    if (sink.io == AccessLogSink::Io::kDatagram) {
      flush_datagrams(sink, p);
    } else {
      flush_stream(sink, p);
    }
  }
}

namespace {

bool open_sink(const LogSink& s, AccessLogSink* sink, std::string* error) {
  sink->config = s;
  switch (s.target) {
    case LogTarget::kStdout:
    case LogTarget::kStderr: {
      int fd = s.target == LogTarget::kStdout ? STDOUT_FILENO : STDERR_FILENO;
      sink->name = s.target == LogTarget::kStdout ? "stdout" : "stderr";
      sink->fd = fd;
      struct stat st {};
      if (fstat(fd, &st) != 0) break;
      sink->pipe_sized_writes = !S_ISREG(st.st_mode);
      if (S_ISSOCK(st.st_mode)) {
        sink->io = AccessLogSink::Io::kSend;  // e.g. systemd's journal stream
      } else if (S_ISFIFO(st.st_mode)) {
        int own = nonblocking_pipe(fd);
        if (own >= 0) {
          sink->owned.reset(own);
          sink->fd = own;
        }
      }
      break;
    }
    case LogTarget::kFile: {
      int fd = ::open(s.path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NONBLOCK, 0640);
      if (fd < 0) {
        *error = "cannot open access log " + s.path + ": " + std::strerror(errno);
        // A named pipe opened without blocking needs its reader to be there.
        if (errno == ENXIO) *error += " (a named pipe that no process reads)";
        return false;
      }
      sink->owned.reset(fd);
      sink->fd = fd;
      sink->name = s.path;
      struct stat st {};
      sink->pipe_sized_writes = fstat(fd, &st) != 0 || !S_ISREG(st.st_mode);
      break;
    }
    case LogTarget::kSyslog: {
      sink->io = AccessLogSink::Io::kDatagram;
      sink->hostname = host_name();
      if (!s.path.empty()) {
        int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0) {
          *error = std::string("cannot create a syslog socket: ") + std::strerror(errno);
          return false;
        }
        sink->owned.reset(fd);
        sink->fd = fd;
        sink->name = "syslog:" + s.path;
        if (!connect_unix_dgram(fd, s.path)) {
          log::warning(
              "syslog socket %s: %s; access-log lines to it are dropped until it "
              "accepts them",
              s.path.c_str(), std::strerror(errno));
        }
      } else {
        int fd = ::socket(s.syslog_addr.family(), SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0) {
          *error = std::string("cannot create a syslog socket: ") + std::strerror(errno);
          return false;
        }
        sink->owned.reset(fd);
        sink->fd = fd;
        sink->name = "syslog:" + s.syslog_addr.to_string();
        if (::connect(fd, s.syslog_addr.sa(), s.syslog_addr.len) != 0) {
          *error = "cannot reach syslog server " + s.syslog_addr.to_string() + ": " +
                   std::strerror(errno);
          return false;
        }
      }
      break;
    }
  }
  return true;
}

}  // namespace

bool open_access_log_sinks(const GlobalConfig& g, const std::string& source_name,
                           std::vector<AccessLogSink>* sinks, std::vector<std::string>* captures,
                           std::vector<std::string>* samples, std::string* error) {
  for (const LogSink& s : g.logs) {
    AccessLogSink sink;
    if (!open_sink(s, &sink, error)) {
      *error = ConfigError{source_name, s.mark.line, s.mark.column, "global: log: " + *error}
                   .to_string();
      return false;
    }
    std::string http_text = logfmt::kHttpFormat;
    std::string tcp_text = logfmt::kTcpFormat;
    if (s.format == LogFormat::kHttp) tcp_text = http_text;
    if (s.format == LogFormat::kTcp) http_text = tcp_text;
    if (s.format == LogFormat::kCustom) http_text = tcp_text = s.custom;
    std::string problem;
    size_t offset = 0;
    auto http_format = logfmt::parse(http_text, &problem, &offset);
    auto tcp_format = logfmt::parse(tcp_text, &problem, &offset);
    if (!http_format || !tcp_format) {
      *error = "log format: " + problem;
      return false;
    }
    sink.http_format = std::move(*http_format);
    sink.tcp_format = std::move(*tcp_format);
    if (s.format != LogFormat::kJson) {
      sink.http_capture_map = capture_map(sink.http_format, captures);
      sink.tcp_capture_map = capture_map(sink.tcp_format, captures);
      sink.http_sample_map = slot_map(sink.http_format.samples, samples);
      sink.tcp_sample_map = slot_map(sink.tcp_format.samples, samples);
    }
    sinks->push_back(std::move(sink));
  }
  return true;
}

std::string reopen_access_log_sinks(std::vector<AccessLogSink>* sinks, bool* ok) {
  std::string out;
  *ok = true;
  for (AccessLogSink& sink : *sinks) {
    const LogSink& c = sink.config;
    if (c.target == LogTarget::kFile) {
      int fd = ::open(c.path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NONBLOCK, 0640);
      if (fd < 0) {
        out += "Error: cannot reopen " + c.path + ": " + std::strerror(errno) +
               " (still writing to the previous file)\n";
        *ok = false;
        continue;
      }
      // dup2 swaps the file behind the descriptor atomically: a thread writing at
      // this instant writes to the old or the new file, never to a closed fd.
      if (::dup2(fd, sink.fd) < 0) {
        out += "Error: cannot reopen " + c.path + ": " + std::strerror(errno) + "\n";
        *ok = false;
      } else {
        out += "reopened " + c.path + "\n";
      }
      ::close(fd);
    } else if (c.target == LogTarget::kSyslog && !c.path.empty()) {
      std::lock_guard lock(sink.state->reconnect_mu);
      if (connect_unix_dgram(sink.fd, c.path)) {
        out += "reconnected syslog socket " + c.path + "\n";
      } else {
        out +=
            "Error: cannot connect to syslog socket " + c.path + ": " + std::strerror(errno) + "\n";
        *ok = false;
      }
    }
  }
  if (out.empty()) out = "no log file to reopen\n";
  return out;
}

uint64_t dropped_access_log_lines(const std::vector<AccessLogSink>& sinks) {
  uint64_t n = 0;
  for (const AccessLogSink& s : sinks) n += s.state->dropped.load(std::memory_order_relaxed);
  return n;
}

}  // namespace weir
