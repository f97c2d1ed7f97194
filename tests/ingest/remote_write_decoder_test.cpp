// RemoteWriteDecoder alone: decode, then convert into a real sample batch.

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "parse_harness.hpp"
#include "remote_write_decoder.hpp"
#include "remote_write_test_util.hpp"

namespace ringpipe::ingest {
namespace {

using testing::add_series;
using testing::encode;

constexpr std::int64_t kT0 = 1'700'000'000'000;

std::vector<testing::Got> convert_all(RemoteWriteDecoder& d, ParseCounters& c, ConvertResult* r = nullptr) {
  std::vector<std::byte> buf(1 << 20);
  sample::BatchWriter w(buf, 7, 0);
  SampleOutput out(&w);
  const ConvertResult res = d.convert(out, c);
  if (r != nullptr) *r = res;
  return testing::decode(std::span<const std::byte>(buf.data(), w.finish()));
}

TEST(RemoteWriteDecoder, DecodesAnEmptyRequestToNothing) {
  RemoteWriteDecoder d({});
  ParseCounters c;
  EXPECT_EQ(d.decode(encode(prometheus::WriteRequest{}), c), DecodeStatus::kNone);
  EXPECT_EQ(d.sample_count(), 0u);
  EXPECT_TRUE(convert_all(d, c).empty());
  EXPECT_EQ(c.total_errors(), 0u);
}

TEST(RemoteWriteDecoder, KeepsTheLargestTimestampsAndExtremeValues) {
  RemoteWriteDecoder d({});
  ParseCounters c;
  prometheus::WriteRequest req;
  const std::int64_t max_ms = INT64_MAX / 1'000'000;
  add_series(req, {{"__name__", "x"}}, {{INFINITY, kT0}, {-0.0, max_ms}, {1e308, max_ms + 1}});
  ASSERT_EQ(d.decode(encode(req), c), DecodeStatus::kNone);
  EXPECT_EQ(d.sample_count(), 3u);
  const auto got = convert_all(d, c);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].value, INFINITY);
  EXPECT_EQ(got[1].ts, max_ms * 1'000'000);
  EXPECT_EQ(c[ParseError::kMalformedTimestamp], 1u);
  EXPECT_EQ(c.samples, 2u);
}

TEST(RemoteWriteDecoder, SkipsFieldsItDoesNotModel) {
  // A TimeSeries with an exemplar (field 3) and a WriteRequest with metadata (field 3).
  prometheus::WriteRequest req;
  add_series(req, {{"__name__", "m"}}, {{5, kT0}});
  std::string raw;
  req.SerializeToString(&raw);
  raw += std::string("\x1a\x02\x08\x01", 4);  // WriteRequest field 3, 2 bytes: {field 1 varint 1}
  RemoteWriteDecoder d({});
  ParseCounters c;
  ASSERT_EQ(d.decode(testing::snappy_of(raw), c), DecodeStatus::kNone);
  const auto got = convert_all(d, c);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].value, 5);
}

// A WriteRequest's MetricMetadata (field 3; our test proto does not model it):
// {1: type, 2: family name, 4: help, 5: unit}, as Prometheus sends it.
std::string metadata_field(int type, const std::string& family, const std::string& help, const std::string& unit) {
  const auto len_field = [](int field, const std::string& v) {
    return std::string(1, static_cast<char>(field << 3 | 2)) + static_cast<char>(v.size()) + v;
  };
  const std::string md =
      std::string(1, '\x08') + static_cast<char>(type) + len_field(2, family) + len_field(4, help) + len_field(5, unit);
  return len_field(3, md);
}

