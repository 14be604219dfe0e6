// tls: of a bind (weir terminates TLS: certificates, versions, client
// certificates) and of a backend or server (weir speaks TLS to the server:
// verification, SNI, a client certificate). The files named here are read and
// checked later, by the TLS code (`weir -c` runs those checks too).

#include "common/config/load/loader.h"

namespace weir::config_detail {
namespace {

constexpr Choice<int> kTlsVersions[] = {
    {"TLSv1", kTls10}, {"TLSv1.1", kTls11}, {"TLSv1.2", kTls12}, {"TLSv1.3", kTls13}};
constexpr auto kTlsVersionNames = names_of(kTlsVersions);

template <auto Member, typename S>
bool read_version(S& s, const YamlNode& v, const std::string& what) {
  const auto text = s.text_value(v, what, one_of(kTlsVersionNames));
  if (!text) return false;
  const auto version = find_choice(kTlsVersions, *text);
  if (!version) {
    s.error(v.mark, what + ": unknown TLS version " + quoted(*text) + " (expected " +
                        one_of(kTlsVersionNames) + ")" + suggestion(*text, kTlsVersionNames));
    return false;
  }
  s.out.*Member = *version;
  return true;
}

// A list of strings, or one string (an empty one: none).
std::optional<std::vector<std::string>> string_list(const Scope& s, const YamlNode& node,
                                                    const std::string& what) {
  std::vector<std::string> out;
  if (node.kind == Kind::kSequence) {
    bool ok = true;
    for (const auto& item : node.items) {
      auto t = s.string_value(*item, what);
      if (t && !t->empty()) {
        out.push_back(std::move(*t));
      } else {
        if (t) s.error(item->mark, what + ": empty entry");
        ok = false;
      }
    }
    if (!ok) return std::nullopt;
    return out;
  }
  auto t = s.string_value(node, what);
  if (!t) return std::nullopt;
  if (!t->empty()) out.push_back(std::move(*t));
  return out;
}

template <auto Member, typename S>
bool read_list(S& s, const YamlNode& v, const std::string& what) {
  auto list = string_list(s, v, what);
  if (list) s.out.*Member = std::move(*list);
  return list.has_value();
}

// ---- tls of a bind -----------------------------------------------------------------------

struct BindTlsScope : Scope {
  TlsBindConfig& out;
};

constexpr Choice<TlsBindConfig::Verify> kClientVerify[] = {
    {"none", TlsBindConfig::Verify::kNone},
    {"optional", TlsBindConfig::Verify::kOptional},
    {"required", TlsBindConfig::Verify::kRequired}};
constexpr auto kClientVerifyNames = names_of(kClientVerify);

bool read_bind_alpn(BindTlsScope& s, const YamlNode& v, const std::string& what) {
  auto list = string_list(s, v, what);
  if (!list) return false;
  for (const std::string& protocol : *list) {
    if (protocol.size() > 255) s.error(v.mark, what + ": protocol name longer than 255 bytes");
  }
  s.out.alpn = std::move(*list);
  s.out.alpn_set = true;
  return true;
}

bool read_session_timeout(BindTlsScope& s, const YamlNode& v, const std::string& what) {
  const auto ms = s.duration_value(v, what);
  if (!ms) return false;
  if (*ms < 1000 || *ms > 7 * 86400000LL) {
    s.error(v.mark, what + ": must be between 1s and 7d");
    return false;
  }
  s.out.session_timeout = *ms;
  return true;
}

bool read_client_verify(BindTlsScope& s, const YamlNode& v, const std::string& what) {
  return choice<&TlsBindConfig::verify, kClientVerify>(s, v, what, what + ": unknown value");
}

constexpr Key<BindTlsScope> kBindTlsKeys[] = {
    {"certificates", read_list<&TlsBindConfig::certificates>},
    {"default_certificate", text<&TlsBindConfig::default_certificate>},
    {"alpn", read_bind_alpn},
    {"min_version", read_version<&TlsBindConfig::min_version>},
    {"max_version", read_version<&TlsBindConfig::max_version>},
    {"ciphers", text<&TlsBindConfig::ciphers>},
    {"ciphersuites", text<&TlsBindConfig::ciphersuites>},
    {"curves", text<&TlsBindConfig::curves>},
    {"session_tickets", flag<&TlsBindConfig::session_tickets>},
    {"session_cache", integer<&TlsBindConfig::session_cache, 0, 10000000>},
    {"session_timeout", read_session_timeout},
    {"verify", read_client_verify},
    {"ca_file", text<&TlsBindConfig::ca_file>},
    {"crl_file", text<&TlsBindConfig::crl_file>},
    {"client_cert_headers", flag<&TlsBindConfig::client_cert_headers>},
};
constexpr auto kBindTlsNames = names_of(kBindTlsKeys);

// ---- tls of a backend or server ----------------------------------------------------------

struct ServerTlsScope : Scope {
  TlsServerConfig& out;
};

constexpr Choice<bool> kServerVerify[] = {{"none", false}, {"required", true}};
constexpr auto kServerVerifyNames = names_of(kServerVerify);

bool read_server_verify(ServerTlsScope& s, const YamlNode& v, const std::string& what) {
  return choice<&TlsServerConfig::verify, kServerVerify>(s, v, what, what + ": unknown value");
}

bool read_sni(ServerTlsScope& s, const YamlNode& v, const std::string& what) {
  auto sni = s.loader.template_value(v, what);
  if (!sni) return false;
  s.out.sni = std::move(*sni);
  s.out.sni_text = s.out.sni.text;
  return true;
}

constexpr Key<ServerTlsScope> kServerTlsKeys[] = {
    {"enabled", flag<&TlsServerConfig::enabled>},
    {"verify", read_server_verify},
    {"ca_file", text<&TlsServerConfig::ca_file>},
    {"verify_name", text<&TlsServerConfig::verify_name>},
    {"sni", read_sni},
    {"alpn", read_list<&TlsServerConfig::alpn>},
    {"cert", text<&TlsServerConfig::cert>},
    {"min_version", read_version<&TlsServerConfig::min_version>},
    {"max_version", read_version<&TlsServerConfig::max_version>},
    {"ciphers", text<&TlsServerConfig::ciphers>},
    {"ciphersuites", text<&TlsServerConfig::ciphersuites>},
};
constexpr auto kServerTlsNames = names_of(kServerTlsKeys);

constexpr KeyList kLists[] = {
    {"frontend.bind.tls", kKeysOf, kBindTlsNames},
    {"frontend.bind.tls.verify", kValuesOf, kClientVerifyNames},
    {"server.tls", kKeysOf, kServerTlsNames},
    {"server.tls.verify", kValuesOf, kServerVerifyNames},
    {"tls_version", kValuesOf, kTlsVersionNames},
};
const Registrar<KeyList> kRegisterTls(kLists);

}  // namespace

void Loader::load_tls_bind(const YamlNode& node, const std::string& label, TlsBindConfig& out) {
  out.mark = node.mark;
  const Fields fields = map_fields(node, label);
  reject_unknown(fields, kBindTlsNames, "in " + label);
  out.enabled = true;
  BindTlsScope scope{{*this, label}, out};
  read_keys(kBindTlsKeys, fields, scope);
  if (out.certificates.empty() && out.default_certificate.empty()) {
    error(node.mark,
          label + ": certificates: at least one certificate file or directory is needed");
  }
  if (out.min_version > out.max_version) {
    error(node.mark, label + ": min_version is above max_version");
  }
  if (out.verify != TlsBindConfig::Verify::kNone && out.ca_file.empty()) {
    error(node.mark, label + ": verify: " +
                         std::string(out.verify == TlsBindConfig::Verify::kOptional ? "optional"
                                                                                    : "required") +
                         " needs ca_file (the CAs that sign client certificates)");
  }
}

void Loader::load_tls_server(const YamlNode& node, const std::string& label, TlsServerConfig& out) {
  out.mark = node.mark;
  if (node.kind != Kind::kMap) {
    if (auto b = bool_value(node, label)) out.enabled = *b;  // tls: true | false
    return;
  }
  const Fields fields = map_fields(node, label);
  reject_unknown(fields, kServerTlsNames, "in " + label);
  out.enabled = true;  // a map turns TLS on unless it says enabled: false
  ServerTlsScope scope{{*this, label}, out};
  read_keys(kServerTlsKeys, fields, scope);
  if (out.min_version > out.max_version) {
    error(node.mark, label + ": min_version is above max_version");
  }
}

}  // namespace weir::config_detail
