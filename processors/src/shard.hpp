#pragma once
// Shard: the aggregation state of one partition of the series (those whose
// hash maps to it). A flat open-addressing index keyed by the 64-bit series
// hash (full key checked), series records in one vector, label bytes interned
// in an arena with size-class reuse (or, with a state store, kept only in the
// store's blocks), observer/set state on the side. Owned by one thread (no
// locks); only the FamilyRegistry's atomics are shared.
// Defined in three parts: shard.cpp (aggregation), shard_flush.cpp (flush
// encoding), shard_state.cpp (the state store side).

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "family_registry.hpp"
#include "flat_index.hpp"
#include "ringpipe/common/chunked_vector.hpp"
#include "ringpipe/metric/native_histogram.hpp"
#include "ringpipe/processors/aggregator.hpp"
#include "series_mapper.hpp"
#include "state_store.hpp"
#include "targeted_quantiles.hpp"

namespace ringpipe::processors::detail {

// Observer settings of one rule (index = rule index + 1; 0 = unmapped).
struct ObserverSpec {
  std::vector<double> buckets;
  std::vector<QuantileTarget> quantiles;
  std::int64_t bucket_ns;  // max_age / age_buckets
  std::uint32_t age_buckets;
  bool native = false;  // a native histogram beside the classic buckets
  std::int32_t native_schema = 0;
  std::uint32_t native_max_buckets = 0;
  bool prom_native = false;  // prom_native_spec(): histograms set from Prometheus native samples
};
using SpecTable = std::vector<ObserverSpec>;

// The samples of one input record within a shard batch: [previous end, end).
struct RecordSegment {
  std::uint32_t input;
  std::uint32_t lane;
  std::uint64_t seq;
  std::uint32_t end;
};

// Interned label bytes; freed blocks are reused by size class.
class LabelArena {
 public:
  [[nodiscard]] std::uint32_t store(const std::byte* p, std::uint32_t n);
  void release(std::uint32_t off, std::uint32_t n);
  [[nodiscard]] const std::byte* at(std::uint32_t off) const noexcept { return data_.data() + off; }
  [[nodiscard]] std::size_t memory_bytes() const noexcept { return data_.capacity(); }

  static std::uint32_t rounded(std::uint32_t n) noexcept;
  static std::size_t size_class(std::uint32_t rounded) noexcept;

 private:
  std::vector<std::byte> data_;
  std::vector<std::vector<std::uint32_t>> free_;
};

class Emitter;  // shard_flush.cpp: entries into records

class Shard {
 public:
  Shard(std::uint16_t index, std::uint16_t count, FamilyRegistry& registry, std::shared_ptr<const SpecTable> specs,
        const EngineOptions& options, std::uint64_t instance_id, StateStore* store = nullptr, std::int64_t now_ns = 0);

  void apply(const MappedSample& m, const std::byte* label_base, std::int64_t now_ns) noexcept;
  // As apply() for each sample, with the index slot, series record and key
  // of later samples prefetched so their cache misses overlap.
  void apply_batch(std::span<const MappedSample> ms, const std::byte* label_base, std::int64_t now_ns) noexcept;
  // With a state store: applies the samples of each segment whose record the
  // store has not applied yet, records the segment's seq, and commits (one
  // transaction per batch; more when the undo log fills past half).
  void apply_segments(std::span<const MappedSample> ms, std::span<const RecordSegment> segs,
                      const std::byte* label_base, std::int64_t now_ns) noexcept;
  // Forgets the applied seqs of `input` when its ring is not the one they came from.
  void sync_input(std::uint32_t input, std::uint64_t creation_id) noexcept;
  void commit_state() noexcept;
  // Writes this shard's changes (or a snapshot) into sink. A change the sink
  // has no space for waits for the next flush, counted in flush_stalls; with
  // `defer`, a change (never a snapshot) it has no space for is owed instead,
  // uncounted, for drain() to write as soon as there is space.
  void flush(std::int64_t now_ns, std::int64_t wall_ns, RecordSink& sink, bool snapshot, bool defer = false) noexcept;
  // Writes the changes the last flush owes (as of that flush: none made since),
  // without its scans; returns whether none is owed any more.
  bool drain(std::int64_t wall_ns, RecordSink& sink) noexcept;
  // Changes the last flush could not write yet.
  [[nodiscard]] std::size_t owed() const noexcept { return owed_; }
  // A change was owed for a whole flush interval: the output is too slow.
  void count_stall() noexcept { ++stats_.flush_stalls; }

