#include "common/tls/certs.h"

#include <dirent.h>
#include <openssl/err.h>
#include <openssl/ocsp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>

#include "common/tls/tls_context.h"

namespace weir::tls {
namespace {

std::string key_type_name(const EVP_PKEY* k) {
  switch (EVP_PKEY_get_base_id(k)) {
    case EVP_PKEY_RSA:
    case EVP_PKEY_RSA_PSS:
      return "RSA";
    case EVP_PKEY_EC:
      return "ECDSA";
    case EVP_PKEY_ED25519:
      return "Ed25519";
    case EVP_PKEY_ED448:
      return "Ed448";
  }
  return "other";
}

std::vector<std::string> cert_names(X509* x) {
  std::vector<std::string> names;
  auto* sans =
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(x, NID_subject_alt_name, nullptr, nullptr));
  if (sans) {
    for (int i = 0; i < sk_GENERAL_NAME_num(sans); ++i) {
      const GENERAL_NAME* g = sk_GENERAL_NAME_value(sans, i);
      if (g->type != GEN_DNS) continue;
      const ASN1_STRING* s = g->d.dNSName;
      names.push_back(
          lower(std::string_view(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                                 static_cast<size_t>(ASN1_STRING_length(s)))));
    }
    GENERAL_NAMES_free(sans);
  }
  if (names.empty()) {
    X509_NAME* subj = X509_get_subject_name(x);
    int idx = X509_NAME_get_index_by_NID(subj, NID_commonName, -1);
    if (idx >= 0) {
      const ASN1_STRING* s = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subj, idx));
      names.push_back(
          lower(std::string_view(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                                 static_cast<size_t>(ASN1_STRING_length(s)))));
    }
  }
  return names;
}

}  // namespace

std::string serial_hex(const X509* x) {
  const ASN1_INTEGER* serial = X509_get0_serialNumber(x);
  BIGNUM* bn = ASN1_INTEGER_to_BN(serial, nullptr);
  if (!bn) return "";
  char* hex = BN_bn2hex(bn);
  std::string out = hex ? hex : "";
  OPENSSL_free(hex);
  BN_free(bn);
  return out;
}

std::optional<LoadedCert> load_cert_file(const std::string& path, const SourceMark& mark,
                                         const std::string& what, const Problems& p) {
  LoadedCert c;
  c.file = path;
  BioPtr bio(BIO_new_file(path.c_str(), "r"));
  if (!bio) {
    ERR_clear_error();
    p.error(mark, what + ": cannot read " + path + ": " + std::strerror(errno ? errno : ENOENT));
    return std::nullopt;
  }
  c.leaf.reset(PEM_read_bio_X509_AUX(bio.get(), nullptr, nullptr, nullptr));
  if (!c.leaf) {
    ERR_clear_error();
    p.error(mark, what + ": " + path + " holds no PEM certificate");
    return std::nullopt;
  }
  c.chain = sk_X509_new_null();
  while (X509* x = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) {
    sk_X509_push(c.chain, x);
  }
  ERR_clear_error();
  // The key: in the same file, else in <file>.key.
  BioPtr kb(BIO_new_file(path.c_str(), "r"));
  if (kb) c.key.reset(PEM_read_bio_PrivateKey(kb.get(), nullptr, nullptr, nullptr));
  ERR_clear_error();
  std::string key_file = path + ".key";
  if (!c.key) {
    BioPtr kf(BIO_new_file(key_file.c_str(), "r"));
    if (kf) c.key.reset(PEM_read_bio_PrivateKey(kf.get(), nullptr, nullptr, nullptr));
    ERR_clear_error();
  }
  if (!c.key) {
    p.error(mark, what + ": " + path + ": no private key in the file nor in " + key_file);
    return std::nullopt;
  }
  if (X509_check_private_key(c.leaf.get(), c.key.get()) != 1) {
    ERR_clear_error();
    p.error(mark, what + ": " + path + ": the private key does not match the certificate");
    return std::nullopt;
  }
  // Each certificate of the chain must be signed by the next one.
  X509* cur = c.leaf.get();
  for (int i = 0; i < sk_X509_num(c.chain); ++i) {
    X509* issuer = sk_X509_value(c.chain, i);
    if (X509_check_issued(issuer, cur) != X509_V_OK ||
        X509_verify(cur, X509_get0_pubkey(issuer)) != 1) {
      ERR_clear_error();
      p.error(mark, what + ": " + path + ": bad chain: certificate " + std::to_string(i + 2) +
                        " of the file (" + name_text(X509_get_subject_name(issuer)) +
                        ") did not sign the one before it (" +
                        name_text(X509_get_subject_name(cur)) + ")");
      return std::nullopt;
    }
    cur = issuer;
  }
  CertInfo& info = c.info;
  info.file = path;
  info.key_type = key_type_name(c.key.get());
  info.subject = name_text(X509_get_subject_name(c.leaf.get()));
  info.issuer = name_text(X509_get_issuer_name(c.leaf.get()));
  info.serial = serial_hex(c.leaf.get());
  info.names = cert_names(c.leaf.get());
  info.not_before = asn1_time_unix(X509_get0_notBefore(c.leaf.get()));
  info.not_after = asn1_time_unix(X509_get0_notAfter(c.leaf.get()));
  int64_t now = static_cast<int64_t>(time(nullptr));
  if (info.not_after < now) {
    p.warn(mark, what + ": " + path + ": the certificate (" + info.subject + ") has expired");
  } else if (info.not_before > now) {
    p.warn(mark, what + ": " + path + ": the certificate (" + info.subject + ") is not valid yet");
  }
  if (info.names.empty()) {
    p.warn(mark, what + ": " + path + ": the certificate names no host (no DNS SAN, no CN)");
  }
  std::string ocsp_file = path + ".ocsp";
  struct stat st {};
  if (::stat(ocsp_file.c_str(), &st) == 0) {
    if (!read_file(ocsp_file, &c.ocsp) || c.ocsp.empty()) {
      p.error(mark, what + ": cannot read " + ocsp_file);
      return std::nullopt;
    }
    const auto* der = reinterpret_cast<const unsigned char*>(c.ocsp.data());
    OCSP_RESPONSE* resp = d2i_OCSP_RESPONSE(nullptr, &der, static_cast<long>(c.ocsp.size()));
    if (!resp) {
      ERR_clear_error();
      p.error(mark, what + ": " + ocsp_file + " is not a DER OCSP response");
      return std::nullopt;
    }
    OCSP_RESPONSE_free(resp);
  }
  return c;
}

