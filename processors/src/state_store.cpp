#include "state_store.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
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
  std::int32_t owner_pid;  // the process that last took the store's lock (not checked: informative)
  std::uint8_t pad0[44];
  std::atomic<std::uint64_t> undo_len;  // bytes of undo entries; 0 = no open transaction
  std::uint8_t pad1[56];
  StateControl control;
};
static_assert(offsetof(FileHeader, owner_pid) == 80);
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

std::uint64_t geometry_check(const FileHeader& h, std::uint32_t version) {
  std::uint64_t x = fnv(&version, sizeof version);
  x = fnv(&h.file_bytes, 5 * sizeof(std::uint64_t), x);
  return fnv(&h.shard, 2 * sizeof(std::uint32_t), x);
}

// Why the mapped header does not describe a store of geometry g; empty when it does.
std::string refusal(const FileHeader& h, std::uint64_t file_bytes, const StateGeometry& g) {
  if (std::memcmp(h.magic, kMagic, sizeof kMagic) != 0) return "bad magic";
  if (h.version != kStateVersion && h.version != kStateVersionNoNative) {
    return "version " + std::to_string(h.version) + ", expected " + std::to_string(kStateVersion) + " or " +
           std::to_string(kStateVersionNoNative);
  }
  if (h.ready != kReady) return "not ready (creator died)";
  // open() relabels a version-1 file as version 2 with two stores (version,
  // then the check): a crash between them leaves version 2 with the check
  // of version 1, which is as sound as either.
  if (h.geometry_check != geometry_check(h, h.version) &&
      (h.version != kStateVersion || h.geometry_check != geometry_check(h, kStateVersionNoNative))) {
    return "geometry checksum mismatch";
  }
  const Layout l = layout_of(g);
  if (h.file_bytes != file_bytes)
    return "size " + std::to_string(file_bytes) + ", header says " + std::to_string(h.file_bytes);
  if (h.slot_capacity != g.slot_capacity || h.arena_bytes != g.arena_bytes || h.undo_bytes != g.undo_bytes ||
      h.shard != g.shard || h.shard_count != g.shard_count || h.file_bytes != l.file || h.header_bytes != kPage) {
    return "geometry differs (shard " + std::to_string(h.shard) + "/" + std::to_string(h.shard_count) + ", " +
           std::to_string(h.slot_capacity) + " slots), expected shard " + std::to_string(g.shard) + "/" +
           std::to_string(g.shard_count) + ", " + std::to_string(g.slot_capacity) + " slots";
  }
  if (h.boot_id != boot_id()) return "written before the last boot (monotonic times are meaningless)";
  const std::uint64_t u = h.undo_len.load(std::memory_order_acquire);
  if (u > g.undo_bytes || u % 8 != 0) return "undo log length out of range";
  return {};
}

// Why control block c cannot describe a store of geometry g; empty when it can.
std::string control_refusal(const StateControl& c, const StateGeometry& g) {
  if (c.slot_high > g.slot_capacity || c.arena_used > g.arena_bytes || c.arena_used % 8 != 0) {
    return "control block out of range (" + std::to_string(c.slot_high) + " slots used, " +
           std::to_string(c.arena_used) + " arena bytes)";
  }
  return {};
}

constexpr std::uint64_t kControlOff = offsetof(FileHeader, control);

// An undo entry may restore only bytes a transaction logs: the control block,
// the applied seqs, slots or arena; never the header or the undo log itself
// (an entry rewriting an older entry would escape the check of that entry).
// Overflow-safe: no sum of file values is formed.
bool restorable(std::uint64_t off, std::uint64_t len, const Layout& l, std::uint64_t size) {
  const auto within = [&](std::uint64_t lo, std::uint64_t hi) {
    return off >= lo && off <= hi && len <= hi - off;  // lo <= off && off + len <= hi
  };
  return within(kControlOff, kControlOff + sizeof(StateControl)) || within(kAppliedOff, l.undo) ||
         within(l.slots, size);
}

