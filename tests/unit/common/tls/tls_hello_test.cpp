#include "common/tls/tls_hello.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <map>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "common/base/fd.h"
#include "tests/support/util.h"

namespace weir::tls {
namespace {

// ---- building ClientHellos byte by byte --------------------------------------------------

std::string u8(unsigned v) {
  return std::string(1, static_cast<char>(v & 0xff));
}
std::string u16(unsigned v) {
  return u8(v >> 8) + u8(v);
}
std::string u24(unsigned v) {
  return u8(v >> 16) + u16(v & 0xffff);
}

std::string ext(unsigned type, const std::string& body) {
  return u16(type) + u16(body.size()) + body;
}
std::string sni_ext(const std::string& name) {
  return ext(0, u16(name.size() + 3) + u8(0) + u16(name.size()) + name);
}
std::string alpn_ext(const std::vector<std::string>& protos) {
  std::string list;
  for (const auto& p : protos) list += u8(p.size()) + p;
  return ext(16, u16(list.size()) + list);
}
std::string versions_ext(const std::vector<unsigned>& versions) {
  std::string list;
  for (unsigned v : versions) list += u16(v);
  return ext(43, u8(list.size()) + list);
}

// A ClientHello body: version, random, an empty session id, one cipher suite, the null
// compression method, then the extensions block (left out when has_extensions is false).
std::string body(const std::string& extensions, unsigned version = 0x0303,
                 bool has_extensions = true) {
  std::string b =
      u16(version) + std::string(32, '\x11') + u8(0) + u16(2) + u16(0x1301) + u8(1) + u8(0);
  if (has_extensions) b += u16(extensions.size()) + extensions;
  return b;
}
std::string handshake(const std::string& b) {
  return u8(1) + u24(b.size()) + b;
}
std::string record(const std::string& payload, unsigned type = 22) {
  return u8(type) + u16(0x0301) + u16(payload.size()) + payload;
}
std::string hello(const std::string& extensions) {
  return record(handshake(body(extensions)));
}

// The handshake message of `hs` split at the given offsets, one record per piece.
std::string split_records(const std::string& hs, const std::vector<size_t>& cuts) {
  std::string out;
  size_t from = 0;
  for (size_t cut : cuts) {
    out += record(hs.substr(from, cut - from));
    from = cut;
  }
  return out + record(hs.substr(from));
}

// The handshake message carried by a single-record hello.
std::string message_of(const std::string& single_record) {
  EXPECT_GE(single_record.size(), 5u);
  size_t len = (static_cast<unsigned char>(single_record[3]) << 8) |
               static_cast<unsigned char>(single_record[4]);
  EXPECT_EQ(single_record.size(), 5 + len) << "expected one record";
  return single_record.substr(5, len);
}

HelloStatus parse(std::string_view data, ClientHello* h = nullptr) {
  ClientHello local;
  return parse_client_hello(data, h ? *h : local);
}

bool same(const ClientHello& a, const ClientHello& b) {
  return a.sni == b.sni && a.legacy_version == b.legacy_version && a.max_version == b.max_version &&
         a.alpn == b.alpn;
}

// ---- real ClientHellos from openssl s_client -----------------------------------------------

// Runs `openssl s_client` with `args` against a socket on 127.0.0.1 and returns what it
// sent: read until the parser has a verdict (or 2 s), then the connection is closed,
// which ends the handshake. Cached per argument list.
const std::string& capture(const std::vector<std::string>& args) {
  static std::map<std::vector<std::string>, std::string> cache;
  auto it = cache.find(args);
  if (it != cache.end()) return it->second;

  UniqueFd lfd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  EXPECT_TRUE(lfd.valid());
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t sl = sizeof sa;
  EXPECT_EQ(::bind(lfd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);
  EXPECT_EQ(::listen(lfd.get(), 4), 0);
  EXPECT_EQ(::getsockname(lfd.get(), reinterpret_cast<sockaddr*>(&sa), &sl), 0);
  const std::string port = std::to_string(ntohs(sa.sin_port));

  std::string received;
  std::thread server([&] {
    using Clock = std::chrono::steady_clock;
    const auto deadline = Clock::now() + std::chrono::seconds(2);
    auto left_ms = [&] {
      auto ms =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
      return static_cast<int>(std::max<long long>(0, ms));
    };
    pollfd pl{lfd.get(), POLLIN, 0};
    if (::poll(&pl, 1, left_ms()) != 1) return;
    UniqueFd conn(::accept4(lfd.get(), nullptr, nullptr, SOCK_CLOEXEC));
    if (!conn) return;
    char buf[4096];
    ClientHello h;
    while (parse_client_hello(received, h) == HelloStatus::kNeedMore) {
      pollfd pc{conn.get(), POLLIN, 0};
      if (::poll(&pc, 1, left_ms()) != 1) break;
      ssize_t r = ::read(conn.get(), buf, sizeof buf);
      if (r <= 0) break;
      received.append(buf, static_cast<size_t>(r));
    }
  });
  std::vector<std::string> argv = {"openssl", "s_client", "-connect", "127.0.0.1:" + port};
  argv.insert(argv.end(), args.begin(), args.end());
  auto result = test::run_command(argv, 5000);
  server.join();
  EXPECT_FALSE(received.empty()) << "openssl s_client sent nothing (exit " << result.exit_code
                                 << "): " << result.err;
  return cache.emplace(args, received).first->second;
}

const std::vector<std::vector<std::string>>& capture_configs() {
  static const std::vector<std::vector<std::string>> configs = {
      {"-tls1_2", "-servername", "x.example.com"},
      {"-tls1_3", "-servername", "X.Example.COM"},
      {"-tls1_3", "-noservername"},
      {"-tls1_2", "-noservername"},
      {"-servername", "x.example.com", "-alpn", "h2,http/1.1"},
  };
  return configs;
}

TEST(TlsClientHelloCapture, Tls12WithServerName) {
  ClientHello h;
  ASSERT_EQ(parse(capture({"-tls1_2", "-servername", "x.example.com"}), &h),
            HelloStatus::kComplete);
  EXPECT_EQ(h.sni, "x.example.com");
  EXPECT_EQ(h.legacy_version, 0x0303);
  EXPECT_EQ(h.max_version, 0x0303);
  EXPECT_EQ(version_name(h.max_version), "TLSv1.2");
  EXPECT_TRUE(h.alpn.empty());
}

TEST(TlsClientHelloCapture, Tls13WithServerNameIsLowerCased) {
  ClientHello h;
  ASSERT_EQ(parse(capture({"-tls1_3", "-servername", "X.Example.COM"}), &h),
            HelloStatus::kComplete);
  EXPECT_EQ(h.sni, "x.example.com");
  EXPECT_EQ(h.legacy_version, 0x0303);  // TLS 1.3 is only in supported_versions
  EXPECT_EQ(h.max_version, 0x0304);
  EXPECT_EQ(version_name(h.max_version), "TLSv1.3");
}

TEST(TlsClientHelloCapture, WithoutServerName) {
  ClientHello h;
  ASSERT_EQ(parse(capture({"-tls1_3", "-noservername"}), &h), HelloStatus::kComplete);
  EXPECT_EQ(h.sni, "");
  EXPECT_EQ(h.max_version, 0x0304);
  ASSERT_EQ(parse(capture({"-tls1_2", "-noservername"}), &h), HelloStatus::kComplete);
  EXPECT_EQ(h.sni, "");
  EXPECT_EQ(h.max_version, 0x0303);
}

TEST(TlsClientHelloCapture, AlpnInOrder) {
  ClientHello h;
  ASSERT_EQ(parse(capture({"-servername", "x.example.com", "-alpn", "h2,http/1.1"}), &h),
            HelloStatus::kComplete);
  EXPECT_EQ(h.alpn, (std::vector<std::string>{"h2", "http/1.1"}));
  EXPECT_EQ(h.sni, "x.example.com");
  EXPECT_EQ(h.max_version, 0x0304);  // openssl's default offers TLS 1.3
}

TEST(TlsClientHelloCapture, EveryPrefixNeedsMore) {
  for (const auto& args : capture_configs()) {
    const std::string& data = capture(args);
    ASSERT_FALSE(data.empty());
    for (size_t len = 0; len < data.size(); ++len) {
      ClientHello h;
      ASSERT_EQ(parse(std::string_view(data).substr(0, len), &h), HelloStatus::kNeedMore)
          << args[0] << " prefix " << len << " of " << data.size();
      EXPECT_TRUE(h.sni.empty() && h.alpn.empty() && h.max_version == 0) << "out left empty";
    }
    EXPECT_EQ(parse(data), HelloStatus::kComplete);
  }
}

TEST(TlsClientHelloCapture, ResplitIntoThreeRecordsParsesTheSame) {
  std::mt19937 rng(20240611);
  for (const auto& args : capture_configs()) {
    const std::string& data = capture(args);
    ClientHello want;
    ASSERT_EQ(parse(data, &want), HelloStatus::kComplete);
    const std::string hs = message_of(data);
    std::vector<std::pair<size_t, size_t>> cuts = {
        {1, 2}, {1, 4}, {3, 4}, {4, 5}, {hs.size() - 2, hs.size() - 1}, {40, hs.size() / 2}};
    std::uniform_int_distribution<size_t> pick(1, hs.size() - 1);
    for (int i = 0; i < 100; ++i) {
      size_t a = pick(rng), b = pick(rng);
      if (a == b) continue;
      cuts.emplace_back(std::min(a, b), std::max(a, b));
    }
    for (auto [a, b] : cuts) {
      const std::string split = split_records(hs, {a, b});
      ClientHello got;
      ASSERT_EQ(parse(split, &got), HelloStatus::kComplete) << a << "," << b;
      EXPECT_TRUE(same(got, want)) << a << "," << b;
    }
    // Every prefix of one of them is still a valid prefix.
    const std::string split = split_records(hs, {hs.size() / 3, hs.size() / 3 + 1});
    for (size_t len = 0; len < split.size(); ++len) {
      ASSERT_EQ(parse(std::string_view(split).substr(0, len)), HelloStatus::kNeedMore) << len;
    }
  }
}

TEST(TlsClientHelloCapture, CorruptedBytesNeverCrash) {
  // Every byte replaced by a few values: any verdict, but within bounds (run under ASan).
  const std::string& data = capture({"-servername", "x.example.com", "-alpn", "h2,http/1.1"});
  int complete = 0, not_hello = 0;
  for (size_t i = 0; i < data.size(); ++i) {
    for (unsigned v : {0x00u, 0x01u, 0x7fu, 0xffu}) {
      std::string bad = data;
      bad[i] = static_cast<char>(v);
      ClientHello h;
      HelloStatus st = parse(bad, &h);
      if (st == HelloStatus::kComplete) {
        ++complete;
        EXPECT_LE(h.sni.size(), kMaxSniLength);
      }
      if (st == HelloStatus::kNotClientHello) ++not_hello;
    }
  }
  EXPECT_GT(not_hello, 0);
  EXPECT_GT(complete, 0);  // random bytes, cipher suites, ... are not checked
}

// ---- synthetic ClientHellos ---------------------------------------------------------------

TEST(TlsClientHello, PlainTextIsNotAClientHello) {
  EXPECT_EQ(parse("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), HelloStatus::kNotClientHello);
  EXPECT_EQ(parse("G"), HelloStatus::kNotClientHello);
  EXPECT_EQ(parse("SSH-2.0-OpenSSH_9.2\r\n"), HelloStatus::kNotClientHello);
  EXPECT_EQ(parse(""), HelloStatus::kNeedMore);
  EXPECT_EQ(parse("\x16"), HelloStatus::kNeedMore);
  // SSLv2-format hello (length with the high bit set, msg_type 1).
  EXPECT_EQ(parse(std::string("\x80\x2e\x01\x03\x01\x00\x15", 7)), HelloStatus::kNotClientHello);
}

TEST(TlsClientHello, MinimalHelloWithoutExtensions) {
  ClientHello h;
  h.sni = "stale";
  h.alpn = {"stale"};
  ASSERT_EQ(parse(record(handshake(body("", 0x0301, false))), &h), HelloStatus::kComplete);
  EXPECT_EQ(h.sni, "");
  EXPECT_TRUE(h.alpn.empty());
  EXPECT_EQ(h.legacy_version, 0x0301);
  EXPECT_EQ(h.max_version, 0x0301);
  ASSERT_EQ(parse(record(handshake(body("", 0x0300, false))), &h), HelloStatus::kComplete);
  EXPECT_EQ(version_name(h.max_version), "SSLv3");
  // An empty extensions block is fine too.
  EXPECT_EQ(parse(record(handshake(body("")))), HelloStatus::kComplete);
}

TEST(TlsClientHello, SupportedVersionsIgnoresGrease) {
  ClientHello h;
  ASSERT_EQ(parse(hello(versions_ext({0x3a3a, 0x0304, 0x0303})), &h), HelloStatus::kComplete);
  EXPECT_EQ(h.legacy_version, 0x0303);
  EXPECT_EQ(h.max_version, 0x0304);
  ASSERT_EQ(parse(hello(versions_ext({0x0302, 0xfafa, 0x0301})), &h), HelloStatus::kComplete);
  EXPECT_EQ(h.max_version, 0x0302);  // may be lower than legacy_version: it is what is offered
  ASSERT_EQ(parse(hello(versions_ext({0x0a0a, 0x1a1a})), &h), HelloStatus::kComplete);
  EXPECT_EQ(h.max_version, 0x0303);  // only GREASE: legacy_version
  ASSERT_EQ(parse(hello(versions_ext({0x0a1a, 0x0303})), &h), HelloStatus::kComplete);
  EXPECT_EQ(h.max_version, 0x0a1a);  // not GREASE (the two bytes differ)
}

TEST(TlsClientHello, SniRules) {
  ClientHello h;
  ASSERT_EQ(parse(hello(sni_ext("Mail.EXAMPLE.com")), &h), HelloStatus::kComplete);
  EXPECT_EQ(h.sni, "mail.example.com");
  ASSERT_EQ(parse(hello(sni_ext("*.a_b-c.example.")), &h), HelloStatus::kComplete);
  EXPECT_EQ(h.sni, "*.a_b-c.example.");
  // A name breaking the character or length rule is no SNI; the hello is still complete.
  for (std::string bad : {std::string("a b.example"), std::string("a\0b", 3), std::string(""),
                          std::string("caf\xc3\xa9.example"), std::string("a\r\nb"),
                          std::string("x/y"), std::string(256, 'a')}) {
    ASSERT_EQ(parse(hello(sni_ext(bad) + alpn_ext({"h2"})), &h), HelloStatus::kComplete);
    EXPECT_EQ(h.sni, "") << bad;
    EXPECT_EQ(h.alpn, std::vector<std::string>{"h2"});
  }
  ASSERT_EQ(parse(hello(sni_ext(std::string(255, 'A'))), &h), HelloStatus::kComplete);
  EXPECT_EQ(h.sni, std::string(255, 'a'));
  // Other name types are skipped; the first host_name counts.
  std::string list = u8(7) + u16(3) + "odd" + u8(0) + u16(5) + "first" + u8(0) + u16(6) + "second";
  ASSERT_EQ(parse(hello(ext(0, u16(list.size()) + list)), &h), HelloStatus::kComplete);
  EXPECT_EQ(h.sni, "first");
  list = u8(7) + u16(3) + "odd";
  ASSERT_EQ(parse(hello(ext(0, u16(list.size()) + list)), &h), HelloStatus::kComplete);
  EXPECT_EQ(h.sni, "");
}

TEST(TlsClientHello, BytesAfterTheHelloAreIgnored) {
  ClientHello want, got;
  const std::string exts = sni_ext("a.example") + alpn_ext({"h2"});
  ASSERT_EQ(parse(hello(exts), &want), HelloStatus::kComplete);
  // More bytes in the same record, then another record of any type.
  std::string data = record(handshake(body(exts)) + "extra") + record("\x01\x00", 21) + "junk";
  ASSERT_EQ(parse(data, &got), HelloStatus::kComplete);
  EXPECT_TRUE(same(got, want));
}

TEST(TlsClientHello, LargeHelloOverManyRecords) {
  // 40 KB of padding (extension 21) between SNI and ALPN: three full records and a bit.
  const std::string exts =
      sni_ext("big.example") + ext(21, std::string(40000, '\0')) + alpn_ext({"h2", "x"});
  const std::string hs = handshake(body(exts));
  const std::string data = split_records(hs, {16384, 2 * 16384});
  ClientHello h;
  ASSERT_EQ(parse(data, &h), HelloStatus::kComplete);
  EXPECT_EQ(h.sni, "big.example");
  EXPECT_EQ(h.alpn, (std::vector<std::string>{"h2", "x"}));
  EXPECT_EQ(parse(std::string_view(data).substr(0, data.size() - 1)), HelloStatus::kNeedMore);
  EXPECT_EQ(parse(std::string_view(data).substr(0, 20000)), HelloStatus::kNeedMore);
  // One record of more than 16384+2048 bytes is not TLS.
  EXPECT_EQ(parse(record(hs)), HelloStatus::kNotClientHello);
  // The largest message accepted, and one byte more.
  const std::string base = body("");
  std::string max_exts = ext(21, std::string(kMaxClientHelloLength - base.size() - 4, '\0'));
  std::string max_hs = handshake(body(max_exts));
  ASSERT_EQ(max_hs.size(), 4 + kMaxClientHelloLength);
  EXPECT_EQ(parse(split_records(max_hs, {16000, 32000, 48000, 64000})), HelloStatus::kComplete);
  max_exts = ext(21, std::string(kMaxClientHelloLength - base.size() - 3, '\0'));
  max_hs = handshake(body(max_exts));
  EXPECT_EQ(parse(split_records(max_hs, {16000, 32000, 48000, 64000})),
            HelloStatus::kNotClientHello);
}

// Replaces bytes [at, at + with.size()) of s.
std::string patch(std::string s, size_t at, const std::string& with) {
  return s.replace(at, with.size(), with);
}

TEST(TlsClientHello, CorruptedLengthsAreNotAClientHello) {
  const std::string exts = sni_ext("a.example") + alpn_ext({"h2"}) + versions_ext({0x0304});
  const std::string good = hello(exts);
  ASSERT_EQ(parse(good), HelloStatus::kComplete);
  // Offsets in `good`: record header 0..4, handshake header 5..8, body from 9.
  const size_t b = 9;
  const size_t sid = b + 34, cs = sid + 1, comp = cs + 4, exts_len = comp + 2;
  const size_t sni = exts_len + 2;  // its type; length at +2, list length at +4
  const size_t alpn = sni + 4 + 2 + 3 + 9;
  const size_t versions = alpn + 4 + 2 + 3;
  const std::string bd = body(exts);
  const std::string hs = handshake(bd);
  const struct {
    const char* what;
    std::string data;
  } cases[] = {
      {"record type alert", patch(good, 0, u8(21))},
      {"record type application data", patch(good, 0, u8(23))},
      {"record version major 2", patch(good, 1, u8(2))},
      {"record length 0", record("")},
      {"record length 18433", patch(good, 3, u16(18433))},
      {"handshake type server_hello", patch(good, 5, u8(2))},
      {"body length 40", patch(good, 6, u24(40))},
      {"body length 65537", patch(good, 6, u24(65537))},
      {"body longer than its extensions", record(u8(1) + u24(bd.size() + 1) + bd + u8(0))},
      {"client_version major 2", patch(good, b, u8(2))},
      {"session id 33", patch(good, sid, u8(33))},
      {"cipher suites odd", patch(good, cs, u16(3))},
      {"cipher suites empty", patch(good, cs, u16(0))},
      {"compression methods empty", patch(good, comp, u8(0))},
      {"extensions block too long", patch(good, exts_len, u16(exts.size() + 1))},
      {"extensions block too short", patch(good, exts_len, u16(exts.size() - 1))},
      {"one byte instead of extensions", record(handshake(body("", 0x0303, false) + u8(0)))},
      {"extension past the block", patch(good, sni + 2, u16(exts.size()))},
      {"server_name list too long", patch(good, sni + 4, u16(15))},
      {"server_name list too short", patch(good, sni + 4, u16(11))},
      {"server_name empty list", hello(ext(0, u16(0)))},
      {"server_name no list", hello(ext(0, ""))},
      {"host_name past the list", patch(good, sni + 7, u16(10))},
      {"alpn list too long", patch(good, alpn + 4, u16(4))},
      {"alpn empty protocol", hello(ext(16, u16(1) + u8(0)))},
      {"alpn protocol past the list", patch(good, alpn + 6, u8(3))},
      {"alpn empty list", hello(ext(16, u16(0)))},
      {"supported_versions odd", patch(good, versions + 4, u8(1))},
      {"supported_versions list past the extension", patch(good, versions + 4, u8(4))},
      {"supported_versions empty", hello(ext(43, u8(0)))},
      {"server_name twice", hello(sni_ext("a.example") + sni_ext("b.example"))},
      {"alpn twice", hello(alpn_ext({"h2"}) + alpn_ext({"h2"}))},
      {"supported_versions twice", hello(versions_ext({0x0304}) + versions_ext({0x0303}))},
      {"alert record inside the message", record(hs.substr(0, 10)) + record("\x02\x28", 21)},
      {"second record not TLS", record(hs.substr(0, 10)) + "GET / HTTP/1.1\r\n"},
      {"second record length 0", record(hs.substr(0, 10)) + record("")},
  };
  for (const auto& c : cases) {
    ClientHello h;
    EXPECT_EQ(parse(c.data, &h), HelloStatus::kNotClientHello) << c.what;
    EXPECT_TRUE(h.sni.empty() && h.alpn.empty() && h.max_version == 0) << c.what;
  }
  // Sanity of the offsets above: each patched back to its own value parses.
  EXPECT_EQ(patch(good, sni + 4, u16(12)), good);
  EXPECT_EQ(patch(good, alpn + 4, u16(3)), good);
  EXPECT_EQ(patch(good, versions + 4, u8(2)), good);
}

TEST(TlsClientHello, MalformedLengthIsSeenBeforeTheRestArrives) {
  // A session id of 33 bytes: refused with only the first 45 bytes in.
  std::string data = hello(sni_ext("a.example"));
  data[9 + 34] = 33;
  EXPECT_EQ(parse(std::string_view(data).substr(0, 9 + 35)), HelloStatus::kNotClientHello);
  EXPECT_EQ(parse(std::string_view(data).substr(0, 9 + 34)), HelloStatus::kNeedMore);
}

TEST(TlsClientHello, VersionNames) {
  EXPECT_EQ(version_name(0x0300), "SSLv3");
  EXPECT_EQ(version_name(0x0301), "TLSv1");
  EXPECT_EQ(version_name(0x0302), "TLSv1.1");
  EXPECT_EQ(version_name(0x0303), "TLSv1.2");
  EXPECT_EQ(version_name(0x0304), "TLSv1.3");
  EXPECT_EQ(version_name(0x0305), "");
  EXPECT_EQ(version_name(0x0200), "");
  EXPECT_EQ(version_name(0x7f1c), "");
  EXPECT_EQ(version_name(0), "");
}

}  // namespace
}  // namespace weir::tls
