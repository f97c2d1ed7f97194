#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <random>

#include "layout.hpp"
#include "os.hpp"
#include "ringpipe/common/log.hpp"
#include "ringpipe/common/shared_file.hpp"
#include "ringpipe/ring/ring.hpp"

namespace ringpipe::ring {

using namespace detail;

std::string_view overflow_name(Overflow o) noexcept {
  switch (o) {
    case Overflow::kBlock:
      return "block";
    case Overflow::kDrop:
      return "drop";
    case Overflow::kOverwrite:
      return "overwrite";
  }
  return "unknown";
}

std::optional<Overflow> parse_overflow(std::string_view s) noexcept {
  if (s == "block") return Overflow::kBlock;
  if (s == "drop") return Overflow::kDrop;
  if (s == "overwrite") return Overflow::kOverwrite;
  return std::nullopt;
}

namespace detail {
std::uint64_t geometry_hash(const RingHeader& h) noexcept {
  unsigned char bytes[offsetof(RingHeader, geometry_check)];
  std::memcpy(bytes, &h, sizeof bytes);
  std::memset(bytes + offsetof(RingHeader, ready), 0, sizeof(std::uint32_t));
  std::uint64_t x = 0xcbf29ce484222325ULL;
  for (unsigned char b : bytes) {
    x ^= b;
    x *= 0x100000001b3ULL;
  }
  return x;
}
}  // namespace detail

namespace {

std::string what(std::string_view verb, const std::string& path) { return std::string(verb) + " ring " + path; }

Status check_options(const RingOptions& o, const std::string& path) {
  const std::string w = what("create", path);
  if (!std::has_single_bit(o.lane_capacity_bytes) || o.lane_capacity_bytes < kMinLaneCapacity ||
      o.lane_capacity_bytes > kMaxLaneCapacity) {
    return invalid(w + ": lane capacity " + std::to_string(o.lane_capacity_bytes) +
                   " bytes, expected a power of two from 4096 to 2^40");
  }
  if (o.lanes < 1 || o.lanes > kMaxLanes) {
    return invalid(w + ": " + std::to_string(o.lanes) + " lanes, expected 1 to " + std::to_string(kMaxLanes));
  }
  if (o.max_readers < 1 || o.max_readers > kMaxReaders) {
    return invalid(w + ": " + std::to_string(o.max_readers) + " readers, expected 1 to " + std::to_string(kMaxReaders));
  }
  if (o.max_record_bytes > o.lane_capacity_bytes / 4) {
    return invalid(w + ": max record " + std::to_string(o.max_record_bytes) +
                   " bytes, expected at most a quarter of the lane (" + std::to_string(o.lane_capacity_bytes / 4) +
                   ")");
  }
  if (o.overflow != Overflow::kBlock && o.overflow != Overflow::kDrop && o.overflow != Overflow::kOverwrite) {
    return invalid(w + ": unknown overflow policy");
  }
  if (o.reader_timeout.count() <= 0) return invalid(w + ": reader timeout must be positive");
  if (o.initial_position % 8 != 0) return invalid(w + ": initial position must be a multiple of 8");
  return {};
}

Result<UniqueMapping> map_file(int fd, std::size_t size, const std::string& path, const std::string& w) {
  return UniqueMapping::map(fd, size, true, path, w);
}

// Validates everything a header claims against itself and the file's size.
Status validate_header(const RingHeader& h, std::uint64_t file_size, const std::string& w) {
  if (h.magic != kMagic) return make_error(std::errc::invalid_argument, w + ": not a ringpipe ring (bad magic)");
  if (h.version != kVersion) {
    return make_error(std::errc::invalid_argument,
                      w + ": version " + std::to_string(h.version) + ", expected " + std::to_string(kVersion) +
                          " (made by another ringpipe release; remove the file to re-create it)");
  }
  if (h.ready.load(std::memory_order_acquire) != kReady) {
    return make_error(std::errc::invalid_argument, w + ": half-initialised (its creator died before finishing)");
  }
  if (geometry_hash(h) != h.geometry_check) {
    return make_error(std::errc::invalid_argument, w + ": inconsistent header (geometry checksum mismatch)");
  }
  if (!std::has_single_bit(h.lane_capacity) || h.lane_capacity < kMinLaneCapacity ||
      h.lane_capacity > kMaxLaneCapacity || h.lane_count < 1 || h.lane_count > kMaxLanes || h.max_readers < 1 ||
      h.max_readers > kMaxReaders || h.max_record < 1 || h.max_record > h.lane_capacity / 4 || h.overflow < 1 ||
      h.overflow > 3 || h.reader_timeout_ns <= 0 || h.initial_position % 8 != 0) {
    return make_error(std::errc::invalid_argument, w + ": inconsistent header (geometry out of range)");
  }
  const Layout l = compute_layout(h.lane_capacity, h.lane_count, h.max_readers);
  if (l.lanes_offset != h.lanes_offset || l.readers_offset != h.readers_offset || l.reader_stride != h.reader_stride ||
      l.data_offset != h.data_offset || l.file_bytes != h.file_bytes) {
    return make_error(std::errc::invalid_argument, w + ": inconsistent header (layout does not match geometry)");
  }
  if (file_size < h.file_bytes) {
    return make_error(std::errc::invalid_argument, w + ": truncated: " + std::to_string(file_size) +
                                                       " bytes, header says " + std::to_string(h.file_bytes));
  }
  return {};
}

}  // namespace

Result<Ring> Ring::create(const std::string& path, const RingOptions& options) {
  const std::string w = what("create", path);
  if (auto ok = check_options(options, path); !ok) return tl::unexpected(ok.error());
  RingOptions o = options;
  if (o.max_record_bytes == 0) o.max_record_bytes = static_cast<std::uint32_t>(o.lane_capacity_bytes / 4);
  const Layout l = compute_layout(o.lane_capacity_bytes, o.lanes, o.max_readers);

  std::random_device rd;
  const std::uint64_t creation_id = (std::uint64_t{rd()} << 32) ^ rd() ^ static_cast<std::uint64_t>(realtime_ns());
  auto file = NewSharedFile::create(path, l.file_bytes, w);
  if (!file) return tl::unexpected(file.error());
  auto mapped = map_file(file->fd(), l.file_bytes, path, w);
  if (!mapped) return tl::unexpected(mapped.error());

  Ring ring;
  ring.path_ = path;
  ring.mapping_ = std::move(*mapped);
  RingHeader* h = ring.header();
  h->magic = kMagic;
  h->version = kVersion;
  h->file_bytes = l.file_bytes;
  h->lane_capacity = o.lane_capacity_bytes;
  h->lane_count = o.lanes;
  h->max_readers = o.max_readers;
  h->max_record = o.max_record_bytes;
  h->overflow = static_cast<std::uint32_t>(o.overflow);
  h->creation_id = creation_id;
  h->created_ns = realtime_ns();
  h->initial_position = o.initial_position;
  h->reader_timeout_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(o.reader_timeout).count();
  h->lanes_offset = l.lanes_offset;
  h->readers_offset = l.readers_offset;
  h->reader_stride = l.reader_stride;
  h->data_offset = l.data_offset;
  ring.keep_geometry(*h);
  for (std::uint32_t i = 0; i < o.lanes; ++i) {
    LaneControl* lc = ring.lane(i);
    lc->tail.store(o.initial_position, std::memory_order_relaxed);
    lc->intent.store(o.initial_position, std::memory_order_relaxed);
    lc->oldest.store(o.initial_position, std::memory_order_relaxed);
    lc->next_seq.store(1, std::memory_order_relaxed);
  }
  h->geometry_check = geometry_hash(*h);
  // Pairs with validate_header's acquire load: whoever sees kReady sees the whole header.
  h->ready.store(kReady, std::memory_order_release);

  if (Status ok = file->publish(false); !ok) return tl::unexpected(ok.error());
  UniqueFd fd = file->release_fd();
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return errno_error(w + ": fstat");
  ring.dev_ = st.st_dev;
  ring.ino_ = st.st_ino;
  ring.fd_ = std::move(fd);
  return ring;
}

Result<Ring> Ring::open(const std::string& path) {
  const std::string w = what("open", path);
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_CLOEXEC | O_NOFOLLOW));
  if (!fd.valid()) return errno_error(w);
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return errno_error(w + ": fstat");
  if (!S_ISREG(st.st_mode)) return make_error(std::errc::invalid_argument, w + ": not a regular file");
  const auto file_size = static_cast<std::uint64_t>(st.st_size);
  if (file_size < kPage) {
    return make_error(std::errc::invalid_argument,
                      w + ": truncated: " + std::to_string(file_size) + " bytes, the header alone needs 4096");
  }
  {
    auto head = map_file(fd.get(), kPage, path, w);
    if (!head) return tl::unexpected(head.error());
    const Status ok = validate_header(*reinterpret_cast<const RingHeader*>(head->data()), file_size, w);
    if (!ok) return tl::unexpected(ok.error());
  }
  auto mapped = map_file(fd.get(), file_size, path, w);
  if (!mapped) return tl::unexpected(mapped.error());
  Ring ring;
  ring.path_ = path;
  ring.mapping_ = std::move(*mapped);
  // The header may have changed between the two mappings only if someone
  // rewrote the file in place: validate a private copy and keep the geometry from it: a later write to
  // the shared header changes nothing in this process.
  alignas(RingHeader) unsigned char copy[sizeof(RingHeader)];
  std::memcpy(copy, ring.header(), sizeof copy);
  const RingHeader& h = *reinterpret_cast<const RingHeader*>(copy);
  if (Status ok = validate_header(h, file_size, w); !ok) return tl::unexpected(ok.error());
  ring.keep_geometry(h);
  // A sparse ring file (holes punched, or copied without its blocks) would
  // fault pages in on first touch and die of SIGBUS when tmpfs is full:
  // back every byte now, or refuse.
  if (int rc = ::posix_fallocate(fd.get(), 0, static_cast<off_t>(ring.geo_.file_bytes)); rc != 0) {
    return make_error(std::errc::no_space_on_device,
                      w + ": cannot back " + std::to_string(ring.geo_.file_bytes) + " bytes: " + std::strerror(rc));
  }
  ring.dev_ = st.st_dev;
  ring.ino_ = st.st_ino;
  ring.fd_ = std::move(fd);
  return ring;
}

