// Crash-safe processor state: a processor child is SIGKILLed at random
// instants while a producer child writes known samples into a real block
// ring; restarted on the same state dir and reader name, the final totals
// must be exact (nothing lost, nothing counted twice).

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <random>
#include <thread>

#include "engine_harness.hpp"
#include "engine_parts.hpp"
#include "family_registry.hpp"
#include "ringpipe/common/unique_fd.hpp"
#include "ringpipe/processors/processor.hpp"
#include "ringpipe/ring/ring.hpp"
#include "ringpipe/sample/sample_batch.hpp"
#include "series_mapper.hpp"
#include "shard.hpp"
#include "state_layout.hpp"
#include "state_store.hpp"
#include "test_support.hpp"

namespace ringpipe::processors {
namespace {

using namespace std::chrono_literals;

constexpr int kBatches = 3000;
constexpr int kPerBatch = 40;
constexpr int kSeries = 61;

int produce(const std::string& path) {
  auto ring = ring::Ring::open(path);
  if (!ring) return 10;
  auto p = ring::Producer::attach(*ring);
  if (!p) return 11;
  std::vector<std::byte> buf(1 << 16);
  for (int b = 0; b < kBatches; ++b) {
    sample::BatchWriter w(buf, 0, 0);
    for (int i = 0; i < kPerBatch; ++i) {
      const int n = b * kPerBatch + i;
      const std::string series = std::to_string(n % kSeries);
      const sample::Tag tags[] = {{"series", series}};
      if (!w.append(sample::Kind::kCounter, "st.events", 1, 1.0, tags)) return 12;
      if (!w.append(sample::Kind::kTimer, "st.latency", 0.001 * (n % 100 + 1), 1.0, tags)) return 13;
      if (!w.append(sample::Kind::kGauge, "st.level", n % kSeries, 1.0, tags)) return 14;
    }
    // Paced to outlast the kill rounds (at most 8 x 280 ms), so every kill
    // lands while samples flow and the last processor still has work.
    std::this_thread::sleep_for(1ms);
    const std::size_t n = w.finish();
    if (p->write(sample::kSampleBatchRecord, std::span<const std::byte>(buf.data(), n), 60s) !=
        ring::WriteStatus::kOk) {
      return 15;
    }
  }
  return 0;
}

ProcessorOptions options(const std::string& raw, const std::string& out, const std::string& state) {
  ProcessorOptions po;
  po.inputs = {raw};
  po.output = out;
  po.engine.shards = 3;
  po.state_dir = state;
  po.reader_name = "proc";
  po.flush_interval = 20ms;
  po.batch_samples = 512;
  // st_latency is a histogram with native buckets beside the classic ones.
  po.engine.mapping.defaults.observer_type = ObserverType::kHistogram;
  po.engine.mapping.defaults.native_bucket_factor = 1.1;
  return po;
}

TEST(ProcessorState, SurvivesSigkillAtRandomInstantsWithExactTotals) {
  ringpipe::testing::ScratchDir dir;
  const std::string raw = dir.file("raw");
  const std::string out = dir.file("metrics");
  const std::string state = dir.file("proc.state");
  ring::RingOptions ro;
  ro.lane_capacity_bytes = 1 << 18;  // small: the producer blocks on the processor often
  ro.lanes = 4;
  ro.overflow = ring::Overflow::kBlock;
  ro.reader_timeout = std::chrono::milliseconds(60'000);
  ASSERT_TRUE(ring::Ring::create(raw, ro));
  ring::RingOptions oo;
  oo.lane_capacity_bytes = 1 << 20;
  oo.lanes = 4;
  oo.overflow = ring::Overflow::kOverwrite;
  auto out_ring = ring::Ring::create(out, oo);
  ASSERT_TRUE(out_ring);

  {
    // The processor's readers exist before the first sample: a block ring
    // holds data only for readers it knows, and this test counts every sample.
    auto raw_ring = ring::Ring::open(raw);
    ASSERT_TRUE(raw_ring);
    ASSERT_TRUE(ring::Reader::attach(*raw_ring, "proc.c"));
    ASSERT_TRUE(ring::Reader::attach(*raw_ring, "proc"));
  }

  const pid_t producer = fork();
  ASSERT_GE(producer, 0);
  if (producer == 0) _exit(produce(raw));

  std::mt19937 rng(12345);
  int kills = 0;
  for (int round = 0; round < 8; ++round) {
    const pid_t proc = fork();
    ASSERT_GE(proc, 0);
    if (proc == 0) {
      auto p = Processor::create(options(raw, out, state));
      if (!p || !(*p)->start()) _exit(20);
      for (;;) std::this_thread::sleep_for(1s);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(30 + rng() % 250));
    ::kill(proc, SIGKILL);
    int status = 0;
    ASSERT_EQ(waitpid(proc, &status, 0), proc);
    ASSERT_TRUE(WIFSIGNALED(status)) << "processor child exited early with " << WEXITSTATUS(status);
    ++kills;
  }
  EXPECT_EQ(kills, 8);

  // The last processor runs to the end, with an exporter reading from now on.
  auto exporter = ring::Reader::attach(*out_ring, "exporter", ring::ReaderOptions{ring::StartAt::kLatest, false, {}});
  ASSERT_TRUE(exporter);
  auto p = Processor::create(options(raw, out, state));
  ASSERT_TRUE(p) << p.error().message();
  ASSERT_TRUE((*p)->start());
  int status = 0;
  ASSERT_EQ(waitpid(producer, &status, 0), producer);
  ASSERT_TRUE(WIFEXITED(status));
  ASSERT_EQ(WEXITSTATUS(status), 0);

  const double expected = 1.0 * kBatches * kPerBatch;
  testing::ExporterState st;
  double native = 0;  // the native buckets' observations, zero bucket included
  auto totals = [&](double& events, double& observations, int& levels) {
    while (exporter->poll([&](const ring::RecordView& v) {
      st.apply_record(std::vector<std::byte>(v.payload.begin(), v.payload.end()));
    }) != 0) {
    }
    events = observations = native = 0;
    levels = 0;
    for (const auto& [key, s] : st.series) {
      if (s.name == "st_events") events += s.values[0];
      if (s.name == "st_latency") {
        observations += s.values[0];
        native += s.zero_count;
        for (const auto& [k, c] : s.positive) native += c;
      }
      if (s.name == "st_level") ++levels;
    }
  };
  double events = 0, observations = 0;
  int levels = 0;
  // Bounded wait; the exact comparisons below decide.
  (void)ringpipe::testing::wait_until(
      [&] {
        totals(events, observations, levels);
        return events >= expected && observations >= expected;
      },
      60s);
  std::this_thread::sleep_for(200ms);  // a double count would show up after the catch-up
  totals(events, observations, levels);
  (*p)->stop();
  totals(events, observations, levels);
  EXPECT_EQ(events, expected);
  EXPECT_EQ(observations, expected);
  EXPECT_EQ(native, expected);  // the native buckets survive the kills as the classic ones do
  EXPECT_EQ(levels, kSeries);
  EXPECT_EQ(st.decode_errors, 0);
  const EngineStats es = (*p)->stats();  // shards publish their stats at each flush
  EXPECT_GT(es.state_series_restored, 0u);
  EXPECT_GT(es.samples_applied, 0u);
}

TEST(ProcessorState, ASecondProcessorOnTheSameStateDirFailsAtCreateNamingTheLiveOne) {
  ringpipe::testing::ScratchDir dir;
  const std::string raw = dir.file("raw");
  const std::string out = dir.file("metrics");
  const std::string state = dir.file("proc.state");
  ring::RingOptions ro;
  ro.lane_capacity_bytes = 1 << 16;
  ro.lanes = 4;
  ASSERT_TRUE(ring::Ring::create(raw, ro));
  ASSERT_TRUE(ring::Ring::create(out, ro));
  auto first = Processor::create(options(raw, out, state));
  ASSERT_TRUE(first) << first.error().message();
  ASSERT_TRUE((*first)->start());
  // Another open file description of the same store: refused as a second
  // process would be, before it touches the stores or the readers.
  auto second = Processor::create(options(raw, out, state));
  ASSERT_FALSE(second);
  const std::string why = second.error().message();
  EXPECT_NE(why.find("in use by another live process (pid " + std::to_string(::getpid()) + ")"), std::string::npos)
      << why;
  for (const auto& e : std::filesystem::directory_iterator(state)) {
    EXPECT_EQ(e.path().string().find(".rejected"), std::string::npos) << e.path();
  }
}

detail::StateGeometry small_geometry() {
  detail::StateGeometry g;
  g.slot_capacity = 64;
  g.arena_bytes = 1 << 16;
  g.undo_bytes = 1 << 16;
  return g;
}

// A store file in a scratch directory, opened as a (re)started process would.
struct StoreFile {
  Result<std::unique_ptr<detail::StateStore>> open() {
    return detail::StateStore::open(path, small_geometry(), &restored, &rejected);
  }
  ringpipe::testing::ScratchDir dir;
  std::string path = dir.file("s.state");
  bool restored = false;
  std::string rejected;
};

// Slot i holds `value`, live, committed.
void commit_live_slot(detail::StateStore& st, std::size_t i, double value) {
  detail::StateSlot& sl = st.slots()[i];
  ASSERT_TRUE(st.log(st.offset_of(&sl), sizeof sl));
  sl.value = value;
  sl.live = 1;
  st.commit();
}

TEST(StateStore, RollsBackAnUnfinishedTransactionOnOpen) {
  StoreFile f;
  {
    auto st = f.open();
    ASSERT_TRUE(st) << st.error().message();
    EXPECT_FALSE(f.restored);
    commit_live_slot(**st, 3, 10);
    // Half a batch: two changes logged and made, then the process "dies".
    detail::StateSlot& sl = (*st)->slots()[3];
    ASSERT_TRUE((*st)->log((*st)->offset_of(&sl), sizeof sl));
    sl.value = 11;
    std::uint64_t& a = (*st)->applied(0)[2];
    ASSERT_TRUE((*st)->log((*st)->offset_of(&a), sizeof a));
    a = 99;
    EXPECT_TRUE((*st)->in_tx());
  }
  auto st = f.open();
  ASSERT_TRUE(st);
  EXPECT_TRUE(f.restored);
  EXPECT_TRUE(f.rejected.empty());
  EXPECT_EQ((*st)->slots()[3].value, 10);
  EXPECT_EQ((*st)->slots()[3].live, 1);
  EXPECT_EQ((*st)->applied(0)[2], 0u);
  EXPECT_FALSE((*st)->in_tx());
}

// The file's undo_len is written for a restart; a live store must not read it
// back to place the next entry, or one stray write to the mapping (another
// process of the same user, a bad pointer) sends that entry anywhere.
TEST(StateStore, AScribbledUndoLengthInTheLiveFileDoesNotMoveWhereTheNextEntryGoes) {
  StoreFile f;
  auto st = f.open();
  ASSERT_TRUE(st) << st.error().message();
  commit_live_slot(**st, 3, 10);
  {
    const UniqueFd fd(::open(f.path.c_str(), O_RDWR | O_CLOEXEC));
    ASSERT_TRUE(fd.valid());
    const std::uint64_t hostile = std::uint64_t{1} << 62;  // far past the undo log and the file
    ASSERT_EQ(::pwrite(fd.get(), &hostile, sizeof hostile, 128 /* FileHeader::undo_len */),
              static_cast<ssize_t>(sizeof hostile));
  }
  detail::StateSlot& sl = (*st)->slots()[3];
  ASSERT_TRUE((*st)->log((*st)->offset_of(&sl), sizeof sl));
  EXPECT_TRUE((*st)->in_tx());
  sl.value = 11;
  (*st)->commit();
  EXPECT_FALSE((*st)->in_tx());
  st->reset();  // closed, as at a restart
  auto again = f.open();
  ASSERT_TRUE(again) << again.error().message();
  EXPECT_TRUE(f.restored);
  EXPECT_TRUE(f.rejected.empty()) << f.rejected;
  EXPECT_FALSE((*again)->in_tx());
  EXPECT_EQ((*again)->slots()[3].value, 11);  // the committed value, no rollback
}

TEST(StateStore, RollbackKeepsTheOldestImageWhenAPartAndThenTheWholeSlotWereLogged) {
  StoreFile f;
  {
    auto st = f.open();
    ASSERT_TRUE(st) << st.error().message();
    commit_live_slot(**st, 5, 3);
    // As a shard does: an update logs only the values, a later free in the
    // same transaction logs the whole (already changed) slot.
    detail::StateSlot& sl = (*st)->slots()[5];
    ASSERT_TRUE((*st)->log((*st)->offset_of(&sl.value), 16));
    sl.value = 4;
    ASSERT_TRUE((*st)->log((*st)->offset_of(&sl), sizeof sl));
    sl.live = 0;
  }
  auto st = f.open();
  ASSERT_TRUE(st);
  EXPECT_EQ((*st)->slots()[5].value, 3);
  EXPECT_EQ((*st)->slots()[5].live, 1);
}

// A shard over a store, fed mapped samples as a shard thread is.
struct StoreShard {
  // native_factor > 1: histograms keep native buckets too (native_max_buckets 0: unlimited).
  explicit StoreShard(detail::StateStore* store, double native_factor = 0, std::uint32_t native_max_buckets = 0,
                      std::string default_help = {}) {
    if (!default_help.empty()) opts.default_help = std::move(default_help);
    opts.mapping.defaults.observer_type = ObserverType::kHistogram;
    opts.mapping.defaults.native_bucket_factor = native_factor;
    opts.mapping.defaults.native_max_buckets = native_max_buckets;
    auto matcher = Matcher::create(opts.mapping);
    EXPECT_TRUE(matcher);
    specs = detail::build_specs(*matcher);
    mapper.emplace(std::move(*matcher), registry, opts);
    shard.emplace(0, 1, registry, specs, opts, 7, store);
  }
  std::vector<detail::MappedSample> map(testing::BatchBuilder& b) {
    std::vector<detail::MappedSample> out;
    sample::BatchReader r(b.finish());
    while (auto s = r.next()) {
      detail::MappedSample m;
      if (mapper->map(*s, labels, m)) out.push_back(m);
    }
    return out;
  }
  // Applies mapped samples as one record of input 0, lane 0, seq 1 (committed).
  void apply_record(const std::vector<detail::MappedSample>& m, std::int64_t now_ns = 0) {
    const detail::RecordSegment seg{0, 0, 1, static_cast<std::uint32_t>(m.size())};
    shard->apply_segments(m, {&seg, 1}, labels.data(), now_ns);
  }
  testing::ExporterState snapshot(std::int64_t now_ns = 0) {
    VectorSink sink;
    shard->flush(now_ns, 0, sink, true);
    testing::ExporterState st;
    st.apply(sink.records());
    return st;
  }
  EngineOptions opts;
  detail::FamilyRegistry registry{opts.max_families, opts.max_series, opts.max_series_per_metric};
  std::shared_ptr<const detail::SpecTable> specs;
  std::optional<detail::SeriesMapper> mapper;
  std::optional<detail::Shard> shard;
  std::vector<std::byte> labels;
};

// A series' expiry is kept in the state file: after a restart it still
// expires when it would have, and a series without a TTL never does.
TEST(ShardState, ASeriesExpiryIsKeptAcrossARestart) {
  constexpr std::int64_t kSec = 1'000'000'000;
  StoreFile f;
  {
    auto st = f.open();
    ASSERT_TRUE(st) << st.error().message();
    StoreShard a(st->get());
    testing::BatchBuilder b;
    b.add(sample::Kind::kCounter, "short", 1, {}).add(sample::Kind::kCounter, "kept", 1, {});
    auto m = a.map(b);
    ASSERT_EQ(m.size(), 2u);
    m[0].ttl_ns = 10 * kSec;
    m[1].ttl_ns = 0;
    a.apply_record(m, 100 * kSec);
  }
  auto st = f.open();
  ASSERT_TRUE(st);
  StoreShard b(st->get());
  ASSERT_EQ(b.shard->series_count(), 2u);
  VectorSink early;
  b.shard->flush(109 * kSec, 0, early, false);
  EXPECT_EQ(b.shard->stats().series_expired, 0u);
  VectorSink late;
  b.shard->flush(111 * kSec, 0, late, false);
  b.shard->flush(10'000 * kSec, 0, late, false);
  EXPECT_EQ(b.shard->stats().series_expired, 1u);
  EXPECT_EQ(b.shard->series_count(), 1u);
  const testing::ExporterState snap = b.snapshot();
  EXPECT_TRUE(snap.has("kept{}"));
  EXPECT_FALSE(snap.has("short{}"));
}

TEST(ShardState, RestartAfterAHalfAppliedBatchRestoresTheLastCommittedValuesOfEveryKind) {
  StoreFile f;
  {
    auto st = f.open();
    ASSERT_TRUE(st) << st.error().message();
    StoreShard a(st->get());
    testing::BatchBuilder first;
    first.add(sample::Kind::kCounter, "c", 5, {{"k", "1"}})
        .add(sample::Kind::kGauge, "g", 7, {{"k", "1"}})
        .add(sample::Kind::kTimer, "h", 0.02, {{"k", "1"}})
        .add(sample::Kind::kSet, "s", 0, {{"k", "1"}}, 1, "alice")
        .add(sample::Kind::kSet, "s", 0, {{"k", "1"}}, 1, "bob");
    const auto m1 = a.map(first);
    ASSERT_EQ(m1.size(), 5u);
    const detail::RecordSegment seg{0, 0, 1, 5};
    a.shard->apply_segments(m1, {&seg, 1}, a.labels.data(), 0);
    EXPECT_FALSE((*st)->in_tx());
    // The next record is applied (values, histogram counts, a new series),
    // then the process dies before the commit: the mapping goes, the file stays.
    testing::BatchBuilder second;
    second.add(sample::Kind::kCounter, "c", 100, {{"k", "1"}})
        .add(sample::Kind::kGauge, "g", 50, {{"k", "1"}})
        .add(sample::Kind::kTimer, "h", 3, {{"k", "1"}})
        .add(sample::Kind::kCounter, "c", 1, {{"k", "2"}})
        .add(sample::Kind::kCounter, "c", 10, {{"k", "1"}})
        .add(sample::Kind::kSet, "s", 0, {{"k", "1"}}, 1, "carol");
    const auto m2 = a.map(second);
    ASSERT_EQ(m2.size(), 6u);
    a.shard->apply_batch(m2, a.labels.data(), 0);
    EXPECT_TRUE((*st)->in_tx());
    EXPECT_EQ((*st)->slots()[0].value, 115);
    EXPECT_EQ((*st)->slots()[3].value, 3);  // the set's open window: alice, bob, carol
  }
  auto st = f.open();
  ASSERT_TRUE(st);
  ASSERT_TRUE(f.restored);
  EXPECT_EQ((*st)->applied(0)[0], 1u);
  StoreShard b(st->get());
  EXPECT_EQ(b.shard->series_count(), 4u);
  const testing::ExporterState snap = b.snapshot();
  EXPECT_EQ(snap.value("c{k=1}"), 5);
  EXPECT_FALSE(snap.has("c{k=2}"));
  EXPECT_EQ(snap.value("g{k=1}"), 7);
  EXPECT_EQ(snap.value("s{k=1}"), 2);  // the committed count, kept as the last completed window's
  // Histogram values: count, sum, then (bound, cumulative count) pairs, +Inf.
  const auto& h = snap.series.at("h{k=1}").values;
  ASSERT_GE(h.size(), 4u);
  EXPECT_EQ(h[0], 1);
  EXPECT_DOUBLE_EQ(h[1], 0.02);
  double in_le_0025 = -1;
  double in_le_5 = -1;
  for (std::size_t i = 2; i + 1 < h.size(); i += 2) {
    if (h[i] == 0.025) in_le_0025 = h[i + 1];
    if (h[i] == 5) in_le_5 = h[i + 1];
  }
  EXPECT_EQ(in_le_0025, 1);
  EXPECT_EQ(in_le_5, 1);  // not 2: the 3 s observation was rolled back
}

// A restored set publishes its last count until a window passes without a
// member (its members are not kept), then 0, as a set that never restarted
// does: the restore must put it among the windows a flush rolls.
TEST(ShardState, ARestoredSetFallsToZeroOnceAWindowPassesWithoutMembers) {
  const std::int64_t window = std::chrono::nanoseconds(EngineOptions{}.set_window).count();
  StoreFile f;
  {
    auto st = f.open();
    ASSERT_TRUE(st) << st.error().message();
    StoreShard a(st->get());
    testing::BatchBuilder b;
    b.add(sample::Kind::kSet, "users", 0, {}, 1, "alice").add(sample::Kind::kSet, "users", 0, {}, 1, "bob");
    a.apply_record(a.map(b));
    EXPECT_EQ(a.snapshot().value("users{}"), 2);
  }
  auto st = f.open();
  ASSERT_TRUE(st);
  ASSERT_TRUE(f.restored);
  StoreShard b(st->get());
  EXPECT_EQ(b.snapshot().value("users{}"), 2);
  EXPECT_EQ(b.snapshot(window / 2).value("users{}"), 2);
  EXPECT_EQ(b.snapshot(window + 1).value("users{}"), 0);
}

// A new series' slot past the high-water mark gets no undo entry of its own:
// the control block's (logged before the mark moves) hides it again when the
// transaction rolls back. So a record of 40 new series logs far less than 40
// slot images, a crash before its commit still leaves none of them, and the
// same slots then take the series again, committed, across a restart.
TEST(ShardState, NewSeriesPastTheHighWaterMarkAreRolledBackByTheControlBlockAloneAndTakenAgain) {
  constexpr int kNew = 40;
  const auto add_new = [](testing::BatchBuilder& b, double base) {
    for (int i = 0; i < kNew; ++i) b.add(sample::Kind::kCounter, "n", base + i, {{"i", std::to_string(i)}});
  };
  StoreFile f;
  {
    auto st = f.open();
    ASSERT_TRUE(st) << st.error().message();
    StoreShard a(st->get());
    testing::BatchBuilder first;
    first.add(sample::Kind::kCounter, "c", 5, {{"k", "1"}}).add(sample::Kind::kGauge, "g", 7, {{"k", "1"}});
    const auto m1 = a.map(first);
    ASSERT_EQ(m1.size(), 2u);
    a.apply_record(m1);
    ASSERT_FALSE((*st)->in_tx());
    testing::BatchBuilder second;
    second.add(sample::Kind::kCounter, "c", 100, {{"k", "1"}});
    add_new(second, 1000);
    const auto m2 = a.map(second);
    ASSERT_EQ(m2.size(), static_cast<std::size_t>(kNew + 1));
    a.shard->apply_batch(m2, a.labels.data(), 0);
    ASSERT_TRUE((*st)->in_tx());
    EXPECT_LT((*st)->undo_used(), kNew * sizeof(detail::StateSlot))
        << "each new slot's old bytes were logged although no restore reads them";
  }  // the process dies before the commit
  {
    auto st = f.open();
    ASSERT_TRUE(st);
    ASSERT_TRUE(f.restored);
    StoreShard b(st->get());
    EXPECT_EQ(b.shard->series_count(), 2u);
    testing::ExporterState snap = b.snapshot();
    EXPECT_EQ(snap.value("c{k=1}"), 5);
    EXPECT_EQ(snap.value("g{k=1}"), 7);
    for (int i = 0; i < kNew; ++i) EXPECT_FALSE(snap.has("n{i=" + std::to_string(i) + "}")) << i;
    // The same slots take the series again, this time committed.
    testing::BatchBuilder again;
    add_new(again, 2000);
    const auto m = b.map(again);
    ASSERT_EQ(m.size(), static_cast<std::size_t>(kNew));
    const detail::RecordSegment seg{0, 0, 2, kNew};  // the next record after the one committed
    b.shard->apply_segments(m, {&seg, 1}, b.labels.data(), 0);
    ASSERT_FALSE((*st)->in_tx());
  }
  auto st = f.open();
  ASSERT_TRUE(st);
  StoreShard c(st->get());
  EXPECT_EQ(c.shard->series_count(), static_cast<std::size_t>(kNew + 2));
  testing::ExporterState snap = c.snapshot();
  EXPECT_EQ(snap.value("c{k=1}"), 5);
  for (int i = 0; i < kNew; ++i) EXPECT_EQ(snap.value("n{i=" + std::to_string(i) + "}"), 2000 + i) << i;
}

// A deferred flush owes what the sink had no room for, without counting a
// stall; drain() writes exactly those, each once, and nothing changed after
// the flush: that waits for the next flush, which writes it.
TEST(ShardFlush, ADeferredFlushOwesWhatTheSinkRefusedAndDrainWritesExactlyThat) {
  StoreShard s(nullptr);
  auto counters = [&](int from, int to, double value) {
    testing::BatchBuilder b;
    std::vector<std::string> ids;
    for (int i = from; i < to; ++i) ids.push_back(std::to_string(i));
    for (const std::string& id : ids) b.add(sample::Kind::kCounter, "c", value, {{"k", id}});
    const auto m = s.map(b);
    s.shard->apply_batch(m, s.labels.data(), 0);
  };
  counters(0, 300, 1);
  VectorSink sink(1024);  // a few dozen entries a record
  sink.refuse_after(2);
  s.shard->flush(0, 0, sink, false, true);
  ASSERT_EQ(sink.records().size(), 2u);
  const std::size_t owed = s.shard->owed();
  EXPECT_GT(owed, 200u);
  EXPECT_EQ(s.shard->stats().flush_stalls, 0u);
  EXPECT_FALSE(s.shard->drain(0, sink));  // still no room: still owed
  EXPECT_EQ(s.shard->owed(), owed);

  counters(0, 1, 10);     // written by the flush already: changed again after it
  counters(300, 301, 1);  // new after the flush
  counters(299, 300, 5);  // owed, and changed again: drained at its latest value
  sink.refuse_after(SIZE_MAX);
  EXPECT_TRUE(s.shard->drain(0, sink));
  EXPECT_EQ(s.shard->owed(), 0u);
  testing::ExporterState st;
  st.apply(sink.records());
  EXPECT_EQ(st.updates, 300);  // each of the flush's series once, none twice
  EXPECT_EQ(st.series.size(), 300u);
  EXPECT_EQ(st.value("c{k=0}"), 1);
  EXPECT_EQ(st.value("c{k=299}"), 6);
  EXPECT_FALSE(st.has("c{k=300}"));
  EXPECT_EQ(s.shard->stats().flush_stalls, 0u);

  sink.clear();
  s.shard->flush(0, 0, sink, false, true);
  st.apply(sink.records());
  EXPECT_EQ(st.value("c{k=0}"), 11);
  EXPECT_EQ(st.value("c{k=300}"), 1);
  EXPECT_EQ(st.updates, 302);
  // Without defer, the same refusal is a stall and nothing is owed.
  counters(0, 300, 1);
  sink.clear();
  sink.refuse_after(1);
  s.shard->flush(0, 0, sink, false);
  EXPECT_EQ(s.shard->stats().flush_stalls, 1u);
  EXPECT_EQ(s.shard->owed(), 0u);
  EXPECT_TRUE(s.shard->drain(0, sink));
}

using NativeBuckets = std::vector<std::pair<std::int32_t, double>>;

// Applies one committed record (seq) of timer observations to series h{k=1}.
void observe_committed(StoreShard& s, std::uint64_t seq, std::initializer_list<double> values) {
  testing::BatchBuilder b;
  for (const double v : values) b.add(sample::Kind::kTimer, "h", v, {{"k", "1"}});
  const auto m = s.map(b);
  ASSERT_EQ(m.size(), values.size());
  const detail::RecordSegment seg{0, 0, seq, static_cast<std::uint32_t>(m.size())};
  s.shard->apply_segments(m, {&seg, 1}, s.labels.data(), 0);
}

TEST(ShardState, NativeHistogramBucketsContinueAcrossARestartAsTheClassicOnesDo) {
  StoreFile f;
  {
    auto st = f.open();
    ASSERT_TRUE(st) << st.error().message();
    StoreShard a(st->get(), 2);  // schema 0: buckets (2^(i-1), 2^i]
    observe_committed(a, 1, {0.5, 1.5, -3, 0});
    const testing::ExporterState snap = a.snapshot();
    const auto& s = snap.series.at("h{k=1}");
    EXPECT_EQ(s.positive, (NativeBuckets{{-1, 1}, {1, 1}}));
  }
  {
    auto st = f.open();
    ASSERT_TRUE(st);
    ASSERT_TRUE(f.restored);
    StoreShard b(st->get(), 2);
    EXPECT_EQ(b.shard->stats().state_series_dropped, 0u);
    // Before a restart's first sample: what was kept, not an empty histogram
    // (which Prometheus would take for a counter reset).
    const testing::ExporterState snap = b.snapshot();
    const auto& s = snap.series.at("h{k=1}");
    EXPECT_EQ(s.values[0], 4);
    EXPECT_EQ(s.schema, 0);
    EXPECT_EQ(s.zero_count, 1);
    EXPECT_EQ(s.positive, (NativeBuckets{{-1, 1}, {1, 1}}));
    EXPECT_EQ(s.negative, (NativeBuckets{{2, 1}}));
    observe_committed(b, 2, {1.5, 9});
  }
  auto st = f.open();
  ASSERT_TRUE(st);
  StoreShard c(st->get(), 2);
  const testing::ExporterState snap = c.snapshot();
  const auto& s = snap.series.at("h{k=1}");
  EXPECT_EQ(s.values[0], 6);
  EXPECT_EQ(s.zero_count, 1);
  EXPECT_EQ(s.positive, (NativeBuckets{{-1, 1}, {1, 2}, {4, 1}}));
  EXPECT_EQ(s.negative, (NativeBuckets{{2, 1}}));
}

TEST(ShardState, ANativeHistogramOutgrowingItsBlockMovesAndACrashBeforeTheCommitKeepsTheLastCommit) {
  StoreFile f;
  const std::uint64_t arena_before = [&] {
    auto st = f.open();
    EXPECT_TRUE(st) << st.error().message();
    StoreShard a(st->get(), 2);
    observe_committed(a, 1, {1});
    const std::uint32_t block = (*st)->slots()[0].block_off;
    // 40 buckets (2^0 .. 2^39) do not fit the 8 the block was made with:
    // the series moves to a larger block, in a transaction that never commits.
    testing::BatchBuilder b;
    for (int i = 1; i < 40; ++i) b.add(sample::Kind::kTimer, "h", std::ldexp(1.0, i), {{"k", "1"}});
    const auto m = a.map(b);
    a.shard->apply_batch(m, a.labels.data(), 0);
    EXPECT_TRUE((*st)->in_tx());
    EXPECT_NE((*st)->slots()[0].block_off, block);
    return (*st)->control().arena_used;
  }();
  {
    auto st = f.open();
    ASSERT_TRUE(st);
    EXPECT_LT((*st)->control().arena_used, arena_before);  // the new block was rolled back
    StoreShard b(st->get(), 2);
    EXPECT_EQ(b.shard->stats().state_series_dropped, 0u);
    const testing::ExporterState snap = b.snapshot();
    const auto& s = snap.series.at("h{k=1}");
    EXPECT_EQ(s.values[0], 1);
    EXPECT_EQ(s.positive, (NativeBuckets{{0, 1}}));
    // Now committed: the move and the 39 new buckets stay.
    testing::BatchBuilder more;
    for (int i = 1; i < 40; ++i) more.add(sample::Kind::kTimer, "h", std::ldexp(1.0, i), {{"k", "1"}});
    const auto m = b.map(more);
    const detail::RecordSegment seg{0, 0, 2, static_cast<std::uint32_t>(m.size())};
    b.shard->apply_segments(m, {&seg, 1}, b.labels.data(), 0);
  }
  auto st = f.open();
  ASSERT_TRUE(st);
  StoreShard c(st->get(), 2);
  const testing::ExporterState snap = c.snapshot();
  const auto& s = snap.series.at("h{k=1}");
  EXPECT_EQ(s.values[0], 40);
  ASSERT_EQ(s.positive.size(), 40u);
  for (std::int32_t i = 0; i < 40; ++i) EXPECT_EQ(s.positive[static_cast<std::size_t>(i)], std::make_pair(i, 1.0));
  EXPECT_EQ(s.labels, "k=1");  // the labels moved with it
}

// Maps one native histogram sample of series p{k=1} (a Prometheus histogram
// family, as a remote_write source writes it).
std::vector<detail::MappedSample> map_native(StoreShard& s, std::int32_t schema, double count, double sum,
                                             const NativeBuckets& positive) {
  std::vector<std::byte> buf(8192);
  sample::BatchWriter w(buf, 1, 0);
  sample::NativeSample n;
  n.schema = schema;
  n.zero_count = 1;
  n.zero_threshold = 0.5;
  n.count = count;
  n.sum = sum;
  n.positive = positive;
  const std::vector<sample::Tag> tags{{"k", "1"}};
  EXPECT_TRUE(w.append_native("p", tags, n, sample::Family{sample::FamilyType::kHistogram, 0, {}, {}}));
  std::vector<detail::MappedSample> out;
  sample::BatchReader r(std::span<const std::byte>(buf.data(), w.finish()));
  while (auto v = r.next()) {
    detail::MappedSample m;
    if (s.mapper->map(*v, s.labels, m)) out.push_back(m);
  }
  return out;
}

TEST(ShardState, APrometheusNativeHistogramIsKeptAsItCameAcrossARestartAndACrashBeforeTheCommitKeepsTheLastCommit) {
  StoreFile f;
  const NativeBuckets first{{-3, 1}, {2, 4}};
  NativeBuckets wide;  // 30 buckets: more than the block was made with
  for (std::int32_t i = 0; i < 30; ++i) wide.emplace_back(i * 2, i + 1);
  {
    auto st = f.open();
    ASSERT_TRUE(st) << st.error().message();
    StoreShard a(st->get());
    const auto m1 = map_native(a, 2, 6, 7.5, first);
    ASSERT_EQ(m1.size(), 1u);
    const detail::RecordSegment seg{0, 0, 1, 1};
    a.shard->apply_segments(m1, {&seg, 1}, a.labels.data(), 0);
    EXPECT_FALSE((*st)->in_tx());
    // The next sample replaces it, then the process dies before the commit.
    a.labels.clear();
    const auto m2 = map_native(a, 1, 466, 9, wide);
    ASSERT_EQ(m2.size(), 1u);
    a.shard->apply_batch(m2, a.labels.data(), 0);
    EXPECT_TRUE((*st)->in_tx());
  }
  {
    auto st = f.open();
    ASSERT_TRUE(st);
    ASSERT_TRUE(f.restored);
    StoreShard b(st->get());
    EXPECT_EQ(b.shard->stats().state_series_dropped, 0u);
    const testing::ExporterState snap = b.snapshot();
    const auto& s = snap.series.at("p{k=1}");
    EXPECT_EQ(s.flags, metric::kEntryPromSample | metric::kEntryNative);
    EXPECT_EQ(s.values, (std::vector<double>{6, 7.5}));
    EXPECT_EQ(s.schema, 2);
    EXPECT_EQ(s.zero_count, 1);
    EXPECT_EQ(s.zero_threshold, 0.5);
    EXPECT_EQ(s.positive, first);
    // Now committed.
    const auto m = map_native(b, 1, 466, 9, wide);
    const detail::RecordSegment seg{0, 0, 2, 1};
    b.shard->apply_segments(m, {&seg, 1}, b.labels.data(), 0);
  }
  auto st = f.open();
  ASSERT_TRUE(st);
  StoreShard c(st->get());
  EXPECT_EQ(c.shard->stats().state_series_dropped, 0u);
  const testing::ExporterState snap = c.snapshot();
  const auto& s = snap.series.at("p{k=1}");
  EXPECT_EQ(s.values, (std::vector<double>{466, 9}));
  EXPECT_EQ(s.schema, 1);
  EXPECT_EQ(s.positive, wide);
  EXPECT_EQ(s.labels, "k=1");
}

// The header's geometry check (FNV-1a over version, the five u64 sizes from
// offset 16 and shard, shard_count at 48), as a version-1 binary wrote it.
std::uint64_t header_check(const std::byte* h, std::uint32_t version) {
  std::uint64_t x = 1469598103934665603ULL;
  auto fnv = [&](const void* p, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) x = (x ^ static_cast<const unsigned char*>(p)[i]) * 1099511628211ULL;
  };
  fnv(&version, 4);
  fnv(h + 16, 40);
  fnv(h + 48, 8);
  return x;
}

TEST(StateStore, AVersion1FileIsKeptItsHistogramsGainNativeBucketsAndItIsRelabeledVersion2) {
  StoreFile f;
  {
    auto st = f.open();
    ASSERT_TRUE(st) << st.error().message();
    StoreShard a(st->get());  // no native buckets: the slot and block as version 1 wrote them
    observe_committed(a, 1, {0.5, 1.5});
    ASSERT_EQ((*st)->slots()[0].native_region, 0u);
  }
  {
    std::fstream fs(f.path, std::ios::in | std::ios::out | std::ios::binary);
    std::byte h[64];
    fs.read(reinterpret_cast<char*>(h), sizeof h);
    const std::uint32_t v1 = 1;
    const std::uint64_t check = header_check(h, v1);
    fs.seekp(8);
    fs.write(reinterpret_cast<const char*>(&v1), 4);
    fs.seekp(64);
    fs.write(reinterpret_cast<const char*>(&check), 8);
  }
  ASSERT_TRUE(detail::StateStore::check(f.path, small_geometry()));
  auto version_of = [&] {
    std::ifstream fs(f.path, std::ios::binary);
    fs.seekg(8);
    std::uint32_t v = 0;
    fs.read(reinterpret_cast<char*>(&v), 4);
    return v;
  };
  ASSERT_EQ(version_of(), 1u);
  {
    auto st = f.open();
    ASSERT_TRUE(st) << st.error().message();
    EXPECT_TRUE(f.restored);
    EXPECT_TRUE(f.rejected.empty()) << f.rejected;
    EXPECT_EQ(version_of(), detail::kStateVersion);
    StoreShard b(st->get(), 2);
    EXPECT_EQ(b.shard->stats().state_series_dropped, 0u);
    // The classic values are kept; the native buckets start with the next observation.
    observe_committed(b, 2, {3});
    EXPECT_EQ((*st)->slots()[0].native_region, 1u);
  }
  auto st = f.open();
  ASSERT_TRUE(st);
  ASSERT_TRUE(detail::StateStore::check(f.path, small_geometry()));
  StoreShard c(st->get(), 2);
  const testing::ExporterState snap = c.snapshot();
  const auto& s = snap.series.at("h{k=1}");
  EXPECT_EQ(s.values[0], 3);
  EXPECT_EQ(s.labels, "k=1");
  EXPECT_EQ(s.positive, (NativeBuckets{{2, 1}}));
}

TEST(StateLayout, ARestartDropsAHistogramWhoseNativeRegionIsMalformedAndKeepsTheOthers) {
  // Each case corrupts one field of h{k=1}'s native region (after its labels
  // and classic counts); h{k=2} stays as written.
  const std::vector<std::pair<std::string, std::function<void(detail::NativeRegion&, std::byte*)>>> cases = {
      {"bucket count past the block", [](detail::NativeRegion& r, std::byte*) { r.positive_n = 0xffffffff; }},
      {"more buckets than the block holds", [](detail::NativeRegion& r, std::byte*) { r.negative_n = 1000; }},
      {"schema", [](detail::NativeRegion& r, std::byte*) { r.schema = 9; }},
      {"zero count", [](detail::NativeRegion& r, std::byte*) { r.zero_count = -1; }},
      {"key order",
       [](detail::NativeRegion&, std::byte* buckets) {
         const std::int32_t key = 5;  // both buckets' keys (-1 and 1) made equal
         std::memcpy(buckets + sizeof(detail::NativeBucketRecord), &key, 4);
         std::memcpy(buckets, &key, 4);
       }},
      {"key range",
       [](detail::NativeRegion&, std::byte* buckets) {
         const std::int32_t key = INT32_MAX;
         std::memcpy(buckets + sizeof(detail::NativeBucketRecord), &key, 4);
       }},
      {"count", [](detail::NativeRegion&, std::byte* buckets) {
         const double nan = std::numeric_limits<double>::quiet_NaN();
         std::memcpy(buckets + 8, &nan, 8);
       }}};
  for (const auto& [what, corrupt] : cases) {
    SCOPED_TRACE(what);
    StoreFile f;
    {
      auto st = f.open();
      ASSERT_TRUE(st) << st.error().message();
      StoreShard a(st->get(), 2);
      testing::BatchBuilder b;
      for (const char* k : {"1", "2"}) {
        for (const double v : {0.5, 1.5}) b.add(sample::Kind::kTimer, "h", v, {{"k", k}});
      }
      const auto m = a.map(b);
      const detail::RecordSegment seg{0, 0, 1, static_cast<std::uint32_t>(m.size())};
      a.shard->apply_segments(m, {&seg, 1}, a.labels.data(), 0);
      const detail::StateSlot& sl = (*st)->slots()[0];
      ASSERT_EQ(sl.native_region, 1u);
      std::byte* at = (*st)->arena() + sl.block_off + 8 + ((sl.key_len + 7u) & ~7u) + sl.hist_n * 8u;
      detail::NativeRegion r;
      std::memcpy(&r, at, sizeof r);
      ASSERT_EQ(r.positive_n, 2u);
      corrupt(r, at + sizeof r);
      std::memcpy(at, &r, sizeof r);
    }
    auto st = f.open();
    ASSERT_TRUE(st);
    EXPECT_TRUE(f.rejected.empty()) << f.rejected;  // the store is sound; one series in it is not
    StoreShard b(st->get(), 2);
    EXPECT_EQ(b.shard->series_count(), 1u);
    EXPECT_EQ(b.shard->stats().state_series_dropped, 1u);
    const testing::ExporterState snap = b.snapshot();
    EXPECT_FALSE(snap.has("h{k=1}"));
    ASSERT_TRUE(snap.has("h{k=2}"));
    EXPECT_EQ(snap.series.at("h{k=2}").positive, (NativeBuckets{{-1, 1}, {1, 1}}));
  }
}

// A family block written byte by byte as processors/STATE.md draws it
// (little-endian), without the FamilyBlock struct.
std::vector<std::byte> documented_family_block(std::uint8_t kind, std::string_view name, std::string_view help) {
  const std::size_t used = 16 + name.size() + help.size();
  EXPECT_LE(used, 512u);  // blocks up to 512 bytes round to 8
  std::vector<std::byte> b((used + 7) & ~std::size_t{7});
  auto put = [&](std::size_t at, std::uint64_t v, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) b[at + i] = static_cast<std::byte>(v >> (8 * i));
  };
  put(0, b.size(), 4);    // block size
  put(4, 0xffffffff, 4);  // owner: a family
  put(8, kind, 1);
  put(9, 0, 1);
  put(10, name.size(), 2);
  put(12, help.size(), 2);
  put(14, 0, 2);
  std::memcpy(b.data() + 16, name.data(), name.size());
  std::memcpy(b.data() + 16 + name.size(), help.data(), help.size());
  return b;
}

TEST(StateLayout, TheFamilyBlockStructIsTheDocumentedByteLayout) {
  const std::vector<std::byte> doc = documented_family_block(3, "abcde", "hi");
  ASSERT_EQ(doc.size(), 24u);
  detail::FamilyBlock fb{};
  fb.header = {24, detail::kFamilyOwner};
  fb.kind = 3;
  fb.name_len = 5;
  fb.help_len = 2;
  std::byte raw[sizeof fb];
  std::memcpy(raw, &fb, sizeof fb);
  EXPECT_EQ(std::memcmp(raw, doc.data(), sizeof fb), 0);
  // Decoded where it lies in an arena, after another block.
  std::vector<std::byte> arena(8);
  arena[0] = std::byte{8};
  arena.insert(arena.end(), doc.begin(), doc.end());
  const auto rec = detail::decode_family_block(arena, 8);
  ASSERT_TRUE(rec);
  EXPECT_EQ(rec->kind, detail::FamilyKind::kHistogram);
  EXPECT_EQ(rec->name, "abcde");
  EXPECT_EQ(rec->help, "hi");
}

TEST(StateLayout, AFamilyBlockWhoseDeclaredLengthsOverrunTheBlockOrTheArenaIsRefused) {
  using detail::FamilyBlockError;
  const std::vector<std::byte> good = documented_family_block(0, "abc", "help");  // 23 bytes used of 24
  // The arena goes on after the block, so an unchecked length would read
  // bytes that exist (the next block's) instead of faulting.
  auto arena_with = [&](std::uint16_t name_len, std::uint16_t help_len) {
    std::vector<std::byte> a = good;
    std::memcpy(a.data() + 10, &name_len, 2);
    std::memcpy(a.data() + 12, &help_len, 2);
    a.resize(a.size() + 64, std::byte{'x'});
    return a;
  };
  auto error_of = [](std::span<const std::byte> arena, std::uint64_t off) {
    const auto rec = detail::decode_family_block(arena, off);
    EXPECT_FALSE(rec) << "decoded " << rec->name;
    return rec ? FamilyBlockError{} : rec.error();
  };
  ASSERT_TRUE(detail::decode_family_block(arena_with(3, 4), 0));
  ASSERT_TRUE(detail::decode_family_block(arena_with(4, 4), 0));  // the pad byte: still inside the block
  EXPECT_EQ(error_of(arena_with(5, 4), 0), FamilyBlockError::kLengthsOverrun);
  EXPECT_EQ(error_of(arena_with(3, 6), 0), FamilyBlockError::kLengthsOverrun);
  EXPECT_EQ(error_of(arena_with(0xffff, 0xffff), 0), FamilyBlockError::kLengthsOverrun);
  // The block itself must lie inside the arena in use.
  std::vector<std::byte> big = good;
  const std::uint32_t size = 32;
  std::memcpy(big.data(), &size, 4);
  EXPECT_EQ(error_of(big, 0), FamilyBlockError::kBadBlock);
  EXPECT_EQ(error_of(std::span(good).first(12), 0), FamilyBlockError::kOutsideArena);
  EXPECT_EQ(error_of(good, 16), FamilyBlockError::kOutsideArena);  // 8 bytes left: no room for the fixed part
  EXPECT_EQ(error_of(good, 4), FamilyBlockError::kOutsideArena);
  EXPECT_EQ(error_of(good, UINT64_MAX - 7), FamilyBlockError::kOutsideArena);
  // And be a family block of a known kind with a name.
  std::vector<std::byte> other = good;
  other[4] = std::byte{1};
  EXPECT_EQ(error_of(other, 0), FamilyBlockError::kNotAFamily);
  other = good;
  other[8] = std::byte{5};
  EXPECT_EQ(error_of(other, 0), FamilyBlockError::kBadKind);
  EXPECT_EQ(error_of(arena_with(0, 4), 0), FamilyBlockError::kEmptyName);
}

TEST(StateLayout, AShardWritesFamilyBlocksAsDocumentedAndReadsThemBackAfterARestart) {
  StoreFile f;
  {
    auto st = f.open();
    ASSERT_TRUE(st) << st.error().message();
    StoreShard a(st->get());
    testing::BatchBuilder b;
    b.add(sample::Kind::kCounter, "c", 5, {{"k", "1"}}).add(sample::Kind::kTimer, "h", 0.02, {{"k", "1"}});
    const auto m = a.map(b);
    ASSERT_EQ(m.size(), 2u);
    a.apply_record(m);
    for (std::uint32_t i = 0; i < 2; ++i) {
      const detail::Family& fam = *m[i].family;
      ASSERT_EQ(a.registry.texts(fam).help, a.opts.default_help);
      // The default HELP is not written (help_len 0): STATE.md.
      const std::vector<std::byte> doc = documented_family_block(static_cast<std::uint8_t>(fam.kind), fam.name(), "");
      const std::byte* at = (*st)->arena() + (*st)->slots()[i].family_off;
      EXPECT_EQ(std::memcmp(at, doc.data(), 16 + fam.name().size()), 0) << fam.name();
    }
  }
  auto st = f.open();
  ASSERT_TRUE(st);
  StoreShard b(st->get());
  EXPECT_EQ(b.shard->series_count(), 2u);
  EXPECT_EQ(b.shard->stats().state_series_dropped, 0u);
  EXPECT_EQ(b.snapshot().value("c{k=1}"), 5);
}

// A plain family with the processor's default HELP is written without it
// (help_len 0) and gets the default HELP of the processor that reads it back;
// a Prometheus family keeps the HELP it came with, an empty one included,
// and so does a plain family whose HELP is not the default (a file written
// before the default was left out, or under another default).
TEST(StateLayout, APlainFamilyWithTheDefaultHelpIsStoredWithoutItAndReadBackWithTheDefault) {
  StoreFile f;
  const sample::Family prom{sample::FamilyType::kGauge, 0, "", ""};
  {
    auto st = f.open();
    ASSERT_TRUE(st) << st.error().message();
    StoreShard a(st->get());
    std::vector<std::byte> buf(1 << 16);
    sample::BatchWriter w(buf, 1, 0);
    ASSERT_TRUE(w.append(sample::Kind::kCounter, "c", 5, 1.0, {}, {}));
    ASSERT_TRUE(w.append(sample::Kind::kGauge, "p", 7, 1.0, {}, {}, 0, &prom));
    std::vector<detail::MappedSample> m;
    sample::BatchReader r(std::span<const std::byte>(buf.data(), w.finish()));
    while (auto smp = r.next()) {
      detail::MappedSample ms;
      ASSERT_TRUE(a.mapper->map(*smp, a.labels, ms));
      m.push_back(ms);
    }
    ASSERT_EQ(m.size(), 2u);
    // A plain family whose HELP is not the default: as a file of an older
    // binary, or of another default_help, holds it.
    const auto other = a.registry.get_or_create("o", detail::FamilyKind::kCounter, "Own help.");
    ASSERT_NE(other.family, nullptr);
    detail::MappedSample mo = m[0];
    mo.family = other.family;
    mo.series_hash ^= 0x9e3779b97f4a7c15ull;
    m.push_back(mo);
    const detail::RecordSegment seg{0, 0, 1, 3};
    a.shard->apply_segments(m, {&seg, 1}, a.labels.data(), 0);
    for (std::uint32_t i = 0; i < 3; ++i) {
      const std::byte* at = (*st)->arena() + (*st)->slots()[i].family_off;
      std::uint16_t help_len = 0;
      std::memcpy(&help_len, at + 12, 2);
      EXPECT_EQ(help_len, i == 2 ? 9u : 0u) << i;
    }
  }
  auto st = f.open();
  ASSERT_TRUE(st);
  StoreShard b(st->get(), 0, 0, "Another default.");
  EXPECT_EQ(b.shard->series_count(), 3u);
  EXPECT_EQ(b.shard->stats().state_series_dropped, 0u);
  const auto c = b.registry.get_or_create("c", detail::FamilyKind::kCounter, "later");
  ASSERT_NE(c.family, nullptr);
  EXPECT_EQ(b.registry.texts(*c.family).help, "Another default.");
  const auto p = b.registry.get_or_create("p", detail::FamilyKind::kGauge, "later", detail::PromFamily{2, 0, {}});
  ASSERT_NE(p.family, nullptr);
  EXPECT_FALSE(p.conflict);
  EXPECT_EQ(b.registry.texts(*p.family).help, "") << "a Prometheus family's empty HELP stays empty";
  const auto o = b.registry.get_or_create("o", detail::FamilyKind::kCounter, "later");
  ASSERT_NE(o.family, nullptr);
  EXPECT_EQ(b.registry.texts(*o.family).help, "Own help.");
  const testing::ExporterState snap = b.snapshot();
  EXPECT_EQ(snap.value("c{}"), 5);
  EXPECT_EQ(snap.value("p{}"), 7);
}

// Commits counters c{k=1} = 5 (slot 0) and d{k=1} = 7, lets `corrupt` change
// c's family block in the file (`at`: its first byte) as a crafted file
// would, then restarts: the store is sound, c's series is dropped and
// counted, d's is kept.
template <class Corrupt>
void expect_restart_drops_c_and_keeps_d(Corrupt&& corrupt) {
  StoreFile f;
  {
    auto st = f.open();
    ASSERT_TRUE(st) << st.error().message();
    StoreShard a(st->get());
    testing::BatchBuilder b;
    b.add(sample::Kind::kCounter, "c", 5, {{"k", "1"}}).add(sample::Kind::kCounter, "d", 7, {{"k", "1"}});
    const auto m = a.map(b);
    ASSERT_EQ(m.size(), 2u);
    a.apply_record(m);
    ASSERT_FALSE((*st)->in_tx());
    corrupt(**st, (*st)->arena() + (*st)->slots()[0].family_off);
    if (::testing::Test::HasFatalFailure()) return;  // an ASSERT in `corrupt`
  }
  auto st = f.open();
  ASSERT_TRUE(st);
  EXPECT_TRUE(f.rejected.empty()) << f.rejected;  // the store is sound; one family in it is not
  StoreShard b(st->get());
  EXPECT_EQ(b.shard->series_count(), 1u);
  EXPECT_EQ(b.shard->stats().state_series_dropped, 1u);
  const testing::ExporterState snap = b.snapshot();
  EXPECT_EQ(snap.series.size(), 1u);
  EXPECT_FALSE(snap.has("c{k=1}"));
  EXPECT_EQ(snap.value("d{k=1}"), 7);
}

TEST(StateLayout, ARestartDropsTheSeriesOfAFamilyBlockWhoseLengthsOverrunIt) {
  expect_restart_drops_c_and_keeps_d([](detail::StateStore& st, std::byte* at) {
    // c's family block claims one name byte more than it holds: the bytes
    // after it (the next block's) are in the arena, so only the check stops
    // a restart from reading them as the name.
    detail::FamilyBlock fb;
    std::memcpy(&fb, at, sizeof fb);
    ASSERT_EQ(fb.name_len, 1u);
    fb.name_len = static_cast<std::uint16_t>(fb.header.size - sizeof fb - fb.help_len + 1);
    std::memcpy(at, &fb, sizeof fb);
    ASSERT_LT(st.slots()[0].family_off + fb.header.size, st.control().arena_used);
  });
}

// A family block whose name Prometheus would refuse (a crafted file: a
// processor writes only escaped names) is dropped with its series, counted,
// never served: a name with a newline or a brace would break the whole page.
TEST(StateLayout, ARestartDropsTheSeriesOfAFamilyWhoseNameIsNotAValidMetricName) {
  expect_restart_drops_c_and_keeps_d([](detail::StateStore&, std::byte* at) {
    ASSERT_EQ(static_cast<char>(at[sizeof(detail::FamilyBlock)]), 'c');
    at[sizeof(detail::FamilyBlock)] = std::byte{'\n'};
  });
}

TEST(StateStore, RefusesTruncatedCorruptOrOtherGeometryFilesAndStartsEmpty) {
  ringpipe::testing::ScratchDir dir;
  const std::string path = dir.file("s.state");
  bool restored = false;
  std::string rejected;
  ASSERT_TRUE(detail::StateStore::open(path, small_geometry(), &restored, &rejected));
  detail::StateGeometry other = small_geometry();
  other.slot_capacity = 128;
  auto c = detail::StateStore::check(path, other);
  ASSERT_FALSE(c);
  EXPECT_NE(c.error().message().find("geometry"), std::string::npos) << c.error().message();
  {
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(8);
    const std::uint32_t v = 7;
    f.write(reinterpret_cast<const char*>(&v), sizeof v);
  }
  c = detail::StateStore::check(path, small_geometry());
  ASSERT_FALSE(c);
  EXPECT_NE(c.error().message().find("version 7, expected 2 or 1"), std::string::npos) << c.error().message();
  auto st = detail::StateStore::open(path, small_geometry(), &restored, &rejected);
  ASSERT_TRUE(st);
  EXPECT_FALSE(restored);
  EXPECT_NE(rejected.find("version 7"), std::string::npos);
  EXPECT_TRUE(std::ifstream(path + ".rejected").good());
  st->reset();
  ::truncate(path.c_str(), 100);
  st = detail::StateStore::open(path, small_geometry(), &restored, &rejected);
  ASSERT_TRUE(st);
  EXPECT_FALSE(restored);
  EXPECT_NE(rejected.find("truncated"), std::string::npos) << rejected;
}

// File offsets of version 1 (processors/STATE.md): the commit word, the
// control block, and the undo log after the applied-seq table.
constexpr std::uint64_t kUndoLenOff = 128;
constexpr std::uint64_t kControlOff = 192;
constexpr std::uint64_t kAppliedBytes = std::uint64_t{detail::kStateMaxInputs} * detail::kStateMaxLanes * 8;

struct CraftedEntry {
  std::uint64_t off;             // file offset the entry restores
  std::vector<std::byte> bytes;  // the "old" bytes
};

// Writes `entries` (oldest first) as the undo log of the closed store at
// `path` and sets its length, as a crash in mid-transaction or a crafted file
// leaves it. Returns the file offset of each entry.
std::vector<std::uint64_t> write_undo_log(const std::string& path, std::uint64_t undo_at,
                                          const std::vector<CraftedEntry>& entries) {
  std::vector<std::byte> log;
  std::vector<std::uint64_t> at;
  for (const CraftedEntry& e : entries) {
    at.push_back(undo_at + log.size());
    const auto len = static_cast<std::uint32_t>(e.bytes.size());
    const std::uint32_t zero = 0;
    const std::size_t pos = log.size();
    log.resize(pos + 16 + ((e.bytes.size() + 7) & ~std::size_t{7}));
    std::memcpy(log.data() + pos, &len, 4);
    std::memcpy(log.data() + pos + 4, &zero, 4);
    std::memcpy(log.data() + pos + 8, &e.off, 8);
    std::memcpy(log.data() + pos + 16, e.bytes.data(), e.bytes.size());
  }
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_CLOEXEC));
  EXPECT_TRUE(fd.valid());
  EXPECT_EQ(::pwrite(fd.get(), log.data(), log.size(), static_cast<off_t>(undo_at)), static_cast<ssize_t>(log.size()));
  const std::uint64_t used = log.size();
  EXPECT_EQ(::pwrite(fd.get(), &used, sizeof used, kUndoLenOff), static_cast<ssize_t>(sizeof used));
  return at;
}

