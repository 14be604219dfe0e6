// The send side of the PROXY protocol (send.h).
#include "worker/proxy_protocol/send.h"

#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <sys/socket.h>

#include "common/base/hex.h"
#include "worker/tls/tls.h"

namespace weir::proxy_protocol {
namespace {

// The client certificate's subject CN, signature and key algorithms, as
// HAProxy's TLS block spells them ("RSA-SHA256", "RSA2048", "EC256").
void certificate_facts(const SSL* ssl, Ssl* out) {
  X509* x = SSL_get0_peer_certificate(ssl);
  if (!x) return;
  char cn[256];
  const int n = X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, cn, sizeof cn);
  if (n > 0) out->cn.assign(cn, static_cast<size_t>(n));
  if (const char* sig = OBJ_nid2sn(X509_get_signature_nid(x))) out->sig_alg = sig;
  if (EVP_PKEY* key = X509_get0_pubkey(x)) {
    const char* alg = OBJ_nid2sn(EVP_PKEY_get_base_id(key));
    if (EVP_PKEY_get_base_id(key) == EVP_PKEY_EC) alg = "EC";
    if (alg) out->key_alg = std::string(alg) + std::to_string(EVP_PKEY_get_bits(key));
  }
}

// A fresh id for a connection that brought none: 128 random bits, in hex.
std::string random_id() {
  unsigned char bytes[16];
  if (RAND_bytes(bytes, sizeof bytes) != 1) return std::string();
  return to_hex(bytes, sizeof bytes);
}

}  // namespace

std::string header_for_client(const SendProxyConfig& cfg, const SockAddr& client,
                              const SockAddr* local, const SSL* ssl, const Header* received) {
  Header h;
  h.version = cfg.version;
  h.src = client;
  if (local) {
    h.dst = *local;
  } else {
    h.local = true;  // without both addresses the header names none
  }
  if (cfg.version != 2) return encode(h);
  if (cfg.alpn) {
    if (ssl) h.alpn = std::string(tls::alpn(ssl));
    if (h.alpn.empty() && received) h.alpn = received->alpn;
  }
  if (cfg.authority) {
    if (ssl) h.authority = std::string(tls::sni(ssl));
    if (h.authority.empty() && received) h.authority = received->authority;
  }
  if (cfg.ssl) {
    if (ssl) {
      h.ssl.present = true;
      h.ssl.client = 0x01;                                        // the client spoke TLS
      if (tls::peer_cert_used(ssl)) h.ssl.client |= 0x02 | 0x04;  // with a certificate
      h.ssl.verify = static_cast<uint32_t>(tls::peer_verify_result(ssl));
      h.ssl.version = std::string(tls::version_name(ssl));
      h.ssl.cipher = std::string(tls::cipher_name(ssl));
      certificate_facts(ssl, &h.ssl);
    } else if (received && received->ssl.present) {
      h.ssl = received->ssl;
    } else {
      h.ssl.present = true;  // client 0: not TLS (the block says so)
    }
  }
  if (cfg.unique_id) {
    h.unique_id = received && !received->unique_id.empty() ? received->unique_id : random_id();
  }
  return encode(h);
}

int check_version(const ServerConfig& server) {
  const int traffic = server.send_proxy.version;
  if (server.send_proxy.checks) return *server.send_proxy.checks ? (traffic ? traffic : 1) : 0;
  return !server.check.addr && server.check.port == 0 ? traffic : 0;
}

std::string header_for_check(int version, int fd, const SockAddr& to) {
  Header h;
  h.version = version;
  h.dst = to;
  h.src.len = sizeof h.src.storage;
  if (version == 2 || ::getsockname(fd, h.src.sa(), &h.src.len) != 0) h.local = true;
  return encode(h);
}

}  // namespace weir::proxy_protocol
