#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <thread>

#include "layout.hpp"
#include "os.hpp"
#include "ringpipe/common/log.hpp"
#include "ringpipe/ring/fault.hpp"
#include "ringpipe/ring/ring.hpp"

namespace ringpipe::ring {

using namespace detail;

namespace {
std::atomic<FaultHook> g_fault_hook{nullptr};

inline void fault(FaultPoint p) noexcept {
  if (FaultHook h = g_fault_hook.load(std::memory_order_relaxed)) [[unlikely]]
    h(p);
}

constexpr std::int64_t kLivenessCheckIntervalNs = 1'000'000;  // at most one probe round per ms
constexpr std::int64_t kMaxSleepNs = 1'000'000;               // sleepers wake to re-run liveness checks
}  // namespace

void set_fault_hook(FaultHook hook) noexcept { g_fault_hook.store(hook, std::memory_order_relaxed); }

namespace detail {
Result<UniqueFd> open_same_file(const std::string& path, std::uint64_t dev, std::uint64_t ino, std::uint64_t bytes,
                                const std::string& w) {
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_CLOEXEC | O_NOFOLLOW));
  if (!fd.valid()) return errno_error(w);
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return errno_error(w + ": fstat");
  if (st.st_dev != dev || st.st_ino != ino) {
    return tl::unexpected(Error{std::error_code(ESTALE, std::system_category()),
                                w + ": the file was replaced since the ring was opened"});
  }
  // Someone truncated it: touching the mapping past the end would be SIGBUS.
  if (static_cast<std::uint64_t>(st.st_size) < bytes) {
    return make_error(std::errc::invalid_argument, w + ": truncated to " + std::to_string(st.st_size) +
                                                       " bytes since it was opened (expected " + std::to_string(bytes) +
                                                       ")");
  }
  return fd;
}
}  // namespace detail

Result<Producer> Producer::attach(const Ring& ring) {
  const std::string w = "attach producer to ring " + ring.path();
  auto fd = open_same_file(ring.path(), ring.dev_, ring.ino_, ring.geo_.file_bytes, w);
  if (!fd) return tl::unexpected(fd.error());
  RingHeader* h = ring.header();
  for (std::uint32_t i = 0; i < ring.geo_.lanes; ++i) {
    if (!ofd_try_lock(fd->get(), kLaneLockBase + i)) continue;
    Producer p;
    p.ring_ = &ring;
    p.fd_ = std::move(*fd);
    p.hdr_ = h;
    p.lc_ = ring.lane(i);
    p.commit_ = &p.lc_->tail;  // take_over may publish: commit_tail's words first
    p.counts_ = &p.lc_->records;
    p.sleepers_ = &h->sleepers;
    p.no_membarrier_ = &h->no_membarrier;
    p.data_ = ring.lane_data(i);
    p.lane_ = i;
    p.cap_ = ring.geo_.lane_capacity;
    p.mask_ = ring.geo_.lane_capacity - 1;
    p.max_record_ = ring.geo_.max_record;
    p.overflow_ = static_cast<std::uint32_t>(ring.geo_.overflow);
    LaneControl* lc = p.lc_;
    // Positions are multiples of 8; anything else is damage: realign and go on.
    p.tail_ = detail::align8(lc->tail.load(std::memory_order_acquire));
    p.published_ = p.tail_;
    p.seq_ = lc->next_seq.load(std::memory_order_relaxed);
    // A previous owner that died inside a publish left the seqlock odd.
    p.publish_gen_ = lc->publish_gen.load(std::memory_order_relaxed);
    if (p.publish_gen_ % 2 != 0) lc->publish_gen.store(++p.publish_gen_, std::memory_order_release);
    p.take_over(lc->intent.load(std::memory_order_relaxed), lc->owner_pid.load(std::memory_order_relaxed) != 0);
    if (lc->space_waiting.exchange(0, std::memory_order_relaxed) != 0) {
      // The previous owner died waiting for space: take its count back (never below zero).
      std::uint32_t waiters = h->space_waiters.load(std::memory_order_relaxed);
      while (waiters != 0 && !h->space_waiters.compare_exchange_weak(waiters, waiters - 1, std::memory_order_relaxed)) {
      }
    }
    p.oldest_ = lc->oldest.load(std::memory_order_relaxed);
    if (p.tail_ - p.oldest_ > p.cap_ || p.oldest_ % 8 != 0)
      p.oldest_ = p.tail_;  // corrupt: forget history rather than trust it
    p.records_total_ = lc->records.load(std::memory_order_relaxed);
    p.bytes_total_ = lc->bytes.load(std::memory_order_relaxed);
    p.limit_ = p.tail_;  // look at the readers before the first write
    p.asymmetric_ = membarrier_register();
    p.slow_only_ = g_fault_hook.load(std::memory_order_relaxed) != nullptr;
    p.intent_ = &lc->intent;
    // Overwrite never looks at readers: an unreachable limit keeps the inline path open.
    if (p.overflow_ == static_cast<std::uint32_t>(Overflow::kOverwrite)) p.limit_ = p.tail_ + (std::uint64_t{1} << 62);
    lc->owner_pid.store(static_cast<std::uint32_t>(::getpid()), std::memory_order_relaxed);
    lc->owner_gen.fetch_add(1, std::memory_order_relaxed);
    h->producer_attaches.fetch_add(1, std::memory_order_relaxed);
    return p;
  }
  return make_error(std::errc::device_or_resource_busy,
                    w + ": no free lane (all " + std::to_string(ring.geo_.lanes) + " are held by live producers)");
}

