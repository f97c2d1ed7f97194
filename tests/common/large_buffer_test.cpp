#include "ringpipe/common/large_buffer.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

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

TEST(LargeBuffer, PushBackLargeKeepsEveryElementAndAdvisesTheBufferOnceItIsLarge) {
  std::vector<std::uint32_t> v;
  const std::size_t n = 3 * kLargeBufferBytes / sizeof(std::uint32_t);  // a shard's dirty list at 1.5M series
  for (std::size_t i = 0; i < n; ++i) push_back_large(v, static_cast<std::uint32_t>(i * 7));
  ASSERT_EQ(v.size(), n);
  for (std::size_t i = 0; i < n; ++i) ASSERT_EQ(v[i], i * 7) << i;
  EXPECT_GE(v.capacity(), n);
  EXPECT_LT(v.capacity(), 2 * n + 16) << "grows by doubling, as push_back does";
  if (std::filesystem::exists("/sys/kernel/mm/transparent_hugepage")) {
    const std::string flags = vm_flags_at(v.data() + v.size() / 2);
    EXPECT_NE(flags.find(" hg"), std::string::npos) << flags;
  }
}

struct Slot {
  std::uint32_t tag = 0;
  std::uint32_t value = 0xffffffffu;
};

TEST(LargeArray, ALargeArrayIsAMappingOfItsOwnAlignedTo2MiBAdvisedWholeAndValueInitialised) {
  const std::size_t n = (kLargeBufferBytes + 12345) / sizeof(Slot);
  LargeArray<Slot> a(n);
  ASSERT_EQ(a.size(), n);
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(a.data()) % kHugePageBytes, 0u) << "a huge page from the first slot on";
  for (const Slot& s : a) ASSERT_TRUE(s.tag == 0 && s.value == 0xffffffffu);
  if (std::filesystem::exists("/sys/kernel/mm/transparent_hugepage")) {
    for (const Slot* p : {a.data(), a.data() + n / 2, a.data() + n - 1}) {
      const std::string flags = vm_flags_at(p);
      EXPECT_NE(flags.find(" hg"), std::string::npos) << (p - a.data()) << ": " << flags;
    }
  }
  a[n - 1].tag = 7;
  LargeArray<Slot> b(std::move(a));
  EXPECT_TRUE(a.empty());
  ASSERT_EQ(b.size(), n);
  EXPECT_EQ(b[n - 1].tag, 7u);
  LargeArray<Slot> small(4);
  ASSERT_EQ(small.size(), 4u);
  EXPECT_EQ(small[3].value, 0xffffffffu);
  if (std::filesystem::exists("/sys/kernel/mm/transparent_hugepage")) {
    EXPECT_EQ(vm_flags_at(small.data()).find(" hg"), std::string::npos) << "a small array costs no mapping";
  }
  small = std::move(b);  // the small one is freed, the big one moves
  EXPECT_EQ(small.size(), n);
  EXPECT_EQ(small[n - 1].tag, 7u);
}

}  // namespace
}  // namespace ringpipe::common
