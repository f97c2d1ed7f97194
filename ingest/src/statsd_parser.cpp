#include "ringpipe/ingest/statsd_parser.hpp"

#include <array>
#include <bit>
#include <cmath>
#include <cstring>
#include <limits>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

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

// Calls f(piece, at) for each ','-separated piece the way statsd_exporter
// does (an empty piece before a ',' counts, a trailing empty piece does not),
// with `at` the position of the piece's first `sep` or npos: one pass finds both.
template <class F>
void for_each_comma_piece(std::string_view list, char sep, F&& f) noexcept {
  constexpr std::size_t kNone = std::string_view::npos;
  std::size_t start = 0;
  std::size_t at = kNone;
  for (std::size_t i = 0; i < list.size(); ++i) {
    const char c = list[i];
    if (c == ',') {
      f(text::sub(list, start, i - start), at);
      start = i + 1;
      at = kNone;
    } else if (c == sep && at == kNone) {
      at = i - start;
    }
  }
  if (start < list.size()) f(text::sub(list, start), at);
}

// The bytes parse_line's name scan stops at.
constexpr auto kNameDelimiter = [] {
  std::array<bool, 256> t{};
  for (const unsigned char c : {':', '[', ']', '#', ','}) t[c] = true;
  return t;
}();

// Position of the first byte of kNameDelimiter at or after `from`, or
// line.size(). Sixteen bytes per step where SSE2 is there (every x86-64):
// the byte-by-byte table walk it replaces was the StatsD source's largest
// user-space cost once BatchWriter::append stopped stalling, and its exit
// branch mispredicts with every change of name length. A line of 16 bytes or
// more ends with one load of its last 16 bytes, never past the line.
inline std::size_t next_name_delimiter(std::string_view line, std::size_t from) noexcept {
  std::size_t i = from;
#if defined(__SSE2__)
  const auto delimiters = [](const char* at) noexcept {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(at));
    const __m128i m = _mm_or_si128(
        _mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8(':')), _mm_cmpeq_epi8(v, _mm_set1_epi8('['))),
        _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8(']')), _mm_cmpeq_epi8(v, _mm_set1_epi8('#'))),
                     _mm_cmpeq_epi8(v, _mm_set1_epi8(','))));
    return static_cast<std::uint32_t>(_mm_movemask_epi8(m));
  };
  const std::size_t n = line.size();
  if (n >= 16) {
    for (; i + 16 <= n; i += 16) {
      const std::uint32_t bits = delimiters(line.data() + i);
      if (bits != 0) return i + static_cast<std::size_t>(std::countr_zero(bits));
    }
    if (i < n) {
      const std::size_t last = n - 16;  // i > last: the bytes before i are done
      const std::uint32_t bits = delimiters(line.data() + last) >> (i - last);
      return bits != 0 ? i + static_cast<std::size_t>(std::countr_zero(bits)) : n;
    }
    return n;
  }
#endif
  for (; i < line.size(); ++i) {
    if (kNameDelimiter[static_cast<unsigned char>(line[i])]) return i;
  }
  return line.size();
}

// "|#" anywhere: the line carries DogStatsD tags.
bool has_dogstatsd_tags(std::string_view rest) noexcept {
  for (std::size_t i = text::find_byte(rest, '|'); i != std::string_view::npos; i = text::find_byte(rest, '|', i + 1)) {
    if (i + 1 < rest.size() && rest[i + 1] == '#') return true;
  }
  return false;
}

}  // namespace

struct StatsdParser::Line {
  // Delimiters in the raw name (before the first ':'), found by parse_line's scan.
  std::size_t open = std::string_view::npos;          // first '['
  std::size_t close = std::string_view::npos;         // first ']'
  std::size_t name_tags_at = std::string_view::npos;  // first Librato '#' or InfluxDB ','
  std::string_view name;
  std::size_t name_tags = 0;  // tags_[0, name_tags) came from the name
  std::size_t tag_count = 0;  // tags_[0, tag_count) apply to the current sample
  bool too_many = false;      // more than kMaxTags distinct keys were offered: refuse, never cut
};

StatsdParser::StatsdParser(const StatsdOptions& options)
    : options_(options), name_buf_(std::make_unique<char[]>(kMaxNameBytes)) {}

void StatsdParser::parse_packet(std::string_view packet, SampleOutput& out, ParseCounters& counters) noexcept {
  text::for_each_line(packet, [&](std::string_view line) { parse_line(line, out, counters); });
}