// Prometheus sends metadata in requests of its own; the samples that follow
// take their family's type, HELP and UNIT from it, the name is kept as sent
// (':' included), and a series no metadata names is untyped.
TEST(RemoteWriteDecoder, MetadataTypesTheSamplesOfItsFamilies) {
  RemoteWriteDecoder d({});
  ParseCounters c;
  std::string meta = metadata_field(3, "rpc_seconds", "RPC latency.", "seconds") +
                     metadata_field(1, "jobs_total", "Jobs done.", "") +
                     metadata_field(5, "gc_seconds", "GC pauses.", "") + metadata_field(2, "job:load:avg", "", "");
  ASSERT_EQ(d.decode(testing::snappy_of(meta), c), DecodeStatus::kNone);
  EXPECT_TRUE(convert_all(d, c).empty());
  prometheus::WriteRequest req;
  add_series(req, {{"__name__", "rpc_seconds_bucket"}, {"le", "0.5"}}, {{7, kT0}});
  add_series(req, {{"__name__", "rpc_seconds_count"}}, {{9, kT0}});
  add_series(req, {{"__name__", "jobs_total"}}, {{3, kT0}});
  add_series(req, {{"__name__", "gc_seconds"}, {"quantile", "0.5"}}, {{0.1, kT0}});
  add_series(req, {{"__name__", "job:load:avg"}}, {{1.5, kT0}});
  add_series(req, {{"__name__", "rpc_seconds_total"}}, {{1, kT0}});  // not a histogram's sample
  add_series(req, {{"__name__", "unknown_x"}}, {{2, kT0}});
  ASSERT_EQ(d.decode(encode(req), c), DecodeStatus::kNone);
  const auto got = convert_all(d, c);
  ASSERT_EQ(got.size(), 7u);
  EXPECT_EQ(got[0].family_type, sample::FamilyType::kHistogram);
  EXPECT_EQ(got[0].family, "rpc_seconds");
  EXPECT_EQ(got[0].help, "RPC latency.");
  EXPECT_EQ(got[0].unit, "seconds");
  EXPECT_EQ(got[1].family, "rpc_seconds");
  EXPECT_EQ(got[1].family_type, sample::FamilyType::kHistogram);
  EXPECT_EQ(got[2].family_type, sample::FamilyType::kCounter);
  EXPECT_EQ(got[2].help, "Jobs done.");
  EXPECT_EQ(got[3].family_type, sample::FamilyType::kSummary);
  EXPECT_EQ(got[3].family, "gc_seconds");
  EXPECT_EQ(got[4].name, "job:load:avg");
  EXPECT_EQ(got[4].family_type, sample::FamilyType::kGauge);
  EXPECT_EQ(got[5].family_type, sample::FamilyType::kUntyped);
  EXPECT_EQ(got[5].family, "rpc_seconds_total");
  EXPECT_EQ(got[6].family_type, sample::FamilyType::kUntyped);
  EXPECT_TRUE(got[6].help.empty());
  EXPECT_EQ(c.total_errors(), 0u);
}

TEST(RemoteWriteDecoder, RefusedMetadataIsCountedAndTheSamplesStayUntyped) {
  RemoteWriteLimits lim;
  lim.max_metadata = 1;
  RemoteWriteDecoder d(lim);
  ParseCounters c;
  const std::string meta = metadata_field(1, "a_total", "A.", "") + metadata_field(1, "b_total", "B.", "") +
                           metadata_field(2, "9bad", "", "");
  ASSERT_EQ(d.decode(testing::snappy_of(meta), c), DecodeStatus::kNone);
  EXPECT_EQ(c[ParseError::kMalformedMetadata], 2u);  // over max_metadata, and a name Prometheus refuses
  prometheus::WriteRequest req;
  add_series(req, {{"__name__", "a_total"}}, {{1, kT0}});
  add_series(req, {{"__name__", "b_total"}}, {{1, kT0}});
  ASSERT_EQ(d.decode(encode(req), c), DecodeStatus::kNone);
  const auto got = convert_all(d, c);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].family_type, sample::FamilyType::kCounter);
  EXPECT_EQ(got[1].family_type, sample::FamilyType::kUntyped);
}

