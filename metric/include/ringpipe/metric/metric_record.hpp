#pragma once
// The metric-batch record: how a processor publishes aggregated series into
// its output ring and how exporters read them in place. One ring record (type
// kMetricBatchRecord) carries a MetricBatchHeader followed by `entry_count`
// entries; FORMAT.md beside this part holds the byte layout and the snapshot
// protocol. Every field is little-endian, every entry starts 8-byte aligned.
// MetricBatchWriter and MetricBatchReader are single-thread objects; the
// reader never trusts the bytes (they come from shared memory).

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <string_view>
#include <utility>

namespace ringpipe::metric {

inline constexpr std::uint16_t kMetricBatchRecord = 2;  // ring record type
inline constexpr std::uint16_t kMetricFormatVersion = 2;
// A batch holding timestamped entries (kEntryTimestamp) is written as version
// 3 with kBatchTimestamps set, so a reader that knows only version 2 refuses
// it whole (and counts it) instead of reading the timestamp as values. A
// batch without them stays version 2. MetricBatchReader reads both.
inline constexpr std::uint16_t kMetricFormatVersionTimestamps = 3;
inline constexpr std::uint16_t kBatchTimestamps = 1;  // MetricBatchHeader::flags
// A batch holding native histograms (kEntryNative) is version 4 with
// kBatchNative set (and kBatchTimestamps too when it also holds timestamped
// entries), refused whole by a reader that knows only versions 2 and 3.
inline constexpr std::uint16_t kMetricFormatVersionNative = 4;
inline constexpr std::uint16_t kBatchNative = 2;
// An exporter asks the processors writing a metrics ring for a full snapshot
// by creating a file of this name beside the ring: "<ring>.resync".
inline constexpr std::string_view kResyncSuffix = ".resync";

// The Prometheus type of a family. Sets are published as kGauge with kFromSet.
// kUntyped and the OpenMetrics types come only with kEntryPromSample.
enum class MetricType : std::uint8_t {
  kCounter = 1,
  kGauge = 2,
  kSummary = 3,
  kHistogram = 4,
  kUntyped = 5,
  kInfo = 6,
  kStateset = 7,
  kGaugeHistogram = 8,
};
[[nodiscard]] std::string_view metric_type_name(MetricType t) noexcept;

enum class EntryKind : std::uint8_t {
  kSeries = 1,         // the full current value(s) of one series (never a delta)
  kExpire = 2,         // the series is gone (TTL or restart); delete it
  kSnapshotBegin = 3,  // from here to kSnapshotEnd this shard writes every live series
  kSnapshotEnd = 4,
};
[[nodiscard]] std::string_view entry_kind_name(EntryKind k) noexcept;

inline constexpr std::uint16_t kEntryFromSet = 1;  // a gauge counting distinct set members
// One sample of a Prometheus family as it was scraped or remote-written: one
// value, the sample's own name (`foo_bucket`), the family's name its first
// family_len bytes (`foo`), `type` the family's type.
inline constexpr std::uint16_t kEntryPromSample = 2;
// One sample at its own time (a relay processor: no aggregation): an i64
// timestamp_ns (ns since the Unix epoch) follows the entry header, before the
// values. Only in a version-3 batch.
inline constexpr std::uint16_t kEntryTimestamp = 4;
// A histogram series with a native (exponential) histogram beside its classic
// buckets: its values start with the native part (see below), then the
// classic ones. Only on an aggregated histogram series, in a version-4 batch.
inline constexpr std::uint16_t kEntryNative = 8;
// The native part: [schema, zero_threshold, zero_count, n_pos, n_neg,
// n_pos (key, count) pairs, n_neg (key, count) pairs], keys strictly increasing.
inline constexpr std::size_t kNativeHeadValues = 5;

struct MetricBatchHeader {
  std::uint16_t format_version;  // kMetricFormatVersion, kMetricFormatVersionTimestamps or kMetricFormatVersionNative
  std::uint16_t flags;  // kBatchTimestamps in a version-3 batch, kBatchNative (| kBatchTimestamps) in 4, else 0
  std::uint32_t entry_count;
  std::uint32_t bytes;        // whole batch: header + entries
  std::uint16_t shard;        // which aggregation shard wrote it
  std::uint16_t shard_count;  // shards of this processor instance
  std::uint64_t instance_id;  // random per processor start: a change means state was lost
  std::uint64_t flush_seq;    // per shard, +1 per flush
  std::int64_t flush_ns;      // CLOCK_REALTIME at the flush
};
static_assert(sizeof(MetricBatchHeader) == 40, "MetricBatchHeader is part of the on-ring format");

struct MetricEntryHeader {
  std::uint32_t size;   // this entry: header + values + strings, padded to 8
  std::uint8_t kind;    // EntryKind
  std::uint8_t type;    // MetricType (0 for snapshot markers)
  std::uint16_t flags;  // kEntryFromSet, kEntryPromSample, kEntryTimestamp, kEntryNative
  std::uint64_t key;    // series id (64-bit hash of name + sorted labels) or snapshot id
  std::uint16_t name_len;
  std::uint16_t help_len;
  std::uint16_t label_count;
  std::uint16_t value_count;   // doubles right after this header
  std::uint32_t labels_bytes;  // bytes of the encoded labels
  std::uint16_t family_len;    // kEntryPromSample: bytes of name that are the family's name; else 0
  std::uint16_t unit_len;      // the family's UNIT, after help
};
static_assert(sizeof(MetricEntryHeader) == 32, "MetricEntryHeader is part of the on-ring format");
static_assert(sizeof(MetricBatchHeader) % 8 == 0 && sizeof(MetricEntryHeader) % 8 == 0,
              "entries and their values stay 8-byte aligned");

// Each label is LabelHeader + name bytes + value bytes (not padded).
struct LabelHeader {
  std::uint16_t name_len;
  std::uint16_t value_len;
};
static_assert(sizeof(LabelHeader) == 4, "LabelHeader is part of the on-ring format");

struct Label {
  std::string_view name;
  std::string_view value;
};

// Calls f(Label) for each label of encoded label bytes (validated when
// decoded). The walk stays inside `bytes` even if they changed since (shared
// memory): it then stops early rather than read past them.
template <class F>
void for_each_label(std::span<const std::byte> bytes, std::uint16_t count, F&& f) {
  const std::byte* p = bytes.data();
  std::size_t left = bytes.size();
  for (std::uint16_t i = 0; i < count && left >= sizeof(LabelHeader); ++i) {
    LabelHeader lh;
    std::memcpy(&lh, p, sizeof lh);
    p += sizeof lh;
    left -= sizeof lh;
    if (std::size_t{lh.name_len} + lh.value_len > left) return;
    const std::string_view n(reinterpret_cast<const char*>(p), lh.name_len);
    p += lh.name_len;
    const std::string_view v(reinterpret_cast<const char*>(p), lh.value_len);
    p += lh.value_len;
    left -= std::size_t{lh.name_len} + lh.value_len;
    f(Label{n, v});
  }
}

// Values by type (value_count doubles):
//   counter, gauge: [value]
//   summary:        [count, sum, q1, v1, q2, v2, ...]       (v = NaN when the window is empty)
//   histogram:      [count, sum, le1, c1, ..., +Inf, count] (cumulative counts)
//   expire, markers: none
// With kEntryNative the native part precedes them in the record; the view's
// values are the classic ones above and `native` the validated native part.
struct NativeView {
  std::int32_t schema = 0;
  double zero_threshold = 0;
  double zero_count = 0;
  std::uint32_t positive_count = 0;  // (key, count) pairs
  std::uint32_t negative_count = 0;
  std::span<const std::byte> pairs;  // positive pairs, then negative ones: doubles, maybe unaligned