namespace {

// Adds or replaces (last wins, like statsd_exporter's label map) a tag; a
// new key past the last slot sets `too_many` (the caller refuses the sample).
void add_tag(std::span<sample::Tag> tags, std::size_t& n, bool& too_many, std::string_view key,
             std::string_view value) noexcept {
  for (std::size_t i = 0; i < n; ++i) {
    if (tags[i].key == key) {
      tags[i].value = value;
      return;
    }
  }
  if (n == tags.size()) {
    too_many = true;
    return;
  }
  tags[n++] = sample::Tag{key, value};
}

// One "k<sep>v" tag whose first separator is at `at` (npos: none); a
// malformed one is counted and skipped.
void parse_tag(std::string_view tag, std::size_t at, std::span<sample::Tag> tags, std::size_t& n, bool& too_many,
               ParseCounters& counters) noexcept {
  if (tag.empty() || at == std::string_view::npos || at == 0 || at + 1 == tag.size()) {
    counters.count(ParseError::kMalformedTag);
    return;
  }
  add_tag(tags, n, too_many, text::sub(tag, 0, at), text::sub(tag, at + 1));
}

}  // namespace

bool StatsdParser::parse_name_and_tags(std::string_view raw, Line& l, ParseCounters& counters) noexcept {
  l.name = raw;
  auto name_tag_list = [&](std::string_view list) {
    for_each_comma_piece(list, '=', [&](std::string_view t, std::size_t at) {
      parse_tag(t, at, tags_, l.tag_count, l.too_many, counters);
    });
  };
  constexpr std::size_t kNone = std::string_view::npos;
  const std::size_t open = l.open;
  const std::size_t close = l.close;
  const std::size_t name_tags_at = l.name_tags_at;
  if (options_.signalfx_tags && (open != kNone || close != kNone)) {
    if (open == kNone || close == kNone || close < open) {  // unbalanced: not tags; keep the name as it is
      counters.count(ParseError::kMalformedTag);
      return true;
    }
    name_tag_list(text::sub(raw, open + 1, close - open - 1));
    const std::string_view before = text::sub(raw, 0, open);
    const std::string_view after = text::sub(raw, close + 1);
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
    name_tag_list(text::sub(raw, name_tags_at + 1));
    l.name = text::sub(raw, 0, name_tags_at);
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
  // One pass up to the first ':' finds the name's end and every delimiter
  // the enabled tag styles use in it, sixteen name bytes a step.
  Line l;
  std::size_t colon = 0;
  for (;; ++colon) {
    colon = next_name_delimiter(line, colon);
    if (colon == line.size()) {
      counters.count(ParseError::kMalformedLine);
      return;
    }
    const char c = line[colon];
    if (c == ':') break;
    if (c == '[') {
      if (l.open == std::string_view::npos) l.open = colon;
    } else if (c == ']') {
      if (l.close == std::string_view::npos) l.close = colon;
    } else if ((c == '#' && options_.librato_tags) || (c == ',' && options_.influxdb_tags)) {
      if (l.name_tags_at == std::string_view::npos) l.name_tags_at = colon;
    }
  }
  if (colon == 0 || !parse_name_and_tags(text::sub(line, 0, colon), l, counters)) {
    if (colon == 0) counters.count(ParseError::kEmptyName);
    return;
  }
  if (l.too_many) {
    counters.count(ParseError::kTooManyTags);
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
  const std::string_view rest = text::sub(line, colon + 1);
  const std::size_t bar = text::find_byte(rest, '|');
  const bool dogstatsd = bar != std::string_view::npos && has_dogstatsd_tags(text::sub(rest, bar));
  if (dogstatsd && l.name_tags > 0) {
    counters.count(ParseError::kMixedTaggingStyles);
    return;
  }
  if (bar == std::string_view::npos) {
    counters.count(ParseError::kNotEnoughParts);
    return;
  }
  const std::string_view values = text::sub(rest, 0, bar);
  if (text::find_byte(values, ':') != std::string_view::npos) {
    // DogStatsD extended aggregation: "a:1:2:3|ms|@0.5" = three samples sharing the suffix.
    const std::string_view suffix = text::sub(rest, bar + 1);
    const std::string_view type = text::sub(suffix, 0, text::find_byte(suffix, '|'));
    if (type != "ms" && type != "h" && type != "d") {
      counters.count(ParseError::kInvalidExtendedAggregateType);
      return;
    }
    std::size_t start = 0;
    for (;;) {
      const std::size_t next = text::find_byte(values, ':', start);
      parse_sample(text::sub(values, start, next == std::string_view::npos ? std::string_view::npos : next - start),
                   suffix, l, out, counters);
      if (next == std::string_view::npos) break;
      start = next + 1;
    }
    return;
  }
  if (dogstatsd) {
    parse_sample(values, text::sub(rest, bar + 1), l, out, counters);
    return;
  }
  // Several samples per line: "a:1|c:2|g" (only without DogStatsD tags).
  std::size_t start = 0;
  for (;;) {
    const std::size_t next = text::find_byte(rest, ':', start);
    const std::string_view seg =
        text::sub(rest, start, next == std::string_view::npos ? std::string_view::npos : next - start);
    const std::size_t b = text::find_byte(seg, '|');
    if (b == std::string_view::npos) {
      counters.count(ParseError::kMalformedComponent);
    } else {
      parse_sample(text::sub(seg, 0, b), text::sub(seg, b + 1), l, out, counters);
    }
    if (next == std::string_view::npos) break;
    start = next + 1;
  }
}

void StatsdParser::parse_sample(std::string_view value_str, std::string_view rest, Line& l, SampleOutput& out,
                                ParseCounters& counters) noexcept {
  // rest = "type[|section...]"; statsd_exporter allows 2..8 parts in all,
  // and an empty section anywhere spoils the sample before any is interpreted.
  // One pass finds both and remembers where each section ends.
  constexpr std::size_t kMaxBars = 6;  // value and type + 6 sections = 8 parts
  std::size_t bars[kMaxBars + 1];
  std::size_t nbars = 0;
  bool empty_section = false;
  for (std::size_t i = 0; i < rest.size(); ++i) {
    if (rest[i] != '|') continue;
    if (nbars == kMaxBars) {
      counters.count(ParseError::kMalformedComponent);
      return;
    }
    if (nbars > 0 && rest[i - 1] == '|') empty_section = true;
    bars[nbars++] = i;
  }
  const std::size_t type_end = nbars > 0 ? bars[0] : std::string_view::npos;
  if (nbars > 0 && rest.back() == '|') empty_section = true;
  const std::string_view type = text::sub(rest, 0, type_end);
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
  l.too_many = false;
  double rate = 1.0;
  double counter_divisor = 1.0;
  std::int64_t timestamp_ns = 0;
  bars[nbars] = rest.size();
  for (std::size_t b = 0; b + 1 <= nbars; ++b) {
    const std::string_view s = text::sub(rest, bars[b] + 1, bars[b + 1] - bars[b] - 1);  // never empty here
    switch (s[0]) {
      case '@': {
        double f = 0;
        if (!text::parse_float(text::sub(s, 1), f)) {
          counters.count(ParseError::kInvalidSampleFactor);  // statsd_exporter keeps the sample, rate 1
          f = 1;
        }
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
          for_each_comma_piece(text::sub(s, 1), ':', [&](std::string_view tag, std::size_t at) {
            if (!tag.empty() && tag[0] == '#') {  // "#k:v": ':' is never at 0 here
              tag.remove_prefix(1);
              if (at != std::string_view::npos) --at;
            }
            parse_tag(tag, at, tags_, l.tag_count, l.too_many, counters);
          });
        }
        break;
      case 'c':
        if (s.size() > 2 && s[1] == ':') {
          add_tag(tags_, l.tag_count, l.too_many, kContainerIdKey, text::sub(s, 2));
        } else {
          counters.count(ParseError::kMalformedContainerId);
          return;
        }
        break;
      case 'T': {
        std::int64_t secs = 0;
        constexpr std::int64_t kMaxSecs = std::numeric_limits<std::int64_t>::max() / kNanosPerSecond;
        if (s.size() < 2 || !text::parse_int64(text::sub(s, 1), secs) || secs > kMaxSecs || secs < -kMaxSecs) {
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
      // The rate is applied here, so the weight stays 1. Without "@rate" the
      // divisor is 1 and x / 1 == x, so the division (the slowest instruction
      // on the counter path, in the source's profile) is skipped.
      if (counter_divisor != 1.0) value /= counter_divisor;
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
  if (l.too_many) {
    counters.count(ParseError::kTooManyTags);
    return;
  }
  if (options_.reject_non_finite && !is_set && !std::isfinite(value)) {
    counters.count(ParseError::kNonFiniteValue);
    return;
  }
  // Written so that NaN is out of range too (every comparison with it is false).
  const bool adds = kind == sample::Kind::kCounter || kind == sample::Kind::kGaugeDelta;
  const bool observes =
      kind == sample::Kind::kTimer || kind == sample::Kind::kHistogram || kind == sample::Kind::kDistribution;
  if ((adds && !(std::fabs(value) <= kMaxAddition)) ||
      (observes && !(std::fabs(value) <= kMaxAddition * sample_rate && 1.0 <= kMaxAddition * sample_rate))) {
    counters.count(ParseError::kValueOutOfRange);
    return;
  }
  ++counters.samples;
  out.emit(kind, l.name, value, sample_rate, std::span<const sample::Tag>(tags_.data(), l.tag_count),
           is_set ? value_str : std::string_view{}, timestamp_ns);
}

}  // namespace ringpipe::ingest
