#include "worker/http/http_session.h"

#include <sys/epoll.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "common/base/log.h"
#include "common/base/net.h"
#include "worker/backend/lb/lb.h"
#include "worker/observe/metrics.h"
#include "worker/observe/stats_page.h"
#include "worker/worker.h"

namespace weir {
namespace {

constexpr int64_t kLingerMs = 1000;
// Out of file descriptors: how soon a server connection is tried again.
constexpr int64_t kFdRetryMs = 100;
constexpr uint32_t kEvents = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;

struct StatusText {
  int status;
  const char* reason;
  const char* detail;
};
constexpr StatusText kGenerated[] = {
    {400, "Bad Request", "Your browser sent a request that this server could not understand."},
    {408, "Request Timeout", "The request did not arrive in time."},
    {500, "Internal Server Error", "An internal error occurred."},
    {200, "OK", ""},
    {201, "Created", ""},
    {202, "Accepted", ""},
    {204, "No Content", ""},
    {301, "Moved Permanently", ""},
    {302, "Found", ""},
    {303, "See Other", ""},
    {304, "Not Modified", ""},
    {307, "Temporary Redirect", ""},
    {308, "Permanent Redirect", ""},
    {401, "Unauthorized", "This page needs a user name and password."},
    {403, "Forbidden", "Access to this resource is forbidden."},
    {404, "Not Found", "The requested resource was not found."},
    {405, "Method Not Allowed", "This method is not allowed here."},
    {407, "Proxy Authentication Required", "Authentication is required."},
    {410, "Gone", "The requested resource is gone."},
    {413, "Content Too Large", "The request is too large."},
    {425, "Too Early", "The request came too early."},
    {429, "Too Many Requests", "Too many requests: try again later."},
    {501, "Not Implemented", "This request method is not supported here."},
    {502, "Bad Gateway", "The server returned an invalid or incomplete response."},
    {503, "Service Unavailable", "No server is available to handle this request."},
    {504, "Gateway Timeout", "The server did not respond in time."},
};

const StatusText& status_text(int status) {
  for (const StatusText& s : kGenerated)
    if (s.status == status) return s;
  static const StatusText kOther = {0, "Status", ""};
  return kOther;
}

// Removed from every forwarded message (RFC 9110 7.6.1). Trailer stays: the
// trailers it announces are forwarded with the chunked body.
bool is_hop_by_hop(std::string_view name) {
  return http::iequals(name, "connection") || http::iequals(name, "keep-alive") ||
         http::iequals(name, "proxy-connection") || http::iequals(name, "upgrade") ||
         http::iequals(name, "te") || http::iequals(name, "proxy-authenticate");
}

// Fields a Connection header may not remove: dropping the framing, the Host or
// weir's own X-Forwarded-For on a client's say-so would let it smuggle a body
// past the server or hide its address.
bool protected_from_connection(std::string_view name) {
  return http::iequals(name, "content-length") || http::iequals(name, "transfer-encoding") ||
         http::iequals(name, "host") || http::iequals(name, "x-forwarded-for");
}

// Writes a framing header in one canonical form instead of copying it: the
// parsed Content-Length in decimal; every Transfer-Encoding header merged into
// one list (written at the first one, `*te_done` then set). Returns false when
// `hd` is not a framing header.
template <typename Put>
bool put_framing(const http::MessageHead& h, const http::Header& hd, bool* te_done, Put& put) {
  if (http::iequals(hd.name, "content-length")) {
    char num[24];
    int n =
        std::snprintf(num, sizeof num, "%llu", static_cast<unsigned long long>(h.content_length));
    put("Content-Length: ");
    put(std::string_view(num, static_cast<size_t>(n)));
    put("\r\n");
    return true;
  }
  if (!http::iequals(hd.name, "transfer-encoding")) return false;
  if (*te_done) return true;
  *te_done = true;
  put("Transfer-Encoding: ");
  bool first = true;
  for (size_t i = 0; i < h.header_count; ++i) {
    if (!http::iequals(h.headers[i].name, "transfer-encoding")) continue;
    http::for_each_list_element(h.headers[i].value, [&](std::string_view tok) {
      if (!first) put(", ");
      first = false;
      put(http::iequals(tok, "chunked") ? std::string_view("chunked") : tok);
    });
  }
  put("\r\n");
  return true;
}

// The header names listed in the message's Connection headers (other than
// close, keep-alive and upgrade): hop-by-hop too (RFC 9110 7.6.1). Collected once
// per message; almost always none.
class ConnectionNamed {
 public:
  explicit ConnectionNamed(const http::MessageHead& h) {
    for (size_t i = 0; i < h.header_count; ++i) {
      if (!http::iequals(h.headers[i].name, "connection")) continue;
      std::string_view v = h.headers[i].value;
      while (!v.empty()) {
        size_t comma = v.find(',');
        std::string_view tok = v.substr(0, comma);
        while (!tok.empty() && (tok.front() == ' ' || tok.front() == '\t')) tok.remove_prefix(1);
        while (!tok.empty() && (tok.back() == ' ' || tok.back() == '\t')) tok.remove_suffix(1);
        if (!tok.empty() && !http::iequals(tok, "close") && !http::iequals(tok, "keep-alive") &&
            !http::iequals(tok, "upgrade") && !protected_from_connection(tok) && count_ < kMax) {
          names_[count_++] = tok;
        }
        if (comma == std::string_view::npos) break;
        v.remove_prefix(comma + 1);
      }
    }
  }
  bool has(std::string_view name) const {
    for (size_t i = 0; i < count_; ++i)
      if (http::iequals(names_[i], name)) return true;
    return false;
  }

 private:
  static constexpr size_t kMax = 16;
  std::string_view names_[kMax];
  size_t count_ = 0;
};

// RFC 9110 9.2.2: sending the request twice has the effect of sending it once.
bool idempotent(std::string_view method) {
  return method == "GET" || method == "HEAD" || method == "OPTIONS" || method == "TRACE" ||
         method == "PUT" || method == "DELETE";
}

}  // namespace

void HttpSession::start(ThreadContext& ctx, Frontend& fe, UniqueFd fd, const SockAddr& peer,
                        const tls::FrontContext* tls) {
  auto s = std::make_unique<HttpSession>(ctx, fe, std::move(fd), peer);
  HttpSession* raw = s.get();
  ctx.add_session(std::move(s));
  if (!ctx.loop().add(raw->client_.fd(), kEvents, &raw->client_handler_)) {
    raw->destroy();
    return;
  }
  if (tls) {
    auto conn = tls::accept(*tls, raw->client_.fd());
    if (!conn) {
      raw->destroy();
      return;
    }
    raw->c_tls_ = conn.get();
    raw->c_tls_cfg_ = &tls->config();
    raw->c_handshake_ = true;
    raw->client_.set_secure(std::move(conn));
  }
  if (!fe.config().rules.tcp_request.empty()) {
    HttpFetch f;
    f.src = &raw->peer_;
    f.tls_client = raw->c_tls_ != nullptr;
    f.dst = raw->local_addr();
    f.vars = &raw->vars_;
    std::string ignored;
    if (!run_tcp_rules(fe.config().rules.tcp_request, TcpRule::Stage::kConnection, f, &ignored)) {
      bump(fe.counters().local().denied_requests);
      raw->destroy();  // tcp_request connection reject: closed at once, nothing logged
      return;
    }
  }
  raw->run();
}

HttpSession::HttpSession(ThreadContext& ctx, Frontend& fe, UniqueFd fd, const SockAddr& peer)
    : Session(ctx),
      fe_(fe),
      be_(fe.default_backend()),
      fe_to_(fe.config().timeouts),
      client_(std::move(fd)),
      peer_(peer),
      peer_text_(peer.to_string()),
      timer_(ctx.loop().timers(), &HttpSession::on_timer, this) {
  net::set_nodelay(client_.fd());
  t_start_ = ctx_.loop().now_ms();
  t_start_wall_ = log::wall_clock_ms();
  c_last_activity_ = t_start_;
  fe_.counters().add_connection(t_start_);
}

HttpSession::~HttpSession() = default;

void HttpSession::on_client_io(uint32_t events) {
  if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) c_readable_ = true;
  if (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) c_hup_ = true;
  if (events & (EPOLLOUT | EPOLLHUP | EPOLLERR)) c_writable_ = true;
  // A reset (or both directions shut): nobody is left to answer. A FIN is
  // looked at once it is read (read_client).
  if ((events & (EPOLLHUP | EPOLLERR)) && waiting_for_response()) {
    cancel_request();
    return;
  }
  run();
}

bool HttpSession::waiting_for_response() const {
  return be_ && req_parsed_ && req_body_complete_ && !res_parsed_ &&
         (phase_ == Phase::kQueued || phase_ == Phase::kConnecting || phase_ == Phase::kExchange);
}

void HttpSession::cancel_request() {
  // Finishing the request would keep a server slot (or a queue place) busy for
  // nobody: the server connection is closed, the slot or the place given back.
  term_[0] = 'C';
  term_[1] = phase_ == Phase::kQueued ? 'Q' : phase_ == Phase::kConnecting ? 'C' : 'H';
  if (ticket_) {
    be_->cancel(ticket_);
    ticket_.reset();
  }
  log_transaction();
  destroy();
}

