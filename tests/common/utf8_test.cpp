#include "ringpipe/common/utf8.hpp"

#include <string>
#include <string_view>

#include <gtest/gtest.h>

namespace ringpipe::common {
namespace {

// Go's utf8.ValidString cases, each alone and after a run of ASCII long
// enough to take the 8-byte fast path first.
TEST(Utf8, ValidatesAsGoDoesOnEitherPath) {
  const std::string_view valid[] = {
      "", "abc", "\xC3\xA9", "\xE2\x82\xAC", "\xF0\x90\x8D\x88", "\xEF\xBF\xBF", "\xF4\x8F\xBF\xBF", "\xED\x9F\xBF"};
  const std::string_view invalid[] = {
      "\x80",              // a lone continuation byte
      "\xC0\x80",          // overlong NUL
      "\xC1\xBF",          // overlong 2-byte
      "\xE0\x80\x80",      // overlong 3-byte
      "\xF0\x80\x80\x80",  // overlong 4-byte
      "\xED\xA0\x80",      // a surrogate (U+D800)
      "\xED\xBF\xBF",      // a surrogate (U+DFFF)
      "\xF4\x90\x80\x80",  // above U+10FFFF
      "\xF5\x80\x80\x80",  // no such lead byte
      "\xE2\x82",          // cut short
      "\xC3\x28",          // a continuation that is not one
  };
  const std::string ascii(13, 'a');
  for (const std::string_view v : valid) {
    EXPECT_TRUE(valid_utf8(v)) << ::testing::PrintToString(std::string(v));
    EXPECT_TRUE(valid_utf8(ascii + std::string(v) + ascii)) << ::testing::PrintToString(std::string(v));
  }
  for (const std::string_view v : invalid) {
    EXPECT_FALSE(valid_utf8(v)) << ::testing::PrintToString(std::string(v));
    EXPECT_FALSE(valid_utf8(ascii + std::string(v))) << ::testing::PrintToString(std::string(v));
    EXPECT_FALSE(valid_utf8(ascii + std::string(v) + ascii)) << ::testing::PrintToString(std::string(v));
    EXPECT_FALSE(valid_utf8_slow(std::string(v) + ascii)) << ::testing::PrintToString(std::string(v));
  }
}

}  // namespace
}  // namespace ringpipe::common
