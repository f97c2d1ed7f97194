#pragma once
// The shared-memory ring: one file, many producers in any processes, many
// named readers each at its own pace (fan-out). ring/FORMAT.md holds the byte
// layout and the protocol; this header is the whole public interface.
//
// Ring      owns one mapping of the file; cheap to share read-only between
//           threads (Producer and Reader each open their own descriptor).
// Producer  one lane of the ring, owned exclusively (kernel OFD lock) for its
//           lifetime; used by one thread. Never allocates or logs.
// Reader    one named cursor set, owned exclusively (OFD lock); used by one
//           thread. Reads records in place.
// Failures: create/open/attach return Result with "what: path: cause";
// reading and writing return status values; corrupt shared memory is counted,
// never trusted.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "ringpipe/common/mapping.hpp"
#include "ringpipe/common/result.hpp"
#include "ringpipe/common/unique_fd.hpp"
#include "ringpipe/ring/detail/record.hpp"

namespace ringpipe::ring {

namespace detail {
struct RingHeader;
struct LaneControl;
struct ReaderSlot;
}  // namespace detail

enum class Overflow : std::uint32_t {
  kBlock = 1,      // producers wait for the slowest live reader; nothing is lost
  kDrop = 2,       // a record that does not fit is refused and counted
  kOverwrite = 3,  // the oldest data is reused; lapped readers skip ahead and count
};
[[nodiscard]] std::string_view overflow_name(Overflow o) noexcept;
[[nodiscard]] std::optional<Overflow> parse_overflow(std::string_view s) noexcept;

struct RingOptions {
  std::uint64_t lane_capacity_bytes = 1u << 20;  // power of two, >= 4 KiB
  std::uint32_t lanes = 8;                       // most producers attached at once (1..256)
  std::uint32_t max_readers = 16;                // 1..64
  Overflow overflow = Overflow::kBlock;
  std::uint32_t max_record_bytes = 0;  // payload limit; 0 = lane capacity / 4
  // A reader found dead keeps gating `block`/`drop` producers this long, so a
  // restarted reader loses nothing; after it the reader stops gating.
  std::chrono::milliseconds reader_timeout{2000};
  std::uint64_t initial_position = 0;  // tests start positions near 2^32 / 2^64
  friend bool operator==(const RingOptions&, const RingOptions&) = default;
};

// What a reader is handed: the payload lives in the mapping (no copy).
struct RecordView {
  std::uint16_t type;
  std::uint32_t lane;
  std::uint64_t seq;       // per lane, strictly increasing
  std::uint64_t position;  // byte position of the record in its lane
  std::span<const std::byte> payload;
};

inline constexpr std::uint16_t kPadRecordType = 0;  // internal; never handed to readers

struct LaneStats {
  std::uint32_t lane;
  bool owned;  // a live producer holds it
  std::uint32_t owner_pid;
  std::uint64_t tail;
  std::uint64_t next_seq;
  std::uint64_t records;
  std::uint64_t bytes;
  std::uint64_t dropped_records;   // refused: ring full (drop) or deadline passed (block)
  std::uint64_t recovered_claims;  // claims left open by a dead producer, found at takeover
  std::uint64_t full_waits;        // times a producer found no space
  std::uint64_t wakes;             // wake syscalls made for sleeping readers
};

struct ReaderStats {
  std::string name;
  std::uint32_t slot;
  enum class State { kFree, kInit, kActive, kDead } state;
  bool alive;  // its owner process holds the slot's lock
  std::uint32_t pid;
  std::uint64_t records;
  std::uint64_t bytes;
  std::uint64_t lapped_records;   // lost because producers passed it (exact: seq gaps)
  std::uint64_t torn_records;     // times a read was caught mid-reuse and redone (subset of the loss)
  std::uint64_t corrupt_records;  // failed a bounds check; skipped
  std::uint64_t evictions;        // times producers stopped waiting for it
  std::uint64_t sleeps;           // futex sleeps in wait()
  std::uint64_t lag_bytes;        // sum over lanes of tail - cursor
  bool gating;                    // producers wait for it: durable, not gating=false, and the ring not overwrite
  std::vector<std::uint64_t> lane_lag_bytes;  // per lane: tail - cursor (0 when more than a lane behind)
  std::uint64_t max_lane_lag_bytes;           // the largest of lane_lag_bytes: how full it keeps its fullest lane
  // Records published and not yet read, over lanes: each lane's next_seq less
  // the seq the reader expects there. Counted from sequence numbers, so it
  // stays right when the slot was made anew (its `records` restart at 0).
  // Not known (false) while the reader has not learnt a lane's seq yet and
  // has bytes to read there.
  std::uint64_t lag_records;
  bool lag_records_known;
};

struct RingStats {
  std::string path;
  std::uint64_t creation_id;
  Overflow overflow;
  std::uint64_t lane_capacity_bytes;
  std::uint32_t lanes;
  std::uint32_t max_readers;
  std::uint32_t max_record_bytes;
  std::uint64_t file_bytes;
  std::vector<LaneStats> lane;
  std::vector<ReaderStats> readers;  // slots in use only
};

class Ring {
 public:
  // Creates a new ring file (mode 0600, parent directories made); fails if it
  // exists. The whole file is allocated now, so a full tmpfs fails here and
  // never later as SIGBUS.
  [[nodiscard]] static Result<Ring> create(const std::string& path, const RingOptions& options);
  // Opens an existing ring after validating magic, version, readiness and geometry.
  [[nodiscard]] static Result<Ring> open(const std::string& path);
  // Opens the ring if it exists with the same geometry and policy, else creates it.
  [[nodiscard]] static Result<Ring> open_or_create(const std::string& path, const RingOptions& options);

