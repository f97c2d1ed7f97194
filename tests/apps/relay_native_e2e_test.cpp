// `ringpipe run` relaying remote_write native histograms: a remote_write
// source -> a relay processor -> the remote_write exporter -> a real
// Prometheus 2.42 (--enable-feature=native-histograms, remote-write
// receiver). Native histogram samples sent at several timestamps arrive each
// at its own time with its own count and sum; /metrics serves the last one.
// Behind an aggregate processor the series holds the last sample whole:
// scraped in the protobuf format and sent on over remote_write.

#include <gtest/gtest.h>
#include <unistd.h>

#include <ctime>
#include <memory>

#include "e2e_util.hpp"
#include "prometheus_server.hpp"
#include "remote_write_test_util.hpp"
#include "test_support.hpp"

namespace ringpipe::apps {
namespace {

using namespace std::chrono_literals;

// Native histogram sample i of the test series: schema 1, zero bucket 1,
// positive buckets 0 and 1 holding 4 + i and 5 + 2i (deltas), so its count
// is 10 + 3i and its sum 2.5 * (i + 1).
void add_native(prometheus::TimeSeries& ts, int i, std::int64_t timestamp_ms) {
  prometheus::Histogram* h = ts.add_histograms();
  h->set_count_int(static_cast<std::uint64_t>(10 + 3 * i));
  h->set_sum(2.5 * (i + 1));
  h->set_schema(1);
  h->set_zero_threshold(1e-9);
  h->set_zero_count_int(1);
  prometheus::BucketSpan* sp = h->add_positive_spans();
  sp->set_offset(0);
  sp->set_length(2);
  h->add_positive_deltas(4 + i);
  h->add_positive_deltas(1 + i);
  h->set_timestamp(timestamp_ms);
}

// Posts one request: series `name` with label `label`=`value`, holding
// native samples first..last-1 at times(i); retried until it is taken (2xx).
template <typename Times>
void post_natives(net::HttpClient& client, const char* name, std::pair<const char*, const char*> label, int first,
                  int last, Times times, const e2e::Proc& supervisor) {
  prometheus::WriteRequest req;
  prometheus::TimeSeries* ts = req.add_timeseries();
  for (const auto& [k, v] : {std::pair{"__name__", name}, label}) {
    prometheus::Label* l = ts->add_labels();
    l->set_name(k);
    l->set_value(v);
  }
  for (int i = first; i < last; ++i) add_native(*ts, i, times(i));
  const std::string body = ingest::testing::encode(req);
  int status = 0;
  EXPECT_TRUE(testing::wait_until(
      [&] {
        status = ingest::testing::post(client, body).status;
        return status / 100 == 2;
      },
      10s))
      << status << supervisor.err();
}

TEST(RelayNativeE2e, PrometheusReceivesEveryNativeHistogramSampleAtItsOwnTimestamp) {
  if (::access(exporters::testing::kPrometheusBinary, X_OK) != 0) GTEST_SKIP() << "needs Debian's prometheus";
  testing::ScratchDir dir;
  exporters::testing::PrometheusServer prometheus(dir.path().string(), 0);
  ASSERT_TRUE(e2e::start_receiver(prometheus, true)) << prometheus.log_tail();

  const std::uint16_t rw_port = e2e::free_tcp_port();
  const std::uint16_t web_port = e2e::free_tcp_port();
  const std::string file = dir.file("p.yaml");
  e2e::write_text(file, e2e::two_ring_pipeline(dir, R"(sources:
  prom: {type: remote_write, listen: 127.0.0.1:)" + std::to_string(rw_port) +
                                                        R"(, output: raw}
processors:
  relay: {type: relay, input: raw, output: metrics}
exporters:
  rw: {type: remote_write, input: metrics, url: "http://127.0.0.1:)" +
                                                        std::to_string(prometheus.port()) +
                                                        R"(/api/v1/write", gating: true}
  prometheus: {type: prometheus, input: metrics, listen: 127.0.0.1:)" +
                                                        std::to_string(web_port) + "}\n"));
  e2e::Proc supervisor({"run", file}, dir.file("sup.out"), dir.file("sup.err"));
  ASSERT_TRUE(e2e::metrics_answer(web_port)) << supervisor.err();

  // Five samples of one series 40 s apart (and 123 ms past the second: the
  // exact millisecond must arrive), in two requests, in time order.
  const std::int64_t t0 = (static_cast<std::int64_t>(std::time(nullptr)) - 300) * 1000 + 123;
  std::vector<std::int64_t> times;
  for (int i = 0; i < 5; ++i) times.push_back(t0 + 40'000 * i);
  net::HttpClient client(net::HttpUrl{"127.0.0.1", std::to_string(rw_port), "/"});
  for (const auto& [first, last] : {std::pair{0, 3}, std::pair{3, 5}}) {
    post_natives(
        client, "rn_seconds", {"job", "e2e"}, first, last, [&](int i) { return times[static_cast<std::size_t>(i)]; },
        supervisor);
  }

  // Each original timestamp holds its own sample: at t_i histogram_count is
  // sample i's; a millisecond before it, still sample i-1's (none before t_0).
  EXPECT_TRUE(testing::wait_until(
      [&] { return prometheus.query_at("histogram_count(rn_seconds)", times.back()).value_or(-1) == 22; }, 30s))
      << supervisor.err() << prometheus.log_tail();
  for (std::size_t i = 0; i < times.size(); ++i) {
    const double count = 10 + 3 * static_cast<double>(i);
    EXPECT_EQ(prometheus.query_at("histogram_count(rn_seconds{job=\"e2e\"})", times[i]), count) << i;
    EXPECT_EQ(prometheus.query_at("histogram_sum(rn_seconds)", times[i]), 2.5 * static_cast<double>(i + 1)) << i;
    const std::optional<double> before = prometheus.query_at("histogram_count(rn_seconds)", times[i] - 1);
    if (i == 0) {
      EXPECT_FALSE(before.has_value()) << *before;
    } else {
      EXPECT_EQ(before, count - 3) << i;
    }
  }
  // Nothing else was stored: five samples in the last ten minutes.
  EXPECT_EQ(prometheus.query_at("count_over_time(rn_seconds[10m])", times.back()), 5.0);

  // /metrics serves the last sample: its count and sum on the text page.
  std::string body;
  EXPECT_TRUE(testing::wait_until(
      [&] {
        const auto [code, text] = exporters::testing::http_get(web_port, "/metrics", "", 2s);
        body = text;
        return code == 200 && text.find("rn_seconds_count{job=\"e2e\"} 22\n") != std::string::npos;
      },
      10s))
      << body;
  EXPECT_NE(body.find("rn_seconds_sum{job=\"e2e\"} 12.5\n"), std::string::npos) << body;
  EXPECT_EQ(body.find("rn_seconds_bucket"), std::string::npos) << "no classic bucket invented\n" << body;

  supervisor.signal(SIGINT);
  EXPECT_EQ(supervisor.wait(20s), 0) << supervisor.err();
  prometheus.stop();
}

TEST(AggregateNativeE2e, PrometheusScrapesAndReceivesTheLastRemoteWrittenNativeHistogramWhole) {
  if (::access(exporters::testing::kPrometheusBinary, X_OK) != 0) GTEST_SKIP() << "needs Debian's prometheus";
  testing::ScratchDir dir;
  const std::uint16_t rw_port = e2e::free_tcp_port();
  const std::uint16_t web_port = e2e::free_tcp_port();
  exporters::testing::PrometheusServer prometheus(dir.path().string(), web_port);
  prometheus.add_flag("--enable-feature=native-histograms");
  ASSERT_TRUE(prometheus.start()) << prometheus.log_tail();
  const std::string file = dir.file("p.yaml");
  e2e::write_text(file, e2e::two_ring_pipeline(dir, R"(sources:
  prom: {type: remote_write, listen: 127.0.0.1:)" + std::to_string(rw_port) +
                                                        R"(, output: raw}
processors:
  aggregate: {type: aggregate, input: raw, output: metrics, flush_interval: 200ms}
exporters:
  prometheus: {type: prometheus, input: metrics, listen: 127.0.0.1:)" +
                                                        std::to_string(web_port) + R"(}
  rw: {type: remote_write, input: metrics, url: "http://127.0.0.1:)" +
                                                        std::to_string(prometheus.port()) + "/api/v1/write\"}\n"));
  e2e::Proc supervisor({"run", file}, dir.file("sup.out"), dir.file("sup.err"));
  ASSERT_TRUE(e2e::metrics_answer(web_port)) << supervisor.err();

  // Samples 0, 1 and 2 of one series, one request each: the series is the
  // last one (count 16, sum 7.5), not a sum of the three.
  const std::int64_t t0 = (static_cast<std::int64_t>(std::time(nullptr)) - 60) * 1000;
  net::HttpClient client(net::HttpUrl{"127.0.0.1", std::to_string(rw_port), "/"});
  for (int i = 0; i < 3; ++i) {
    post_natives(
        client, "ag_seconds", {"src", "e2e"}, i, i + 1, [&](int j) { return t0 + 1000 * j; }, supervisor);
  }

  // The text page: count and sum, no classic bucket invented.
  std::string page;
  EXPECT_TRUE(testing::wait_until(
      [&] {
        const auto [code, text] = exporters::testing::http_get(web_port, "/metrics", "", 2s);
        page = text;
        return code == 200 && text.find("ag_seconds_count{src=\"e2e\"} 16\n") != std::string::npos;
      },
      10s))
      << page << supervisor.err();
  EXPECT_NE(page.find("ag_seconds_sum{src=\"e2e\"} 7.5\n"), std::string::npos) << page;
  EXPECT_EQ(page.find("ag_seconds_bucket"), std::string::npos) << page;

  // Scraped (with a job label) and received (without): the same histogram,
  // buckets included (schema 1: bucket 1 holds (1, 2^0.5], 9 observations).
  for (const std::string sel : {"{job!=\"\"}", "{job=\"\"}"}) {
    EXPECT_EQ(prometheus.wait_for_value("histogram_count(ag_seconds" + sel + ")", 16, 30s), 16.0)
        << sel << prometheus.log_tail() << supervisor.err();
    EXPECT_EQ(prometheus.query("histogram_sum(ag_seconds" + sel + ")"), 7.5) << sel;
    EXPECT_EQ(prometheus.query("histogram_fraction(1, 1.5, ag_seconds" + sel + ")"), 9.0 / 16) << sel;
  }

  supervisor.signal(SIGINT);
  EXPECT_EQ(supervisor.wait(20s), 0) << supervisor.err();
  prometheus.stop();
}

}  // namespace
}  // namespace ringpipe::apps
