// global.runtime_api: where the workers answer runtime commands. An entry is an
// address (a Unix socket path, host:port or a bare port on loopback) or a map
// {address, level, mode, owner, group}.

#include <cstdlib>

#include "common/base/address.h"
#include "common/config/load/loader.h"

namespace weir::config_detail {
namespace {

struct ApiScope : Scope {
  RuntimeApiEndpoint& out;
};

constexpr Choice<ApiLevel> kLevels[] = {
    {"user", ApiLevel::kUser}, {"operator", ApiLevel::kOperator}, {"admin", ApiLevel::kAdmin}};
constexpr auto kLevelNames = names_of(kLevels);

bool read_level(ApiScope& s, const YamlNode& v, const std::string& what) {
  return choice<&RuntimeApiEndpoint::level, kLevels>(s, v, what, s.label + ": unknown level");
}

bool read_mode(ApiScope& s, const YamlNode& v, const std::string& what) {
  const auto text = s.text_value(v, what, "an octal mode like 0660");
  if (!text) return false;
  char* end = nullptr;
  const unsigned long mode = std::strtoul(text->c_str(), &end, 8);
  if (text->empty() || *end != '\0' || mode > 0777) {
    s.error(v.mark, what + " " + quoted(*text) + " is not an octal permission (0000..0777)");
    return false;
  }
  s.out.mode = static_cast<uint32_t>(mode);
  return true;
}

constexpr Key<ApiScope> kApiKeys[] = {
    {"address"},  // read first, by load_runtime_api(), with owner and group: which socket
    {"level", read_level}, {"mode", read_mode}, {"owner"}, {"group"},
};
constexpr auto kApiNames = names_of(kApiKeys);

constexpr KeyList kLists[] = {
    {"global.runtime_api", kKeysOf, kApiNames},
    {"global.runtime_api.level", kValuesOf, kLevelNames},
};
const Registrar<KeyList> kRegisterApi(kLists);

}  // namespace

void Loader::load_runtime_api(const YamlNode& node) {
  const std::string label = "global: runtime_api";
  for (const YamlNode* entry : entries_of(node)) {
    RuntimeApiEndpoint ep;
    const YamlNode* address = entry;
    Fields fields;
    if (entry->kind == Kind::kMap) {
      fields = map_fields(*entry, "global.runtime_api entry");
      reject_unknown(fields, kApiNames, "in global.runtime_api entry");
      address = fields.get("address");
      if (!address) {
        error(entry->mark, label + ": entry has no address");
        continue;
      }
    }
    ep.mark = address->mark;  // where a socket that cannot be made is reported
    const auto text =
        text_value(*address, label + ": address", "an absolute socket path or host:port");
    if (!text) continue;
    if (!text->empty() && text->front() == '/') {
      ep.path = *text;
    } else {
      // A bare port means loopback: the runtime API is not for the network.
      std::string with_host = *text;
      if (!with_host.empty() && with_host.find_first_not_of("0123456789") == std::string::npos) {
        with_host = "127.0.0.1:" + with_host;
      }
      std::string why;
      auto addr = parse_address(with_host, false, &why);
      if (!addr) {
        error(address->mark, label + ": address " + quoted(*text) + ": " + why);
        continue;
      }
      ep.addr = *addr;
      if (!addr->is_loopback()) {
        warn(address->mark, label + ": " + addr->to_string() +
                                " is not a loopback address: anyone who can reach it gets " +
                                "this endpoint's level");
      }
    }
    bool ok = true;
    for (const std::string_view key : {"owner", "group"}) {
      const YamlNode* v = fields.get(key);
      if (!v) continue;
      const bool owner = key == "owner";
      const std::string what = label + ": " + std::string(key);
      auto name = text_value(*v, what, owner ? "a user name" : "a group name");
      if (!name) {
        ok = false;
      } else if (ep.path.empty()) {
        error(v->mark, what + " only applies to a Unix socket");
        ok = false;
      } else if (!(owner ? user_exists(*name) : group_exists(*name))) {
        error(v->mark, what + ": no " + (owner ? "user" : "group") + " named " + quoted(*name) +
                           " on this system");
        ok = false;
      } else {
        (owner ? ep.owner : ep.group) = *name;
      }
    }
    if (!ok) continue;
    // The level and mode of a socket that cannot be made mean nothing: the first
    // bad value ends the entry.
    ApiScope scope{{*this, label}, ep};
    if (!read_keys(kApiKeys, fields, scope, /*stop_at_invalid=*/true)) continue;
    bool duplicate = false;
    for (const RuntimeApiEndpoint& other : config.global.runtime_api) {
      if (other.key() == ep.key()) duplicate = true;
    }
    if (duplicate) {
      error(address->mark, label + ": " + ep.key() + " is listed twice");
      continue;
    }
    config.global.runtime_api.push_back(std::move(ep));
  }
}

}  // namespace weir::config_detail