Producer::Producer(Producer&& o) noexcept { *this = std::move(o); }

Producer& Producer::operator=(Producer&& o) noexcept {
  if (this != &o) {
    if (lc_) publish();
    ring_ = std::exchange(o.ring_, nullptr);
    fd_ = std::move(o.fd_);
    hdr_ = std::exchange(o.hdr_, nullptr);
    lc_ = std::exchange(o.lc_, nullptr);
    data_ = o.data_;
    lane_ = o.lane_;
    cap_ = o.cap_;
    mask_ = o.mask_;
    max_record_ = o.max_record_;
    overflow_ = o.overflow_;
    tail_ = o.tail_;
    published_ = o.published_;
    seq_ = o.seq_;
    limit_ = o.limit_;
    oldest_ = o.oldest_;
    records_total_ = o.records_total_;
    bytes_total_ = o.bytes_total_;
    claim_pos_ = o.claim_pos_;
    claim_need_ = o.claim_need_;
    pending_records_ = o.pending_records_;
    pending_bytes_ = o.pending_bytes_;
    next_liveness_check_ns_ = o.next_liveness_check_ns_;
    asymmetric_ = o.asymmetric_;
    batch_first_ = std::exchange(o.batch_first_, nullptr);
    batch_first_seq_ = o.batch_first_seq_;
    direct_next_ = o.direct_next_;
    slow_only_ = o.slow_only_;
    intent_ = o.intent_;
    commit_ = o.commit_;
    counts_ = o.counts_;
    sleepers_ = o.sleepers_;
    no_membarrier_ = o.no_membarrier_;
    written_ = o.written_;
    publish_gen_ = o.publish_gen_;
  }
  return *this;
}

Producer::~Producer() {
  if (!lc_) return;
  publish();
  // `intent` stays: it never moves back (readers' seqlock checks rely on it).
  // owner_pid 0 tells the next owner that an open claim was abandoned, not
  // left by a crash.
  lc_->owner_pid.store(0, std::memory_order_relaxed);
  // Closing fd_ releases the lane's lock.
}

