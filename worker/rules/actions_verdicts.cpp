// The http actions that end a list of rules: allow, deny, tarpit, return,
// redirect and use_backend. Each reads its value at load time and, when its rule
// applies, fills the verdict that the transaction acts on
// (worker/http/transaction_rules.cpp answers, tarpits and redirects; use_backend
// routes).

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "worker/rules/actions.h"

namespace weir::rule_actions {
namespace {

// ---- allow: true ----------------------------------------------------------------------

bool read_allow(ActionScope& s, const YamlNode& v, const std::string& what) {
  if (v.kind != Kind::kNull && !(v.kind == Kind::kScalar && v.scalar == "true")) {
    s.error(v.mark, what + ": write allow: true");
    return false;
  }
  return true;
}

// Stops the list; the message goes on.
void run_allow(const HttpRule&, RuleRun&) {}

// ---- deny, return, tarpit: true or {status, body | file, content_type, delay (tarpit)} ---

constexpr std::string_view kAnswerKeys[] = {"status", "body", "file", "content_type", "delay"};

// body, file, content_type of an answer.
bool read_body(ActionScope& s, const Fields& o) {
  const std::string& what = s.label;
  const YamlNode* b = o.get("body");
  const YamlNode* file = o.get("file");
  if (b && file) {
    s.error(file->mark, what + ": give body or file, not both");
    return false;
  }
  if (b) {
    if (auto t = s.text_value(*b, what + ": body", "the response body")) s.rule.body = *t;
  }
  if (file) {
    auto path = s.text_value(*file, what + ": file", "a file path");
    if (!path) return false;
    std::ifstream in(*path, std::ios::binary);
    if (!in) {
      s.error(file->mark, what + ": cannot read " + *path + ": " + std::strerror(errno));
      return false;
    }
    std::ostringstream ss;
    ss << in.rdbuf();
    s.rule.body = ss.str();
  }
  if (const YamlNode* ct = o.get("content_type")) {
    if (auto t = s.text_value(*ct, what + ": content_type", "a media type such as text/plain")) {
      if (!s.one_line(*t, *ct, "content_type")) return false;
      s.rule.content_type = *t;
    }
  }
  return true;
}

template <RuleVerdict::Kind kAnswer>
bool read_answer(ActionScope& s, const YamlNode& v, const std::string& what) {
  using K = RuleVerdict::Kind;
  if (v.kind != Kind::kMap && v.kind != Kind::kNull &&
      !(v.kind == Kind::kScalar && v.scalar == "true")) {
    s.error(v.mark, what + ": a map such as {status: 403, body: \"...\"}, or true");
    return false;
  }
  const Fields o = s.options(kAnswerKeys);
  const int def = kAnswer == K::kDeny     ? (s.response ? 502 : 403)
                  : kAnswer == K::kTarpit ? 500
                                          : 200;
  if (!s.read_status(o, def, kAnswer == K::kReturn ? 200 : 400, 599) || !read_body(s, o)) {
    return false;
  }
  if (const YamlNode* d = o.get("delay")) {
    if (kAnswer != K::kTarpit) {
      s.error(d->mark, what + ": delay belongs to tarpit");
      return false;
    }
    auto ms = s.duration_value(*d, what + ": delay");
    if (!ms) return false;
    s.rule.delay = *ms;
  } else if (kAnswer == K::kTarpit) {
    s.rule.delay = 5000;
  }
  return true;
}

// The session answers as the rule says.
template <RuleVerdict::Kind kAnswer>
void run_answer(const HttpRule& r, RuleRun& run) {
  run.verdict.kind = kAnswer;
  run.verdict.rule = &r;
}

// ---- redirect: {location | prefix | scheme, code, drop_query} ----------------------------

constexpr std::string_view kRedirectKeys[] = {"location", "prefix", "scheme", "code", "drop_query"};

bool read_redirect(ActionScope& s, const YamlNode& v, const std::string& what) {
  if (v.kind != Kind::kMap) {
    s.error(v.mark, what + ": a map such as {scheme: https, code: 301}");
    return false;
  }
  const Fields o = s.options(kRedirectKeys);
  int kinds = 0;
  for (auto [key, kind] :
       {std::pair<std::string_view, HttpRule::Redirect>{"location", HttpRule::Redirect::kLocation},
        {"prefix", HttpRule::Redirect::kPrefix},
        {"scheme", HttpRule::Redirect::kScheme}}) {
    if (const YamlNode* n = o.get(key)) {
      ++kinds;
      s.rule.redirect = kind;
      auto tpl = s.loader.template_value(*n, what + ": " + std::string(key));
      if (!tpl) return false;
      s.rule.value = std::move(*tpl);
    }
  }
  if (kinds != 1) {
    s.error(v.mark, what + " needs exactly one of location, prefix or scheme");
    return false;
  }
  s.rule.status = 302;
  if (const YamlNode* c = o.get("code")) {
    auto n = s.int_value(*c, what + ": code", 301, 308);
    if (!n) return false;
    if (*n != 301 && *n != 302 && *n != 303 && *n != 307 && *n != 308) {
      s.error(c->mark, what + ": code must be 301, 302, 303, 307 or 308");
      return false;
    }
    s.rule.status = static_cast<int>(*n);
  }
  if (const YamlNode* d = o.get("drop_query")) {
    auto b = s.bool_value(*d, what + ": drop_query");
    if (!b) return false;
    s.rule.drop_query = *b;
  }
  return true;
}

void run_redirect(const HttpRule& r, RuleRun& run) {
  RuleVerdict& verdict = run.verdict;
  const SampleSource& ctx = run.ctx;
  verdict.kind = RuleVerdict::Kind::kRedirect;
  verdict.rule = &r;
  std::string value = r.value.render(run.ctx);
  std::string_view target = ctx.req_edit ? std::string_view(ctx.req_edit->target) : ctx.req->target;
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
      if (host_header.empty() && http::iequals(n, "host")) {
        host_header = std::string(trim(v));
      }
    });
    verdict.location = value + "://" + host_header + std::string(rest);
  }
}

