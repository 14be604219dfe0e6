#include "common/tls/tls_hello.h"

#include <algorithm>
#include <cstddef>

namespace weir::tls {
namespace {

constexpr unsigned char kContentHandshake = 22;
constexpr unsigned char kHandshakeClientHello = 1;
constexpr size_t kRecordHeaderLength = 5;
constexpr size_t kHandshakeHeaderLength = 4;
// legacy_version, random, session_id<0..32>, cipher_suites<2..>, compression_methods<1..>.
constexpr size_t kMinClientHelloLength = 2 + 32 + 1 + (2 + 2) + (1 + 1);

constexpr uint16_t kExtServerName = 0;
constexpr uint16_t kExtAlpn = 16;
constexpr uint16_t kExtSupportedVersions = 43;
constexpr unsigned char kNameTypeHostName = 0;

enum class Step { kOk, kNeedMore, kBad };

#define WEIR_TLS_TRY(expr)                \
  do {                                    \
    const Step step_ = (expr);            \
    if (step_ != Step::kOk) return step_; \
  } while (0)

// Reads the part of a ClientHello body received so far: `avail` of its `total` bytes are
// at `p`. Every read names the end of the structure it belongs to: going past that end
// is malformed (kBad), reading a byte not received yet is kNeedMore. Skipping needs no
// bytes, only room in the structure.
class Reader {
 public:
  Reader(const unsigned char* p, size_t avail, size_t total) : p_(p), avail_(avail), end_(total) {}

  size_t pos() const { return pos_; }
  size_t end() const { return end_; }

  Step need(size_t n, size_t end) const {
    if (n > end - pos_) return Step::kBad;
    if (pos_ + n > avail_) return Step::kNeedMore;
    return Step::kOk;
  }
  Step u8(size_t end, unsigned* v) {
    WEIR_TLS_TRY(need(1, end));
    *v = p_[pos_++];
    return Step::kOk;
  }
  Step u16(size_t end, unsigned* v) {
    WEIR_TLS_TRY(need(2, end));
    *v = (static_cast<unsigned>(p_[pos_]) << 8) | p_[pos_ + 1];
    pos_ += 2;
    return Step::kOk;
  }
  Step skip(size_t n, size_t end) {
    if (n > end - pos_) return Step::kBad;
    pos_ += n;
    return Step::kOk;
  }
  Step bytes(size_t n, size_t end, std::string_view* v) {
    WEIR_TLS_TRY(need(n, end));
    *v = std::string_view(reinterpret_cast<const char*>(p_ + pos_), n);
    pos_ += n;
    return Step::kOk;
  }

