#include "worker/checks/health_check.h"

#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "common/base/log.h"
#include "common/base/net.h"
#include "worker/backend/backend.h"
#include "worker/proxy_protocol/send.h"
#include "worker/rules/rules.h"
#include "worker/session.h"
#include "worker/thread_context.h"
#include "worker/tls/tls.h"
#include "worker/worker.h"

namespace weir {
namespace {
constexpr size_t kMaxResponse = 16384;  // enough for a status line and headers
constexpr int64_t kMaxTimeoutMs = 5000;

bool cfg_type_http(const HealthCheckConfig& c) {
  return c.type == HealthCheckConfig::Type::kHttp;
}

}  // namespace

HealthChecker::HealthChecker(ThreadContext& ctx, Backend& backend, Server& server)
    : ctx_(ctx),
      backend_(backend),
      server_(server),
      cfg_(server.config().check),
      timer_(ctx.loop().timers(), &HealthChecker::on_timer, this) {}

HealthChecker::~HealthChecker() {
  timer_.disarm();
}

void HealthChecker::start(int64_t first_delay_ms) {
  stopped_ = false;
  timer_.set(ctx_.loop().now_ms() + std::max<int64_t>(1, first_delay_ms));
}

void HealthChecker::stop() {
  stopped_ = true;
  timer_.disarm();
  if (conn_) ctx_.upstreams().close(std::move(conn_));
  running_ = false;
}

int64_t HealthChecker::interval() const {
  // Changing state (some failures while up, some successes while down, or live
  // traffic just reported errors): fastinter; down: downinter; steady up: inter.
  const bool up = server_.check_up();
  if (hurry_ || (up && failed_in_row_ > 0) || (!up && ok_in_row_ > 0)) {
    return cfg_.fastinter ? cfg_.fastinter : cfg_.inter;
  }
  if (!up) return cfg_.downinter ? cfg_.downinter : cfg_.inter;
  return cfg_.inter;
}

void HealthChecker::on_timer(void* self) {
  auto* c = static_cast<HealthChecker*>(self);
  if (c->stopped_) return;
  if (c->server_.deleted()) {  // `del server`: nothing left to check
    c->stop();
    return;
  }
  if (c->running_) {
    if (c->conn_ && c->conn_->in_handshake()) {
      c->finish(false, "L6TOUT", 0, "Layer6 timeout: TLS handshake not done");
      return;
    }
    const bool l7 = (cfg_type_http(c->cfg_) || !c->cfg_.tcp_steps.empty()) && c->conn_ &&
                    c->conn_->established();
    std::string what = l7 ? "Layer7 timeout" : "Layer4 timeout: no connection";
    if (l7 && !cfg_type_http(c->cfg_) && c->step_ < c->cfg_.tcp_steps.size()) {
      what += " at tcp step " + std::to_string(c->step_ + 1);
    }
    c->finish(false, l7 ? "L7TOUT" : "L4TOUT", 0, what);
    return;
  }
  c->begin();
}

void HealthChecker::begin() {
  running_ = true;
  started_ms_ = ctx_.loop().now_ms();
  response_.clear();
  sent_ = 0;
  step_ = 0;
  peer_closed_ = false;
  hurry_ = false;
  SockAddr addr = server_.addr();
  if (cfg_.addr) {  // check address override; the port stays the server's unless set
    const uint16_t port = addr.port();
    addr = *cfg_.addr;
    addr.set_port(port);
  }
  if (cfg_.port) addr.set_port(cfg_.port);
  int64_t timeout = cfg_.timeout ? cfg_.timeout : std::min(cfg_.inter, kMaxTimeoutMs);
  timer_.set(started_ms_ + timeout);
  bool in_progress = false;
  int err = 0;
  // The same connection and TLS settings as traffic, with the checks' own TLS
  // session slot (the one after the threads'), never from or to the idle pool:
  // a check must see a fresh connection.
  conn_ = UpstreamConnection::open(ctx_.loop(), ctx_.worker().config().global.threads, &server_,
                                   addr, this, &in_progress, &err);
  if (!conn_) {
    finish(false, "L4CON", 0, std::string("Layer4 connection problem: ") + std::strerror(err));
    return;
  }
  if (const int pp = proxy_protocol::check_version(server_.config()); pp != 0) {
    conn_->send_first(proxy_protocol::header_for_check(pp, conn_->stream().fd(), addr));
  }
  if (!in_progress) connect_step();
}

void HealthChecker::on_upstream_io(uint32_t events) {
  if (!running_ || !conn_) return;
  if (!conn_->established()) {
    if (conn_->wants_advance(events)) connect_step();
    return;
  }
  if (!cfg_type_http(cfg_)) {
    run_tcp_steps();
    return;
  }
  if (sent_ < request_.size()) {  // the request did not go out at once: go on
    exchange();
    return;
  }
  read_response();
}

void HealthChecker::connect_step() {
  // A template is rendered without a request: only what needs none gives anything.
  const auto sni = [this] {
    SampleSource no_request;
    return server_.tls()->sni(no_request);
  };
  switch (conn_->advance(sni)) {
    case UpstreamConnection::Progress::kPending:
      return;  // the socket's next event (edge-triggered, both ways) brings us back
    case UpstreamConnection::Progress::kFailed:
      if (conn_->error() == EPROTO) {
        finish(false, "L6RSP", 0, "TLS handshake failed: " + conn_->failure());
      } else {
        finish(false, "L4CON", 0,
               std::string("Layer4 connection problem: ") + std::strerror(conn_->error()));
      }
      return;
    case UpstreamConnection::Progress::kReady:
      exchange();
      return;
  }
}

ssize_t HealthChecker::send_some(const char* data, size_t len) {
  iovec v{const_cast<char*>(data), len};
  return conn_->stream().writev(&v, 1);
}

ssize_t HealthChecker::recv_some(char* buf, size_t len) {
  return conn_->stream().read(buf, len);
}

void HealthChecker::exchange() {
  if (!cfg_type_http(cfg_)) {
    if (cfg_.tcp_steps.empty()) {
      // A TLS server passes a connection check once the handshake is done.
      if (!conn_->stream().plain()) {
        finish(true, "L6OK", 0, "Layer6 check passed: TLS handshake done");
      } else {
        finish(true, "L4OK", 0, "Layer4 check passed");
      }
    } else {
      run_tcp_steps();
    }
    return;
  }
  if (request_.empty()) {
    std::string host = cfg_.host.empty() ? server_.addr_text() : cfg_.host;
    request_ = cfg_.method + " " + cfg_.path + " HTTP/1.1\r\nHost: " + host +
               "\r\nUser-Agent: weir-health-check\r\nConnection: close\r\n";
    for (const auto& [name, value] : cfg_.headers) request_ += name + ": " + value + "\r\n";
    request_ += "\r\n";
  }
  while (sent_ < request_.size()) {
    ssize_t n = send_some(request_.data() + sent_, request_.size() - sent_);
    if (n > 0) {
      sent_ += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) return;  // rare (a small request): the next event goes on
    finish(false, "L7RSP", 0, std::string("Layer7 send error: ") + std::strerror(errno));
    return;
  }
  read_response();
}

void HealthChecker::run_tcp_steps() {
  using Kind = HealthCheckConfig::TcpStep::Kind;
  const auto& steps = cfg_.tcp_steps;
  while (step_ < steps.size()) {
    const HealthCheckConfig::TcpStep& st = steps[step_];
    const std::string label = "tcp step " + std::to_string(step_ + 1);
    if (st.kind == Kind::kSend) {
      while (sent_ < st.data.size()) {
        ssize_t n = send_some(st.data.data() + sent_, st.data.size() - sent_);
        if (n > 0) {
          sent_ += static_cast<size_t>(n);
          continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno == EAGAIN) return;  // EPOLLOUT brings us back
        finish(false, "L7RSP", 0, "Layer7 send error at " + label + ": " + std::strerror(errno));
        return;
      }
      sent_ = 0;
      ++step_;
      continue;
    }
    // expect: read what is there, then look for the string or the regex.
    char buf[4096];
    while (!peer_closed_ && response_.size() <= kMaxResponse) {
      ssize_t n = recv_some(buf, sizeof buf);
      if (n > 0) {
        response_.append(buf, static_cast<size_t>(n));
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && errno == EAGAIN) break;
      peer_closed_ = true;  // closed or reset: judge what arrived
    }
    size_t match_end = std::string::npos;
    if (st.kind == Kind::kExpectString) {
      size_t at = response_.find(st.data);
      if (at != std::string::npos) match_end = at + st.data.size();
    } else {
      if (step_re_.size() < steps.size()) step_re_.resize(steps.size());
      if (!step_re_[step_]) step_re_[step_] = std::make_unique<std::regex>(st.data);
      std::smatch m;
      if (std::regex_search(response_, m, *step_re_[step_])) {
        match_end = static_cast<size_t>(m.position(0) + m.length(0));
      }
    }
    if (match_end != std::string::npos) {
      response_.erase(0, match_end);  // the next expect reads what follows
      ++step_;
      continue;
    }
    if (peer_closed_ || response_.size() > kMaxResponse) {
      std::string got = response_.substr(0, 64);
      for (char& c : got)
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '.';
      finish(false, "L7RSP", 0,
             "Layer7 " + label + ": expected " +
                 (st.kind == Kind::kExpectString ? "'" + st.data + "'" : "/" + st.data + "/") +
                 (peer_closed_ ? ", connection closed" : ", too much data") + " after '" + got +
                 "'");
      return;
    }
    return;  // wait for more
  }
  finish(true, "L7OK", 0,
         "Layer7 check passed: tcp sequence of " + std::to_string(steps.size()) + " steps");
}

void HealthChecker::read_response() {
  // The status line is enough, unless the body must match: then the whole
  // response, up to the server's close (the request asked for it), or 16 KiB.
  const bool want_body = !cfg_.body.empty();
  char buf[4096];
  for (;;) {
    ssize_t n = recv_some(buf, sizeof buf);
    if (n > 0) {
      response_.append(buf, static_cast<size_t>(n));
      if (response_.size() > kMaxResponse) break;
      if (!want_body && response_.find('\n') != std::string::npos) break;
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) {
      if (want_body || response_.find('\n') == std::string::npos) return;  // wait for more
      break;
    }
    break;  // closed or error: judge what arrived
  }
  // "HTTP/1.1 200 OK": the status is all an http check needs.
  int code = 0;
  if (response_.size() >= 12 && response_.compare(0, 5, "HTTP/") == 0) {
    size_t sp = response_.find(' ');
    if (sp != std::string::npos && sp + 4 <= response_.size()) {
      code = std::atoi(response_.c_str() + sp + 1);
    }
  }
  if (code < 100 || code > 599) {
    finish(false, "L7RSP", 0,
           response_.empty() ? "Layer7 invalid response: connection closed without a response"
                             : "Layer7 invalid response");
    return;
  }
  if (code == 404 && cfg_.disable_on_404) {
    // Alive but asking for no new traffic: NOLB (requests in progress finish).
    finish(true, "L7OKC", code, "Layer7 check conditionally passed: 404 (NOLB)");
    return;
  }
  if (code < cfg_.status_min || code > cfg_.status_max) {
    finish(false, "L7STS", code, "Layer7 wrong status: " + std::to_string(code));
    return;
  }
  if (want_body) {
    size_t end = response_.find("\r\n\r\n");
    std::string body = end == std::string::npos ? std::string() : response_.substr(end + 4);
    if (!body_re_) body_re_ = std::make_unique<std::regex>(cfg_.body);
    if (!std::regex_search(body, *body_re_)) {
      finish(false, "L7RSP", code, "Layer7 response body does not match /" + cfg_.body + "/");
      return;
    }
  }
  finish(true, "L7OK", code, "Layer7 check passed: " + std::to_string(code));
}

void HealthChecker::finish(bool ok, const char* status, int code, std::string description) {
  int64_t now = ctx_.loop().now_ms();
  running_ = false;
  if (conn_) {
    if (conn_->established() && !conn_->stream().plain()) {
      conn_->stream().shutdown_write();  // close_notify, best effort
    }
    ctx_.upstreams().close(std::move(conn_));
  }
  record(ok, status, code, now - started_ms_, description);
  schedule_next(now);
}

void HealthChecker::schedule_next(int64_t now) {
  if (stopped_ || running_) return;
  // From the start of the last check, so that the time a check takes does not
  // push every later one back (no drift); never in the past.
  int64_t next = std::max(now + 1, started_ms_ + interval());
  timer_.set(next);
}

void HealthChecker::on_observed_errors(const std::string& status, const std::string& what,
                                       int count) {
  if (stopped_ || server_.deleted()) return;
  const std::string description =
      "Passive check: " + std::to_string(count) + " errors in a row in live traffic, last: " + what;
  log::warning("server %s/%s: %s", backend_.name().c_str(), server_.name().c_str(),
               description.c_str());
  using OnError = HealthCheckConfig::OnError;
  switch (cfg_.on_error) {
    case OnError::kFastinter:
      break;
    case OnError::kFailCheck:
      record(false, status, 0, -1, description);
      break;
    case OnError::kSuddenDeath:
      // One failure short of DOWN: the next failed check takes it out.
      if (server_.check_up() && cfg_.fall > 1) {
        failed_in_row_ = std::max(failed_in_row_, cfg_.fall - 2);
        record(false, status, 0, -1, description);
      }
      break;
    case OnError::kMarkDown:
      if (server_.check_up()) {
        failed_in_row_ = std::max(failed_in_row_, cfg_.fall - 1);
        record(false, status, 0, -1, description);
      }
      break;
  }
  // Every action also checks again soon, at fastinter.
  hurry_ = true;
  if (!running_ && !stopped_) {
    int64_t now = ctx_.loop().now_ms();
    int64_t soon = now + (cfg_.fastinter ? cfg_.fastinter : cfg_.inter);
    if (timer_.deadline() == 0 || soon < timer_.deadline()) timer_.set(soon);
  }
}

void HealthChecker::record(bool ok, const std::string& status, int code, int64_t duration,
                           const std::string& description) {
  int64_t now = ctx_.loop().now_ms();
  const bool was_up = server_.check_up();
  if (ok) {
    ++ok_in_row_;
    failed_in_row_ = 0;
  } else {
    ++failed_in_row_;
    ok_in_row_ = 0;
  }
  bool change = (was_up && failed_in_row_ >= cfg_.fall) || (!was_up && ok_in_row_ >= cfg_.rise);
  {
    std::lock_guard lock(server_.check_mu_);
    Server::CheckStatus& c = server_.check_;
    c.status = status;
    c.code = code;
    if (duration >= 0) c.duration_ms = duration;
    c.description = description;
    c.health = ok ? ok_in_row_ : failed_in_row_;
    if (!ok) ++c.failed;
    if (change && was_up) {
      ++c.down_transitions;
      c.down_since_ms = now;
    } else if (change && !was_up && c.down_since_ms >= 0) {
      c.downtime_ms += now - c.down_since_ms;
      c.down_since_ms = -1;
    }
  }
  if (ok && cfg_.disable_on_404) {
    const bool nolb = status == "L7OKC";
    if (nolb != server_.nolb()) {
      backend_.set_server_nolb(&server_, nolb, now);
      if (nolb) {
        log::warning("server %s/%s is NOLB (404 on its health check): no new traffic",
                     backend_.name().c_str(), server_.name().c_str());
      } else {
        log::notice("server %s/%s is no longer NOLB", backend_.name().c_str(),
                    server_.name().c_str());
      }
    }
  }
  if (change) {
    backend_.set_server_up(&server_, !was_up, now);
    int up_normal = 0, up_backup = 0;
    for (Server* s : backend_.servers()) {
      if (s->selectable()) ++(s->backup() ? up_backup : up_normal);
    }
    const std::string took =
        duration >= 0 ? ", check duration: " + std::to_string(duration) + "ms" : std::string();
    if (was_up) {
      log::warning("server %s/%s is DOWN, reason: %s%s. %d active and %d backup servers left.",
                   backend_.name().c_str(), server_.name().c_str(), description.c_str(),
                   took.c_str(), up_normal, up_backup);
    } else {
      log::notice("server %s/%s is UP, reason: %s%s. %d active and %d backup servers online.",
                  backend_.name().c_str(), server_.name().c_str(), description.c_str(),
                  took.c_str(), up_normal, up_backup);
    }
    if (was_up && cfg_.shutdown_sessions_on_down) {
      // on_marked_down: shutdown_sessions: nobody should wait on a dead server.
      const Server* dead = &server_;
      ctx_.worker().post_to_every_thread([dead](ThreadContext& t) {
        t.for_each_session([dead](Session& sess) {
          if (sess.server() == dead) sess.kill();
        });
      });
    }
    if (!was_up && cfg_.shutdown_backup_sessions_on_up && !server_.backup()) {
      // on_marked_up: shutdown_backup_sessions: back to the normal server at once.
      const Backend* be = &backend_;
      ctx_.worker().post_to_every_thread([be](ThreadContext& t) {
        t.for_each_session([be](Session& sess) {
          const Server* s = sess.server();
          if (s && s->backup() && s->backend() == be) sess.kill();
        });
      });
    }
    // A new state starts a new count.
    ok_in_row_ = failed_in_row_ = 0;
  }
}

void Server::observe_result(bool failed, bool layer7, const char* status, const char* what) {
  using Observe = HealthCheckConfig::Observe;
  const HealthCheckConfig& c = cfg_.check;
  if (c.observe == Observe::kNone) return;
  if (!failed) {
    // A success resets the count at the layer observed: a connection for
    // layer4, a good response for layer7.
    if (layer7 == (c.observe == Observe::kLayer7) &&
        observed_errors_.load(std::memory_order_relaxed) != 0) {
      observed_errors_.store(0, std::memory_order_relaxed);
    }
    return;
  }
  if (layer7 && c.observe == Observe::kLayer4) return;  // layer4 counts connections only
  int n = observed_errors_.fetch_add(1, std::memory_order_relaxed) + 1;
  if (n < c.error_limit) return;
  observed_errors_.store(0, std::memory_order_relaxed);
  HealthChecker* hc = checker_.load(std::memory_order_acquire);
  if (!hc) return;
  hc->thread().loop().post([hc, st = std::string(status), w = std::string(what), n] {
    hc->on_observed_errors(st, w, n);
  });
}

}  // namespace weir
