#include "ringpipe/processors/aggregator.hpp"

#include <algorithm>

#include "engine_parts.hpp"
#include "family_registry.hpp"
#include "ringpipe/sample/sample_batch.hpp"
#include "series_mapper.hpp"
#include "shard.hpp"

namespace ringpipe::processors {

EngineStats& EngineStats::operator+=(const EngineStats& o) noexcept {
  samples += o.samples;
  samples_applied += o.samples_applied;
  unmapped += o.unmapped;
  dropped_by_rule += o.dropped_by_rule;
  dropped_empty_name += o.dropped_empty_name;
  dropped_negative_counter += o.dropped_negative_counter;
  dropped_bad_value += o.dropped_bad_value;
  dropped_conflict += o.dropped_conflict;
  dropped_cardinality += o.dropped_cardinality;
  dropped_family_limit += o.dropped_family_limit;
  dropped_labels_too_long += o.dropped_labels_too_long;
  dropped_name_too_long += o.dropped_name_too_long;
  dropped_native_too_large += o.dropped_native_too_large;
  dropped_native_renamed += o.dropped_native_renamed;
  labels_dropped_reserved += o.labels_dropped_reserved;
  labels_dropped_type_owned += o.labels_dropped_type_owned;
  labels_dropped_duplicate += o.labels_dropped_duplicate;
  labels_dropped_invalid += o.labels_dropped_invalid;
  decode_errors += o.decode_errors;
  set_members_over_limit += o.set_members_over_limit;
  series_created += o.series_created;
  series_expired += o.series_expired;
  series_live += o.series_live;
  flushes += o.flushes;
  snapshots += o.snapshots;
  entries_written += o.entries_written;
  records_written += o.records_written;
  flush_stalls += o.flush_stalls;
  mapping_cache_hits += o.mapping_cache_hits;
  mapping_lookups += o.mapping_lookups;
  state_bytes += o.state_bytes;
  state_series_restored += o.state_series_restored;
  state_series_dropped += o.state_series_dropped;
  state_rejected += o.state_rejected;
  state_samples_skipped += o.state_samples_skipped;
  state_full += o.state_full;
  quarantined_records += o.quarantined_records;
  dropped_not_relayable += o.dropped_not_relayable;
  return *this;
}

std::span<std::byte> VectorSink::begin_record(std::size_t min_bytes) noexcept {
  if (records_.size() >= refuse_after_ || min_bytes > max_) return {};
  buf_.assign(max_, std::byte{0});
  return buf_;
}

void VectorSink::commit_record(std::size_t used_bytes) noexcept {
  if (used_bytes == 0) return;
  records_.emplace_back(buf_.begin(), buf_.begin() + static_cast<std::ptrdiff_t>(used_bytes));
}

struct AggregatorEngine::Impl {
  EngineOptions options;
  std::unique_ptr<detail::FamilyRegistry> registry;
  std::unique_ptr<detail::SeriesMapper> mapper;
  std::vector<std::unique_ptr<detail::Shard>> shards;
  std::vector<std::byte> labels;
  std::uint64_t flushes = 0;
  bool snapshot_requested = true;  // the first flush is a snapshot
  std::uint64_t decode_errors = 0;
};

AggregatorEngine::AggregatorEngine(std::unique_ptr<Impl> impl) noexcept : impl_(std::move(impl)) {}
AggregatorEngine::AggregatorEngine(AggregatorEngine&&) noexcept = default;
AggregatorEngine& AggregatorEngine::operator=(AggregatorEngine&&) noexcept = default;
AggregatorEngine::~AggregatorEngine() = default;

Result<AggregatorEngine> AggregatorEngine::create(EngineOptions options) {
  if (auto st = detail::validate(options); !st) return tl::unexpected(st.error());
  auto matcher = Matcher::create(options.mapping);
  if (!matcher) return tl::unexpected(matcher.error());
  auto impl = std::make_unique<Impl>();
  if (options.instance_id == 0) options.instance_id = detail::random_instance_id();
  impl->options = std::move(options);
  const EngineOptions& o = impl->options;
  impl->registry = std::make_unique<detail::FamilyRegistry>(o.max_families, o.max_series, o.max_series_per_metric);
  auto specs = detail::build_specs(*matcher);
  impl->mapper = std::make_unique<detail::SeriesMapper>(std::move(*matcher), *impl->registry, o);
  for (std::uint32_t i = 0; i < o.shards; ++i) {
    impl->shards.push_back(std::make_unique<detail::Shard>(
        static_cast<std::uint16_t>(i), static_cast<std::uint16_t>(o.shards), *impl->registry, specs, o, o.instance_id));
  }
  impl->labels.reserve(4096);
  return AggregatorEngine(std::move(impl));
}

void AggregatorEngine::add(const sample::SampleView& s, std::int64_t now_ns) noexcept {
  Impl& m = *impl_;
  m.labels.clear();
  detail::MappedSample ms;
  if (!m.mapper->map(s, m.labels, ms)) return;
  m.shards[detail::shard_of(ms.series_hash, static_cast<std::uint32_t>(m.shards.size()))]->apply(ms, m.labels.data(),
                                                                                                 now_ns);
}

void AggregatorEngine::add_batch(std::span<const std::byte> record, std::int64_t now_ns) noexcept {
  sample::BatchReader reader(record);
  while (auto s = reader.next()) add(*s, now_ns);
  if (reader.error() != sample::DecodeError::kNone) ++impl_->decode_errors;
}

void AggregatorEngine::flush(std::int64_t now_ns, std::int64_t wall_ns, RecordSink& sink) noexcept {
  Impl& m = *impl_;
  ++m.flushes;
  const std::uint32_t every = m.options.snapshot_every_flushes;
  const bool snapshot = m.snapshot_requested || (every != 0 && m.flushes % every == 0);
  m.snapshot_requested = false;
  for (auto& sh : m.shards) {
    const std::uint64_t stalls = sh->stats().flush_stalls;
    sh->flush(now_ns, wall_ns, sink, snapshot);
    if (snapshot && sh->stats().flush_stalls != stalls) m.snapshot_requested = true;
  }
}

void AggregatorEngine::request_snapshot() noexcept { impl_->snapshot_requested = true; }

EngineStats AggregatorEngine::stats() const noexcept {
  EngineStats s = impl_->mapper->stats();
  for (const auto& sh : impl_->shards) s += sh->stats();
  s.flushes = impl_->flushes;
  s.decode_errors += impl_->decode_errors;
  return s;
}

std::size_t AggregatorEngine::series_count() const noexcept {
  std::size_t n = 0;
  for (const auto& sh : impl_->shards) n += sh->series_count();
  return n;
}

void AggregatorEngine::for_each_family(const std::function<void(const FamilyReport&)>& f) const {
  const detail::FamilyRegistry& r = *impl_->registry;
  for (std::uint32_t i = 0; i < r.size(); ++i) {
    const detail::Family& fam = r.at(i);
    const detail::FamilyRegistry::DropCounts drops = r.drops(fam);
    f(FamilyReport{fam.name(), detail::metric_type_of(fam.kind), fam.kind == detail::FamilyKind::kSet, fam.blocked,
                   fam.series.load(std::memory_order_relaxed), drops.conflict, drops.cardinality});
  }
}

const EngineOptions& AggregatorEngine::options() const noexcept { return impl_->options; }

}  // namespace ringpipe::processors
