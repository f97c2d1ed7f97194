#pragma once
// StateStore: one shard's aggregation state in a file-backed shared mapping
// (processors/STATE.md). A header with magic, version and geometry; a table of
// the last applied record seq per (input, lane); an undo log; fixed 64-byte
// series slots; a byte arena of label/family/histogram blocks. Every change
// made while applying a batch is preceded by an undo entry holding the old
// bytes; commit() empties the log with one store. open() rolls a non-empty
// log back, so the state is always that of the last commit. The store holds
// an OFD write lock on its file while it lives: one process at a time. Owned
// by one shard thread; not thread-safe. open() fails with "state: path: cause".

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "ringpipe/common/mapping.hpp"
#include "ringpipe/common/result.hpp"
#include "ringpipe/common/unique_fd.hpp"

namespace ringpipe::processors::detail {

// Version 2 split version 1's u32 key_len into key_len and native_region
// (u16 each; key_len is at most 60000, so a version-1 slot reads as one
// without a native region) and added the native region after a histogram's
// counts. open() takes a version-1 file and relabels it version 2.
inline constexpr std::uint32_t kStateVersion = 2;
inline constexpr std::uint32_t kStateVersionNoNative = 1;
inline constexpr std::uint32_t kStateMaxInputs = 8;
inline constexpr std::uint32_t kStateMaxLanes = 256;
inline constexpr std::uint32_t kFamilyOwner = UINT32_MAX;  // arena block owner of a family block

struct StateGeometry {
  std::uint32_t shard = 0;
  std::uint32_t shard_count = 1;
  std::uint64_t slot_capacity = 0;  // series slots
  std::uint64_t arena_bytes = 0;    // < 4 GiB: offsets are 32-bit
  std::uint64_t undo_bytes = 0;
};

// One series, fixed width; arena offsets, never pointers.
struct StateSlot {
  std::uint64_t hash;
  double value;             // counter, gauge, set (last completed window)
  std::int64_t expires_ns;  // CLOCK_MONOTONIC; 0: never
  double count;             // summary, histogram
  double sum;
  std::uint32_t block_off;   // arena block: header, labels (padded to 8), histogram counts, native region
  std::uint32_t family_off;  // arena block of the family
  std::uint16_t key_len;
  std::uint16_t native_region;  // 1: the block ends with a NativeRegion (state_layout.hpp); 0: none
  std::uint16_t label_count;
  std::uint8_t kind;  // FamilyKind
  std::uint8_t live;
  std::uint32_t spec;
  std::uint32_t hist_n;  // histogram counts in the block (buckets + 1)
};
static_assert(sizeof(StateSlot) == 64, "one series slot is one cache line");
static_assert(offsetof(StateSlot, key_len) == 48 && offsetof(StateSlot, native_region) == 50 &&
              offsetof(StateSlot, label_count) == 52 && offsetof(StateSlot, kind) == 54);

// Arena block header; blocks are contiguous from offset 0 to arena_used.
struct BlockHeader {
  std::uint32_t size;   // whole block, multiple of 8, >= 8
  std::uint32_t owner;  // 0 free, slot + 1, or kFamilyOwner
};

// The fields a transaction may change besides slots, arena and seqs.
struct StateControl {
  std::uint64_t committed_tx;
  std::uint64_t slot_high;  // slots [0, slot_high) have been used
  std::uint64_t arena_used;
  std::uint64_t instance_id;
  std::uint64_t input_creation[kStateMaxInputs];  // creation_id of each input ring
};
static_assert(sizeof(StateControl) == 96);

class StateStore {
 public:
  // Locks `path` and opens it if it holds a valid store of this geometry
  // (rolling back an unfinished transaction), else creates an empty one; a
  // file that exists but is refused is renamed to `<path>.rejected` and
  // *rejected says why. Fails, changing nothing, while another open file
  // description (a live processor) holds the lock, or when the file system
  // has no space for the slots and arena in use.
  [[nodiscard]] static Result<std::unique_ptr<StateStore>> open(const std::string& path, const StateGeometry& g,
                                                                bool* restored, std::string* rejected);
  // Validates as open() would, without creating, locking or rolling back;
  // the error says why a file is refused.
  [[nodiscard]] static Status check(const std::string& path, const StateGeometry& g);
  ~StateStore() = default;
  StateStore(const StateStore&) = delete;
  StateStore& operator=(const StateStore&) = delete;

