#pragma once
// Pieces the engine and the threaded Processor share: building the observer
// spec table from a Matcher, choosing a series' shard, random instance ids.

#include <cstdint>
#include <memory>
#include <random>

#include "ringpipe/processors/mapping.hpp"
#include "shard.hpp"

namespace ringpipe::processors::detail {

[[nodiscard]] inline ObserverSpec spec_of(const CompiledRule& r) {
  ObserverSpec s;
  s.buckets = r.buckets;
  for (const QuantileSpec& q : r.quantiles) s.quantiles.push_back(QuantileTarget{q.quantile, q.error});
  s.age_buckets = r.age_buckets;
  s.bucket_ns = std::max<std::int64_t>(1, r.max_age.count() / r.age_buckets);
  if (r.native_bucket_factor > 1) {
    s.native = true;
    s.native_schema = metric::native_schema_for_factor(r.native_bucket_factor);
    s.native_max_buckets = r.native_max_buckets;
  }
  return s;
}

[[nodiscard]] inline std::shared_ptr<const SpecTable> build_specs(const Matcher& m) {
  auto t = std::make_shared<SpecTable>();
  t->push_back(spec_of(m.unmapped_rule()));
  for (std::size_t i = 0; i < m.rule_count(); ++i) t->push_back(spec_of(m.rule(i)));
  // prom_native_spec(): a Prometheus native histogram as it came, no classic
  // buckets (none are invented), any schema (each sample brings its own).
  ObserverSpec prom{};
  prom.bucket_ns = 1;
  prom.age_buckets = 1;
  prom.native = true;
  prom.prom_native = true;
  t->push_back(std::move(prom));
  return t;
}

[[nodiscard]] inline std::uint32_t shard_of(std::uint64_t series_hash, std::uint32_t shards) noexcept {
  return static_cast<std::uint32_t>(((series_hash >> 32) * shards) >> 32);
}

[[nodiscard]] inline std::uint64_t random_instance_id() {
  std::random_device rd;
  const std::uint64_t id = (static_cast<std::uint64_t>(rd()) << 32) ^ rd();
  return id == 0 ? 1 : id;
}

[[nodiscard]] inline Status validate(const EngineOptions& o) {
  if (o.shards == 0 || o.shards > 1024) return invalid("processor options: shards must be 1..1024");
  if (o.max_series == 0 || o.max_series_per_metric == 0 || o.max_families == 0) {
    return invalid("processor options: series and family limits must be > 0");
  }
  if (o.max_record_bytes < 4096) return invalid("processor options: max_record_bytes must be >= 4096");
  if (o.set_window.count() <= 0) return invalid("processor options: set_window must be > 0");
  if (o.max_name_bytes == 0) return invalid("processor options: max_name_bytes must be > 0");
  return {};
}

}  // namespace ringpipe::processors::detail
