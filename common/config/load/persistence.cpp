// Persistence of a backend (sticky sessions): `stick:` rules on stick tables that
// store server_key, `cookie:` persistence, `stick_redispatch:`, and the servers'
// `cookie:` values (doc/configuration.md, "Sticky sessions").

#include <algorithm>
#include <cctype>
#include <map>

#include "common/config/load/loader.h"
#include "common/stick/table.h"

namespace weir::config_detail {
namespace {

constexpr std::string_view kStickKeys[] = {"match", "store", "store_response",
                                           "table", "if",    "unless"};

struct CookieScope : Scope {
  CookieConfig& out;
};

constexpr Choice<CookieMode> kCookieModes[] = {
    {"insert", CookieMode::kInsert},
    {"rewrite", CookieMode::kRewrite},
    {"prefix", CookieMode::kPrefix},
};

bool read_mode(CookieScope& s, const YamlNode& v, const std::string& what) {
  return choice<&CookieConfig::mode, kCookieModes>(s, v, what, what + ": unknown mode");
}

bool read_name(CookieScope& s, const YamlNode& v, const std::string& what) {
  auto t = s.text_value(v, what, "a cookie name");
  if (!t) return false;
  // RFC 6265 cookie-name: an RFC 9110 token.
  static constexpr std::string_view kSeparators = "()<>@,;:\\\"/[]?={} \t";
  bool ok = !t->empty();
  for (char c : *t) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 32 || u >= 127 || kSeparators.find(c) != std::string_view::npos) ok = false;
  }
  if (!ok) {
    s.error(v.mark, what + " " + quoted(*t) +
                        " is not a cookie name (letters, digits and !#$%&'*+-.^_`|~)");
    return false;
  }
  s.out.name = std::move(*t);
  return true;
}

bool read_samesite(CookieScope& s, const YamlNode& v, const std::string& what) {
  auto t = s.text_value(v, what, "Strict, Lax or None");
  if (!t) return false;
  for (std::string_view w : {"Strict", "Lax", "None"}) {
    if (std::equal(t->begin(), t->end(), w.begin(), w.end(), [](char a, char b) {
          return std::tolower(static_cast<unsigned char>(a)) ==
                 std::tolower(static_cast<unsigned char>(b));
        })) {
      s.out.samesite = w;
      return true;
    }
  }
  s.error(v.mark, what + ": " + quoted(*t) + " is not Strict, Lax or None");
  return false;
}

// An attribute's text: printable, no ';' (it would start another attribute).
bool attribute_text(const CookieScope& s, const YamlNode& v, const std::string& what,
                    std::string_view expected, std::string* out) {
  auto t = s.text_value(v, what, expected);
  if (!t) return false;
  for (char c : *t) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 32 || u == 127 || c == ';') {
      s.error(v.mark, what + " " + quoted(*t) + " holds a ';' or a control character");
      return false;
    }
  }
  if (t->empty()) {
    s.error(v.mark, what + " is empty");
    return false;
  }
  *out = std::move(*t);
  return true;
}

bool read_domain(CookieScope& s, const YamlNode& v, const std::string& what) {
  bool ok = true;
  for (const YamlNode* d : entries_of(v)) {
    std::string text;
    if (!attribute_text(s, *d, what, "a domain such as example.com", &text)) {
      ok = false;
      continue;
    }
    if (text.find_first_of(" ,=") != std::string::npos) {
      s.error(d->mark, what + " " + quoted(text) + " is not a domain name");
      ok = false;
      continue;
    }
    s.out.domains.push_back(std::move(text));
  }
  return ok;
}

bool read_attr(CookieScope& s, const YamlNode& v, const std::string& what) {
  bool ok = true;
  for (const YamlNode* a : entries_of(v)) {
    std::string text;
    if (!attribute_text(s, *a, what, "an attribute such as Partitioned", &text)) {
      ok = false;
      continue;
    }
    s.out.attrs.push_back(std::move(text));
  }
  return ok;
}

bool read_dynamic_key(CookieScope& s, const YamlNode& v, const std::string& what) {
  auto t = s.string_value(v, what);
  if (t) s.out.dynamic_key = std::move(*t);
  return t.has_value();
}

