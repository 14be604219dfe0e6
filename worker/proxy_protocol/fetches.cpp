// Fetches of the PROXY protocol header a connection started with (accept_proxy):
// fc_pp says whether one came; the others read its v2 TLVs (none with v1, or
// when the balancer did not send them). Each runs on the SampleSource that
// called it (SampleSource::of).

#include "common/base/registry.h"
#include "worker/proxy_protocol/header.h"
#include "worker/rules/rules.h"

namespace weir {
namespace {

using namespace cond;  // the types of fetches
using proxy_protocol::Header;

void fc_pp(const FetchSpec&, FetchContext& c, std::vector<Sample>& out) {
  push_number(out, SampleSource::of(c).pp ? 1 : 0, Type::kBool);
}

// A text field of the header (nothing when empty, or without a header).
template <std::string Header::*Field>
void text(const FetchSpec&, FetchContext& c, std::vector<Sample>& out) {
  const Header* h = SampleSource::of(c).pp;
  if (h && !(h->*Field).empty()) push_string(out, h->*Field);
}

// A text field of the TLS block.
template <std::string proxy_protocol::Ssl::*Field>
void ssl_text(const FetchSpec&, FetchContext& c, std::vector<Sample>& out) {
  const Header* h = SampleSource::of(c).pp;
  if (h && h->ssl.present && !(h->ssl.*Field).empty()) push_string(out, h->ssl.*Field);
}

// The client spoke TLS to the balancer (the TLS block's client bit 0).
void fc_pp_ssl(const FetchSpec&, FetchContext& c, std::vector<Sample>& out) {
  const Header* h = SampleSource::of(c).pp;
  if (h) push_number(out, h->ssl.present && (h->ssl.client & 0x01) ? 1 : 0, Type::kBool);
}

// The balancer's verdict on the client's certificate (0: verified).
void fc_pp_ssl_verify(const FetchSpec&, FetchContext& c, std::vector<Sample>& out) {
  const Header* h = SampleSource::of(c).pp;
  if (h && h->ssl.present) push_number(out, h->ssl.verify);
}

constexpr FetchScope kConn = FetchScope::kConnection;
constexpr FetchArg kNone = FetchArg::kNone;
constexpr FetchDef kProxyFetches[] = {
    {"fc_pp", Type::kBool, kConn, kNone, false, fc_pp},
    {"fc_pp_authority", Type::kString, kConn, kNone, false, text<&Header::authority>},
    {"fc_pp_unique_id", Type::kString, kConn, kNone, false, text<&Header::unique_id>},
    {"fc_pp_alpn", Type::kString, kConn, kNone, false, text<&Header::alpn>},
    {"fc_pp_ssl", Type::kBool, kConn, kNone, false, fc_pp_ssl},
    {"fc_pp_ssl_verify", Type::kInt, kConn, kNone, false, fc_pp_ssl_verify},
    {"fc_pp_ssl_version", Type::kString, kConn, kNone, false,
     ssl_text<&proxy_protocol::Ssl::version>},
    {"fc_pp_ssl_cn", Type::kString, kConn, kNone, false, ssl_text<&proxy_protocol::Ssl::cn>},
    {"fc_pp_ssl_cipher", Type::kString, kConn, kNone, false,
     ssl_text<&proxy_protocol::Ssl::cipher>},
    {"fc_pp_ssl_sig_alg", Type::kString, kConn, kNone, false,
     ssl_text<&proxy_protocol::Ssl::sig_alg>},
    {"fc_pp_ssl_key_alg", Type::kString, kConn, kNone, false,
     ssl_text<&proxy_protocol::Ssl::key_alg>},
};
const Registrar<FetchDef> kRegister(kProxyFetches);

}  // namespace
}  // namespace weir
