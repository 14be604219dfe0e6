#include "worker/backend/persistence.h"

#include <openssl/evp.h>

#include <algorithm>

#include "common/stick/table.h"
#include "worker/rules/rules.h"
#include "worker/stick/keys.h"

namespace weir::persist {

namespace {

// A clock a minute ahead of ours is skew; further, a forged date.
constexpr int64_t kFutureSlackS = 60;

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Calls fn(name, value, whole) for each "name=value" of a Cookie field, split at
// ';' (RFC 6265 5.4; ',' too, as older clients fold fields with it). `whole` is the
// pair as written. fn returns false to stop.
template <typename Fn>
void each_cookie(std::string_view field, Fn&& fn) {
  while (!field.empty()) {
    const size_t end = field.find_first_of(";,");
    std::string_view pair = trim(field.substr(0, end));
    field = end == std::string_view::npos ? std::string_view() : field.substr(end + 1);
    if (pair.empty()) continue;
    const size_t eq = pair.find('=');
    std::string_view name = trim(pair.substr(0, eq));
    std::string_view value =
        eq == std::string_view::npos ? std::string_view() : trim(pair.substr(eq + 1));
    if (value.size() >= 2 && value.front() == '"' && value.back() == '"') {
      value = value.substr(1, value.size() - 2);
    }
    if (!fn(name, value, pair)) return;
  }
}

// The cookie name a Set-Cookie field sets, and where its value starts and ends.
bool set_cookie_parts(std::string_view field, std::string_view* name, size_t* value_begin,
                      size_t* value_end) {
  const size_t eq = field.find('=');
  if (eq == std::string_view::npos) return false;
  *name = trim(field.substr(0, eq));
  size_t b = eq + 1;
  while (b < field.size() && (field[b] == ' ' || field[b] == '\t')) ++b;
  size_t e = field.find(';', b);
  if (e == std::string_view::npos) e = field.size();
  while (e > b && (field[e - 1] == ' ' || field[e - 1] == '\t')) --e;
  *value_begin = b;
  *value_end = e;
  return true;
}

bool named(const std::pair<std::string, std::string>& h, std::string_view want) {
  return http::iequals(h.first, want);
}

// The Domain attribute for a request to `host`: the configured domain the host is
// in (itself or a subdomain); none when the host is in none of them.
std::string_view domain_for(const CookieConfig& c, std::string_view host) {
  if (size_t colon = host.rfind(':');
      colon != std::string_view::npos && host.find(']') == std::string_view::npos) {
    host = host.substr(0, colon);
  }
  for (const std::string& d : c.domains) {
    std::string_view bare = d;
    if (!bare.empty() && bare.front() == '.') bare.remove_prefix(1);
    if (host.size() < bare.size()) continue;
    std::string_view tail = host.substr(host.size() - bare.size());
    if (!http::iequals(tail, bare)) continue;
    if (host.size() == bare.size() || host[host.size() - bare.size() - 1] == '.') return d;
  }
  return {};
}

bool dated(const CookieConfig& c) {
  return c.mode == CookieMode::kInsert && (c.maxidle_ms > 0 || c.maxlife_ms > 0);
}

// insert: does the response need weir's cookie (set, or its dates refreshed)?
bool insert_needed(const CookieConfig& c, const ClientCookie& req, const std::string& value,
                   int64_t now_s) {
  if (!req.found || req.value != value) return true;
  if (!dated(c)) return false;
  // Dates are refreshed a quarter of maxidle after the last one (at most once a
  // second); an undated cookie gets its dates.
  const int64_t step = std::max<int64_t>(1, c.maxidle_ms / 4000);
  return req.last_s < 0 || (c.maxidle_ms > 0 && now_s - req.last_s >= step);
}

}  // namespace

bool response_needs_edit(const CookieConfig& c, const ClientCookie& req, const std::string& value,
                         const http::MessageHead& h, int64_t now_s) {
  if (c.mode == CookieMode::kInsert && insert_needed(c, req, value, now_s)) return true;
  for (size_t i = 0; i < h.header_count; ++i) {
    if (!http::iequals(h.headers[i].name, "set-cookie")) continue;
    std::string_view name;
    size_t b = 0, e = 0;
    if (set_cookie_parts(h.headers[i].value, &name, &b, &e) && name == c.name) return true;
  }
  return false;
}

std::string base36(int64_t v) {
  if (v <= 0) return "0";
  std::string out;
  while (v > 0) {
    out += "0123456789abcdefghijklmnopqrstuvwxyz"[v % 36];
    v /= 36;
  }
  std::reverse(out.begin(), out.end());
  return out;
}

int64_t from_base36(std::string_view s) {
  if (s.empty() || s.size() > 12) return -1;
  int64_t v = 0;
  for (char ch : s) {
    int d;
    if (ch >= '0' && ch <= '9') {
      d = ch - '0';
    } else if (ch >= 'a' && ch <= 'z') {
      d = ch - 'a' + 10;
    } else {
      return -1;
    }
    v = v * 36 + d;
  }
  return v;
}

std::string server_cookie(const CookieConfig& c, std::string_view backend_name,
                          const ServerConfig& s) {
  if (!s.cookie.empty()) return s.cookie;
  if (!c.dynamic) return s.name;
  const std::string_view key = c.dynamic_key.empty() ? backend_name : c.dynamic_key;
  std::string input(key);
  input += '\0';
  input += s.name;
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(input.data(), input.size(), md, &len, EVP_sha256(), nullptr);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned i = 0; i < 8 && i < len; ++i) {
    out += kHex[md[i] >> 4];
    out += kHex[md[i] & 15];
  }
  return out;
}