  [[nodiscard]] EngineStats stats() const noexcept;
  [[nodiscard]] std::size_t series_count() const noexcept { return live_; }
  [[nodiscard]] std::size_t memory_bytes() const noexcept;

 private:
  enum : std::uint8_t {
    kLive = 1,
    kDirty = 2,
    kExpiring = 4,
    kActive = 8,      // in active_: a summary window or set window to roll
    kPublished = 16,  // has a value to publish (sets: a completed window)
    // The open transaction logged the slot's values (kTxValues) or its whole
    // image (kTxWhole): cleared at commit for the series in tx_marked_.
    kTxValues = 32,
    kTxWhole = 64,
  };
  // Half a cache line: with a StatsD name per series, 32 MB at 1M series.
  struct Series {
    std::uint64_t hash;
    union {
      double value = 0;   // a counter's or gauge's (ops kAdd and kSet reach no other kind)
      std::uint32_t ext;  // a summary's, histogram's or set's index into summaries_/histograms_/sets_
    };
    std::uint32_t family;   // FamilyRegistry id (registry_->at())
    std::uint32_t key_off;  // in the store arena with a store, else in arena_
    std::uint32_t key_len;
    std::uint16_t label_count;
    std::uint8_t kind;  // FamilyKind
    std::uint8_t flags;
  };
  static_assert(sizeof(Series) <= 32, "series state stays small: a series per StatsD name at worst");

  // As client_golang's summary: every observation goes into each of the
  // age_buckets streams; window[head], the oldest, answers queries and is
  // reset (becoming the newest) each max_age / age_buckets.
  struct SummaryState {
    double count = 0;
    double sum = 0;
    std::int64_t head_start_ns = 0;
    std::uint32_t head = 0;
    std::uint32_t spec = 0;
    std::vector<TargetedQuantiles> window;
  };
  struct HistogramState {
    double count = 0;
    double sum = 0;
    std::uint32_t spec = 0;
    std::vector<double> counts;                       // per bucket, then +Inf; not cumulative
    std::unique_ptr<metric::NativeHistogram> native;  // when the spec asks for one
  };
  // A set publishes the larger of its last completed window's distinct count
  // (`completed`) and the open window's so far (`size`): a value from the
  // first member on, never a drop to 0 at a window boundary while members
  // keep coming, and 0 only after a whole window without any.
  struct SetState {
    double value = 0;  // published: the last completed window's count, or the open one's once larger
    std::int64_t window_id = 0;
    std::uint32_t size = 0;
    std::uint32_t completed = 0;
    std::vector<std::uint64_t> members;  // open addressing; 0 = empty
  };

