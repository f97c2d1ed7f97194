#include "ringpipe/common/string_arena.hpp"

#include <string>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>

namespace ringpipe::common {
namespace {

// Every view add() returned still reads its string after many more were
// added: across block boundaries, for a string longer than a block (a block
// of its own) and for the empty string. The caller's copy may go away.
TEST(StringArena, ViewsStayValidAcrossBlocksAndLongStrings) {
  StringArena arena;
  std::vector<std::string> want;
  std::vector<std::string_view> got;
  for (int i = 0; i < 20000; ++i) {
    std::string s = "name_" + std::to_string(i) + std::string(static_cast<std::size_t>(i % 13) * 3, 'x');
    if (i == 7000) s = std::string(StringArena::kBlock + 5, 'L');
    if (i == 9000) s.clear();
    got.push_back(arena.add(s));
    want.push_back(std::move(s));
  }
  ASSERT_GT(arena.blocks(), 3u) << "the strings span several blocks";
  for (std::size_t i = 0; i < want.size(); ++i) ASSERT_EQ(got[i], want[i]) << i;
  EXPECT_TRUE(got[9000].empty());
}

}  // namespace
}  // namespace ringpipe::common
