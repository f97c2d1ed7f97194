#include "ringpipe/metric/metric_record.hpp"

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>

#include "ringpipe/metric/native_histogram.hpp"

namespace ringpipe::metric {
namespace {

static_assert(std::endian::native == std::endian::little, "the on-ring format is little-endian");

constexpr std::size_t align8(std::size_t n) noexcept { return (n + 7) & ~std::size_t{7}; }

double load_double(const std::byte* p, std::size_t i) noexcept {
  double d;
  std::memcpy(&d, p + i * sizeof(double), sizeof d);
  return d;
}

bool is_int_in(double d, double lo, double hi) noexcept { return d >= lo && d <= hi && d == std::trunc(d); }

// A native part (kNativeHeadValues + 2 * pairs values at `values`) within
// `count` values: schema -4..8, a finite non-negative zero threshold and
// counts, keys strictly increasing per side and within the schema's
// native_key_limit, and at least the classic count and sum after it.
bool decode_native(const std::byte* values, std::size_t count, NativeView& out, std::size_t& used) noexcept {
  if (count < kNativeHeadValues) return false;
  const double schema = load_double(values, 0);
  const double zt = load_double(values, 1);
  const double zc = load_double(values, 2);
  const double np = load_double(values, 3);
  const double nn = load_double(values, 4);
  if (!is_int_in(schema, kNativeSchemaMin, kNativeSchemaMax) || !std::isfinite(zt) || zt < 0 || !std::isfinite(zc) ||
      zc < 0 || !is_int_in(np, 0, 65535) || !is_int_in(nn, 0, 65535)) {
    return false;
  }
  const std::size_t pairs = static_cast<std::size_t>(np) + static_cast<std::size_t>(nn);
  const double key_limit = native_key_limit(static_cast<std::int32_t>(schema));
  if (kNativeHeadValues + 2 * pairs + 2 > count) return false;
  for (std::size_t side = 0, i = 0; side < 2; ++side) {
    const std::size_t end = side == 0 ? static_cast<std::size_t>(np) : pairs;
    for (std::size_t first = i; i < end; ++i) {
      const double k = load_double(values, kNativeHeadValues + 2 * i);
      const double c = load_double(values, kNativeHeadValues + 2 * i + 1);
      if (!is_int_in(k, -key_limit, key_limit) || !std::isfinite(c) || c < 0) return false;
      if (i > first && !(k > load_double(values, kNativeHeadValues + 2 * (i - 1)))) return false;
    }
  }
  out.schema = static_cast<std::int32_t>(schema);
  out.zero_threshold = zt;
  out.zero_count = zc;
  out.positive_count = static_cast<std::uint32_t>(np);
  out.negative_count = static_cast<std::uint32_t>(nn);
  out.pairs = std::span<const std::byte>(values + kNativeHeadValues * sizeof(double), 2 * pairs * sizeof(double));
  used = kNativeHeadValues + 2 * pairs;
  return true;
}

}  // namespace

std::string_view metric_type_name(MetricType t) noexcept {
  switch (t) {
    case MetricType::kCounter:
      return "counter";
    case MetricType::kGauge:
      return "gauge";
    case MetricType::kSummary:
      return "summary";
    case MetricType::kHistogram:
      return "histogram";
    case MetricType::kUntyped:
      return "untyped";
    case MetricType::kInfo:
      return "info";
    case MetricType::kStateset:
      return "stateset";
    case MetricType::kGaugeHistogram:
      return "gaugehistogram";
  }
  return "unknown";
}

std::string_view entry_kind_name(EntryKind k) noexcept {
  switch (k) {
    case EntryKind::kSeries:
      return "series";
    case EntryKind::kExpire:
      return "expire";
    case EntryKind::kSnapshotBegin:
      return "snapshot_begin";
    case EntryKind::kSnapshotEnd:
      return "snapshot_end";
  }
  return "unknown";
}

std::string_view metric_decode_error_name(MetricDecodeError e) noexcept {
  switch (e) {
    case MetricDecodeError::kNone:
      return "none";
    case MetricDecodeError::kTruncatedHeader:
      return "truncated_header";
    case MetricDecodeError::kBadVersion:
      return "bad_version";
    case MetricDecodeError::kBadLength:
      return "bad_length";
    case MetricDecodeError::kBadEntry:
      return "bad_entry";
    case MetricDecodeError::kBadKind:
      return "bad_kind";
    case MetricDecodeError::kBadType:
      return "bad_type";
    case MetricDecodeError::kBadLabels:
      return "bad_labels";
  }
  return "unknown";
}

std::size_t entry_size(const SeriesEntry& e) noexcept {
  return align8(sizeof(MetricEntryHeader) + e.values.size() * sizeof(double) + e.name.size() + e.help.size() +
                e.unit.size() + e.label_bytes.size());
}

std::size_t stamped_entry_size(const SeriesEntry& e) noexcept { return entry_size(e) + sizeof(std::int64_t); }

MetricBatchWriter::MetricBatchWriter(std::span<std::byte> buffer, const BatchOrigin& origin) noexcept
    : buf_(buffer), used_(sizeof(MetricBatchHeader)), origin_(origin) {}

// Two copies of one body, so the aggregated path (no timestamp) pays nothing
// for the relay's.
bool MetricBatchWriter::append(const SeriesEntry& e) noexcept { return append_entry<false>(e); }
bool MetricBatchWriter::append_stamped(const SeriesEntry& e) noexcept { return append_entry<true>(e); }

template <bool kStamped>
bool MetricBatchWriter::append_entry(const SeriesEntry& e) noexcept {
  constexpr std::size_t kMax16 = std::numeric_limits<std::uint16_t>::max();
  if (e.name.size() > kMax16 || e.help.size() > kMax16 || e.unit.size() > kMax16 || e.values.size() > kMax16 ||
      e.family_len > e.name.size() || e.label_bytes.size() > std::numeric_limits<std::uint32_t>::max()) {
    return false;
  }
  const std::size_t size = kStamped ? stamped_entry_size(e) : entry_size(e);
  if (buf_.size() < used_ || size > buf_.size() - used_ || size > std::numeric_limits<std::uint32_t>::max()) {
    return false;
  }
  std::byte* p = buf_.data() + used_;
  MetricEntryHeader h{};
  h.size = static_cast<std::uint32_t>(size);
  h.kind = static_cast<std::uint8_t>(e.kind);
  h.type = static_cast<std::uint8_t>(e.type);
  // append() takes the flags as given (no mask: it costs every aggregated
  // entry); kEntryTimestamp there is a caller's bug that the reader refuses.
  h.flags = kStamped ? static_cast<std::uint16_t>(e.flags | kEntryTimestamp) : e.flags;
  h.key = e.key;
  h.name_len = static_cast<std::uint16_t>(e.name.size());
  h.help_len = static_cast<std::uint16_t>(e.help.size());
  h.label_count = e.label_count;
  h.value_count = static_cast<std::uint16_t>(e.values.size());
  h.labels_bytes = static_cast<std::uint32_t>(e.label_bytes.size());
  h.family_len = e.family_len;
  h.unit_len = static_cast<std::uint16_t>(e.unit.size());
  std::memcpy(p, &h, sizeof h);
  if (e.flags & kEntryNative) native_ = true;
  std::byte* q = p + sizeof h;
  if constexpr (kStamped) {
    std::memcpy(q, &e.timestamp_ns, sizeof e.timestamp_ns);
    q += sizeof e.timestamp_ns;
    timestamps_ = true;
  }
  if (!e.values.empty()) std::memcpy(q, e.values.data(), e.values.size_bytes());
  q += e.values.size_bytes();
  if (!e.name.empty()) std::memcpy(q, e.name.data(), e.name.size());
  q += e.name.size();
  if (!e.help.empty()) std::memcpy(q, e.help.data(), e.help.size());
  q += e.help.size();
  if (!e.unit.empty()) std::memcpy(q, e.unit.data(), e.unit.size());
  q += e.unit.size();
  if (!e.label_bytes.empty()) std::memcpy(q, e.label_bytes.data(), e.label_bytes.size());
  q += e.label_bytes.size();
  std::memset(q, 0, static_cast<std::size_t>((p + size) - q));  // padding never leaks old bytes
  used_ += size;
  ++count_;
  return true;
}

bool MetricBatchWriter::append_marker(EntryKind kind, std::uint64_t snapshot_id) noexcept {
  if (buf_.size() < used_ || kMarkerEntrySize > buf_.size() - used_) return false;
  MetricEntryHeader h{};
  h.size = static_cast<std::uint32_t>(kMarkerEntrySize);
  h.kind = static_cast<std::uint8_t>(kind);
  h.key = snapshot_id;
  std::memcpy(buf_.data() + used_, &h, sizeof h);
  used_ += kMarkerEntrySize;
  ++count_;
  return true;
}

std::size_t MetricBatchWriter::finish() noexcept {
  MetricBatchHeader h{};
  if (native_) {
    h.format_version = kMetricFormatVersionNative;
    h.flags = static_cast<std::uint16_t>(kBatchNative | (timestamps_ ? kBatchTimestamps : 0));
  } else {
    h.format_version = timestamps_ ? kMetricFormatVersionTimestamps : kMetricFormatVersion;
    h.flags = timestamps_ ? kBatchTimestamps : 0;
  }
  h.entry_count = count_;
  h.bytes = static_cast<std::uint32_t>(used_);
  h.shard = origin_.shard;
  h.shard_count = origin_.shard_count;
  h.instance_id = origin_.instance_id;
  h.flush_seq = origin_.flush_seq;
  h.flush_ns = origin_.flush_ns;
  std::memcpy(buf_.data(), &h, sizeof h);
  return used_;
}

MetricBatchReader::MetricBatchReader(std::span<const std::byte> record) noexcept : rec_(record) {
  if (rec_.size() < sizeof(MetricBatchHeader)) {
    error_ = MetricDecodeError::kTruncatedHeader;
    return;
  }
  std::memcpy(&header_, rec_.data(), sizeof header_);
  // Version 3 is version 2 plus timestamped entries, announced by its flag;
  // version 4 adds native histograms (and may hold timestamps too).
  const bool v2 = header_.format_version == kMetricFormatVersion && header_.flags == 0;
  const bool v3 = header_.format_version == kMetricFormatVersionTimestamps && header_.flags == kBatchTimestamps;
  const bool v4 = header_.format_version == kMetricFormatVersionNative && (header_.flags & kBatchNative) != 0 &&
                  (header_.flags & ~(kBatchNative | kBatchTimestamps)) == 0;
  if (!v2 && !v3 && !v4) {
    error_ = MetricDecodeError::kBadVersion;
    return;
  }
  if (header_.bytes < sizeof(MetricBatchHeader) || header_.bytes > rec_.size()) {
    error_ = MetricDecodeError::kBadLength;
    return;
  }
  rec_ = rec_.first(header_.bytes);
  offset_ = sizeof(MetricBatchHeader);
}

std::optional<MetricEntryView> MetricBatchReader::next() noexcept {
  if (error_ != MetricDecodeError::kNone || index_ >= header_.entry_count) return std::nullopt;
  const std::size_t left = rec_.size() - offset_;
  MetricEntryHeader h;
  if (left < sizeof h) {
    error_ = MetricDecodeError::kBadEntry;
    return std::nullopt;
  }
  const std::byte* p = rec_.data() + offset_;
  std::memcpy(&h, p, sizeof h);
  const bool stamped = (h.flags & kEntryTimestamp) != 0;
  if (stamped && (header_.flags & kBatchTimestamps) == 0) {
    error_ = MetricDecodeError::kBadEntry;
    return std::nullopt;
  }
  const std::size_t ts_bytes = stamped ? sizeof(std::int64_t) : 0;
  const std::size_t body =
      ts_bytes + std::size_t{h.value_count} * sizeof(double) + h.name_len + h.help_len + h.unit_len + h.labels_bytes;
  if (h.size > left || h.size % 8 != 0 || h.size < sizeof h || body > h.size - sizeof h) {
    error_ = MetricDecodeError::kBadEntry;
    return std::nullopt;
  }
  if (h.kind < static_cast<std::uint8_t>(EntryKind::kSeries) ||
      h.kind > static_cast<std::uint8_t>(EntryKind::kSnapshotEnd)) {
    error_ = MetricDecodeError::kBadKind;
    return std::nullopt;
  }
  const auto kind = static_cast<EntryKind>(h.kind);
  const bool is_series = kind == EntryKind::kSeries || kind == EntryKind::kExpire;
  // The types a processor aggregates itself (counter to histogram) with any
  // values; every type, with one value and a family name inside the name, for
  // a Prometheus sample; nothing Prometheus-only on a plain entry.
  const bool prom = (h.flags & kEntryPromSample) != 0;
  const std::uint8_t max_type = static_cast<std::uint8_t>(prom ? MetricType::kGaugeHistogram : MetricType::kHistogram);
  if (is_series && (h.type < static_cast<std::uint8_t>(MetricType::kCounter) || h.type > max_type ||
                    (prom && (h.family_len > h.name_len ||
                              (kind == EntryKind::kSeries && (h.flags & kEntryNative) == 0 && h.value_count != 1))) ||
                    (!prom && (h.family_len != 0 || h.unit_len != 0)))) {
    error_ = MetricDecodeError::kBadType;
    return std::nullopt;
  }
  if (stamped && !is_series) {
    error_ = MetricDecodeError::kBadEntry;
    return std::nullopt;
  }
  const std::byte* values = p + sizeof h + ts_bytes;
  NativeView native{};
  std::size_t native_values = 0;
  if (h.flags & kEntryNative) {
    // An aggregated histogram (classic values after the native part), or
    // one relayed Prometheus native histogram sample of a histogram or
    // gaugehistogram family: exactly [count, sum] after it.
    const bool type_ok = h.type == static_cast<std::uint8_t>(MetricType::kHistogram) ||
                         (prom && h.type == static_cast<std::uint8_t>(MetricType::kGaugeHistogram));
    if ((header_.flags & kBatchNative) == 0 || kind != EntryKind::kSeries || !type_ok ||
        !decode_native(values, h.value_count, native, native_values) ||
        (prom && std::size_t{h.value_count} - native_values != 2)) {
      error_ = MetricDecodeError::kBadEntry;
      return std::nullopt;
    }
  }
  const std::byte* name = values + std::size_t{h.value_count} * sizeof(double);
  const std::byte* help = name + h.name_len;
  const std::byte* unit = help + h.help_len;
  const std::byte* labels = unit + h.unit_len;
  const std::byte* labels_end = labels + h.labels_bytes;
  // Walk the labels once to prove every length stays inside the label bytes.
  const std::byte* t = labels;
  for (std::uint16_t i = 0; i < h.label_count; ++i) {
    LabelHeader lh;
    if (labels_end - t < static_cast<std::ptrdiff_t>(sizeof lh)) {
      error_ = MetricDecodeError::kBadLabels;
      return std::nullopt;
    }
    std::memcpy(&lh, t, sizeof lh);
    t += sizeof lh;
    if (labels_end - t < static_cast<std::ptrdiff_t>(lh.name_len) + lh.value_len) {
      error_ = MetricDecodeError::kBadLabels;
      return std::nullopt;
    }
    t += lh.name_len + lh.value_len;
  }
  if (t != labels_end) {
    error_ = MetricDecodeError::kBadLabels;
    return std::nullopt;
  }
  MetricEntryView v{};
  v.kind = kind;
  v.type = static_cast<MetricType>(h.type);
  v.flags = h.flags;
  v.key = h.key;
  v.name = std::string_view(reinterpret_cast<const char*>(name), h.name_len);
  v.help = std::string_view(reinterpret_cast<const char*>(help), h.help_len);
  v.unit = std::string_view(reinterpret_cast<const char*>(unit), h.unit_len);
  v.family = prom ? v.name.substr(0, h.family_len) : v.name;
  v.label_bytes = std::span<const std::byte>(labels, h.labels_bytes);
  v.label_count = h.label_count;
  v.value_bytes = std::span<const std::byte>(values + native_values * sizeof(double),
                                             (std::size_t{h.value_count} - native_values) * sizeof(double));
  v.value_count = static_cast<std::uint16_t>(h.value_count - native_values);
  v.native = native;
  v.timestamp_ns = 0;
  if (stamped) std::memcpy(&v.timestamp_ns, p + sizeof h, sizeof v.timestamp_ns);
  offset_ += h.size;
  ++index_;
  return v;
}

}  // namespace ringpipe::metric
