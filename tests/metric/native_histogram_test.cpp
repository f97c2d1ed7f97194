#include "ringpipe/metric/native_histogram.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

namespace ringpipe::metric {
namespace {

using Buckets = std::vector<NativeHistogram::Bucket>;

Buckets of(std::span<const NativeHistogram::Bucket> b) { return Buckets(b.begin(), b.end()); }

TEST(NativeHistogram, PicksTheLargestSchemaWhoseFactorFitsAsClientGolang) {
  // 2^(2^-s) <= factor: 1.1 -> 2^(1/8) = 1.0905 (schema 3); 2 -> 0; 4 -> -1.
  EXPECT_EQ(native_schema_for_factor(1.1), 3);
  EXPECT_EQ(native_schema_for_factor(1.09), 4);  // 2^(1/8) > 1.09 >= 2^(1/16)
  EXPECT_EQ(native_schema_for_factor(2), 0);
  EXPECT_EQ(native_schema_for_factor(4), -1);
  EXPECT_EQ(native_schema_for_factor(1.0001), 8);  // finer than schema 8 asks for: 8
  EXPECT_EQ(native_schema_for_factor(1e9), -4);
}

TEST(NativeHistogram, BucketKeysHoldTheUpperBoundInclusive) {
  // Schema 0: bucket i is (2^(i-1), 2^i].
  EXPECT_EQ(native_bucket_key(1, 0), 0);
  EXPECT_EQ(native_bucket_key(1.5, 0), 1);
  EXPECT_EQ(native_bucket_key(2, 0), 1);
  EXPECT_EQ(native_bucket_key(2.0001, 0), 2);
  EXPECT_EQ(native_bucket_key(0.3, 0), -1);  // (0.25, 0.5]
  // Schema 3: base 2^(1/8) = 1.0905...; 3 = 2^1.585 -> ceil(12.68) = 13.
  EXPECT_EQ(native_bucket_key(1, 3), 0);
  EXPECT_EQ(native_bucket_key(1.09, 3), 1);
  EXPECT_EQ(native_bucket_key(1.1, 3), 2);
  EXPECT_EQ(native_bucket_key(3, 3), 13);
  EXPECT_EQ(native_bucket_key(0.5, 3), -8);
  // Schema -1: base 4, bucket i is (4^(i-1), 4^i].
  EXPECT_EQ(native_bucket_key(1, -1), 0);
  EXPECT_EQ(native_bucket_key(0.3, -1), 0);
  EXPECT_EQ(native_bucket_key(0.25, -1), -1);
  EXPECT_EQ(native_bucket_key(3, -1), 1);
  EXPECT_EQ(native_bucket_key(4, -1), 1);
  EXPECT_EQ(native_bucket_key(5, -1), 2);
}

TEST(NativeHistogram, EveryBoundaryIsBaseToTheKeyAndFallsInItsOwnBucket) {
  for (std::int32_t schema = -4; schema <= 8; ++schema) {
    const double base = std::exp2(std::exp2(-schema));
    for (std::int32_t key = -40; key <= 40; ++key) {
      const double upper = native_bucket_upper(key, schema);
      EXPECT_NEAR(upper / std::pow(base, key), 1.0, 1e-12) << schema << " " << key;
      EXPECT_EQ(native_bucket_key(upper, schema), key) << schema << " " << key;
      EXPECT_EQ(native_bucket_key(std::nextafter(upper, INFINITY), schema), key + 1) << schema << " " << key;
    }
  }
}

TEST(NativeHistogram, CountsPositiveNegativeAndZeroObservations) {
  NativeHistogram h(0, 0);
  h.observe(1.5, 1);
  h.observe(2, 2);
  h.observe(0.3, 1);
  h.observe(-3, 1);
  h.observe(0, 4);
  EXPECT_EQ(h.schema(), 0);
  EXPECT_EQ(h.zero_count(), 4);
  EXPECT_EQ(of(h.positive()), (Buckets{{-1, 1}, {1, 3}}));
  EXPECT_EQ(of(h.negative()), (Buckets{{2, 1}}));
}

TEST(NativeHistogram, LowersTheSchemaUntilTheBucketsFitMaxBuckets) {
  // Schema 1 (base sqrt 2): 1 -> key 0, 1.5 -> 2 (1.41, 2], 3 -> 4 (2.83, 4].
  NativeHistogram h(1, 2);
  h.observe(1, 1);
  h.observe(1.5, 1);
  EXPECT_EQ(h.schema(), 1);
  h.observe(3, 1);
  // Three buckets: schema 0 gives keys 0, 1, 2 (still three), schema -1
  // (base 4) gives (0.25, 1] and (1, 4].
  EXPECT_EQ(h.schema(), -1);
  EXPECT_EQ(of(h.positive()), (Buckets{{0, 1}, {1, 2}}));
  // 1 is a boundary in every schema: -0.75 and -1.5 never share a bucket, so
  // the schema stops at -4 with two buckets (client_golang does the same).
  NativeHistogram neg(0, 1);
  neg.observe(-0.75, 1);
  neg.observe(-1.5, 1);
  EXPECT_EQ(neg.schema(), -4);
  EXPECT_EQ(of(neg.negative()), (Buckets{{0, 1}, {1, 1}}));
}

TEST(NativeHistogram, SpansKeepGapsOfUpToTwoBucketsAsZeroDeltas) {
  const Buckets b{{-2, 1}, {-1, 2}, {1, 3}, {5, 1}};
  std::vector<NativeSpan> spans;
  std::vector<std::int64_t> deltas;
  native_spans(b, spans, deltas);
  ASSERT_EQ(spans.size(), 2u);
  EXPECT_EQ(spans[0].offset, -2);
  EXPECT_EQ(spans[0].length, 4u);  // -2, -1, 0 (empty), 1
  EXPECT_EQ(spans[1].offset, 3);   // 2, 3, 4 skipped
  EXPECT_EQ(spans[1].length, 1u);
  EXPECT_EQ(deltas, (std::vector<std::int64_t>{1, 1, -2, 3, -2}));
  native_spans({}, spans, deltas);
  EXPECT_TRUE(spans.empty());
  EXPECT_TRUE(deltas.empty());
}

TEST(NativeHistogram, FloatSpansCarryEveryCountExactlyAndOnlyWholeCountsAreIntegers) {
  // Counts weighted by a sample rate of 0.3, and one past 2^53: a float
  // histogram's absolute counts, the gap inside a span as 0.
  const Buckets b{{-2, 10.0 / 3}, {1, 0x1p53 + 2}, {5, 0.5}};
  std::vector<NativeSpan> spans;
  std::vector<double> counts;
  native_spans(b, spans, counts);
  ASSERT_EQ(spans.size(), 2u);
  EXPECT_EQ(spans[0].offset, -2);
  EXPECT_EQ(spans[0].length, 4u);
  EXPECT_EQ(spans[1].offset, 3);
  EXPECT_EQ(counts, (std::vector<double>{10.0 / 3, 0, 0, 0x1p53 + 2, 0.5}));
  EXPECT_TRUE(native_whole_count(0));
  EXPECT_TRUE(native_whole_count(0x1p53));
  EXPECT_FALSE(native_whole_count(0x1p53 + 2));
  EXPECT_FALSE(native_whole_count(0.5));
  EXPECT_FALSE(native_whole_count(-1));
  EXPECT_FALSE(native_whole_count(NAN));
  EXPECT_FALSE(native_whole_counts(b));
  EXPECT_TRUE(native_whole_counts(Buckets{{0, 3}, {1, 0x1p53}}));
  // A float count below what its buckets add up to by rounding alone goes up
  // to their sum (Prometheus refuses the histogram otherwise); a larger one stays.
  const Buckets tenths{{0, 0.1}, {1, 0.2}, {2, 0.3}};
  ASSERT_GT(0.1 + 0.2 + 0.3, 0.6);
  EXPECT_EQ(native_float_count(0.6, 0, tenths, {}), 0.1 + 0.2 + 0.3);
  EXPECT_EQ(native_float_count(0.6, 0.25, tenths, Buckets{{0, 0.5}}), 0.5 + (0.1 + 0.2 + 0.3) + 0.25);
  EXPECT_EQ(native_float_count(2.5, 0.25, tenths, {}), 2.5);
  // The keys furthest apart a reader lets through (schema 8) stay exact.
  const std::int32_t lim = native_key_limit(8);
  EXPECT_EQ(lim, 1075 * 256);
  native_spans(Buckets{{-lim, 1}, {lim, 2}}, spans, counts);
  ASSERT_EQ(spans.size(), 2u);
  EXPECT_EQ(spans[0].offset, -lim);
  EXPECT_EQ(spans[1].offset, 2 * lim - 1);
}

TEST(NativeHistogram, MergeKeepsTheLowerSchemaAndReindexesTheFinerBuckets) {
  // Schema 0: 1 -> 0, 3 -> 2, -3 -> negative 2; schema 2: 1 -> 0, 1.5 -> 3
  // (which is (2^(2/4), 2^(3/4)], inside schema 0's (1, 2]: key 1), 3 -> 7
  // (schema 0: (2, 4], key 2), -0.5 -> negative -4 (schema 0: key -1).
  NativeHistogram a(0, 0);
  for (const double v : {1.0, 3.0, -3.0}) a.observe(v, 1);
  NativeHistogram b(2, 0);
  for (const double v : {1.0, 1.5, 3.0, -0.5}) b.observe(v, 1);
  b.observe(0, 2);
  ASSERT_EQ(of(b.positive()), (Buckets{{0, 1}, {3, 1}, {7, 1}}));
  NativeHistogram m = a;
  m.merge(b);
  EXPECT_EQ(m.schema(), 0);
  EXPECT_EQ(of(m.positive()), (Buckets{{0, 2}, {1, 1}, {2, 2}}));
  EXPECT_EQ(of(m.negative()), (Buckets{{-1, 1}, {2, 1}}));
  EXPECT_EQ(m.zero_count(), 2);
  // The other way round: the finer one is lowered to the coarser schema first.
  NativeHistogram n = b;
  n.merge(a);
  EXPECT_EQ(n.schema(), 0);
  EXPECT_EQ(of(n.positive()), of(m.positive()));
  EXPECT_EQ(of(n.negative()), of(m.negative()));
  EXPECT_EQ(n.zero_count(), 2);
}

TEST(NativeHistogram, MergeTakesTheWiderZeroBucketAndTheMaxBucketsLimit) {
  NativeHistogram a(0, 2);
  for (const double v : {0.25, 1.0}) a.observe(v, 1);  // keys -2, 0
  NativeHistogram b(0, 0, 0.5);                        // zero bucket [-0.5, 0.5]
  b.observe(0.3, 1);                                   // zero bucket
  b.observe(8, 1);                                     // key 3
  a.merge(b);
  EXPECT_EQ(a.zero_threshold(), 0.5);
  EXPECT_EQ(a.zero_count(), 2);  // 0.3, and 0.25's bucket (0.125, 0.25]
  // Buckets 0 and 3 fit max_buckets 2: schema 0 stays.
  EXPECT_EQ(a.schema(), 0);
  EXPECT_EQ(of(a.positive()), (Buckets{{0, 1}, {3, 1}}));
  NativeHistogram c(0, 0);
  c.observe(2, 1);  // key 1: three buckets, over 2: halved to schema -1 (0 -> 0, 1 -> 1, 3 -> 2), then -2
  a.merge(c);
  EXPECT_LE(a.positive().size(), 2u);
  EXPECT_EQ(a.schema(), -2);
  double total = a.zero_count();
  for (const auto& [k, n] : a.positive()) total += n;
  EXPECT_EQ(total, 5);
}

}  // namespace
}  // namespace ringpipe::metric
