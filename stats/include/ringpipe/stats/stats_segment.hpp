#pragma once
// Stats segment: one component's own counters and gauges in a small
// file-backed shared mapping (`<run_dir>/<pipeline>/<component>.stats`), so
// any process (`ringpipe stat`, the exporter) reads them without asking the
// component. The owner registers each metric once and gets a pointer to its
// std::atomic<uint64_t> value in the mapping; hot paths then update it with a
// relaxed fetch_add or store: no lookup, no allocation, no syscall.
//
// Writer: StatsSegment::create() creates the file, or reopens the segment a
// previous run of the same component left there, so counters continue from
// their previous values (rates stay smooth across restarts). One writing
// process per file (an OFD lock; a second live writer is refused).
// Reader: StatsReader::open() validates the header and snapshot() copies every
// published entry out, bounds-checking everything read from the file.
//
// Byte layout (fixed width, little-endian, see the static_asserts in
// stats_segment.cpp): a 256-byte header followed by `capacity` 640-byte entries.
// Names follow Prometheus conventions without the `ringpipe_` prefix the
// exporter adds: counters end in `_total`, units are base units
// (`_seconds`, `_bytes`), e.g. "source_parse_errors_total" {reason="..."}.

#include <atomic>
#include <bit>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "ringpipe/common/mapping.hpp"
#include "ringpipe/common/result.hpp"
#include "ringpipe/common/unique_fd.hpp"

namespace ringpipe::stats {

inline constexpr std::uint32_t kStatsMaxNameBytes = 64;   // metric name
inline constexpr std::uint32_t kStatsMaxHelpBytes = 128;  // HELP text
inline constexpr std::uint32_t kStatsMaxLabels = 4;       // label pairs per entry
inline constexpr std::uint32_t kStatsMaxLabelNameBytes = 32;
inline constexpr std::uint32_t kStatsMaxLabelValueBytes = 64;
inline constexpr std::uint32_t kStatsMaxComponentBytes = 64;
inline constexpr std::uint32_t kStatsMaxKindBytes = 32;
inline constexpr std::uint32_t kStatsDefaultCapacity = 512;  // entries
inline constexpr std::uint32_t kStatsMaxCapacity = 65536;
inline constexpr std::string_view kStatsFileSuffix = ".stats";

// Counter: monotonic (Prometheus counter). Gauge: any value, set by store().
enum class StatsType : std::uint8_t { kCounter = 1, kGauge = 2 };
// How the 64 value bits read: an unsigned integer, or an IEEE-754 double.
enum class StatsEncoding : std::uint8_t { kUnsigned = 1, kDouble = 2 };

struct StatsLabel {
  std::string name;
  std::string value;
  friend bool operator==(const StatsLabel&, const StatsLabel&) = default;
};
using StatsLabels = std::vector<StatsLabel>;

class StatsReader;

// A double kept as its bit pattern in an atomic<uint64_t> value of the mapping.
// Any thread; add() is a CAS loop (fine for once-per-scrape updates).
inline void stats_store_double(std::atomic<std::uint64_t>& v, double d) noexcept {
  v.store(std::bit_cast<std::uint64_t>(d), std::memory_order_relaxed);
}
inline void stats_add_double(std::atomic<std::uint64_t>& v, double d) noexcept {
  std::uint64_t old = v.load(std::memory_order_relaxed);
  while (!v.compare_exchange_weak(old, std::bit_cast<std::uint64_t>(std::bit_cast<double>(old) + d),
                                  std::memory_order_relaxed)) {
  }
}

// The writer end of one component's segment. Owns the mapping; handles it
// returns stay valid while the StatsSegment lives (keep it alive longer than
// every thread that uses them). register_*() may be called from any thread
// (a mutex); the handles are plain atomics, usable from any thread.
class StatsSegment {
 public:
  // Creates `path` (mode 0600, parent directories made), or reopens a valid
  // segment of the same component and kind with the same capacity, keeping
  // its values. A file that is corrupt, of another version, another
  // component or geometry is replaced by a fresh one (values reset to 0).
  // Fails if another live process holds the segment as writer.
  [[nodiscard]] static Result<StatsSegment> create(const std::string& path, std::string_view component,
                                                   std::string_view kind,
                                                   std::uint32_t capacity = kStatsDefaultCapacity);
  // Read-only view of any segment (same as StatsReader::open).
  [[nodiscard]] static Result<StatsReader> open_readonly(const std::string& path);

