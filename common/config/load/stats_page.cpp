// stats: of a frontend: the HTML statistics page.
// "/stats" or {uri: /stats, refresh: 5s, hide_version: bool, auth: {realm: R, users: {u: p}}}

#include <algorithm>

#include "common/config/load/loader.h"

namespace weir::config_detail {
namespace {

struct StatsScope : Scope {
  StatsPageConfig& out;
  const FrontendConfig& frontend;
  std::string block;  // names the map in key errors: "frontend 'web'.stats"
};

bool read_uri(StatsScope& s, const YamlNode& v, const std::string& what) {
  auto path = s.text_value(v, what, "a path such as /stats");
  if (!path) return false;
  if (path->empty() || path->front() != '/') {
    s.error(v.mark, what + " must start with '/' (got " + quoted(*path) + ")");
    return false;
  }
  if (path->find_first_of("?#; \t") != std::string::npos) {
    s.error(v.mark, what + " must be a plain path, without '?', '#', ';' or spaces (got " +
                        quoted(*path) + ")");
    return false;
  }
  if (*path == s.frontend.metrics_uri) {
    s.error(v.mark, what + " " + quoted(*path) + " is already the metrics uri");
    return false;
  }
  s.out.uri = std::move(*path);
  return true;
}

bool read_refresh(StatsScope& s, const YamlNode& v, const std::string& what) {
  const auto ms = s.duration_value(v, what);
  if (!ms) return false;
  if (*ms > 0 && *ms < 1000) {
    s.error(v.mark, what + " must be 0 (off) or at least 1s");
    return false;
  }
  s.out.refresh_ms = (*ms + 999) / 1000 * 1000;  // browsers count whole seconds
  return true;
}

bool read_realm(StatsScope& s, const YamlNode& v, const std::string& what) {
  auto realm = s.text_value(v, what, "a name such as weir");
  if (!realm) return false;
  const bool printable = std::all_of(realm->begin(), realm->end(), [](char c) {
    return static_cast<unsigned char>(c) >= 0x20 && c != 0x7f && c != '"' && c != '\\';
  });
  if (realm->empty() || realm->size() > 128 || !printable) {
    s.error(v.mark, what + " must be 1 to 128 printable characters without '\"' or '\\'");
    return false;
  }
  s.out.realm = std::move(*realm);
  return true;
}

bool read_users(StatsScope& s, const YamlNode& v, const std::string& what) {
  const std::string block = s.block + ".users";
  const Fields users = s.loader.map_fields(v, block, "user", " in " + block);
  bool ok = true;
  if (users.list.empty()) {
    s.error(v.mark, what +
                        ": no user defined (remove auth to serve the page without "
                        "authentication)");
    ok = false;
  }
  for (const Field& user : users.list) {
    const bool valid =
        !user.key.empty() && std::none_of(user.key.begin(), user.key.end(), [](char c) {
          return c == ':' || static_cast<unsigned char>(c) < 0x20 || c == 0x7f;
        });
    if (!valid) {
      s.error(user.key_node->mark, s.label + ": invalid user name " + quoted(user.key) +
                                       " (no ':' or control characters)");
      ok = false;
      continue;
    }
    auto password =
        s.text_value(*user.value, s.label + ": password of " + quoted(user.key), "a password");
    if (!password) {
      ok = false;
      continue;
    }
    s.out.users.emplace_back(user.key, std::move(*password));
  }
  return ok;
}

constexpr Key<StatsScope> kAuthKeys[] = {
    {"realm", read_realm},
    {"users", read_users},
};
constexpr auto kAuthNames = names_of(kAuthKeys);

bool read_auth(StatsScope& s, const YamlNode& v, const std::string& what) {
  StatsScope auth{{s.loader, what}, s.out, s.frontend, s.block + ".auth"};
  const Fields fields = s.loader.map_fields(v, auth.block);
  s.loader.reject_unknown(fields, kAuthNames, "in " + auth.block);
  bool ok = read_keys(kAuthKeys, fields, auth);
  if (!fields.get("users")) {
    s.error(v.mark, what + ": missing users");
    ok = false;
  }
  return ok;
}

constexpr Key<StatsScope> kStatsKeys[] = {
    {"uri", read_uri},
    {"refresh", read_refresh},
    {"auth", read_auth},
    {"hide_version", flag<&StatsPageConfig::hide_version>},
};
constexpr auto kStatsNames = names_of(kStatsKeys);

constexpr KeyList kLists[] = {
    {"frontend.stats", kKeysOf, kStatsNames},
    {"frontend.stats.auth", kKeysOf, kAuthNames},
};
const Registrar<KeyList> kRegisterStats(kLists);

}  // namespace

void Loader::load_stats(const YamlNode& node, FrontendConfig& frontend, bool mode_known) {
  StatsPageConfig stats;
  stats.mark = node.mark;
  const std::string name = "frontend " + quoted(frontend.name);
  StatsScope scope{{*this, name + ": stats"}, stats, frontend, name + ".stats"};
  bool ok = true;
  if (node.kind == Kind::kMap) {
    const Fields fields = map_fields(node, scope.block);
    reject_unknown(fields, kStatsNames, "in " + scope.block);
    if (!fields.get("uri")) {
      error(node.mark, scope.label + ": missing uri");
      ok = false;
    }
    ok = read_keys(kStatsKeys, fields, scope) && ok;
  } else {
    ok = read_uri(scope, node, scope.label + ": uri");
  }
  if (mode_known && frontend.mode == Mode::kTcp) {
    error(node.mark, scope.label + " needs mode http");
    ok = false;
  }
  if (ok) frontend.stats = std::move(stats);
}

}  // namespace weir::config_detail
