#pragma once
// TLS session ticket keys. The master makes a secret at start (or reads
// global.tls_ticket_secret_file) and hands it to every worker generation; every
// thread of every generation derives the same per-hour keys from it, so
// tickets survive reloads and work across cluster nodes that share the file.

#include <openssl/ssl.h>

#include <string>
#include <string_view>

namespace weir::tls {

// The secret ticket keys are derived from (at least 32 bytes).
void set_ticket_secret(std::string_view secret);
std::string random_secret();
// Reads a secret file; false with *error when it is unreadable or too short.
bool read_secret_file(const std::string& path, std::string* out, std::string* error);

// OpenSSL's ticket key callback (SSL_CTX_set_tlsext_ticket_key_evp_cb): encrypts
// with the current hour's key, accepts the previous two and the next.
int ticket_key_cb(SSL* ssl, unsigned char key_name[16], unsigned char iv[EVP_MAX_IV_LENGTH],
                  EVP_CIPHER_CTX* cctx, EVP_MAC_CTX* hctx, int enc);

}  // namespace weir::tls
