#include "worker/access_log.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>

namespace weir {
namespace {

void append_int(std::string& out, int64_t v) {
  char buf[24];
  int n = std::snprintf(buf, sizeof buf, "%lld", static_cast<long long>(v));
  out.append(buf, static_cast<size_t>(n));
}

void append_json_string(std::string& out, std::string_view s) {
  out += '"';
  for (char c : s) {
    unsigned char u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (u < 0x20 || u >= 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", u);
      out += buf;
    } else {
      out += c;
    }
  }
  out += '"';
}

// Text lines never carry raw control characters from a request.
void append_sanitized(std::string& out, std::string_view s) {
  for (char c : s) {
    unsigned char u = static_cast<unsigned char>(c);
    if (u < 0x20 || u >= 0x7f || c == '"') {
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

void AccessLogWriter::format_text(const AccessLogEntry& e, std::string& out) {
  out += e.client;
  out += " [";
  out += date_for(e.accept_epoch_ms);
  char ms[8];
  std::snprintf(ms, sizeof ms, ".%03d", static_cast<int>(e.accept_epoch_ms % 1000));
  out += ms;
  out += "] ";
  out += e.frontend;
  out += ' ';
  out += or_dash(e.backend);
  out += '/';
  out += or_dash(e.server);
  out += ' ';
  if (e.http) {
    append_int(out, e.t_request);
    out += '/';
  }
  append_int(out, e.t_queue);
  out += '/';
  append_int(out, e.t_connect);
  out += '/';
  if (e.http) {
    append_int(out, e.t_response);
    out += '/';
  }
  append_int(out, e.t_total);
  out += ' ';
  if (e.http) {
    append_int(out, e.status);
    out += ' ';
  }
  append_int(out, static_cast<int64_t>(e.bytes_out));
  out += ' ';
  out += e.termination;
  out += ' ';
  append_int(out, e.retries);
  if (e.http) {
    out += " \"";
    append_sanitized(out, e.request_line);
    out += '"';
  }
  out += '\n';
}

void AccessLogWriter::format_json(const AccessLogEntry& e, std::string& out) {
  out += "{\"time\":";
  append_json_string(out, date_for(e.accept_epoch_ms));
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
    append_int(out, e.status);
  }
  out += ",\"bytes_out\":";
  append_int(out, static_cast<int64_t>(e.bytes_out));
  out += ",\"bytes_in\":";
  append_int(out, static_cast<int64_t>(e.bytes_in));
  out += ",\"termination\":";
  append_json_string(out, e.termination);
  out += ",\"retries\":";
  append_int(out, e.retries);
  if (e.http) {
    out += ",\"request\":";
    append_json_string(out, e.request_line);
  }
  out += "}\n";
}

void AccessLogWriter::log(const AccessLogEntry& e) {
  if (!sinks_) return;
  for (size_t i = 0; i < sinks_->size(); ++i) {
    if ((*sinks_)[i].format == LogFormat::kJson)
      format_json(e, pending_[i]);
    else
      format_text(e, pending_[i]);
    if (pending_[i].size() > 64 * 1024) flush();
  }
}

void AccessLogWriter::flush() {
  if (!sinks_) return;
  for (size_t i = 0; i < sinks_->size(); ++i) {
    std::string& p = pending_[i];
    size_t off = 0;
    while (off < p.size()) {
      ssize_t n = ::write((*sinks_)[i].fd, p.data() + off, p.size() - off);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;  // a full disk or closed pipe loses log lines, never traffic
      off += static_cast<size_t>(n);
    }
    p.clear();
  }
}

bool open_access_log_sinks(const GlobalConfig& g, std::vector<AccessLogSink>* sinks,
                           std::string* error) {
  for (const LogSink& s : g.logs) {
    AccessLogSink sink;
    sink.format = s.format;
    switch (s.target) {
      case LogTarget::kStdout:
        sink.fd = STDOUT_FILENO;
        sink.name = "stdout";
        break;
      case LogTarget::kStderr:
        sink.fd = STDERR_FILENO;
        sink.name = "stderr";
        break;
      case LogTarget::kFile: {
        int fd = ::open(s.path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
        if (fd < 0) {
          *error = "cannot open access log " + s.path + ": " + std::strerror(errno);
          return false;
        }
        sink.owned.reset(fd);
        sink.fd = fd;
        sink.name = s.path;
        break;
      }
    }
    sinks->push_back(std::move(sink));
  }
  return true;
}

}  // namespace weir
