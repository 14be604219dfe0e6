#pragma once
// What the files of HttpSession share (http_session.cpp: the client side and the
// life of the connection; http_session_server.cpp: choosing and connecting to a
// server; http_session_messages.cpp: the heads sent both ways;
// http_session_answers.cpp: rules, weir's own answers, the log line, timeouts).

#include <sys/epoll.h>

#include <cstdint>

namespace weir::http_session_detail {

// How long a closing connection keeps reading what its client still sends.
inline constexpr int64_t kLingerMs = 1000;
// The events every socket of a session is polled for (edge-triggered).
inline constexpr uint32_t kEvents = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;

// The reason phrase of a status weir may generate, with the line of text its
// error page says ("" for other statuses).
struct StatusText {
  int status;
  const char* reason;
  const char* detail;
};
const StatusText& status_text(int status);

}  // namespace weir::http_session_detail
