#include "worker/proxy_protocol/header.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <sys/un.h>

#include <string>

namespace weir::proxy_protocol {
namespace {

const std::string kSig("\r\n\r\n\0\r\nQUIT\n", 12);

struct Result {
  Status status;
  Header h;
  size_t consumed = 0;
  std::string error;
};
Result run(std::string_view in) {
  Result r;
  r.status = parse(in, &r.h, &r.consumed, &r.error);
  return r;
}

// A v2 header: signature, version/command, family/transport, then `body`.
std::string v2(uint8_t ver_cmd, uint8_t fam, const std::string& body) {
  std::string out = kSig;
  out.push_back(static_cast<char>(ver_cmd));
  out.push_back(static_cast<char>(fam));
  out.push_back(static_cast<char>(body.size() >> 8));
  out.push_back(static_cast<char>(body.size() & 0xff));
  return out + body;
}
std::string tlv(uint8_t type, const std::string& value) {
  std::string out(1, static_cast<char>(type));
  out.push_back(static_cast<char>(value.size() >> 8));
  out.push_back(static_cast<char>(value.size() & 0xff));
  return out + value;
}
// 192.0.2.1:56324 -> 198.51.100.7:443
const std::string kInet4 = std::string("\xc0\x00\x02\x01\xc6\x33\x64\x07\xdc\x04\x01\xbb", 12);

// Every proper prefix of a header asks for more; the whole is read, and the
// client's bytes after it are left alone.
void expect_prefixes_wait(const std::string& header) {
  for (size_t n = 0; n < header.size(); ++n) {
    Result r = run(std::string_view(header).substr(0, n));
    EXPECT_EQ(r.status, Status::kNeedMore) << "prefix of " << n << " bytes: " << r.error;
  }
  Result r = run(header + "GET / HTTP/1.1\r\n");
  ASSERT_EQ(r.status, Status::kDone) << r.error;
  EXPECT_EQ(r.consumed, header.size());
}

TEST(ProxyHeaderV1, Tcp4Tcp6AndUnknown) {
  const std::string v4 = "PROXY TCP4 192.0.2.1 198.51.100.7 56324 443\r\n";
  expect_prefixes_wait(v4);
  Result r = run(v4);
  EXPECT_EQ(r.h.version, 1);
  EXPECT_FALSE(r.h.local);
  EXPECT_EQ(r.h.src.to_string(), "192.0.2.1:56324");
  EXPECT_EQ(r.h.dst.to_string(), "198.51.100.7:443");

  const std::string v6 = "PROXY TCP6 2001:db8::1 ::1 65535 0\r\n";
  expect_prefixes_wait(v6);
  r = run(v6);
  EXPECT_EQ(r.h.src.to_string(), "[2001:db8::1]:65535");
  EXPECT_EQ(r.h.dst.to_string(), "[::1]:0");

  for (std::string unknown : {"PROXY UNKNOWN\r\n", "PROXY UNKNOWN ffff::1 ::1 1 2\r\n"}) {
    r = run(unknown);
    ASSERT_EQ(r.status, Status::kDone) << unknown;
    EXPECT_TRUE(r.h.local);
    EXPECT_EQ(r.consumed, unknown.size());
  }
}

TEST(ProxyHeaderV1, EachFieldIsCheckedAndTheLineIsBounded) {
  struct Case {
    std::string in;
    std::string error;
  };
  const Case cases[] = {
      {"PROXY TCP5 1.2.3.4 1.2.3.4 1 2\r\n", "unknown protocol 'TCP5'"},
      {"PROXY UNKNOWNX\r\n", "unknown protocol"},
      {"PROXY TCP4 1.2.3.4 1.2.3.4 1\r\n", "expected 'TCP4|TCP6"},
      {"PROXY TCP4 1.2.3.4 1.2.3.4 1 2 3\r\n", "expected 'TCP4|TCP6"},
      {"PROXY TCP4  1.2.3.4 1 2\r\n", "'' is not an IPv4 address"},
      {"PROXY TCP4 1.2.3.256 1.2.3.4 1 2\r\n", "'1.2.3.256' is not an IPv4 address"},
      {"PROXY TCP4 ::1 1.2.3.4 1 2\r\n", "'::1' is not an IPv4 address"},
      {"PROXY TCP6 1.2.3.4 ::1 1 2\r\n", "'1.2.3.4' is not an IPv6 address"},
      {"PROXY TCP4 1.2.3.4 1.2.3.4 65536 2\r\n", "'65536' is not a port"},
      {"PROXY TCP4 1.2.3.4 1.2.3.4 01 2\r\n", "'01' is not a port"},
      {"PROXY TCP4 1.2.3.4 1.2.3.4 1 -2\r\n", "'-2' is not a port"},
      {"PROXY TCP4 1.2.3.4 1.2.3.4 1 2\n", "does not end in CRLF"},
      {"PROXY UNKNOWN " + std::string(100, 'x'), "longer than 107 bytes"},
      {"GET / HTTP/1.1\r\n", "no PROXY protocol header"},
      {"PROXY", ""},  // a prefix: wait
  };
  for (const Case& c : cases) {
    Result r = run(c.in);
    if (c.error.empty()) {
      EXPECT_EQ(r.status, Status::kNeedMore) << c.in;
      continue;
    }
    EXPECT_EQ(r.status, Status::kError) << c.in;
    EXPECT_NE(r.error.find(c.error), std::string::npos) << c.in << " -> " << r.error;
  }
  // The longest line the specification allows is 107 bytes (UNKNOWN with two
  // full IPv6 addresses): it is read; one byte more is refused.
  std::string longest =
      "PROXY UNKNOWN ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
      "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n";
  ASSERT_EQ(longest.size(), kMaxV1);
  EXPECT_EQ(run(longest).status, Status::kDone);
  longest.insert(20, "f");
  EXPECT_EQ(run(longest).status, Status::kError);
}

TEST(ProxyHeaderV2, InetInet6UnixUnspecAndLocal) {
  std::string h = v2(0x21, 0x11, kInet4);
  expect_prefixes_wait(h);
  Result r = run(h);
  EXPECT_EQ(r.h.version, 2);
  EXPECT_EQ(r.h.src.to_string(), "192.0.2.1:56324");
  EXPECT_EQ(r.h.dst.to_string(), "198.51.100.7:443");

  std::string a6(16, '\0'), b6(16, '\0');
  a6[0] = '\x20';
  a6[1] = '\x01';
  a6[15] = '\x05';
  b6[15] = '\x01';
  h = v2(0x21, 0x21, a6 + b6 + std::string("\x00\x50\x01\xbb", 4));
  expect_prefixes_wait(h);
  r = run(h);
  EXPECT_EQ(r.h.src.to_string(), "[2001::5]:80");
  EXPECT_EQ(r.h.dst.to_string(), "[::1]:443");

  std::string paths(216, '\0');
  paths.replace(0, 9, "/run/a.sk");
  paths.replace(108, 9, "/run/b.sk");
  r = run(v2(0x21, 0x31, paths));
  ASSERT_EQ(r.status, Status::kDone) << r.error;
  ASSERT_EQ(r.h.src.family(), AF_UNIX);
  EXPECT_STREQ(reinterpret_cast<const sockaddr_un*>(&r.h.src.storage)->sun_path, "/run/a.sk");
  EXPECT_STREQ(reinterpret_cast<const sockaddr_un*>(&r.h.dst.storage)->sun_path, "/run/b.sk");

  // A path that fills its 108 bytes without a NUL keeps 107 of them.
  r = run(v2(0x21, 0x31, std::string(216, 'p')));
  ASSERT_EQ(r.status, Status::kDone) << r.error;
  EXPECT_EQ(std::string(reinterpret_cast<const sockaddr_un*>(&r.h.src.storage)->sun_path),
            std::string(107, 'p'));

  // UNSPEC: the real addresses stand.
  r = run(v2(0x21, 0x00, ""));
  ASSERT_EQ(r.status, Status::kDone) << r.error;
  EXPECT_TRUE(r.h.local);
  // LOCAL (a balancer's health check): its address block, whatever it holds, is skipped.
  h = v2(0x20, 0x11, kInet4 + "junk");
  r = run(h);
  ASSERT_EQ(r.status, Status::kDone) << r.error;
  EXPECT_TRUE(r.h.local);
  EXPECT_EQ(r.consumed, h.size());
}

TEST(ProxyHeaderV2, TlvsBecomeFieldsAndTheirLimitsHold) {
  std::string ssl = std::string("\x05\x00\x00\x00\x00", 5) + tlv(0x21, "TLSv1.3") +
                    tlv(0x22, "client.example") + tlv(0x23, "TLS_AES_128_GCM_SHA256") +
                    tlv(0x24, "SHA256") + tlv(0x25, "EC256") + tlv(0x2f, "unknown sub");
  std::string body = kInet4 + tlv(0x01, "h2") + tlv(0x02, "www.example.com") + tlv(0x04, "pad") +
                     tlv(0x05, std::string(128, 'u')) + tlv(0x20, ssl) + tlv(0xe0, "vendor");
  std::string h = v2(0x21, 0x11, body);
  expect_prefixes_wait(h);
  Result r = run(h);
  EXPECT_EQ(r.h.alpn, "h2");
  EXPECT_EQ(r.h.authority, "www.example.com");
  EXPECT_EQ(r.h.unique_id, std::string(128, 'u'));
  EXPECT_TRUE(r.h.ssl.present);
  EXPECT_EQ(r.h.ssl.client, 5);
  EXPECT_EQ(r.h.ssl.verify, 0u);
  EXPECT_EQ(r.h.ssl.version, "TLSv1.3");
  EXPECT_EQ(r.h.ssl.cn, "client.example");
  EXPECT_EQ(r.h.ssl.cipher, "TLS_AES_128_GCM_SHA256");
  EXPECT_EQ(r.h.ssl.sig_alg, "SHA256");
  EXPECT_EQ(r.h.ssl.key_alg, "EC256");

  struct Case {
    std::string in;
    std::string error;
  };
  const Case cases[] = {
      {v2(0x21, 0x11, kInet4 + tlv(0x05, std::string(129, 'u'))), "longer than 128"},
      {v2(0x21, 0x11, kInet4 + "\x01\x00"), "truncated TLV"},
      {v2(0x21, 0x11, kInet4 + std::string("\x01\x00\x09h2", 5)), "longer than its header"},
      {v2(0x21, 0x11, kInet4 + tlv(0x20, "\x01\x00")), "TLS block shorter than 5"},
      {v2(0x21, 0x11, kInet4 + tlv(0x20, std::string("\x01\x00\x00\x00\x00\x21\x00", 7))),
       "truncated TLV"},
      {v2(0x21, 0x11, kInet4 + tlv(0x03, "abc")), "CRC32C TLV of 3 bytes"},
      {v2(0x21, 0x11, kInet4.substr(0, 11)), "address block shorter"},
      {v2(0x21, 0x21, kInet4), "address block shorter"},
      {v2(0x21, 0x12, kInet4), "not a stream connection"},
      {v2(0x21, 0x41, kInet4), "unknown address family 4"},
      {v2(0x22, 0x11, kInet4), "unknown command 2"},
      {v2(0x11, 0x11, kInet4), "version 1"},
      {v2(0x21, 0x11, kInet4 + std::string(kMaxV2, 'x')), "weir reads up to 4096"},
  };
  for (const Case& c : cases) {
    Result e = run(c.in);
    EXPECT_EQ(e.status, Status::kError) << c.error;
    EXPECT_NE(e.error.find(c.error), std::string::npos) << c.error << " -> " << e.error;
  }
}

TEST(ProxyHeaderV2, TheChecksumIsVerified) {
  EXPECT_EQ(crc32c("123456789"), 0xE3069283u);  // the CRC-32C check value
  std::string h = v2(0x21, 0x11, kInet4 + tlv(0x03, std::string(4, '\0')));
  uint32_t crc = crc32c(h);
  for (int i = 0; i < 4; ++i) h[h.size() - 4 + i] = static_cast<char>((crc >> (24 - 8 * i)) & 0xff);
  Result r = run(h);
  EXPECT_EQ(r.status, Status::kDone) << r.error;
  h[20] ^= 1;  // a bit of the source address flipped on the way
  r = run(h);
  EXPECT_EQ(r.status, Status::kError);
  EXPECT_NE(r.error.find("checksum does not match"), std::string::npos) << r.error;
}

TEST(ProxyHeaderEncode, WhatWeirWritesReadsBackTheSame) {
  Result in4 = run("PROXY TCP4 192.0.2.1 198.51.100.7 56324 443\r\n");
  Result in6 = run("PROXY TCP6 2001:db8::1 ::1 65535 80\r\n");
  Header h = in4.h;
  EXPECT_EQ(encode(h), "PROXY TCP4 192.0.2.1 198.51.100.7 56324 443\r\n");
  h.version = 2;
  h.alpn = "http/1.1";
  h.authority = "example.com";
  h.unique_id = "abc";
  h.ssl.present = true;
  h.ssl.client = 1;
  h.ssl.version = "TLSv1.3";
  h.ssl.cipher = "TLS_AES_256_GCM_SHA384";
  std::string bytes = encode(h);
  EXPECT_EQ(bytes.substr(0, 16), kSig + std::string("\x21\x11", 2) + bytes.substr(14, 2));
  Result back = run(bytes);
  ASSERT_EQ(back.status, Status::kDone) << back.error;
  EXPECT_EQ(back.h, h);
  // A client over IPv6 to an IPv4 listener: both written as IPv6.
  h = in6.h;
  h.dst = in4.h.dst;
  std::string mixed = encode(h);
  EXPECT_EQ(mixed, "PROXY TCP6 2001:db8::1 ::ffff:198.51.100.7 65535 443\r\n");
  EXPECT_EQ(run(mixed).status, Status::kDone);
  // Nothing to say of the addresses: UNKNOWN, or v2 LOCAL.
  Header none;
  none.version = 1;
  EXPECT_EQ(encode(none), "PROXY UNKNOWN\r\n");
  none.version = 2;
  Result local = run(encode(none));
  ASSERT_EQ(local.status, Status::kDone);
  EXPECT_TRUE(local.h.local);
}

}  // namespace
}  // namespace weir::proxy_protocol
