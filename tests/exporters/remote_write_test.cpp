// remote_write encoding (decoded back with the generated prompb classes),
// status classification and backoff.

#include <gtest/gtest.h>
#include <snappy.h>

#include <cmath>
#include <optional>
#include <set>

#include "record_builder.hpp"
#include "remote.pb.h"
#include "remote_write_encoder.hpp"
#include "ringpipe/exporters/remote_write.hpp"

namespace ringpipe::exporters {
namespace {

using namespace std::chrono_literals;
using metric::MetricType;
using testing::origin;
using testing::RecordBuilder;

std::map<std::string, double> decode(const std::string& body, std::int64_t expect_ts) {
  std::string raw;
  EXPECT_TRUE(snappy::Uncompress(body.data(), body.size(), &raw));
  prometheus::WriteRequest req;
  EXPECT_TRUE(req.ParseFromString(raw));
  std::map<std::string, double> out;
  for (const auto& ts : req.timeseries()) {
    std::string key;
    for (int i = 0; i < ts.labels_size(); ++i) {
      if (i > 0) {
        EXPECT_LT(ts.labels(i - 1).name(), ts.labels(i).name()) << "labels sorted by name";
      }
      key += ts.labels(i).name() + "=" + ts.labels(i).value() + ";";
    }
    EXPECT_EQ(ts.samples_size(), 1);
    EXPECT_EQ(ts.samples(0).timestamp(), expect_ts);
    out[key] = ts.samples(0).value();
  }
  return out;
}

TEST(RemoteWriteEncoding, EncodesEveryDerivedSeriesSortedAndCompressed) {
  RecordBuilder b(origin(1, 0, 1, 1, 1'700'000'000'123'456'789));
  b.series(MetricType::kCounter, "hits", {{"zone", "a"}, {"Host", "h1"}}, {7})
      .series(MetricType::kSummary, "lat", {{"p", "/"}}, {3, 0.6, 0.5, 0.2})
      .series(MetricType::kHistogram, "sz", {{"empty", ""}}, {4, 10, 1, 1, INFINITY, 4});
  const auto rec = b.take();
  metric::MetricBatchReader r(rec);
  RequestBuilder rb;
  std::size_t n = 0;
  while (auto e = r.next()) n += rb.add(*e, r.header().flush_ns / 1'000'000);
  EXPECT_EQ(n, 1u + 3u + 4u);
  EXPECT_EQ(rb.samples(), n);
  auto body = rb.take_compressed();
  ASSERT_TRUE(body);
  EXPECT_TRUE(rb.empty());
  const auto got = decode(*body, 1'700'000'000'123);
  const std::map<std::string, double> want{
      {"Host=h1;__name__=hits;zone=a;", 7},
      {"__name__=lat;p=/;quantile=0.5;", 0.2},
      {"__name__=lat_sum;p=/;", 0.6},
      {"__name__=lat_count;p=/;", 3},
      {"__name__=sz_bucket;le=1;", 1},
      {"__name__=sz_bucket;le=+Inf;", 4},
      {"__name__=sz_sum;", 10},
      {"__name__=sz_count;", 4},
  };
  EXPECT_EQ(got, want);
}

prometheus::WriteRequest decode_request(const std::string& body) {
  std::string raw;
  EXPECT_TRUE(snappy::Uncompress(body.data(), body.size(), &raw));
  prometheus::WriteRequest req;
  EXPECT_TRUE(req.ParseFromString(raw));
  return req;
}

std::string series_name(const prometheus::TimeSeries& ts) {
  std::string key;
  for (const auto& l : ts.labels()) key += l.name() + "=" + l.value() + ";";
  return key;
}

TEST(RemoteWriteEncoding, SendsPrometheusSamplesUnderTheirOwnNameWhateverTheirFamilysType) {
  RecordBuilder b(origin(1, 0, 1, 1, 5'000'000'000));
  b.prom_sample(MetricType::kHistogram, "rpc_seconds_bucket", 11, {{"le", "0.5"}}, 3)
      .prom_sample(MetricType::kHistogram, "rpc_seconds_count", 11, {}, 4)
      .prom_sample(MetricType::kUntyped, "legacy", 6, {}, 1)
      .prom_sample(MetricType::kInfo, "build_info", 5, {{"version", "1.2"}}, 1)
      .prom_sample(MetricType::kCounter, "job:done:total", 8, {}, 9);
  const auto rec = b.take();
  metric::MetricBatchReader r(rec);
  RequestBuilder rb;
  std::size_t n = 0;
  while (auto e = r.next()) n += rb.add(*e, 5'000);
  EXPECT_EQ(n, 5u);
  auto body = rb.take_compressed();
  ASSERT_TRUE(body);
  const std::map<std::string, double> want{
      {"__name__=rpc_seconds_bucket;le=0.5;", 3}, {"__name__=rpc_seconds_count;", 4}, {"__name__=legacy;", 1},
      {"__name__=build_info;version=1.2;", 1},    {"__name__=job:done:total;", 9},
  };
  EXPECT_EQ(decode(*body, 5'000), want);
}

TEST(RemoteWriteEncoding, KeepsEveryTimestampedSampleOfASeriesInItsOneTimeSeriesOrderedByTime) {
  RecordBuilder b(origin(1, 0, 1, 1, 99'000'000'000));
  b.stamped(MetricType::kGauge, "temp", {{"room", "a"}}, 3, 3'000'000'999)
      .stamped(MetricType::kGauge, "temp", {{"room", "b"}}, 9, 2'000'000'000)
      .stamped(MetricType::kGauge, "temp", {{"room", "a"}}, 1, 1'000'000'000)
      .stamped(MetricType::kCounter, "up:sum", {}, 5, 4'000'000'000, 6)
      .stamped(MetricType::kGauge, "temp", {{"room", "a"}}, 2, 2'000'000'000)
      .stamped(MetricType::kGauge, "temp", {{"room", "a"}}, 4, 4'000'000'000);
  const auto rec = b.take();
  metric::MetricBatchReader r(rec);
  ASSERT_EQ(r.error(), metric::MetricDecodeError::kNone);
  RequestBuilder rb;
  std::size_t n = 0;
  while (auto e = r.next()) n += rb.add(*e, r.header().flush_ns / 1'000'000);
  EXPECT_EQ(n, 6u);
  auto body = rb.take_compressed();
  ASSERT_TRUE(body);
  const prometheus::WriteRequest req = decode_request(*body);
  ASSERT_EQ(req.timeseries_size(), 3) << "one TimeSeries per series";
  std::map<std::string, std::vector<std::pair<std::int64_t, double>>> got;
  for (const auto& ts : req.timeseries()) {
    for (const auto& s : ts.samples()) got[series_name(ts)].emplace_back(s.timestamp(), s.value());
  }
  using V = std::vector<std::pair<std::int64_t, double>>;
  EXPECT_EQ(got["__name__=temp;room=a;"], (V{{1'000, 1}, {2'000, 2}, {3'000, 3}, {4'000, 4}}));
  EXPECT_EQ(got["__name__=temp;room=b;"], (V{{2'000, 9}}));
  EXPECT_EQ(got["__name__=up:sum;"], (V{{4'000, 5}}));

  // The next request starts its own series again.
  RecordBuilder b2(origin(1, 0, 1, 2, 99'000'000'000));
  b2.stamped(MetricType::kGauge, "temp", {{"room", "a"}}, 7, 7'000'000'000);
  const auto rec2 = b2.take();
  metric::MetricBatchReader r2(rec2);
  while (auto e = r2.next()) rb.add(*e, 0);
  auto body2 = rb.take_compressed();
  ASSERT_TRUE(body2);
  const prometheus::WriteRequest req2 = decode_request(*body2);
  ASSERT_EQ(req2.timeseries_size(), 1);
  ASSERT_EQ(req2.timeseries(0).samples_size(), 1);
  EXPECT_EQ(req2.timeseries(0).samples(0).timestamp(), 7'000);
}

// The one native histogram sample of a request made of a histogram entry
// with `values` (a native part first); nullopt when there is none.
std::optional<prometheus::Histogram> native_sample_of(const std::vector<double>& values) {
  RecordBuilder b(origin(1, 0, 1, 1, 1'700'000'000'123'456'789));
  b.series(MetricType::kHistogram, "lat", {{"code", "200"}}, values, "", metric::kEntryNative);
  const auto rec = b.take();
  metric::MetricBatchReader r(rec);
  RequestBuilder rb;
  while (auto e = r.next()) rb.add(*e, 1'700'000'000'123);
  for (const auto& ts : rb.message().timeseries())
    if (ts.histograms_size() > 0) return ts.histograms(0);
  return std::nullopt;
}

// Counts past 2^63 went through std::llround (undefined there: 1.5e19 came
// out as 2^63); counts past 2^53 go as a float histogram, exactly.
TEST(RemoteWriteEncoding, SendsNativeHistogramCountsPast2To63Exactly) {
  const std::vector<double> values = {3, 1e-9, 1.5e19, 4, 1,      -2, 1,  -1, 2,        1,     3,
                                      5, 1,    0,      4, 1.5e19, 30, 10, 8,  INFINITY, 1.5e19};
  const std::optional<prometheus::Histogram> h = native_sample_of(values);
  ASSERT_TRUE(h);
  ASSERT_EQ(h->count_case(), prometheus::Histogram::kCountFloat);
  EXPECT_EQ(h->count_float(), 1.5e19);
  ASSERT_EQ(h->zero_count_case(), prometheus::Histogram::kZeroCountFloat);
  EXPECT_EQ(h->zero_count_float(), 1.5e19);
}

// A sample rate weighs each value by 1/rate: counts such as 10/3 went out
// rounded to integers (the histogram's count 10/3 + 1/3 + 1 as 5 with buckets
// 3 and 0, adding up to neither). They go as a float histogram, every count
// as the processor keeps it; whole counts stay an integer histogram.
TEST(RemoteWriteEncoding, SendsANativeHistogramWithWeightedCountsAsAFloatHistogram) {
  // Schema 3, zero count 1/3; positive keys 1 (10/3), 3 (1); no negative buckets.
  const double third = 1.0 / 3;
  const double count = 10.0 / 3 + third + 1;
  const std::vector<double> values = {3, 1e-9, third, 2, 0, 1, 10.0 / 3, 3, 1, count, 7.5, 8, count, INFINITY, count};
  const std::optional<prometheus::Histogram> h = native_sample_of(values);
  ASSERT_TRUE(h);
  ASSERT_EQ(h->count_case(), prometheus::Histogram::kCountFloat);
  EXPECT_EQ(h->count_float(), count);
  ASSERT_EQ(h->zero_count_case(), prometheus::Histogram::kZeroCountFloat);
  EXPECT_EQ(h->zero_count_float(), third);
  EXPECT_EQ(h->sum(), 7.5);
  ASSERT_EQ(h->positive_spans_size(), 1);
  EXPECT_EQ(h->positive_spans(0).offset(), 1);
  EXPECT_EQ(h->positive_spans(0).length(), 3u);  // keys 1, 2 (empty), 3
  EXPECT_EQ(h->positive_deltas_size(), 0);
  const std::vector<double> counts(h->positive_counts().begin(), h->positive_counts().end());
  EXPECT_EQ(counts, (std::vector<double>{10.0 / 3, 0, 1}));
}

TEST(RemoteWriteEncoding, SendsANativeHistogramAsAHistogramSampleBesideTheClassicSeries) {
  // Schema 3, zero count 1, positive keys -2 (1), -1 (2), 1 (3), 5 (1); negative key 0 (4).
  const std::vector<double> values = {3, 1e-9, 1, 4, 1, -2, 1, -1, 2, 1, 3, 5, 1, 0, 4, 12, 30, 10, 8, INFINITY, 12};
  RecordBuilder b(origin(1, 0, 1, 1, 1'700'000'000'123'456'789));
  b.series(MetricType::kHistogram, "lat", {{"code", "200"}}, values, "", metric::kEntryNative);
  const auto rec = b.take();
  metric::MetricBatchReader r(rec);
  RequestBuilder rb;
  std::size_t n = 0;
  while (auto e = r.next()) n += rb.add(*e, 1'700'000'000'123);
  EXPECT_EQ(n, 2u + 2u + 1u);  // two classic buckets, _sum, _count, one native sample
  const prometheus::WriteRequest& req = rb.message();
  const prometheus::TimeSeries* native = nullptr;
  int classic = 0;
  for (const auto& ts : req.timeseries()) {
    if (ts.histograms_size() > 0) {
      native = &ts;
    } else {
      ++classic;
    }
  }
  EXPECT_EQ(classic, 4);
  ASSERT_NE(native, nullptr);
  ASSERT_EQ(native->labels_size(), 2);
  EXPECT_EQ(native->labels(0).name(), "__name__");
  EXPECT_EQ(native->labels(0).value(), "lat");
  EXPECT_EQ(native->labels(1).name(), "code");
  EXPECT_EQ(native->samples_size(), 0);
  ASSERT_EQ(native->histograms_size(), 1);
  const prometheus::Histogram& h = native->histograms(0);
  ASSERT_EQ(h.count_case(), prometheus::Histogram::kCountInt);  // whole counts: an integer histogram
  EXPECT_EQ(h.count_int(), 12u);
  EXPECT_EQ(h.sum(), 30);
  EXPECT_EQ(h.schema(), 3);
  EXPECT_EQ(h.zero_threshold(), 1e-9);
  EXPECT_EQ(h.zero_count_int(), 1u);
  EXPECT_EQ(h.timestamp(), 1'700'000'000'123);
  ASSERT_EQ(h.positive_spans_size(), 2);
  EXPECT_EQ(h.positive_spans(0).offset(), -2);
  EXPECT_EQ(h.positive_spans(0).length(), 4u);
  EXPECT_EQ(h.positive_spans(1).offset(), 3);
  EXPECT_EQ(h.positive_spans(1).length(), 1u);
  const std::vector<std::int64_t> deltas(h.positive_deltas().begin(), h.positive_deltas().end());
  EXPECT_EQ(deltas, (std::vector<std::int64_t>{1, 1, -2, 3, -2}));
  ASSERT_EQ(h.negative_spans_size(), 1);
  EXPECT_EQ(h.negative_spans(0).offset(), 0);
  ASSERT_EQ(h.negative_deltas_size(), 1);
  EXPECT_EQ(h.negative_deltas(0), 4);
}

// A relayed native histogram sample (kEntryPromSample | kEntryNative at its
// own time) goes out as one Histogram sample at that time; every sample of a
// series joins its one TimeSeries, ordered by time; a gaugehistogram's carry
// reset hint GAUGE; float counts go out as a float histogram, unrounded.
TEST(RemoteWriteEncoding, SendsRelayedNativeHistogramSamplesAtTheirOwnTimes) {
  RecordBuilder b(origin(1, 0, 1, 1, 99'000'000'000));
  // [schema, zero_threshold, zero_count, n_pos, n_neg, pairs..., count, sum]
  b.stamped_native(MetricType::kHistogram, "rpc_seconds", {{"code", "200"}},
                   {1, 0.001, 2, 2, 1, 0, 3, 2, 4, -1, 1, 10, 4.5}, 3'000'000'000, "RPC latency.")
      .stamped_native(MetricType::kHistogram, "rpc_seconds", {{"code", "200"}}, {1, 0.001, 0, 1, 0, 0, 5, 5, 1.5},
                      1'000'000'000, "RPC latency.")
      .stamped_native(MetricType::kGaugeHistogram, "queue", {}, {0, 0, 0, 1, 0, 2, 0.25, 0.25, 1}, 2'000'000'000);
  ASSERT_TRUE(b.ok());
  const auto rec = b.take();
  metric::MetricBatchReader r(rec);
  ASSERT_EQ(r.error(), metric::MetricDecodeError::kNone);
  RequestBuilder rb;
  std::size_t n = 0;
  while (auto e = r.next()) n += rb.add(*e, 99'000);
  EXPECT_EQ(r.error(), metric::MetricDecodeError::kNone);
  EXPECT_EQ(n, 3u);
  auto body = rb.take_compressed();
  ASSERT_TRUE(body);
  const prometheus::WriteRequest req = decode_request(*body);
  ASSERT_EQ(req.timeseries_size(), 2);
  const prometheus::TimeSeries& rpc = req.timeseries(0);
  EXPECT_EQ(series_name(rpc), "__name__=rpc_seconds;code=200;");
  EXPECT_EQ(rpc.samples_size(), 0);
  ASSERT_EQ(rpc.histograms_size(), 2);
  const prometheus::Histogram& h0 = rpc.histograms(0);  // ordered by time
  EXPECT_EQ(h0.timestamp(), 1'000);
  EXPECT_EQ(h0.count_int(), 5u);
  EXPECT_EQ(h0.sum(), 1.5);
  EXPECT_EQ(h0.zero_count_int(), 0u);
  const prometheus::Histogram& h1 = rpc.histograms(1);
  EXPECT_EQ(h1.timestamp(), 3'000);
  ASSERT_EQ(h1.count_case(), prometheus::Histogram::kCountInt);
  EXPECT_EQ(h1.count_int(), 10u);
  EXPECT_EQ(h1.sum(), 4.5);
  EXPECT_EQ(h1.schema(), 1);
  EXPECT_EQ(h1.zero_threshold(), 0.001);
  EXPECT_EQ(h1.zero_count_int(), 2u);
  EXPECT_NE(h1.reset_hint(), prometheus::Histogram::GAUGE);
  ASSERT_EQ(h1.positive_spans_size(), 1);
  EXPECT_EQ(h1.positive_spans(0).offset(), 0);
  EXPECT_EQ(h1.positive_spans(0).length(), 3u);  // keys 0 and 2: a gap of one stays inside the span
  const std::vector<std::int64_t> deltas(h1.positive_deltas().begin(), h1.positive_deltas().end());
  EXPECT_EQ(deltas, (std::vector<std::int64_t>{3, -3, 4}));
  ASSERT_EQ(h1.negative_spans_size(), 1);
  EXPECT_EQ(h1.negative_spans(0).offset(), -1);
  EXPECT_EQ(h1.negative_deltas(0), 1);
  const prometheus::TimeSeries& queue = req.timeseries(1);
  EXPECT_EQ(series_name(queue), "__name__=queue;");
  ASSERT_EQ(queue.histograms_size(), 1);
  const prometheus::Histogram& g = queue.histograms(0);
  EXPECT_EQ(g.reset_hint(), prometheus::Histogram::GAUGE);
  EXPECT_EQ(g.timestamp(), 2'000);
  ASSERT_EQ(g.count_case(), prometheus::Histogram::kCountFloat);
  EXPECT_EQ(g.count_float(), 0.25);
  ASSERT_EQ(g.positive_counts_size(), 1);
  EXPECT_EQ(g.positive_counts(0), 0.25);
  EXPECT_EQ(g.positive_spans(0).offset(), 2);
  std::set<std::string> types;
  for (const auto& m : req.metadata()) {
    types.insert(m.metric_family_name() + " " + prometheus::MetricMetadata::MetricType_Name(m.type()));
  }
  EXPECT_EQ(types, (std::set<std::string>{"rpc_seconds HISTOGRAM", "queue GAUGEHISTOGRAM"}));
}

// "family type help unit" of each MetricMetadata of a request.
std::set<std::string> metadata_of(const prometheus::WriteRequest& req) {
  std::set<std::string> out;
  for (const auto& m : req.metadata()) {
    out.insert(m.metric_family_name() + " " + prometheus::MetricMetadata::MetricType_Name(m.type()) + " " + m.help() +
               " " + m.unit());
  }
  EXPECT_EQ(out.size(), static_cast<std::size_t>(req.metadata_size())) << "each family once per request";
  return out;
}

// Every family's TYPE, HELP and UNIT ride in the request with its samples,
// as Prometheus sends them (WriteRequest.metadata): aggregated, scraped and
// relayed families alike; an untyped family without HELP or UNIT has none.
// Then again at most once per metadata interval.
TEST(RemoteWriteEncoding, SendsEachFamilysTypeHelpAndUnitAsMetadata) {
  RecordBuilder b(origin(1, 0, 1, 1, 5'000'000'000));
  b.series(MetricType::kCounter, "hits", {{"zone", "a"}}, {7}, "Hits.")
      .series(MetricType::kCounter, "hits", {{"zone", "b"}}, {8}, "Hits.")
      .series(MetricType::kSummary, "lat", {}, {3, 0.6, 0.5, 0.2})
      .series(MetricType::kHistogram, "sz", {}, {4, 10, 1, 1, INFINITY, 4}, "Sizes.")
      .prom_sample(MetricType::kHistogram, "rpc_seconds_bucket", 11, {{"le", "0.5"}}, 3, "RPC.", "seconds")
      .prom_sample(MetricType::kHistogram, "rpc_seconds_count", 11, {}, 4, "RPC.", "seconds")
      .prom_sample(MetricType::kUntyped, "legacy", 6, {}, 1)
      .prom_sample(MetricType::kInfo, "build_info", 5, {{"version", "1.2"}}, 1)
      .stamped(MetricType::kCounter, "jobs_total", {}, 5, 4'000'000'000, 10, "Jobs done.")
      .stamped(MetricType::kGauge, "temp", {{"room", "a"}}, 3, 3'000'000'000, 0, "Room temperature.");
  ASSERT_TRUE(b.ok());
  const auto rec = b.take();
  const std::set<std::string> want{
      "hits COUNTER Hits. ",
      "lat SUMMARY  ",
      "sz HISTOGRAM Sizes. ",
      "rpc_seconds HISTOGRAM RPC. seconds",
      "build INFO  ",
      "jobs_total COUNTER Jobs done. ",
      "temp GAUGE Room temperature. ",
  };
  const auto request = [&](RequestBuilder& rb) {
    metric::MetricBatchReader r(rec);
    while (auto e = r.next()) rb.add(*e, 5'000);
    auto body = rb.take_compressed();
    EXPECT_TRUE(body);
    return decode_request(body ? *body : std::string());
  };
  RequestBuilder every(0ms);
  EXPECT_EQ(metadata_of(request(every)), want);
  EXPECT_EQ(metadata_of(request(every)), want) << "interval 0: in every request";
  RequestBuilder minute;
  EXPECT_EQ(metadata_of(request(minute)), want);
  EXPECT_TRUE(metadata_of(request(minute)).empty()) << "sent a moment ago";
}

TEST(RemoteWritePolicy, ClassifiesStatusesLikePrometheus) {
  EXPECT_EQ(classify_http_status(200), SendVerdict::kDone);
  EXPECT_EQ(classify_http_status(204), SendVerdict::kDone);
  EXPECT_EQ(classify_http_status(500), SendVerdict::kRetry);
  EXPECT_EQ(classify_http_status(503), SendVerdict::kRetry);
  EXPECT_EQ(classify_http_status(429), SendVerdict::kRetry);
  EXPECT_EQ(classify_http_status(0), SendVerdict::kRetry) << "no answer (timeout, refused) is retried";
  EXPECT_EQ(classify_http_status(400), SendVerdict::kDrop);
  EXPECT_EQ(classify_http_status(401), SendVerdict::kDrop);
  EXPECT_EQ(classify_http_status(404), SendVerdict::kDrop);
  EXPECT_EQ(classify_http_status(302), SendVerdict::kDrop);
}

TEST(RemoteWritePolicy, BackoffDoublesIsCappedAndJittered) {
  EXPECT_EQ(retry_backoff(0, 30ms, 5000ms, 0.0), 15ms);
  EXPECT_EQ(retry_backoff(0, 30ms, 5000ms, 0.999), 29ms);
  EXPECT_EQ(retry_backoff(3, 30ms, 5000ms, 0.0), 120ms);
  EXPECT_EQ(retry_backoff(40, 30ms, 5000ms, 0.0), 2500ms);
  EXPECT_LE(retry_backoff(40, 30ms, 5000ms, 1.0), 5000ms);
  for (std::uint32_t a = 0; a < 64; ++a) {
    const auto d = retry_backoff(a, 30ms, 5000ms, 0.5);
    EXPECT_GE(d, 15ms);
    EXPECT_LE(d, 5000ms);
  }
}

}  // namespace
}  // namespace ringpipe::exporters