// What open() would do to a mapped store: the undo entries to roll back
// (oldest first), and how far into slots and arena the file must have space
// for the rollback and for the control block after it.
struct Plan {
  std::vector<std::uint64_t> entries;  // offsets in the undo log
  std::uint64_t slot_bytes = 0;        // from the slots' start
  std::uint64_t arena_bytes = 0;       // from the arena's start
};

// Walks the first `used` bytes of the undo log; stops at a malformed entry
// and returns why (empty when every entry is well formed).
std::string scan_undo(const std::byte* base, std::uint64_t size, const Layout& l, std::uint64_t used, Plan* plan) {
  std::uint64_t pos = 0;
  while (pos < used) {
    UndoEntry ue;
    if (used - pos < sizeof ue) return "undo log ends inside an entry at " + std::to_string(pos);
    std::memcpy(&ue, base + l.undo + pos, sizeof ue);
    const std::uint64_t need = sizeof ue + ((std::uint64_t{ue.len} + 7) & ~std::uint64_t{7});
    if (need > used - pos) return "undo entry at " + std::to_string(pos) + " runs past the log";
    if (!restorable(ue.off, ue.len, l, size)) {
      return "undo entry at " + std::to_string(pos) + " restores " + std::to_string(ue.len) + " bytes at offset " +
             std::to_string(ue.off) + ", outside the logged regions";
    }
    plan->entries.push_back(pos);
    if (ue.off >= l.arena) {
      plan->arena_bytes = std::max(plan->arena_bytes, ue.off - l.arena + ue.len);
    } else if (ue.off >= l.slots) {
      plan->slot_bytes = std::max(plan->slot_bytes, std::min(ue.off - l.slots + ue.len, l.arena - l.slots));
      if (ue.off + ue.len > l.arena) plan->arena_bytes = std::max(plan->arena_bytes, ue.off + ue.len - l.arena);
    }
    pos += need;
  }
  return {};
}

// Why the mapped store cannot be used as it will be after open() rolls its
// log back; empty when it can (then *plan holds the rollback). Validates the
// header, every undo entry, and the control block the rollback leaves (its
// undo image may hold anything), without changing the file.
std::string inspect(const std::byte* base, std::uint64_t size, const StateGeometry& g, Plan* plan) {
  const auto& h = *reinterpret_cast<const FileHeader*>(base);
  if (std::string why = refusal(h, size, g); !why.empty()) return why;
  const Layout l = layout_of(g);
  const std::uint64_t used = h.undo_len.load(std::memory_order_acquire);
  if (std::string why = scan_undo(base, size, l, used, plan); !why.empty()) return why;
  StateControl c;
  std::memcpy(&c, &h.control, sizeof c);
  for (auto it = plan->entries.rbegin(); it != plan->entries.rend(); ++it) {
    UndoEntry ue;
    std::memcpy(&ue, base + l.undo + *it, sizeof ue);
    if (ue.off < kControlOff + sizeof c && ue.off >= kControlOff) {
      std::memcpy(reinterpret_cast<std::byte*>(&c) + (ue.off - kControlOff), base + l.undo + *it + sizeof ue, ue.len);
    }
  }
  if (std::string why = control_refusal(c, g); !why.empty()) return why;
  const StateControl& now = h.control;
  plan->slot_bytes = std::max({plan->slot_bytes, c.slot_high * sizeof(StateSlot),
                               std::min(now.slot_high, g.slot_capacity) * sizeof(StateSlot)});
  plan->arena_bytes = std::max({plan->arena_bytes, c.arena_used, std::min(now.arena_used, g.arena_bytes)});
  return {};
}

// A write lock on the whole file, owned by the open file description: it
// goes with the last descriptor of that description, or with the process
// when it dies, and a second description (another process, or this one)
// cannot take it meanwhile.
bool try_lock(int fd) noexcept {
  struct flock fl {};
  fl.l_type = F_WRLCK;
  fl.l_whence = SEEK_SET;
  fl.l_start = 0;
  fl.l_len = 0;  // to the end, however long
  fl.l_pid = 0;  // required for OFD locks
  return ::fcntl(fd, F_OFD_SETLK, &fl) == 0;
}

