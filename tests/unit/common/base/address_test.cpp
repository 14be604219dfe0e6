#include "common/base/address.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netdb.h>

#include <string>

namespace weir {
namespace {

SockAddr parse_ok(std::string_view text, bool allow_wildcard = true) {
  std::string error;
  const auto addr = parse_address(text, allow_wildcard, &error);
  EXPECT_TRUE(addr.has_value()) << text << ": " << error;
  return addr.value_or(SockAddr{});
}

std::string parse_error(std::string_view text, bool allow_wildcard = true) {
  std::string error;
  const auto addr = parse_address(text, allow_wildcard, &error);
  EXPECT_FALSE(addr.has_value()) << text << " parsed as " << addr->to_string();
  return error;
}

TEST(ParseAddress, Ipv4) {
  const SockAddr addr = parse_ok("127.0.0.1:9001");
  EXPECT_EQ(addr.family(), AF_INET);
  EXPECT_EQ(addr.len, sizeof(sockaddr_in));
  EXPECT_EQ(addr.port(), 9001);
  EXPECT_EQ(addr.host_string(), "127.0.0.1");
  EXPECT_EQ(addr.to_string(), "127.0.0.1:9001");
  EXPECT_FALSE(addr.is_wildcard());
}

TEST(ParseAddress, Ipv6InBrackets) {
  const SockAddr addr = parse_ok("[::1]:8443");
  EXPECT_EQ(addr.family(), AF_INET6);
  EXPECT_EQ(addr.len, sizeof(sockaddr_in6));
  EXPECT_EQ(addr.port(), 8443);
  EXPECT_EQ(addr.host_string(), "::1");
  EXPECT_EQ(addr.to_string(), "[::1]:8443");
  EXPECT_FALSE(addr.is_wildcard());
  EXPECT_EQ(parse_ok("[2001:DB8:0:0::7]:80").to_string(), "[2001:db8::7]:80");
}

TEST(ParseAddress, WildcardsMeanAnyAddress) {
  for (const char* text : {"*:80", ":80", "0.0.0.0:80"}) {
    const SockAddr addr = parse_ok(text);
    EXPECT_EQ(addr.family(), AF_INET) << text;
    EXPECT_TRUE(addr.is_wildcard()) << text;
    EXPECT_EQ(addr.to_string(), "0.0.0.0:80") << text;
  }
  const SockAddr v6 = parse_ok("[::]:80");
  EXPECT_EQ(v6.family(), AF_INET6);
  EXPECT_TRUE(v6.is_wildcard());
  EXPECT_EQ(v6.to_string(), "[::]:80");
}

TEST(ParseAddress, WildcardsRejectedWhenNotAllowed) {
  for (const char* text : {"*:80", ":80", "0.0.0.0:80", "[::]:80"}) {
    EXPECT_EQ(parse_error(text, /*allow_wildcard=*/false), "wildcard address is not allowed here")
        << text;
  }
}

TEST(ParseAddress, MissingPort) {
  EXPECT_EQ(parse_error("127.0.0.1"), "missing port");
  EXPECT_EQ(parse_error("127.0.0.1:"), "missing port");
  EXPECT_EQ(parse_error("[::1]"), "missing port");
  EXPECT_EQ(parse_error("[::1]:"), "missing port");
  EXPECT_EQ(parse_error("localhost"), "missing port");
}

TEST(ParseAddress, BadPort) {
  EXPECT_EQ(parse_error("127.0.0.1:http"), "invalid port 'http'");
  EXPECT_EQ(parse_error("127.0.0.1:-1"), "invalid port '-1'");
  EXPECT_EQ(parse_error("127.0.0.1:65536"), "port 65536 is out of range (1-65535)");
  EXPECT_EQ(parse_error("127.0.0.1:99999999999"), "port 99999999999 is out of range (1-65535)");
  EXPECT_EQ(parse_ok("127.0.0.1:65535").port(), 65535);
}

TEST(ParseAddress, PortZeroIsRejected) {
  EXPECT_EQ(parse_error("127.0.0.1:0"), "port 0 is not allowed");
  EXPECT_EQ(parse_error("*:0"), "port 0 is not allowed");
  EXPECT_EQ(parse_error("[::1]:00"), "port 0 is not allowed");
}

TEST(ParseAddress, BadHosts) {
  EXPECT_EQ(parse_error(""), "empty address");
  EXPECT_EQ(parse_error("::1:80"), "IPv6 addresses must be written in brackets, e.g. [::1]:80");
  EXPECT_EQ(parse_error("[::1:80"), "missing ']' after IPv6 address");
  EXPECT_EQ(parse_error("[::1]80"), "expected ':' and a port after ']'");
  EXPECT_EQ(parse_error("[1.2.3.4]:80"), "invalid IPv6 address '1.2.3.4'");
  EXPECT_EQ(parse_error("[nothex::1]:80"), "invalid IPv6 address 'nothex::1'");
  EXPECT_EQ(parse_error("256.1.1.1:80"), "invalid IPv4 address '256.1.1.1'");
  // getaddrinfo() would read "10.1" as 10.0.0.1; weir refuses the legacy forms.
  EXPECT_EQ(parse_error("10.1:80"), "invalid IPv4 address '10.1'");
  EXPECT_EQ(parse_error("bad host:80"), "invalid host name 'bad host'");
}

// What `set server ... addr` and `add server` take: numeric addresses, with or
// without a port, IPv6 with or without brackets (with brackets when a port follows).
TEST(ParseNumericAddress, FormsAnOperatorTypes) {
  struct Case {
    const char* text;
    const char* address;  // to_string(), port 0 when none was given
    bool has_port;
  };
  for (const Case& c : {Case{"10.0.0.7", "10.0.0.7:0", false},
                        Case{"10.0.0.7:8080", "10.0.0.7:8080", true}, Case{"::1", "[::1]:0", false},
                        Case{"[::1]", "[::1]:0", false}, Case{"[::1]:8080", "[::1]:8080", true},
                        Case{"2001:db8::7:80", "[2001:db8::7:80]:0", false}}) {
    bool has_port = true;
    std::string error;
    auto addr = parse_numeric_address(c.text, &has_port, &error);
    ASSERT_TRUE(addr) << c.text << ": " << error;
    EXPECT_EQ(addr->to_string(), c.address) << c.text;
    EXPECT_EQ(has_port, c.has_port) << c.text;
  }
}

TEST(ParseNumericAddress, RefusesNamesAndMalformedAddresses) {
  auto error_of = [](std::string_view text) {
    bool has_port = false;
    std::string error;
    EXPECT_FALSE(parse_numeric_address(text, &has_port, &error)) << text;
    return error;
  };
  // A name would need a DNS lookup on the event loop.
  EXPECT_EQ(error_of("app.internal"),
            "'app.internal' is not an IP address: give the server's IP (names are not resolved "
            "at runtime: the lookup would stall traffic)");
  EXPECT_NE(error_of("localhost:8080").find("'localhost' is not an IP address"), std::string::npos);
  EXPECT_EQ(error_of(""), "empty address");
  EXPECT_EQ(error_of("10.0.0.7:0"), "port 0 is not allowed");
  EXPECT_EQ(error_of("10.0.0.7:"), "missing port");
  EXPECT_EQ(error_of("10.0.0.7:http"), "invalid port 'http'");
  EXPECT_EQ(error_of("10.1"), "invalid IPv4 address '10.1'");
  EXPECT_EQ(error_of("[::1"), "missing ']' after IPv6 address");
  EXPECT_EQ(error_of("[::1]8080"), "expected ':' and a port after ']'");
  EXPECT_EQ(error_of("[10.0.0.7]:80"), "invalid IPv6 address '10.0.0.7'");
  EXPECT_EQ(error_of("::g"), "invalid IPv6 address '::g'");
}

// A minimal chroot may have no /etc/hosts: then "localhost" is not a name the
// system can resolve and the resolution tests have nothing to check.
bool system_resolves_localhost() {
  addrinfo* res = nullptr;
  int rc = getaddrinfo("localhost", nullptr, nullptr, &res);
  if (res) freeaddrinfo(res);
  return rc == 0;
}

TEST(ParseAddress, HostNameLocalhostIsResolved) {
  if (!system_resolves_localhost()) GTEST_SKIP() << "this system cannot resolve localhost";
  const SockAddr addr = parse_ok("localhost:8080", /*allow_wildcard=*/false);
  EXPECT_EQ(addr.port(), 8080);
  // /etc/hosts may list ::1 or 127.0.0.1 first; either is the loopback.
  EXPECT_TRUE(addr.to_string() == "127.0.0.1:8080" || addr.to_string() == "[::1]:8080")
      << addr.to_string();
}

TEST(ParseAddress, NullErrorPointerIsAllowed) {
  EXPECT_FALSE(parse_address("nope", true, nullptr).has_value());
  EXPECT_TRUE(parse_address("1.2.3.4:5", true, nullptr).has_value());
}

TEST(SockAddr, EqualityComparesFamilyAddressAndPort) {
  EXPECT_EQ(parse_ok("*:80"), parse_ok("0.0.0.0:80"));
  EXPECT_EQ(parse_ok("[::1]:80"), parse_ok("[0:0::1]:80"));
  EXPECT_FALSE(parse_ok("127.0.0.1:80") == parse_ok("127.0.0.1:81"));
  EXPECT_FALSE(parse_ok("127.0.0.1:80") == parse_ok("127.0.0.2:80"));
  EXPECT_FALSE(parse_ok("0.0.0.0:80") == parse_ok("[::]:80"));
  EXPECT_EQ(SockAddr{}, SockAddr{});
}

TEST(SockAddr, FromKernelSockaddr) {
  sockaddr_in6 sin6{};
  sin6.sin6_family = AF_INET6;
  sin6.sin6_port = htons(443);
  ASSERT_EQ(inet_pton(AF_INET6, "2001:db8::1", &sin6.sin6_addr), 1);
  const SockAddr addr = sockaddr_from(reinterpret_cast<const sockaddr*>(&sin6), sizeof(sin6));
  EXPECT_EQ(addr.len, sizeof(sin6));
  EXPECT_EQ(addr.to_string(), "[2001:db8::1]:443");
  EXPECT_EQ(addr, parse_ok("[2001:db8::1]:443"));

  const SockAddr none = sockaddr_from(nullptr, 0);
  EXPECT_EQ(none.len, 0U);
  EXPECT_EQ(none.port(), 0);
  EXPECT_FALSE(none.is_wildcard());
  EXPECT_EQ(none.to_string(), "(unknown)");
}

}  // namespace
}  // namespace weir
