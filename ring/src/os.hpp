#pragma once
// Thin wrappers over the kernel services the ring relies on: shared futexes in
// the mapping and open-file-description (OFD) locks for liveness. All of them
// are safe to call from any thread.

#include <atomic>
#include <cstdint>
#include <string>

#include "ringpipe/common/result.hpp"
#include "ringpipe/common/unique_fd.hpp"

namespace ringpipe::ring::detail {

// Sleeps while *word == expected, at most timeout_ns (spurious returns allowed).
// Not FUTEX_PRIVATE: the word is shared between processes through the file.
void futex_wait(std::atomic<std::uint32_t>* word, std::uint32_t expected, std::int64_t timeout_ns) noexcept;
void futex_wake_all(std::atomic<std::uint32_t>* word) noexcept;

// Takes a write lock on one byte, owned by fd's open file description; the
// kernel drops it when the last descriptor of that description closes, so a
// killed process releases it. Returns false if another description holds it.
[[nodiscard]] bool ofd_try_lock(int fd, std::uint64_t offset) noexcept;
void ofd_unlock(int fd, std::uint64_t offset) noexcept;
// True when some other open file description holds a lock on the byte: its
// owner is alive (possibly stopped). Errors count as alive (never evict on doubt).
[[nodiscard]] bool ofd_locked_by_other(int fd, std::uint64_t offset) noexcept;

// Opens a second description of the ring's file (OFD locks belong to it) and
// checks it is the very file the ring mapped, not a re-created one.
// It must still be at least `bytes` long (a truncated file is refused).
[[nodiscard]] Result<UniqueFd> open_same_file(const std::string& path, std::uint64_t dev, std::uint64_t ino,
                                              std::uint64_t bytes, const std::string& what);

// Asymmetric fences (membarrier(2)): a producer process registers once and
// then publishes with plain stores; a reader about to sleep pays for the
// barrier instead, with one syscall that makes every registered process's
// CPUs pass a full fence. Returns false where the kernel does not offer it.
[[nodiscard]] bool membarrier_register() noexcept;
[[nodiscard]] bool membarrier_global() noexcept;
// Tests: makes membarrier_global() fail in this process, as a seccomp filter would.
void fail_membarrier_for_tests(bool fail) noexcept;

inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield" ::: "memory");
#endif
}

}  // namespace ringpipe::ring::detail
