// remote_write encoding (decoded back with the generated prompb classes),
// status classification and backoff.

#include <gtest/gtest.h>
#include <snappy.h>

#include <cmath>

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
