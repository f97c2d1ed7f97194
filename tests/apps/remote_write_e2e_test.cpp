// `ringpipe run` with a remote_write source: a real Prometheus scrapes itself
// and remote_writes into the pipeline (remote_write source -> aggregate ->
// prometheus exporter); its samples come out of our /metrics with their
// values, and the source's self-metrics count the answers.

#include <gtest/gtest.h>

#include "components.hpp"
#include "e2e_util.hpp"
#include "prometheus_server.hpp"
#include "test_support.hpp"

namespace ringpipe::apps {
namespace {

using namespace std::chrono_literals;

TEST(RemoteWriteE2e, PrometheusRemoteWritesIntoThePipelineAndItsSamplesAreServedOnMetrics) {
  if (::access(exporters::testing::kPrometheusBinary, X_OK) != 0) GTEST_SKIP() << "needs Debian's prometheus";
  testing::ScratchDir dir;
  const std::uint16_t rw_port = e2e::free_tcp_port();
  const std::uint16_t web_port = e2e::free_tcp_port();
  const std::string file = dir.file("p.yaml");
  e2e::write_text(file, e2e::two_ring_pipeline(dir, R"(sources:
  rw: {type: remote_write, listen: 127.0.0.1:)" + std::to_string(rw_port) +
                                                        R"(, output: raw}
processors:
  aggregate: {type: aggregate, input: raw, output: metrics, flush_interval: 100ms}
exporters:
  prometheus: {type: prometheus, input: metrics, listen: 127.0.0.1:)" +
                                                        std::to_string(web_port) + "}\n"));
  e2e::Proc supervisor({"run", file}, dir.file("sup.out"), dir.file("sup.err"));
  ASSERT_TRUE(e2e::TcpSender(rw_port).connect(10s)) << supervisor.err();

  exporters::testing::PrometheusServer prometheus(dir.path().string(), 0);
  prometheus.set_config(
      "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
      "scrape_configs:\n  - job_name: self\n    static_configs:\n      - targets: ['127.0.0.1:" +
      std::to_string(prometheus.port()) + "']\nremote_write:\n  - url: http://127.0.0.1:" + std::to_string(rw_port) +
      "/api/v1/write\n    remote_timeout: 2s\n"
      "    queue_config:\n      batch_send_deadline: 200ms\n      max_backoff: 200ms\n");
  ASSERT_TRUE(prometheus.start()) << prometheus.log_tail();

  std::string body;
  auto served = [&](const std::string& name) { return e2e::scraped_sum(web_port, name, 2s, &body); };
  EXPECT_TRUE(testing::wait_until([&] { return served("prometheus_build_info") == 1.0; }, 30s)) << body;
  EXPECT_TRUE(testing::wait_until([&] { return served("up") == 1.0; }, 30s)) << body;
  EXPECT_NE(body.find("up{instance=\"127.0.0.1:" + std::to_string(prometheus.port()) + "\",job=\"self\"} 1"),
            std::string::npos)
      << body;
  EXPECT_TRUE(testing::wait_until(
      [&] {
        served("up");
        return body.find("ringpipe_source_remote_write_responses_total{component=\"rw\",code=\"204\"}") !=
               std::string::npos;
      },
      10s))
      << body;
  EXPECT_EQ(e2e::exposition_sum(body, "ringpipe_source_remote_write_responses_total"),
            e2e::exposition_sum(body, "ringpipe_source_remote_write_requests_total"));  // every request answered 204
  prometheus.stop();
  supervisor.signal(SIGINT);
  EXPECT_EQ(supervisor.wait(20s), 0) << supervisor.err();
}

}  // namespace
}  // namespace ringpipe::apps
