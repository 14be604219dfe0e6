#include "tests/support/origin.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <list>
#include <map>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <thread>

#include "tests/support/util.h"

namespace weir::test {

namespace {

using Clock = std::chrono::steady_clock;

constexpr size_t kSlice = 64 * 1024;
constexpr size_t kMaxHead = 1024 * 1024;
constexpr size_t kMaxLine = 64 * 1024;
constexpr size_t kRecordCap = 64 * 1024 * 1024;

bool is_tchar(char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

bool is_token(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), is_tchar);
}

// Comma-separated list elements, trimmed and lowercased, empty elements dropped.
std::vector<std::string> list_tokens(std::string_view v) {
  std::vector<std::string> out;
  while (!v.empty()) {
    size_t comma = v.find(',');
    std::string_view item = trim_ows(v.substr(0, comma));
    if (!item.empty()) out.push_back(ascii_lower(item));
    if (comma == std::string_view::npos) break;
    v.remove_prefix(comma + 1);
  }
  return out;
}

template <typename T>
std::optional<T> parse_number(std::string_view s, int base = 10) {
  T v{};
  if (s.empty()) return std::nullopt;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v, base);
  if (ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
  return v;
}

std::string percent_decode(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size()) {
      auto v = parse_number<unsigned>(s.substr(i + 1, 2), 16);
      if (v) {
        out.push_back(static_cast<char>(*v));
        i += 2;
        continue;
      }
    }
    out.push_back(s[i] == '+' ? ' ' : s[i]);
  }
  return out;
}

const char* reason_phrase(int status) {
  switch (status) {
    case 100:
      return "Continue";
    case 200:
      return "OK";
    case 201:
      return "Created";
    case 202:
      return "Accepted";
    case 204:
      return "No Content";
    case 206:
      return "Partial Content";
    case 301:
      return "Moved Permanently";
    case 302:
      return "Found";
    case 303:
      return "See Other";
    case 304:
      return "Not Modified";
    case 307:
      return "Temporary Redirect";
    case 308:
      return "Permanent Redirect";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 409:
      return "Conflict";
    case 413:
      return "Content Too Large";
    case 414:
      return "URI Too Long";
    case 429:
      return "Too Many Requests";
    case 500:
      return "Internal Server Error";
    case 501:
      return "Not Implemented";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    case 505:
      return "HTTP Version Not Supported";
    default:
      return "Status";
  }
}

std::string hex_size(size_t n) {
  char buf[32];
  auto [p, ec] = std::to_chars(buf, buf + sizeof buf, n, 16);
  (void)ec;
  return std::string(buf, p);
}

// Per-request knobs from the query string (and the server defaults).
struct Params {
  int status = 200;
  int delay_ms = 0;
  std::optional<size_t> size;
  bool chunked = false;
  size_t chunk = 4096;
  bool close = false;
  bool blackhole = false;
  bool reset = false;
  int split_ms = -1;  // >= 0: the head and the body leave in separate writes, this far apart
  int pause_ms = -1;  // >= 0: each chunk of a chunked body is a write of its own, this far apart
  int interim = 0;    // an interim (1xx) response sent before the final one
  std::vector<std::pair<std::string, std::string>> extra_headers;
};