 private:
  const unsigned char* p_;
  size_t avail_;
  size_t end_;
  size_t pos_ = 0;
};

void reset(ClientHello& out) {
  out.sni.clear();
  out.alpn.clear();
  out.legacy_version = 0;
  out.max_version = 0;
}

bool is_grease(unsigned v) {
  return (v & 0x0f0f) == 0x0a0a && (v >> 8) == (v & 0xff);
}

bool is_sni_char(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '-' || c == '_' || c == '*';
}

void set_sni(std::string_view name, std::string* sni) {
  if (name.empty() || name.size() > kMaxSniLength) return;
  for (char c : name) {
    if (!is_sni_char(static_cast<unsigned char>(c))) return;
  }
  sni->assign(name);
  for (char& c : *sni) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
}

// server_name (RFC 6066): ServerName server_name_list<1..2^16-1>, each entry a name_type
// byte and a name<1..2^16-1>. `out` is null while the body is incomplete.
Step parse_server_name(Reader& r, size_t end, ClientHello* out) {
  unsigned list_len = 0;
  WEIR_TLS_TRY(r.u16(end, &list_len));
  if (list_len == 0 || list_len != end - r.pos()) return Step::kBad;
  bool seen_host = false;
  while (r.pos() < end) {
    unsigned type = 0, len = 0;
    WEIR_TLS_TRY(r.u8(end, &type));
    WEIR_TLS_TRY(r.u16(end, &len));
    if (type == kNameTypeHostName && !seen_host && out != nullptr) {
      std::string_view name;
      WEIR_TLS_TRY(r.bytes(len, end, &name));
      set_sni(name, &out->sni);
    } else {
      WEIR_TLS_TRY(r.skip(len, end));
    }
    if (type == kNameTypeHostName) seen_host = true;
  }
  return Step::kOk;
}

// application_layer_protocol_negotiation (RFC 7301): ProtocolName
// protocol_name_list<2..2^16-1>, each name<1..2^8-1>.
Step parse_alpn(Reader& r, size_t end, ClientHello* out) {
  unsigned list_len = 0;
  WEIR_TLS_TRY(r.u16(end, &list_len));
  if (list_len < 2 || list_len != end - r.pos()) return Step::kBad;
  while (r.pos() < end) {
    unsigned len = 0;
    WEIR_TLS_TRY(r.u8(end, &len));
    if (len == 0) return Step::kBad;
    if (out != nullptr) {
      std::string_view name;
      WEIR_TLS_TRY(r.bytes(len, end, &name));
      out->alpn.emplace_back(name);
    } else {
      WEIR_TLS_TRY(r.skip(len, end));
    }
  }
  return Step::kOk;
}

// supported_versions in a ClientHello (RFC 8446 4.2.1): ProtocolVersion versions<2..254>.
// *best: the highest non-GREASE version listed (0 if none).
Step parse_supported_versions(Reader& r, size_t end, unsigned* best) {
  unsigned list_len = 0;
  WEIR_TLS_TRY(r.u8(end, &list_len));
  if (list_len < 2 || list_len % 2 != 0 || list_len != end - r.pos()) return Step::kBad;
  while (r.pos() < end) {
    unsigned v = 0;
    WEIR_TLS_TRY(r.u16(end, &v));
    if (!is_grease(v)) *best = std::max(*best, v);
  }
  return Step::kOk;
}

// The ClientHello body (RFC 8446 4.1.2; RFC 5246 7.4.1.2 for the optional extensions).
Step parse_body(Reader& r, ClientHello* out) {
  const size_t end = r.end();
  unsigned major = 0, minor = 0;
  WEIR_TLS_TRY(r.u8(end, &major));
  if (major != 3) return Step::kBad;
  WEIR_TLS_TRY(r.u8(end, &minor));
  WEIR_TLS_TRY(r.skip(32, end));  // random
  unsigned len = 0;
  WEIR_TLS_TRY(r.u8(end, &len));  // legacy_session_id<0..32>
  if (len > 32) return Step::kBad;
  WEIR_TLS_TRY(r.skip(len, end));
  WEIR_TLS_TRY(r.u16(end, &len));  // cipher_suites<2..2^16-2>
  if (len == 0 || len % 2 != 0) return Step::kBad;
  WEIR_TLS_TRY(r.skip(len, end));
  WEIR_TLS_TRY(r.u8(end, &len));  // legacy_compression_methods<1..2^8-1>
  if (len == 0) return Step::kBad;
  WEIR_TLS_TRY(r.skip(len, end));

  unsigned best_version = 0;
  if (r.pos() < end) {  // Extension extensions<0..2^16-1>, ending the message
    WEIR_TLS_TRY(r.u16(end, &len));
    if (len != end - r.pos()) return Step::kBad;
    bool seen_sni = false, seen_alpn = false, seen_versions = false;
    while (r.pos() < end) {
      unsigned type = 0, ext_len = 0;
      WEIR_TLS_TRY(r.u16(end, &type));
      WEIR_TLS_TRY(r.u16(end, &ext_len));
      if (ext_len > end - r.pos()) return Step::kBad;
      const size_t ext_end = r.pos() + ext_len;
      bool* seen = nullptr;
      switch (type) {
        case kExtServerName:
          seen = &seen_sni;
          break;
        case kExtAlpn:
          seen = &seen_alpn;
          break;
        case kExtSupportedVersions:
          seen = &seen_versions;
          break;
        default:
          break;
      }
      if (seen == nullptr) {
        WEIR_TLS_TRY(r.skip(ext_len, ext_end));
        continue;
      }
      if (*seen) return Step::kBad;  // the same extension twice
      *seen = true;
      if (type == kExtServerName) {
        WEIR_TLS_TRY(parse_server_name(r, ext_end, out));
      } else if (type == kExtAlpn) {
        WEIR_TLS_TRY(parse_alpn(r, ext_end, out));
      } else {
        WEIR_TLS_TRY(parse_supported_versions(r, ext_end, &best_version));
      }
    }
  }
  if (out != nullptr) {
    out->legacy_version = static_cast<uint16_t>((major << 8) | minor);
    out->max_version =
        best_version != 0 ? static_cast<uint16_t>(best_version) : out->legacy_version;
  }
  return Step::kOk;
}

#undef WEIR_TLS_TRY

}  // namespace

HelloStatus parse_client_hello(std::string_view data, ClientHello& out) {
  reset(out);
  const auto* p = reinterpret_cast<const unsigned char*>(data.data());
  const size_t n = data.size();

  // 1. The records carrying the handshake message, up to its end: each header is checked
  //    byte by byte as it arrives, and so is the 4-byte handshake header they carry.
  size_t pos = 0;        // start of the next record header in data
  size_t hs_avail = 0;   // handshake bytes received
  size_t hs_total = 0;   // handshake header + body length; 0 until the header is in
  size_t fragments = 0;  // records that carried some of those bytes
  unsigned char hs_header[kHandshakeHeaderLength];
  size_t hs_header_len = 0;
  while (hs_total == 0 || hs_avail < hs_total) {
    if (pos == n) break;
    if (p[pos] != kContentHandshake) return HelloStatus::kNotClientHello;
    if (n - pos < 2) break;
    if (p[pos + 1] != 3) return HelloStatus::kNotClientHello;
    if (n - pos < kRecordHeaderLength) break;
    const size_t len = (static_cast<size_t>(p[pos + 3]) << 8) | p[pos + 4];
    if (len == 0 || len > kMaxRecordLength) return HelloStatus::kNotClientHello;
    const size_t present = std::min(len, n - pos - kRecordHeaderLength);
    for (size_t i = 0; i < present && hs_header_len < kHandshakeHeaderLength; ++i) {
      hs_header[hs_header_len++] = p[pos + kRecordHeaderLength + i];
    }
    if (hs_header_len >= 1 && hs_header[0] != kHandshakeClientHello) {
      return HelloStatus::kNotClientHello;
    }
    if (hs_header_len == kHandshakeHeaderLength && hs_total == 0) {
      const size_t body_len = (static_cast<size_t>(hs_header[1]) << 16) |
                              (static_cast<size_t>(hs_header[2]) << 8) | hs_header[3];
      if (body_len < kMinClientHelloLength || body_len > kMaxClientHelloLength) {
        return HelloStatus::kNotClientHello;
      }
      hs_total = kHandshakeHeaderLength + body_len;
    }
    hs_avail += present;
    if (present > 0) ++fragments;
    if (present < len) break;  // the data ends inside this record
    pos += kRecordHeaderLength + len;
  }
  if (hs_total == 0) return HelloStatus::kNeedMore;
  const bool complete = hs_avail >= hs_total;
  const size_t used = std::min(hs_avail, hs_total);

  // 2. The handshake bytes in one piece: in place when one record holds them, else copied
  //    out of the records (whose headers step 1 checked).
  std::string joined;
  const unsigned char* hs = p + kRecordHeaderLength;
  if (fragments > 1) {
    joined.reserve(used);
    for (size_t q = 0; joined.size() < used;) {
      const size_t len = (static_cast<size_t>(p[q + 3]) << 8) | p[q + 4];
      const size_t take = std::min({len, n - q - kRecordHeaderLength, used - joined.size()});
      joined.append(data.substr(q + kRecordHeaderLength, take));
      q += kRecordHeaderLength + len;
    }
    hs = reinterpret_cast<const unsigned char*>(joined.data());
  }

  // 3. The body, as far as it has arrived: a malformed length is final at once.
  Reader r(hs + kHandshakeHeaderLength, used - kHandshakeHeaderLength,
           hs_total - kHandshakeHeaderLength);
  const Step step = parse_body(r, complete ? &out : nullptr);
  if (step == Step::kOk && complete) return HelloStatus::kComplete;
  reset(out);
  return step == Step::kBad ? HelloStatus::kNotClientHello : HelloStatus::kNeedMore;
}

std::string_view version_name(uint16_t v) {
  switch (v) {
    case 0x0300:
      return "SSLv3";
    case 0x0301:
      return "TLSv1";
    case 0x0302:
      return "TLSv1.1";
    case 0x0303:
      return "TLSv1.2";
    case 0x0304:
      return "TLSv1.3";
    default:
      return "";
  }
}

}  // namespace weir::tls
