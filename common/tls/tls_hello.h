#pragma once
// The TLS ClientHello read from the first bytes a client sends, for tcp-mode content
// inspection (req_ssl_sni, req_ssl_ver, req_ssl_hello) without decrypting anything.
//
// parse_client_hello() is pure: it looks at the bytes received so far and says whether
// they are (a prefix of) a ClientHello. It never reads outside `data`, keeps no state
// between calls (call it again on the grown buffer) and allocates only for the values it
// returns, plus one copy of the handshake message when that message is split over
// several TLS records.
//
// What is accepted:
// - Records: content type 22 (handshake), version major 3 (any minor), a length of
//   1..16384+2048 bytes. Every record up to the end of the ClientHello must be one; the
//   message may be split over any number of them. Bytes after the end of the ClientHello
//   (in its last record or after it) are not looked at.
// - The handshake message: type 1 (client_hello), a body of 41..65536 bytes. Every length
//   inside it is checked against the structure that contains it: session_id <= 32 bytes,
//   cipher_suites non-empty and even, compression_methods non-empty, the extensions block
//   (optional, as in SSLv3 hellos) ending exactly at the end of the message, every
//   extension inside it. server_name, supported_versions and
//   application_layer_protocol_negotiation must be well formed (non-empty lists whose
//   lengths add up, no empty ALPN protocol name) and appear at most once.
// - A malformed length is seen as soon as it has arrived: the verdict is then
//   kNotClientHello even if the rest of the message is still to come. Any prefix of a
//   valid ClientHello (including the empty input) is kNeedMore.
// - SSLv2-format hellos, plain text (HTTP, ...) and any other record type are
//   kNotClientHello.
//
// The SNI rule: the first entry of name_type 0 (host_name) in server_name is the SNI;
// entries of other types are skipped. It is kept only when it is 1..255 bytes long and
// every byte is one of [A-Za-z0-9.-_*]; it is then lower-cased. A name that breaks this
// rule (a NUL byte, a space, a UTF-8 byte, a control character, ...) is treated as no SNI
// at all (sni empty, the ClientHello is still kComplete): routing then falls back to the
// default, and nothing odd ever reaches logs or ACLs.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace weir::tls {

// Largest record payload accepted (TLSCiphertext limit: 2^14 + 2048).
inline constexpr size_t kMaxRecordLength = 16384 + 2048;
// Largest ClientHello body accepted (the 4-byte handshake header excluded).
inline constexpr size_t kMaxClientHelloLength = 65536;
// Longest SNI kept.
inline constexpr size_t kMaxSniLength = 255;

struct ClientHello {
  std::string sni;                // host_name from server_name, lower-cased; empty if none
  uint16_t legacy_version = 0;    // client_version field
  uint16_t max_version = 0;       // highest of supported_versions (GREASE ignored) if it
                                  // names one, else legacy_version
  std::vector<std::string> alpn;  // protocols offered, in order (bytes as sent)
};

enum class HelloStatus {
  kNeedMore,        // a valid prefix of a ClientHello: wait for more bytes
  kComplete,        // `out` filled
  kNotClientHello,  // not a TLS handshake record carrying a well-formed ClientHello
};

// data: the bytes received so far, from the first byte of the connection. `out` is
// filled on kComplete and left empty (default values) otherwise.
HelloStatus parse_client_hello(std::string_view data, ClientHello& out);

// "SSLv3", "TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3"; "" for any other value.
std::string_view version_name(uint16_t v);

}  // namespace weir::tls
