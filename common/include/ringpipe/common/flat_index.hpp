#pragma once
// FlatIndex: an open-addressing (linear probing) index from a 64-bit hash to a
// 32-bit value, with backward-shift deletion (no tombstones). A slot is 8
// bytes: the hash's low 32 bits (they give the home position, capacity is
// at most 2^32, and serve as a tag) and the value; equal tags may repeat, so
// find() asks the caller to confirm the full key. Grows in ProbeSpan's steps
// (the only allocation). Not thread-safe: one owner. The processors' family
// registry, series mapper and shards and the exporters' family table use it.
//
// ProbeSpan: the geometry of a linear-probing slot array, shared with the
// exporters' series table. Its slot count is a power of two or 1.5 times one,
// growing by 1.5x and 4/3x in turn rather than doubling: at a given number of
// keys the array is on average a quarter smaller (a million keys at most 70 %
// full take 1.5 Mi slots, not 2 Mi). A key's home is its 32-bit tag scaled to
// the count (multiply and shift), so any count works.

#include <cstdint>
#include <vector>

#include "ringpipe/common/assert.hpp"
#include "ringpipe/common/large_buffer.hpp"

namespace ringpipe::common {

class ProbeSpan {
 public:
  static constexpr std::size_t kFirst = 16;

  ProbeSpan() = default;
  explicit ProbeSpan(std::size_t slots) noexcept : slots_(slots) {}
  [[nodiscard]] std::size_t slots() const noexcept { return slots_; }
  [[nodiscard]] std::size_t home(std::uint32_t tag) const noexcept {
    return static_cast<std::size_t>((std::uint64_t{tag} * slots_) >> 32);
  }
  [[nodiscard]] std::size_t next(std::size_t i) const noexcept { return i + 1 == slots_ ? 0 : i + 1; }
  // Steps from slot `from` forward to slot `to`, wrapping.
  [[nodiscard]] std::size_t distance(std::size_t from, std::size_t to) const noexcept {
    return to >= from ? to - from : to + slots_ - from;
  }
  // The slot count after `slots` (kFirst first): a power of two grows by
  // half, 1.5 times one by a third.
  [[nodiscard]] static std::size_t grown(std::size_t slots) noexcept {
    if (slots < kFirst) return kFirst;
    return (slots & (slots - 1)) == 0 ? slots + slots / 2 : slots / 3 * 4;
  }
  // The smallest count in the sequence at which n keys fill at most
  // `num`/`den` of the slots.
  [[nodiscard]] static std::size_t for_keys(std::size_t n, std::size_t num, std::size_t den) noexcept {
    std::size_t c = kFirst;
    while (c * num < n * den) c = grown(c);
    return c;
  }

 private:
  std::size_t slots_ = 0;
};

class FlatIndex {
 public:
  static constexpr std::uint32_t kNone = UINT32_MAX;

  explicit FlatIndex(std::size_t expected = 16) { rehash(capacity_for(expected)); }

  // The value whose hash matches and for which is_key(value) holds, or kNone.
  template <class Pred>
  [[nodiscard]] std::uint32_t find(std::uint64_t hash, Pred&& is_key) const noexcept {
    for (std::size_t i = span_.home(static_cast<std::uint32_t>(hash));; i = span_.next(i)) {
      const Slot& s = slots_[i];
      if (s.value == kNone) return kNone;
      if (s.tag == static_cast<std::uint32_t>(hash) && is_key(s.value)) return s.value;
    }
  }

  // Cache hints for batch lookups: fetch the home slot now, read it later.
  void prefetch(std::uint64_t hash) const noexcept {
    __builtin_prefetch(&slots_[span_.home(static_cast<std::uint32_t>(hash))]);
  }
  [[nodiscard]] std::uint32_t home_value(std::uint64_t hash) const noexcept {
    const Slot& s = slots_[span_.home(static_cast<std::uint32_t>(hash))];
    return s.tag == static_cast<std::uint32_t>(hash) ? s.value : kNone;
  }

  // Adds (hash, value); the caller knows it is absent.
  void insert(std::uint64_t hash, std::uint32_t value) {
    if ((size_ + 1) * 10 > slots_.size() * 7) rehash(ProbeSpan::grown(slots_.size()));
    place(static_cast<std::uint32_t>(hash), value);
    ++size_;
  }

  // Removes the slot holding exactly (hash, value); false when absent.
  bool erase(std::uint64_t hash, std::uint32_t value) noexcept {
    const auto tag = static_cast<std::uint32_t>(hash);
    std::size_t i = span_.home(tag);
    for (;; i = span_.next(i)) {
      if (slots_[i].value == kNone) return false;
      if (slots_[i].tag == tag && slots_[i].value == value) break;
    }
    // Backward shift: pull later entries of the cluster into the hole when
    // their home position allows it.
    std::size_t hole = i;
    for (std::size_t j = span_.next(i);; j = span_.next(j)) {
      if (slots_[j].value == kNone) break;
      const std::size_t home = span_.home(slots_[j].tag);
      if (span_.distance(home, j) >= span_.distance(hole, j)) {
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
  static std::size_t capacity_for(std::size_t n) noexcept { return ProbeSpan::for_keys(n + 1, 7, 10); }
  void place(std::uint32_t tag, std::uint32_t value) noexcept {
    std::size_t i = span_.home(tag);
    while (slots_[i].value != kNone) i = span_.next(i);
    slots_[i] = Slot{tag, value};
  }
  void rehash(std::size_t cap) {
    RINGPIPE_ASSERT(cap <= (std::size_t{1} << 32), "a slot position fits the 32 bits a tag is scaled from");
    LargeArray<Slot> old(cap);  // at 1M entries 12 MiB in huge pages where the kernel has them
    old.swap(slots_);
    span_ = ProbeSpan(cap);
    for (const Slot& s : old) {
      if (s.value != kNone) place(s.tag, s.value);
    }
  }

  LargeArray<Slot> slots_;
  ProbeSpan span_;
  std::size_t size_ = 0;
};

}  // namespace ringpipe::common
