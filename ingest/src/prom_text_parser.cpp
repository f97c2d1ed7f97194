#include "ringpipe/ingest/prom_text_parser.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "prom_family.hpp"
#include "text.hpp"

namespace ringpipe::ingest {
namespace {

bool is_blank(char c) noexcept { return c == ' ' || c == '\t'; }
bool is_name_start(char c) noexcept { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':'; }
bool is_name_char(char c) noexcept { return is_name_start(c) || text::is_digit(c); }
bool is_label_start(char c) noexcept { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool is_label_char(char c) noexcept { return is_label_start(c) || text::is_digit(c); }

// Trims the blanks (and a '\r' the line splitter left) that Prometheus' lexer tolerates.
std::string_view trim(std::string_view s) noexcept {
  while (!s.empty() && (is_blank(s.front()) || s.front() == '\r')) s.remove_prefix(1);
  while (!s.empty() && (is_blank(s.back()) || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

void skip_blanks(std::string_view s, std::size_t& i) noexcept {
  while (i < s.size() && is_blank(s[i])) ++i;
}

// The token at i up to the next blank.
std::string_view token(std::string_view s, std::size_t& i) noexcept {
  const std::size_t start = i;
  while (i < s.size() && !is_blank(s[i])) ++i;
  return s.substr(start, i - start);
}

// A metric name at i (possibly empty).
std::string_view metric_name(std::string_view s, std::size_t& i) noexcept {
  const std::size_t start = i;
  if (i < s.size() && is_name_start(s[i])) {
    ++i;
    while (i < s.size() && is_name_char(s[i])) ++i;
  }
  return s.substr(start, i - start);
}

bool ends_with(std::string_view s, std::string_view suffix) noexcept {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

constexpr double kMaxSeconds = static_cast<double>(std::numeric_limits<std::int64_t>::max()) / 1e9;

// OpenMetrics timestamps are seconds, usually "1520879607.789": digits and a
// fraction are converted exactly (a double has no nanoseconds at this size);
// anything else (exponents, Go's other float forms) goes through a double.
bool seconds_to_ns(std::string_view s, std::int64_t& out) noexcept {
  const std::size_t dot = s.find('.');
  const std::string_view whole = s.substr(0, dot);
  const std::string_view frac = dot == std::string_view::npos ? std::string_view() : s.substr(dot + 1);
  std::int64_t sec = 0;
  // Whole seconds this far from 0 keep sec * 1e9 + ns inside int64.
  constexpr std::int64_t kMaxWholeSeconds = std::numeric_limits<std::int64_t>::max() / 1'000'000'000 - 1;
  const bool plain = !whole.empty() && whole.size() <= 10 && frac.size() <= 9 &&
                     std::all_of(frac.begin(), frac.end(), text::is_digit) && text::parse_int64(whole, sec) &&
                     sec <= kMaxWholeSeconds && sec >= -kMaxWholeSeconds;
  if (plain) {
    std::int64_t ns = 0;
    for (std::size_t k = 0; k < 9; ++k) ns = ns * 10 + (k < frac.size() ? frac[k] - '0' : 0);
    out = sec * 1'000'000'000 + (whole.front() == '-' ? -ns : ns);
    return true;
  }
  double seconds = 0;
  if (!text::parse_float(s, seconds) || !std::isfinite(seconds) || std::fabs(seconds) >= kMaxSeconds) return false;
  out = static_cast<std::int64_t>(std::llround(seconds * 1e9));
  return true;
}

}  // namespace

PromFormat prom_format_of(std::string_view content_type) noexcept {
  constexpr std::string_view kOm = "application/openmetrics-text";
  while (!content_type.empty() && is_blank(content_type.front())) content_type.remove_prefix(1);
  if (content_type.size() < kOm.size()) return PromFormat::kText;
  for (std::size_t i = 0; i < kOm.size(); ++i) {
    const char c = content_type[i];
    if ((c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c) != kOm[i]) return PromFormat::kText;
  }
  return content_type.size() == kOm.size() || content_type[kOm.size()] == ';' || is_blank(content_type[kOm.size()])
             ? PromFormat::kOpenMetrics
             : PromFormat::kText;
}

PromTextParser::PromTextParser(PromTextOptions options) : options_(std::move(options)) {
  options_.max_labels = std::min(options_.max_labels, kMaxTags);
  for (const sample::Tag& t : options_.target_labels) exported_names_.push_back("exported_" + std::string(t.key));
  tags_.resize(options_.max_labels + options_.target_labels.size());
  unescaped_.resize(options_.max_line_bytes);
  family_.reserve(options_.max_line_bytes);
  help_.reserve(options_.max_line_bytes);
  unit_.reserve(options_.max_line_bytes);
}

bool PromTextParser::created_of_family(std::string_view name) const noexcept {
  switch (family_type_) {
    case Type::kCounter:
    case Type::kHistogram:
    case Type::kSummary:
    case Type::kGaugeHistogram:
      return name.size() == family_.size() + 8 && name.starts_with(family_) && ends_with(name, "_created");
    default:
      return false;
  }
}

void PromTextParser::parse(std::string_view body, PromFormat format, SampleOutput& out,
                           ParseCounters& counters) noexcept {
  const bool openmetrics = format == PromFormat::kOpenMetrics;
  family_.clear();
  family_type_ = Type::kUntyped;
  help_.clear();
  unit_.clear();
  bool eof = false;
  text::for_each_line(body, [&](std::string_view raw) {
    if (raw.size() > options_.max_line_bytes) {
      ++counters.lines;
      counters.count(ParseError::kLineTooLong);
      return;
    }
    const std::string_view line = trim(raw);
    if (line.empty()) return;
    if (eof) {  // OpenMetrics: nothing may follow # EOF
      ++counters.lines;
      counters.count(ParseError::kMalformedLine);
      return;
    }
    if (line.front() == '#') {
      parse_comment(line, openmetrics, eof, counters);
      return;
    }
    ++counters.lines;
    parse_sample(line, openmetrics, out, counters);
  });
  if (openmetrics && !eof) counters.count(ParseError::kMissingEof);
}

void PromTextParser::parse_comment(std::string_view line, bool openmetrics, bool& eof, ParseCounters& c) noexcept {
  std::size_t i = 1;
  skip_blanks(line, i);
  const std::string_view keyword = token(line, i);
  if (keyword == "EOF") {
    if (openmetrics) eof = true;  // in the text format it is just a comment
    return;
  }
  const bool type = keyword == "TYPE";
  if (!type && keyword != "HELP" && keyword != "UNIT") return;  // any other comment
  skip_blanks(line, i);
  const std::string_view name = metric_name(line, i);
  if (name.empty() || (i < line.size() && !is_blank(line[i]))) {
    ++c.lines;
    c.count(ParseError::kMalformedMetadata);
    return;
  }
  if (name != family_) {   // metadata of another family: what was said of the last one ends here
    family_.assign(name);  // within the reserved capacity: the line is no longer than max_line_bytes
    family_type_ = Type::kUntyped;
    help_.clear();
    unit_.clear();
  }
  if (keyword == "HELP") {
    // The text after one blank, with \\ and \n (and OpenMetrics' \") unescaped.
    if (i < line.size()) ++i;
    const std::string_view text = line.substr(std::min(i, line.size()));
    help_.clear();
    for (std::size_t k = 0; k < text.size(); ++k) {
      if (text[k] == '\\' && k + 1 < text.size()) {
        const char e = text[k + 1];
        if (e == 'n' || e == '\\' || (openmetrics && e == '"')) {
          help_.push_back(e == 'n' ? '\n' : e);
          ++k;
          continue;
        }
      }
      help_.push_back(text[k]);
    }
    if (!text::valid_utf8(help_)) {
      ++c.lines;
      c.count(ParseError::kInvalidUtf8);
      help_.clear();
    }
    return;
  }
  skip_blanks(line, i);
  if (keyword == "UNIT") {
    const std::string_view unit = token(line, i);
    skip_blanks(line, i);
    if (i < line.size() || unit.size() > UINT8_MAX) {
      ++c.lines;
      c.count(ParseError::kMalformedMetadata);
      return;
    }
    unit_.assign(unit);
    return;
  }
  const std::string_view t = token(line, i);
  skip_blanks(line, i);
  Type parsed;
  if (t == "counter") {
    parsed = Type::kCounter;
  } else if (t == "gauge") {
    parsed = Type::kGauge;
  } else if (t == "histogram") {
    parsed = Type::kHistogram;
  } else if (t == "summary") {
    parsed = Type::kSummary;
  } else if (t == "untyped" || t == "unknown") {
    parsed = Type::kUntyped;
  } else if (t == "gaugehistogram") {
    parsed = Type::kGaugeHistogram;
  } else if (t == "info") {
    parsed = Type::kInfo;
  } else if (t == "stateset") {
    parsed = Type::kStateset;
  } else {
    ++c.lines;
    c.count(t.empty() || i < line.size() ? ParseError::kMalformedMetadata : ParseError::kUnknownType);
    family_type_ = Type::kUntyped;  // the family's samples are untyped
    return;
  }
  if (i < line.size()) {
    ++c.lines;
    c.count(ParseError::kMalformedMetadata);
    return;
  }
  family_type_ = parsed;
}

void PromTextParser::parse_sample(std::string_view line, bool openmetrics, SampleOutput& out,
                                  ParseCounters& c) noexcept {
  std::size_t i = 0;
  const std::string_view name = metric_name(line, i);
  if (name.empty() || (i < line.size() && !is_blank(line[i]) && line[i] != '{')) {
    c.count(ParseError::kInvalidMetricName);
    return;
  }
  skip_blanks(line, i);
  std::size_t labels = 0;
  std::size_t scratch = 0;  // used bytes of unescaped_
  bool too_many = false;
  if (i < line.size() && line[i] == '{') {
    ++i;
    for (;;) {
      skip_blanks(line, i);
      if (i < line.size() && line[i] == '}') {
        ++i;
        break;
      }
      const std::size_t key_start = i;
      if (i < line.size() && is_label_start(line[i])) {
        ++i;
        while (i < line.size() && is_label_char(line[i])) ++i;
      }
      const std::string_view key = line.substr(key_start, i - key_start);
      skip_blanks(line, i);
      if (key.empty() || i >= line.size() || line[i] != '=') {
        c.count(ParseError::kMalformedTag);
        return;
      }
      ++i;
      skip_blanks(line, i);
      if (i >= line.size() || line[i] != '"') {
        c.count(ParseError::kMalformedTag);
        return;
      }
      ++i;
      // The value up to the closing quote; \\, \" and \n are unescaped, any
      // other escape is kept as written (as Prometheus' text parser does).
      const std::size_t value_start = i;
      bool escaped = false;
      while (i < line.size() && line[i] != '"') {
        if (line[i] == '\\') {
          escaped = true;
          ++i;
        }
        ++i;
      }
      if (i >= line.size()) {
        c.count(ParseError::kMalformedTag);
        return;
      }
      std::string_view value = line.substr(value_start, i - value_start);
      ++i;  // the closing quote
      if (escaped) {
        char* const begin = unescaped_.data() + scratch;
        char* o = begin;
        for (std::size_t k = 0; k < value.size(); ++k) {
          if (value[k] == '\\' && k + 1 < value.size()) {
            const char e = value[k + 1];
            if (e == 'n' || e == '\\' || e == '"') {
              *o++ = e == 'n' ? '\n' : e;
              ++k;
              continue;
            }
          }
          *o++ = value[k];
        }
        value = std::string_view(begin, static_cast<std::size_t>(o - begin));
        scratch += value.size();
      }
      if (!text::valid_utf8(value)) {
        c.count(ParseError::kInvalidUtf8);
        return;
      }
      for (std::size_t k = 0; k < labels; ++k) {
        if (tags_[k].key == key) {
          c.count(ParseError::kDuplicateLabel);
          return;
        }
      }
      // An empty value is no label at all in Prometheus' data model.
      if (!value.empty()) {
        if (labels < options_.max_labels) {
          tags_[labels++] = sample::Tag{key, value};
        } else {
          too_many = true;
        }
      }
      skip_blanks(line, i);
      if (i < line.size() && line[i] == ',') {
        ++i;
        continue;
      }
      if (i < line.size() && line[i] == '}') {
        ++i;
        break;
      }
      c.count(ParseError::kMalformedTag);
      return;
    }
    skip_blanks(line, i);
  }
  if (too_many) {
    c.count(ParseError::kTooManyTags);
    return;
  }
  double value = 0;
  if (!text::parse_float(token(line, i), value)) {
    c.count(ParseError::kMalformedValue);
    return;
  }
  skip_blanks(line, i);
  std::int64_t timestamp_ns = 0;
  if (i < line.size() && line[i] != '#') {
    const std::string_view ts = token(line, i);
    if (openmetrics) {
      if (!seconds_to_ns(ts, timestamp_ns)) {
        c.count(ParseError::kMalformedTimestamp);
        return;
      }
    } else {
      std::int64_t ms = 0;
      constexpr std::int64_t kMaxMs = std::numeric_limits<std::int64_t>::max() / 1'000'000;
      if (!text::parse_int64(ts, ms) || ms > kMaxMs || ms < -kMaxMs) {
        c.count(ParseError::kMalformedTimestamp);
        return;
      }
      timestamp_ns = ms * 1'000'000;
    }
    skip_blanks(line, i);
  }
  // Anything left must be an exemplar (" # {...} value [timestamp]"), which is skipped.
  if (i < line.size() && line[i] != '#') {
    c.count(ParseError::kMalformedLine);
    return;
  }
  if (created_of_family(name)) {
    ++c.skipped_fields;
    return;
  }
  std::size_t n = labels;
  for (std::size_t t = 0; t < options_.target_labels.size(); ++t) {
    const sample::Tag& target = options_.target_labels[t];
    bool clash = false;
    for (std::size_t k = 0; k < labels; ++k) {
      if (tags_[k].key != target.key) continue;
      clash = true;
      if (!options_.honor_labels) tags_[k].key = exported_names_[t];
    }
    if (!clash || !options_.honor_labels) tags_[n++] = target;
  }
  // A sample of the family the metadata named carries its type, HELP and UNIT;
  // any other is untyped, as Prometheus takes a sample without metadata.
  sample::Family fam{Type::kUntyped, 0, {}, {}};
  if (const std::optional<std::uint8_t> suffix = detail::family_suffix(family_type_, family_, name)) {
    fam = sample::Family{family_type_, *suffix, help_, unit_};
  }
  ++c.samples;
  out.emit(sample::Kind::kGauge, name, value, 1.0, std::span<const sample::Tag>(tags_.data(), n), {}, timestamp_ns,
           &fam);
}

}  // namespace ringpipe::ingest
