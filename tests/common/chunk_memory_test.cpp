#include "ringpipe/common/chunk_memory.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "vm_flags.hpp"

namespace ringpipe::common {
namespace {

constexpr std::size_t kSeriesChunk = 192 * 1024;  // a shard's 4096 series of 48 bytes

bool thp_kernel() { return std::filesystem::exists("/sys/kernel/mm/transparent_hugepage"); }

bool within(const void* p, const void* base, std::size_t bytes) {
  const auto a = reinterpret_cast<std::uintptr_t>(p);
  const auto b = reinterpret_cast<std::uintptr_t>(base);
  return a >= b && a - b < bytes;
}

// Holds chunk_allocate'd chunks of one size and frees them at the end.
struct Held {
  std::size_t bytes;
  std::vector<void*> chunks;
  void* add() { return chunks.emplace_back(chunk_allocate(bytes)); }
  ~Held() {
    for (void* p : chunks) chunk_free(p, bytes);
  }
};

// Allocates until the process holds more than kHugeChunksAfter bytes of chunks.
void pass_threshold(Held& h) {
  while (chunk_memory_stats().in_use <= kHugeChunksAfter) h.add();
}

TEST(ChunkMemory, ASmallProcessGetsPlainMemory) {
  const ChunkMemoryStats before = chunk_memory_stats();
  ASSERT_LT(before.in_use + kSeriesChunk, kHugeChunksAfter) << "another test left chunks held";
  Held h{kSeriesChunk, {}};
  void* p = h.add();
  std::memset(p, 0x5a, kSeriesChunk);
  EXPECT_EQ(chunk_memory_stats().in_use, before.in_use + kSeriesChunk);
  EXPECT_EQ(chunk_memory_stats().slab_bytes, before.slab_bytes) << "no slab below the threshold";
  if (thp_kernel()) {
    EXPECT_EQ(vm_flags_at(p).find(" hg"), std::string::npos) << vm_flags_at(p);
  }
}

TEST(ChunkMemory, ChunksPastTheThresholdComeFromAdvisedSlabsWithoutOverlapAndFreedOnesAreReused) {
  const ChunkMemoryStats start = chunk_memory_stats();
  Held h{kSeriesChunk, {}};
  pass_threshold(h);
  const std::size_t plain = h.chunks.size();
  for (int i = 0; i < 40; ++i) h.add();  // ~7.5 MiB: several slabs
  const ChunkMemoryStats past = chunk_memory_stats();
  EXPECT_GE(past.slab_bytes, start.slab_bytes + 3 * kChunkSlabBytes);
  for (std::size_t i = plain; i < h.chunks.size(); ++i) {
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(h.chunks[i]) % 64, 0u) << i;
    if (thp_kernel()) {
      EXPECT_NE(vm_flags_at(h.chunks[i]).find(" hg"), std::string::npos) << i;
    }
  }
  // Each chunk filled with its own byte: any overlap shows as another's byte.
  for (std::size_t i = 0; i < h.chunks.size(); ++i) std::memset(h.chunks[i], static_cast<int>(i % 251), kSeriesChunk);
  for (std::size_t i = 0; i < h.chunks.size(); ++i) {
    const auto* b = static_cast<const unsigned char*>(h.chunks[i]);
    ASSERT_EQ(b[0], i % 251) << i;
    ASSERT_EQ(b[kSeriesChunk - 1], i % 251) << i;
  }
  // A freed slab chunk is the next chunk of its size; no slab is mapped for it.
  void* last = h.chunks.back();
  h.chunks.pop_back();
  chunk_free(last, kSeriesChunk);
  EXPECT_EQ(chunk_memory_stats().kept, past.kept + kSeriesChunk);
  EXPECT_EQ(h.add(), last);
  EXPECT_EQ(chunk_memory_stats().kept, past.kept);
  EXPECT_EQ(chunk_memory_stats().slab_bytes, past.slab_bytes);
}

TEST(ChunkMemory, ASlabsTailServesSmallerChunksBeforeANewSlabIsMapped) {
  Held big{384 * 1024, {}};
  pass_threshold(big);
  // Start on a fresh slab: 384 KiB chunks until one maps a new slab.
  std::size_t slabs = chunk_memory_stats().slab_bytes;
  for (int i = 0; i < 8 && chunk_memory_stats().slab_bytes == slabs; ++i) big.add();
  ASSERT_GT(chunk_memory_stats().slab_bytes, slabs);
  // Five fill 1920 KiB of it; the sixth maps the next slab and leaves 128 KiB.
  for (int i = 0; i < 4; ++i) big.add();
  slabs = chunk_memory_stats().slab_bytes;
  void* newest = big.add();
  ASSERT_EQ(chunk_memory_stats().slab_bytes, slabs + kChunkSlabBytes);
  Held small{64 * 1024, {}};
  void* p = small.add();
  EXPECT_FALSE(within(p, newest, kChunkSlabBytes)) << "a 64 KiB chunk went to the new slab, not to a tail";
  EXPECT_EQ(chunk_memory_stats().slab_bytes, slabs + kChunkSlabBytes);
  std::memset(p, 1, 64 * 1024);
}

TEST(ChunkMemory, AChunkOverAQuarterSlabIsPlainMemoryEvenPastTheThreshold) {
  Held h{kSeriesChunk, {}};
  pass_threshold(h);
  const ChunkMemoryStats past = chunk_memory_stats();
  Held big{kChunkSlabBytes / 2, {}};
  void* p = big.add();
  std::memset(p, 7, kChunkSlabBytes / 2);
  EXPECT_EQ(chunk_memory_stats().slab_bytes, past.slab_bytes);
  EXPECT_EQ(chunk_memory_stats().in_use, past.in_use + kChunkSlabBytes / 2);
}

TEST(ChunkMemory, ThreadsAllocatingAndFreeingAtOnceNeverShareAChunk) {
  Held h{kSeriesChunk, {}};
  pass_threshold(h);
  constexpr int kThreads = 4;
  constexpr int kRounds = 6;
  constexpr int kEach = 8;
  std::vector<std::vector<void*>> got(kThreads);
  std::atomic<int> overwritten{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([t, &got, &overwritten] {
      std::vector<void*>& mine = got[static_cast<std::size_t>(t)];
      for (int r = 0; r < kRounds; ++r) {
        while (mine.size() < kEach) {
          void* p = chunk_allocate(kSeriesChunk);
          std::memset(p, t + 1, kSeriesChunk);
          mine.push_back(p);
        }
        for (void* p : mine) {
          const auto* b = static_cast<const unsigned char*>(p);
          if (b[0] != t + 1 || b[kSeriesChunk - 1] != t + 1) overwritten.fetch_add(1);  // another thread wrote it
        }
        for (int k = 0; k < kEach / 2; ++k) {  // half back, to be taken again by any thread
          chunk_free(mine.back(), kSeriesChunk);
          mine.pop_back();
        }
      }
    });
  }
  for (std::thread& th : threads) th.join();
  EXPECT_EQ(overwritten.load(), 0) << "a chunk in use was handed to another thread";
  std::vector<std::uintptr_t> all;
  for (int t = 0; t < kThreads; ++t) {
    for (void* p : got[static_cast<std::size_t>(t)]) {
      const auto* b = static_cast<const unsigned char*>(p);
      EXPECT_EQ(b[kSeriesChunk / 2], t + 1);
      all.push_back(reinterpret_cast<std::uintptr_t>(p));
    }
  }
  std::sort(all.begin(), all.end());
  for (std::size_t i = 1; i < all.size(); ++i) EXPECT_GE(all[i] - all[i - 1], kSeriesChunk) << "chunks overlap";
  for (int t = 0; t < kThreads; ++t) {
    for (void* p : got[static_cast<std::size_t>(t)]) chunk_free(p, kSeriesChunk);
  }
}

}  // namespace
}  // namespace ringpipe::common