void Producer::take_over(std::uint64_t intent, bool owner_died) noexcept {
  // `intent` is the furthest byte the previous owners may have written: the
  // end of their last claim plus the next header's seq word. Nonsense in it
  // (not a multiple of 8, behind the tail, more than a lane ahead) is damage:
  // start from the tail as if nothing had been claimed.
  const bool sane = intent % 8 == 0 && intent - tail_ <= cap_ + kMaxReachAhead;
  written_ = sane ? intent : tail_;
  if (!sane) lc_->intent.store(written_, std::memory_order_relaxed);
  if (written_ == tail_) return;
  // A previous owner that died after finishing records but before
  // publishing them: those records are complete (their seq is their
  // commit) and readers may already have taken them, so adopt them.
  adopt_finished(written_);
  if (static_cast<std::int64_t>(written_ - reach_of(tail_)) <= 0) return;  // nothing claimed past the last publish
  // What lies beyond is an unfinished claim or an unpublished batch: never
  // committed, so never read; counted when its owner died with it. Zero it,
  // so no header left in it can pass for a record later, whatever sizes this
  // owner writes over it. Those bytes were inside the dead owner's claim,
  // so every reader had passed their previous lap's bytes.
  if (owner_died) lc_->recovered_claims.fetch_add(1, std::memory_order_relaxed);
  for (std::uint64_t pos = tail_; pos != written_; pos += 8) {
    std::atomic_ref<std::uint64_t>(*reinterpret_cast<std::uint64_t*>(data_ + (pos & mask_)))
        .store(0, std::memory_order_relaxed);
  }
  std::atomic_thread_fence(std::memory_order_release);  // before any record this owner commits
}

void Producer::adopt_finished(std::uint64_t end) noexcept {
  std::uint64_t pos = tail_;
  std::uint64_t seq = seq_;
  std::uint64_t payload_bytes = 0;
  while (static_cast<std::int64_t>(end - pos) > 0) {
    const std::uint64_t idx = pos & mask_;
    const std::uint64_t room = cap_ - idx;
    if (room < sizeof(RecordHeader)) {
      if (end - pos < room) break;
      pos += room;
      continue;
    }
    if (load_seq(data_ + idx) != seq) break;
    RecordHeader rh;
    std::memcpy(&rh, data_ + idx, sizeof rh);
    const std::uint64_t rb =
        rh.type == kPadRecordType ? sizeof(RecordHeader) + std::uint64_t{rh.length} : record_bytes(rh.length);
    const bool fits = rh.type == kPadRecordType ? (idx != 0 && rb == room) : (rh.length <= max_record_ && rb <= room);
    if (!fits || end - pos < rb) break;
    pos += rb;
    if (rh.type != kPadRecordType) {
      ++seq;
      payload_bytes += rh.length;
    }
  }
  if (pos == tail_) return;
  // The dead owner committed these but died before its counter stores: they
  // are published records like any other, so the lane's counters include them.
  lc_->records.store(lc_->records.load(std::memory_order_relaxed) + (seq - seq_), std::memory_order_relaxed);
  lc_->bytes.store(lc_->bytes.load(std::memory_order_relaxed) + payload_bytes, std::memory_order_relaxed);
  tail_ = pos;
  seq_ = seq;
  begin_publish();
  lc_->next_seq.store(seq_, std::memory_order_relaxed);
  lc_->tail.store(tail_, std::memory_order_release);
  end_publish();
  published_ = tail_;
}

