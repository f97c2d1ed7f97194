#include "ringpipe/ingest/graphite_parser.hpp"

#include <cmath>
#include <limits>

#include "text.hpp"

namespace ringpipe::ingest {
namespace {

constexpr double kNanosPerSecond = 1e9;

bool is_space(char c) noexcept { return c == ' ' || c == '\t'; }

// Next whitespace-separated token at or after i; i moves past it.
std::string_view next_token(std::string_view s, std::size_t& i) noexcept {
  while (i < s.size() && is_space(s[i])) ++i;
  const std::size_t start = i;
  while (i < s.size() && !is_space(s[i])) ++i;
  return s.substr(start, i - start);
}

// Graphite's tag rules: name non-empty without ;!^= ; value non-empty, no ';', not starting with '~'.
bool valid_tag(std::string_view key, std::string_view value) noexcept {
  if (key.empty() || value.empty() || value[0] == '~') return false;
  return key.find_first_of(";!^=") == std::string_view::npos;
}

}  // namespace

void GraphiteParser::parse_packet(std::string_view packet, SampleOutput& out, ParseCounters& counters) noexcept {
  text::for_each_line(packet, [&](std::string_view line) { parse_line(line, out, counters); });
}

void GraphiteParser::parse_line(std::string_view line, SampleOutput& out, ParseCounters& counters) noexcept {
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  std::size_t i = 0;
  const std::string_view path_tags = next_token(line, i);
  if (path_tags.empty()) return;  // blank line
  ++counters.lines;
  if (!text::valid_utf8(line)) {
    counters.count(ParseError::kInvalidUtf8);
    return;
  }
  const std::string_view value_str = next_token(line, i);
  const std::string_view ts_str = next_token(line, i);
  if (value_str.empty() || !next_token(line, i).empty()) {
    counters.count(ParseError::kMalformedLine);
    return;
  }

  const std::size_t semi = path_tags.find(';');
  const std::string_view path = path_tags.substr(0, semi);
  if (path.empty()) {
    counters.count(ParseError::kEmptyName);
    return;
  }
  if (path.size() > kMaxNameBytes) {
    counters.count(ParseError::kNameTooLong);
    return;
  }
  std::size_t ntags = 0;
  bool too_many = false;
  if (semi != std::string_view::npos) {
    std::string_view rest = path_tags.substr(semi + 1);
    for (;;) {
      const std::size_t next = rest.find(';');
      const std::string_view tag = rest.substr(0, next);
      const std::size_t eq = tag.find('=');
      if (eq == std::string_view::npos || !valid_tag(tag.substr(0, eq), tag.substr(eq + 1))) {
        counters.count(ParseError::kMalformedTag);
        return;
      }
      if (ntags < tags_.size()) {
        tags_[ntags++] = sample::Tag{tag.substr(0, eq), tag.substr(eq + 1)};
      } else {
        too_many = true;
      }
      if (next == std::string_view::npos) break;
      rest.remove_prefix(next + 1);
    }
  }
  // Refused, never cut: a tag set cut at kMaxTags would merge two series.
  if (too_many) {
    counters.count(ParseError::kTooManyTags);
    return;
  }

  double value = 0;
  if (!text::parse_float(value_str, value)) {
    counters.count(ParseError::kMalformedValue);
    return;
  }
  if (std::isnan(value) || (options_.reject_infinite && std::isinf(value))) {
    counters.count(ParseError::kNonFiniteValue);
    return;
  }

  std::int64_t timestamp_ns = 0;
  if (!ts_str.empty() && ts_str != "-1") {
    double secs = 0;
    constexpr double kMaxSecs = static_cast<double>(std::numeric_limits<std::int64_t>::max()) / kNanosPerSecond;
    if (!text::parse_decimal(ts_str, secs) || !(secs > -kMaxSecs && secs < kMaxSecs)) {
      counters.count(ParseError::kMalformedTimestamp);
      return;
    }
    // Exact for "secs" and "secs.fraction"; other spellings (1.7e9) go through a double.
    const std::size_t dot = ts_str.find('.');
    std::int64_t whole = 0;
    const std::string_view frac = dot == std::string_view::npos ? std::string_view{} : ts_str.substr(dot + 1);
    if (text::parse_int64(ts_str.substr(0, dot), whole) && frac.size() <= 9 &&
        frac.find_first_not_of("0123456789") == std::string_view::npos) {
      std::int64_t ns = 0;
      for (std::size_t k = 0; k < 9; ++k) ns = ns * 10 + (k < frac.size() ? frac[k] - '0' : 0);
      timestamp_ns = whole * 1'000'000'000 + (ts_str[0] == '-' ? -ns : ns);
    } else {
      timestamp_ns = static_cast<std::int64_t>(std::llround(secs * kNanosPerSecond));
    }
  }
  ++counters.samples;
  out.emit(sample::Kind::kGauge, path, value, 1.0, std::span<const sample::Tag>(tags_.data(), ntags), {}, timestamp_ns);
}

}  // namespace ringpipe::ingest
