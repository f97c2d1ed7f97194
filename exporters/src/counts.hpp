#pragma once
// A count (a histogram's or summary's, a native bucket's) where a format
// holds counts as uint64: rounded, NaN and negatives as 0, and counts of
// 2^64 or more (+Inf too) as UINT64_MAX. std::llround is undefined past
// 2^63, where a count that large would come out as 2^63 or worse.

#include <cmath>
#include <cstdint>

namespace ringpipe::exporters {

inline std::uint64_t to_count(double v) noexcept {
  if (!(v > 0)) return 0;  // also NaN
  if (v >= 0x1p64) return UINT64_MAX;
  return static_cast<std::uint64_t>(std::round(v));  // below 2^64, exact from 2^53 on
}

}  // namespace ringpipe::exporters