bool Producer::refresh_limit(std::uint64_t end, std::int64_t now_ns) noexcept {
  const bool probe = now_ns >= next_liveness_check_ns_;
  if (probe) next_liveness_check_ns_ = now_ns + kLivenessCheckIntervalNs;
  // Pairs with the fence in Reader::attach between its Active store and its
  // read of gate_epoch: a reader that sees this scan's epoch bump + 1 knows a
  // scan that saw it has run.
  std::atomic_thread_fence(std::memory_order_seq_cst);
  bool any = false;
  std::uint64_t min_cursor = 0;
  for (std::uint32_t i = 0; i < ring_->geo_.max_readers; ++i) {
    ReaderSlot* slot = ring_->reader_slot(i);
    const std::uint32_t st = slot->state.load(std::memory_order_acquire);
    if (slot_state(st) != kSlotActive) continue;
    if ((slot->flags.load(std::memory_order_relaxed) & kSlotDurable) == 0) continue;
    // Acquire pairs with the reader's release store of its cursor: everything
    // the reader read before moving past a byte happens before we reuse it.
    const std::uint64_t c = cursors(slot)[lane_].pos.load(std::memory_order_acquire);
    if (tail_ - c > cap_) continue;  // already lapped (or garbage): it resyncs by itself
    if (end - c > cap_ && probe) {
      // This reader is in the way. The kernel says whether its owner lives.
      if (ofd_locked_by_other(fd_.get(), kReaderLockBase + i)) {
        if (slot->dead_since_ns.load(std::memory_order_relaxed) != 0) {
          slot->dead_since_ns.store(0, std::memory_order_relaxed);
        }
      } else {
        std::int64_t since = slot->dead_since_ns.load(std::memory_order_relaxed);
        if (since == 0) {
          slot->dead_since_ns.compare_exchange_strong(since, now_ns, std::memory_order_relaxed);
        } else if (now_ns - since > ring_->geo_.reader_timeout_ns) {
          std::uint32_t expected = st;
          if (slot->state.compare_exchange_strong(expected, make_state(slot_gen(st), kSlotDead),
                                                  std::memory_order_acq_rel)) {
            slot->evictions.fetch_add(1, std::memory_order_relaxed);
            hdr_->readers_evicted.fetch_add(1, std::memory_order_relaxed);
          }
          continue;
        }
      }
    }
    if (!any || static_cast<std::int64_t>(c - min_cursor) < 0) min_cursor = c;
    any = true;
  }
  // With no reader to protect we may reuse one lap; a reader that attaches at
  // the latest position in the meantime is at or beyond every old cursor.
  limit_ = any ? min_cursor + cap_ : tail_ + cap_;
  lc_->gate_epoch.store(lc_->gate_epoch.load(std::memory_order_relaxed) + 1, std::memory_order_release);
  return static_cast<std::int64_t>(end - limit_) <= 0;
}

void Producer::advance_oldest(std::uint64_t end) noexcept {
  // Walk an eighth of a lane ahead at a time, so this runs once per many
  // claims rather than on every one. `oldest` only serves readers that lost
  // their place (lapped, or new at kOldest): giving them up to an eighth of a
  // lane less history costs nothing that is not counted.
  const std::uint64_t target = end + cap_ / 8;
  while (target - oldest_ > cap_) {
    const std::uint64_t idx = oldest_ & mask_;
    const std::uint64_t room = cap_ - idx;
    if (room < sizeof(RecordHeader)) {
      oldest_ += room;
      continue;
    }
    RecordHeader rh;
    std::memcpy(&rh, data_ + idx, sizeof rh);
    std::uint64_t rb;
    if (rh.type == kPadRecordType) {
      rb = sizeof(RecordHeader) + std::uint64_t{rh.length};
      if (rb != room || idx == 0) rb = 0;
    } else {
      rb = rh.length <= max_record_ ? record_bytes(rh.length) : 0;
      if (rb > room) rb = 0;
    }
    if (rb == 0 || static_cast<std::int64_t>(tail_ - (oldest_ + rb)) < 0) {
      oldest_ = tail_;  // unreadable history (corrupted by someone): nothing older is offered
      break;
    }
    oldest_ += rb;
  }
  lc_->oldest.store(oldest_, std::memory_order_release);
}

void Producer::wait_for_space(std::int64_t deadline_ns) noexcept {
  const std::uint32_t seq = hdr_->space_seq.load(std::memory_order_acquire);
  lc_->space_waiting.store(1, std::memory_order_relaxed);
  hdr_->space_waiters.fetch_add(1, std::memory_order_seq_cst);
  std::atomic_thread_fence(std::memory_order_seq_cst);  // pairs with the reader's fence after its cursor store
  const std::int64_t now = monotonic_ns();
  if (deadline_ns > now) futex_wait(&hdr_->space_seq, seq, std::min(deadline_ns - now, kMaxSleepNs));
  hdr_->space_waiters.fetch_sub(1, std::memory_order_relaxed);
  lc_->space_waiting.store(0, std::memory_order_relaxed);
}

