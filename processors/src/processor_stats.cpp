#include "ringpipe/processors/processor_stats.hpp"

#include <atomic>
#include <cstdint>
#include <deque>
#include <limits>
#include <string_view>
#include <vector>

namespace ringpipe::processors {

namespace {

// A budget of SIZE_MAX means "none": +Inf keeps `series / budget` at 0 in alerts.
double budget_value(std::size_t v) {
  return v == SIZE_MAX ? std::numeric_limits<double>::infinity() : static_cast<double>(v);
}

// EngineStats holds plain counters (a sum over the processor's threads);
// each publish first copies the processor's current ones into these atomics,
// which the publisher mirrors.
struct Snapshot {
  std::vector<std::uint64_t EngineStats::*> fields;
  std::deque<std::atomic<std::uint64_t>> counters;  // counters[i] holds fields[i]
  std::atomic<std::uint64_t> cache_misses{0};
  std::atomic<std::uint64_t> series_live{0};
  std::atomic<std::uint64_t> state_bytes{0};

  void take(const EngineStats& s) noexcept {
    for (std::size_t i = 0; i < fields.size(); ++i) counters[i].store(s.*fields[i], std::memory_order_relaxed);
    const std::uint64_t misses =
        s.mapping_lookups > s.mapping_cache_hits ? s.mapping_lookups - s.mapping_cache_hits : 0;
    cache_misses.store(misses, std::memory_order_relaxed);
    series_live.store(s.series_live, std::memory_order_relaxed);
    state_bytes.store(s.state_bytes, std::memory_order_relaxed);
  }
};

}  // namespace

Result<std::unique_ptr<stats::Publisher>> create_processor_publisher(stats::StatsSegment& segment,
                                                                     const Processor& processor,
                                                                     const EngineOptions& options) {
  auto snapshot = std::make_shared<Snapshot>();
  // The publisher owns the snapshot through its refresh: the links below point into it.
  auto p = std::make_unique<stats::Publisher>(segment, [snapshot, &processor] { snapshot->take(processor.stats()); });
  Status failed;
  auto counter = [&](std::uint64_t EngineStats::*field, std::string_view name, std::string_view help,
                     const stats::StatsLabels& labels = {}) {
    if (!failed) return;
    snapshot->fields.push_back(field);
    failed = p->add_counter(snapshot->counters.emplace_back(0), name, help, labels);
  };
  // The configured budgets and shards: written once, here.
  auto fixed_gauge = [&](std::string_view name, std::string_view help,
                         stats::StatsEncoding encoding = stats::StatsEncoding::kUnsigned) {
    std::atomic<std::uint64_t>* cell = nullptr;
    if (!failed) return cell;
    auto registered = segment.register_gauge(name, help, {}, encoding);
    if (registered) {
      cell = *registered;
    } else {
      failed = tl::unexpected(registered.error());
    }
    return cell;
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
  counter(&EngineStats::dropped_bad_value, "processor_dropped_samples_total", dropped_help, {{"reason", "bad_value"}});
  counter(&EngineStats::dropped_by_rule, "processor_dropped_samples_total", dropped_help, {{"reason", "mapping_drop"}});
  counter(&EngineStats::dropped_empty_name, "processor_dropped_samples_total", dropped_help,
          {{"reason", "empty_name"}});
  counter(&EngineStats::dropped_labels_too_long, "processor_dropped_samples_total", dropped_help,
          {{"reason", "labels_too_long"}});
  counter(&EngineStats::dropped_name_too_long, "processor_dropped_samples_total", dropped_help,
          {{"reason", "name_too_long"}});
  counter(&EngineStats::dropped_not_relayable, "processor_dropped_samples_total", dropped_help,
          {{"reason", "not_relayable"}});
  counter(&EngineStats::dropped_native_too_large, "processor_dropped_samples_total", dropped_help,
          {{"reason", "native_histogram_too_large"}});
  counter(&EngineStats::dropped_native_renamed, "processor_dropped_samples_total", dropped_help,
          {{"reason", "native_histogram_renamed"}});
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
          "Flushes whose changes the output ring had no space for within a flush interval, and snapshots it "
          "had no space for.");
  counter(&EngineStats::state_series_restored, "processor_state_series_restored_total",
          "Series restored from the state store at start.");
  counter(&EngineStats::state_series_dropped, "processor_state_series_dropped_total",
          "Stored series refused at start (corrupt, conflicting or over budget).");
  counter(&EngineStats::state_rejected, "processor_state_rejected_total",
          "State files refused at start (the shard started empty).");
  counter(&EngineStats::state_samples_skipped, "processor_state_samples_skipped_total",
          "Samples of records the state store had already applied (not counted twice).");
  counter(&EngineStats::state_full, "processor_state_full_total",
          "Times the state store ran out of series or undo space.");
  counter(&EngineStats::quarantined_records, "processor_quarantined_records_total",
          "Input records skipped because the processor died reading them repeatedly.");
  if (failed) {
    failed = p->add_counter(snapshot->cache_misses, "processor_mapping_cache_misses_total", "Mapping cache misses.");
  }
  if (failed) {
    failed = p->add_gauge(snapshot->series_live, "processor_series_live", "Live series of all shards.", {},
                          stats::GaugeCopy::kValue);
  }
  if (failed) {
    failed = p->add_gauge(snapshot->state_bytes, "processor_state_bytes", "Memory held by series state (approximate).",
                          {}, stats::GaugeCopy::kValue);
  }
  auto* max_series = fixed_gauge("processor_max_series", "Configured global series budget (max_series; +Inf: none).",
                                 stats::StatsEncoding::kDouble);
  auto* max_per_metric = fixed_gauge("processor_max_series_per_metric",
                                     "Configured per-metric series budget (max_series_per_metric; +Inf: none).",
                                     stats::StatsEncoding::kDouble);
  auto* shards = fixed_gauge("processor_shards", "Aggregation shard threads.");
  if (!failed) return tl::unexpected(failed.error());
  stats::stats_store_double(*max_series, budget_value(options.max_series));
  stats::stats_store_double(*max_per_metric, budget_value(options.max_series_per_metric));
  shards->store(options.shards, std::memory_order_relaxed);
  p->publish();
  return p;
}

}  // namespace ringpipe::processors
