// A real raw ring filled by forked producer processes, a Processor with
// several shard threads, and a real output ring read the way an exporter
// reads it: the totals must be exact.

#include "ringpipe/processors/processor.hpp"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <thread>

#include "engine_harness.hpp"
#include "ringpipe/ring/ring.hpp"
#include "ringpipe/sample/sample_batch.hpp"
#include "test_support.hpp"

namespace ringpipe::processors {
namespace {

using namespace std::chrono_literals;

constexpr int kProducers = 3;
constexpr int kBatches = 400;
constexpr int kPerBatch = 50;
constexpr int kSeries = 97;

// Applies every record `exporter` has not read yet to `state`.
void read_all(ring::Reader& exporter, testing::ExporterState& state) {
  while (exporter.poll([&](const ring::RecordView& v) {
    state.apply_record(std::vector<std::byte>(v.payload.begin(), v.payload.end()));
  }) != 0) {
  }
}

// Child: writes kBatches batches of counter samples (value 1, or 2 at rate 0.5)
// and timer samples; exits 0 when every record was written.
int produce(const std::string& path, int id) {
  auto ring = ring::Ring::open(path);
  if (!ring) return 10;
  auto p = ring::Producer::attach(*ring);
  if (!p) return 11;
  std::vector<std::byte> buf(1 << 16);
  // Tags are views: the strings they point at must outlive every append.
  const std::string producer = "p" + std::to_string(id % 2);
  for (int b = 0; b < kBatches; ++b) {
    sample::BatchWriter w(buf, static_cast<std::uint32_t>(id), 0);
    for (int i = 0; i < kPerBatch; ++i) {
      const int n = b * kPerBatch + i;
      const std::string series = std::to_string(n % kSeries);
      const sample::Tag tags[] = {{"series", series}, {"producer", producer}};
      const bool sampled = n % 2 == 0;
      if (!w.append(sample::Kind::kCounter, "mp.events", sampled ? 1 : 1, sampled ? 0.5 : 1.0, tags)) return 12;
      if (!w.append(sample::Kind::kTimer, "mp.latency", 0.001 * (n % 100 + 1), 1.0, tags)) return 13;
    }
    const std::size_t n = w.finish();
    if (p->write(sample::kSampleBatchRecord, std::span<const std::byte>(buf.data(), n), 5s) != ring::WriteStatus::kOk) {
      return 14;
    }
  }
  return 0;
}

TEST(ProcessorMultiprocess, RawRingToOutputRingKeepsExactTotals) {
  ringpipe::testing::ScratchDir dir;
  const std::string raw = dir.file("raw");
  const std::string out = dir.file("metrics");
  ring::RingOptions ro;
  ro.lane_capacity_bytes = 1 << 20;
  ro.lanes = 8;
  ro.overflow = ring::Overflow::kBlock;
  ASSERT_TRUE(ring::Ring::create(raw, ro));
  ring::RingOptions oo = ro;
  oo.lane_capacity_bytes = 4 << 20;
  auto out_ring = ring::Ring::create(out, oo);
  ASSERT_TRUE(out_ring) << out_ring.error().message();
  auto exporter = ring::Reader::attach(*out_ring, "exporter");
  ASSERT_TRUE(exporter);

  ProcessorOptions po;
  po.inputs = {raw};
  po.output = out;
  po.engine.shards = 4;
  po.engine.mapping.rules = {[] {
    MappingRule r;
    r.match = "mp.*";
    r.name = "mp_${1}_total";
    return r;
  }()};
  po.engine.mapping.rules[0].match_metric_type = MatchMetricType::kCounter;
  po.flush_interval = 50ms;
  auto proc = Processor::create(po);
  ASSERT_TRUE(proc) << proc.error().message();
  ASSERT_TRUE((*proc)->start());

  std::vector<pid_t> kids;
  for (int i = 0; i < kProducers; ++i) {
    const pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) _exit(produce(raw, i));
    kids.push_back(pid);
  }
  for (const pid_t pid : kids) {
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFEXITED(status));
    ASSERT_EQ(WEXITSTATUS(status), 0);
  }
  const std::uint64_t expected_samples = 2ULL * kProducers * kBatches * kPerBatch;
  ASSERT_TRUE(ringpipe::testing::wait_until([&] { return (*proc)->stats().samples_applied >= expected_samples; }, 20s))
      << (*proc)->stats().samples_applied;
  (*proc)->stop();

