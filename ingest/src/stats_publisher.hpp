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
#include "ringpipe/ingest/ingest_server.hpp"
#include "ringpipe/stats/stats_segment.hpp"

namespace ringpipe::ingest {

// The publisher of a source that is not an IngestServer (MQTT,
// remote_write): into `segment` if set, else into a segment created at
// `stats_path` for `config.name`; nullptr when neither is set. Errors read
// "<what>: stats: <cause>".
class StatsPublisher;
[[nodiscard]] Result<std::unique_ptr<StatsPublisher>> open_source_publisher(
    std::shared_ptr<stats::StatsSegment> segment, const std::string& stats_path, const IngestConfig& config,
    const IngestStats& stats, const std::string& what);

// A source's own thread body: runs `body` (which returns once `stopping` is
// set) with a publisher thread beside it when `publisher` is set, then
// publishes the exact totals. Throws what std::thread throws.
template <class F>
void run_publishing(StatsPublisher* publisher, const std::atomic<bool>& stopping, std::chrono::milliseconds interval,
                    F&& body);

class StatsPublisher {
 public:
  // Registers every metric the config's listeners produce (udp_port: the bound
  // port, for the kernel-drop socket labels). Fails on a full
  // segment or an entry another writer registered with another type.
  [[nodiscard]] static Result<std::unique_ptr<StatsPublisher>> create(std::shared_ptr<stats::StatsSegment> segment,
                                                                      const IngestConfig& config,
                                                                      const IngestStats& stats, std::uint16_t udp_port);
  // One more counter (or gauge) mirrored from `from`, e.g. a source's own; before the first publish.
  [[nodiscard]] Status add(const std::atomic<std::uint64_t>& from, std::string_view name, std::string_view help,
                           const stats::StatsLabels& labels, bool gauge = false);
  void publish() noexcept;
  // A source's publisher thread: publishes every `interval` until `stopping`
  // turns true. The source publishes once more after its own threads
  // stopped, so a stopped source's segment holds exact totals.
  void publish_until(const std::atomic<bool>& stopping, std::chrono::milliseconds interval) noexcept;

 private:
  struct Link {
    const std::atomic<std::uint64_t>* from;
    std::atomic<std::uint64_t>* to;
    std::uint64_t last = 0;
  };
  std::shared_ptr<stats::StatsSegment> segment_;
  std::vector<Link> links_;
};

template <class F>
void run_publishing(StatsPublisher* publisher, const std::atomic<bool>& stopping, std::chrono::milliseconds interval,
                    F&& body) {
  std::thread thread;
  if (publisher != nullptr) thread = std::thread([&] { publisher->publish_until(stopping, interval); });
  body();
  if (thread.joinable()) thread.join();
  if (publisher != nullptr) publisher->publish();  // exact totals at stop
}

}  // namespace ringpipe::ingest
