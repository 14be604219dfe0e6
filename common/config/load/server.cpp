// A backend's servers: an address, or a map {address, weight, maxconn, ...}.
// A server starts from its backend's check, agent, tls and send_proxy.

#include "common/base/address.h"
#include "common/config/load/loader.h"

namespace weir::config_detail {
namespace {

struct ServerScope : Scope {
  ServerConfig& out;
};

bool read_minconn(ServerScope& s, const YamlNode& v, const std::string& what) {
  if (!integer<&ServerConfig::minconn, 0, 1000000>(s, v, what)) return false;
  const uint32_t minconn = s.out.minconn;
  if (minconn > 0 && s.out.maxconn == 0) {
    s.error(v.mark, what + " needs maxconn (the high end of the dynamic limit)");
    return false;
  }
  if (minconn > s.out.maxconn) {
    s.error(v.mark, what + " " + std::to_string(minconn) + " is above maxconn " +
                        std::to_string(s.out.maxconn));
    return false;
  }
  return true;
}

bool read_cookie(ServerScope& s, const YamlNode& v, const std::string& what) {
  auto t = s.text_value(v, what, "the server's cookie value");
  if (!t) return false;
  if (std::string problem; !cookie_value_valid(*t, &problem)) {
    s.error(v.mark, what + " " + quoted(*t) + ": " + problem);
    return false;
  }
  s.out.cookie = std::move(*t);
  return true;
}

constexpr Key<ServerScope> kServerKeys[] = {
    {"address"},  // read last, by load_server(): the short form is the address alone
    {"weight", integer<&ServerConfig::weight, 0, 256>},
    {"maxconn", integer<&ServerConfig::maxconn, 0, 1000000>},
    {"maxqueue", integer<&ServerConfig::maxqueue, 0, 1000000>},
    {"minconn", read_minconn},  // after maxconn
    {"backup", flag<&ServerConfig::backup>},
    {"slowstart", duration<&ServerConfig::slowstart>},
    // Over the backend's; a mistake in them is reported but keeps the server.
    {"check", read_into<&ServerConfig::check, &Loader::load_check>},
    {"agent", read_into<&ServerConfig::agent, &Loader::load_agent>},
    {"tls", read_into<&ServerConfig::tls, &Loader::load_tls_server>},
    {"send_proxy", read_into<&ServerConfig::send_proxy, &Loader::load_send_proxy>},
    {"check_send_proxy", read_into<&ServerConfig::send_proxy, &Loader::load_check_send_proxy>},
    {"cookie", read_cookie},  // persistence.cpp checks it against the backend's cookie
};
constexpr auto kServerNames = names_of(kServerKeys);

constexpr KeyList kLists[] = {{"server", kKeysOf, kServerNames}};
const Registrar<KeyList> kRegisterServer(kLists);

}  // namespace

void Loader::load_server(const Field& field, BackendConfig& backend) {
  ServerConfig server;
  server.check = backend.default_check;
  server.agent = backend.default_agent;
  server.tls = backend.default_tls;
  server.send_proxy = backend.default_send_proxy;
  server.name = field.key;
  server.mark = field.key_node->mark;
  const std::string label = "server " + quoted(server.name) + " of backend " + quoted(backend.name);
  if (!valid_name(server.name)) {
    error(server.mark, "invalid server name " + quoted(server.name) +
                           " (use letters, digits, '_', '.' and '-')");
  }
  const YamlNode* address = field.value;
  bool ok = true;
  if (field.value->kind == Kind::kMap) {
    const Fields fields = map_fields(*field.value, label);
    reject_unknown(fields, kServerNames, "in " + label);
    address = fields.get("address");
    if (!address) {
      error(server.mark, label + " has no address");
      ok = false;
    }
    ServerScope scope{{*this, label}, server};
    ok = read_keys(kServerKeys, fields, scope) && ok;
  }
  if (address) {
    const auto text = text_value(*address, label + ": address", "an address such as 10.0.0.1:80");
    std::string problem;
    if (!text) {
      ok = false;
    } else if (auto addr = parse_address(*text, /*allow_wildcard=*/false, &problem)) {
      server.address_text = *text;
      server.addr = *addr;
    } else {
      error(address->mark, label + ": address " + quoted(*text) + ": " + problem);
      ok = false;
    }
  }
  if (!ok) return;
  for (const ServerConfig& other : backend.servers) {
    if (other.addr == server.addr) {
      warn(server.mark, label + " has the same address as server " + quoted(other.name));
      break;
    }
  }
  backend.servers.push_back(std::move(server));
}

}  // namespace weir::config_detail
