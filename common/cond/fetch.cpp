#include "common/cond/fetch.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <cstring>

#include "common/base/registry.h"
#include "common/cond/ip_value.h"

namespace weir::cond {

const FetchDef* find_fetch(std::string_view name) {
  return Registry<FetchDef>::instance().find(name);
}

std::string fetch_names() {
  std::string out;
  std::vector<std::string_view> families;
  for (const FetchDef* f : Registry<FetchDef>::instance().sorted()) {
    std::string_view name = f->name;
    if (!f->family.empty()) {
      if (std::find(families.begin(), families.end(), f->family) != families.end()) continue;
      families.push_back(f->family);
      name = f->family;
    }
    if (!out.empty()) out += ", ";
    out += name;
  }
  return out;
}

std::optional<IpValue> parse_ip(std::string_view text) {
  std::string s(text);
  IpValue v;
  in_addr a4;
  if (::inet_pton(AF_INET, s.c_str(), &a4) == 1) {
    v.v4 = true;
    v.bytes[10] = v.bytes[11] = 0xff;
    std::memcpy(v.bytes + 12, &a4, 4);
    return v;
  }
  in6_addr a6;
  if (::inet_pton(AF_INET6, s.c_str(), &a6) == 1) {
    std::memcpy(v.bytes, &a6, 16);
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    v.v4 = std::memcmp(v.bytes, mapped, 12) == 0;
    return v;
  }
  return std::nullopt;
}

bool ip_value_of(const SockAddr& a, IpValue* out) {
  *out = IpValue();
  if (a.family() == AF_INET) {
    out->v4 = true;
    out->bytes[10] = out->bytes[11] = 0xff;
    std::memcpy(out->bytes + 12, &reinterpret_cast<const sockaddr_in*>(a.sa())->sin_addr, 4);
    return true;
  }
  if (a.family() == AF_INET6) {
    std::memcpy(out->bytes, &reinterpret_cast<const sockaddr_in6*>(a.sa())->sin6_addr, 16);
    return true;
  }
  return false;
}

bool IpNetwork::contains(const IpValue& a) const {
  const int full = bits / 8, rest = bits % 8;
  if (std::memcmp(a.bytes, ip.bytes, static_cast<size_t>(full)) != 0) return false;
  if (rest == 0) return true;
  const auto mask = static_cast<uint8_t>(0xff << (8 - rest));
  return (a.bytes[full] & mask) == (ip.bytes[full] & mask);
}

std::optional<IpNetwork> parse_ip_network(std::string_view text, std::string* error) {
  const size_t slash = text.find('/');
  const auto ip = parse_ip(text.substr(0, slash));
  if (!ip) {
    *error =
        "'" + std::string(text) + "' is not an IP address or network (10.0.0.0/8, 2001:db8::/32)";
    return std::nullopt;
  }
  // Written as IPv4 (no ':'): the prefix counts IPv4 bits.
  const bool v4_text = text.find(':') == std::string_view::npos;
  const int max = v4_text ? 32 : 128;
  int bits = max;
  if (slash != std::string_view::npos) {
    const std::string_view digits = text.substr(slash + 1);
    int n = 0;
    bool ok = !digits.empty() && digits.size() <= 3;
    for (size_t i = 0; ok && i < digits.size(); ++i) {
      if (digits[i] < '0' || digits[i] > '9') ok = false;
      n = n * 10 + (digits[i] - '0');
    }
    if (!ok || n > max) {
      *error = "'" + std::string(text) + "': the prefix length must be 0.." + std::to_string(max);
      return std::nullopt;
    }
    bits = n;
  }
  return IpNetwork{*ip, v4_text ? bits + 96 : bits};
}

}  // namespace weir::cond
