#pragma once
// FamilyRegistry: every metric family (escaped name) a processor has seen,
// its type (the first type wins), help text and budget counters. Shared by
// the reader threads (which register families, under a mutex, only on a
// family-cache miss) and the shards (which read the immutable fields and
// update the atomics). Families live in fixed chunks: a Family never moves.

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include "flat_index.hpp"
#include "ringpipe/common/chunk_memory.hpp"
#include "ringpipe/common/string_arena.hpp"
#include "ringpipe/metric/metric_record.hpp"
#include "ringpipe/sample/sample_batch.hpp"

namespace ringpipe::processors::detail {

using metric::MetricType;

// What a family aggregates; sets are exported as gauges but never mix with them.
enum class FamilyKind : std::uint8_t { kCounter, kGauge, kSummary, kHistogram, kSet };

// What a Prometheus sample's family says of it (sample::Family), kept with the
// family: type (0 = not a Prometheus family), suffix of the sample's name
// that is not the served family's name, UNIT.
struct PromFamily {
  std::uint8_t type = 0;  // sample::FamilyType
  std::uint8_t suffix_len = 0;
  std::string_view unit;
};
// The MetricType a Prometheus sample's family type is published as.
[[nodiscard]] inline MetricType metric_type_of_prom(std::uint8_t family_type) noexcept {
  switch (family_type) {
    case 1:
      return MetricType::kCounter;
    case 2:
      return MetricType::kGauge;
    case 3:
      return MetricType::kHistogram;
    case 4:
      return MetricType::kSummary;
    case 6:
      return MetricType::kInfo;
    case 7:
      return MetricType::kStateset;
    case 8:
      return MetricType::kGaugeHistogram;
    default:
      return MetricType::kUntyped;
  }
}
[[nodiscard]] inline MetricType metric_type_of(FamilyKind k) noexcept {
  switch (k) {
    case FamilyKind::kCounter:
      return MetricType::kCounter;
    case FamilyKind::kGauge:
      return MetricType::kGauge;
    case FamilyKind::kSummary:
      return MetricType::kSummary;
    case FamilyKind::kHistogram:
      return MetricType::kHistogram;
    case FamilyKind::kSet:
      return MetricType::kGauge;
  }
  return MetricType::kGauge;
}

// A family's HELP and UNIT, interned by the registry as one pair: most
// families share one (the default HELP, no UNIT).
struct FamilyTexts {
  std::string help;
  std::string unit;
  bool operator==(const FamilyTexts&) const = default;
};

// One per metric name, its name kept by the registry's arena: with every
// StatsD name its own family (1M distinct names), a family per series, so it
// is half a cache line (32 bytes): no string of its own, its HELP and UNIT an
// id of the registry's (texts()), its drop counts on the registry's side
// (they are rare), and the fields no family sets past their range packed.
// Every field but `series` is set before the family is published and never
// changes.
struct Family {
  const char* name_at = nullptr;  // in the registry's name arena: never freed or changed
  std::uint64_t name_hash = 0;
  std::uint32_t id = 0;
  std::atomic<std::uint32_t> series{0};  // a family's series fit a shard's 32-bit slots
  std::uint32_t texts_id = 0;            // FamilyRegistry::texts()
  std::uint16_t name_len = 0;            // the registry refuses longer names
  FamilyKind kind : 3 = FamilyKind::kCounter;
  bool blocked : 1 = false;        // its name collides with a summary/histogram's series names
  std::uint8_t prom_type : 4 = 0;  // sample::FamilyType (at most 8); 0: not a Prometheus family
  std::uint8_t prom_suffix_len = 0;

  [[nodiscard]] std::string_view name() const noexcept { return {name_at, name_len}; }
};
static_assert(sizeof(Family) <= 32, "a family per series at worst: no padding, no std::string");

class FamilyRegistry {
 public:
  static constexpr std::uint32_t kChunk = 1024;
  static constexpr std::size_t kMaxNameBytes = UINT16_MAX;  // Family::name_len, and a state file's

  FamilyRegistry(std::size_t max_families, std::size_t max_series, std::size_t max_series_per_metric);
  ~FamilyRegistry();
  FamilyRegistry(const FamilyRegistry&) = delete;
  FamilyRegistry& operator=(const FamilyRegistry&) = delete;

