// The protobuf exposition (application/vnd.google.protobuf;
// proto=io.prometheus.client.MetricFamily; encoding=delimited): content
// negotiation, and the families SeriesState collects, native histograms
// included, read back with the generated io.prometheus.client messages.

#include "protobuf_writer.hpp"

#include <gtest/gtest.h>

#include <google/protobuf/io/coded_stream.h>

#include <cmath>
#include <limits>
#include <map>

#include "metrics.pb.h"
#include "record_builder.hpp"
#include "series_state.hpp"

namespace ringpipe::exporters {
namespace {

using metric::MetricType;
using testing::origin;
using testing::RecordBuilder;
namespace pb = io::prometheus::client;

// Prometheus 2.42's Accept header with --enable-feature=native-histograms, and without.
constexpr std::string_view kAcceptNative =
    "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0.7,"
    "text/plain;version=0.0.4;q=0.3,*/*;q=0.2";
constexpr std::string_view kAcceptDefault =
    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,"
    "text/plain;version=0.0.4;q=0.5,*/*;q=0.1";

TEST(ProtobufWriter, ServesProtobufOnlyToAScraperThatRanksItAboveText) {
  EXPECT_TRUE(protobuf::prefers_protobuf(kAcceptNative));
  EXPECT_FALSE(protobuf::prefers_protobuf(kAcceptDefault));
  EXPECT_FALSE(protobuf::prefers_protobuf(""));
  EXPECT_FALSE(protobuf::prefers_protobuf("*/*"));
  EXPECT_TRUE(protobuf::prefers_protobuf(
      "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited"));
  // Not the delimited MetricFamily stream: the text answers.
  EXPECT_FALSE(protobuf::prefers_protobuf("application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily"));
  EXPECT_FALSE(protobuf::prefers_protobuf("application/vnd.google.protobuf;proto=other.Message;encoding=delimited"));
  // Refused (q=0), ranked below text, or equal and listed after it.
  EXPECT_FALSE(protobuf::prefers_protobuf(
      "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0"));
  EXPECT_FALSE(protobuf::prefers_protobuf(
      "text/plain;q=0.9,application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;"
      "q=0.5"));
  EXPECT_FALSE(protobuf::prefers_protobuf(
      "text/plain,application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited"));
}

// Reads a delimited stream back into messages; fails the test on a bad frame.
std::vector<pb::MetricFamily> parse_delimited(const std::string& bytes) {
  std::vector<pb::MetricFamily> out;
  google::protobuf::io::CodedInputStream in(reinterpret_cast<const std::uint8_t*>(bytes.data()),
                                            static_cast<int>(bytes.size()));
  while (in.BytesUntilLimit() != 0 && !in.ExpectAtEnd()) {
    std::uint32_t size = 0;
    if (!in.ReadVarint32(&size)) break;
    const auto limit = in.PushLimit(static_cast<int>(size));
    pb::MetricFamily f;
    EXPECT_TRUE(f.ParseFromCodedStream(&in));
    EXPECT_TRUE(in.ConsumedEntireMessage());
    in.PopLimit(limit);
    out.push_back(std::move(f));
  }
  return out;
}

TEST(ProtobufWriter, WritesNativeHistogramsBesideClassicBucketsAsSpansAndDeltas) {
  const double inf = std::numeric_limits<double>::infinity();
  // Schema 3, zero bucket 1; positive keys -2 (1), -1 (2), 1 (3), 5 (1); negative key 0 (4).
  const std::vector<double> native_and_classic = {3, 1e-9, 1, 4, 1,  -2,   1,  -1, 2,   1, 3,
                                                  5, 1,    0, 4, 12, 30.5, 10, 8,  inf, 12};
  SeriesState s;
  s.apply(RecordBuilder(origin(1))
              .begin(1)
              .series(MetricType::kHistogram, "lat_seconds", {{"code", "200"}}, native_and_classic, "Latency.",
                      metric::kEntryNative)
              .series(MetricType::kHistogram, "plain_seconds", {}, {2, 3, 10, 2, inf, 2})
              .series(MetricType::kCounter, "hits_total", {{"a", "b"}}, {7})
              .end(1)
              .take());
  ASSERT_EQ(s.counters().decode_errors.load(), 0u);
  protobuf::NativeIndex natives;
  std::vector<prometheus::MetricFamily> families;
  s.collect(families, &natives);
  std::string bytes;
  protobuf::append_families(bytes, families, natives);
  std::map<std::string, pb::MetricFamily> by_name;
  for (pb::MetricFamily& f : parse_delimited(bytes)) by_name[f.name()] = f;
  ASSERT_EQ(by_name.size(), 3u);

  const pb::MetricFamily& lat = by_name["lat_seconds"];
  EXPECT_EQ(lat.help(), "Latency.");
  EXPECT_EQ(lat.type(), pb::HISTOGRAM);
  ASSERT_EQ(lat.metric_size(), 1);
  ASSERT_EQ(lat.metric(0).label_size(), 1);
  EXPECT_EQ(lat.metric(0).label(0).name(), "code");
  const pb::Histogram& h = lat.metric(0).histogram();
  EXPECT_EQ(h.sample_count(), 12u);
  EXPECT_EQ(h.sample_sum(), 30.5);
  ASSERT_EQ(h.bucket_size(), 1);  // +Inf is the sample count
  EXPECT_EQ(h.bucket(0).upper_bound(), 10);
  EXPECT_EQ(h.bucket(0).cumulative_count(), 8u);
  EXPECT_EQ(h.schema(), 3);
  EXPECT_EQ(h.zero_threshold(), 1e-9);
  EXPECT_EQ(h.zero_count(), 1u);
  EXPECT_EQ(h.sample_count_float(), 0);  // whole counts: an integer histogram
  // Keys -2, -1, (0 empty), 1 in one span; 5 after a gap of three.
  ASSERT_EQ(h.positive_span_size(), 2);
  EXPECT_EQ(h.positive_span(0).offset(), -2);
  EXPECT_EQ(h.positive_span(0).length(), 4u);
  EXPECT_EQ(h.positive_span(1).offset(), 3);
  EXPECT_EQ(h.positive_span(1).length(), 1u);
  ASSERT_EQ(h.positive_delta_size(), 5);
  const std::vector<std::int64_t> deltas(h.positive_delta().begin(), h.positive_delta().end());
  EXPECT_EQ(deltas, (std::vector<std::int64_t>{1, 1, -2, 3, -2}));
  ASSERT_EQ(h.negative_span_size(), 1);
  EXPECT_EQ(h.negative_span(0).offset(), 0);
  ASSERT_EQ(h.negative_delta_size(), 1);
  EXPECT_EQ(h.negative_delta(0), 4);

  // A classic histogram stays classic: no schema, no spans.
  const pb::Histogram& plain = by_name["plain_seconds"].metric(0).histogram();
  EXPECT_FALSE(plain.has_schema());
  EXPECT_EQ(plain.positive_span_size(), 0);
  EXPECT_EQ(plain.sample_count(), 2u);
  EXPECT_EQ(by_name["hits_total"].type(), pb::COUNTER);
  EXPECT_EQ(by_name["hits_total"].metric(0).counter().value(), 7);
}

// Counts weighted by a sample rate (10/3 for a value sent at @0.3) were
// rounded to integers; they go as a float histogram, as the series keeps them.
TEST(ProtobufWriter, WritesANativeHistogramWithWeightedCountsAsAFloatHistogram) {
  const double inf = std::numeric_limits<double>::infinity();
  const double third = 1.0 / 3;
  const double count = 10.0 / 3 + third + 1;
  SeriesState s;
  s.apply(RecordBuilder(origin(1))
              .series(MetricType::kHistogram, "lat", {},
                      {3, 1e-9, third, 2, 0, 1, 10.0 / 3, 3, 1, count, 7.5, 8, count, inf, count}, "",
                      metric::kEntryNative)
              .take());
  protobuf::NativeIndex natives;
  std::vector<prometheus::MetricFamily> families;
  s.collect(families, &natives);
  std::string bytes;
  protobuf::append_families(bytes, families, natives);
  const auto parsed = parse_delimited(bytes);
  ASSERT_EQ(parsed.size(), 1u);
  const pb::Histogram& h = parsed[0].metric(0).histogram();
  EXPECT_EQ(h.sample_count_float(), count);  // a scraper takes it over the (rounded) integer one
  EXPECT_EQ(h.zero_count_float(), third);
  EXPECT_EQ(h.zero_count(), 0u);
  ASSERT_EQ(h.positive_span_size(), 1);
  EXPECT_EQ(h.positive_span(0).offset(), 1);
  EXPECT_EQ(h.positive_span(0).length(), 3u);
  EXPECT_EQ(h.positive_delta_size(), 0);
  const std::vector<double> counts(h.positive_count().begin(), h.positive_count().end());
  EXPECT_EQ(counts, (std::vector<double>{10.0 / 3, 0, 1}));
}

TEST(ProtobufWriter, TheTextPageOfANativeHistogramIsItsClassicBuckets) {
  const double inf = std::numeric_limits<double>::infinity();
  SeriesState with_native;
  with_native.apply(RecordBuilder(origin(1))
                        .series(MetricType::kHistogram, "lat", {}, {0, 0, 0, 1, 0, 4, 2, 2, 3, 1, 2, inf, 2}, "",
                                metric::kEntryNative)
                        .take());
  SeriesState classic;
  classic.apply(RecordBuilder(origin(1)).series(MetricType::kHistogram, "lat", {}, {2, 3, 1, 2, inf, 2}).take());
  std::string a;
  std::string b;
  with_native.render(a);
  classic.render(b);
  EXPECT_EQ(a, b);
  EXPECT_NE(a.find("lat_bucket{le=\"1\"} 2"), std::string::npos) << a;
}

// A relay's native histogram samples (kEntryPromSample | kEntryNative at
// their own times): the latest of each series is served as a native
// histogram, beside classic buckets of the same family and labels when they
// came too; the text page shows its _count and _sum, no bucket invented; a
// gaugehistogram's is not served (its family is a gauge there).
TEST(ProtobufWriter, ServesTheLatestRelayedNativeHistogramSample) {
  SeriesState s;
  s.apply(RecordBuilder(origin(1))
              .stamped_native(MetricType::kHistogram, "rpc_seconds", {{"code", "200"}},
                              {1, 0.001, 2, 2, 0, 0, 3, 2, 4, 9, 4.5}, 1'000'000'000, "RPC latency.")
              .stamped_native(MetricType::kHistogram, "rpc_seconds", {{"code", "200"}},
                              {2, 0.001, 1, 1, 1, 3, 5, -1, 1, 7, 2.5}, 2'000'000'000, "RPC latency.")
              .stamped_native(MetricType::kHistogram, "rpc_seconds", {{"code", "500"}}, {0, 0, 0, 1, 0, 0, 1, 1, 0.5},
                              2'000'000'000, "RPC latency.")
              .stamped_native(MetricType::kGaugeHistogram, "queue", {}, {0, 0, 0, 1, 0, 2, 1, 1, 3}, 1'000'000'000)
              .take());
  ASSERT_EQ(s.counters().decode_errors.load(), 0u);
  EXPECT_EQ(s.counters().series.load(), 3u);
  protobuf::NativeIndex natives;
  std::vector<prometheus::MetricFamily> families;
  s.collect(families, &natives);
  std::string bytes;
  protobuf::append_families(bytes, families, natives);
  std::map<std::string, pb::MetricFamily> by_name;
  for (pb::MetricFamily& f : parse_delimited(bytes)) by_name[f.name()] = f;
  ASSERT_EQ(by_name.count("rpc_seconds"), 1u);
  const pb::MetricFamily& rpc = by_name["rpc_seconds"];
  EXPECT_EQ(rpc.type(), pb::HISTOGRAM);
  EXPECT_EQ(rpc.help(), "RPC latency.");
  ASSERT_EQ(rpc.metric_size(), 2);
  std::map<std::string, pb::Histogram> by_code;
  for (const auto& m : rpc.metric()) {
    ASSERT_EQ(m.label_size(), 1);
    by_code[m.label(0).value()] = m.histogram();
  }
  const pb::Histogram& h = by_code["200"];  // the later sample replaced the first
  EXPECT_EQ(h.sample_count(), 7u);
  EXPECT_EQ(h.sample_sum(), 2.5);
  EXPECT_EQ(h.schema(), 2);
  EXPECT_EQ(h.zero_threshold(), 0.001);
  EXPECT_EQ(h.zero_count(), 1u);
  EXPECT_EQ(h.bucket_size(), 0);
  ASSERT_EQ(h.positive_span_size(), 1);
  EXPECT_EQ(h.positive_span(0).offset(), 3);
  ASSERT_EQ(h.positive_delta_size(), 1);
  EXPECT_EQ(h.positive_delta(0), 5);
  ASSERT_EQ(h.negative_span_size(), 1);
  EXPECT_EQ(h.negative_span(0).offset(), -1);
  EXPECT_EQ(h.negative_delta(0), 1);
  EXPECT_EQ(by_code["500"].sample_count(), 1u);
  EXPECT_EQ(by_code["500"].positive_delta(0), 1);
  if (by_name.count("queue") != 0) {
    EXPECT_EQ(by_name["queue"].metric_size(), 0);
  }

  std::string text;
  s.render(text);
  EXPECT_NE(text.find("# TYPE rpc_seconds histogram\n"), std::string::npos) << text;
  EXPECT_NE(text.find("rpc_seconds_count{code=\"200\"} 7\nrpc_seconds_sum{code=\"200\"} 2.5\n"), std::string::npos)
      << text;
  EXPECT_EQ(text.find("_bucket"), std::string::npos) << text;
  EXPECT_EQ(text.find("queue"), std::string::npos) << text;
}

TEST(ProtobufWriter, AnEmptyNativeHistogramStillSaysItIsOne) {
  protobuf::NativeIndex natives;
  natives["h"].push_back(protobuf::NativeHistogram{0, 0, 1e-9, 0, 0, {}, {}});
  prometheus::MetricFamily f;
  f.name = "h";
  f.type = prometheus::MetricType::Histogram;
  f.metric.emplace_back();
  std::string bytes;
  protobuf::append_families(bytes, {f}, natives);
  const auto parsed = parse_delimited(bytes);
  ASSERT_EQ(parsed.size(), 1u);
  const pb::Histogram& h = parsed[0].metric(0).histogram();
  // As client_golang: one empty span, so the scraper reads a native histogram.
  ASSERT_EQ(h.positive_span_size(), 1);
  EXPECT_EQ(h.positive_span(0).length(), 0u);
  EXPECT_TRUE(h.has_schema());
}

}  // namespace
}  // namespace ringpipe::exporters
