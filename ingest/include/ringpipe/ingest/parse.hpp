#pragma once
// What every ingest parser shares: the reasons a line or sample is refused
// (names usable as metric labels), the per-thread counters a parser bumps,
// and SampleOutput, the adapter through which parsers append samples to a
// sample::BatchWriter. Parsers are pure: they read string_views into the
// packet, write samples and counters, never allocate, log or throw.

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "ringpipe/relabel/relabel.hpp"
#include "ringpipe/sample/sample_batch.hpp"

namespace ringpipe::ingest {

// Most tags one sample carries. StatsD refuses a sample with more
// (kTooManyTags): a cut tag list would merge different series.
inline constexpr std::size_t kMaxTags = 64;
// Most a StatsD sample may add to a total (2^53, the last integer a double
// counts by 1): a counter increment or gauge delta, an observation's value and
// weight, after the sample rate. A total of float64 additions this size cannot
// reach +Inf in any realistic number of samples; "a:1e308|c" twice would.
inline constexpr double kMaxAddition = 9007199254740992.0;
// Longest name a sample may have (the sample-batch format stores a uint16 length).
inline constexpr std::size_t kMaxNameBytes = 65535;

// Why input was refused. Unless noted, the line (Influx, Graphite) or the
// sample (StatsD) is dropped and the rest of the packet still counts.
enum class ParseError : std::uint8_t {
  kInvalidUtf8,                   // the line is not valid UTF-8
  kMalformedLine,                 // no name/value structure at all (e.g. StatsD line without ':')
  kEmptyName,                     // the metric name is empty
  kNameTooLong,                   // name longer than kMaxNameBytes
  kMixedTaggingStyles,            // StatsD: name tags and DogStatsD tags on one line
  kNotEnoughParts,                // StatsD: no '|' after the first ':'
  kInvalidExtendedAggregateType,  // StatsD: "a:1:2|c" (multi-value only for ms, h, d)
  kMalformedComponent,            // StatsD: fewer than 2 or more than 8 '|' parts, or an empty part
  kMalformedValue,                // the value is not a number (or a set member is empty)
  kNonFiniteValue,                // NaN/Inf where the options refuse them
  kInvalidSampleFactor,           // StatsD: "@x" unparsable (sample KEPT with rate 1), or an unknown section
  kSampleRateOutOfRange,          // StatsD: rate < 0, > 1 or not finite
  kMalformedContainerId,          // StatsD: "|c" without an id
  kMalformedTimestamp,            // a timestamp that is not an integer in range
  kUnknownType,                   // StatsD: type other than c, g, ms, h, d, s
  kMalformedTag,                  // StatsD: the tag is skipped, sample KEPT; Influx, Graphite: line dropped
  kTooManyTags,                   // more than kMaxTags. StatsD, Prometheus text: the sample (series) is
                                  // dropped, a cut tag set would merge series; Influx, Graphite, JSON:
                                  // the extra tags are skipped, sample KEPT
  kMalformedField,                // Influx: field without '=', bad key, unterminated string
  kTooManyFields,                 // Influx: more fields than the parser holds; the line is dropped
  kLineTooLong,                   // stream transports: line longer than the limit, skipped
  kInvalidJson,                   // JSON: not valid JSON (syntax, nesting too deep); the line is dropped
  kNotAnObject,                   // JSON: valid JSON but not an object; the line is dropped
  kMissingValue,                  // JSON: no value field; the line is dropped
  kMissingName,                   // JSON: no name field, or one that is not a string; the line is dropped
                                  // remote_write: a series without __name__; the series is dropped
  kTopicMismatch,                 // MQTT: the topic does not fit topic_template; the message is dropped
  kMessageTooLarge,               // MQTT: payload over max_message_bytes; the message is dropped
  // remote_write: the whole request is refused (HTTP 400/413/415) ...
  kBadSnappy,             // the body is not a snappy block
  kBadProtobuf,           // the uncompressed body is not a prompb WriteRequest
  kBodyTooLarge,          // body (or its uncompressed size) over the limit
  kUnsupportedMediaType,  // Content-Encoding other than snappy, Content-Type other than protobuf
  // ... or one series is refused (the rest of the request is written, HTTP 400).
  // Prometheus text (scrape): the line is dropped.
  kInvalidMetricName,  // the name is not [a-zA-Z_:][a-zA-Z0-9_:]*
  kInvalidLabelName,   // a label name not [a-zA-Z_][a-zA-Z0-9_]*
  kDuplicateLabel,     // the same label name twice in one series
  kTooManyLabels,      // more labels than max_labels (__name__ not counted)
  kMalformedMetadata,  // Prometheus text: a bad # HELP/# TYPE/# UNIT line; remote_write: a refused MetricMetadata
  kMissingEof,         // OpenMetrics: the body does not end with # EOF (its samples are kept)
  // StatsD: what a sample adds to a total (|value / rate| of a counter or an
  // observation, a gauge delta, an observation's weight 1/rate) is over
  // kMaxAddition; the sample is dropped.
  kValueOutOfRange,
  // remote_write: a native histogram sample (TimeSeries.histograms). A valid
  // one is carried as a kNativeHistogram entry; one that Prometheus takes but
  // the sample format cannot (a bucket key beyond the schema's
  // native_key_limit, where no finite value falls; an entry larger than a
  // whole batch) is dropped and counted here. One that breaks Prometheus'
  // rules (schema outside -4..8, spans that do not cover the buckets, a
  // negative bucket count, ...) refuses its series.
  kNativeHistogramDropped,
  kMalformedNativeHistogram,
  kCount,
};
inline constexpr std::size_t kParseErrorCount = static_cast<std::size_t>(ParseError::kCount);
// "malformed_value", ...: stable, snake_case, usable as a Prometheus label value.
[[nodiscard]] std::string_view parse_error_name(ParseError e) noexcept;

// Counters one parser (one thread) bumps; plain integers, the caller sums them.
// Not thread-safe: one ParseCounters per thread.
struct ParseCounters {
  std::uint64_t lines = 0;           // non-empty lines seen (comments excluded)
  std::uint64_t samples = 0;         // samples handed to the output
  std::uint64_t skipped_fields = 0;  // Influx string fields (not an error: no numeric value)
  std::array<std::uint64_t, kParseErrorCount> errors{};

