#pragma once
// The sample-batch record: how ingest writes samples into a ring and how
// processors read them in place. One ring record (type kSampleBatchRecord)
// carries one batch: a BatchHeader followed by `sample_count` entries. The
// byte layout is in sample/FORMAT.md; every field is little-endian and every
// entry starts 8-byte aligned. BatchWriter and BatchReader are single-thread
// objects; BatchReader never trusts the bytes (they come from shared memory).

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <string_view>
#include <utility>

#include "ringpipe/sample/native_schema.hpp"

namespace ringpipe::sample {

inline constexpr std::uint16_t kSampleBatchRecord = 1;  // ring record type
inline constexpr std::uint16_t kFormatVersion = 2;      // a batch without native histogram samples
// A batch with at least one kNativeHistogram entry (sample/FORMAT.md); a
// reader takes both, a writer writes 3 only when it has to.
inline constexpr std::uint16_t kFormatVersionNative = 3;

enum class Kind : std::uint8_t {
  kCounter = 1,
  kGauge = 2,       // set to value
  kGaugeDelta = 3,  // add value (signed) to the gauge
  kTimer = 4,       // seconds (ingest converts ms)
  kHistogram = 5,
  kDistribution = 6,
  kSet = 7,  // the member is str_value; value is unused
  // A Prometheus native histogram sample (remote_write's Histogram): the
  // NativeHeader and buckets follow the SampleHeader; value is unused. Only
  // in a kFormatVersionNative batch, with a histogram or gaugehistogram family.
  kNativeHistogram = 8,
};
[[nodiscard]] std::string_view kind_name(Kind k) noexcept;

// The Prometheus type of the family a sample came in (scrape `# TYPE`,
// remote_write metadata). kNone: not a Prometheus sample (StatsD and the other
// push protocols). Any other value marks a Prometheus sample: its name is kept
// as Prometheus allows it and its value is the series' value as scraped
// (kind is kGauge: set, never added).
enum class FamilyType : std::uint8_t {
  kNone = 0,
  kCounter = 1,
  kGauge = 2,
  kHistogram = 3,
  kSummary = 4,
  kUntyped = 5,
  kInfo = 6,
  kStateset = 7,
  kGaugeHistogram = 8,
};
inline constexpr std::uint8_t kMaxFamilyType = 8;

// A Prometheus sample's family: its type, HELP and UNIT, and how many bytes at
// the end of the sample's name are not the family's name ("_bucket" of a
// histogram's bucket sample: 7).
struct Family {
  FamilyType type = FamilyType::kNone;
  std::uint8_t suffix_len = 0;
  std::string_view help;
  std::string_view unit;  // at most 255 bytes
};

// Prometheus' Histogram.ResetHint.
enum class ResetHint : std::uint8_t { kUnknown = 0, kYes = 1, kNo = 2, kGauge = 3 };
inline constexpr std::uint8_t kMaxResetHint = 3;

// A native histogram sample as a writer hands it over: bucket counts are
// absolute (remote_write's deltas summed), keys strictly increasing per side.
struct NativeSample {
  std::int32_t schema = 0;  // -4..8
  ResetHint reset_hint = ResetHint::kUnknown;
  double zero_threshold = 0;
  double zero_count = 0;
  double count = 0;
  double sum = 0;
  std::span<const std::pair<std::int32_t, double>> positive;
  std::span<const std::pair<std::int32_t, double>> negative;
};

struct BatchHeader {
  std::uint16_t format_version;  // kFormatVersion
  std::uint16_t flags;           // 0
  std::uint32_t sample_count;
  std::uint32_t source_id;   // which source wrote it (pipeline-defined)
  std::uint32_t bytes;       // whole batch: header + entries
  std::int64_t received_ns;  // CLOCK_REALTIME when the packet arrived
};
static_assert(sizeof(BatchHeader) == 24, "BatchHeader is part of the on-ring format");

struct SampleHeader {
  double value;
  double sample_rate;         // (0, 1]; weight = 1 / sample_rate
  std::int64_t timestamp_ns;  // 0 = none (use the batch's received_ns)
  std::uint32_t size;         // this entry: header + name + str_value + tags, padded to 8
  std::uint16_t name_len;
  std::uint16_t tag_count;
  std::uint16_t str_len;     // string value (set member)
  std::uint8_t kind;         // Kind
  std::uint8_t family_type;  // FamilyType; 0 = not a Prometheus sample
  std::uint16_t help_len;    // the family's HELP
  std::uint8_t unit_len;     // the family's UNIT
  std::uint8_t suffix_len;   // bytes at the end of name that are not the family's name
};
static_assert(sizeof(SampleHeader) == 40, "SampleHeader is part of the on-ring format");
// A kNativeHistogram entry's fixed part, right after its SampleHeader (so
// 8-byte aligned); positive_count then negative_count NativeBuckets follow
// it, then the entry's strings and tags as in any entry.
struct NativeHeader {
  std::int32_t schema;  // -4..8
  std::uint32_t positive_count;
  std::uint32_t negative_count;
  std::uint8_t reset_hint;   // ResetHint
  std::uint8_t reserved[3];  // 0
  double zero_threshold;     // finite, >= 0
  double zero_count;         // finite, >= 0
  double count;              // finite, >= 0
  double sum;
};
static_assert(sizeof(NativeHeader) == 48, "NativeHeader is part of the on-ring format");
struct NativeBucket {
  std::int32_t key;
  std::uint32_t reserved;  // 0
  double count;            // absolute, finite, >= 0
};
static_assert(sizeof(NativeBucket) == 16, "NativeBucket is part of the on-ring format");

// A decoded, bounds-checked native histogram sample; buckets point into the record.
struct NativeView {
  std::int32_t schema = 0;
  ResetHint reset_hint = ResetHint::kUnknown;
  double zero_threshold = 0;
  double zero_count = 0;
  double count = 0;
  double sum = 0;
  std::uint32_t positive_count = 0;
  std::uint32_t negative_count = 0;
  std::span<const std::byte> buckets;  // validated: (positive_count + negative_count) NativeBuckets

