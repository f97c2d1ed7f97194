#pragma once
// StringArena: copies of strings that live as long as the arena, end to end
// in 64 KiB blocks (a longer string gets a block of its own) that never move
// or shrink: a view add() returns stays valid, and a string costs its bytes,
// not a std::string (32 bytes) and, past 15 characters, a heap block of its
// own. Blocks come from chunk_allocate() (huge-page slabs once a process
// holds many). Nothing is freed before the arena. Not thread-safe: one owner
// (or a lock around add()); views may be read from any thread.

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <memory>
#include <string_view>
#include <vector>

#include "ringpipe/common/chunk_memory.hpp"

namespace ringpipe::common {

class StringArena {
 public:
  static constexpr std::size_t kBlock = 64 * 1024;

  // A copy of `s` that lives as long as the arena.
  std::string_view add(std::string_view s) {
    if (s.empty()) return {};
    if (s.size() > left_) {
      const std::size_t size = std::max(kBlock, s.size());
      std::unique_ptr<char[], FreeBlock> b(static_cast<char*>(chunk_allocate(size)), FreeBlock{size});
      blocks_.push_back(std::move(b));
      free_ = blocks_.back().get();
      left_ = size;
    }
    char* at = free_;
    std::memcpy(at, s.data(), s.size());
    free_ += s.size();
    left_ -= s.size();
    return {at, s.size()};
  }
  [[nodiscard]] std::size_t blocks() const noexcept { return blocks_.size(); }

 private:
  struct FreeBlock {
    std::size_t size = 0;
    void operator()(char* p) const noexcept { chunk_free(p, size); }
  };
  std::vector<std::unique_ptr<char[], FreeBlock>> blocks_;
  char* free_ = nullptr;
  std::size_t left_ = 0;
};

}  // namespace ringpipe::common
