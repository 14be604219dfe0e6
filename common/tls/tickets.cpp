#include "common/tls/tickets.h"

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <fstream>
#include <mutex>

#include "common/tls/ssl_util.h"

namespace weir::tls {
namespace {

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

}  // namespace

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

}  // namespace weir::tls