void apply_query(std::string_view target, Params& p) {
  size_t q = target.find('?');
  if (q == std::string_view::npos) return;
  std::string_view query = target.substr(q + 1);
  size_t hash = query.find('#');
  if (hash != std::string_view::npos) query = query.substr(0, hash);
  while (!query.empty()) {
    size_t amp = query.find('&');
    std::string_view kv = query.substr(0, amp);
    size_t eq = kv.find('=');
    std::string_view key = kv.substr(0, eq);
    std::string_view val = eq == std::string_view::npos ? std::string_view() : kv.substr(eq + 1);
    auto flag = [&] { return val != "0" && val != "false"; };
    if (key == "status") {
      if (auto v = parse_number<int>(val); v && *v >= 200 && *v <= 599) p.status = *v;
    } else if (key == "delay") {
      if (auto v = parse_number<int>(val); v && *v >= 0) p.delay_ms = *v;
    } else if (key == "size") {
      if (auto v = parse_number<size_t>(val)) p.size = *v;
    } else if (key == "chunked") {
      p.chunked = flag();
    } else if (key == "chunk") {
      if (auto v = parse_number<size_t>(val); v && *v > 0) p.chunk = *v;
    } else if (key == "close") {
      p.close = flag();
    } else if (key == "blackhole") {
      p.blackhole = flag();
    } else if (key == "reset") {
      p.reset = flag();
    } else if (key == "split") {
      if (auto v = parse_number<int>(val); v && *v >= 0) p.split_ms = *v;
    } else if (key == "pause") {
      if (auto v = parse_number<int>(val); v && *v >= 0) p.pause_ms = *v;
    } else if (key == "interim") {
      if (auto v = parse_number<int>(val); v && *v >= 100 && *v <= 199 && *v != 101) p.interim = *v;
    } else if (key == "header") {
      std::string h = percent_decode(val);
      size_t colon = h.find(':');
      if (colon != std::string::npos && colon > 0)
        p.extra_headers.emplace_back(h.substr(0, colon),
                                     std::string(trim_ows(std::string_view(h).substr(colon + 1))));
    }
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
}

}  // namespace

std::string RecordedRequest::header(std::string_view n) const {
  for (const auto& [k, v] : headers)
    if (iequals(k, n)) return v;
  return {};
}

bool RecordedRequest::has_header(std::string_view n) const {
  for (const auto& h : headers)
    if (iequals(h.first, n)) return true;
  return false;
}

// ---------------------------------------------------------------------------------------------

class OriginServer::Impl {
 public:
  Impl(std::string name, uint16_t port, std::string host)
      : name_(std::move(name)), host_(std::move(host)), port_(port) {
    ignore_sigpipe();
    listen_now(false);
  }
  ~Impl() { stop(); }

  struct Conn {
    int index = 0;
    int fd = -1;  // guarded by mu_; -1 once closed (only the connection's thread closes it)
    std::thread thread;
    std::atomic<bool> finished{false};
    bool in_request = false;  // guarded by mu_: counted in requests_now_
  };

  // Buffered reads on one connection; every byte read is recorded.
  class Io {
   public:
    Io(Impl& impl, Conn& conn) : impl_(impl), conn_(conn) {}
    size_t avail() const { return buf_.size() - pos_; }
    const char* data() const { return buf_.data() + pos_; }
    void consume(size_t n) {
      pos_ += n;
      if (pos_ == buf_.size()) {
        buf_.clear();
        pos_ = 0;
      } else if (pos_ > kSlice && pos_ * 2 > buf_.size()) {
        buf_.erase(0, pos_);
        pos_ = 0;
      }
    }
    // Reads more bytes; false on EOF, error or timeout (timeout_ms < 0: none).
    bool fill(int timeout_ms = -1) {
      int fd = conn_.fd;
      if (timeout_ms >= 0) {
        pollfd p{fd, POLLIN, 0};
        int r;
        do r = ::poll(&p, 1, timeout_ms);
        while (r < 0 && errno == EINTR);
        if (r <= 0) return false;
      }
      char tmp[kSlice];
      ssize_t r;
      do r = ::recv(fd, tmp, sizeof tmp, 0);
      while (r < 0 && errno == EINTR);
      if (r <= 0) return false;
      buf_.append(tmp, static_cast<size_t>(r));
      impl_.record_bytes(conn_.index, std::string_view(tmp, static_cast<size_t>(r)));
      return true;
    }
    // One CRLF-terminated line (without the CRLF); nullopt on EOF or a line that is too long
    // or not CRLF-terminated (*bad set then).
    std::optional<std::string> line(bool* bad) {
      size_t scanned = 0;
      for (;;) {
        std::string_view v(data(), avail());
        size_t lf = v.find('\n', scanned);
        if (lf != std::string_view::npos) {
          if (lf == 0 || v[lf - 1] != '\r') {
            *bad = true;
            return std::nullopt;
          }
          std::string out(v.substr(0, lf - 1));
          consume(lf + 1);
          return out;
        }
        scanned = v.size();
        if (scanned > kMaxLine) {
          *bad = true;
          return std::nullopt;
        }
        if (!fill()) return std::nullopt;
      }
    }
    // Consumes exactly n bytes, hashing them; false on EOF.
    bool body(size_t n, Sha256& sha) {
      while (n > 0) {
        if (avail() == 0 && !fill()) return false;
        size_t take = std::min(n, avail());
        sha.update(data(), take);
        consume(take);
        n -= take;
      }
      return true;
    }
    bool send_all(std::string_view s) {
      while (!s.empty()) {
        ssize_t w = ::send(conn_.fd, s.data(), s.size(), MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return false;
        s.remove_prefix(static_cast<size_t>(w));
      }
      return true;
    }

   private:
    Impl& impl_;
    Conn& conn_;
    std::string buf_;
    size_t pos_ = 0;
  };

