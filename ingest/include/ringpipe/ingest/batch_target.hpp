#pragma once
// BatchTarget: where one transport thread puts its sample batches — in
// production a ring::Producer (see ring_target.hpp), in tests memory. Each
// thread owns its own target; one claim per received packet batch.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>

#include "ringpipe/common/result.hpp"

namespace ringpipe::ingest {

// One destination lane for sample batches. Used by one thread; never throws.
class BatchTarget {
 public:
  virtual ~BatchTarget() = default;
  // Space for one batch record; empty when the destination refuses (full, timeout).
  [[nodiscard]] virtual std::span<std::byte> claim() noexcept = 0;
  // As claim(), but room for `bytes` if the destination allows records that
  // large (a request that should be one record); the default ignores the hint.
  [[nodiscard]] virtual std::span<std::byte> claim_at_least(std::size_t bytes) noexcept {
    (void)bytes;
    return claim();
  }
  // Makes the first `used` bytes of the last claim one record, visible to readers.
  virtual void commit(std::size_t used) noexcept = 0;
  // Records the caller gave up on because claim() refused.
  virtual void count_dropped(std::uint64_t records) noexcept = 0;
};

// Makes one target per transport thread; called from IngestServer::create only.
using TargetFactory = std::function<Result<std::unique_ptr<BatchTarget>>()>;

}  // namespace ringpipe::ingest