  std::uint32_t create_series(const MappedSample& m, const std::byte* labels, std::int64_t now_ns) noexcept;
  void free_series(std::uint32_t idx) noexcept;
  // Gives a summary's, histogram's or set's extension slot back to its free list.
  void release_ext(const Series& se) noexcept;
  void mark_dirty(std::uint32_t idx) noexcept;
  // When series idx expires (CLOCK_MONOTONIC ns; 0: never).
  [[nodiscard]] std::int64_t expires_of(std::uint32_t idx) const noexcept {
    return idx < expires_.size() ? expires_[idx] : 0;
  }
  void set_expires(std::uint32_t idx, std::int64_t at_ns) noexcept;
  // Writes the first `limit` dirty series while the sink takes them, removes
  // those written, and returns how many it could not write.
  std::size_t write_dirty(Emitter& em, std::size_t limit) noexcept;
  // What a flush and a drain end with: em's counts, the state's commit, the sink's end_flush().
  void end_flush(const Emitter& em, RecordSink& sink) noexcept;
  [[nodiscard]] BatchOrigin origin(std::int64_t wall_ns) const noexcept;
  bool rotate_summary(SummaryState& s, std::int64_t now_ns) noexcept;  // true: the window changed
  bool roll_set(Series& se, SetState& st, std::int64_t window_id) noexcept;
  // What the series publishes and the state file keeps as its value: a
  // counter's or gauge's value, a set's (SetState::value), 0 for the rest.
  [[nodiscard]] double value_of(const Series& se) const noexcept;
  void add_member(SetState& st, std::uint64_t member) noexcept;
  [[nodiscard]] bool publishable(const Series& se) const noexcept;
  // The series' label bytes: in the store's block when there is a store, else in arena_.
  [[nodiscard]] const std::byte* key_of(const Series& se) const noexcept {
    return store_ != nullptr ? store_->arena() + se.key_off : arena_.at(se.key_off);
  }
  void encode(const Series& se, EntryKind kind, SeriesEntry& e) noexcept;
  // Gives h a fresh native histogram when its spec asks for one, else none.
  void reset_native(HistogramState& h);
  // Makes h the Prometheus native histogram whose values (native_values()'s
  // layout, checked by the sample reader) are at `values`; false when h
  // has no native histogram (its spec is not prom_native_spec()).
  [[nodiscard]] static bool set_native(HistogramState& h, const std::byte* values);
  // Appends n's native part (metric_record.hpp) to values_; false (nothing
  // appended) when the entry could not count its values.
  [[nodiscard]] bool append_native(const metric::NativeHistogram& n, std::size_t classic_buckets) noexcept;
  void restore(std::int64_t now_ns);
  [[nodiscard]] bool persist_new(std::uint32_t idx, const std::byte* labels) noexcept;
  void persist(std::uint32_t idx) noexcept;
  [[nodiscard]] bool log_whole_slot(std::uint32_t idx) noexcept;
  void persist_free(std::uint32_t idx) noexcept;
  [[nodiscard]] std::uint32_t alloc_block(std::uint32_t bytes, std::uint32_t owner) noexcept;
  [[nodiscard]] std::uint32_t family_block(const Family& f) noexcept;
  // Native buckets the series' block has room for (0 without a native region).
  [[nodiscard]] std::uint64_t native_room(const StateSlot& sl) const noexcept;
  // Moves slot idx's labels and counts to a new block with room for a native
  // region of `buckets` buckets and more; the old block is freed at commit.
  [[nodiscard]] bool move_block(std::uint32_t idx, std::uint64_t buckets) noexcept;

  std::uint16_t index_;
  std::uint16_t count_;
  FamilyRegistry* registry_;
  std::shared_ptr<const SpecTable> specs_;
  std::int64_t set_window_ns_;
  std::uint32_t max_set_members_;
  std::size_t max_record_bytes_;
  std::uint64_t instance_id_;
  std::uint64_t flush_seq_ = 0;
  // EngineOptions::default_help: a plain family with it is written to the
  // state file without it (help_len 0), and one read back so gets it again.
  std::string default_help_;

  common::ChunkedVector<Series> series_;  // by index; never moved when it grows
  std::vector<std::uint32_t> free_series_;
  FlatIndex index_map_;
  LabelArena arena_;
  // By series index, when each expires (expires_of()), made only once a
  // series has a TTL: without one (statsd_exporter's default) a series
  // carries no expiry and a flush scans none.
  std::vector<std::int64_t> expires_;
  std::vector<std::uint32_t> dirty_;  // from dirty_head_ on
  std::size_t dirty_head_ = 0;
  std::size_t owed_ = 0;  // the first owed_ from dirty_head_: what the last flush could not write
  std::vector<std::uint32_t> active_;
  std::vector<SummaryState> summaries_;
  std::vector<std::uint32_t> free_summaries_;
  std::vector<HistogramState> histograms_;
  std::vector<std::uint32_t> free_histograms_;
  std::vector<SetState> sets_;
  std::vector<std::uint32_t> free_sets_;
  std::size_t live_ = 0;

  StateStore* store_ = nullptr;
  // The series the open transaction marked kTxValues or kTxWhole (a series
  // freed and taken again in it may be listed twice): a transaction's worth,
  // where a mark per series cost 4 bytes of every series.
  std::vector<std::uint32_t> tx_marked_;
  void mark_tx(Series& se, std::uint32_t idx, std::uint8_t bit) noexcept;
  // Each family's block in the store arena, by Family::id (kNoBlock: none
  // yet): 4 bytes a family where a hash node cost ~50 (1M families, 1M series).
  static constexpr std::uint32_t kNoBlock = UINT32_MAX;
  std::vector<std::uint32_t> family_off_;
  void remember_family_block(const Family& f, std::uint32_t off);
  std::vector<std::vector<std::uint32_t>> block_free_;  // store arena free blocks by size class
  std::vector<std::uint32_t> pending_free_;             // freed in the open transaction: reusable after commit

  std::vector<double> values_;
  EngineStats stats_;
};

}  // namespace ringpipe::processors::detail