  [[nodiscard]] std::pair<std::int32_t, double> pair(std::size_t i) const noexcept {
    double kv[2] = {0, 0};
    if ((i + 1) * 2 * sizeof(double) <= pairs.size()) std::memcpy(kv, pairs.data() + i * 2 * sizeof(double), sizeof kv);
    return {static_cast<std::int32_t>(kv[0]), kv[1]};
  }
  [[nodiscard]] std::pair<std::int32_t, double> positive(std::size_t i) const noexcept { return pair(i); }
  [[nodiscard]] std::pair<std::int32_t, double> negative(std::size_t i) const noexcept {
    return pair(positive_count + i);
  }
};

struct MetricEntryView {
  EntryKind kind;
  MetricType type;  // unspecified for markers
  std::uint16_t flags;
  std::uint64_t key;
  std::string_view name;
  std::string_view help;
  std::string_view unit;
  std::string_view family;                 // the family's name: name, or its prefix for kEntryPromSample
  std::span<const std::byte> label_bytes;  // validated: exactly label_count labels
  std::uint16_t label_count;
  std::span<const std::byte> value_bytes;  // value_count doubles, maybe unaligned
  std::uint16_t value_count;
  std::int64_t timestamp_ns;  // the sample's own time with kEntryTimestamp; else 0
  NativeView native;          // with kEntryNative; else empty

