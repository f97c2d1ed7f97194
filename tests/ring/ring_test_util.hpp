#pragma once
// Payloads that prove their own integrity: (producer, seq) header + bytes
// derived from it + a checksum, so a reader can check every record it sees.

#include <cstdint>
#include <cstring>
#include <span>
#include <vector>

namespace ringpipe::ring::testing {

struct Stamp {
  std::uint32_t producer;
  std::uint32_t size;  // whole payload
  std::uint64_t seq;
  std::uint64_t checksum;
};
static_assert(sizeof(Stamp) == 24);

inline std::uint64_t mix(std::uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdULL;
  x ^= x >> 33;
  return x;
}

// Fills `out` (>= sizeof(Stamp) bytes) for (producer, seq).
inline void make_payload(std::span<std::byte> out, std::uint32_t producer, std::uint64_t seq) {
  std::uint64_t sum = 0;
  for (std::size_t i = sizeof(Stamp); i < out.size(); ++i) {
    const auto b = static_cast<std::uint8_t>(mix(seq * 1315423911u + producer + i));
    out[i] = std::byte{b};
    sum = sum * 31 + b;
  }
  const Stamp s{producer, static_cast<std::uint32_t>(out.size()), seq, sum};
  std::memcpy(out.data(), &s, sizeof s);
}

// True if the payload is exactly what make_payload wrote; fills stamp.
inline bool check_payload(std::span<const std::byte> in, Stamp& s) {
  if (in.size() < sizeof(Stamp)) return false;
  std::memcpy(&s, in.data(), sizeof s);
  if (s.size != in.size()) return false;
  std::uint64_t sum = 0;
  for (std::size_t i = sizeof(Stamp); i < in.size(); ++i) {
    const auto b = static_cast<std::uint8_t>(mix(s.seq * 1315423911u + s.producer + i));
    if (in[i] != std::byte{b}) return false;
    sum = sum * 31 + b;
  }
  return sum == s.checksum;
}

}  // namespace ringpipe::ring::testing
