#include "ringpipe/ingest/json_parser.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>
#include <limits>

#include <simdjson.h>

#include "text.hpp"

namespace ringpipe::ingest {
namespace {

// Nesting deeper than this makes the line invalid_json; bounds simdjson's stack.
constexpr std::size_t kMaxDepth = 64;
// Room for one number as text: the shortest round-trip double is at most 24 chars.
constexpr std::size_t kNumberBytes = 32;

bool is_blank(char c) noexcept { return c == ' ' || c == '\t' || c == '\r'; }

// A timestamp in `factor` ns units to ns; false when it is not a number or out of range.
bool to_timestamp_ns(simdjson::dom::element v, std::int64_t factor, std::int64_t& out) noexcept {
  constexpr std::int64_t kMax = std::numeric_limits<std::int64_t>::max();
  switch (v.type()) {
    case simdjson::dom::element_type::INT64: {
      std::int64_t t = 0;
      if (v.get_int64().get(t) != simdjson::SUCCESS) return false;
      if (t > kMax / factor || t < -(kMax / factor)) return false;
      out = t * factor;
      return true;
    }
    case simdjson::dom::element_type::UINT64:
      return false;  // above INT64_MAX: out of range in every precision
    case simdjson::dom::element_type::DOUBLE: {
      double t = 0;
      if (v.get_double().get(t) != simdjson::SUCCESS) return false;
      // Below 2^63 by more than one unit of `factor`, so whole + fraction cannot overflow.
      constexpr double kLimitNs = 9.2e18;
      const double estimate = t * static_cast<double>(factor);
      if (!(estimate > -kLimitNs && estimate < kLimitNs)) return false;
      // Whole units and the fraction apart: t * factor in one double would round
      // 1700000000.25 s to a multiple of 256 ns.
      const double whole = std::floor(t);
      out = static_cast<std::int64_t>(whole) * factor +
            static_cast<std::int64_t>(std::llround((t - whole) * static_cast<double>(factor)));
      return true;
    }
    default:
      return false;
  }
}

// The sample value: a number, a boolean (1/0) or a string holding a decimal number.
bool to_value(simdjson::dom::element v, double& out) noexcept {
  switch (v.type()) {
    case simdjson::dom::element_type::INT64: {
      std::int64_t n = 0;
      if (v.get_int64().get(n) != simdjson::SUCCESS) return false;
      out = static_cast<double>(n);
      return true;
    }
    case simdjson::dom::element_type::UINT64: {
      std::uint64_t n = 0;
      if (v.get_uint64().get(n) != simdjson::SUCCESS) return false;
      out = static_cast<double>(n);
      return true;
    }
    case simdjson::dom::element_type::DOUBLE:
      return v.get_double().get(out) == simdjson::SUCCESS;
    case simdjson::dom::element_type::BOOL: {
      bool b = false;
      if (v.get_bool().get(b) != simdjson::SUCCESS) return false;
      out = b ? 1.0 : 0.0;
      return true;
    }
    case simdjson::dom::element_type::STRING: {
      std::string_view s;
      if (v.get_string().get(s) != simdjson::SUCCESS) return false;
      return text::parse_decimal(s, out);
    }
    default:
      return false;
  }
}

// A scalar as label text: strings as they are, numbers and booleans spelled
// out in `buf` (kNumberBytes). False for null, objects and arrays.
bool to_label(simdjson::dom::element v, char* buf, std::string_view& out) noexcept {
  std::to_chars_result r{};
  switch (v.type()) {
    case simdjson::dom::element_type::STRING:
      return v.get_string().get(out) == simdjson::SUCCESS;
    case simdjson::dom::element_type::INT64: {
      std::int64_t n = 0;
      if (v.get_int64().get(n) != simdjson::SUCCESS) return false;
      r = std::to_chars(buf, buf + kNumberBytes, n);
      break;
    }
    case simdjson::dom::element_type::UINT64: {
      std::uint64_t n = 0;
      if (v.get_uint64().get(n) != simdjson::SUCCESS) return false;
      r = std::to_chars(buf, buf + kNumberBytes, n);
      break;
    }
    case simdjson::dom::element_type::DOUBLE: {
      double d = 0;
      if (v.get_double().get(d) != simdjson::SUCCESS) return false;
      r = std::to_chars(buf, buf + kNumberBytes, d);
      break;
    }
    case simdjson::dom::element_type::BOOL: {
      bool b = false;
      if (v.get_bool().get(b) != simdjson::SUCCESS) return false;
      out = b ? std::string_view("true") : std::string_view("false");
      return true;
    }
    default:
      return false;
  }
  if (r.ec != std::errc()) return false;
  out = std::string_view(buf, static_cast<std::size_t>(r.ptr - buf));
  return true;
}

}  // namespace

JsonParser::JsonParser(const JsonOptions& options)
    : options_(options),
      parser_(std::make_unique<simdjson::dom::parser>()),
      numbers_(std::make_unique<char[]>(kMaxTags * kNumberBytes)) {
  options_.max_line_bytes = std::clamp<std::size_t>(options_.max_line_bytes, 1, kMaxJsonLineBytes);
  options_.max_labels = std::min(options_.max_labels, kMaxTags);
  line_ = std::make_unique<char[]>(options_.max_line_bytes + simdjson::SIMDJSON_PADDING);
  // Everything simdjson needs for the longest line, now, so parsing never
  // allocates. Out of memory here, simdjson tries again at the first line and
  // refuses that line (invalid_json) if it fails again.
  const simdjson::error_code allocated = parser_->allocate(options_.max_line_bytes, kMaxDepth);
  static_cast<void>(allocated);
}

JsonParser::~JsonParser() = default;
JsonParser::JsonParser(JsonParser&&) noexcept = default;
JsonParser& JsonParser::operator=(JsonParser&&) noexcept = default;

void JsonParser::parse_packet(std::string_view packet, SampleOutput& out, ParseCounters& counters) noexcept {
  text::for_each_line(packet, [&](std::string_view line) { parse_line(line, out, counters); });
}

void JsonParser::parse_line(std::string_view line, SampleOutput& out, ParseCounters& counters) noexcept {
  while (!line.empty() && is_blank(line.front())) line.remove_prefix(1);
  while (!line.empty() && is_blank(line.back())) line.remove_suffix(1);
  if (line.empty()) return;
  ++counters.lines;
  if (line.size() > options_.max_line_bytes) {
    counters.count(ParseError::kLineTooLong);
    return;
  }
  // simdjson reads up to SIMDJSON_PADDING bytes past the end: parse a padded copy.
  std::memcpy(line_.get(), line.data(), line.size());
  std::memset(line_.get() + line.size(), 0, simdjson::SIMDJSON_PADDING);
  simdjson::dom::element doc;
  const simdjson::error_code parsed =
      parser_->parse(reinterpret_cast<const std::uint8_t*>(line_.get()), line.size(), false).get(doc);
  if (parsed != simdjson::SUCCESS) {
    counters.count(parsed == simdjson::UTF8_ERROR ? ParseError::kInvalidUtf8 : ParseError::kInvalidJson);
    return;
  }
  simdjson::dom::object object;
  if (doc.get_object().get(object) != simdjson::SUCCESS) {
    counters.count(ParseError::kNotAnObject);
    return;
  }

  const bool fixed_name = !options_.name.empty();
  const bool has_ts_field = !options_.timestamp_field.empty();
  std::string_view name = options_.name;
  bool have_name = fixed_name;
  bool name_not_string = false;
  double value = 0;
  bool have_value = false;
  bool bad_value = false;
  std::int64_t timestamp_ns = 0;
  bool have_ts = false;
  bool bad_ts = false;
  std::size_t ntags = 0;
  std::size_t skipped = 0;
  bool too_many = false;
  bool bad_tag = false;
  for (simdjson::dom::key_value_pair field : object) {
    const std::string_view key = field.key;
    if (key == options_.value_field) {
      if (!have_value && !bad_value) {
        bad_value = !to_value(field.value, value);
        have_value = !bad_value;
      }
      continue;
    }
    if (!fixed_name && key == options_.name_field) {
      if (!have_name && !name_not_string) {
        have_name = field.value.get_string().get(name) == simdjson::SUCCESS;
        name_not_string = !have_name;
      }
      continue;
    }
    if (has_ts_field && key == options_.timestamp_field) {
      if (!have_ts && !bad_ts) {
        bad_ts = !to_timestamp_ns(field.value, precision_factor(options_.timestamp_precision), timestamp_ns);
        have_ts = !bad_ts;
      }
      continue;
    }
    const simdjson::dom::element_type type = field.value.type();
    if (type == simdjson::dom::element_type::NULL_VALUE || type == simdjson::dom::element_type::OBJECT ||
        type == simdjson::dom::element_type::ARRAY) {
      ++skipped;
      continue;
    }
    if (ntags >= options_.max_labels) {
      too_many = true;
      continue;
    }
    std::string_view label;
    if (key.empty() || !to_label(field.value, numbers_.get() + ntags * kNumberBytes, label)) {
      bad_tag = true;
      continue;
    }
    tags_[ntags++] = sample::Tag{key, label};
  }

  if (bad_value) {
    counters.count(ParseError::kMalformedValue);
    return;
  }
  if (!have_value) {
    counters.count(ParseError::kMissingValue);
    return;
  }
  if (!have_name && !name_not_string && !fallback_name_.empty()) {
    name = fallback_name_;
    have_name = true;
  }
  if (!have_name) {
    counters.count(ParseError::kMissingName);
    return;
  }
  if (name.empty()) {
    counters.count(ParseError::kEmptyName);
    return;
  }
  if (name.size() > kMaxNameBytes) {
    counters.count(ParseError::kNameTooLong);
    return;
  }
  if (bad_ts) {
    counters.count(ParseError::kMalformedTimestamp);
    return;
  }
  // Refused, never cut: a label set cut at max_labels would merge two series.
  if (too_many) {
    counters.count(ParseError::kTooManyTags);
    return;
  }
  if (bad_tag) counters.count(ParseError::kMalformedTag);
  counters.skipped_fields += skipped;
  ++counters.samples;
  out.emit(options_.kind, name, value, 1.0, std::span<const sample::Tag>(tags_.data(), ntags), {}, timestamp_ns);
}

}  // namespace ringpipe::ingest