// A request refused as malformed is counted once, by that reason, and
// changes nothing: metadata entries before the broken one are neither
// counted nor kept (found by the remote_write fuzz target).
TEST(RemoteWriteDecoder, ARefusedRequestCountsOnceAndKeepsNoneOfItsMetadata) {
  RemoteWriteDecoder d({});
  ParseCounters c;
  // A good entry, one with a name Prometheus refuses, then one whose type
  // varint runs past its message's end.
  const std::string broken = std::string(1, static_cast<char>(3 << 3 | 2)) + std::string("\x02\x08\xff", 3);
  const std::string meta = metadata_field(1, "a_total", "A.", "") + metadata_field(2, "9bad", "", "") + broken;
  ASSERT_EQ(d.decode(testing::snappy_of(meta), c), DecodeStatus::kBadProtobuf);
  EXPECT_EQ(c.total_errors(), 1u);
  EXPECT_EQ(c[ParseError::kBadProtobuf], 1u);
  EXPECT_EQ(c[ParseError::kMalformedMetadata], 0u);
  prometheus::WriteRequest req;
  add_series(req, {{"__name__", "a_total"}}, {{1, kT0}});
  ASSERT_EQ(d.decode(encode(req), c), DecodeStatus::kNone);
  const auto got = convert_all(d, c);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].family_type, sample::FamilyType::kUntyped);
}

TEST(RemoteWriteDecoder, ReportsTheFirstReasonAndCountsEveryRejectedSeries) {
  RemoteWriteDecoder d(RemoteWriteLimits{1024, 8192, 1});
  ParseCounters c;
  prometheus::WriteRequest req;
  add_series(req, {{"__name__", "ok"}, {"a", "1"}}, {{1, kT0}});
  add_series(req, {{"__name__", "x"}, {"a", "1"}, {"b", "1"}}, {{1, kT0}});
  add_series(req, {{"__name__", ""}}, {{1, kT0}});
  ASSERT_EQ(d.decode(encode(req), c), DecodeStatus::kNone);
  ConvertResult r;
  const auto got = convert_all(d, c, &r);
  EXPECT_EQ(got.size(), 1u);
  EXPECT_EQ(r.series, 3u);
  EXPECT_EQ(r.series_rejected, 2u);
  EXPECT_EQ(r.first_reason, ParseError::kTooManyLabels);
  EXPECT_EQ(c[ParseError::kInvalidMetricName], 1u);
}

// A native histogram sample: schema 3, zero bucket 1, positive keys -2 (1),
// -1 (2), 1 (3), 5 (1) as spans and deltas, negative key 0 (4); count 12.
prometheus::Histogram native_histogram(std::int64_t ts) {
  prometheus::Histogram h;
  h.set_count_int(12);
  h.set_sum(30);
  h.set_schema(3);
  h.set_zero_threshold(1e-9);
  h.set_zero_count_int(1);
  auto* s = h.add_positive_spans();
  s->set_offset(-2);
  s->set_length(4);
  s = h.add_positive_spans();
  s->set_offset(3);
  s->set_length(1);
  for (const std::int64_t d : {1, 1, -2, 3, -2}) h.add_positive_deltas(d);
  s = h.add_negative_spans();
  s->set_offset(0);
  s->set_length(1);
  h.add_negative_deltas(4);
  h.set_timestamp(ts);
  return h;
}

