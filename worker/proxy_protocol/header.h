#pragma once
// The PROXY protocol header (version 1, text, and version 2, binary), as a
// layer-4 balancer in front of weir writes it before the client's bytes and
// as weir writes it toward a server: who the client is, where it connected,
// and (v2) what the balancer knew of the connection (TLVs: ALPN, authority,
// a unique id, the TLS block). Pure functions: no I/O, no allocation beyond
// the header's own strings; tests/unit/worker/proxy_protocol and a libFuzzer
// target cover them.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/base/address.h"

namespace weir::proxy_protocol {

// The longest header weir reads: v1 is at most 107 bytes by its definition;
// v2's 16-byte head may announce up to 65,535 more, but nothing a balancer
// sends needs more than this (HAProxy reads them into one buffer too).
inline constexpr size_t kMaxV1 = 107;
inline constexpr size_t kMaxV2 = 4096;
inline constexpr size_t kMaxUniqueId = 128;  // the specification's limit

// What the TLS block (v2 type 0x20) says of the client's TLS connection.
struct Ssl {
  bool present = false;
  uint8_t client = 0;   // bit 0: TLS; bit 1: a certificate this connection; bit 2: this session
  uint32_t verify = 0;  // 0: the client's certificate was verified
  std::string version, cn, cipher, sig_alg, key_alg;
  bool operator==(const Ssl&) const = default;
};

struct Header {
  int version = 0;  // 1 or 2
  // The balancer speaks for itself (v2 LOCAL, its health check; v1 UNKNOWN; an
  // UNSPEC family): the connection's real addresses stand.
  bool local = false;
  SockAddr src;                            // the client (AF_INET, AF_INET6 or AF_UNIX), when !local
  SockAddr dst;                            // where it connected
  std::string alpn, authority, unique_id;  // v2 TLVs
  Ssl ssl;
  bool operator==(const Header&) const = default;
};

enum class Status { kNeedMore, kDone, kError };

// Reads a header at the start of `in`. kDone: *out is filled and *consumed is
// its length (the client's bytes follow); kNeedMore: `in` is a prefix of a
// header (v1 and v2 are told apart by their first bytes); kError: *error says
// what is wrong, in one line.
Status parse(std::string_view in, Header* out, size_t* consumed, std::string* error);

// `in` starts like a header, v1 or v2 (it may still be a malformed one).
bool starts_like_header(std::string_view in);

// A header for `h` in h.version's format (1 or 2). An address that is not IPv4
// or IPv6 gives v1 "UNKNOWN" or a v2 LOCAL header; mixed IPv4 and IPv6 are
// written as IPv6 (IPv4-mapped). v2 writes the TLVs whose strings are not
// empty, and the TLS block when h.ssl.present.
std::string encode(const Header& h);

// CRC-32C (Castagnoli), as v2's checksum TLV uses it.
uint32_t crc32c(std::string_view data);

}  // namespace weir::proxy_protocol