  testing::ExporterState state;
  std::size_t records = 0;
  for (;;) {
    const std::size_t n = exporter->poll([&](const ring::RecordView& v) {
      ASSERT_EQ(v.type, metric::kMetricBatchRecord);
      state.apply_record(std::vector<std::byte>(v.payload.begin(), v.payload.end()));
      ++records;
    });
    if (n == 0) break;
  }
  EXPECT_EQ(state.decode_errors, 0);
  EXPECT_GT(records, 0u);
  double events = 0;
  double observations = 0;
  int event_series = 0;
  for (const auto& [key, s] : state.series) {
    if (s.name == "mp_events_total") {
      events += s.values[0];
      ++event_series;
      EXPECT_EQ(s.type, MetricType::kCounter);
    } else if (s.name == "mp_latency") {
      observations += s.values[0];
      EXPECT_EQ(s.type, MetricType::kSummary);
    }
  }
  // Half of the counter samples carry rate 0.5 (weight 2).
  EXPECT_EQ(events, 1.5 * kProducers * kBatches * kPerBatch);
  EXPECT_EQ(observations, 1.0 * kProducers * kBatches * kPerBatch);
  EXPECT_EQ(event_series, kSeries * 2);
  EXPECT_EQ((*proc)->stats().dropped_conflict, 0u);
  EXPECT_GE(state.snapshot_begins, 4);  // the first flush of every shard
}

TEST(ProcessorMultiprocess, ResyncFileTriggersAFullSnapshotFromEveryShard) {
  ringpipe::testing::ScratchDir dir;
  const std::string raw = dir.file("raw");
  const std::string out = dir.file("metrics");
  ring::RingOptions ro;
  ASSERT_TRUE(ring::Ring::create(raw, ro));
  auto out_ring = ring::Ring::create(out, ro);
  ASSERT_TRUE(out_ring);
  auto exporter = ring::Reader::attach(*out_ring, "exporter");
  ASSERT_TRUE(exporter);
  ProcessorOptions po;
  po.inputs = {raw};
  po.output = out;
  po.engine.shards = 2;
  po.engine.snapshot_every_flushes = 0;
  po.flush_interval = 20ms;
  auto proc = Processor::create(po);
  ASSERT_TRUE(proc) << proc.error().message();
  ASSERT_TRUE((*proc)->start());
  testing::ExporterState state;
  auto drain = [&] { read_all(*exporter, state); };
  ASSERT_TRUE(ringpipe::testing::wait_until(
      [&] {
        drain();
        return state.snapshot_ends >= 2;
      },
      5s));
  std::ofstream(out + ".resync").put('\n');
  ASSERT_TRUE(ringpipe::testing::wait_until(
      [&] {
        drain();
        return state.snapshot_ends >= 4;
      },
      5s));
  EXPECT_FALSE(std::ifstream(out + ".resync").good());
  (*proc)->stop();
}

