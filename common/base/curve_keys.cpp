// CURVE keys in Z85 (curve_keys.h).

#include "common/base/curve_keys.h"

#include <zmq.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

namespace weir::curve {

bool valid_key(std::string_view text, std::string* why) {
  if (text.size() != kKeyTextSize) {
    *why = "a CURVE key is 40 Z85 characters (this has " + std::to_string(text.size()) + ")";
    return false;
  }
  const std::string copy(text);
  uint8_t raw[32];
  if (!zmq_z85_decode(raw, copy.c_str())) {
    *why = "not Z85 text (a key is what `weirctl peers keygen` prints)";
    return false;
  }
  return true;
}

std::optional<std::string> public_of(std::string_view secret) {
  std::string why;
  if (!valid_key(secret, &why)) return std::nullopt;
  char out[kKeyTextSize + 1] = {};
  const std::string copy(secret);
  if (zmq_curve_public(out, copy.c_str()) != 0) return std::nullopt;
  return std::string(out, kKeyTextSize);
}

std::optional<KeyPair> generate() {
  // weir.yaml reads "${" as the start of an environment reference: a key
  // with one in it would need escaping, so such a pair is drawn again.
  for (;;) {
    char pub[kKeyTextSize + 1] = {};
    char sec[kKeyTextSize + 1] = {};
    if (zmq_curve_keypair(pub, sec) != 0) return std::nullopt;
    KeyPair pair{std::string(pub, kKeyTextSize), std::string(sec, kKeyTextSize)};
    if (pair.public_key.find("${") == std::string::npos &&
        pair.secret_key.find("${") == std::string::npos) {
      return pair;
    }
  }
}

std::optional<std::string> read_secret_file(const std::string& path, std::string* why) {
  std::ifstream in(path);
  if (!in) {
    *why = "cannot read " + path + ": " + std::strerror(errno);
    return std::nullopt;
  }
  // Z85 has '#' among its characters: a key is found by its label, not by
  // skipping comments.
  constexpr std::string_view kLabel = "secret_key:";
  std::string line, key;
  int keys = 0;
  while (std::getline(in, line)) {
    if (line.compare(0, kLabel.size(), kLabel) != 0) continue;
    std::string v = line.substr(kLabel.size());
    const size_t b = v.find_first_not_of(" \t");
    const size_t e = v.find_last_not_of(" \t\r");
    v = b == std::string::npos ? std::string() : v.substr(b, e - b + 1);
    if (v.size() >= 2 && v.front() == '"' && v.back() == '"') v = v.substr(1, v.size() - 2);
    key = v;
    ++keys;
  }
  if (keys != 1) {
    *why = path +
           " must hold one \"secret_key: KEY\" line (as `weirctl peers keygen` writes); it has " +
           std::to_string(keys);
    return std::nullopt;
  }
  std::string bad;
  if (!valid_key(key, &bad)) {
    *why = path + ": secret_key: " + bad;
    return std::nullopt;
  }
  return key;
}

std::string secret_file_text(const KeyPair& pair) {
  std::ostringstream out;
  out << "# weir peers: this node's CURVE key pair. Keep this file private (mode 0600).\n"
      << "# The public key goes in the other nodes' configuration, under peers.nodes.\n"
      << "public_key: \"" << pair.public_key << "\"\n"
      << "secret_key: \"" << pair.secret_key << "\"\n";
  return out.str();
}

}  // namespace weir::curve
