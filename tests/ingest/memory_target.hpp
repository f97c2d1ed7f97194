#pragma once
// Test helper: a BatchTarget that keeps every committed record in memory and
// can be told to refuse claims (like a full ring). Thread-safe.

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <memory>
#include <mutex>
#include <vector>

#include "parse_harness.hpp"
#include "ringpipe/ingest/batch_target.hpp"

namespace ringpipe::ingest::testing {

struct MemoryStore {
  std::mutex mu;
  std::vector<std::vector<std::byte>> records;
  std::atomic<bool> refuse{false};
  std::atomic<std::uint64_t> dropped_records{0};
  std::atomic<int> targets{0};
  std::size_t claim_bytes = 64 * 1024;
  std::size_t max_record_bytes = 0;  // > claim_bytes: claim_at_least() grants up to this, like a ring

  std::vector<Got> samples() {
    std::lock_guard lock(mu);
    std::vector<Got> all;
    for (const auto& r : records) {
      auto s = decode(r);
      all.insert(all.end(), s.begin(), s.end());
    }
    return all;
  }
  std::size_t record_count() {
    std::lock_guard lock(mu);
    return records.size();
  }
};

class MemoryTarget final : public BatchTarget {
 public:
  explicit MemoryTarget(std::shared_ptr<MemoryStore> store)
      : store_(std::move(store)), buf_(std::max(store_->claim_bytes, store_->max_record_bytes)) {}
  std::span<std::byte> claim() noexcept override {
    if (store_->refuse.load()) return {};
    return std::span<std::byte>(buf_.data(), store_->claim_bytes);
  }
  std::span<std::byte> claim_at_least(std::size_t bytes) noexcept override {
    if (store_->refuse.load()) return {};
    return std::span<std::byte>(buf_.data(), std::max(store_->claim_bytes, std::min(bytes, store_->max_record_bytes)));
  }
  void commit(std::size_t used) noexcept override {
    std::lock_guard lock(store_->mu);
    store_->records.emplace_back(buf_.begin(), buf_.begin() + static_cast<std::ptrdiff_t>(used));
  }
  void count_dropped(std::uint64_t records) noexcept override { store_->dropped_records += records; }

 private:
  std::shared_ptr<MemoryStore> store_;
  std::vector<std::byte> buf_;
};

inline TargetFactory memory_targets(const std::shared_ptr<MemoryStore>& store) {
  return [store]() -> Result<std::unique_ptr<BatchTarget>> {
    ++store->targets;
    return std::make_unique<MemoryTarget>(store);
  };
}

}  // namespace ringpipe::ingest::testing
