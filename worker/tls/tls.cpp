#include "worker/tls/tls.h"

#include <dirent.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/ocsp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <fstream>
#include <mutex>
#include <set>
#include <sstream>

#include "common/base/log.h"

namespace weir::tls {
namespace {

// ---- small OpenSSL helpers --------------------------------------------------

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
std::string openssl_error() {
  unsigned long e = ERR_peek_last_error();
  std::string out;
  if (e) {
    const char* reason = ERR_reason_error_string(e);
    out = reason ? reason : "error " + std::to_string(e);
  }
  ERR_clear_error();
  return out.empty() ? "unknown OpenSSL error" : out;
}

int64_t asn1_time_unix(const ASN1_TIME* t) {
  struct tm tm {};
  if (!t || ASN1_TIME_to_tm(t, &tm) != 1) return 0;
  return static_cast<int64_t>(timegm(&tm));
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// ---- ticket keys ------------------------------------------------------------

std::mutex g_secret_mutex;
std::string g_secret;                   // guarded by g_secret_mutex
std::atomic<uint64_t> g_secret_gen{0};  // bumped at each change

constexpr int64_t kTicketEpochSeconds = 3600;

struct TicketKey {
  unsigned char name[16];
  unsigned char aes[32];
  unsigned char hmac[32];
};

void derive(const std::string& secret, int64_t epoch, TicketKey* k) {
  auto part = [&](const char* label, unsigned char* out, size_t len) {
    std::string msg = std::string("weir ticket ") + label + " " + std::to_string(epoch);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
         reinterpret_cast<const unsigned char*>(msg.data()), msg.size(), md, &mdlen);
    std::memcpy(out, md, std::min<size_t>(len, mdlen));
  };
  part("name", k->name, sizeof k->name);
  part("aes", k->aes, sizeof k->aes);
  part("hmac", k->hmac, sizeof k->hmac);
}

// Per thread: the keys of the current epoch and its neighbours, derived once an hour.
struct ThreadKeys {
  uint64_t gen = ~0ULL;
  int64_t epoch = INT64_MIN;
  TicketKey keys[4];  // epoch, epoch - 1, epoch - 2, epoch + 1 (a clock ahead elsewhere)
};
thread_local ThreadKeys t_keys;

const ThreadKeys& current_keys() {
  int64_t epoch = static_cast<int64_t>(time(nullptr)) / kTicketEpochSeconds;
  uint64_t gen = g_secret_gen.load(std::memory_order_acquire);
  if (t_keys.epoch != epoch || t_keys.gen != gen) {
    std::string secret;
    {
      std::lock_guard<std::mutex> lock(g_secret_mutex);
      secret = g_secret;
    }
    if (secret.empty()) secret = "weir: no secret was set";  // tests of the parser only
    const int64_t offsets[4] = {0, -1, -2, 1};
    for (int i = 0; i < 4; ++i) derive(secret, epoch + offsets[i], &t_keys.keys[i]);
    t_keys.epoch = epoch;
    t_keys.gen = gen;
  }
  return t_keys;
}

EVP_CIPHER* aes256cbc() {
  static EVP_CIPHER* c = EVP_CIPHER_fetch(nullptr, "AES-256-CBC", nullptr);
  return c;
}

int ticket_key_cb(SSL* ssl, unsigned char key_name[16], unsigned char iv[EVP_MAX_IV_LENGTH],
                  EVP_CIPHER_CTX* cctx, EVP_MAC_CTX* hctx, int enc) {
  const ThreadKeys& tk = current_keys();
  const TicketKey* k = nullptr;
  int ret = 1;
  if (enc) {
    k = &tk.keys[0];
    std::memcpy(key_name, k->name, 16);
    if (RAND_bytes(iv, 16) != 1) return -1;
    if (EVP_EncryptInit_ex(cctx, aes256cbc(), nullptr, k->aes, iv) != 1) return -1;
  } else {
    for (int i = 0; i < 4; ++i) {
      if (std::memcmp(key_name, tk.keys[i].name, 16) == 0) {
        k = &tk.keys[i];
        // 2: valid, and a new ticket follows. TLS 1.3 always wants one (OpenSSL
        // sends none after a resumption otherwise, and clients use each ticket
        // once); TLS 1.2 only when the key is not the current one.
        ret = (i == 0 && SSL_version(ssl) < TLS1_3_VERSION) ? 1 : 2;
        break;
      }
    }
    if (!k) return 0;  // unknown key: a full handshake
    if (EVP_DecryptInit_ex(cctx, aes256cbc(), nullptr, k->aes, iv) != 1) return -1;
  }
  char digest[] = "SHA256";
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, const_cast<unsigned char*>(k->hmac),
                                        sizeof k->hmac),
      OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
      OSSL_PARAM_construct_end()};
  if (EVP_MAC_CTX_set_params(hctx, params) != 1) return -1;
  return ret;
}