void HttpSession::on_server_io(uint32_t events) {
  if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) s_readable_ = true;
  if (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) s_hup_ = true;
  if (events & (EPOLLOUT | EPOLLHUP | EPOLLERR)) s_writable_ = true;
  if (phase_ == Phase::kConnecting &&
      (s_handshake_ || (events & (EPOLLOUT | EPOLLERR | EPOLLHUP)))) {
    connect_done();
  }
  run();
}

void HttpSession::on_timer(void* self) {
  auto* s = static_cast<HttpSession*>(self);
  s->handle_timeout();
  s->run();
}

void HttpSession::run() {
  if (phase_ == Phase::kClosed) return;
  if (c_handshake_ && !client_handshake()) {
    if (phase_ != Phase::kClosed) update_timer();
    return;
  }
  for (int round = 0; round < 1000 && phase_ != Phase::kClosed; ++round) {
    bool progress = false;
    progress |= read_client();
    if (phase_ == Phase::kClosed) return;
    progress |= parse_request();
    if (phase_ == Phase::kClosed) return;
    progress |= write_server();
    if (phase_ == Phase::kClosed) return;
    progress |= read_server();
    if (phase_ == Phase::kClosed) return;
    progress |= parse_response();
    if (phase_ == Phase::kClosed) return;
    progress |= write_client();
    if (phase_ == Phase::kClosed) return;
    progress |= check_transaction_end();
    if (phase_ == Phase::kClosed) return;
    progress |= pump_tunnel();
    if (!progress) break;
  }
  if (phase_ != Phase::kClosed) update_timer();
}

// --- client side -----------------------------------------------------------

bool HttpSession::client_handshake() {
  switch (c_tls_->handshake()) {
    case SecureLayer::Handshake::kDone:
      c_handshake_ = false;
      // Bytes that came with the end of the handshake may wait inside the TLS
      // layer: read as if the socket had signalled.
      c_readable_ = true;
      c_writable_ = true;
      c_last_activity_ = ctx_.loop().now_ms();
      return true;
    case SecureLayer::Handshake::kWantRead:
    case SecureLayer::Handshake::kWantWrite:
      return false;
    case SecureLayer::Handshake::kFailed:
      fe_.count_tls_failure();
      tls::note_handshake_failure(fe_.name(), peer_text_, c_tls_->failure());
      destroy();
      return false;
  }
  return false;
}

bool HttpSession::read_client() {
  if (!c_readable_ || c_eof_) return false;
  bool want = false;
  switch (phase_) {
    case Phase::kWaitRequest:
      want = true;
      break;
    case Phase::kQueued:
    case Phase::kConnecting:
    case Phase::kExchange:
      // The rest of an upload; or, once the client has shut its side while its
      // request waits, what it sent before its end (see the end of stream below).
      want = (req_parsed_ && !req_body_complete_ && phase_ != Phase::kQueued) ||
             (c_hup_ && waiting_for_response());
      break;
    case Phase::kLinger: {
      char sink[4096];
      ssize_t n = client_.read(sink, sizeof sink);
      if (n > 0) return true;
      if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
        c_readable_ = errno == EINTR;
        return false;
      }
      destroy();
      return true;
    }
    default:
      break;
  }
  if (!want) return false;
  if (!take_buffer(req_in_, kBufferClaim)) return false;  // run() again once it can be had
  req_in_.make_room();
  if (req_in_.space() == 0) return false;
  size_t want_bytes = req_in_.space();
  ssize_t n = client_.read(req_in_.write_ptr(), want_bytes);
  if (n > 0) {
    // A short read drained the socket; the next bytes bring a new edge.
    if (static_cast<size_t>(n) < want_bytes && !c_hup_ && client_.drained()) c_readable_ = false;
    if (phase_ == Phase::kWaitRequest && req_in_.empty()) t_req_first_byte_ = ctx_.loop().now_ms();
    req_in_.produce(static_cast<size_t>(n));
    bytes_in_ += static_cast<uint64_t>(n);
    c_last_activity_ = ctx_.loop().now_ms();
    if (phase_ != Phase::kWaitRequest) extend_request_body_window();
    return true;
  }
  if (n < 0 && errno == EAGAIN) {
    c_readable_ = false;
    return false;
  }
  if (n < 0 && errno == EINTR) return true;
  // End of stream or error from the client.
  c_eof_ = true;
  const bool reset = n < 0;
  if (phase_ == Phase::kWaitRequest) {
    // Whole requests already read (pipelined before the end) are answered;
    // parse_request drops a partial one.
    if (req_in_.empty()) destroy();  // an idle connection: nothing to answer
    return true;
  }
  if (!req_body_complete_) {
    // The client gave up in the middle of its upload.
    term_[0] = 'C';
    term_[1] = 'D';
    log_transaction();
    destroy();
    return true;
  }
  // The client ended while its request waits for the response head. A reset
  // leaves nobody to answer. A FIN with nothing sent behind the request means
  // the client gave up (curl -m, a browser's stop) unless abortonclose is off;
  // after further requests (pipelining, then shutting its side, as `printf ... |
  // nc -N` does), or when it came with the request itself, it is a half-close:
  // every request read is answered, and the connection closes once nothing
  // read is left unanswered (finish_transaction).
  if (waiting_for_response() && (reset || (be_->config().abortonclose && !req_after_client_end_ &&
                                           !next_request_buffered()))) {
    cancel_request();
  }
  return true;
}

bool HttpSession::parse_request() {
  if (phase_ != Phase::kWaitRequest || req_in_.empty()) return false;
  http::MessageHead& h = ctx_.scratch_head();
  size_t max_head = req_in_.capacity();
  http::ParseStatus st = http::parse_request(req_in_.data(), req_in_.size(), max_head, &req_scan_,
                                             &h, ctx_.worker().config().global.max_headers);
  if (st == http::ParseStatus::kIncomplete) {
    if (c_eof_) {
      // The client ended its side in the middle of a (pipelined) request.
      bump(fe_.counters().local().request_errors);
      destroy();
      return true;
    }
    return false;
  }
  t_head_ = ctx_.loop().now_ms();
  if (st == http::ParseStatus::kError) {
    log::debug("bad request from %s on frontend '%s': %s at offset %zu", peer_text_.c_str(),
               fe_.name().c_str(), h.error, h.error_offset);
    bump(fe_.counters().local().request_errors);
    fe_.errors().record(peer_text_, h.error, h.error_offset,
                        std::string_view(req_in_.data(), req_in_.size()));
    request_line_.assign("<BADREQ>");
    req_in_.clear();
    send_error(400, "PR");
    return true;
  }
  req_parsed_ = true;
  req_after_client_end_ = c_hup_ || c_eof_;
  req_head_raw_ = h.head_len;
  req_method_.assign(h.method);
  req_minor_ = h.version_minor;
  req_keep_alive_ = h.keep_alive();
  req_body_ = h.body;
  req_body_left_ = h.body == http::BodyKind::kContentLength ? h.content_length : 0;
  req_chunks_.reset();
  req_body_window_ = 0;
  req_body_complete_ = h.body == http::BodyKind::kNone;
  request_line_.assign(h.method);
  request_line_ += ' ';
  request_line_ += h.target;
  request_line_ += req_minor_ ? " HTTP/1.1" : " HTTP/1.0";
  if (const auto& names = ctx_.worker().log_captures(); !names.empty()) {
    captures_.resize(names.size());
    for (size_t i = 0; i < names.size(); ++i) {
      const http::Header* hd = h.find(names[i]);
      captures_[i].assign(hd ? hd->value : std::string_view());
    }
  }
  if (!req_keep_alive_) close_after_response_ = true;
  req_connect_ = h.method == "CONNECT";
  if (req_connect_ && !fe_.config().allow_connect) {
    req_in_.clear();
    send_error(501, "PR");  // weir is not a forward proxy unless told so
    return true;
  }
  extend_request_body_window();
  // A malformed chunked body already here was answered (400) or closed.
  if (phase_ != Phase::kWaitRequest) return true;
  if (!fe_.config().rules.http_request.empty() ||
      (be_ && !be_->config().rules.http_request.empty())) {
    if (!apply_request_rules(h)) return true;
  } else if (!ctx_.worker().log_samples().empty()) {
    eval_log_samples(LogStage::kRequest, &h, nullptr);
  }
  if (!fe_.config().rules.http_response.empty() ||
      (be_ && !be_->config().rules.http_response.empty())) {
    // Response rules may look at the request: keep its head (as rules left it).
    if (edited_head_.empty()) {
      req_head_copy_.assign(req_in_.data(), req_head_raw_);
    } else {
      req_head_copy_ = edited_head_;
    }
  }
  if (!fe_.config().metrics_uri.empty() && (req_method_ == "GET" || req_method_ == "HEAD")) {
    std::string_view path = h.target.substr(0, h.target.find('?'));
    if (path == fe_.config().metrics_uri) {
      req_in_.consume(req_head_raw_);
      req_head_raw_ = 0;
      serve_local(200, "text/plain; version=0.0.4; charset=utf-8",
                  render_prometheus(ctx_.worker()));
      return true;
    }
  }
  if (const StatsPageConfig& stats = fe_.config().stats;
      !stats.uri.empty() && (req_method_ == "GET" || req_method_ == "HEAD")) {
    const std::string_view path = h.target.substr(0, h.target.find('?'));
    const bool csv = path.size() == stats.uri.size() + 4 && path.ends_with(";csv") &&
                     path.starts_with(stats.uri);
    if (csv || path == stats.uri) {
      const http::Header* auth = h.find("authorization");
      const bool allowed = stats_authorized(stats, auth ? auth->value : std::string_view());
      req_in_.consume(req_head_raw_);
      req_head_raw_ = 0;
      if (!allowed) {
        serve_local(401, "text/html; charset=utf-8",
                    "<html><body><h1>401 Unauthorized</h1>\nThis page needs a user name and "
                    "password.\n</body></html>\n",
                    "WWW-Authenticate: Basic realm=\"" + stats.realm + "\"\r\n");
      } else if (csv) {
        serve_local(200, "text/csv; charset=utf-8", render_stats_csv(ctx_.worker()));
      } else {
        serve_local(200, "text/html; charset=utf-8", render_stats_html(ctx_.worker(), stats));
      }
      return true;
    }
  }
  if (!be_) {
    send_error(503, "SC");
    return true;
  }
  // The scratch head stays valid while this call stack runs: a pooled server
  // connection lets build_request_head() reuse it instead of parsing again.
  scratch_fresh_ = true;
  compute_lb_request(h);
  begin_server_attempt();
  scratch_fresh_ = false;
  return true;
}