bool Producer::ensure_space(std::uint64_t end, std::int64_t timeout_ns) noexcept {
  if (overflow_ == static_cast<std::uint32_t>(Overflow::kOverwrite)) return true;
  if (static_cast<std::int64_t>(end - limit_) <= 0) return true;  // the fast path: no clock, no scan
  const std::int64_t start_ns = monotonic_ns();
  if (refresh_limit(end, start_ns)) return true;
  if (timeout_ns <= 0) return false;
  const std::int64_t deadline_ns = start_ns + timeout_ns;
  lc_->full_waits.fetch_add(1, std::memory_order_relaxed);
  publish();  // readers cannot free space for records they cannot see
  for (int spin = 0;; ++spin) {
    const std::int64_t now = monotonic_ns();
    if (refresh_limit(end, now)) return true;
    if (now >= deadline_ns) return false;
    if (spin < 64) {
      cpu_relax();
    } else if (spin < 128) {
      std::this_thread::yield();
    } else {
      wait_for_space(deadline_ns);
    }
  }
}

std::span<std::byte> Producer::claim(std::size_t max_bytes, std::chrono::nanoseconds timeout,
                                     WriteStatus* status) noexcept {
  WriteStatus local;
  WriteStatus& st = status ? *status : local;
  claim_need_ = 0;
  if (ring_->truncated()) [[unlikely]] {
    st = WriteStatus::kRingLost;
    return {};
  }
  if (max_bytes > max_record_) {
    st = WriteStatus::kTooLarge;
    return {};
  }
  const std::uint64_t need = record_bytes(max_bytes);
  const std::uint64_t idx = tail_ & mask_;
  const std::uint64_t pad = idx + need > cap_ ? cap_ - idx : 0;
  const std::uint64_t end = tail_ + pad + need;
  const std::uint64_t reach = reach_of(end);  // see clear_next_seq
  const bool may_wait = timeout.count() > 0 && overflow_ == static_cast<std::uint32_t>(Overflow::kBlock);
  if (!ensure_space(reach, may_wait ? timeout.count() : 0)) {
    st = may_wait ? WriteStatus::kTimeout : WriteStatus::kFull;
    return {};
  }
  if (overflow_ == static_cast<std::uint32_t>(Overflow::kOverwrite)) {
    // Lapped readers are the normal case here: keep every intact record
    // reachable by walking the headers about to be overwritten.
    if (reach - oldest_ > cap_) advance_oldest(reach);
  } else if (((tail_ + pad) & mask_) == 0 && tail_ + pad != oldest_) {
    // Under block/drop only evicted or newly attached readers use `oldest`.
    // Records never wrap, so a lap always begins with a record at offset 0:
    // that boundary is free to know, where walking old headers would cost a
    // cache miss per record. Such readers get up to one lap less history.
    oldest_ = tail_ + pad;
    lc_->oldest.store(oldest_, std::memory_order_release);
  }
  cover(reach);
  fault(FaultPoint::kAfterIntent);
  if (pad >= sizeof(RecordHeader)) {
    store_header(data_ + idx, static_cast<std::uint32_t>(pad - sizeof(RecordHeader)), kPadRecordType, seq_);
    fault(FaultPoint::kAfterPad);
  }
  tail_ += pad;
  claim_pos_ = tail_;
  claim_need_ = need;
  st = WriteStatus::kOk;
  return {data_ + (claim_pos_ & mask_) + sizeof(RecordHeader), max_bytes};
}

std::span<std::byte> Producer::try_claim(std::size_t max_bytes, WriteStatus* status) noexcept {
  return claim(max_bytes, std::chrono::nanoseconds(0), status);
}

void Producer::finish(std::uint16_t type, std::size_t used_bytes) noexcept {
  if (claim_need_ == 0) return;
  const std::uint64_t need = claim_need_;
  if (record_bytes(used_bytes) > need) used_bytes = need - sizeof(RecordHeader);  // never past the claim
  if (type == kPadRecordType) {  // not a record type: the claim is abandoned
    claim_need_ = 0;
    count_dropped(1);
    return;
  }
  fault(FaultPoint::kMidPayload);
  const std::uint64_t end = claim_pos_ + record_bytes(used_bytes);
  // A shorter record than claimed may have its next header slot past the
  // claim's reach (a claim ending 8 bytes before the lap's end reaches no
  // further): `intent` covers it before it can be cleared. (After a claim
  // written_ equals the lane's intent.)
  cover(reach_of(end));
  write_header(data_ + (claim_pos_ & mask_), end, static_cast<std::uint32_t>(used_bytes), type);
  tail_ = end;
  claim_need_ = 0;
  ++pending_records_;
  pending_bytes_ += used_bytes;
  fault(FaultPoint::kAfterFinish);
}