// An output ring full for longer than the processor's whole output timeout
// (an exporter busy with a million series, or stopped): the changes it has no
// room for are owed and follow as it drains, while the input goes on being
// read. Before, the flush waited for room with the input unread, so the
// source's ring filled behind it and the source lost datagrams.
TEST(ProcessorMultiprocess, AFullOutputRingDoesNotStopTheInputAndEveryChangeFollowsAsItDrains) {
  ringpipe::testing::ScratchDir dir;
  const std::string raw = dir.file("raw");
  const std::string out = dir.file("metrics");
  ring::RingOptions ro;
  ro.lanes = 2;
  ASSERT_TRUE(ring::Ring::create(raw, ro));
  ring::RingOptions oo;
  oo.lanes = 1;
  oo.lane_capacity_bytes = 256 << 10;  // holds about 4,000 of the 20,000 changes
  auto out_ring = ring::Ring::create(out, oo);
  ASSERT_TRUE(out_ring) << out_ring.error().message();
  auto exporter = ring::Reader::attach(*out_ring, "exporter");  // gating: nothing is overwritten
  ASSERT_TRUE(exporter);

  ProcessorOptions po;
  po.inputs = {raw};
  po.output = out;
  po.engine.shards = 1;  // the input's reader flushes too: the default pipeline
  po.engine.snapshot_every_flushes = 0;
  po.flush_interval = 20ms;
  po.output_timeout = 30s;  // longer than this test waits for the input
  auto proc = Processor::create(po);
  ASSERT_TRUE(proc) << proc.error().message();
  ASSERT_TRUE((*proc)->start());

  auto ring = ring::Ring::open(raw);
  ASSERT_TRUE(ring);
  auto producer = ring::Producer::attach(*ring);
  ASSERT_TRUE(producer);
  std::vector<std::byte> buf(1 << 16);
  auto send = [&](int from, int to, double value) {
    for (int i = from; i < to;) {
      sample::BatchWriter w(buf, 1, 0);
      for (int end = std::min(to, i + 500); i < end; ++i) {
        const std::string id = std::to_string(i);
        const sample::Tag tags[] = {{"id", id}};
        ASSERT_TRUE(w.append(sample::Kind::kCounter, "full.events", value, 1.0, tags));
      }
      ASSERT_EQ(producer->write(sample::kSampleBatchRecord, std::span<const std::byte>(buf.data(), w.finish()), 5s),
                ring::WriteStatus::kOk);
    }
  };
  // The first flush is a snapshot, which waits for room (it is whole or not
  // at all): let it out while there is nothing to say.
  testing::ExporterState state;
  ASSERT_TRUE(ringpipe::testing::wait_until(
      [&] {
        read_all(*exporter, state);
        return state.snapshot_ends >= 1;
      },
      5s));
  constexpr int kFirst = 20000;
  constexpr int kLater = 1000;
  send(0, kFirst, 1);
  ASSERT_TRUE(ringpipe::testing::wait_until([&] { return (*proc)->stats().samples_applied >= kFirst; }, 10s));
  // Two flushes found the output ring full: the second counts the first's overdue changes.
  ASSERT_TRUE(ringpipe::testing::wait_until([&] { return (*proc)->stats().flush_stalls >= 1; }, 10s));
  // The exporter has read nothing, and the input is still read: new series
  // and more of the old ones.
  send(kFirst, kFirst + kLater, 1);
  send(0, kLater, 2);
  EXPECT_TRUE(
      ringpipe::testing::wait_until([&] { return (*proc)->stats().samples_applied >= kFirst + 2 * kLater; }, 5s))
      << (*proc)->stats().samples_applied << " of " << kFirst + 2 * kLater
      << " samples applied while the output ring was full";

  // The exporter reads: every change follows, each series at its total.
  auto counted = [&] {
    double total = 0;
    for (const auto& [key, s] : state.series) total += s.values.empty() ? 0 : s.values[0];
    return total;
  };
  const double expected = kFirst + 3.0 * kLater;
  EXPECT_TRUE(ringpipe::testing::wait_until(
      [&] {
        read_all(*exporter, state);
        return state.series.size() == kFirst + kLater && counted() == expected;
      },
      20s))
      << state.series.size() << " series, total " << counted();
  (*proc)->stop();
  EXPECT_EQ(state.decode_errors, 0);
  EXPECT_EQ(state.series.size(), static_cast<std::size_t>(kFirst + kLater));
  EXPECT_EQ(counted(), expected);
  EXPECT_EQ(state.value("full_events{id=0}"), 3);
  EXPECT_EQ(state.value("full_events{id=" + std::to_string(kFirst + kLater - 1) + "}"), 1);
  // Owed is not dropped: the output lane counts no refused record.
  for (const ring::LaneStats& l : out_ring->stats().lane) EXPECT_EQ(l.dropped_records, 0u) << "lane " << l.lane;
}

TEST(ProcessorMultiprocess, RefusesAnOutputRingWithTooFewLanes) {
  ringpipe::testing::ScratchDir dir;
  ring::RingOptions ro;
  ro.lanes = 2;
  ASSERT_TRUE(ring::Ring::create(dir.file("raw"), ro));
  ASSERT_TRUE(ring::Ring::create(dir.file("out"), ro));
  ProcessorOptions po;
  po.inputs = {dir.file("raw")};
  po.output = dir.file("out");
  po.engine.shards = 4;
  auto proc = Processor::create(po);
  ASSERT_FALSE(proc);
  EXPECT_NE(proc.error().context.find("lanes"), std::string::npos);
}

}  // namespace
}  // namespace ringpipe::processors