// ---- use_backend: a backend name, or a template computing one per request -----------------

bool read_use_backend(ActionScope& s, const YamlNode& v, const std::string& what) {
  auto tpl = s.loader.template_value(v, what);
  if (!tpl) return false;
  if (tpl->is_constant()) {
    s.rule.backend = tpl->text;
    if (!config_detail::valid_name(s.rule.backend)) {
      s.error(v.mark, what + ": invalid backend name " + quoted(s.rule.backend));
      return false;
    }
    config_detail::note_rule_backend(s.loader, s.frontend_index, s.rule.backend, s.rule.mark);
  } else {
    s.loader.dynamic_backends = true;
  }
  s.rule.value = std::move(*tpl);
  return true;
}

void run_use_backend(const HttpRule& r, RuleRun& run) {
  run.verdict.use_backend = true;
  run.verdict.backend = r.backend.empty() ? r.value.render(run.ctx) : r.backend;
}

constexpr auto kDeny = RuleVerdict::Kind::kDeny;
constexpr auto kTarpit = RuleVerdict::Kind::kTarpit;
constexpr auto kReturn = RuleVerdict::Kind::kReturn;

constexpr HttpActionDef kVerdicts[] = {
    {"allow", kInBoth, true, read_allow, run_allow},
    {"deny", kInBoth, true, read_answer<kDeny>, run_answer<kDeny>},
    {"tarpit", kInRequest, true, read_answer<kTarpit>, run_answer<kTarpit>},
    {"return", kInBoth, true, read_answer<kReturn>, run_answer<kReturn>},
    {"redirect", kInRequest, true, read_redirect, run_redirect},
    {"use_backend", kInRequest | kFrontendOnly, true, read_use_backend, run_use_backend},
};
const Registrar<HttpActionDef> kRegister(kVerdicts);

constexpr KeyList kLists[] = {
    {"rule.deny", kKeysOf, kAnswerKeys},
    {"rule.redirect", kKeysOf, kRedirectKeys},
};
const Registrar<KeyList> kRegisterOptions(kLists);

}  // namespace
}  // namespace weir::rule_actions