  void count(ParseError e) noexcept { ++errors[static_cast<std::size_t>(e)]; }
  [[nodiscard]] std::uint64_t operator[](ParseError e) const noexcept { return errors[static_cast<std::size_t>(e)]; }
  [[nodiscard]] std::uint64_t total_errors() const noexcept;
  void add(const ParseCounters& other) noexcept;
};

// One thread's scratch for relabeling: the label set a sample is relabeled
// in and the tag list it is then written from (both keep their capacity).
struct RelabelScratch {
  relabel::LabelSet labels;
  std::vector<sample::Tag> tags;
};

// Where parsers put samples: appends to a BatchWriter and, when it is full,
// asks its owner (a transport) to `rotate` it — commit the batch and start a
// fresh one. Without a writer, or when rotation fails, samples are counted as
// dropped. One SampleOutput per thread; never allocates.
class SampleOutput {
 public:
  // Commits what `writer` holds and resets it onto fresh space; false = no space.
  using RotateFn = bool (*)(void* ctx) noexcept;

  SampleOutput() noexcept = default;
  explicit SampleOutput(sample::BatchWriter* writer, RotateFn rotate = nullptr, void* ctx = nullptr) noexcept
      : writer_(writer), rotate_(rotate), ctx_(ctx) {}

  // True when the sample was written. `family` (nullptr: none) marks a Prometheus sample.
  bool emit(sample::Kind kind, std::string_view name, double value, double sample_rate,
            std::span<const sample::Tag> tags, std::string_view str_value = {}, std::int64_t timestamp_ns = 0,
            const sample::Family* family = nullptr) noexcept;

  // A native histogram sample (remote_write) as a kNativeHistogram entry,
  // relabeled and rotated as emit() does; `family` is a histogram or
  // gaugehistogram one. `n` must keep the rules the sample reader checks
  // (the caller checks them): false then means not written, counted as
  // dropped (no space), too_large or by the rules.
  bool emit_native(std::string_view name, std::span<const sample::Tag> tags, const sample::NativeSample& n,
                   const sample::Family& family, std::int64_t timestamp_ns) noexcept;

