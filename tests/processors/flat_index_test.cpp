// FlatIndex keeps only the low 32 bits of each hash: hashes that share them
// must still resolve by the caller's full-key check, through growth and
// backward-shift deletion.

#include <gtest/gtest.h>

#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "flat_index.hpp"
#include "hash.hpp"

namespace ringpipe::processors::detail {
namespace {

// hash_mem reads a key's last bytes as overlapping words: every byte of every
// length up to 40 must still count, the length itself too (a key and the
// same key with a trailing zero byte differ), and equal keys hash equal.
TEST(HashMem, EveryByteOfEveryLengthAndTheLengthChangeTheHash) {
  std::set<std::uint64_t> seen;
  for (std::size_t n = 0; n <= 40; ++n) {
    std::string key(n, 'a');
    for (std::size_t i = 0; i < n; ++i) key[i] = static_cast<char>('a' + (i * 7) % 26);
    const std::uint64_t h = hash_mem(key.data(), key.size(), 5);
    EXPECT_EQ(h, hash_mem(std::string(key).data(), n, 5));
    EXPECT_NE(h, hash_mem(key.data(), n, 6)) << n;
    EXPECT_TRUE(seen.insert(h).second) << "length " << n;
    for (std::size_t i = 0; i < n; ++i) {
      std::string flipped = key;
      flipped[i] = static_cast<char>(flipped[i] ^ 0x01);
      EXPECT_NE(h, hash_mem(flipped.data(), n, 5)) << "length " << n << " byte " << i;
    }
    const std::string zero_tail = key + std::string(1, '\0');
    EXPECT_NE(h, hash_mem(zero_tail.data(), zero_tail.size(), 5)) << n;
  }
}

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
