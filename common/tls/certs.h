#pragma once
// Certificate files: loading and checking a PEM file (certificate, chain, key,
// OCSP response) and what `show ssl certs` says about it.

#include <openssl/x509.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/config/config.h"
#include "common/tls/ssl_util.h"

namespace weir::tls {

struct Problems;

// What `show ssl certs` and /metrics say about one loaded certificate.
struct CertInfo {
  std::string file;
  std::string key_type;  // RSA, ECDSA, Ed25519, ...
  std::string subject;   // /C=../O=../CN=..
  std::string issuer;
  std::string serial;              // upper-case hex
  std::vector<std::string> names;  // DNS subjectAltNames, else the CN
  int64_t not_before = 0;          // Unix seconds
  int64_t not_after = 0;
};

// One loaded certificate file.
struct LoadedCert {
  X509Ptr leaf;
  PkeyPtr key;
  STACK_OF(X509) * chain = nullptr;  // owned
  std::string file;
  std::string ocsp;  // DER
  CertInfo info;
  LoadedCert() = default;
  LoadedCert(LoadedCert&& o) noexcept
      : leaf(std::move(o.leaf)),
        key(std::move(o.key)),
        chain(o.chain),
        file(std::move(o.file)),
        ocsp(std::move(o.ocsp)),
        info(std::move(o.info)) {
    o.chain = nullptr;
  }
  ~LoadedCert() {
    if (chain) sk_X509_pop_free(chain, X509_free);
  }
};

// Loads one PEM file (certificate, chain, key; or the key in <file>.key). Problems
// are reported at `mark`; expired certificates are warnings.
std::optional<LoadedCert> load_cert_file(const std::string& path, const SourceMark& mark,
                                         const std::string& what, const Problems& p);
// The certificate files of a `certificates:` entry: the file, or a directory's
// *.pem and *.crt files in name order.
bool expand_entry(const std::string& entry, std::vector<std::string>* files, std::string* error);
// A certificate's serial number, upper-case hex.
std::string serial_hex(const X509* x);
// Subject/issuer in the /C=../CN=.. form (control characters shown as '?').
std::string name_text(const X509_NAME* name);

}  // namespace weir::tls
