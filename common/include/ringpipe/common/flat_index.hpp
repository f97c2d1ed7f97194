#pragma once
// FlatIndex: an open-addressing (linear probing) index from a 64-bit hash to a
// 32-bit value, with backward-shift deletion (no tombstones). A slot is 8
// bytes: the hash's low 32 bits (they give the home position, capacity is
// below 2^32, and serve as a tag) and the value; equal tags may repeat, so
// find() asks the caller to confirm the full key. Grows by doubling (the only
// allocation). Not thread-safe: one owner. The processors' family registry
// and series mapper and the exporters' family table use it.

#include <cstdint>
#include <vector>

#include "ringpipe/common/assert.hpp"
#include "ringpipe/common/large_buffer.hpp"

namespace ringpipe::common {

class FlatIndex {
 public:
  static constexpr std::uint32_t kNone = UINT32_MAX;

  explicit FlatIndex(std::size_t expected = 16) { rehash(capacity_for(expected)); }

  // The value whose hash matches and for which is_key(value) holds, or kNone.
  template <class Pred>
  [[nodiscard]] std::uint32_t find(std::uint64_t hash, Pred&& is_key) const noexcept {
    for (std::size_t i = hash & mask_;; i = (i + 1) & mask_) {
      const Slot& s = slots_[i];
      if (s.value == kNone) return kNone;
      if (s.tag == static_cast<std::uint32_t>(hash) && is_key(s.value)) return s.value;
    }
  }

  // Cache hints for batch lookups: fetch the home slot now, read it later.
  void prefetch(std::uint64_t hash) const noexcept { __builtin_prefetch(&slots_[hash & mask_]); }
  [[nodiscard]] std::uint32_t home_value(std::uint64_t hash) const noexcept {
    const Slot& s = slots_[hash & mask_];
    return s.tag == static_cast<std::uint32_t>(hash) ? s.value : kNone;
  }

  // Adds (hash, value); the caller knows it is absent.
  void insert(std::uint64_t hash, std::uint32_t value) {
    if ((size_ + 1) * 10 > slots_.size() * 7) rehash(slots_.size() * 2);
    place(hash, value);
    ++size_;
  }

  // Removes the slot holding exactly (hash, value); false when absent.
  bool erase(std::uint64_t hash, std::uint32_t value) noexcept {
    std::size_t i = hash & mask_;
    for (;; i = (i + 1) & mask_) {
      if (slots_[i].value == kNone) return false;
      if (slots_[i].tag == static_cast<std::uint32_t>(hash) && slots_[i].value == value) break;
    }
    // Backward shift: pull later entries of the cluster into the hole when
    // their home position allows it.
    std::size_t hole = i;
    for (std::size_t j = (i + 1) & mask_;; j = (j + 1) & mask_) {
      if (slots_[j].value == kNone) break;
      const std::size_t home = slots_[j].tag & mask_;
      const bool movable = ((j - home) & mask_) >= ((j - hole) & mask_);
      if (movable) {
        slots_[hole] = slots_[j];
        hole = j;
      }
    }
    slots_[hole] = Slot{};
    --size_;
    return true;
  }

  void clear() noexcept {
    for (Slot& s : slots_) s = Slot{};
    size_ = 0;
  }
  [[nodiscard]] std::size_t size() const noexcept { return size_; }
  [[nodiscard]] std::size_t memory_bytes() const noexcept { return slots_.size() * sizeof(Slot); }
  void reserve(std::size_t n) {
    if (capacity_for(n) > slots_.size()) rehash(capacity_for(n));
  }

 private:
  struct Slot {
    std::uint32_t tag = 0;  // low 32 bits of the hash
    std::uint32_t value = kNone;
  };
  static_assert(sizeof(Slot) == 8, "eight slots per cache line");
  static std::size_t capacity_for(std::size_t n) {
    std::size_t c = 16;
    while (c * 7 < n * 10 + 10) c *= 2;
    return c;
  }
  void place(std::uint64_t hash, std::uint32_t value) noexcept {
    std::size_t i = hash & mask_;
    while (slots_[i].value != kNone) i = (i + 1) & mask_;
    slots_[i] = Slot{static_cast<std::uint32_t>(hash), value};
  }
  void rehash(std::size_t cap) {
    RINGPIPE_ASSERT(cap <= (std::size_t{1} << 32), "the tag must hold every position bit");
    LargeArray<Slot> old(cap);  // at 1M entries 16 MiB in huge pages where the kernel has them
    old.swap(slots_);
    mask_ = cap - 1;
    for (const Slot& s : old) {
      if (s.value != kNone) place(s.tag, s.value);
    }
  }

  LargeArray<Slot> slots_;
  std::size_t mask_ = 0;
  std::size_t size_ = 0;
};

}  // namespace ringpipe::common
