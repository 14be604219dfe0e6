// The PROXY protocol's keys: `accept_proxy:` of a bind, `send_proxy:` and
// `check_send_proxy:` of a backend or server (doc/configuration.md).

#include "common/config/load/loader.h"

namespace weir::config_detail {
namespace {

// ---- accept_proxy: true | false | {trusted: [CIDR, ...], timeout} -------------------------

struct AcceptScope : Scope {
  AcceptProxyConfig& out;
};

bool read_trusted(AcceptScope& s, const YamlNode& v, const std::string& what) {
  if (v.kind != Kind::kSequence) {
    s.error(v.mark, what + " must be a list of addresses or networks (10.0.0.0/8, 2001:db8::/32)");
    return false;
  }
  if (v.items.empty()) {
    s.error(v.mark, what + ": the list is empty (leave it out to accept a header from anyone)");
    return false;
  }
  bool ok = true;
  for (const auto& item : v.items) {
    const auto text = s.text_value(*item, what, "an address or network such as 10.0.0.0/8");
    if (!text) {
      ok = false;
      continue;
    }
    std::string problem;
    if (auto net = cond::parse_ip_network(*text, &problem)) {
      s.out.trusted.push_back(*net);
    } else {
      s.error(item->mark, what + ": " + problem);
      ok = false;
    }
  }
  return ok;
}

bool read_accept_timeout(AcceptScope& s, const YamlNode& v, const std::string& what) {
  const auto ms = s.duration_value(v, what);
  if (!ms) return false;
  if (*ms <= 0) {
    s.error(v.mark, what + " must be above 0");
    return false;
  }
  s.out.timeout = *ms;
  return true;
}

constexpr Key<AcceptScope> kAcceptKeys[] = {
    {"trusted", read_trusted},
    {"timeout", read_accept_timeout},
};
constexpr auto kAcceptNames = names_of(kAcceptKeys);

// ---- send_proxy: v1 | v2 | none | {version: v1|v2, tlvs: [alpn, authority, ssl, unique_id]}

constexpr std::string_view kVersionWords[] = {"v1", "v2", "none"};
constexpr std::string_view kTlvWords[] = {"alpn", "authority", "ssl", "unique_id"};
constexpr std::string_view kSendNames[] = {"version", "tlvs"};

// "v1" -> 1, "v2" -> 2, "none" -> 0.
std::optional<int> version_word(ValueReader& r, const YamlNode& v, const std::string& what) {
  const auto word = r.text_value(v, what, one_of(kVersionWords));
  if (!word) return std::nullopt;
  if (*word == "v1") return 1;
  if (*word == "v2") return 2;
  if (*word == "none") return 0;
  r.error(v.mark, what + ": unknown version " + quoted(*word) + " (expected " +
                      one_of(kVersionWords) + ")");
  return std::nullopt;
}

constexpr KeyList kLists[] = {
    {"frontend.bind.accept_proxy", kKeysOf, kAcceptNames},
    {"send_proxy", kKeysOf, kSendNames},
    {"send_proxy.version", kValuesOf, kVersionWords},
    {"send_proxy.tlvs", kValuesOf, kTlvWords},
};
const Registrar<KeyList> kRegister(kLists);

}  // namespace

void Loader::load_accept_proxy(const YamlNode& node, const std::string& label,
                               AcceptProxyConfig& out) {
  if (node.kind != Kind::kMap) {
    if (auto b = bool_value(node, label)) out.enabled = *b;
    return;
  }
  out.enabled = true;
  const Fields fields = map_fields(node, label);
  reject_unknown(fields, kAcceptNames, "in " + label);
  AcceptScope scope{{*this, label}, out};
  read_keys(kAcceptKeys, fields, scope);
}

void Loader::load_send_proxy(const YamlNode& node, const std::string& label, SendProxyConfig& out) {
  if (node.kind != Kind::kMap) {
    if (auto version = version_word(*this, node, label)) {
      out.version = *version;
      out.alpn = out.authority = out.ssl = out.unique_id = false;
    }
    return;
  }
  const Fields fields = map_fields(node, label);
  reject_unknown(fields, kSendNames, "in " + label);
  const YamlNode* version = fields.get("version");
  if (!version) {
    error(node.mark, label + " needs a version: {version: v2, tlvs: [...]}");
    return;
  }
  const auto v = version_word(*this, *version, label + ": version");
  if (!v) return;
  SendProxyConfig read;
  read.version = *v;
  read.checks = out.checks;
  if (const YamlNode* tlvs = fields.get("tlvs")) {
    const std::string what = label + ": tlvs";
    if (read.version != 2) {
      error(tlvs->mark, what + " needs version v2 (v1 has no TLVs)");
      return;
    }
    if (tlvs->kind != Kind::kSequence) {
      error(tlvs->mark, what + " must be a list of " + one_of(kTlvWords));
      return;
    }
    for (const auto& item : tlvs->items) {
      const auto word = text_value(*item, what, one_of(kTlvWords));
      if (!word) return;
      if (*word == "alpn") {
        read.alpn = true;
      } else if (*word == "authority") {
        read.authority = true;
      } else if (*word == "ssl") {
        read.ssl = true;
      } else if (*word == "unique_id") {
        read.unique_id = true;
      } else {
        error(item->mark,
              what + ": unknown TLV " + quoted(*word) + " (expected " + one_of(kTlvWords) + ")");
        return;
      }
    }
  }
  out = read;
}

void Loader::load_check_send_proxy(const YamlNode& node, const std::string& label,
                                   SendProxyConfig& out) {
  if (auto b = bool_value(node, label)) out.checks = *b;
}

}  // namespace weir::config_detail
