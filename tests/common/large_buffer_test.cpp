#include "ringpipe/common/large_buffer.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "vm_flags.hpp"

namespace ringpipe::common {
namespace {

TEST(LargeBuffer, ReserveKeepsTheTextAndMakesRoomForAtLeastTheBytesAsked) {
  std::string s = "kept";
  reserve_large(s, 100);
  EXPECT_EQ(s, "kept");
  EXPECT_GE(s.capacity(), 100u);
  reserve_large(s, 10);  // never shrinks
  EXPECT_GE(s.capacity(), 100u);
  reserve_large(s, kLargeBufferBytes * 2);
  EXPECT_EQ(s, "kept");
  EXPECT_GE(s.capacity(), kLargeBufferBytes * 2);
}

TEST(LargeBuffer, ALargeBufferIsAdvisedHugePagesBeforeItIsWritten) {
  if (!std::filesystem::exists("/sys/kernel/mm/transparent_hugepage")) {
    GTEST_SKIP() << "this kernel has no transparent huge pages";
  }
  std::string small;
  reserve_large(small, 4096);
  EXPECT_EQ(vm_flags_at(small.data()).find(" hg"), std::string::npos) << "a small buffer costs no system call";

  std::string page;
  reserve_large(page, kLargeBufferBytes * 2);
  const std::string flags = vm_flags_at(page.data() + page.capacity() / 2);
  ASSERT_FALSE(flags.empty()) << "no mapping holds the buffer";
  EXPECT_NE(flags.find(" hg"), std::string::npos) << flags;
  page.assign(page.capacity() / 2, 'x');  // writable through the advice
  EXPECT_EQ(page.back(), 'x');
}

}  // namespace
}  // namespace ringpipe::common
