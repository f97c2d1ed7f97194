#pragma once
// SeriesMapper: the front stage. Turns one SampleView into a MappedSample:
// over-long names refused, mapping rule applied, name and label names
// escaped, labels Prometheus would refuse removed (and counted), labels
// merged, sorted and encoded, family resolved (type conflicts refused here),
// series hash computed. Every sample of every source passes here, so this is
// where untrusted names and labels are made safe to expose. Owned by one
// thread (a reader thread, or the engine).

#include <cstdint>
#include <string>
#include <vector>

#include "family_registry.hpp"
#include "flat_index.hpp"
#include "hash.hpp"
#include "ringpipe/common/chunked_vector.hpp"
#include "ringpipe/common/string_arena.hpp"
#include "ringpipe/processors/aggregator.hpp"
#include "ringpipe/processors/mapping.hpp"
#include "ringpipe/sample/sample_batch.hpp"

namespace ringpipe::processors::detail {

// kSetNative: a Prometheus native histogram sample replaces its series'
// histogram (it is cumulative, as a scraped counter is); its values, as
// native_values() lays them out, follow its labels in the label buffer
// (bytes labels_off + labels_len on), and move with them when copied.
enum class Op : std::uint8_t { kAdd, kSet, kObserve, kSetMember, kSetNative };

// One sample, ready for its shard. Its labels are bytes [labels_off,
// labels_off + labels_len) of the label buffer it was mapped with.
struct MappedSample {
  std::uint64_t series_hash;
  Family* family;
  std::uint32_t labels_off;
  std::uint32_t labels_len;
  std::uint16_t label_count;
  Op op;
  std::uint32_t spec;  // rule index + 1; 0 = unmapped defaults
  double value;
  double weight;
  std::uint64_t member;  // set member hash
  std::int64_t ttl_ns;
};

// A native histogram sample's values as a Prometheus-sample entry carries
// them (metric/FORMAT.md, kEntryPromSample | kEntryNative): the native part,
// then [count, sum]. False when they are more than an entry counts (65535).
[[nodiscard]] bool native_values(const sample::NativeView& n, std::vector<double>& out);

// The observer spec (MappedSample::spec) of a histogram series set from
// Prometheus native samples: the one build_specs() puts after the rules'.
[[nodiscard]] inline std::uint32_t prom_native_spec(const Matcher& m) noexcept {
  return static_cast<std::uint32_t>(m.rule_count() + 1);
}

class SeriesMapper {
 public:
  SeriesMapper(Matcher matcher, FamilyRegistry& registry, const EngineOptions& options);

  // Appends the labels to `labels` and fills `out`; false when the sample is
  // dropped (the reason is counted in stats()).
  // `name_hint`: what prefetch_index(s) returned, if it was called; map()
  // then does not hash the name again when no rule renamed the sample (the
  // hint's guess held).
  [[nodiscard]] bool map(const sample::SampleView& s, std::vector<std::byte>& labels, MappedSample& out,
                         const std::uint64_t* name_hint = nullptr) noexcept;

  // Cache hints for a batch of samples, the name lookup of map() in three
  // steps: prefetch_index(s) some samples before map(s) (it returns the hash
  // the other two take), prefetch_entry() a few samples later, prefetch_name()
  // a few more. Each reads only what the one before fetched; none changes
  // anything, and a wrong guess (a rule renames the sample) costs a line.
  [[nodiscard]] std::uint64_t prefetch_index(const sample::SampleView& s) const noexcept;
  void prefetch_entry(std::uint64_t hint) const noexcept;
  void prefetch_name(std::uint64_t hint) const noexcept;
  // True when the names seen are so many that the hints pay: their index
  // slots and entries are then far out of a core's L2. Below, the look-ahead
  // costs more than it saves. On the 2-core AMD EPYC VM (1 MiB of L2 per
  // core), StatsD names sent round-robin at full speed, the processor took
  // 101 ns per sample with the hints and 92 without at 10k names (5 runs
  // each), about the same either way at 20k and 30k, and 114 against 166 at
  // 100k.
  static constexpr std::size_t kHintFromNames = 16384;
  [[nodiscard]] bool names_past_cache() const noexcept { return raw_index_.size() > kHintFromNames; }
  // A relay's mapper maps native histogram samples (kind 8) as Prometheus
  // samples whose native part the relay copies itself; otherwise each is a
  // kSetNative of a histogram series with its values in the label buffer.
  void relay_native(bool on) noexcept { relay_native_ = on; }

  // Only the mapper's counters are filled in.
  [[nodiscard]] EngineStats stats() const noexcept;
  [[nodiscard]] const Matcher& matcher() const noexcept { return matcher_; }