Result<Ring> Ring::open_or_create(const std::string& path, const RingOptions& options) {
  auto created = create(path, options);
  if (created) return created;
  if (created.error().code != std::errc::file_exists) return created;
  auto opened = open(path);
  if (!opened) return opened;
  const std::uint32_t max_record =
      options.max_record_bytes ? options.max_record_bytes : static_cast<std::uint32_t>(options.lane_capacity_bytes / 4);
  if (opened->lane_capacity() != options.lane_capacity_bytes || opened->lanes() != options.lanes ||
      opened->max_readers() != options.max_readers || opened->overflow() != options.overflow ||
      opened->max_record_bytes() != max_record ||
      opened->geo_.reader_timeout_ns !=
          std::chrono::duration_cast<std::chrono::nanoseconds>(options.reader_timeout).count()) {
    // reader_timeout is policy stored in the file: a changed one would otherwise be ignored silently.
    return make_error(std::errc::invalid_argument, what("open", path) +
                                                       ": exists with another geometry or policy (lanes, sizes, "
                                                       "readers, overflow or reader_timeout; remove it to re-create)");
  }
  return opened;
}

void Ring::keep_geometry(const RingHeader& header) noexcept {
  const RingHeader* h = &header;
  geo_.lane_capacity = h->lane_capacity;
  geo_.lanes = h->lane_count;
  geo_.max_readers = h->max_readers;
  geo_.max_record = h->max_record;
  geo_.overflow = static_cast<Overflow>(h->overflow);
  geo_.reader_timeout_ns = h->reader_timeout_ns;
  geo_.creation_id = h->creation_id;
  geo_.lanes_offset = h->lanes_offset;
  geo_.readers_offset = h->readers_offset;
  geo_.reader_stride = h->reader_stride;
  geo_.data_offset = h->data_offset;
  geo_.file_bytes = h->file_bytes;
}

