#include "master/ticket_secret.h"

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

}  // namespace weir
