#include "ringpipe/exporters/prometheus_exporter.hpp"

#include <algorithm>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <prometheus/text_serializer.h>

#include "http_endpoint.hpp"
#include "metrics_reader_loop.hpp"
#include "name_set.hpp"
#include "ringpipe/common/log.hpp"
#include "ringpipe/stats/publisher.hpp"
#include "self_metrics.hpp"
#include "series_state.hpp"

namespace ringpipe::exporters {
namespace {

using namespace std::chrono_literals;

// How often the exporter's own counters reach its stats segment (every scrape publishes too).
constexpr std::chrono::milliseconds kOwnStatsInterval = 1s;

// Removes the pipeline families (out[0, pipeline)) whose name a self-metric
// family (out[pipeline, end)) also serves, or whose name is
// one of their _sum/_count/_bucket series: one exposition may not name a
// family twice, which happens when a pipeline scrapes another ringpipe.
// Returns the series removed.
std::uint64_t drop_pipeline_families_named_like_ours(std::vector<prometheus::MetricFamily>& out, std::size_t pipeline) {
  std::vector<std::string_view> self;
  for (std::size_t i = pipeline; i < out.size(); ++i) self.emplace_back(out[i].name);
  const detail::NameSet ours = detail::NameSet::owned_by(self);
  std::uint64_t dropped = 0;
  std::size_t kept = 0;
  for (std::size_t i = 0; i < out.size(); ++i) {
    if (i < pipeline && ours.contains(out[i].name)) {
      dropped += out[i].metric.size();
      continue;
    }
    if (kept != i) out[kept] = std::move(out[i]);
    ++kept;
  }
  out.resize(kept);
  return dropped;
}

}  // namespace

struct PrometheusExporter::Impl : PageSource {
  PrometheusExporterOptions options;
  SeriesState state;
  std::unique_ptr<MetricsReaderLoop> loop;  // applies the ring's records to `state`
  std::unique_ptr<RingDescriber> rings;
  std::unique_ptr<SegmentDescriber> segments;
  // Own stats segment: scrape cells updated in Collect, the rest mirrored by own_publisher.
  std::unique_ptr<stats::StatsSegment> own;
  std::atomic<std::uint64_t>* own_scrapes = nullptr;
  std::atomic<std::uint64_t>* own_scrape_seconds = nullptr;
  mutable DurationHistogram durations;
  mutable std::atomic<std::uint64_t> collect_errors{0};
  mutable std::atomic<std::uint64_t> self_name_conflicts{0};  // series dropped for a self-metric's name
  bool started = false;
  // After what it mirrors, so it goes first.
  std::unique_ptr<stats::Publisher> own_publisher;
  // Last: it serves from the members above, so it stops first.
  std::unique_ptr<HttpEndpoint> http;

  std::vector<prometheus::MetricFamily> Collect() const override { return collect_families(nullptr); }

  // The page as delimited protobuf: Collect()'s families, with the native
  // histograms prometheus-cpp has no place for.
  std::string render_protobuf_page() override {
    protobuf::NativeIndex natives;
    const std::vector<prometheus::MetricFamily> families = collect_families(&natives);
    std::string out;
    try {
      protobuf::append_families(out, families, natives);
    } catch (...) {
      collect_errors.fetch_add(1, std::memory_order_relaxed);
      out.clear();
    }
    return out;
  }

  std::vector<prometheus::MetricFamily> collect_families(protobuf::NativeIndex* natives) const {
    std::vector<prometheus::MetricFamily> out;
    try {
      const std::int64_t t0 = monotonic_ns();
      state.collect(out, natives);
      const std::size_t pipeline = out.size();
      FamilyBuilder b;
      rings->describe(b);
      segments->describe(b);
      describe_self(b);
      b.take(out);
      self_name_conflicts.fetch_add(drop_pipeline_families_named_like_ours(out, pipeline), std::memory_order_relaxed);
      const double seconds = static_cast<double>(monotonic_ns() - t0) * 1e-9;
      durations.observe(seconds);
      if (own) {
        stats::stats_add_double(*own_scrape_seconds, seconds);
        own_publisher->publish();
      }
    } catch (...) {
      collect_errors.fetch_add(1, std::memory_order_relaxed);
      out.clear();
    }
    return out;
  }

