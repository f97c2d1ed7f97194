#include "remote_write_decoder.hpp"

#include <snappy.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <unordered_map>
#include <vector>

#include "prom_family.hpp"
#include "text.hpp"

namespace ringpipe::ingest {

namespace {

constexpr std::string_view kNameLabel = "__name__";
// A buffer grown past this by one request is given back after it.
constexpr std::size_t kKeepBufferBytes = 1u << 20;

bool is_alpha_or_underscore(char c) noexcept { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool is_digit(char c) noexcept { return c >= '0' && c <= '9'; }

// Prometheus' metric name: [a-zA-Z_:][a-zA-Z0-9_:]*.
bool valid_metric_name(std::string_view s) noexcept {
  if (s.empty() || s.size() > kMaxNameBytes) return false;
  if (!is_alpha_or_underscore(s[0]) && s[0] != ':') return false;
  return std::all_of(s.begin() + 1, s.end(),
                     [](char c) { return is_alpha_or_underscore(c) || is_digit(c) || c == ':'; });
}

// Prometheus' label name: [a-zA-Z_][a-zA-Z0-9_]*.
bool valid_label_name(std::string_view s) noexcept {
  if (s.empty() || s.size() > kMaxNameBytes) return false;
  if (!is_alpha_or_underscore(s[0])) return false;
  return std::all_of(s.begin() + 1, s.end(), [](char c) { return is_alpha_or_underscore(c) || is_digit(c); });
}

// The protobuf wire format read in place (prompb's remote.proto: WriteRequest
// {1: repeated TimeSeries}, TimeSeries {1: repeated Label, 2: repeated
// Sample}, Label {1: bytes name, 2: bytes value}, Sample {1: double value,
// 2: int64 timestamp}). Nothing is allocated: fields are views into the
// uncompressed body. Fields of other numbers or wire types are skipped, as
// protobuf skips unknown fields; groups (deprecated) are refused.
enum WireType : std::uint32_t { kVarint = 0, kFixed64 = 1, kLen = 2, kFixed32 = 5 };

class WireReader {
 public:
  explicit WireReader(std::string_view in) noexcept : p_(in.data()), end_(in.data() + in.size()) {}
  [[nodiscard]] bool done() const noexcept { return p_ == end_; }

  // The next field's number and wire type, its value read into `varint`,
  // `fixed` or `bytes` (by type); false on malformed input.
  [[nodiscard]] bool next(std::uint32_t& field, std::uint32_t& type, std::uint64_t& number,
                          std::string_view& bytes) noexcept {
    std::uint64_t key = 0;
    if (!varint(key) || (key >> 3) == 0 || (key >> 3) > 0x1fffffff) return false;
    field = static_cast<std::uint32_t>(key >> 3);
    type = static_cast<std::uint32_t>(key & 7);
    switch (type) {
      case kVarint:
        return varint(number);
      case kFixed64:
        return fixed(8, number);
      case kFixed32:
        return fixed(4, number);
      case kLen: {
        std::uint64_t n = 0;
        if (!varint(n) || n > static_cast<std::uint64_t>(end_ - p_)) return false;
        bytes = std::string_view(p_, static_cast<std::size_t>(n));
        p_ += n;
        return true;
      }
      default:
        return false;
    }
  }

  // One varint without a key (an element of a packed repeated field).
  [[nodiscard]] bool read_varint(std::uint64_t& v) noexcept { return varint(v); }

 private:
  bool varint(std::uint64_t& v) noexcept {
    v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (p_ == end_) return false;
      const auto b = static_cast<std::uint8_t>(*p_++);
      v |= static_cast<std::uint64_t>(b & 0x7f) << shift;
      if ((b & 0x80) == 0) return true;
    }
    return false;
  }
  bool fixed(int n, std::uint64_t& v) noexcept {
    if (end_ - p_ < n) return false;
    v = 0;
    for (int i = n - 1; i >= 0; --i) v = (v << 8) | static_cast<std::uint8_t>(p_[i]);  // little-endian
    p_ += n;
    return true;
  }
  const char* p_;
  const char* end_;
};

struct WireLabel {
  std::string_view name, value;
};
// MetricMetadata {1: MetricType type, 2: string metric_family_name, 4: string help, 5: string unit}.
struct WireMetadata {
  std::uint64_t type = 0;
  std::string_view family, help, unit;
};

bool read_metadata(std::string_view msg, WireMetadata& out) noexcept {
  out = {};
  WireReader r(msg);
  std::uint32_t f = 0, t = 0;
  std::uint64_t n = 0;
  std::string_view b;
  while (!r.done()) {
    if (!r.next(f, t, n, b)) return false;
    if (t == kVarint && f == 1) out.type = n;
    if (t == kLen && f == 2) out.family = b;
    if (t == kLen && f == 4) out.help = b;
    if (t == kLen && f == 5) out.unit = b;
  }
  return true;
}

// prompb's MetricMetadata.MetricType (UNKNOWN 0, COUNTER, GAUGE, HISTOGRAM,
// GAUGEHISTOGRAM, SUMMARY, INFO, STATESET) as a sample's family type.
sample::FamilyType family_type_of(std::uint64_t t) noexcept {
  using sample::FamilyType;
  switch (t) {
    case 1:
      return FamilyType::kCounter;
    case 2:
      return FamilyType::kGauge;
    case 3:
      return FamilyType::kHistogram;
    case 4:
      return FamilyType::kGaugeHistogram;
    case 5:
      return FamilyType::kSummary;
    case 6:
      return FamilyType::kInfo;
    case 7:
      return FamilyType::kStateset;
    default:
      return FamilyType::kUntyped;
  }
}

// The names a sample's family may have: its own, or without one of the
// suffixes the types add (family_suffix() then decides).
constexpr std::array<std::string_view, 7> kFamilySuffixes{"_bucket", "_sum",  "_count", "_total",
                                                          "_info",   "_gsum", "_gcount"};
struct WireSample {
  double value = 0;
  std::int64_t timestamp = 0;
};

// Last occurrence wins, as in protobuf.
bool read_label(std::string_view msg, WireLabel& out) noexcept {
  out = {};
  WireReader r(msg);
  std::uint32_t f = 0, t = 0;
  std::uint64_t n = 0;
  std::string_view b;
  while (!r.done()) {
    if (!r.next(f, t, n, b)) return false;
    if (t == kLen && f == 1) out.name = b;
    if (t == kLen && f == 2) out.value = b;
  }
  return true;
}

bool read_sample(std::string_view msg, WireSample& out) noexcept {
  out = {};
  WireReader r(msg);
  std::uint32_t f = 0, t = 0;
  std::uint64_t n = 0;
  std::string_view b;
  while (!r.done()) {
    if (!r.next(f, t, n, b)) return false;
    if (t == kFixed64 && f == 1) std::memcpy(&out.value, &n, sizeof out.value);
    if (t == kVarint && f == 2) out.timestamp = static_cast<std::int64_t>(n);
  }
  return true;
}

// A native histogram sample (types.proto's Histogram: 1 count_int, 2
// count_float, 3 sum, 4 schema, 5 zero_threshold, 6 zero_count_int, 7
// zero_count_float, 8/11 negative/positive spans, 9/12 deltas, 10/13 counts,
// 14 reset_hint, 15 timestamp) read into a sample::NativeSample.
struct WireNative {
  sample::NativeSample sample;
  std::int64_t timestamp = 0;     // ms
  bool key_out_of_range = false;  // a bucket key beyond native_key_limit
};
using NativeBuckets = std::vector<std::pair<std::int32_t, double>>;

// Reads one Histogram and checks it as Prometheus checks one before
// appending it: schema -4..8, a finite zero threshold >= 0, integer or float
// counts (not both), per side spans whose lengths add up to the buckets
// given, offsets after the first span >= 0, bucket counts (the running sum of
// the deltas) >= 0, a timestamp in range. False when the message does not
// decode or breaks one of these. Bucket keys are the spans' (the first
// span's offset from key 0, each later one's from the end of the one before)
// and counts absolute, written to `pos` / `neg` (cleared first; `out.sample`
// points at them). A key beyond the schema's native_key_limit (no finite
// value falls there) sets key_out_of_range instead of failing: Prometheus
// takes it, the sample format cannot. May throw std::bad_alloc.
bool read_native_histogram(std::string_view msg, WireNative& out, NativeBuckets& pos, NativeBuckets& neg) {
  out = {};
  pos.clear();
  neg.clear();
  WireReader r(msg);
  std::uint32_t f = 0, t = 0;
  std::uint64_t n = 0;
  std::string_view b;
  auto zigzag = [](std::uint64_t v) { return static_cast<std::int64_t>(v >> 1) ^ -static_cast<std::int64_t>(v & 1); };
  auto as_double = [](std::uint64_t v) {
    double d;
    std::memcpy(&d, &v, sizeof d);
    return d;
  };
  std::int64_t schema = 0;
  double zero_threshold = 0;
  std::uint64_t reset_hint = 0;
  bool float_counts = false;
  bool int_counts = false;
  double count = 0, zero_count = 0;
  struct Span {
    std::int64_t offset;
    std::uint64_t length;
  };
  struct Side {
    std::vector<Span> spans;
    std::uint64_t span_buckets = 0;
    std::uint64_t deltas = 0;
    std::uint64_t counts = 0;
    std::int64_t running = 0;
    std::vector<double> values;  // absolute counts, in bucket order
    bool negative = false;       // a bucket count below 0, or a later span's offset below 0
  } side[2];                     // [0] positive, [1] negative
  auto span = [&](Side& s, std::string_view m) {
    WireReader sr(m);
    std::uint32_t sf = 0, st = 0;
    std::uint64_t sn = 0;
    std::string_view sb;
    std::int64_t offset = 0;
    std::uint64_t length = 0;
    while (!sr.done()) {
      if (!sr.next(sf, st, sn, sb)) return false;
      if (st == kVarint && sf == 1) offset = zigzag(sn);
      if (st == kVarint && sf == 2) length = sn;
    }
    if (!s.spans.empty() && offset < 0) s.negative = true;
    if (length > UINT32_MAX) return false;
    s.spans.push_back(Span{offset, length});
    s.span_buckets += length;
    return true;
  };
  auto delta = [](Side& s, std::int64_t d) {
    ++s.deltas;
    if (__builtin_add_overflow(s.running, d, &s.running) || s.running < 0) s.negative = true;
    s.values.push_back(static_cast<double>(s.running));
  };
  auto bucket_count = [](Side& s, double c) {
    ++s.counts;
    if (!(c >= 0) || !std::isfinite(c)) s.negative = true;
    s.values.push_back(c);
  };
  auto packed_varints = [&](Side& s, std::string_view m) {
    WireReader pr(m);
    while (!pr.done()) {  // a packed run: varints without keys
      std::uint64_t v = 0;
      if (!pr.read_varint(v)) return false;
      delta(s, zigzag(v));
    }
    return true;
  };
  while (!r.done()) {
    if (!r.next(f, t, n, b)) return false;
    switch (f) {
      case 1:
      case 6:
        if (t == kVarint) {
          int_counts = true;
          (f == 1 ? count : zero_count) = static_cast<double>(n);
        }
        break;
      case 2:
      case 7:
        if (t == kFixed64) {
          const double d = as_double(n);
          if (!(d >= 0) || !std::isfinite(d)) return false;
          float_counts = true;
          (f == 2 ? count : zero_count) = d;
        }
        break;
      case 3:
        if (t == kFixed64) out.sample.sum = as_double(n);
        break;
      case 4:
        if (t == kVarint) schema = zigzag(n);
        break;
      case 5:
        if (t == kFixed64) zero_threshold = as_double(n);
        break;
      case 8:
      case 11:
        if (t == kLen && !span(side[f == 8 ? 1 : 0], b)) return false;
        break;
      case 9:
      case 12: {
        Side& s = side[f == 9 ? 1 : 0];
        if (t == kVarint) delta(s, zigzag(n));
        if (t == kLen && !packed_varints(s, b)) return false;
        break;
      }
      case 10:
      case 13: {
        Side& s = side[f == 10 ? 1 : 0];
        if (t == kFixed64) bucket_count(s, as_double(n));
        if (t == kLen) {
          if (b.size() % 8 != 0) return false;
          for (std::size_t i = 0; i < b.size(); i += 8) {
            std::uint64_t v = 0;
            for (int k = 7; k >= 0; --k) v = (v << 8) | static_cast<std::uint8_t>(b[i + static_cast<std::size_t>(k)]);
            bucket_count(s, as_double(v));
          }
        }
        break;
      }
      case 14:
        if (t == kVarint) reset_hint = n;
        break;
      case 15:
        if (t == kVarint) out.timestamp = static_cast<std::int64_t>(n);
        break;
      default:
        break;
    }
  }
  constexpr std::int64_t kMaxMs = std::numeric_limits<std::int64_t>::max() / 1'000'000;
  if (schema < sample::kNativeSchemaMin || schema > sample::kNativeSchemaMax || !(zero_threshold >= 0) ||
      !std::isfinite(zero_threshold) || out.timestamp <= 0 || out.timestamp > kMaxMs) {
    return false;
  }
  for (const Side& s : side) {
    if (s.negative || (s.deltas != 0 && s.counts != 0)) return false;
    if (s.deltas != 0) int_counts = true;
    if (s.counts != 0) float_counts = true;
    if (s.span_buckets != s.deltas + s.counts) return false;
  }
  if (int_counts && float_counts) return false;
  // Keys from the spans; a key past the limit is marked, not refused.
  const std::int64_t limit = sample::native_key_limit(static_cast<std::int32_t>(schema));
  for (int k = 0; k < 2; ++k) {
    const Side& s = side[k];
    NativeBuckets& dst = k == 0 ? pos : neg;
    dst.reserve(s.values.size());
    std::int64_t key = 0;
    std::size_t v = 0;
    for (std::size_t i = 0; i < s.spans.size(); ++i) {
      // Offsets are sint32 on the wire; a sum of them stays far inside int64.
      key += s.spans[i].offset;
      for (std::uint64_t j = 0; j < s.spans[i].length; ++j, ++key, ++v) {
        if (key < -limit || key > limit) {
          out.key_out_of_range = true;
          continue;
        }
        dst.emplace_back(static_cast<std::int32_t>(key), s.values[v]);
      }
    }
  }
  out.sample.schema = static_cast<std::int32_t>(schema);
  // Prometheus takes any hint value; one it does not name is "unknown".
  out.sample.reset_hint =
      reset_hint <= sample::kMaxResetHint ? static_cast<sample::ResetHint>(reset_hint) : sample::ResetHint::kUnknown;
  out.sample.zero_threshold = zero_threshold;
  out.sample.zero_count = zero_count;
  out.sample.count = count;
  out.sample.positive = pos;
  out.sample.negative = neg;
  return true;
}

// Calls on_series(bytes) for every TimeSeries of a WriteRequest (field 1),
// or for every MetricMetadata (field 3); false on malformed input.
template <typename F>
bool for_each_series(std::string_view request, F&& on_series, std::uint32_t field = 1) noexcept {
  WireReader r(request);
  std::uint32_t f = 0, t = 0;
  std::uint64_t n = 0;
  std::string_view b;
  while (!r.done()) {
    if (!r.next(f, t, n, b)) return false;
    if (t == kLen && f == field && !on_series(b)) return false;
  }
  return true;
}

struct NameHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};

// Calls on_label(bytes) / on_sample(bytes) for the fields of one TimeSeries.
template <typename L, typename S>
bool for_each_field(std::string_view series, L&& on_label, S&& on_sample) noexcept {
  WireReader r(series);
  std::uint32_t f = 0, t = 0;
  std::uint64_t n = 0;
  std::string_view b;
  while (!r.done()) {
    if (!r.next(f, t, n, b)) return false;
    if (t != kLen) continue;
    if (f == 1 && !on_label(b)) return false;
    if (f == 2 && !on_sample(b)) return false;
  }
  return true;
}

// Calls on_histogram(bytes) for every Histogram (field 4) of a TimeSeries.
template <typename H>
bool for_each_histogram(std::string_view series, H&& on_histogram) noexcept {
  WireReader r(series);
  std::uint32_t f = 0, t = 0;
  std::uint64_t n = 0;
  std::string_view b;
  while (!r.done()) {
    if (!r.next(f, t, n, b)) return false;
    if (t == kLen && f == 4) on_histogram(b);
  }
  return true;
}

}  // namespace

