#include "ringpipe/exporters/remote_write.hpp"

#include <algorithm>

namespace ringpipe::exporters {

SendVerdict classify_http_status(int status) noexcept {
  if (status >= 200 && status < 300) return SendVerdict::kDone;
  if (status == 0 || status == 429 || status == 408 || (status >= 500 && status < 600)) return SendVerdict::kRetry;
  return SendVerdict::kDrop;
}

std::chrono::milliseconds retry_backoff(std::uint32_t attempt, std::chrono::milliseconds min_backoff,
                                        std::chrono::milliseconds max_backoff, double jitter01) noexcept {
  const std::int64_t lo = std::max<std::int64_t>(1, min_backoff.count());
  const std::int64_t hi = std::max<std::int64_t>(lo, max_backoff.count());
  std::int64_t d = lo;
  for (std::uint32_t i = 0; i < attempt && d < hi; ++i) d *= 2;
  d = std::min(d, hi);
  const double j = std::clamp(jitter01, 0.0, 1.0);
  return std::chrono::milliseconds(d / 2 + static_cast<std::int64_t>(j * static_cast<double>(d - d / 2)));
}

}  // namespace ringpipe::exporters