void Producer::cover(std::uint64_t reach) noexcept {
  // Seqlock-style: a claim's extent is visible before any of its bytes
  // change; pairs with the acquire fence a reader runs before reading intent.
  // `intent` never moves back: after an abandoned claim the bytes up to its
  // end were reused all the same.
  if (static_cast<std::int64_t>(reach - written_) > 0) {
    written_ = reach;
    lc_->intent.store(reach, std::memory_order_relaxed);
  }
  std::atomic_thread_fence(std::memory_order_release);
}

void Producer::publish() noexcept {
  if (tail_ == published_) return;
  if (batch_first_) {
    // The batch's commit: its first record's seq (see write_header). Every
    // later record of the batch was written before this release store, and
    // so is the zero in the header slot after the batch.
    clear_next_seq(tail_);
    std::atomic_ref<std::uint64_t>(*reinterpret_cast<std::uint64_t*>(batch_first_ + 8))
        .store(batch_first_seq_, std::memory_order_release);
    batch_first_ = nullptr;
  }
  fault(FaultPoint::kAfterCommit);
  commit_tail();
  // Truncated under us (see Ring::truncated): what was just published went
  // to private pages. Every later write takes the slow path, which refuses.
  if (any_mapping_lost() && ring_->truncated()) [[unlikely]]
    slow_only_ = true;
  fault(FaultPoint::kAfterPublish);
  if (sleepers_->load(asymmetric_ ? std::memory_order_relaxed : std::memory_order_seq_cst) != 0) [[unlikely]]
    wake_sleepers();
}

void Producer::after_commit() noexcept {
  if (any_mapping_lost() && ring_->truncated()) slow_only_ = true;
  if (sleepers_->load(asymmetric_ ? std::memory_order_relaxed : std::memory_order_seq_cst) != 0) wake_sleepers();
}

void Producer::wake_sleepers() noexcept {
  hdr_->data_seq.fetch_add(1, std::memory_order_release);
  futex_wake_all(&hdr_->data_seq);
  lc_->wakes.store(lc_->wakes.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
}

WriteStatus Producer::try_append_slow(std::uint16_t type, std::span<const std::byte> payload) noexcept {
  if (type == kPadRecordType) return WriteStatus::kBadType;
  WriteStatus st;
  std::span<std::byte> dst = try_claim(payload.size(), &st);
  if (st != WriteStatus::kOk) return st;
  if (!payload.empty()) std::memcpy(dst.data(), payload.data(), payload.size());
  finish(type, payload.size());
  return WriteStatus::kOk;
}

void Producer::finish_and_publish(std::uint16_t type, std::size_t used_bytes) noexcept {
  direct_next_ = batch_first_ == nullptr;
  finish(type, used_bytes);
  direct_next_ = false;
  publish();
}

WriteStatus Producer::try_write_slow(std::uint16_t type, std::span<const std::byte> payload) noexcept {
  direct_next_ = batch_first_ == nullptr;
  const WriteStatus st = try_append(type, payload);
  direct_next_ = false;
  if (st == WriteStatus::kOk) {
    publish();
  } else {
    count_dropped(1);
  }
  return st;
}

WriteStatus Producer::write(std::uint16_t type, std::span<const std::byte> payload,
                            std::chrono::nanoseconds timeout) noexcept {
  WriteStatus st = type == kPadRecordType ? WriteStatus::kBadType : WriteStatus::kOk;
  std::span<std::byte> dst = st == WriteStatus::kOk ? claim(payload.size(), timeout, &st) : std::span<std::byte>{};
  if (st != WriteStatus::kOk) {
    count_dropped(1);
    return st;
  }
  if (!payload.empty()) std::memcpy(dst.data(), payload.data(), payload.size());
  finish_and_publish(type, payload.size());
  return WriteStatus::kOk;
}

void Producer::count_dropped(std::uint64_t records) noexcept {
  lc_->dropped_records.fetch_add(records, std::memory_order_relaxed);
}

}  // namespace ringpipe::ring