  void set_writer(sample::BatchWriter* writer) noexcept { writer_ = writer; }
  // Relabels every sample with `rules` before it is written (its name as
  // `__name__`, its tags, MQTT's extra labels included, as labels); nullptr
  // (the default): samples are written as parsed. `scratch` is this thread's.
  void set_relabel(const relabel::Rules* rules, RelabelScratch* scratch) noexcept {
    relabel_ = rules;
    relabel_scratch_ = scratch;
    slow_ = !extra_.empty() || relabel_ != nullptr;
  }
  // Labels appended to every sample's own (MQTT topic levels) until cleared
  // with an empty span; `scratch` (owned by the caller, at least
  // 2 * kMaxTags) holds the merged list. Extras beyond kMaxTags in all are
  // not written.
  void set_extra_tags(std::span<const sample::Tag> extra, std::span<sample::Tag> scratch) noexcept {
    extra_ = extra;
    scratch_ = scratch;
    slow_ = !extra_.empty() || relabel_ != nullptr;
  }
  [[nodiscard]] std::uint64_t written() const noexcept { return written_; }
  // No space: no writer, or rotation refused (ring full).
  [[nodiscard]] std::uint64_t dropped() const noexcept { return dropped_; }
  // Larger than a whole batch: can never be written.
  [[nodiscard]] std::uint64_t too_large() const noexcept { return too_large_; }
  // Dropped by a keep/drop/keepequal/dropequal rule.
  [[nodiscard]] std::uint64_t relabel_dropped() const noexcept { return relabel_dropped_; }
  // Left by the rules without a name, or (a Prometheus sample) with one
  // Prometheus refuses: dropped.
  [[nodiscard]] std::uint64_t relabel_invalid_name() const noexcept { return relabel_invalid_name_; }
  void reset_counts() noexcept { written_ = dropped_ = too_large_ = relabel_dropped_ = relabel_invalid_name_ = 0; }

 private:
  bool write(sample::Kind kind, std::string_view name, double value, double sample_rate,
             std::span<const sample::Tag> tags, std::string_view str_value, std::int64_t timestamp_ns,
             const sample::Family* family) noexcept;
  bool emit_slow(sample::Kind kind, std::string_view name, double value, double sample_rate,
                 std::span<const sample::Tag> tags, std::string_view str_value, std::int64_t timestamp_ns,
                 const sample::Family* family) noexcept;
  bool emit_relabeled(sample::Kind kind, std::string_view name, double value, double sample_rate,
                      std::span<const sample::Tag> tags, std::string_view str_value, std::int64_t timestamp_ns,
                      const sample::Family* family) noexcept;

  // Append one entry: a kNativeHistogram one from native_ (set by emit_native only).
  bool append(sample::Kind kind, std::string_view name, double value, double sample_rate,
              std::span<const sample::Tag> tags, std::string_view str_value, std::int64_t timestamp_ns,
              const sample::Family* family) noexcept;

  sample::BatchWriter* writer_ = nullptr;
  const sample::NativeSample* native_ = nullptr;
  const relabel::Rules* relabel_ = nullptr;
  RelabelScratch* relabel_scratch_ = nullptr;
  std::span<const sample::Tag> extra_;
  bool slow_ = false;  // extra_ or relabel_ set: emit() leaves its one-function path
  std::span<sample::Tag> scratch_;
  RotateFn rotate_ = nullptr;
  void* ctx_ = nullptr;
  std::uint64_t written_ = 0;
  std::uint64_t dropped_ = 0;
  std::uint64_t too_large_ = 0;
  std::uint64_t relabel_dropped_ = 0;
  std::uint64_t relabel_invalid_name_ = 0;
};

enum class Protocol : std::uint8_t { kStatsd, kInflux, kGraphite, kJson };
[[nodiscard]] std::string_view protocol_name(Protocol p) noexcept;

}  // namespace ringpipe::ingest
