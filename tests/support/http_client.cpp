#include "tests/support/http_client.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <stdexcept>

namespace weir::test {

namespace {

using Clock = std::chrono::steady_clock;

constexpr size_t kMaxHead = 1024 * 1024;

int remaining_ms(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  return left.count() < 0 ? 0 : static_cast<int>(std::min<long long>(left.count(), 1 << 30));
}

template <typename T>
std::optional<T> parse_number(std::string_view s, int base = 10) {
  T v{};
  if (s.empty()) return std::nullopt;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v, base);
  if (ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
  return v;
}

bool any_header(const std::vector<std::pair<std::string, std::string>>& headers,
                std::string_view name) {
  return std::any_of(headers.begin(), headers.end(),
                     [&](const auto& h) { return iequals(h.first, name); });
}

// Parses "HTTP/1.1 200 OK\r\nName: value\r\n...\r\n\r\n".
bool parse_head(std::string_view head, HttpResponse& r) {
  head.remove_suffix(2);
  size_t eol = head.find("\r\n");
  std::string_view line = head.substr(0, eol);
  size_t sp1 = line.find(' ');
  if (sp1 == std::string_view::npos) return false;
  r.version = std::string(line.substr(0, sp1));
  if (r.version.rfind("HTTP/", 0) != 0) return false;
  std::string_view rest = line.substr(sp1 + 1);
  std::string_view code = rest.substr(0, 3);
  if (code.size() != 3 ||
      !std::all_of(code.begin(), code.end(), [](char c) { return c >= '0' && c <= '9'; }))
    return false;
  r.status = *parse_number<int>(code);
  rest.remove_prefix(3);
  if (!rest.empty()) {
    if (rest.front() != ' ') return false;
    r.reason = std::string(rest.substr(1));
  }
  std::string_view hs = head.substr(eol + 2);
  while (!hs.empty()) {
    size_t e = hs.find("\r\n");
    std::string_view h = hs.substr(0, e);
    hs.remove_prefix(e + 2);
    size_t colon = h.find(':');
    if (colon == std::string_view::npos || colon == 0) return false;
    std::string_view name = h.substr(0, colon);
    if (name.find_first_of(" \t\r\n") != std::string_view::npos) return false;
    r.headers.emplace_back(std::string(name), std::string(trim_ows(h.substr(colon + 1))));
  }
  return true;
}

}  // namespace

std::string HttpResponse::header(std::string_view name) const {
  for (const auto& [k, v] : headers)
    if (iequals(k, name)) return v;
  return {};
}

bool HttpResponse::has_header(std::string_view name) const {
  return any_header(headers, name);
}

std::vector<std::string> HttpResponse::header_values(std::string_view name) const {
  std::vector<std::string> out;
  for (const auto& [k, v] : headers)
    if (iequals(k, name)) out.push_back(v);
  return out;
}

HttpClient::HttpClient(uint16_t port, std::string host, std::string source) {
  ignore_sigpipe();
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  if (host == "localhost") host = "127.0.0.1";
  if (::inet_pton(AF_INET, host.c_str(), &a.sin_addr) != 1)
    throw std::runtime_error("HttpClient: bad host '" + host + "'");
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd) throw std::runtime_error("HttpClient: socket: " + std::string(strerror(errno)));
  std::string where = host + ":" + std::to_string(port);
  if (!source.empty()) {
    sockaddr_in from{};
    from.sin_family = AF_INET;
    if (::inet_pton(AF_INET, source.c_str(), &from.sin_addr) != 1 ||
        ::bind(fd.get(), reinterpret_cast<sockaddr*>(&from), sizeof from) != 0)
      throw std::runtime_error("HttpClient: cannot connect from '" + source + "'");
  }
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    if (errno != EINPROGRESS)
      throw std::runtime_error("HttpClient: connect " + where + ": " + strerror(errno));
    pollfd p{fd.get(), POLLOUT, 0};
    if (::poll(&p, 1, 5000) <= 0)
      throw std::runtime_error("HttpClient: connect " + where + ": timeout");
    int err = 0;
    socklen_t len = sizeof err;
    ::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) throw std::runtime_error("HttpClient: connect " + where + ": " + strerror(err));
  }
  int one = 1;
  ::setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  fd_ = std::move(fd);
}

bool HttpClient::connected() const {
  return fd_.valid() && !eof_;
}

uint16_t HttpClient::local_port() const {
  sockaddr_in a{};
  socklen_t len = sizeof a;
  if (!fd_ || ::getsockname(fd_.get(), reinterpret_cast<sockaddr*>(&a), &len) != 0) return 0;
  return ntohs(a.sin_port);
}

void HttpClient::close() {
  fd_.reset();
  eof_ = true;
}