// ---- certificates -----------------------------------------------------------

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

bool read_file(const std::string& path, std::string* out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  std::stringstream ss;
  ss << in.rdbuf();
  *out = ss.str();
  return true;
}

// Loads one PEM file (certificate, chain, key; or the key in <file>.key). Problems
// are reported at `mark`; expired certificates are warnings.
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

// The certificate files of a `certificates:` entry: the file, or a directory's
// *.pem and *.crt files in name order.
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

std::string alpn_wire(const std::vector<std::string>& protos) {
  std::string out;
  for (const std::string& p : protos) {
    out.push_back(static_cast<char>(p.size()));
    out += p;
  }
  return out;
}

int alpn_select_cb(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in,
                   unsigned int inlen, void* arg) {
  const std::string& ours = *static_cast<const std::string*>(arg);
  unsigned char* sel = nullptr;
  if (SSL_select_next_proto(&sel, outlen, reinterpret_cast<const unsigned char*>(ours.data()),
                            static_cast<unsigned int>(ours.size()), in,
                            inlen) != OPENSSL_NPN_NEGOTIATED) {
    return SSL_TLSEXT_ERR_NOACK;  // no protocol in common: go on without ALPN
  }
  *out = sel;
  return SSL_TLSEXT_ERR_OK;
}

int servername_cb(SSL* ssl, int*, void* arg) {
  const auto* fc = static_cast<const FrontContext*>(arg);
  const char* name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
  if (!name) return SSL_TLSEXT_ERR_OK;
  SSL_CTX* want = fc->select(lower(name));
  if (want != SSL_get_SSL_CTX(ssl)) SSL_set_SSL_CTX(ssl, want);
  return SSL_TLSEXT_ERR_OK;
}

// verify: optional: the handshake goes on whatever the verdict; ssl_c_verify tells.
int verify_optional_cb(int, X509_STORE_CTX*) {
  return 1;
}

bool readable(const std::string& path, std::string* why) {
  FILE* f = std::fopen(path.c_str(), "r");
  if (!f) {
    *why = "cannot read " + path + ": " + std::strerror(errno);
    return false;
  }
  std::fclose(f);
  return true;
}

bool load_crls(X509_STORE* store, const std::string& path, std::string* error) {
  BioPtr bio(BIO_new_file(path.c_str(), "r"));
  if (!bio) {
    ERR_clear_error();
    *error = "cannot read " + path + ": " + std::strerror(errno ? errno : ENOENT);
    return false;
  }
  int count = 0;
  while (X509_CRL* crl = PEM_read_bio_X509_CRL(bio.get(), nullptr, nullptr, nullptr)) {
    X509_STORE_add_crl(store, crl);
    X509_CRL_free(crl);
    ++count;
  }
  ERR_clear_error();
  if (count == 0) {
    *error = path + " holds no PEM revocation list";
    return false;
  }
  X509_STORE_set_flags(store, X509_V_FLAG_CRL_CHECK | X509_V_FLAG_CRL_CHECK_ALL);
  return true;
}

int new_session_cb(SSL* ssl, SSL_SESSION* sess);
int g_slot_index = -1;
std::once_flag g_slot_once;
int slot_index() {
  std::call_once(g_slot_once, [] {
    g_slot_index = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  });
  return g_slot_index;
}

int new_session_cb(SSL* ssl, SSL_SESSION* sess) {
  auto* slot = static_cast<SessionSlot*>(SSL_get_ex_data(ssl, slot_index()));
  if (!slot) return 0;
  const char* name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
  slot->replace(sess, name ? std::string_view(name) : std::string_view());
  return 1;  // the slot holds the reference
}

// ---- the socket BIO ---------------------------------------------------------
// OpenSSL's socket BIO, plus one fact: whether the last recv() returned less
// than asked (the socket is drained, so its next data brings a new edge). A read
// that has emptied OpenSSL's buffers then needs no extra recv() just to see EAGAIN.

struct SockBio {
  int fd = -1;
  bool drained = false;
};

int sock_bio_read(BIO* b, char* buf, int len) {
  auto* sb = static_cast<SockBio*>(BIO_get_data(b));
  BIO_clear_retry_flags(b);
  ssize_t n = ::recv(sb->fd, buf, static_cast<size_t>(len), 0);
  if (n < 0) {
    sb->drained = errno == EAGAIN || errno == EWOULDBLOCK;
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) BIO_set_retry_read(b);
    return -1;
  }
  sb->drained = n < len;
  return static_cast<int>(n);
}

