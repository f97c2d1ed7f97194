#include <gtest/gtest.h>

#include "components.hpp"
#include "pipeline_text.hpp"

namespace ringpipe::apps {
namespace {

TEST(Components, RingOptionsFollowTheConfigAndRaiseLanesForProducers) {
  const auto p = testing::parse_pipeline(kPipeline);
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
  const auto p = testing::parse_pipeline(kPipeline);
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
