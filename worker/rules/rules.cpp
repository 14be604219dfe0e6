#include "worker/rules/rules.h"

#include "worker/http/query_string.h"
#include "worker/rules/head_text.h"
#include "worker/tls/tls.h"

#include <netinet/in.h>

#include <cstring>

namespace weir {
namespace {

using rules_detail::each_header;
using rules_detail::path_of;
using rules_detail::query_of;
using rules_detail::trim;

// The values of header `name` (comma-separated lists split), all or the Nth (-1: last).
void header_values(const http::MessageHead* h, const EditableHead* e, std::string_view name,
                   int occurrence, std::vector<cond::Sample>& out, bool count_only,
                   int64_t* count) {
  std::vector<std::string_view> vals;
  each_header(h, e, [&](std::string_view n, std::string_view v) {
    if (!http::iequals(n, name)) return;
    size_t pos = 0;
    while (pos <= v.size()) {
      size_t comma = v.find(',', pos);
      std::string_view item =
          trim(v.substr(pos, comma == std::string_view::npos ? v.npos : comma - pos));
      vals.push_back(item);
      if (comma == std::string_view::npos) break;
      pos = comma + 1;
    }
  });
  if (count_only) {
    *count = static_cast<int64_t>(vals.size());
    return;
  }
  auto push = [&](std::string_view v) {
    cond::Sample s;
    s.str = v;
    out.push_back(s);
  };
  if (occurrence == 0) {
    for (auto v : vals) push(v);
  } else if (occurrence == -1) {
    if (!vals.empty()) push(vals.back());
  } else if (static_cast<size_t>(occurrence) <= vals.size()) {
    push(vals[static_cast<size_t>(occurrence) - 1]);
  }
}

cond::IpValue ip_of(const SockAddr& a) {
  cond::IpValue v;
  if (a.family() == AF_INET) {
    v.v4 = true;
    v.bytes[10] = v.bytes[11] = 0xff;
    std::memcpy(v.bytes + 12, &reinterpret_cast<const sockaddr_in*>(a.sa())->sin_addr, 4);
  } else if (a.family() == AF_INET6) {
    std::memcpy(v.bytes, &reinterpret_cast<const sockaddr_in6*>(a.sa())->sin6_addr, 16);
  }
  return v;
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

void SampleSource::fetch(const cond::FetchSpec& f, std::vector<cond::Sample>& out) {
  using cond::Fetch;
  auto str = [&](std::string_view v) {
    cond::Sample s;
    s.str = v;
    out.push_back(s);
  };
  auto owned = [&](std::string v) {
    cond::Sample s;
    s.set_owned(std::move(v));
    out.push_back(std::move(s));
  };
  auto num = [&](int64_t n, cond::Type t = cond::Type::kInt) {
    cond::Sample s;
    s.type = t;
    s.num = n;
    out.push_back(s);
  };
  const bool have_req = req || req_edit;
  std::string_view method = req_edit ? std::string_view(req_edit->method)
                            : req    ? req->method
                                     : std::string_view();
  std::string_view target = req_edit ? std::string_view(req_edit->target)
                            : req    ? req->target
                                     : std::string_view();
  switch (f.fetch) {
    case Fetch::kSrc:
    case Fetch::kDst: {
      const SockAddr* a = f.fetch == Fetch::kSrc ? src : dst;
      if (!a) return;
      cond::Sample s;
      s.type = cond::Type::kIp;
      s.ip = ip_of(*a);
      s.set_owned(a->host_string());
      s.type = cond::Type::kIp;
      out.push_back(std::move(s));
      return;
    }
    case Fetch::kSrcPort:
      if (src) num(src->port());
      return;
    case Fetch::kDstPort:
      if (dst) num(dst->port());
      return;
    case Fetch::kMethod:
      if (have_req) str(method);
      return;
    case Fetch::kUrl:
      if (have_req) str(target);
      return;
    case Fetch::kPath:
      if (have_req) str(path_of(target));
      return;
    case Fetch::kQuery:
      if (have_req && target.find('?') != std::string_view::npos) str(query_of(target));
      return;
    case Fetch::kUrlParam: {
      bool found = false;
      std::string_view v = http::query_param(target, f.arg, &found);
      if (have_req && found) str(v);
      return;
    }
    case Fetch::kHdr:
      header_values(req, req_edit, f.arg, f.occurrence, out, false, nullptr);
      return;
    case Fetch::kHdrCnt: {
      int64_t n = 0;
      header_values(req, req_edit, f.arg, 0, out, true, &n);
      if (have_req) num(n);
      return;
    }
    case Fetch::kResHdr:
      header_values(res, res_edit, f.arg, f.occurrence, out, false, nullptr);
      return;
    case Fetch::kHost: {
      std::string_view host;
      bool found = false;
      each_header(req, req_edit, [&](std::string_view n, std::string_view v) {
        if (!found && http::iequals(n, "host")) {
          host = trim(v);
          found = true;
        }
      });
      if (!found) return;
      // Without the port: "[::1]:80" -> "[::1]", "example.com:8080" -> "example.com".
      size_t colon = host.rfind(':');
      if (colon != std::string_view::npos && host.find(']', colon) == std::string_view::npos &&
          (host.front() != '[' || (colon > 0 && host[colon - 1] == ']'))) {
        host = host.substr(0, colon);
      }
      std::string lower(host);
      for (char& c : lower) c = c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
      owned(std::move(lower));
      return;
    }
    case Fetch::kCookie:
      each_header(req, req_edit, [&](std::string_view n, std::string_view v) {
        if (!http::iequals(n, "cookie")) return;
        size_t pos = 0;
        while (pos < v.size()) {
          size_t semi = v.find(';', pos);
          std::string_view kv =
              trim(v.substr(pos, semi == std::string_view::npos ? v.npos : semi - pos));
          size_t eq = kv.find('=');
          if (eq != std::string_view::npos && kv.substr(0, eq) == f.arg) str(kv.substr(eq + 1));
          if (semi == std::string_view::npos) break;
          pos = semi + 1;
        }
      });
      return;
    case Fetch::kReqLen:
      if (have_req) num(static_cast<int64_t>(req_len));
      return;
    case Fetch::kHttpVersion:
      if (have_req) {
        int minor = req_edit ? req_edit->version_minor : req->version_minor;
        str(minor ? "1.1" : "1.0");
      }
      return;
    case Fetch::kSslFc:
      num(tls_client ? 1 : 0, cond::Type::kBool);
      return;
    case Fetch::kSslSni:
      if (ssl && !tls::sni(ssl).empty()) str(tls::sni(ssl));
      return;
    case Fetch::kSslVersion:
      if (ssl) str(tls::version_name(ssl));
      return;
    case Fetch::kSslCipher:
      if (ssl) str(tls::cipher_name(ssl));
      return;
    case Fetch::kSslAlpn:
      if (ssl && !tls::alpn(ssl).empty()) str(tls::alpn(ssl));
      return;
    case Fetch::kSslCUsed:
      if (ssl) num(tls::peer_cert_used(ssl) ? 1 : 0, cond::Type::kBool);
      return;
    case Fetch::kSslCVerify:
      if (ssl) num(tls::peer_verify_result(ssl));
      return;
    case Fetch::kSslCSDn:
      if (ssl && tls::peer_cert_used(ssl)) owned(tls::peer_subject(ssl));
      return;
    case Fetch::kSslCIDn:
      if (ssl && tls::peer_cert_used(ssl)) owned(tls::peer_issuer(ssl));
      return;
    case Fetch::kSslCSerial:
      if (ssl && tls::peer_cert_used(ssl)) owned(tls::peer_serial(ssl));
      return;
    case Fetch::kReqSslSni:
      if (hello && !hello_sni.empty()) str(hello_sni);
      return;
    case Fetch::kReqSslVer:
      if (hello && !hello_version.empty()) str(hello_version);
      return;
    case Fetch::kReqSslHello:
      num(hello ? 1 : 0, cond::Type::kBool);
      return;
    case Fetch::kStatus:
      if (status) num(status);
      return;
    case Fetch::kVar:
      if (vars) {
        for (const auto& [k, v] : *vars) {
          if (k == f.arg) {
            str(v);
            return;
          }
        }
      }
      return;
    case Fetch::kAlways:
      num(f.constant ? 1 : 0, cond::Type::kBool);
      return;
  }
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
  TcpRuleRun run{ctx, backend};
  for (const TcpRule& r : rules) {
    if (r.stage != stage) continue;
    if (r.cond && r.cond->evaluate(ctx) == r.unless) continue;
    return r.def->run(r, run);
  }
  return true;
}

}  // namespace weir
