// HttpTransaction (transaction.h): what fetches see of the connection, the
// samples of access-log formats, and the log line with its counters.
#include "common/base/log.h"
#include "worker/http/transaction.h"
#include "worker/proxy_protocol/accept.h"
#include "worker/stick/trackers.h"
#include "worker/thread_context.h"
#include "worker/tls/tls.h"
#include "worker/worker.h"

namespace weir {

const SockAddr* HttpTransaction::local_addr() {
  if (!local_addr_) {
    SockAddr a;
    if (!client_->local_address(&a)) return nullptr;
    local_addr_ = a;
  }
  return &*local_addr_;
}

void HttpTransaction::connection_facts(SampleSource& f) {
  tls::Connection* tls = client_->client_tls();
  f.src = &peer_;
  f.tls_client = tls != nullptr;
  f.ssl = tls ? tls->ssl() : nullptr;
  // The local address costs a getsockname(): only when a fetch asks for it.
  f.local_of = [](void* self) { return static_cast<HttpTransaction*>(self)->local_addr(); };
  f.local_owner = this;
  if (const Proxied* p = client_->proxied()) f.pp = &p->header;
  f.sc = client_->trackers();
}

void HttpTransaction::eval_log_samples(LogStage stage, const http::MessageHead* req,
                                       const http::MessageHead* res) {
  const auto& samples = ctx_.worker().log_samples();
  sample_values_.resize(samples.size());
  SampleSource f;
  connection_facts(f);
  f.req = req;
  f.req_edit = req && req_edit_ ? &*req_edit_ : nullptr;
  f.res = res;
  f.res_edit = res && res_edit_ ? &*res_edit_ : nullptr;
  f.status = res ? (res_edit_ ? res_edit_->status : res->status) : res_status_;
  f.vars = &vars_;
  f.req_len = req ? req->head_len : 0;
  // The status outlives the response head (res_status_).
  static const cond::FetchDef* const status_fetch = cond::find_fetch("status");
  for (size_t i = 0; i < samples.size(); ++i) {
    const cond::FetchSpec& fs = samples[i].fetch;
    // Request fetches when the request is there, response ones with the
    // response; the rest (addresses, variables, status) when the line is written.
    const LogStage when = fs.response_only() && fs.def != status_fetch ? LogStage::kResponse
                          : fs.http_only() && !fs.response_only()      ? LogStage::kRequest
                                                                       : LogStage::kLog;
    if (when != stage) continue;
    sample_values_[i] = samples[i].evaluate(f).value_or(std::string());
  }
}

void HttpTransaction::log() {
  if (logged_) return;
  logged_ = true;
  int64_t now = ctx_.loop().now_ms();
  int64_t t_queue = slot_.attempts() > 0 ? slot_.queue_ms(now) : -1;
  int64_t t_connect = t_connected_ >= 0 ? t_connected_ - t_connect_start_ : -1;
  int64_t t_response = t_response_ >= 0 && t_connected_ >= 0 ? t_response_ - t_connected_ : -1;
  int64_t t_total = now - t_start_;
  TrafficCounters& fc = fe_->counters();
  fc.add_session(now);
  bump(fc.local().bytes_in, bytes_in_);
  bump(fc.local().bytes_out, bytes_out_);
  if (res_status_) fc.add_status(res_status_);
  for (TrafficCounters* c : {be_ && slot_.attempts() > 0 ? &be_->counters() : nullptr,
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
  if (fe_->config().log && ctx_.access_log().enabled())
    write_log_line(t_queue, t_connect, t_response, t_total);
  // After the log line, whose samples may read the entries this request tracks.
  if (std::unique_ptr<stick::Trackers>* sc = client_->trackers(); *sc) {
    count_status_in_trackers();
    (*sc)->request_ended(bytes_in_, bytes_out_, stick::clock_now());
  }
}

void HttpTransaction::count_status_in_trackers() {
  // Before the answer leaves: a client that gets its 404 and asks again at
  // once must meet the error it was just counted for.
  if (res_status_counted_ || res_status_ == 0) return;
  std::unique_ptr<stick::Trackers>* sc = client_->trackers();
  if (!*sc) return;
  res_status_counted_ = true;
  (*sc)->response_answered(res_status_, stick::clock_now());
}

void HttpTransaction::write_log_line(int64_t t_queue, int64_t t_connect, int64_t t_response,
                                     int64_t t_total) {
  AccessLogEntry e;
  e.client = peer_text();
  e.frontend = fe_->name();
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
  e.retries = slot_.attempts() > 1 ? slot_.attempts() - 1 : 0;
  e.request_line = request_line_;
  e.captures = &captures_;
  if (!ctx_.worker().log_samples().empty()) {
    eval_log_samples(LogStage::kLog, nullptr, nullptr);
    e.samples = &sample_values_;
  }
  e.rule_captures = &rule_captures_;
  fill_access_log_counts(e, ctx_.worker(), *fe_, be_, server_);
  e.http = true;
  ctx_.access_log().log(e);
}

}  // namespace weir
