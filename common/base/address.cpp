#include "common/base/address.h"

#include <arpa/inet.h>
#include <net/if.h>
#include <netdb.h>
#include <sys/un.h>

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <memory>

namespace weir {
namespace {

const sockaddr_in* as_v4(const sockaddr_storage& s) {
  return reinterpret_cast<const sockaddr_in*>(&s);
}
const sockaddr_in6* as_v6(const sockaddr_storage& s) {
  return reinterpret_cast<const sockaddr_in6*>(&s);
}

void set_error(std::string* error, std::string message) {
  if (error) *error = std::move(message);
}

struct AddrInfoDeleter {
  void operator()(addrinfo* ai) const { freeaddrinfo(ai); }
};

// getaddrinfo() for one host; the port is filled in by the caller.
std::optional<SockAddr> resolve(const std::string& host, int family, int flags,
                                std::string* gai_error) {
  addrinfo hints{};
  hints.ai_family = family;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = flags;
  addrinfo* raw = nullptr;
  const int rc = getaddrinfo(host.c_str(), nullptr, &hints, &raw);
  std::unique_ptr<addrinfo, AddrInfoDeleter> list(raw);
  if (rc != 0) {
    set_error(gai_error, gai_strerror(rc));
    return std::nullopt;
  }
  for (const addrinfo* ai = list.get(); ai; ai = ai->ai_next) {
    if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6) continue;
    return sockaddr_from(ai->ai_addr, ai->ai_addrlen);
  }
  set_error(gai_error, "no IPv4 or IPv6 address");
  return std::nullopt;
}

void set_port(SockAddr& addr, uint16_t port) {
  if (addr.family() == AF_INET) {
    reinterpret_cast<sockaddr_in*>(&addr.storage)->sin_port = htons(port);
  } else if (addr.family() == AF_INET6) {
    reinterpret_cast<sockaddr_in6*>(&addr.storage)->sin6_port = htons(port);
  }
}

SockAddr ipv4_any() {
  SockAddr addr;
  auto* sin = reinterpret_cast<sockaddr_in*>(&addr.storage);
  sin->sin_family = AF_INET;
  sin->sin_addr.s_addr = htonl(INADDR_ANY);
  addr.len = sizeof(sockaddr_in);
  return addr;
}

bool is_host_name(std::string_view host) {
  return std::all_of(host.begin(), host.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '-' || c == '_';
  });
}

bool all_digits(std::string_view text) {
  return std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
}

std::optional<uint16_t> parse_port(std::string_view text, std::string* error) {
  if (text.empty()) {
    set_error(error, "missing port");
    return std::nullopt;
  }
  if (!all_digits(text)) {
    set_error(error, "invalid port '" + std::string(text) + "'");
    return std::nullopt;
  }
  const unsigned long port = text.size() > 5 ? 65536 : std::stoul(std::string(text));
  if (port == 0) {
    set_error(error, "port 0 is not allowed");
    return std::nullopt;
  }
  if (port > 65535) {
    set_error(error, "port " + std::string(text) + " is out of range (1-65535)");
    return std::nullopt;
  }
  return static_cast<uint16_t>(port);
}

// The host part of "host:port" as an address (port not set yet).
std::optional<SockAddr> parse_host(std::string_view host, bool bracketed, bool allow_wildcard,
                                   std::string* error) {
  const std::string host_str(host);
  if (bracketed) {
    auto addr = resolve(host_str, AF_INET6, AI_NUMERICHOST, nullptr);
    if (!addr) set_error(error, "invalid IPv6 address '" + host_str + "'");
    return addr;
  }
  if (host.empty() || host == "*") {
    if (!allow_wildcard) {
      set_error(error, "wildcard address is not allowed here");
      return std::nullopt;
    }
    return ipv4_any();
  }
  if (host.find(':') != std::string_view::npos) {
    set_error(error, "IPv6 addresses must be written in brackets, e.g. [::1]:80");
    return std::nullopt;
  }
  SockAddr addr;
  auto* sin = reinterpret_cast<sockaddr_in*>(&addr.storage);
  if (inet_pton(AF_INET, host_str.c_str(), &sin->sin_addr) == 1) {
    sin->sin_family = AF_INET;
    addr.len = sizeof(sockaddr_in);
    return addr;
  }
  // getaddrinfo() would accept legacy forms such as "10.1" or "0x7f.1"; refuse them.
  if (std::all_of(host.begin(), host.end(),
                  [](char c) { return (c >= '0' && c <= '9') || c == '.'; })) {
    set_error(error, "invalid IPv4 address '" + host_str + "'");
    return std::nullopt;
  }
  if (!is_host_name(host)) {
    set_error(error, "invalid host name '" + host_str + "'");
    return std::nullopt;
  }
  std::string gai_error;
  auto resolved = resolve(host_str, AF_UNSPEC, 0, &gai_error);
  if (!resolved) set_error(error, "cannot resolve '" + host_str + "': " + gai_error);
  return resolved;
}