  // Returns the value cell of name+labels, publishing a new entry the first
  // time (value 0) or returning the existing one (value kept: a restart
  // continues). Fails on an invalid name/label (Prometheus syntax, sizes), a
  // type/encoding clash with the existing entry, or a full table.
  [[nodiscard]] Result<std::atomic<std::uint64_t>*> register_counter(std::string_view name, std::string_view help,
                                                                     const StatsLabels& labels = {},
                                                                     StatsEncoding encoding = StatsEncoding::kUnsigned);
  [[nodiscard]] Result<std::atomic<std::uint64_t>*> register_gauge(std::string_view name, std::string_view help,
                                                                   const StatsLabels& labels = {},
                                                                   StatsEncoding encoding = StatsEncoding::kUnsigned);

  // Sets every gauge of the segment to 0 (counters are left alone); a
  // restarted component calls it when its old gauges mean nothing any more.
  void reset_gauges() noexcept;
  // Stamps the header's heartbeat (CLOCK_REALTIME ns) so readers can tell a
  // live writer from a stale file. Any thread.
  void heartbeat() noexcept;

  [[nodiscard]] const std::string& path() const noexcept { return path_; }
  [[nodiscard]] std::uint32_t capacity() const noexcept;
  [[nodiscard]] std::uint32_t size() const noexcept;  // entries published
  // How many times this segment was (re)opened by a writer, 1 for a fresh file.
  [[nodiscard]] std::uint64_t generation() const noexcept;

  StatsSegment(StatsSegment&& other) noexcept = default;
  StatsSegment& operator=(StatsSegment&& other) noexcept = default;
  StatsSegment(const StatsSegment&) = delete;
  StatsSegment& operator=(const StatsSegment&) = delete;
  ~StatsSegment() = default;

 private:
  StatsSegment() = default;
  Result<std::atomic<std::uint64_t>*> register_entry(StatsType type, StatsEncoding encoding, std::string_view name,
                                                     std::string_view help, const StatsLabels& labels);

  [[nodiscard]] std::byte* base() const noexcept { return mapping_.data(); }
  std::string path_;
  UniqueFd fd_;
  UniqueMapping mapping_;
  std::unique_ptr<std::mutex> mu_ = std::make_unique<std::mutex>();
};

// One entry copied out of a segment.
struct StatsEntry {
  std::string name;
  std::string help;
  StatsLabels labels;
  StatsType type = StatsType::kCounter;
  StatsEncoding encoding = StatsEncoding::kUnsigned;
  std::uint64_t raw = 0;  // the value bits

  [[nodiscard]] double value() const noexcept {
    return encoding == StatsEncoding::kDouble ? std::bit_cast<double>(raw) : static_cast<double>(raw);
  }
};

// What a reader knows about the segment's writer.
struct StatsSegmentInfo {
  std::string component;
  std::string kind;
  std::int32_t pid = 0;           // last writer
  std::int64_t created_ns = 0;    // CLOCK_REALTIME of the file's creation
  std::int64_t opened_ns = 0;     // CLOCK_REALTIME of the last writer's (re)open
  std::int64_t heartbeat_ns = 0;  // last heartbeat(), 0 = never
  std::uint64_t generation = 0;
  std::uint32_t capacity = 0;
};

// Read-only view of a segment written by another process (or this one).
// Never trusts the file: open() validates the header; snapshot() validates
// every entry and skips (counts) malformed ones. One thread at a time.
class StatsReader {
 public:
  [[nodiscard]] static Result<StatsReader> open(const std::string& path);

  [[nodiscard]] StatsSegmentInfo info() const;
  // Every published, well-formed entry, in registration order.
  [[nodiscard]] std::vector<StatsEntry> snapshot();
  // Entries skipped as malformed by the last snapshot().
  [[nodiscard]] std::uint32_t malformed() const noexcept { return malformed_; }
  // Whether the writer process recorded in the header still exists (kill(pid, 0)).
  [[nodiscard]] bool writer_alive() const noexcept;
  [[nodiscard]] const std::string& path() const noexcept { return path_; }

  StatsReader(StatsReader&& other) noexcept = default;
  StatsReader& operator=(StatsReader&& other) noexcept = default;
  StatsReader(const StatsReader&) = delete;
  StatsReader& operator=(const StatsReader&) = delete;
  ~StatsReader() = default;

 private:
  StatsReader() = default;
  [[nodiscard]] const std::byte* base() const noexcept { return mapping_.data(); }
  std::string path_;
  UniqueMapping mapping_;
  std::uint32_t capacity_ = 0;
  std::uint32_t malformed_ = 0;
};

// Every `*.stats` file directly under `dir`, sorted by name; empty when the
// directory does not exist.
[[nodiscard]] std::vector<std::string> list_stats_segments(const std::string& dir);

// Prometheus metric/label name syntax ([a-zA-Z_:][a-zA-Z0-9_:]*, labels without ':').
[[nodiscard]] bool is_valid_metric_name(std::string_view s) noexcept;
[[nodiscard]] bool is_valid_label_name(std::string_view s) noexcept;

}  // namespace ringpipe::stats
