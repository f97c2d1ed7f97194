#include "ringpipe/stats/stats_segment.hpp"

#include "ringpipe/common/shared_file.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <filesystem>
#include <random>

#include "ringpipe/common/log.hpp"
#include "ringpipe/common/run_dir.hpp"
#include "ringpipe/common/shared_file.hpp"
#include "ringpipe/common/utf8.hpp"

namespace ringpipe::stats {
namespace {

inline constexpr std::uint64_t kMagic = 0x5354415453505052ULL;  // "RPPSTATS" little-endian
inline constexpr std::uint32_t kVersion = 1;
inline constexpr std::uint32_t kReady = 0x52454459;  // "REDY"
inline constexpr std::uint32_t kPublished = 1;
inline constexpr std::size_t kCacheLine = 64;

// The file's first 256 bytes. Fields written once at creation are plain;
// fields a writer changes while readers look are atomics.
struct SegmentHeader {
  std::uint64_t magic;
  std::uint32_t version;
  std::atomic<std::uint32_t> ready;  // kReady once the header is complete
  std::uint32_t header_bytes;
  std::uint32_t entry_bytes;
  std::uint32_t capacity;            // entries the file has room for
  std::atomic<std::uint32_t> count;  // entries [0, count) are published
  std::atomic<std::int32_t> pid;     // last writer
  std::uint32_t reserved0;
  std::int64_t created_ns;
  std::atomic<std::int64_t> opened_ns;
  std::atomic<std::int64_t> heartbeat_ns;
  std::atomic<std::uint64_t> generation;
  std::uint64_t file_bytes;
  char component[kStatsMaxComponentBytes];
  char kind[kStatsMaxKindBytes];
  std::uint32_t component_len;
  std::uint32_t kind_len;
  std::byte reserved1[72];
};

struct LabelSlot {
  char name[kStatsMaxLabelNameBytes];
  char value[kStatsMaxLabelValueBytes];
};

// One metric. Everything but `value` is written before `state` is published
// and never changes afterwards.
struct SegmentEntry {
  std::atomic<std::uint32_t> state;  // kPublished once complete
  std::uint8_t type;                 // StatsType
  std::uint8_t encoding;             // StatsEncoding
  std::uint8_t name_len;
  std::uint8_t label_count;
  std::atomic<std::uint64_t> value;
  std::uint16_t help_len;
  std::uint8_t reserved0[6];
  std::uint8_t label_name_len[kStatsMaxLabels];
  std::uint8_t label_value_len[kStatsMaxLabels];
  char name[kStatsMaxNameBytes];
  char help[kStatsMaxHelpBytes];
  LabelSlot labels[kStatsMaxLabels];
  std::byte reserved1[32];
};

inline constexpr std::size_t kHeaderBytes = sizeof(SegmentHeader);
inline constexpr std::size_t kEntryBytes = sizeof(SegmentEntry);

static_assert(kHeaderBytes == 256, "the header size is part of the file format");
static_assert(kEntryBytes == 640, "the entry size is part of the file format");
static_assert(kEntryBytes % kCacheLine == 0 && kHeaderBytes % kCacheLine == 0,
              "entries start on cache lines so two hot values never share one (false sharing between threads)");
static_assert(offsetof(SegmentHeader, ready) == 12 && offsetof(SegmentHeader, count) == 28 &&
                  offsetof(SegmentHeader, generation) == 64 && offsetof(SegmentHeader, component) == 80 &&
                  offsetof(SegmentHeader, kind) == 144 && offsetof(SegmentHeader, component_len) == 176,
              "header field offsets are part of the file format");
static_assert(offsetof(SegmentEntry, value) == 8 && offsetof(SegmentEntry, help_len) == 16 &&
                  offsetof(SegmentEntry, label_name_len) == 24 && offsetof(SegmentEntry, name) == 32 &&
                  offsetof(SegmentEntry, help) == 96 && offsetof(SegmentEntry, labels) == 224,
              "entry field offsets are part of the file format");
static_assert(std::atomic<std::uint64_t>::is_always_lock_free && std::atomic<std::uint32_t>::is_always_lock_free &&
                  std::atomic<std::int64_t>::is_always_lock_free && std::atomic<std::int32_t>::is_always_lock_free,
              "values are shared between processes: only lock-free atomics work in a mapping");
static_assert(kStatsMaxNameBytes <= 255 && kStatsMaxLabelNameBytes <= 255 && kStatsMaxLabelValueBytes <= 255,
              "lengths are stored in one byte");

std::size_t file_bytes_for(std::uint32_t capacity) noexcept {
  return kHeaderBytes + std::size_t{capacity} * kEntryBytes;
}

SegmentHeader* header_of(std::byte* base) noexcept { return reinterpret_cast<SegmentHeader*>(base); }
const SegmentHeader* header_of(const std::byte* base) noexcept { return reinterpret_cast<const SegmentHeader*>(base); }
SegmentEntry* entry_of(std::byte* base, std::uint32_t i) noexcept {
  return reinterpret_cast<SegmentEntry*>(base + kHeaderBytes + std::size_t{i} * kEntryBytes);
}
const SegmentEntry* entry_of(const std::byte* base, std::uint32_t i) noexcept {
  return reinterpret_cast<const SegmentEntry*>(base + kHeaderBytes + std::size_t{i} * kEntryBytes);
}

// UTF-8 as Go checks it, and no control characters but tab (help texts and
// label values go onto a /metrics page as they are).
bool valid_text(std::string_view s) noexcept {
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (c < 0x20 && c != '\t') return false;
  }
  return common::valid_utf8(s);
}

std::string_view bounded(const char* p, std::size_t len) noexcept { return {p, len}; }

// Checks one published entry's metadata; a copy of it is what we validate, so
// a writer changing bytes meanwhile cannot make us read out of bounds.
bool entry_well_formed(const SegmentEntry& e) noexcept {
  if (e.type != static_cast<std::uint8_t>(StatsType::kCounter) &&
      e.type != static_cast<std::uint8_t>(StatsType::kGauge)) {
    return false;
  }
  if (e.encoding != static_cast<std::uint8_t>(StatsEncoding::kUnsigned) &&
      e.encoding != static_cast<std::uint8_t>(StatsEncoding::kDouble)) {
    return false;
  }
  if (e.name_len == 0 || e.name_len > kStatsMaxNameBytes || e.label_count > kStatsMaxLabels ||
      e.help_len > kStatsMaxHelpBytes) {
    return false;
  }
  if (!is_valid_metric_name(bounded(e.name, e.name_len))) return false;
  if (!valid_text(bounded(e.help, e.help_len))) return false;
  for (std::uint32_t k = 0; k < e.label_count; ++k) {
    if (e.label_name_len[k] > kStatsMaxLabelNameBytes || e.label_value_len[k] > kStatsMaxLabelValueBytes) return false;
    if (!is_valid_label_name(bounded(e.labels[k].name, e.label_name_len[k]))) return false;
    if (!valid_text(bounded(e.labels[k].value, e.label_value_len[k]))) return false;
  }
  return true;
}

// Validates a header copy against itself and the file size.
Status validate_header(const SegmentHeader& h, std::uint64_t file_size, const std::string& w) {
  if (h.magic != kMagic) return invalid(w + ": not a ringpipe stats segment (bad magic)");
  if (h.version != kVersion) {
    return invalid(w + ": version " + std::to_string(h.version) + ", expected " + std::to_string(kVersion));
  }
  if (h.ready.load(std::memory_order_acquire) != kReady) {
    return invalid(w + ": half-initialised (its creator died before finishing)");
  }
  if (h.header_bytes != kHeaderBytes || h.entry_bytes != kEntryBytes || h.capacity == 0 ||
      h.capacity > kStatsMaxCapacity || h.file_bytes != file_bytes_for(h.capacity) ||
      h.component_len > kStatsMaxComponentBytes || h.kind_len > kStatsMaxKindBytes) {
    return invalid(w + ": inconsistent header");
  }
  if (file_size < h.file_bytes) {
    return invalid(w + ": truncated: " + std::to_string(file_size) + " bytes, header says " +
                   std::to_string(h.file_bytes));
  }
  return {};
}

struct flock byte_lock(short type) noexcept {
  struct flock fl {};
  fl.l_type = type;
  fl.l_whence = SEEK_SET;
  fl.l_start = 0;
  fl.l_len = 1;
  fl.l_pid = 0;  // required for OFD locks
  return fl;
}

bool ofd_try_lock(int fd) noexcept {
  struct flock fl = byte_lock(F_WRLCK);
  return ::fcntl(fd, F_OFD_SETLK, &fl) == 0;
}

void copy_text(char* dst, std::size_t cap, std::string_view s) noexcept {
  std::memset(dst, 0, cap);
  std::memcpy(dst, s.data(), std::min(cap, s.size()));
}

Status check_text(std::string_view what, std::string_view s, std::size_t max) {
  if (s.size() > max) {
    return invalid(std::string(what) + " '" + std::string(s.substr(0, 32)) + "...' longer than " + std::to_string(max) +
                   " bytes");
  }
  if (!valid_text(s)) return invalid(std::string(what) + ": not UTF-8 text");
  return {};
}

Result<UniqueMapping> map_rw(int fd, std::size_t size, const std::string& path, const std::string& w) {
  return UniqueMapping::map(fd, size, true, path, w);
}

}  // namespace

