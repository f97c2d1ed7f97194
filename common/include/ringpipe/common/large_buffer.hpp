#pragma once
// reserve_large: std::string::reserve for a buffer of many megabytes (a
// /metrics page of 1M series is ~120 MB), asking the kernel to back it with
// transparent huge pages (madvise MADV_HUGEPAGE) before it is first written.
//
// Such a buffer is fresh anonymous memory from mmap each time; with 4 KiB
// pages filling it costs one page fault per 4 KiB (30,000 for a 120 MB page),
// a fifth of a scrape's time on a virtual machine, where each fault traps to
// the hypervisor. With 2 MiB pages that is 60. Where the system has
// transparent huge pages off, or none is free, the advice changes nothing;
// the buffer behaves as one reserve() made. Any thread.

#include <sys/mman.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace ringpipe::common {

// Below this a buffer is not worth a system call: it may hold no whole
// aligned huge page. (At 2 MiB a table of 256k 8-byte slots is advised, and
// the shard, mapper and registry indexes at 1M series no longer fault in
// their 4 MiB stage 4 KiB at a time.)
inline constexpr std::size_t kLargeBufferBytes = std::size_t{2} << 20;
inline constexpr std::size_t kHugePageBytes = std::size_t{2} << 20;

// Advises the whole 2 MiB-aligned pages inside [data, data + bytes).
inline void advise_huge_pages(void* data, std::size_t bytes) noexcept {
  const auto begin = reinterpret_cast<std::uintptr_t>(data);
  const std::uintptr_t first = (begin + kHugePageBytes - 1) & ~(kHugePageBytes - 1);
  const std::uintptr_t last = (begin + bytes) & ~(kHugePageBytes - 1);
  if (last <= first) return;
  // From `data` by offset (no integer-to-pointer cast).
  (void)::madvise(static_cast<char*>(data) + (first - begin), last - first, MADV_HUGEPAGE);  // advice only
}

// s.reserve(bytes); a new buffer of at least kLargeBufferBytes is advised
// huge pages before the text moves into it.
inline void reserve_large(std::string& s, std::size_t bytes) {
  if (bytes <= s.capacity()) return;
  if (bytes < kLargeBufferBytes) {
    s.reserve(bytes);
    return;
  }
  std::string bigger;
  bigger.reserve(bytes);
  advise_huge_pages(bigger.data(), bigger.capacity());
  bigger.append(s);
  s.swap(bigger);
}

// The same for a vector of trivially copyable elements (a render's index
// arrays: 4 to 40 bytes per series; a shard's dirty list). The new buffer is
// advised whole before the elements move into it, so they land in huge
// pages too (a vector's own reserve() would copy them first, 4 KiB at a time).
template <class T>
void reserve_large(std::vector<T>& v, std::size_t count) {
  if (count <= v.capacity()) return;
  if (count * sizeof(T) < kLargeBufferBytes) {
    v.reserve(count);
    return;
  }
  std::vector<T> bigger;
  bigger.reserve(count);
  advise_huge_pages(bigger.data(), bigger.capacity() * sizeof(T));
  bigger.insert(bigger.end(), v.begin(), v.end());
  v.swap(bigger);
}

// v.push_back(x), doubling as a vector does, into buffers reserve_large makes.
template <class T>
void push_back_large(std::vector<T>& v, const T& x) {
  if (v.size() == v.capacity()) reserve_large(v, v.capacity() < 16 ? 16 : v.capacity() * 2);
  v.push_back(x);
}

// v.resize(count, value) into a buffer reserve_large made.
template <class T>
void resize_large(std::vector<T>& v, std::size_t count, const T& value = T{}) {
  reserve_large(v, count);
  v.resize(count, value);
}

}  // namespace ringpipe::common
