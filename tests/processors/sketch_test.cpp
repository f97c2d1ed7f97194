#include "sketch.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

namespace ringpipe::processors::detail {
namespace {

double exact(std::vector<double> v, double q) {
  std::sort(v.begin(), v.end());
  return v[static_cast<std::size_t>(std::floor(q * static_cast<double>(v.size() - 1)))];
}

void expect_within_relative_error(const Sketch& s, const std::vector<double>& data) {
  for (const double q : {0.0, 0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.999, 1.0}) {
    const double want = exact(data, q);
    const double got = s.quantile(q);
    EXPECT_LE(std::abs(got - want), Sketch::kRelativeAccuracy * std::abs(want) + 1e-9)
        << "q=" << q << " want=" << want << " got=" << got;
  }
}

TEST(Sketch, QuantilesStayWithinRelativeErrorOnRandomDistributions) {
  std::mt19937_64 rng(12345);
  for (int trial = 0; trial < 20; ++trial) {
    std::vector<double> data;
    Sketch s;
    const int n = 1000 + trial * 500;
    std::lognormal_distribution<double> lognormal(trial % 5 - 2.0, 1.5);
    std::uniform_real_distribution<double> uniform(-1000, 1000);
    std::exponential_distribution<double> expo(0.01);
    for (int i = 0; i < n; ++i) {
      double x;
      switch (trial % 3) {
        case 0:
          x = lognormal(rng);
          break;
        case 1:
          x = uniform(rng);
          break;
        default:
          x = expo(rng);
          break;
      }
      data.push_back(x);
      s.add(x, 1);
    }
    SCOPED_TRACE(trial);
    expect_within_relative_error(s, data);
  }
}

TEST(Sketch, AWeightedObservationEqualsRepeatedObservations) {
  Sketch weighted;
  Sketch repeated;
  std::mt19937_64 rng(7);
  std::uniform_real_distribution<double> u(0.001, 100);
  for (int i = 0; i < 500; ++i) {
    const double x = u(rng);
    weighted.add(x, 4);
    for (int k = 0; k < 4; ++k) repeated.add(x, 1);
  }
  for (const double q : {0.1, 0.5, 0.9, 0.99}) EXPECT_EQ(weighted.quantile(q), repeated.quantile(q));
  EXPECT_EQ(weighted.total(), 2000);
}

TEST(Sketch, MergedSketchesAnswerLikeOne) {
  Sketch a;
  Sketch b;
  Sketch all;
  std::vector<double> data;
  std::mt19937_64 rng(99);
  std::lognormal_distribution<double> d(0, 2);
  for (int i = 0; i < 4000; ++i) {
    const double x = d(rng);
    data.push_back(x);
    (i % 2 ? a : b).add(x, 1);
    all.add(x, 1);
  }
  Sketch merged;
  a.merge_into(merged);
  b.merge_into(merged);
  for (const double q : {0.05, 0.5, 0.95}) EXPECT_EQ(merged.quantile(q), all.quantile(q));
  expect_within_relative_error(merged, data);
}

TEST(Sketch, EmptyIsNaNAndZeroIsExact) {
  Sketch s;
  EXPECT_TRUE(std::isnan(s.quantile(0.5)));
  s.add(0, 1);
  EXPECT_EQ(s.quantile(0.5), 0);
}

TEST(Sketch, MemoryStaysBoundedOverAHugeRange) {
  Sketch s;
  for (int e = -300; e <= 300; ++e) s.add(std::pow(10.0, e / 1.0), 1);
  EXPECT_LE(s.memory_bytes(), sizeof(Sketch) + 2 * Sketch::kMaxBins * sizeof(double) * 2);
  EXPECT_NEAR(s.quantile(1.0), 1e300, 1e298);
}

}  // namespace
}  // namespace ringpipe::processors::detail