  struct Lookup {
    // nullptr: max_families reached, or the name is over kMaxNameBytes or
    // not a valid metric name (a Prometheus one, ':' allowed, for a
    // Prometheus family), or the Prometheus type unknown (the mapper and
    // the sample reader refuse those first; a state file may hold them)
    Family* family = nullptr;
    bool conflict = false;  // family exists with another kind or Prometheus type, or is blocked
  };
  // Finds or registers `name` as `kind` (and, for a Prometheus sample, its
  // family's type, suffix and unit). Takes the mutex; call on cache misses only.
  [[nodiscard]] Lookup get_or_create(std::string_view name, FamilyKind kind, std::string_view help,
                                     const PromFamily& prom = {});

  // Reserves one series of the global and per-family budgets; false when over.
  [[nodiscard]] bool try_add_series(Family& f) noexcept;
  void remove_series(Family& f) noexcept;

  // A family's HELP and UNIT (any thread, for a family it was handed).
  [[nodiscard]] const FamilyTexts& texts(const Family& f) const noexcept {
    return *texts_by_id_[f.texts_id / kChunk][f.texts_id % kChunk];
  }
  // The family's part of an entry of its series: type, flags, name, HELP,
  // UNIT and, for a Prometheus sample, the length of its family's name.
  void describe(const Family& f, metric::SeriesEntry& e) const noexcept;
  // Per-family drop counts: samples refused for a type conflict, and for the
  // series budget. Any thread.
  void count_conflict(const Family& f) noexcept { drops_of(f.id).conflict.fetch_add(1, std::memory_order_relaxed); }
  void count_cardinality_drop(const Family& f) noexcept {
    drops_of(f.id).cardinality.fetch_add(1, std::memory_order_relaxed);
  }
  struct DropCounts {
    std::uint64_t conflict = 0;
    std::uint64_t cardinality = 0;
  };
  [[nodiscard]] DropCounts drops(const Family& f) const noexcept;

  [[nodiscard]] Family& at(std::uint32_t id) const noexcept { return chunks_[id / kChunk][id % kChunk]; }
  [[nodiscard]] std::uint32_t size() const noexcept { return count_.load(std::memory_order_acquire); }
  [[nodiscard]] std::uint64_t series() const noexcept { return total_series_.load(std::memory_order_relaxed); }

 private:
  struct AtomicDrops {
    std::atomic<std::uint64_t> conflict{0};
    std::atomic<std::uint64_t> cardinality{0};
  };
  // Family id's drop counters, their chunk made on the first drop of one of its families.
  AtomicDrops& drops_of(std::uint32_t id) noexcept;
  Family* find_locked(std::string_view name) const;
  // The id of a copy that lives as long as the registry.
  std::uint32_t intern_locked(std::string_view help, std::string_view unit);

  std::size_t max_families_;
  std::size_t max_series_;
  std::size_t max_per_metric_;
  // Chunks of kChunk families from common::chunk_allocate (huge-page slabs at
  // a million families), made as the ids reach them.
  std::unique_ptr<common::ChunkArray<Family>[]> chunks_;
  std::atomic<std::uint32_t> count_{0};  // release: pairs with the acquire in size()
  std::atomic<std::uint64_t> total_series_{0};
  mutable std::mutex mu_;
  // By hash_str(name) (a family's name_hash) to its id; families are never
  // freed or renamed. Guarded by mu_.
  FlatIndex by_name_;
  struct TextsHash {
    std::size_t operator()(const FamilyTexts& t) const noexcept;
  };
  // Every HELP and UNIT pair once, with its id (node-based: never moves);
  // guarded by mu_. There are at most as many as families.
  std::unordered_map<FamilyTexts, std::uint32_t, TextsHash> texts_;
  const FamilyTexts* last_texts_ = nullptr;  // the last one interned; guarded by mu_
  std::uint32_t last_texts_id_ = 0;
  // By id, in chunks of kChunk made as ids reach them (as chunks_): written
  // under mu_ before the families that use them are handed out.
  std::unique_ptr<std::unique_ptr<const FamilyTexts*[]>[]> texts_by_id_;
  std::unique_ptr<std::atomic<AtomicDrops*>[]> drops_;  // by family id / kChunk; freed with the registry
  common::StringArena names_;                           // every family's name; guarded by mu_
};

}  // namespace ringpipe::processors::detail
