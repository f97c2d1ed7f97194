#pragma once
// The Prometheus exporter's own metrics, declared once. describe_self, the
// HTTP endpoint and the stats-segment describer serve them from this table,
// and the exporter registers the stats-segment ones from it too, so a name,
// type or help text is written in one place: the HELP line of /metrics and
// the help of the segment entry (read by `ringpipe stat`, and served by any
// exporter that serves this one's segment, into the same family) agree.
// Constants only.

#include <array>
#include <cstddef>
#include <string_view>

#include "ringpipe/stats/stats_segment.hpp"

namespace ringpipe::exporters {

enum class SelfMetricType { kCounter, kGauge, kHistogram };

// Where the exporter publishes a metric: on its own page, in its stats
// segment, or both.
enum class SelfMetricWhere { kPage, kSegment, kBoth };

// Index into kSelfMetrics.
enum class SelfMetricId : std::size_t {
  kRecords,
  kEntries,
  kDecodeErrors,
  kConflicts,
  kStaleRecords,
  kInstanceChanges,
  kSnapshots,
  kOtherRecords,
  kCollectErrors,
  kQuarantinedRecords,
  kRelabelDropped,
  kSeries,
  kFamilies,
  kReady,
  kProcessorSeries,
  kScrapeDuration,
  kScrapes,
  kScrapeSeconds,
  kHttpConnections,
  kHttpConnectionLimit,
  kHttpConnectionsTotal,
  kHttpIncompleteRequests,
  kHttpConnectionsAtLimit,
  kHttpRequests,
  kHttpResponseBytes,
  kHttpRenderSeconds,
  kRenderRewrites,
  kStatsSkipped,
  kStatsOpenFailures,
  kCount,
};

struct SelfMetric {
  SelfMetricId id;
  std::string_view name;  // as served, "ringpipe_..."
  SelfMetricType type;
  std::string_view help;
  SelfMetricWhere where;

