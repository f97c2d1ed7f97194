#pragma once
// SeriesState: the current value of every series published into a metric
// ring, built by applying metric-batch records in ring order (series, expire,
// snapshot markers, processor instance changes; see metric/FORMAT.md).
// apply() is called by one thread (the ring reader); collect(), ready() and
// the counters are safe from any thread at the same time. Series live in
// kShards maps, each behind its own mutex, so a scrape holds one small lock at
// a time and the reader never waits for a whole scrape.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include <prometheus/metric_family.h>

#include "entry_relabel.hpp"
#include "protobuf_writer.hpp"
#include "ringpipe/common/chunk_memory.hpp"
#include "ringpipe/common/chunked_vector.hpp"
#include "ringpipe/common/flat_index.hpp"
#include "ringpipe/common/large_buffer.hpp"
#include "ringpipe/common/string_arena.hpp"
#include "ringpipe/metric/metric_record.hpp"
#include "ringpipe/relabel/relabel.hpp"

namespace ringpipe::exporters {

struct SeriesStateCounters {
  std::atomic<std::uint64_t> records{0};
  std::atomic<std::uint64_t> entries{0};
  std::atomic<std::uint64_t> decode_errors{0};
  std::atomic<std::uint64_t> conflicts{0};
  std::atomic<std::uint64_t> stale_records{0};
  std::atomic<std::uint64_t> instance_changes{0};
  std::atomic<std::uint64_t> snapshots{0};
  std::atomic<std::uint64_t> series{0};
  std::atomic<std::uint64_t> families{0};
  std::atomic<std::uint64_t> relabel_dropped{0};  // series metric_relabel_configs dropped (once each)
  std::atomic<std::uint64_t> relay_expired{0};    // relayed series dropped by relay_ttl
  // Pages written a second time: a family of one series gained another
  // while the render walked (render()).
  std::atomic<std::uint64_t> render_rewrites{0};
};

class SeriesState {
 public:
  static constexpr std::size_t kShards = 64;
  static constexpr std::size_t kMaxProcessorShards = 1024;

  SeriesState();

  // Relabels every series entry before it is applied (metric_relabel_configs;
  // empty: none). Call before the first apply(). A series the rules drop, or
  // leave without a valid name, is not served (an earlier value of it is
  // removed) and counted once. The series keeps the processor's key: rules that
  // make two series' labels equal serve both.
  void set_relabel(relabel::Rules rules) { relabel_ = EntryRelabeler(std::move(rules)); }

  // A series a relay's records (kEntryTimestamp) keep up is served until
  // none has updated it for `ttl` (expire_relayed); 0: for good, as a relay
  // sends no expiries. Call before the first apply().
  void set_relay_ttl(std::chrono::nanoseconds ttl) { relay_ttl_ns_ = ttl.count(); }

  // Whether apply() fetches the lines of the entries ahead of the one it
  // applies (on unless turned off: exporters_bench's same-run baseline).
  void set_apply_prefetch(bool on) noexcept { apply_prefetch_ = on; }

  // Applies one kMetricBatchRecord payload. Malformed input is counted, never
  // trusted. `now_ns` (monotonic) stamps the relayed series it updates.
  void apply(std::span<const std::byte> record, std::int64_t now_ns = 0) noexcept;

  // Drops the relayed series no record updated in the relay ttl before
  // `now_ns` (monotonic), counting them in relay_expired; returns how many.
  // Reader thread only (as apply()).
  std::size_t expire_relayed(std::int64_t now_ns) noexcept;

  // Appends one MetricFamily per exported family (conflicting ones left out).
  // The page's earlier path (prometheus-cpp's object model), kept as the
  // reference render() is checked against.
  void collect(std::vector<prometheus::MetricFamily>& out) const { collect(out, nullptr); }
  // The same, with each native histogram in `natives` (the protobuf page).
  void collect(std::vector<prometheus::MetricFamily>& out, protobuf::NativeIndex* natives) const;
  // Appends the exported families as text format 0.0.4, the text
  // prometheus-cpp's TextSerializer makes of collect()'s families, without an
  // object per series. Families `drop` names are left out; returns how many
  // samples (collect()'s metrics) those held.
  std::uint64_t render(std::string& out, const std::function<bool(std::string_view)>& drop = {}) const;

  // Every shard of the current processor instance finished a snapshot.
  [[nodiscard]] bool complete() const noexcept { return complete_.load(std::memory_order_acquire); }
  // Live series per processor shard (index = shard), for self-metrics.
  [[nodiscard]] std::vector<std::uint64_t> series_per_processor_shard() const;
  [[nodiscard]] const SeriesStateCounters& counters() const noexcept { return counters_; }
  [[nodiscard]] std::uint64_t instance_id() const noexcept { return instance_.load(std::memory_order_relaxed); }

