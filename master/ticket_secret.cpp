#include "master/ticket_secret.h"

#include <sstream>

#include "common/tls/tickets.h"

namespace weir {
namespace {

std::string to_hex(std::string_view bytes) {
  static const char kDigits[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) {
    out.push_back(kDigits[c >> 4]);
    out.push_back(kDigits[c & 15]);
  }
  return out;
}

std::string from_hex(std::string_view hex) {
  auto val = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  std::string out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) {
    int a = val(hex[i]), b = val(hex[i + 1]);
    if (a < 0 || b < 0) return {};
    out.push_back(static_cast<char>(a * 16 + b));
  }
  return out;
}

}  // namespace

bool TicketSecret::update(const std::string& file, std::string* error) {
  if (!file.empty()) {
    std::string secret;
    if (!tls::read_secret_file(file, &secret, error)) return false;
    secret_ = std::move(secret);
  } else if (secret_.empty() || from_file_) {
    secret_ = tls::random_secret();
  }
  from_file_ = !file.empty();
  return true;
}

std::string TicketSecret::hex() const {
  return to_hex(secret_);
}

std::string TicketSecret::save() const {
  return to_hex(secret_) + " " + (from_file_ ? "1" : "0");
}

void TicketSecret::restore(std::string_view line) {
  std::istringstream in{std::string(line)};
  std::string hex;
  int from_file = 0;
  in >> hex >> from_file;
  secret_ = from_hex(hex);
  from_file_ = from_file == 1;
}

}  // namespace weir