const SockAddr* HttpSession::local_addr() {
  if (!local_addr_) {
    SockAddr a;
    a.len = sizeof a.storage;
    if (::getsockname(client_.fd(), a.sa(), &a.len) != 0) return nullptr;
    local_addr_ = a;
  }
  return &*local_addr_;
}

void HttpSession::eval_log_samples(LogStage stage, const http::MessageHead* req,
                                   const http::MessageHead* res) {
  const auto& samples = ctx_.worker().log_samples();
  sample_values_.resize(samples.size());
  HttpFetch f;
  f.src = &peer_;
  f.tls_client = c_tls_ != nullptr;
  f.ssl = c_tls_ && !c_handshake_ ? c_tls_->ssl() : nullptr;
  f.dst = local_addr();
  f.req = req;
  f.req_edit = req && req_edit_ ? &*req_edit_ : nullptr;
  f.res = res;
  f.res_edit = res && res_edit_ ? &*res_edit_ : nullptr;
  f.status = res ? (res_edit_ ? res_edit_->status : res->status) : res_status_;
  f.vars = &vars_;
  f.req_len = req ? req->head_len : 0;
  for (size_t i = 0; i < samples.size(); ++i) {
    const cond::FetchSpec& fs = samples[i].fetch;
    // Request fetches when the request is there, response ones with the
    // response; the rest (addresses, variables, status) when the line is written.
    const LogStage when = fs.response_only() && fs.fetch != cond::Fetch::kStatus
                              ? LogStage::kResponse
                          : fs.http_only() && !fs.response_only() ? LogStage::kRequest
                                                                  : LogStage::kLog;
    if (when != stage) continue;
    sample_values_[i] = samples[i].evaluate(f).value_or(std::string());
  }
}

bool HttpSession::apply_request_rules(http::MessageHead& h) {
  HttpFetch f;
  f.src = &peer_;
  f.tls_client = c_tls_ != nullptr;
  f.ssl = c_tls_ && !c_handshake_ ? c_tls_->ssl() : nullptr;
  f.dst = local_addr();
  f.req = &h;
  f.vars = &vars_;
  f.req_len = h.head_len;
  RuleVerdict v;
  if (!fe_.config().rules.http_request.empty()) {
    v = run_http_rules(fe_.config().rules.http_request, f, h, &req_edit_, &vars_, &rule_captures_,
                       false);
    if (v.kind == RuleVerdict::Kind::kContinue && v.use_backend) {
      // A name no backend has (from a map, say) keeps the default backend.
      for (const auto& b : ctx_.worker().backends()) {
        if (b->name() == v.backend && b->config().mode == Mode::kHttp) be_ = b.get();
      }
    }
  }
  if (v.kind == RuleVerdict::Kind::kContinue && be_ && !be_->config().rules.http_request.empty()) {
    v = run_http_rules(be_->config().rules.http_request, f, h, &req_edit_, &vars_, &rule_captures_,
                       false);
  }
  if (!ctx_.worker().log_samples().empty()) eval_log_samples(LogStage::kRequest, &h, nullptr);
  if (v.kind != RuleVerdict::Kind::kContinue) {
    answer_rule(v);
    return false;
  }
  if (req_edit_) {
    edited_head_ = req_edit_->request_text();
    size_t scan = 0;
    if (http::parse_request(edited_head_.data(), edited_head_.size(), edited_head_.size() + 1,
                            &scan, &h, ctx_.worker().config().global.max_headers) !=
        http::ParseStatus::kComplete) {
      log::warning("frontend '%s': the request as rules changed it is not valid HTTP: %s",
                   fe_.name().c_str(), h.error ? h.error : "?");
      edited_head_.clear();
      send_error(500, "PR");
      return false;
    }
    req_method_.assign(h.method);
  }
  return true;
}

void HttpSession::answer_rule(const RuleVerdict& v) {
  const HttpRule& r = *v.rule;
  req_in_.consume(req_head_raw_);
  req_head_raw_ = 0;
  switch (v.kind) {
    case RuleVerdict::Kind::kDeny:
      bump(fe_.counters().local().denied_requests);
      if (r.body.empty()) {
        send_error(r.status, "PR");
      } else {
        respond(r.status, r.content_type.empty() ? "text/plain" : r.content_type, r.body, {}, "PR");
      }
      return;
    case RuleVerdict::Kind::kReturn:
      respond(r.status, r.content_type.empty() && !r.body.empty() ? "text/plain" : r.content_type,
              r.body, {}, "LR");
      return;
    case RuleVerdict::Kind::kRedirect:
      respond(r.status, {}, {}, "Location: " + v.location + "\r\n", "LR");
      return;
    case RuleVerdict::Kind::kTarpit:
      bump(fe_.counters().local().denied_requests);
      tarpit_rule_ = &r;
      tarpit_until_ = ctx_.loop().now_ms() + r.delay;
      phase_ = Phase::kTarpit;
      return;
    case RuleVerdict::Kind::kContinue:
      return;
  }
}

bool HttpSession::apply_response_rules(const http::MessageHead& h) {
  HttpFetch f;
  f.src = &peer_;
  f.tls_client = c_tls_ != nullptr;
  f.ssl = c_tls_ && !c_handshake_ ? c_tls_->ssl() : nullptr;
  f.dst = local_addr();
  f.res = &h;
  f.status = h.status;
  f.vars = &vars_;
  // The request as it was sent (kept for the response rules: the original may
  // have left with its body).
  std::unique_ptr<http::MessageHead> req;
  if (!req_head_copy_.empty()) {
    req = std::make_unique<http::MessageHead>();
    size_t scan = 0;
    if (http::parse_request(req_head_copy_.data(), req_head_copy_.size(), req_head_copy_.size() + 1,
                            &scan, req.get(), http::kMaxHeaders) == http::ParseStatus::kComplete) {
      f.req = req.get();
      f.req_len = req->head_len;
    }
  }
  res_edit_.reset();
  RuleVerdict v;
  for (const std::vector<HttpRule>* rules :
       {be_ ? &be_->config().rules.http_response : nullptr, &fe_.config().rules.http_response}) {
    if (!rules || rules->empty()) continue;
    v = run_http_rules(*rules, f, h, &res_edit_, &vars_, &rule_captures_, true);
    if (v.kind != RuleVerdict::Kind::kContinue) break;
  }
  if (v.kind == RuleVerdict::Kind::kContinue) return true;
  // The server's response is dropped: its connection cannot be reused.
  const HttpRule& r = *v.rule;
  res_parsed_ = false;
  if (v.kind == RuleVerdict::Kind::kDeny) {
    bump(be_->counters().local().denied_responses);
    if (r.body.empty()) {
      send_error(r.status, "PH");
    } else {
      respond(r.status, r.content_type.empty() ? "text/plain" : r.content_type, r.body, {}, "PH");
    }
  } else {
    respond(r.status, r.content_type.empty() && !r.body.empty() ? "text/plain" : r.content_type,
            r.body, {}, "LR");
  }
  return false;
}

void HttpSession::compute_lb_request(const http::MessageHead& h) {
  lb_req_ = LbRequest{};
  const BalanceConfig& b = be_->config().balance;
  std::string_view key;
  bool found = false;
  std::string host;
  switch (b.algorithm) {
    case Balance::kSource:
      host = peer_.host_string();
      key = host;
      found = true;
      break;
    case Balance::kUri:
      key = uri_hash_input(h.target, b.uri_depth, b.uri_whole);
      found = true;
      break;
    case Balance::kUrlParam:
      key = query_param(h.target, b.name, &found);
      break;
    case Balance::kHdr:
      if (const http::Header* hd = h.find(b.name)) {
        key = hd->value;
        found = true;
      }
      break;
    default:
      return;
  }
  if (found) lb_req_ = LbRequest{true, lb_hash(key)};
}

