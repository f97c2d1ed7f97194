#pragma once
// Helpers shared by the test binaries: scratch directories and bounded waits.
// Not thread-safe unless stated.

#include <chrono>
#include <filesystem>
#include <functional>
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

}  // namespace ringpipe::testing
