#pragma once
// Socket addresses as weir's configuration writes them: "1.2.3.4:80", "[::1]:80",
// "*:80" / ":80" (IPv4 wildcard), "localhost:80" (resolved once, at load time).

#include <netinet/in.h>
#include <sys/socket.h>

#include <optional>
#include <string>
#include <string_view>

namespace weir {

struct SockAddr {
  sockaddr_storage storage{};
  socklen_t len = 0;

  int family() const { return storage.ss_family; }
  const sockaddr* sa() const { return reinterpret_cast<const sockaddr*>(&storage); }
  sockaddr* sa() { return reinterpret_cast<sockaddr*>(&storage); }
  uint16_t port() const;
  void set_port(uint16_t port);
  // True for 0.0.0.0 and ::.
  bool is_wildcard() const;
  // "1.2.3.4:80" or "[::1]:80".
  std::string to_string() const;
  // Address without the port: "1.2.3.4" or "::1".
  std::string host_string() const;
  bool operator==(const SockAddr& o) const;
  // 127.0.0.0/8, ::1 or ::ffff:127.0.0.0/104.
  bool is_loopback() const;
};

// An IPv4 or IPv6 address with its port in 28 bytes, where a SockAddr takes
// 136: for what many long-lived objects keep (an idle client connection's
// peer). Holds a sockaddr_in in the first bytes for IPv4.
struct CompactAddr {
  sockaddr_in6 sa{};

  CompactAddr() = default;
  // `a` must be IPv4 or IPv6 (anything else is kept as an empty address).
  explicit CompactAddr(const SockAddr& a);
  SockAddr expand() const;
  bool operator==(const CompactAddr& o) const;
};

// Parses "host:port". With allow_wildcard, "*:80" and ":80" mean 0.0.0.0:80.
// Host names are resolved with getaddrinfo (first result). On failure returns
// nullopt and sets *error to a one-line reason ("missing port", "port out of range", ...).
std::optional<SockAddr> parse_address(std::string_view text, bool allow_wildcard,
                                      std::string* error);

// An address as an operator types it at runtime, numeric only (a name lookup
// would stall the event loop): "10.0.0.7", "10.0.0.7:8080", "::1", "[::1]" or
// "[::1]:8080" (with a port, IPv6 needs brackets: "::1:8080" is an address).
// *has_port says whether the text gave a port; without one, the port is 0.
// On failure returns nullopt and sets *error to a one-line reason.
std::optional<SockAddr> parse_numeric_address(std::string_view text, bool* has_port,
                                              std::string* error);

// Builds a SockAddr from a kernel-provided sockaddr (accept, getsockname).
SockAddr sockaddr_from(const sockaddr* sa, socklen_t len);

}  // namespace weir