template <class T>
std::vector<std::byte> bytes_of(const T& v) {
  std::vector<std::byte> b(sizeof v);
  std::memcpy(b.data(), &v, sizeof v);
  return b;
}

// A committed store with slot 3 live at 10; returns the undo log's file offset.
std::uint64_t committed_store(StoreFile& f) {
  auto st = f.open();
  EXPECT_TRUE(st) << st.error().message();
  if (!st) return 0;
  commit_live_slot(**st, 3, 10);
  return (*st)->offset_of((*st)->applied(0)) + kAppliedBytes;
}

TEST(StateStore, ASecondOpenerIsRefusedWhileALiveProcessHoldsTheStoreAndChangesNothing) {
  StoreFile f;
  committed_store(f);
  struct Steps {
    std::atomic<int> step;
  };
  Steps* sync = ringpipe::testing::make_shared_block<Steps>();
  const pid_t child = ringpipe::testing::spawn([&]() noexcept {
    auto st = f.open();
    if (!st) return 2;
    detail::StateSlot& sl = (*st)->slots()[3];
    if (!(*st)->log((*st)->offset_of(&sl), sizeof sl)) return 3;
    sl.value = 11;  // an open transaction
    sync->step.store(1);
    if (!ringpipe::testing::wait_until([&] { return sync->step.load() == 2; }, 30s)) return 4;
    // Nobody rolled it back or moved the file away under us.
    if (!(*st)->in_tx() || sl.value != 11 || !std::filesystem::exists(f.path)) return 5;
    sl.value = 12;
    (*st)->commit();
    return 0;
  });
  ASSERT_TRUE(ringpipe::testing::wait_until([&] { return sync->step.load() == 1; }, 30s));
  auto second = f.open();
  sync->step.store(2);
  EXPECT_EQ(ringpipe::testing::reap(child), 0) << "the live store was changed by the second opener";
  ASSERT_FALSE(second) << "opened a store another live process holds";
  const std::string why = second.error().message();
  EXPECT_NE(why.find("another live process"), std::string::npos) << why;
  EXPECT_NE(why.find("pid " + std::to_string(child)), std::string::npos) << why;
  EXPECT_FALSE(std::filesystem::exists(f.path + ".rejected"));
  auto st = f.open();  // the holder is gone: its lock went with it
  ASSERT_TRUE(st) << st.error().message();
  EXPECT_TRUE(f.restored);
  EXPECT_TRUE(f.rejected.empty()) << f.rejected;
  EXPECT_EQ((*st)->slots()[3].value, 12);
}