  // Logs the old bytes of [off, off + len) of the file before they change.
  // False when the undo log is full (the caller must not change them).
  [[nodiscard]] bool log(std::uint64_t off, std::uint32_t len) noexcept;
  // Logs the control block once per transaction.
  [[nodiscard]] bool log_control() noexcept;
  // Ends the transaction: from now on a crash keeps every change made since the last commit.
  void commit() noexcept;
  // Rolls the open transaction back (tests simulate a crash with it plus re-open).
  void rollback() noexcept;
  [[nodiscard]] bool in_tx() const noexcept { return undo_used() != 0; }
  [[nodiscard]] std::uint64_t undo_used() const noexcept;
  [[nodiscard]] std::uint64_t undo_capacity() const noexcept { return geometry_.undo_bytes; }
  // Slots and arena are sparse until used. These give the file space for
  // slots [0, n) / the first `bytes` of the arena before they are touched (a
  // page without space would SIGBUS on a full file system); false, errno
  // set, when the space is not there. One fallocate per 1 MiB step.
  [[nodiscard]] bool reserve_slots(std::uint64_t n) noexcept {
    return n * sizeof(StateSlot) <= slots_reserved_ ||
           reserve(slots_off_, arena_off_ - slots_off_, &slots_reserved_, n * sizeof(StateSlot));
  }
  [[nodiscard]] bool reserve_arena(std::uint64_t bytes) noexcept {
    return bytes <= arena_reserved_ || reserve(arena_off_, size_ - arena_off_, &arena_reserved_, bytes);
  }

  [[nodiscard]] StateControl& control() noexcept;
  [[nodiscard]] StateSlot* slots() noexcept { return reinterpret_cast<StateSlot*>(base_ + slots_off_); }
  [[nodiscard]] std::byte* arena() noexcept { return base_ + arena_off_; }
  [[nodiscard]] std::uint64_t* applied(std::uint32_t input) noexcept {
    return reinterpret_cast<std::uint64_t*>(base_ + applied_off_) + std::size_t{input} * kStateMaxLanes;
  }
  [[nodiscard]] std::uint64_t offset_of(const void* p) const noexcept {
    return static_cast<std::uint64_t>(static_cast<const std::byte*>(p) - base_);
  }
  [[nodiscard]] const StateGeometry& geometry() const noexcept { return geometry_; }
  [[nodiscard]] const std::string& path() const noexcept { return path_; }

 private:
  StateStore() = default;
  [[nodiscard]] bool reserve(std::uint64_t region_off, std::uint64_t region_bytes, std::uint64_t* reserved,
                             std::uint64_t need) noexcept;
  std::string path_;
  StateGeometry geometry_;
  UniqueFd fd_;  // holds the lock
  UniqueMapping mapping_;
  std::byte* base_ = nullptr;  // mapping_.data(), size_ its size: the hot paths' copies
  std::size_t size_ = 0;
  std::uint64_t applied_off_ = 0;
  std::uint64_t undo_off_ = 0;
  std::uint64_t slots_off_ = 0;
  std::uint64_t arena_off_ = 0;
  std::uint64_t slots_reserved_ = 0;  // bytes from the slots' start with file space
  std::uint64_t arena_reserved_ = 0;
  bool control_logged_ = false;
  // The undo log's length as this process wrote it. The file's undo_len is
  // written for a restart to read; the hot path never reads it back, so a
  // stray write to the mapping cannot steer where the next entry goes.
  std::uint64_t undo_used_ = 0;
};

}  // namespace ringpipe::processors::detail
