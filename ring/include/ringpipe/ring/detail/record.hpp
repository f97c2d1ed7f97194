#pragma once
// The 16-byte record header and its commit order, shared by the ring's
// internals and the inline write path in ring.hpp. Layout: ring/FORMAT.md.

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>

namespace ringpipe::ring::detail {

struct RecordHeader {
  std::uint32_t length;  // payload bytes (for a pad: bytes after the header up to the lane's end)
  std::uint16_t type;    // kPadRecordType = 0 for padding at the lane's end
  std::uint16_t flags;   // 0
  std::uint64_t seq;     // per lane; the record's commit word; pads carry the seq of the next record
};
static_assert(sizeof(RecordHeader) == 16, "record header is part of the format");
static_assert(offsetof(RecordHeader, seq) == 8, "seq is the 8-aligned commit word");

// A claim reaches at most this many bytes past its end: the next header
// slot, whose seq word the producer zeroes before the commit
// (Producer::clear_next_seq). Files written before cleared on to the end
// of the cache line (up to 72 bytes): a takeover accepts an `intent` that
// far ahead (kMaxReachAhead).
inline constexpr std::uint64_t kCleanAhead = 16;
inline constexpr std::uint64_t kMaxReachAhead = 72;

constexpr std::uint64_t align8(std::uint64_t n) noexcept { return (n + 7) & ~std::uint64_t{7}; }
constexpr std::uint64_t record_bytes(std::uint64_t payload) noexcept { return align8(sizeof(RecordHeader) + payload); }

// A record's seq is its commit word: stored last, with release, by the
// producer; loaded with acquire by readers that know which seq comes next.
inline std::uint64_t load_seq(const std::byte* header) noexcept {
  // const_cast: atomic_ref<const T> arrives only in C++26; this only loads.
  return std::atomic_ref<std::uint64_t>(*reinterpret_cast<std::uint64_t*>(const_cast<std::byte*>(header) + 8))
      .load(std::memory_order_acquire);
}

// Writes a header: length/type/flags first, then the seq (release), so a
// reader that sees the seq sees the whole record.
inline void store_header(std::byte* at, std::uint32_t length, std::uint16_t type, std::uint64_t seq) noexcept {
  const std::uint32_t lt[2] = {length, type};
  std::memcpy(at, lt, 8);
  std::atomic_ref<std::uint64_t>(*reinterpret_cast<std::uint64_t*>(at + 8)).store(seq, std::memory_order_release);
}

}  // namespace ringpipe::ring::detail
