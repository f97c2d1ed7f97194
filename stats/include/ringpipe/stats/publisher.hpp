#pragma once
// Publisher: the one periodic publisher of a component's stats segment. A
// component counts in process-local atomics on its hot paths; the publisher
// copies them into the segment's cells every interval on a thread of its own,
// once more when it stops (so a stopped component's segment holds exact
// totals), and stamps the segment's heartbeat each time. What a component
// publishes (which values, their names, help texts and labels) stays with the
// component; how and when is written here once.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string_view>
#include <thread>
#include <vector>

#include "ringpipe/common/result.hpp"
#include "ringpipe/stats/stats_segment.hpp"

namespace ringpipe::stats {

// How a mirrored gauge moves its segment cell.
enum class GaugeCopy : std::uint8_t {
  kChange,  // by the value's signed change since the previous publish: publishers sharing a cell sum into it
  kValue,   // to the value itself: this publisher is the cell's only writer
};

// Mirrors process-local atomics into one stats segment. A counter moves its
// cell by its growth since the previous publish() (never backwards), so a
// restarted component continues the previous run's totals and several
// publishers (the servers of one process) can feed one cell. add_*(),
// start() and stop() from one controlling thread, add_*() before start();
// publish() from any thread (one mutex). Never throws; the segment and every
// linked atomic must outlive the publisher.
class Publisher {
 public:
  // `refresh` (which must not throw) runs first in every publish(), under the
  // publisher's mutex: a component whose counters are not atomics copies
  // them into the linked ones there.
  explicit Publisher(StatsSegment& segment, std::function<void()> refresh = {});
  // The same, sharing ownership of the segment (several publishers of one process write one).
  explicit Publisher(std::shared_ptr<StatsSegment> segment, std::function<void()> refresh = {});
  ~Publisher();  // stop(), when start() succeeded
  Publisher(const Publisher&) = delete;
  Publisher& operator=(const Publisher&) = delete;

  // Registers name+labels in the segment (as StatsSegment::register_counter
  // and register_gauge, and failing as they do: invalid name, a clash, a full
  // table) and mirrors `from` into that cell from the next publish() on.
  [[nodiscard]] Status add_counter(const std::atomic<std::uint64_t>& from, std::string_view name, std::string_view help,
                                   const StatsLabels& labels = {});
  [[nodiscard]] Status add_gauge(const std::atomic<std::uint64_t>& from, std::string_view name, std::string_view help,
                                 const StatsLabels& labels = {}, GaugeCopy copy = GaugeCopy::kChange);

  // Copies every linked value into the segment and stamps its heartbeat.
  void publish() noexcept;
  // Publishes every `interval` (at least 1 ms) on a thread of its own until
  // stop(). Fails only when the thread cannot be started.
  [[nodiscard]] Status start(std::chrono::milliseconds interval);
  // Joins the thread if one runs, then publishes once more. Safe to repeat.
  void stop() noexcept;

  [[nodiscard]] StatsSegment& segment() const noexcept { return *segment_; }

 private:
  enum class Copy : std::uint8_t { kGrowth, kChange, kValue };
  struct Link {
    const std::atomic<std::uint64_t>* from;
    std::atomic<std::uint64_t>* to;
    Copy copy;
    std::uint64_t last;
  };
  Status link(Result<std::atomic<std::uint64_t>*> cell, const std::atomic<std::uint64_t>& from, Copy copy);

  std::shared_ptr<StatsSegment> owned_;  // set when the segment is shared
  StatsSegment* segment_;
  std::function<void()> refresh_;
  std::vector<Link> links_;
  std::mutex publish_mu_;  // one publish() at a time: links_' `last` and refresh_'s targets
  std::mutex stop_mu_;
  std::condition_variable stop_cv_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace ringpipe::stats
