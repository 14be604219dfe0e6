#include "worker/proxy_protocol/header.h"

#include <arpa/inet.h>
#include <sys/un.h>

#include <array>
#include <cstring>

namespace weir::proxy_protocol {
namespace {

constexpr std::string_view kV1Prefix = "PROXY ";
constexpr std::string_view kV2Signature("\r\n\r\n\0\r\nQUIT\n", 12);
constexpr size_t kV2Head = 16;

// v2 TLV types.
enum : uint8_t {
  kTlvAlpn = 0x01,
  kTlvAuthority = 0x02,
  kTlvCrc32c = 0x03,
  kTlvNoop = 0x04,
  kTlvUniqueId = 0x05,
  kTlvSsl = 0x20,
  kSubVersion = 0x21,
  kSubCn = 0x22,
  kSubCipher = 0x23,
  kSubSigAlg = 0x24,
  kSubKeyAlg = 0x25,
};
// v2 address families (high nibble) and transports (low nibble).
enum : uint8_t { kFamUnspec = 0, kFamInet = 1, kFamInet6 = 2, kFamUnix = 3 };
enum : uint8_t { kTransUnspec = 0, kTransStream = 1 };
constexpr size_t kUnixPath = 108;

bool is_prefix_of(std::string_view in, std::string_view sig) {
  size_t n = std::min(in.size(), sig.size());
  return in.substr(0, n) == sig.substr(0, n);
}

uint16_t be16(const unsigned char* p) {
  return static_cast<uint16_t>((p[0] << 8) | p[1]);
}
uint32_t be32(const unsigned char* p) {
  return (static_cast<uint32_t>(p[0]) << 24) | (static_cast<uint32_t>(p[1]) << 16) |
         (static_cast<uint32_t>(p[2]) << 8) | p[3];
}
void put16(std::string* out, uint16_t v) {
  out->push_back(static_cast<char>(v >> 8));
  out->push_back(static_cast<char>(v & 0xff));
}

SockAddr inet4(const unsigned char* addr, const unsigned char* port) {
  SockAddr a;
  sockaddr_in* sin = reinterpret_cast<sockaddr_in*>(&a.storage);
  sin->sin_family = AF_INET;
  std::memcpy(&sin->sin_addr, addr, 4);
  std::memcpy(&sin->sin_port, port, 2);
  a.len = sizeof(sockaddr_in);
  return a;
}
SockAddr inet6(const unsigned char* addr, const unsigned char* port) {
  SockAddr a;
  sockaddr_in6* sin6 = reinterpret_cast<sockaddr_in6*>(&a.storage);
  sin6->sin6_family = AF_INET6;
  std::memcpy(&sin6->sin6_addr, addr, 16);
  std::memcpy(&sin6->sin6_port, port, 2);
  a.len = sizeof(sockaddr_in6);
  return a;
}
SockAddr unix_path(const unsigned char* path) {
  SockAddr a;
  sockaddr_un* sun = reinterpret_cast<sockaddr_un*>(&a.storage);
  sun->sun_family = AF_UNIX;
  // At most 107 bytes and a NUL: a path that fills all 108 is cut by one.
  size_t n =
      std::min(strnlen(reinterpret_cast<const char*>(path), kUnixPath), sizeof(sun->sun_path) - 1);
  std::memcpy(sun->sun_path, path, n);
  a.len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + n + 1);
  return a;
}

// ---- version 1: "PROXY TCP4 1.2.3.4 5.6.7.8 1234 80\r\n" or "PROXY UNKNOWN...\r\n"

bool v1_port(std::string_view s, uint16_t* out) {
  if (s.empty() || s.size() > 5 || (s.size() > 1 && s[0] == '0')) return false;
  uint32_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<uint32_t>(c - '0');
  }
  if (v > 65535) return false;
  *out = static_cast<uint16_t>(v);
  return true;
}

