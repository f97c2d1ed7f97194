#pragma once
// TargetedQuantiles: the targeted-quantile stream statsd_exporter's summaries
// use (client_golang's Summary over beorn7/perks/quantile, the CKMS algorithm
// of "Effective Computation of Biased Quantiles over Data Streams"), so a
// summary answers what statsd_exporter answers: until kBufferWidth
// observations have arrived the buffer is sorted and read exactly (nearest
// rank, ceil(n * q)); after that the compressed list keeps each objective's
// quantile within its absolute rank error (quantile ± error). Observations
// carry a width (1, or 1/rate for weighted sample rates). Not thread-safe:
// one owner (a shard).

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <span>
#include <vector>

namespace ringpipe::processors::detail {

struct QuantileTarget {
  double quantile;
  double error;  // absolute rank error, as statsd_exporter's `error`
};

class TargetedQuantiles {
 public:
  // perks' Stream buffers this many samples before its first compression.
  static constexpr double kBufferWidth = 500;

  void insert(double value, double width, std::span<const QuantileTarget> targets) {
    if (!(width > 0)) return;
    buffer_.push_back(Sample{value, width, 0});
    buffer_width_ += width;
    sorted_ = false;
    if (buffer_width_ >= kBufferWidth) flush(targets);
  }

  void reset() noexcept {
    list_.clear();  // keeps capacity: a window stream reuses its memory
    buffer_.clear();
    n_ = 0;
    buffer_width_ = 0;
    sorted_ = true;
  }

  [[nodiscard]] bool empty() const noexcept { return buffer_.empty() && list_.empty(); }

  // The q-quantile; NaN when empty (client_golang reports NaN for an empty stream).
  [[nodiscard]] double query(double q, std::span<const QuantileTarget> targets) {
    if (empty()) return std::numeric_limits<double>::quiet_NaN();
    if (list_.empty()) {
      // Exact on the sorted buffer: the first sample whose cumulative width
      // reaches ceil(total * q) (perks' index ceil(n * q) - 1 when every width is 1).
      sort_buffer();
      const double target = std::ceil(buffer_width_ * q);
      double cum = 0;
      for (const Sample& s : buffer_) {
        cum += s.width;
        if (cum >= target) return s.value;
      }
      return buffer_.back().value;
    }
    flush(targets);
    double t = std::ceil(q * n_);
    t += std::ceil(invariant(t, targets) / 2);
    const Sample* p = list_.data();
    double r = 0;
    for (std::size_t i = 1; i < list_.size(); ++i) {
      const Sample& c = list_[i];
      r += p->width;
      if (r + c.width + c.delta > t) return p->value;
      p = &c;
    }
    return p->value;
  }

  [[nodiscard]] std::size_t memory_bytes() const noexcept {
    return (list_.capacity() + buffer_.capacity()) * sizeof(Sample);
  }

 private:
  struct Sample {
    double value;
    double width;
    double delta;
  };

  // The allowed rank error at rank r: the smallest over the targets.
  [[nodiscard]] double invariant(double r, std::span<const QuantileTarget> targets) const noexcept {
    double m = std::numeric_limits<double>::max();
    for (const QuantileTarget& t : targets) {
      const double f =
          t.quantile * n_ <= r ? (2 * t.error * r) / t.quantile : (2 * t.error * (n_ - r)) / (1 - t.quantile);
      if (f < m) m = f;
    }
    return m;
  }

  void sort_buffer() {
    if (sorted_) return;
    std::sort(buffer_.begin(), buffer_.end(), [](const Sample& a, const Sample& b) { return a.value < b.value; });
    sorted_ = true;
  }

  void flush(std::span<const QuantileTarget> targets) {
    if (buffer_.empty()) return;
    sort_buffer();
    merge(targets);
    buffer_.clear();
    buffer_width_ = 0;
  }

  void merge(std::span<const QuantileTarget> targets) {
    double r = 0;
    std::size_t i = 0;
    for (const Sample& s : buffer_) {
      bool inserted = false;
      for (; i < list_.size(); ++i) {
        if (list_[i].value > s.value) {
          const double delta = std::max(s.delta, std::floor(invariant(r, targets)) - 1);
          list_.insert(list_.begin() + static_cast<std::ptrdiff_t>(i), Sample{s.value, s.width, delta});
          ++i;
          inserted = true;
          break;
        }
        r += list_[i].width;
      }
      if (!inserted) {
        list_.push_back(Sample{s.value, s.width, 0});
        ++i;
      }
      n_ += s.width;
      r += s.width;
    }
    compress(targets);
  }

  void compress(std::span<const QuantileTarget> targets) {
    if (list_.size() < 2) return;
    std::size_t xi = list_.size() - 1;
    Sample x = list_[xi];
    double r = n_ - 1 - x.width;
    for (std::size_t i = list_.size() - 1; i-- > 0;) {
      const Sample c = list_[i];
      if (c.width + x.width + x.delta <= invariant(r, targets)) {
        x.width += c.width;
        list_[xi] = x;
        list_.erase(list_.begin() + static_cast<std::ptrdiff_t>(i));
        --xi;
      } else {
        x = c;
        xi = i;
      }
      r -= c.width;
    }
  }

  std::vector<Sample> list_;    // compressed, sorted by value
  std::vector<Sample> buffer_;  // not yet merged
  double n_ = 0;                // total width merged into list_
  double buffer_width_ = 0;
  bool sorted_ = true;
};

}  // namespace ringpipe::processors::detail
