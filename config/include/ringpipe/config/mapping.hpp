#pragma once
// The metric mapping file of Prometheus' statsd_exporter, accepted as-is, so
// its users switch without rewriting their mappings:
//
//   defaults:                      # all optional
//     observer_type: summary       # summary | histogram (timer_type: deprecated alias)
//     match_type: glob             # glob | regex
//     glob_disable_ordering: false
//     ttl: 0                       # Go duration ("1m20s") or integer nanoseconds; 0 = never expire
//     summary_options: {quantiles: [{quantile: 0.5, error: 0.05}], max_age: 10m, age_buckets: 5, buf_cap: 500}
//     histogram_options: {buckets: [...], native_histogram_bucket_factor: 1.1, native_histogram_max_buckets: 160}
//     buckets: [...]               # deprecated: histogram_options.buckets
//     quantiles: [...]             # deprecated: summary_options.quantiles
//   mappings:
//   - match: "test.dispatcher.*.*.*"     # glob: '*' matches one dot-separated component
//     name: "dispatcher_events_total"    # may hold $1 / ${1}
//     labels: {processor: "$1", job: "test_dispatcher"}
//     ...                                # see MetricMapping
//
// This header only models the file; matching lives in processors/. Loading
// resolves every default the way statsd_exporter does, so a MetricMapping is
// complete on its own. Every value here is plain data: safe to share
// read-only between threads. Loading never throws; it returns every problem
// found, each as "file:line:column: found ..., expected ...".

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "ringpipe/config/diagnostic.hpp"

