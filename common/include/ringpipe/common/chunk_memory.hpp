#pragma once
// chunk_allocate / chunk_free: the memory of the fixed chunks that the
// per-series stores grow by (ChunkedVector, StringArena, the processors'
// family registry, the exporter's series table). A million series fill
// hundreds of megabytes of such chunks within a second or two, the moment a
// pipeline is busiest; with 4 KiB pages that is one page fault per 4 KiB, and
// on a virtual machine each fault traps to the hypervisor (~10 us measured on
// the 2-core VM; a third of a processor's time while it created 1M series).
//
// So once a process holds kHugeChunksAfter bytes of chunks, new chunks are carved
// from 2 MiB-aligned slabs advised MADV_HUGEPAGE: one fault per 2 MiB where
// the kernel has transparent huge pages (enabled "always" or "madvise"), the
// same 4 KiB pages as before where it has not. Below that a chunk is a plain
// operator new: a small pipeline keeps its footprint (a slab is 2 MiB resident
// once touched). At most one slab is partly carved at a time.
//
// A freed chunk of a slab is kept for the next chunk of its size, as the
// allocator keeps a freed block; slabs are never unmapped. Any thread (one
// mutex, taken once per chunk, never per element); safe across fork().

#include <cstddef>
#include <memory>
#include <new>
#include <type_traits>

namespace ringpipe::common {

// Chunk bytes a process holds before new chunks come from huge-page slabs.
inline constexpr std::size_t kHugeChunksAfter = std::size_t{16} << 20;
inline constexpr std::size_t kChunkSlabBytes = std::size_t{2} << 20;

// `bytes` of memory aligned for any type (at least 64 bytes in a slab);
// throws std::bad_alloc as operator new does.
[[nodiscard]] void* chunk_allocate(std::size_t bytes);
// Gives back what chunk_allocate(bytes) returned, with the same `bytes`.
void chunk_free(void* p, std::size_t bytes) noexcept;

struct ChunkMemoryStats {
  std::size_t in_use = 0;      // bytes of chunks allocated and not freed
  std::size_t slab_bytes = 0;  // bytes of slabs mapped
  std::size_t kept = 0;        // bytes of freed slab chunks kept for reuse
};
[[nodiscard]] ChunkMemoryStats chunk_memory_stats() noexcept;

// A unique_ptr deleter for an array of n T made in chunk_allocate'd memory
// (the array's elements are destroyed first).
template <class T>
struct ChunkArrayDelete {
  std::size_t n = 0;
  void operator()(T* p) const noexcept {
    for (std::size_t i = 0; i < n; ++i) p[i].~T();
    chunk_free(p, n * sizeof(T));
  }
};
template <class T>
using ChunkArray = std::unique_ptr<T[], ChunkArrayDelete<T>>;

// n value-initialised T in chunk_allocate'd memory (T's constructor must not
// throw: nothing is unwound).
template <class T>
[[nodiscard]] ChunkArray<T> make_chunk_array(std::size_t n) {
  static_assert(std::is_nothrow_default_constructible_v<T>);
  auto* p = static_cast<T*>(chunk_allocate(n * sizeof(T)));
  for (std::size_t i = 0; i < n; ++i) ::new (static_cast<void*>(p + i)) T();
  return ChunkArray<T>(p, ChunkArrayDelete<T>{n});
}

}  // namespace ringpipe::common
