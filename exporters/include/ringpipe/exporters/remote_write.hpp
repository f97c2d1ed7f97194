#pragma once
// remote_write policy pieces that need no network: how an HTTP answer is
// classified and how long to wait before a retry. Pure functions, noexcept,
// safe from any thread.

#include <chrono>
#include <cstdint>

namespace ringpipe::exporters {

enum class SendVerdict : std::uint8_t {
  kDone,   // 2xx: the samples are stored; the cursor may advance
  kRetry,  // 5xx, 429, timeout, connection failure: send the same request again later
  kDrop,   // other 4xx (and unexpected codes): the request can never succeed; count and drop
};

// `status` 0 means no HTTP answer (connect/read/write failure or timeout).
[[nodiscard]] SendVerdict classify_http_status(int status) noexcept;

// Capped exponential backoff with "equal jitter": for attempt n (0-based),
// d = min(max, min_backoff * 2^n); waits d/2 + jitter01 * d/2, jitter01 in [0, 1).
[[nodiscard]] std::chrono::milliseconds retry_backoff(std::uint32_t attempt, std::chrono::milliseconds min_backoff,
                                                      std::chrono::milliseconds max_backoff, double jitter01) noexcept;

}  // namespace ringpipe::exporters
