// remote_write encoding (decoded back with the generated prompb classes),
// status classification and backoff.

#include <gtest/gtest.h>
#include <snappy.h>

#include <cmath>

#include "http_client.hpp"
#include "record_builder.hpp"
#include "remote.pb.h"
#include "remote_write_encoder.hpp"
#include "ringpipe/exporters/remote_write.hpp"

namespace ringpipe::exporters {
namespace {

using namespace std::chrono_literals;
using testing::origin;
using testing::RecordBuilder;
using processors::MetricType;

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
  processors::MetricBatchReader r(rec);
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

TEST(HttpUrl, ParsesHttpAndHttpsHostPortAndTarget) {
  auto u = parse_http_url("http://127.0.0.1:9090/api/v1/write");
  ASSERT_TRUE(u);
  EXPECT_EQ(u->host, "127.0.0.1");
  EXPECT_EQ(u->port, "9090");
  EXPECT_EQ(u->target, "/api/v1/write");
  auto d = parse_http_url("http://example");
  ASSERT_TRUE(d);
  EXPECT_EQ(d->port, "80");
  EXPECT_EQ(d->target, "/");
  EXPECT_FALSE(d->https);
  auto s = parse_http_url("https://metrics.example.com/api/v1/write");
  ASSERT_TRUE(s);
  EXPECT_TRUE(s->https);
  EXPECT_EQ(s->host, "metrics.example.com");
  EXPECT_EQ(s->port, "443");
  EXPECT_EQ(s->target, "/api/v1/write");
  auto v6 = parse_http_url("https://[::1]:8443/w");
  ASSERT_TRUE(v6);
  EXPECT_EQ(v6->host, "::1");
  EXPECT_EQ(v6->port, "8443");
  EXPECT_FALSE(parse_http_url("ftp://x/"));
  EXPECT_FALSE(parse_http_url("http://x:port/"));
}

TEST(TlsClientContext, ReportsUnreadableFilesAndAcceptsDefaults) {
  EXPECT_TRUE(make_tls_client_context({}));
  TlsClientOptions insecure;
  insecure.insecure_skip_verify = true;
  EXPECT_TRUE(make_tls_client_context(insecure));
  TlsClientOptions missing;
  missing.ca_file = "/nonexistent/ca.pem";
  auto r = make_tls_client_context(missing);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message().find("/nonexistent/ca.pem"), std::string::npos) << r.error().message();
  TlsClientOptions key_only;
  key_only.key_file = "/nonexistent/key.pem";
  EXPECT_FALSE(make_tls_client_context(key_only));
}

TEST(HttpClient, HttpsWithoutTlsContextFailsCleanly) {
  HttpClient c(HttpUrl{"127.0.0.1", "1", "/", true});
  auto r = c.request("GET", "/", {}, "", std::chrono::milliseconds(200));
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message().find("TLS context"), std::string::npos) << r.error().message();
}

}  // namespace
}  // namespace ringpipe::exporters