// Native histogram samples (TimeSeries.histograms) were checked and then
// dropped; now each valid one is carried as a kNativeHistogram entry with its
// own timestamp, and a malformed one still refuses its series like any other
// malformed series.
TEST(RemoteWriteDecoder, CarriesValidNativeHistogramsAndRefusesTheSeriesOfMalformedOnes) {
  prometheus::WriteRequest req;
  add_series(req, {{"__name__", "both"}}, {{5, kT0}});
  *req.mutable_timeseries(0)->add_histograms() = native_histogram(kT0);
  auto add_histogram_series = [&](const std::string& name, const prometheus::Histogram& h) {
    prometheus::TimeSeries* ts = req.add_timeseries();
    prometheus::Label* l = ts->add_labels();
    l->set_name("__name__");
    l->set_value(name);
    *ts->add_histograms() = h;
  };
  prometheus::Histogram floats;  // float counts, positive_counts: valid too
  floats.set_count_float(2.5);
  floats.set_schema(0);
  floats.add_positive_spans()->set_length(2);
  floats.add_positive_counts(1.5);
  floats.add_positive_counts(1);
  floats.set_timestamp(kT0);
  add_histogram_series("floats", floats);
  prometheus::Histogram h = native_histogram(kT0);
  h.set_schema(9);
  add_histogram_series("bad_schema", h);
  h = native_histogram(kT0);
  h.set_positive_deltas(1, -5);  // the second bucket would count -4
  add_histogram_series("negative_bucket", h);
  h = native_histogram(kT0);
  h.mutable_positive_spans(0)->set_length(3);  // spans cover 4 buckets, 5 deltas given
  add_histogram_series("spans_short", h);
  h = native_histogram(kT0);
  h.mutable_positive_spans(1)->set_offset(-1);  // only the first span may start below 0
  add_histogram_series("negative_offset", h);
  h = native_histogram(0);
  add_histogram_series("no_timestamp", h);
  h = floats;
  h.add_positive_deltas(1);  // integer and float buckets in one histogram
  h.mutable_positive_spans(0)->set_length(3);
  add_histogram_series("mixed", h);

  RemoteWriteDecoder d({});
  ParseCounters c;
  ASSERT_EQ(d.decode(encode(req), c), DecodeStatus::kNone);
  ConvertResult r;
  const auto got = convert_all(d, c, &r);
  ASSERT_EQ(got.size(), 3u);  // the float sample, then the two valid histograms
  EXPECT_EQ(got[0].name, "both");
  EXPECT_EQ(got[0].value, 5);
  EXPECT_EQ(got[1].name, "both");
  EXPECT_EQ(got[1].kind, sample::Kind::kNativeHistogram);
  EXPECT_EQ(got[2].name, "floats");
  EXPECT_EQ(got[2].kind, sample::Kind::kNativeHistogram);
  EXPECT_EQ(c[ParseError::kNativeHistogramDropped], 0u);
  EXPECT_EQ(c[ParseError::kMalformedNativeHistogram], 6u);
  EXPECT_EQ(c.samples, 3u);
  EXPECT_EQ(r.series, 8u);
  EXPECT_EQ(r.series_rejected, 6u);
  EXPECT_EQ(r.first_reason, ParseError::kMalformedNativeHistogram);
  EXPECT_EQ(parse_error_name(ParseError::kNativeHistogramDropped), "native_histogram_dropped");
  EXPECT_EQ(parse_error_name(ParseError::kMalformedNativeHistogram), "malformed_native_histogram");
}