 private:
  // One per family name, which with a StatsD name per series is one per
  // series: 16 bytes, its name's bytes in names_ and its HELP interned
  // (help_of()).
  struct Family {
    const char* name_at = nullptr;  // in names_: never changes once the family exists, never freed
    std::uint32_t help_id = 0;      // in help_texts_ (most families share one HELP); 0: none
    std::uint16_t name_len = 0;     // an entry's family name is at most 64 KiB
    metric::MetricType type = metric::MetricType::kGauge;
    bool conflict : 1 = false;
    bool prom : 1 = false;  // samples of a Prometheus family (kEntryPromSample), reassembled when collected
    // Has held two series at once (set before the second is visible, never
    // cleared): a render writes a family without it straight into the page.
    bool many : 1 = false;

    [[nodiscard]] std::string_view name() const noexcept { return {name_at, name_len}; }
  };
  static_assert(sizeof(Family) <= 16, "a family per series at worst");
  // Which sample of a Prometheus family a series is.
  enum class Role : std::uint8_t { kValue, kBucket, kSum, kCount };
  // One series: its values, then its encoded labels (LabelHeader format,
  // validated), kept inside it when they fit in kInlineWords doubles (a
  // counter or gauge with 32 bytes of labels, two short ones), else in one
  // block of their own. No string or vector per series. Five words, not
  // seven: with a StatsD name per series and no labels an entry is 72 bytes,
  // 16 MB less at 1M series.
  class Series {
   public:
    static constexpr std::size_t kInlineWords = 5;

    Series() noexcept : inline_{} {}
    ~Series() { release(); }
    Series(const Series&) = delete;
    Series& operator=(const Series&) = delete;
    Series(Series&& o) noexcept { take(o); }
    Series& operator=(Series&& o) noexcept {
      if (this != &o) {
        release();
        take(o);
      }
      return *this;
    }

    // The classic values (metric_record.hpp), without a native histogram's part.
    [[nodiscard]] std::span<const double> values() const noexcept {
      const std::size_t skip = native_values_count();
      return {words() + skip, value_count_ - skip};
    }
    // A native histogram's part (kEntryNative): [schema, zero_threshold,
    // zero_count, n_pos, n_neg, pairs...]; empty for every other series.
    [[nodiscard]] std::span<const double> native_values() const noexcept { return {words(), native_values_count()}; }
    [[nodiscard]] std::span<const std::byte> labels() const noexcept {
      return std::as_bytes(std::span(words() + value_count_, label_words(label_bytes_))).first(label_bytes_);
    }
    [[nodiscard]] std::uint16_t label_count() const noexcept { return label_count_; }
    // Takes `values` (n doubles, maybe unaligned) and `labels`, moving
    // them only when their sizes or the labels change.
    // `native`: the values start with a native histogram's part (validated).
    void assign(std::span<const std::byte> values, std::uint16_t n, std::span<const std::byte> labels,
                std::uint16_t count, bool native = false);

    // The processor instance it was last sent by, as an epoch (instance_epoch_
    // when it was), and the snapshot generation that last mentioned it: 32
    // bits each (see next_generation_ for why they do not wrap into a match).
    std::uint32_t epoch = 0;
    std::uint32_t generation = 0;
    std::uint32_t family = 0;
    std::uint16_t shard = 0;
    Role role = Role::kValue;

   private:
    [[nodiscard]] std::size_t native_values_count() const noexcept {
      if (!native_) return 0;
      const double* w = words();
      return metric::kNativeHeadValues + 2 * (static_cast<std::size_t>(w[3]) + static_cast<std::size_t>(w[4]));
    }
    static constexpr std::size_t label_words(std::size_t bytes) noexcept { return (bytes + 7) / 8; }
    [[nodiscard]] bool on_heap() const noexcept { return value_count_ + label_words(label_bytes_) > kInlineWords; }
    [[nodiscard]] const double* words() const noexcept { return on_heap() ? heap_ : inline_; }
    [[nodiscard]] double* words_mut() noexcept { return on_heap() ? heap_ : inline_; }
    void release() noexcept {
      if (on_heap()) delete[] heap_;
    }
    // Takes o's fields and storage (its block, if any), leaving o empty.
    void take(Series& o) noexcept;

