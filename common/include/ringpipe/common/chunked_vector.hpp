#pragma once
// ChunkedVector: a vector of T in fixed chunks of kChunk elements that never
// move. Growing adds a chunk: no element is copied, no block twice the size
// is faulted in beside the old one and freed, as a std::vector does at each
// doubling (at a million 48-byte series, ~100 MB copied and faulted in while
// the series are being created, the moment a pipeline is busiest). References
// stay valid until the element is removed by resize(). Indexing costs a shift
// and a mask more. Chunks come from chunk_allocate() (huge-page slabs once a
// process holds many). Not thread-safe: one owner.

#include <cstddef>
#include <memory>
#include <utility>
#include <vector>

#include "ringpipe/common/chunk_memory.hpp"

namespace ringpipe::common {

template <class T, std::size_t kChunk = 4096>
class ChunkedVector {
  static_assert(kChunk != 0 && (kChunk & (kChunk - 1)) == 0, "a power of two");

 public:
  ChunkedVector() = default;
  ChunkedVector(const ChunkedVector&) = delete;
  ChunkedVector& operator=(const ChunkedVector&) = delete;
  ChunkedVector(ChunkedVector&& o) noexcept : chunks_(std::move(o.chunks_)), size_(std::exchange(o.size_, 0)) {
    o.chunks_.clear();
  }
  ChunkedVector& operator=(ChunkedVector&& o) noexcept {
    if (this != &o) {
      resize(0);
      chunks_ = std::move(o.chunks_);
      o.chunks_.clear();
      size_ = std::exchange(o.size_, 0);
    }
    return *this;
  }
  ~ChunkedVector() { resize(0); }

  [[nodiscard]] T& operator[](std::size_t i) noexcept { return at(i); }
  [[nodiscard]] const T& operator[](std::size_t i) const noexcept { return at(i); }
  [[nodiscard]] std::size_t size() const noexcept { return size_; }
  [[nodiscard]] bool empty() const noexcept { return size_ == 0; }
  // Elements the chunks hold room for.
  [[nodiscard]] std::size_t capacity() const noexcept { return chunks_.size() * kChunk; }

  template <class... Args>
  T& emplace_back(Args&&... args) {
    if (size_ == capacity()) {
      std::unique_ptr<Storage[], FreeChunk> c(static_cast<Storage*>(chunk_allocate(sizeof(Storage) * kChunk)));
      chunks_.push_back(std::move(c));  // raw: not zeroed
    }
    T* p = ::new (static_cast<void*>(slot(size_))) T(std::forward<Args>(args)...);
    ++size_;
    return *p;
  }
  void push_back(const T& v) { emplace_back(v); }
  void push_back(T&& v) { emplace_back(std::move(v)); }
  // Value-initialises new elements; destroys removed ones and frees the chunks
  // left empty.
  void resize(std::size_t n) {
    while (size_ < n) emplace_back();
    while (size_ > n) {
      --size_;
      at(size_).~T();
    }
    chunks_.resize((size_ + kChunk - 1) / kChunk);
  }

 private:
  struct Storage {
    alignas(T) unsigned char bytes[sizeof(T)];
  };
  [[nodiscard]] void* slot(std::size_t i) const noexcept { return chunks_[i / kChunk][i % kChunk].bytes; }
  [[nodiscard]] T& at(std::size_t i) const noexcept { return *std::launder(static_cast<T*>(slot(i))); }

  struct FreeChunk {
    void operator()(Storage* p) const noexcept { chunk_free(p, sizeof(Storage) * kChunk); }
  };
  std::vector<std::unique_ptr<Storage[], FreeChunk>> chunks_;
  std::size_t size_ = 0;
};

}  // namespace ringpipe::common