  // ---- lifecycle ----

  // "127.0.0.1:PORT", or "[::1]:PORT" for an IPv6 host.
  std::string address() const {
    const bool v6 = host_.find(':') != std::string::npos;
    return (v6 ? "[" + host_ + "]" : host_) + ":" + std::to_string(port_);
  }

  void listen_now(bool retry) {
    std::string h = host_;
    if (h.empty() || h == "*") h = "0.0.0.0";
    if (h == "localhost") h = "127.0.0.1";
    sockaddr_storage a{};
    socklen_t alen = 0;
    auto* a4 = reinterpret_cast<sockaddr_in*>(&a);
    auto* a6 = reinterpret_cast<sockaddr_in6*>(&a);
    if (::inet_pton(AF_INET, h.c_str(), &a4->sin_addr) == 1) {
      a4->sin_family = AF_INET;
      a4->sin_port = htons(port_);
      alen = sizeof(sockaddr_in);
    } else if (::inet_pton(AF_INET6, h.c_str(), &a6->sin6_addr) == 1) {
      a6->sin6_family = AF_INET6;
      a6->sin6_port = htons(port_);
      alen = sizeof(sockaddr_in6);
    } else {
      throw std::runtime_error("OriginServer: bad listen host '" + host_ + "'");
    }
    UniqueFd fd(::socket(a.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd) throw std::runtime_error("OriginServer: socket: " + std::string(strerror(errno)));
    int one = 1;
    ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    const auto deadline = Clock::now() + std::chrono::seconds(2);
    while (::bind(fd.get(), reinterpret_cast<sockaddr*>(&a), alen) != 0) {
      if (!retry || errno != EADDRINUSE || Clock::now() > deadline)
        throw std::runtime_error("OriginServer: bind " + address() + ": " + strerror(errno));
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    if (::listen(fd.get(), 1024) != 0)
      throw std::runtime_error("OriginServer: listen: " + std::string(strerror(errno)));
    socklen_t len = alen;
    ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.ss_family == AF_INET6 ? a6->sin6_port : a4->sin_port);

    int p[2];
    if (::pipe2(p, O_CLOEXEC | O_NONBLOCK) != 0)
      throw std::runtime_error("OriginServer: pipe: " + std::string(strerror(errno)));
    wake_r_.reset(p[0]);
    wake_w_.reset(p[1]);
    listener_ = std::move(fd);
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping_ = false;
    }
    running_ = true;
    acceptor_ = std::thread([this] { accept_loop(); });
  }

