// What a SIGHUP reload restarts, starts, stops and refuses, decided from the
// running and the next pipeline alone (plan_reload, check_reload).

#include "reload.hpp"

#include <gtest/gtest.h>

#include <fstream>

#include "pipeline_text.hpp"
#include "test_support.hpp"

namespace ringpipe::apps {
namespace {

using Names = std::vector<std::string>;

ReloadPlan plan_of(Names start, Names stop, Names restart, Names new_rings = {}, Names changed_rings = {}) {
  ReloadPlan p;
  p.start = std::move(start);
  p.stop = std::move(stop);
  p.restart = std::move(restart);
  p.new_rings = std::move(new_rings);
  p.changed_rings = std::move(changed_rings);
  return p;
}

TEST(ReloadPlan, RestartsOnlyTheComponentsThatUseWhatChanged) {
  testing::ScratchDir dir;
  const std::string mapping = dir.file("mapping.yml");
  auto write_mapping = [&](const char* name) {
    std::ofstream(mapping) << "mappings:\n  - match: a.b\n    name: " << name << "\n";
  };
  write_mapping("first");
  const std::string text = kPipeline;
  std::string with_mapping = text;
  with_mapping.replace(with_mapping.find("flush_interval"), 0, "mapping_config: mapping.yml, ");
  const std::string file = dir.file("p.yaml");
  // The supervisor keeps the pipeline as loaded, mapping rules included.
  const auto a = testing::parse_pipeline(with_mapping, file);
  EXPECT_EQ(plan_reload(a, a), ReloadPlan{});
  write_mapping("second");
  const auto b = testing::parse_pipeline(with_mapping, file);
  EXPECT_EQ(plan_reload(a, b), plan_of({}, {}, {"agg"}));

  std::string other_port = text;
  other_port.replace(other_port.find("tcp://127.0.0.1:0"), 17, "tcp://127.0.0.1:1");
  EXPECT_EQ(plan_reload(testing::parse_pipeline(text), testing::parse_pipeline(other_port)), plan_of({}, {}, {"s"}));
  // The same pipeline written in another order and with comments changes nothing.
  const std::string moved =
      std::string("# moved\n") + text.substr(text.find("exporters:")) + text.substr(0, text.find("exporters:"));
  EXPECT_EQ(plan_reload(testing::parse_pipeline(text), testing::parse_pipeline(moved)), ReloadPlan{});
}

TEST(ReloadPlan, EveryResourceLimitRestartsItsComponent) {
  const auto p = testing::parse_pipeline(R"(pipeline: t
rings:
  raw: {size: 1MiB, lanes: 4}
  metrics: {size: 1MiB}
sources:
  s: {type: statsd, listen: [tcp://127.0.0.1:0, unix:///tmp/rp-limits.sock], output: raw, max_buffered_size: 3MiB}
  w: {type: remote_write, listen: 127.0.0.1:0, output: raw, max_series_per_request: 11, max_labels_per_request: 22,
      max_samples_per_request: 33, max_inflight_body_size: 44MiB}
processors:
  agg: {type: aggregate, input: raw, output: metrics, max_name_length: 512, quarantine_after_crashes: 9}
exporters:
  prom: {type: prometheus, input: metrics, listen: 127.0.0.1:0}
)");
  // Each key is part of its component's config: changing it restarts that component on reload.
  config::PipelineConfig q = p;
  q.sources.at(0).max_buffered_bytes = 4u << 20;
  q.sources.at(1).remote_write.max_samples_per_request = 34;
  q.processors.at(0).quarantine_after_crashes = 8;
  EXPECT_EQ(plan_reload(p, q).restart, (Names{"s", "w", "agg"}));
  q = p;
  q.processors.at(0).max_name_length = 513;
  EXPECT_EQ(plan_reload(p, q).restart, Names{"agg"});
  q = p;
  q.exporters.at(0).prometheus.header_timeout = std::chrono::seconds(9);
  EXPECT_EQ(plan_reload(p, q).restart, Names{"prom"});
  // A certificate renewed under the same file name (config reads its contents at load).
  q = p;
  config::TlsConfig tls;
  tls.cert_file = "c.pem";
  tls.key_file = "k.pem";
  q.exporters.at(0).prometheus.tls = tls;
  config::PipelineConfig renewed = q;
  renewed.exporters.at(0).prometheus.tls->contents_digest = 1;
  EXPECT_EQ(plan_reload(q, renewed).restart, Names{"prom"});
}

TEST(ReloadPlan, StartsNewComponentsStopsRemovedOnesAndNamesNewRings) {
  const auto p = testing::parse_pipeline(kPipeline);
  const auto q = testing::parse_pipeline(R"(pipeline: t
rings:
  raw: {size: 1MiB, lanes: 2, overflow: drop, max_readers: 4, reader_timeout: 500ms}
  metrics: {size: 1MiB, lanes: 2}
  copy: {size: 1MiB}
sources:
  s: {type: statsd, listen: [udp://127.0.0.1:0, tcp://127.0.0.1:0, udp://127.0.0.1:0], output: raw, udp_sockets: 2}
processors:
  agg: {type: aggregate, input: raw, output: metrics, shards: 4, flush_interval: 200ms}
  again: {type: aggregate, input: raw, output: copy}
exporters:
  push: {type: remote_write, input: metrics, url: http://127.0.0.1:1/api/v1/write}
  copy_out: {type: prometheus, input: copy, listen: 127.0.0.1:0}
)");
  const ReloadPlan plan = plan_reload(p, q);
  EXPECT_EQ(plan.start, (Names{"again", "push", "copy_out"}));
  EXPECT_EQ(plan.stop, Names{"prom"});
  EXPECT_EQ(plan.new_rings, Names{"copy"});
  // raw gained a reader, not a producer: its options are the same, so s and agg keep running.
  EXPECT_TRUE(plan.restart.empty()) << plan.restart.size();
  EXPECT_TRUE(plan.changed_rings.empty());
  EXPECT_TRUE(check_reload(p, q).empty());
  // Back again: the reverse plan.
  const ReloadPlan back = plan_reload(q, p);
  EXPECT_EQ(back.start, Names{"prom"});
  EXPECT_EQ(back.stop, (Names{"again", "push", "copy_out"}));
  EXPECT_TRUE(back.new_rings.empty());
}

TEST(ReloadPlan, AChangedRingRestartsEveryComponentUsingItAndCheckRefusesIt) {
  const auto p = testing::parse_pipeline(kPipeline);
  config::PipelineConfig q = p;
  q.rings.at(0).reader_timeout = std::chrono::seconds(1);  // raw
  EXPECT_EQ(plan_reload(p, q), plan_of({}, {}, {"s", "agg"}, {}, {"raw"}));
  EXPECT_EQ(
      check_reload(p, q),
      Names{"ring raw: geometry, overflow policy or reader_timeout changed (a ring keeps its data across reloads; "
            "stop the pipeline and remove the ring file to change it)"});
  // A producer more on metrics raises its lanes (ring_options): a changed ring too.
  q = p;
  q.processors.at(0).shards = 5;
  EXPECT_EQ(plan_reload(p, q).changed_rings, Names{"metrics"});
  EXPECT_EQ(plan_reload(p, q).restart, (Names{"agg", "prom"}));
  EXPECT_EQ(check_reload(p, q).size(), 1u);
  // Lanes below what the producers need anyway: the ring is the same.
  q = p;
  q.rings.at(0).lanes = 4;
  q.rings.at(0).size_bytes = 2u << 20;
  EXPECT_EQ(plan_reload(p, q), ReloadPlan{});
  EXPECT_TRUE(check_reload(p, q).empty());
}

TEST(ReloadPlan, ASourceThatMovesChangesItsSourceIdAndRestarts) {
  const auto p = testing::parse_pipeline(R"(pipeline: t
rings:
  raw: {size: 1MiB}
sources:
  a: {type: statsd, listen: udp://127.0.0.1:0, output: raw}
  b: {type: influx, listen: udp://127.0.0.1:0, output: raw}
  c: {type: graphite, listen: udp://127.0.0.1:0, output: raw}
exporters:
  prom: {type: prometheus, input: raw, listen: 127.0.0.1:0}
)");
  config::PipelineConfig q = p;
  std::swap(q.sources.at(0), q.sources.at(1));
  EXPECT_EQ(plan_reload(p, q), plan_of({}, {}, {"b", "a"}));
  q = p;
  q.sources.erase(q.sources.begin());
  EXPECT_EQ(plan_reload(p, q), plan_of({}, {"a"}, {"b", "c"}));
}

TEST(ReloadCheck, RefusesAnotherPipelineNameOrRunDir) {
  const auto p = testing::parse_pipeline(kPipeline);
  EXPECT_TRUE(check_reload(p, p).empty());
  config::PipelineConfig q = p;
  q.run_dir = "/elsewhere";
  EXPECT_EQ(check_reload(p, q), Names{"pipeline name or run_dir changed (restart ringpipe run to move the rings)"});
  q = p;
  q.pipeline = "u";
  EXPECT_EQ(check_reload(p, q).size(), 1u);
  // Every ring moves with it.
  EXPECT_EQ(plan_reload(p, q).changed_rings, (Names{"raw", "metrics"}));
}

}  // namespace
}  // namespace ringpipe::apps