  [[nodiscard]] double value(std::size_t i) const noexcept {
    double d = 0;
    if (i < value_count) std::memcpy(&d, value_bytes.data() + i * sizeof(double), sizeof d);
    return d;
  }
  template <class F>
  void for_each_label(F&& f) const {
    metric::for_each_label(label_bytes, label_count, static_cast<F&&>(f));
  }
};

// One series to encode; labels are already encoded (LabelHeader format).
struct SeriesEntry {
  EntryKind kind = EntryKind::kSeries;  // kSeries or kExpire
  MetricType type = MetricType::kGauge;
  std::uint16_t flags = 0;
  std::uint64_t key = 0;
  std::string_view name;
  std::string_view help;
  std::string_view unit;         // at most 65535 bytes
  std::uint16_t family_len = 0;  // kEntryPromSample: at most name's length
  std::span<const std::byte> label_bytes;
  std::uint16_t label_count = 0;
  std::span<const double> values;  // with kEntryNative: the native part, then the classic values
  std::int64_t timestamp_ns = 0;   // written only by append_stamped()
};

// Bytes one entry takes, padded to 8: as append() writes it, and as
// append_stamped() does (8 more: the timestamp).
[[nodiscard]] std::size_t entry_size(const SeriesEntry& e) noexcept;
[[nodiscard]] std::size_t stamped_entry_size(const SeriesEntry& e) noexcept;
inline constexpr std::size_t kMarkerEntrySize = sizeof(MetricEntryHeader);

// Identity of the writer, copied into each batch header.
struct BatchOrigin {
  std::uint16_t shard = 0;
  std::uint16_t shard_count = 1;
  std::uint64_t instance_id = 0;
  std::uint64_t flush_seq = 0;
  std::int64_t flush_ns = 0;
};

// Appends entries into a caller-provided buffer (usually a ring claim).
class MetricBatchWriter {
 public:
  MetricBatchWriter(std::span<std::byte> buffer, const BatchOrigin& origin) noexcept;

  // False (and nothing written) when the entry does not fit or a field is too
  // long. append() writes no timestamp and e.flags as given (never with
  // kEntryTimestamp); append_stamped() writes e.timestamp_ns and sets that
  // flag, which makes the batch version 3.
  [[nodiscard]] bool append(const SeriesEntry& e) noexcept;
  [[nodiscard]] bool append_stamped(const SeriesEntry& e) noexcept;
  [[nodiscard]] bool append_marker(EntryKind kind, std::uint64_t snapshot_id) noexcept;
  [[nodiscard]] std::uint32_t entry_count() const noexcept { return count_; }
  [[nodiscard]] bool empty() const noexcept { return count_ == 0; }
  // Finalises the header; returns the bytes used (header + entries).
  std::size_t finish() noexcept;

 private:
  template <bool kStamped>
  [[nodiscard]] bool append_entry(const SeriesEntry& e) noexcept;

  std::span<std::byte> buf_;
  std::size_t used_;
  std::uint32_t count_ = 0;
  bool timestamps_ = false;  // an entry carries kEntryTimestamp: the batch is version 3
  bool native_ = false;      // an entry carries kEntryNative: the batch is version 4
  BatchOrigin origin_;
};

enum class MetricDecodeError : std::uint8_t {
  kNone = 0,
  kTruncatedHeader,
  kBadVersion,
  kBadLength,
  kBadEntry,
  kBadKind,
  kBadType,
  kBadLabels,
};
[[nodiscard]] std::string_view metric_decode_error_name(MetricDecodeError e) noexcept;

// Iterates over a metric-batch record. Validates every offset and length before
// use; on the first malformed entry next() returns nullopt and error() says why.
class MetricBatchReader {
 public:
  explicit MetricBatchReader(std::span<const std::byte> record) noexcept;

  [[nodiscard]] const MetricBatchHeader& header() const noexcept { return header_; }
  [[nodiscard]] std::optional<MetricEntryView> next() noexcept;
  [[nodiscard]] MetricDecodeError error() const noexcept { return error_; }

 private:
  std::span<const std::byte> rec_;
  MetricBatchHeader header_{};
  std::size_t offset_ = 0;
  std::uint32_t index_ = 0;
  MetricDecodeError error_ = MetricDecodeError::kNone;
};

}  // namespace ringpipe::metric
