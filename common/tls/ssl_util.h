#pragma once
// Small OpenSSL helpers shared by the TLS code of common/tls and worker/tls.

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace weir::tls {

struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};
struct PkeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
using BioPtr = std::unique_ptr<BIO, BioFree>;
using X509Ptr = std::unique_ptr<X509, X509Free>;
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyFree>;

// The last OpenSSL error of this thread in words (and clears the queue).
std::string openssl_error();
// An ASN.1 time as Unix seconds (0 when absent or unreadable).
int64_t asn1_time_unix(const ASN1_TIME* t);
// ASCII lower case.
std::string lower(std::string_view s);
// The whole file; false when it cannot be read.
bool read_file(const std::string& path, std::string* out);

}  // namespace weir::tls
