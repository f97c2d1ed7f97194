// FlatIndex keeps only the low 32 bits of each hash: hashes that share them
// must still resolve by the caller's full-key check, through growth and
// backward-shift deletion.

#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

#include "flat_index.hpp"

namespace ringpipe::processors::detail {
namespace {

TEST(FlatIndex, ResolvesHashesThatShareTheirLow32BitsByTheFullKeyThroughGrowthAndErase) {
  FlatIndex index;
  std::vector<std::uint64_t> keys;  // value v has full hash keys[v]
  // Groups of 4 hashes with equal low 32 bits (and so the same home slot),
  // interleaved with unrelated ones, enough to grow the table several times.
  for (std::uint64_t g = 0; g < 500; ++g) {
    for (std::uint64_t hi = 1; hi <= 4; ++hi) keys.push_back((hi << 32) | (g * 2654435761U & 0xffffffffU));
    keys.push_back(g * 0x9e3779b97f4a7c15ULL);
  }
  auto find = [&](std::uint64_t h) { return index.find(h, [&](std::uint32_t v) { return keys[v] == h; }); };
  for (std::uint32_t v = 0; v < keys.size(); ++v) {
    ASSERT_EQ(find(keys[v]), FlatIndex::kNone);
    index.insert(keys[v], v);
  }
  EXPECT_EQ(index.size(), keys.size());
  for (std::uint32_t v = 0; v < keys.size(); ++v) ASSERT_EQ(find(keys[v]), v);
  EXPECT_EQ(find((std::uint64_t{9} << 32) | (7 * 2654435761U & 0xffffffffU)), FlatIndex::kNone);
  // Erase every other member of each collision group; the rest stay findable.
  for (std::uint32_t v = 0; v < keys.size(); v += 2) ASSERT_TRUE(index.erase(keys[v], v));
  EXPECT_FALSE(index.erase(keys[0], 0));
  for (std::uint32_t v = 0; v < keys.size(); ++v) {
    ASSERT_EQ(find(keys[v]), v % 2 == 0 ? FlatIndex::kNone : v) << v;
  }
}

}  // namespace
}  // namespace ringpipe::processors::detail