  void stop() {
    if (!running_) return;
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping_ = true;
    }
    char b = 1;
    [[maybe_unused]] ssize_t w = ::write(wake_w_.get(), &b, 1);
    if (acceptor_.joinable()) acceptor_.join();
    listener_.reset();
    wake_r_.reset();
    wake_w_.reset();
    std::list<std::unique_ptr<Conn>> conns;
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (auto& c : conns_)
        if (c->fd >= 0) ::shutdown(c->fd, SHUT_RDWR);
      conns.swap(conns_);
    }
    stop_cv_.notify_all();
    for (auto& c : conns)
      if (c->thread.joinable()) c->thread.join();
    running_ = false;
  }

  void restart() {
    if (running_) return;
    listen_now(true);
  }

  void accept_loop() {
    for (;;) {
      pollfd fds[2] = {{listener_.get(), POLLIN, 0}, {wake_r_.get(), POLLIN, 0}};
      int r = ::poll(fds, 2, 200);
      reap_finished();
      if (r < 0 && errno != EINTR) return;
      if (fds[1].revents != 0) return;
      if (r <= 0 || (fds[0].revents & POLLIN) == 0) continue;
      int fd = ::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) continue;
      int one = 1;
      ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_) {
        ::close(fd);
        return;
      }
      auto conn = std::make_unique<Conn>();
      conn->index = accepted_++;
      conn->fd = fd;
      ++current_;
      Conn* c = conn.get();
      conns_.push_back(std::move(conn));
      c->thread = std::thread([this, c] { serve(*c); });
    }
  }

  void reap_finished() {
    std::list<std::unique_ptr<Conn>> done;
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (auto it = conns_.begin(); it != conns_.end();) {
        if ((*it)->finished.load()) {
          done.push_back(std::move(*it));
          it = conns_.erase(it);
        } else {
          ++it;
        }
      }
    }
    for (auto& c : done)
      if (c->thread.joinable()) c->thread.join();
  }

  // ---- recording ----

  void record_bytes(int conn_index, std::string_view bytes) {
    std::lock_guard<std::mutex> lock(mu_);
    if (received_total_ >= kRecordCap) return;
    size_t take = std::min(bytes.size(), kRecordCap - received_total_);
    received_[conn_index].append(bytes.data(), take);
    received_total_ += take;
  }

  // ---- closing ----

  void close_conn(Conn& c, bool reset) {
    std::lock_guard<std::mutex> lock(mu_);
    if (c.fd < 0) return;
    if (reset) {
      linger lg{1, 0};
      ::setsockopt(c.fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    }
    ::close(c.fd);
    c.fd = -1;
  }

  // FIN, then read (and record) until the peer closes too, so that close() does not turn
  // unread bytes into a RST.
  void graceful_close(Conn& c, Io& io) {
    ::shutdown(c.fd, SHUT_WR);
    const auto deadline = Clock::now() + std::chrono::seconds(1);
    for (;;) {
      auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
      if (left <= 0) break;
      if (!io.fill(static_cast<int>(left))) break;
      io.consume(io.avail());
    }
    close_conn(c, false);
  }

  // ---- serving ----

  void serve(Conn& c) {
    Io io(*this, c);
    bool reset = false;
    serve_requests(c, io, &reset);
    if (reset) {
      close_conn(c, true);
    } else if (c.fd >= 0) {
      graceful_close(c, io);
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      --current_;
    }
    c.finished.store(true);
  }

  void begin_request() {
    int now = ++in_progress_;
    int peak = peak_.load();
    while (now > peak && !peak_.compare_exchange_weak(peak, now)) {
    }
  }

  // current_requests(): a request counts from its parsed head until just before the last
  // send() of its response (so the count has dropped before the peer can have the whole
  // response), or until the peer has shut the connection (FIN or RST): a proxy that drops
  // a server connection frees its slot although the origin thread may still sleep in a
  // delay. The peer's close is noticed when a request starts (every request in progress is
  // checked then), which is what matters for the peak. (A Content-Length body whose last
  // 64 KiB slice is flushed by append_body() stops counting just after its last send(); the
  // small responses of concurrency tests never do.)
  static bool peer_gone(int fd) {  // with mu_ held (fd stays open)
    pollfd p{fd, POLLRDHUP, 0};
    int r;
    do r = ::poll(&p, 1, 0);
    while (r < 0 && errno == EINTR);
    return r > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)) != 0;
  }
  void end_request_locked(Conn& c) {
    if (!c.in_request) return;
    c.in_request = false;
    requests_now_.fetch_sub(1);
  }
  void end_request(Conn& c) {
    std::lock_guard<std::mutex> lock(mu_);
    end_request_locked(c);
  }
  void start_request(Conn& c) {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& other : conns_) {
      if (other.get() != &c && other->in_request && other->fd >= 0 && peer_gone(other->fd))
        end_request_locked(*other);
    }
    if (c.fd < 0 || peer_gone(c.fd)) return;  // its sender is gone already
    c.in_request = true;
    int now = requests_now_.fetch_add(1) + 1;
    if (now > requests_peak_.load()) requests_peak_.store(now);
  }

  // Writes a small response and asks for the connection to be closed.
  void simple_error(Io& io, int status) {
    std::string body = name_ + "\n";
    std::string r = "HTTP/1.1 " + std::to_string(status) + " " + reason_phrase(status) +
                    "\r\nX-Server: " + name_ + "\r\nContent-Type: text/plain\r\nContent-Length: " +
                    std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
    io.send_all(r);
  }

  void serve_requests(Conn& c, Io& io, bool* reset) {
    for (int req_index = 0;; ++req_index) {
      // ---- head ----
      int idle = idle_timeout_ms_.load();
      // Tolerate empty lines before a request line (RFC 9112 2.2).
      for (;;) {
        if (io.avail() == 0 && !io.fill(idle > 0 ? idle : -1)) return;
        if (io.avail() >= 2 && io.data()[0] == '\r' && io.data()[1] == '\n') {
          io.consume(2);
          continue;
        }
        if (io.avail() == 1 && io.data()[0] == '\r') {
          if (!io.fill()) return;
          continue;
        }
        break;
      }
      size_t head_end = std::string_view::npos;
      size_t scanned = 0;
      for (;;) {
        std::string_view v(io.data(), io.avail());
        head_end = v.find("\r\n\r\n", scanned);
        if (head_end != std::string_view::npos) break;
        scanned = v.size() > 3 ? v.size() - 3 : 0;
        if (v.size() > kMaxHead) {
          simple_error(io, 400);
          return;
        }
        if (!io.fill()) return;
      }
      RecordedRequest rec;
      rec.head.assign(io.data(), head_end + 4);
      io.consume(head_end + 4);
      rec.connection_index = c.index;
      rec.index_on_connection = req_index;

      int bad = parse_head(rec);
      if (bad != 0) {
        simple_error(io, bad);
        return;
      }
      begin_request();
      start_request(c);
      struct Done {
        Impl& impl;
        Conn& c;
        ~Done() {
          --impl.in_progress_;
          impl.end_request(c);
        }
      } done{*this, c};

      Params p;
      p.status = default_status_.load();
      p.delay_ms = default_delay_ms_.load();
      p.blackhole = blackhole_.load();
      apply_query(rec.target, p);

      // ---- framing ----
      std::optional<size_t> content_length;
      bool chunked = false;
      bool keep_alive = rec.version == "HTTP/1.1";
      bool expect_continue = false;
      bool has_te = false;
      for (const auto& [k, v] : rec.headers) {
        if (iequals(k, "content-length")) {
          for (const auto& item : list_tokens(v)) {
            auto n = parse_number<size_t>(item);
            if (!n || (content_length && *content_length != *n) || item[0] == '+') {
              simple_error(io, 400);
              return;
            }
            content_length = n;
          }
          if (!content_length) {
            simple_error(io, 400);
            return;
          }
        } else if (iequals(k, "transfer-encoding")) {
          has_te = true;
          auto codings = list_tokens(v);
          chunked = !codings.empty() && codings.back() == "chunked";
          if (!chunked) {
            simple_error(io, 400);
            return;
          }
        } else if (iequals(k, "connection")) {
          for (const auto& t : list_tokens(v)) {
            if (t == "close") keep_alive = false;
            if (t == "keep-alive" && rec.version == "HTTP/1.0") keep_alive = true;
          }
        } else if (iequals(k, "expect")) {
          expect_continue = ascii_lower(trim_ows(v)) == "100-continue";
        }
      }
      // A "close" token wins over "keep-alive".
      for (const auto& [k, v] : rec.headers)
        if (iequals(k, "connection"))
          for (const auto& t : list_tokens(v))
            if (t == "close") keep_alive = false;
      if (has_te && content_length) {
        simple_error(io, 400);
        return;
      }

      // ---- body ----
      bool has_body = chunked || (content_length && *content_length > 0);
      if (expect_continue && has_body && rec.version == "HTTP/1.1" && !p.blackhole) {
        if (!io.send_all("HTTP/1.1 100 Continue\r\n\r\n")) return;
      }
      Sha256 sha;
      if (chunked) {
        rec.chunked_body = true;
        int r = read_chunked(io, sha, rec);
        if (r < 0) return;
        if (r > 0) {
          simple_error(io, 400);
          return;
        }
      } else if (content_length) {
        if (!io.body(*content_length, sha)) return;
        rec.body_size = *content_length;
      }
      rec.body_sha256 = sha.hex_final();
      {
        std::lock_guard<std::mutex> lock(mu_);
        requests_.push_back(rec);
      }
      records_cv_.notify_all();

      // ---- answer ----
      if (p.reset) {
        *reset = true;
        return;
      }
      if (p.blackhole) {
        // Never answer; read (and record) until the peer closes or stop().
        for (;;) {
          if (!io.fill()) return;
          io.consume(io.avail());
        }
      }
      if (p.delay_ms > 0) {
        std::unique_lock<std::mutex> lock(mu_);
        stop_cv_.wait_for(lock, std::chrono::milliseconds(p.delay_ms), [&] { return stopping_; });
        if (stopping_) return;
      }
      if (p.close) keep_alive = false;
      ++served_;
      if (!write_response(c, io, rec, p, keep_alive)) return;
      if (!keep_alive) return;
    }
  }

  // Returns 0 if the head is acceptable, else the status to answer with.
  static int parse_head(RecordedRequest& rec) {
    std::string_view head(rec.head);
    head.remove_suffix(2);  // keep one CRLF at the end of the last line
    size_t eol = head.find("\r\n");
    std::string_view line = head.substr(0, eol);
    size_t sp1 = line.find(' ');
    if (sp1 == std::string_view::npos) return 400;
    size_t sp2 = line.find(' ', sp1 + 1);
    if (sp2 == std::string_view::npos || line.find(' ', sp2 + 1) != std::string_view::npos)
      return 400;
    std::string_view method = line.substr(0, sp1);
    std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
    std::string_view version = line.substr(sp2 + 1);
    if (!is_token(method) || target.empty()) return 400;
    for (char ch : target)
      if (static_cast<unsigned char>(ch) <= 0x20 || ch == 0x7f) return 400;
    if (version.size() != 8 || version.substr(0, 5) != "HTTP/" || version[6] != '.' ||
        version[5] < '0' || version[5] > '9' || version[7] < '0' || version[7] > '9')
      return 400;
    if (version != "HTTP/1.1" && version != "HTTP/1.0") return 505;
    rec.method = std::string(method);
    rec.target = std::string(target);
    rec.version = std::string(version);

    std::string_view rest = head.substr(eol + 2);
    while (!rest.empty()) {
      size_t e = rest.find("\r\n");
      std::string_view h = rest.substr(0, e);
      rest.remove_prefix(e + 2);
      if (h.find('\n') != std::string_view::npos || h.find('\r') != std::string_view::npos)
        return 400;
      size_t colon = h.find(':');
      if (colon == std::string_view::npos || !is_token(h.substr(0, colon))) return 400;
      std::string_view value = trim_ows(h.substr(colon + 1));
      for (char ch : value)
        if ((static_cast<unsigned char>(ch) < 0x20 && ch != '\t') || ch == 0x7f) return 400;
      rec.headers.emplace_back(std::string(h.substr(0, colon)), std::string(value));
    }
    // Bare LF or CR anywhere in the request line also makes it malformed.
    if (line.find('\n') != std::string_view::npos || line.find('\r') != std::string_view::npos)
      return 400;
    return 0;
  }

  // 0 ok, -1 EOF, 1 malformed.
  static int read_chunked(Io& io, Sha256& sha, RecordedRequest& rec) {
    for (;;) {
      bool bad = false;
      auto line = io.line(&bad);
      if (!line) return bad ? 1 : -1;
      std::string_view l(*line);
      size_t semi = l.find(';');
      std::string_view size_part = trim_ows(l.substr(0, semi));
      if (size_part.empty() || size_part.size() > 15) return 1;
      auto size = parse_number<size_t>(size_part, 16);
      if (!size) return 1;
      if (*size == 0) break;
      if (!io.body(*size, sha)) return -1;
      rec.body_size += *size;
      auto crlf = io.line(&bad);
      if (!crlf) return bad ? 1 : -1;
      if (!crlf->empty()) return 1;
    }
    for (;;) {  // trailer section
      bool bad = false;
      auto line = io.line(&bad);
      if (!line) return bad ? 1 : -1;
      if (line->empty()) return 0;
      size_t colon = line->find(':');
      if (colon == std::string::npos || !is_token(std::string_view(*line).substr(0, colon)))
        return 1;
      rec.trailers.emplace_back(line->substr(0, colon),
                                std::string(trim_ows(std::string_view(*line).substr(colon + 1))));
    }
  }

  bool write_response(Conn& c, Io& io, const RecordedRequest& rec, const Params& p,
                      bool keep_alive) {
    const bool no_body_status = p.status == 204 || p.status == 304;
    const bool head_only = rec.method == "HEAD" || no_body_status;
    const std::string literal = name_ + "\n";
    const bool pattern = p.size.has_value();
    const size_t body_len = no_body_status ? 0 : (pattern ? *p.size : literal.size());
    const std::string body_sha = no_body_status
                                     ? sha256_hex("")
                                     : (pattern ? pattern_sha256(body_len) : sha256_hex(literal));

    // Waits ms (cut short by stop()); false when the server is stopping.
    auto pause = [&](int ms) {
      if (ms <= 0) return true;
      std::unique_lock<std::mutex> lock(mu_);
      stop_cv_.wait_for(lock, std::chrono::milliseconds(ms), [&] { return stopping_; });
      return !stopping_;
    };
    if (p.interim && rec.version == "HTTP/1.1") {
      const std::string interim = "HTTP/1.1 " + std::to_string(p.interim) +
                                  (p.interim == 103 ? " Early Hints" : " Continue") +
                                  "\r\nLink: </style.css>; rel=preload\r\n\r\n";
      if (!io.send_all(interim) || !pause(p.split_ms)) return false;
    }

    std::string out;
    out.reserve(kSlice + 1024);
    out += "HTTP/1.1 " + std::to_string(p.status) + " " + reason_phrase(p.status) + "\r\n";
    out += "X-Server: " + name_ + "\r\n";
    out += "X-Body-Size: " + std::to_string(rec.body_size) + "\r\n";
    out += "X-Body-Sha256: " + rec.body_sha256 + "\r\n";
    out += "X-Conn-Index: " + std::to_string(rec.connection_index) + "\r\n";
    out += "X-Request-Index: " + std::to_string(rec.index_on_connection) + "\r\n";
    out += "X-Response-Sha256: " + body_sha + "\r\n";
    for (const auto& [k, v] : p.extra_headers) out += k + ": " + v + "\r\n";
    if (!no_body_status) {
      out += "Content-Type: text/plain\r\n";
      if (p.chunked) {
        out += "Transfer-Encoding: chunked\r\n";
      } else {
        out += "Content-Length: " + std::to_string(body_len) + "\r\n";
      }
    }
    if (!keep_alive) {
      out += "Connection: close\r\n";
    } else if (rec.version == "HTTP/1.0") {
      out += "Connection: keep-alive\r\n";
    }
    out += "\r\n";
    if (head_only) {
      end_request(c);
      return io.send_all(out);
    }
    if (p.split_ms >= 0) {
      // The head alone, then the body later: as a server that produces the body
      // after the head (or Nagle and delayed ACKs) does.
      if (!io.send_all(out) || !pause(p.split_ms)) return false;
      out.clear();
    }

    auto flush_if_full = [&]() {
      if (out.size() < kSlice) return true;
      bool ok = io.send_all(out);
      out.clear();
      return ok;
    };
    // Appends body bytes [off, off + len) to out, flushing in ~64 KiB slices.
    auto append_body = [&](size_t off, size_t len) {
      while (len > 0) {
        size_t take = std::min(len, kSlice);
        if (pattern) {
          size_t old = out.size();
          out.resize(old + take);
          fill_pattern(out.data() + old, off, take);
        } else {
          out.append(literal, off, take);
        }
        off += take;
        len -= take;
        if (!flush_if_full()) return false;
      }
      return true;
    };
    if (p.chunked) {
      for (size_t off = 0; off < body_len;) {
        size_t n = std::min(p.chunk, body_len - off);
        out += hex_size(n) + "\r\n";
        if (!append_body(off, n)) return false;
        out += "\r\n";
        off += n;
        if (p.pause_ms >= 0) {
          if (!io.send_all(out) || !pause(p.pause_ms)) return false;
          out.clear();
        }
      }
      out += "0\r\n\r\n";
    } else if (!append_body(0, body_len)) {
      return false;
    }
    end_request(c);
    return out.empty() || io.send_all(out);
  }

  // ---- state ----

  const std::string name_;
  const std::string host_;
  uint16_t port_;

  UniqueFd listener_;
  UniqueFd wake_r_, wake_w_;
  std::thread acceptor_;
  bool running_ = false;  // only touched by the owner's thread (ctor/stop/restart)

  mutable std::mutex mu_;
  std::condition_variable stop_cv_;
  mutable std::condition_variable records_cv_;
  bool stopping_ = false;
  std::list<std::unique_ptr<Conn>> conns_;
  int accepted_ = 0;
  int current_ = 0;
  std::vector<RecordedRequest> requests_;
  std::map<int, std::string> received_;
  size_t received_total_ = 0;

  std::atomic<int> default_status_{200};
  std::atomic<int> default_delay_ms_{0};
  std::atomic<bool> blackhole_{false};
  std::atomic<int> idle_timeout_ms_{0};
  std::atomic<int> served_{0};
  std::atomic<int> in_progress_{0};
  std::atomic<int> peak_{0};
  std::atomic<int> requests_now_{0};   // changed with mu_ held
  std::atomic<int> requests_peak_{0};  // changed with mu_ held
};

