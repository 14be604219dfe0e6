#include "common/cond/fetch.h"

#include <arpa/inet.h>

#include <cstring>

#include "common/base/registry.h"

namespace weir::cond {

const FetchDef* find_fetch(std::string_view name) {
  return Registry<FetchDef>::instance().find(name);
}

std::string fetch_names() {
  std::string out;
  for (const FetchDef* f : Registry<FetchDef>::instance().sorted()) {
    if (!out.empty()) out += ", ";
    out += f->name;
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

}  // namespace weir::cond
