#include "ringpipe/common/chunked_vector.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <memory>
#include <string>

namespace ringpipe::common {
namespace {

TEST(ChunkedVector, ElementsStayPutAcrossGrowthAndKeepTheirValues) {
  ChunkedVector<std::uint64_t, 8> v;
  EXPECT_TRUE(v.empty());
  std::uint64_t& first = v.emplace_back(7);
  const std::uint64_t* at = &first;
  EXPECT_EQ(v[0], 7u);
  for (std::uint64_t i = 1; i < 1000; ++i) v.push_back(i * 3);
  EXPECT_EQ(v.size(), 1000u);
  EXPECT_EQ(v.capacity(), 1000u);  // 125 chunks of 8
  EXPECT_EQ(&v[0], at);            // growing moved nothing
  EXPECT_EQ(v[0], 7u);
  for (std::uint64_t i = 1; i < 1000; ++i) ASSERT_EQ(v[i], i * 3) << i;
  v.resize(1003);
  EXPECT_EQ(v[1002], 0u);  // value-initialised
}

TEST(ChunkedVector, ResizeDestroysWhatItRemovesAndFreesEmptyChunks) {
  auto alive = std::make_shared<int>(0);
  {
    ChunkedVector<std::shared_ptr<int>, 4> v;
    for (int i = 0; i < 10; ++i) v.push_back(alive);
    EXPECT_EQ(alive.use_count(), 11);
    v.resize(5);
    EXPECT_EQ(alive.use_count(), 6);
    EXPECT_EQ(v.capacity(), 8u);  // the third chunk went
    v.emplace_back(std::make_shared<int>(42));
    EXPECT_EQ(*v[5], 42);
    ChunkedVector<std::shared_ptr<int>, 4> moved(std::move(v));
    EXPECT_EQ(moved.size(), 6u);
    EXPECT_EQ(alive.use_count(), 6);
    EXPECT_TRUE(v.empty());  // NOLINT(bugprone-use-after-move): moved from, left empty
  }
  EXPECT_EQ(alive.use_count(), 1);  // the destructor destroyed every element
}

}  // namespace
}  // namespace ringpipe::common