void read_client_cookie(const CookieConfig& c, const http::MessageHead& h, int64_t now_s,
                        ClientCookie* out) {
  out->clear();
  std::string_view raw;
  bool seen = false;
  for (size_t i = 0; i < h.header_count && !seen; ++i) {
    if (!http::iequals(h.headers[i].name, "cookie")) continue;
    each_cookie(h.headers[i].value,
                [&](std::string_view name, std::string_view value, std::string_view) {
                  if (name != c.name) return true;
                  raw = value;
                  seen = true;
                  return false;
                });
  }
  if (!seen || raw.empty()) return;
  std::string_view value = raw;
  switch (c.mode) {
    case CookieMode::kPrefix: {
      const size_t tilde = raw.find('~');
      if (tilde == std::string_view::npos || tilde == 0) return;
      value = raw.substr(0, tilde);
      break;
    }
    case CookieMode::kRewrite:
      break;
    case CookieMode::kInsert: {
      const size_t bar = raw.find('|');
      if (bar == std::string_view::npos) break;  // no dates: valid, refreshed when dated
      value = raw.substr(0, bar);
      std::string_view dates = raw.substr(bar + 1);
      const size_t bar2 = dates.find('|');
      if (bar2 == std::string_view::npos) return;
      const int64_t last = from_base36(dates.substr(0, bar2));
      const int64_t first = from_base36(dates.substr(bar2 + 1));
      if (last < 0 || first < 0 || first > last || last > now_s + kFutureSlackS) return;
      if (c.maxidle_ms > 0 && (now_s - last) * 1000 > c.maxidle_ms) return;
      if (c.maxlife_ms > 0 && (now_s - first) * 1000 > c.maxlife_ms) return;
      out->last_s = last;
      out->first_s = first;
      break;
    }
  }
  if (value.empty()) return;
  out->found = true;
  out->value.assign(value);
}

bool request_cookie_for_server(const CookieConfig& c, std::string_view field, std::string* out) {
  if (!rewrites_request(c)) return false;
  bool changed = false;
  out->clear();
  each_cookie(field, [&](std::string_view name, std::string_view value, std::string_view whole) {
    if (name == c.name) {
      changed = true;
      if (c.mode == CookieMode::kInsert) return true;  // indirect: the server never sees it
      const size_t tilde = value.find('~');
      if (tilde != std::string_view::npos && tilde > 0) {
        if (!out->empty()) out->append("; ");
        out->append(name);
        out->push_back('=');
        out->append(value.substr(tilde + 1));
        return true;
      }
    }
    if (!out->empty()) out->append("; ");
    out->append(whole);
    return true;
  });
  return changed;
}

