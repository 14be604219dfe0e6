// The http actions that change the request line: set_path, set_query, set_uri
// and set_method. Each value is a template; a value rendered per request that
// would break the request line (spaces, a path without '/') is ignored.

#include "worker/rules/actions.h"

namespace weir::rule_actions {
namespace {

// What a part of the request line may be, checked on a constant value at load.
enum class Part {
  kPath,    // starts with '/'
  kQuery,   // anything without spaces
  kUri,     // anything without spaces
  kMethod,  // a token
};

template <Part kPart>
bool read_request_part(ActionScope& s, const YamlNode& v, const std::string& what) {
  auto tpl = s.loader.template_value(v, what);
  if (!tpl) return false;
  const std::string& t = tpl->text;
  bool bad = t.find_first_of(" \t\r\n") != std::string::npos;
  if (kPart == Part::kPath && tpl->is_constant() && (t.empty() || t[0] != '/')) bad = true;
  if (kPart == Part::kMethod && tpl->is_constant()) {
    for (char c : t) bad = bad || !http::is_tchar(static_cast<unsigned char>(c));
    bad = bad || t.empty();
  }
  if (bad) {
    s.error(v.mark, what + ": " + quoted(t) +
                        (kPart == Part::kPath     ? " must start with '/' and have no spaces"
                         : kPart == Part::kMethod ? " is not a method (a token such as GET)"
                                                  : " cannot contain spaces"));
    return false;
  }
  s.rule.value = std::move(*tpl);
  return true;
}

// set_path, set_query, set_uri: the request target.
template <Part kPart>
void run_set_target(const HttpRule& r, RuleRun& run) {
  std::string v = r.value.render(run.ctx);
  EditableHead& e = run.editable();
  if (kPart == Part::kPath) {
    if (v.empty() || v[0] != '/' || v.find_first_of(" \t\r\n") != std::string::npos) return;
    const bool had_query = e.target.find('?') != std::string::npos;
    e.target = v + (had_query ? "?" + std::string(query_of(e.target)) : "");
  } else if (kPart == Part::kQuery) {
    if (v.find_first_of(" \t\r\n#") != std::string::npos) return;
    e.target = std::string(path_of(e.target)) + (v.empty() ? "" : "?" + v);
  } else {
    if (v.empty() || v.find_first_of(" \t\r\n") != std::string::npos) return;
    e.target = std::move(v);
  }
}

void run_set_method(const HttpRule& r, RuleRun& run) {
  std::string v = r.value.render(run.ctx);
  bool ok = !v.empty();
  for (char c : v) ok = ok && http::is_tchar(static_cast<unsigned char>(c));
  // The client frames the response by the method it sent: a HEAD turned into
  // another method (or the reverse) would get a body it does not expect (or
  // miss one it does), and CONNECT changes what follows the head. Such changes
  // are ignored.
  const std::string_view now =
      run.edited() ? std::string_view(run.edited()->method) : run.head.method;
  ok = ok && (now == "HEAD") == (v == "HEAD") && now != "CONNECT" && v != "CONNECT";
  if (ok) run.editable().method = std::move(v);
}

constexpr HttpActionDef kRequestLineActions[] = {
    {"set_path", kInRequest, false, read_request_part<Part::kPath>, run_set_target<Part::kPath>},
    {"set_query", kInRequest, false, read_request_part<Part::kQuery>, run_set_target<Part::kQuery>},
    {"set_uri", kInRequest, false, read_request_part<Part::kUri>, run_set_target<Part::kUri>},
    {"set_method", kInRequest, false, read_request_part<Part::kMethod>, run_set_method},
};
const Registrar<HttpActionDef> kRegister(kRequestLineActions);

}  // namespace
}  // namespace weir::rule_actions