// ---------------------------------------------------------------------------------------------

OriginServer::OriginServer(std::string name, uint16_t port, std::string host)
    : impl_(std::make_unique<Impl>(std::move(name), port, std::move(host))) {}

OriginServer::~OriginServer() = default;

uint16_t OriginServer::port() const {
  return impl_->port_;
}
const std::string& OriginServer::name() const {
  return impl_->name_;
}
const std::string& OriginServer::host() const {
  return impl_->host_;
}
std::string OriginServer::address() const {
  return impl_->address();
}

void OriginServer::stop() {
  impl_->stop();
}
void OriginServer::restart() {
  impl_->restart();
}
bool OriginServer::running() const {
  return impl_->running_;
}

void OriginServer::set_default_status(int status) {
  impl_->default_status_ = status;
}
void OriginServer::set_default_delay_ms(int ms) {
  impl_->default_delay_ms_ = ms;
}
void OriginServer::set_blackhole(bool on) {
  impl_->blackhole_ = on;
}
void OriginServer::set_idle_timeout_ms(int ms) {
  impl_->idle_timeout_ms_ = ms;
}

int OriginServer::connections_accepted() const {
  std::lock_guard<std::mutex> lock(impl_->mu_);
  return impl_->accepted_;
}
int OriginServer::requests_served() const {
  return impl_->served_.load();
}
int OriginServer::peak_concurrency() const {
  return impl_->peak_.load();
}
int OriginServer::current_requests() const {
  return impl_->requests_now_.load();
}
int OriginServer::peak_concurrent_requests() const {
  return impl_->requests_peak_.load();
}
int OriginServer::current_connections() const {
  std::lock_guard<std::mutex> lock(impl_->mu_);
  return impl_->current_;
}

