#include "ringpipe/common/large_buffer.hpp"

#include <gtest/gtest.h>

#include <sys/mman.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <thread>
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

// Pages of [p, p + bytes) resident now (mincore).
std::size_t resident_pages(const char* p, std::size_t bytes) {
  const std::size_t page = 4096;
  std::vector<unsigned char> in((bytes + page - 1) / page);
  if (::mincore(const_cast<char*>(p), bytes, in.data()) != 0) return 0;
  std::size_t n = 0;
  for (const unsigned char c : in) n += c & 1U;
  return n;
}

TEST(Prefault, FaultsInARangeWithoutChangingWhatItHolds) {
  if (std::thread::hardware_concurrency() < 2) GTEST_SKIP() << "one CPU: nothing is started";
  const std::size_t bytes = kPrefaultBytes * 2;
  void* m = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(m, MAP_FAILED);
  auto* p = static_cast<char*>(m);
  for (std::size_t i = 0; i < bytes / 4; i += 4096) p[i] = 'w';  // written before: kept
  ASSERT_LT(resident_pages(p, bytes), bytes / 4096 / 2);
  {
    Prefault pre(p, bytes);
    ASSERT_TRUE(pre.started());
    // The owner writes on while the range fills (the writer may pass it).
    for (std::size_t i = bytes / 4; i < bytes / 2; i += 4096) p[i] = 'v';
    pre.join();
  }
  if (resident_pages(p, bytes) == 0) GTEST_SKIP() << "mincore refused";
  EXPECT_EQ(resident_pages(p, bytes), bytes / 4096) << "every page faulted in";
  for (std::size_t i = 0; i < bytes; i += 4096) {
    const char want = i < bytes / 4 ? 'w' : i < bytes / 2 ? 'v' : 0;
    ASSERT_EQ(p[i], want) << "byte " << i;
    ASSERT_EQ(p[i + 1], 0) << "byte " << i + 1;  // i + 1 < bytes: i steps by pages
  }
  ::munmap(m, bytes);
}

TEST(Prefault, StartsNothingForASmallRangeAndStopsWhenDestroyed) {
  std::vector<char> small(kPrefaultBytes / 2);
  const Prefault none(small.data(), small.size());
  EXPECT_FALSE(none.started());
  if (std::thread::hardware_concurrency() < 2) GTEST_SKIP() << "one CPU: nothing is started";
  const std::size_t bytes = std::size_t{1} << 30;  // a gibibyte of address space, never all touched
  void* m = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  ASSERT_NE(m, MAP_FAILED);
  {
    const Prefault pre(m, bytes);
    EXPECT_TRUE(pre.started());
  }  // stops within a step
  EXPECT_LT(resident_pages(static_cast<const char*>(m), bytes), bytes / 4096) << "stopped before the end";
  ::munmap(m, bytes);
}

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
