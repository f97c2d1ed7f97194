#pragma once
// The ring file's byte layout (ring/FORMAT.md draws it). Offsets, not pointers;
// fixed-width little-endian fields; hot fields whole cache lines apart.
// Everything here lives in shared memory: another process may be buggy, dead
// or hostile, so every length read from it is bounds-checked before use.

#include <atomic>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "ringpipe/ring/detail/record.hpp"

namespace ringpipe::ring::detail {

static_assert(std::endian::native == std::endian::little, "the ring format is little-endian");

inline constexpr std::size_t kCacheLine = 64;
inline constexpr std::uint64_t kMagic = 0x45504950474e4952ULL;  // "RINGPIPE"
inline constexpr std::uint32_t kVersion = 2;          // 2: producers zero the next header's seq word before a commit
inline constexpr std::uint32_t kReady = 0x59444552u;  // "REDY", stored last at creation
inline constexpr std::size_t kPage = 4096;
inline constexpr std::uint32_t kMaxLanes = 256;
inline constexpr std::uint32_t kMaxReaders = 64;  // one bit each in RingHeader::sleepers
inline constexpr std::uint64_t kMinLaneCapacity = 4096;
inline constexpr std::uint64_t kMaxLaneCapacity = 1ULL << 40;
// OFD lock bytes (inside the header page; locks do not touch the bytes).
inline constexpr std::uint64_t kLaneLockBase = 2048;
inline constexpr std::uint64_t kReaderLockBase = 2048 + kMaxLanes;
// Held (briefly) by a process attaching a reader: finding a name and taking
// a slot for it is one step, so two attaches of one new name cannot both win.
inline constexpr std::uint64_t kAttachLockByte = kReaderLockBase + kMaxReaders;
static_assert(kAttachLockByte < kPage, "lock bytes stay inside the header page");
inline constexpr std::uint64_t kNameBytes = 40;

static_assert(std::atomic<std::uint64_t>::is_always_lock_free, "positions are shared between processes");
static_assert(std::atomic<std::uint32_t>::is_always_lock_free, "futex words are shared between processes");

struct RingHeader {
  // Line 0..1: identity and geometry. Written once at creation, before `ready`.
  std::uint64_t magic;               // 0
  std::uint32_t version;             // 8
  std::atomic<std::uint32_t> ready;  // 12: kReady, store-release last at creation
  std::uint64_t file_bytes;          // 16
  std::uint64_t lane_capacity;       // 24: power of two
  std::uint32_t lane_count;          // 32
  std::uint32_t max_readers;         // 36
  std::uint32_t max_record;          // 40: payload bytes
  std::uint32_t overflow;            // 44: Overflow
  std::uint64_t creation_id;         // 48: random per creation
  std::int64_t created_ns;           // 56: CLOCK_REALTIME
  std::uint64_t initial_position;    // 64
  std::int64_t reader_timeout_ns;    // 72
  std::uint64_t lanes_offset;        // 80
  std::uint64_t readers_offset;      // 88
  std::uint64_t reader_stride;       // 96
  std::uint64_t data_offset;         // 104
  std::uint64_t geometry_check;      // 112: hash of bytes 0..111 (ready read as 0)
  std::uint64_t reserved0;           // 120
  // Line 2: readers sleep here. data_seq is the futex word; bumped by a producer
  // that published while `sleepers` was non-zero.
  alignas(kCacheLine) std::atomic<std::uint32_t> data_seq;  // 128
  // 1 once a reader found membarrier() failing (a seccomp filter, an old
  // kernel): producers then publish with a sequentially consistent store,
  // which needs no barrier from the reader. Read by producers on every
  // publish from the line they read `sleepers` from anyway.
  std::atomic<std::uint32_t> no_membarrier;
  std::atomic<std::uint64_t> sleepers;  // bit per reader slot that may be sleeping
  // Line 3: producers blocked for space sleep here; readers bump it after
  // moving a cursor while space_waiters is non-zero.
  alignas(kCacheLine) std::atomic<std::uint32_t> space_seq;  // 192
  std::atomic<std::uint32_t> space_waiters;
  // Line 4: ring-wide counters (any process may add).
  alignas(kCacheLine) std::atomic<std::uint64_t> producer_attaches;  // 256
  std::atomic<std::uint64_t> reader_attaches;
  std::atomic<std::uint64_t> readers_evicted;
};
static_assert(offsetof(RingHeader, ready) == 12);
static_assert(offsetof(RingHeader, geometry_check) == 112);
static_assert(offsetof(RingHeader, data_seq) == 128, "readers' futex line");
static_assert(offsetof(RingHeader, space_seq) == 192, "producers' futex line");
static_assert(offsetof(RingHeader, producer_attaches) == 256);
static_assert(sizeof(RingHeader) <= kLaneLockBase, "the header must not reach the lock bytes");

// One per lane; one producer owns a lane at a time (OFD lock on its lock byte).
struct LaneControl {
  // Line 0: the commit point. Readers load `tail` with acquire; the producer
  // stores it with release after writing the records and `next_seq`.
  alignas(kCacheLine) std::atomic<std::uint64_t> tail;  // end of published records
  std::atomic<std::uint64_t> next_seq;                  // seq of the next record to publish
  // Odd while a publish changes `tail` and `next_seq`: a reader that needs
  // the seq due at the tail reads both between two equal even values
  // (Reader::tail_and_seq). An odd value at takeover is a dead owner's.
  // Zero in files made before it existed, which reads as "no publish open".
  std::atomic<std::uint64_t> publish_gen;
  // Line 1: overwrite bookkeeping. `intent` = end of the open claim (stored
  // before the claim's bytes are written); `oldest` = first intact record.
  alignas(kCacheLine) std::atomic<std::uint64_t> intent;
  std::atomic<std::uint64_t> oldest;
  // Line 2: owner and counters; written by the owner only, read by anyone.
  alignas(kCacheLine) std::atomic<std::uint32_t> owner_pid;
  std::atomic<std::uint32_t> owner_gen;
  std::atomic<std::uint64_t> records;
  std::atomic<std::uint64_t> bytes;
  std::atomic<std::uint64_t> dropped_records;
  std::atomic<std::uint64_t> recovered_claims;
  std::atomic<std::uint64_t> overwritten_records;
  std::atomic<std::uint64_t> full_waits;
  std::atomic<std::uint64_t> wakes;
  // Line 3: bumped by the owner after each scan of the readers' cursors, so a
  // newly attached reader can tell when producers have started to gate on it.
  alignas(kCacheLine) std::atomic<std::uint64_t> gate_epoch;
  // 1 while this lane's owner counts itself in RingHeader::space_waiters: an
  // owner killed while waiting leaves it set, and the next owner takes its
  // count back.
  std::atomic<std::uint32_t> space_waiting;
  std::uint32_t reserved3a;
  std::uint64_t reserved3[6];
};
static_assert(sizeof(LaneControl) == 4 * kCacheLine, "LaneControl is part of the format");
static_assert(offsetof(LaneControl, intent) == kCacheLine, "claim intent apart from the commit line");
static_assert(offsetof(LaneControl, publish_gen) == 16, "the seqlock shares the commit line");
static_assert(offsetof(LaneControl, owner_pid) == 2 * kCacheLine, "counters apart from hot lines");
// Producer::commit_tail reaches these as word arrays: tail, next_seq,
// publish_gen; records, bytes.
static_assert(offsetof(LaneControl, next_seq) == offsetof(LaneControl, tail) + 8 &&
              offsetof(LaneControl, publish_gen) == offsetof(LaneControl, tail) + 16);
static_assert(offsetof(LaneControl, bytes) == offsetof(LaneControl, records) + 8);

enum SlotState : std::uint32_t { kSlotFree = 0, kSlotInit = 1, kSlotActive = 2, kSlotDead = 3 };

// One per reader; cursors[lane_count] follow it (reader_stride bytes in all).
struct ReaderSlot {
  // Line 0: identity. `state` = (generation << 8) | SlotState.
  alignas(kCacheLine) std::atomic<std::uint32_t> state;
  std::atomic<std::uint32_t> pid;
  std::atomic<std::int64_t> dead_since_ns;  // 0 = not seen dead; set by a producer
  char name[kNameBytes];                    // NUL-padded
  std::atomic<std::uint32_t> flags;         // kSlotDurable: gates producers
  std::uint32_t reserved0;
  // Line 1: counters; written by the reader only.
  alignas(kCacheLine) std::atomic<std::uint64_t> records;
  std::atomic<std::uint64_t> bytes;
  std::atomic<std::uint64_t> lapped_records;
  std::atomic<std::uint64_t> torn_records;
  std::atomic<std::uint64_t> corrupt_records;
  std::atomic<std::uint64_t> evictions;  // added by producers
  std::atomic<std::uint64_t> attaches;
  std::atomic<std::uint64_t> sleeps;
  // Then: Cursor cursor[lane_count], padded to a cache line.
};

inline constexpr std::uint32_t kSlotDurable = 1;  // gates producers (named for version 1, where it also meant kept)
inline constexpr std::uint32_t kSlotKept = 2;     // kept across detach, resumed by name; not gating unless kSlotDurable

// A reader's place in one lane. `pos` is what producers gate on; `seq` is the
// seq expected next (for counting records lost to laps across restarts).
struct Cursor {
  std::atomic<std::uint64_t> pos;
  std::atomic<std::uint64_t> seq;  // 0 = unknown
};
static_assert(sizeof(Cursor) == 16);
static_assert(sizeof(ReaderSlot) == 2 * kCacheLine, "ReaderSlot is part of the format");
static_assert(offsetof(ReaderSlot, name) == 16);

inline Cursor* cursors(ReaderSlot* s) noexcept {
  return reinterpret_cast<Cursor*>(reinterpret_cast<std::byte*>(s) + sizeof(ReaderSlot));
}

// Where each part starts, derived from the geometry alone (open() recomputes
// it and refuses a header that disagrees).
struct Layout {
  std::uint64_t lanes_offset;
  std::uint64_t readers_offset;
  std::uint64_t reader_stride;
  std::uint64_t data_offset;
  std::uint64_t file_bytes;
};
constexpr std::uint64_t round_up(std::uint64_t n, std::uint64_t a) noexcept { return (n + a - 1) / a * a; }
constexpr Layout compute_layout(std::uint64_t lane_capacity, std::uint32_t lanes, std::uint32_t readers) noexcept {
  Layout l{};
  l.lanes_offset = kPage;
  l.readers_offset = round_up(l.lanes_offset + std::uint64_t{lanes} * sizeof(LaneControl), kCacheLine);
  l.reader_stride = sizeof(ReaderSlot) + round_up(std::uint64_t{lanes} * sizeof(Cursor), kCacheLine);
  l.data_offset = round_up(l.readers_offset + std::uint64_t{readers} * l.reader_stride, kPage);
  l.file_bytes = l.data_offset + std::uint64_t{lanes} * lane_capacity;
  return l;
}

constexpr std::uint32_t slot_state(std::uint32_t word) noexcept { return word & 0xff; }
constexpr std::uint32_t slot_gen(std::uint32_t word) noexcept { return word >> 8; }
constexpr std::uint32_t make_state(std::uint32_t gen, std::uint32_t st) noexcept { return (gen << 8) | st; }

// FNV-1a over the identity block with `ready` taken as zero.
std::uint64_t geometry_hash(const RingHeader& h) noexcept;

}  // namespace ringpipe::ring::detail