  // Bucket i (positive ones first, then negative): {key, count}. Read with
  // memcpy inside `buckets`; an index past them answers {0, 0}.
  [[nodiscard]] std::pair<std::int32_t, double> bucket(std::uint32_t i) const noexcept {
    NativeBucket b{};
    if (std::size_t{i} < buckets.size() / sizeof b)
      std::memcpy(&b, buckets.data() + std::size_t{i} * sizeof b, sizeof b);
    return {b.key, b.count};
  }
  [[nodiscard]] std::pair<std::int32_t, double> positive(std::uint32_t i) const noexcept { return bucket(i); }
  [[nodiscard]] std::pair<std::int32_t, double> negative(std::uint32_t i) const noexcept {
    return bucket(positive_count + i);
  }
};

// Each tag is TagHeader + key bytes + value bytes (not padded); the entry is padded at its end.
struct TagHeader {
  std::uint16_t key_len;
  std::uint16_t value_len;
};
static_assert(sizeof(TagHeader) == 4, "TagHeader is part of the on-ring format");

struct Tag {
  std::string_view key;
  std::string_view value;
};

// A decoded, bounds-checked view of one sample; its strings point into the record.
struct SampleView {
  Kind kind;
  double value;
  double sample_rate;
  std::int64_t timestamp_ns;
  std::string_view name;
  std::string_view str_value;
  std::span<const std::byte> tag_bytes;  // validated: exactly tag_count tags
  std::uint16_t tag_count;
  Family family;  // type kNone (and no strings) unless a Prometheus sample
  // A native histogram's part (its NativeHeader, checked by the reader), or
  // null unless kind is kNativeHistogram. A pointer, not a NativeView: every
  // sample is returned by value on the processor's hot path.
  const std::byte* native_at = nullptr;

  // The native histogram part; an empty view unless kind is kNativeHistogram.
  [[nodiscard]] NativeView native() const noexcept;

  // The family's name: the sample's name without its suffix.
  [[nodiscard]] std::string_view family_name() const noexcept {
    return name.substr(0, name.size() - family.suffix_len);
  }

