#include "os.hpp"

#include <fcntl.h>
#include <linux/futex.h>
#include <linux/membarrier.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <climits>

namespace ringpipe::ring::detail {

void futex_wait(std::atomic<std::uint32_t>* word, std::uint32_t expected, std::int64_t timeout_ns) noexcept {
  if (timeout_ns <= 0) return;
  timespec ts{static_cast<time_t>(timeout_ns / 1'000'000'000), static_cast<long>(timeout_ns % 1'000'000'000)};
  ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(word), FUTEX_WAIT, expected, &ts, nullptr, 0);
}

void futex_wake_all(std::atomic<std::uint32_t>* word) noexcept {
  ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(word), FUTEX_WAKE, INT_MAX, nullptr, nullptr, 0);
}

namespace {
struct flock byte_lock(short type, std::uint64_t offset) noexcept {
  struct flock fl {};
  fl.l_type = type;
  fl.l_whence = SEEK_SET;
  fl.l_start = static_cast<off_t>(offset);
  fl.l_len = 1;
  fl.l_pid = 0;  // required for OFD locks
  return fl;
}
}  // namespace

bool ofd_try_lock(int fd, std::uint64_t offset) noexcept {
  struct flock fl = byte_lock(F_WRLCK, offset);
  return ::fcntl(fd, F_OFD_SETLK, &fl) == 0;
}

void ofd_unlock(int fd, std::uint64_t offset) noexcept {
  struct flock fl = byte_lock(F_UNLCK, offset);
  ::fcntl(fd, F_OFD_SETLK, &fl);
}

bool ofd_locked_by_other(int fd, std::uint64_t offset) noexcept {
  struct flock fl = byte_lock(F_WRLCK, offset);
  if (::fcntl(fd, F_OFD_GETLK, &fl) != 0) return true;
  return fl.l_type != F_UNLCK;
}

bool membarrier_register() noexcept {
  // Once per process; every later producer of this process reuses the answer.
  static const bool registered = [] {
    const long cmds = ::syscall(SYS_membarrier, MEMBARRIER_CMD_QUERY, 0, 0);
    if (cmds < 0 || (cmds & MEMBARRIER_CMD_GLOBAL_EXPEDITED) == 0) return false;
    return ::syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED, 0, 0) == 0;
  }();
  return registered;
}

namespace {
std::atomic<bool> g_fail_membarrier{false};
}  // namespace

void fail_membarrier_for_tests(bool fail) noexcept { g_fail_membarrier.store(fail, std::memory_order_relaxed); }

bool membarrier_global() noexcept {
  if (g_fail_membarrier.load(std::memory_order_relaxed)) return false;
  return ::syscall(SYS_membarrier, MEMBARRIER_CMD_GLOBAL_EXPEDITED, 0, 0) == 0;
}

}  // namespace ringpipe::ring::detail
