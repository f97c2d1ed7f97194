#include "status_file.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <filesystem>
#include <thread>
#include <type_traits>
#include <utility>

#include "ringpipe/common/mapping.hpp"
#include "ringpipe/common/run_dir.hpp"
#include "ringpipe/common/unique_fd.hpp"

namespace ringpipe::apps {
namespace {

// Every field is a whole 8-byte word (names are 6 words), so each word is
// copied with one relaxed atomic access: no torn words, no data race.
struct HeaderLayout {
  std::uint64_t magic;
  std::uint64_t version_and_slots;  // version (low 32) | slot count (high 32)
  std::uint64_t seq;                // seqlock: odd while the writer is mid-update
  std::uint64_t pid_and_state;      // pid (low 32) | SupervisorState (high 32)
  std::int64_t started_ns;
  std::int64_t updated_ns;
  char pipeline[kStatusNameBytes];
  std::uint64_t component_count;
  std::uint64_t reserved[3];
};
static_assert(sizeof(HeaderLayout) == 128, "the status header is part of the file format");
static_assert(offsetof(HeaderLayout, seq) == 16, "the status header is part of the file format");

struct SlotLayout {
  char name[kStatusNameBytes];
  std::uint64_t kind_and_state;    // ComponentKind (low 32) | ComponentState (high 32)
  std::uint64_t pid_and_restarts;  // pid (low 32) | restarts (high 32)
  std::uint64_t quick_failures;
  std::int64_t started_ns;
  std::int64_t last_exit;
  std::int64_t last_exit_ns;
  std::int64_t next_start_ns;
  std::uint64_t reserved[3];
};
static_assert(sizeof(SlotLayout) == 128, "a status slot is part of the file format");
static_assert(std::is_trivially_copyable_v<HeaderLayout> && std::is_trivially_copyable_v<SlotLayout>);

constexpr std::size_t kFileBytes = sizeof(HeaderLayout) + kMaxComponents * sizeof(SlotLayout);
constexpr std::size_t kWords = kFileBytes / 8;
constexpr std::size_t kSeqWord = offsetof(HeaderLayout, seq) / 8;
static_assert(kFileBytes % 8 == 0);

std::uint64_t lo_hi(std::uint32_t lo, std::uint32_t hi) { return lo | (std::uint64_t{hi} << 32); }
std::uint32_t lo(std::uint64_t w) { return static_cast<std::uint32_t>(w); }
std::uint32_t hi(std::uint64_t w) { return static_cast<std::uint32_t>(w >> 32); }

void copy_name(char (&dst)[kStatusNameBytes], std::string_view name) {
  std::memset(dst, 0, sizeof dst);
  std::memcpy(dst, name.data(), std::min(name.size(), sizeof dst - 1));
}
std::string read_name(const char (&src)[kStatusNameBytes]) { return std::string(src, ::strnlen(src, sizeof src)); }

}  // namespace

std::string_view supervisor_state_name(SupervisorState s) noexcept {
  switch (s) {
    case SupervisorState::kStarting:
      return "starting";
    case SupervisorState::kRunning:
      return "running";
    case SupervisorState::kReloading:
      return "reloading";
    case SupervisorState::kStopping:
      return "stopping";
    case SupervisorState::kStopped:
      return "stopped";
    case SupervisorState::kFailed:
      return "failed";
  }
  return "unknown";
}

std::string_view component_state_name(ComponentState s) noexcept {
  switch (s) {
    case ComponentState::kStarting:
      return "starting";
    case ComponentState::kRunning:
      return "running";
    case ComponentState::kBackoff:
      return "backoff";
    case ComponentState::kStopping:
      return "stopping";
    case ComponentState::kStopped:
      return "stopped";
    case ComponentState::kFailed:
      return "failed";
  }
  return "unknown";
}

std::string_view component_kind_name(ComponentKind k) noexcept {
  switch (k) {
    case ComponentKind::kSource:
      return "source";
    case ComponentKind::kProcessor:
      return "processor";
    case ComponentKind::kExporter:
      return "exporter";
  }
  return "unknown";
}

std::string status_file_path(std::string_view run_dir, std::string_view pipeline) {
  return (std::filesystem::path(run_dir) / pipeline / kStatusFileName).string();
}

Result<StatusFile> StatusFile::create(const std::string& path) {
  const std::filesystem::path p(path);
  auto dir = RunDir::open_or_create(p.has_parent_path() ? p.parent_path().string() : ".");
  if (!dir) return tl::unexpected(Error{dir.error().code, "status file: " + dir.error().context});
  auto opened = dir->create_file(p.filename().string(), O_RDWR);
  if (!opened) return tl::unexpected(Error{opened.error().code, "status file: " + opened.error().context});
  UniqueFd fd = std::move(*opened);
  // Resized in place, never truncated to 0: a reader mapping it meanwhile must not fault.
  if (::ftruncate(fd.get(), kFileBytes) != 0) return errno_error("status file: " + path + ": resize");
  auto mapped = UniqueMapping::map(fd.get(), kFileBytes, true, path, "status file: " + path);
  if (!mapped) return tl::unexpected(mapped.error());
  StatusFile f;
  f.path_ = path;
  f.mapping_ = std::move(*mapped);
  auto* words = reinterpret_cast<std::uint64_t*>(f.mapping_.data());
  // Magic last: a reader never sees the magic before the version.
  __atomic_store_n(&words[1], lo_hi(kStatusVersion, kMaxComponents), __ATOMIC_RELAXED);
  __atomic_store_n(&words[0], kStatusMagic, __ATOMIC_RELEASE);
  return f;
}

void StatusFile::write(const SupervisorStatus& status) noexcept {
  if (mapping_.data() == nullptr) return;
  alignas(8) std::byte image[kFileBytes] = {};
  HeaderLayout h{};
  h.magic = kStatusMagic;
  h.version_and_slots = lo_hi(kStatusVersion, kMaxComponents);
  h.pid_and_state = lo_hi(status.pid, static_cast<std::uint32_t>(status.state));
  h.started_ns = status.started_ns;
  h.updated_ns = status.updated_ns;
  copy_name(h.pipeline, status.pipeline);
  const std::size_t n = std::min(status.components.size(), kMaxComponents);
  h.component_count = n;
  std::memcpy(image, &h, sizeof h);
  for (std::size_t i = 0; i < n; ++i) {
    const ComponentStatus& c = status.components[i];
    SlotLayout s{};
    copy_name(s.name, c.name);
    s.kind_and_state = lo_hi(static_cast<std::uint32_t>(c.kind), static_cast<std::uint32_t>(c.state));
    s.pid_and_restarts = lo_hi(c.pid, c.restarts);
    s.quick_failures = c.quick_failures;
    s.started_ns = c.started_ns;
    s.last_exit = c.last_exit;
    s.last_exit_ns = c.last_exit_ns;
    s.next_start_ns = c.next_start_ns;
    std::memcpy(image + sizeof(HeaderLayout) + i * sizeof(SlotLayout), &s, sizeof s);
  }
  auto* words = reinterpret_cast<std::uint64_t*>(mapping_.data());
  const std::uint64_t seq = __atomic_load_n(&words[kSeqWord], __ATOMIC_RELAXED);
  __atomic_store_n(&words[kSeqWord], seq + 1, __ATOMIC_RELAXED);
  // Pairs with the reader's acquire fence: odd seq is visible before any new word.
  __atomic_thread_fence(__ATOMIC_RELEASE);
  for (std::size_t w = 0; w < kWords; ++w) {
    if (w == kSeqWord) continue;
    std::uint64_t v;
    std::memcpy(&v, image + w * 8, 8);
    __atomic_store_n(&words[w], v, __ATOMIC_RELAXED);
  }
  // Pairs with the reader's acquire load of seq: the words are visible before the even seq.
  __atomic_store_n(&words[kSeqWord], seq + 2, __ATOMIC_RELEASE);
}

Result<SupervisorStatus> read_status_file(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return errno_error("status file: " + path);
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return errno_error("status file: " + path + ": stat");
  if (static_cast<std::size_t>(st.st_size) < kFileBytes)
    return invalid("status file: " + path + ": truncated (" + std::to_string(st.st_size) + " bytes, expected " +
                   std::to_string(kFileBytes) + ")");
  auto mapped = UniqueMapping::map(fd.get(), kFileBytes, false, path, "status file: " + path);
  if (!mapped) return tl::unexpected(mapped.error());
  const auto* words = reinterpret_cast<const std::uint64_t*>(mapped->data());
  alignas(8) std::byte image[kFileBytes];
  // A writer killed mid-update leaves seq odd forever: after a bounded wait
  // the last copy is used as it is.
  for (int attempt = 0; attempt < 2000; ++attempt) {
    const std::uint64_t s1 = __atomic_load_n(&words[kSeqWord], __ATOMIC_ACQUIRE);
    for (std::size_t w = 0; w < kWords; ++w) {
      const std::uint64_t v = __atomic_load_n(&words[w], __ATOMIC_RELAXED);
      std::memcpy(image + w * 8, &v, 8);
    }
    // Pairs with the writer's release fence: a word from a newer update shows a newer seq.
    __atomic_thread_fence(__ATOMIC_ACQUIRE);
    const std::uint64_t s2 = __atomic_load_n(&words[kSeqWord], __ATOMIC_RELAXED);
    if (s1 == s2 && (s1 & 1) == 0) break;
    if (attempt > 100) std::this_thread::sleep_for(std::chrono::microseconds(50));
  }
  if (mapped->lost()) return invalid("status file: " + path + ": truncated while being read");

  HeaderLayout h;
  std::memcpy(&h, image, sizeof h);
  if (h.magic != kStatusMagic) return invalid("status file: " + path + ": bad magic (not a ringpipe status file)");
  if (lo(h.version_and_slots) != kStatusVersion)
    return invalid("status file: " + path + ": version " + std::to_string(lo(h.version_and_slots)) + ", expected " +
                   std::to_string(kStatusVersion));
  if (hi(h.version_and_slots) != kMaxComponents || h.component_count > kMaxComponents)
    return invalid("status file: " + path + ": inconsistent slot count");
  SupervisorStatus out;
  out.pipeline = read_name(h.pipeline);
  out.pid = lo(h.pid_and_state);
  out.state = static_cast<SupervisorState>(hi(h.pid_and_state));
  out.started_ns = h.started_ns;
  out.updated_ns = h.updated_ns;
  for (std::size_t i = 0; i < h.component_count; ++i) {
    SlotLayout s;
    std::memcpy(&s, image + sizeof(HeaderLayout) + i * sizeof(SlotLayout), sizeof s);
    ComponentStatus c;
    c.name = read_name(s.name);
    c.kind = static_cast<ComponentKind>(lo(s.kind_and_state));
    c.state = static_cast<ComponentState>(hi(s.kind_and_state));
    c.pid = lo(s.pid_and_restarts);
    c.restarts = hi(s.pid_and_restarts);
    c.quick_failures = static_cast<std::uint32_t>(s.quick_failures);
    c.started_ns = s.started_ns;
    c.last_exit = s.last_exit;
    c.last_exit_ns = s.last_exit_ns;
    c.next_start_ns = s.next_start_ns;
    out.components.push_back(std::move(c));
  }
  return out;
}

}  // namespace ringpipe::apps