  [[nodiscard]] constexpr bool on_page() const noexcept { return where != SelfMetricWhere::kSegment; }
  [[nodiscard]] constexpr bool in_segment() const noexcept { return where != SelfMetricWhere::kPage; }
  // A segment entry's name lacks the "ringpipe_" an exporter adds when it
  // serves the segment (stats/stats_segment.hpp).
  [[nodiscard]] constexpr std::string_view segment_name() const noexcept { return name.substr(9); }
};

inline constexpr std::array<SelfMetric, static_cast<std::size_t>(SelfMetricId::kCount)> kSelfMetrics{{
    // The state the reader loop builds (SeriesStateCounters, MetricsReaderLoop::Counters).
    {SelfMetricId::kRecords, "ringpipe_exporter_records_total", SelfMetricType::kCounter,
     "Metric-batch records applied to the state.", SelfMetricWhere::kBoth},
    {SelfMetricId::kEntries, "ringpipe_exporter_entries_total", SelfMetricType::kCounter,
     "Entries (series, expiries, markers) applied.", SelfMetricWhere::kBoth},
    {SelfMetricId::kDecodeErrors, "ringpipe_exporter_decode_errors_total", SelfMetricType::kCounter,
     "Malformed records or entries skipped.", SelfMetricWhere::kBoth},
    {SelfMetricId::kConflicts, "ringpipe_exporter_conflicts_total", SelfMetricType::kCounter,
     "Series entries not served because their name or type collides with a served family.", SelfMetricWhere::kBoth},
    {SelfMetricId::kStaleRecords, "ringpipe_exporter_stale_records_total", SelfMetricType::kCounter,
     "Records from a processor instance already replaced.", SelfMetricWhere::kBoth},
    {SelfMetricId::kInstanceChanges, "ringpipe_exporter_instance_changes_total", SelfMetricType::kCounter,
     "Processor restarts seen (instance id changes).", SelfMetricWhere::kPage},
    {SelfMetricId::kSnapshots, "ringpipe_exporter_snapshots_total", SelfMetricType::kCounter,
     "Complete shard snapshots applied.", SelfMetricWhere::kBoth},
    {SelfMetricId::kOtherRecords, "ringpipe_exporter_other_records_total", SelfMetricType::kCounter,
     "Records of another type in the input ring, ignored.", SelfMetricWhere::kPage},
    {SelfMetricId::kCollectErrors, "ringpipe_exporter_collect_errors_total", SelfMetricType::kCounter,
     "Scrapes that failed to collect (answered empty).", SelfMetricWhere::kBoth},
    {SelfMetricId::kQuarantinedRecords, "ringpipe_exporter_quarantined_records_total", SelfMetricType::kCounter,
     "Records skipped because the exporter died applying them repeatedly.", SelfMetricWhere::kBoth},
    {SelfMetricId::kRelabelDropped, "ringpipe_exporter_relabel_dropped_series_total", SelfMetricType::kCounter,
     "Series metric_relabel_configs dropped (a keep/drop rule, or no valid name left), each counted once.",
     SelfMetricWhere::kBoth},
    {SelfMetricId::kSeries, "ringpipe_exporter_series", SelfMetricType::kGauge, "Series currently served.",
     SelfMetricWhere::kBoth},
    {SelfMetricId::kFamilies, "ringpipe_exporter_families", SelfMetricType::kGauge,
     "Metric families known (served or conflicting).", SelfMetricWhere::kBoth},
    {SelfMetricId::kReady, "ringpipe_exporter_ready", SelfMetricType::kGauge,
     "1 once the state is complete (see /-/ready).", SelfMetricWhere::kPage},
    {SelfMetricId::kProcessorSeries, "ringpipe_processor_series", SelfMetricType::kGauge,
     "Live series per processor shard, as published into the metric ring.", SelfMetricWhere::kPage},
    // Scrapes: the page's histogram, the segment's running totals.
    {SelfMetricId::kScrapeDuration, "ringpipe_exporter_scrape_duration_seconds", SelfMetricType::kHistogram,
     "Time to collect one scrape: the pipeline's series written as text, the self-metrics collected.",
     SelfMetricWhere::kPage},
    {SelfMetricId::kScrapes, "ringpipe_exporter_scrapes_total", SelfMetricType::kCounter, "Scrapes answered.",
     SelfMetricWhere::kSegment},
    {SelfMetricId::kScrapeSeconds, "ringpipe_exporter_scrape_duration_seconds_total", SelfMetricType::kCounter,
     "Seconds spent collecting scrapes (the pipeline's series written as text, the self-metrics collected).",
     SelfMetricWhere::kSegment},
    // The HTTP endpoint (http_endpoint.cpp).
    {SelfMetricId::kHttpConnections, "ringpipe_exporter_http_connections", SelfMetricType::kGauge,
     "HTTP connections a worker holds (idle ones included).", SelfMetricWhere::kPage},
    {SelfMetricId::kHttpConnectionLimit, "ringpipe_exporter_http_connection_limit", SelfMetricType::kGauge,
     "HTTP worker threads: connections served at once; more wait in the accept queue.", SelfMetricWhere::kPage},
    {SelfMetricId::kHttpConnectionsTotal, "ringpipe_exporter_http_connections_total", SelfMetricType::kCounter,
     "HTTP connections taken by a worker.", SelfMetricWhere::kPage},
    {SelfMetricId::kHttpIncompleteRequests, "ringpipe_exporter_http_incomplete_requests_total",
     SelfMetricType::kCounter,
     "HTTP connections closed before a whole request header arrived (idle, slow or timed out).",
     SelfMetricWhere::kPage},
    {SelfMetricId::kHttpConnectionsAtLimit, "ringpipe_exporter_http_connections_at_limit_total",
     SelfMetricType::kCounter, "HTTP connections that took the last free worker (the next ones queued).",
     SelfMetricWhere::kPage},
    {SelfMetricId::kHttpRequests, "ringpipe_exporter_http_requests_total", SelfMetricType::kCounter,
     "HTTP requests answered, by path and status code.", SelfMetricWhere::kPage},
    {SelfMetricId::kHttpResponseBytes, "ringpipe_exporter_http_response_bytes_total", SelfMetricType::kCounter,
     "HTTP response body bytes sent (after compression), by path.", SelfMetricWhere::kPage},
    {SelfMetricId::kHttpRenderSeconds, "ringpipe_exporter_http_render_seconds", SelfMetricType::kHistogram,
     "Time to render one page, by step: text (collect and serialize, once per rendering), gzip (compress, "
     "at most once per rendering, when a scrape accepts gzip).",
     SelfMetricWhere::kPage},
    {SelfMetricId::kRenderRewrites, "ringpipe_exporter_render_rewrites_total", SelfMetricType::kCounter,
     "Text pages written a second time because a family of one series gained another during the render "
     "(no page names a family twice).",
     SelfMetricWhere::kPage},
    // Serving the components' stats segments (SegmentDescriber).
    {SelfMetricId::kStatsSkipped, "ringpipe_exporter_stats_skipped_total", SelfMetricType::kCounter,
     "Stats segment entries not served (malformed, duplicate or clashing).", SelfMetricWhere::kPage},
    {SelfMetricId::kStatsOpenFailures, "ringpipe_exporter_stats_open_failures_total", SelfMetricType::kCounter,
     "Stats segment files that could not be opened.", SelfMetricWhere::kPage},
}};

[[nodiscard]] constexpr const SelfMetric& self_metric(SelfMetricId id) noexcept {
  return kSelfMetrics[static_cast<std::size_t>(id)];
}

namespace detail {
// Checked at compile time: each entry sits at its id, names are unique and
// "ringpipe_", and what goes into the segment fits it as a counter or gauge.
consteval bool self_metric_table_ok() {
  for (std::size_t i = 0; i < kSelfMetrics.size(); ++i) {
    const SelfMetric& m = kSelfMetrics[i];
    if (static_cast<std::size_t>(m.id) != i || !m.name.starts_with("ringpipe_") || m.help.empty()) return false;
    if (m.in_segment() &&
        (m.type == SelfMetricType::kHistogram || m.segment_name().size() > stats::kStatsMaxNameBytes ||
         m.help.size() > stats::kStatsMaxHelpBytes)) {
      return false;
    }
    for (std::size_t j = 0; j < i; ++j) {
      if (kSelfMetrics[j].name == m.name) return false;
    }
  }
  return true;
}
}  // namespace detail
static_assert(detail::self_metric_table_ok(), "kSelfMetrics: an entry is out of place, repeated or unfit");

}  // namespace ringpipe::exporters
