#include "ringpipe/common/log.hpp"

#include <atomic>
#include <chrono>
#include <cstdint>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace ringpipe {
namespace {

using namespace std::chrono_literals;

TEST(RateLimiter, AllowsTheFirstCallAndCountsEveryRefusalUntilTaken) {
  RateLimiter limiter(1h);
  EXPECT_TRUE(limiter.allow());
  for (int i = 0; i < 1000; ++i) EXPECT_FALSE(limiter.allow());
  EXPECT_EQ(limiter.take_suppressed(), 1000u);
  EXPECT_EQ(limiter.take_suppressed(), 0u);  // taking resets the count
  EXPECT_FALSE(limiter.allow());
  EXPECT_EQ(limiter.take_suppressed(), 1u);
}

TEST(RateLimiter, AllowsAtMostOncePerIntervalAndAgainOnceItPasses) {
  constexpr auto kInterval = 50ms;
  RateLimiter limiter(kInterval);
  const auto start = std::chrono::steady_clock::now();
  std::uint64_t allowed = 0;
  std::uint64_t calls = 0;
  while (std::chrono::steady_clock::now() - start < 5 * kInterval + 10ms) {
    allowed += limiter.allow();
    ++calls;
    std::this_thread::sleep_for(100us);
  }
  const auto elapsed = std::chrono::steady_clock::now() - start;
  // One at the start, then one per whole interval at most.
  EXPECT_LE(allowed, static_cast<std::uint64_t>(elapsed / kInterval) + 1);
  EXPECT_GE(allowed, 2u);  // an interval passed, so it allowed again
  EXPECT_EQ(limiter.take_suppressed(), calls - allowed);
}

TEST(RateLimiter, AllowsExactlyOneCallAcrossRacingThreads) {
  RateLimiter limiter(1h);
  constexpr int kThreads = 4;
  constexpr int kCalls = 20000;
  std::atomic<std::uint64_t> allowed{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < kCalls; ++i) allowed.fetch_add(limiter.allow() ? 1 : 0, std::memory_order_relaxed);
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(allowed.load(), 1u);
  EXPECT_EQ(limiter.take_suppressed(), static_cast<std::uint64_t>(kThreads) * kCalls - 1);
}

}  // namespace
}  // namespace ringpipe
