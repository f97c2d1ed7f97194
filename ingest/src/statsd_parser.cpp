#include "ringpipe/ingest/statsd_parser.hpp"

#include <cmath>
#include <cstring>
#include <limits>

#include "text.hpp"

namespace ringpipe::ingest {
namespace {

constexpr std::string_view kContainerIdKey = "container_id";

enum class StatType : std::uint8_t { kUnknown, kCounter, kGauge, kTimer, kHistogram, kDistribution, kSet };

StatType stat_type(std::string_view t) noexcept {
  if (t.size() == 1) {
    switch (t[0]) {
      case 'c':
        return StatType::kCounter;
      case 'g':
        return StatType::kGauge;
      case 'h':
        return StatType::kHistogram;
      case 'd':
        return StatType::kDistribution;
      case 's':
        return StatType::kSet;
      default:
        return StatType::kUnknown;
    }
  }
  return t == "ms" ? StatType::kTimer : StatType::kUnknown;
}
constexpr std::int64_t kNanosPerSecond = 1'000'000'000;

// Calls f(piece) for each ','-separated piece the way statsd_exporter does:
// an empty piece before a ',' counts, a trailing empty piece does not.
template <class F>
void for_each_comma_piece(std::string_view list, F&& f) noexcept {
  std::size_t start = 0;
  for (std::size_t i = 0; i < list.size(); ++i) {
    if (list[i] == ',') {
      f(list.substr(start, i - start));
      start = i + 1;
    }
  }
  if (start < list.size()) f(list.substr(start));
}

}  // namespace

struct StatsdParser::Line {
  std::string_view name;
  std::size_t name_tags = 0;  // tags_[0, name_tags) came from the name
  std::size_t tag_count = 0;  // tags_[0, tag_count) apply to the current sample
  bool too_many_counted = false;
};

StatsdParser::StatsdParser(const StatsdOptions& options)
    : options_(options), name_buf_(std::make_unique<char[]>(kMaxNameBytes)) {}

void StatsdParser::parse_packet(std::string_view packet, SampleOutput& out, ParseCounters& counters) noexcept {
  text::for_each_line(packet, [&](std::string_view line) { parse_line(line, out, counters); });
}

namespace {

// Adds or replaces (last wins, like statsd_exporter's label map) a tag.
void add_tag(std::span<sample::Tag> tags, std::size_t& n, bool& too_many_counted, std::string_view key,
             std::string_view value, ParseCounters& counters) noexcept {
  for (std::size_t i = 0; i < n; ++i) {
    if (tags[i].key == key) {
      tags[i].value = value;
      return;
    }
  }
  if (n == tags.size()) {
    if (!too_many_counted) counters.count(ParseError::kTooManyTags);
    too_many_counted = true;
    return;
  }
  tags[n++] = sample::Tag{key, value};
}

// One "k<sep>v" tag; a malformed one is counted and skipped.
void parse_tag(std::string_view tag, char sep, std::span<sample::Tag> tags, std::size_t& n, bool& too_many,
               ParseCounters& counters) noexcept {
  const std::size_t at = tag.find(sep);
  if (tag.empty() || at == std::string_view::npos || at == 0 || at + 1 == tag.size()) {
    counters.count(ParseError::kMalformedTag);
    return;
  }
  add_tag(tags, n, too_many, tag.substr(0, at), tag.substr(at + 1), counters);
}

}  // namespace

bool StatsdParser::parse_name_and_tags(std::string_view raw, Line& l, ParseCounters& counters) noexcept {
  l.name = raw;
  auto name_tag_list = [&](std::string_view list) {
    for_each_comma_piece(
        list, [&](std::string_view t) { parse_tag(t, '=', tags_, l.tag_count, l.too_many_counted, counters); });
  };
  // One pass finds every delimiter the enabled tag styles use.
  constexpr std::size_t kNone = std::string_view::npos;
  std::size_t open = kNone;
  std::size_t close = kNone;
  std::size_t name_tags_at = kNone;  // first Librato '#' or InfluxDB ','
  for (std::size_t i = 0; i < raw.size(); ++i) {
    const char c = raw[i];
    if (c == '[') {
      if (open == kNone) open = i;
    } else if (c == ']') {
      if (close == kNone) close = i;
    } else if ((c == '#' && options_.librato_tags) || (c == ',' && options_.influxdb_tags)) {
      if (name_tags_at == kNone) name_tags_at = i;
    }
  }
  if (options_.signalfx_tags && (open != kNone || close != kNone)) {
    if (open == kNone || close == kNone || close < open) {  // unbalanced: not tags; keep the name as it is
      counters.count(ParseError::kMalformedTag);
      return true;
    }
    name_tag_list(raw.substr(open + 1, close - open - 1));
    const std::string_view before = raw.substr(0, open);
    const std::string_view after = raw.substr(close + 1);
    if (after.empty()) {
      l.name = before;
    } else if (before.empty()) {
      l.name = after;
    } else {
      const std::size_t n = before.size() + after.size();
      if (n > kMaxNameBytes) {
        counters.count(ParseError::kNameTooLong);
        return false;
      }
      std::memcpy(name_buf_.get(), before.data(), before.size());
      std::memcpy(name_buf_.get() + before.size(), after.data(), after.size());
      l.name = std::string_view(name_buf_.get(), n);
    }
    l.name_tags = l.tag_count;
    return true;
  }
  if (name_tags_at != kNone) {
    name_tag_list(raw.substr(name_tags_at + 1));
    l.name = raw.substr(0, name_tags_at);
  }
  l.name_tags = l.tag_count;
  return true;
}

void StatsdParser::parse_line(std::string_view line, SampleOutput& out, ParseCounters& counters) noexcept {
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  if (line.empty()) return;
  ++counters.lines;
  if (!text::valid_utf8(line)) {
    counters.count(ParseError::kInvalidUtf8);
    return;
  }
  const std::size_t colon = line.find(':');
  if (colon == std::string_view::npos) {
    counters.count(ParseError::kMalformedLine);
    return;
  }
  Line l;
  if (colon == 0 || !parse_name_and_tags(line.substr(0, colon), l, counters)) {
    if (colon == 0) counters.count(ParseError::kEmptyName);
    return;
  }
  if (l.name.empty()) {
    counters.count(ParseError::kEmptyName);
    return;
  }
  if (l.name.size() > kMaxNameBytes) {
    counters.count(ParseError::kNameTooLong);
    return;
  }
  const std::string_view rest = line.substr(colon + 1);
  const bool dogstatsd = rest.find("|#") != std::string_view::npos;
  if (dogstatsd && l.name_tags > 0) {
    counters.count(ParseError::kMixedTaggingStyles);
    return;
  }
  const std::size_t bar = rest.find('|');
  if (bar == std::string_view::npos) {
    counters.count(ParseError::kNotEnoughParts);
    return;
  }
  const std::string_view values = rest.substr(0, bar);
  if (values.find(':') != std::string_view::npos) {
    // DogStatsD extended aggregation: "a:1:2:3|ms|@0.5" = three samples sharing the suffix.
    const std::string_view suffix = rest.substr(bar + 1);
    const std::string_view type = suffix.substr(0, suffix.find('|'));
    if (type != "ms" && type != "h" && type != "d") {
      counters.count(ParseError::kInvalidExtendedAggregateType);
      return;
    }
    std::size_t start = 0;
    for (;;) {
      const std::size_t next = values.find(':', start);
      parse_sample(values.substr(start, next == std::string_view::npos ? std::string_view::npos : next - start), suffix,
                   l, out, counters);
      if (next == std::string_view::npos) break;
      start = next + 1;
    }
    return;
  }
  if (dogstatsd) {
    parse_sample(values, rest.substr(bar + 1), l, out, counters);
    return;
  }
  // Several samples per line: "a:1|c:2|g" (only without DogStatsD tags).
  std::size_t start = 0;
  for (;;) {
    const std::size_t next = rest.find(':', start);
    const std::string_view seg =
        rest.substr(start, next == std::string_view::npos ? std::string_view::npos : next - start);
    const std::size_t b = seg.find('|');
    if (b == std::string_view::npos) {
      counters.count(ParseError::kMalformedComponent);
    } else {
      parse_sample(seg.substr(0, b), seg.substr(b + 1), l, out, counters);
    }
    if (next == std::string_view::npos) break;
    start = next + 1;
  }
}

void StatsdParser::parse_sample(std::string_view value_str, std::string_view rest, Line& l, SampleOutput& out,
                                ParseCounters& counters) noexcept {
  // rest = "type[|section...]"; statsd_exporter allows 2..8 parts in all,
  // and an empty section anywhere spoils the sample before any is interpreted.
  // One pass finds both.
  std::size_t parts = 2;
  bool empty_section = false;
  std::size_t type_end = std::string_view::npos;
  for (std::size_t i = 0; i < rest.size(); ++i) {
    if (rest[i] != '|') continue;
    ++parts;
    if (type_end == std::string_view::npos) {
      type_end = i;
    } else if (rest[i - 1] == '|') {
      empty_section = true;
    }
  }
  if (type_end != std::string_view::npos && rest.back() == '|') empty_section = true;
  if (parts > 8) {
    counters.count(ParseError::kMalformedComponent);
    return;
  }
  const std::string_view type = rest.substr(0, type_end);
  const std::string_view sections = type_end == std::string_view::npos ? std::string_view{} : rest.substr(type_end + 1);
  const StatType t = stat_type(type);
  const bool is_set = t == StatType::kSet;

  double value = 0;
  if (is_set) {
    if (value_str.empty()) {
      counters.count(ParseError::kMalformedValue);
      return;
    }
  } else if (!text::parse_float(value_str, value)) {
    counters.count(ParseError::kMalformedValue);
    return;
  }
  if (empty_section) {
    counters.count(ParseError::kMalformedComponent);
    return;
  }

  const bool uses_rate =
      t == StatType::kCounter || t == StatType::kTimer || t == StatType::kHistogram || t == StatType::kDistribution;
  l.tag_count = l.name_tags;
  l.too_many_counted = false;
  double rate = 1.0;
  double counter_divisor = 1.0;
  std::int64_t timestamp_ns = 0;
  std::size_t start = 0;
  while (type_end != std::string_view::npos && start < sections.size()) {
    const std::size_t next = sections.find('|', start);
    const std::string_view s =
        sections.substr(start, next == std::string_view::npos ? std::string_view::npos : next - start);
    start = next == std::string_view::npos ? sections.size() : next + 1;
    switch (s[0]) {
      case '@': {
        double f = 0;
        if (!text::parse_float(s.substr(1), f)) {
          counters.count(ParseError::kInvalidSampleFactor);  // statsd_exporter keeps the sample, rate 1
          f = 1;
        }
        if (f == 0) f = 1;
        if (!uses_rate) break;  // gauges and sets ignore the rate
        if (!(f > 0 && f <= 1)) {
          counters.count(ParseError::kSampleRateOutOfRange);
          return;
        }
        rate = f;
        counter_divisor *= f;
        break;
      }
      case '#':
        if (options_.dogstatsd_tags) {
          for_each_comma_piece(s.substr(1), [&](std::string_view tag) {
            if (!tag.empty() && tag[0] == '#') tag.remove_prefix(1);
            parse_tag(tag, ':', tags_, l.tag_count, l.too_many_counted, counters);
          });
        }
        break;
      case 'c':
        if (s.size() > 2 && s[1] == ':') {
          add_tag(tags_, l.tag_count, l.too_many_counted, kContainerIdKey, s.substr(2), counters);
        } else {
          counters.count(ParseError::kMalformedContainerId);
          return;
        }
        break;
      case 'T': {
        std::int64_t secs = 0;
        constexpr std::int64_t kMaxSecs = std::numeric_limits<std::int64_t>::max() / kNanosPerSecond;
        if (s.size() < 2 || !text::parse_int64(s.substr(1), secs) || secs > kMaxSecs || secs < -kMaxSecs) {
          counters.count(ParseError::kMalformedTimestamp);
          return;
        }
        timestamp_ns = secs * kNanosPerSecond;
        break;
      }
      default:
        counters.count(ParseError::kInvalidSampleFactor);  // statsd_exporter's reason for an unknown section
        return;
    }
  }

  sample::Kind kind;
  double sample_rate = 1.0;
  switch (t) {
    case StatType::kCounter:
      kind = sample::Kind::kCounter;
      value /= counter_divisor;  // the rate is applied here, so the weight stays 1
      break;
    case StatType::kGauge:
      kind = (value_str[0] == '+' || value_str[0] == '-') ? sample::Kind::kGaugeDelta : sample::Kind::kGauge;
      break;
    case StatType::kTimer:
      kind = sample::Kind::kTimer;
      value /= 1000.0;
      sample_rate = rate;
      break;
    case StatType::kHistogram:
      kind = sample::Kind::kHistogram;
      sample_rate = rate;
      break;
    case StatType::kDistribution:
      kind = sample::Kind::kDistribution;
      sample_rate = rate;
      break;
    case StatType::kSet:
      kind = sample::Kind::kSet;
      break;
    case StatType::kUnknown:
    default:
      counters.count(ParseError::kUnknownType);
      return;
  }
  if (options_.reject_non_finite && !is_set && !std::isfinite(value)) {
    counters.count(ParseError::kNonFiniteValue);
    return;
  }
  ++counters.samples;
  out.emit(kind, l.name, value, sample_rate, std::span<const sample::Tag>(tags_.data(), l.tag_count),
           is_set ? value_str : std::string_view{}, timestamp_ns);
}

}  // namespace ringpipe::ingest