// The error for a store whose lock another description holds. F_OFD_GETLK
// reports no pid for OFD locks (-1), so the holder records its own.
tl::unexpected<Error> held_elsewhere(int fd, const std::string& path) {
  std::int32_t pid = 0;
  const bool known = ::pread(fd, &pid, sizeof pid, offsetof(FileHeader, owner_pid)) == sizeof pid && pid > 0;
  return make_error(std::errc::resource_unavailable_try_again,
                    "state: " + path + ": in use by another live process (" +
                        (known ? "pid " + std::to_string(pid) : std::string("it recorded no pid")) +
                        "); two processors must not share a state directory");
}

// True when `path` still names the file open as fd (not renamed aside or
// replaced while we waited for its lock).
bool still_at(int fd, const std::string& path) {
  struct stat a {};
  struct stat b {};
  return ::fstat(fd, &a) == 0 && ::stat(path.c_str(), &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

// Creates an empty store at `path`, locked before anyone can see it. An
// invalid fd (no error) when another process created the file first.
Result<UniqueFd> create_file(const std::string& path, const StateGeometry& g) {
  const Layout l = layout_of(g);
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  ::unlink(tmp.c_str());
  UniqueFd fd(::open(tmp.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  if (!fd.valid()) return errno_error("state: " + tmp);
  struct Unlink {
    const std::string& p;
    ~Unlink() { ::unlink(p.c_str()); }
  } unlink_tmp{tmp};
  if (!try_lock(fd.get())) return errno_error("state: " + tmp + ": lock");
  // Slots and arena stay sparse (StateStore::reserve_* gives them space as
  // they are used); the header, seq table and undo log get it now.
  if (::ftruncate(fd.get(), static_cast<off_t>(l.file)) != 0) return errno_error("state: " + tmp + ": ftruncate");
  if (int e = ::posix_fallocate(fd.get(), 0, static_cast<off_t>(l.slots)); e != 0) {
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
  h.geometry_check = geometry_check(h, h.version);
  h.ready = 0;
  h.owner_pid = ::getpid();
  if (::pwrite(fd.get(), &h, sizeof h, 0) != static_cast<ssize_t>(sizeof h)) return errno_error("state: " + tmp);
  const std::uint64_t ready = kReady;
  if (::pwrite(fd.get(), &ready, sizeof ready, offsetof(FileHeader, ready)) != sizeof ready) {
    return errno_error("state: " + tmp);
  }
  // link, not rename: it never replaces a store another process created
  // (and holds) since we looked.
  if (::link(tmp.c_str(), path.c_str()) != 0) {
    if (errno == EEXIST) return UniqueFd();
    return errno_error("state: " + path + ": link");
  }
  return fd;
}

}  // namespace

Status StateStore::check(const std::string& path, const StateGeometry& g) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (!fd.valid()) return errno_error("state: " + path);
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return errno_error("state: " + path);
  if (static_cast<std::uint64_t>(st.st_size) < kPage) {
    return invalid("state: " + path + ": truncated (" + std::to_string(st.st_size) + " bytes)");
  }
  const auto size = static_cast<std::size_t>(st.st_size);
  auto mapped = UniqueMapping::map(fd.get(), size, false, path, "state: " + path);
  if (!mapped) return tl::unexpected(mapped.error());
  Plan plan;
  const std::string why = inspect(mapped->data(), size, g, &plan);
  if (!why.empty()) return invalid("state: " + path + ": " + why);
  return {};
}

Result<std::unique_ptr<StateStore>> StateStore::open(const std::string& path, const StateGeometry& g, bool* restored,
                                                     std::string* rejected) {
  *restored = false;
  rejected->clear();
  if (g.slot_capacity == 0 || g.slot_capacity > (std::uint64_t{1} << 32) || g.arena_bytes == 0 ||
      g.arena_bytes >= (std::uint64_t{1} << 32) || g.undo_bytes < 4096 || g.undo_bytes % 8 != 0 ||
      g.undo_bytes > (std::uint64_t{1} << 32) || g.shard >= g.shard_count) {
    return invalid("state: " + path + ": bad geometry");
  }
  const Layout l = layout_of(g);
  // Nothing in the file is read for use, rolled back or moved aside before
  // this process holds its lock: a live holder's open transaction is its own.
  for (int attempt = 0; attempt < 8; ++attempt) {
    bool created = false;
    std::string why;
    UniqueFd fd(::open(path.c_str(), O_RDWR | O_CLOEXEC | O_NOFOLLOW));
    if (!fd.valid() && errno != ENOENT) {
      // Unusable as it is (permissions, a directory): moved aside like a corrupt file.
      why = std::strerror(errno);
    } else if (!fd.valid()) {
      auto c = create_file(path, g);
      if (!c) return tl::unexpected(c.error());
      if (!c->valid()) continue;  // created by another process meanwhile: lock that one
      fd = std::move(*c);
      created = true;
    } else {
      if (!try_lock(fd.get())) {
        if (errno == EAGAIN || errno == EACCES) return held_elsewhere(fd.get(), path);
        return errno_error("state: " + path + ": lock");
      }
      if (!still_at(fd.get(), path)) continue;  // moved aside or replaced before we got the lock
    }

    UniqueMapping mapping;
    std::size_t size = 0;
    Plan plan;
    if (fd.valid()) {
      struct stat st {};
      if (::fstat(fd.get(), &st) != 0) return errno_error("state: " + path);
      size = static_cast<std::size_t>(st.st_size);
      if (size < kPage) {
        why = "truncated (" + std::to_string(st.st_size) + " bytes)";
      } else if (auto mapped = UniqueMapping::map(fd.get(), size, true, path, "mmap"); !mapped) {
        why = mapped.error().message();
      } else {
        mapping = std::move(*mapped);
        why = inspect(mapping.data(), size, g, &plan);
      }
    }
    if (!why.empty()) {
      mapping = UniqueMapping();
      if (created) return invalid("state: " + path + ": new file refused: " + why);
      // Renamed while we hold its lock; a process waiting for it finds it gone.
      const std::string aside = path + ".rejected";
      if (::rename(path.c_str(), aside.c_str()) != 0) return errno_error("state: " + path + ": rename aside");
      *rejected = why;
      continue;
    }

    auto s = std::unique_ptr<StateStore>(new StateStore());
    s->path_ = path;
    s->geometry_ = g;
    s->fd_ = std::move(fd);
    s->base_ = mapping.data();
    s->size_ = size;
    s->mapping_ = std::move(mapping);
    s->applied_off_ = kAppliedOff;
    s->undo_off_ = l.undo;
    s->slots_off_ = l.slots;
    s->arena_off_ = l.arena;
    auto* hdr = reinterpret_cast<FileHeader*>(s->base_);
    hdr->owner_pid = ::getpid();
    if (hdr->version != kStateVersion || hdr->geometry_check != geometry_check(*hdr, kStateVersion)) {
      // A version-1 file is a version-2 file without native regions; from
      // now on it may hold them, so a binary that knows only version 1 must
      // refuse it instead of reading native_region as part of key_len.
      hdr->version = kStateVersion;
      hdr->geometry_check = geometry_check(*hdr, kStateVersion);
    }
    // Space for everything the rollback writes and the shard reads, so
    // neither can SIGBUS on a full file system.
    if (!s->reserve(l.slots, l.arena - l.slots, &s->slots_reserved_, plan.slot_bytes) ||
        !s->reserve(l.arena, l.file - l.arena, &s->arena_reserved_, plan.arena_bytes)) {
      return errno_error("state: " + path + ": no space for the state in use");
    }
    s->rollback();
    *restored = !created;
    return s;
  }
  return invalid("state: " + path + ": replaced by other processes while being opened");
}

bool StateStore::reserve(std::uint64_t region_off, std::uint64_t region_bytes, std::uint64_t* reserved,
                         std::uint64_t need) noexcept {
  if (need <= *reserved) return true;
  if (need > region_bytes) {
    errno = EINVAL;
    return false;
  }
  // A step ahead, so a growing store makes one call per step; when a step
  // does not fit, exactly what is needed.
  constexpr std::uint64_t kStep = 1 << 20;
  const std::uint64_t exact = std::min(round_page(need), region_bytes);
  const std::uint64_t ahead = std::min(std::max(exact, *reserved + kStep), region_bytes);
  for (const std::uint64_t want : {ahead, exact}) {
    const int e =
        ::posix_fallocate(fd_.get(), static_cast<off_t>(region_off + *reserved), static_cast<off_t>(want - *reserved));
    if (e == 0) {
      // The new pages are written soon (a slot or block at a time): mapped
      // here in one call instead of a page fault each, which on a virtual
      // machine traps to the hypervisor (series creation at 1M series spent
      // a fifth of its time there). Advice only: a kernel without
      // MADV_POPULATE_WRITE (before 5.14) leaves them to fault in.
      const std::uint64_t from = region_off + *reserved;
      if (from % kPage == 0) {
        (void)::madvise(base_ + from, static_cast<std::size_t>(want - *reserved), MADV_POPULATE_WRITE);
      }
      *reserved = want;
      return true;
    }
    errno = e;
  }
  return false;
}

StateControl& StateStore::control() noexcept { return reinterpret_cast<FileHeader*>(base_)->control; }

std::uint64_t StateStore::undo_used() const noexcept { return undo_used_; }

bool StateStore::log(std::uint64_t off, std::uint32_t len) noexcept {
  FileHeader& h = *reinterpret_cast<FileHeader*>(base_);
  const std::uint64_t used = undo_used_;  // never above undo_bytes
  const std::uint64_t need = sizeof(UndoEntry) + ((std::uint64_t{len} + 7) & ~std::uint64_t{7});
  // `off` and `len` are this process's own (a slot, the arena, the control
  // block), far below 2^63: the sum cannot wrap.
  if (need > geometry_.undo_bytes - used || off + len > size_) return false;
  std::byte* e = base_ + undo_off_ + used;
  const UndoEntry ue{len, 0, off};
  std::memcpy(e, &ue, sizeof ue);
  std::memcpy(e + sizeof ue, base_ + off, len);
  // The entry is complete before the log grows to include it, and the log
  // includes it before the caller changes the bytes. Only a crash of this
  // process observes the order (the mapping has no other writer), so the
  // compiler is the only reorderer to stop.
  std::atomic_signal_fence(std::memory_order_seq_cst);
  undo_used_ = used + need;
  h.undo_len.store(undo_used_, std::memory_order_relaxed);
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
  if (undo_used_ == 0) return;
  // The control block was logged in this transaction (log_control), so it may change freely.
  if (!control_logged_ && !log_control()) return;
  ++h.control.committed_tx;
  std::atomic_signal_fence(std::memory_order_seq_cst);
  h.undo_len.store(0, std::memory_order_release);  // the commit point
  std::atomic_signal_fence(std::memory_order_seq_cst);
  undo_used_ = 0;
  control_logged_ = false;
}

void StateStore::rollback() noexcept {
  FileHeader& h = *reinterpret_cast<FileHeader*>(base_);
  const std::uint64_t used = h.undo_len.load(std::memory_order_acquire);
  // Find the entries (they are variable-length; open() has refused a file
  // with a malformed one), then undo them newest first so the oldest image
  // of each range wins.
  Plan plan;
  (void)scan_undo(base_, size_, layout_of(geometry_), used, &plan);
  for (auto it = plan.entries.rbegin(); it != plan.entries.rend(); ++it) {
    UndoEntry ue;
    std::memcpy(&ue, base_ + undo_off_ + *it, sizeof ue);
    std::memmove(base_ + ue.off, base_ + undo_off_ + *it + sizeof ue, ue.len);
  }
  std::atomic_signal_fence(std::memory_order_seq_cst);
  h.undo_len.store(0, std::memory_order_release);
  undo_used_ = 0;
  control_logged_ = false;
}

}  // namespace ringpipe::processors::detail
