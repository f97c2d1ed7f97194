#include "ringpipe/ingest/ring_target.hpp"

#include <algorithm>

#include "ringpipe/sample/sample_batch.hpp"

namespace ringpipe::ingest {
namespace {

// One ring lane. Used by one thread.
class RingTarget final : public BatchTarget {
 public:
  RingTarget(ring::Producer producer, const RingTargetOptions& o) noexcept
      : producer_(std::move(producer)),
        claim_bytes_(std::min(o.claim_bytes, producer_.max_record_bytes())),
        timeout_(o.claim_timeout) {}

  std::span<std::byte> claim() noexcept override { return claim_at_least(0); }
  std::span<std::byte> claim_at_least(std::size_t bytes) noexcept override {
    const std::size_t n = std::max(claim_bytes_, std::min(bytes, producer_.max_record_bytes()));
    ring::WriteStatus st{};
    return timeout_.count() > 0 ? producer_.claim(n, timeout_, &st) : producer_.try_claim(n, &st);
  }
  void commit(std::size_t used) noexcept override { producer_.finish_and_publish(sample::kSampleBatchRecord, used); }
  void count_dropped(std::uint64_t records) noexcept override { producer_.count_dropped(records); }

 private:
  ring::Producer producer_;
  std::size_t claim_bytes_;
  std::chrono::nanoseconds timeout_;
};

}  // namespace

TargetFactory ring_target_factory(const ring::Ring& ring, const RingTargetOptions& options) {
  return [&ring, options]() -> Result<std::unique_ptr<BatchTarget>> {
    auto producer = ring::Producer::attach(ring);
    if (!producer) return tl::unexpected(producer.error());
    return std::make_unique<RingTarget>(std::move(*producer), options);
  };
}

}  // namespace ringpipe::ingest