  Ring(Ring&&) noexcept = default;
  Ring& operator=(Ring&&) noexcept = default;
  ~Ring() = default;

  [[nodiscard]] const std::string& path() const noexcept { return path_; }
  [[nodiscard]] Overflow overflow() const noexcept;
  [[nodiscard]] std::uint64_t lane_capacity() const noexcept;
  [[nodiscard]] std::uint32_t lanes() const noexcept;
  [[nodiscard]] std::uint32_t max_readers() const noexcept;
  [[nodiscard]] std::uint32_t max_record_bytes() const noexcept;
  [[nodiscard]] std::uint64_t creation_id() const noexcept;

  // Counters of every lane and reader, read from shared memory without asking anyone.
  [[nodiscard]] RingStats stats() const;
  // True once another process truncated the file under this mapping (a
  // SIGBUS there was caught: see UniqueMapping). The ring is refused from
  // then on: producers get WriteStatus::kRingLost, readers read nothing,
  // and the component should stop (a restart's open refuses the file).
  [[nodiscard]] bool truncated() const noexcept { return mapping_.lost(); }
  // Forgets a reader so it no longer gates producers; fails if it is alive.
  [[nodiscard]] Status remove_reader(std::string_view name) const;

 private:
  friend class Producer;
  friend class Reader;
  Ring() = default;
  [[nodiscard]] detail::RingHeader* header() const noexcept;
  [[nodiscard]] detail::LaneControl* lane(std::uint32_t i) const noexcept;
  [[nodiscard]] detail::ReaderSlot* reader_slot(std::uint32_t i) const noexcept;
  [[nodiscard]] std::byte* lane_data(std::uint32_t i) const noexcept;

  // The geometry as validated at create/open, kept privately: the shared
  // header can be overwritten by anyone with the file, so no offset or size
  // is ever read from it again after validation.
  struct Geometry {
    std::uint64_t lane_capacity = 0;
    std::uint32_t lanes = 0;
    std::uint32_t max_readers = 0;
    std::uint32_t max_record = 0;
    Overflow overflow = Overflow::kBlock;
    std::int64_t reader_timeout_ns = 0;
    std::uint64_t creation_id = 0;
    std::uint64_t lanes_offset = 0;
    std::uint64_t readers_offset = 0;
    std::uint64_t reader_stride = 0;
    std::uint64_t data_offset = 0;
    std::uint64_t file_bytes = 0;
  };
  void keep_geometry(const detail::RingHeader& h) noexcept;

