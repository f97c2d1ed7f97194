#include "ringpipe/processors/config_adapter.hpp"

#include <algorithm>
#include <cstdint>

namespace ringpipe::processors {
namespace {

MatchType match_type(config::MatchType t) {
  return t == config::MatchType::kRegex ? MatchType::kRegex : MatchType::kGlob;
}

ObserverType observer_type(config::ObserverType t) {
  return t == config::ObserverType::kHistogram ? ObserverType::kHistogram : ObserverType::kSummary;
}

std::vector<QuantileSpec> quantiles(const std::vector<config::Quantile>& qs) {
  std::vector<QuantileSpec> out;
  out.reserve(qs.size());
  for (const config::Quantile& q : qs) out.push_back(QuantileSpec{q.quantile, q.error});
  return out;
}

}  // namespace

MappingConfig mapping_from_config(const config::MappingConfig& file, const config::MappingCacheOptions& cache) {
  MappingConfig out;
  const config::MappingDefaults& d = file.defaults;
  out.defaults.observer_type = observer_type(d.observer_type);
  out.defaults.match_type = match_type(d.match_type);
  out.defaults.glob_disable_ordering = d.glob_disable_ordering;
  out.defaults.ttl = d.ttl;
  if (!d.histogram_options.buckets.empty()) out.defaults.buckets = d.histogram_options.buckets;
  out.defaults.native_bucket_factor = d.histogram_options.native_histogram_bucket_factor;
  out.defaults.native_max_buckets = d.histogram_options.native_histogram_max_buckets;
  if (!d.summary_options.quantiles.empty()) out.defaults.quantiles = quantiles(d.summary_options.quantiles);
  if (d.summary_options.max_age.count() > 0) out.defaults.max_age = d.summary_options.max_age;
  if (d.summary_options.age_buckets > 0) out.defaults.age_buckets = d.summary_options.age_buckets;
  out.cache_size = cache.size;
  out.cache_random = cache.type == config::CacheType::kRandom;

  for (const config::MetricMapping& m : file.mappings) {
    MappingRule r;
    r.match = m.match;
    r.match_type = match_type(m.match_type);
    r.match_type_set = r.match_type;
    r.name = m.name;
    r.labels = m.labels;
    r.help = m.help;
    r.action = m.action == config::MappingAction::kDrop ? RuleAction::kDrop : RuleAction::kMap;
    if (m.match_metric_type) {
      switch (*m.match_metric_type) {
        case config::MetricType::kCounter:
          r.match_metric_type = MatchMetricType::kCounter;
          break;
        case config::MetricType::kGauge:
          r.match_metric_type = MatchMetricType::kGauge;
          break;
        case config::MetricType::kObserver:
          r.match_metric_type = MatchMetricType::kObserver;
          break;
      }
    }
    r.honor_labels = m.honor_labels;
    r.scale = m.scale;
    r.ttl = m.ttl;
    r.observer_type = observer_type(m.observer_type);
    r.buckets = m.histogram_options.buckets;
    r.native_bucket_factor = m.histogram_options.native_histogram_bucket_factor;
    r.native_max_buckets = m.histogram_options.native_histogram_max_buckets;
    r.quantiles = quantiles(m.summary_options.quantiles);
    if (m.summary_options.max_age.count() > 0) r.max_age = m.summary_options.max_age;
    if (m.summary_options.age_buckets > 0) r.age_buckets = m.summary_options.age_buckets;
    out.rules.push_back(std::move(r));
  }
  return out;
}

ProcessorOptions processor_options(const config::PipelineConfig& p, const config::ProcessorConfig& c) {
  ProcessorOptions o;
  if (c.mapping) {
    o.engine.mapping = mapping_from_config(*c.mapping, c.mapping_cache);
    // The processor's ttl applies where the mapping file sets none.
    if (o.engine.mapping.defaults.ttl.count() == 0) o.engine.mapping.defaults.ttl = c.ttl;
  } else {
    MappingDefaults& d = o.engine.mapping.defaults;
    d.observer_type = observer_type(c.observer_type);
    d.ttl = c.ttl;
    if (!c.histogram.buckets.empty()) d.buckets = c.histogram.buckets;
    d.native_bucket_factor = c.histogram.native_histogram_bucket_factor;
    d.native_max_buckets = c.histogram.native_histogram_max_buckets;
    if (!c.summary.quantiles.empty()) d.quantiles = quantiles(c.summary.quantiles);
    if (c.summary.max_age.count() > 0) d.max_age = c.summary.max_age;
    if (c.summary.age_buckets > 0) d.age_buckets = c.summary.age_buckets;
    o.engine.mapping.cache_size = c.mapping_cache.size;
    o.engine.mapping.cache_random = c.mapping_cache.type == config::CacheType::kRandom;
  }
  o.engine.shards = c.shards;
  o.engine.max_series = c.max_series == 0 ? SIZE_MAX : c.max_series;
  o.engine.max_series_per_metric = c.max_series_per_metric == 0 ? SIZE_MAX : c.max_series_per_metric;
  o.engine.max_families = static_cast<std::size_t>(c.max_metrics);
  o.engine.max_name_bytes = static_cast<std::size_t>(c.max_name_length);
  o.quarantine_after_crashes = c.quarantine_after_crashes;
  o.engine.weighted_sample_rate = c.weighted_sample_rate;
  if (const config::RingConfig* out = p.find_ring(c.output)) {
    // The ring's own limit: max_record, else a quarter of a lane.
    const std::uint64_t ring_max = out->max_record_bytes ? out->max_record_bytes : out->lane_capacity_bytes() / 4;
    o.engine.max_record_bytes = static_cast<std::size_t>(std::min<std::uint64_t>(o.engine.max_record_bytes, ring_max));
  }
  o.inputs = {p.ring_path(c.input)};
  o.reader_name = c.reader.empty() ? c.name : c.reader;
  o.output = p.ring_path(c.output);
  o.flush_interval = c.flush_interval;
  o.relay = c.type == config::ProcessorType::kRelay;
  if (c.state && !o.relay) o.state_dir = processor_state_dir(p, c);
  return o;
}

std::string processor_state_dir(const config::PipelineConfig& p, const config::ProcessorConfig& c) {
  return c.state_dir.empty() ? p.ring_path(c.name + ".state") : c.state_dir;
}

}  // namespace ringpipe::processors