int sock_bio_write(BIO* b, const char* buf, int len) {
  auto* sb = static_cast<SockBio*>(BIO_get_data(b));
  BIO_clear_retry_flags(b);
  ssize_t n = ::send(sb->fd, buf, static_cast<size_t>(len), MSG_NOSIGNAL);
  if (n < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) BIO_set_retry_write(b);
    return -1;
  }
  return static_cast<int>(n);
}

long sock_bio_ctrl(BIO*, int cmd, long, void*) {
  switch (cmd) {
    case BIO_CTRL_FLUSH:
    case BIO_CTRL_PUSH:
    case BIO_CTRL_POP:
      return 1;
    default:
      return 0;
  }
}

int sock_bio_destroy(BIO* b) {
  delete static_cast<SockBio*>(BIO_get_data(b));
  BIO_set_data(b, nullptr);
  return 1;
}

BIO_METHOD* sock_bio_method() {
  static BIO_METHOD* m = [] {
    BIO_METHOD* bm = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "weir socket");
    BIO_meth_set_read(bm, sock_bio_read);
    BIO_meth_set_write(bm, sock_bio_write);
    BIO_meth_set_ctrl(bm, sock_bio_ctrl);
    BIO_meth_set_destroy(bm, sock_bio_destroy);
    return bm;
  }();
  return m;
}

// Attaches `fd` to `ssl` through the BIO above; false when out of memory.
bool attach_socket(SSL* ssl, int fd) {
  BIO* b = BIO_new(sock_bio_method());
  if (!b) return false;
  BIO_set_data(b, new SockBio{fd, false});
  BIO_set_init(b, 1);
  SSL_set_bio(ssl, b, b);
  return true;
}

bool socket_drained(const SSL* ssl) {
  const auto* sb = static_cast<const SockBio*>(BIO_get_data(SSL_get_rbio(ssl)));
  return sb && sb->drained;
}

}  // namespace

// ---- public helpers ---------------------------------------------------------

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

namespace {
// 10 lines per second per thread; true when this one may be logged.
bool log_budget() {
  thread_local int64_t second = 0;
  thread_local int used = 0;
  int64_t now = static_cast<int64_t>(time(nullptr));
  if (now != second) {
    second = now;
    used = 0;
  }
  return ++used <= 10;
}
}  // namespace

void note_handshake_failure(const std::string& frontend, const std::string& peer,
                            const std::string& why) {
  if (!log_budget()) return;
  log::warning("frontend '%s': TLS handshake with %s failed: %s", frontend.c_str(), peer.c_str(),
               why.c_str());
}

void note_server_failure(const std::string& backend, const std::string& server,
                         const std::string& why) {
  if (!log_budget()) return;
  log::warning("server %s/%s: TLS handshake failed: %s", backend.c_str(), server.c_str(),
               why.c_str());
}

void Problems::error(const SourceMark& m, std::string msg) const {
  if (errors) errors->push_back({file, m.line, m.column, std::move(msg)});
}
void Problems::warn(const SourceMark& m, std::string msg) const {
  if (warnings) warnings->push_back({file, m.line, m.column, std::move(msg)});
}

void set_ticket_secret(std::string_view secret) {
  std::lock_guard<std::mutex> lock(g_secret_mutex);
  g_secret.assign(secret);
  g_secret_gen.fetch_add(1, std::memory_order_release);
}

std::string random_secret() {
  std::string s(32, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(s.data()), static_cast<int>(s.size())) != 1) {
    ERR_clear_error();
    // RAND_bytes does not fail on Linux with a seeded kernel; keep going with
    // something unpredictable enough rather than refusing to start.
    std::ifstream in("/dev/urandom", std::ios::binary);
    in.read(s.data(), static_cast<std::streamsize>(s.size()));
  }
  return s;
}

bool read_secret_file(const std::string& path, std::string* out, std::string* error) {
  if (!read_file(path, out)) {
    *error = "cannot read " + path + ": " + std::strerror(errno);
    return false;
  }
  if (out->size() < 32) {
    *error = path + " holds " + std::to_string(out->size()) +
             " bytes; at least 32 random bytes are needed";
    return false;
  }
  return true;
}

// ---- FrontContext -----------------------------------------------------------

int ocsp_status_cb(SSL* ssl, void* arg) {
  const auto* fc = static_cast<const FrontContext*>(arg);
  X509* leaf = SSL_get_certificate(ssl);
  auto it = fc->ocsp_.find(leaf);
  if (it == fc->ocsp_.end()) return SSL_TLSEXT_ERR_NOACK;
  auto* copy = static_cast<unsigned char*>(OPENSSL_malloc(it->second.size()));
  if (!copy) return SSL_TLSEXT_ERR_NOACK;
  std::memcpy(copy, it->second.data(), it->second.size());
  SSL_set_tlsext_status_ocsp_resp(ssl, copy, static_cast<long>(it->second.size()));
  return SSL_TLSEXT_ERR_OK;
}