  // The pipeline's families written by SeriesState::render, then the
  // self-metrics through prometheus-cpp: the text TextSerializer makes of
  // Collect(), without a MetricFamily per pipeline series.
  std::string render_page() override {
    if (options.render_with_prometheus_cpp) return PageSource::render_page();
    std::string page;
    try {
      const std::int64_t t0 = monotonic_ns();
      // The rings and the other components' segments before the walk, for
      // the names the walk must leave out; this exporter's own counters
      // after it, so a page that shows a record's series counts that record.
      FamilyBuilder b;
      rings->describe(b);
      segments->describe(b);
      // One exposition may not name a family twice (a pipeline scraping
      // another ringpipe): ours win, with their _sum/_count/_bucket names.
      // Looked up once per pipeline family (1M at 1M series): by view, no
      // string made per lookup, and no hash for a name whose first 8 bytes
      // none of ours starts with (name_set.hpp).
      std::vector<std::string_view> bases = b.names();
      for (const SelfMetric& m : kSelfMetrics) {
        if (m.on_page()) bases.push_back(m.name);
      }
      const detail::NameSet ours = detail::NameSet::owned_by(bases);
      const std::uint64_t dropped = state.render(page, [&](std::string_view name) { return ours.contains(name); });
      self_name_conflicts.fetch_add(dropped, std::memory_order_relaxed);
      describe_self(b);
      std::vector<prometheus::MetricFamily> self;
      b.take(self);
      const double seconds = static_cast<double>(monotonic_ns() - t0) * 1e-9;
      durations.observe(seconds);
      if (own) {
        stats::stats_add_double(*own_scrape_seconds, seconds);
        own_publisher->publish();
      }
      page += prometheus::TextSerializer().Serialize(self);
    } catch (...) {
      collect_errors.fetch_add(1, std::memory_order_relaxed);
      page.clear();
    }
    return page;
  }

  void describe_self(FamilyBuilder& b) const {
    using enum SelfMetricId;
    const SeriesStateCounters& c = state.counters();
    auto ld = [](const std::atomic<std::uint64_t>& a) {
      return static_cast<double>(a.load(std::memory_order_relaxed));
    };
    b.sample(self_metric(kRecords), {}, ld(c.records));
    b.sample(self_metric(kEntries), {}, ld(c.entries));
    b.sample(self_metric(kDecodeErrors), {}, ld(c.decode_errors));
    b.sample(self_metric(kConflicts), {}, ld(c.conflicts) + ld(self_name_conflicts));
    b.sample(self_metric(kStaleRecords), {}, ld(c.stale_records));
    b.sample(self_metric(kInstanceChanges), {}, ld(c.instance_changes));
    b.sample(self_metric(kSnapshots), {}, ld(c.snapshots));
    b.sample(self_metric(kOtherRecords), {}, ld(loop->counters().other_records));
    b.sample(self_metric(kCollectErrors), {}, ld(collect_errors));
    b.sample(self_metric(kQuarantinedRecords), {}, ld(loop->counters().quarantined));
    b.sample(self_metric(kRelabelDropped), {}, ld(c.relabel_dropped));
    b.sample(self_metric(kRenderRewrites), {}, ld(c.render_rewrites));
    b.sample(self_metric(kSeries), {}, ld(c.series));
    b.sample(self_metric(kFamilies), {}, ld(c.families));
    b.sample(self_metric(kReady), {}, loop->ready() ? 1 : 0);
    const auto per_shard = state.series_per_processor_shard();
    for (std::size_t i = 0; i < per_shard.size(); ++i) {
      b.sample(self_metric(kProcessorSeries), {{"shard", std::to_string(i)}}, static_cast<double>(per_shard[i]));
    }
    durations.describe(b, self_metric(kScrapeDuration));
    http->describe(b);
  }

