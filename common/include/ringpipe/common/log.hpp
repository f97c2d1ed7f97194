#pragma once
// Logging: spdlog to stderr, set up once per process by init_logging().
// RateLimiter lets data-path code emit at most one warning per interval while
// counters carry the exact numbers. RateLimiter is thread-safe.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string_view>

#include <spdlog/spdlog.h>

namespace ringpipe {

// How a log line looks. kText: "2026-12-04T07:38:51.368 info ringpipe[statsd 123] msg";
// kLogfmt: ts=2026-12-04T07:38:51.368Z level=info component=statsd pid=123 msg="msg";
// kJson: {"ts":"…Z","level":"info","component":"statsd","pid":123,"msg":"msg"}.
// logfmt and json are statsd_exporter's --log.format values; their time is UTC.
enum class LogFormat { kText, kLogfmt, kJson };

// Names the process in every line (its component). Call once, early.
void init_logging(std::string_view component, spdlog::level::level_enum level = spdlog::level::info,
                  LogFormat format = LogFormat::kText);

class RateLimiter {
 public:
  explicit RateLimiter(std::chrono::nanoseconds interval) noexcept : interval_ns_(interval.count()) {}

  // True at most once per interval; the caller then logs, including suppressed().
  [[nodiscard]] bool allow() noexcept;
  // How many allow() calls returned false since the last true.
  [[nodiscard]] std::uint64_t take_suppressed() noexcept { return suppressed_.exchange(0, std::memory_order_relaxed); }

 private:
  std::int64_t interval_ns_;
  std::atomic<std::int64_t> next_ns_{0};
  std::atomic<std::uint64_t> suppressed_{0};
};

// CLOCK_MONOTONIC in nanoseconds; comparable across processes on one machine.
[[nodiscard]] std::int64_t monotonic_ns() noexcept;
// CLOCK_REALTIME in nanoseconds.
[[nodiscard]] std::int64_t realtime_ns() noexcept;

}  // namespace ringpipe