TEST(StateStore, UndoEntriesThatWrapAroundOrRewriteTheLogAreRefusedWithoutWritingOutsideTheFile) {
  std::vector<std::byte> sixteen(16, std::byte{0xab});
  // off + len wraps to 8: the check `off + len > size` passes it and the
  // rollback writes 8 bytes before the mapping.
  const auto wraps = [&](std::uint64_t) { return std::vector<CraftedEntry>{{UINT64_MAX - 7, sixteen}}; };
  // A valid entry, then a newer one that rewrites the older entry's header
  // (inside the file, so in range) after the log was checked: applied newest
  // first, the older entry then writes before the mapping.
  const auto rewrites = [&](std::uint64_t undo_at) {
    std::vector<std::byte> hdr(16);
    const std::uint32_t len = 16;
    const std::uint64_t off = UINT64_MAX - 7;
    std::memcpy(hdr.data(), &len, 4);
    std::memcpy(hdr.data() + 8, &off, 8);
    return std::vector<CraftedEntry>{{kControlOff, sixteen}, {undo_at, hdr}};
  };
  for (const auto& craft : {std::function<std::vector<CraftedEntry>(std::uint64_t)>(wraps),
                            std::function<std::vector<CraftedEntry>(std::uint64_t)>(rewrites)}) {
    StoreFile f;
    const std::uint64_t undo_at = committed_store(f);
    ASSERT_NE(undo_at, 0u);
    write_undo_log(f.path, undo_at, craft(undo_at));
    // In a child: a write outside the mapping may kill it instead of the test.
    const pid_t child = ringpipe::testing::spawn([&]() noexcept {
      auto st = f.open();
      if (!st) return 2;
      if (f.restored || f.rejected.find("undo") == std::string::npos) return 3;
      return (*st)->slots()[3].live == 0 ? 0 : 4;  // a new, empty store
    });
    EXPECT_EQ(ringpipe::testing::reap(child), 0)
        << "2: open failed, 3: the crafted log was accepted, 100+: killed by a signal";
    EXPECT_TRUE(std::filesystem::exists(f.path + ".rejected"));
  }
}