void HttpSession::extend_request_body_window() {
  if (!req_parsed_ || req_body_complete_) return;
  size_t base = req_head_raw_ + req_body_window_;
  if (req_in_.size() <= base) return;
  size_t avail = req_in_.size() - base;
  if (req_body_ == http::BodyKind::kContentLength) {
    size_t take = static_cast<size_t>(std::min<uint64_t>(avail, req_body_left_));
    req_body_window_ += take;
    req_body_left_ -= take;
    if (req_body_left_ == 0) req_body_complete_ = true;
  } else if (req_body_ == http::BodyKind::kChunked) {
    size_t take = req_chunks_.feed(req_in_.data() + base, avail);
    req_body_window_ += take;
    if (req_chunks_.failed()) {
      bump(fe_.counters().local().request_errors);
      fe_.errors().record(peer_text_, req_chunks_.error(), base + take,
                          std::string_view(req_in_.data(), req_in_.size()));
      if (!req_head_built_ || (req_out_.empty() && !req_sent_)) {
        send_error(400, "PR");
      } else {
        term_[0] = 'P';
        term_[1] = 'D';
        log_transaction();
        destroy();
      }
      return;
    }
    if (req_chunks_.done()) req_body_complete_ = true;
  }
}

bool HttpSession::write_client() {
  if (!c_writable_) return false;
  if (phase_ != Phase::kExchange && phase_ != Phase::kFlushClose) return false;
  if (phase_ == Phase::kFlushClose && local_sent_ < local_body_.size()) {
    iovec iov[2];
    int cnt = 0;
    if (!res_out_.empty()) iov[cnt++] = {res_out_.data(), res_out_.size()};
    iov[cnt++] = {local_body_.data() + local_sent_, local_body_.size() - local_sent_};
    ssize_t n = client_.writev(iov, cnt);
    if (n < 0) {
      if (errno == EAGAIN) {
        c_writable_ = false;
        return false;
      }
      if (errno == EINTR) return true;
      destroy();
      return true;
    }
    size_t left = static_cast<size_t>(n);
    bytes_out_ += left;
    c_last_activity_ = ctx_.loop().now_ms();
    size_t from_head = std::min(left, res_out_.size());
    res_out_.consume(from_head);
    local_sent_ += left - from_head;
    return true;
  }
  size_t body = phase_ == Phase::kExchange ? res_body_window_ : 0;
  if (res_out_.empty() && body == 0) {
    if (phase_ == Phase::kFlushClose) {
      close_client();
      return true;
    }
    return false;
  }
  iovec iov[2];
  int cnt = 0;
  if (!res_out_.empty()) iov[cnt++] = {res_out_.data(), res_out_.size()};
  if (body) iov[cnt++] = {res_in_.data(), body};
  ssize_t n = client_.writev(iov, cnt);
  if (n < 0) {
    if (errno == EAGAIN) {
      c_writable_ = false;
      return false;
    }
    if (errno == EINTR) return true;
    // The client is gone (reset or closed): abandon the transaction.
    term_[0] = 'C';
    term_[1] = 'D';
    log_transaction();
    destroy();
    return true;
  }
  size_t left = static_cast<size_t>(n);
  if (left < res_out_.size() + body) c_writable_ = false;
  bytes_out_ += left;
  c_last_activity_ = ctx_.loop().now_ms();
  size_t from_head = std::min(left, res_out_.size());
  res_out_.consume(from_head);
  left -= from_head;
  if (left) {
    res_in_.consume(left);
    res_body_window_ -= left;
    extend_response_body_window();
  }
  return true;
}

bool HttpSession::request_unread() {
  char probe;
  return c_readable_ && !c_tls_ && ::recv(client_.fd(), &probe, 1, MSG_PEEK | MSG_DONTWAIT) == 1;
}

void HttpSession::close_client() {
  // Shut our side, then read and drop what the client still sends until it closes,
  // so that the kernel does not answer late bytes with a reset that could destroy
  // the response before the client has read it.
  release_server(false);
  release_slot();
  release_buffers();  // what is read from here on is dropped
  client_.shutdown_write();
  phase_ = Phase::kLinger;
  c_readable_ = true;
  linger_deadline_ = ctx_.loop().now_ms() + kLingerMs;
}

// --- server side -----------------------------------------------------------

void HttpSession::begin_server_attempt() {
  ++attempts_;
  int64_t now = ctx_.loop().now_ms();
  Server* previous = server_;
  release_slot();  // a retry gives back the slot of the previous attempt first
  Server* s = nullptr;
  switch (be_->acquire(lb_req_, tried_, attempts_ > 1 ? previous : nullptr, this, &ctx_.loop(), now,
                       &s, &ticket_)) {
    case Backend::Acquire::kServer:
      break;
    case Backend::Acquire::kQueued:
      // Waits for on_server_granted(), or for the queue timeout. server_ still
      // names the previous attempt's server (for redispatch accounting).
      phase_ = Phase::kQueued;
      t_queue_start_ = now;
      return;
    case Backend::Acquire::kNoServer:
      server_ = nullptr;
      send_error(503, "SC");
      return;
    case Backend::Acquire::kQueueFull:
      server_ = nullptr;
      send_error(503, "SQ");
      return;
  }
  start_on_server(s, now);
}

void HttpSession::on_server_granted() {
  if (phase_ != Phase::kQueued || !ticket_) return;
  Server* s = be_->take_grant(ticket_);
  if (!s) return;  // the queue timeout came first
  ticket_.reset();
  int64_t now = ctx_.loop().now_ms();
  queue_ms_ += now - t_queue_start_;
  t_queue_start_ = -1;
  start_on_server(s, now);
  run();
}

void HttpSession::start_on_server(Server* server, int64_t now) {
  if (attempts_ > 1 && server_ && server_ != server) {
    // A retry that moved to another server: a redispatch, counted on the one left.
    bump(be_->counters().local().redispatches);
    bump(server_->counters().local().redispatches);
  }
  server_ = server;
  slot_server_ = server_;
  slot_backend_ = be_;
  tried_.add(server_->index());
  s_eof_ = false;
  s_hup_ = false;
  s_reset_ = false;
  srv_reused_ = false;
  fd_wait_ = false;
  // A replay goes on a fresh connection: another pooled one may be as stale.
  if (auto idle = replayed_ ? nullptr : ctx_.take_idle(server_)) {
    srv_ = std::move(idle);
    srv_->attach(this);
    srv_reused_ = true;
    s_readable_ = false;
    s_writable_ = true;
    s_last_activity_ = now;
    t_connect_start_ = now;
    t_connected_ = now;
    phase_ = Phase::kExchange;
    build_request_head();
    return;
  }
  bool in_progress = false;
  int err = 0;
  UniqueFd fd = net::connect_tcp(server_->addr(), &in_progress, &err);
  if (!fd) {
    if (net::out_of_descriptors(err)) {
      wait_for_fd(err, now);
    } else {
      connect_failed(err);
    }
    return;
  }
  int raw_fd = fd.get();
  srv_ = std::make_unique<ServerConn>(ctx_, server_, Stream(std::move(fd)));
  srv_->attach(this);
  s_readable_ = s_writable_ = false;
  s_tcp_up_ = false;
  s_handshake_ = false;
  t_connect_start_ = now;
  s_last_activity_ = now;
  phase_ = Phase::kConnecting;
  if (!ctx_.loop().add(raw_fd, kEvents, srv_.get())) {
    connect_failed(EMFILE);
    return;
  }
  if (!in_progress) connect_done();
}

void HttpSession::wait_for_fd(int err, int64_t now) {
  ctx_.worker().note_fd_shortage("connection to server " + be_->name() + "/" + server_->name(),
                                 err);
  if (phase_ != Phase::kConnecting) t_connect_start_ = now;  // timeout connect runs from here
  phase_ = Phase::kConnecting;
  fd_wait_ = true;
  fd_retry_at_ = now + kFdRetryMs;
}

void HttpSession::connect_done() {
  if (phase_ != Phase::kConnecting || !srv_) return;
  if (!s_tcp_up_) {
    int err = net::socket_error(srv_->stream().fd());
    if (err != 0) {
      connect_failed(err);
      return;
    }
    s_tcp_up_ = true;
    if (const tls::BackContext* tc = server_->tls()) {
      auto conn =
          tls::connect(*tc, srv_->stream().fd(), server_sni(), server_->tls_session(ctx_.id()));
      if (!conn) {
        connect_failed(ENOMEM);
        return;
      }
      srv_->stream().set_secure(std::move(conn));
      s_handshake_ = true;
    }
  }
  if (s_handshake_ && !server_handshake()) return;
  t_connected_ = ctx_.loop().now_ms();
  s_last_activity_ = t_connected_;
  s_writable_ = true;
  phase_ = Phase::kExchange;
  server_->observe_result(false, false);
  build_request_head();
}

