#include "ringpipe/metric/native_histogram.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <utility>

namespace ringpipe::metric {
namespace {

// Per schema s > 0: the 2^s fractions 2^(i/2^s) / 2 in [0.5, 1), the
// mantissas (as frexp returns them) of the boundaries within one power of two.
struct BoundTables {
  std::array<std::vector<double>, kNativeSchemaMax + 1> by_schema;
  BoundTables() {
    for (std::int32_t s = 1; s <= kNativeSchemaMax; ++s) {
      const std::size_t n = std::size_t{1} << s;
      auto& b = by_schema[static_cast<std::size_t>(s)];
      b.resize(n);
      b[0] = 0.5;
      for (std::size_t i = 1; i < n; ++i) b[i] = std::exp2(static_cast<double>(i) / static_cast<double>(n)) / 2;
    }
  }
};

const std::vector<double>& bounds(std::int32_t schema) {
  static const BoundTables tables;
  return tables.by_schema[static_cast<std::size_t>(schema)];
}

// ceil(k / 2): the key a bucket of one schema has one schema lower.
std::int32_t halve_key(std::int32_t k) noexcept { return k > 0 ? (k + 1) / 2 : k / 2; }

}  // namespace

std::int32_t native_schema_for_factor(double bucket_factor) noexcept {
  const double floor = std::floor(std::log2(std::log2(bucket_factor)));
  if (!(floor > -8)) return kNativeSchemaMax;
  if (floor >= 4) return kNativeSchemaMin;
  return -static_cast<std::int32_t>(floor);
}

std::int32_t native_bucket_key(double abs_v, std::int32_t schema) noexcept {
  int exp = 0;
  const double frac = std::frexp(abs_v, &exp);
  if (schema > 0) {
    const std::vector<double>& b = bounds(schema);
    const auto idx = std::lower_bound(b.begin(), b.end(), frac) - b.begin();
    return static_cast<std::int32_t>(idx) + (exp - 1) * static_cast<std::int32_t>(b.size());
  }
  std::int32_t key = exp;
  if (frac == 0.5) --key;
  const std::int32_t offset = (1 << -schema) - 1;
  return (key + offset) >> -schema;  // arithmetic shift: floor division, so ceil((key)/2^-s)
}

double native_bucket_upper(std::int32_t key, std::int32_t schema) noexcept {
  if (schema <= 0) return std::ldexp(1.0, key * (1 << -schema));
  const std::vector<double>& b = bounds(schema);
  const std::int32_t n = static_cast<std::int32_t>(b.size());
  const std::int32_t frac_idx = key & (n - 1);
  const std::int32_t exp = (key >> schema) + 1;
  return std::ldexp(b[static_cast<std::size_t>(frac_idx)], exp);
}

namespace {

// Spans, and per bucket (empty ones inside a span as 0) what `put` makes of
// its count.
template <typename Put>
void spans_of(std::span<const std::pair<std::int32_t, double>> buckets, std::vector<NativeSpan>& spans, Put put) {
  spans.clear();
  std::int64_t next = 0;  // 64 bits: key + 1 and the gap stay exact for any int32 keys
  for (std::size_t n = 0; n < buckets.size(); ++n) {
    const auto [key, count] = buckets[n];
    const std::int64_t gap = key - next;
    if (n == 0 || gap > 2) {
      spans.push_back(NativeSpan{static_cast<std::int32_t>(gap), 0});
    } else {
      for (std::int64_t j = 0; j < gap; ++j) {
        ++spans.back().length;
        put(0.0);
      }
    }
    ++spans.back().length;
    put(count);
    next = std::int64_t{key} + 1;
  }
}

}  // namespace

bool native_whole_count(double count) noexcept { return count >= 0 && count <= 0x1p53 && count == std::trunc(count); }

bool native_whole_counts(std::span<const std::pair<std::int32_t, double>> buckets) noexcept {
  return std::all_of(buckets.begin(), buckets.end(), [](const auto& b) { return native_whole_count(b.second); });
}

double native_float_count(double count, double zero_count, std::span<const std::pair<std::int32_t, double>> positive,
                          std::span<const std::pair<std::int32_t, double>> negative) noexcept {
  // Each side in key order, as ValidateFloatHistogram adds them; with and
  // without the zero bucket (Prometheus releases differ).
  double p = 0;
  for (const auto& b : positive) p += b.second;
  double n = 0;
  for (const auto& b : negative) n += b.second;
  const double buckets = n + p;
  return std::max({count, buckets, buckets + zero_count});
}

void native_spans(std::span<const std::pair<std::int32_t, double>> buckets, std::vector<NativeSpan>& spans,
                  std::vector<std::int64_t>& deltas) {
  deltas.clear();
  std::int64_t prev = 0;
  spans_of(buckets, spans, [&](double count) {
    const auto c = static_cast<std::int64_t>(count);  // whole and <= 2^53: exact
    deltas.push_back(c - prev);
    prev = c;
  });
}

void native_spans(std::span<const std::pair<std::int32_t, double>> buckets, std::vector<NativeSpan>& spans,
                  std::vector<double>& counts) {
  counts.clear();
  spans_of(buckets, spans, [&](double count) { counts.push_back(count); });
}

void NativeHistogram::add(std::vector<Bucket>& b, std::int32_t key, double weight) {
  const auto it =
      std::lower_bound(b.begin(), b.end(), key, [](const Bucket& x, std::int32_t k) { return x.first < k; });
  if (it != b.end() && it->first == key) {
    it->second += weight;
  } else {
    b.insert(it, Bucket{key, weight});
  }
}

void NativeHistogram::observe(double v, double weight) {
  if (v > zero_threshold_) {
    add(positive_, native_bucket_key(v, schema_), weight);
  } else if (v < -zero_threshold_) {
    add(negative_, native_bucket_key(-v, schema_), weight);
  } else {
    zero_count_ += weight;
  }
  while (max_buckets_ != 0 && positive_.size() + negative_.size() > max_buckets_ && schema_ > kNativeSchemaMin) {
    halve_resolution();
  }
}

void NativeHistogram::halve_resolution() {
  --schema_;
  for (std::vector<Bucket>* side : {&positive_, &negative_}) {
    std::vector<Bucket>& b = *side;
    std::size_t out = 0;
    for (std::size_t i = 0; i < b.size(); ++i) {
      const std::int32_t k = halve_key(b[i].first);
      if (out > 0 && b[out - 1].first == k) {
        b[out - 1].second += b[i].second;
      } else {
        b[out++] = Bucket{k, b[i].second};
      }
    }
    b.resize(out);
  }
}

void NativeHistogram::assign(std::int32_t schema, double zero_threshold, double zero_count,
                             std::vector<Bucket> positive, std::vector<Bucket> negative) {
  schema_ = schema;
  zero_threshold_ = zero_threshold;
  zero_count_ = zero_count;
  positive_ = std::move(positive);
  negative_ = std::move(negative);
  while (max_buckets_ != 0 && positive_.size() + negative_.size() > max_buckets_ && schema_ > kNativeSchemaMin) {
    halve_resolution();
  }
}

void NativeHistogram::merge(const NativeHistogram& o) {
  while (schema_ > o.schema_) halve_resolution();
  const std::int32_t steps = o.schema_ - schema_;  // >= 0: o is re-indexed into our schema
  if (o.zero_threshold_ > zero_threshold_) {
    zero_threshold_ = o.zero_threshold_;
    for (std::vector<Bucket>* side : {&positive_, &negative_}) {
      std::vector<Bucket>& b = *side;
      std::size_t folded = 0;  // keys increase: the folded buckets are a prefix
      while (folded < b.size() && native_bucket_upper(b[folded].first, schema_) <= zero_threshold_) {
        zero_count_ += b[folded].second;
        ++folded;
      }
      b.erase(b.begin(), b.begin() + static_cast<std::ptrdiff_t>(folded));
    }
  }
  zero_count_ += o.zero_count_;
  const std::pair<const std::vector<Bucket>*, std::vector<Bucket>*> sides[] = {{&o.positive_, &positive_},
                                                                               {&o.negative_, &negative_}};
  for (const auto& [from, to] : sides) {
    for (const auto& [k, c] : *from) {
      std::int32_t key = k;
      for (std::int32_t i = 0; i < steps; ++i) key = halve_key(key);
      if (native_bucket_upper(key, schema_) <= zero_threshold_) {
        zero_count_ += c;
      } else {
        add(*to, key, c);
      }
    }
  }
  while (max_buckets_ != 0 && positive_.size() + negative_.size() > max_buckets_ && schema_ > kNativeSchemaMin) {
    halve_resolution();
  }
}

void NativeHistogram::clear() noexcept {
  zero_count_ = 0;
  positive_.clear();
  negative_.clear();
}

}  // namespace ringpipe::metric