TEST(ShardState, AnUndoLogThatRestoresAnOutOfRangeControlBlockIsRefusedAndTheShardStartsEmpty) {
  StoreFile f;
  const std::uint64_t undo_at = committed_store(f);
  ASSERT_NE(undo_at, 0u);
  // The control block checked at open is in range; its undo image is not.
  const std::uint64_t slot_high = std::uint64_t{1} << 40;
  write_undo_log(f.path, undo_at, {{kControlOff + offsetof(detail::StateControl, slot_high), bytes_of(slot_high)}});
  const pid_t child = ringpipe::testing::spawn([&]() noexcept {
    auto st = f.open();
    if (!st) return 2;
    StoreShard b(st->get());
    if (f.restored || f.rejected.find("control") == std::string::npos) return 3;
    return b.shard->series_count() == 0 ? 0 : 4;
  });
  EXPECT_EQ(ringpipe::testing::reap(child), 0)
      << "2: open failed, 3: the restored control block was used, 100+: killed by a signal";
  EXPECT_TRUE(std::filesystem::exists(f.path + ".rejected"));
}

TEST(ShardState, AFullFileSystemStopsNewSeriesCleanlyInsteadOfKillingTheProcessWithSigbus) {
  ringpipe::testing::ScratchDir dir;
  const std::string mnt = dir.file("small");
  std::filesystem::create_directory(mnt);
  const pid_t child = ringpipe::testing::spawn([&]() noexcept {
    // A private 256 KiB tmpfs: the store's fixed part (84 KiB) fits, its
    // 512 KiB of slots and 1 MiB of arena do not.
    if (::unshare(CLONE_NEWNS) != 0 || ::mount("none", "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0 ||
        ::mount("tmpfs", mnt.c_str(), "tmpfs", 0, "size=256k") != 0) {
      return 77;
    }
    detail::StateGeometry g;
    g.slot_capacity = 8192;
    g.arena_bytes = 1 << 20;
    g.undo_bytes = 1 << 16;
    bool restored = false;
    std::string rejected;
    auto st = detail::StateStore::open(mnt + "/s.state", g, &restored, &rejected);
    if (!st) return 2;
    StoreShard a(st->get());
    for (std::uint64_t b = 0; b < 64; ++b) {
      testing::BatchBuilder batch;
      for (std::uint64_t i = 0; i < 128; ++i) {
        batch.add(sample::Kind::kCounter, "c", 1, {{"k", std::to_string(b * 128 + i)}});
      }
      const auto m = a.map(batch);
      const detail::RecordSegment seg{0, 0, b + 1, static_cast<std::uint32_t>(m.size())};
      a.shard->apply_segments(m, {&seg, 1}, a.labels.data(), 0);
    }
    const EngineStats s = a.shard->stats();
    if (s.state_full == 0) return 3;             // 8192 series cannot fit
    if (a.shard->series_count() == 0) return 4;  // but the space there is used
    return 0;
  });
  const int rc = ringpipe::testing::reap(child);
  if (rc == 77) GTEST_SKIP() << "cannot mount a tmpfs in a private mount namespace (needs CAP_SYS_ADMIN)";
  EXPECT_EQ(rc, 0) << "100 + " << SIGBUS << " is SIGBUS";
}

// The state files are hundreds of MB: a state_dir someone else planted as a
// symlink must neither be chmod'ed nor receive them.
TEST(ProcessorState, RefusesStateDirThatIsAnotherUsersSymlink) {
  ringpipe::testing::ScratchDir dir;
  const std::string raw = dir.file("raw");
  const std::string out = dir.file("metrics");
  ring::RingOptions ro;
  ro.lane_capacity_bytes = 1 << 16;
  ASSERT_TRUE(ring::Ring::create(raw, ro));
  ASSERT_TRUE(ring::Ring::create(out, ro));
  const std::filesystem::path chosen = dir.path() / "chosen";
  std::filesystem::create_directories(chosen);
  ASSERT_EQ(::chmod(chosen.c_str(), 0755), 0);
  const std::filesystem::path state = dir.path() / "proc.state";
  std::filesystem::create_directory_symlink(chosen, state);
  if (::geteuid() == 0) {
    ASSERT_EQ(::lchown(state.c_str(), 65534, 65534), 0);
  }

  auto p = Processor::create(options(raw, out, (state / "shards").string()));
  EXPECT_FALSE(p) << "the processor kept its state behind a symlink";
  EXPECT_TRUE(std::filesystem::is_empty(chosen));
  struct stat st {};
  ASSERT_EQ(::stat(chosen.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0755u);
}

TEST(ProcessorState, RefusesWorldWritableStateDir) {
  ringpipe::testing::ScratchDir dir;
  const std::string raw = dir.file("raw");
  const std::string out = dir.file("metrics");
  ring::RingOptions ro;
  ro.lane_capacity_bytes = 1 << 16;
  ASSERT_TRUE(ring::Ring::create(raw, ro));
  ASSERT_TRUE(ring::Ring::create(out, ro));
  const std::string state = dir.file("proc.state");
  std::filesystem::create_directories(state);
  ASSERT_EQ(::chmod(state.c_str(), 0777), 0);

  auto p = Processor::create(options(raw, out, state));
  ASSERT_FALSE(p) << "the processor kept its state in a world-writable directory";
  EXPECT_NE(p.error().message().find("0777"), std::string::npos) << p.error().message();
  EXPECT_TRUE(std::filesystem::is_empty(state));
}

}  // namespace
}  // namespace ringpipe::processors