// What both sides set the same way: versions, options, I/O modes, ciphers.
// `Cfg` is TlsBindConfig or TlsServerConfig. False when a setting is refused.
template <typename Cfg>
bool common_settings(SSL_CTX* ctx, const Cfg& cfg, uint64_t extra_options, const std::string& what,
                     const Problems& p) {
  SSL_CTX_set_min_proto_version(ctx, cfg.min_version);
  SSL_CTX_set_max_proto_version(ctx, cfg.max_version);
  SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION |
                               SSL_OP_IGNORE_UNEXPECTED_EOF | extra_options);
  // Partial and moving writes: Connection::writev's contract; buffers released
  // while a connection is idle.
  SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                            SSL_MODE_RELEASE_BUFFERS);
  SSL_CTX_set_read_ahead(ctx, 1);
  bool ok = true;
  if (!cfg.ciphers.empty() && SSL_CTX_set_cipher_list(ctx, cfg.ciphers.c_str()) != 1) {
    p.error(cfg.mark, what + ": ciphers " + cfg.ciphers + ": " + openssl_error());
    ok = false;
  }
  if (!cfg.ciphersuites.empty() && SSL_CTX_set_ciphersuites(ctx, cfg.ciphersuites.c_str()) != 1) {
    p.error(cfg.mark, what + ": ciphersuites " + cfg.ciphersuites + ": " + openssl_error());
    ok = false;
  }
  return ok;
}

struct FrontBuilder {
  FrontContext& fc;
  const Problems& p;
  const std::string what;

  // Everything but the certificates; the same on every context of the bind.
  SSL_CTX* new_ctx() {
    const TlsBindConfig& cfg = fc.cfg_;
    SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx) {
      p.error(cfg.mark, what + ": " + openssl_error());
      return nullptr;
    }
    fc.ctxs_.push_back(ctx);
    uint64_t opts = SSL_OP_CIPHER_SERVER_PREFERENCE;
    if (!cfg.session_tickets) opts |= SSL_OP_NO_TICKET;
    bool ok = common_settings(ctx, cfg, opts, what, p);
    if (!cfg.curves.empty() && SSL_CTX_set1_groups_list(ctx, cfg.curves.c_str()) != 1) {
      p.error(cfg.mark, what + ": curves " + cfg.curves + ": " + openssl_error());
      ok = false;
    }
    // Sessions: the id context names what a resumption skips, the client
    // certificate check: binds (and cluster nodes) with the same verify
    // settings resume each other's sessions, a bind that checks clients never
    // resumes a session made without that check.
    std::string what_is_checked = "weir verify=" + std::to_string(static_cast<int>(cfg.verify)) +
                                  " ca=" + cfg.ca_file + " crl=" + cfg.crl_file;
    unsigned char sid[32];
    unsigned int sid_len = 0;
    EVP_Digest(what_is_checked.data(), what_is_checked.size(), sid, &sid_len, EVP_sha256(),
               nullptr);
    SSL_CTX_set_session_id_context(ctx, sid,
                                   std::min<unsigned int>(sid_len, SSL_MAX_SID_CTX_LENGTH));
    SSL_CTX_set_timeout(ctx, static_cast<long>(cfg.session_timeout / 1000));
    if (cfg.session_cache > 0) {
      SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
      SSL_CTX_sess_set_cache_size(ctx, cfg.session_cache);
    } else {
      SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    }
    if (cfg.session_tickets) {
      SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, ticket_key_cb);
      SSL_CTX_set_num_tickets(ctx, 1);
    } else {
      SSL_CTX_set_num_tickets(ctx, 0);
    }
    if (!fc.alpn_wire_.empty()) SSL_CTX_set_alpn_select_cb(ctx, alpn_select_cb, &fc.alpn_wire_);
    SSL_CTX_callback_ctrl(ctx, SSL_CTRL_SET_TLSEXT_SERVERNAME_CB,
                          reinterpret_cast<void (*)()>(servername_cb));
    SSL_CTX_set_tlsext_servername_arg(ctx, &fc);
    SSL_CTX_callback_ctrl(ctx, SSL_CTRL_SET_TLSEXT_STATUS_REQ_CB,
                          reinterpret_cast<void (*)()>(ocsp_status_cb));
    SSL_CTX_set_tlsext_status_arg(ctx, &fc);
    if (cfg.verify != TlsBindConfig::Verify::kNone) {
      std::string why;
      if (!readable(cfg.ca_file, &why)) {
        p.error(cfg.mark, what + ": ca_file: " + why);
        ok = false;
      } else if (SSL_CTX_load_verify_locations(ctx, cfg.ca_file.c_str(), nullptr) != 1) {
        p.error(cfg.mark, what + ": ca_file " + cfg.ca_file + ": " + openssl_error());
        ok = false;
      } else if (STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(cfg.ca_file.c_str())) {
        SSL_CTX_set_client_CA_list(ctx, names);
      }
      ERR_clear_error();
      if (!cfg.crl_file.empty()) {
        std::string err;
        if (!load_crls(SSL_CTX_get_cert_store(ctx), cfg.crl_file, &err)) {
          p.error(cfg.mark, what + ": crl_file: " + err);
          ok = false;
        }
      }
      int mode = SSL_VERIFY_PEER;
      if (cfg.verify == TlsBindConfig::Verify::kRequired) {
        SSL_CTX_set_verify(ctx, mode | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
      } else {
        SSL_CTX_set_verify(ctx, mode, verify_optional_cb);
      }
    }
    return ok ? ctx : nullptr;
  }
};

