#pragma once
// PromScrapeSource: the Prometheus scrape component. Every `interval` it GETs
// each target's URL (HTTP/1.1, `timeout` for the whole request, a body limit),
// parses the text format or OpenMetrics (PromTextParser) and writes the series
// with `instance` and `job` labels — plus Prometheus' synthetic `up`,
// `scrape_duration_seconds` and `scrape_samples_scraped` — into one ring claim
// per scrape (a scrape larger than a record rotates into more). One thread per
// target, each with its own ring lane. Self-metrics are IngestStats plus
// ScrapeStats, mirrored into a stats segment like MqttSource's. create() fails
// with a Result (bad URL, timeout over interval); start()/stop() never throw;
// stop() may be called from any thread but a signal handler.

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "ringpipe/common/result.hpp"
#include "ringpipe/ingest/batch_target.hpp"
#include "ringpipe/ingest/ingest_server.hpp"
#include "ringpipe/stats/stats_segment.hpp"

namespace ringpipe::ingest {

struct PromScrapeConfig {
  std::string name = "scrape";  // in log lines
  std::string job;              // the job label; "" = name
  std::uint32_t source_id = 0;
  std::vector<std::string> targets;  // http://host:port/path
  relabel::Rules relabel;            // applied to every sample before the ring (IngestConfig::relabel)
  std::chrono::milliseconds interval{std::chrono::seconds(15)};
  std::chrono::milliseconds timeout{std::chrono::seconds(10)};  // <= interval
  std::uint64_t max_body_bytes = 16u << 20;                     // larger responses fail the scrape (body_too_large)
  std::size_t max_labels = 64;                                  // scraped labels per series (<= kMaxTags)
  std::size_t max_line_bytes = 64 * 1024;
  bool honor_labels = false;  // a scraped job/instance label wins over the target's
  std::chrono::milliseconds error_log_interval{std::chrono::seconds(10)};
  std::shared_ptr<stats::StatsSegment> stats_segment;  // as IngestConfig
  std::string stats_path;
  std::chrono::milliseconds stats_interval{250};
};

// Why a scrape failed (the `reason` label of source_scrape_failures_total).
enum class ScrapeFailure : std::uint8_t { kConnect, kTimeout, kHttpStatus, kBodyTooLarge, kOther, kCount };
inline constexpr std::size_t kScrapeFailureCount = static_cast<std::size_t>(ScrapeFailure::kCount);
[[nodiscard]] std::string_view scrape_failure_name(ScrapeFailure f) noexcept;

// Scrape counters beside IngestStats; relaxed atomics, readable at any time.
struct ScrapeStats {
  std::atomic<std::uint64_t> scrapes{0};     // attempts, failed ones included
  std::atomic<std::uint64_t> bytes{0};       // response bodies received
  std::atomic<std::uint64_t> targets_up{0};  // gauge: targets whose last scrape succeeded
  std::array<std::atomic<std::uint64_t>, kScrapeFailureCount> failures{};

  [[nodiscard]] std::uint64_t failed(ScrapeFailure f) const noexcept {
    return failures[static_cast<std::size_t>(f)].load(std::memory_order_relaxed);
  }
};

class PromScrapeSource {
 public:
  [[nodiscard]] static Result<std::unique_ptr<PromScrapeSource>> create(const PromScrapeConfig& config,
                                                                        const TargetFactory& targets);
  ~PromScrapeSource();
  PromScrapeSource(const PromScrapeSource&) = delete;
  PromScrapeSource& operator=(const PromScrapeSource&) = delete;

  // Starts one thread per target and returns; the first scrapes happen at once.
  Status start();
  // Stops scraping (an in-flight request ends within its timeout), commits and joins. Idempotent.
  void stop() noexcept;

  [[nodiscard]] const IngestStats& stats() const noexcept;
  [[nodiscard]] const ScrapeStats& scrape_stats() const noexcept;

  struct Impl;

 private:
  explicit PromScrapeSource(std::unique_ptr<Impl> impl) noexcept;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ringpipe::ingest
