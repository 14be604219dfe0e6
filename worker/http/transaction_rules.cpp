// HttpTransaction (transaction.h): http_request and http_response rules, and
// weir's own answers (errors, return, redirect, tarpit, stats page, metrics).
#include <cstdio>
#include <memory>

#include "common/base/log.h"
#include "worker/http/transaction.h"
#include "worker/thread_context.h"
#include "worker/worker.h"

namespace weir {

namespace {

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

}  // namespace

const StatusText& status_text(int status) {
  for (const StatusText& s : kGenerated)
    if (s.status == status) return s;
  static const StatusText kOther = {0, "Status", ""};
  return kOther;
}

bool HttpTransaction::apply_request_rules(http::MessageHead& h) {
  SampleSource f;
  connection_facts(f);
  f.req = &h;
  f.vars = &vars_;
  f.req_len = h.head_len;
  RuleVerdict v;
  if (!fe_->config().rules.http_request.empty()) {
    v = run_http_rules(fe_->config().rules.http_request, f, h, &req_edit_, &vars_, &rule_captures_,
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
                   fe_->name().c_str(), h.error ? h.error : "?");
      edited_head_.clear();
      send_error(500, "PR");
      return false;
    }
    req_method_.assign(h.method);
  }
  return true;
}

void HttpTransaction::answer_rule(const RuleVerdict& v) {
  const HttpRule& r = *v.rule;
  client_->release_request_head();
  switch (v.kind) {
    case RuleVerdict::Kind::kDeny:
      bump(fe_->counters().local().denied_requests);
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
      bump(fe_->counters().local().denied_requests);
      tarpit_rule_ = &r;
      tarpit_until_ = ctx_.loop().now_ms() + r.delay;
      phase_ = Phase::kTarpit;
      return;
    case RuleVerdict::Kind::kContinue:
      return;
  }
}

bool HttpTransaction::apply_response_rules(const http::MessageHead& h) {
  SampleSource f;
  connection_facts(f);
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
       {be_ ? &be_->config().rules.http_response : nullptr, &fe_->config().rules.http_response}) {
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

void HttpTransaction::send_error(int status, const char* term) {
  // An errorfile of the backend, else of the frontend, else weir's own page.
  const std::string* custom = nullptr;
  if (be_) {
    auto it = be_->config().rules.errorfiles.find(status);
    if (it != be_->config().rules.errorfiles.end()) custom = &it->second;
  }
  if (!custom) {
    auto it = fe_->config().rules.errorfiles.find(status);
    if (it != fe_->config().rules.errorfiles.end()) custom = &it->second;
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

void HttpTransaction::respond(int status, std::string_view content_type, std::string body,
                              std::string_view extra_headers, const char* term) {
  if (res_parsed_ && (bytes_out_ > 0 || client_->response_started())) {
    // Part of the real response already left: all we can do is close.
    terminate(term);
    client_->abort(ClientStream::AbortKind::kClose);
    return;
  }
  release_server_conn(false);
  // 204 and 304 carry neither a body nor a Content-Length (RFC 9110 8.6).
  const bool bodiless = status == 204 || status == 304;
  if (bodiless) body.clear();
  std::string fields;
  if (!bodiless) fields += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  if (!content_type.empty()) fields += "Content-Type: " + std::string(content_type) + "\r\n";
  fields += extra_headers;
  if (!send_local(status, fields, std::move(body))) return;
  res_parsed_ = false;
  terminate(term);
}

void HttpTransaction::serve_local(int status, std::string_view content_type, std::string body,
                                  std::string_view extra_headers) {
  release_server_conn(false);
  char head[256];
  int hlen = std::snprintf(head, sizeof head,
                           "Content-Type: %.*s\r\nContent-Length: %zu\r\n"
                           "Cache-Control: no-cache\r\n",
                           static_cast<int>(content_type.size()), content_type.data(), body.size());
  std::string fields(head, static_cast<size_t>(hlen));
  fields += extra_headers;
  if (!send_local(status, fields, std::move(body))) return;
  // weir answered itself (stats page, metrics): logged like a return rule.
  terminate("LR");
}

bool HttpTransaction::send_local(int status, std::string_view fields, std::string body) {
  // The whole answer is kept by the client side outside the buffer pool, so that
  // an error can always be sent, also to a client that waited for a buffer.
  if (req_method_ == "HEAD") body.clear();
  // Counted before it is written: the client may ask again as soon as it reads.
  const int before = res_status_;
  res_status_ = status;
  count_status_in_trackers();
  const size_t bytes = client_->send_local_response(status, fields, std::move(body));
  if (bytes == 0) {  // it did not fit: the connection closed
    res_status_ = before;
    return false;
  }
  bytes_out_ = bytes;  // logged now, before it is written
  phase_ = Phase::kDone;
  return true;
}

}  // namespace weir
