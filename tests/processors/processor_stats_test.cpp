// A real Processor publishing into a real stats segment: the segment's
// processor_* entries must equal the processor's own counters, exactly.

#include "ringpipe/processors/processor_stats.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <map>

#include "ringpipe/processors/processor.hpp"
#include "ringpipe/ring/ring.hpp"
#include "ringpipe/sample/sample_batch.hpp"
#include "test_support.hpp"

namespace ringpipe::processors {
namespace {

using namespace std::chrono_literals;

// name{label=value} -> value, for every entry of the segment.
std::map<std::string, double> read_segment(const std::string& path) {
  auto reader = stats::StatsReader::open(path);
  EXPECT_TRUE(reader) << reader.error().message();
  std::map<std::string, double> out;
  if (!reader) return out;
  for (const stats::StatsEntry& e : reader->snapshot()) {
    std::string key = e.name;
    for (const stats::StatsLabel& l : e.labels) key += "{" + l.name + "=" + l.value + "}";
    out[key] = e.value();
  }
  return out;
}

TEST(ProcessorStats, SegmentCarriesExactDropsBudgetsAndSeries) {
  ringpipe::testing::ScratchDir dir;
  const std::string raw = dir.file("raw");
  const std::string out = dir.file("metrics");
  ring::RingOptions ro;
  ro.lanes = 2;
  auto raw_ring = ring::Ring::create(raw, ro);
  ASSERT_TRUE(raw_ring);
  ASSERT_TRUE(ring::Ring::create(out, ro));

  ProcessorOptions po;
  po.inputs = {raw};
  po.output = out;
  po.engine.shards = 1;  // one shard: which sample meets the budget first is deterministic
  po.engine.max_series = 3;
  po.engine.max_series_per_metric = 2;
  po.flush_interval = 20ms;
  auto proc = Processor::create(po);
  ASSERT_TRUE(proc) << proc.error().message();
  auto segment = stats::StatsSegment::create(dir.file("agg.stats"), "agg", "processor");
  ASSERT_TRUE(segment) << segment.error().message();
  auto publisher = create_processor_publisher(*segment, **proc, po.engine);
  ASSERT_TRUE(publisher) << publisher.error().message();
  ASSERT_TRUE((*proc)->start());
  ASSERT_TRUE((*publisher)->start(20ms));

  auto producer = ring::Producer::attach(*raw_ring);
  ASSERT_TRUE(producer);
  std::vector<std::byte> buf(1 << 14);
  sample::BatchWriter w(buf, 1, 0);
  const std::string one = "1", two = "2", three = "3";
  const sample::Tag t1[] = {{"s", one}}, t2[] = {{"s", two}}, t3[] = {{"s", three}};
  ASSERT_TRUE(w.append(sample::Kind::kCounter, "a", 1, 1.0, t1));
  ASSERT_TRUE(w.append(sample::Kind::kCounter, "a", 1, 1.0, t2));
  ASSERT_TRUE(w.append(sample::Kind::kCounter, "a", 1, 1.0, t3));   // per-metric budget
  ASSERT_TRUE(w.append(sample::Kind::kGauge, "a", 5, 1.0, {}));     // type conflict
  ASSERT_TRUE(w.append(sample::Kind::kCounter, "b", -1, 1.0, {}));  // negative increment
  ASSERT_TRUE(w.append(sample::Kind::kCounter, "b", 1, 1.0, {}));
  ASSERT_TRUE(w.append(sample::Kind::kCounter, "c", 1, 1.0, {}));  // global budget
  const std::size_t n = w.finish();
  ASSERT_EQ(producer->write(sample::kSampleBatchRecord, std::span<const std::byte>(buf.data(), n), 1s),
            ring::WriteStatus::kOk);

  const std::string path = segment->path();
  ASSERT_TRUE(ringpipe::testing::wait_until([&] { return read_segment(path)["processor_samples_total"] == 7; }, 10s));
  (*proc)->stop();
  (*publisher)->stop();

  const EngineStats st = (*proc)->stats();
  auto seg = read_segment(path);
  EXPECT_EQ(seg["processor_samples_total"], 7);
  EXPECT_EQ(seg["processor_samples_applied_total"], 3);
  EXPECT_EQ(seg["processor_series_live"], 3);
  EXPECT_EQ(seg["processor_dropped_samples_total{reason=cardinality_budget}"], 2);
  EXPECT_EQ(seg["processor_dropped_samples_total{reason=type_conflict}"], 1);
  EXPECT_EQ(seg["processor_dropped_samples_total{reason=negative_counter}"], 1);
  EXPECT_EQ(seg["processor_decode_errors_total"], 0);
  EXPECT_EQ(seg["processor_max_series"], 3);
  EXPECT_EQ(seg["processor_max_series_per_metric"], 2);
  EXPECT_EQ(seg["processor_shards"], 1);
  EXPECT_EQ(seg["processor_flushes_total"], static_cast<double>(st.flushes));
  EXPECT_EQ(seg["processor_mapping_cache_hits_total"] + seg["processor_mapping_cache_misses_total"],
            static_cast<double>(st.mapping_lookups));
  EXPECT_EQ(seg["processor_samples_applied_total"], static_cast<double>(st.samples_applied));
}

TEST(ProcessorStats, RestartContinuesCountersAndUnlimitedBudgetIsInfinite) {
  ringpipe::testing::ScratchDir dir;
  ring::RingOptions ro;
  ro.lanes = 2;
  auto raw_ring = ring::Ring::create(dir.file("raw"), ro);
  ASSERT_TRUE(raw_ring);
  ASSERT_TRUE(ring::Ring::create(dir.file("out"), ro));
  const std::string path = dir.file("agg.stats");
  for (int run = 1; run <= 2; ++run) {
    ProcessorOptions po;
    po.inputs = {dir.file("raw")};
    po.output = dir.file("out");
    po.engine.max_series = SIZE_MAX;
    po.flush_interval = 20ms;
    auto proc = Processor::create(po);
    ASSERT_TRUE(proc) << proc.error().message();
    auto segment = stats::StatsSegment::create(path, "agg", "processor");
    ASSERT_TRUE(segment);
    auto publisher = create_processor_publisher(*segment, **proc, po.engine);
    ASSERT_TRUE(publisher);
    ASSERT_TRUE((*proc)->start());
    {
      auto producer = ring::Producer::attach(*raw_ring);
      ASSERT_TRUE(producer);
      std::vector<std::byte> buf(1 << 12);
      sample::BatchWriter w(buf, 1, 0);
      ASSERT_TRUE(w.append(sample::Kind::kCounter, "x", 1, 1.0, {}));
      ASSERT_TRUE(w.append(sample::Kind::kCounter, "x", 1, 1.0, {}));
      const std::size_t n = w.finish();
      ASSERT_EQ(producer->write(sample::kSampleBatchRecord, std::span<const std::byte>(buf.data(), n), 1s),
                ring::WriteStatus::kOk);
    }
    ASSERT_TRUE(ringpipe::testing::wait_until([&] { return (*proc)->stats().samples == 2; }, 10s));
    (*proc)->stop();
    (*publisher)->publish();
    auto seg = read_segment(path);
    EXPECT_EQ(seg["processor_samples_total"], 2.0 * run);
    EXPECT_TRUE(std::isinf(seg["processor_max_series"]));
  }
}

TEST(ProcessorStats, SegmentCountsRefusedNamesAndLabelsByReason) {
  ringpipe::testing::ScratchDir dir;
  const std::string raw = dir.file("raw");
  const std::string out = dir.file("metrics");
  ring::RingOptions ro;
  ro.lanes = 2;
  auto raw_ring = ring::Ring::create(raw, ro);
  ASSERT_TRUE(raw_ring);
  ASSERT_TRUE(ring::Ring::create(out, ro));

  ProcessorOptions po;
  po.inputs = {raw};
  po.output = out;
  po.engine.shards = 1;
  po.engine.max_name_bytes = 8;
  po.flush_interval = 20ms;
  auto proc = Processor::create(po);
  ASSERT_TRUE(proc) << proc.error().message();
  auto segment = stats::StatsSegment::create(dir.file("agg.stats"), "agg", "processor");
  ASSERT_TRUE(segment) << segment.error().message();
  auto publisher = create_processor_publisher(*segment, **proc, po.engine);
  ASSERT_TRUE(publisher) << publisher.error().message();
  ASSERT_TRUE((*proc)->start());
  ASSERT_TRUE((*publisher)->start(20ms));

  auto producer = ring::Producer::attach(*raw_ring);
  ASSERT_TRUE(producer);
  std::vector<std::byte> buf(1 << 14);
  sample::BatchWriter w(buf, 1, 0);
  const sample::Tag reserved[] = {{"__name__", "x"}};
  const sample::Tag owned[] = {{"quantile", "0.5"}};
  const sample::Tag twice[] = {{"x", "1"}, {"x", "2"}};
  const sample::Tag nameless[] = {{"", "v"}};
  ASSERT_TRUE(w.append(sample::Kind::kCounter, "much_too_long", 1, 1.0, {}));
  ASSERT_TRUE(w.append(sample::Kind::kCounter, "a", 1, 1.0, reserved));
  ASSERT_TRUE(w.append(sample::Kind::kTimer, "t", 1, 1.0, owned));
  ASSERT_TRUE(w.append(sample::Kind::kGauge, "g", 1, 1.0, twice));
  ASSERT_TRUE(w.append(sample::Kind::kCounter, "c", 1, 1.0, nameless));
  const std::size_t n = w.finish();
  ASSERT_EQ(producer->write(sample::kSampleBatchRecord, std::span<const std::byte>(buf.data(), n), 1s),
            ring::WriteStatus::kOk);

  const std::string path = segment->path();
  ASSERT_TRUE(ringpipe::testing::wait_until([&] { return read_segment(path)["processor_samples_total"] == 5; }, 10s));
  (*proc)->stop();
  (*publisher)->stop();

  auto seg = read_segment(path);
  EXPECT_EQ(seg["processor_dropped_samples_total{reason=name_too_long}"], 1);
  EXPECT_EQ(seg["processor_samples_applied_total"], 4);
  EXPECT_EQ(seg["processor_labels_dropped_total{reason=reserved}"], 1);
  EXPECT_EQ(seg["processor_labels_dropped_total{reason=type_owned}"], 1);
  EXPECT_EQ(seg["processor_labels_dropped_total{reason=duplicate}"], 1);
  EXPECT_EQ(seg["processor_labels_dropped_total{reason=invalid}"], 1);
}

}  // namespace
}  // namespace ringpipe::processors
