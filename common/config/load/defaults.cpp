// defaults: what every frontend and backend starts from (mode, timeouts, retries,
// forwardfor, abortonclose, http_reuse). Read before frontends and backends,
// wherever it is in the file.

#include "common/config/load/loader.h"

namespace weir::config_detail {
namespace {

struct DefaultsScope : Scope {
  Defaults& out;
};

bool read_mode(DefaultsScope& s, const YamlNode& v, const std::string& what) {
  const auto mode = s.loader.mode_value(v, what);
  if (mode) s.out.mode = *mode;
  return mode.has_value();
}

bool read_http_reuse(DefaultsScope& s, const YamlNode& v, const std::string& what) {
  return choice<&Defaults::http_reuse, kHttpReuseModes>(s, v, what, what + ": unknown mode");
}

bool read_timeouts(DefaultsScope& s, const YamlNode& v, const std::string&) {
  s.loader.load_defaults_timeouts(v, s.out.timeouts);
  return true;
}

constexpr Key<DefaultsScope> kDefaultsKeys[] = {
    {"mode", read_mode},
    {"timeouts", read_timeouts},
    {"retries", integer<&Defaults::retries, 0, 100>},
    {"forwardfor", flag<&Defaults::forwardfor>},
    {"abortonclose", flag<&Defaults::abortonclose>},
    {"http_reuse", read_http_reuse},
};
constexpr auto kDefaultsNames = names_of(kDefaultsKeys);

constexpr KeyList kLists[] = {{"defaults", kKeysOf, kDefaultsNames}};
const Registrar<KeyList> kRegisterDefaults(kLists);

}  // namespace

void Loader::load_defaults(const YamlNode& node) {
  const Fields fields = map_fields(node, "defaults");
  reject_unknown(fields, kDefaultsNames, "in defaults");
  DefaultsScope scope{{*this, "defaults"}, defaults};
  read_keys(kDefaultsKeys, fields, scope);
}

}  // namespace weir::config_detail