bool is_valid_metric_name(std::string_view s) noexcept {
  if (s.empty()) return false;
  for (std::size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
    if (!alpha && !(i > 0 && c >= '0' && c <= '9')) return false;
  }
  return true;
}

bool is_valid_label_name(std::string_view s) noexcept {
  return is_valid_metric_name(s) && s.find(':') == std::string_view::npos && !s.starts_with("__");
}

// ---------------------------------------------------------------- writer

Result<StatsReader> StatsSegment::open_readonly(const std::string& path) { return StatsReader::open(path); }

Result<StatsSegment> StatsSegment::create(const std::string& path, std::string_view component, std::string_view kind,
                                          std::uint32_t capacity) {
  const std::string w = "create stats segment " + path;
  if (component.empty() || component.size() > kStatsMaxComponentBytes || !valid_text(component)) {
    return invalid(w + ": component name must be 1 to 64 bytes of text");
  }
  if (kind.size() > kStatsMaxKindBytes || !valid_text(kind)) return invalid(w + ": kind must be at most 32 bytes");
  if (capacity == 0 || capacity > kStatsMaxCapacity) {
    return invalid(w + ": capacity " + std::to_string(capacity) + ", expected 1 to " +
                   std::to_string(kStatsMaxCapacity));
  }
  const std::size_t bytes = file_bytes_for(capacity);

  // A segment left by a previous run of this component: keep its values.
  bool replace = false;
  UniqueFd old_lock;  // the replaced segment's lock, held until ours is in its place
  const std::filesystem::path p(path);
  auto dir = RunDir::open_or_create(p.has_parent_path() ? p.parent_path().string() : ".");
  if (!dir) return tl::unexpected(Error{dir.error().code, w + ": " + dir.error().context});
  auto existing = dir->open_file(p.filename().string(), O_RDWR);
  // Locked, but replaced meanwhile by a writer that held it before us: what
  // we hold is no longer the segment, so look again.
  auto replaced_meanwhile = [&](int fd) {
    struct stat ours {
    }, now{};
    return ::fstat(fd, &ours) != 0 || ::fstatat(dir->fd(), p.filename().c_str(), &now, AT_SYMLINK_NOFOLLOW) != 0 ||
           ours.st_ino != now.st_ino || ours.st_dev != now.st_dev;
  };
  for (int retry = 0; existing && retry < 8; ++retry) {
    if (!ofd_try_lock(existing->get()) || !replaced_meanwhile(existing->get())) break;
    existing = dir->open_file(p.filename().string(), O_RDWR);
  }
  if (existing) {
    UniqueFd fd = std::move(*existing);
    replace = true;
    if (!ofd_try_lock(fd.get()) || replaced_meanwhile(fd.get())) {
      std::int32_t pid = 0;
      if (::pread(fd.get(), &pid, sizeof pid, offsetof(SegmentHeader, pid)) != sizeof pid) pid = 0;
      return make_error(std::errc::resource_unavailable_try_again,
                        w + ": in use by another live writer (pid " + std::to_string(pid) + ")");
    }
    struct stat st {};
    if (::fstat(fd.get(), &st) == 0 && S_ISREG(st.st_mode) && static_cast<std::uint64_t>(st.st_size) == bytes) {
      auto mapped = map_rw(fd.get(), bytes, path, w);
      if (!mapped) return tl::unexpected(mapped.error());
      StatsSegment seg;
      seg.path_ = path;
      seg.mapping_ = std::move(*mapped);
      SegmentHeader* h = header_of(seg.base());
      bool ok = static_cast<bool>(validate_header(*h, bytes, w)) && h->capacity == capacity &&
                std::string_view(h->component, h->component_len) == component &&
                std::string_view(h->kind, h->kind_len) == kind;
      const std::uint32_t count = ok ? h->count.load(std::memory_order_acquire) : 0;
      ok = ok && count <= capacity;
      for (std::uint32_t i = 0; ok && i < count; ++i) {
        const SegmentEntry* e = entry_of(seg.base(), i);
        ok = e->state.load(std::memory_order_acquire) == kPublished && entry_well_formed(*e);
      }
      if (ok) {
        h->pid.store(static_cast<std::int32_t>(::getpid()), std::memory_order_relaxed);
        h->opened_ns.store(realtime_ns(), std::memory_order_relaxed);
        h->heartbeat_ns.store(0, std::memory_order_relaxed);
        h->generation.fetch_add(1, std::memory_order_relaxed);
        seg.fd_ = std::move(fd);
        return seg;
      }
    }
    // Otherwise fall through: build a fresh file and rename it over this
    // one. Keep holding its lock until then, so a second writer that opens
    // it meanwhile is refused instead of replacing it too.
    old_lock = std::move(fd);
  } else if (existing.error().code != std::errc::no_such_file_or_directory) {
    return tl::unexpected(Error{existing.error().code, w + ": " + existing.error().context});
  }

  auto file = NewSharedFile::create(path, bytes, w);
  if (!file) return tl::unexpected(file.error());
  const int fd = file->fd();
  if (!ofd_try_lock(fd)) return errno_error(w + ": lock");
  auto mapped = map_rw(fd, bytes, path, w);
  if (!mapped) return tl::unexpected(mapped.error());
  StatsSegment seg;
  seg.path_ = path;
  seg.mapping_ = std::move(*mapped);
  SegmentHeader* h = header_of(seg.base());
  h->magic = kMagic;
  h->version = kVersion;
  h->header_bytes = kHeaderBytes;
  h->entry_bytes = kEntryBytes;
  h->capacity = capacity;
  h->pid.store(static_cast<std::int32_t>(::getpid()), std::memory_order_relaxed);
  h->created_ns = realtime_ns();
  h->opened_ns.store(h->created_ns, std::memory_order_relaxed);
  h->generation.store(1, std::memory_order_relaxed);
  h->file_bytes = bytes;
  copy_text(h->component, sizeof h->component, component);
  copy_text(h->kind, sizeof h->kind, kind);
  h->component_len = static_cast<std::uint32_t>(component.size());
  h->kind_len = static_cast<std::uint32_t>(kind.size());
  // Pairs with validate_header's acquire load: whoever sees kReady sees the whole header.
  h->ready.store(kReady, std::memory_order_release);
  if (Status ok = file->publish(replace); !ok) return tl::unexpected(ok.error());
  seg.fd_ = file->release_fd();
  old_lock = UniqueFd();
  return seg;
}