// An integer and a float native histogram as Prometheus remote-writes them
// (one series each, several samples, labels, metadata): every field arrives
// in the kind-8 entry exactly, keys from the spans, counts summed from the
// deltas, each sample with its own timestamp, in order.
TEST(RemoteWriteDecoder, NativeHistogramsKeepEveryFieldAndTheirOwnTimestamps) {
  RemoteWriteDecoder d({});
  ParseCounters c;
  ASSERT_EQ(d.decode(testing::snappy_of(metadata_field(3, "rpc_seconds", "RPC latency.", "seconds")), c),
            DecodeStatus::kNone);
  prometheus::WriteRequest req;
  prometheus::TimeSeries* ts = req.add_timeseries();
  for (const auto& [k, v] : std::vector<std::pair<std::string, std::string>>{
           {"__name__", "rpc_seconds"}, {"instance", "a:9100"}, {"job", "node"}}) {
    prometheus::Label* l = ts->add_labels();
    l->set_name(k);
    l->set_value(v);
  }
  *ts->add_histograms() = native_histogram(kT0);
  prometheus::Histogram later = native_histogram(kT0 + 15'000);
  later.set_count_int(3);  // a counter reset: carried as sent
  later.set_zero_count_int(0);
  later.set_reset_hint(prometheus::Histogram::YES);
  later.clear_positive_spans();
  later.clear_positive_deltas();
  later.clear_negative_spans();
  later.clear_negative_deltas();
  later.add_positive_spans()->set_offset(7);
  later.mutable_positive_spans(0)->set_length(1);
  later.add_positive_deltas(3);
  *ts->add_histograms() = later;

  prometheus::TimeSeries* fts = req.add_timeseries();
  prometheus::Label* l = fts->add_labels();
  l->set_name("__name__");
  l->set_value("load_seconds");
  prometheus::Histogram f;
  f.set_count_float(4.75);
  f.set_sum(-2.25);
  f.set_schema(-2);
  f.set_zero_threshold(0.001);
  f.set_zero_count_float(0.25);
  f.add_negative_spans()->set_offset(1);
  f.mutable_negative_spans(0)->set_length(2);
  f.add_negative_counts(0.5);
  f.add_negative_counts(1.5);
  f.add_positive_spans()->set_offset(-1);
  f.mutable_positive_spans(0)->set_length(1);
  f.add_positive_spans()->set_offset(2);
  f.mutable_positive_spans(1)->set_length(1);
  f.add_positive_counts(2);
  f.add_positive_counts(0.5);
  f.set_reset_hint(prometheus::Histogram::GAUGE);
  f.set_timestamp(kT0 + 1);
  *fts->add_histograms() = f;

  ASSERT_EQ(d.decode(encode(req), c), DecodeStatus::kNone);
  EXPECT_EQ(d.sample_count(), 3u);
  const auto got = convert_all(d, c);
  EXPECT_EQ(c.total_errors(), 0u);
  ASSERT_EQ(got.size(), 3u);
  using Buckets = std::vector<std::pair<std::int32_t, double>>;
  const testing::Tags tags{{"instance", "a:9100"}, {"job", "node"}};
  for (int i = 0; i < 2; ++i) {
    SCOPED_TRACE(i);
    EXPECT_EQ(got[i].kind, sample::Kind::kNativeHistogram);
    EXPECT_EQ(got[i].name, "rpc_seconds");
    EXPECT_EQ(got[i].tags, tags);
    EXPECT_EQ(got[i].family_type, sample::FamilyType::kHistogram);
    EXPECT_EQ(got[i].family, "rpc_seconds");
    EXPECT_EQ(got[i].help, "RPC latency.");
    EXPECT_EQ(got[i].unit, "seconds");
    EXPECT_EQ(got[i].schema, 3);
    EXPECT_EQ(got[i].zero_threshold, 1e-9);
    EXPECT_EQ(got[i].sum, 30);
  }
  EXPECT_EQ(got[0].ts, kT0 * 1'000'000);
  EXPECT_EQ(got[0].reset_hint, sample::ResetHint::kUnknown);
  EXPECT_EQ(got[0].count, 12);
  EXPECT_EQ(got[0].zero_count, 1);
  EXPECT_EQ(got[0].positive, (Buckets{{-2, 1}, {-1, 2}, {0, 0}, {1, 3}, {5, 1}}));
  EXPECT_EQ(got[0].negative, (Buckets{{0, 4}}));
  EXPECT_EQ(got[1].ts, (kT0 + 15'000) * 1'000'000);
  EXPECT_EQ(got[1].reset_hint, sample::ResetHint::kYes);
  EXPECT_EQ(got[1].count, 3);
  EXPECT_EQ(got[1].zero_count, 0);
  EXPECT_EQ(got[1].positive, (Buckets{{7, 3}}));
  EXPECT_TRUE(got[1].negative.empty());

  EXPECT_EQ(got[2].name, "load_seconds");
  EXPECT_EQ(got[2].ts, (kT0 + 1) * 1'000'000);
  EXPECT_EQ(got[2].family_type, sample::FamilyType::kGaugeHistogram);  // no metadata; the hint says gauge
  EXPECT_EQ(got[2].reset_hint, sample::ResetHint::kGauge);
  EXPECT_EQ(got[2].schema, -2);
  EXPECT_EQ(got[2].zero_threshold, 0.001);
  EXPECT_EQ(got[2].zero_count, 0.25);
  EXPECT_EQ(got[2].count, 4.75);
  EXPECT_EQ(got[2].sum, -2.25);
  EXPECT_EQ(got[2].positive, (Buckets{{-1, 2}, {2, 0.5}}));
  EXPECT_EQ(got[2].negative, (Buckets{{1, 0.5}, {2, 1.5}}));
}

// What Prometheus takes but the sample format cannot hold is counted, not
// lost without a trace: a bucket key beyond the schema's limit (no finite
// value falls there), an entry larger than a whole batch.
TEST(RemoteWriteDecoder, CountsNativeHistogramsItCannotCarry) {
  prometheus::WriteRequest req;
  prometheus::TimeSeries* ts = req.add_timeseries();
  prometheus::Label* l = ts->add_labels();
  l->set_name("__name__");
  l->set_value("h");
  prometheus::Histogram far = native_histogram(kT0);
  far.set_schema(0);
  far.mutable_positive_spans(1)->set_offset(1075);  // key 1077 > 1075
  *ts->add_histograms() = far;
  prometheus::Histogram wide = native_histogram(kT0 + 1);
  wide.set_schema(8);
  wide.clear_positive_spans();
  wide.clear_positive_deltas();
  wide.add_positive_spans()->set_length(20000);  // 320 kB of buckets
  wide.add_positive_deltas(1);
  for (int i = 1; i < 20000; ++i) wide.add_positive_deltas(0);
  wide.set_count_int(20004);
  *ts->add_histograms() = wide;
  *ts->add_histograms() = native_histogram(kT0 + 2);
  RemoteWriteDecoder d({});
  ParseCounters c;
  ASSERT_EQ(d.decode(encode(req), c), DecodeStatus::kNone);
  ConvertResult r;
  const auto got = convert_all(d, c, &r);  // a 1 MiB batch
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].ts, (kT0 + 1) * 1'000'000);
  EXPECT_EQ(got[0].positive.size(), 20000u);
  EXPECT_EQ(got[1].ts, (kT0 + 2) * 1'000'000);
  EXPECT_EQ(c[ParseError::kNativeHistogramDropped], 1u);
  EXPECT_EQ(r.series_rejected, 0u);

  std::vector<std::byte> small(64 << 10);
  sample::BatchWriter w(small, 7, 0);
  SampleOutput out(&w);
  ParseCounters c2;
  (void)d.convert(out, c2);
  EXPECT_EQ(c2[ParseError::kNativeHistogramDropped], 2u);  // the far one, the wide one
  EXPECT_EQ(out.too_large(), 1u);
  EXPECT_EQ(w.sample_count(), 1u);
}

TEST(RemoteWriteDecoder, DecodesARequestARealPrometheusSent) {
  // The fuzz seed: one key byte, then the body Prometheus 2.42 POSTed when scraping itself.
  std::ifstream in(std::string(RINGPIPE_REMOTE_WRITE_CORPUS) + "/prometheus_self_scrape", std::ios::binary);
  const std::string seed((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ASSERT_GT(seed.size(), 1u);
  RemoteWriteDecoder d({});
  ParseCounters c;
  ASSERT_EQ(d.decode(std::string_view(seed).substr(1), c), DecodeStatus::kNone);
  ConvertResult r;
  const auto got = convert_all(d, c, &r);
  EXPECT_GT(r.series, 10u);
  EXPECT_EQ(r.series_rejected, 0u);
  EXPECT_EQ(got.size() + c[ParseError::kNonFiniteValue], d.sample_count());
  for (const auto& g : got) {
    EXPECT_EQ(g.kind, sample::Kind::kGauge);
    EXPECT_GT(g.ts, 1'600'000'000'000'000'000);
    EXPECT_TRUE(std::any_of(g.tags.begin(), g.tags.end(), [](const auto& kv) { return kv.first == "job"; })) << g.name;
  }
}

TEST(RemoteWriteDecoder, DecodesTheNativeHistogramFuzzSeed) {
  // The fuzz seed with native histograms: a key byte, then a hand-encoded body
  // (packed deltas and counts, as Prometheus' gogo-protobuf writes them).
  std::ifstream in(std::string(RINGPIPE_REMOTE_WRITE_CORPUS) + "/native_histograms", std::ios::binary);
  const std::string seed((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ASSERT_GT(seed.size(), 1u);
  RemoteWriteDecoder d({});
  ParseCounters c;
  ASSERT_EQ(d.decode(std::string_view(seed).substr(1), c), DecodeStatus::kNone);
  EXPECT_EQ(d.sample_count(), 4u);
  const auto got = convert_all(d, c);
  EXPECT_EQ(c.total_errors(), 0u);
  ASSERT_EQ(got.size(), 4u);
  EXPECT_EQ(got[0].kind, sample::Kind::kNativeHistogram);
  EXPECT_EQ(got[0].ts, kT0 * 1'000'000);
  EXPECT_EQ(got[0].count, 12);
  EXPECT_EQ(got[0].positive.size(), 5u);
  EXPECT_EQ(got[1].ts, (kT0 + 15'000) * 1'000'000);
  EXPECT_EQ(got[2].kind, sample::Kind::kGauge);  // load_seconds' float sample, then its histogram
  EXPECT_EQ(got[3].kind, sample::Kind::kNativeHistogram);
  EXPECT_EQ(got[3].family_type, sample::FamilyType::kGaugeHistogram);
  EXPECT_EQ(got[3].count, 4.75);
  EXPECT_EQ(got[3].negative, (std::vector<std::pair<std::int32_t, double>>{{1, 0.5}, {2, 1.5}}));
}

TEST(RemoteWriteDecoder, RefusesBodiesOverTheLimitBeforeUncompressing) {
  RemoteWriteDecoder d(RemoteWriteLimits{16, 1024, 64});
  ParseCounters c;
  EXPECT_EQ(d.decode(std::string(17, 'x'), c), DecodeStatus::kTooLarge);
  EXPECT_EQ(d.decode("", c), DecodeStatus::kBadSnappy);
  EXPECT_EQ(c[ParseError::kBodyTooLarge], 1u);
  EXPECT_EQ(c[ParseError::kBadSnappy], 1u);
}

TEST(RemoteWriteDecoder, RefusesRequestsOverTheSeriesLabelsOrSamplesLimitsWithoutConverting) {
  RemoteWriteLimits lim;
  lim.max_series = 2;
  lim.max_labels_total = 3;
  lim.max_samples = 4;
  RemoteWriteDecoder d(lim);
  ParseCounters c;
  prometheus::WriteRequest series;  // 3 series
  for (int i = 0; i < 3; ++i) add_series(series, {{"__name__", "m"}}, {{1, kT0}});
  EXPECT_EQ(d.decode(encode(series), c), DecodeStatus::kTooManyObjects);
  EXPECT_EQ(d.sample_count(), 0u);
  EXPECT_TRUE(convert_all(d, c).empty());
  prometheus::WriteRequest labels;  // 2 series, 4 labels
  add_series(labels, {{"__name__", "m"}, {"a", "1"}}, {{1, kT0}});
  add_series(labels, {{"__name__", "m"}, {"b", "1"}}, {{1, kT0}});
  EXPECT_EQ(d.decode(encode(labels), c), DecodeStatus::kTooManyObjects);
  prometheus::WriteRequest samples;  // 5 samples
  add_series(samples, {{"__name__", "m"}}, {{1, kT0}, {2, kT0 + 1}, {3, kT0 + 2}, {4, kT0 + 3}, {5, kT0 + 4}});
  EXPECT_EQ(d.decode(encode(samples), c), DecodeStatus::kTooManyObjects);
  EXPECT_EQ(c[ParseError::kBodyTooLarge], 3u);
  prometheus::WriteRequest fits;  // at every limit
  add_series(fits, {{"__name__", "m"}, {"a", "1"}}, {{1, kT0}, {2, kT0 + 1}});
  add_series(fits, {{"__name__", "n"}}, {{3, kT0}, {4, kT0 + 1}});
  ASSERT_EQ(d.decode(encode(fits), c), DecodeStatus::kNone);
  EXPECT_EQ(convert_all(d, c).size(), 4u);
}

TEST(RemoteWriteDecoder, RefusesTruncatedOrMalformedWireDataAsBadProtobuf) {
  prometheus::WriteRequest req;
  add_series(req, {{"__name__", "m"}, {"a", "1"}}, {{1, kT0}});
  std::string raw;
  req.SerializeToString(&raw);
  RemoteWriteDecoder d({});
  ParseCounters c;
  EXPECT_EQ(d.decode(testing::snappy_of(raw.substr(0, raw.size() - 1)), c), DecodeStatus::kBadProtobuf);
  EXPECT_EQ(d.decode(testing::snappy_of(std::string("\x0a\xff\xff\xff\xff\x0f", 6)), c), DecodeStatus::kBadProtobuf);
  EXPECT_EQ(d.decode(testing::snappy_of(std::string("\x0b", 1)), c), DecodeStatus::kBadProtobuf);  // a group
  EXPECT_EQ(c[ParseError::kBadProtobuf], 3u);
  EXPECT_EQ(d.decode(testing::snappy_of(raw), c), DecodeStatus::kNone);
  EXPECT_EQ(convert_all(d, c).size(), 1u);
}

}  // namespace
}  // namespace ringpipe::ingest