Status parse_v1(std::string_view in, Header* out, size_t* consumed, std::string* error) {
  size_t crlf = in.substr(0, kMaxV1).find("\r\n");
  if (crlf == std::string_view::npos) {
    size_t lf = in.substr(0, kMaxV1).find('\n');
    if (lf != std::string_view::npos) {
      *error = "PROXY v1 header: a line that does not end in CRLF";
      return Status::kError;
    }
    if (in.size() >= kMaxV1) {
      *error = "PROXY v1 header longer than 107 bytes";
      return Status::kError;
    }
    return Status::kNeedMore;
  }
  if (in.substr(0, crlf).find('\n') != std::string_view::npos) {
    *error = "PROXY v1 header: a line that does not end in CRLF";
    return Status::kError;
  }
  std::string_view line = in.substr(kV1Prefix.size(), crlf - kV1Prefix.size());
  out->version = 1;
  *consumed = crlf + 2;
  if (line.substr(0, 7) == "UNKNOWN") {
    if (line.size() > 7 && line[7] != ' ') {
      *error = "PROXY v1 header: unknown protocol '" + std::string(line.substr(0, 16)) + "'";
      return Status::kError;
    }
    out->local = true;
    return Status::kDone;
  }
  // Exactly five space-separated words.
  std::string_view w[5];
  size_t n = 0;
  while (n < 5) {
    size_t sp = line.find(' ');
    w[n++] = line.substr(0, sp);
    if (sp == std::string_view::npos) {
      line = {};
      break;
    }
    line.remove_prefix(sp + 1);
  }
  if (n != 5 || !line.empty()) {
    *error = "PROXY v1 header: expected 'TCP4|TCP6 SRC DST SRCPORT DSTPORT'";
    return Status::kError;
  }
  int family = w[0] == "TCP4" ? AF_INET : w[0] == "TCP6" ? AF_INET6 : 0;
  if (!family) {
    *error = "PROXY v1 header: unknown protocol '" + std::string(w[0].substr(0, 16)) + "'";
    return Status::kError;
  }
  unsigned char addr[2][16];
  for (int i = 0; i < 2; ++i) {
    std::string text(w[1 + i]);
    if (text.size() > 45 || inet_pton(family, text.c_str(), addr[i]) != 1) {
      *error = std::string("PROXY v1 header: '") + text.substr(0, 45) + "' is not an " +
               (family == AF_INET ? "IPv4" : "IPv6") + " address";
      return Status::kError;
    }
  }
  uint16_t port[2];
  for (int i = 0; i < 2; ++i) {
    if (!v1_port(w[3 + i], &port[i])) {
      *error = "PROXY v1 header: '" + std::string(w[3 + i].substr(0, 8)) + "' is not a port";
      return Status::kError;
    }
  }
  unsigned char p[2][2] = {
      {static_cast<unsigned char>(port[0] >> 8), static_cast<unsigned char>(port[0] & 0xff)},
      {static_cast<unsigned char>(port[1] >> 8), static_cast<unsigned char>(port[1] & 0xff)}};
  out->src = family == AF_INET ? inet4(addr[0], p[0]) : inet6(addr[0], p[0]);
  out->dst = family == AF_INET ? inet4(addr[1], p[1]) : inet6(addr[1], p[1]);
  return Status::kDone;
}

// ---- version 2

// The TLVs in [p, end): false with *error on one that overruns its block.
bool parse_tlvs(const unsigned char* p, const unsigned char* end, const unsigned char* head,
                size_t total, Header* out, std::string* error, bool in_ssl) {
  while (p < end) {
    if (end - p < 3) {
      *error = "PROXY v2 header: a truncated TLV";
      return false;
    }
    uint8_t type = p[0];
    size_t len = be16(p + 1);
    const unsigned char* v = p + 3;
    if (static_cast<size_t>(end - v) < len) {
      *error = "PROXY v2 header: a TLV longer than its header";
      return false;
    }
    std::string value(reinterpret_cast<const char*>(v), len);
    if (in_ssl) {
      switch (type) {
        case kSubVersion:
          out->ssl.version = std::move(value);
          break;
        case kSubCn:
          out->ssl.cn = std::move(value);
          break;
        case kSubCipher:
          out->ssl.cipher = std::move(value);
          break;
        case kSubSigAlg:
          out->ssl.sig_alg = std::move(value);
          break;
        case kSubKeyAlg:
          out->ssl.key_alg = std::move(value);
          break;
        default:
          break;  // a sub-TLV weir does not use
      }
    } else {
      switch (type) {
        case kTlvAlpn:
          out->alpn = std::move(value);
          break;
        case kTlvAuthority:
          out->authority = std::move(value);
          break;
        case kTlvUniqueId:
          if (len > kMaxUniqueId) {
            *error = "PROXY v2 header: a unique id longer than 128 bytes";
            return false;
          }
          out->unique_id = std::move(value);
          break;
        case kTlvCrc32c: {
          if (len != 4) {
            *error = "PROXY v2 header: a CRC32C TLV of " + std::to_string(len) + " bytes";
            return false;
          }
          // The checksum covers the whole header with its own 4 bytes zeroed.
          std::string copy(reinterpret_cast<const char*>(head), total);
          std::memset(copy.data() + (v - head), 0, 4);
          if (crc32c(copy) != be32(v)) {
            *error = "PROXY v2 header: the CRC32C checksum does not match";
            return false;
          }
          break;
        }
        case kTlvSsl:
          if (len < 5) {
            *error = "PROXY v2 header: a TLS block shorter than 5 bytes";
            return false;
          }
          out->ssl.present = true;
          out->ssl.client = v[0];
          out->ssl.verify = be32(v + 1);
          if (!parse_tlvs(v + 5, v + len, head, total, out, error, true)) return false;
          break;
        case kTlvNoop:
        default:
          break;  // padding, a namespace, a vendor's own: not for weir
      }
    }
    p = v + len;
  }
  return true;
}

