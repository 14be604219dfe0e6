#pragma once
// A 64-bit hash of bytes for hash tables and hash-based choices: FNV-1a, then
// a full avalanche (the splitmix64 finalizer), so that keys that differ in one
// byte land far apart in both the high bits and the low ones. Not for
// anything an attacker must not be able to collide on purpose.

#include <cstdint>
#include <string_view>

namespace weir {

inline uint64_t hash_bytes(std::string_view data) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : data) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  h ^= h >> 30;
  h *= 0xbf58476d1ce4e5b9ULL;
  h ^= h >> 27;
  h *= 0x94d049bb133111ebULL;
  h ^= h >> 31;
  return h;
}

}  // namespace weir
