#include "common/tls/ssl_util.h"

#include <openssl/asn1.h>
#include <openssl/err.h>

#include <cctype>
#include <ctime>
#include <fstream>
#include <sstream>

namespace weir::tls {

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

bool read_file(const std::string& path, std::string* out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  std::stringstream ss;
  ss << in.rdbuf();
  *out = ss.str();
  return true;
}

}  // namespace weir::tls