bool HttpSession::server_handshake() {
  auto* conn = static_cast<tls::Connection*>(srv_->stream().secure());
  switch (conn->handshake()) {
    case SecureLayer::Handshake::kDone:
      s_handshake_ = false;
      s_readable_ = true;
      return true;
    case SecureLayer::Handshake::kWantRead:
    case SecureLayer::Handshake::kWantWrite:
      return false;
    case SecureLayer::Handshake::kFailed:
      break;
  }
  // A failed handshake (verification, protocol) counts as a connection error.
  // The session offered may be the cause: the next connection starts afresh.
  server_->tls_session(ctx_.id())->clear();
  tls::note_server_failure(be_->name(), server_->name(), conn->failure());
  tls_failure_ = conn->failure();
  connect_failed(EPROTO);
  return false;
}

std::string HttpSession::server_sni() {
  const TlsServerConfig& c = server_->tls()->config();
  if (c.sni_text.empty()) return {};
  if (c.sni.is_constant()) return c.sni.text;
  http::MessageHead& h = ctx_.scratch_head();
  const char* head_src = edited_head_.empty() ? req_in_.data() : edited_head_.data();
  const size_t head_len = edited_head_.empty() ? req_head_raw_ : edited_head_.size();
  size_t scan = 0;
  HttpFetch f;
  f.src = &peer_;
  f.dst = local_addr();
  f.tls_client = c_tls_ != nullptr;
  f.ssl = c_tls_ ? c_tls_->ssl() : nullptr;
  f.vars = &vars_;
  if (head_len > 0 && http::parse_request(head_src, head_len, head_len + 1, &scan, &h,
                                          ctx_.worker().config().global.max_headers) ==
                          http::ParseStatus::kComplete) {
    f.req = &h;
    f.req_len = h.head_len;
  }
  scratch_fresh_ = false;
  std::string name = c.sni.render(f);
  // A Host header's port is not part of a server name.
  if (!name.empty() && name.front() != '[') {
    size_t colon = name.rfind(':');
    if (colon != std::string::npos) name.resize(colon);
  }
  return name;
}

void HttpSession::connect_failed(int err) {
  bump(be_->counters().local().connect_errors);
  if (server_) {
    bump(server_->counters().local().connect_errors);
    server_->observe_result(true, false, err == ETIMEDOUT ? "L4TOUT" : "L4CON",
                            err == ETIMEDOUT        ? "connect timeout"
                            : !tls_failure_.empty() ? tls_failure_.c_str()
                                                    : std::strerror(err));
  }
  log::debug("connect to %s/%s failed: %s", be_->name().c_str(),
             server_ ? server_->name().c_str() : "-",
             tls_failure_.empty() ? std::strerror(err) : tls_failure_.c_str());
  tls_failure_.clear();
  if (srv_) ctx_.close_server_conn(std::move(srv_));
  if (attempts_ <= be_->retries() && server_) {
    bump(be_->counters().local().retries);
    bump(server_->counters().local().retries);
    begin_server_attempt();
    return;
  }
  send_error(503, err == ETIMEDOUT ? "sC" : "SC");
}

bool HttpSession::build_request_head() {
  http::MessageHead& h = ctx_.scratch_head();
  size_t scan = 0;
  // The head as rules left it, else as the client sent it.
  const char* head_src = edited_head_.empty() ? req_in_.data() : edited_head_.data();
  const size_t head_len = edited_head_.empty() ? req_head_raw_ : edited_head_.size();
  if (!scratch_fresh_ && http::parse_request(head_src, head_len, head_len + 1, &scan, &h,
                                             ctx_.worker().config().global.max_headers) !=
                             http::ParseStatus::kComplete) {
    send_error(400, "PR");
    return false;
  }
  // Without a buffer now, write_server() builds the head once one comes.
  if (!take_buffer(req_out_, kBufferClaim)) return false;
  req_out_.clear();
  Buffer& o = req_out_;
  bool ok = true;
  auto put = [&](std::string_view s) { ok = ok && o.append(s.data(), s.size()); };
  put(h.method);
  put(" ");
  put(h.target);
  put(h.version_minor ? " HTTP/1.1\r\n" : " HTTP/1.0\r\n");
  const ConnectionNamed connection_named(h);
  bool te_done = false;
  const bool cert_headers = c_tls_ && c_tls_cfg_->client_cert_headers;
  for (size_t i = 0; i < h.header_count; ++i) {
    const http::Header& hd = h.headers[i];
    if (put_framing(h, hd, &te_done, put)) continue;
    if (is_hop_by_hop(hd.name) || connection_named.has(hd.name)) continue;
    // Only weir may tell the server about the client's certificate.
    if (cert_headers && hd.name.size() > 14 &&
        http::iequals(hd.name.substr(0, 14), "x-client-cert-")) {
      continue;
    }
    if (fe_.config().forwardfor && http::iequals(hd.name, "x-forwarded-for")) {
      // Extend the client's list with the address that connected to us.
      put(hd.name);
      put(": ");
      put(hd.value);
      put(", ");
      put(peer_.host_string());
      put("\r\n");
      continue;
    }
    put(hd.name);
    put(": ");
    put(hd.value);
    put("\r\n");
  }
  if (!h.has_host) {
    // HTTP/1.0 without Host: name the server so HTTP/1.1-only servers accept it.
    put("Host: ");
    put(server_->addr_text());
    put("\r\n");
  }
  if (fe_.config().forwardfor && !h.find("x-forwarded-for")) {
    put("X-Forwarded-For: ");
    put(peer_.host_string());
    put("\r\n");
  }
  if (cert_headers) {
    const SSL* ssl = c_tls_->ssl();
    const bool used = tls::peer_cert_used(ssl);
    put("X-Client-Cert-Verify: ");
    put(!used ? "NONE" : tls::peer_verify_result(ssl) == X509_V_OK ? "SUCCESS" : "FAILED");
    put("\r\n");
    if (used) {
      put("X-Client-Cert-Subject: ");
      put(tls::peer_subject(ssl));
      put("\r\nX-Client-Cert-Issuer: ");
      put(tls::peer_issuer(ssl));
      put("\r\nX-Client-Cert-Serial: ");
      put(tls::peer_serial(ssl));
      put("\r\n");
    }
  }
  // A WebSocket handshake keeps its Upgrade (only "websocket": weir cannot
  // tunnel what it does not know); anything else asks for a persistent server
  // connection whatever the client does.
  req_upgrade_ = h.version_minor == 1 && h.conn_upgrade && h.upgrade_websocket &&
                 h.method == "GET" && h.body == http::BodyKind::kNone;
  if (req_upgrade_) {
    put("Connection: upgrade\r\nUpgrade: websocket\r\n");
  } else if (h.version_minor == 0) {
    put("Connection: keep-alive\r\n");
  }
  put("\r\n");
  if (!ok) {
    send_error(400, "PR");
    return false;
  }
  req_head_built_ = true;
  req_sent_ = false;
  if (req_body_ != http::BodyKind::kNone) {
    // A body is about to stream: the raw head is no longer needed (and no retry
    // is possible once body bytes have left).
    req_in_.consume(req_head_raw_);
    req_head_raw_ = 0;
  }
  return true;
}

bool HttpSession::write_server() {
  if (phase_ != Phase::kExchange || !s_writable_ || !srv_) return false;
  if (!req_head_built_ && !build_request_head()) return phase_ != Phase::kExchange;
  if (req_out_.empty() && req_body_window_ == 0) return false;
  iovec iov[2];
  int cnt = 0;
  if (!req_out_.empty()) iov[cnt++] = {req_out_.data(), req_out_.size()};
  if (req_body_window_) iov[cnt++] = {req_in_.data() + req_head_raw_, req_body_window_};
  ssize_t n = srv_->stream().writev(iov, cnt);
  if (n < 0) {
    if (errno == EAGAIN) {
      s_writable_ = false;
      return false;
    }
    if (errno == EINTR) return true;
    if (!res_parsed_) {
      server_failed_before_response("SH");
    } else {
      s_eof_ = true;  // the response side will notice and finish or abort
    }
    return true;
  }
  size_t left = static_cast<size_t>(n);
  if (left < req_out_.size() + req_body_window_) s_writable_ = false;
  s_last_activity_ = ctx_.loop().now_ms();
  size_t from_head = std::min(left, req_out_.size());
  req_out_.consume(from_head);
  left -= from_head;
  if (left) {
    req_in_.consume(left);
    req_body_window_ -= left;
    extend_request_body_window();
  }
  if (req_out_.empty() && req_body_window_ == 0 && req_body_complete_) {
    req_sent_ = true;
    req_out_.release(ctx_.buffers());
  }
  return true;
}

bool HttpSession::read_server() {
  if (phase_ != Phase::kExchange || !s_readable_ || s_eof_ || !srv_) return false;
  if (res_parsed_ && res_body_complete_) return false;
  if (!take_buffer(res_in_, kBufferClaim)) return false;
  res_in_.make_room();
  if (res_in_.space() == 0) return false;
  size_t want_bytes = res_in_.space();
  ssize_t n = srv_->stream().read(res_in_.write_ptr(), want_bytes);
  if (n > 0) {
    if (static_cast<size_t>(n) < want_bytes && !s_hup_ && srv_->stream().drained()) {
      s_readable_ = false;
    }
    res_in_.produce(static_cast<size_t>(n));
    s_last_activity_ = ctx_.loop().now_ms();
    if (res_parsed_) extend_response_body_window();
    return true;
  }
  if (n < 0 && errno == EAGAIN) {
    s_readable_ = false;
    return false;
  }
  if (n < 0 && errno == EINTR) return true;
  s_eof_ = true;
  // A reset is no end of message: it cuts a body delimited by the close short.
  s_reset_ = n < 0;
  if (res_parsed_ && res_body_ == http::BodyKind::kUntilClose && !s_reset_) {
    res_body_complete_ = true;
  }
  return true;
}