bool expand_entry(const std::string& entry, std::vector<std::string>* files, std::string* error) {
  struct stat st {};
  if (::stat(entry.c_str(), &st) != 0) {
    *error = "cannot read " + entry + ": " + std::strerror(errno);
    return false;
  }
  if (!S_ISDIR(st.st_mode)) {
    files->push_back(entry);
    return true;
  }
  DIR* d = ::opendir(entry.c_str());
  if (!d) {
    *error = "cannot read the directory " + entry + ": " + std::strerror(errno);
    return false;
  }
  std::vector<std::string> found;
  while (dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    if (name.empty() || name[0] == '.') continue;
    auto ends = [&](std::string_view suf) {
      return name.size() > suf.size() &&
             name.compare(name.size() - suf.size(), suf.size(), suf) == 0;
    };
    if (!ends(".pem") && !ends(".crt")) continue;
    found.push_back((entry.back() == '/' ? entry : entry + "/") + name);
  }
  ::closedir(d);
  std::sort(found.begin(), found.end());
  if (found.empty()) {
    *error = "the directory " + entry + " holds no *.pem or *.crt file";
    return false;
  }
  files->insert(files->end(), found.begin(), found.end());
  return true;
}

std::string name_text(const X509_NAME* name) {
  if (!name) return "";
  std::string out;
  for (int i = 0; i < X509_NAME_entry_count(name); ++i) {
    const X509_NAME_ENTRY* e = X509_NAME_get_entry(name, i);
    int nid = OBJ_obj2nid(X509_NAME_ENTRY_get_object(e));
    const char* sn = nid != NID_undef ? OBJ_nid2sn(nid) : "?";
    const ASN1_STRING* v = X509_NAME_ENTRY_get_data(e);
    unsigned char* utf8 = nullptr;
    int len = ASN1_STRING_to_UTF8(&utf8, v);
    out += '/';
    out += sn;
    out += '=';
    for (int j = 0; j < len; ++j) {
      unsigned char ch = utf8[j];
      out.push_back(ch < 0x20 || ch == 0x7f ? '?' : static_cast<char>(ch));
    }
    OPENSSL_free(utf8);
  }
  return out;
}

}  // namespace weir::tls