// "[host]" or "[host]:port": the host, and the port's text (nullopt without one).
bool split_bracketed(std::string_view text, std::string_view* host,
                     std::optional<std::string_view>* port, std::string* error) {
  const size_t close = text.find(']');
  if (close == std::string_view::npos) {
    set_error(error, "missing ']' after IPv6 address");
    return false;
  }
  *host = text.substr(1, close - 1);
  const std::string_view rest = text.substr(close + 1);
  port->reset();
  if (rest.empty()) return true;
  if (rest.front() != ':') {
    set_error(error, "expected ':' and a port after ']'");
    return false;
  }
  *port = rest.substr(1);
  return true;
}

}  // namespace

std::optional<SockAddr> parse_numeric_address(std::string_view text, bool* has_port,
                                              std::string* error) {
  *has_port = false;
  if (text.empty()) {
    set_error(error, "empty address");
    return std::nullopt;
  }
  std::string_view host = text, port_text;
  const bool bracketed = text.front() == '[';
  if (bracketed) {
    std::optional<std::string_view> port;
    if (!split_bracketed(text, &host, &port, error)) return std::nullopt;
    *has_port = port.has_value();
    port_text = port.value_or(std::string_view());
  } else if (std::count(text.begin(), text.end(), ':') == 1) {
    const size_t colon = text.find(':');
    host = text.substr(0, colon);
    *has_port = true;
    port_text = text.substr(colon + 1);
  }
  const bool v6 = bracketed || host.find(':') != std::string_view::npos;
  const bool numeric_v4 = std::all_of(host.begin(), host.end(),
                                      [](char c) { return (c >= '0' && c <= '9') || c == '.'; });
  if (!v6 && (host.empty() || !numeric_v4)) {
    set_error(error, "'" + std::string(host) +
                         "' is not an IP address: give the server's IP (names are not "
                         "resolved at runtime: the lookup would stall traffic)");
    return std::nullopt;
  }
  auto addr = parse_host(host, v6, /*allow_wildcard=*/false, error);
  if (!addr) return std::nullopt;
  if (*has_port) {
    auto port = parse_port(port_text, error);
    if (!port) return std::nullopt;
    set_port(*addr, *port);
  }
  return addr;
}

uint16_t SockAddr::port() const {
  if (family() == AF_INET) return ntohs(as_v4(storage)->sin_port);
  if (family() == AF_INET6) return ntohs(as_v6(storage)->sin6_port);
  return 0;
}

bool SockAddr::is_wildcard() const {
  if (family() == AF_INET) return as_v4(storage)->sin_addr.s_addr == htonl(INADDR_ANY);
  if (family() == AF_INET6) return IN6_IS_ADDR_UNSPECIFIED(&as_v6(storage)->sin6_addr);
  return false;
}

std::string SockAddr::host_string() const {
  char buf[INET6_ADDRSTRLEN] = {};
  if (family() == AF_INET) {
    inet_ntop(AF_INET, &as_v4(storage)->sin_addr, buf, sizeof(buf));
    return buf;
  }
  if (family() == AF_INET6) {
    inet_ntop(AF_INET6, &as_v6(storage)->sin6_addr, buf, sizeof(buf));
    std::string host = buf;
    if (const uint32_t scope = as_v6(storage)->sin6_scope_id; scope != 0) {
      char ifname[IF_NAMESIZE] = {};
      host += '%';
      host += if_indextoname(scope, ifname) ? ifname : std::to_string(scope);
    }
    return host;
  }
  if (family() == AF_UNIX) {
    const auto* sun = reinterpret_cast<const sockaddr_un*>(&storage);
    const size_t offset = offsetof(sockaddr_un, sun_path);
    if (len <= offset) return "";
    const size_t path_len = std::min<size_t>(len - offset, sizeof(sun->sun_path));
    std::string path(sun->sun_path, path_len);
    if (!path.empty() && path.front() == '\0') {
      path.front() = '@';  // abstract socket, shown the way ss(8) shows it
    } else {
      path.resize(strnlen(path.c_str(), path.size()));
    }
    return path;
  }
  return "";
}