void HttpSession::count_response_error() {
  bump(be_->counters().local().response_errors);
  if (server_) bump(server_->counters().local().response_errors);
}

void HttpSession::server_failed_before_response(const char* term) {
  // A kept-alive connection that the server closed just as weir reused it is a
  // classic race, not a server failure; but the server may also have received
  // the request and died working on it. The request is replayed, once and on a
  // fresh connection, only when a second copy cannot do harm: an idempotent
  // method without a body, whose head weir still holds (no byte of a response).
  const bool replay = srv_reused_ && !replayed_ && res_in_.empty() && !res_parsed_ &&
                      req_head_raw_ > 0 && req_body_ == http::BodyKind::kNone &&
                      idempotent(req_method_);
  if (srv_) ctx_.close_server_conn(std::move(srv_));
  if (replay) {
    replayed_ = true;
    bump(be_->counters().local().retries);
    if (server_) bump(server_->counters().local().retries);
    req_out_.clear();
    req_head_built_ = false;
    res_scan_ = 0;
    tried_.clear();
    begin_server_attempt();
    return;
  }
  count_response_error();
  if (server_) server_->observe_result(true, true, "L7RSP", "server closed without a response");
  send_error(502, term);
}

bool HttpSession::parse_response() {
  if (phase_ != Phase::kExchange || res_parsed_) return false;
  if (res_in_.empty()) {
    if (s_eof_) {
      server_failed_before_response("SH");
      return true;
    }
    return false;
  }
  // The head weir writes to the client goes there (taken first: nothing is
  // decided about the response until it can be relayed).
  if (!take_buffer(res_out_, kBufferClaim)) return false;
  http::MessageHead& h = ctx_.scratch_head();
  http::ParseStatus st =
      http::parse_response(res_in_.data(), res_in_.size(), res_in_.capacity(), &res_scan_,
                           req_method_, &h, ctx_.worker().config().global.max_headers);
  if (st == http::ParseStatus::kIncomplete) {
    if (s_eof_) {
      // The server closed in the middle of a response head.
      count_response_error();
      send_error(502, "SH");
      return true;
    }
    return false;
  }
  if (st == http::ParseStatus::kError) {
    log::debug("bad response from %s/%s: %s at offset %zu", be_->name().c_str(),
               server_->name().c_str(), h.error, h.error_offset);
    count_response_error();
    server_->observe_result(true, true, "L7RSP", "invalid response");
    be_->errors().record(be_->name() + "/" + server_->name(), h.error, h.error_offset,
                         std::string_view(res_in_.data(), res_in_.size()));
    send_error(502, "PH");
    return true;
  }
  res_scan_ = 0;
  // A 101 to the WebSocket upgrade weir forwarded, or a 2xx to an allowed
  // CONNECT: the response is relayed, then the connection becomes a tunnel.
  const bool switching = h.status == 101 && req_upgrade_ && h.upgrade_websocket;
  if (h.status >= 100 && h.status < 200 && !switching) {
    if (h.status == 101) {
      // Only a forwarded WebSocket upgrade may switch protocols.
      send_error(502, "PH");
      return true;
    }
    // Interim response (100 Continue, 103 Early Hints): relay to HTTP/1.1 clients.
    if (req_minor_ == 1) {
      if (!res_out_.append(res_in_.data(), h.head_len)) {
        send_error(502, "PH");
        return true;
      }
    }
    res_in_.consume(h.head_len);
    return true;
  }
  t_response_ = ctx_.loop().now_ms();
  res_parsed_ = true;
  res_status_ = h.status;
  if (server_) {
    // Passive layer7 checks: 5xx from the server, except 501 and 505 (the
    // request's fault, not the server's), count as errors.
    const bool bad = h.status >= 500 && h.status != 501 && h.status != 505;
    char what[32] = "";
    if (bad) std::snprintf(what, sizeof what, "HTTP status %d", h.status);
    server_->observe_result(bad, true, "L7STS", what);
  }
  res_body_ = h.body;
  res_body_left_ = h.body == http::BodyKind::kContentLength ? h.content_length : 0;
  res_chunks_.reset();
  res_body_window_ = 0;
  res_body_complete_ = h.body == http::BodyKind::kNone;
  res_server_keep_alive_ = h.keep_alive() && h.body != http::BodyKind::kUntilClose;
  if (h.body == http::BodyKind::kUntilClose || !req_body_complete_) close_after_response_ = true;
  // A draining worker, or a client that shut its side, closes after this
  // response, unless a next request has already been read: that one is
  // answered first, and the last one read says "Connection: close".
  if ((ctx_.draining() || c_eof_) && !next_request_buffered()) close_after_response_ = true;
  tunnel_pending_ = switching || (req_connect_ && h.status / 100 == 2);
  if (!tunnel_pending_ && ((be_ && !be_->config().rules.http_response.empty()) ||
                           !fe_.config().rules.http_response.empty())) {
    if (!apply_response_rules(h)) return true;
  }
  if (!ctx_.worker().log_samples().empty()) eval_log_samples(LogStage::kResponse, nullptr, &h);

  Buffer& o = res_out_;
  bool ok = true;
  auto put = [&](std::string_view s) { ok = ok && o.append(s.data(), s.size()); };
  const ConnectionNamed connection_named(h);
  bool te_done = false;
  auto put_header = [&](const http::Header& hd) {
    if (put_framing(h, hd, &te_done, put)) return;
    if (is_hop_by_hop(hd.name) || connection_named.has(hd.name)) return;
    put(hd.name);
    put(": ");
    put(hd.value);
    put("\r\n");
  };
  if (res_edit_) {
    // Rules changed the response: its head as they left it (rules cannot touch
    // the framing headers).
    const EditableHead& e = *res_edit_;
    put(e.version_minor ? "HTTP/1.1 " : "HTTP/1.0 ");
    put(std::to_string(e.status));
    put(" ");
    put(e.status == h.status && e.reason.empty() ? h.reason
        : e.reason.empty()                       ? std::string_view(status_text(e.status).reason)
                                                 : std::string_view(e.reason));
    put("\r\n");
    for (const auto& [name, value] : e.headers) put_header(http::Header{name, value});
  } else {
    // Status line as the server wrote it (without its line ending).
    std::string_view raw(res_in_.data(), h.head_len);
    size_t eol = raw.find('\n');
    std::string_view status_line = raw.substr(0, eol);
    if (!status_line.empty() && status_line.back() == '\r') status_line.remove_suffix(1);
    put(status_line);
    put("\r\n");
    for (size_t i = 0; i < h.header_count; ++i) put_header(h.headers[i]);
  }
  if (switching) {
    put("Connection: upgrade\r\nUpgrade: websocket\r\n");
  } else if (tunnel_pending_) {
    // CONNECT: nothing to add, the tunnel follows the blank line.
  } else if (close_after_response_) {
    put("Connection: close\r\n");
  } else if (req_minor_ == 0) {
    put("Connection: keep-alive\r\n");
  }
  put("\r\n");
  if (!ok) {
    send_error(502, "PH");
    return true;
  }
  res_in_.consume(h.head_len);
  if (req_head_raw_ > 0 && req_body_ == http::BodyKind::kNone) {
    // The response has begun: the request can no longer be replayed.
    req_in_.consume(req_head_raw_);
    req_head_raw_ = 0;
  }
  extend_response_body_window();
  if (s_eof_ && !s_reset_ && res_body_ == http::BodyKind::kUntilClose) res_body_complete_ = true;
  return true;
}

void HttpSession::extend_response_body_window() {
  if (!res_parsed_ || res_body_complete_) return;
  if (res_in_.size() <= res_body_window_) return;
  size_t avail = res_in_.size() - res_body_window_;
  switch (res_body_) {
    case http::BodyKind::kContentLength: {
      size_t take = static_cast<size_t>(std::min<uint64_t>(avail, res_body_left_));
      res_body_window_ += take;
      res_body_left_ -= take;
      if (res_body_left_ == 0) res_body_complete_ = true;
      break;
    }
    case http::BodyKind::kChunked: {
      size_t take = res_chunks_.feed(res_in_.data() + res_body_window_, avail);
      res_body_window_ += take;
      if (res_chunks_.failed()) {
        log::debug("bad chunked response from %s/%s: %s", be_->name().c_str(),
                   server_->name().c_str(), res_chunks_.error());
        count_response_error();
        s_eof_ = true;  // treat like a truncated response: relay what is valid, then abort
        res_server_keep_alive_ = false;
      }
      if (res_chunks_.done()) res_body_complete_ = true;
      break;
    }
    case http::BodyKind::kUntilClose:
      res_body_window_ += avail;
      break;
    case http::BodyKind::kNone:
      res_body_complete_ = true;
      break;
  }
}

