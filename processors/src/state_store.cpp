#include "state_store.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <vector>

#include "ringpipe/common/unique_fd.hpp"

namespace ringpipe::processors::detail {
namespace {

constexpr char kMagic[8] = {'R', 'P', 'S', 'T', 'A', 'T', 'E', '1'};
constexpr std::uint64_t kPage = 4096;
constexpr std::uint64_t kReady = 0x5245414459ULL;  // "READY"

struct FileHeader {
  char magic[8];
  std::uint32_t version;
  std::uint32_t header_bytes;
  std::uint64_t file_bytes;
  std::uint64_t slot_capacity;
  std::uint64_t arena_bytes;
  std::uint64_t undo_bytes;
  std::uint32_t shard;
  std::uint32_t shard_count;
  std::uint64_t boot_id;
  std::uint64_t geometry_check;
  std::uint64_t ready;
  std::uint8_t pad0[48];
  std::atomic<std::uint64_t> undo_len;  // bytes of undo entries; 0 = no open transaction
  std::uint8_t pad1[56];
  StateControl control;
};
static_assert(offsetof(FileHeader, undo_len) == 128);
static_assert(offsetof(FileHeader, control) == 192);
static_assert(sizeof(FileHeader) <= kPage);
static_assert(std::atomic<std::uint64_t>::is_always_lock_free);

struct UndoEntry {
  std::uint32_t len;
  std::uint32_t reserved;
  std::uint64_t off;
};
static_assert(sizeof(UndoEntry) == 16);

constexpr std::uint64_t kAppliedOff = kPage;
constexpr std::uint64_t kAppliedBytes = std::uint64_t{kStateMaxInputs} * kStateMaxLanes * 8;
constexpr std::uint64_t round_page(std::uint64_t n) { return (n + kPage - 1) & ~(kPage - 1); }

struct Layout {
  std::uint64_t undo, slots, arena, file;
};
Layout layout_of(const StateGeometry& g) {
  Layout l;
  l.undo = kAppliedOff + round_page(kAppliedBytes);
  l.slots = l.undo + round_page(g.undo_bytes);
  l.arena = l.slots + round_page(g.slot_capacity * sizeof(StateSlot));
  l.file = l.arena + round_page(g.arena_bytes);
  return l;
}

std::uint64_t fnv(const void* p, std::size_t n, std::uint64_t h = 1469598103934665603ULL) {
  const auto* b = static_cast<const unsigned char*>(p);
  for (std::size_t i = 0; i < n; ++i) h = (h ^ b[i]) * 1099511628211ULL;
  return h;
}

std::uint64_t boot_id() {
  std::ifstream f("/proc/sys/kernel/random/boot_id");
  std::string s;
  std::getline(f, s);
  return fnv(s.data(), s.size());
}

std::uint64_t geometry_check(const FileHeader& h) {
  std::uint64_t x = fnv(&h.version, sizeof h.version);
  x = fnv(&h.file_bytes, 5 * sizeof(std::uint64_t), x);
  return fnv(&h.shard, 2 * sizeof(std::uint32_t), x);
}

// Why the mapped header does not describe a store of geometry g; empty when it does.
std::string refusal(const FileHeader& h, std::uint64_t file_bytes, const StateGeometry& g) {
  if (std::memcmp(h.magic, kMagic, sizeof kMagic) != 0) return "bad magic";
  if (h.version != kStateVersion) {
    return "version " + std::to_string(h.version) + ", expected " + std::to_string(kStateVersion);
  }
  if (h.ready != kReady) return "not ready (creator died)";
  if (h.geometry_check != geometry_check(h)) return "geometry checksum mismatch";
  const Layout l = layout_of(g);
  if (h.file_bytes != file_bytes) return "size " + std::to_string(file_bytes) + ", header says " + std::to_string(h.file_bytes);
  if (h.slot_capacity != g.slot_capacity || h.arena_bytes != g.arena_bytes || h.undo_bytes != g.undo_bytes ||
      h.shard != g.shard || h.shard_count != g.shard_count || h.file_bytes != l.file || h.header_bytes != kPage) {
    return "geometry differs (shard " + std::to_string(h.shard) + "/" + std::to_string(h.shard_count) + ", " +
           std::to_string(h.slot_capacity) + " slots), expected shard " + std::to_string(g.shard) + "/" +
           std::to_string(g.shard_count) + ", " + std::to_string(g.slot_capacity) + " slots";
  }
  if (h.boot_id != boot_id()) return "written before the last boot (monotonic times are meaningless)";
  const std::uint64_t u = h.undo_len.load(std::memory_order_acquire);
  if (u > g.undo_bytes || u % 8 != 0) return "undo log length out of range";
  const StateControl& c = h.control;
  if (c.slot_high > g.slot_capacity || c.arena_used > g.arena_bytes || c.arena_used % 8 != 0) {
    return "control block out of range";
  }
  return {};
}

struct Mapped {
  std::byte* base = nullptr;
  std::size_t size = 0;
};

// Maps an existing file; *why is set when it is refused.
Result<Mapped> map_existing(const std::string& path, const StateGeometry& g, std::string* why) {
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_CLOEXEC | O_NOFOLLOW));
  if (!fd.valid()) return errno_error("state: " + path);
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return errno_error("state: " + path);
  if (static_cast<std::uint64_t>(st.st_size) < kPage) {
    *why = "truncated (" + std::to_string(st.st_size) + " bytes)";
    return Mapped{};
  }
  void* p = ::mmap(nullptr, static_cast<std::size_t>(st.st_size), PROT_READ | PROT_WRITE, MAP_SHARED, fd.get(), 0);
  if (p == MAP_FAILED) return errno_error("state: " + path + ": mmap");
  Mapped m{static_cast<std::byte*>(p), static_cast<std::size_t>(st.st_size)};
  *why = refusal(*reinterpret_cast<FileHeader*>(m.base), m.size, g);
  if (!why->empty()) {
    ::munmap(m.base, m.size);
    return Mapped{};
  }
  return m;
}

