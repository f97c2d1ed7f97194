#include "ringpipe/sample/sample_batch.hpp"

#include <bit>
#include <cmath>
#include <cstddef>
#include <cstring>
#include <limits>

namespace ringpipe::sample {
namespace {

static_assert(std::endian::native == std::endian::little, "the on-ring format is little-endian");

constexpr std::size_t kPrefetchAhead = 512;

constexpr std::size_t align8(std::size_t n) noexcept { return (n + 7) & ~std::size_t{7}; }

// memcpy for the few bytes of a name, key or value: overlapping word moves
// instead of a library call, never reading or writing outside [src, src+n)
// and [dst, dst+n). Longer strings go to memcpy.
inline void copy_short(std::byte* dst, const char* src, std::size_t n) noexcept {
  if (n >= 8 && n <= 16) {
    std::uint64_t a, b;
    std::memcpy(&a, src, 8);
    std::memcpy(&b, src + n - 8, 8);
    std::memcpy(dst, &a, 8);
    std::memcpy(dst + n - 8, &b, 8);
  } else if (n >= 4 && n < 8) {
    std::uint32_t a, b;
    std::memcpy(&a, src, 4);
    std::memcpy(&b, src + n - 4, 4);
    std::memcpy(dst, &a, 4);
    std::memcpy(dst + n - 4, &b, 4);
  } else if (n > 0 && n < 4) {
    dst[0] = static_cast<std::byte>(src[0]);
    dst[n / 2] = static_cast<std::byte>(src[n / 2]);
    dst[n - 1] = static_cast<std::byte>(src[n - 1]);
  } else if (n > 16) {
    std::memcpy(dst, src, n);
  }
}

// The rules a native histogram part keeps (sample/FORMAT.md), checked by
// the writer before it writes one and by the reader before it hands one out.
bool good_count(double c) noexcept { return std::isfinite(c) && c >= 0; }
bool native_head_ok(std::int32_t schema, std::uint8_t hint, double zero_threshold, double zero_count,
                    double count) noexcept {
  return schema >= kNativeSchemaMin && schema <= kNativeSchemaMax && hint <= kMaxResetHint &&
         good_count(zero_threshold) && good_count(zero_count) && good_count(count);
}
// One side's buckets: keys strictly increasing and within the schema's
// native_key_limit (as the metric reader keeps them), counts finite and >= 0.
// The schema is checked first (native_head_ok).
template <class At>
bool native_side_ok(std::int32_t schema, std::uint32_t n, At at) noexcept {
  const std::int32_t limit = native_key_limit(schema);
  for (std::uint32_t i = 0; i < n; ++i) {
    const auto [key, count] = at(i);
    if (!good_count(count) || key < -limit || key > limit || (i > 0 && key <= at(i - 1).first)) return false;
  }
  return true;
}
// The native part whose NativeHeader is at `at`, its buckets after it (the
// reader has checked that they lie inside the entry).
NativeView native_view_at(const std::byte* at) noexcept {
  NativeHeader nh{};
  std::memcpy(&nh, at, sizeof nh);
  NativeView nv;
  nv.schema = nh.schema;
  nv.reset_hint = static_cast<ResetHint>(nh.reset_hint);
  nv.zero_threshold = nh.zero_threshold;
  nv.zero_count = nh.zero_count;
  nv.count = nh.count;
  nv.sum = nh.sum;
  nv.positive_count = nh.positive_count;
  nv.negative_count = nh.negative_count;
  nv.buckets = std::span<const std::byte>(at + sizeof nh,
                                          (std::size_t{nh.positive_count} + nh.negative_count) * sizeof(NativeBucket));
  return nv;
}

bool native_family_ok(FamilyType t) noexcept { return t == FamilyType::kHistogram || t == FamilyType::kGaugeHistogram; }

// Writes a SampleHeader at p from its three 8-byte numbers and its two
// words of sizes and codes (little-endian, as the static_asserts below pin).
static_assert(offsetof(SampleHeader, value) == 0 && offsetof(SampleHeader, sample_rate) == 8 &&
              offsetof(SampleHeader, timestamp_ns) == 16 && offsetof(SampleHeader, size) == 24 &&
              offsetof(SampleHeader, name_len) == 28 && offsetof(SampleHeader, tag_count) == 30 &&
              offsetof(SampleHeader, str_len) == 32 && offsetof(SampleHeader, kind) == 34 &&
              offsetof(SampleHeader, family_type) == 35 && offsetof(SampleHeader, help_len) == 36 &&
              offsetof(SampleHeader, unit_len) == 38 && offsetof(SampleHeader, suffix_len) == 39);
inline void store_header(std::byte* p, double value, double sample_rate, std::int64_t timestamp_ns,
                         std::uint64_t size_name_tags, std::uint64_t str_kind_family) noexcept {
  std::memcpy(p, &value, 8);
  std::memcpy(p + 8, &sample_rate, 8);
  std::memcpy(p + 16, &timestamp_ns, 8);
  std::memcpy(p + 24, &size_name_tags, 8);
  std::memcpy(p + 32, &str_kind_family, 8);
}

std::size_t tags_size(std::span<const Tag> tags) noexcept {
  std::size_t n = 0;
  for (const Tag& t : tags) n += sizeof(TagHeader) + t.key.size() + t.value.size();
  return n;
}

}  // namespace

std::string_view kind_name(Kind k) noexcept {
  switch (k) {
    case Kind::kCounter:
      return "counter";
    case Kind::kGauge:
      return "gauge";
    case Kind::kGaugeDelta:
      return "gauge_delta";
    case Kind::kTimer:
      return "timer";
    case Kind::kHistogram:
      return "histogram";
    case Kind::kDistribution:
      return "distribution";
    case Kind::kSet:
      return "set";
    case Kind::kNativeHistogram:
      return "native_histogram";
  }
  return "unknown";
}

std::string_view decode_error_name(DecodeError e) noexcept {
  switch (e) {
    case DecodeError::kNone:
      return "none";
    case DecodeError::kTruncatedHeader:
      return "truncated_header";
    case DecodeError::kBadVersion:
      return "bad_version";
    case DecodeError::kBadLength:
      return "bad_length";
    case DecodeError::kBadEntry:
      return "bad_entry";
    case DecodeError::kBadKind:
      return "bad_kind";
    case DecodeError::kBadTags:
      return "bad_tags";
    case DecodeError::kBadFamily:
      return "bad_family";
    case DecodeError::kBadNative:
      return "bad_native";
  }
  return "unknown";
}

std::size_t entry_size(std::string_view name, std::string_view str_value, std::span<const Tag> tags,
                       const Family* family) noexcept {
  const std::size_t family_bytes = family != nullptr ? family->help.size() + family->unit.size() : 0;
  return align8(sizeof(SampleHeader) + name.size() + str_value.size() + family_bytes + tags_size(tags));
}

BatchWriter::BatchWriter(std::span<std::byte> buffer, std::uint32_t source_id, std::int64_t received_ns) noexcept
    : buf_(buffer), used_(sizeof(BatchHeader)), source_id_(source_id), received_ns_(received_ns) {}

void BatchWriter::reset(std::span<std::byte> buffer, std::int64_t received_ns) noexcept {
  buf_ = buffer;
  used_ = sizeof(BatchHeader);
  count_ = 0;
  native_ = false;
  received_ns_ = received_ns;
}

bool BatchWriter::append(Kind kind, std::string_view name, double value, double sample_rate, std::span<const Tag> tags,
                         std::string_view str_value, std::int64_t timestamp_ns, const Family* family) noexcept {
  // One body, compiled twice: the untyped entry (StatsD, Influx, ...: every
  // sample of a text protocol) never pays for the Prometheus fields.
  auto entry = [&]<bool Typed>() noexcept {
    constexpr std::size_t kMax16 = std::numeric_limits<std::uint16_t>::max();
    // One pass over the tags: limits and size together.
    std::size_t tag_bytes = 0;
    bool too_long = name.size() > kMax16 || str_value.size() > kMax16 || tags.size() > kMax16;
    for (const Tag& t : tags) {
      too_long |= t.key.size() > kMax16 || t.value.size() > kMax16;
      tag_bytes += sizeof(TagHeader) + t.key.size() + t.value.size();
    }
    std::string_view help;
    std::string_view unit;
    if constexpr (Typed) {
      help = family->help;
      unit = family->unit;
      too_long |= help.size() > kMax16 || unit.size() > std::numeric_limits<std::uint8_t>::max() ||
                  family->suffix_len > name.size() || static_cast<std::uint8_t>(family->type) > kMaxFamilyType;
    }
    if (too_long) return false;
    const std::size_t unpadded =
        sizeof(SampleHeader) + name.size() + str_value.size() + help.size() + unit.size() + tag_bytes;
    const std::size_t size = align8(unpadded);
    if (buf_.size() < used_ || size > buf_.size() - used_ || size > std::numeric_limits<std::uint32_t>::max()) {
      return false;
    }
    std::byte* p = buf_.data() + used_;
    // Entries are written front to back: ask for the lines a few entries ahead
    // now, so the write misses overlap the parsing (a hint; no access past the buffer).
    if (buf_.size() - used_ > kPrefetchAhead) __builtin_prefetch(p + kPrefetchAhead, 1, 3);
    // The padding never leaks old bytes: zero the entry's last word first.
    std::memset(p + size - 8, 0, 8);
    // The header goes straight to the entry as five words composed in
    // registers: a SampleHeader built field by field on the stack and then
    // copied stalled on store forwarding (narrow stores read back as wide
    // loads), the largest cost of append() in the StatsD source's profile.
    std::uint8_t family_type = 0;
    std::uint16_t help_len = 0;
    std::uint8_t unit_len = 0;
    std::uint8_t suffix_len = 0;
    if constexpr (Typed) {
      family_type = static_cast<std::uint8_t>(family->type);
      help_len = static_cast<std::uint16_t>(help.size());
      unit_len = static_cast<std::uint8_t>(unit.size());
      suffix_len = family->suffix_len;
    }
    store_header(p, value, sample_rate, timestamp_ns,
                 std::uint64_t{static_cast<std::uint32_t>(size)} | std::uint64_t{name.size()} << 32 |
                     std::uint64_t{tags.size()} << 48,
                 std::uint64_t{str_value.size()} | std::uint64_t{static_cast<std::uint8_t>(kind)} << 16 |
                     std::uint64_t{family_type} << 24 | std::uint64_t{help_len} << 32 | std::uint64_t{unit_len} << 48 |
                     std::uint64_t{suffix_len} << 56);
    std::byte* q = p + sizeof(SampleHeader);
    // copy_short never touches a pointer for 0 bytes (an empty view may have a null data()).
    auto put = [&q](std::string_view s) {
      copy_short(q, s.data(), s.size());
      q += s.size();
    };
    put(name);
    put(str_value);
    if constexpr (Typed) {
      put(help);
      put(unit);
    }
    for (const Tag& t : tags) {
      const TagHeader th{static_cast<std::uint16_t>(t.key.size()), static_cast<std::uint16_t>(t.value.size())};
      std::memcpy(q, &th, sizeof th);
      q += sizeof th;
      put(t.key);
      put(t.value);
    }
    used_ += size;
    ++count_;
    return true;
  };
  return family == nullptr ? entry.template operator()<false>() : entry.template operator()<true>();
}

bool BatchWriter::append_entry(std::span<const std::byte> entry, double value, double sample_rate) noexcept {
  const std::size_t size = entry.size();
  if (size < sizeof(SampleHeader) || buf_.size() < used_ || size > buf_.size() - used_) return false;
  std::byte* p = buf_.data() + used_;
  std::memcpy(p, entry.data(), size);
  static_assert(offsetof(SampleHeader, value) == 0 && offsetof(SampleHeader, sample_rate) == 8);
  std::memcpy(p, &value, sizeof value);
  std::memcpy(p + 8, &sample_rate, sizeof sample_rate);
  used_ += size;
  ++count_;
  return true;
}

bool BatchWriter::append_native(std::string_view name, std::span<const Tag> tags, const NativeSample& n,
                                const Family& family, std::int64_t timestamp_ns) noexcept {
  constexpr std::size_t kMax16 = std::numeric_limits<std::uint16_t>::max();
  const auto pos = [&](std::uint32_t i) { return n.positive[i]; };
  const auto neg = [&](std::uint32_t i) { return n.negative[i]; };
  if (!native_family_ok(family.type) || n.positive.size() > UINT32_MAX / 2 || n.negative.size() > UINT32_MAX / 2 ||
      !native_head_ok(n.schema, static_cast<std::uint8_t>(n.reset_hint), n.zero_threshold, n.zero_count, n.count) ||
      !native_side_ok(n.schema, static_cast<std::uint32_t>(n.positive.size()), pos) ||
      !native_side_ok(n.schema, static_cast<std::uint32_t>(n.negative.size()), neg)) {
    return false;
  }
  std::size_t tag_bytes = 0;
  bool too_long = name.size() > kMax16 || tags.size() > kMax16 || family.help.size() > kMax16 ||
                  family.unit.size() > std::numeric_limits<std::uint8_t>::max() || family.suffix_len > name.size();
  for (const Tag& t : tags) {
    too_long |= t.key.size() > kMax16 || t.value.size() > kMax16;
    tag_bytes += sizeof(TagHeader) + t.key.size() + t.value.size();
  }
  if (too_long) return false;
  const std::size_t buckets = n.positive.size() + n.negative.size();
  if (buckets > (std::numeric_limits<std::uint32_t>::max() - sizeof(SampleHeader)) / sizeof(NativeBucket)) {
    return false;
  }
  const std::size_t native_bytes = sizeof(NativeHeader) + buckets * sizeof(NativeBucket);
  const std::size_t size =
      align8(sizeof(SampleHeader) + native_bytes + name.size() + family.help.size() + family.unit.size() + tag_bytes);
  if (buf_.size() < used_ || size > buf_.size() - used_ || size > std::numeric_limits<std::uint32_t>::max()) {
    return false;
  }
  std::byte* p = buf_.data() + used_;
  std::memset(p + size - 8, 0, 8);
  SampleHeader h{};
  h.value = 0;
  h.sample_rate = 1;
  h.timestamp_ns = timestamp_ns;
  h.size = static_cast<std::uint32_t>(size);
  h.name_len = static_cast<std::uint16_t>(name.size());
  h.tag_count = static_cast<std::uint16_t>(tags.size());
  h.kind = static_cast<std::uint8_t>(Kind::kNativeHistogram);
  h.family_type = static_cast<std::uint8_t>(family.type);
  h.help_len = static_cast<std::uint16_t>(family.help.size());
  h.unit_len = static_cast<std::uint8_t>(family.unit.size());
  h.suffix_len = family.suffix_len;
  std::memcpy(p, &h, sizeof h);
  NativeHeader nh{};
  nh.schema = n.schema;
  nh.positive_count = static_cast<std::uint32_t>(n.positive.size());
  nh.negative_count = static_cast<std::uint32_t>(n.negative.size());
  nh.reset_hint = static_cast<std::uint8_t>(n.reset_hint);
  nh.zero_threshold = n.zero_threshold;
  nh.zero_count = n.zero_count;
  nh.count = n.count;
  nh.sum = n.sum;
  std::byte* q = p + sizeof h;
  std::memcpy(q, &nh, sizeof nh);
  q += sizeof nh;
  for (const auto side : {n.positive, n.negative}) {
    for (const auto& [key, count] : side) {
      const NativeBucket b{key, 0, count};
      std::memcpy(q, &b, sizeof b);
      q += sizeof b;
    }
  }
  auto put = [&q](std::string_view s) {
    if (!s.empty()) std::memcpy(q, s.data(), s.size());
    q += s.size();
  };
  put(name);
  put(family.help);
  put(family.unit);
  for (const Tag& t : tags) {
    const TagHeader th{static_cast<std::uint16_t>(t.key.size()), static_cast<std::uint16_t>(t.value.size())};
    std::memcpy(q, &th, sizeof th);
    q += sizeof th;
    put(t.key);
    put(t.value);
  }
  used_ += size;
  ++count_;
  native_ = true;
  return true;
}

std::size_t BatchWriter::finish() noexcept {
  BatchHeader h{};
  h.format_version = native_ ? kFormatVersionNative : kFormatVersion;
  h.sample_count = count_;
  h.source_id = source_id_;
  h.bytes = static_cast<std::uint32_t>(used_);
  h.received_ns = received_ns_;
  std::memcpy(buf_.data(), &h, sizeof h);
  return used_;
}

BatchReader::BatchReader(std::span<const std::byte> record) noexcept : rec_(record) {
  if (rec_.size() < sizeof(BatchHeader)) {
    error_ = DecodeError::kTruncatedHeader;
    return;
  }
  std::memcpy(&header_, rec_.data(), sizeof header_);
  if (header_.format_version != kFormatVersion && header_.format_version != kFormatVersionNative) {
    error_ = DecodeError::kBadVersion;
    return;
  }
  if (header_.bytes < sizeof(BatchHeader) || header_.bytes > rec_.size()) {
    error_ = DecodeError::kBadLength;
    return;
  }
  rec_ = rec_.first(header_.bytes);
  offset_ = sizeof(BatchHeader);
}

NativeView SampleView::native() const noexcept {
  return native_at == nullptr ? NativeView{} : native_view_at(native_at);
}

std::optional<SampleView> BatchReader::next() noexcept {
  if (error_ != DecodeError::kNone || index_ >= header_.sample_count) return std::nullopt;
  const std::size_t left = rec_.size() - offset_;
  SampleHeader h;
  if (left < sizeof h) {
    error_ = DecodeError::kBadEntry;
    return std::nullopt;
  }
  const std::byte* p = rec_.data() + offset_;
  // The reader walks the record front to back, the lines another core has
  // just written: ask for the lines a few entries ahead now, so their misses
  // overlap this entry's checks (a hint; no access past the record).
  if (left > kPrefetchAhead) __builtin_prefetch(p + kPrefetchAhead, 0, 3);
  std::memcpy(&h, p, sizeof h);
  const bool native =
      h.kind == static_cast<std::uint8_t>(Kind::kNativeHistogram) && header_.format_version == kFormatVersionNative;
  // A native histogram's part comes first: its header, then its buckets,
  // whose count is checked against the entry before any bucket is read.
  NativeHeader nh{};
  std::size_t native_bytes = 0;
  if (native) {
    if (h.size > left || h.size < sizeof h + sizeof nh) {
      error_ = DecodeError::kBadEntry;
      return std::nullopt;
    }
    std::memcpy(&nh, p + sizeof h, sizeof nh);
    if (std::uint64_t{nh.positive_count} + nh.negative_count > (h.size - sizeof h - sizeof nh) / sizeof(NativeBucket)) {
      error_ = DecodeError::kBadEntry;
      return std::nullopt;
    }
    native_bytes = sizeof nh + (std::size_t{nh.positive_count} + nh.negative_count) * sizeof(NativeBucket);
  }
  const std::size_t fixed = sizeof h + native_bytes + std::size_t{h.name_len} + h.str_len + h.help_len + h.unit_len;
  if (h.size > left || h.size % 8 != 0 || fixed > h.size) {
    error_ = DecodeError::kBadEntry;
    return std::nullopt;
  }
  if (h.kind < static_cast<std::uint8_t>(Kind::kCounter) ||
      (h.kind > static_cast<std::uint8_t>(Kind::kSet) && !native)) {
    error_ = DecodeError::kBadKind;
    return std::nullopt;
  }
  // A Prometheus sample is set, never added; strings and a suffix only with a type.
  const bool typed = h.family_type != 0;
  if (h.family_type > kMaxFamilyType || h.suffix_len > h.name_len ||
      (typed && h.kind != static_cast<std::uint8_t>(Kind::kGauge) && !native) ||
      (native && (!native_family_ok(static_cast<FamilyType>(h.family_type)) || h.str_len != 0)) ||
      (!typed && (h.help_len != 0 || h.unit_len != 0 || h.suffix_len != 0))) {
    error_ = DecodeError::kBadFamily;
    return std::nullopt;
  }
  if (native) [[unlikely]] {
    const NativeView nv = native_view_at(p + sizeof h);
    const auto pos = [&](std::uint32_t i) { return nv.positive(i); };
    const auto neg = [&](std::uint32_t i) { return nv.negative(i); };
    if (nh.reserved[0] != 0 || nh.reserved[1] != 0 || nh.reserved[2] != 0 ||
        !native_head_ok(nh.schema, nh.reset_hint, nh.zero_threshold, nh.zero_count, nh.count) ||
        !native_side_ok(nh.schema, nh.positive_count, pos) || !native_side_ok(nh.schema, nh.negative_count, neg)) {
      error_ = DecodeError::kBadNative;
      return std::nullopt;
    }
  }
  const std::byte* const native_at = native ? p + sizeof h : nullptr;
  p += native_bytes;  // the strings and tags follow the native part
  const std::byte* const entry_end = rec_.data() + offset_ + h.size;
  // Walk the tags once to prove every length stays inside the entry.
  const std::byte* tags = p + (fixed - native_bytes);
  const std::byte* end = entry_end;
  const std::byte* t = tags;
  for (std::uint16_t i = 0; i < h.tag_count; ++i) {
    TagHeader th;
    if (end - t < static_cast<std::ptrdiff_t>(sizeof th)) {
      error_ = DecodeError::kBadTags;
      return std::nullopt;
    }
    std::memcpy(&th, t, sizeof th);
    t += sizeof th;
    if (end - t < static_cast<std::ptrdiff_t>(th.key_len) + th.value_len) {
      error_ = DecodeError::kBadTags;
      return std::nullopt;
    }
    t += th.key_len + th.value_len;
  }
  SampleView v{};
  v.kind = static_cast<Kind>(h.kind);
  v.value = h.value;
  v.sample_rate = h.sample_rate;
  v.timestamp_ns = h.timestamp_ns;
  v.name = std::string_view(reinterpret_cast<const char*>(p + sizeof h), h.name_len);
  const char* strings = reinterpret_cast<const char*>(p + sizeof h);
  v.str_value = std::string_view(strings + h.name_len, h.str_len);
  v.family.type = static_cast<FamilyType>(h.family_type);
  v.family.suffix_len = h.suffix_len;
  v.family.help = std::string_view(strings + h.name_len + h.str_len, h.help_len);
  v.family.unit = std::string_view(strings + h.name_len + h.str_len + h.help_len, h.unit_len);
  v.tag_bytes = std::span<const std::byte>(tags, static_cast<std::size_t>(t - tags));
  v.tag_count = h.tag_count;
  v.native_at = native_at;
  offset_ += h.size;
  ++index_;
  return v;
}

}  // namespace ringpipe::sample