bool edit_response(const CookieConfig& c, const ClientCookie& req, const std::string& value,
                   std::string_view host, int64_t now_s, EditableHead& e) {
  bool changed = false;
  if (c.mode != CookieMode::kInsert) {
    for (auto& h : e.headers) {
      if (!named(h, "set-cookie")) continue;
      std::string_view name;
      size_t b = 0, end = 0;
      if (!set_cookie_parts(h.second, &name, &b, &end) || name != c.name) continue;
      std::string_view theirs = std::string_view(h.second).substr(b, end - b);
      std::string v = value;
      if (c.mode == CookieMode::kPrefix) {
        if (theirs.size() > value.size() && theirs.starts_with(value) &&
            theirs[value.size()] == '~')
          continue;  // already prefixed
        v += '~';
        v.append(theirs);
      }
      h.second.replace(b, end - b, v);
      changed = true;
    }
    return changed;
  }
  // insert: the name is weir's; a server that sets it too loses its field.
  const size_t before = e.headers.size();
  std::erase_if(e.headers, [&](const std::pair<std::string, std::string>& h) {
    if (!named(h, "set-cookie")) return false;
    std::string_view name;
    size_t b = 0, end = 0;
    return set_cookie_parts(h.second, &name, &b, &end) && name == c.name;
  });
  changed = e.headers.size() != before;
  if (!insert_needed(c, req, value, now_s)) return changed;
  std::string cookie = c.name + "=" + value;
  if (dated(c)) {
    const int64_t first = req.found && req.value == value && req.first_s >= 0 ? req.first_s : now_s;
    cookie += '|' + base36(now_s) + '|' + base36(first);
  }
  cookie += "; Path=/";
  if (std::string_view d = domain_for(c, host); !d.empty()) {
    cookie += "; Domain=";
    cookie.append(d);
  }
  if (c.httponly) cookie += "; HttpOnly";
  if (c.secure) cookie += "; Secure";
  if (!c.samesite.empty()) cookie += "; SameSite=" + c.samesite;
  for (const std::string& a : c.attrs) cookie += "; " + a;
  e.headers.emplace_back("Set-Cookie", std::move(cookie));
  if (c.nocache) e.headers.emplace_back("Cache-Control", "private");
  return true;
}

uint32_t match(const std::vector<StickRule>& rules, SampleSource& ctx) {
  thread_local std::string key;
  const stick::Now now = stick::clock_now();
  for (const StickRule& r : rules) {
    if (!r.match) continue;
    if (r.cond && r.cond->evaluate(ctx) == r.unless) continue;
    if (!stick::sample_key(*r.match, r.table->def(), ctx, &key)) continue;
    stick::Table::Access a = r.table->find(key, now);
    if (!a) continue;
    const uint32_t* id = a.data().server_key();
    if (id && *id) return *id;
  }
  return 0;
}

void collect_stores(const std::vector<StickRule>& rules, SampleSource& ctx, bool response,
                    std::vector<PendingStore>* out) {
  std::string key;
  for (const StickRule& r : rules) {
    const std::optional<cond::SampleExpr>& k = response ? r.store_response : r.store;
    if (!k) continue;
    if (r.cond && r.cond->evaluate(ctx) == r.unless) continue;
    if (!stick::sample_key(*k, r.table->def(), ctx, &key)) continue;
    out->push_back({r.table.get(), key});
  }
}

void store(const std::vector<PendingStore>& stores, uint32_t id) {
  if (stores.empty()) return;
  const stick::Now now = stick::clock_now();
  for (const PendingStore& p : stores) {
    stick::Table& t = *p.table;
    bool tell = true;
    if (stick::Table::Access a = t.find(p.key, now)) {
      const uint32_t* k = a.data().server_key();
      const int64_t left = t.expires_in(a.entry(), now);
      tell = !k || *k != id || (left >= 0 && left < t.def().expire_ms / 2);
    }
    stick::Table::Access a = t.find_or_make(p.key, now);  // made, or refreshed
    if (a && tell) a.data().set(stick::Datum::kServerKey, 0, id, now);
  }
}

}  // namespace weir::persist
