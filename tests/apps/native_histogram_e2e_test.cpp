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

TEST(NativeHistogramE2e, PrometheusScrapesTheNativeHistogramAndItsQuantileIsWithinTheSchemasError) {
  if (::access(exporters::testing::kPrometheusBinary, X_OK) != 0) GTEST_SKIP() << "needs Debian's prometheus";
  testing::ScratchDir dir;
  const std::uint16_t statsd_port = e2e::free_tcp_port();
  const std::uint16_t web_port = e2e::free_tcp_port();
  const std::string file = dir.file("p.yaml");
  // Factor 1.1: schema 3, each bucket 2^(1/8) = 1.09 times the one below.
  e2e::write_text(file, "pipeline: t\nrun_dir: " + dir.path().string() + R"(
rings:
  raw: {size: 4MiB, lanes: 4, overflow: block}
  metrics: {size: 4MiB, lanes: 4, overflow: block}
sources:
  statsd: {type: statsd, listen: udp://127.0.0.1:)" +
                            std::to_string(statsd_port) + R"(, output: raw}
processors:
  aggregate: {type: aggregate, input: raw, output: metrics, flush_interval: 100ms, observer_type: histogram,
              buckets: [1, 10, 100], native_histogram_bucket_factor: 1.1}
exporters:
  prometheus: {type: prometheus, input: metrics, listen: 127.0.0.1:)" +
                            std::to_string(web_port) + "}\n");
  e2e::Proc supervisor({"run", file}, dir.file("sup.out"), dir.file("sup.err"));
  ASSERT_TRUE(testing::wait_until(
      [&] { return exporters::testing::http_get(web_port, "/-/healthy", "", 1s).first == 200; }, 20s))
      << supervisor.err();

  // 300 values spread over three decades (0.5 .. 150, uneven), in datagrams of 50.
  std::vector<double> values;
  for (int i = 0; i < 300; ++i) values.push_back(0.5 * std::pow(1.02, i) + (i % 7) * 0.01);
  std::string lines;
  for (std::size_t i = 0; i < values.size(); ++i) {
    lines += "lat:" + std::to_string(values[i]) + "|h\n";
    if (i % 50 == 49) {
      ASSERT_TRUE(e2e::send_udp(statsd_port, lines));
      lines.clear();
    }
  }
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

  std::vector<double> sorted = values;
  std::sort(sorted.begin(), sorted.end());
  const double max_relative_error = std::exp2(std::exp2(-3)) - 1;  // one schema-3 bucket
  for (const double q : {0.5, 0.9, 0.25}) {
    // The exact quantile: the value of rank ceil(q n).
    const double exact = sorted[static_cast<std::size_t>(std::ceil(q * static_cast<double>(sorted.size()))) - 1];
    const std::optional<double> got = prometheus.query("histogram_quantile(" + std::to_string(q) + ", lat)");
    ASSERT_TRUE(got) << q << "\n" << prometheus.log_tail();
    EXPECT_LE(std::fabs(*got - exact) / exact, max_relative_error) << "q " << q << ": " << *got << " vs " << exact;
  }
  prometheus.stop();
  supervisor.signal(SIGINT);
  EXPECT_EQ(supervisor.wait(20s), 0) << supervisor.err();
}

}  // namespace
}  // namespace ringpipe::apps
