#pragma once
// The statsd_exporter mapping language as the processors use it: rules
// (glob or regex), their defaults, and the Matcher that applies them to a
// metric name with a bounded LRU cache. MappingConfig is a plain value;
// Matcher is built once by Matcher::create() and then used by one thread
// (each reader thread owns its own Matcher: the cache is not shared).

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "ringpipe/common/result.hpp"

namespace ringpipe::processors {

enum class MatchType : std::uint8_t { kGlob, kRegex };
enum class RuleAction : std::uint8_t { kMap, kDrop };
// What statsd_exporter calls match_metric_type; sets count as gauges here.
enum class MatchMetricType : std::uint8_t { kAny, kCounter, kGauge, kObserver };
enum class ObserverType : std::uint8_t { kDefault, kSummary, kHistogram };

struct QuantileSpec {
  double quantile;
  double error;  // absolute rank error of the targeted-quantile stream, as in statsd_exporter
};

// One `mappings:` entry of a statsd_exporter mapping file. Optional fields
// fall back to MappingDefaults.
struct MappingRule {
  std::string match;
  MatchType match_type = MatchType::kGlob;
  std::optional<MatchType> match_type_set;                  // nullopt: defaults.match_type
  std::string name;                                         // template with $1 / ${1}
  std::vector<std::pair<std::string, std::string>> labels;  // name -> template
  std::string help;
  RuleAction action = RuleAction::kMap;
  MatchMetricType match_metric_type = MatchMetricType::kAny;
  bool honor_labels = false;
  std::optional<double> scale;
  std::optional<std::chrono::nanoseconds> ttl;
  ObserverType observer_type = ObserverType::kDefault;
  std::vector<double> buckets;          // empty: defaults
  std::vector<QuantileSpec> quantiles;  // empty: defaults
  std::optional<std::chrono::nanoseconds> max_age;
  std::optional<std::uint32_t> age_buckets;
  // Native (exponential) buckets beside the classic ones: a growth factor > 1
  // (0: defaults) and a bound on populated buckets (0: defaults).
  double native_bucket_factor = 0;
  std::uint32_t native_max_buckets = 0;
};

// The `defaults:` section; values are statsd_exporter's.
struct MappingDefaults {
  ObserverType observer_type = ObserverType::kSummary;
  std::vector<double> buckets{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
  std::vector<QuantileSpec> quantiles{{0.5, 0.05}, {0.9, 0.01}, {0.99, 0.001}};
  MatchType match_type = MatchType::kGlob;
  bool glob_disable_ordering = false;
  std::chrono::nanoseconds ttl{0};  // 0: never expire
  std::chrono::nanoseconds max_age = std::chrono::minutes(10);
  std::uint32_t age_buckets = 5;
  double native_bucket_factor = 0;       // 0: no native histogram; else > 1
  std::uint32_t native_max_buckets = 0;  // 0: unlimited
};

struct MappingConfig {
  MappingDefaults defaults;
  std::vector<MappingRule> rules;
  std::size_t cache_size = 1000;  // entries of the mapping cache; 0 disables it
  // statsd_exporter's --statsd.cache-type: false evicts the least recently
  // used entry (lru), true a random one (random, no bookkeeping on a hit).
  bool cache_random = false;
};

// The metric type as the matcher sees it (statsd_exporter's three classes).
enum class MatchClass : std::uint8_t { kCounter = 0, kGauge = 1, kObserver = 2 };

// A rule after compilation, with its defaults resolved. Owned by the Matcher.
struct CompiledRule {
  std::uint32_t index;  // position in the file
  RuleAction action;
  bool honor_labels;
  std::optional<double> scale;
  std::chrono::nanoseconds ttl;
  ObserverType observer_type;   // kSummary or kHistogram
  std::vector<double> buckets;  // sorted, finite
  std::vector<QuantileSpec> quantiles;
  std::chrono::nanoseconds max_age;
  std::uint32_t age_buckets;
  double native_bucket_factor;  // 0 or > 1
  std::uint32_t native_max_buckets;
  std::string help;
  std::string match;
};

// The outcome of one lookup. Views stay valid until the next match() call.
struct MatchResult {
  const CompiledRule* rule = nullptr;                           // nullptr: no rule matched (unmapped)
  std::string_view name;                                        // expanded from the rule's name template, not escaped
  std::span<const std::pair<std::string, std::string>> labels;  // expanded
};

struct MatcherStats {
  std::uint64_t lookups = 0;
  std::uint64_t cache_hits = 0;
  std::uint64_t cache_length = 0;
};

class Matcher {
 public:
  // Validates and compiles every rule; errors read "mapping rule N (match): why".
  [[nodiscard]] static Result<Matcher> create(const MappingConfig& config);

  Matcher(Matcher&&) noexcept;
  Matcher& operator=(Matcher&&) noexcept;
  ~Matcher();

  // Globs (FSM) first, then regexes in file order; cached per (name, class).
  // Allocates only while the cache fills; a hit copies nothing.
  [[nodiscard]] MatchResult match(std::string_view name, MatchClass cls) noexcept;

  [[nodiscard]] const MappingDefaults& defaults() const noexcept;
  [[nodiscard]] MatcherStats stats() const noexcept;
  // The resolved settings used for samples no rule matched.
  [[nodiscard]] const CompiledRule& unmapped_rule() const noexcept;
  // Rules by position in the file (index < rule_count()).
  [[nodiscard]] std::size_t rule_count() const noexcept;
  [[nodiscard]] const CompiledRule& rule(std::size_t index) const noexcept;

 private:
  struct Impl;
  explicit Matcher(std::unique_ptr<Impl> impl) noexcept;
  std::unique_ptr<Impl> impl_;
};

// statsd_exporter's EscapeMetricName: invalid bytes become '_', a run of '-'
// becomes one '_', a leading digit gets a '_' prefix. Appends to `out`.
void escape_metric_name(std::string_view name, std::string& out);
[[nodiscard]] std::string escape_metric_name(std::string_view name);
// True when the name needs no escaping (fast path).
[[nodiscard]] bool is_valid_metric_name(std::string_view name) noexcept;
// The same for a Prometheus-sourced name (scrape, remote_write): ':' is valid
// too, as Prometheus allows it ([a-zA-Z_:][a-zA-Z0-9_:]*); everything else is
// escaped as escape_metric_name does.
void escape_prom_metric_name(std::string_view name, std::string& out);
[[nodiscard]] bool is_valid_prom_metric_name(std::string_view name) noexcept;
// Whether `name` escapes (escape_prom_metric_name() when `prom`, else
// escape_metric_name()) to exactly `escaped`, without making the copy.
[[nodiscard]] bool escapes_to(std::string_view name, std::string_view escaped, bool prom) noexcept;
// The same where `valid_name` is known valid (is_valid_metric_name(), or
// is_valid_prom_metric_name() when `prom`), as every family's name is:
// eight bytes compared at a time, escaping only when they differ otherwise
// than by the bytes escaping makes '_'.
[[nodiscard]] bool escapes_to_valid_name(std::string_view name, std::string_view valid_name, bool prom) noexcept;

}  // namespace ringpipe::processors
