#include "ringpipe/processors/config_adapter.hpp"

namespace ringpipe::processors {
namespace {

MatchType match_type(config::MatchType t) { return t == config::MatchType::kRegex ? MatchType::kRegex : MatchType::kGlob; }

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
  if (!d.summary_options.quantiles.empty()) out.defaults.quantiles = quantiles(d.summary_options.quantiles);
  if (d.summary_options.max_age.count() > 0) out.defaults.max_age = d.summary_options.max_age;
  if (d.summary_options.age_buckets > 0) out.defaults.age_buckets = d.summary_options.age_buckets;
  out.cache_size = cache.size;

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
        case config::MetricType::kCounter: r.match_metric_type = MatchMetricType::kCounter; break;
        case config::MetricType::kGauge: r.match_metric_type = MatchMetricType::kGauge; break;
        case config::MetricType::kObserver: r.match_metric_type = MatchMetricType::kObserver; break;
      }
    }
    r.honor_labels = m.honor_labels;
    r.scale = m.scale;
    r.ttl = m.ttl;
    r.observer_type = observer_type(m.observer_type);
    r.buckets = m.histogram_options.buckets;
    r.quantiles = quantiles(m.summary_options.quantiles);
    if (m.summary_options.max_age.count() > 0) r.max_age = m.summary_options.max_age;
    if (m.summary_options.age_buckets > 0) r.age_buckets = m.summary_options.age_buckets;
    out.rules.push_back(std::move(r));
  }
  return out;
}

}  // namespace ringpipe::processors