struct RemoteWriteDecoder::Impl {
  RemoteWriteLimits limits;
  std::string uncompressed;  // reused; given back after a request over kKeepBufferBytes
  std::string_view request;  // the last decoded WriteRequest, in `uncompressed`
  std::uint64_t series = 0;
  std::uint64_t samples = 0;
  std::size_t batch_bound = 0;
  std::array<sample::Tag, kMaxTags + 1> tags{};
  NativeBuckets positive, negative;  // one native histogram's buckets, reused
  // Metadata by family name, as the sender last sent it (Prometheus sends it
  // in requests of its own, every minute); at most limits.max_metadata families.
  struct Meta {
    sample::FamilyType type = sample::FamilyType::kUntyped;
    std::string help;
    std::string unit;
  };
  std::unordered_map<std::string, Meta, NameHash, std::equal_to<>> metadata;
  std::size_t max_meta_bytes = 0;  // longest help + unit kept: every sample may carry it

  // The family `name` belongs to, from the metadata; untyped without any.
  [[nodiscard]] sample::Family family_of(std::string_view name) const noexcept {
    const auto match = [&](std::string_view family, sample::Family& out) {
      const auto it = metadata.find(family);
      if (it == metadata.end()) return false;
      const std::optional<std::uint8_t> suffix = detail::family_suffix(it->second.type, family, name);
      if (!suffix) return false;
      out = sample::Family{it->second.type, *suffix, it->second.help, it->second.unit};
      return true;
    };
    sample::Family f{sample::FamilyType::kUntyped, 0, {}, {}};
    if (metadata.empty() || match(name, f)) return f;
    for (const std::string_view suffix : kFamilySuffixes) {
      if (name.size() > suffix.size() && name.ends_with(suffix) &&
          match(name.substr(0, name.size() - suffix.size()), f)) {
        return f;
      }
    }
    return f;
  }