std::shared_ptr<FrontContext> FrontContext::build(const TlsBindConfig& cfg, Mode mode,
                                                  const std::string& label, const Problems& p) {
  std::shared_ptr<FrontContext> fc(new FrontContext());
  fc->cfg_ = cfg;
  std::vector<std::string> protos = cfg.alpn;
  if (!cfg.alpn_set && mode == Mode::kHttp) protos = {"http/1.1"};
  fc->alpn_wire_ = alpn_wire(protos);
  const std::string& what = label;
  FrontBuilder b{*fc, p, what};

  // Every certificate file, in order, the default first when it is named.
  std::vector<std::string> files;
  bool ok = true;
  for (const std::string& entry : cfg.certificates) {
    std::string err;
    if (!expand_entry(entry, &files, &err)) {
      p.error(cfg.mark, what + ": certificates: " + err);
      ok = false;
    }
  }
  if (!cfg.default_certificate.empty() &&
      std::find(files.begin(), files.end(), cfg.default_certificate) == files.end()) {
    files.insert(files.begin(), cfg.default_certificate);
  }
  std::vector<LoadedCert> certs;
  std::set<std::string> seen;
  for (const std::string& f : files) {
    if (!seen.insert(f).second) continue;
    auto c = load_cert_file(f, cfg.mark, what + ": certificates", p);
    if (!c) {
      ok = false;
      continue;
    }
    certs.push_back(std::move(*c));
  }
  if (!ok) return nullptr;
  if (certs.empty()) {
    p.error(cfg.mark, what + ": no certificate to serve");
    return nullptr;
  }

  // Group the certificates by the names they serve; a group's context holds one
  // certificate per key type.
  std::map<std::string, SSL_CTX*> groups;  // sorted names -> context
  std::map<std::string, std::set<std::string>> group_types;
  std::string default_file =
      cfg.default_certificate.empty() ? certs[0].file : cfg.default_certificate;
  for (LoadedCert& c : certs) {
    std::vector<std::string> names = c.info.names;
    std::sort(names.begin(), names.end());
    std::string key;
    for (const std::string& n : names) key += n + "\n";
    if (key.empty()) key = "\n" + c.file;  // nameless: its own group
    SSL_CTX*& ctx = groups[key];
    if (!ctx) {
      ctx = b.new_ctx();
      if (!ctx) return nullptr;
    }
    if (!group_types[key].insert(c.info.key_type).second) {
      p.warn(cfg.mark, what + ": " + c.file + ": another " + c.info.key_type +
                           " certificate already serves the same names; this one is not used");
      continue;
    }
    if (SSL_CTX_use_cert_and_key(ctx, c.leaf.get(), c.key.get(), c.chain, 1) != 1) {
      p.error(cfg.mark, what + ": " + c.file + ": " + openssl_error());
      return nullptr;
    }
    if (!c.ocsp.empty()) {
      // SSL_CTX_use_cert_and_key keeps its own reference to the same X509.
      fc->ocsp_[c.leaf.get()] = c.ocsp;
      X509_up_ref(c.leaf.get());  // keep the pointer valid as a key (freed with the contexts)
    }
    for (const std::string& n : c.info.names) {
      if (n.size() > 2 && n[0] == '*' && n[1] == '.') {
        fc->wildcard_.emplace(n.substr(2), ctx);
      } else {
        fc->exact_.emplace(n, ctx);
      }
    }
    if (c.file == default_file) fc->default_ = ctx;
    fc->certs_.push_back(c.info);
  }
  if (!fc->default_) fc->default_ = fc->ctxs_.front();
  return fc;
}