namespace ringpipe::config {

// How `match` is interpreted.
enum class MatchType : std::uint8_t {
  kGlob,   // dot-separated components, '*' = one whole component; captures are $1..$n
  kRegex,  // RE2/Go syntax, unanchored (statsd_exporter uses FindStringSubmatchIndex); $n / ${n} are groups
};

// What a matching rule does.
enum class MappingAction : std::uint8_t {
  kMap,   // rename and label the metric (the default)
  kDrop,  // discard the sample; counted, never exported
};

// StatsD sample kinds a rule may be restricted to (`match_metric_type`).
enum class MetricType : std::uint8_t {
  kCounter,   // "counter"
  kGauge,     // "gauge"
  kObserver,  // "observer", or the deprecated "timer": timers (ms), histograms (h), distributions (d)
};

// How observations (timers, histograms, distributions) are exported.
enum class ObserverType : std::uint8_t {
  kSummary,    // "summary" (statsd_exporter's default)
  kHistogram,  // "histogram": classic buckets, plus native buckets when a bucket factor is set
};

// Mapping-cache replacement policy (statsd_exporter's --statsd.cache-type).
enum class CacheType : std::uint8_t {
  kLru,     // "lru" (default)
  kRandom,  // "random"
};

[[nodiscard]] std::string_view metric_type_name(MetricType t) noexcept;
[[nodiscard]] std::string_view observer_type_name(ObserverType t) noexcept;
[[nodiscard]] std::string_view cache_type_name(CacheType t) noexcept;

// One summary objective: estimate `quantile` (0..1) within +/- `error`.
struct Quantile {
  double quantile = 0;
  double error = 0;
  friend bool operator==(const Quantile&, const Quantile&) = default;
};

// statsd_exporter's defaults (client_golang's summary objectives and DefBuckets).
inline constexpr Quantile kDefaultQuantiles[] = {{0.5, 0.05}, {0.9, 0.01}, {0.99, 0.001}};
inline constexpr double kDefaultBuckets[] = {.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10};
inline constexpr std::chrono::seconds kDefaultSummaryMaxAge{600};  // client_golang DefMaxAge
inline constexpr std::uint32_t kDefaultSummaryAgeBuckets = 5;      // client_golang DefAgeBuckets
inline constexpr std::uint32_t kDefaultSummaryBufCap = 500;        // client_golang DefBufCap
inline constexpr std::size_t kDefaultMappingCacheSize = 1000;      // --statsd.cache-size

// `summary_options`: how a summary's sliding window is kept. After loading,
// zero max_age/age_buckets/buf_cap still mean "client default" (the k* values above).
struct SummaryOptions {
  std::vector<Quantile> quantiles;      // after loading: never empty in a MetricMapping
  std::chrono::nanoseconds max_age{0};  // 0 = kDefaultSummaryMaxAge
  std::uint32_t age_buckets = 0;        // 0 = kDefaultSummaryAgeBuckets
  std::uint32_t buf_cap = 0;            // 0 = kDefaultSummaryBufCap
  friend bool operator==(const SummaryOptions&, const SummaryOptions&) = default;
};

// `histogram_options`: classic upper bounds (+Inf is implicit) and Prometheus
// native (sparse exponential) histograms.
struct HistogramOptions {
  std::vector<double> buckets;                     // strictly increasing; after loading: never empty in a MetricMapping
  double native_histogram_bucket_factor = 0;       // 0 = no native buckets; else > 1 (growth per bucket, e.g. 1.1)
  std::uint32_t native_histogram_max_buckets = 0;  // 0 = unlimited
  friend bool operator==(const HistogramOptions&, const HistogramOptions&) = default;
};

// `defaults:`: values every mapping inherits unless it sets its own. After
// loading, the deprecated `timer_type`, `buckets` and `quantiles` are folded
// into observer_type / histogram_options / summary_options, and empty
// quantiles/buckets hold kDefaultQuantiles/kDefaultBuckets.
struct MappingDefaults {
  ObserverType observer_type = ObserverType::kSummary;
  MatchType match_type = MatchType::kGlob;
  // Glob rules normally win in file order; true makes a literal component
  // always beat '*' regardless of order (statsd_exporter's FSM without ordering).
  bool glob_disable_ordering = false;
  std::chrono::nanoseconds ttl{0};  // 0 = series never expire
  SummaryOptions summary_options;
  HistogramOptions histogram_options;
  friend bool operator==(const MappingDefaults&, const MappingDefaults&) = default;
};

// One `mappings:` entry, with every default already resolved. The matcher
// needs nothing else: rules are tried in file order (see MappingConfig).
struct MetricMapping {
  std::string match;  // glob ("a.*.c") or regex, as written
  MatchType match_type = MatchType::kGlob;
  // Prometheus name; may reference captures as $1 or ${1} (${1}_total).
  // As in Go's Regexp.Expand (which statsd_exporter uses), "$1_x" names the
  // capture "1_x", which does not exist and expands to "": write "${1}_x".
  // Empty only for `action: drop` rules written without a name.
  std::string name;
  // Label name -> value template ($n/${n} references captures), in file
  // order. A reference past the last capture expands to "".
  std::vector<std::pair<std::string, std::string>> labels;
  // true: labels carried by the sample (tags) override the mapping's labels
  // of the same name; false: the mapping's labels win.
  bool honor_labels = false;
  std::string help;  // empty = the exporter's generic help text
  MappingAction action = MappingAction::kMap;
  std::optional<MetricType> match_metric_type;          // nullopt = any kind
  ObserverType observer_type = ObserverType::kSummary;  // from the rule, else defaults
  SummaryOptions summary_options;                       // used when observer_type is kSummary
  HistogramOptions histogram_options;                   // used when observer_type is kHistogram
  // Multiplies observed values (after the ms -> s conversion of timers);
  // nullopt = not set (no scaling).
  std::optional<double> scale;
  std::chrono::nanoseconds ttl{0};  // from the rule, else defaults.ttl; 0 = never expire
  WrittenAt position;               // where the entry starts (its "- match:" line)
  friend bool operator==(const MetricMapping&, const MetricMapping&) = default;
};

// A whole mapping file. The first matching rule wins: glob rules in file
// order (or most-specific-first with glob_disable_ordering), and glob rules
// are tried before regex rules, as statsd_exporter does.
struct MappingConfig {
  MappingDefaults defaults;
  std::vector<MetricMapping> mappings;
  std::string path;  // the file it came from ("" when parsed from text)
  friend bool operator==(const MappingConfig&, const MappingConfig&) = default;
};

// Mapping-cache settings. Not part of statsd_exporter's mapping file (there
// they are the --statsd.cache-size/--statsd.cache-type flags); a processor
// carries them in its own config.
struct MappingCacheOptions {
  std::size_t size = kDefaultMappingCacheSize;  // entries; 0 = no cache
  CacheType type = CacheType::kLru;
  friend bool operator==(const MappingCacheOptions&, const MappingCacheOptions&) = default;
};

// Parses a mapping file's text. `filename` only labels the diagnostics.
// Validates as statsd_exporter does, and reports every problem at once:
// unknown keys, wrong types, a missing `match` or `name`, an invalid glob
// (e.g. "a.*." or "bad--metric-line.*"), a regex that does not compile, an
// invalid metric or label name, bad enum values, conflicting legacy and new
// options, summary_options with a histogram observer and vice versa.
[[nodiscard]] ConfigResult<MappingConfig> parse_mapping_yaml(std::string_view text, std::string_view filename);

// Reads and parses a mapping file; an unreadable file is one diagnostic.
[[nodiscard]] ConfigResult<MappingConfig> load_mapping_file(const std::string& path);

}  // namespace ringpipe::config