  // A native histogram's family: its name's metadata when that says
  // histogram or gaugehistogram (HELP and UNIT kept), otherwise a histogram,
  // a gaugehistogram when the sample's reset hint says gauge.
  [[nodiscard]] sample::Family native_family_of(std::string_view name, sample::ResetHint hint) const noexcept {
    const auto it = metadata.find(name);
    if (it != metadata.end() &&
        (it->second.type == sample::FamilyType::kHistogram || it->second.type == sample::FamilyType::kGaugeHistogram)) {
      return sample::Family{it->second.type, 0, it->second.help, it->second.unit};
    }
    return sample::Family{
        hint == sample::ResetHint::kGauge ? sample::FamilyType::kGaugeHistogram : sample::FamilyType::kHistogram,
        0,
        {},
        {}};
  }

  void forget() noexcept {
    request = {};
    series = samples = 0;
    batch_bound = sizeof(sample::BatchHeader);
  }
};

RemoteWriteDecoder::RemoteWriteDecoder(const RemoteWriteLimits& limits) : impl_(std::make_unique<Impl>()) {
  impl_->limits = limits;
  impl_->limits.max_labels = std::min<std::uint32_t>(limits.max_labels, kMaxTags);
  impl_->forget();
}

RemoteWriteDecoder::~RemoteWriteDecoder() = default;

