// libFuzzer target: the TLS ClientHello parser of tcp-mode inspection. Whatever the
// bytes, it must not crash, read out of bounds or loop; a ClientHello it accepts has an
// SNI of at most 255 lower-case name characters, ALPN names of 1..255 bytes and a TLS
// version; a verdict on a prefix stands when more bytes come (and every prefix of an
// accepted hello is "need more"); and the same handshake message framed in other
// records parses to the same result.
//
// Each input is tried twice: as the first bytes of a connection, and as a ClientHello
// body that the target frames itself (handshake header and records), so that mutations
// reach the extensions without having to keep the outer lengths right.
//
// Seeds (tests/fuzz/corpus/client_hello/): ClientHellos of openssl s_client 3.0 captured
// on a local socket (-tls1_2 -servername, -tls1_3 -servername, -tls1_3 -noservername,
// -alpn h2,http/1.1), one of them re-split into three records, and a raw body.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/tls/tls_hello.h"
#include "tests/fuzz/fuzz_common.h"

namespace {

using namespace weir::tls;
using weir::fuzz::check;

constexpr size_t kRecordHeader = 5;

std::string record(std::string_view payload) {
  std::string r = {'\x16', '\x03', '\x01', static_cast<char>(payload.size() >> 8),
                   static_cast<char>(payload.size() & 0xff)};
  return r.append(payload);
}

// `msg` in records: pieces cut at two points chosen by `seed`, then at most 16384 bytes each.
std::string reframe(std::string_view msg, size_t seed) {
  const size_t m = msg.size();
  size_t a = m > 1 ? 1 + seed % (m - 1) : m;
  size_t b = a + 1 < m ? a + 1 + (seed / 7) % (m - a - 1) : m;
  std::string out;
  size_t from = 0;
  for (size_t cut : {a, b, m}) {
    while (from < cut) {
      size_t take = std::min<size_t>(cut - from, 16384);
      out += record(msg.substr(from, take));
      from += take;
    }
  }
  return out;
}

// For input the parser accepted: the handshake message and where its last byte is.
void extract(std::string_view data, std::string* msg, size_t* end) {
  msg->clear();
  size_t pos = 0, total = SIZE_MAX;
  while (msg->size() < total) {
    check(data.size() - pos >= kRecordHeader, "accepted input has whole record headers");
    size_t len = (static_cast<size_t>(static_cast<unsigned char>(data[pos + 3])) << 8) |
                 static_cast<unsigned char>(data[pos + 4]);
    size_t take = std::min(len, data.size() - pos - kRecordHeader);
    msg->append(data.substr(pos + kRecordHeader, take));
    if (msg->size() >= 4 && total == SIZE_MAX) {
      total = 4 + ((static_cast<size_t>(static_cast<unsigned char>((*msg)[1])) << 16) |
                   (static_cast<size_t>(static_cast<unsigned char>((*msg)[2])) << 8) |
                   static_cast<unsigned char>((*msg)[3]));
    }
    if (msg->size() >= total) {
      *end = pos + kRecordHeader + take - (msg->size() - total);
      msg->resize(total);
      return;
    }
    check(take == len, "accepted input has whole records before the last");
    pos += kRecordHeader + len;
  }
}

bool same(const ClientHello& a, const ClientHello& b) {
  return a.sni == b.sni && a.legacy_version == b.legacy_version && a.max_version == b.max_version &&
         a.alpn == b.alpn;
}

bool is_empty(const ClientHello& h) {
  return h.sni.empty() && h.alpn.empty() && h.legacy_version == 0 && h.max_version == 0;
}

void check_hello(const ClientHello& h) {
  check(h.sni.size() <= kMaxSniLength, "sni at most 255 bytes");
  for (char c : h.sni) {
    check((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '_' ||
              c == '*',
          "sni lower-case name characters");
  }
  for (const auto& p : h.alpn) check(!p.empty() && p.size() <= 255, "alpn name 1..255 bytes");
  check((h.legacy_version >> 8) == 3, "legacy_version is 3.x");
  check(h.max_version != 0, "a max_version");
  check(!((h.max_version & 0x0f0f) == 0x0a0a && (h.max_version >> 8) == (h.max_version & 0xff)),
        "max_version not GREASE");
}

// All checks on one input; returns its verdict.
HelloStatus check_input(std::string_view data, size_t seed) {
  static ClientHello h, h2;
  const HelloStatus st = parse_client_hello(data, h);
  if (st != HelloStatus::kComplete) check(is_empty(h), "out empty unless complete");

  // A verdict on a prefix stands.
  for (size_t cut : {data.size() / 2, data.size() / 3 + 1, data.size() - 1}) {
    if (cut >= data.size()) continue;
    HelloStatus p = parse_client_hello(data.substr(0, cut), h2);
    if (p == HelloStatus::kComplete) check(st == p && same(h, h2), "a complete prefix stands");
    if (p == HelloStatus::kNotClientHello) check(st == p, "a refused prefix stands");
  }
  if (st != HelloStatus::kComplete) return st;
  check_hello(h);

  std::string msg;
  size_t end = 0;
  extract(data, &msg, &end);
  check(parse_client_hello(data.substr(0, end - 1), h2) == HelloStatus::kNeedMore,
        "the hello minus its last byte needs more");
  check(parse_client_hello(data.substr(0, end), h2) == HelloStatus::kComplete && same(h, h2),
        "the hello alone is complete");
  for (size_t s : {seed, seed * 31 + 17}) {
    std::string again = reframe(msg, s);
    check(parse_client_hello(again, h2) == HelloStatus::kComplete && same(h, h2),
          "the same message in other records parses the same");
  }
  return st;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  size_t seed = size;
  for (size_t i = 0; i < size && i < 8; ++i) seed = seed * 131 + data[i];

  // 1. As the first bytes of a connection.
  check_input(in, seed);

  // 2. As a ClientHello body, framed here: in one record (when it fits) and in several.
  if (size > kMaxClientHelloLength) return 0;
  std::string msg = {'\x01', static_cast<char>(size >> 16), static_cast<char>((size >> 8) & 0xff),
                     static_cast<char>(size & 0xff)};
  msg.append(in);
  HelloStatus split = check_input(reframe(msg, seed), seed);
  check(split != HelloStatus::kNeedMore, "a whole message gets a verdict");
  if (msg.size() <= kMaxRecordLength) {
    static ClientHello a, b;
    HelloStatus one = parse_client_hello(record(msg), a);
    check(one == split, "same verdict in one record and in several");
    parse_client_hello(reframe(msg, seed), b);
    check(same(a, b), "same hello in one record and in several");
  }
  return 0;
}
