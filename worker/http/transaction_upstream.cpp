// HttpTransaction (transaction.h): choosing a server (slot, queue), taking an
// idle connection or connecting (retries, TLS toward the server), the replay of
// a request a stale connection lost, and giving the server back.
#include <sys/epoll.h>

#include <cerrno>
#include <cstring>

#include "common/base/log.h"
#include "common/base/net.h"
#include "common/stick/table.h"
#include "worker/http/transaction.h"
#include "worker/proxy_protocol/accept.h"
#include "worker/proxy_protocol/send.h"
#include "worker/thread_context.h"
#include "worker/tls/tls.h"
#include "worker/worker.h"

namespace weir {

namespace {

// Out of file descriptors: how soon a server connection is tried again.
constexpr int64_t kFdRetryMs = 100;

// RFC 9110 9.2.2: sending the request twice has the effect of sending it once.
bool idempotent(std::string_view method) {
  return method == "GET" || method == "HEAD" || method == "OPTIONS" || method == "TRACE" ||
         method == "PUT" || method == "DELETE";
}

}  // namespace

void HttpTransaction::compute_lb_request(const http::MessageHead& h) {
  lb_req_ = lb_request(be_->config().balance, be_->lb_def().key, peer_, h.target,
                       [&h](std::string_view name) -> std::optional<std::string_view> {
                         const http::Header* hd = h.find(name);
                         if (!hd) return std::nullopt;
                         return hd->value;
                       });
}

void HttpTransaction::compute_persistence(const http::MessageHead& h) {
  const BackendConfig& bc = be_->config();
  if (!bc.cookie.name.empty()) {
    persist::read_client_cookie(bc.cookie, h, stick::clock_now().wall_ms / 1000, &cookie_);
    if (cookie_.found) lb_req_.stuck_cookie = cookie_.value;
    if (!bc.cookie.domains.empty()) cookie_host_.assign(h.host);
  }
  if (!bc.stick_rules.empty()) {
    SampleSource f;
    connection_facts(f);
    f.req = &h;
    f.vars = &vars_;
    f.req_len = h.head_len;
    lb_req_.stuck_key = persist::match(bc.stick_rules, f);
    persist::collect_stores(bc.stick_rules, f, false, &stores_);
  }
}

void HttpTransaction::persist_response(const http::MessageHead& h) {
  const BackendConfig& bc = be_->config();
  if (!bc.stick_rules.empty()) {
    SampleSource f;
    connection_facts(f);
    f.res = &h;
    f.status = h.status;
    f.vars = &vars_;
    persist::collect_stores(bc.stick_rules, f, true, &stores_);
    persist::store(stores_, server_->name_key());
    stores_.clear();
  }
  const CookieConfig& c = bc.cookie;
  if (c.name.empty()) return;
  const int64_t now_s = stick::clock_now().wall_ms / 1000;
  if (!res_edit_ && !persist::response_needs_edit(c, cookie_, server_->cookie_value(), h, now_s)) {
    return;
  }
  if (!res_edit_) res_edit_.emplace(EditableHead::from(h));
  persist::edit_response(c, cookie_, server_->cookie_value(), cookie_host_, now_s, *res_edit_);
}

void HttpTransaction::begin_server_attempt() {
  int64_t now = ctx_.loop().now_ms();
  const ServerSlot::Result got = slot_.acquire(be_, lb_req_, this, &ctx_.loop(), now);
  server_ = slot_.server();  // while queued for a retry: the server left (logs)
  switch (got) {
    case ServerSlot::Result::kServer:
      break;
    case ServerSlot::Result::kQueued:
      // Waits for on_server_granted(), or for the queue timeout.
      phase_ = Phase::kQueued;
      return;
    case ServerSlot::Result::kNoServer:
      send_error(503, "SC");
      return;
    case ServerSlot::Result::kQueueFull:
      send_error(503, "SQ");
      return;
  }
  start_on_server(now);
}

void HttpTransaction::on_server_granted() {
  if (phase_ != Phase::kQueued) return;
  int64_t now = ctx_.loop().now_ms();
  if (!slot_.take_grant(now)) return;  // the queue timeout came first
  ClientStream* client = client_;
  start_on_server(now);
  client->wake();
}

void HttpTransaction::start_on_server(int64_t now) {
  server_ = slot_.server();
  s_eof_ = false;
  s_hup_ = false;
  s_reset_ = false;
  srv_reused_ = false;
  fd_wait_ = false;
  if (auto idle = take_idle_connection()) {
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
  srv_ = UpstreamConnection::open(ctx_.loop(), ctx_.id(), server_, server_->addr(), this,
                                  &in_progress, &err);
  if (!srv_) {
    if (net::out_of_descriptors(err)) {
      wait_for_fd(err, now);
    } else {
      connect_failed(err);
    }
    return;
  }
  if (const SendProxyConfig& pp = server_->config().send_proxy; pp.version != 0) {
    tls::Connection* tls = client_->client_tls();
    const Proxied* received = client_->proxied();
    srv_->send_first(proxy_protocol::header_for_client(pp, peer_, local_addr(),
                                                       tls ? tls->ssl() : nullptr,
                                                       received ? &received->header : nullptr));
  }
  s_readable_ = s_writable_ = false;
  t_connect_start_ = now;
  s_last_activity_ = now;
  phase_ = Phase::kConnecting;
  if (!in_progress) connect_done();
}

void HttpTransaction::wait_for_fd(int err, int64_t now) {
  ctx_.worker().note_fd_shortage("connection to server " + be_->name() + "/" + server_->name(),
                                 err);
  if (phase_ != Phase::kConnecting) t_connect_start_ = now;  // timeout connect runs from here
  phase_ = Phase::kConnecting;
  fd_wait_ = true;
  fd_retry_at_ = now + kFdRetryMs;
}

void HttpTransaction::on_upstream_io(uint32_t events) {
  if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) s_readable_ = true;
  if (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) s_hup_ = true;
  if (events & (EPOLLOUT | EPOLLHUP | EPOLLERR)) s_writable_ = true;
  ClientStream* client = client_;
  if (phase_ == Phase::kConnecting && srv_ && srv_->wants_advance(events)) connect_done();
  client->wake();
}

void HttpTransaction::connect_done() {
  if (phase_ != Phase::kConnecting || !srv_) return;
  switch (srv_->advance([this] { return server_sni(); })) {
    case UpstreamConnection::Progress::kPending:
      return;
    case UpstreamConnection::Progress::kFailed:
      tls_failure_ = srv_->failure();
      if (!tls_failure_.empty()) {
        tls::note_server_failure(be_->name(), server_->name(), tls_failure_);
      }
      connect_failed(srv_->error());
      return;
    case UpstreamConnection::Progress::kReady:
      break;
  }
  // Bytes may wait inside a TLS layer that just finished its handshake.
  if (!srv_->stream().plain()) s_readable_ = true;
  t_connected_ = ctx_.loop().now_ms();
  s_last_activity_ = t_connected_;
  s_writable_ = true;
  phase_ = Phase::kExchange;
  server_->observe_result(false, false);
  build_request_head();
}

std::string HttpTransaction::server_sni() {
  const TlsServerConfig& c = server_->tls()->config();
  if (c.sni.is_constant()) return c.sni.text;  // none, or a fixed name: no request to read
  http::MessageHead& h = ctx_.scratch_head();
  const std::string_view head = edited_head_.empty() ? client_->request_head() : edited_head_;
  size_t scan = 0;
  SampleSource f;
  connection_facts(f);
  f.vars = &vars_;
  if (!head.empty() && http::parse_request(head.data(), head.size(), head.size() + 1, &scan, &h,
                                           ctx_.worker().config().global.max_headers) ==
                           http::ParseStatus::kComplete) {
    f.req = &h;
    f.req_len = h.head_len;
  }
  scratch_fresh_ = false;
  return server_->tls()->sni(f);
}

void HttpTransaction::connect_failed(int err) {
  const char* why = tls_failure_.empty() ? std::strerror(err) : tls_failure_.c_str();
  log::debug("connect to %s/%s failed: %s", be_->name().c_str(),
             server_ ? server_->name().c_str() : "-", why);
  const bool retry = slot_.connect_failed(err, why);
  tls_failure_.clear();
  if (srv_) ctx_.upstreams().close(std::move(srv_));
  if (retry) {
    begin_server_attempt();
    return;
  }
  send_error(503, err == ETIMEDOUT ? "sC" : "SC");
}

void HttpTransaction::count_response_error() {
  bump(be_->counters().local().response_errors);
  if (server_) bump(server_->counters().local().response_errors);
}

void HttpTransaction::server_failed_before_response(const char* term) {
  // A kept-alive connection that the server closed just as weir reused it is a
  // classic race, not a server failure; but the server may also have received
  // the request and died working on it. The request is replayed, once and on a
  // fresh connection, only when a second copy cannot do harm: an idempotent
  // method without a body, whose head weir still holds (no byte of a response).
  const bool replay = srv_reused_ && !replayed_ && res_in_.empty() && !res_parsed_ &&
                      !client_->request_head().empty() && req_body_ == http::BodyKind::kNone &&
                      idempotent(req_method_);
  if (srv_) ctx_.upstreams().close(std::move(srv_));
  if (replay) {
    replayed_ = true;
    bump(be_->counters().local().retries);
    if (server_) bump(server_->counters().local().retries);
    req_out_.clear();
    req_head_built_ = false;
    res_scan_ = 0;
    slot_.forget_tried();
    begin_server_attempt();
    return;
  }
  count_response_error();
  if (server_) server_->observe_result(true, true, "L7RSP", "server closed without a response");
  send_error(502, term);
}

std::unique_ptr<UpstreamConnection> HttpTransaction::take_idle_connection() {
  std::unique_ptr<UpstreamConnection> own = client_->take_private_upstream();
  // A replay goes on a fresh connection: another idle one may be as stale.
  if (replayed_) {
    if (own) ctx_.upstreams().close(std::move(own));
    return nullptr;
  }
  // The client's own connection, if it goes where this request goes (a
  // `set server addr` since it was opened makes it useless too).
  if (own && own->server() == server_ && own->connected_to(server_->addr())) return own;
  if (own) ctx_.upstreams().close(std::move(own));  // a request for another server
  // A connection that began with a client's PROXY header is that client's only.
  if (server_->config().send_proxy.version != 0) return nullptr;
  switch (be_->config().http_reuse) {
    case HttpReuse::kNever:
      return nullptr;
    case HttpReuse::kSafe:
      // A client's first request never meets a connection another client left:
      // if it went stale, the client could not tell and retry.
      if (client_->first_request()) return nullptr;
      break;
    case HttpReuse::kAlways:
      break;
  }
  return ctx_.upstreams().take(server_);
}

void HttpTransaction::release_server_conn(bool reusable) {
  if (!srv_) return;
  if (reusable && !ctx_.draining()) {
    if (srv_->server()->backend()->config().http_reuse == HttpReuse::kNever ||
        srv_->server()->config().send_proxy.version != 0) {
      // Stays this client's, between its requests, until it closes (its
      // PROXY header, if it began with one, names this client).
      client_->keep_private_upstream(std::move(srv_));
      return;
    }
    ctx_.upstreams().put(std::move(srv_));
  } else {
    ctx_.upstreams().close(std::move(srv_));
  }
}

}  // namespace weir