DecodeStatus RemoteWriteDecoder::decode(std::string_view body, ParseCounters& counters) noexcept {
  Impl& s = *impl_;
  s.forget();
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
    release();
    return DecodeStatus::kBadSnappy;
  }
  // One pass checks the structure, counts against the limits and sizes the
  // claim, before anything is converted.
  const RemoteWriteLimits& lim = s.limits;
  std::uint64_t labels = 0;
  bool over = false;
  std::size_t bound = sizeof(sample::BatchHeader);
  const bool well_formed = for_each_series(std::string_view(s.uncompressed.data(), n), [&](std::string_view ts) {
    if (++s.series > lim.max_series) {
      over = true;
      return false;
    }
    // Every label as a tag (the name's too, a few bytes more than it takes).
    std::size_t entry = sizeof(sample::SampleHeader);
    std::uint64_t samples = 0;
    const bool ok = for_each_field(
        ts,
        [&](std::string_view l) {
          WireLabel label;
          if (++labels > lim.max_labels_total) {
            over = true;
            return false;
          }
          if (!read_label(l, label)) return false;
          entry += sizeof(sample::TagHeader) + label.name.size() + label.value.size();
          return true;
        },
        [&](std::string_view smp) {
          WireSample sample;
          if (++s.samples > lim.max_samples) {
            over = true;
            return false;
          }
          ++samples;
          return read_sample(smp, sample);
        });
    bound += ((entry + 7) & ~std::size_t{7}) * static_cast<std::size_t>(samples);
    // A native histogram's entry: its fixed parts and at most one 16-byte
    // bucket per byte of the message (a delta takes at least one byte).
    std::uint64_t histograms = 0;
    std::size_t histogram_bytes = 0;
    (void)for_each_histogram(ts, [&](std::string_view h) {
      ++histograms;
      histogram_bytes += h.size();
    });
    if (histograms != 0) {
      s.samples += histograms;
      if (s.samples > lim.max_samples) {
        over = true;
        return false;
      }
      bound += ((entry + sizeof(sample::NativeHeader) + 7) & ~std::size_t{7}) * static_cast<std::size_t>(histograms) +
               sizeof(sample::NativeBucket) * histogram_bytes;
    }
    return ok;
  });
  if (over) {
    counters.count(ParseError::kBodyTooLarge);
    release();
    return DecodeStatus::kTooManyObjects;
  }
  if (!well_formed) {
    counters.count(ParseError::kBadProtobuf);
    release();
    return DecodeStatus::kBadProtobuf;
  }
  s.request = std::string_view(s.uncompressed.data(), n);
  // Metadata first: it names the types of this request's series too. A
  // request refused as malformed changes nothing and is counted once, by that
  // reason: every entry is read before any is counted or kept.
  const bool meta_well_formed = for_each_series(
      s.request,
      [](std::string_view m) {
        WireMetadata md;
        return read_metadata(m, md);
      },
      3);
  if (!meta_well_formed) {
    counters.count(ParseError::kBadProtobuf);
    release();
    return DecodeStatus::kBadProtobuf;
  }
  (void)for_each_series(
      s.request,
      [&](std::string_view m) {
        WireMetadata md;
        (void)read_metadata(m, md);  // read once already
        if (md.family.empty() || !valid_metric_name(md.family) || md.help.size() > kMaxNameBytes ||
            md.unit.size() > UINT8_MAX || !text::valid_utf8(md.help) || !text::valid_utf8(md.unit)) {
          counters.count(ParseError::kMalformedMetadata);
          return true;
        }
        auto it = s.metadata.find(md.family);
        if (it == s.metadata.end()) {
          if (s.metadata.size() >= lim.max_metadata) {
            counters.count(ParseError::kMalformedMetadata);
            return true;
          }
          try {
            it = s.metadata.emplace(std::string(md.family), Impl::Meta{}).first;
          } catch (const std::bad_alloc&) {
            counters.count(ParseError::kMalformedMetadata);
            return true;
          }
        }
        it->second.type = family_type_of(md.type);
        it->second.help.assign(md.help);
        it->second.unit.assign(md.unit);
        s.max_meta_bytes = std::max(s.max_meta_bytes, md.help.size() + md.unit.size());
        return true;
      },
      3);
  s.batch_bound = bound + s.samples * ((s.max_meta_bytes + 7) & ~std::size_t{7});
  return DecodeStatus::kNone;
}