  std::string path_;
  UniqueFd fd_;  // holds no lock; used to ask the kernel who holds which
  Geometry geo_;
  UniqueMapping mapping_;
  std::uint64_t dev_ = 0;
  std::uint64_t ino_ = 0;
};

enum class WriteStatus : std::uint8_t {
  kOk,
  kFull,      // no space now (drop: counted as dropped by the caller's choice to give up)
  kTimeout,   // block: no space before the deadline
  kTooLarge,  // larger than max_record_bytes
  kBadType,   // type 0 is the ring's own padding, never a record
  kRingLost,  // the ring file was truncated under this process (Ring::truncated): nothing written
};

class Producer {
 public:
  // Takes a free lane; fails with "no free lane" when `lanes` producers are attached.
  [[nodiscard]] static Result<Producer> attach(const Ring& ring);

  Producer(Producer&&) noexcept;
  Producer& operator=(Producer&&) noexcept;
  ~Producer();

  // One record: claim, copy, publish. Never blocks (kFull under block/drop when
  // full). A refused record is counted in the lane's dropped_records. The
  // common case (no batch open, room under the cached limit) is inline.
  [[nodiscard, gnu::always_inline]] inline WriteStatus try_write(std::uint16_t type,
                                                                 std::span<const std::byte> payload) noexcept {
    if (batch_first_ == nullptr && append_fast<true>(type, payload)) [[likely]] {
      // The record commits itself (its seq); make it visible. append_fast
      // declines whenever a fault hook is installed, so this path has no
      // fault points: try_write_slow's publish() has them.
      commit_tail();
      if (any_mapping_lost() ||
          sleepers_->load(asymmetric_ ? std::memory_order_relaxed : std::memory_order_seq_cst) != 0) [[unlikely]] {
        after_commit();
      }
      return WriteStatus::kOk;
    }
    return try_write_slow(type, payload);
  }
  // As try_write, but under `block` waits (spin, yield, futex) up to `timeout`.
  [[nodiscard]] WriteStatus write(std::uint16_t type, std::span<const std::byte> payload,
                                  std::chrono::nanoseconds timeout) noexcept;

  // Zero-copy and batching: claim space for one record of up to `max_bytes`,
  // write into the span, then finish() it with the bytes used. Finished
  // records become visible to readers together at publish(): one store for a
  // whole batch (the seq of its first record). A claim that is never
  // finished is simply abandoned; so is a batch whose producer dies before
  // publish().
  [[nodiscard]] std::span<std::byte> try_claim(std::size_t max_bytes, WriteStatus* status = nullptr) noexcept;
  [[nodiscard]] std::span<std::byte> claim(std::size_t max_bytes, std::chrono::nanoseconds timeout,
                                           WriteStatus* status = nullptr) noexcept;
  void finish(std::uint16_t type, std::size_t used_bytes) noexcept;
  // finish() then publish(), for a record that is its own batch.
  void finish_and_publish(std::uint16_t type, std::size_t used_bytes) noexcept;
  // Appends one record without publishing it (batch building). The common
  // case (room before the lane's end, under the cached limit) is inline.
  // Always inlined: it is the per-record cost of every batch (a call costs more than its body).
  [[nodiscard, gnu::always_inline]] inline WriteStatus try_append(std::uint16_t type,
                                                                  std::span<const std::byte> payload) noexcept {
    if (append_fast<false>(type, payload)) [[likely]]
      return WriteStatus::kOk;
    return try_append_slow(type, payload);
  }
  void publish() noexcept;

  // claim/try_claim leave a refusal uncounted (the caller may retry): a caller
  // that gives up counts it here, in the lane's shared dropped_records.
  void count_dropped(std::uint64_t records) noexcept;

  [[nodiscard]] std::uint32_t lane() const noexcept { return lane_; }
  [[nodiscard]] std::size_t max_record_bytes() const noexcept { return max_record_; }