Result<std::atomic<std::uint64_t>*> StatsSegment::register_counter(std::string_view name, std::string_view help,
                                                                   const StatsLabels& labels, StatsEncoding encoding) {
  return register_entry(StatsType::kCounter, encoding, name, help, labels);
}

Result<std::atomic<std::uint64_t>*> StatsSegment::register_gauge(std::string_view name, std::string_view help,
                                                                 const StatsLabels& labels, StatsEncoding encoding) {
  return register_entry(StatsType::kGauge, encoding, name, help, labels);
}

Result<std::atomic<std::uint64_t>*> StatsSegment::register_entry(StatsType type, StatsEncoding encoding,
                                                                 std::string_view name, std::string_view help,
                                                                 const StatsLabels& labels) {
  const std::string w = "register " + std::string(name.substr(0, kStatsMaxNameBytes)) + " in " + path_;
  if (base() == nullptr) return invalid(w + ": segment moved from");
  if (name.size() > kStatsMaxNameBytes || !is_valid_metric_name(name)) {
    return invalid(w + ": invalid metric name (Prometheus syntax, at most 64 bytes)");
  }
  if (auto ok = check_text("help", help, kStatsMaxHelpBytes); !ok) {
    return tl::unexpected(Error{ok.error().code, w + ": " + ok.error().context});
  }
  if (labels.size() > kStatsMaxLabels) return invalid(w + ": more than " + std::to_string(kStatsMaxLabels) + " labels");
  for (const StatsLabel& l : labels) {
    if (l.name.size() > kStatsMaxLabelNameBytes || !is_valid_label_name(l.name)) {
      return invalid(w + ": invalid label name '" + l.name + "'");
    }
    if (auto ok = check_text("label value", l.value, kStatsMaxLabelValueBytes); !ok) {
      return tl::unexpected(Error{ok.error().code, w + ": " + ok.error().context});
    }
  }
  std::lock_guard lock(*mu_);
  SegmentHeader* h = header_of(base());
  const std::uint32_t count = h->count.load(std::memory_order_relaxed);
  for (std::uint32_t i = 0; i < count; ++i) {
    SegmentEntry* e = entry_of(base(), i);
    if (std::string_view(e->name, e->name_len) != name || e->label_count != labels.size()) continue;
    bool same = true;
    for (std::size_t k = 0; k < labels.size() && same; ++k) {
      same = std::string_view(e->labels[k].name, e->label_name_len[k]) == labels[k].name &&
             std::string_view(e->labels[k].value, e->label_value_len[k]) == labels[k].value;
    }
    if (!same) continue;
    if (e->type != static_cast<std::uint8_t>(type) || e->encoding != static_cast<std::uint8_t>(encoding)) {
      return invalid(w + ": already registered with another type or encoding");
    }
    return &e->value;
  }
  if (count >= h->capacity) {
    return make_error(std::errc::no_space_on_device, w + ": table full (" + std::to_string(h->capacity) + " entries)");
  }
  SegmentEntry* e = entry_of(base(), count);
  std::memset(static_cast<void*>(e), 0, kEntryBytes);
  e->type = static_cast<std::uint8_t>(type);
  e->encoding = static_cast<std::uint8_t>(encoding);
  e->name_len = static_cast<std::uint8_t>(name.size());
  e->label_count = static_cast<std::uint8_t>(labels.size());
  e->help_len = static_cast<std::uint16_t>(help.size());
  copy_text(e->name, sizeof e->name, name);
  copy_text(e->help, sizeof e->help, help);
  for (std::size_t k = 0; k < labels.size(); ++k) {
    e->label_name_len[k] = static_cast<std::uint8_t>(labels[k].name.size());
    e->label_value_len[k] = static_cast<std::uint8_t>(labels[k].value.size());
    copy_text(e->labels[k].name, sizeof e->labels[k].name, labels[k].name);
    copy_text(e->labels[k].value, sizeof e->labels[k].value, labels[k].value);
  }
  e->value.store(0, std::memory_order_relaxed);
  // Pairs with the reader's acquire load of state: a published entry is complete.
  e->state.store(kPublished, std::memory_order_release);
  // Pairs with the reader's acquire load of count.
  h->count.store(count + 1, std::memory_order_release);
  return &e->value;
}