std::string SockAddr::to_string() const {
  if (family() == AF_INET) return host_string() + ":" + std::to_string(port());
  if (family() == AF_INET6) return "[" + host_string() + "]:" + std::to_string(port());
  if (family() == AF_UNIX) return "unix:" + host_string();
  return "(unknown)";
}

bool SockAddr::operator==(const SockAddr& o) const {
  if (family() != o.family()) return false;
  if (family() == AF_INET) {
    return as_v4(storage)->sin_port == as_v4(o.storage)->sin_port &&
           as_v4(storage)->sin_addr.s_addr == as_v4(o.storage)->sin_addr.s_addr;
  }
  if (family() == AF_INET6) {
    const sockaddr_in6* a = as_v6(storage);
    const sockaddr_in6* b = as_v6(o.storage);
    return a->sin6_port == b->sin6_port && a->sin6_scope_id == b->sin6_scope_id &&
           memcmp(&a->sin6_addr, &b->sin6_addr, sizeof(in6_addr)) == 0;
  }
  return len == o.len && memcmp(&storage, &o.storage, len) == 0;
}

std::optional<SockAddr> parse_address(std::string_view text, bool allow_wildcard,
                                      std::string* error) {
  if (text.empty()) {
    set_error(error, "empty address");
    return std::nullopt;
  }
  std::string_view host;
  std::string_view port_text;
  const bool bracketed = text.front() == '[';
  if (bracketed) {
    std::optional<std::string_view> port;
    if (!split_bracketed(text, &host, &port, error)) return std::nullopt;
    if (!port) {
      set_error(error, "missing port");
      return std::nullopt;
    }
    port_text = *port;
  } else {
    const size_t colon = text.rfind(':');
    if (colon == std::string_view::npos) {
      set_error(error, "missing port");
      return std::nullopt;
    }
    host = text.substr(0, colon);
    port_text = text.substr(colon + 1);
    // "::1" has colons but no port: report the missing brackets, not a strange port.
    if (host.find(':') != std::string_view::npos) {
      set_error(error, "IPv6 addresses must be written in brackets, e.g. [::1]:80");
      return std::nullopt;
    }
  }
  const auto port = parse_port(port_text, error);
  if (!port) return std::nullopt;
  auto addr = parse_host(host, bracketed, allow_wildcard, error);
  if (!addr) return std::nullopt;
  if (!allow_wildcard && addr->is_wildcard()) {
    set_error(error, "wildcard address is not allowed here");
    return std::nullopt;
  }
  set_port(*addr, *port);
  return addr;
}

SockAddr sockaddr_from(const sockaddr* sa, socklen_t len) {
  SockAddr addr;
  if (!sa) return addr;
  addr.len = std::min<socklen_t>(len, sizeof(addr.storage));
  memcpy(&addr.storage, sa, addr.len);
  return addr;
}

bool SockAddr::is_loopback() const {
  if (family() == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(&storage);
    return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
  }
  if (family() == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&storage);
    if (IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr)) return true;
    return IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr) && in6->sin6_addr.s6_addr[12] == 127;
  }
  return false;
}

void SockAddr::set_port(uint16_t p) {
  if (family() == AF_INET) {
    reinterpret_cast<sockaddr_in*>(&storage)->sin_port = htons(p);
  } else if (family() == AF_INET6) {
    reinterpret_cast<sockaddr_in6*>(&storage)->sin6_port = htons(p);
  }
}

CompactAddr::CompactAddr(const SockAddr& a) {
  if (a.family() == AF_INET) {
    std::memcpy(&sa, &a.storage, sizeof(sockaddr_in));
  } else if (a.family() == AF_INET6) {
    std::memcpy(&sa, &a.storage, sizeof(sockaddr_in6));
  }
}

bool CompactAddr::operator==(const CompactAddr& o) const {
  return std::memcmp(&sa, &o.sa, sizeof sa) == 0;  // both zero-filled beyond the address
}

SockAddr CompactAddr::expand() const {
  SockAddr a;
  if (sa.sin6_family == AF_INET) {
    std::memcpy(&a.storage, &sa, sizeof(sockaddr_in));
    a.len = sizeof(sockaddr_in);
  } else if (sa.sin6_family == AF_INET6) {
    std::memcpy(&a.storage, &sa, sizeof(sockaddr_in6));
    a.len = sizeof(sockaddr_in6);
  }
  return a;
}

}  // namespace weir