 private:
  Producer() = default;
  bool ensure_space(std::uint64_t end, std::int64_t timeout_ns) noexcept;
  bool refresh_limit(std::uint64_t end, std::int64_t now_ns) noexcept;
  void advance_oldest(std::uint64_t end) noexcept;
  void wait_for_space(std::int64_t deadline_ns) noexcept;
  void take_over(std::uint64_t intent, bool owner_died) noexcept;
  // Raises the lane's `intent` to `reach` where it falls short (claim, finish).
  void cover(std::uint64_t reach) noexcept;
  // Around the stores of `next_seq` and `tail` (LaneControl::publish_gen).
  void begin_publish() noexcept {
    commit_[kCommitPublishGen].store(++publish_gen_, std::memory_order_relaxed);
    std::atomic_thread_fence(std::memory_order_release);  // odd before next_seq and tail change
  }
  void end_publish() noexcept {
    commit_[kCommitPublishGen].store(++publish_gen_, std::memory_order_release);  // even after them
  }
  // Makes every finished record visible: the lane's counters, then next_seq
  // and tail inside the publish_gen seqlock. Inline, so that a record
  // written on its own (try_write) costs no call to publish.
  [[gnu::always_inline]] inline void commit_tail() noexcept {
    records_total_ += pending_records_;
    bytes_total_ += pending_bytes_;
    pending_records_ = 0;
    pending_bytes_ = 0;
    counts_[0].store(records_total_, std::memory_order_relaxed);
    counts_[1].store(bytes_total_, std::memory_order_relaxed);
    begin_publish();
    commit_[kCommitNextSeq].store(seq_, std::memory_order_relaxed);
    // The commit: pairs with the reader's acquire load of tail, which makes the
    // records' bytes and next_seq visible. It is also one half of a Dekker
    // pair with Reader::wait (the reader sets its sleeper bit, then re-reads
    // the tails; we publish, then read the bits), so that no wake-up is lost.
    // With membarrier the reader's side supplies the full fence on our CPU and
    // this path stays a plain store (no stall on the tail line); without it
    // (never registered, or a reader could not use it) the store is
    // sequentially consistent.
    if (asymmetric_ && no_membarrier_->load(std::memory_order_relaxed) == 0) [[likely]] {
      commit_[kCommitTail].store(tail_, std::memory_order_release);
      std::atomic_signal_fence(std::memory_order_seq_cst);  // keeps the sleepers load after the store
    } else {
      commit_[kCommitTail].exchange(tail_, std::memory_order_seq_cst);
    }
    end_publish();
    published_ = tail_;
  }
  // After commit_tail, when a mapping was lost or a reader may sleep: the
  // truncation check and the wake-up (out of line: rare).
  void after_commit() noexcept;
  void wake_sleepers() noexcept;
  void adopt_finished(std::uint64_t end) noexcept;
  [[nodiscard]] WriteStatus try_append_slow(std::uint16_t type, std::span<const std::byte> payload) noexcept;
  [[nodiscard]] WriteStatus try_write_slow(std::uint16_t type, std::span<const std::byte> payload) noexcept;
  // The inline case of try_append and try_write: room before the lane's end,
  // under the cached limit. Direct: the record is committed by its own seq
  // (try_write; the caller publishes at once), else it joins the open batch.
  template <bool Direct>
  [[nodiscard, gnu::always_inline]] inline bool append_fast(std::uint16_t type,
                                                            std::span<const std::byte> payload) noexcept {
    const std::uint64_t need = detail::record_bytes(payload.size());
    const std::uint64_t idx = tail_ & mask_;
    const std::uint64_t end = tail_ + need;
    // Only records that leave room for the next header before the lane's
    // end: such a record always cleans ahead (cleans_after(end) holds).
    const std::uint64_t reach = end + detail::kCleanAhead;  // reach_of(end)
    if (!(payload.size() <= max_record_ && idx != 0 && idx + need + detail::kCleanAhead <= cap_ &&
          type != kPadRecordType && static_cast<std::int64_t>(reach - limit_) <= 0 && reach - oldest_ <= cap_ &&
          !slow_only_)) [[unlikely]]
      return false;
    // See claim(): the extent before the bytes, and never back. written_
    // only needs to follow claims (which may be abandoned); each append
    // reaches past the one before it.
    if (static_cast<std::int64_t>(reach - written_) > 0) {
      intent_->store(reach, std::memory_order_relaxed);
      std::atomic_thread_fence(std::memory_order_release);
    }
    std::byte* at = data_ + idx;
    if (!payload.empty()) std::memcpy(at + sizeof(detail::RecordHeader), payload.data(), payload.size());
    if constexpr (Direct) {
      std::atomic_ref<std::uint64_t>(*reinterpret_cast<std::uint64_t*>(data_ + (end & mask_) + 8))
          .store(0, std::memory_order_relaxed);
      detail::store_header(at, static_cast<std::uint32_t>(payload.size()), type, seq_++);
    } else {
      // A record joining the open batch. Never one to publish on its own
      // here: try_write_slow sets direct_next_ only when no batch is open,
      // and then this same test has just failed in append_fast<true>.
      if (batch_first_ == nullptr) {
        batch_first_ = at;
        batch_first_seq_ = seq_++;
        detail::store_header(at, static_cast<std::uint32_t>(payload.size()), type, 0);
      } else {
        detail::store_header(at, static_cast<std::uint32_t>(payload.size()), type, seq_++);
      }
    }
    tail_ = end;
    ++pending_records_;
    pending_bytes_ += payload.size();
    return true;
  }
  // Writes a finished record's header. The first record of a batch gets seq 0
  // (never expected by a reader), which holds the whole batch back until
  // publish() stores its real seq: readers do not chase a producer through a
  // batch line by line, and a batch whose producer dies is never seen.
  // A record written and published on its own (try_write, write,
  // finish_and_publish) is committed directly instead: no second store.
  // A record committed here (direct) first has the seq word after it
  // cleared; a batch's is cleared at publish (clear_next_seq).
  void write_header(std::byte* at, std::uint64_t end, std::uint32_t length, std::uint16_t type) noexcept {
    if (batch_first_ == nullptr && !direct_next_) {
      batch_first_ = at;
      batch_first_seq_ = seq_++;
      detail::store_header(at, length, type, 0);
    } else {
      if (direct_next_) clear_next_seq(end);
      detail::store_header(at, length, type, seq_++);
    }
  }
  // `next` is the position just past a record. Where the next record's
  // header goes inside the same lap, its seq word must hold nothing a reader
  // could take for a commit (an old payload may hold any value) by the time
  // this record is committed. At a lap's start there is nothing to do: that
  // slot always holds a header of an earlier lap, whose seq is older than any
  // a reader expects (or one zeroed at takeover).
  [[nodiscard]] bool cleans_after(std::uint64_t next) const noexcept {
    const std::uint64_t idx = next & mask_;
    return idx != 0 && cap_ - idx >= sizeof(detail::RecordHeader);
  }
  // How far a claim ending at `end` writes: to its end, and through the next
  // header slot where clear_next_seq zeroes its seq word (kCleanAhead).
  [[nodiscard]] std::uint64_t reach_of(std::uint64_t end) const noexcept {
    return cleans_after(end) ? end + detail::kCleanAhead : end;
  }
  // Zeroes the seq word of the header slot at `next`, right before the
  // commit that makes the records up to `next` visible: once per commit (a
  // batch's publish, a direct record), one store into a line the producer
  // writes anyway or the one after it; never a load. `intent` already
  // covers reach_of(next).
  void clear_next_seq(std::uint64_t next) noexcept {
    if (!cleans_after(next)) return;
    std::atomic_ref<std::uint64_t>(*reinterpret_cast<std::uint64_t*>(data_ + (next & mask_) + 8))
        .store(0, std::memory_order_relaxed);
  }