Status create_file(const std::string& path, const StateGeometry& g) {
  const Layout l = layout_of(g);
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  ::unlink(tmp.c_str());
  UniqueFd fd(::open(tmp.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  if (!fd.valid()) return errno_error("state: " + tmp);
  // Sparse: pages are allocated as series arrive; the header, seq table and
  // undo log are reserved now so the hot path never faults for space there.
  if (::ftruncate(fd.get(), static_cast<off_t>(l.file)) != 0) return errno_error("state: " + tmp + ": ftruncate");
  if (int e = ::posix_fallocate(fd.get(), 0, static_cast<off_t>(l.slots)); e != 0) {
    ::unlink(tmp.c_str());
    errno = e;
    return errno_error("state: " + tmp + ": reserve");
  }
  FileHeader h{};
  std::memcpy(h.magic, kMagic, sizeof kMagic);
  h.version = kStateVersion;
  h.header_bytes = kPage;
  h.file_bytes = l.file;
  h.slot_capacity = g.slot_capacity;
  h.arena_bytes = g.arena_bytes;
  h.undo_bytes = g.undo_bytes;
  h.shard = g.shard;
  h.shard_count = g.shard_count;
  h.boot_id = boot_id();
  h.geometry_check = geometry_check(h);
  h.ready = 0;
  if (::pwrite(fd.get(), &h, sizeof h, 0) != static_cast<ssize_t>(sizeof h)) return errno_error("state: " + tmp);
  const std::uint64_t ready = kReady;
  if (::pwrite(fd.get(), &ready, sizeof ready, offsetof(FileHeader, ready)) != sizeof ready) {
    return errno_error("state: " + tmp);
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) return errno_error("state: " + path + ": rename");
  return {};
}

}  // namespace

Status StateStore::check(const std::string& path, const StateGeometry& g) {
  std::string why;
  auto m = map_existing(path, g, &why);
  if (!m) return tl::unexpected(m.error());
  if (!why.empty()) return invalid("state: " + path + ": " + why);
  ::munmap(m->base, m->size);
  return {};
}

Result<std::unique_ptr<StateStore>> StateStore::open(const std::string& path, const StateGeometry& g, bool* restored,
                                                     std::string* rejected) {
  *restored = false;
  rejected->clear();
  if (g.slot_capacity == 0 || g.arena_bytes == 0 || g.arena_bytes >= (std::uint64_t{1} << 32) ||
      g.undo_bytes < 4096 || g.undo_bytes % 8 != 0 || g.shard >= g.shard_count) {
    return invalid("state: " + path + ": bad geometry");
  }
  Mapped m;
  if (::access(path.c_str(), F_OK) == 0) {
    auto e = map_existing(path, g, rejected);
    if (!e) {
      *rejected = e.error().message();
    } else {
      m = *e;
    }
    if (m.base == nullptr) {
      const std::string aside = path + ".rejected";
      if (::rename(path.c_str(), aside.c_str()) != 0) return errno_error("state: " + path + ": rename aside");
    }
  }
  if (m.base == nullptr) {
    if (auto st = create_file(path, g); !st) return tl::unexpected(st.error());
    std::string why;
    auto e = map_existing(path, g, &why);
    if (!e) return tl::unexpected(e.error());
    if (!why.empty()) return invalid("state: " + path + ": new file refused: " + why);
    m = *e;
  } else {
    *restored = true;
  }
  auto s = std::unique_ptr<StateStore>(new StateStore());
  s->path_ = path;
  s->geometry_ = g;
  s->base_ = m.base;
  s->size_ = m.size;
  const Layout l = layout_of(g);
  s->applied_off_ = kAppliedOff;
  s->undo_off_ = l.undo;
  s->slots_off_ = l.slots;
  s->arena_off_ = l.arena;
  s->rollback();
  return s;
}

StateStore::~StateStore() {
  if (base_ != nullptr) ::munmap(base_, size_);
}

StateControl& StateStore::control() noexcept { return reinterpret_cast<FileHeader*>(base_)->control; }

std::uint64_t StateStore::undo_used() const noexcept {
  return reinterpret_cast<const FileHeader*>(base_)->undo_len.load(std::memory_order_relaxed);
}

bool StateStore::log(std::uint64_t off, std::uint32_t len) noexcept {
  FileHeader& h = *reinterpret_cast<FileHeader*>(base_);
  const std::uint64_t used = h.undo_len.load(std::memory_order_relaxed);
  const std::uint64_t need = sizeof(UndoEntry) + ((std::uint64_t{len} + 7) & ~std::uint64_t{7});
  if (used + need > geometry_.undo_bytes || off + len > size_) return false;
  std::byte* e = base_ + undo_off_ + used;
  const UndoEntry ue{len, 0, off};
  std::memcpy(e, &ue, sizeof ue);
  std::memcpy(e + sizeof ue, base_ + off, len);
  // The entry is complete before the log grows to include it, and the log
  // includes it before the caller changes the bytes. Only a crash of this
  // process observes the order (the mapping has no other writer), so the
  // compiler is the only reorderer to stop.
  std::atomic_signal_fence(std::memory_order_seq_cst);
  h.undo_len.store(used + need, std::memory_order_relaxed);
  std::atomic_signal_fence(std::memory_order_seq_cst);
  return true;
}

bool StateStore::log_control() noexcept {
  if (control_logged_ && in_tx()) return true;
  if (!log(offsetof(FileHeader, control), sizeof(StateControl))) return false;
  control_logged_ = true;
  return true;
}

void StateStore::commit() noexcept {
  FileHeader& h = *reinterpret_cast<FileHeader*>(base_);
  if (h.undo_len.load(std::memory_order_relaxed) == 0) return;
  // The control block was logged in this transaction (log_control), so it may change freely.
  if (!control_logged_ && !log_control()) return;
  ++h.control.committed_tx;
  std::atomic_signal_fence(std::memory_order_seq_cst);
  h.undo_len.store(0, std::memory_order_release);  // the commit point
  std::atomic_signal_fence(std::memory_order_seq_cst);
  control_logged_ = false;
}

void StateStore::rollback() noexcept {
  FileHeader& h = *reinterpret_cast<FileHeader*>(base_);
  const std::uint64_t used = h.undo_len.load(std::memory_order_acquire);
  // Walk forward to find the entries (they are variable-length), then undo
  // them newest first so the oldest image of each range wins.
  std::vector<std::uint64_t> at;
  std::uint64_t pos = 0;
  while (pos + sizeof(UndoEntry) <= used) {
    UndoEntry ue;
    std::memcpy(&ue, base_ + undo_off_ + pos, sizeof ue);
    const std::uint64_t need = sizeof ue + ((std::uint64_t{ue.len} + 7) & ~std::uint64_t{7});
    if (pos + need > used || ue.off + ue.len > size_ || ue.off < offsetof(FileHeader, control)) break;
    at.push_back(pos);
    pos += need;
  }
  for (auto it = at.rbegin(); it != at.rend(); ++it) {
    UndoEntry ue;
    std::memcpy(&ue, base_ + undo_off_ + *it, sizeof ue);
    std::memmove(base_ + ue.off, base_ + undo_off_ + *it + sizeof ue, ue.len);
  }
  std::atomic_signal_fence(std::memory_order_seq_cst);
  h.undo_len.store(0, std::memory_order_release);
  control_logged_ = false;
}

}  // namespace ringpipe::processors::detail
