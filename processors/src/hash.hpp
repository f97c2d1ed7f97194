#pragma once
// A fast 64-bit hash of bytes (multiply-fold, wyhash style). Not
// cryptographic: a hostile sender can collide it, so every user checks the
// full key on a hash match. Pure functions, thread-safe.

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

namespace ringpipe::processors::detail {

__extension__ typedef unsigned __int128 U128;

inline constexpr std::uint64_t kHashK0 = 0xa0761d6478bd642fULL;
inline constexpr std::uint64_t kHashK1 = 0xe7037ed1a0b428dbULL;
inline constexpr std::uint64_t kHashK2 = 0x8ebc6af09c88c6e3ULL;

[[nodiscard]] inline std::uint64_t mix64(std::uint64_t a, std::uint64_t b) noexcept {
  const U128 r = static_cast<U128>(a) * b;
  return static_cast<std::uint64_t>(r) ^ static_cast<std::uint64_t>(r >> 64);
}

[[nodiscard]] inline std::uint64_t read64(const unsigned char* p) noexcept {
  std::uint64_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

[[nodiscard]] inline std::uint64_t hash_bytes(const void* data, std::size_t n, std::uint64_t seed = 0) noexcept {
  const auto* s = static_cast<const unsigned char*>(data);
  std::uint64_t h = mix64(seed ^ kHashK0, kHashK1 ^ n);
  while (n >= 16) {
    h = mix64(read64(s) ^ kHashK1, read64(s + 8) ^ h);
    s += 16;
    n -= 16;
  }
  if (n >= 8) {
    h = mix64(read64(s) ^ kHashK2, h ^ kHashK0);
    s += 8;
    n -= 8;
  }
  std::uint64_t tail = 0;
  if (n > 0) std::memcpy(&tail, s, n);
  return mix64(h ^ tail ^ kHashK2, kHashK1 ^ (n << 56 | 0x5a));
}

[[nodiscard]] inline std::uint64_t hash_str(std::string_view s, std::uint64_t seed = 0) noexcept {
  return hash_bytes(s.data(), s.size(), seed);
}

// As hash_bytes, for keys of in-memory indexes only (its values are not
// hash_bytes' and may change between versions: never store or send them).
// The last 1-16 bytes are read as two overlapping words, not copied byte by
// byte, which matters for the short names hashed once per sample.
[[nodiscard]] inline std::uint64_t hash_mem(const void* data, std::size_t n, std::uint64_t seed = 0) noexcept {
  const auto* s = static_cast<const unsigned char*>(data);
  std::uint64_t h = mix64(seed ^ kHashK0, kHashK1 ^ n);
  std::size_t left = n;
  while (left > 16) {
    h = mix64(read64(s) ^ kHashK1, read64(s + 8) ^ h);
    s += 16;
    left -= 16;
  }
  std::uint64_t a = 0;
  std::uint64_t b = 0;
  if (left >= 8) {
    a = read64(s);
    b = read64(s + left - 8);
  } else if (left >= 4) {
    std::uint32_t x;
    std::uint32_t y;
    std::memcpy(&x, s, sizeof x);
    std::memcpy(&y, s + left - 4, sizeof y);
    a = x;
    b = y;
  } else if (left > 0) {
    a = std::uint64_t{s[0]} << 16 | std::uint64_t{s[left >> 1]} << 8 | s[left - 1];
  }
  return mix64(h ^ a ^ kHashK2, b ^ kHashK1 ^ (std::uint64_t{left} << 56));
}

}  // namespace ringpipe::processors::detail
