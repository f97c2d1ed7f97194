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
#include <unordered_set>

#include "flat_index.hpp"
#include "ringpipe/common/chunk_memory.hpp"
#include "ringpipe/common/string_arena.hpp"
#include "ringpipe/metric/metric_record.hpp"

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
// is one cache line (64 bytes) with no string of its own.
struct Family {
  std::uint32_t id = 0;
  FamilyKind kind = FamilyKind::kCounter;
  bool blocked = false;        // its name collides with a summary/histogram's series names
  std::uint8_t prom_type = 0;  // sample::FamilyType; 0: not a Prometheus family
  std::uint8_t prom_suffix_len = 0;
  std::uint64_t name_hash = 0;
  std::string_view name;               // in the registry's name arena: never freed or changed
  const FamilyTexts* texts = nullptr;  // interned by the registry, never freed or changed
  std::atomic<std::uint64_t> series{0};
  std::atomic<std::uint64_t> dropped_conflict{0};
  std::atomic<std::uint64_t> dropped_cardinality{0};

  [[nodiscard]] std::string_view help() const noexcept { return texts->help; }
  [[nodiscard]] std::string_view unit() const noexcept { return texts->unit; }
};
static_assert(sizeof(Family) <= 64, "a family per series at worst: no padding, no std::string");

class FamilyRegistry {
 public:
  static constexpr std::uint32_t kChunk = 1024;

  FamilyRegistry(std::size_t max_families, std::size_t max_series, std::size_t max_series_per_metric);

  struct Lookup {
    Family* family = nullptr;  // nullptr: max_families reached
    bool conflict = false;     // family exists with another kind or Prometheus type, or is blocked
  };
  // Finds or registers `name` as `kind` (and, for a Prometheus sample, its
  // family's type, suffix and unit). Takes the mutex; call on cache misses only.
  [[nodiscard]] Lookup get_or_create(std::string_view name, FamilyKind kind, std::string_view help,
                                     const PromFamily& prom = {});

  // Reserves one series of the global and per-family budgets; false when over.
  [[nodiscard]] bool try_add_series(Family& f) noexcept;
  void remove_series(Family& f) noexcept;

  [[nodiscard]] Family& at(std::uint32_t id) const noexcept { return chunks_[id / kChunk][id % kChunk]; }
  [[nodiscard]] std::uint32_t size() const noexcept { return count_.load(std::memory_order_acquire); }
  [[nodiscard]] std::uint64_t series() const noexcept { return total_series_.load(std::memory_order_relaxed); }

 private:
  Family* find_locked(std::string_view name) const;
  // A copy that lives as long as the registry.
  const FamilyTexts* intern_locked(std::string_view help, std::string_view unit);

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
  std::unordered_set<FamilyTexts, TextsHash> texts_;  // every HELP and UNIT pair once; guarded by mu_
  const FamilyTexts* last_texts_ = nullptr;           // in texts_ (node-based: never moves); guarded by mu_
  common::StringArena names_;                         // every family's name; guarded by mu_
};

}  // namespace ringpipe::processors::detail
