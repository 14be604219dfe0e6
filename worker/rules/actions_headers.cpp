// The http actions that change headers: set_header, add_header, del_header,
// replace_header and replace_value, in requests and responses. None may touch
// Content-Length or Transfer-Encoding: weir keeps the message framing as it is.

#include "worker/rules/actions.h"

namespace weir::rule_actions {
namespace {

// A header the rule changes (into rule.name).
bool header_name(ActionScope& s, const YamlNode& n, const std::string& what) {
  auto t = s.text_value(n, what, "a header name");
  if (!t) return false;
  bool ok = !t->empty();
  for (char c : *t) ok = ok && http::is_tchar(static_cast<unsigned char>(c));
  if (!ok) {
    s.error(n.mark, what + ": invalid header name " + quoted(*t));
    return false;
  }
  if (http::iequals(*t, "content-length") || http::iequals(*t, "transfer-encoding")) {
    // Changing the framing would make weir and the server disagree on where
    // the message ends (request smuggling).
    s.error(n.mark, what + ": " + *t + " frames the message; weir keeps it as it is");
    return false;
  }
  s.rule.name = *t;
  return true;
}

// ---- set_header, add_header: {name, value} ----------------------------------------------

constexpr std::string_view kHeaderKeys[] = {"name", "value"};

bool read_set_header(ActionScope& s, const YamlNode& v, const std::string& what) {
  if (v.kind != Kind::kMap) {
    s.error(v.mark, what + ": a map {name: X-Header, value: \"...\"}");
    return false;
  }
  const Fields o = s.options(kHeaderKeys);
  const YamlNode* n = s.need(o, "name");
  const YamlNode* val = s.need(o, "value");
  if (!n || !val || !header_name(s, *n, what + ": name")) return false;
  auto tpl = s.loader.template_value(*val, what + ": value");
  if (!tpl) return false;
  if (!s.one_line(tpl->text, *val, "a header value")) return false;
  s.rule.value = std::move(*tpl);
  return true;
}

// Replaces every `name` header by one holding the value (in the first one's place).
void run_set_header(const HttpRule& r, RuleRun& run) {
  std::string value = r.value.render(run.ctx);
  EditableHead& e = run.editable();
  bool placed = false;
  for (auto it = e.headers.begin(); it != e.headers.end();) {
    if (http::iequals(it->first, r.name)) {
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
  if (!placed) e.headers.emplace_back(r.name, std::move(value));
}

void run_add_header(const HttpRule& r, RuleRun& run) {
  std::string v = r.value.render(run.ctx);
  run.editable().headers.emplace_back(r.name, std::move(v));
}

// ---- del_header: NAME or {name} ---------------------------------------------------------

constexpr std::string_view kDelHeaderKeys[] = {"name"};

bool read_del_header(ActionScope& s, const YamlNode& v, const std::string& what) {
  if (v.kind != Kind::kMap) return header_name(s, v, what);
  const Fields o = s.options(kDelHeaderKeys);
  const YamlNode* n = s.need(o, "name");
  return n && header_name(s, *n, what + ": name");
}

void run_del_header(const HttpRule& r, RuleRun& run) {
  std::erase_if(run.editable().headers,
                [&](const auto& h) { return http::iequals(h.first, r.name); });
}

// ---- replace_header, replace_value: {name, match: REGEX, replace} -----------------------

constexpr std::string_view kReplaceKeys[] = {"name", "match", "replace"};

bool read_replace(ActionScope& s, const YamlNode& v, const std::string& what) {
  if (v.kind != Kind::kMap) {
    s.error(v.mark, what + ": a map {name: ..., match: REGEX, replace: \"...\\\\1...\"}");
    return false;
  }
  const Fields o = s.options(kReplaceKeys);
  const YamlNode* n = s.need(o, "name");
  const YamlNode* m = s.need(o, "match");
  const YamlNode* r = s.need(o, "replace");
  if (!n || !m || !r || !header_name(s, *n, what + ": name")) return false;
  auto re = s.text_value(*m, what + ": match", "a regular expression");
  auto rp = s.text_value(*r, what + ": replace", "the replacement");
  if (!re || !rp) return false;
  std::string err;
  s.rule.match = cond::Regex::compile(*re, false, &err);
  if (!s.rule.match) {
    s.error(m->mark, what + ": match: " + err);
    return false;
  }
  if (!s.one_line(*rp, *r, "a header value")) return false;
  s.rule.replacement = *rp;
  return true;
}

// In each whole `name` header value.
void run_replace_header(const HttpRule& r, RuleRun& run) {
  for (auto& [n, v] : run.editable().headers) {
    if (!http::iequals(n, r.name)) continue;
    if (auto nv = r.match->replace(v, r.replacement)) v = std::move(*nv);
  }
}

// In each comma-separated value of a `name` header, on its own.
void run_replace_value(const HttpRule& r, RuleRun& run) {
  for (auto& [n, v] : run.editable().headers) {
    if (!http::iequals(n, r.name)) continue;
    std::string out;
    size_t pos = 0;
    while (pos <= v.size()) {
      size_t comma = v.find(',', pos);
      std::string_view item =
          trim(std::string_view(v).substr(pos, comma == std::string::npos ? v.npos : comma - pos));
      auto nv = r.match->replace(item, r.replacement);
      if (!out.empty()) out += ", ";
      out += nv ? *nv : std::string(item);
      if (comma == std::string::npos) break;
      pos = comma + 1;
    }
    v = std::move(out);
  }
}

constexpr HttpActionDef kHeaderActions[] = {
    {"set_header", kInBoth, false, read_set_header, run_set_header},
    {"add_header", kInBoth, false, read_set_header, run_add_header},
    {"del_header", kInBoth, false, read_del_header, run_del_header},
    {"replace_header", kInBoth, false, read_replace, run_replace_header},
    {"replace_value", kInBoth, false, read_replace, run_replace_value},
};
const Registrar<HttpActionDef> kRegister(kHeaderActions);

constexpr KeyList kLists[] = {
    {"rule.set_header", kKeysOf, kHeaderKeys},
    {"rule.del_header", kKeysOf, kDelHeaderKeys},
    {"rule.replace_header", kKeysOf, kReplaceKeys},
};
const Registrar<KeyList> kRegisterOptions(kLists);

}  // namespace
}  // namespace weir::rule_actions
