#include "ringpipe/ingest/influx_parser.hpp"

#include <cstring>
#include <limits>

#include "text.hpp"

namespace ringpipe::ingest {
namespace {

constexpr std::size_t kScratchBytes = 1u << 16;

bool is_space(char c) noexcept { return c == ' ' || c == '\t'; }

// Index of the first unescaped char of `stops` at or after i (a backslash hides the next char).
template <std::size_t N>
std::size_t scan_to(std::string_view s, std::size_t i, const char (&stops)[N]) noexcept {
  while (i < s.size()) {
    const char c = s[i];
    if (c == '\\') {
      i += 2;
      continue;
    }
    for (std::size_t k = 0; k + 1 < N; ++k) {
      if (c == stops[k]) return i;
    }
    ++i;
  }
  return s.size();
}

// Booleans as InfluxDB spells them.
int parse_bool(std::string_view v) noexcept {
  if (v == "t" || v == "T" || v == "true" || v == "True" || v == "TRUE") return 1;
  if (v == "f" || v == "F" || v == "false" || v == "False" || v == "FALSE") return 0;
  return -1;
}

}  // namespace

InfluxParser::InfluxParser(const InfluxOptions& options)
    : options_(options),
      fields_(std::make_unique<Field[]>(kMaxInfluxFields)),
      scratch_(std::make_unique<char[]>(kScratchBytes)),
      scratch_size_(kScratchBytes),
      name_(std::make_unique<char[]>(kMaxNameBytes)) {}

void InfluxParser::parse_packet(std::string_view packet, SampleOutput& out, ParseCounters& counters) noexcept {
  text::for_each_line(packet, [&](std::string_view line) { parse_line(line, out, counters); });
}

void InfluxParser::parse_line(std::string_view line, SampleOutput& out, ParseCounters& counters) noexcept {
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  std::size_t i = 0;
  while (i < line.size() && is_space(line[i])) ++i;
  line.remove_prefix(i);
  if (line.empty() || line[0] == '#') return;  // blank line or comment
  ++counters.lines;
  if (!text::valid_utf8(line)) {
    counters.count(ParseError::kInvalidUtf8);
    return;
  }

  std::size_t scratch_used = 0;
  bool scratch_overflow = false;
  // Removes \, \  \= \" (InfluxDB's escapes); any other backslash stays.
  auto unescape = [&](std::string_view raw) -> std::string_view {
    if (raw.find('\\') == std::string_view::npos) return raw;
    if (raw.size() > scratch_size_ - scratch_used) {
      scratch_overflow = true;
      return raw;
    }
    char* dst = scratch_.get() + scratch_used;
    std::size_t n = 0;
    for (std::size_t k = 0; k < raw.size(); ++k) {
      if (raw[k] == '\\' && k + 1 < raw.size() &&
          (raw[k + 1] == ',' || raw[k + 1] == ' ' || raw[k + 1] == '=' || raw[k + 1] == '"')) {
        ++k;
      }
      dst[n++] = raw[k];
    }
    scratch_used += n;
    return std::string_view(dst, n);
  };

  // measurement
  i = scan_to(line, 0, ", ");
  const std::string_view measurement = unescape(line.substr(0, i));
  if (measurement.empty()) {
    counters.count(ParseError::kEmptyName);
    return;
  }

  // tags
  std::size_t ntags = 0;
  bool too_many = false;
  while (i < line.size() && line[i] == ',') {
    ++i;
    const std::size_t eq = scan_to(line, i, "=, ");
    if (eq >= line.size() || line[eq] != '=' || eq == i) {
      counters.count(ParseError::kMalformedTag);
      return;
    }
    const std::size_t end = std::min(scan_to(line, eq + 1, ", "), line.size());
    if (end == eq + 1) {
      counters.count(ParseError::kMalformedTag);
      return;
    }
    const std::string_view key = unescape(line.substr(i, eq - i));
    const std::string_view value = unescape(line.substr(eq + 1, end - eq - 1));
    if (ntags < tags_.size()) {
      tags_[ntags++] = sample::Tag{key, value};
    } else {
      too_many = true;
    }
    i = end;
  }
  // Refused, never cut: the same measurement with a tag set cut at kMaxTags
  // would merge two series into one.
  if (too_many) {
    counters.count(ParseError::kTooManyTags);
    return;
  }
  if (i >= line.size() || !is_space(line[i])) {
    counters.count(ParseError::kMalformedLine);  // no field set
    return;
  }
  while (i < line.size() && is_space(line[i])) ++i;

  // fields
  std::size_t nfields = 0;
  std::size_t skipped = 0;
  for (;;) {
    const std::size_t eq = scan_to(line, i, "=, \t");
    if (eq >= line.size() || line[eq] != '=' || eq == i) {
      counters.count(ParseError::kMalformedField);
      return;
    }
    const std::string_view key = line.substr(i, eq - i);
    i = eq + 1;
    if (i >= line.size()) {
      counters.count(ParseError::kMalformedField);
      return;
    }
    if (line[i] == '"') {  // string: skipped, but it must be well-formed
      std::size_t k = i + 1;
      while (k < line.size() && line[k] != '"') k += line[k] == '\\' ? 2 : 1;
      if (k >= line.size()) {
        counters.count(ParseError::kMalformedField);
        return;
      }
      i = k + 1;
      ++skipped;
    } else {
      std::size_t end = i;
      while (end < line.size() && line[end] != ',' && !is_space(line[end])) ++end;
      const std::string_view v = line.substr(i, end - i);
      i = end;
      double value = 0;
      bool ok = true;
      bool numeric = true;
      if (v.empty()) {
        ok = false;
      } else if (v.back() == 'i') {
        std::int64_t n = 0;
        ok = text::parse_int64(v.substr(0, v.size() - 1), n);
        value = static_cast<double>(n);
      } else if (v.back() == 'u') {
        std::uint64_t n = 0;
        ok = text::parse_uint64(v.substr(0, v.size() - 1), n);
        value = static_cast<double>(n);
      } else if (const int b = parse_bool(v); b >= 0) {
        value = b;
        numeric = options_.booleans_as_numbers;
      } else {
        ok = text::parse_decimal(v, value);
      }
      if (!ok) {
        counters.count(ParseError::kMalformedValue);
        return;
      }
      if (!numeric) {
        ++skipped;
      } else if (nfields == kMaxInfluxFields) {
        counters.count(ParseError::kTooManyFields);
        return;
      } else {
        fields_[nfields++] = Field{key, value};
      }
    }
    if (i < line.size() && line[i] == ',') {
      ++i;
      continue;
    }
    break;
  }

  // timestamp
  std::int64_t timestamp_ns = 0;
  if (i < line.size()) {
    if (!is_space(line[i])) {
      counters.count(ParseError::kMalformedField);  // e.g. a"b" or 1.5x
      return;
    }
    while (i < line.size() && is_space(line[i])) ++i;
    std::size_t end = i;
    while (end < line.size() && !is_space(line[end])) ++end;
    std::size_t after = end;
    while (after < line.size() && is_space(line[after])) ++after;
    if (end > i) {
      std::int64_t ts = 0;
      const std::int64_t f = precision_factor(options_.precision);
      if (after != line.size() || !text::parse_int64(line.substr(i, end - i), ts) ||
          ts > std::numeric_limits<std::int64_t>::max() / f || ts < std::numeric_limits<std::int64_t>::min() / f) {
        counters.count(ParseError::kMalformedTimestamp);
        return;
      }
      timestamp_ns = ts * f;
    }
  }

  for (std::size_t f = 0; f < nfields; ++f) fields_[f].key = unescape(fields_[f].key);
  if (scratch_overflow) {
    counters.count(ParseError::kLineTooLong);
    return;
  }
  counters.skipped_fields += skipped;
  if (nfields == 0) return;
  if (measurement.size() + 1 > kMaxNameBytes) {
    counters.count(ParseError::kNameTooLong);
    return;
  }
  std::memcpy(name_.get(), measurement.data(), measurement.size());
  name_[measurement.size()] = '_';
  const std::span<const sample::Tag> tags(tags_.data(), ntags);
  for (std::size_t f = 0; f < nfields; ++f) {
    const std::string_view key = fields_[f].key;
    const std::size_t n = measurement.size() + 1 + key.size();
    if (n > kMaxNameBytes) {
      counters.count(ParseError::kNameTooLong);
      continue;
    }
    std::memcpy(name_.get() + measurement.size() + 1, key.data(), key.size());
    ++counters.samples;
    out.emit(sample::Kind::kGauge, std::string_view(name_.get(), n), fields_[f].value, 1.0, tags, {}, timestamp_ns);
  }
}

}  // namespace ringpipe::ingest
