#include "ringpipe/processors/stats_publisher.hpp"

#include <cmath>
#include <limits>
#include <string>
#include <system_error>

namespace ringpipe::processors {

namespace {

// A budget of SIZE_MAX means "none": +Inf keeps `series / budget` at 0 in alerts.
double budget_value(std::size_t v) {
  return v == SIZE_MAX ? std::numeric_limits<double>::infinity() : static_cast<double>(v);
}

}  // namespace

Result<std::unique_ptr<ProcessorStatsPublisher>> ProcessorStatsPublisher::create(stats::StatsSegment& segment,
                                                                                 const Processor& processor,
                                                                                 const EngineOptions& options) {
  auto p = std::unique_ptr<ProcessorStatsPublisher>(new ProcessorStatsPublisher(segment, processor));
  Status failed;
  auto counter = [&](std::uint64_t EngineStats::*field, std::string_view name, std::string_view help,
                     const stats::StatsLabels& labels = {}) {
    if (!failed) return;
    auto cell = segment.register_counter(name, help, labels);
    if (!cell) {
      failed = tl::unexpected(cell.error());
      return;
    }
    p->counters_.push_back({field, *cell, 0});
  };
  auto gauge = [&](std::string_view name, std::string_view help,
                   stats::StatsEncoding encoding = stats::StatsEncoding::kUnsigned) -> std::atomic<std::uint64_t>* {
    if (!failed) return nullptr;
    auto cell = segment.register_gauge(name, help, {}, encoding);
    if (!cell) {
      failed = tl::unexpected(cell.error());
      return nullptr;
    }
    return *cell;
  };

  counter(&EngineStats::samples, "processor_samples_total", "Samples read from the input rings.");
  counter(&EngineStats::samples_applied, "processor_samples_applied_total", "Samples that changed a series.");
  counter(&EngineStats::unmapped, "processor_unmapped_samples_total",
          "Samples no mapping rule matched (kept under their escaped name).");
  const std::string_view dropped_help = "Samples dropped, by reason.";
  counter(&EngineStats::dropped_conflict, "processor_dropped_samples_total", dropped_help,
          {{"reason", "type_conflict"}});
  counter(&EngineStats::dropped_cardinality, "processor_dropped_samples_total", dropped_help,
          {{"reason", "cardinality_budget"}});
  counter(&EngineStats::dropped_family_limit, "processor_dropped_samples_total", dropped_help,
          {{"reason", "family_limit"}});
  counter(&EngineStats::dropped_negative_counter, "processor_dropped_samples_total", dropped_help,
          {{"reason", "negative_counter"}});
  counter(&EngineStats::dropped_bad_value, "processor_dropped_samples_total", dropped_help,
          {{"reason", "bad_value"}});
  counter(&EngineStats::dropped_by_rule, "processor_dropped_samples_total", dropped_help,
          {{"reason", "mapping_drop"}});
  counter(&EngineStats::dropped_empty_name, "processor_dropped_samples_total", dropped_help,
          {{"reason", "empty_name"}});
  counter(&EngineStats::dropped_labels_too_long, "processor_dropped_samples_total", dropped_help,
          {{"reason", "labels_too_long"}});
  counter(&EngineStats::dropped_name_too_long, "processor_dropped_samples_total", dropped_help,
          {{"reason", "name_too_long"}});
  const std::string_view labels_help =
      "Labels removed from samples (the sample kept) because Prometheus would refuse the series, by reason.";
  counter(&EngineStats::labels_dropped_reserved, "processor_labels_dropped_total", labels_help,
          {{"reason", "reserved"}});
  counter(&EngineStats::labels_dropped_type_owned, "processor_labels_dropped_total", labels_help,
          {{"reason", "type_owned"}});
  counter(&EngineStats::labels_dropped_duplicate, "processor_labels_dropped_total", labels_help,
          {{"reason", "duplicate"}});
  counter(&EngineStats::labels_dropped_invalid, "processor_labels_dropped_total", labels_help, {{"reason", "invalid"}});
  counter(&EngineStats::decode_errors, "processor_decode_errors_total", "Malformed sample-batch records skipped.");
  counter(&EngineStats::set_members_over_limit, "processor_set_members_over_limit_total",
          "Set members counted but not stored (max_set_members per window).");
  counter(&EngineStats::mapping_cache_hits, "processor_mapping_cache_hits_total", "Mapping cache hits.");
  counter(&EngineStats::series_created, "processor_series_created_total", "Series created.");
  counter(&EngineStats::series_expired, "processor_series_expired_total", "Series expired by their TTL.");
  counter(&EngineStats::flushes, "processor_flushes_total", "Shard flushes into the output ring.");
  counter(&EngineStats::snapshots, "processor_snapshots_total", "Full snapshots written into the output ring.");
  counter(&EngineStats::records_written, "processor_records_written_total", "Metric-batch records written.");
  counter(&EngineStats::flush_stalls, "processor_flush_stalls_total",
          "Flushes cut short because the output ring had no space.");
  counter(&EngineStats::state_series_restored, "processor_state_series_restored_total",
          "Series restored from the state store at start.");
  counter(&EngineStats::state_series_dropped, "processor_state_series_dropped_total",
          "Stored series refused at start (corrupt, conflicting or over budget).");
  counter(&EngineStats::state_rejected, "processor_state_rejected_total",
          "State files refused at start (the shard started empty).");
  counter(&EngineStats::state_samples_skipped, "processor_state_samples_skipped_total",
          "Samples of records the state store had already applied (not counted twice).");
  counter(&EngineStats::state_full, "processor_state_full_total", "Times the state store ran out of series or undo space.");
  counter(&EngineStats::quarantined_records, "processor_quarantined_records_total",
          "Input records skipped because the processor died reading them repeatedly.");
  p->cache_misses_ = [&]() -> std::atomic<std::uint64_t>* {
    if (!failed) return nullptr;
    auto cell = segment.register_counter("processor_mapping_cache_misses_total", "Mapping cache misses.");
    if (!cell) {
      failed = tl::unexpected(cell.error());
      return nullptr;
    }
    return *cell;
  }();
  p->series_live_ = gauge("processor_series_live", "Live series of all shards.");
  p->state_bytes_ = gauge("processor_state_bytes", "Memory held by series state (approximate).");
  auto* max_series = gauge("processor_max_series", "Configured global series budget (max_series; +Inf: none).",
                           stats::StatsEncoding::kDouble);
  auto* max_per_metric =
      gauge("processor_max_series_per_metric",
            "Configured per-metric series budget (max_series_per_metric; +Inf: none).", stats::StatsEncoding::kDouble);
  auto* shards = gauge("processor_shards", "Aggregation shard threads.");
  if (!failed) return tl::unexpected(failed.error());
  stats::stats_store_double(*max_series, budget_value(options.max_series));
  stats::stats_store_double(*max_per_metric, budget_value(options.max_series_per_metric));
  shards->store(options.shards, std::memory_order_relaxed);
  p->publish();
  return p;
}

ProcessorStatsPublisher::~ProcessorStatsPublisher() { stop(); }

void ProcessorStatsPublisher::publish() noexcept {
  const EngineStats s = processor_.stats();
  for (Link& l : counters_) {
    const std::uint64_t now = s.*l.field;
    // A counter that went down (cannot happen within one process) is not subtracted.
    if (now > l.last) l.to->fetch_add(now - l.last, std::memory_order_relaxed);
    l.last = now;
  }
  const std::uint64_t misses = s.mapping_lookups > s.mapping_cache_hits ? s.mapping_lookups - s.mapping_cache_hits : 0;
  if (misses > last_misses_) cache_misses_->fetch_add(misses - last_misses_, std::memory_order_relaxed);
  last_misses_ = misses;
  series_live_->store(s.series_live, std::memory_order_relaxed);
  state_bytes_->store(s.state_bytes, std::memory_order_relaxed);
  segment_.heartbeat();
}

Status ProcessorStatsPublisher::start(std::chrono::milliseconds interval) {
  if (thread_.joinable()) return {};
  stop_ = false;
  try {
    thread_ = std::thread([this, interval] {
      std::unique_lock lock(mu_);
      while (!cv_.wait_for(lock, interval, [&] { return stop_; })) {
        lock.unlock();
        publish();
        lock.lock();
      }
    });
  } catch (const std::system_error& e) {
    return tl::unexpected(Error{e.code(), "processor stats: thread"});
  }
  return {};
}

void ProcessorStatsPublisher::stop() noexcept {
  if (!thread_.joinable()) return;
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
  publish();
}

}  // namespace ringpipe::processors