bool HttpSession::check_transaction_end() {
  if (phase_ != Phase::kExchange || !res_parsed_) return false;
  bool flushed = res_out_.empty() && res_body_window_ == 0;
  if (!flushed) return false;
  if (res_body_complete_) {
    finish_transaction();
    return true;
  }
  if (s_eof_) {
    // The server closed in the middle of the body: the client cannot get a whole
    // response, so close its connection too rather than let it wait. A body
    // delimited by the close is ended with a reset, or the client would take
    // what it got for the whole body.
    term_[0] = 'S';
    term_[1] = 'D';
    count_response_error();
    log_transaction();
    if (res_body_ == http::BodyKind::kUntilClose) client_.abort();
    destroy();
    return true;
  }
  return false;
}

void HttpSession::release_server(bool reusable) {
  if (!srv_) return;
  if (reusable && !ctx_.draining()) {
    ctx_.put_idle(std::move(srv_));
  } else {
    ctx_.close_server_conn(std::move(srv_));
  }
}

void HttpSession::release_slot() {
  if (!slot_server_) return;
  slot_backend_->release_server(slot_server_);
  slot_server_ = nullptr;
  slot_backend_ = nullptr;
}

void HttpSession::finish_transaction() {
  if (tunnel_pending_) {
    start_tunnel();
    return;
  }
  bool reusable = res_server_keep_alive_ && req_sent_ && res_in_.empty() && !s_eof_;
  if (reusable && s_readable_) {
    // Bytes may wait beyond the response: a server that sends more than it was
    // asked must not hand them to the next client's request.
    char probe;
    ssize_t n = ::recv(srv_->stream().fd(), &probe, 1, MSG_PEEK | MSG_DONTWAIT);
    reusable = n < 0 && errno == EAGAIN;
  }
  release_server(reusable);
  log_transaction();
  // Only a close this response announced ends the connection here: a client
  // that read a head without "Connection: close" may already be sending its
  // next request. A draining worker answers that one with the close instead.
  if (close_after_response_) {
    close_client();
    return;
  }
  reset_transaction();
  if (c_eof_ && req_in_.empty()) close_client();  // the client ended, and all it sent is answered
}

bool HttpSession::next_request_buffered() const {
  return req_body_complete_ && req_in_.size() > req_head_raw_ + req_body_window_;
}

void HttpSession::reset_transaction() {
  req_out_.release(ctx_.buffers());
  res_in_.release(ctx_.buffers());
  res_out_.release(ctx_.buffers());
  req_in_.release_if_empty(ctx_.buffers());
  if (!req_in_.allocated()) drop_buffer_claim();  // an idle connection holds no buffer
  release_slot();
  req_scan_ = 0;
  req_head_raw_ = 0;
  req_parsed_ = false;
  req_body_ = http::BodyKind::kNone;
  req_body_left_ = 0;
  req_body_window_ = 0;
  req_body_complete_ = false;
  req_sent_ = false;
  req_head_built_ = false;
  req_upgrade_ = req_connect_ = tunnel_pending_ = false;
  server_ = nullptr;
  srv_reused_ = false;
  replayed_ = false;
  s_readable_ = s_writable_ = s_eof_ = s_reset_ = false;
  tried_.clear();
  attempts_ = 0;
  res_scan_ = 0;
  res_parsed_ = false;
  res_status_ = 0;
  res_body_ = http::BodyKind::kNone;
  res_body_left_ = 0;
  res_body_window_ = 0;
  res_body_complete_ = false;
  res_server_keep_alive_ = false;
  close_after_response_ = false;
  req_method_.clear();
  for (std::string& c : captures_) c.clear();
  be_ = fe_.default_backend();
  req_edit_.reset();
  edited_head_.clear();
  req_head_copy_.clear();
  res_edit_.reset();
  vars_.clear();
  rule_captures_.clear();
  for (std::string& v : sample_values_) v.clear();
  tarpit_rule_ = nullptr;
  t_start_ = ctx_.loop().now_ms();
  t_start_wall_ = log::wall_clock_ms();
  t_head_ = t_connect_start_ = t_connected_ = t_response_ = -1;
  bytes_in_ = bytes_out_ = 0;
  t_queue_start_ = -1;
  queue_ms_ = 0;
  lb_req_ = LbRequest{};
  term_[0] = term_[1] = '-';
  first_request_ = false;
  logged_ = false;
  phase_ = Phase::kWaitRequest;
  c_readable_ = true;  // pipelined bytes may already wait in the socket
}

// --- errors, timeouts, logging -----------------------------------------------

void HttpSession::send_error(int status, const char* term) {
  // An errorfile of the backend, else of the frontend, else weir's own page.
  const std::string* custom = nullptr;
  if (be_) {
    auto it = be_->config().rules.errorfiles.find(status);
    if (it != be_->config().rules.errorfiles.end()) custom = &it->second;
  }
  if (!custom) {
    auto it = fe_.config().rules.errorfiles.find(status);
    if (it != fe_.config().rules.errorfiles.end()) custom = &it->second;
  }
  if (custom) {
    respond(status, "text/html", *custom, "Cache-Control: no-cache\r\n", term);
    return;
  }
  const StatusText& st = status_text(status);
  char body[512];
  int blen = std::snprintf(body, sizeof body, "<html><body><h1>%d %s</h1>\n%s\n</body></html>\n",
                           status, st.reason, st.detail);
  respond(status, "text/html", std::string(body, static_cast<size_t>(blen)),
          "Cache-Control: no-cache\r\n", term);
}

void HttpSession::respond(int status, std::string_view content_type, std::string body,
                          std::string_view extra_headers, const char* term) {
  if (res_parsed_ && (bytes_out_ > 0 || !res_out_.empty())) {
    // Part of the real response already left: all we can do is close.
    term_[0] = term[0];
    term_[1] = term[1];
    log_transaction();
    destroy();
    return;
  }
  release_server(false);
  // The whole answer is built in local_body_, outside the buffer pool, so that
  // an error can always be sent, also to a client that waited for a buffer.
  release_buffers();
  // 204 and 304 carry neither a body nor a Content-Length (RFC 9110 8.6).
  const bool bodiless = status == 204 || status == 304;
  if (bodiless) body.clear();
  std::string head =
      "HTTP/1.1 " + std::to_string(status) + " " + status_text(status).reason + "\r\n";
  if (!bodiless) head += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  if (!content_type.empty()) head += "Content-Type: " + std::string(content_type) + "\r\n";
  head += extra_headers;
  head += "Connection: close\r\n\r\n";
  if (head.size() > ctx_.buffers().bufsize()) {
    destroy();  // as when it did not fit the response buffer
    return;
  }
  set_local_response(std::move(head), std::move(body), status);
  res_parsed_ = false;
  term_[0] = term[0];
  term_[1] = term[1];
  log_transaction();
}

void HttpSession::serve_local(int status, std::string_view content_type, std::string body,
                              std::string_view extra_headers) {
  release_server(false);
  release_buffers();
  char head[256];
  int hlen = std::snprintf(head, sizeof head,
                           "HTTP/1.1 %d %s\r\nContent-Type: %.*s\r\nContent-Length: %zu\r\n"
                           "Cache-Control: no-cache\r\n",
                           status, status_text(status).reason,
                           static_cast<int>(content_type.size()), content_type.data(), body.size());
  std::string text(head, static_cast<size_t>(hlen));
  text += extra_headers;
  text += "Connection: close\r\n\r\n";
  set_local_response(std::move(text), std::move(body), status);
  // weir answered itself (stats page, metrics): logged like a return rule.
  term_[0] = 'L';
  term_[1] = 'R';
  log_transaction();
}

void HttpSession::release_buffers() {
  req_in_.release(ctx_.buffers());
  req_out_.release(ctx_.buffers());
  res_in_.release(ctx_.buffers());
  res_out_.release(ctx_.buffers());
  leave_buffer_pool();
}

void HttpSession::set_local_response(std::string head, std::string body, int status) {
  local_body_ = std::move(head);
  if (req_method_ != "HEAD") local_body_ += body;
  local_sent_ = 0;
  res_status_ = status;
  bytes_out_ = local_body_.size();  // logged now, before it is written
  close_after_response_ = true;
  phase_ = Phase::kFlushClose;
  c_writable_ = true;
}

