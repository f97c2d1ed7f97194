#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <ctime>
#include <thread>

#include "layout.hpp"
#include "os.hpp"
#include "ringpipe/common/log.hpp"
#include "ringpipe/ring/ring.hpp"

namespace ringpipe::ring {

using namespace detail;

namespace {
// Holds the ring's attach lock for one Reader::attach (see kAttachLockByte).
class AttachLock {
 public:
  explicit AttachLock(int fd) : fd_(fd) {
    const std::int64_t deadline = monotonic_ns() + 2'000'000'000;
    while (!(held_ = ofd_try_lock(fd_, kAttachLockByte)) && monotonic_ns() < deadline) ::usleep(200);
  }
  ~AttachLock() {
    if (held_) ofd_unlock(fd_, kAttachLockByte);
  }
  AttachLock(const AttachLock&) = delete;
  AttachLock& operator=(const AttachLock&) = delete;
  [[nodiscard]] bool held() const noexcept { return held_; }

 private:
  int fd_;
  bool held_ = false;
};

bool name_matches(const ReaderSlot* s, std::string_view name) noexcept {
  return strnlen(s->name, kNameBytes) == name.size() && std::memcmp(s->name, name.data(), name.size()) == 0;
}
}  // namespace

Result<Reader> Reader::attach(const Ring& ring, std::string_view name, ReaderOptions options) {
  const std::string w = "attach reader " + std::string(name) + " to ring " + ring.path();
  if (name.empty() || name.size() >= kNameBytes || name.find('\0') != std::string_view::npos) {
    return invalid(w + ": a reader name is 1 to " + std::to_string(kNameBytes - 1) + " bytes");
  }
  auto fd = open_same_file(ring.path(), ring.dev_, ring.ino_, ring.geo_.file_bytes, w);
  if (!fd) return tl::unexpected(fd.error());
  RingHeader* h = ring.header();
  const AttachLock attaching(fd->get());
  if (!attaching.held()) {
    return make_error(std::errc::device_or_resource_busy,
                      w + ": another process has been attaching a reader for 2 s (stopped mid-attach?)");
  }

  Reader r;
  r.ring_ = &ring;
  r.hdr_ = h;
  r.name_ = std::string(name);
  const auto& geo = ring.geo_;
  r.lanes_ = geo.lanes;
  r.cap_ = geo.lane_capacity;
  r.mask_ = geo.lane_capacity - 1;
  r.max_record_ = geo.max_record;
  r.durable_ = options.durable;
  r.gating_ = options.durable && options.gating;
  r.overwrite_ = geo.overflow == Overflow::kOverwrite;
  r.block_ = geo.overflow == Overflow::kBlock;
  r.cursor_.assign(r.lanes_, 0);
  r.expect_seq_.assign(r.lanes_, 0);
  r.seq_known_.assign(r.lanes_, 0);
  r.gated_from_.assign(r.lanes_, 0);
  r.gated_.assign(r.lanes_, 0);
  r.bad_tail_.assign(r.lanes_, 0);
  // Left uninitialised: only the bytes of records actually copied get touched.
  if (r.overwrite_) r.scratch_ = std::make_unique_for_overwrite<std::byte[]>(geo.max_record);

  // kReader: copy another reader's place (for instance a reader that only
  // trails behind this one and is durable where this one is not).
  ReaderSlot* source = nullptr;
  if (options.start == StartAt::kReader) {
    for (std::uint32_t i = 0; i < geo.max_readers && source == nullptr; ++i) {
      ReaderSlot* slot = ring.reader_slot(i);
      const std::uint32_t st = slot_state(slot->state.load(std::memory_order_acquire));
      if (st != kSlotFree && st != kSlotInit && name_matches(slot, options.from)) source = slot;
    }
    if (source == nullptr) return invalid(w + ": no reader named " + options.from + " to start from");
  }

  auto take = [&](std::uint32_t i, ReaderSlot* slot, std::uint32_t gen, bool resume) {
    r.fd_ = std::move(*fd);
    r.slot_ = i;
    r.slot_ptr_ = slot;
    Cursor* c = cursors(slot);
    for (std::uint32_t l = 0; l < r.lanes_; ++l) {
      if (resume) {
        r.cursor_[l] = c[l].pos.load(std::memory_order_relaxed);
        r.expect_seq_[l] = c[l].seq.load(std::memory_order_relaxed);
        r.seq_known_[l] = r.expect_seq_[l] != 0;
      } else if (source != nullptr) {
        const Cursor& from = cursors(source)[l];
        r.cursor_[l] = from.pos.load(std::memory_order_acquire);
        r.expect_seq_[l] = from.seq.load(std::memory_order_relaxed);
        r.seq_known_[l] = r.expect_seq_[l] != 0;
        c[l].seq.store(r.expect_seq_[l], std::memory_order_relaxed);
        c[l].pos.store(r.cursor_[l], std::memory_order_relaxed);
      } else {
        r.start_lane(l, options.start);
        c[l].seq.store(r.seq_known_[l] ? r.expect_seq_[l] : 0, std::memory_order_relaxed);
        c[l].pos.store(r.cursor_[l], std::memory_order_relaxed);
      }
    }
    r.records_total_ = slot->records.load(std::memory_order_relaxed);
    r.bytes_total_ = slot->bytes.load(std::memory_order_relaxed);
    r.sleeps_ = slot->sleeps.load(std::memory_order_relaxed);
    slot->pid.store(static_cast<std::uint32_t>(::getpid()), std::memory_order_relaxed);
    slot->dead_since_ns.store(0, std::memory_order_relaxed);
    slot->flags.store((r.gating_ ? kSlotDurable : 0) | (options.durable ? kSlotKept : 0), std::memory_order_relaxed);
    slot->attaches.fetch_add(1, std::memory_order_relaxed);
    h->sleepers.fetch_and(~(std::uint64_t{1} << i), std::memory_order_relaxed);
    // Pairs with the producer's acquire load of the state: it sees the
    // cursors set above before it starts to gate on this slot.
    slot->state.store(make_state(gen + 1, kSlotActive), std::memory_order_release);
    h->reader_attaches.fetch_add(1, std::memory_order_relaxed);
    // Until a producer has scanned the readers after this point, it may not
    // gate on us yet; two epoch bumps prove a whole scan ran after our store
    // (pairs with the fence at the top of Producer::refresh_limit).
    std::atomic_thread_fence(std::memory_order_seq_cst);
    for (std::uint32_t l = 0; l < r.lanes_; ++l) {
      r.gated_from_[l] = ring.lane(l)->gate_epoch.load(std::memory_order_relaxed) + 2;
    }
  };

  // A known name resumes where it stopped, unless a live process holds it.
  for (std::uint32_t i = 0; i < geo.max_readers; ++i) {
    ReaderSlot* slot = ring.reader_slot(i);
    const std::uint32_t st = slot->state.load(std::memory_order_acquire);
    if (slot_state(st) == kSlotFree || slot_state(st) == kSlotInit || !name_matches(slot, name)) continue;
    if (!ofd_try_lock(fd->get(), kReaderLockBase + i)) {
      return make_error(
          std::errc::device_or_resource_busy,
          w + ": already attached by live process " + std::to_string(slot->pid.load(std::memory_order_relaxed)));
    }
    take(i, slot, slot_gen(st), true);
    return r;
  }
  // Otherwise a free slot, one whose attacher died half-way, or one a
  // non-durable reader held when it died (kill -9, SIGPIPE): such a reader
  // has nothing to resume and gates no one, so its slot is free once its
  // owner is gone (the lock proves that).
  auto reusable = [&](std::uint32_t st, const ReaderSlot* slot) {
    if (slot_state(st) == kSlotFree || slot_state(st) == kSlotInit) return true;
    return (slot->flags.load(std::memory_order_relaxed) & (kSlotDurable | kSlotKept)) == 0;
  };
  for (std::uint32_t i = 0; i < geo.max_readers; ++i) {
    ReaderSlot* slot = ring.reader_slot(i);
    std::uint32_t st = slot->state.load(std::memory_order_acquire);
    if (!reusable(st, slot)) continue;
    if (!ofd_try_lock(fd->get(), kReaderLockBase + i)) continue;
    if (!slot->state.compare_exchange_strong(st, make_state(slot_gen(st) + 1, kSlotInit), std::memory_order_acq_rel)) {
      ofd_unlock(fd->get(), kReaderLockBase + i);
      continue;
    }
    std::memset(slot->name, 0, kNameBytes);
    std::memcpy(slot->name, name.data(), name.size());
    for (auto* counter : {&slot->records, &slot->bytes, &slot->lapped_records, &slot->torn_records,
                          &slot->corrupt_records, &slot->evictions, &slot->attaches, &slot->sleeps}) {
      counter->store(0, std::memory_order_relaxed);
    }
    take(i, slot, slot_gen(st) + 1, false);
    return r;
  }
  return make_error(std::errc::device_or_resource_busy,
                    w + ": no free reader slot (all " + std::to_string(geo.max_readers) + " in use)");
}

Reader::Reader(Reader&& o) noexcept { *this = std::move(o); }

Reader& Reader::operator=(Reader&& o) noexcept {
  if (this != &o) {
    ring_ = std::exchange(o.ring_, nullptr);
    fd_ = std::move(o.fd_);
    hdr_ = std::exchange(o.hdr_, nullptr);
    slot_ptr_ = std::exchange(o.slot_ptr_, nullptr);
    name_ = std::move(o.name_);
    slot_ = o.slot_;
    lanes_ = o.lanes_;
    next_lane_ = o.next_lane_;
    cap_ = o.cap_;
    mask_ = o.mask_;
    max_record_ = o.max_record_;
    cursor_ = std::move(o.cursor_);
    expect_seq_ = std::move(o.expect_seq_);
    seq_known_ = std::move(o.seq_known_);
    scratch_ = std::move(o.scratch_);
    gated_from_ = std::move(o.gated_from_);
    gated_ = std::move(o.gated_);
    bad_tail_ = std::move(o.bad_tail_);
    durable_ = o.durable_;
    gating_ = o.gating_;
    overwrite_ = o.overwrite_;
    block_ = o.block_;
    records_total_ = o.records_total_;
    bytes_total_ = o.bytes_total_;
    sleeps_ = o.sleeps_;
    membarrier_failed_ns_ = o.membarrier_failed_ns_;
    budget_ns_ = o.budget_ns_;
    idle_ns_ = o.idle_ns_;
    last_data_ns_ = o.last_data_ns_;
  }
  return *this;
}

Reader::~Reader() {
  if (!slot_ptr_) return;
  hdr_->sleepers.fetch_and(~(std::uint64_t{1} << slot_), std::memory_order_relaxed);
  if (!durable_) {
    const std::uint32_t st = slot_ptr_->state.load(std::memory_order_relaxed);
    slot_ptr_->state.store(make_state(slot_gen(st) + 1, kSlotFree), std::memory_order_release);
  }
  // A durable slot stays Active: it keeps gating for reader_timeout after the
  // lock goes (closing fd_), so a quick restart loses nothing.
}

void Reader::start_lane(std::uint32_t lane, StartAt start) noexcept {
  const LaneControl* lc = ring_->lane(lane);
  const std::byte* data = ring_->lane_data(lane);
  // Knowing the seq of the first record due lets every later loss be counted
  // exactly, even one that happens before this reader reads anything.
  for (int attempt = 0; attempt < 8; ++attempt) {
    const auto ts = tail_and_seq(lane);
    const std::uint64_t t = ts ? ts->first : lc->tail.load(std::memory_order_acquire);
    std::uint64_t pos = start == StartAt::kLatest ? t : lc->oldest.load(std::memory_order_acquire);
    cursor_[lane] = pos;
    if (t == pos) {
      if (!ts) break;                  // publishes never paused: the seq due here stays unknown
      expect_seq_[lane] = ts->second;  // the record due here is the next one published
      seq_known_[lane] = 1;
      return;
    }
    if (t - pos > cap_) continue;
    const std::uint64_t idx = pos & mask_;
    if (cap_ - idx < sizeof(RecordHeader)) pos += cap_ - idx;
    RecordHeader rh;
    std::memcpy(&rh, data + (pos & mask_), sizeof rh);
    std::atomic_thread_fence(std::memory_order_acquire);  // pairs with the producer's fence after intent
    if (lc->intent.load(std::memory_order_relaxed) - cursor_[lane] <= cap_) {
      expect_seq_[lane] = rh.seq;  // a pad carries the seq of the record after it
      seq_known_[lane] = 1;
      return;
    }
  }
  seq_known_[lane] = 0;  // could not pin it down: losses before the first read go uncounted
}

std::optional<std::pair<std::uint64_t, std::uint64_t>> Reader::tail_and_seq(std::uint32_t lane) const noexcept {
  const LaneControl* lc = ring_->lane(lane);
  for (int attempt = 0; attempt < 64; ++attempt) {
    const std::uint64_t g = lc->publish_gen.load(std::memory_order_acquire);
    if (g % 2 != 0) {
      cpu_relax();
      continue;
    }
    const std::uint64_t t = lc->tail.load(std::memory_order_acquire);
    const std::uint64_t ns = lc->next_seq.load(std::memory_order_relaxed);
    std::atomic_thread_fence(std::memory_order_acquire);  // the loads above before the re-check
    if (lc->publish_gen.load(std::memory_order_relaxed) == g) return std::pair{t, ns};
  }
  return std::nullopt;
}

std::optional<std::uint64_t> Reader::resync(std::uint32_t lane) noexcept {
  const LaneControl* lc = ring_->lane(lane);
  std::uint64_t pos = lc->tail.load(std::memory_order_acquire);
  for (int attempt = 0; attempt < 8; ++attempt) {
    const std::uint64_t t = lc->tail.load(std::memory_order_acquire);
    const std::uint64_t o = lc->oldest.load(std::memory_order_acquire);
    // Pairs with the producer's release fence after storing intent: if the
    // intent we read does not reach past o's lap, o was intact when we looked.
    std::atomic_thread_fence(std::memory_order_acquire);
    const std::uint64_t intent = lc->intent.load(std::memory_order_relaxed);
    if (t - o <= cap_ && intent - o <= cap_) {
      cursor_[lane] = o;
      // expect_seq_ stays: the gap to the next record's seq is what was lost.
      return std::nullopt;
    }
    pos = t;
  }
  // At the tail (`oldest` is ahead of it while a claim that padded to the
  // next lap is open, or was abandoned): nothing may be left to read there,
  // so no seq gap would ever show the loss. The seq due at the tail says it.
  if (const auto ts = tail_and_seq(lane)) {
    cursor_[lane] = ts->first;
    return ts->second;
  }
  cursor_[lane] = pos;  // counted by the gap to the next record's seq
  return std::nullopt;
}

std::size_t Reader::poll_lane(std::uint32_t lane, Callback cb, void* ctx, std::size_t max_records) {
  if (!seq_known_[lane] || !gated_[lane] || overwrite_) return poll_lane_slow(lane, cb, ctx, max_records);
  // Fast path: a gated reader that knows the next seq reads each record's
  // seq (its commit word, in the line it reads anyway) and never touches the
  // lane's tail line, which stays in the producer's cache.
  const std::byte* data = ring_->lane_data(lane);
  std::uint64_t c = cursor_[lane];
  std::uint64_t expect = expect_seq_[lane];
  std::size_t n = 0;
  std::uint64_t bytes = 0;
  std::uint64_t corrupt = 0;
  bool known = true;
  while (n < max_records) {
    const std::uint64_t idx = c & mask_;
    const std::uint64_t room = cap_ - idx;
    if (room < sizeof(RecordHeader)) {
      c += room;
      continue;
    }
    const std::byte* h = data + idx;
    const std::uint64_t seq = load_seq(h);  // acquire: pairs with store_header's release
    if (seq != expect) {
      // Not written yet: the bytes there are older data, possibly the middle
      // of an old payload, so their value means nothing. Only if the tail
      // says records were published here is something wrong (hostile bytes,
      // a lost place): the tail-bounded path then sorts it out and counts it.
      if (n == 0 && static_cast<std::int64_t>(ring_->lane(lane)->tail.load(std::memory_order_acquire) - c) > 0) {
        return poll_lane_slow(lane, cb, ctx, max_records);
      }
      break;
    }
    std::uint32_t lt[2];
    std::memcpy(lt, h, sizeof lt);
    const std::uint32_t length = lt[0];
    if (lt[1] == kPadRecordType) {
      // A pad reaches exactly to the lane's end and never starts a lap (no
      // record is too large for a whole lane): anything else is damage.
      if (idx == 0 || sizeof(RecordHeader) + std::uint64_t{length} != room) {
        ++corrupt;
        known = false;
        break;
      }
      c += room;
      continue;
    }
    const std::uint64_t rb = record_bytes(length);
    if (length > max_record_ || rb > room) {
      ++corrupt;  // a committed header with an impossible length: hostile or broken writer
      known = false;
      break;
    }
    const RecordView v{static_cast<std::uint16_t>(lt[1]), lane, seq, c, {h + sizeof(RecordHeader), length}};
    if (!cb(ctx, v)) {
      refused_ = true;
      break;
    }
    c += rb;
    ++expect;
    ++n;
    bytes += length;
  }
  if (!known) {
    // Skip what we cannot parse, up to what is published, and relearn the seq.
    const std::uint64_t t = ring_->lane(lane)->tail.load(std::memory_order_acquire);
    if (static_cast<std::int64_t>(t - c) > 0) c = t;
  }
  finish_lane(lane, c, expect, known, n, bytes, 0, corrupt, 0);
  return n;
}

void Reader::finish_lane(std::uint32_t lane, std::uint64_t c, std::uint64_t expect, bool known, std::size_t n,
                         std::uint64_t bytes, std::uint64_t lapped, std::uint64_t corrupt, std::uint64_t torn) {
  if (c == cursor_[lane] && n == 0 && lapped == 0 && corrupt == 0 && torn == 0 && known == (seq_known_[lane] != 0)) {
    return;  // an empty look publishes nothing
  }
  cursor_[lane] = c;
  expect_seq_[lane] = expect;
  seq_known_[lane] = known ? 1 : 0;
  Cursor& shared = cursors(slot_ptr_)[lane];
  shared.seq.store(known ? expect : 0, std::memory_order_relaxed);
  // Pairs with the producer's acquire load in refresh_limit: it reuses these
  // bytes only after seeing this store, i.e. after we are done with them.
  shared.pos.store(c, std::memory_order_release);
  records_total_ += n;
  bytes_total_ += bytes;
  slot_ptr_->records.store(records_total_, std::memory_order_relaxed);
  slot_ptr_->bytes.store(bytes_total_, std::memory_order_relaxed);
  if (lapped) slot_ptr_->lapped_records.fetch_add(lapped, std::memory_order_relaxed);
  if (corrupt) slot_ptr_->corrupt_records.fetch_add(corrupt, std::memory_order_relaxed);
  if (torn) slot_ptr_->torn_records.fetch_add(torn, std::memory_order_relaxed);
  if (block_) {
    // No fence here, to keep the read path free of one: a producer that
    // registers just after this load misses the wake and re-checks within
    // kMaxSleepNs (1 ms), which it does anyway for liveness probes.
    if (hdr_->space_waiters.load(std::memory_order_relaxed) != 0) {
      hdr_->space_seq.fetch_add(1, std::memory_order_release);
      futex_wake_all(&hdr_->space_seq);
    }
  }
}

std::size_t Reader::poll_lane_slow(std::uint32_t lane, Callback cb, void* ctx, std::size_t max_records) {
  const LaneControl* lc = ring_->lane(lane);
  const std::byte* data = ring_->lane_data(lane);
  const bool overwrite = overwrite_;
  // Pairs with Producer::publish's release store: the records up to t are complete.
  std::uint64_t t = lc->tail.load(std::memory_order_acquire);
  std::uint64_t c = cursor_[lane];
  // Under block/drop, bytes a reader has not passed are reused only if no
  // producer gates on it: until a scan has seen it (just attached) or if it
  // is non-durable. Such a reader, like every overwrite reader, copies each
  // record and hands over the copy only once it is proven intact: a view it
  // hands over never changes under the callback.
  if (!overwrite && !gated_[lane] && gating_ &&
      static_cast<std::int64_t>(lc->gate_epoch.load(std::memory_order_acquire) - gated_from_[lane]) >= 0) {
    gated_[lane] = 1;
  }
  const bool copy = overwrite || !gated_[lane];
  if (copy && !scratch_) scratch_ = std::make_unique_for_overwrite<std::byte[]>(max_record_);
  if ((t | c) % 8 != 0) {
    // Positions are multiples of 8: someone wrote garbage over the tail or our
    // cursor. Count it once; restart at the tail once the tail makes sense.
    if (t % 8 != 0) {
      if (!bad_tail_[lane]) {
        bad_tail_[lane] = 1;
        slot_ptr_->corrupt_records.fetch_add(1, std::memory_order_relaxed);
      }
      return 0;
    }
    finish_lane(lane, t, expect_seq_[lane], false, 0, 0, 0, 1, 0);
    return 0;
  }
  bad_tail_[lane] = 0;
  // Nothing new; or the fast path already took finished records that are
  // not published yet (a cursor at most a lane ahead of the tail).
  if (static_cast<std::int64_t>(t - c) <= 0 && c - t <= cap_) return 0;
  std::uint64_t lapped = 0;
  std::uint64_t corrupt = 0;
  std::uint64_t torn = 0;
  // True while nothing at or after `from` has been reused: pairs with the
  // producer's release fence after it stores intent (seqlock style).
  auto intact_since = [&](std::uint64_t from) {
    std::atomic_thread_fence(std::memory_order_acquire);
    return lc->intent.load(std::memory_order_relaxed) - from <= cap_;
  };
  std::uint64_t expect = expect_seq_[lane];
  bool known = seq_known_[lane] != 0;
  // Resynced at the tail with the seq due there: what was skipped is lost.
  auto landed_at_tail = [&](std::uint64_t ns) {
    if (known && static_cast<std::int64_t>(ns - expect) > 0) lapped += ns - expect;
    expect = ns;
    known = true;
  };
  if (t - c > cap_) {  // lapped while away, or a cursor that makes no sense
    if (const auto ns = resync(lane)) landed_at_tail(*ns);
    c = cursor_[lane];
    t = lc->tail.load(std::memory_order_acquire);
  }
  std::size_t n = 0;
  std::uint64_t bytes = 0;
  int resyncs = 0;
  while (c != t && n < max_records) {
    const std::uint64_t idx = c & mask_;
    const std::uint64_t room = cap_ - idx;
    if (room < sizeof(RecordHeader)) {
      c += room;
      continue;
    }
    RecordHeader rh;
    std::memcpy(&rh, data + idx, sizeof rh);
    const std::uint64_t avail = t - c;
    const bool pad = rh.type == kPadRecordType;
    const std::uint64_t rb = pad ? sizeof(RecordHeader) + std::uint64_t{rh.length} : record_bytes(rh.length);
    const bool fits =
        pad ? (idx != 0 && rb == room && rb <= avail) : (rh.length <= max_record_ && rb <= room && rb <= avail);
    const std::byte* payload = data + idx + sizeof(RecordHeader);
    if (copy && !pad && fits) {
      // Reused bytes can change under us: copy, then prove the copy intact.
      std::memcpy(scratch_.get(), payload, rh.length);
      payload = scratch_.get();
    }
    if (copy && !intact_since(c)) {
      ++torn;  // lost to a lap mid-read; the seq gap after the resync counts it
      if (++resyncs > 64) break;
      cursor_[lane] = c;
      if (const auto ns = resync(lane)) landed_at_tail(*ns);
      c = cursor_[lane];
      t = lc->tail.load(std::memory_order_acquire);
      continue;
    }
    if (!fits) {
      ++corrupt;  // a length that points outside the published data: skip what we can see
      c = t;
      known = false;
      break;
    }
    if (pad) {
      c += rb;
      continue;
    }
    const RecordView v{rh.type, lane, rh.seq, c, {payload, rh.length}};
    if (!cb(ctx, v)) {
      refused_ = true;  // c, expect and known stay before this record
      break;
    }
    if (known && static_cast<std::int64_t>(rh.seq - expect) > 0) lapped += rh.seq - expect;
    expect = rh.seq + 1;
    known = true;
    c += rb;
    ++n;
    bytes += rh.length;
  }
  finish_lane(lane, c, expect, known, n, bytes, lapped, corrupt, torn);
  return n;
}

std::size_t Reader::poll_impl(Callback cb, void* ctx, std::size_t max_records) {
  std::size_t total = 0;
  std::uint32_t lane = next_lane_;
  refused_ = false;
  if (ring_->truncated()) [[unlikely]]
    return 0;  // the file is gone from under us: nothing in it is true
  for (std::uint32_t k = 0; k < lanes_ && total < max_records && !refused_; ++k) {
    total += poll_lane(lane, cb, ctx, max_records - total);
    if (++lane == lanes_) lane = 0;
  }
  if (++next_lane_ == lanes_) next_lane_ = 0;
  return total;
}

bool Reader::has_data() const noexcept {
  for (std::uint32_t l = 0; l < lanes_; ++l) {
    if (seq_known_[l] && gated_[l] && !overwrite_) {
      // As the fast path: look at the next record's seq, not at the tail.
      std::uint64_t idx = cursor_[l] & mask_;
      if (cap_ - idx < sizeof(RecordHeader)) idx = 0;
      if (load_seq(ring_->lane_data(l) + idx) == expect_seq_[l]) return true;
    } else if (static_cast<std::int64_t>(ring_->lane(l)->tail.load(std::memory_order_acquire) - cursor_[l]) > 0) {
      return true;
    }
  }
  return false;
}

bool Reader::has_data_seq_cst() const noexcept {
  for (std::uint32_t l = 0; l < lanes_; ++l) {
    if (static_cast<std::int64_t>(ring_->lane(l)->tail.load(std::memory_order_seq_cst) - cursor_[l]) > 0) return true;
  }
  return false;
}

bool Reader::wait(std::chrono::nanoseconds timeout) noexcept {
  if (ring_->truncated()) [[unlikely]]
    return false;
  if (budget_ns_ > 0) return wait_budgeted(timeout);
  if (has_data()) return true;
  const std::int64_t deadline = monotonic_ns() + timeout.count();
  // Spin with exponential back-off between looks: a reader that re-reads a
  // lane's tail in a tight loop steals its cache line from the producer on
  // every publish and slows it down more than it gains in latency.
  for (int i = 0; i < 48; ++i) {
    for (int j = 0, n = 1 << (i < 5 ? i : 5); j < n; ++j) cpu_relax();
    if (has_data()) return true;
  }
  for (int i = 0; i < 16; ++i) {
    std::this_thread::yield();
    if (has_data()) return true;
  }
  return sleep_until_data(deadline);
}

void Reader::set_wait_budget(std::chrono::nanoseconds budget, std::chrono::nanoseconds idle) noexcept {
  budget_ns_ = std::max<std::int64_t>(0, budget.count());
  idle_ns_ = std::max<std::int64_t>(0, idle.count());
}

bool Reader::wait_budgeted(std::chrono::nanoseconds timeout) noexcept {
  std::int64_t now = monotonic_ns();
  if (has_data()) {
    last_data_ns_ = now;
    return true;
  }
  const std::int64_t deadline = now + timeout.count();
  // Busy: look again after a budget, without setting a sleepers bit (no
  // producer makes a wake syscall for us, none pays a membarrier IPI).
  while (now - last_data_ns_ < idle_ns_) {
    if (now >= deadline) return false;
    const std::int64_t nap = std::min(budget_ns_, deadline - now);
    timespec ts{static_cast<time_t>(nap / 1'000'000'000), static_cast<long>(nap % 1'000'000'000)};
    (void)::nanosleep(&ts, nullptr);
    now = monotonic_ns();
    if (has_data()) {
      last_data_ns_ = now;
      return true;
    }
  }
  // Idle: sleep on the futex; the first record wakes us at once.
  if (sleep_until_data(deadline)) {
    last_data_ns_ = monotonic_ns();
    return true;
  }
  return false;
}

bool Reader::sleep_until_data(std::int64_t deadline) noexcept {
  const std::uint64_t bit = std::uint64_t{1} << slot_;
  for (;;) {
    const std::int64_t now = monotonic_ns();
    if (now >= deadline) return has_data();
    const std::uint32_t seq = hdr_->data_seq.load(std::memory_order_acquire);
    // Pairs with Producer::publish (see there): our bit is set before we
    // look at the tails, and membarrier makes producers that publish with
    // plain stores order their tail store before their read of the bits.
    hdr_->sleepers.fetch_or(bit, std::memory_order_seq_cst);
    std::int64_t sleep_ns = deadline - now;
    if (!membarrier_global()) {
      // Producers that registered for membarrier publish with plain stores
      // and rely on this barrier: tell them to stop, and until every one
      // can have seen it, sleep briefly so a wake-up lost meanwhile costs
      // at most a millisecond.
      if (hdr_->no_membarrier.load(std::memory_order_relaxed) == 0) {
        hdr_->no_membarrier.store(1, std::memory_order_seq_cst);
        membarrier_failed_ns_ = now;
      }
      if (now - membarrier_failed_ns_ < 100'000'000) sleep_ns = std::min<std::int64_t>(sleep_ns, 1'000'000);
    }
    if (has_data_seq_cst()) {
      hdr_->sleepers.fetch_and(~bit, std::memory_order_relaxed);
      return true;
    }
    ++sleeps_;
    slot_ptr_->sleeps.store(sleeps_, std::memory_order_relaxed);
    futex_wait(&hdr_->data_seq, seq, sleep_ns);
    hdr_->sleepers.fetch_and(~bit, std::memory_order_relaxed);
    if (has_data()) return true;
  }
}

ReaderStats Reader::stats() const {
  RingStats s = ring_->stats();
  for (ReaderStats& r : s.readers) {
    if (r.slot == slot_) return r;
  }
  return ReaderStats{};
}

}  // namespace ringpipe::ring
