// `ringpipe run` serving native histograms to a real Prometheus 2.42
// (--enable-feature=native-histograms): StatsD histograms -> an aggregate
// processor with native_histogram_bucket_factor -> the prometheus exporter,
// scraped in the protobuf format Prometheus asks for. histogram_quantile over
// the native histogram agrees with the exact quantile of the values sent
// within the schema's relative error; a text scrape still gets the classic
// buckets.

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "e2e_util.hpp"
#include "prometheus_server.hpp"
#include "test_support.hpp"

namespace ringpipe::apps {
namespace {

using namespace std::chrono_literals;

// 300 values spread over three decades (0.5 .. 190, uneven).
std::vector<double> test_values() {
  std::vector<double> values;
  for (int i = 0; i < 300; ++i) values.push_back(0.5 * std::pow(1.02, i) + (i % 7) * 0.01);
  return values;
}

// `values` as StatsD histogram samples of `name`, one a line.
std::string statsd_lines(const std::string& name, const std::vector<double>& values) {
  std::string lines;
  for (const double v : values) lines += name + ":" + std::to_string(v) + "|h\n";
  return lines;
}

// histogram_quantile over the native histogram `name` against the exact
// quantile (the value of rank ceil(q n)), within one schema-3 bucket.
void expect_quantiles_within_schema_error(exporters::testing::PrometheusServer& prometheus, const std::string& name,
                                          std::vector<double> values) {
  std::sort(values.begin(), values.end());
  const double max_relative_error = std::exp2(std::exp2(-3)) - 1;
  for (const double q : {0.5, 0.9, 0.25}) {
    const double exact = values[static_cast<std::size_t>(std::ceil(q * static_cast<double>(values.size()))) - 1];
    const std::optional<double> got = prometheus.query("histogram_quantile(" + std::to_string(q) + ", " + name + ")");
    ASSERT_TRUE(got) << q << "\n" << prometheus.log_tail();
    EXPECT_LE(std::fabs(*got - exact) / exact, max_relative_error) << "q " << q << ": " << *got << " vs " << exact;
  }
}

// The StatsD source the tests feed, on tcp `port`.
std::string statsd_source(std::uint16_t port) {
  return "sources:\n  statsd: {type: statsd, listen: tcp://127.0.0.1:" + std::to_string(port) + ", output: raw}\n";
}

// The processor of the tests, with `more` keys. Factor 1.1: schema 3, each
// bucket 2^(1/8) = 1.09 times the one below.
std::string native_aggregate(const std::string& more = "") {
  return "processors:\n  aggregate: {type: aggregate, input: raw, output: metrics, flush_interval: 100ms, "
         "observer_type: histogram,\n              buckets: [1, 10, 100], native_histogram_bucket_factor: 1.1" +
         more + "}\n";
}
constexpr const char* kWeighted = ", sample_rate: weighted";

TEST(NativeHistogramE2e, PrometheusScrapesTheNativeHistogramAndItsQuantileIsWithinTheSchemasError) {
  if (::access(exporters::testing::kPrometheusBinary, X_OK) != 0) GTEST_SKIP() << "needs Debian's prometheus";
  testing::ScratchDir dir;
  const std::uint16_t statsd_port = e2e::free_tcp_port();
  const std::uint16_t web_port = e2e::free_tcp_port();
  const std::string file = dir.file("p.yaml");
  e2e::write_text(file, e2e::two_ring_pipeline(dir, statsd_source(statsd_port) + native_aggregate(kWeighted) + R"(
exporters:
  prometheus: {type: prometheus, input: metrics, listen: 127.0.0.1:)" +
                                                        std::to_string(web_port) + "}\n"));
  e2e::Proc supervisor({"run", file}, dir.file("sup.out"), dir.file("sup.err"));
  ASSERT_TRUE(testing::wait_until(
      [&] { return exporters::testing::http_get(web_port, "/-/healthy", "", 1s).first == 200; }, 20s))
      << supervisor.err();

  e2e::TcpSender statsd(statsd_port);
  ASSERT_TRUE(statsd.connect(10s)) << supervisor.err();
  const std::vector<double> values = test_values();
  ASSERT_TRUE(statsd.send(statsd_lines("lat", values)));
  EXPECT_TRUE(testing::wait_until(
      [&] {
        const auto [code, page] = exporters::testing::http_get(web_port, "/metrics", "", 2s);
        return code == 200 && exporters::testing::sample_value(page, "lat_count") == 300.0;
      },
      20s));
  // Without a protobuf Accept header the page is the text format, classic buckets as before.
  const auto text = exporters::testing::raw_http_get(web_port, "/metrics");
  EXPECT_EQ(text.header("Content-Type"), "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_NE(text.body.find("lat_bucket{le=\"10\"}"), std::string::npos) << text.body;

  exporters::testing::PrometheusServer prometheus(dir.path().string(), web_port);
  prometheus.add_flag("--enable-feature=native-histograms");
  ASSERT_TRUE(prometheus.start()) << prometheus.log_tail();
  // histogram_count only answers for a native histogram sample.
  EXPECT_EQ(prometheus.wait_for_value("histogram_count(lat)", 300, 30s), 300.0) << prometheus.log_tail();
  EXPECT_EQ(prometheus.query("histogram_sum(lat)").value_or(-1) > 0, true);

  expect_quantiles_within_schema_error(prometheus, "lat", values);
  prometheus.stop();
  supervisor.signal(SIGINT);
  EXPECT_EQ(supervisor.wait(20s), 0) << supervisor.err();
}

// The same histogram sent by the remote_write exporter as remote_write 1.0
// Histogram samples, into Prometheus' receiver.
TEST(NativeHistogramE2e, PrometheusReceivesTheNativeHistogramOverRemoteWrite) {
  if (::access(exporters::testing::kPrometheusBinary, X_OK) != 0) GTEST_SKIP() << "needs Debian's prometheus";
  testing::ScratchDir dir;
  exporters::testing::PrometheusServer prometheus(dir.path().string(), 0);
  ASSERT_TRUE(e2e::start_receiver(prometheus, true)) << prometheus.log_tail();
  const std::uint16_t statsd_port = e2e::free_tcp_port();
  const std::string file = dir.file("p.yaml");
  e2e::write_text(file, e2e::two_ring_pipeline(dir, statsd_source(statsd_port) + native_aggregate() + R"(
exporters:
  rw: {type: remote_write, input: metrics, url: "http://127.0.0.1:)" +
                                                        std::to_string(prometheus.port()) + "/api/v1/write\"}\n"));
  e2e::Proc supervisor({"run", file}, dir.file("sup.out"), dir.file("sup.err"));
  e2e::TcpSender statsd(statsd_port);
  ASSERT_TRUE(statsd.connect(10s)) << supervisor.err();
  const std::vector<double> values = test_values();
  ASSERT_TRUE(statsd.send(statsd_lines("rwlat", values)));
  EXPECT_EQ(prometheus.wait_for_value("histogram_count(rwlat)", 300, 30s), 300.0)
      << prometheus.log_tail() << supervisor.err();
  // The classic series arrive beside it.
  EXPECT_EQ(prometheus.wait_for_value("rwlat_count", 300, 10s), 300.0);
  expect_quantiles_within_schema_error(prometheus, "rwlat", values);
  supervisor.signal(SIGINT);
  EXPECT_EQ(supervisor.wait(20s), 0) << supervisor.err();
  prometheus.stop();
}

// With `sample_rate: weighted`, values sent at a sample rate of 0.3 weigh
// 1/0.3 each: the native counts are not whole numbers and go as a float
// histogram, over remote_write and on the protobuf page alike; Prometheus
// reads the weighted count 100/0.3 from both (rounded to integers it was 333;
// replayed, as statsd_exporter does, it would be 300).
TEST(NativeHistogramE2e, WeightedCountsReachPrometheusAsFloatHistogramsScrapedAndOverRemoteWrite) {
  if (::access(exporters::testing::kPrometheusBinary, X_OK) != 0) GTEST_SKIP() << "needs Debian's prometheus";
  testing::ScratchDir dir;
  const std::uint16_t statsd_port = e2e::free_tcp_port();
  const std::uint16_t web_port = e2e::free_tcp_port();
  exporters::testing::PrometheusServer prometheus(dir.path().string(), web_port);
  prometheus.add_flag("--enable-feature=native-histograms");
  ASSERT_TRUE(prometheus.start()) << prometheus.log_tail();
  const std::string file = dir.file("p.yaml");
  e2e::write_text(file, e2e::two_ring_pipeline(dir, statsd_source(statsd_port) + native_aggregate(kWeighted) + R"(
exporters:
  prometheus: {type: prometheus, input: metrics, listen: 127.0.0.1:)" +
                                                        std::to_string(web_port) + R"(}
  rw: {type: remote_write, input: metrics, url: "http://127.0.0.1:)" +
                                                        std::to_string(prometheus.port()) + "/api/v1/write\"}\n"));
  e2e::Proc supervisor({"run", file}, dir.file("sup.out"), dir.file("sup.err"));
  e2e::TcpSender statsd(statsd_port);
  ASSERT_TRUE(statsd.connect(10s)) << supervisor.err();
  std::string lines;
  for (int i = 0; i < 100; ++i) lines += "wlat:" + std::to_string(1 + i) + "|h|@0.3\n";
  ASSERT_TRUE(statsd.send(lines));
  const double want = 100 / 0.3;
  auto near_want = [&](const std::string& promql) {
    std::optional<double> got;
    // Its value is checked below, with the last answer in the message.
    (void)testing::wait_until(
        [&] {
          got = prometheus.query(promql);
          return got && std::fabs(*got - want) < 1e-6;
        },
        30s);
    return got;
  };
  // Scraped (job="ringpipe"... any job) and received (no job label).
  const std::optional<double> scraped = near_want("histogram_count(wlat{job!=\"\"})");
  ASSERT_TRUE(scraped) << prometheus.log_tail() << supervisor.err();
  EXPECT_NEAR(*scraped, want, 1e-6);
  const std::optional<double> received = near_want("histogram_count(wlat{job=\"\"})");
  ASSERT_TRUE(received) << prometheus.log_tail() << supervisor.err();
  EXPECT_NEAR(*received, want, 1e-6);
  supervisor.signal(SIGINT);
  EXPECT_EQ(supervisor.wait(20s), 0) << supervisor.err();
  prometheus.stop();
}

}  // namespace
}  // namespace ringpipe::apps
