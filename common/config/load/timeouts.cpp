// Every timeouts: map. Each section may set only the timeouts that apply to it
// (global: hard_stop_after; a frontend: the client side; a backend: the server
// side; defaults: both sides, for the sections that inherit them), so each has
// its own table; a timeout of another section's table is refused by name.

#include "common/config/load/loader.h"

namespace weir::config_detail {
namespace {

template <typename Out>
struct TimeoutScope : Scope {
  Out& out;
};
using GlobalTimeouts = TimeoutScope<GlobalConfig>;
using SectionTimeouts = TimeoutScope<Timeouts>;

constexpr Key<GlobalTimeouts> kGlobalTimeouts[] = {
    {"hard_stop_after", duration<&GlobalConfig::hard_stop_after>},
};
constexpr Key<SectionTimeouts> kDefaultsTimeouts[] = {
    {"connect", duration<&Timeouts::connect>},
    {"client", duration<&Timeouts::client>},
    {"server", duration<&Timeouts::server>},
    {"queue", duration<&Timeouts::queue>},
    {"http_request", duration<&Timeouts::http_request>},
    {"http_keep_alive", duration<&Timeouts::http_keep_alive>},
    {"tunnel", duration<&Timeouts::tunnel>},
};
constexpr Key<SectionTimeouts> kFrontendTimeouts[] = {
    {"client", duration<&Timeouts::client>},
    {"http_request", duration<&Timeouts::http_request>},
    {"http_keep_alive", duration<&Timeouts::http_keep_alive>},
};
constexpr Key<SectionTimeouts> kBackendTimeouts[] = {
    {"connect", duration<&Timeouts::connect>},
    {"server", duration<&Timeouts::server>},
    {"queue", duration<&Timeouts::queue>},
    {"tunnel", duration<&Timeouts::tunnel>},
};
constexpr auto kGlobalNames = names_of(kGlobalTimeouts);
constexpr auto kDefaultsNames = names_of(kDefaultsTimeouts);
constexpr auto kFrontendNames = names_of(kFrontendTimeouts);
constexpr auto kBackendNames = names_of(kBackendTimeouts);

// Every timeout weir knows: defaults may set those of frontends and backends.
bool is_timeout(std::string_view name) {
  return contains(kGlobalNames, name) || contains(kDefaultsNames, name);
}

// `label` names the map in messages about values ("timeouts of frontend 'web'"),
// `owner` the section in messages about keys.
template <typename Out, size_t N>
void read_timeouts(Loader& loader, const YamlNode& node, const std::string& label,
                   const std::string& owner, const Key<TimeoutScope<Out>> (&table)[N], Out& out) {
  const auto allowed = names_of(table);
  const Fields fields = loader.map_fields(node, label);
  for (const Field& field : fields.list) {
    if (contains(allowed, field.key)) continue;
    if (is_timeout(field.key)) {
      loader.error(field.key_node->mark, "timeout " + quoted(field.key) + " cannot be set in " +
                                             owner + " (allowed here: " + join(allowed) + ")");
    } else {
      loader.error(field.key_node->mark, "unknown timeout " + quoted(field.key) + " in " + owner +
                                             suggestion(field.key, allowed));
    }
  }
  TimeoutScope<Out> scope{{loader, label}, out};
  read_keys(table, fields, scope);
}

constexpr KeyList kLists[] = {
    {"global.timeouts", kKeysOf, kGlobalNames},
    {"defaults.timeouts", kKeysOf, kDefaultsNames},
    {"frontend.timeouts", kKeysOf, kFrontendNames},
    {"backend.timeouts", kKeysOf, kBackendNames},
};
const Registrar<KeyList> kRegisterTimeouts(kLists);

}  // namespace

void Loader::load_global_timeouts(const YamlNode& node, GlobalConfig& out) {
  read_timeouts(*this, node, "global.timeouts", "global", kGlobalTimeouts, out);
}

void Loader::load_defaults_timeouts(const YamlNode& node, Timeouts& out) {
  read_timeouts(*this, node, "defaults.timeouts", "defaults", kDefaultsTimeouts, out);
}

void Loader::load_frontend_timeouts(const YamlNode& node, const std::string& owner, Timeouts& out) {
  read_timeouts(*this, node, "timeouts of " + owner, owner, kFrontendTimeouts, out);
}

void Loader::load_backend_timeouts(const YamlNode& node, const std::string& owner, Timeouts& out) {
  read_timeouts(*this, node, "timeouts of " + owner, owner, kBackendTimeouts, out);
}

}  // namespace weir::config_detail
