#pragma once
// The byte layout of a family block in a state file's arena (processors/STATE.md
// draws it). The file outlives the process that wrote it and may be truncated,
// stale or crafted, so a block is decoded only through decode_family_block(),
// which checks every length it declares before a field is used.

#include <bit>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include <tl/expected.hpp>

#include "family_registry.hpp"
#include "ringpipe/sample/sample_batch.hpp"
#include "state_store.hpp"

namespace ringpipe::processors::detail {

static_assert(std::endian::native == std::endian::little, "the state file format is little-endian");

// The fixed part of a family block; the name's bytes follow it, then the
// help's, then the unit's (no terminators, no padding between them). The
// block's size is LabelArena::rounded(sizeof(FamilyBlock) + name_len +
// help_len + unit_len). A block written before Prometheus families were kept
// has 0 in prom_type, suffix_len and unit_len: a plain family.
struct FamilyBlock {
  BlockHeader header;       // 0: {size, kFamilyOwner}
  std::uint8_t kind;        // 8: FamilyKind
  std::uint8_t prom_type;   // 9: sample::FamilyType, 0 = not a Prometheus family
  std::uint16_t name_len;   // 10: > 0
  std::uint16_t help_len;   // 12
  std::uint8_t suffix_len;  // 14: <= name_len
  std::uint8_t unit_len;    // 15
};
static_assert(std::is_trivially_copyable_v<FamilyBlock>, "copied to and from the mapping with memcpy");
static_assert(std::has_unique_object_representations_v<FamilyBlock>, "no padding: every byte is a field");
static_assert(sizeof(FamilyBlock) == 16 && alignof(FamilyBlock) == 4);
static_assert(offsetof(FamilyBlock, header) == 0 && offsetof(FamilyBlock, kind) == 8 &&
              offsetof(FamilyBlock, prom_type) == 9 && offsetof(FamilyBlock, name_len) == 10 &&
              offsetof(FamilyBlock, help_len) == 12 && offsetof(FamilyBlock, suffix_len) == 14 &&
              offsetof(FamilyBlock, unit_len) == 15);
// The kind byte is persisted: these values are part of the format.
static_assert(static_cast<int>(FamilyKind::kCounter) == 0 && static_cast<int>(FamilyKind::kGauge) == 1 &&
              static_cast<int>(FamilyKind::kSummary) == 2 && static_cast<int>(FamilyKind::kHistogram) == 3 &&
              static_cast<int>(FamilyKind::kSet) == 4);
static_assert(sizeof(BlockHeader) == 8 && offsetof(BlockHeader, size) == 0 && offsetof(BlockHeader, owner) == 4);

// Why a family block was refused.
enum class FamilyBlockError : std::uint8_t {
  kOutsideArena,    // the offset is misaligned or the fixed part runs past the arena in use
  kBadBlock,        // the block's size is not a multiple of 8, too small, or runs past the arena in use
  kNotAFamily,      // the owner is not kFamilyOwner
  kLengthsOverrun,  // name, help and unit run past the block
  kBadKind,         // not a FamilyKind, or not a Prometheus family type or suffix
  kEmptyName,
};

// A decoded family block; name and help point into the arena.
struct FamilyRecord {
  FamilyKind kind;
  std::string_view name;
  std::string_view help;
  PromFamily prom;  // unit points into the arena too
};

// Decodes the family block at `off` of `arena`, the arena's bytes in use
// ([0, arena_used), which open() has checked lie inside the file).
[[nodiscard]] tl::expected<FamilyRecord, FamilyBlockError> decode_family_block(std::span<const std::byte> arena,
                                                                               std::uint64_t off) noexcept;

// A histogram series' native buckets (metric::NativeHistogram), kept in the
// series' block after its classic counts when StateSlot::native_region is 1:
// this header, then positive_n and then negative_n NativeBucketRecords, keys
// strictly increasing within each side. The rest of the block is room for
// buckets to come; a histogram that outgrows it moves to a larger block.
struct NativeRegion {
  std::int32_t schema;       // 0: -4..8
  std::uint32_t positive_n;  // 4
  std::uint32_t negative_n;  // 8
  std::uint32_t reserved;    // 12: 0
  double zero_threshold;     // 16: finite, >= 0
  double zero_count;         // 24: finite, >= 0
};
struct NativeBucketRecord {
  std::int32_t key;        // 0: |key| <= 1100 * 2^max(schema, 0) (every finite double's bucket)
  std::uint32_t reserved;  // 4: 0
  double count;            // 8: finite, >= 0
};
static_assert(std::is_trivially_copyable_v<NativeRegion> && std::is_trivially_copyable_v<NativeBucketRecord>);
static_assert(sizeof(NativeRegion) == 32 && offsetof(NativeRegion, positive_n) == 4 &&
              offsetof(NativeRegion, negative_n) == 8 && offsetof(NativeRegion, zero_threshold) == 16 &&
              offsetof(NativeRegion, zero_count) == 24);
static_assert(sizeof(NativeBucketRecord) == 16 && offsetof(NativeBucketRecord, count) == 8);

// Why a native region was refused.
enum class NativeRegionError : std::uint8_t {
  kNoRoom,          // the block has no room for the header
  kTooManyBuckets,  // positive_n + negative_n buckets run past the block
  kBadSchema,       // not in -4..8, or a reserved field is not 0
  kBadZeroBucket,   // zero threshold or count not finite and >= 0
  kBadKey,          // keys not strictly increasing, or beyond every finite value's bucket
  kBadCount,        // a count not finite and >= 0
};

// The decoded native region.
struct NativeRecord {
  std::int32_t schema = 0;
  double zero_threshold = 0;
  double zero_count = 0;
  std::vector<std::pair<std::int32_t, double>> positive;
  std::vector<std::pair<std::int32_t, double>> negative;
};

// Decodes the native region at the start of `room`, the bytes of a series'
// block after its classic counts (open() has checked the block lies in the
// arena in use). Every count and key is checked before any is kept.
[[nodiscard]] tl::expected<NativeRecord, NativeRegionError> decode_native_region(std::span<const std::byte> room);
// The bytes a native region of `buckets` buckets takes.
[[nodiscard]] constexpr std::uint64_t native_region_bytes(std::uint64_t buckets) noexcept {
  return sizeof(NativeRegion) + buckets * sizeof(NativeBucketRecord);
}

}  // namespace ringpipe::processors::detail
