// Fetches of TLS: the client connection's handshake (ssl_fc, ssl_sni,
// ssl_version, ssl_cipher, ssl_alpn, ssl_c_*) and, in tcp mode, the ClientHello
// read before any handshake (req_ssl_sni, req_ssl_ver, req_ssl_hello). Each runs on
// the SampleSource that called it (SampleSource::of).

#include "common/base/registry.h"
#include "worker/rules/rules.h"
#include "worker/tls/tls.h"

namespace weir {
namespace {

using namespace cond;  // the types of fetches

void push_nonempty(std::vector<Sample>& out, std::string_view v) {
  if (!v.empty()) push_string(out, v);
}

void ssl_fc(const FetchSpec&, FetchContext& c, std::vector<Sample>& out) {
  push_number(out, SampleSource::of(c).tls_client ? 1 : 0, Type::kBool);
}

// A fact of the client connection's finished handshake (none before, or without TLS).
template <auto Read>
void handshake(const FetchSpec&, FetchContext& c, std::vector<Sample>& out) {
  if (const SSL* ssl = SampleSource::of(c).ssl) Read(ssl, out);
}

// A fact of the client certificate (none without one).
template <std::string (*Read)(const SSL*)>
void certificate(const FetchSpec&, FetchContext& c, std::vector<Sample>& out) {
  const SSL* ssl = SampleSource::of(c).ssl;
  if (ssl && tls::peer_cert_used(ssl)) push_owned(out, Read(ssl));
}

void sni(const SSL* ssl, std::vector<Sample>& out) {
  push_nonempty(out, tls::sni(ssl));
}
void version(const SSL* ssl, std::vector<Sample>& out) {
  push_string(out, tls::version_name(ssl));
}
void cipher(const SSL* ssl, std::vector<Sample>& out) {
  push_string(out, tls::cipher_name(ssl));
}
void alpn(const SSL* ssl, std::vector<Sample>& out) {
  push_nonempty(out, tls::alpn(ssl));
}
void cert_used(const SSL* ssl, std::vector<Sample>& out) {
  push_number(out, tls::peer_cert_used(ssl) ? 1 : 0, Type::kBool);
}
void cert_verify(const SSL* ssl, std::vector<Sample>& out) {
  push_number(out, tls::peer_verify_result(ssl));
}

void req_ssl_sni(const FetchSpec&, FetchContext& c, std::vector<Sample>& out) {
  if (SampleSource::of(c).hello) push_nonempty(out, SampleSource::of(c).hello_sni);
}
void req_ssl_ver(const FetchSpec&, FetchContext& c, std::vector<Sample>& out) {
  if (SampleSource::of(c).hello) push_nonempty(out, SampleSource::of(c).hello_version);
}
void req_ssl_hello(const FetchSpec&, FetchContext& c, std::vector<Sample>& out) {
  push_number(out, SampleSource::of(c).hello ? 1 : 0, Type::kBool);
}

constexpr FetchScope kConn = FetchScope::kConnection;
constexpr FetchArg kNone = FetchArg::kNone;
constexpr FetchDef kTlsFetches[] = {
    {"ssl_fc", Type::kBool, kConn, kNone, false, ssl_fc},
    {"ssl_sni", Type::kString, kConn, kNone, false, handshake<sni>},
    {"ssl_version", Type::kString, kConn, kNone, false, handshake<version>},
    {"ssl_cipher", Type::kString, kConn, kNone, false, handshake<cipher>},
    {"ssl_alpn", Type::kString, kConn, kNone, false, handshake<alpn>},
    {"ssl_c_used", Type::kBool, kConn, kNone, false, handshake<cert_used>},
    {"ssl_c_verify", Type::kInt, kConn, kNone, false, handshake<cert_verify>},
    {"ssl_c_s_dn", Type::kString, kConn, kNone, false, certificate<tls::peer_subject>},
    {"ssl_c_i_dn", Type::kString, kConn, kNone, false, certificate<tls::peer_issuer>},
    {"ssl_c_serial", Type::kString, kConn, kNone, false, certificate<tls::peer_serial>},
    {"req_ssl_sni", Type::kString, kConn, kNone, false, req_ssl_sni},
    {"req_ssl_ver", Type::kString, kConn, kNone, false, req_ssl_ver},
    {"req_ssl_hello", Type::kBool, kConn, kNone, false, req_ssl_hello},
};
const Registrar<FetchDef> kRegister(kTlsFetches);

}  // namespace
}  // namespace weir