std::vector<RecordedRequest> OriginServer::requests() const {
  std::lock_guard<std::mutex> lock(impl_->mu_);
  return impl_->requests_;
}

std::string OriginServer::received_bytes() const {
  std::lock_guard<std::mutex> lock(impl_->mu_);
  std::string out;
  out.reserve(impl_->received_total_);
  for (const auto& [idx, bytes] : impl_->received_) out += bytes;
  return out;
}

std::string OriginServer::received_bytes(int connection_index) const {
  std::lock_guard<std::mutex> lock(impl_->mu_);
  auto it = impl_->received_.find(connection_index);
  return it == impl_->received_.end() ? std::string() : it->second;
}

void OriginServer::clear_records() {
  std::lock_guard<std::mutex> lock(impl_->mu_);
  impl_->requests_.clear();
  impl_->received_.clear();
  impl_->received_total_ = 0;
  impl_->served_ = 0;
  impl_->peak_ = impl_->in_progress_.load();
  impl_->requests_peak_ = impl_->requests_now_.load();
}

bool OriginServer::wait_for_requests(size_t n, int timeout_ms) const {
  std::unique_lock<std::mutex> lock(impl_->mu_);
  return impl_->records_cv_.wait_for(lock, std::chrono::milliseconds(timeout_ms),
                                     [&] { return impl_->requests_.size() >= n; });
}

}  // namespace weir::test