Status parse_v2(std::string_view in, Header* out, size_t* consumed, std::string* error) {
  if (in.size() < kV2Head) return Status::kNeedMore;
  const unsigned char* h = reinterpret_cast<const unsigned char*>(in.data());
  uint8_t version = h[12] >> 4, command = h[12] & 0x0f;
  if (version != 2) {
    *error = "PROXY v2 header: version " + std::to_string(version);
    return Status::kError;
  }
  if (command > 1) {
    *error = "PROXY v2 header: unknown command " + std::to_string(command);
    return Status::kError;
  }
  size_t total = kV2Head + be16(h + 14);
  if (total > kMaxV2) {
    *error = "PROXY v2 header of " + std::to_string(total) + " bytes (weir reads up to " +
             std::to_string(kMaxV2) + ")";
    return Status::kError;
  }
  if (in.size() < total) return Status::kNeedMore;
  out->version = 2;
  *consumed = total;
  if (command == 0) {  // LOCAL: the balancer's own connection; the rest is ignored
    out->local = true;
    return Status::kDone;
  }
  uint8_t family = h[13] >> 4, transport = h[13] & 0x0f;
  const unsigned char* p = h + kV2Head;
  const unsigned char* end = h + total;
  size_t need = family == kFamInet ? 12 : family == kFamInet6 ? 36 : family == kFamUnix ? 216 : 0;
  if (family > kFamUnix) {
    *error = "PROXY v2 header: unknown address family " + std::to_string(family);
    return Status::kError;
  }
  if (family != kFamUnspec && transport != kTransStream) {
    *error =
        "PROXY v2 header: not a stream connection (transport " + std::to_string(transport) + ")";
    return Status::kError;
  }
  if (static_cast<size_t>(end - p) < need) {
    *error = "PROXY v2 header: an address block shorter than its family needs";
    return Status::kError;
  }
  switch (family) {
    case kFamInet:
      out->src = inet4(p, p + 8);
      out->dst = inet4(p + 4, p + 10);
      break;
    case kFamInet6:
      out->src = inet6(p, p + 32);
      out->dst = inet6(p + 16, p + 34);
      break;
    case kFamUnix:
      out->src = unix_path(p);
      out->dst = unix_path(p + kUnixPath);
      break;
    default:
      // UNSPEC: the sender could not say; the real addresses stand. Its bytes,
      // if any, are not addresses: no TLV follows them that weir could find.
      out->local = true;
      return Status::kDone;
  }
  if (!parse_tlvs(p + need, end, h, total, out, error, false)) return Status::kError;
  return Status::kDone;
}

// ---- encoding

// Both addresses as one family: IPv4 stays IPv4; anything with an IPv6 side is IPv6.
bool same_family(const SockAddr& a, const SockAddr& b, SockAddr* a_out, SockAddr* b_out) {
  auto to6 = [](const SockAddr& x) {
    if (x.family() == AF_INET6) return x;
    const sockaddr_in* sin = reinterpret_cast<const sockaddr_in*>(&x.storage);
    unsigned char addr[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    std::memcpy(addr + 12, &sin->sin_addr, 4);
    return inet6(addr, reinterpret_cast<const unsigned char*>(&sin->sin_port));
  };
  auto ok = [](const SockAddr& x) { return x.family() == AF_INET || x.family() == AF_INET6; };
  if (!ok(a) || !ok(b)) return false;
  if (a.family() == b.family()) {
    *a_out = a;
    *b_out = b;
  } else {
    *a_out = to6(a);
    *b_out = to6(b);
  }
  return true;
}

void put_tlv(std::string* out, uint8_t type, std::string_view value) {
  out->push_back(static_cast<char>(type));
  put16(out, static_cast<uint16_t>(value.size()));
  out->append(value);
}

}  // namespace

bool starts_like_header(std::string_view in) {
  return is_prefix_of(in, kV1Prefix) || is_prefix_of(in, kV2Signature);
}

