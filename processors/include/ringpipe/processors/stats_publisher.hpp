#pragma once
// ProcessorStatsPublisher: mirrors a Processor's EngineStats into the
// component's stats segment (common/stats_segment.hpp) as ringpipe
// processor_* metrics. Counters move by their growth since the previous
// publish(), so a restarted processor continues the previous run's values;
// gauges (live series, the configured budgets) are stored as they are.
// publish() reads Processor::stats() (which takes the per-thread slots'
// mutexes, never a shard's data): call it from one thread at a time, or let
// start() run it every `interval` on a thread of its own. The segment and the
// processor must outlive the publisher.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "ringpipe/common/result.hpp"
#include "ringpipe/processors/processor.hpp"
#include "ringpipe/stats/stats_segment.hpp"

namespace ringpipe::processors {

class ProcessorStatsPublisher {
 public:
  // Registers every processor_* metric; fails on a full segment or a name
  // registered before with another type.
  [[nodiscard]] static Result<std::unique_ptr<ProcessorStatsPublisher>> create(stats::StatsSegment& segment,
                                                                               const Processor& processor,
                                                                               const EngineOptions& options);
  ~ProcessorStatsPublisher();
  ProcessorStatsPublisher(const ProcessorStatsPublisher&) = delete;
  ProcessorStatsPublisher& operator=(const ProcessorStatsPublisher&) = delete;

  // Copies the processor's current counters into the segment and stamps its heartbeat.
  void publish() noexcept;
  // Publishes every `interval` on a thread until stop(), which publishes once more.
  [[nodiscard]] Status start(std::chrono::milliseconds interval);
  void stop() noexcept;  // idempotent

 private:
  struct Link {
    std::uint64_t EngineStats::*field;
    std::atomic<std::uint64_t>* to;
    std::uint64_t last = 0;
  };
  ProcessorStatsPublisher(stats::StatsSegment& segment, const Processor& processor) noexcept
      : segment_(segment), processor_(processor) {}

  stats::StatsSegment& segment_;
  const Processor& processor_;
  std::vector<Link> counters_;
  std::atomic<std::uint64_t>* series_live_ = nullptr;
  std::atomic<std::uint64_t>* state_bytes_ = nullptr;
  std::atomic<std::uint64_t>* cache_misses_ = nullptr;
  std::uint64_t last_misses_ = 0;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace ringpipe::processors
