#pragma once
// StatsPublisher: mirrors one IngestServer's IngestStats into a stats segment
// (common/stats_segment.hpp) as ringpipe source_* metrics. publish() adds each
// counter's growth since the previous publish to the segment's cell, so the
// servers of one process can share a segment (their deltas sum) and a
// restarted source continues the previous run's values. Gauges move by their
// signed change the same way. One thread calls publish() at a time.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "ringpipe/common/result.hpp"
#include "ringpipe/common/stats_segment.hpp"
#include "ringpipe/ingest/ingest_server.hpp"

namespace ringpipe::ingest {

class StatsPublisher {
 public:
  // Registers every metric the config's listeners produce (udp_port: the bound
  // port, for the kernel-drop socket labels). Fails on a full
  // segment or an entry another writer registered with another type.
  [[nodiscard]] static Result<std::unique_ptr<StatsPublisher>> create(std::shared_ptr<StatsSegment> segment,
                                                                      const IngestConfig& config,
                                                                      const IngestStats& stats, std::uint16_t udp_port);
  // One more counter (or gauge) mirrored from `from`, e.g. a source's own; before the first publish.
  [[nodiscard]] Status add(const std::atomic<std::uint64_t>& from, std::string_view name, std::string_view help,
                           const StatsLabels& labels, bool gauge = false);
  void publish() noexcept;
  // A thread that publishes every `interval` until `stopping` is set; the
  // owner joins it and then publishes once more (exact totals at stop).
  [[nodiscard]] std::thread start_thread(const std::atomic<bool>& stopping, std::chrono::milliseconds interval);

  // A client-style source's segment: `segment` when set, else one created at
  // `path` (component `name`, kind "source", its old gauges reset); nullptr
  // when neither is given.
  [[nodiscard]] static Result<std::shared_ptr<StatsSegment>> source_segment(std::shared_ptr<StatsSegment> segment,
                                                                            const std::string& path,
                                                                            const std::string& name);

 private:
  struct Link {
    const std::atomic<std::uint64_t>* from;
    std::atomic<std::uint64_t>* to;
    std::uint64_t last = 0;
  };
  std::shared_ptr<StatsSegment> segment_;
  std::vector<Link> links_;
};

}  // namespace ringpipe::ingest