  bool ready() const noexcept override { return loop->ready(); }

  void page_served() noexcept override {
    if (own) own_scrapes->fetch_add(1, std::memory_order_relaxed);
  }

  void serve_failed() noexcept override { collect_errors.fetch_add(1, std::memory_order_relaxed); }

  Status open_own_segment(const PrometheusExporterOptions& o) {
    if (o.stats_path.empty()) return {};
    auto seg = stats::StatsSegment::create(o.stats_path, o.component, "exporter");
    if (!seg) return tl::unexpected(seg.error());
    seg->reset_gauges();
    own = std::make_unique<stats::StatsSegment>(std::move(*seg));
    Status failed;
    // Every entry is registered as kSelfMetrics declares it, so the segment's
    // help texts are the page's.
    auto reg = [&](SelfMetricId id,
                   stats::StatsEncoding enc = stats::StatsEncoding::kUnsigned) -> std::atomic<std::uint64_t>* {
      if (!failed) return nullptr;
      const SelfMetric& m = self_metric(id);
      auto cell = m.type == SelfMetricType::kCounter ? own->register_counter(m.segment_name(), m.help, {}, enc)
                                                     : own->register_gauge(m.segment_name(), m.help, {}, enc);
      if (!cell) {
        failed = tl::unexpected(cell.error());
        return nullptr;
      }
      return *cell;
    };
    using enum SelfMetricId;
    own_scrapes = reg(kScrapes);
    own_scrape_seconds = reg(kScrapeSeconds, stats::StatsEncoding::kDouble);
    if (!failed) return failed;
    own_publisher = std::make_unique<stats::Publisher>(*own);
    const SeriesStateCounters& c = state.counters();
    const std::pair<SelfMetricId, const std::atomic<std::uint64_t>*> mirrored[] = {
        {kRecords, &c.records},
        {kEntries, &c.entries},
        {kDecodeErrors, &c.decode_errors},
        {kConflicts, &c.conflicts},
        {kStaleRecords, &c.stale_records},
        {kSnapshots, &c.snapshots},
        {kCollectErrors, &collect_errors},
        {kQuarantinedRecords, &loop->counters().quarantined},
        {kRelabelDropped, &c.relabel_dropped},
        {kSeries, &c.series},
        {kFamilies, &c.families},
    };
    for (const auto& [id, from] : mirrored) {
      const SelfMetric& m = self_metric(id);
      // Gauges move by their change: from reset_gauges() above, that is their value.
      Status added = m.type == SelfMetricType::kCounter ? own_publisher->add_counter(*from, m.segment_name(), m.help)
                                                        : own_publisher->add_gauge(*from, m.segment_name(), m.help);
      if (!added) return added;
    }
    own_publisher->publish();
    return {};
  }

