#pragma once
// UniqueMapping: owns one MAP_SHARED mapping of a file (munmap when
// destroyed; move-only), guarded against the file shrinking under it.
//
// Any process that can open a ring, stats segment or state file can truncate
// it; touching a page past the new end then raises SIGBUS, which would kill
// this process. While a UniqueMapping lives, a process-wide SIGBUS handler
// (installed with the first one) turns such a fault into a refusal instead:
// the whole mapping is replaced by private zero-filled pages (the faulting
// access is retried and reads zeros; writes land in memory nobody shares),
// the mapping reads as lost() from then on, and the process-wide
// lost_mapping() names it, so the component stops with a clear error rather
// than a signal. A SIGBUS outside every guarded mapping keeps its default
// action (or the handler installed before ours).
//
// Thread safety: a UniqueMapping is used from one thread at a time; lost()
// and lost_mapping() may be called from any thread.

#include <atomic>
#include <cstddef>
#include <optional>
#include <string>

#include "ringpipe/common/result.hpp"

namespace ringpipe {

class UniqueMapping {
 public:
  // mmap(MAP_SHARED) of the first `bytes` of `fd`; `name` (a path) is what
  // the fault message and lost_mapping() report. Errors read "what: mmap N bytes: cause".
  [[nodiscard]] static Result<UniqueMapping> map(int fd, std::size_t bytes, bool writable, const std::string& name,
                                                 const std::string& what);

  UniqueMapping() = default;
  UniqueMapping(UniqueMapping&& other) noexcept;
  UniqueMapping& operator=(UniqueMapping&& other) noexcept;
  UniqueMapping(const UniqueMapping&) = delete;
  UniqueMapping& operator=(const UniqueMapping&) = delete;
  ~UniqueMapping();

  [[nodiscard]] std::byte* data() const noexcept { return base_; }
  [[nodiscard]] std::size_t size() const noexcept { return size_; }
  // True once a SIGBUS hit this mapping (its file was truncated): its bytes
  // are private zeros now, not the file's.
  [[nodiscard]] bool lost() const noexcept;

 private:
  void reset() noexcept;
  std::byte* base_ = nullptr;
  std::size_t size_ = 0;
  int slot_ = -1;  // in the process-wide table the SIGBUS handler reads; -1: unguarded
};

// The name of the first mapping of this process that a SIGBUS hit, if any.
[[nodiscard]] std::optional<std::string> lost_mapping();

// How many mappings can be guarded at once; further ones work unguarded.
inline constexpr int kGuardedMappings = 4096;
// Set by the SIGBUS handler when it takes any mapping away.
extern std::atomic<bool> g_any_mapping_lost;

// One load of a process-wide flag: cheap enough for a per-record path that
// then asks the mapping itself (UniqueMapping::lost).
[[nodiscard]] inline bool any_mapping_lost() noexcept { return g_any_mapping_lost.load(std::memory_order_relaxed); }

}  // namespace ringpipe
