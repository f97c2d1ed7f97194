#pragma once
// Prometheus native (sparse, exponential) histograms as client_golang keeps
// them: a schema s in -4..8 gives bucket boundaries base^i with base =
// 2^(2^-s); bucket i holds (base^(i-1), base^i]; |v| <= zero_threshold goes
// into the zero bucket; positive and negative values into their own sparse
// buckets. Beyond max_buckets populated buckets the schema is lowered (each
// step merges pairs of neighbours) as client_golang's doubleBucketWidth does.
// NativeHistogram is a plain value used by one thread; nothing here throws
// or allocates except the bucket vectors growing.

#include <cstdint>
#include <span>
#include <utility>
#include <vector>

#include "ringpipe/sample/native_schema.hpp"

namespace ringpipe::metric {

// The schemas and the key limit are the sample format's (one header for both readers).
using sample::kNativeSchemaMax;
using sample::kNativeSchemaMin;
using sample::native_key_limit;
// client_golang's DefNativeHistogramZeroThreshold: 2^-128.
inline constexpr double kNativeDefaultZeroThreshold = 2.938735877055719e-39;

// The largest schema in -4..8 whose growth factor 2^(2^-s) is at most
// bucket_factor (client_golang's pickSchema); bucket_factor must be > 1.
[[nodiscard]] std::int32_t native_schema_for_factor(double bucket_factor) noexcept;
// The key of the bucket holding |v| (> 0, finite) under `schema`.
[[nodiscard]] std::int32_t native_bucket_key(double abs_v, std::int32_t schema) noexcept;
// The upper bound base^key of bucket `key`.
[[nodiscard]] double native_bucket_upper(std::int32_t key, std::int32_t schema) noexcept;

// A run of consecutive buckets: `offset` from the end of the previous span
// (from key 0 for the first), `length` buckets.
struct NativeSpan {
  std::int32_t offset;
  std::uint32_t length;
};

// Whether a count is a whole number an integer histogram carries exactly
// (0 .. 2^53). A histogram whose counts are all whole goes out with integer
// counts as Prometheus' own do; one with any other count (a sample rate's
// weight, a count past 2^53) goes out as a float histogram instead of being
// rounded.
[[nodiscard]] bool native_whole_count(double count) noexcept;
[[nodiscard]] bool native_whole_counts(std::span<const std::pair<std::int32_t, double>> buckets) noexcept;

// The count a float histogram goes out with: `count`, or the buckets' sum
// as Prometheus adds them up when that is larger. Prometheus refuses a
// histogram whose buckets add up to more than its count ("observations found
// in buckets"), and the buckets' sum of weights can differ from the count's
// by the last bit: the difference is float rounding, never an observation.
[[nodiscard]] double native_float_count(double count, double zero_count,
                                        std::span<const std::pair<std::int32_t, double>> positive,
                                        std::span<const std::pair<std::int32_t, double>> negative) noexcept;

// Sparse buckets (key, count), keys strictly increasing and within
// native_key_limit, as Prometheus' spans and deltas: each count minus the
// previous one (the first minus 0). Gaps of one or two empty buckets stay
// inside a span (encoded as zeros), as client_golang does. For whole counts
// (native_whole_counts); the overload with doubles gives a float
// histogram's absolute counts, any count exact.
void native_spans(std::span<const std::pair<std::int32_t, double>> buckets, std::vector<NativeSpan>& spans,
                  std::vector<std::int64_t>& deltas);
void native_spans(std::span<const std::pair<std::int32_t, double>> buckets, std::vector<NativeSpan>& spans,
                  std::vector<double>& counts);

class NativeHistogram {
 public:
  using Bucket = std::pair<std::int32_t, double>;  // key, count

  NativeHistogram() = default;
  NativeHistogram(std::int32_t schema, std::uint32_t max_buckets,
                  double zero_threshold = kNativeDefaultZeroThreshold) noexcept
      : schema_(schema), max_buckets_(max_buckets), zero_threshold_(zero_threshold) {}

  // One observation of finite v, counted `weight` times.
  void observe(double v, double weight);

  [[nodiscard]] std::int32_t schema() const noexcept { return schema_; }
  [[nodiscard]] double zero_threshold() const noexcept { return zero_threshold_; }
  [[nodiscard]] double zero_count() const noexcept { return zero_count_; }
  [[nodiscard]] std::span<const Bucket> positive() const noexcept { return positive_; }
  [[nodiscard]] std::span<const Bucket> negative() const noexcept { return negative_; }
  [[nodiscard]] std::size_t memory_bytes() const noexcept {
    return (positive_.capacity() + negative_.capacity()) * sizeof(Bucket);
  }
  void clear() noexcept;
  // Adds o's observations, as Prometheus adds two native histograms: the
  // lower schema wins (the finer side's buckets re-indexed into it), the
  // larger zero threshold wins (a bucket whose upper bound is at or below it
  // joins the zero bucket), counts add; then the schema is lowered while the
  // buckets exceed max_buckets.
  void merge(const NativeHistogram& o);
  // Replaces the whole state, as a state file kept it: the caller has
  // checked the schema (-4..8), the keys (strictly increasing per side) and
  // the counts (finite, >= 0). The schema is then lowered while the buckets
  // exceed max_buckets, as observe() would have.
  void assign(std::int32_t schema, double zero_threshold, double zero_count, std::vector<Bucket> positive,
              std::vector<Bucket> negative);

 private:
  static void add(std::vector<Bucket>& b, std::int32_t key, double weight);
  void halve_resolution();

  std::int32_t schema_ = 0;
  std::uint32_t max_buckets_ = 0;  // 0: unlimited
  double zero_threshold_ = kNativeDefaultZeroThreshold;
  double zero_count_ = 0;
  std::vector<Bucket> positive_;
  std::vector<Bucket> negative_;
};

}  // namespace ringpipe::metric