constexpr Key<CookieScope> kCookieKeys[] = {
    {"name", read_name},
    {"mode", read_mode},
    {"indirect", flag<&CookieConfig::indirect>},
    {"nocache", flag<&CookieConfig::nocache>},
    {"httponly", flag<&CookieConfig::httponly>},
    {"secure", flag<&CookieConfig::secure>},
    {"samesite", read_samesite},
    {"domain", read_domain},
    {"attr", read_attr},
    {"maxidle", duration<&CookieConfig::maxidle_ms>},
    {"maxlife", duration<&CookieConfig::maxlife_ms>},
    {"dynamic", flag<&CookieConfig::dynamic>},
    {"dynamic_key", read_dynamic_key},
};
constexpr auto kCookieNames = names_of(kCookieKeys);
constexpr auto kCookieModeNames = names_of(kCookieModes);

constexpr KeyList kLists[] = {
    {"backend.stick", kKeysOf, kStickKeys},
    {"backend.cookie", kKeysOf, kCookieNames},
    {"backend.cookie.mode", kValuesOf, kCookieModeNames},
};
const Registrar<KeyList> kRegisterPersistence(kLists);

// A stick rule's key: a sample the stage can fetch.
std::optional<cond::SampleExpr> stick_key(Loader& loader, const YamlNode& v,
                                          const std::string& what, const BackendConfig& be,
                                          bool mode_known, bool response) {
  auto smp = loader.sample_value(v, what);
  if (!smp) return std::nullopt;
  if (mode_known && be.mode == Mode::kTcp && smp->fetch.http_only()) {
    loader.error(v.mark, what + " " + quoted(smp->text) + " needs HTTP (this backend is tcp)");
    return std::nullopt;
  }
  if (!response && smp->fetch.response_only()) {
    loader.error(v.mark, what + " " + quoted(smp->text) +
                             " needs the response (store it with store_response)");
    return std::nullopt;
  }
  return smp;
}

}  // namespace

bool cookie_value_valid(std::string_view v, std::string* problem) {
  if (v.empty()) {
    *problem = "empty";
    return false;
  }
  if (v.size() > 64) {
    *problem = "longer than 64 characters";
    return false;
  }
  for (char c : v) {
    const auto u = static_cast<unsigned char>(c);
    // RFC 6265 cookie-octet, less weir's own separators.
    if (u <= 32 || u >= 127 || c == '"' || c == ',' || c == ';' || c == '\\' || c == '|' ||
        c == '~') {
      *problem = "a cookie value cannot hold " + (u <= 32 || u >= 127 ? std::string("a space or "
                                                                                    "a control "
                                                                                    "character")
                                                                      : quoted(std::string(1, c)));
      return false;
    }
  }
  return true;
}