FrontContext::~FrontContext() {
  for (auto& [x, der] : ocsp_) X509_free(const_cast<X509*>(x));
  for (SSL_CTX* c : ctxs_) SSL_CTX_free(c);
}

SSL_CTX* FrontContext::select(std::string_view name) const {
  if (!exact_.empty()) {
    auto it = exact_.find(std::string(name));
    if (it != exact_.end()) return it->second;
  }
  size_t dot = name.find('.');
  if (dot != std::string_view::npos && !wildcard_.empty()) {
    auto it = wildcard_.find(std::string(name.substr(dot + 1)));
    if (it != wildcard_.end()) return it->second;
  }
  return default_;
}

std::unique_ptr<Connection> FrontContext::accept(int fd) const {
  SSL* ssl = SSL_new(default_);
  if (!ssl) {
    ERR_clear_error();
    return nullptr;
  }
  if (!attach_socket(ssl, fd)) {
    SSL_free(ssl);
    return nullptr;
  }
  SSL_set_accept_state(ssl);
  return std::make_unique<Connection>(ssl);
}

// ---- BackContext ------------------------------------------------------------

std::shared_ptr<BackContext> BackContext::build(const TlsServerConfig& cfg,
                                                const std::string& label, const Problems& p) {
  std::shared_ptr<BackContext> bc(new BackContext());
  bc->cfg_ = cfg;
  const std::string& what = label;
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  if (!ctx) {
    p.error(cfg.mark, what + ": " + openssl_error());
    return nullptr;
  }
  bc->ctx_ = ctx;
  bool ok = common_settings(ctx, cfg, 0, what, p);
  if (cfg.verify) {
    if (!cfg.ca_file.empty()) {
      std::string why;
      if (!readable(cfg.ca_file, &why)) {
        p.error(cfg.mark, what + ": ca_file: " + why);
        ok = false;
      } else if (SSL_CTX_load_verify_locations(ctx, cfg.ca_file.c_str(), nullptr) != 1) {
        p.error(cfg.mark, what + ": ca_file " + cfg.ca_file + ": " + openssl_error());
        ok = false;
      }
    } else if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
      ERR_clear_error();
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
  } else {
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);
  }
  std::string why;
  if (!cfg.cert.empty() && !readable(cfg.cert, &why)) {
    p.error(cfg.mark, what + ": cert: " + why);
    ok = false;
  } else if (!cfg.cert.empty()) {
    if (SSL_CTX_use_certificate_chain_file(ctx, cfg.cert.c_str()) != 1) {
      p.error(cfg.mark, what + ": cert " + cfg.cert + ": " + openssl_error());
      ok = false;
    } else if (SSL_CTX_use_PrivateKey_file(ctx, cfg.cert.c_str(), SSL_FILETYPE_PEM) != 1 &&
               SSL_CTX_use_PrivateKey_file(ctx, (cfg.cert + ".key").c_str(), SSL_FILETYPE_PEM) !=
                   1) {
      ERR_clear_error();
      p.error(cfg.mark, what + ": cert " + cfg.cert + ": no private key in the file nor in " +
                            cfg.cert + ".key");
      ok = false;
    } else if (SSL_CTX_check_private_key(ctx) != 1) {
      ERR_clear_error();
      p.error(cfg.mark,
              what + ": cert " + cfg.cert + ": the private key does not match the certificate");
      ok = false;
    }
  }
  if (!cfg.alpn.empty()) {
    std::string wire = alpn_wire(cfg.alpn);
    SSL_CTX_set_alpn_protos(ctx, reinterpret_cast<const unsigned char*>(wire.data()),
                            static_cast<unsigned int>(wire.size()));
  }
  // Sessions go to the slot of the connection's server and thread.
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
  SSL_CTX_sess_set_new_cb(ctx, new_session_cb);
  if (!ok) return nullptr;
  return bc;
}

BackContext::~BackContext() {
  SSL_CTX_free(ctx_);
}

std::unique_ptr<Connection> BackContext::connect(int fd, std::string_view sni,
                                                 SessionSlot* slot) const {
  SSL* ssl = SSL_new(ctx_);
  if (!ssl) {
    ERR_clear_error();
    return nullptr;
  }
  if (!attach_socket(ssl, fd)) {
    SSL_free(ssl);
    return nullptr;
  }
  SSL_set_connect_state(ssl);
  std::string name(sni);
  if (!name.empty()) {
    SSL_ctrl(ssl, SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name, name.data());
  }
  if (cfg_.verify) {
    const std::string& check = cfg_.verify_name.empty() ? name : cfg_.verify_name;
    if (!check.empty()) SSL_set1_host(ssl, check.c_str());
  }
  if (SSL_SESSION* session = slot->get(sni)) SSL_set_session(ssl, session);
  SSL_set_ex_data(ssl, slot_index(), slot);  // new sessions go there
  ERR_clear_error();
  return std::make_unique<Connection>(ssl);
}

