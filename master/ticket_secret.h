#pragma once
// The secret from which every worker generation derives its TLS ticket keys.
// The master keeps it across reloads and binary upgrades, so that a client's
// ticket stays valid whichever generation it meets: read from
// global.tls_ticket_secret_file when set, random otherwise.

#include <string>
#include <utility>

namespace weir {

class TicketSecret {
 public:
  // For a configuration whose global.tls_ticket_secret_file is `file` ("" when
  // not set): reads the file, or keeps the random secret (a new one when there
  // is none yet or the last one came from a file). false with *error when the
  // file cannot be read.
  bool update(const std::string& file, std::string* error);
  // What the workers' Hello and the binary upgrade's state carry, and back.
  const std::string& secret() const { return secret_; }
  bool from_file() const { return from_file_; }
  void restore(std::string secret, bool from_file) {
    secret_ = std::move(secret);
    from_file_ = from_file;
  }

 private:
  std::string secret_;
  bool from_file_ = false;
};

}  // namespace weir
