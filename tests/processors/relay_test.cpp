// The relay processor (type: relay) on real rings: every sample forwarded
// with its own timestamp, unaggregated, in order, and nothing lost or
// repeated when the output is full or the relay is killed.

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <map>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "engine_harness.hpp"
#include "ringpipe/metric/metric_record.hpp"
#include "ringpipe/processors/processor.hpp"
#include "ringpipe/ring/ring.hpp"
#include "ringpipe/sample/sample_batch.hpp"
#include "test_support.hpp"

namespace ringpipe::processors {
namespace {

using namespace std::chrono_literals;

// One relayed entry as an exporter reads it.
struct Got {
  std::string name;
  std::string labels;
  metric::MetricType type;
  std::uint16_t flags;
  std::string help;
  std::string unit;
  std::string family;
  double value;
  std::int64_t ts;
  std::uint16_t version;
};

struct Rings {
  ringpipe::testing::ScratchDir dir;
  std::string raw = dir.file("raw");
  std::string out = dir.file("metrics");
  std::optional<ring::Ring> raw_ring;
  std::optional<ring::Ring> out_ring;
  std::optional<ring::Reader> exporter;
  explicit Rings(std::uint64_t out_lane = 1 << 20, std::uint32_t out_max_record = 0) {
    ring::RingOptions ro;
    ro.lane_capacity_bytes = 1 << 20;
    ro.lanes = 4;
    ro.overflow = ring::Overflow::kBlock;
    raw_ring.emplace(std::move(*ring::Ring::create(raw, ro)));
    ring::RingOptions oo = ro;
    oo.lane_capacity_bytes = out_lane;
    oo.max_record_bytes = out_max_record;
    out_ring.emplace(std::move(*ring::Ring::create(out, oo)));
    exporter.emplace(std::move(*ring::Reader::attach(*out_ring, "exporter")));
  }
  ProcessorOptions options() const {
    ProcessorOptions po;
    po.relay = true;
    po.inputs = {raw};
    po.output = out;
    return po;
  }
  // Everything in the output ring now, in ring order.
  std::vector<Got> drain() {
    std::vector<Got> got;
    while (exporter->poll([&](const ring::RecordView& v) {
      metric::MetricBatchReader r(v.payload);
      EXPECT_EQ(r.error(), metric::MetricDecodeError::kNone);
      while (auto e = r.next()) {
        Got g{std::string(e->name),
              {},
              e->type,
              e->flags,
              std::string(e->help),
              std::string(e->unit),
              std::string(e->family),
              e->value(0),
              e->timestamp_ns,
              r.header().format_version};
        e->for_each_label(
            [&](const metric::Label& l) { g.labels += std::string(l.name) + "=" + std::string(l.value) + ","; });
        got.push_back(std::move(g));
      }
      EXPECT_EQ(r.error(), metric::MetricDecodeError::kNone);
    }) != 0) {
    }
    return got;
  }
};

struct In {
  sample::Kind kind = sample::Kind::kGauge;
  std::string name;
  double value = 0;
  std::int64_t ts = 0;
  std::string host = "a";
  const sample::Family* family = nullptr;
};

bool write_batch(ring::Ring& ring, const std::vector<In>& samples, std::int64_t received_ns) {
  auto p = ring::Producer::attach(ring);
  if (!p) return false;
  std::vector<std::byte> buf(1 << 16);
  sample::BatchWriter w(buf, 1, received_ns);
  for (const In& s : samples) {
    const sample::Tag tags[] = {{"host", s.host}};
    if (!w.append(s.kind, s.name, s.value, 1.0, tags, s.kind == sample::Kind::kSet ? "m" : "", s.ts, s.family)) {
      return false;
    }
  }
  const std::size_t n = w.finish();
  return p->write(sample::kSampleBatchRecord, std::span<const std::byte>(buf.data(), n), 5s) == ring::WriteStatus::kOk;
}

TEST(Relay, ForwardsEverySampleInOrderWithItsOwnTimestampUnaggregated) {
  Rings r;
  auto proc = Processor::create(r.options());
  ASSERT_TRUE(proc) << proc.error().message();
  ASSERT_TRUE((*proc)->start());
  const std::int64_t t0 = 1'700'000'000'000'000'000;
  const sample::Family counter{sample::FamilyType::kCounter, 6, "Jobs done.", "jobs"};
  ASSERT_TRUE(write_batch(*r.raw_ring,
                          {{.name = "temp", .value = 20, .ts = t0 + 3'000'000'000},
                           {.name = "temp", .value = 21, .ts = t0 + 1'000'000'000},  // older: kept, in input order
                           {.name = "temp", .value = 22, .ts = 0},                   // no time: the batch's
                           {.name = "temp", .value = 23, .ts = t0 + 5'000'000'000, .host = "b"},
                           {.name = "job:done:total", .value = 7, .ts = t0, .family = &counter}},
                          t0 + 9'000'000'000));
  ASSERT_TRUE(write_batch(*r.raw_ring, {{.name = "temp", .value = 20, .ts = t0 + 3'000'000'000}}, t0));
  ASSERT_TRUE(ringpipe::testing::wait_until([&] { return (*proc)->stats().entries_written >= 6; }, 10s));
  (*proc)->stop();

  const std::vector<Got> got = r.drain();
  ASSERT_EQ(got.size(), 6u) << "one entry per sample: none aggregated, none dropped";
  const double values[] = {20, 21, 22, 23, 7, 20};
  const std::int64_t times[] = {t0 + 3'000'000'000, t0 + 1'000'000'000, t0 + 9'000'000'000, t0 + 5'000'000'000, t0,
                                t0 + 3'000'000'000};
  for (std::size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(got[i].value, values[i]) << i;
    EXPECT_EQ(got[i].ts, times[i]) << i;
    EXPECT_NE(got[i].flags & metric::kEntryTimestamp, 0) << i;
    EXPECT_EQ(got[i].version, metric::kMetricFormatVersionTimestamps);
  }
  EXPECT_EQ(got[0].name, "temp");
  EXPECT_EQ(got[0].type, metric::MetricType::kGauge);
  EXPECT_EQ(got[0].labels, "host=a,");
  EXPECT_EQ(got[3].labels, "host=b,");
  EXPECT_EQ(got[0].flags & metric::kEntryPromSample, 0);
  // A Prometheus sample keeps its name (':' included), type, HELP and UNIT.
  EXPECT_EQ(got[4].name, "job:done:total");
  EXPECT_EQ(got[4].family, "job:done");
  EXPECT_EQ(got[4].type, metric::MetricType::kCounter);
  EXPECT_NE(got[4].flags & metric::kEntryPromSample, 0);
  EXPECT_EQ(got[4].help, "Jobs done.");
  EXPECT_EQ(got[4].unit, "jobs");
  const EngineStats st = (*proc)->stats();
  EXPECT_EQ(st.samples, 6u);
  EXPECT_EQ(st.samples_applied, 6u);
  EXPECT_EQ(st.dropped_not_relayable, 0u);
}

TEST(Relay, DropsAndCountsSamplesThatOnlyMeanSomethingAggregated) {
  Rings r;
  auto proc = Processor::create(r.options());
  ASSERT_TRUE(proc) << proc.error().message();
  ASSERT_TRUE((*proc)->start());
  ASSERT_TRUE(write_batch(*r.raw_ring,
                          {{.kind = sample::Kind::kCounter, .name = "hits", .value = 1},
                           {.kind = sample::Kind::kTimer, .name = "lat", .value = 0.2},
                           {.kind = sample::Kind::kSet, .name = "users", .value = 0},
                           {.kind = sample::Kind::kGaugeDelta, .name = "level", .value = -1},
                           {.name = "level", .value = 4, .ts = 1'000'000'000}},
                          5'000'000'000));
  ASSERT_TRUE(ringpipe::testing::wait_until([&] { return (*proc)->stats().samples >= 5; }, 10s));
  (*proc)->stop();
  const std::vector<Got> got = r.drain();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].name, "level");
  EXPECT_EQ(got[0].value, 4);
  EXPECT_EQ(got[0].ts, 1'000'000'000);
  EXPECT_EQ((*proc)->stats().dropped_not_relayable, 4u);
}

// Writes native histogram samples of `name{host=a}`, one per {ts, n}:
// count n, sum n/2, zero count 1, buckets {key 1: n-2, key 3: 1} and
// negative {key -2: 0.5} (a float count, as a float histogram has).
bool write_native(ring::Ring& ring, std::string_view name, const sample::Family& family,
                  const std::vector<std::pair<std::int64_t, double>>& points, std::size_t extra_buckets = 0) {
  auto p = ring::Producer::attach(ring);
  if (!p) return false;
  std::vector<std::byte> buf(1 << 16);
  sample::BatchWriter w(buf, 1, 1);
  const sample::Tag tags[] = {{"host", "a"}};
  for (const auto& [ts, n] : points) {
    std::vector<std::pair<std::int32_t, double>> pos = {{1, n - 2}, {3, 1}};
    for (std::size_t i = 0; i < extra_buckets; ++i) pos.emplace_back(static_cast<std::int32_t>(10 + i), 1);
    const std::pair<std::int32_t, double> neg[] = {{-2, 0.5}};
    sample::NativeSample ns;
    ns.schema = 2;
    ns.zero_threshold = 0.001;
    ns.zero_count = 1;
    ns.count = n;
    ns.sum = n / 2;
    ns.positive = pos;
    ns.negative = neg;
    if (!w.append_native(name, tags, ns, family, ts)) return false;
  }
  const std::size_t used = w.finish();
  return p->write(sample::kSampleBatchRecord, std::span<const std::byte>(buf.data(), used), 5s) ==
         ring::WriteStatus::kOk;
}

TEST(Relay, ForwardsNativeHistogramSamplesAsTheyCameAtTheirOwnTimes) {
  Rings r;
  auto proc = Processor::create(r.options());
  ASSERT_TRUE(proc) << proc.error().message();
  ASSERT_TRUE((*proc)->start());
  const std::int64_t t0 = 1'700'000'000'000'000'000;
  const sample::Family hist{sample::FamilyType::kHistogram, 0, "Latency.", ""};
  const sample::Family gauge_hist{sample::FamilyType::kGaugeHistogram, 0, "", ""};
  ASSERT_TRUE(write_native(*r.raw_ring, "rpc_seconds", hist,
                           {{t0 + 2'000'000'000, 10}, {t0 + 1'000'000'000, 12}, {t0 + 3'000'000'000, 4}}));
  ASSERT_TRUE(write_native(*r.raw_ring, "queue_depth", gauge_hist, {{t0, 7}}));
  ASSERT_TRUE(ringpipe::testing::wait_until([&] { return (*proc)->stats().entries_written >= 4; }, 10s));
  (*proc)->stop();

  struct Native {
    std::string name;
    metric::MetricType type;
    std::uint16_t flags;
    std::int64_t ts;
    std::vector<double> values;  // the native part, then count, sum
  };
  std::vector<Native> got;
  while (r.exporter->poll([&](const ring::RecordView& v) {
    metric::MetricBatchReader rd(v.payload);
    EXPECT_EQ(rd.header().format_version, metric::kMetricFormatVersionNative);
    while (auto e = rd.next()) {
      Native n{std::string(e->name), e->type, e->flags, e->timestamp_ns, {}};
      n.values = {static_cast<double>(e->native.schema), e->native.zero_threshold, e->native.zero_count,
                  static_cast<double>(e->native.positive_count), static_cast<double>(e->native.negative_count)};
      for (std::size_t i = 0; i < e->native.positive_count + e->native.negative_count; ++i) {
        n.values.push_back(e->native.pair(i).first);
        n.values.push_back(e->native.pair(i).second);
      }
      for (std::size_t i = 0; i < e->value_count; ++i) n.values.push_back(e->value(i));
      got.push_back(std::move(n));
    }
    EXPECT_EQ(rd.error(), metric::MetricDecodeError::kNone);
  }) != 0) {
  }
  ASSERT_EQ(got.size(), 4u) << "one entry per native sample, none merged";
  const std::int64_t times[] = {t0 + 2'000'000'000, t0 + 1'000'000'000, t0 + 3'000'000'000, t0};
  const double counts[] = {10, 12, 4, 7};
  for (std::size_t i = 0; i < got.size(); ++i) {
    const double n = counts[i];
    EXPECT_EQ(got[i].ts, times[i]) << i;
    EXPECT_EQ(got[i].flags & (metric::kEntryNative | metric::kEntryPromSample | metric::kEntryTimestamp),
              metric::kEntryNative | metric::kEntryPromSample | metric::kEntryTimestamp)
        << i;
    EXPECT_EQ(got[i].values, (std::vector<double>{2, 0.001, 1, 2, 1, 1, n - 2, 3, 1, -2, 0.5, n, n / 2})) << i;
  }
  EXPECT_EQ(got[0].name, "rpc_seconds");
  EXPECT_EQ(got[0].type, metric::MetricType::kHistogram);
  EXPECT_EQ(got[3].name, "queue_depth");
  EXPECT_EQ(got[3].type, metric::MetricType::kGaugeHistogram);
  const EngineStats st = (*proc)->stats();
  EXPECT_EQ(st.samples_applied, 4u);
  EXPECT_EQ(st.dropped_not_relayable, 0u);
}

TEST(Relay, CountsANativeHistogramNoOutputRecordCanHold) {
  Rings r(1 << 20, 4096);
  auto proc = Processor::create(r.options());
  ASSERT_TRUE(proc) << proc.error().message();
  ASSERT_TRUE((*proc)->start());
  const sample::Family hist{sample::FamilyType::kHistogram, 0, "", ""};
  // 300 buckets: 600 values, 4.8 KB, past a 4 KiB record; then one that fits.
  ASSERT_TRUE(write_native(*r.raw_ring, "big", hist, {{1'000'000'000, 400}}, 300));
  ASSERT_TRUE(write_native(*r.raw_ring, "small", hist, {{2'000'000'000, 5}}));
  ASSERT_TRUE(ringpipe::testing::wait_until([&] { return (*proc)->stats().samples >= 2; }, 10s));
  (*proc)->stop();
  const std::vector<Got> got = r.drain();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].name, "small");
  EXPECT_EQ(got[0].ts, 2'000'000'000);
  const EngineStats st = (*proc)->stats();
  EXPECT_EQ(st.dropped_native_too_large, 1u);
  EXPECT_EQ(st.dropped_labels_too_long, 0u);
  EXPECT_EQ(st.samples_applied, 1u);
}

// A rule that renames a native histogram sample makes its family a plain
// gauge's, which has no native part: dropped and counted; a rule that only
// adds a label keeps it a histogram.
TEST(Relay, CountsANativeHistogramARuleRenamed) {
  Rings r;
  ProcessorOptions po = r.options();
  MappingRule rename;
  rename.match = "old.*";
  rename.name = "new_${1}";
  MappingRule label;
  label.match = "kept_seconds";
  label.name = "kept_seconds";  // the name it came with: still its family's
  label.labels = {{"team", "x"}};
  po.engine.mapping.rules = {rename, label};
  auto proc = Processor::create(po);
  ASSERT_TRUE(proc) << proc.error().message();
  ASSERT_TRUE((*proc)->start());
  const sample::Family hist{sample::FamilyType::kHistogram, 0, "", ""};
  ASSERT_TRUE(write_native(*r.raw_ring, "old.seconds", hist, {{1'000'000'000, 5}}));
  ASSERT_TRUE(write_native(*r.raw_ring, "kept_seconds", hist, {{2'000'000'000, 6}}));
  ASSERT_TRUE(ringpipe::testing::wait_until([&] { return (*proc)->stats().samples >= 2; }, 10s));
  (*proc)->stop();
  const std::vector<Got> got = r.drain();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].name, "kept_seconds");
  EXPECT_EQ(got[0].labels, "host=a,team=x,");
  EXPECT_EQ(got[0].type, metric::MetricType::kHistogram);
  EXPECT_EQ((*proc)->stats().dropped_native_renamed, 1u);
}

// An aggregating Processor with several shards: a record of many series
// with native histogram samples among them, none first. Each shard's batch
// holds the labels (and a native sample's values after them) of samples
// mapped in another place first; every histogram must arrive as it was sent.
TEST(AggregatingProcessor, NativeHistogramsAmongOtherSeriesOfOneRecordArriveWholeFromEveryShard) {
  Rings r;
  ProcessorOptions po = r.options();
  po.relay = false;
  po.engine.shards = 4;
  po.flush_interval = 50ms;
  auto proc = Processor::create(po);
  ASSERT_TRUE(proc) << proc.error().message();
  ASSERT_TRUE((*proc)->start());
  auto p = ring::Producer::attach(*r.raw_ring);
  ASSERT_TRUE(p);
  std::vector<std::byte> buf(1 << 16);
  sample::BatchWriter w(buf, 1, 1);
  const sample::Family hist{sample::FamilyType::kHistogram, 0, "", ""};
  std::vector<std::vector<std::pair<std::int32_t, double>>> pos(24);
  for (int i = 0; i < 24; ++i) {
    const std::string host = "h" + std::to_string(i);
    const sample::Tag tags[] = {{"host", host}};
    ASSERT_TRUE(w.append(sample::Kind::kGauge, "g", i, 1, tags));
    for (int k = 0; k <= i % 5; ++k) pos[static_cast<std::size_t>(i)].emplace_back(k * 3 - i, 1 + k + i);
    sample::NativeSample n;
    n.schema = i % 4;
    n.count = 1000 + i;
    n.sum = i / 4.0;
    n.positive = pos[static_cast<std::size_t>(i)];
    ASSERT_TRUE(w.append_native("lat", tags, n, hist, 1'000'000'000));
  }
  ASSERT_EQ(p->write(sample::kSampleBatchRecord, std::span<const std::byte>(buf.data(), w.finish()), 5s),
            ring::WriteStatus::kOk);
  processors::testing::ExporterState st;
  ASSERT_TRUE(ringpipe::testing::wait_until(
      [&] {
        while (r.exporter->poll([&](const ring::RecordView& v) {
          st.apply_record(std::vector<std::byte>(v.payload.begin(), v.payload.end()));
        }) != 0) {
        }
        return st.series.size() >= 48;
      },
      10s));
  (*proc)->stop();
  EXPECT_EQ(st.decode_errors, 0);
  for (int i = 0; i < 24; ++i) {
    const std::string key = "lat{host=h" + std::to_string(i) + "}";
    ASSERT_TRUE(st.has(key)) << key;
    const processors::testing::SeriesState& s = st.series.at(key);
    EXPECT_EQ(s.values, (std::vector<double>{1000.0 + i, i / 4.0})) << key;
    EXPECT_EQ(s.schema, i % 4) << key;
    EXPECT_EQ(s.positive, pos[static_cast<std::size_t>(i)]) << key;
    EXPECT_EQ(st.value("g{host=h" + std::to_string(i) + "}"), i);
  }
}

// The output lane holds a few records; the exporter reads only after the
// relay has filled it. Every sample arrives once, in order.
TEST(Relay, WaitsForOutputSpaceWithoutLosingOrRepeatingSamples) {
  Rings r(16 << 10, 4096);
  ProcessorOptions po = r.options();
  po.output_timeout = 20ms;
  auto proc = Processor::create(po);
  ASSERT_TRUE(proc) << proc.error().message();
  ASSERT_TRUE((*proc)->start());
  constexpr int kRecords = 40;
  constexpr int kPer = 50;  // about 3 KiB of entries per record: an output record holds some 50
  for (int b = 0; b < kRecords; ++b) {
    std::vector<In> batch;
    for (int i = 0; i < kPer; ++i) {
      const int n = b * kPer + i;
      batch.push_back({.name = "seq", .value = double(n), .ts = 1'000'000'000LL * (n + 1)});
    }
    ASSERT_TRUE(write_batch(*r.raw_ring, batch, 1));
  }
  ASSERT_TRUE(ringpipe::testing::wait_until([&] { return (*proc)->stats().flush_stalls > 2; }, 10s))
      << "the output never filled: the test would not test the wait";
  std::vector<Got> got;
  ASSERT_TRUE(ringpipe::testing::wait_until(
      [&] {
        for (Got& g : r.drain()) got.push_back(std::move(g));
        return got.size() >= std::size_t{kRecords} * kPer;
      },
      20s));
  (*proc)->stop();
  for (Got& g : r.drain()) got.push_back(std::move(g));
  ASSERT_EQ(got.size(), std::size_t{kRecords} * kPer);
  for (std::size_t i = 0; i < got.size(); ++i) {
    ASSERT_EQ(got[i].value, double(i));
    ASSERT_EQ(got[i].ts, 1'000'000'000LL * std::int64_t(i + 1));
  }
}

// A relay process killed at random instants while a producer writes: after
// a restart every sample is in the output, in order per series, and a sample
// appears twice only if the relay died between publishing it and moving its
// input cursor: at most one poll (kRelayPollRecords records) per kill.
TEST(Relay, SurvivesSigkillLosingNothingAndRepeatingAtMostOnePoll) {
  Rings r(4 << 20);
  constexpr int kRecords = 600;
  constexpr int kPer = 20;
  constexpr int kKills = 5;
  auto run_child = [&] {
    const pid_t pid = fork();
    if (pid == 0) {
      auto proc = Processor::create(r.options());
      if (!proc || !(*proc)->start()) _exit(3);
      for (;;) std::this_thread::sleep_for(1s);
    }
    return pid;
  };
  // One thread only: the children fork from it.
  pid_t child = run_child();
  ASSERT_GT(child, 0);
  int kills = 0;
  for (int b = 0; b < kRecords; ++b) {
    std::vector<In> batch;
    for (int i = 0; i < kPer; ++i) {
      const int n = b * kPer + i;
      batch.push_back({.name = "k", .value = double(n), .ts = 1'000'000LL * (n + 1), .host = std::to_string(i % 3)});
    }
    ASSERT_TRUE(write_batch(*r.raw_ring, batch, 1));
    std::this_thread::sleep_for(200us);
    if (b % (kRecords / (kKills + 1)) == kRecords / (kKills + 1) - 1 && kills < kKills) {
      std::this_thread::sleep_for(std::chrono::microseconds(300 * b % 2000));
      ASSERT_EQ(::kill(child, SIGKILL), 0);
      int status = 0;
      ASSERT_EQ(::waitpid(child, &status, 0), child);
      ASSERT_TRUE(WIFSIGNALED(status));
      ++kills;
      child = run_child();
      ASSERT_GT(child, 0);
    }
  }
  ASSERT_EQ(kills, kKills);
  std::vector<Got> got;
  std::map<std::int64_t, int> seen;
  const bool complete = ringpipe::testing::wait_until(
      [&] {
        for (Got& g : r.drain()) {
          ++seen[g.ts];
          got.push_back(std::move(g));
        }
        return seen.size() >= std::size_t{kRecords} * kPer;
      },
      30s);
  ::kill(child, SIGKILL);
  ::waitpid(child, nullptr, 0);
  ASSERT_TRUE(complete) << seen.size() << " of " << kRecords * kPer << " samples arrived";
  std::size_t repeated = 0;
  for (const auto& [ts, n] : seen) {
    ASSERT_LE(n, 1 + kKills) << "sample at " << ts;
    repeated += static_cast<std::size_t>(n - 1);
  }
  EXPECT_LE(repeated, std::size_t{kKills} * kPer * 64);
  // In order per series: a repeat starts over inside the last poll, never
  // before a sample the relay had already moved past for good.
  std::map<std::string, std::int64_t> high;
  for (const Got& g : got) {
    EXPECT_EQ(g.value, double(g.ts / 1'000'000 - 1));
    auto& h = high[g.labels];
    if (g.ts < h) {
      EXPECT_GE(g.ts, h - 1'000'000LL * kPer * 64) << "a repeat reached back beyond one poll";
    }
    h = std::max(h, g.ts);
  }
}

}  // namespace
}  // namespace ringpipe::processors