RingHeader* Ring::header() const noexcept { return reinterpret_cast<RingHeader*>(mapping_.data()); }
LaneControl* Ring::lane(std::uint32_t i) const noexcept {
  return reinterpret_cast<LaneControl*>(mapping_.data() + geo_.lanes_offset + std::uint64_t{i} * sizeof(LaneControl));
}
ReaderSlot* Ring::reader_slot(std::uint32_t i) const noexcept {
  return reinterpret_cast<ReaderSlot*>(mapping_.data() + geo_.readers_offset + std::uint64_t{i} * geo_.reader_stride);
}
std::byte* Ring::lane_data(std::uint32_t i) const noexcept {
  return mapping_.data() + geo_.data_offset + std::uint64_t{i} * geo_.lane_capacity;
}

Overflow Ring::overflow() const noexcept { return geo_.overflow; }
std::uint64_t Ring::lane_capacity() const noexcept { return geo_.lane_capacity; }
std::uint32_t Ring::lanes() const noexcept { return geo_.lanes; }
std::uint32_t Ring::max_readers() const noexcept { return geo_.max_readers; }
std::uint32_t Ring::max_record_bytes() const noexcept { return geo_.max_record; }
std::uint64_t Ring::creation_id() const noexcept { return geo_.creation_id; }

namespace {
std::string slot_name(const ReaderSlot* s) {
  const char* n = s->name;
  return std::string(n, strnlen(n, kNameBytes));
}
}  // namespace

