// relabel_configs end to end: the real `ringpipe run` with a pipeline whose
// StatsD source and Prometheus exporter both relabel, StatsD lines over UDP
// on 127.0.0.1, and /metrics checked for the relabeled series and the exact
// drop counters of both.

#include <gtest/gtest.h>

#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>

#include <chrono>
#include <string>

#include "e2e_util.hpp"
#include "prometheus_server.hpp"

namespace ringpipe::apps {
namespace {

using namespace std::chrono_literals;

using e2e::send_udp;

std::string pipeline(const testing::ScratchDir& dir, std::uint16_t port, std::uint16_t web) {
  return "pipeline: relabel\nrun_dir: " + dir.file("run") + R"(
rings: {raw: {size: 1MiB}, metrics: {size: 1MiB}}
sources:
  statsd:
    type: statsd
    listen: [udp://127.0.0.1:)" +
         std::to_string(port) + R"(]
    output: raw
    relabel_configs:
      - source_labels: [env]
        regex: dev
        action: drop
      - source_labels: [__name__]
        regex: 'api\.(.*)'
        target_label: __name__
        replacement: svc_$1
      - source_labels: [host]
        target_label: instance
      - regex: host
        action: labeldrop
      - source_labels: [__name__]
        regex: 'junk\..*'
        target_label: __name__
        replacement: ''
processors:
  aggregate: {type: aggregate, input: raw, output: metrics, flush_interval: 100ms}
exporters:
  prom:
    type: prometheus
    input: metrics
    listen: 127.0.0.1:)" +
         std::to_string(web) + R"(
    metric_relabel_configs:
      - source_labels: [__name__]
        regex: secret_.*
        action: drop
      - target_label: team
        replacement: core
)";
}

TEST(RelabelE2e, SourceAndExporterRulesShapeMetricsAndCountTheirDrops) {
  testing::ScratchDir dir;
  const auto port = e2e::free_tcp_port();
  const auto web = e2e::free_tcp_port();
  const std::string file = dir.file("p.yaml");
  e2e::write_text(file, pipeline(dir, port, web));
  e2e::Proc p({"run", file}, dir.file("out"), dir.file("err"));
  ASSERT_TRUE(e2e::metrics_answer(web)) << p.err();
  ASSERT_TRUE(send_udp(port,
                       "api.hits:1|c|#env:prod,host:a\n"
                       "api.hits:2|c|#env:dev,host:b\n"
                       "junk.x:1|c\n"
                       "secret_total:5|c\n"
                       "plain:3|g\n"));
  std::string body;
  const bool seen = testing::wait_until(
      [&] {
        const auto r = exporters::testing::http_get(web, "/metrics", "", 1s);
        body = r.second;
        return r.first == 200 && body.find("plain{team=\"core\"} 3\n") != std::string::npos &&
               body.find("svc_hits{") != std::string::npos &&
               body.find("ringpipe_exporter_relabel_dropped_series_total 1\n") != std::string::npos &&
               body.find("ringpipe_source_relabel_dropped_samples_total{component=\"statsd\",reason=\"drop\"} 1") !=
                   std::string::npos;
      },
      20s);
  ASSERT_TRUE(seen) << body << p.err();
  // The source renamed api.hits, copied host into instance and dropped host;
  // the exporter added team; the dev sample never reached the ring.
  EXPECT_NE(body.find("svc_hits{env=\"prod\",instance=\"a\",team=\"core\"} 1\n"), std::string::npos) << body;
  EXPECT_EQ(body.find("env=\"dev\""), std::string::npos) << body;
  EXPECT_EQ(body.find("host="), std::string::npos) << body;
  EXPECT_EQ(body.find("junk"), std::string::npos) << body;
  EXPECT_EQ(body.find("secret_total{"), std::string::npos) << body;
  EXPECT_EQ(body.find("\nsecret_total "), std::string::npos) << body;
  EXPECT_NE(body.find("ringpipe_source_relabel_dropped_samples_total{component=\"statsd\",reason=\"invalid_name\"} 1"),
            std::string::npos)
      << body;
  // Several flushes later, the exporter's count is still one series.
  std::this_thread::sleep_for(500ms);
  const auto again = exporters::testing::http_get(web, "/metrics", "", 1s);
  EXPECT_NE(again.second.find("ringpipe_exporter_relabel_dropped_series_total 1\n"), std::string::npos) << again.second;
  p.signal(SIGTERM);
  EXPECT_EQ(p.wait(30s), 0) << p.err();
}

}  // namespace
}  // namespace ringpipe::apps
