#include "ringpipe/ingest/parse.hpp"

#include <algorithm>

#include "ringpipe/ingest/line_parser.hpp"

namespace ringpipe::ingest {

std::string_view parse_error_name(ParseError e) noexcept {
  switch (e) {
    case ParseError::kInvalidUtf8:
      return "invalid_utf8";
    case ParseError::kMalformedLine:
      return "malformed_line";
    case ParseError::kEmptyName:
      return "empty_name";
    case ParseError::kNameTooLong:
      return "name_too_long";
    case ParseError::kMixedTaggingStyles:
      return "mixed_tagging_styles";
    case ParseError::kNotEnoughParts:
      return "not_enough_parts_after_colon";
    case ParseError::kInvalidExtendedAggregateType:
      return "invalid_extended_aggregate_type";
    case ParseError::kMalformedComponent:
      return "malformed_component";
    case ParseError::kMalformedValue:
      return "malformed_value";
    case ParseError::kNonFiniteValue:
      return "non_finite_value";
    case ParseError::kInvalidSampleFactor:
      return "invalid_sample_factor";
    case ParseError::kSampleRateOutOfRange:
      return "sample_rate_out_of_range";
    case ParseError::kMalformedContainerId:
      return "malformed_container_id";
    case ParseError::kMalformedTimestamp:
      return "malformed_timestamp";
    case ParseError::kUnknownType:
      return "unknown_type";
    case ParseError::kMalformedTag:
      return "malformed_tag";
    case ParseError::kTooManyTags:
      return "too_many_tags";
    case ParseError::kMalformedField:
      return "malformed_field";
    case ParseError::kTooManyFields:
      return "too_many_fields";
    case ParseError::kLineTooLong:
      return "line_too_long";
    case ParseError::kInvalidJson:
      return "invalid_json";
    case ParseError::kNotAnObject:
      return "not_an_object";
    case ParseError::kMissingValue:
      return "missing_value";
    case ParseError::kMissingName:
      return "missing_name";
    case ParseError::kTopicMismatch:
      return "topic_mismatch";
    case ParseError::kMessageTooLarge:
      return "message_too_large";
    case ParseError::kBadSnappy:
      return "bad_snappy";
    case ParseError::kBadProtobuf:
      return "bad_protobuf";
    case ParseError::kBodyTooLarge:
      return "body_too_large";
    case ParseError::kUnsupportedMediaType:
      return "unsupported_media_type";
    case ParseError::kInvalidMetricName:
      return "invalid_metric_name";
    case ParseError::kInvalidLabelName:
      return "invalid_label_name";
    case ParseError::kDuplicateLabel:
      return "duplicate_label";
    case ParseError::kTooManyLabels:
      return "too_many_labels";
    case ParseError::kMalformedMetadata:
      return "malformed_metadata";
    case ParseError::kValueOutOfRange:
      return "value_out_of_range";
    case ParseError::kMissingEof:
      return "missing_eof";
    case ParseError::kNativeHistogramDropped:
      return "native_histogram_dropped";
    case ParseError::kMalformedNativeHistogram:
      return "malformed_native_histogram";
    case ParseError::kCount:
      break;
  }
  return "unknown";
}

std::string_view protocol_name(Protocol p) noexcept {
  switch (p) {
    case Protocol::kStatsd:
      return "statsd";
    case Protocol::kInflux:
      return "influx";
    case Protocol::kGraphite:
      return "graphite";
    case Protocol::kJson:
      return "json";
  }
  return "unknown";
}

std::uint64_t ParseCounters::total_errors() const noexcept {
  std::uint64_t n = 0;
  for (const std::uint64_t e : errors) n += e;
  return n;
}

void ParseCounters::add(const ParseCounters& other) noexcept {
  lines += other.lines;
  samples += other.samples;
  skipped_fields += other.skipped_fields;
  for (std::size_t i = 0; i < kParseErrorCount; ++i) errors[i] += other.errors[i];
}

// Inlined into emit(): the path of every sample of a source without rules
// stays one function, as it was before relabeling.
[[gnu::always_inline]] inline bool SampleOutput::append(sample::Kind kind, std::string_view name, double value,
                                                        double sample_rate, std::span<const sample::Tag> tags,
                                                        std::string_view str_value, std::int64_t timestamp_ns,
                                                        const sample::Family* family) noexcept {
  if (kind == sample::Kind::kNativeHistogram) [[unlikely]] {
    return native_ != nullptr && family != nullptr &&
           writer_->append_native(name, tags, *native_, *family, timestamp_ns);
  }
  return writer_->append(kind, name, value, sample_rate, tags, str_value, timestamp_ns, family);
}

[[gnu::always_inline]] inline bool SampleOutput::write(sample::Kind kind, std::string_view name, double value,
                                                       double sample_rate, std::span<const sample::Tag> tags,
                                                       std::string_view str_value, std::int64_t timestamp_ns,
                                                       const sample::Family* family) noexcept {
  // Lengths the format cannot store must not look like "batch full" (which rotates).
  bool fits = name.size() <= kMaxNameBytes && str_value.size() <= kMaxNameBytes;
  for (const sample::Tag& t : tags) fits = fits && t.key.size() <= kMaxNameBytes && t.value.size() <= kMaxNameBytes;
  if (family != nullptr) fits = fits && family->help.size() <= kMaxNameBytes && family->unit.size() <= UINT8_MAX;
  if (!fits) {
    ++too_large_;
    return false;
  }
  if (writer_ == nullptr) {
    ++dropped_;
    return false;
  }
  // BatchWriter memcpy()s str_value even when empty; a null pointer there is UB.
  if (str_value.data() == nullptr) str_value = std::string_view("", 0);
  if (append(kind, name, value, sample_rate, tags, str_value, timestamp_ns, family)) {
    ++written_;
    return true;
  }
  if (writer_->empty()) {  // a fresh batch cannot hold it: never will
    ++too_large_;
    return false;
  }
  if (rotate_ == nullptr || !rotate_(ctx_)) {
    writer_ = nullptr;  // no space until the owner hands a new writer
    ++dropped_;
    return false;
  }
  if (append(kind, name, value, sample_rate, tags, str_value, timestamp_ns, family)) {
    ++written_;
    return true;
  }
  ++too_large_;
  return false;
}

bool SampleOutput::emit(sample::Kind kind, std::string_view name, double value, double sample_rate,
                        std::span<const sample::Tag> tags, std::string_view str_value, std::int64_t timestamp_ns,
                        const sample::Family* family) noexcept {
  // One test, as before relabeling: extra labels or rules take the other path.
  if (slow_) [[unlikely]] {
    return emit_slow(kind, name, value, sample_rate, tags, str_value, timestamp_ns, family);
  }
  return write(kind, name, value, sample_rate, tags, str_value, timestamp_ns, family);
}

bool SampleOutput::emit_native(std::string_view name, std::span<const sample::Tag> tags, const sample::NativeSample& n,
                               const sample::Family& family, std::int64_t timestamp_ns) noexcept {
  native_ = &n;
  const bool ok = emit(sample::Kind::kNativeHistogram, name, 0, 1, tags, {}, timestamp_ns, &family);
  native_ = nullptr;
  return ok;
}

[[gnu::noinline]] bool SampleOutput::emit_slow(sample::Kind kind, std::string_view name, double value,
                                               double sample_rate, std::span<const sample::Tag> tags,
                                               std::string_view str_value, std::int64_t timestamp_ns,
                                               const sample::Family* family) noexcept {
  if (!extra_.empty()) {
    const std::size_t own = std::min(tags.size(), scratch_.size());
    std::copy_n(tags.begin(), own, scratch_.begin());
    const std::size_t more = std::min({extra_.size(), scratch_.size() - own, 2 * kMaxTags - own});
    std::copy_n(extra_.begin(), more, scratch_.begin() + static_cast<std::ptrdiff_t>(own));
    tags = std::span<const sample::Tag>(scratch_.data(), own + more);
  }
  if (relabel_ != nullptr) {
    return emit_relabeled(kind, name, value, sample_rate, tags, str_value, timestamp_ns, family);
  }
  return write(kind, name, value, sample_rate, tags, str_value, timestamp_ns, family);
}

// Out of line and only with rules: a source without relabel_configs (and
// without MQTT's extra labels) pays the one test in emit(), as before.
bool SampleOutput::emit_relabeled(sample::Kind kind, std::string_view name, double value, double sample_rate,
                                  std::span<const sample::Tag> tags, std::string_view str_value,
                                  std::int64_t timestamp_ns, const sample::Family* family) noexcept {
  RelabelScratch& s = *relabel_scratch_;
  try {  // the scratch's strings grow (allocate) until they fit the largest sample seen
    s.labels.clear();
    for (const sample::Tag& t : tags) s.labels.set(t.key, t.value);
    s.labels.set(relabel::kMetricNameLabel, name);
    if (!relabel_->apply(s.labels)) {
      ++relabel_dropped_;
      return false;
    }
    s.labels.sort();
    const std::string_view new_name = s.labels.get(relabel::kMetricNameLabel);
    if (new_name.empty() || (family != nullptr && !relabel::valid_metric_name(new_name))) {
      ++relabel_invalid_name_;
      return false;
    }
    s.tags.clear();
    for (const relabel::Label& l : s.labels.labels()) {
      if (l.name != relabel::kMetricNameLabel) s.tags.push_back(sample::Tag{l.name, l.value});
    }
    // A renamed Prometheus sample keeps its family while its name still ends
    // in the family's suffix (_bucket, _sum, _count); otherwise it is a
    // family of its own, untyped.
    sample::Family renamed;
    if (family != nullptr && new_name != name) {
      renamed = *family;
      const std::string_view suffix = name.substr(name.size() - family->suffix_len);
      if (new_name.size() <= suffix.size() || new_name.substr(new_name.size() - suffix.size()) != suffix) {
        if (family->suffix_len != 0) renamed.type = sample::FamilyType::kUntyped;
        renamed.suffix_len = 0;
      }
      family = &renamed;
    }
    return write(kind, new_name, value, sample_rate, s.tags, str_value, timestamp_ns, family);
  } catch (...) {  // out of memory: the sample is lost, counted as too large to write
    ++too_large_;
    return false;
  }
}

namespace {
using ParserVariant = std::variant<StatsdParser, InfluxParser, GraphiteParser, JsonParser>;
ParserVariant make_parser(const ParserOptions& o) {
  switch (o.protocol) {
    case Protocol::kInflux:
      return ParserVariant(std::in_place_type<InfluxParser>, o.influx);
    case Protocol::kGraphite:
      return ParserVariant(std::in_place_type<GraphiteParser>, o.graphite);
    case Protocol::kJson:
      return ParserVariant(std::in_place_type<JsonParser>, o.json);
    case Protocol::kStatsd:
      break;
  }
  return ParserVariant(std::in_place_type<StatsdParser>, o.statsd);
}
}  // namespace

LineParser::LineParser(const ParserOptions& options) : protocol_(options.protocol), parser_(make_parser(options)) {}

}  // namespace ringpipe::ingest