RingStats Ring::stats() const {
  RingStats s;
  s.path = path_;
  s.creation_id = geo_.creation_id;
  s.overflow = geo_.overflow;
  s.lane_capacity_bytes = geo_.lane_capacity;
  s.lanes = geo_.lanes;
  s.max_readers = geo_.max_readers;
  s.max_record_bytes = geo_.max_record;
  s.file_bytes = geo_.file_bytes;
  std::vector<std::uint64_t> tails(geo_.lanes);
  std::vector<std::uint64_t> next_seqs(geo_.lanes);
  for (std::uint32_t i = 0; i < geo_.lanes; ++i) {
    const LaneControl* lc = lane(i);
    LaneStats ls{};
    ls.lane = i;
    ls.owned = ofd_locked_by_other(fd_.get(), kLaneLockBase + i);
    ls.owner_pid = ls.owned ? lc->owner_pid.load(std::memory_order_relaxed) : 0;
    ls.tail = lc->tail.load(std::memory_order_acquire);
    ls.next_seq = lc->next_seq.load(std::memory_order_relaxed);
    ls.records = lc->records.load(std::memory_order_relaxed);
    ls.bytes = lc->bytes.load(std::memory_order_relaxed);
    ls.dropped_records = lc->dropped_records.load(std::memory_order_relaxed);
    ls.recovered_claims = lc->recovered_claims.load(std::memory_order_relaxed);
    ls.full_waits = lc->full_waits.load(std::memory_order_relaxed);
    ls.wakes = lc->wakes.load(std::memory_order_relaxed);
    tails[i] = ls.tail;
    next_seqs[i] = ls.next_seq;
    s.lane.push_back(ls);
  }
  for (std::uint32_t i = 0; i < geo_.max_readers; ++i) {
    ReaderSlot* slot = reader_slot(i);
    const std::uint32_t st = slot_state(slot->state.load(std::memory_order_acquire));
    if (st == kSlotFree) continue;
    ReaderStats r{};
    r.name = slot_name(slot);
    r.slot = i;
    r.state = st == kSlotInit     ? ReaderStats::State::kInit
              : st == kSlotActive ? ReaderStats::State::kActive
                                  : ReaderStats::State::kDead;
    r.alive = ofd_locked_by_other(fd_.get(), kReaderLockBase + i);
    r.pid = slot->pid.load(std::memory_order_relaxed);
    r.records = slot->records.load(std::memory_order_relaxed);
    r.bytes = slot->bytes.load(std::memory_order_relaxed);
    r.lapped_records = slot->lapped_records.load(std::memory_order_relaxed);
    r.torn_records = slot->torn_records.load(std::memory_order_relaxed);
    r.corrupt_records = slot->corrupt_records.load(std::memory_order_relaxed);
    r.evictions = slot->evictions.load(std::memory_order_relaxed);
    r.sleeps = slot->sleeps.load(std::memory_order_relaxed);
    r.gating =
        (slot->flags.load(std::memory_order_relaxed) & kSlotDurable) != 0 && geo_.overflow != Overflow::kOverwrite;
    const Cursor* c = cursors(slot);
    r.lane_lag_bytes.assign(geo_.lanes, 0);
    r.lag_records_known = true;
    for (std::uint32_t l = 0; l < geo_.lanes; ++l) {
      const std::uint64_t seq = c[l].seq.load(std::memory_order_relaxed);
      const std::uint64_t lag = tails[l] - c[l].pos.load(std::memory_order_relaxed);
      if (lag <= geo_.lane_capacity) {
        r.lag_bytes += lag;
        r.lane_lag_bytes[l] = lag;
        r.max_lane_lag_bytes = std::max(r.max_lane_lag_bytes, lag);
      }
      // next_seq was read before the cursor: a record published in between
      // may make the difference negative for an instant; read that as 0.
      if (seq != 0) {
        r.lag_records += next_seqs[l] > seq ? next_seqs[l] - seq : 0;
      } else if (lag != 0) {
        r.lag_records_known = false;
      }
    }
    s.readers.push_back(std::move(r));
  }
  return s;
}

Status Ring::remove_reader(std::string_view name) const {
  const std::string w = "remove reader " + std::string(name) + " of ring " + path_;
  for (std::uint32_t i = 0; i < max_readers(); ++i) {
    ReaderSlot* slot = reader_slot(i);
    std::uint32_t st = slot->state.load(std::memory_order_acquire);
    if (slot_state(st) == kSlotFree || slot_name(slot) != name) continue;
    // Holding the slot's lock ourselves proves no live reader has it.
    if (!ofd_try_lock(fd_.get(), kReaderLockBase + i)) {
      return make_error(std::errc::device_or_resource_busy, w + ": it is attached by a live process");
    }
    slot->state.store(make_state(slot_gen(st) + 1, kSlotFree), std::memory_order_release);
    ofd_unlock(fd_.get(), kReaderLockBase + i);
    return {};
  }
  return make_error(std::errc::no_such_file_or_directory, w + ": no such reader");
}

}  // namespace ringpipe::ring