    bool native_ = false;  // in the padding after `role`
    std::uint32_t label_bytes_ = 0;
    std::uint16_t label_count_ = 0;
    std::uint16_t value_count_ = 0;
    union {
      double inline_[kInlineWords];
      double* heap_;
    };
  };
  static_assert(sizeof(Series) <= 64, "a series and its key stay within 72 bytes");
  // How a histogram's or summary's series joins its family's group, for both
  // renderings: the label its type owns (`le` of a bucket, `quantile` of a
  // summary's value; empty for _sum and _count) in `own`, that label's bound,
  // and the group key (every other label, as name\0value\0). False for a series
  // owning a label with no usable bound: nothing it could be served as.
  static bool group_of(const Series& se, bool histogram, std::string& key, std::string_view& own, double& bound);
  // One shard's series by key: the series side by side in fixed chunks of
  // kChunk (a scrape walks memory in order; the table grows a chunk at a time,
  // never copying the series or holding twice their room as a doubling vector
  // does) and an open-addressing index of their positions (linear probing
  // over a common::ProbeSpan, backward-shift deletion; 8 bytes a slot, at
  // most 3/4 full). Erasing moves
  // the last series into the hole, and a chunk left empty is freed.
  class SeriesTable {
   public:
    struct Entry {
      std::uint64_t key = 0;
      Series series;
    };
    static constexpr std::size_t kChunk = 512;
    // Adds `key`'s series, empty; the caller knows it is absent.
    Series& emplace_new(std::uint64_t key);
    // Position of `key`'s series, or kNpos.
    [[nodiscard]] std::size_t find(std::uint64_t key) const noexcept;
    // Cache hints for find(key), in two steps some entries apart: the slot
    // where its probe starts, then the entry that slot names (which reads the
    // slot); nullptr for none. A wrong guess (a collision, a table grown
    // since) costs a line. The caller prefetches: a function that only
    // prefetched would be found free of effects and its calls dropped.
    [[nodiscard]] const void* slot_line(std::uint64_t key) const noexcept;
    [[nodiscard]] const Entry* entry_line(std::uint64_t key) const noexcept;
    // The family of `key`'s series when its probe's first slot holds it (the
    // entry entry_line named), else UINT32_MAX.
    [[nodiscard]] std::uint32_t family_hint(std::uint64_t key) const noexcept;
    // Removes the series at `at`; the last one takes its place.
    void erase_at(std::size_t at) noexcept;
    [[nodiscard]] std::size_t size() const noexcept { return size_; }
    [[nodiscard]] const Entry& entry(std::size_t i) const noexcept { return chunks_[i / kChunk][i % kChunk]; }
    [[nodiscard]] Series& at(std::size_t i) noexcept { return chunks_[i / kChunk][i % kChunk].series; }
    // The entries in position order: for (const Entry& e : table.entries()).
    class Entries {
     public:
      class Iterator {
       public:
        Iterator(const SeriesTable* t, std::size_t i) noexcept : t_(t), i_(i) {}
        const Entry& operator*() const noexcept { return t_->entry(i_); }
        Iterator& operator++() noexcept {
          ++i_;
          return *this;
        }
        bool operator!=(const Iterator& o) const noexcept { return i_ != o.i_; }

       private:
        const SeriesTable* t_;
        std::size_t i_;
      };
      explicit Entries(const SeriesTable* t) noexcept : t_(t) {}
      [[nodiscard]] Iterator begin() const noexcept { return {t_, 0}; }
      [[nodiscard]] Iterator end() const noexcept { return {t_, t_->size_}; }
      [[nodiscard]] std::size_t size() const noexcept { return t_->size_; }

     private:
      const SeriesTable* t_;
    };
    [[nodiscard]] Entries entries() const noexcept { return Entries(this); }
    static constexpr std::size_t kNpos = SIZE_MAX;

   private:
    [[nodiscard]] Entry& entry_mut(std::size_t i) noexcept { return chunks_[i / kChunk][i % kChunk]; }
    // A slot: the key's high 32 bits (which give its home and are compared
    // before its entry is read: a probe past other keys stays in the slot
    // array) and its position + 1 (0: empty).
    struct Slot {
      std::uint32_t tag = 0;
      std::uint32_t pos = 0;
    };
    [[nodiscard]] static std::uint32_t tag_of(std::uint64_t key) noexcept {
      return static_cast<std::uint32_t>(key >> 32);
    }
    [[nodiscard]] std::size_t home(std::uint32_t tag) const noexcept;
    [[nodiscard]] std::size_t slot_of(std::uint64_t key) const noexcept;  // its slot; it must be there
    void grow();

    // Chunks of kChunk entries from common::chunk_allocate (huge-page slabs at
    // a million series).
    std::vector<common::ChunkArray<Entry>> chunks_;
    std::size_t size_ = 0;
    common::LargeArray<Slot> slots_;
    common::ProbeSpan span_;  // slots_'s geometry (common/flat_index.hpp)
  };
  struct Shard {
    mutable std::mutex mu;
    SeriesTable map;
  };
  struct ProcShard {               // one aggregation shard of the current processor instance
    std::uint64_t generation = 0;  // of the snapshot in progress or last applied
    std::uint64_t snapshot_id = 0;
    bool in_snapshot = false;
    bool snapshotted = false;
  };

