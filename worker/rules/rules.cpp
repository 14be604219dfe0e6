#include "worker/rules/rules.h"

#include "worker/rules/message_parts.h"

namespace weir {
namespace {

void set_header(EditableHead& e, const std::string& name, std::string value) {
  bool placed = false;
  for (auto it = e.headers.begin(); it != e.headers.end();) {
    if (http::iequals(it->first, name)) {
      if (!placed) {
        it->second = value;
        placed = true;
        ++it;
      } else {
        it = e.headers.erase(it);
      }
    } else {
      ++it;
    }
  }
  if (!placed) e.headers.emplace_back(name, std::move(value));
}

void del_header(EditableHead& e, const std::string& name) {
  std::erase_if(e.headers, [&](const auto& h) { return http::iequals(h.first, name); });
}

}  // namespace

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

RuleVerdict run_http_rules(const std::vector<HttpRule>& rules, SampleSource& ctx,
                           const http::MessageHead& head, std::optional<EditableHead>* edit,
                           Vars* vars, std::vector<std::string>* captures, bool response) {
  using A = HttpRule::Action;
  RuleVerdict verdict;
  auto editable = [&]() -> EditableHead& {
    if (!*edit) {
      *edit = EditableHead::from(head);
      if (response) {
        ctx.res_edit = &**edit;
      } else {
        ctx.req_edit = &**edit;
      }
    }
    return **edit;
  };
  for (const HttpRule& r : rules) {
    if (r.cond && r.cond->evaluate(ctx) == r.unless) continue;
    switch (r.action) {
      case A::kAllow:
        return verdict;
      case A::kDeny:
        verdict.kind = RuleVerdict::Kind::kDeny;
        verdict.rule = &r;
        return verdict;
      case A::kTarpit:
        verdict.kind = RuleVerdict::Kind::kTarpit;
        verdict.rule = &r;
        return verdict;
      case A::kReturn:
        verdict.kind = RuleVerdict::Kind::kReturn;
        verdict.rule = &r;
        return verdict;
      case A::kRedirect: {
        verdict.kind = RuleVerdict::Kind::kRedirect;
        verdict.rule = &r;
        std::string value = r.value.render(ctx);
        std::string_view target =
            ctx.req_edit ? std::string_view(ctx.req_edit->target) : ctx.req->target;
        std::string_view rest = r.drop_query ? path_of(target) : target;
        if (!rest.empty() && rest[0] != '/') rest = path_of(target);  // absolute-form
        if (r.redirect == HttpRule::Redirect::kLocation) {
          verdict.location = std::move(value);
        } else if (r.redirect == HttpRule::Redirect::kPrefix) {
          while (!value.empty() && value.back() == '/') value.pop_back();
          verdict.location = value + std::string(rest);
        } else {
          std::string host_header;
          each_header(ctx.req, ctx.req_edit, [&](std::string_view n, std::string_view v) {
            if (host_header.empty() && http::iequals(n, "host")) host_header = std::string(trim(v));
          });
          verdict.location = value + "://" + host_header + std::string(rest);
        }
        return verdict;
      }
      case A::kSetHeader:
        set_header(editable(), r.name, r.value.render(ctx));
        break;
      case A::kAddHeader: {
        std::string v = r.value.render(ctx);
        editable().headers.emplace_back(r.name, std::move(v));
        break;
      }
      case A::kDelHeader:
        del_header(editable(), r.name);
        break;
      case A::kReplaceHeader:
      case A::kReplaceValue: {
        EditableHead& e = editable();
        for (auto& [n, v] : e.headers) {
          if (!http::iequals(n, r.name)) continue;
          if (r.action == A::kReplaceHeader) {
            if (auto nv = r.match->replace(v, r.replacement)) v = std::move(*nv);
            continue;
          }
          // Each comma-separated value on its own.
          std::string out;
          size_t pos = 0;
          while (pos <= v.size()) {
            size_t comma = v.find(',', pos);
            std::string_view item = trim(
                std::string_view(v).substr(pos, comma == std::string::npos ? v.npos : comma - pos));
            auto nv = r.match->replace(item, r.replacement);
            if (!out.empty()) out += ", ";
            out += nv ? *nv : std::string(item);
            if (comma == std::string::npos) break;
            pos = comma + 1;
          }
          v = std::move(out);
        }
        break;
      }
      case A::kSetPath:
      case A::kSetQuery:
      case A::kSetUri: {
        std::string v = r.value.render(ctx);
        EditableHead& e = editable();
        std::string path(path_of(e.target));
        std::string query(query_of(e.target));
        bool had_query = e.target.find('?') != std::string::npos;
        if (r.action == A::kSetPath) {
          if (v.empty() || v[0] != '/' || v.find_first_of(" \t\r\n") != std::string::npos) break;
          e.target = v + (had_query ? "?" + query : "");
        } else if (r.action == A::kSetQuery) {
          if (v.find_first_of(" \t\r\n#") != std::string::npos) break;
          e.target = path + (v.empty() ? "" : "?" + v);
        } else {
          if (v.empty() || v.find_first_of(" \t\r\n") != std::string::npos) break;
          e.target = std::move(v);
        }
        break;
      }
      case A::kSetMethod: {
        std::string v = r.value.render(ctx);
        bool ok = !v.empty();
        for (char c : v) ok = ok && http::is_tchar(static_cast<unsigned char>(c));
        // The client frames the response by the method it sent: a HEAD turned
        // into another method (or the reverse) would get a body it does not
        // expect (or miss one it does), and CONNECT changes what follows the
        // head. Such changes are ignored.
        const std::string_view now = *edit ? std::string_view((*edit)->method) : head.method;
        ok = ok && (now == "HEAD") == (v == "HEAD") && now != "CONNECT" && v != "CONNECT";
        if (ok) editable().method = std::move(v);
        break;
      }
      case A::kSetVar: {
        std::string v = r.value.render(ctx);
        bool set = false;
        for (auto& [k, val] : *vars) {
          if (k == r.name) {
            val = v;
            set = true;
          }
        }
        if (!set) vars->emplace_back(r.name, std::move(v));
        break;
      }
      case A::kCapture: {
        std::string v = r.value.render(ctx);
        if (v.size() > r.capture_len) v.resize(r.capture_len);
        captures->push_back(std::move(v));
        break;
      }
      case A::kUseBackend:
        verdict.use_backend = true;
        verdict.backend = r.backend.empty() ? r.value.render(ctx) : r.backend;
        return verdict;
      case A::kSetStatus: {
        // A status without a body (204, 304) for a response that has one, or
        // the reverse, would make the client read the message differently from
        // weir and the server, and a 1xx is no final response: such changes
        // are ignored.
        const int now = *edit ? (*edit)->status : head.status;
        const auto bodiless = [](int s) { return s == 204 || s == 304; };
        if (now < 200 || r.status < 200 || bodiless(now) != bodiless(r.status)) break;
        EditableHead& e = editable();
        e.status = r.status;
        e.reason = r.reason;
        ctx.status = r.status;
        break;
      }
    }
  }
  return verdict;
}

bool run_tcp_rules(const std::vector<TcpRule>& rules, TcpRule::Stage stage, SampleSource& ctx,
                   std::string* backend) {
  for (const TcpRule& r : rules) {
    if (r.stage != stage) continue;
    if (r.cond && r.cond->evaluate(ctx) == r.unless) continue;
    switch (r.action) {
      case TcpRule::Action::kAccept:
        return true;
      case TcpRule::Action::kReject:
        return false;
      case TcpRule::Action::kUseBackend:
        *backend = r.backend;
        return true;
    }
  }
  return true;
}

}  // namespace weir
