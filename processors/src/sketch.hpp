#pragma once
// Sketch: a weighted, mergeable quantile sketch with relative value error
// (DDSketch's logarithmic mapping with a dense, collapsing store). An
// observation costs O(1) whatever its weight, so a sample rate of 0.01 is
// one add of weight 100, not 100 adds. Not thread-safe: one owner.

#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

namespace ringpipe::processors::detail {

class Sketch {
 public:
  static constexpr double kRelativeAccuracy = 0.01;  // |estimate - exact| <= 1% of |exact|
  static constexpr double kMinIndexable = 1e-9;      // smaller magnitudes count as 0
  static constexpr std::int32_t kMaxBins = 2048;     // per sign; beyond, the smallest magnitudes merge

  void add(double x, double weight) noexcept {
    if (!(weight > 0)) return;
    total_ += weight;
    if (x > kMinIndexable) {
      pos_.add(index_of(x), weight);
    } else if (x < -kMinIndexable) {
      neg_.add(index_of(-x), weight);
    } else {
      zero_ += weight;
    }
  }
  void clear() noexcept {
    pos_.clear();
    neg_.clear();
    zero_ = 0;
    total_ = 0;
  }
  [[nodiscard]] bool empty() const noexcept { return total_ <= 0; }
  [[nodiscard]] double total() const noexcept { return total_; }

  void merge_into(Sketch& dst) const noexcept {
    pos_.merge_into(dst.pos_);
    neg_.merge_into(dst.neg_);
    dst.zero_ += zero_;
    dst.total_ += total_;
  }

  // The value at rank q * (total - 1), within kRelativeAccuracy; NaN when empty.
  [[nodiscard]] double quantile(double q) const noexcept {
    if (empty()) return std::numeric_limits<double>::quiet_NaN();
    const double rank = q * (total_ - 1);
    double cum = 0;
    for (std::size_t i = neg_.bins.size(); i-- > 0;) {
      cum += neg_.bins[i];
      if (cum > rank) return -value_of(neg_.offset + static_cast<std::int32_t>(i));
    }
    cum += zero_;
    if (cum > rank) return 0.0;
    for (std::size_t i = 0; i < pos_.bins.size(); ++i) {
      cum += pos_.bins[i];
      if (cum > rank) return value_of(pos_.offset + static_cast<std::int32_t>(i));
    }
    if (!pos_.bins.empty()) return value_of(pos_.offset + static_cast<std::int32_t>(pos_.bins.size()) - 1);
    return 0.0;
  }

  [[nodiscard]] std::size_t memory_bytes() const noexcept {
    return sizeof(*this) + (pos_.bins.capacity() + neg_.bins.capacity()) * sizeof(double);
  }

 private:
  static constexpr double kGamma = (1 + kRelativeAccuracy) / (1 - kRelativeAccuracy);
  static inline const double kInvLogGamma = 1.0 / std::log(kGamma);

  static std::int32_t index_of(double x) noexcept {
    return static_cast<std::int32_t>(std::ceil(std::log(x) * kInvLogGamma));
  }
  static double value_of(std::int32_t i) noexcept { return 2.0 * std::pow(kGamma, i) / (kGamma + 1); }

  struct Store {
    std::vector<double> bins;
    std::int32_t offset = 0;

    void clear() noexcept {
      bins.clear();  // keeps capacity: a window bucket reuses its memory
      offset = 0;
    }
    void add(std::int32_t idx, double w) {
      if (bins.empty()) {
        bins.assign(1, 0.0);
        offset = idx;
      }
      const std::int32_t size = static_cast<std::int32_t>(bins.size());
      if (idx < offset) {
        const std::int32_t hi = offset + size - 1;
        std::int32_t lo = idx;
        if (hi - lo + 1 > kMaxBins) lo = hi - kMaxBins + 1;
        if (lo < offset) {
          bins.insert(bins.begin(), static_cast<std::size_t>(offset - lo), 0.0);
          offset = lo;
        }
        if (idx < offset) idx = offset;  // collapsed into the smallest bin
      } else if (idx >= offset + size) {
        if (idx - offset + 1 > kMaxBins) {
          const std::int32_t lo = idx - kMaxBins + 1;
          const std::size_t drop = std::min(static_cast<std::size_t>(lo - offset), bins.size());
          double folded = 0;
          for (std::size_t k = 0; k < drop; ++k) folded += bins[k];
          bins.erase(bins.begin(), bins.begin() + static_cast<std::ptrdiff_t>(drop));
          offset = lo;
          if (bins.empty()) bins.assign(1, 0.0);
          bins[0] += folded;
        }
        bins.resize(static_cast<std::size_t>(idx - offset + 1), 0.0);
      }
      bins[static_cast<std::size_t>(idx - offset)] += w;
    }
    void merge_into(Store& dst) const {
      for (std::size_t i = 0; i < bins.size(); ++i) {
        if (bins[i] > 0) dst.add(offset + static_cast<std::int32_t>(i), bins[i]);
      }
    }
  };

  Store pos_;
  Store neg_;
  double zero_ = 0;
  double total_ = 0;
};

}  // namespace ringpipe::processors::detail