void RemoteWriteDecoder::release() noexcept {
  Impl& s = *impl_;
  s.forget();
  if (s.uncompressed.capacity() > kKeepBufferBytes) std::string().swap(s.uncompressed);
}

std::uint64_t RemoteWriteDecoder::sample_count() const noexcept { return impl_->samples; }

std::size_t RemoteWriteDecoder::batch_bytes_bound() const noexcept { return impl_->batch_bound; }

ConvertResult RemoteWriteDecoder::convert(SampleOutput& out, ParseCounters& counters) noexcept {
  Impl& s = *impl_;
  ConvertResult r;
  auto reject = [&](ParseError e) {
    counters.count(e);
    if (r.series_rejected++ == 0) r.first_reason = e;
  };
  // decode() checked the structure: the reads below cannot fail.
  (void)for_each_series(s.request, [&](std::string_view ts) {
    ++r.series;
    ++counters.lines;
    std::string_view name;
    bool has_name = false;
    std::size_t ntags = 0;
    ParseError bad = ParseError::kCount;
    (void)for_each_field(
        ts,
        [&](std::string_view lb) {
          if (bad != ParseError::kCount) return true;
          WireLabel l;
          (void)read_label(lb, l);
          const std::string_view key = l.name;
          const std::string_view value = l.value;
          if (!text::valid_utf8(value) || !text::valid_utf8(key)) {
            bad = ParseError::kInvalidUtf8;
            return true;
          }
          if (key == kNameLabel) {
            if (has_name) {
              bad = ParseError::kDuplicateLabel;
              return true;
            }
            has_name = true;
            name = value;
            return true;
          }
          if (!valid_label_name(key)) {
            bad = ParseError::kInvalidLabelName;
            return true;
          }
          if (value.empty()) return true;  // Prometheus: an empty value is the label's absence
          if (value.size() > kMaxNameBytes) {
            bad = ParseError::kMalformedTag;
            return true;
          }
          if (ntags == s.limits.max_labels) {
            bad = ParseError::kTooManyLabels;
            return true;
          }
          s.tags[ntags++] = sample::Tag{key, value};
          return true;
        },
        [](std::string_view) { return true; });
    if (bad == ParseError::kCount && !has_name) bad = ParseError::kMissingName;
    if (bad == ParseError::kCount && !valid_metric_name(name)) bad = ParseError::kInvalidMetricName;
    const std::span<sample::Tag> tags(s.tags.data(), ntags);
    if (bad == ParseError::kCount) {
      // Senders sort labels by name; sort anyway, then equal names are neighbours.
      if (!std::is_sorted(tags.begin(), tags.end(), [](const auto& a, const auto& b) { return a.key < b.key; }))
        std::sort(tags.begin(), tags.end(), [](const auto& a, const auto& b) { return a.key < b.key; });
      if (std::adjacent_find(tags.begin(), tags.end(), [](const auto& a, const auto& b) { return a.key == b.key; }) !=
          tags.end())
        bad = ParseError::kDuplicateLabel;
    }
    if (bad != ParseError::kCount) {
      reject(bad);
      return true;
    }
    const sample::Family family = s.family_of(name);
    (void)for_each_field(
        ts, [](std::string_view) { return true; },
        [&](std::string_view sb) {
          WireSample smp;
          (void)read_sample(sb, smp);
          const double value = smp.value;
          if (std::isnan(value)) {
            counters.count(ParseError::kNonFiniteValue);
            return true;
          }
          const std::int64_t ms = smp.timestamp;
          constexpr std::int64_t kMaxMs = std::numeric_limits<std::int64_t>::max() / 1'000'000;
          if (ms <= 0 || ms > kMaxMs) {
            counters.count(ParseError::kMalformedTimestamp);
            return true;
          }
          ++counters.samples;
          out.emit(sample::Kind::kGauge, name, value, 1.0, tags, {}, ms * 1'000'000, &family);
          return true;
        });
    // Native histogram samples, after the float ones, each as a kind-8 entry
    // with its own timestamp. All are read before any is written: a
    // malformed one refuses the rest of its series (HTTP 400, as Prometheus
    // answers it). One that cannot be carried (a key beyond the schema's
    // limit, larger than a batch) is counted as native_histogram_dropped.
    bool malformed = false;
    (void)for_each_histogram(ts, [&](std::string_view h) {
      WireNative wn;
      try {
        malformed = malformed || !read_native_histogram(h, wn, s.positive, s.negative);
      } catch (const std::bad_alloc&) {
        malformed = true;
      }
    });
    if (!malformed) {
      (void)for_each_histogram(ts, [&](std::string_view h) {
        WireNative wn;
        try {
          (void)read_native_histogram(h, wn, s.positive, s.negative);
        } catch (const std::bad_alloc&) {
          counters.count(ParseError::kNativeHistogramDropped);
          return;
        }
        if (wn.key_out_of_range) {
          counters.count(ParseError::kNativeHistogramDropped);
          return;
        }
        const sample::Family nf = s.native_family_of(name, wn.sample.reset_hint);
        const std::uint64_t too_large = out.too_large();
        ++counters.samples;
        if (!out.emit_native(name, tags, wn.sample, nf, wn.timestamp * 1'000'000) && out.too_large() != too_large) {
          counters.count(ParseError::kNativeHistogramDropped);
        }
      });
    }
    if (malformed) reject(ParseError::kMalformedNativeHistogram);
    return true;
  });
  return r;
}

std::string_view decode_status_name(DecodeStatus s) noexcept {
  switch (s) {
    case DecodeStatus::kNone:
      return "ok";
    case DecodeStatus::kBadSnappy:
      return "the body is not snappy-compressed";
    case DecodeStatus::kBadProtobuf:
      return "the body is not a protobuf WriteRequest";
    case DecodeStatus::kTooLarge:
      return "the request is too large";
    case DecodeStatus::kTooManyObjects:
      return "the request holds more series, labels or samples than allowed";
  }
  return "unknown";
}

}  // namespace ringpipe::ingest