void StatsSegment::reset_gauges() noexcept {
  if (base() == nullptr) return;
  std::lock_guard lock(*mu_);
  const std::uint32_t count = header_of(base())->count.load(std::memory_order_relaxed);
  for (std::uint32_t i = 0; i < count; ++i) {
    SegmentEntry* e = entry_of(base(), i);
    if (e->type == static_cast<std::uint8_t>(StatsType::kGauge)) e->value.store(0, std::memory_order_relaxed);
  }
}

void StatsSegment::heartbeat() noexcept {
  if (base()) header_of(base())->heartbeat_ns.store(realtime_ns(), std::memory_order_relaxed);
}

std::uint32_t StatsSegment::capacity() const noexcept { return base() ? header_of(base())->capacity : 0; }
std::uint32_t StatsSegment::size() const noexcept {
  return base() ? header_of(base())->count.load(std::memory_order_relaxed) : 0;
}
std::uint64_t StatsSegment::generation() const noexcept {
  return base() ? header_of(base())->generation.load(std::memory_order_relaxed) : 0;
}

// ---------------------------------------------------------------- reader

Result<StatsReader> StatsReader::open(const std::string& path) {
  const std::string w = "open stats segment " + path;
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return errno_error(w);
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return errno_error(w + ": fstat");
  if (!S_ISREG(st.st_mode)) return invalid(w + ": not a regular file");
  const auto file_size = static_cast<std::uint64_t>(st.st_size);
  if (file_size < kHeaderBytes) {
    return invalid(w + ": truncated: " + std::to_string(file_size) + " bytes, the header alone needs " +
                   std::to_string(kHeaderBytes));
  }
  if (file_size > file_bytes_for(kStatsMaxCapacity)) return invalid(w + ": larger than any stats segment");
  auto mapped = UniqueMapping::map(fd.get(), file_size, false, path, w);
  if (!mapped) return tl::unexpected(mapped.error());
  StatsReader r;
  r.path_ = path;
  r.mapping_ = std::move(*mapped);
  // Validate a copy: the writer (or anyone) may change the file meanwhile.
  SegmentHeader h;
  std::memcpy(static_cast<void*>(&h), r.base(), kHeaderBytes);
  std::atomic_thread_fence(std::memory_order_acquire);  // pairs with the creator's release store of ready
  if (Status ok = validate_header(h, file_size, w); !ok) return tl::unexpected(ok.error());
  r.capacity_ = h.capacity;
  return r;
}