SessionSlot::~SessionSlot() {
  SSL_SESSION_free(session_);
}

void SessionSlot::replace(SSL_SESSION* s, std::string_view sni) {
  if (session_) SSL_SESSION_free(session_);
  session_ = s;
  sni_.assign(sni);
}

// ---- check_config -----------------------------------------------------------

bool check_config(const Config& cfg, std::vector<ConfigError>* errors,
                  std::vector<ConfigError>* warnings) {
  Problems p{cfg.source_name, errors, warnings};
  size_t before = errors->size();
  for (const FrontendConfig& fe : cfg.frontends) {
    for (const BindConfig& b : fe.binds) {
      if (b.tls.enabled) FrontContext::build(b.tls, fe.mode, bind_label(fe, b), p);
    }
  }
  for (const BackendConfig& be : cfg.backends) {
    if (be.default_tls.enabled) BackContext::build(be.default_tls, backend_label(be), p);
    for (const ServerConfig& s : be.servers) {
      // A server that only inherits the backend's settings was checked with them.
      if (s.tls.enabled && !same_mark(s.tls.mark, be.default_tls.mark)) {
        BackContext::build(s.tls, server_label(be, s), p);
      }
    }
  }
  if (!cfg.global.tls_ticket_secret_file.empty()) {
    std::string secret, err;
    if (!read_secret_file(cfg.global.tls_ticket_secret_file, &secret, &err)) {
      p.error(cfg.global.tls_ticket_secret_mark, "global: tls_ticket_secret_file: " + err);
    }
  }
  return errors->size() == before;
}

std::string bind_label(const FrontendConfig& fe, const BindConfig& b) {
  return "frontend '" + fe.name + "': bind " + b.address_text + ": tls";
}
std::string backend_label(const BackendConfig& be) {
  return "backend '" + be.name + "': tls";
}
std::string server_label(const BackendConfig& be, const ServerConfig& s) {
  return "server '" + s.name + "' of backend '" + be.name + "': tls";
}
bool same_mark(const SourceMark& a, const SourceMark& b) {
  return a.line == b.line && a.column == b.column;
}

// ---- Connection -------------------------------------------------------------

