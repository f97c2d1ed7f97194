#pragma once
// Sizes and durations as users write them, in the pipeline file and on the
// command line alike: one parser for both, so `--drain-timeout 10s` and
// `reader_timeout: 10s` mean the same, and a bare number that would need a
// unit is refused in both. Pure functions: thread-safe, never allocate or
// throw; a value they do not take is nullopt (the caller words the message,
// with kSizeExpected / kDurationExpected).

#include <chrono>
#include <cstdint>
#include <optional>
#include <string_view>

namespace ringpipe::config {

// What a size or a duration looks like, for "found ..., expected <this>" messages.
inline constexpr std::string_view kSizeExpected = "a size like 64MiB, 512KiB, 1GiB, 10MB or 1000 (bytes)";
inline constexpr std::string_view kDurationExpected = "a duration like 500ms, 10s, 5m, 1h or 1m30s";

// Bytes: "64MiB", "512KiB", "1GiB", "2TiB" (binary), "10kB" / "10KB", "3MB",
// "1GB", "1TB" (decimal), "4096" or "4096B" (a bare number is bytes); one
// space may sit between number and unit ("64 MiB"). Whole numbers only;
// nullopt past 2^64 - 1.
[[nodiscard]] std::optional<std::uint64_t> parse_size(std::string_view text) noexcept;

// Go's duration syntax: "500ms", "10s", "5m", "1h", "1m30s", "1.5s", "250us"
// (or "µs"), "7ns". A bare number is refused, except "0": "10" could mean
// seconds or milliseconds, so it has to say which. No sign, no spaces, no
// days; nullopt past about 292 years.
[[nodiscard]] std::optional<std::chrono::nanoseconds> parse_duration(std::string_view text) noexcept;

// A duration as a millisecond setting keeps it (every pipeline duration but
// summary_max_age, every command-line duration): truncated to whole
// milliseconds, and nullopt when it is above 0 but under 1ms, which would
// silently become 0.
[[nodiscard]] std::optional<std::chrono::milliseconds> to_millis(std::chrono::nanoseconds d) noexcept;
// parse_duration, then to_millis.
[[nodiscard]] std::optional<std::chrono::milliseconds> parse_millis(std::string_view text) noexcept;

}  // namespace ringpipe::config
