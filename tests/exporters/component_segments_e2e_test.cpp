// The Prometheus exporter serving the stats segments real components write:
// a running Processor (create_processor_publisher) and a remote_write exporter.
// The served values must equal what the components counted, exactly.

#include <gtest/gtest.h>
#include <sys/wait.h>

#include <fstream>

#include "prometheus_server.hpp"
#include "ringpipe/exporters/prometheus_exporter.hpp"
#include "ringpipe/exporters/remote_write_exporter.hpp"
#include "ringpipe/processors/processor.hpp"
#include "ringpipe/processors/processor_stats.hpp"
#include "ringpipe/ring/ring.hpp"
#include "ringpipe/sample/sample_batch.hpp"
#include "ringpipe/stats/stats_segment.hpp"
#include "test_support.hpp"

namespace ringpipe::exporters {
namespace {

using namespace std::chrono_literals;

TEST(ComponentSegmentsE2E, ServesARealProcessorsAndRemoteWritesSegmentsWithExactValues) {
  ringpipe::testing::ScratchDir dir;
  const std::string raw = dir.file("raw");
  const std::string metrics = dir.file("metrics");
  ring::RingOptions ro;
  ro.lanes = 2;
  auto raw_ring = ring::Ring::create(raw, ro);
  ASSERT_TRUE(raw_ring);
  ASSERT_TRUE(ring::Ring::create(metrics, ro));

  processors::ProcessorOptions po;
  po.inputs = {raw};
  po.output = metrics;
  po.engine.shards = 1;
  po.engine.max_series = 2;
  po.flush_interval = 20ms;
  auto proc = processors::Processor::create(po);
  ASSERT_TRUE(proc) << proc.error().message();
  auto segment = stats::StatsSegment::create(dir.file("agg.stats"), "agg", "processor");
  ASSERT_TRUE(segment);
  auto publisher = processors::create_processor_publisher(*segment, **proc, po.engine);
  ASSERT_TRUE(publisher) << publisher.error().message();
  ASSERT_TRUE((*proc)->start());
  ASSERT_TRUE((*publisher)->start(20ms));

  // A remote_write exporter whose endpoint refuses connections: it publishes
  // its failures while it retries.
  RemoteWriteOptions rw;
  rw.input = metrics;
  rw.reader_name = "remote";
  rw.url = "http://127.0.0.1:1/api/v1/write";
  rw.retry_min_backoff = 5ms;
  rw.retry_max_backoff = 10ms;
  rw.stop_timeout = 50ms;
  rw.stats_path = dir.file("remote.stats");
  rw.component = "remote";
  auto remote = RemoteWriteExporter::create(rw);
  ASSERT_TRUE(remote) << remote.error().message();

  auto producer = ring::Producer::attach(*raw_ring);
  ASSERT_TRUE(producer);
  std::vector<std::byte> buf(1 << 12);
  sample::BatchWriter w(buf, 1, 0);
  ASSERT_TRUE(w.append(sample::Kind::kCounter, "a", 1, 1.0, {}));
  ASSERT_TRUE(w.append(sample::Kind::kCounter, "b", 1, 1.0, {}));
  ASSERT_TRUE(w.append(sample::Kind::kCounter, "c", 1, 1.0, {}));   // over max_series
  ASSERT_TRUE(w.append(sample::Kind::kGauge, "a", 1, 1.0, {}));     // type conflict
  ASSERT_TRUE(w.append(sample::Kind::kCounter, "b", -2, 1.0, {}));  // negative increment
  const std::size_t n = w.finish();
  ASSERT_EQ(producer->write(sample::kSampleBatchRecord, std::span<const std::byte>(buf.data(), n), 1s),
            ring::WriteStatus::kOk);
  ASSERT_TRUE(ringpipe::testing::wait_until([&] { return (*proc)->stats().samples == 5; }, 10s));
  ASSERT_TRUE((*remote)->start());
  ASSERT_TRUE(ringpipe::testing::wait_until([&] { return (*remote)->stats().retries >= 3; }, 10s));
  (*remote)->stop();
  (*proc)->stop();
  (*publisher)->stop();
  const std::uint64_t attempts = (*remote)->stats().retries;

  PrometheusExporterOptions o;
  o.input = metrics;
  o.reader_name = "prom";
  o.listen = "127.0.0.1:0";
  o.stats_dir = dir.path().string();
  auto exp = PrometheusExporter::create(o);
  ASSERT_TRUE(exp) << exp.error().message();
  ASSERT_TRUE((*exp)->start());
  auto [status, text] = testing::http_get((*exp)->port(), "/metrics");
  ASSERT_EQ(status, 200);
  const std::string failures = "ringpipe_remote_write_failed_requests_total{component=\"remote\",reason=\"network\"} " +
                               std::to_string(attempts) + "\n";
  for (const std::string& line : {
           std::string("ringpipe_processor_samples_total{component=\"agg\"} 5\n"),
           std::string("ringpipe_processor_samples_applied_total{component=\"agg\"} 2\n"),
           std::string("ringpipe_processor_series_live{component=\"agg\"} 2\n"),
           std::string("ringpipe_processor_max_series{component=\"agg\"} 2\n"),
           std::string("ringpipe_processor_dropped_samples_total{component=\"agg\",reason=\"cardinality_budget\"} 1\n"),
           std::string("ringpipe_processor_dropped_samples_total{component=\"agg\",reason=\"type_conflict\"} 1\n"),
           std::string("ringpipe_processor_dropped_samples_total{component=\"agg\",reason=\"negative_counter\"} 1\n"),
           std::string("ringpipe_processor_decode_errors_total{component=\"agg\"} 0\n"),
           std::string("# TYPE ringpipe_processor_series_live gauge\n"),
           std::string("# TYPE ringpipe_processor_dropped_samples_total counter\n"),
           std::string("ringpipe_component_up{component=\"agg\",kind=\"processor\"} 1\n"),
           failures,
           std::string("ringpipe_remote_write_requests_total{component=\"remote\"} " + std::to_string(attempts) + "\n"),
           std::string("ringpipe_remote_write_requests_succeeded_total{component=\"remote\"} 0\n"),
           std::string("ringpipe_remote_write_failed_requests_total{component=\"remote\",reason=\"5xx\"} 0\n"),
           std::string("ringpipe_remote_write_samples_sent_total{component=\"remote\"} 0\n"),
           std::string("ringpipe_remote_write_in_flight_requests{component=\"remote\"} 0\n"),
           std::string("ringpipe_remote_write_last_success_timestamp_seconds{component=\"remote\"} 0\n"),
           std::string("ringpipe_component_up{component=\"remote\",kind=\"exporter\"} 1\n"),
       }) {
    EXPECT_NE(text.find(line), std::string::npos) << "missing: " << line << "\n" << text;
  }
  const std::string file = dir.file("exposition.txt");
  std::ofstream(file) << text;
  const std::string cmd =
      std::string(testing::kPromtoolBinary) + " check metrics < " + file + " > " + dir.file("promtool.out") + " 2>&1";
  const int st = std::system(cmd.c_str());
  const int rc = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  EXPECT_TRUE(rc == 0 || rc == 3) << "promtool exit " << rc;
  (*exp)->stop();
}

}  // namespace
}  // namespace ringpipe::exporters