bool HttpClient::send_raw(std::string_view bytes) {
  if (!fd_) return false;
  const auto deadline = Clock::now() + std::chrono::milliseconds(send_timeout_ms_);
  while (!bytes.empty()) {
    ssize_t w = ::send(fd_.get(), bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (w > 0) {
      bytes.remove_prefix(static_cast<size_t>(w));
      continue;
    }
    if (w < 0 && errno == EINTR) continue;
    if (w < 0 && errno != EAGAIN) return false;
    pollfd p{fd_.get(), POLLOUT, 0};
    int left = remaining_ms(deadline);
    if (left == 0 || ::poll(&p, 1, left) == 0) return false;
  }
  return true;
}

bool HttpClient::fill(Clock::time_point deadline) {
  if (!fd_ || eof_) return false;
  char tmp[65536];
  for (;;) {
    ssize_t r = ::recv(fd_.get(), tmp, sizeof tmp, 0);
    if (r > 0) {
      buf_.append(tmp, static_cast<size_t>(r));
      return true;
    }
    if (r == 0) {
      eof_ = true;
      return false;
    }
    if (errno == EINTR) continue;
    if (errno != EAGAIN) {
      eof_ = true;  // RST or other error: nothing more will come
      return false;
    }
    pollfd p{fd_.get(), POLLIN, 0};
    int left = remaining_ms(deadline);
    if (left == 0) return false;
    int pr = ::poll(&p, 1, left);
    if (pr == 0) return false;
    if (pr < 0 && errno != EINTR) return false;
  }
}

std::optional<HttpResponse> HttpClient::read_response(int timeout_ms, bool head_request) {
  const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  size_t head_end;
  for (size_t scanned = 0;;) {
    head_end = buf_.find("\r\n\r\n", scanned);
    if (head_end != std::string::npos) break;
    scanned = buf_.size() > 3 ? buf_.size() - 3 : 0;
    if (buf_.size() > kMaxHead || !fill(deadline)) return std::nullopt;
  }
  HttpResponse r;
  r.raw_head = buf_.substr(0, head_end + 4);
  if (!parse_head(r.raw_head, r)) return std::nullopt;
  size_t pos = head_end + 4;

  bool no_body = head_request || r.status / 100 == 1 || r.status == 204 || r.status == 304;
  if (!no_body) {
    bool has_te = false;
    std::optional<size_t> content_length;
    for (const auto& [k, v] : r.headers) {
      if (iequals(k, "transfer-encoding")) {
        has_te = true;
        std::string codings = ascii_lower(v);
        size_t comma = codings.rfind(',');
        std::string_view last =
            trim_ows(std::string_view(codings).substr(comma == std::string::npos ? 0 : comma + 1));
        r.chunked = last == "chunked";
      } else if (iequals(k, "content-length")) {
        auto n = parse_number<size_t>(trim_ows(v));
        if (!n || (content_length && *content_length != *n)) return std::nullopt;
        content_length = n;
      }
    }
    if (r.chunked) {
      // Position of the CRLF ending the line that starts at `from` (reading as needed).
      auto line_end = [&](size_t from) -> std::optional<size_t> {
        for (;;) {
          size_t e = buf_.find("\r\n", from);
          if (e != std::string::npos) return e;
          if (buf_.size() - from > 65536 || !fill(deadline)) return std::nullopt;
        }
      };
      for (;;) {
        auto e = line_end(pos);
        if (!e) return std::nullopt;
        std::string_view l = std::string_view(buf_).substr(pos, *e - pos);
        l = trim_ows(l.substr(0, l.find(';')));
        auto size = parse_number<size_t>(l, 16);
        if (!size || l.size() > 15) return std::nullopt;
        pos = *e + 2;
        if (*size == 0) break;
        while (buf_.size() < pos + *size + 2)
          if (!fill(deadline)) return std::nullopt;
        r.body.append(buf_, pos, *size);
        if (buf_.compare(pos + *size, 2, "\r\n") != 0) return std::nullopt;
        pos += *size + 2;
        // Keep the buffer small for big bodies.
        if (pos > (1 << 20)) {
          buf_.erase(0, pos);
          pos = 0;
        }
      }
      for (;;) {  // trailers
        auto e = line_end(pos);
        if (!e) return std::nullopt;
        std::string_view l = std::string_view(buf_).substr(pos, *e - pos);
        pos = *e + 2;
        if (l.empty()) break;
        size_t colon = l.find(':');
        if (colon == std::string_view::npos || colon == 0) return std::nullopt;
        r.trailers.emplace_back(std::string(l.substr(0, colon)),
                                std::string(trim_ows(l.substr(colon + 1))));
      }
    } else if (content_length && !has_te) {
      if (buf_.capacity() < pos + *content_length) buf_.reserve(pos + *content_length);
      while (buf_.size() < pos + *content_length)
        if (!fill(deadline)) return std::nullopt;
      r.body = buf_.substr(pos, *content_length);
      pos += *content_length;
    } else {
      // Close-delimited.
      while (fill(deadline)) {
      }
      if (!eof_) return std::nullopt;
      r.body = buf_.substr(pos);
      pos = buf_.size();
    }
  }
  buf_.erase(0, pos);
  return r;
}

std::optional<HttpResponse> HttpClient::request(
    std::string_view method, std::string_view target,
    const std::vector<std::pair<std::string, std::string>>& headers, std::string_view body,
    int timeout_ms) {
  std::string req;
  req.reserve(256 + body.size());
  req.append(method).append(" ").append(target).append(" HTTP/1.1\r\n");
  if (!any_header(headers, "host")) req += "Host: test\r\n";
  for (const auto& [k, v] : headers) req += k + ": " + v + "\r\n";
  if (!body.empty() && !any_header(headers, "content-length") &&
      !any_header(headers, "transfer-encoding"))
    req += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  req += "\r\n";
  req.append(body);
  // Even if sending fails part-way (the peer may answer early and close), try to read.
  send_raw(req);
  const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  const bool head = iequals(method, "HEAD");
  for (;;) {
    auto r = read_response(remaining_ms(deadline), head);
    if (!r || r->status / 100 != 1 || r->status == 101) return r;
  }
}

bool HttpClient::wait_closed(int timeout_ms) {
  const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  for (;;) {
    buf_.clear();
    if (eof_) return true;
    if (!fill(deadline) && !eof_) return false;
  }
}

std::string HttpClient::read_available(int timeout_ms) {
  const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  while (fill(deadline)) {
  }
  std::string out;
  out.swap(buf_);
  return out;
}

std::optional<HttpResponse> http_get(uint16_t port, std::string_view target, int timeout_ms) {
  try {
    HttpClient c(port);
    return c.request("GET", target, {{"Connection", "close"}}, {}, timeout_ms);
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

}  // namespace weir::test
