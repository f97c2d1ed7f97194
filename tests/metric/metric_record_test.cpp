#include "ringpipe/metric/metric_record.hpp"

#include <gtest/gtest.h>

#include <optional>

#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

namespace ringpipe::metric {
namespace {

std::vector<std::byte> encode_labels(std::initializer_list<Label> labels) {
  std::vector<std::byte> out;
  for (const Label& l : labels) {
    const LabelHeader h{static_cast<std::uint16_t>(l.name.size()), static_cast<std::uint16_t>(l.value.size())};
    const auto* hp = reinterpret_cast<const std::byte*>(&h);
    out.insert(out.end(), hp, hp + sizeof h);
    for (char c : l.name) out.push_back(static_cast<std::byte>(c));
    for (char c : l.value) out.push_back(static_cast<std::byte>(c));
  }
  return out;
}

TEST(MetricRecord, RoundTripsSeriesExpiriesAndMarkers) {
  std::vector<std::byte> buf(4096);
  MetricBatchWriter w(buf, BatchOrigin{3, 4, 77, 9, 1234});
  const auto labels = encode_labels({{"code", "200"}, {"method", "GET"}});
  const double hist[] = {3, 1.5, 0.1, 1, 1, 2, std::numeric_limits<double>::infinity(), 3};
  SeriesEntry e;
  e.type = MetricType::kHistogram;
  e.key = 42;
  e.name = "http_seconds";
  e.help = "latency";
  e.label_bytes = labels;
  e.label_count = 2;
  e.values = hist;
  ASSERT_TRUE(w.append_marker(EntryKind::kSnapshotBegin, 5));
  ASSERT_TRUE(w.append(e));
  SeriesEntry x = e;
  x.kind = EntryKind::kExpire;
  x.values = {};
  ASSERT_TRUE(w.append(x));
  ASSERT_TRUE(w.append_marker(EntryKind::kSnapshotEnd, 5));
  const std::size_t n = w.finish();

  MetricBatchReader r(std::span<const std::byte>(buf.data(), n));
  EXPECT_EQ(r.header().shard, 3);
  EXPECT_EQ(r.header().shard_count, 4);
  EXPECT_EQ(r.header().instance_id, 77u);
  EXPECT_EQ(r.header().flush_seq, 9u);
  EXPECT_EQ(r.header().flush_ns, 1234);
  auto m = r.next();
  ASSERT_TRUE(m);
  EXPECT_EQ(m->kind, EntryKind::kSnapshotBegin);
  EXPECT_EQ(m->key, 5u);
  auto s = r.next();
  ASSERT_TRUE(s);
  EXPECT_EQ(s->kind, EntryKind::kSeries);
  EXPECT_EQ(s->type, MetricType::kHistogram);
  EXPECT_EQ(s->name, "http_seconds");
  EXPECT_EQ(s->help, "latency");
  EXPECT_EQ(s->key, 42u);
  ASSERT_EQ(s->value_count, 8);
  EXPECT_EQ(s->value(0), 3);
  EXPECT_TRUE(std::isinf(s->value(6)));
  std::string seen;
  s->for_each_label([&](const Label& l) { seen += std::string(l.name) + "=" + std::string(l.value) + ";"; });
  EXPECT_EQ(seen, "code=200;method=GET;");
  auto ex = r.next();
  ASSERT_TRUE(ex);
  EXPECT_EQ(ex->kind, EntryKind::kExpire);
  EXPECT_EQ(ex->value_count, 0);
  auto end = r.next();
  ASSERT_TRUE(end);
  EXPECT_EQ(end->kind, EntryKind::kSnapshotEnd);
  EXPECT_FALSE(r.next());
  EXPECT_EQ(r.error(), MetricDecodeError::kNone);
}

// Label bytes are re-walked after validation, possibly in shared memory that
// changed since: the walk stays inside them.
TEST(MetricRecord, LabelWalkStaysInsideTheLabelBytesWhenTheyChangeAfterValidation) {
  std::vector<std::byte> bytes;
  auto put = [&](std::string_view n, std::string_view v) {
    const LabelHeader h{static_cast<std::uint16_t>(n.size()), static_cast<std::uint16_t>(v.size())};
    const auto* hb = reinterpret_cast<const std::byte*>(&h);
    bytes.insert(bytes.end(), hb, hb + sizeof h);
    for (char c : n) bytes.push_back(static_cast<std::byte>(c));
    for (char c : v) bytes.push_back(static_cast<std::byte>(c));
  };
  put("code", "200");
  put("method", "GET");
  const LabelHeader big{0xffff, 0xffff};
  std::memcpy(bytes.data() + sizeof(LabelHeader) + 7, &big, sizeof big);  // the second label's lengths
  const char* lo = reinterpret_cast<const char*>(bytes.data());
  const char* hi = lo + bytes.size();
  int calls = 0;
  for_each_label(bytes, 2, [&](const Label& l) {
    ++calls;
    EXPECT_GE(l.name.data(), lo);
    EXPECT_LE(l.value.data() + l.value.size(), hi) << "label walk read past its bytes";
  });
  EXPECT_EQ(calls, 1);
}

TEST(MetricRecord, WriterRefusesAnEntryThatDoesNotFit) {
  std::vector<std::byte> buf(sizeof(MetricBatchHeader) + 40);
  MetricBatchWriter w(buf, {});
  const double v[] = {1};
  SeriesEntry e;
  e.name = "a_rather_long_metric_name";
  e.values = v;
  EXPECT_FALSE(w.append(e));
  EXPECT_EQ(w.entry_count(), 0u);
}

TEST(MetricRecord, ReaderRejectsTruncatedBadVersionAndLyingLengths) {
  std::vector<std::byte> buf(1024);
  MetricBatchWriter w(buf, {});
  const auto labels = encode_labels({{"k", "v"}});
  const double v[] = {1};
  SeriesEntry e;
  e.name = "m";
  e.label_bytes = labels;
  e.label_count = 1;
  e.values = v;
  ASSERT_TRUE(w.append(e));
  const std::size_t n = w.finish();

  EXPECT_EQ(MetricBatchReader(std::span<const std::byte>(buf.data(), 10)).error(), MetricDecodeError::kTruncatedHeader);
  EXPECT_EQ(MetricBatchReader(std::span<const std::byte>(buf.data(), n - 8)).error(), MetricDecodeError::kBadLength);

  auto bad_version = buf;
  bad_version[0] = std::byte{9};
  EXPECT_EQ(MetricBatchReader(std::span<const std::byte>(bad_version.data(), n)).error(),
            MetricDecodeError::kBadVersion);

  auto lying = buf;  // the label's name length points past the entry
  const std::size_t label_at = sizeof(MetricBatchHeader) + sizeof(MetricEntryHeader) + sizeof(double) + 1;
  lying[label_at] = std::byte{200};
  MetricBatchReader r(std::span<const std::byte>(lying.data(), n));
  EXPECT_FALSE(r.next());
  EXPECT_EQ(r.error(), MetricDecodeError::kBadLabels);

  auto bad_type = buf;
  bad_type[sizeof(MetricBatchHeader) + 5] = std::byte{9};
  MetricBatchReader r2(std::span<const std::byte>(bad_type.data(), n));
  EXPECT_FALSE(r2.next());
  EXPECT_EQ(r2.error(), MetricDecodeError::kBadType);

  auto huge = buf;  // entry size larger than the record
  huge[sizeof(MetricBatchHeader) + 1] = std::byte{0x7f};
  MetricBatchReader r3(std::span<const std::byte>(huge.data(), n));
  EXPECT_FALSE(r3.next());
  EXPECT_EQ(r3.error(), MetricDecodeError::kBadEntry);
}

TEST(MetricRecord, TimestampedEntriesRoundTripInAVersion3Batch) {
  std::vector<std::byte> buf(1024);
  MetricBatchWriter w(buf, BatchOrigin{0, 1, 5, 1, 99});
  const auto labels = encode_labels({{"host", "a"}});
  const double v1[] = {1.5};
  const double v2[] = {-2};
  SeriesEntry e;
  e.type = MetricType::kCounter;
  e.flags = kEntryPromSample;
  e.key = 7;
  e.name = "jobs_total";
  e.family_len = 4;
  e.help = "jobs done";
  e.unit = "jobs";
  e.label_bytes = labels;
  e.label_count = 1;
  e.values = v1;
  e.timestamp_ns = 1'700'000'000'123'000'000;
  ASSERT_TRUE(w.append_stamped(e));
  SeriesEntry g;
  g.flags = 0;
  g.key = 8;
  g.name = "temp";
  g.values = v2;
  g.timestamp_ns = -1;  // before the epoch: kept as written
  ASSERT_TRUE(w.append_stamped(g));
  EXPECT_EQ(stamped_entry_size(g), sizeof(MetricEntryHeader) + 8 + 8 + 8);  // header, time, value, "temp" padded
  const std::size_t n = w.finish();

  MetricBatchReader r(std::span<const std::byte>(buf.data(), n));
  ASSERT_EQ(r.error(), MetricDecodeError::kNone);
  EXPECT_EQ(r.header().format_version, kMetricFormatVersionTimestamps);
  EXPECT_EQ(r.header().flags, kBatchTimestamps);
  auto a = r.next();
  ASSERT_TRUE(a);
  EXPECT_EQ(a->timestamp_ns, 1'700'000'000'123'000'000);
  EXPECT_EQ(a->flags, kEntryPromSample | kEntryTimestamp);
  EXPECT_EQ(a->type, MetricType::kCounter);
  EXPECT_EQ(a->name, "jobs_total");
  EXPECT_EQ(a->family, "jobs");
  EXPECT_EQ(a->help, "jobs done");
  EXPECT_EQ(a->unit, "jobs");
  EXPECT_EQ(a->value_count, 1);
  EXPECT_EQ(a->value(0), 1.5);
  int seen = 0;
  a->for_each_label([&](const Label& l) {
    EXPECT_EQ(l.name, "host");
    EXPECT_EQ(l.value, "a");
    ++seen;
  });
  EXPECT_EQ(seen, 1);
  auto b = r.next();
  ASSERT_TRUE(b);
  EXPECT_EQ(b->timestamp_ns, -1);
  EXPECT_EQ(b->name, "temp");
  EXPECT_EQ(b->value(0), -2);
  EXPECT_FALSE(r.next());
  EXPECT_EQ(r.error(), MetricDecodeError::kNone);
}

TEST(MetricRecord, ABatchWithoutTimestampsStaysVersion2ForOlderReaders) {
  std::vector<std::byte> buf(256);
  MetricBatchWriter w(buf, {});
  const double v[] = {1};
  SeriesEntry e;
  e.name = "m";
  e.values = v;
  e.timestamp_ns = 42;  // append() writes no timestamp
  ASSERT_TRUE(w.append(e));
  const std::size_t n = w.finish();
  EXPECT_EQ(n, sizeof(MetricBatchHeader) + entry_size(e));
  MetricBatchReader r(std::span<const std::byte>(buf.data(), n));
  EXPECT_EQ(r.header().format_version, kMetricFormatVersion);
  EXPECT_EQ(r.header().flags, 0);
  auto x = r.next();
  ASSERT_TRUE(x);
  EXPECT_EQ(x->flags & kEntryTimestamp, 0);
  EXPECT_EQ(x->timestamp_ns, 0);
  EXPECT_EQ(x->value(0), 1);
}

// A reader of version 2 only (every exporter before timestamps) compares
// format_version with 2 and refuses anything else whole: a version-3 batch is
// never misread as version 2, because a writer marks every batch holding a
// timestamp so.
TEST(MetricRecord, TimestampsAreRefusedWhereTheVersionDoesNotAnnounceThem) {
  std::vector<std::byte> buf(256);
  MetricBatchWriter w(buf, {});
  const double v[] = {1};
  SeriesEntry e;
  e.name = "m";
  e.flags = 0;
  e.values = v;
  e.timestamp_ns = 42;
  ASSERT_TRUE(w.append_stamped(e));
  const std::size_t n = w.finish();
  MetricBatchHeader h;
  std::memcpy(&h, buf.data(), sizeof h);
  ASSERT_NE(h.format_version, 2) << "a version-2 reader would take the timestamp for the value";

  auto as_v2 = buf;  // a writer that stamps entries but labels the batch version 2
  as_v2[0] = std::byte{2};
  as_v2[2] = std::byte{0};
  MetricBatchReader r(std::span<const std::byte>(as_v2.data(), n));
  ASSERT_EQ(r.error(), MetricDecodeError::kNone);
  EXPECT_FALSE(r.next());
  EXPECT_EQ(r.error(), MetricDecodeError::kBadEntry);

  auto no_flag = buf;  // version 3 without its flag, or with unknown ones
  no_flag[2] = std::byte{0};
  EXPECT_EQ(MetricBatchReader(std::span<const std::byte>(no_flag.data(), n)).error(), MetricDecodeError::kBadVersion);
  auto other_flag = buf;
  other_flag[2] = std::byte{3};
  EXPECT_EQ(MetricBatchReader(std::span<const std::byte>(other_flag.data(), n)).error(),
            MetricDecodeError::kBadVersion);

  auto short_entry = buf;  // the entry's size leaves no room for the timestamp and the value
  short_entry[sizeof(MetricBatchHeader)] = std::byte{static_cast<unsigned char>(sizeof(MetricEntryHeader) + 8)};
  MetricBatchReader r2(std::span<const std::byte>(short_entry.data(), n));
  EXPECT_FALSE(r2.next());
  EXPECT_EQ(r2.error(), MetricDecodeError::kBadEntry);

  std::vector<std::byte> mbuf(256);  // a marker never carries a timestamp
  MetricBatchWriter mw(mbuf, {});
  ASSERT_TRUE(mw.append_stamped(e));
  ASSERT_TRUE(mw.append_marker(EntryKind::kSnapshotBegin, 1));
  const std::size_t mn = mw.finish();
  const std::size_t marker_at = sizeof(MetricBatchHeader) + stamped_entry_size(e);
  mbuf[marker_at + 6] = std::byte{static_cast<unsigned char>(kEntryTimestamp)};
  MetricBatchReader r3(std::span<const std::byte>(mbuf.data(), mn));
  ASSERT_TRUE(r3.next());
  EXPECT_FALSE(r3.next());
  EXPECT_EQ(r3.error(), MetricDecodeError::kBadEntry);
}

// A native histogram entry: [schema, zero_threshold, zero_count, n_pos,
// n_neg, pairs...] before the classic values; the batch becomes version 4 and
// the view shows the classic values as before plus the native part.
std::vector<double> native_histogram_values() {
  const double inf = std::numeric_limits<double>::infinity();
  return {3,  1e-9, 2,   2, 1, -1, 4,   2, 1, 5, 3,  // schema 3; zero 2; + keys -1 (4), 2 (1); - key 5 (3)
          10, 4.5,  0.5, 6, 1, 7,  inf, 10};         // classic: count, sum, le/cumulative pairs
}

TEST(MetricRecord, NativeHistogramEntriesRoundTripInAVersion4Batch) {
  std::vector<std::byte> buf(1024);
  MetricBatchWriter w(buf, {});
  const std::vector<double> v = native_histogram_values();
  SeriesEntry e;
  e.type = MetricType::kHistogram;
  e.flags = kEntryNative;
  e.name = "h";
  e.values = v;
  ASSERT_TRUE(w.append(e));
  SeriesEntry plain;
  plain.name = "g";
  const double one[] = {1};
  plain.values = one;
  ASSERT_TRUE(w.append(plain));
  const std::size_t n = w.finish();
  MetricBatchReader r(std::span<const std::byte>(buf.data(), n));
  EXPECT_EQ(r.header().format_version, kMetricFormatVersionNative);
  EXPECT_EQ(r.header().flags, kBatchNative);
  auto x = r.next();
  ASSERT_TRUE(x) << metric_decode_error_name(r.error());
  EXPECT_EQ(x->value_count, 8);  // the classic values only
  EXPECT_EQ(x->value(0), 10);
  EXPECT_EQ(x->value(1), 4.5);
  EXPECT_EQ(x->value(7), 10);
  EXPECT_EQ(x->native.schema, 3);
  EXPECT_EQ(x->native.zero_threshold, 1e-9);
  EXPECT_EQ(x->native.zero_count, 2);
  ASSERT_EQ(x->native.positive_count, 2u);
  ASSERT_EQ(x->native.negative_count, 1u);
  EXPECT_EQ(x->native.positive(0), (std::pair<std::int32_t, double>{-1, 4}));
  EXPECT_EQ(x->native.positive(1), (std::pair<std::int32_t, double>{2, 1}));
  EXPECT_EQ(x->native.negative(0), (std::pair<std::int32_t, double>{5, 3}));
  auto y = r.next();
  ASSERT_TRUE(y);
  EXPECT_EQ(y->native.positive_count + y->native.negative_count, 0u);
  EXPECT_EQ(y->value(0), 1);
}

TEST(MetricRecord, NativeHistogramsAreRefusedWhereTheVersionDoesNotAnnounceThemOrTheyDoNotAddUp) {
  const std::vector<double> good = native_histogram_values();
  auto decode = [](std::vector<double> v, std::uint16_t version = kMetricFormatVersionNative,
                   std::uint16_t flags = kBatchNative, MetricType type = MetricType::kHistogram) {
    std::vector<std::byte> buf(1024);
    MetricBatchWriter w(buf, {});
    SeriesEntry e;
    e.type = type;
    e.flags = kEntryNative;
    e.name = "h";
    e.values = v;
    EXPECT_TRUE(w.append(e));
    const std::size_t n = w.finish();
    std::memcpy(buf.data(), &version, 2);
    std::memcpy(buf.data() + 2, &flags, 2);
    MetricBatchReader r(std::span<const std::byte>(buf.data(), n));
    if (r.error() != MetricDecodeError::kNone) return r.error();
    EXPECT_FALSE(r.next().has_value() && r.error() != MetricDecodeError::kNone);
    return r.error();
  };
  EXPECT_EQ(decode(good), MetricDecodeError::kNone);
  // A version-2 or -3 reader refuses the batch whole; this one refuses the entry there.
  EXPECT_EQ(decode(good, kMetricFormatVersion, 0), MetricDecodeError::kBadEntry);
  EXPECT_EQ(decode(good, kMetricFormatVersionTimestamps, kBatchTimestamps), MetricDecodeError::kBadEntry);
  EXPECT_EQ(decode(good, kMetricFormatVersionNative, 0), MetricDecodeError::kBadVersion);
  EXPECT_EQ(decode(good, kMetricFormatVersionNative, kBatchNative | 4), MetricDecodeError::kBadVersion);
  EXPECT_EQ(decode(good, kMetricFormatVersionNative, kBatchNative, MetricType::kSummary), MetricDecodeError::kBadEntry);
  auto bad = [&](std::size_t i, double x) {
    std::vector<double> v = good;
    v[i] = x;
    return decode(v);
  };
  EXPECT_EQ(bad(0, 9), MetricDecodeError::kBadEntry);    // schema beyond 8
  EXPECT_EQ(bad(0, 2.5), MetricDecodeError::kBadEntry);  // schema not an integer
  EXPECT_EQ(bad(1, -1), MetricDecodeError::kBadEntry);   // negative zero threshold
  EXPECT_EQ(bad(2, NAN), MetricDecodeError::kBadEntry);  // zero count NaN
  EXPECT_EQ(bad(3, 9), MetricDecodeError::kBadEntry);    // more pairs than values
  EXPECT_EQ(bad(7, -1), MetricDecodeError::kBadEntry);   // keys not increasing
  EXPECT_EQ(bad(8, -1), MetricDecodeError::kBadEntry);   // negative count
  EXPECT_EQ(bad(9, 3e9), MetricDecodeError::kBadEntry);  // key beyond int32
  // Keys no double has under schema 3 (|key| <= 1075 * 2^3): a hostile record's
  // INT32_MIN and INT32_MAX would overflow the span arithmetic downstream.
  EXPECT_EQ(bad(9, 8600), MetricDecodeError::kNone);
  EXPECT_EQ(bad(9, 8601), MetricDecodeError::kBadEntry);
  EXPECT_EQ(bad(5, -8601), MetricDecodeError::kBadEntry);
  EXPECT_EQ(bad(9, 2147483647), MetricDecodeError::kBadEntry);
  EXPECT_EQ(decode({3, 0, 0, 0, 0}), MetricDecodeError::kBadEntry);  // no classic count and sum
}

// A relayed Prometheus native histogram sample (kEntryPromSample |
// kEntryNative, at its own time): a histogram or gaugehistogram family's,
// exactly [count, sum] after the native part.
TEST(MetricRecord, PrometheusNativeHistogramSamplesCarryExactlyCountAndSum) {
  auto decode = [](std::vector<double> v, MetricType type = MetricType::kHistogram) -> std::optional<MetricEntryView> {
    static std::vector<std::byte> buf;
    buf.assign(1024, std::byte{0});
    MetricBatchWriter w(buf, {});
    SeriesEntry e;
    e.type = type;
    e.flags = kEntryPromSample | kEntryNative;
    e.name = "rpc_seconds";
    e.family_len = 11;
    e.values = v;
    e.timestamp_ns = 42;
    EXPECT_TRUE(w.append_stamped(e));
    const std::size_t n = w.finish();
    MetricBatchReader r(std::span<const std::byte>(buf.data(), n));
    EXPECT_EQ(r.header().flags, kBatchNative | kBatchTimestamps);
    auto x = r.next();
    if (!x) {
      EXPECT_EQ(r.error(), MetricDecodeError::kBadEntry);
    }
    return x;
  };
  const auto x = decode({1, 0.5, 2, 1, 0, 3, 4, 6, 1.5});
  ASSERT_TRUE(x);
  EXPECT_EQ(x->timestamp_ns, 42);
  EXPECT_EQ(x->family, "rpc_seconds");
  EXPECT_EQ(x->value_count, 2);
  EXPECT_EQ(x->value(0), 6);
  EXPECT_EQ(x->value(1), 1.5);
  EXPECT_EQ(x->native.schema, 1);
  EXPECT_EQ(x->native.positive(0), (std::pair<std::int32_t, double>{3, 4}));
  EXPECT_TRUE(decode({0, 0, 0, 0, 0, 1, 1}, MetricType::kGaugeHistogram));
  EXPECT_FALSE(decode({0, 0, 0, 0, 0, 1, 1}, MetricType::kGauge));
  EXPECT_FALSE(decode({0, 0, 0, 0, 0, 1, 1}, MetricType::kSummary));
  EXPECT_FALSE(decode({0, 0, 0, 0, 0, 1}));           // no sum
  EXPECT_FALSE(decode({0, 0, 0, 0, 0, 1, 1, 5, 1}));  // classic buckets: not a sample's
}

}  // namespace
}  // namespace ringpipe::metric
