#pragma once
// The supervisor's status file: `<run_dir>/<pipeline>/supervisor.status`, a
// small fixed-width, versioned, little-endian file in shared memory that the
// supervisor rewrites in place whenever a component changes state, so
// `ringpipe stat` can show every component (pid, uptime, restarts) even while
// the supervisor is down.
//
// Layout (all fields 8-byte words, so readers and the writer touch them only
// through relaxed atomics; a seqlock word makes a read consistent):
//   StatusHeader (128 B) | kMaxComponents x ComponentSlot (128 B each)

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ringpipe/common/mapping.hpp"
#include "ringpipe/common/result.hpp"

namespace ringpipe::apps {

inline constexpr std::uint64_t kStatusMagic = 0x5355544154535052ull;  // "RPSTATUS" little-endian
inline constexpr std::uint32_t kStatusVersion = 1;
inline constexpr std::size_t kMaxComponents = 64;
inline constexpr std::size_t kStatusNameBytes = 48;  // NUL-padded
inline constexpr std::string_view kStatusFileName = "supervisor.status";

enum class SupervisorState : std::uint32_t {
  kStarting = 1,
  kRunning = 2,
  kReloading = 3,
  kStopping = 4,
  kStopped = 5,
  kFailed = 6
};
enum class ComponentState : std::uint32_t {
  kStarting = 1,
  kRunning = 2,
  kBackoff = 3,
  kStopping = 4,
  kStopped = 5,
  kFailed = 6
};
enum class ComponentKind : std::uint32_t { kSource = 1, kProcessor = 2, kExporter = 3 };

[[nodiscard]] std::string_view supervisor_state_name(SupervisorState s) noexcept;
[[nodiscard]] std::string_view component_state_name(ComponentState s) noexcept;
[[nodiscard]] std::string_view component_kind_name(ComponentKind k) noexcept;

// What exit status means in the file: >= 0 exit code, < 0 killed by signal -n.
inline constexpr std::int64_t kNoExit = INT64_MIN;

// One component as the supervisor last wrote it. Plain value.
struct ComponentStatus {
  std::string name;
  ComponentKind kind = ComponentKind::kSource;
  ComponentState state = ComponentState::kStarting;
  std::uint32_t pid = 0;             // 0 when not running
  std::uint32_t restarts = 0;        // starts after the first
  std::uint32_t quick_failures = 0;  // consecutive deaths soon after a start
  std::int64_t started_ns = 0;       // CLOCK_REALTIME of the current (or last) start
  std::int64_t last_exit = kNoExit;  // see kNoExit
  std::int64_t last_exit_ns = 0;     // CLOCK_REALTIME
  std::int64_t next_start_ns = 0;    // CLOCK_REALTIME; in backoff: when it restarts
};

// The whole file. Plain value.
struct SupervisorStatus {
  std::string pipeline;
  SupervisorState state = SupervisorState::kStarting;
  std::uint32_t pid = 0;
  std::int64_t started_ns = 0;  // CLOCK_REALTIME
  std::int64_t updated_ns = 0;
  std::vector<ComponentStatus> components;
};

// Writer side: owns the mapping of the status file. One process (the
// supervisor) writes it, from one thread; not thread-safe.
class StatusFile {
 public:
  // Creates or reuses and maps the file, through RunDir (ringpipe/common/run_dir.hpp):
  // mode 0600, directories made 0700, never through a symlink, refused unless ours.
  [[nodiscard]] static Result<StatusFile> create(const std::string& path);
  StatusFile(StatusFile&&) noexcept = default;
  StatusFile& operator=(StatusFile&&) noexcept = default;
  ~StatusFile() = default;

  // Publishes a whole new state (components beyond kMaxComponents are left out).
  void write(const SupervisorStatus& status) noexcept;
  [[nodiscard]] const std::string& path() const noexcept { return path_; }

 private:
  StatusFile() = default;
  std::string path_;
  UniqueMapping mapping_;
};

// Reads a consistent copy of a status file written by another process; fails
// on a missing, truncated, foreign or newer-version file. Thread-safe.
[[nodiscard]] Result<SupervisorStatus> read_status_file(const std::string& path);

// "<run_dir>/<pipeline>/supervisor.status".
[[nodiscard]] std::string status_file_path(std::string_view run_dir, std::string_view pipeline);

}  // namespace ringpipe::apps
