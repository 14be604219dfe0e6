// Fetches of the HTTP request and response: method, path, url, query,
// url_param, hdr, hdr_cnt, host, cookie, req_len, http_version, status,
// res_hdr, res.cook. They read the edited copy of a head when rules changed it, else the
// parsed head. Each runs on the SampleSource that called it
// (SampleSource::of).

#include "common/base/registry.h"
#include "worker/http/query_string.h"
#include "worker/rules/message_parts.h"

namespace weir {
namespace {

using namespace cond;  // the types of fetches

bool have_request(const SampleSource& s) {
  return s.req || s.req_edit;
}

std::string_view target_of(const SampleSource& s) {
  return s.req_edit ? std::string_view(s.req_edit->target) : s.req ? s.req->target : "";
}

// The values of header `name` (comma-separated lists split): all, or the Nth
// (-1: the last) when `occurrence` is not 0.
std::vector<std::string_view> header_values(const http::MessageHead* h, const EditableHead* e,
                                            std::string_view name) {
  std::vector<std::string_view> vals;
  each_header(h, e, [&](std::string_view n, std::string_view v) {
    if (!http::iequals(n, name)) return;
    size_t pos = 0;
    while (pos <= v.size()) {
      size_t comma = v.find(',', pos);
      vals.push_back(trim(v.substr(pos, comma == std::string_view::npos ? v.npos : comma - pos)));
      if (comma == std::string_view::npos) break;
      pos = comma + 1;
    }
  });
  return vals;
}

void push_header(const http::MessageHead* h, const EditableHead* e, const FetchSpec& f,
                 std::vector<Sample>& out) {
  const std::vector<std::string_view> vals = header_values(h, e, f.arg);
  if (f.occurrence == 0) {
    for (std::string_view v : vals) push_string(out, v);
  } else if (f.occurrence == -1) {
    if (!vals.empty()) push_string(out, vals.back());
  } else if (static_cast<size_t>(f.occurrence) <= vals.size()) {
    push_string(out, vals[static_cast<size_t>(f.occurrence) - 1]);
  }
}

void method(const FetchSpec&, FetchContext& c, std::vector<Sample>& out) {
  const SampleSource& s = SampleSource::of(c);
  if (s.req_edit) {
    push_string(out, s.req_edit->method);
  } else if (s.req) {
    push_string(out, s.req->method);
  }
}

void url(const FetchSpec&, FetchContext& c, std::vector<Sample>& out) {
  if (have_request(SampleSource::of(c))) push_string(out, target_of(SampleSource::of(c)));
}

void path(const FetchSpec&, FetchContext& c, std::vector<Sample>& out) {
  if (have_request(SampleSource::of(c))) push_string(out, path_of(target_of(SampleSource::of(c))));
}

void query(const FetchSpec&, FetchContext& c, std::vector<Sample>& out) {
  const std::string_view target = target_of(SampleSource::of(c));
  if (target.find('?') != std::string_view::npos) push_string(out, query_of(target));
}

void url_param(const FetchSpec& f, FetchContext& c, std::vector<Sample>& out) {
  bool found = false;
  std::string_view v = http::query_param(target_of(SampleSource::of(c)), f.arg, &found);
  if (found) push_string(out, v);
}

void hdr(const FetchSpec& f, FetchContext& c, std::vector<Sample>& out) {
  push_header(SampleSource::of(c).req, SampleSource::of(c).req_edit, f, out);
}

void hdr_cnt(const FetchSpec& f, FetchContext& c, std::vector<Sample>& out) {
  const SampleSource& s = SampleSource::of(c);
  if (have_request(s))
    push_number(out, static_cast<int64_t>(header_values(s.req, s.req_edit, f.arg).size()));
}

void res_hdr(const FetchSpec& f, FetchContext& c, std::vector<Sample>& out) {
  push_header(SampleSource::of(c).res, SampleSource::of(c).res_edit, f, out);
}

// Host without its port ("[::1]:80" -> "[::1]", "example.com:8080" ->
// "example.com"), lower-cased.
void host(const FetchSpec&, FetchContext& c, std::vector<Sample>& out) {
  const SampleSource& s = SampleSource::of(c);
  std::string_view value;
  bool found = false;
  each_header(s.req, s.req_edit, [&](std::string_view n, std::string_view v) {
    if (!found && http::iequals(n, "host")) {
      value = trim(v);
      found = true;
    }
  });
  if (!found) return;
  size_t colon = value.rfind(':');
  if (colon != std::string_view::npos && value.find(']', colon) == std::string_view::npos &&
      (value.front() != '[' || (colon > 0 && value[colon - 1] == ']'))) {
    value = value.substr(0, colon);
  }
  std::string lower(value);
  for (char& ch : lower) ch = ch >= 'A' && ch <= 'Z' ? static_cast<char>(ch - 'A' + 'a') : ch;
  push_owned(out, std::move(lower));
}

void cookie(const FetchSpec& f, FetchContext& c, std::vector<Sample>& out) {
  const SampleSource& s = SampleSource::of(c);
  each_header(s.req, s.req_edit, [&](std::string_view n, std::string_view v) {
    if (!http::iequals(n, "cookie")) return;
    size_t pos = 0;
    while (pos < v.size()) {
      size_t semi = v.find(';', pos);
      std::string_view kv =
          trim(v.substr(pos, semi == std::string_view::npos ? v.npos : semi - pos));
      size_t eq = kv.find('=');
      if (eq != std::string_view::npos && kv.substr(0, eq) == f.arg)
        push_string(out, kv.substr(eq + 1));
      if (semi == std::string_view::npos) break;
      pos = semi + 1;
    }
  });
}

// The values of cookie NAME that the response's Set-Cookie fields set (the value
// runs from the '=' to the first ';').
void res_cook(const FetchSpec& f, FetchContext& c, std::vector<Sample>& out) {
  const SampleSource& s = SampleSource::of(c);
  each_header(s.res, s.res_edit, [&](std::string_view n, std::string_view v) {
    if (!http::iequals(n, "set-cookie")) return;
    const size_t eq = v.find('=');
    if (eq == std::string_view::npos || trim(v.substr(0, eq)) != f.arg) return;
    std::string_view value = v.substr(eq + 1);
    value = trim(value.substr(0, value.find(';')));
    if (value.size() >= 2 && value.front() == '"' && value.back() == '"') {
      value = value.substr(1, value.size() - 2);
    }
    push_string(out, value);
  });
}

void req_len(const FetchSpec&, FetchContext& c, std::vector<Sample>& out) {
  const SampleSource& s = SampleSource::of(c);
  if (have_request(s)) push_number(out, static_cast<int64_t>(s.req_len));
}

void http_version(const FetchSpec&, FetchContext& c, std::vector<Sample>& out) {
  const SampleSource& s = SampleSource::of(c);
  if (!have_request(s)) return;
  const int minor = s.req_edit ? s.req_edit->version_minor : s.req->version_minor;
  push_string(out, minor ? "1.1" : "1.0");
}

void status(const FetchSpec&, FetchContext& c, std::vector<Sample>& out) {
  if (SampleSource::of(c).status) push_number(out, SampleSource::of(c).status);
}

constexpr FetchScope kReq = FetchScope::kRequest;
constexpr FetchScope kRes = FetchScope::kResponse;
constexpr FetchDef kHttpFetches[] = {
    {"method", Type::kString, kReq, FetchArg::kNone, false, method},
    {"path", Type::kString, kReq, FetchArg::kNone, false, path},
    {"url", Type::kString, kReq, FetchArg::kNone, false, url},
    {"query", Type::kString, kReq, FetchArg::kNone, false, query},
    {"url_param", Type::kString, kReq, FetchArg::kName, false, url_param},
    {"hdr", Type::kString, kReq, FetchArg::kHeader, true, hdr},
    {"hdr_cnt", Type::kInt, kReq, FetchArg::kHeader, false, hdr_cnt},
    {"host", Type::kString, kReq, FetchArg::kNone, false, host},
    {"cookie", Type::kString, kReq, FetchArg::kName, false, cookie},
    {"req_len", Type::kInt, kReq, FetchArg::kNone, false, req_len},
    {"http_version", Type::kString, kReq, FetchArg::kNone, false, http_version},
    {"status", Type::kInt, kRes, FetchArg::kNone, false, status},
    {"res_hdr", Type::kString, kRes, FetchArg::kHeader, true, res_hdr},
    // HAProxy's names for the same.
    {"req.hdr", Type::kString, kReq, FetchArg::kHeader, true, hdr},
    {"res.hdr", Type::kString, kRes, FetchArg::kHeader, true, res_hdr},
    {"req.cook", Type::kString, kReq, FetchArg::kName, false, cookie},
    {"res.cook", Type::kString, kRes, FetchArg::kName, false, res_cook},
};
const Registrar<FetchDef> kRegister(kHttpFetches);

}  // namespace
}  // namespace weir