void Loader::load_stick_rules(const YamlNode& node, const std::string& label,
                              const cond::NamedTests& acls, bool mode_known, BackendConfig& out) {
  int n = 0;
  for (const YamlNode* item : entries_of(node)) {
    ++n;
    const std::string what = label + ": stick rule " + std::to_string(n);
    if (item->kind != Kind::kMap) {
      error(item->mark, what + ": a map such as {match: src, store: src, table: NAME}");
      continue;
    }
    const Fields f = map_fields(*item, what);
    reject_unknown(f, kStickKeys, "in " + what);
    StickRule rule;
    rule.mark = item->mark;
    const YamlNode* table = f.get("table");
    const YamlNode* match = f.get("match");
    const YamlNode* store = f.get("store");
    const YamlNode* store_response = f.get("store_response");
    bool ok = true;
    if (!table) {
      error(item->mark, what + " needs a table: {match: src, store: src, table: NAME}");
      ok = false;
    } else if (auto t = stick_table_value(*table, what); !t) {
      ok = false;
    } else if (!t->stores(stick::Datum::kServerKey)) {
      error(table->mark, what + ": stick table " + quoted(t->name()) +
                             " does not store server_key (add it to its store:)");
      ok = false;
    } else {
      rule.table = std::move(t);
    }
    if (!match && !store && !store_response) {
      error(item->mark, what + " needs match, store or store_response");
      ok = false;
    }
    if (store_response && (match || store)) {
      error(store_response->mark,
            what + ": store_response is a rule of its own (write match and store in another)");
      ok = false;
    }
    if (store_response && mode_known && out.mode == Mode::kTcp) {
      error(store_response->mark, what + ": store_response needs http mode (this backend is tcp)");
      ok = false;
    }
    if (!ok) continue;
    const bool response = store_response != nullptr;
    if (match) {
      rule.match = stick_key(*this, *match, what + ": match", out, mode_known, false);
      ok = ok && rule.match;
    }
    if (store) {
      rule.store = stick_key(*this, *store, what + ": store", out, mode_known, false);
      ok = ok && rule.store;
    }
    if (store_response) {
      rule.store_response =
          stick_key(*this, *store_response, what + ": store_response", out, mode_known, true);
      ok = ok && rule.store_response;
    }
    const YamlNode* cif = f.get("if");
    const YamlNode* cunless = f.get("unless");
    if (cif && cunless) {
      error(cunless->mark, what + ": give if or unless, not both");
      ok = false;
    } else if (cif || cunless) {
      rule.unless = cunless != nullptr;
      rule.cond = condition_value(cif ? *cif : *cunless, what + ": " + (cif ? "if" : "unless"),
                                  acls, response);
      ok = ok && rule.cond;
    }
    if (ok) out.stick_rules.push_back(std::move(rule));
  }
}

void Loader::load_cookie(const YamlNode& node, const std::string& label, bool mode_known,
                         BackendConfig& out) {
  const std::string what = label + ": cookie";
  if (mode_known && out.mode == Mode::kTcp) {
    error(node.mark, what + " needs http mode (this backend is tcp)");
    return;
  }
  CookieConfig c;
  c.mark = node.mark;
  CookieScope scope{{*this, what}, c};
  if (node.kind == Kind::kScalar) {
    if (!read_name(scope, node, what)) return;
  } else {
    if (node.kind != Kind::kMap) {
      error(node.mark, what + ": a cookie name, or a map such as {name: SERVERID, mode: insert}");
      return;
    }
    const Fields f = map_fields(node, what);
    reject_unknown(f, kCookieNames, "in " + what);
    if (!f.get("name")) {
      error(node.mark, what + " needs a name: {name: SERVERID}");
      return;
    }
    if (!read_keys(kCookieKeys, f, scope)) return;
    // Options that only weir's own cookie has.
    if (c.mode != CookieMode::kInsert) {
      for (std::string_view k : {"indirect", "nocache", "maxidle", "maxlife"}) {
        if (const YamlNode* v = f.get(k)) {
          error(v->mark, what + ": " + std::string(k) + " only applies to mode insert");
          return;
        }
      }
    }
    if (c.samesite == "None" && !c.secure) {
      error(f.get("samesite")->mark,
            what + ": samesite None needs secure: true (browsers refuse it otherwise)");
      return;
    }
  }
  out.cookie = std::move(c);
}

void Loader::check_persistence(BackendConfig& backend) {
  const std::string label = "backend " + quoted(backend.name);
  if (backend.cookie.name.empty()) {
    for (const ServerConfig& s : backend.servers) {
      if (!s.cookie.empty()) {
        warn(s.mark, "server " + quoted(s.name) + " of " + label +
                         " has a cookie, but the backend has no cookie: persistence");
        break;
      }
    }
    return;
  }
  // Two servers with one value would share their users.
  std::map<std::string, const ServerConfig*> seen;
  for (const ServerConfig& s : backend.servers) {
    const std::string value = s.cookie.empty() && !backend.cookie.dynamic ? s.name : s.cookie;
    if (value.empty()) continue;  // dynamic: a hash of the name, distinct for distinct names
    auto [it, fresh] = seen.emplace(value, &s);
    if (!fresh) {
      error(s.mark, "server " + quoted(s.name) + " of " + label + " has the cookie value " +
                        quoted(value) + " of server " + quoted(it->second->name));
    }
  }
}

}  // namespace weir::config_detail