 private:
  struct Lbl {
    std::string_view key;
    std::string_view value;
    std::uint32_t order;
  };
  // A name as it came (with its kind and Prometheus family), and the family
  // it resolved to, when that is not simply the family of that name (a rule
  // renamed it, escaping changed it, or its kind conflicts): one entry per
  // such name, kept small (32 bytes).
  struct RawName {
    std::string_view raw;  // its family's name, or a string in raw_owned_
    Family* family;
    std::uint32_t key;  // kind | prom type << 8 | prom suffix_len << 16
    bool conflict;      // the family has another kind or Prometheus type, or is blocked
  };
  static_assert(sizeof(RawName) <= 32, "one entry per distinct name");
  // raw_index_ values: a raw_names_ position, or (this bit set) the id of
  // the family a name resolved to when names_family() holds: the common case
  // (the name unmapped, or renamed into its family's name, escaped or not,
  // and no conflict), which then keeps no RawName and no copy of the name.
  static constexpr std::uint32_t kFamilyRef = 1U << 31;
  static std::uint32_t family_key(const Family& f) noexcept {
    return raw_key_of(f.kind, PromFamily{f.prom_type, f.prom_suffix_len, {}});
  }
  [[nodiscard]] static bool names_family(const Family& f, std::string_view raw, std::uint32_t raw_key) noexcept;
  static FamilyKind family_kind(sample::Kind k, const CompiledRule& rule) noexcept;
  static std::uint32_t raw_key_of(FamilyKind kind, PromFamily prom) noexcept {
    return static_cast<std::uint32_t>(kind) | (std::uint32_t{prom.type} << 8) | (std::uint32_t{prom.suffix_len} << 16);
  }
  static std::uint64_t raw_hash(std::string_view raw, std::uint32_t raw_key) noexcept {
    return hash_mem(raw.data(), raw.size(), 0x7a3ULL + raw_key);
  }
  struct Resolved {
    Family* family;  // nullptr: dropped (counted)
    bool conflict;
  };
  // The last sample mapped whole, remembered so that the samples after it of
  // the same series (a batch from one Node.js writer is often one series
  // repeated) skip the rule match, the family lookup, the labels and the hash.
  // After a sample of another series, the next kRunBackoff samples are not
  // remembered: mixed batches (StatsD) pay one compare, not a copy, per sample.
  static constexpr std::uint32_t kRunBackoff = 15;
  struct Run {
    bool valid = false;
    std::uint32_t skip = 0;
    sample::Kind kind{};
    std::uint16_t tag_count = 0;
    sample::FamilyType family_type{};
    std::uint8_t suffix_len = 0;
    std::string name;
    std::string tags;
    std::string help;
    std::string unit;
    const CompiledRule* rule = nullptr;
    Family* family = nullptr;
    std::vector<std::byte> labels;
    std::uint16_t label_count = 0;
    std::uint64_t series_hash = 0;
    [[nodiscard]] bool same(const sample::SampleView& s) const noexcept;
  };
  [[nodiscard]] bool value_of(const sample::SampleView& s, const CompiledRule& rule, MappedSample& out,
                              FamilyKind& kind) noexcept;
  [[nodiscard]] bool map_again(const sample::SampleView& s, std::vector<std::byte>& labels, MappedSample& out) noexcept;
  // Gives a kSetNative sample prom_native_spec() and appends its values to
  // `labels`, right after its labels
  // (the last bytes appended); false (counted, labels cut back to where the
  // sample's began) when no output record could hold its entry.
  [[nodiscard]] bool take_native(const sample::SampleView& s, std::vector<std::byte>& labels,
                                 MappedSample& out) noexcept;
  void remember(const sample::SampleView& s, const CompiledRule* rule, const MappedSample& out,
                const std::byte* label_bytes);
  [[nodiscard]] std::uint64_t label_drops() const noexcept {
    return stats_.labels_dropped_invalid + stats_.labels_dropped_reserved + stats_.labels_dropped_type_owned +
           stats_.labels_dropped_duplicate;
  }
  [[nodiscard]] Resolved resolve_family(std::string_view raw, FamilyKind kind, PromFamily prom,
                                        std::string_view prom_help, const CompiledRule& rule);

  Matcher matcher_;
  FamilyRegistry* registry_;
  std::string default_help_;
  std::size_t family_cache_cap_;  // raw_index_ entries at most
  std::size_t max_name_bytes_;
  std::size_t max_record_bytes_;
  bool weighted_sample_rate_;
  bool relay_native_ = false;
  common::ChunkedVector<RawName> raw_names_;  // never moved when it grows
  common::StringArena raw_owned_;             // names as they came that differ from their family's: their bytes only
  FlatIndex raw_index_;
  std::string name_;
  std::string keys_;
  std::vector<Lbl> lbls_;
  std::vector<double> native_;  // take_native's values before they are copied
  EngineStats stats_;
  Run run_;
};

}  // namespace ringpipe::processors::detail