StatsSegmentInfo StatsReader::info() const {
  SegmentHeader h;
  std::memcpy(static_cast<void*>(&h), base(), kHeaderBytes);
  StatsSegmentInfo i;
  i.component.assign(h.component, std::min<std::size_t>(h.component_len, kStatsMaxComponentBytes));
  i.kind.assign(h.kind, std::min<std::size_t>(h.kind_len, kStatsMaxKindBytes));
  i.pid = h.pid.load(std::memory_order_relaxed);
  i.created_ns = h.created_ns;
  i.opened_ns = h.opened_ns.load(std::memory_order_relaxed);
  i.heartbeat_ns = h.heartbeat_ns.load(std::memory_order_relaxed);
  i.generation = h.generation.load(std::memory_order_relaxed);
  i.capacity = capacity_;
  return i;
}

std::vector<StatsEntry> StatsReader::snapshot() {
  std::vector<StatsEntry> out;
  malformed_ = 0;
  if (base() == nullptr) return out;
  // capacity_ was validated against the mapping's size at open().
  const std::uint32_t count = std::min(header_of(base())->count.load(std::memory_order_acquire), capacity_);
  out.reserve(count);
  for (std::uint32_t i = 0; i < count; ++i) {
    const SegmentEntry* live = entry_of(base(), i);
    if (live->state.load(std::memory_order_acquire) != kPublished) {
      ++malformed_;
      continue;
    }
    SegmentEntry e;
    std::memcpy(static_cast<void*>(&e), live, kEntryBytes);
    if (!entry_well_formed(e)) {
      ++malformed_;
      continue;
    }
    StatsEntry s;
    s.name.assign(e.name, e.name_len);
    s.help.assign(e.help, e.help_len);
    for (std::uint32_t k = 0; k < e.label_count; ++k) {
      s.labels.push_back(
          {std::string(e.labels[k].name, e.label_name_len[k]), std::string(e.labels[k].value, e.label_value_len[k])});
    }
    s.type = static_cast<StatsType>(e.type);
    s.encoding = static_cast<StatsEncoding>(e.encoding);
    s.raw = live->value.load(std::memory_order_relaxed);
    out.push_back(std::move(s));
  }
  return out;
}

bool StatsReader::writer_alive() const noexcept {
  if (base() == nullptr) return false;
  const std::int32_t pid = header_of(base())->pid.load(std::memory_order_relaxed);
  if (pid <= 0) return false;
  return ::kill(pid, 0) == 0 || errno == EPERM;
}

std::vector<std::string> list_stats_segments(const std::string& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  for (std::filesystem::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.size() > kStatsFileSuffix.size() && name.ends_with(kStatsFileSuffix) && it->is_regular_file(ec)) {
      out.push_back(it->path().string());
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace ringpipe::stats