Status parse(std::string_view in, Header* out, size_t* consumed, std::string* error) {
  *out = Header();
  if (in.empty()) return Status::kNeedMore;
  if (is_prefix_of(in, kV1Prefix)) {
    if (in.size() < kV1Prefix.size()) return Status::kNeedMore;
    return parse_v1(in, out, consumed, error);
  }
  if (is_prefix_of(in, kV2Signature)) {
    if (in.size() < kV2Signature.size()) return Status::kNeedMore;
    return parse_v2(in, out, consumed, error);
  }
  *error =
      "no PROXY protocol header (the connection starts with neither 'PROXY ' nor the v2 "
      "signature)";
  return Status::kError;
}

std::string encode(const Header& h) {
  SockAddr src, dst;
  bool addresses = !h.local && same_family(h.src, h.dst, &src, &dst);
  if (h.version == 1) {
    if (!addresses) return "PROXY UNKNOWN\r\n";
    return std::string("PROXY ") + (src.family() == AF_INET ? "TCP4 " : "TCP6 ") +
           src.host_string() + " " + dst.host_string() + " " + std::to_string(src.port()) + " " +
           std::to_string(dst.port()) + "\r\n";
  }
  std::string body;
  uint8_t fam = kFamUnspec << 4;
  if (addresses) {
    if (src.family() == AF_INET) {
      fam = (kFamInet << 4) | kTransStream;
      const sockaddr_in* s = reinterpret_cast<const sockaddr_in*>(&src.storage);
      const sockaddr_in* d = reinterpret_cast<const sockaddr_in*>(&dst.storage);
      body.append(reinterpret_cast<const char*>(&s->sin_addr), 4);
      body.append(reinterpret_cast<const char*>(&d->sin_addr), 4);
      body.append(reinterpret_cast<const char*>(&s->sin_port), 2);
      body.append(reinterpret_cast<const char*>(&d->sin_port), 2);
    } else {
      fam = (kFamInet6 << 4) | kTransStream;
      const sockaddr_in6* s = reinterpret_cast<const sockaddr_in6*>(&src.storage);
      const sockaddr_in6* d = reinterpret_cast<const sockaddr_in6*>(&dst.storage);
      body.append(reinterpret_cast<const char*>(&s->sin6_addr), 16);
      body.append(reinterpret_cast<const char*>(&d->sin6_addr), 16);
      body.append(reinterpret_cast<const char*>(&s->sin6_port), 2);
      body.append(reinterpret_cast<const char*>(&d->sin6_port), 2);
    }
    if (!h.alpn.empty()) put_tlv(&body, kTlvAlpn, h.alpn);
    if (!h.authority.empty()) put_tlv(&body, kTlvAuthority, h.authority);
    if (!h.unique_id.empty()) {
      put_tlv(&body, kTlvUniqueId, std::string_view(h.unique_id).substr(0, kMaxUniqueId));
    }
    if (h.ssl.present) {
      std::string ssl;
      ssl.push_back(static_cast<char>(h.ssl.client));
      for (int shift = 24; shift >= 0; shift -= 8) {
        ssl.push_back(static_cast<char>((h.ssl.verify >> shift) & 0xff));
      }
      if (!h.ssl.version.empty()) put_tlv(&ssl, kSubVersion, h.ssl.version);
      if (!h.ssl.cn.empty()) put_tlv(&ssl, kSubCn, h.ssl.cn);
      if (!h.ssl.cipher.empty()) put_tlv(&ssl, kSubCipher, h.ssl.cipher);
      if (!h.ssl.sig_alg.empty()) put_tlv(&ssl, kSubSigAlg, h.ssl.sig_alg);
      if (!h.ssl.key_alg.empty()) put_tlv(&ssl, kSubKeyAlg, h.ssl.key_alg);
      put_tlv(&body, kTlvSsl, ssl);
    }
  }
  std::string out(kV2Signature);
  out.push_back(static_cast<char>(addresses ? 0x21 : 0x20));  // v2, PROXY or LOCAL
  out.push_back(static_cast<char>(fam));
  put16(&out, static_cast<uint16_t>(body.size()));
  out += body;
  return out;
}

uint32_t crc32c(std::string_view data) {
  static const std::array<uint32_t, 256> table = [] {
    std::array<uint32_t, 256> t{};
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  uint32_t crc = 0xFFFFFFFFu;
  for (unsigned char b : data) crc = table[(crc ^ b) & 0xff] ^ (crc >> 8);
  return crc ^ 0xFFFFFFFFu;
}

}  // namespace weir::proxy_protocol
