#include "ringpipe/common/chunk_memory.hpp"

#include <pthread.h>

#include <algorithm>
#include <cstdint>
#include <mutex>
#include <new>
#include <unordered_map>
#include <utility>
#include <vector>

#include "ringpipe/common/large_buffer.hpp"

namespace ringpipe::common {
namespace {

// Chunks larger than this are never carved from a slab (a string longer than
// a StringArena block): a slab would be mostly tail.
constexpr std::size_t kMaxSlabChunk = kChunkSlabBytes / 4;
constexpr std::size_t kSlabAlign = 64;

struct State {
  std::mutex mu;
  std::size_t in_use = 0;
  std::size_t slab_bytes = 0;
  std::size_t kept = 0;
  std::byte* bump = nullptr;  // the slab being carved: [bump, bump_end)
  std::byte* bump_end = nullptr;
  // What earlier slabs had left when a chunk did not fit (at most one span
  // per slab), carved first-fit by later, smaller chunks: with chunks of
  // 64 to 192 KiB that is ~3 % of every slab otherwise resident and unused.
  std::vector<std::pair<std::byte*, std::byte*>> tails;
  std::vector<std::uintptr_t> slabs;                            // every slab's base, sorted
  std::unordered_map<std::size_t, std::vector<void*>> free_by;  // freed slab chunks by rounded size
};

State& state() {
  static State* s = [] {
    auto* st = new State;  // never destroyed: chunks may be freed by static destructors
    ::pthread_atfork([] { state().mu.lock(); }, [] { state().mu.unlock(); }, [] { state().mu.unlock(); });
    return st;
  }();
  return *s;
}

std::size_t rounded(std::size_t bytes) noexcept { return (bytes + kSlabAlign - 1) & ~(kSlabAlign - 1); }

bool in_slab(const State& s, const void* p) noexcept {
  const auto a = reinterpret_cast<std::uintptr_t>(p);
  const auto it = std::upper_bound(s.slabs.begin(), s.slabs.end(), a);
  return it != s.slabs.begin() && a - *(it - 1) < kChunkSlabBytes;
}

}  // namespace

void* chunk_allocate(std::size_t bytes) {
  State& s = state();
  {
    std::lock_guard lock(s.mu);
    s.in_use += bytes;
    if (s.in_use > kHugeChunksAfter && bytes <= kMaxSlabChunk) {
      const std::size_t r = rounded(bytes);
      if (auto it = s.free_by.find(r); it != s.free_by.end() && !it->second.empty()) {
        void* p = it->second.back();
        it->second.pop_back();
        s.kept -= r;
        return p;
      }
      for (std::size_t i = 0; i < s.tails.size(); ++i) {
        auto& [from, to] = s.tails[i];
        if (static_cast<std::size_t>(to - from) < r) continue;
        void* p = from;
        from += r;
        if (static_cast<std::size_t>(to - from) < kSlabAlign) {
          s.tails[i] = s.tails.back();
          s.tails.pop_back();
        }
        return p;
      }
      try {
        if (static_cast<std::size_t>(s.bump_end - s.bump) < r) {
          auto* slab = static_cast<std::byte*>(map_huge_aligned(kChunkSlabBytes));
          if (slab != nullptr) {
            s.slabs.insert(std::upper_bound(s.slabs.begin(), s.slabs.end(), reinterpret_cast<std::uintptr_t>(slab)),
                           reinterpret_cast<std::uintptr_t>(slab));
            // The old slab's rest becomes a tail only as the bump moves on
            // (nothing below throws): never both at once.
            if (static_cast<std::size_t>(s.bump_end - s.bump) >= kSlabAlign) s.tails.emplace_back(s.bump, s.bump_end);
            s.slab_bytes += kChunkSlabBytes;
            s.bump = slab;
            s.bump_end = slab + kChunkSlabBytes;
          }
        }
      } catch (const std::bad_alloc&) {
        // No memory for the slab lists: the plain allocator below (a slab
        // mapped but not listed stays unused).
      }
      if (static_cast<std::size_t>(s.bump_end - s.bump) >= r) {
        void* p = s.bump;
        s.bump += r;
        return p;
      }
      // No slab to be had: the plain allocator below.
    }
  }
  try {
    return ::operator new(bytes);
  } catch (...) {
    std::lock_guard lock(s.mu);
    s.in_use -= bytes;
    throw;
  }
}

void chunk_free(void* p, std::size_t bytes) noexcept {
  if (p == nullptr) return;
  State& s = state();
  {
    std::lock_guard lock(s.mu);
    s.in_use -= bytes;
    if (in_slab(s, p)) {
      const std::size_t r = rounded(bytes);
      try {
        s.free_by[r].push_back(p);
        s.kept += r;
      } catch (...) {
        // Out of memory for the list: the chunk stays mapped, unused.
      }
      return;
    }
  }
  ::operator delete(p);
}

ChunkMemoryStats chunk_memory_stats() noexcept {
  State& s = state();
  std::lock_guard lock(s.mu);
  return ChunkMemoryStats{s.in_use, s.slab_bytes, s.kept};
}

}  // namespace ringpipe::common