  const Ring* ring_ = nullptr;
  UniqueFd fd_;  // holds the lane's OFD lock; also used for reader liveness checks
  detail::RingHeader* hdr_ = nullptr;
  detail::LaneControl* lc_ = nullptr;
  std::byte* data_ = nullptr;
  std::uint32_t lane_ = 0;
  std::uint64_t cap_ = 0;
  std::uint64_t mask_ = 0;
  std::size_t max_record_ = 0;
  std::uint32_t overflow_ = 0;
  std::uint64_t tail_ = 0;           // local end of finished records
  std::uint64_t published_ = 0;      // what readers can see
  std::uint64_t seq_ = 0;            // seq of the next record
  std::uint64_t limit_ = 0;          // may write up to here without looking at readers
  std::uint64_t oldest_ = 0;         // oldest intact record
  std::uint64_t records_total_ = 0;  // mirrors of this lane's shared counters
  std::uint64_t bytes_total_ = 0;
  std::uint64_t claim_pos_ = 0;  // where the open claim's header goes
  // Bytes of the open claim, 0 when none is open (a record takes at least
  // its header: never 0). Not its end position: a claim may end exactly at
  // position 2^64, which is 0.
  std::uint64_t claim_need_ = 0;
  std::uint64_t pending_records_ = 0;
  std::uint64_t pending_bytes_ = 0;
  std::int64_t next_liveness_check_ns_ = 0;
  bool asymmetric_ = false;  // publish with plain stores; sleeping readers use membarrier
  bool slow_only_ = false;   // a test installed a fault hook (take the path that calls it), or the ring was lost
  std::atomic<std::uint64_t>* intent_ = nullptr;
  // The lane's commit line (tail, next_seq, publish_gen: LaneControl's first
  // three words), its records and bytes counters, and the ring's sleepers
  // and no_membarrier words: what commit_tail touches, reachable inline.
  static constexpr std::size_t kCommitTail = 0;
  static constexpr std::size_t kCommitNextSeq = 1;
  static constexpr std::size_t kCommitPublishGen = 2;
  std::atomic<std::uint64_t>* commit_ = nullptr;
  std::atomic<std::uint64_t>* counts_ = nullptr;
  const std::atomic<std::uint64_t>* sleepers_ = nullptr;
  const std::atomic<std::uint32_t>* no_membarrier_ = nullptr;
  std::uint64_t publish_gen_ = 0;     // local copy of the lane's publish_gen (even between publishes)
  std::uint64_t written_ = 0;         // local copy of the lane's `intent`: the furthest byte any claim may have written
  std::byte* batch_first_ = nullptr;  // header of the batch's first record, until publish()
  bool direct_next_ = false;          // the record being finished is published right away
  std::uint64_t batch_first_seq_ = 0;
};

enum class StartAt : std::uint8_t {
  kOldest,  // a new reader starts at the oldest data still in the ring
  kLatest,  // a new reader starts at the current tails
  kReader,  // a new reader starts where the reader named ReaderOptions::from is
};

struct ReaderOptions {
  StartAt start = StartAt::kOldest;  // only for a name the ring does not know yet
  // A durable reader gates `block`/`drop` producers and keeps its slot when it
  // detaches (so a restart resumes); a non-durable one (tail, stat) never
  // gates and frees its slot on detach.
  bool durable = true;
  std::string from;  // with StartAt::kReader: the reader whose cursors to copy
  // Only for a durable reader: false keeps the slot and cursors across
  // restarts but never holds producers back. Such a reader (a consumer that
  // may stall for minutes, as a remote_write exporter whose endpoint is
  // down) is lapped instead, counts exactly what it lost (lapped_records)
  // and gets checked copies, as a non-durable reader does.
  bool gating = true;
};

class Reader {
 public:
  // Attaches reader `name` (<= 39 bytes): resumes its cursors if the name is
  // known, else takes a free slot and starts at `start`. Fails if another live
  // process holds the name or no slot is free.
  [[nodiscard]] static Result<Reader> attach(const Ring& ring, std::string_view name, ReaderOptions options = {});

