// `ringpipe run` as a Prometheus agent: Graphite lines with their own,
// minutes-old timestamps -> a relay processor -> the remote_write exporter
// -> a real Prometheus (remote-write receiver). A range query shows every
// original sample at its original time, in order across connections;
// /metrics serves the last of each, until relay_ttl where one is set.

#include <gtest/gtest.h>
#include <unistd.h>

#include <ctime>

#include "e2e_util.hpp"
#include "prometheus_server.hpp"
#include "test_support.hpp"

namespace ringpipe::apps {
namespace {

using namespace std::chrono_literals;
using Samples = std::vector<std::pair<std::int64_t, double>>;

TEST(RelayE2e, PrometheusReceivesEverySampleAtItsOwnTimestamp) {
  if (::access(exporters::testing::kPrometheusBinary, X_OK) != 0) GTEST_SKIP() << "needs Debian's prometheus";
  testing::ScratchDir dir;
  exporters::testing::PrometheusServer prometheus(dir.path().string(), 0);
  ASSERT_TRUE(e2e::start_receiver(prometheus)) << prometheus.log_tail();

  const std::uint16_t graphite_port = e2e::free_tcp_port();
  const std::uint16_t web_port = e2e::free_tcp_port();
  const std::uint16_t short_port = e2e::free_tcp_port();
  const std::string file = dir.file("p.yaml");
  e2e::write_text(file,
                  e2e::two_ring_pipeline(dir, R"(sources:
  graphite: {type: graphite, listen: tcp://127.0.0.1:)" +
                                                  std::to_string(graphite_port) + R"(, output: raw}
processors:
  relay: {type: relay, input: raw, output: metrics}
exporters:
  rw: {type: remote_write, input: metrics, url: "http://127.0.0.1:)" +
                                                  std::to_string(prometheus.port()) + R"(/api/v1/write", gating: true,
       max_in_flight: 4, batch_size: 2}
  prometheus: {type: prometheus, input: metrics, listen: 127.0.0.1:)" +
                                                  std::to_string(web_port) + R"(}
  short: {type: prometheus, input: metrics, listen: 127.0.0.1:)" +
                                                  std::to_string(short_port) + ", relay_ttl: 1s}\n"));
  e2e::Proc supervisor({"run", file}, dir.file("sup.out"), dir.file("sup.err"));
  e2e::TcpSender graphite(graphite_port);
  ASSERT_TRUE(graphite.connect(10s)) << supervisor.err();

  // Old but inside what Prometheus' head takes; in time order per series,
  // several samples of one series in one packet (one record), split over
  // requests of 2 samples on 4 connections: a series keeps its connection, so
  // its requests arrive in order (Prometheus refuses a sample older than its
  // series' newest). Every request carries its families' metadata too, which
  // Prometheus takes beside the samples.
  const std::int64_t now = std::time(nullptr);
  const std::int64_t t0 = now - 300;
  std::string lines;
  Samples want_a;
  Samples want_b;
  for (int i = 0; i < 5; ++i) {
    const std::int64_t ta = t0 + 40 * i;
    lines += "relay.temp;room=a " + std::to_string(10 + i) + ".5 " + std::to_string(ta) + "\n";
    want_a.emplace_back(ta * 1000, 10 + i + 0.5);
    if (i % 2 == 0) {
      const std::int64_t tb = t0 + 40 * i + 7;
      lines += "relay.temp;room=b " + std::to_string(-i) + " " + std::to_string(tb) + "\n";
      want_b.emplace_back(tb * 1000, -i);
    }
  }
  ASSERT_TRUE(graphite.send(lines));

  std::optional<Samples> got_a;
  std::optional<Samples> got_b;
  EXPECT_TRUE(testing::wait_until(
      [&] {
        got_a = prometheus.range_samples("relay_temp{room=\"a\"}[10m]");
        got_b = prometheus.range_samples("relay_temp{room=\"b\"}[10m]");
        return got_a && got_a->size() >= want_a.size() && got_b && got_b->size() >= want_b.size();
      },
      30s))
      << supervisor.err() << prometheus.log_tail();
  ASSERT_TRUE(got_a);
  ASSERT_TRUE(got_b);
  EXPECT_EQ(*got_a, want_a) << "every original timestamp and value, none merged into one flush";
  EXPECT_EQ(*got_b, want_b);

  // A second packet continues the series later; the history stays.
  const std::int64_t t_late = now - 10;
  ASSERT_TRUE(graphite.send("relay.temp;room=a 99 " + std::to_string(t_late) + "\n"));
  want_a.emplace_back(t_late * 1000, 99);
  EXPECT_TRUE(testing::wait_until(
      [&] {
        got_a = prometheus.range_samples("relay_temp{room=\"a\"}[10m]");
        return got_a && got_a->size() >= want_a.size();
      },
      30s));
  ASSERT_TRUE(got_a);
  EXPECT_EQ(*got_a, want_a);

  // /metrics serves the last sample relayed of each series.
  std::string body;
  EXPECT_TRUE(testing::wait_until(
      [&] {
        const auto [code, text] = exporters::testing::http_get(web_port, "/metrics", "", 2s);
        body = text;
        return code == 200 && text.find("relay_temp{room=\"a\"} 99\n") != std::string::npos;
      },
      10s))
      << body;
  EXPECT_NE(body.find("relay_temp{room=\"b\"} -4\n"), std::string::npos) << body;

  // An exporter with relay_ttl: 1s lets the series go once they stop
  // arriving; the one without keeps serving them.
  std::string short_body;
  EXPECT_TRUE(testing::wait_until(
      [&] {
        const auto [code, text] = exporters::testing::http_get(short_port, "/metrics", "", 2s);
        short_body = text;
        return code == 200 && text.find("relay_temp{") == std::string::npos;
      },
      10s))
      << short_body;
  EXPECT_EQ(e2e::scraped_sum(web_port, "relay_temp"), 99.0 - 4.0) << "no ttl: served for good";

  supervisor.signal(SIGINT);
  EXPECT_EQ(supervisor.wait(20s), 0) << supervisor.err();
  prometheus.stop();
}

}  // namespace
}  // namespace ringpipe::apps
