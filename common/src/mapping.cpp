#include "ringpipe/common/mapping.hpp"

#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <utility>

namespace ringpipe {

std::atomic<bool> g_any_mapping_lost{false};

namespace {

// The table the SIGBUS handler reads. A slot is claimed with a CAS on
// `state` and filled before it turns kLive; the handler looks only at live
// slots, and reads nothing that is not an atomic or written before that.
enum : int { kFree = 0, kFilling = 1, kLive = 2 };
constexpr std::size_t kNameBytes = 160;

struct Guarded {
  std::atomic<int> state{kFree};
  std::atomic<int> lost{0};
  std::atomic<std::uintptr_t> base{0};
  std::atomic<std::size_t> size{0};
  char name[kNameBytes] = {};
};
Guarded g_table[kGuardedMappings];

// The first lost mapping's name, for lost_mapping(): 0 none, 1 being
// written (by the handler), 2 ready.
std::atomic<int> g_lost_state{0};
char g_lost_name[kNameBytes] = {};

struct sigaction g_previous {};
std::once_flag g_installed;

void write_all(const char* s, std::size_t n) noexcept {
  while (n > 0) {
    const ssize_t w = ::write(STDERR_FILENO, s, n);
    if (w <= 0) return;
    s += w;
    n -= static_cast<std::size_t>(w);
  }
}

void on_sigbus(int sig, siginfo_t* info, void* context) {
  const int saved_errno = errno;
  const auto addr = reinterpret_cast<std::uintptr_t>(info->si_addr);
  for (Guarded& g : g_table) {
    if (g.state.load(std::memory_order_acquire) != kLive) continue;
    const std::uintptr_t base = g.base.load(std::memory_order_relaxed);
    const std::size_t size = g.size.load(std::memory_order_relaxed);
    if (addr < base || addr - base >= size) continue;
    // The file under this mapping shrank. Private zero pages take its place
    // (mmap is a plain system call, safe here); the access is retried on them.
    // NOLINTNEXTLINE(performance-no-int-to-ptr): the address is the guarded mapping's own, kept as an integer.
    void* p = ::mmap(reinterpret_cast<void*>(base), size, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    if (p == MAP_FAILED) break;  // cannot recover: take the default action below
    g_any_mapping_lost.store(true, std::memory_order_release);
    if (g.lost.exchange(1, std::memory_order_acq_rel) == 0) {
      int expected = 0;
      if (g_lost_state.compare_exchange_strong(expected, 1, std::memory_order_acq_rel)) {
        std::memcpy(g_lost_name, g.name, kNameBytes);
        g_lost_state.store(2, std::memory_order_release);
      }
      static constexpr char kHead[] = "ringpipe: SIGBUS in ";
      static constexpr char kTail[] =
          ": the file was truncated by another process while mapped; this process now reads zeros there and "
          "stops using it\n";
      write_all(kHead, sizeof kHead - 1);
      write_all(g.name, ::strnlen(g.name, kNameBytes));
      write_all(kTail, sizeof kTail - 1);
    }
    errno = saved_errno;
    return;
  }
  // Not one of ours: whatever would have happened without this handler.
  if ((g_previous.sa_flags & SA_SIGINFO) != 0 && g_previous.sa_sigaction != nullptr) {
    g_previous.sa_sigaction(sig, info, context);
  } else if (g_previous.sa_handler != SIG_DFL && g_previous.sa_handler != SIG_IGN) {
    g_previous.sa_handler(sig);
  } else {
    // Default action: restored, then the faulting access runs again and the
    // kernel delivers SIGBUS with it.
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    ::sigemptyset(&dfl.sa_mask);
    ::sigaction(SIGBUS, &dfl, nullptr);
  }
  errno = saved_errno;
}

void install_handler() {
  struct sigaction sa {};
  sa.sa_sigaction = on_sigbus;
  sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
  ::sigemptyset(&sa.sa_mask);
  ::sigaction(SIGBUS, &sa, &g_previous);
}

int guard(std::byte* base, std::size_t size, const std::string& name) noexcept {
  std::call_once(g_installed, install_handler);
  for (int i = 0; i < kGuardedMappings; ++i) {
    Guarded& g = g_table[i];
    int expected = kFree;
    if (!g.state.compare_exchange_strong(expected, kFilling, std::memory_order_acq_rel)) continue;
    g.lost.store(0, std::memory_order_relaxed);
    g.base.store(reinterpret_cast<std::uintptr_t>(base), std::memory_order_relaxed);
    g.size.store(size, std::memory_order_relaxed);
    const std::size_t n = std::min(name.size(), kNameBytes - 1);
    std::memcpy(g.name, name.data(), n);
    g.name[n] = '\0';
    g.state.store(kLive, std::memory_order_release);
    return i;
  }
  return -1;
}

}  // namespace

Result<UniqueMapping> UniqueMapping::map(int fd, std::size_t bytes, bool writable, const std::string& name,
                                         const std::string& what) {
  void* p = ::mmap(nullptr, bytes, writable ? PROT_READ | PROT_WRITE : PROT_READ, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) return errno_error(what + ": mmap " + std::to_string(bytes) + " bytes");
  UniqueMapping m;
  m.base_ = static_cast<std::byte*>(p);
  m.size_ = bytes;
  m.slot_ = guard(m.base_, bytes, name);
  return m;
}

UniqueMapping::UniqueMapping(UniqueMapping&& other) noexcept
    : base_(std::exchange(other.base_, nullptr)),
      size_(std::exchange(other.size_, 0)),
      slot_(std::exchange(other.slot_, -1)) {}

UniqueMapping& UniqueMapping::operator=(UniqueMapping&& other) noexcept {
  if (this != &other) {
    reset();
    base_ = std::exchange(other.base_, nullptr);
    size_ = std::exchange(other.size_, 0);
    slot_ = std::exchange(other.slot_, -1);
  }
  return *this;
}

UniqueMapping::~UniqueMapping() { reset(); }

void UniqueMapping::reset() noexcept {
  if (slot_ >= 0) {
    // Unguarded first: once the range is unmapped the address may be reused.
    g_table[slot_].state.store(kFree, std::memory_order_release);
    slot_ = -1;
  }
  if (base_ != nullptr) ::munmap(base_, size_);
  base_ = nullptr;
  size_ = 0;
}

bool UniqueMapping::lost() const noexcept {
  return slot_ >= 0 && g_table[slot_].lost.load(std::memory_order_acquire) != 0;
}

std::optional<std::string> lost_mapping() {
  if (g_lost_state.load(std::memory_order_acquire) != 2) return std::nullopt;
  return std::string(g_lost_name, ::strnlen(g_lost_name, kNameBytes));
}

}  // namespace ringpipe
