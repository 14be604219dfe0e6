#include "worker/rules/rules.h"

namespace weir {

EditableHead EditableHead::from(const http::MessageHead& h) {
  EditableHead e;
  e.method = std::string(h.method);
  e.target = std::string(h.target);
  e.status = h.status;
  e.reason = std::string(h.reason);
  e.version_minor = h.version_minor;
  e.headers.reserve(h.header_count + 2);
  for (size_t i = 0; i < h.header_count; ++i) {
    e.headers.emplace_back(std::string(h.headers[i].name), std::string(h.headers[i].value));
  }
  return e;
}

std::string EditableHead::request_text() const {
  std::string out = method + " " + target + (version_minor ? " HTTP/1.1\r\n" : " HTTP/1.0\r\n");
  for (const auto& [n, v] : headers) out += n + ": " + v + "\r\n";
  out += "\r\n";
  return out;
}

// Each fetch's function is registered beside it (fetches_*.cpp) and reads this
// SampleSource.
void SampleSource::fetch(const cond::FetchSpec& f, std::vector<cond::Sample>& out) {
  f.def->run(f, *this, out);
}

EditableHead& RuleRun::editable() {
  if (!*edit) {
    *edit = EditableHead::from(head);
    if (response) {
      ctx.res_edit = &**edit;
    } else {
      ctx.req_edit = &**edit;
    }
  }
  return **edit;
}

RuleVerdict run_http_rules(const std::vector<HttpRule>& rules, SampleSource& ctx,
                           const http::MessageHead& head, std::optional<EditableHead>* edit,
                           Vars* vars, std::vector<std::string>* captures, bool response) {
  RuleRun run{ctx, head, edit, vars, captures, response, {}};
  for (const HttpRule& r : rules) {
    if (r.cond && r.cond->evaluate(ctx) == r.unless) continue;
    r.def->run(r, run);
    if (r.def->terminal) break;
  }
  return std::move(run.verdict);
}

bool run_tcp_rules(const std::vector<TcpRule>& rules, TcpRule::Stage stage, SampleSource& ctx,
                   std::string* backend) {
  TcpRuleRun run{ctx, backend, stage};
  for (const TcpRule& r : rules) {
    if (r.stage != stage) continue;
    if (r.cond && r.cond->evaluate(ctx) == r.unless) continue;
    const bool go_on = r.def->run(r, run);
    if (r.def->terminal || !go_on) return go_on;
  }
  return true;
}

}  // namespace weir
