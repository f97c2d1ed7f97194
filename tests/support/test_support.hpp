#pragma once
// Helpers shared by the test binaries: scratch directories and bounded waits.
// Not thread-safe unless stated.

#include <sys/mman.h>
#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <new>
#include <string>

namespace ringpipe::testing {

// A fresh directory under /dev/shm (or $TMPDIR) removed with everything in it
// when the object dies.
class ScratchDir {
 public:
  ScratchDir();
  ~ScratchDir();
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  [[nodiscard]] const std::filesystem::path& path() const noexcept { return path_; }
  [[nodiscard]] std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

// Polls pred every few milliseconds until it holds or the timeout passes.
[[nodiscard]] bool wait_until(const std::function<bool()>& pred, std::chrono::milliseconds timeout);

// Runs body in a forked child that exits with body's return value.
pid_t spawn(const std::function<int()>& body);

// Waits for a child at most `limit`; one that overstays is killed and the
// test fails. Returns its exit code, or 100 + the signal that ended it.
int reap(pid_t pid, std::chrono::seconds limit = std::chrono::seconds(60));

// A value-initialised T in anonymous shared memory: parent and forked
// children see the same object (T should hold atomics). Never freed.
template <class T>
T* make_shared_block() {
  void* p = ::mmap(nullptr, sizeof(T), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) throw std::bad_alloc();
  return new (p) T{};
}

// True when built with ThreadSanitizer (tests that race on purpose skip then).
[[nodiscard]] constexpr bool under_tsan() {
#if defined(__SANITIZE_THREAD__)
  return true;
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
  return true;
#else
  return false;
#endif
#else
  return false;
#endif
}

// True under AddressSanitizer or ThreadSanitizer, whose builds run several
// times slower: wall-clock bounds on whole processes are relaxed there.
[[nodiscard]] constexpr bool under_sanitizer() {
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  return true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
  return true;
#else
  return false;
#endif
#else
  return false;
#endif
}

}  // namespace ringpipe::testing