  ~Impl() override {
    // Joins the server threads while `http` still points at the endpoint: a
    // render in progress reads its counters at its end (describe_self).
    if (http) http->stop();
    http.reset();
  }
};

Result<std::unique_ptr<PrometheusExporter>> PrometheusExporter::create(PrometheusExporterOptions options) {
  const std::string what = "prometheus exporter: ";
  if (options.path.empty() || options.path.front() != '/') return invalid(what + "path must start with '/'");
  if (options.path.rfind("/-/", 0) == 0) return invalid(what + "path " + options.path + " is reserved");
  auto hp = split_listen(options.listen);
  if (!hp) return invalid(what + hp.error().message());
  auto impl = std::make_unique<Impl>();
  impl->state.set_relabel(options.relabel);
  impl->state.set_relay_ttl(options.relay_ttl);
  auto loop = MetricsReaderLoop::attach(options, impl->state);
  if (!loop) return tl::unexpected(loop.error());
  impl->loop = std::move(*loop);

  std::vector<std::string> described{options.input};
  for (const std::string& p : options.describe_rings) {
    if (!p.empty() && std::find(described.begin(), described.end(), p) == described.end()) described.push_back(p);
  }
  impl->rings = std::make_unique<RingDescriber>(std::move(described));
  impl->segments = std::make_unique<SegmentDescriber>(options.stats_dir, options.stats_path);
  if (Status own = impl->open_own_segment(options); !own) {
    return tl::unexpected(Error{own.error().code, what + "stats: " + own.error().context});
  }

  impl->options = options;
  impl->http = std::make_unique<HttpEndpoint>(options, *impl);
  if (Status listening = impl->http->listen(hp->first, hp->second); !listening)
    return tl::unexpected(listening.error());
  spdlog::info("prometheus exporter: serving {} on port {} (ring {}, reader {}){}{}", impl->options.path,
               impl->http->port(), impl->options.input, impl->options.reader_name, impl->options.tls ? ", TLS" : "",
               impl->options.basic_auth_users.empty() ? "" : ", basic auth");
  return std::unique_ptr<PrometheusExporter>(new PrometheusExporter(std::move(impl)));
}

PrometheusExporter::PrometheusExporter(std::unique_ptr<Impl> impl) noexcept : impl_(std::move(impl)) {}

PrometheusExporter::~PrometheusExporter() {
  stop();
  if (impl_) impl_->loop->close_journal();  // also when never started
}

Status PrometheusExporter::start() {
  if (impl_->started) return {};
  if (impl_->options.request_resync) {
    if (Status resync = impl_->loop->request_resync(); !resync) return resync;
  }
  if (impl_->own_publisher) {
    if (Status publishing = impl_->own_publisher->start(kOwnStatsInterval); !publishing) {
      return tl::unexpected(Error{publishing.error().code, "prometheus exporter: " + publishing.error().context});
    }
  }
  if (Status loop = impl_->loop->start(); !loop) {
    if (impl_->own_publisher) impl_->own_publisher->stop();
    return loop;
  }
  impl_->started = true;
  return {};
}

void PrometheusExporter::stop() noexcept {
  if (!impl_ || !impl_->started) return;
  impl_->loop->stop();
  if (impl_->own_publisher) impl_->own_publisher->stop();  // exact totals at stop
  impl_->started = false;
  impl_->loop->close_journal();
}

std::uint16_t PrometheusExporter::port() const noexcept { return impl_->http->port(); }

bool PrometheusExporter::ready() const noexcept { return impl_->loop->ready(); }

PrometheusExporterStats PrometheusExporter::stats() const noexcept {
  const SeriesStateCounters& c = impl_->state.counters();
  PrometheusExporterStats s;
  s.records = c.records.load(std::memory_order_relaxed);
  s.entries = c.entries.load(std::memory_order_relaxed);
  s.decode_errors = c.decode_errors.load(std::memory_order_relaxed);
  s.conflicts = c.conflicts.load(std::memory_order_relaxed);
  s.stale_records = c.stale_records.load(std::memory_order_relaxed);
  s.instance_changes = c.instance_changes.load(std::memory_order_relaxed);
  s.snapshots = c.snapshots.load(std::memory_order_relaxed);
  s.series = c.series.load(std::memory_order_relaxed);
  s.families = c.families.load(std::memory_order_relaxed);
  s.relabel_dropped = c.relabel_dropped.load(std::memory_order_relaxed);
  s.scrapes = impl_->http->pages_served();
  try {
    s.renders = impl_->durations.count();
  } catch (...) {
  }
  const HttpCounters& http = impl_->http->counters();
  s.http_connections_open = http.open.load(std::memory_order_relaxed);
  s.http_connections = http.connections.load(std::memory_order_relaxed);
  s.http_incomplete_requests = http.incomplete.load(std::memory_order_relaxed);
  s.http_connections_at_limit = http.at_limit.load(std::memory_order_relaxed);
  return s;
}

}  // namespace ringpipe::exporters
