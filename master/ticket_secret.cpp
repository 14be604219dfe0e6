#include "master/ticket_secret.h"

#include <sstream>

#include "common/base/hex.h"
#include "common/tls/tickets.h"

namespace weir {

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
  secret_ = from_hex(hex).value_or(std::string());
  from_file_ = from_file == 1;
}

}  // namespace weir
