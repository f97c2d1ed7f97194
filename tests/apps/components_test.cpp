#include <gtest/gtest.h>

#include "components.hpp"

namespace ringpipe::apps {
namespace {

config::PipelineConfig parse(const std::string& text) {
  auto p = config::parse_pipeline(text, "p.yaml");
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