  void start_instance(std::uint64_t instance, std::uint16_t shard_count) noexcept;
  // Cache hints for apply_series of the entry some entries ahead: its
  // series' family record, then that family's name (which reads the
  // record); nullptr for none.
  [[nodiscard]] const void* family_line(std::uint64_t key) const noexcept;
  [[nodiscard]] const void* family_name_line(std::uint64_t key) const noexcept;
  void apply_series(const metric::MetricEntryView& e, std::uint16_t shard) noexcept;
  void expire(std::uint64_t key) noexcept;
  void finish_snapshot(std::uint16_t shard) noexcept;
  std::uint32_t family_for(const metric::MetricEntryView& e) noexcept;
  [[nodiscard]] std::uint32_t find_family(std::string_view name) const noexcept;  // or kNoFamily
  // family_for, cheaper for a known series: `held` is the family it holds,
  // whose name is e.family (kNoFamily: a new series, or one renamed).
  std::uint32_t known_family(const metric::MetricEntryView& e, std::uint32_t held) noexcept;
  // The id of help's copy in help_texts_ (0 for an empty one). Reader thread; takes families_mu_ to add one.
  std::uint32_t intern_help(std::string_view help);
  // HELP `id` of `texts` (help_texts_ or a copy of it; 0: none).
  [[nodiscard]] static std::string_view help_in(const std::vector<const std::string*>& texts,
                                                std::uint32_t id) noexcept {
    return id == 0 ? std::string_view() : std::string_view(*texts[id]);
  }
  // f's HELP: the reader thread, or with families_mu_ held.
  [[nodiscard]] std::string_view help_of(const Family& f) const noexcept { return help_in(help_texts_, f.help_id); }
  [[nodiscard]] bool name_conflicts(std::uint32_t id) const noexcept;
  [[nodiscard]] Shard& shard_of(std::uint64_t key) noexcept { return shards_[key % kShards]; }

  Shard shards_[kShards];
  mutable std::mutex families_mu_;          // guards families_ structure and fields
  common::ChunkedVector<Family> families_;  // by id; chunks never move
  // Reader thread only:
  // Family ids by std::hash of their name (open addressing, 8 bytes a slot,
  // the name compared on a tag match); a node per family cost ~60 bytes more.
  common::FlatIndex family_ids_;
  common::StringArena names_;                             // every family name once
  std::unordered_map<std::string, std::uint32_t> helps_;  // every HELP text once, to its id (reader thread)
  // By id (0: none), pointing into helps_'s nodes (never freed); grows under families_mu_.
  std::vector<const std::string*> help_texts_{nullptr};
  std::vector<std::uint32_t> family_live_;  // live series per family
  std::vector<ProcShard> proc_;
  std::vector<std::uint64_t> retired_instances_;
  // Snapshot generations, 32 bits: a series of processor shard s holds 0 (not
  // in a snapshot yet), or the generation of the last snapshot of s, or of the
  // one in progress, since a snapshot's end erases every series of s it did
  // not mention; so a match is wrong only if 2^32 snapshots began between two
  // snapshots of one shard. 0 is skipped when the counter wraps.
  std::uint32_t next_generation_ = 1;
  // Bumped whenever the processor instance changes (Series::epoch).
  std::uint32_t instance_epoch_ = 1;
  std::uint16_t shard_count_ = 0;
  bool replacing_old_instance_ = false;
  mutable std::mutex proc_series_mu_;
  std::vector<std::uint64_t> proc_series_;  // live series per processor shard

  EntryRelabeler relabel_;  // reader thread only
  // Reader thread only: the keys of the series relabeling dropped, so each
  // counts once (until the processor expires it).
  std::unordered_set<std::uint64_t> relabel_dropped_keys_;
  // Reader thread only, with a relay ttl: when each relayed series was last
  // updated (monotonic ns), by key.
  std::int64_t relay_ttl_ns_ = 0;
  bool apply_prefetch_ = true;
  std::int64_t apply_now_ns_ = 0;
  std::unordered_map<std::uint64_t, std::int64_t> relayed_at_;
  std::uint64_t relay_untracked_ = 0;  // updates relayed_at_ had no memory for

  std::atomic<std::uint64_t> instance_{0};
  std::atomic<bool> complete_{false};
  // The last render's bytes (segments) per series walked, times 16: the next
  // one's buffers are sized from them.
  mutable std::atomic<std::size_t> render_body_rate_{0};
  mutable std::atomic<std::size_t> render_page_rate_{0};
  mutable std::atomic<std::size_t> render_segments_rate_{0};
  mutable SeriesStateCounters counters_;  // render() counts its rewrites
};

}  // namespace ringpipe::exporters