Connection::~Connection() {
  // OpenSSL takes a connection freed without a close_notify exchange for a
  // truncated one and makes its session unresumable, yet weir closes most
  // connections that way (a server's idle connection, a client gone after its
  // response). Fatal errors still void the session (OpenSSL does that when it
  // sends the alert).
  if (SSL_is_init_finished(ssl_)) SSL_set_shutdown(ssl_, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
  SSL_free(ssl_);
}

SecureLayer::Handshake Connection::handshake() {
  ERR_clear_error();
  int r = SSL_do_handshake(ssl_);
  if (r == 1) return Handshake::kDone;
  int e = SSL_get_error(ssl_, r);
  if (e == SSL_ERROR_WANT_READ) return Handshake::kWantRead;
  if (e == SSL_ERROR_WANT_WRITE) return Handshake::kWantWrite;
  if (e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0) {
    failure_ = errno ? std::string("connection error: ") + std::strerror(errno)
                     : "connection closed during the handshake";
  } else {
    failure_ = openssl_error();
    long v = SSL_get_verify_result(ssl_);
    if (v != X509_V_OK) failure_ += std::string(" (") + X509_verify_cert_error_string(v) + ")";
  }
  ERR_clear_error();
  return Handshake::kFailed;
}

ssize_t Connection::read(char* buf, size_t len) {
  if (eof_) {
    eof_pending_ = false;
    if (eof_errno_ == 0) return 0;
    errno = eof_errno_;
    return -1;
  }
  size_t got = 0;
  while (got < len) {
    size_t n = 0;
    int r = SSL_read_ex(ssl_, buf + got, len - got, &n);
    if (r == 1) {
      got += n;
      // Nothing left in OpenSSL's buffers and the socket was found drained:
      // stop here rather than pay a recv() only to hear EAGAIN.
      if (got < len && SSL_has_pending(ssl_) == 0 && socket_drained(ssl_)) break;
      continue;
    }
    int e = SSL_get_error(ssl_, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
      if (got) return static_cast<ssize_t>(got);
      errno = EAGAIN;
      return -1;
    }
    int saved = errno;
    eof_ = true;
    if (e != SSL_ERROR_ZERO_RETURN) {
      failure_ = e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0
                     ? std::string(std::strerror(saved ? saved : ECONNRESET))
                     : openssl_error();
    }
    ERR_clear_error();
    if (e != SSL_ERROR_ZERO_RETURN) eof_errno_ = saved && saved != EAGAIN ? saved : ECONNRESET;
    if (got) {
      eof_pending_ = true;
      return static_cast<ssize_t>(got);
    }
    if (eof_errno_ == 0) return 0;
    errno = eof_errno_;
    return -1;
  }
  return static_cast<ssize_t>(got);
}

ssize_t Connection::writev(const iovec* iov, int count) {
  // One record per SSL_write (partial-write mode returns after each): small
  // pieces are gathered so a head and its body go out as one record. After a
  // want-write the caller passes the same bytes again, as for a socket, so the
  // first chunk is never shorter than the one OpenSSL kept pending.
  constexpr size_t kRecord = 16384;
  static thread_local char stage[kRecord];
  size_t total = 0;
  for (int i = 0; i < count; ++i) total += iov[i].iov_len;
  size_t done = 0;
  int idx = 0;
  size_t off = 0;
  while (done < total) {
    while (idx < count && off == iov[idx].iov_len) {
      ++idx;
      off = 0;
    }
    const char* ptr;
    size_t n;
    size_t rem = iov[idx].iov_len - off;
    if (rem >= kRecord || idx == count - 1 || total - done <= rem) {
      ptr = static_cast<const char*>(iov[idx].iov_base) + off;
      n = std::min(rem, kRecord);
    } else {
      n = 0;
      int j = idx;
      size_t o = off;
      while (j < count && n < kRecord) {
        size_t take = std::min(iov[j].iov_len - o, kRecord - n);
        std::memcpy(stage + n, static_cast<const char*>(iov[j].iov_base) + o, take);
        n += take;
        o += take;
        if (o == iov[j].iov_len) {
          ++j;
          o = 0;
        }
      }
      ptr = stage;
    }
    size_t w = 0;
    ERR_clear_error();
    int r = SSL_write_ex(ssl_, ptr, n, &w);
    if (r == 1) {
      done += w;
      // Advance the position by w bytes.
      size_t left = w;
      while (left > 0) {
        size_t take = std::min(left, iov[idx].iov_len - off);
        off += take;
        left -= take;
        if (off == iov[idx].iov_len && left > 0) {
          ++idx;
          off = 0;
        }
      }
      continue;
    }
    int e = SSL_get_error(ssl_, r);
    if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ) {
      if (done) return static_cast<ssize_t>(done);
      errno = EAGAIN;
      return -1;
    }
    int saved = errno;
    failure_ = e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0
                   ? std::string(std::strerror(saved ? saved : EPIPE))
                   : openssl_error();
    ERR_clear_error();
    if (done) return static_cast<ssize_t>(done);
    errno = saved && saved != EAGAIN ? saved : EPIPE;
    return -1;
  }
  return static_cast<ssize_t>(done);
}

void Connection::shutdown_write() {
  if (shut_) return;
  shut_ = true;
  // close_notify, best effort: a full socket or a broken connection loses it.
  if (SSL_is_init_finished(ssl_)) SSL_shutdown(ssl_);
  ERR_clear_error();
}

// ---- facts ------------------------------------------------------------------

std::string_view version_name(const SSL* ssl) {
  return SSL_get_version(ssl);
}

std::string_view cipher_name(const SSL* ssl) {
  const char* n = SSL_get_cipher_name(ssl);
  return n ? n : "";
}

std::string_view sni(const SSL* ssl) {
  const char* n = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
  return n ? n : "";
}

std::string_view alpn(const SSL* ssl) {
  const unsigned char* p = nullptr;
  unsigned int len = 0;
  SSL_get0_alpn_selected(ssl, &p, &len);
  return p ? std::string_view(reinterpret_cast<const char*>(p), len) : std::string_view();
}

bool peer_cert_used(const SSL* ssl) {
  X509* x = SSL_get0_peer_certificate(ssl);
  return x != nullptr;
}

long peer_verify_result(const SSL* ssl) {
  if (!SSL_get0_peer_certificate(ssl)) return X509_V_OK;
  return SSL_get_verify_result(ssl);
}

std::string peer_subject(const SSL* ssl) {
  X509* x = SSL_get0_peer_certificate(ssl);
  return x ? name_text(X509_get_subject_name(x)) : std::string();
}

std::string peer_issuer(const SSL* ssl) {
  X509* x = SSL_get0_peer_certificate(ssl);
  return x ? name_text(X509_get_issuer_name(x)) : std::string();
}

std::string peer_serial(const SSL* ssl) {
  X509* x = SSL_get0_peer_certificate(ssl);
  return x ? serial_hex(x) : std::string();
}

}  // namespace weir::tls