void HttpSession::log_transaction() {
  if (logged_) return;
  logged_ = true;
  int64_t now = ctx_.loop().now_ms();
  int64_t t_queue =
      attempts_ > 0 ? queue_ms_ + (t_queue_start_ >= 0 ? now - t_queue_start_ : 0) : -1;
  int64_t t_connect = t_connected_ >= 0 ? t_connected_ - t_connect_start_ : -1;
  int64_t t_response = t_response_ >= 0 && t_connected_ >= 0 ? t_response_ - t_connected_ : -1;
  int64_t t_total = now - t_start_;
  TrafficCounters& fc = fe_.counters();
  fc.add_session(now);
  bump(fc.local().bytes_in, bytes_in_);
  bump(fc.local().bytes_out, bytes_out_);
  if (res_status_) fc.add_status(res_status_);
  for (TrafficCounters* c : {be_ && attempts_ > 0 ? &be_->counters() : nullptr,
                             server_ ? &server_->counters() : nullptr}) {
    if (!c) continue;
    c->add_session(now);
    bump(c->local().bytes_in, bytes_in_);
    bump(c->local().bytes_out, bytes_out_);
    if (res_status_) c->add_status(res_status_);
    if (server_) c->add_times(t_queue, t_connect, t_response, t_total);
    if (server_) c->add_termination(term_);
  }
  if (server_) fc.add_termination(term_);
  if (!fe_.config().log || !ctx_.access_log().enabled()) return;
  AccessLogEntry e;
  e.client = peer_text_;
  e.frontend = fe_.name();
  e.backend = be_ ? std::string_view(be_->name()) : std::string_view();
  e.server = server_ ? std::string_view(server_->name()) : std::string_view();
  e.accept_epoch_ms = t_start_wall_;
  e.t_request = t_head_ >= 0 ? t_head_ - t_start_ : -1;
  e.t_queue = t_queue;
  e.t_connect = t_connect;
  e.t_response = t_response;
  e.t_total = t_total;
  e.status = res_status_;
  e.bytes_out = bytes_out_;
  e.bytes_in = bytes_in_;
  e.termination[0] = term_[0];
  e.termination[1] = term_[1];
  e.retries = attempts_ > 1 ? attempts_ - 1 : 0;
  e.request_line = request_line_;
  e.captures = &captures_;
  if (!ctx_.worker().log_samples().empty()) {
    eval_log_samples(LogStage::kLog, nullptr, nullptr);
    e.samples = &sample_values_;
  }
  e.rule_captures = &rule_captures_;
  fill_access_log_counts(e, ctx_.worker(), fe_, be_, server_);
  e.http = true;
  ctx_.access_log().log(e);
}

void HttpSession::handle_timeout() {
  int64_t now = ctx_.loop().now_ms();
  if (c_handshake_) {
    // A client stalled in its TLS handshake: nothing can be answered.
    fe_.count_tls_failure();
    tls::note_handshake_failure(fe_.name(), peer_text_, "timeout client during the handshake");
    destroy();
    return;
  }
  switch (phase_) {
    case Phase::kWaitRequest:
      if (!req_in_.empty()) {
        bump(fe_.counters().local().request_errors);
        request_line_.assign("<BADREQ>");
        send_error(408, "cR");
      } else if (request_unread()) {
        // The request came, but no buffer could be had to read it in time.
        request_line_.assign("<BADREQ>");
        send_error(503, "RR");
      } else {
        destroy();  // idle keep-alive connection: close quietly
      }
      return;
    case Phase::kQueued:
      if (be_->timeouts().queue > 0 && now >= t_queue_start_ + be_->timeouts().queue) {
        // Waited too long for a server slot: 503, queue timeout.
        be_->cancel(ticket_);
        ticket_.reset();
        send_error(503, "sQ");
      }
      return;
    case Phase::kConnecting:
      if (fd_wait_) {
        const int64_t limit = be_->timeouts().connect;
        if (limit > 0 && now >= t_connect_start_ + limit) {
          fd_wait_ = false;
          send_error(503, "RC");  // weir ran out of a resource, not the server
        } else if (now >= fd_retry_at_) {
          start_on_server(server_, now);
        }
        return;
      }
      if (srv_) ctx_.close_server_conn(std::move(srv_));
      connect_failed(ETIMEDOUT);
      return;
    case Phase::kExchange: {
      const Timeouts& bt = be_->timeouts();
      if (bt.server && !res_body_complete_ && now >= s_last_activity_ + bt.server) {
        count_response_error();
        if (!res_parsed_) {
          if (server_) server_->observe_result(true, true, "L7TOUT", "server timeout");
          send_error(504, "sH");
        } else {
          term_[0] = 's';
          term_[1] = 'D';
          log_transaction();
          destroy();
        }
        return;
      }
      if (fe_to_.client && now >= c_last_activity_ + fe_to_.client) {
        term_[0] = 'c';
        term_[1] = 'D';
        log_transaction();
        destroy();
      }
      return;
    }
    case Phase::kTarpit:
      if (now >= tarpit_until_ && tarpit_rule_) {
        const HttpRule* r = tarpit_rule_;
        tarpit_rule_ = nullptr;
        if (r->body.empty()) {
          send_error(r->status, "PT");
        } else {
          respond(r->status, r->content_type.empty() ? "text/plain" : r->content_type, r->body, {},
                  "PT");
        }
      }
      return;
    case Phase::kTunnel:
      // Nothing moved either way for `tunnel_timeout()`.
      term_[0] = 'c';
      term_[1] = 'D';
      log_transaction();
      destroy();
      return;
    case Phase::kFlushClose:
    case Phase::kLinger:
      destroy();
      return;
    case Phase::kClosed:
      return;
  }
}

void HttpSession::update_timer() {
  int64_t deadline = 0;
  auto consider = [&deadline](int64_t base, int64_t timeout) {
    if (timeout <= 0) return;
    int64_t d = base + timeout;
    if (deadline == 0 || d < deadline) deadline = d;
  };
  if (c_handshake_) {
    consider(t_start_, fe_to_.client ? fe_to_.client : fe_to_.http_request);
    timer_.set(deadline);
    return;
  }
  switch (phase_) {
    case Phase::kWaitRequest:
      if (req_in_.empty()) {
        consider(t_start_, first_request_ ? fe_to_.http_request : fe_to_.http_keep_alive);
      } else {
        consider(first_request_ ? t_start_ : t_req_first_byte_, fe_to_.http_request);
      }
      consider(c_last_activity_, fe_to_.client);
      break;
    case Phase::kQueued:
      consider(t_queue_start_, be_->timeouts().queue);
      break;
    case Phase::kConnecting:
      consider(t_connect_start_, be_->timeouts().connect);
      if (fd_wait_ && (deadline == 0 || fd_retry_at_ < deadline)) deadline = fd_retry_at_;
      break;
    case Phase::kExchange:
      if (!res_body_complete_) consider(s_last_activity_, be_->timeouts().server);
      if (!req_body_complete_ || (!c_writable_ && (!res_out_.empty() || res_body_window_))) {
        consider(c_last_activity_, fe_to_.client);
      }
      break;
    case Phase::kTunnel:
      consider(std::max(c_last_activity_, s_last_activity_), tunnel_timeout());
      break;
    case Phase::kFlushClose:
      consider(c_last_activity_, fe_to_.client ? fe_to_.client : kLingerMs);
      break;
    case Phase::kLinger:
      deadline = linger_deadline_;
      break;
    case Phase::kTarpit:
      deadline = tarpit_until_;
      break;
    case Phase::kClosed:
      break;
  }
  timer_.set(deadline);
}

void HttpSession::drain() {
  // Nothing is closed here. A connection whose current response head already
  // went out without "Connection: close" stays open: its client may be sending
  // the next request as we speak. The next response head says "Connection:
  // close" (parse_response checks draining()), and an idle connection ends at
  // http_keep_alive.
  if (phase_ == Phase::kWaitRequest && req_in_.empty()) {
    // Shorten the wait to the keep-alive timeout from now at most.
    update_timer();
  }
}

void HttpSession::kill() {
  // Killed by the operator (shutdown session(s)) or by a hard stop: a request in
  // progress is logged and counted with a K termination state; an idle
  // keep-alive connection just closes.
  bool in_progress = req_parsed_ || !req_in_.empty();
  if (in_progress && !logged_) {
    term_[0] = 'K';
    switch (phase_) {
      case Phase::kWaitRequest:
        term_[1] = 'R';
        break;
      case Phase::kQueued:
        term_[1] = 'Q';
        break;
      case Phase::kConnecting:
        term_[1] = 'C';
        break;
      case Phase::kExchange:
        term_[1] = res_parsed_ ? 'D' : 'H';
        break;
      case Phase::kTarpit:
        term_[1] = 'T';
        break;
      default:
        term_[1] = 'D';
        break;
    }
    if (phase_ == Phase::kWaitRequest) request_line_.assign("<BADREQ>");
    log_transaction();
  }
  destroy();
}

std::string HttpSession::describe(int64_t now_ms) const {
  static const char* kPhases[] = {"wait_request", "queued",  "connecting", "exchange", "tarpit",
                                  "tunnel",       "closing", "linger",     "closed"};
  std::string out =
      "id=" + std::to_string(id()) + " proto=http frontend=" + fe_.name() + " src=" + peer_text_;
  out += " backend=" + (be_ ? be_->name() : std::string("-"));
  out += " server=" + (server_ ? server_->name() : std::string("-"));
  out += " state=";
  out += kPhases[static_cast<int>(phase_)];
  out += " age=" + std::to_string((now_ms - t_start_) / 1000) + "s";
  if (req_parsed_) out += " req=\"" + request_line_ + "\"";
  return out;
}

void HttpSession::destroy() {
  if (phase_ == Phase::kClosed) return;
  phase_ = Phase::kClosed;
  timer_.disarm();
  release_server(false);
  if (ticket_) {
    be_->cancel(ticket_);  // gives back a slot granted while it was going away
    ticket_.reset();
  }
  release_slot();
  release_buffers();
  client_.close();
  c_tls_ = nullptr;
  c_handshake_ = false;
  ctx_.worker().release(fe_);
  ctx_.remove_session(this);
}

}  // namespace weir
