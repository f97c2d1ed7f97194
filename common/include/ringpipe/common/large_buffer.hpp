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

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <new>
#include <string>
#include <system_error>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23  // Linux 5.14
#endif

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

// Faults in the pages of [data, data + bytes) on a thread of its own, front
// to back, while the owner writes the buffer front to back (a render filling
// a page of a hundred megabytes): the kernel zeroes each fresh page on the
// other core, not in the writer's page faults. Only the page tables change:
// what the buffer holds, written or not, stays as it is, so the writer may
// pass the prefaulter or outgrow the range. Nothing is started for a range
// under kPrefaultBytes or on a machine of one CPU; the kernel's refusal
// (before Linux 5.14) ends the thread, and a thread that cannot be made is
// done without. The destructor stops and joins it.
inline constexpr std::size_t kPrefaultBytes = std::size_t{32} << 20;

class Prefault {
 public:
  Prefault(void* data, std::size_t bytes) {
    if (bytes < kPrefaultBytes || std::thread::hardware_concurrency() < 2) return;
    const auto begin = reinterpret_cast<std::uintptr_t>(data);
    const std::uintptr_t first = (begin + kPageBytes - 1) & ~(kPageBytes - 1);
    const std::uintptr_t last = (begin + bytes) & ~(kPageBytes - 1);
    if (last <= first) return;
    char* const from = static_cast<char*>(data) + (first - begin);
    const std::size_t span = last - first;
    try {
      thread_ = std::thread([this, from, span] {
        for (std::size_t at = 0; at < span && !stop_.load(std::memory_order_relaxed); at += kStepBytes) {
          if (::madvise(from + at, std::min(kStepBytes, span - at), MADV_POPULATE_WRITE) != 0) return;
        }
      });
      started_ = true;
    } catch (const std::system_error&) {
      // No thread to be had: the writer faults the pages in itself, as without this.
    }
  }
  Prefault(const Prefault&) = delete;
  Prefault& operator=(const Prefault&) = delete;
  ~Prefault() {
    stop_.store(true, std::memory_order_relaxed);
    join();
  }
  // Waits until the whole range is faulted in (or the thread stopped).
  void join() {
    if (thread_.joinable()) thread_.join();
  }
  // Whether a thread was started for the range.
  [[nodiscard]] bool started() const noexcept { return started_; }

 private:
  static constexpr std::size_t kPageBytes = 4096;
  static constexpr std::size_t kStepBytes = std::size_t{8} << 20;  // a stop is seen within one step
  std::atomic<bool> stop_{false};
  bool started_ = false;
  std::thread thread_;
};

// A fresh anonymous mapping of `bytes` (a multiple of kHugePageBytes) that
// starts on a 2 MiB boundary, advised huge pages whole; nullptr when mmap
// fails. munmap(p, bytes) frees it.
inline void* map_huge_aligned(std::size_t bytes) noexcept {
  const std::size_t span = bytes + kHugePageBytes;
  void* m = ::mmap(nullptr, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (m == MAP_FAILED) return nullptr;
  auto* raw = static_cast<char*>(m);
  const auto addr = reinterpret_cast<std::uintptr_t>(raw);
  const std::size_t head = ((addr + kHugePageBytes - 1) & ~(kHugePageBytes - 1)) - addr;
  if (head != 0) ::munmap(raw, head);
  ::munmap(raw + head + bytes, span - head - bytes);
  (void)::madvise(raw + head, bytes, MADV_HUGEPAGE);  // advice only
  return raw + head;
}

// A fixed array of n trivially copyable T, value-initialised: from
// kLargeBufferBytes up a mapping of its own, aligned to 2 MiB and advised huge
// pages whole (an allocation from malloc is aligned to 4 KiB at best, so up to
// 2 MiB of each table stayed in 4 KiB pages: ~512 faults at every doubling of
// an index from 2 MiB up), freed by munmap; below, operator new. For hash
// tables that are rebuilt, never grown in place. One owner.
template <class T>
class LargeArray {
  static_assert(std::is_trivially_copyable_v<T> && std::is_trivially_destructible_v<T>);

 public:
  LargeArray() = default;
  explicit LargeArray(std::size_t n) : n_(n) {
    if (n == 0) return;
    const std::size_t bytes = n * sizeof(T);
    if (bytes < kLargeBufferBytes) {
      data_ = static_cast<T*>(::operator new(bytes));
    } else {
      mapped_ = (bytes + kHugePageBytes - 1) & ~(kHugePageBytes - 1);
      data_ = static_cast<T*>(map_huge_aligned(mapped_));
      if (data_ == nullptr) throw std::bad_alloc();
    }
    for (std::size_t i = 0; i < n; ++i) ::new (static_cast<void*>(data_ + i)) T();
  }
  LargeArray(const LargeArray&) = delete;
  LargeArray& operator=(const LargeArray&) = delete;
  LargeArray(LargeArray&& o) noexcept { swap(o); }
  LargeArray& operator=(LargeArray&& o) noexcept {
    LargeArray gone(std::move(o));
    swap(gone);
    return *this;
  }
  ~LargeArray() {
    if (data_ == nullptr) return;
    if (mapped_ != 0) {
      ::munmap(data_, mapped_);
    } else {
      ::operator delete(data_);
    }
  }
  void swap(LargeArray& o) noexcept {
    std::swap(data_, o.data_);
    std::swap(n_, o.n_);
    std::swap(mapped_, o.mapped_);
  }

  [[nodiscard]] T* data() noexcept { return data_; }
  [[nodiscard]] const T* data() const noexcept { return data_; }
  [[nodiscard]] std::size_t size() const noexcept { return n_; }
  [[nodiscard]] bool empty() const noexcept { return n_ == 0; }
  [[nodiscard]] T& operator[](std::size_t i) noexcept { return data_[i]; }
  [[nodiscard]] const T& operator[](std::size_t i) const noexcept { return data_[i]; }
  [[nodiscard]] T* begin() noexcept { return data_; }
  [[nodiscard]] T* end() noexcept { return data_ + n_; }
  [[nodiscard]] const T* begin() const noexcept { return data_; }
  [[nodiscard]] const T* end() const noexcept { return data_ + n_; }

 private:
  T* data_ = nullptr;
  std::size_t n_ = 0;
  std::size_t mapped_ = 0;  // 0: operator new
};

}  // namespace ringpipe::common