  // Calls f(Tag) for each tag, in the order ingest wrote them. The walk is
  // bounded by tag_bytes again: the bytes may be shared memory that changed
  // since they were validated, and then it stops early rather than run off.
  template <class F>
  void for_each_tag(F&& f) const {
    const std::byte* p = tag_bytes.data();
    std::size_t left = tag_bytes.size();
    for (std::uint16_t i = 0; i < tag_count && left >= sizeof(TagHeader); ++i) {
      TagHeader th;
      std::memcpy(&th, p, sizeof th);
      p += sizeof th;
      left -= sizeof th;
      if (std::size_t{th.key_len} + th.value_len > left) return;
      const std::string_view k(reinterpret_cast<const char*>(p), th.key_len);
      p += th.key_len;
      const std::string_view v(reinterpret_cast<const char*>(p), th.value_len);
      p += th.value_len;
      left -= std::size_t{th.key_len} + th.value_len;
      f(Tag{k, v});
    }
  }
};

// Bytes one entry takes, padded; tells a writer whether a sample still fits.
[[nodiscard]] std::size_t entry_size(std::string_view name, std::string_view str_value, std::span<const Tag> tags,
                                     const Family* family = nullptr) noexcept;

// Appends samples into a caller-provided buffer (usually a ring claim).
class BatchWriter {
 public:
  BatchWriter(std::span<std::byte> buffer, std::uint32_t source_id, std::int64_t received_ns) noexcept;

  // False (and nothing written) when the sample does not fit or a field is too
  // long (a unit over 255 bytes, a suffix longer than the name). `family`
  // (nullptr: none) marks a Prometheus sample.
  [[nodiscard]] bool append(Kind kind, std::string_view name, double value, double sample_rate,
                            std::span<const Tag> tags, std::string_view str_value = {}, std::int64_t timestamp_ns = 0,
                            const Family* family = nullptr) noexcept;
  // Appends a copy of `entry`, one whole entry as append() laid it out in
  // an earlier batch (a writer that sends the same series again and again
  // encodes it once), with its value and sample rate replaced. The bytes are
  // the caller's own encoding and are not checked again. False (nothing
  // written) when it does not fit.
  [[nodiscard]] bool append_entry(std::span<const std::byte> entry, double value, double sample_rate) noexcept;
  // Appends a kNativeHistogram entry (the batch becomes version 3). False,
  // nothing written, when it does not fit, a field is too long, or the
  // sample breaks the rules the reader checks (schema, family type, keys,
  // counts).
  [[nodiscard]] bool append_native(std::string_view name, std::span<const Tag> tags, const NativeSample& n,
                                   const Family& family, std::int64_t timestamp_ns = 0) noexcept;
  [[nodiscard]] std::uint32_t sample_count() const noexcept { return count_; }
  [[nodiscard]] bool empty() const noexcept { return count_ == 0; }
  // Finalises the header; returns the bytes used (header + entries).
  std::size_t finish() noexcept;
  // Starts over on the same buffer (keeps source and time unless given).
  void reset(std::span<std::byte> buffer, std::int64_t received_ns) noexcept;

 private:
  std::span<std::byte> buf_;
  std::size_t used_;
  std::uint32_t count_ = 0;
  bool native_ = false;  // a kNativeHistogram entry is in the batch: version 3
  std::uint32_t source_id_;
  std::int64_t received_ns_;
};

enum class DecodeError : std::uint8_t {
  kNone = 0,
  kTruncatedHeader,
  kBadVersion,
  kBadLength,
  kBadEntry,
  kBadKind,
  kBadTags,
  kBadFamily,
  kBadNative,  // a native histogram part that breaks the rules (sample/FORMAT.md)
};
[[nodiscard]] std::string_view decode_error_name(DecodeError e) noexcept;

// Iterates over a batch record. Validates every offset and length before use;
// on the first malformed entry next() returns nullopt and error() says why.
class BatchReader {
 public:
  explicit BatchReader(std::span<const std::byte> record) noexcept;

  [[nodiscard]] const BatchHeader& header() const noexcept { return header_; }
  [[nodiscard]] std::optional<SampleView> next() noexcept;
  [[nodiscard]] DecodeError error() const noexcept { return error_; }

 private:
  std::span<const std::byte> rec_;
  BatchHeader header_{};
  std::size_t offset_ = 0;
  std::uint32_t index_ = 0;
  DecodeError error_ = DecodeError::kNone;
};

}  // namespace ringpipe::sample
