#include "remote_write_decoder.hpp"

#include <snappy.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <string>

#include "remote.pb.h"
#include "text.hpp"

namespace ringpipe::ingest {

namespace {

constexpr std::string_view kNameLabel = "__name__";

bool is_alpha_(char c) noexcept { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool is_digit(char c) noexcept { return c >= '0' && c <= '9'; }

// Prometheus' metric name: [a-zA-Z_:][a-zA-Z0-9_:]*.
bool valid_metric_name(std::string_view s) noexcept {
  if (s.empty() || s.size() > kMaxNameBytes) return false;
  if (!is_alpha_(s[0]) && s[0] != ':') return false;
  return std::all_of(s.begin() + 1, s.end(), [](char c) { return is_alpha_(c) || is_digit(c) || c == ':'; });
}

// Prometheus' label name: [a-zA-Z_][a-zA-Z0-9_]*.
bool valid_label_name(std::string_view s) noexcept {
  if (s.empty() || s.size() > kMaxNameBytes) return false;
  if (!is_alpha_(s[0])) return false;
  return std::all_of(s.begin() + 1, s.end(), [](char c) { return is_alpha_(c) || is_digit(c); });
}

}  // namespace

struct RemoteWriteDecoder::Impl {
  RemoteWriteLimits limits;
  std::string uncompressed;  // reused: grows to the largest request seen
  prometheus::WriteRequest request;
  std::array<sample::Tag, kMaxTags + 1> tags{};
};

RemoteWriteDecoder::RemoteWriteDecoder(const RemoteWriteLimits& limits) : impl_(std::make_unique<Impl>()) {
  impl_->limits = limits;
  impl_->limits.max_labels = std::min<std::uint32_t>(limits.max_labels, kMaxTags);
}

RemoteWriteDecoder::~RemoteWriteDecoder() = default;

DecodeStatus RemoteWriteDecoder::decode(std::string_view body, ParseCounters& counters) noexcept {
  Impl& s = *impl_;
  s.request.Clear();
  if (body.size() > s.limits.max_body_bytes) {
    counters.count(ParseError::kBodyTooLarge);
    return DecodeStatus::kTooLarge;
  }
  std::size_t n = 0;
  if (!snappy::GetUncompressedLength(body.data(), body.size(), &n)) {
    counters.count(ParseError::kBadSnappy);
    return DecodeStatus::kBadSnappy;
  }
  if (n > s.limits.max_uncompressed_bytes) {
    counters.count(ParseError::kBodyTooLarge);
    return DecodeStatus::kTooLarge;
  }
  try {
    s.uncompressed.resize(n);
  } catch (const std::bad_alloc&) {
    counters.count(ParseError::kBodyTooLarge);
    return DecodeStatus::kTooLarge;
  }
  if (!snappy::RawUncompress(body.data(), body.size(), s.uncompressed.data())) {
    counters.count(ParseError::kBadSnappy);
    return DecodeStatus::kBadSnappy;
  }
  bool parsed = false;
  try {
    parsed = s.request.ParseFromArray(s.uncompressed.data(), static_cast<int>(n));
  } catch (const std::exception&) {  // std::bad_alloc from a hostile length
    parsed = false;
  }
  if (!parsed) {
    s.request.Clear();
    counters.count(ParseError::kBadProtobuf);
    return DecodeStatus::kBadProtobuf;
  }
  return DecodeStatus::kNone;
}

std::uint64_t RemoteWriteDecoder::sample_count() const noexcept {
  std::uint64_t n = 0;
  for (const auto& ts : impl_->request.timeseries()) n += static_cast<std::uint64_t>(ts.samples_size());
  return n;
}

std::size_t RemoteWriteDecoder::batch_bytes_bound() const noexcept {
  std::size_t n = sizeof(sample::BatchHeader);
  for (const auto& ts : impl_->request.timeseries()) {
    // Every label as a tag (the name's too, a few bytes more than it takes).
    std::size_t entry = sizeof(sample::SampleHeader);
    for (const auto& l : ts.labels()) entry += sizeof(sample::TagHeader) + l.name().size() + l.value().size();
    n += ((entry + 7) & ~std::size_t{7}) * static_cast<std::size_t>(ts.samples_size());
  }
  return n;
}

ConvertResult RemoteWriteDecoder::convert(SampleOutput& out, ParseCounters& counters) noexcept {
  Impl& s = *impl_;
  ConvertResult r;
  auto reject = [&](ParseError e) {
    counters.count(e);
    if (r.series_rejected++ == 0) r.first_reason = e;
  };
  for (const prometheus::TimeSeries& ts : s.request.timeseries()) {
    ++r.series;
    ++counters.lines;
    std::string_view name;
    bool has_name = false;
    std::size_t ntags = 0;
    ParseError bad = ParseError::kCount_;
    for (const prometheus::Label& l : ts.labels()) {
      const std::string_view key = l.name();
      const std::string_view value = l.value();
      if (!text::valid_utf8(value) || !text::valid_utf8(key)) {
        bad = ParseError::kInvalidUtf8;
        break;
      }
      if (key == kNameLabel) {
        if (has_name) {
          bad = ParseError::kDuplicateLabel;
          break;
        }
        has_name = true;
        name = value;
        continue;
      }
      if (!valid_label_name(key)) {
        bad = ParseError::kInvalidLabelName;
        break;
      }
      if (value.empty()) continue;  // Prometheus: an empty value is the label's absence
      if (value.size() > kMaxNameBytes) {
        bad = ParseError::kMalformedTag;
        break;
      }
      if (ntags == s.limits.max_labels) {
        bad = ParseError::kTooManyLabels;
        break;
      }
      s.tags[ntags++] = sample::Tag{key, value};
    }
    if (bad == ParseError::kCount_ && !has_name) bad = ParseError::kMissingName;
    if (bad == ParseError::kCount_ && !valid_metric_name(name)) bad = ParseError::kInvalidMetricName;
    const std::span<sample::Tag> tags(s.tags.data(), ntags);
    if (bad == ParseError::kCount_) {
      // Senders sort labels by name; sort anyway, then equal names are neighbours.
      if (!std::is_sorted(tags.begin(), tags.end(), [](const auto& a, const auto& b) { return a.key < b.key; }))
        std::sort(tags.begin(), tags.end(), [](const auto& a, const auto& b) { return a.key < b.key; });
      if (std::adjacent_find(tags.begin(), tags.end(), [](const auto& a, const auto& b) { return a.key == b.key; }) !=
          tags.end())
        bad = ParseError::kDuplicateLabel;
    }
    if (bad != ParseError::kCount_) {
      reject(bad);
      continue;
    }
    for (const prometheus::Sample& smp : ts.samples()) {
      const double value = smp.value();
      if (std::isnan(value)) {
        counters.count(ParseError::kNonFiniteValue);
        continue;
      }
      const std::int64_t ms = smp.timestamp();
      constexpr std::int64_t kMaxMs = std::numeric_limits<std::int64_t>::max() / 1'000'000;
      if (ms <= 0 || ms > kMaxMs) {
        counters.count(ParseError::kMalformedTimestamp);
        continue;
      }
      ++counters.samples;
      out.emit(sample::Kind::kGauge, name, value, 1.0, tags, {}, ms * 1'000'000);
    }
  }
  return r;
}

std::string_view decode_status_name(DecodeStatus s) noexcept {
  switch (s) {
    case DecodeStatus::kNone: return "ok";
    case DecodeStatus::kBadSnappy: return "the body is not snappy-compressed";
    case DecodeStatus::kBadProtobuf: return "the body is not a protobuf WriteRequest";
    case DecodeStatus::kTooLarge: return "the request is too large";
  }
  return "unknown";
}

}  // namespace ringpipe::ingest