  Reader(Reader&&) noexcept;
  Reader& operator=(Reader&&) noexcept;
  ~Reader();

  // Hands up to `max_records` committed records to f(const RecordView&), lane
  // by lane, then publishes the cursors (once per lane batch). The views point
  // into the mapping and stay valid until f returns. Under `overwrite` a
  // producer may reuse bytes at any time, so there each record is copied to a
  // reader-owned buffer and handed over only once proven intact; a record
  // caught mid-reuse is skipped (torn) and its loss counted in lapped_records.
  // Returns the records handed over.
  template <class F>
  std::size_t poll(F&& f, std::size_t max_records = SIZE_MAX) {
    return poll_impl(
        [](void* ctx, const RecordView& v) {
          (*static_cast<std::remove_reference_t<F>*>(ctx))(v);
          return true;
        },
        &f, max_records);
  }
  // As poll(), but f(const RecordView&) returns whether it took the record:
  // false leaves that record unread — the cursor stays before it, so the next
  // poll (or the next process attaching this reader) gets it again — and ends
  // this poll. For consumers that commit only what they could deliver.
  template <class F>
  std::size_t poll_while(F&& f, std::size_t max_records = SIZE_MAX) {
    return poll_impl(
        [](void* ctx, const RecordView& v) -> bool { return (*static_cast<std::remove_reference_t<F>*>(ctx))(v); }, &f,
        max_records);
  }

