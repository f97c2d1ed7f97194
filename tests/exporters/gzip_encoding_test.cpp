// gzip_compress: one member whatever the number of pieces and threads, which
// inflates (CRC and length checked) to the text it was given.

#include "gzip_encoding.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <string>

#include "gunzip.hpp"

namespace ringpipe::exporters {
namespace {

// A page-like text: repetitive lines with some noise, `bytes` long.
std::string page_text(std::size_t bytes, std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::string s;
  while (s.size() < bytes) {
    s += "bench_metric_" + std::to_string(rng() % 100000) + "{host=\"edge-" + std::to_string(rng() % 40) + "\"} " +
         std::to_string(rng()) + "\n";
  }
  s.resize(bytes);
  return s;
}

TEST(GzipCompress, EveryPieceCountInflatesToTheTextWithItsCrcAndLength) {
  for (const std::size_t bytes : {std::size_t{0}, std::size_t{1}, std::size_t{7}, std::size_t{4095},
                                  std::size_t{100'000}, std::size_t{1'000'003}}) {
    const std::string text = page_text(bytes, static_cast<std::uint32_t>(bytes));
    for (const unsigned threads : {1U, 2U, 3U, 8U}) {
      for (const std::size_t piece : {std::size_t{1}, std::size_t{1000}, std::size_t{65'536}, kGzipPieceBytes}) {
        SCOPED_TRACE(std::to_string(bytes) + " bytes, " + std::to_string(threads) + " threads, pieces of " +
                     std::to_string(piece));
        const std::optional<std::string> gz = gzip_compress(text, 1, threads, piece);
        ASSERT_TRUE(gz);
        const std::optional<std::string> back = testing::gunzip(*gz);
        ASSERT_TRUE(back) << "not one whole gzip member";
        EXPECT_EQ(*back, text);
      }
    }
  }
}

TEST(GzipCompress, PiecesCostLittleRatioAndAChangedByteBreaksTheCrc) {
  const std::string text = page_text(std::size_t{12} << 20, 1);
  const std::optional<std::string> one = gzip_compress(text, 1, 1);
  const std::optional<std::string> three = gzip_compress(text, 1, 3);
  ASSERT_TRUE(one && three);
  EXPECT_NE(*one, *three) << "three pieces were made";
  EXPECT_LT(three->size(), one->size() + one->size() / 50) << one->size() << " vs " << three->size();
  // The trailer is the whole text's: a member whose CRC does not match is refused.
  std::string bad = *three;
  bad[bad.size() - 8] = static_cast<char>(bad[bad.size() - 8] ^ 1);
  EXPECT_FALSE(testing::gunzip(bad));
  std::string short_length = *three;
  short_length[short_length.size() - 4] = static_cast<char>(short_length[short_length.size() - 4] ^ 1);
  EXPECT_FALSE(testing::gunzip(short_length));
}

}  // namespace
}  // namespace ringpipe::exporters
