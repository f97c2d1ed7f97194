#include <gtest/gtest.h>

#include <fstream>

#include "components.hpp"
#include "test_support.hpp"

namespace ringpipe::apps {
namespace {

config::PipelineConfig parse(const std::string& text, const std::string& file = "p.yaml") {
  auto p = config::parse_pipeline(text, file);
  EXPECT_TRUE(p) << (p ? "" : p.error().message());
  return p ? *p : config::PipelineConfig{};
}

constexpr const char* kPipeline = R"(pipeline: t
rings:
  raw: {size: 1MiB, lanes: 2, overflow: drop, max_readers: 4, reader_timeout: 500ms}
  metrics: {size: 1MiB, lanes: 2}
sources:
  s: {type: statsd, listen: [udp://127.0.0.1:0, tcp://127.0.0.1:0, udp://127.0.0.1:0], output: raw, udp_sockets: 2}
processors:
  agg: {type: aggregate, input: raw, output: metrics, shards: 4, flush_interval: 200ms}
exporters:
  prom: {type: prometheus, input: metrics, listen: 127.0.0.1:0}
)";

TEST(Components, RingOptionsFollowTheConfigAndRaiseLanesForProducers) {
  const auto p = parse(kPipeline);
  const auto raw = ring_options(p, *p.find_ring("raw"));
  EXPECT_EQ(raw.overflow, ring::Overflow::kDrop);
  EXPECT_EQ(raw.max_readers, 4u);
  EXPECT_EQ(raw.reader_timeout, std::chrono::milliseconds(500));
  EXPECT_EQ(raw.lane_capacity_bytes, 512u * 1024);
  // Two UDP addresses x 2 sockets + one stream thread.
  EXPECT_EQ(lanes_needed(p, "raw"), 5u);
  EXPECT_EQ(raw.lanes, 5u);
  const auto metrics = ring_options(p, *p.find_ring("metrics"));
  EXPECT_EQ(metrics.lanes, 4u);  // >= shards, or Processor::create refuses
  EXPECT_EQ(metrics.lane_capacity_bytes, 512u * 1024);
}

TEST(Components, FingerprintChangesOnlyWithWhatAComponentUses) {
  testing::ScratchDir dir;
  const std::string mapping = dir.file("mapping.yml");
  auto write_mapping = [&](const char* name) {
    std::ofstream(mapping) << "mappings:\n  - match: a.b\n    name: " << name << "\n";
  };
  write_mapping("first");
  const std::string text = std::string(kPipeline) + "";
  std::string with_mapping = text;
  with_mapping.replace(with_mapping.find("flush_interval"), 0, "mapping_config: mapping.yml, ");
  const std::string file = dir.file("p.yaml");
  // The supervisor fingerprints right after loading, as here.
  const auto a = parse(with_mapping, file);
  const std::string a_agg = component_fingerprint(a, "agg");
  write_mapping("second");
  const auto b = parse(with_mapping, file);
  EXPECT_NE(a_agg, component_fingerprint(b, "agg"));
  EXPECT_EQ(component_fingerprint(a, "s"), component_fingerprint(b, "s"));
  EXPECT_EQ(component_fingerprint(a, "prom"), component_fingerprint(b, "prom"));

  std::string other_port = text;
  other_port.replace(other_port.find("tcp://127.0.0.1:0"), 17, "tcp://127.0.0.1:1");
  const auto c = parse(other_port);
  const auto d = parse(text);
  EXPECT_NE(component_fingerprint(c, "s"), component_fingerprint(d, "s"));
  EXPECT_EQ(component_fingerprint(c, "agg"), component_fingerprint(d, "agg"));
}

TEST(Components, EveryResourceLimitIsPartOfItsComponentsFingerprint) {
  const auto p = parse(R"(pipeline: t
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
  // Each key is part of its component's fingerprint: changing it restarts that component on reload.
  const std::string before_s = component_fingerprint(p, "s");
  const std::string before_w = component_fingerprint(p, "w");
  const std::string before_agg = component_fingerprint(p, "agg");
  config::PipelineConfig q = p;
  q.sources.at(0).max_buffered_bytes = 4u << 20;
  q.sources.at(1).remote_write.max_samples_per_request = 34;
  q.processors.at(0).quarantine_after_crashes = 8;
  EXPECT_NE(component_fingerprint(q, "s"), before_s);
  EXPECT_NE(component_fingerprint(q, "w"), before_w);
  EXPECT_NE(component_fingerprint(q, "agg"), before_agg);
  q = p;
  q.processors.at(0).max_name_length = 513;
  EXPECT_NE(component_fingerprint(q, "agg"), before_agg);
  q = p;
  q.exporters.at(0).prometheus.header_timeout = std::chrono::seconds(9);
  EXPECT_NE(component_fingerprint(q, "prom"), component_fingerprint(p, "prom"));
}

TEST(Components, ListsComponentsWithTheirRingsAndReaders) {
  const auto p = parse(kPipeline);
  const auto all = pipeline_components(p);
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(all[0].kind, ComponentKind::kSource);
  EXPECT_EQ(all[0].outputs, std::vector<std::string>{"raw"});
  EXPECT_EQ(all[1].reader, "agg");
  EXPECT_EQ(all[2].inputs, std::vector<std::string>{"metrics"});
  EXPECT_EQ(find_component(all, "prom"), &all[2]);
  EXPECT_EQ(find_component(all, "nope"), nullptr);
}

}  // namespace
}  // namespace ringpipe::apps