  // Waits until some lane may have data or the timeout passes: spins, yields,
  // then sleeps on the ring's futex (producers wake it only when someone sleeps).
  // Returns true when data is available.
  bool wait(std::chrono::nanoseconds timeout) noexcept;
  [[nodiscard]] bool has_data() const noexcept;
  // A latency budget for wait(): while records keep arriving (some arrived
  // in the last `idle`), wait() neither spins nor asks producers for a
  // wake-up: it sleeps `budget` at a time and looks again, so a busy reader
  // wakes at most once per budget whatever the record rate, takes what came
  // meanwhile in one poll, and producers make no wake syscall. Once nothing
  // arrived for `idle` it sleeps on the futex as without a budget (the first
  // record wakes it at once). A record waits at most `budget` longer than
  // without one. 0 (the default) turns it off.
  void set_wait_budget(std::chrono::nanoseconds budget, std::chrono::nanoseconds idle) noexcept;

  [[nodiscard]] const std::string& name() const noexcept { return name_; }
  [[nodiscard]] std::uint32_t slot() const noexcept { return slot_; }
  [[nodiscard]] ReaderStats stats() const;

 private:
  using Callback = bool (*)(void*, const RecordView&);  // false: record not taken
  Reader() = default;
  std::size_t poll_impl(Callback cb, void* ctx, std::size_t max_records);
  std::size_t poll_lane(std::uint32_t lane, Callback cb, void* ctx, std::size_t max_records);
  std::size_t poll_lane_slow(std::uint32_t lane, Callback cb, void* ctx, std::size_t max_records);
  void finish_lane(std::uint32_t lane, std::uint64_t cursor, std::uint64_t expect, bool known, std::size_t n,
                   std::uint64_t bytes, std::uint64_t lapped, std::uint64_t corrupt, std::uint64_t torn);
  // After a lap: restart at `oldest`, else at the tail; returns the seq due
  // at the tail when it landed there (the caller counts the gap as lapped).
  std::optional<std::uint64_t> resync(std::uint32_t lane) noexcept;
  // The lane's tail and the seq due there, as one publish left them; nullopt
  // while publishes keep changing them (or a dead producer left one open).
  [[nodiscard]] std::optional<std::pair<std::uint64_t, std::uint64_t>> tail_and_seq(std::uint32_t lane) const noexcept;
  void start_lane(std::uint32_t lane, StartAt start) noexcept;
  [[nodiscard]] bool has_data_seq_cst() const noexcept;
  bool wait_budgeted(std::chrono::nanoseconds timeout) noexcept;
  // Sets the sleepers bit and sleeps on the futex until data or `deadline`.
  bool sleep_until_data(std::int64_t deadline) noexcept;

  const Ring* ring_ = nullptr;
  UniqueFd fd_;
  detail::RingHeader* hdr_ = nullptr;
  detail::ReaderSlot* slot_ptr_ = nullptr;
  std::string name_;
  std::uint32_t slot_ = 0;
  std::uint32_t lanes_ = 0;
  std::uint32_t next_lane_ = 0;
  std::uint64_t cap_ = 0;
  std::uint64_t mask_ = 0;
  std::size_t max_record_ = 0;
  std::vector<std::uint64_t> cursor_;      // local copy of the shared cursors
  std::vector<std::uint64_t> expect_seq_;  // next seq expected per lane
  std::vector<std::uint8_t> seq_known_;
  std::unique_ptr<std::byte[]> scratch_;   // overwrite rings: a record is copied, then validated
  std::vector<std::uint64_t> gated_from_;  // per lane: gate_epoch that proves producers gate on us
  std::vector<std::uint8_t> gated_;
  std::vector<std::uint8_t> bad_tail_;  // per lane: a misaligned tail was seen (and counted once)
  bool durable_ = true;
  bool gating_ = true;  // durable_ && options.gating: producers wait for it
  bool overwrite_ = false;
  bool block_ = false;
  bool refused_ = false;  // the current poll's callback declined a record
  std::uint64_t records_total_ = 0;
  std::uint64_t bytes_total_ = 0;
  std::uint64_t sleeps_ = 0;
  std::int64_t membarrier_failed_ns_ = 0;  // when this reader found membarrier() failing and said so
  std::int64_t budget_ns_ = 0;             // set_wait_budget: sleep this long between looks while busy
  std::int64_t idle_ns_ = 0;               // ... until nothing arrived for this long
  std::int64_t last_data_ns_ = 0;          // when wait() last found data
};

}  // namespace ringpipe::ring
