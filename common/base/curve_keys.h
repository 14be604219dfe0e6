#pragma once
// CURVE keys as weir.yaml and the key files write them: Z85 text (40
// characters for 32 bytes), the form ZeroMQ takes (doc/peers.md, "Keys").

#include <optional>
#include <string>
#include <string_view>

namespace weir::curve {

inline constexpr size_t kKeyTextSize = 40;

// Whether `text` is a Z85 key; *why says what is wrong otherwise.
bool valid_key(std::string_view text, std::string* why);
// The public key of a Z85 secret key, in Z85; nullopt when it is not one.
std::optional<std::string> public_of(std::string_view secret);

struct KeyPair {
  std::string public_key;  // Z85
  std::string secret_key;  // Z85
};
// A new key pair; nullopt when this libzmq has no CURVE.
std::optional<KeyPair> generate();

// A key file: one `secret_key: "KEY"` line (and a public_key line, comments).
// nullopt with *why when it cannot be read or holds no valid key.
std::optional<std::string> read_secret_file(const std::string& path, std::string* why);
// The text of a key file for `pair` (what `weirctl peers keygen` writes).
std::string secret_file_text(const KeyPair& pair);

}  // namespace weir::curve
