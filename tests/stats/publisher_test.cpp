// The one periodic publisher: what a component counts in its own atomics must
// reach its segment exactly, across restarts, shared segments and stops.

#include "ringpipe/stats/publisher.hpp"

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "test_support.hpp"

namespace ringpipe::stats {
namespace {

using namespace std::chrono_literals;

// The raw value of name{labels} in the segment at `path`; nullopt when absent.
std::optional<std::uint64_t> cell(const std::string& path, std::string_view name, const StatsLabels& labels = {}) {
  auto r = StatsReader::open(path);
  EXPECT_TRUE(r) << r.error().message();
  if (!r) return std::nullopt;
  for (const StatsEntry& e : r->snapshot()) {
    if (e.name == name && e.labels == labels) return e.raw;
  }
  return std::nullopt;
}

TEST(Publisher, CounterMovesItsCellByGrowthSoARestartContinuesTheTotal) {
  testing::ScratchDir dir;
  const std::string path = dir.file("a.stats");
  for (int run = 1; run <= 2; ++run) {
    auto seg = StatsSegment::create(path, "a", "source");
    ASSERT_TRUE(seg) << seg.error().message();
    std::atomic<std::uint64_t> lines{0};
    Publisher p(*seg);
    ASSERT_TRUE(p.add_counter(lines, "source_lines_total", "Lines."));
    lines = 5;
    p.publish();
    EXPECT_EQ(cell(path, "source_lines_total"), 10u * (run - 1) + 5);
    lines = 10;
    p.publish();
    p.publish();  // nothing new: nothing added
    EXPECT_EQ(cell(path, "source_lines_total"), 10u * run);
  }
}

TEST(Publisher, CounterThatGoesBackIsNotSubtracted) {
  testing::ScratchDir dir;
  auto seg = StatsSegment::create(dir.file("a.stats"), "a", "processor");
  ASSERT_TRUE(seg);
  std::atomic<std::uint64_t> samples{7};
  Publisher p(*seg);
  ASSERT_TRUE(p.add_counter(samples, "processor_samples_total", "Samples."));
  p.publish();
  samples = 4;
  p.publish();
  samples = 6;
  p.publish();
  EXPECT_EQ(cell(seg->path(), "processor_samples_total"), 7u + 2);
}

TEST(Publisher, PublishersSharingASegmentSumCountersAndGaugeChanges) {
  testing::ScratchDir dir;
  auto created = StatsSegment::create(dir.file("a.stats"), "a", "source");
  ASSERT_TRUE(created);
  auto seg = std::make_shared<StatsSegment>(std::move(*created));
  const StatsLabels tcp{{"transport", "tcp"}};
  std::atomic<std::uint64_t> lines[2] = {3, 4};
  std::atomic<std::uint64_t> open[2] = {2, 5};
  std::unique_ptr<Publisher> p[2];
  for (int i = 0; i < 2; ++i) {
    p[i] = std::make_unique<Publisher>(seg);
    ASSERT_TRUE(p[i]->add_counter(lines[i], "source_lines_total", "Lines."));
    ASSERT_TRUE(p[i]->add_gauge(open[i], "source_connections_open", "Open.", tcp));
    p[i]->publish();
  }
  EXPECT_EQ(cell(seg->path(), "source_lines_total"), 7u);
  EXPECT_EQ(cell(seg->path(), "source_connections_open", tcp), 7u);
  open[0] = 1;  // a connection closed: the shared gauge goes down by one
  p[0]->publish();
  EXPECT_EQ(cell(seg->path(), "source_connections_open", tcp), 6u);
  seg.reset();  // the publishers keep the segment alive
  lines[1] = 10;
  p[1]->publish();
  EXPECT_EQ(cell(dir.file("a.stats"), "source_lines_total"), 13u);
}

TEST(Publisher, ValueGaugeIsStoredAsItIsWhateverTheCellHeld) {
  testing::ScratchDir dir;
  auto seg = StatsSegment::create(dir.file("a.stats"), "a", "processor");
  ASSERT_TRUE(seg);
  auto stale = seg->register_gauge("processor_series_live", "Live series.");
  ASSERT_TRUE(stale);
  (*stale)->store(100);  // what a previous run left
  std::atomic<std::uint64_t> live{7};
  Publisher p(*seg);
  ASSERT_TRUE(p.add_gauge(live, "processor_series_live", "Live series.", {}, GaugeCopy::kValue));
  p.publish();
  EXPECT_EQ(cell(seg->path(), "processor_series_live"), 7u);
  live = 3;
  p.publish();
  EXPECT_EQ(cell(seg->path(), "processor_series_live"), 3u);
}

TEST(Publisher, RefreshRunsBeforeEveryCopy) {
  testing::ScratchDir dir;
  auto seg = StatsSegment::create(dir.file("a.stats"), "a", "processor");
  ASSERT_TRUE(seg);
  std::uint64_t plain = 0;  // a counter that is not an atomic, e.g. a field of a stats snapshot
  std::atomic<std::uint64_t> copy{0};
  int refreshes = 0;
  Publisher p(*seg, [&] {
    ++refreshes;
    copy.store(plain, std::memory_order_relaxed);
  });
  ASSERT_TRUE(p.add_counter(copy, "processor_flushes_total", "Flushes."));
  plain = 4;
  p.publish();
  EXPECT_EQ(refreshes, 1);
  EXPECT_EQ(cell(seg->path(), "processor_flushes_total"), 4u);
}

TEST(Publisher, PublishesEveryIntervalAndExactTotalsAtStop) {
  testing::ScratchDir dir;
  auto seg = StatsSegment::create(dir.file("a.stats"), "a", "source");
  ASSERT_TRUE(seg);
  const std::string path = seg->path();
  std::atomic<std::uint64_t> lines{0};
  Publisher p(*seg);
  ASSERT_TRUE(p.add_counter(lines, "source_lines_total", "Lines."));
  ASSERT_TRUE(p.start(5ms));
  std::atomic<bool> counting{true};
  std::thread counter([&] {
    while (counting.load()) {
      lines.fetch_add(1);
      std::this_thread::yield();
    }
  });
  // The thread publishes while the component counts, without any publish() here.
  const bool published = testing::wait_until([&] { return cell(path, "source_lines_total").value_or(0) > 0; }, 10s);
  counting = false;
  counter.join();
  ASSERT_TRUE(published);
  lines.fetch_add(1);  // after the last interval: only the stop publish can carry it
  p.stop();
  EXPECT_EQ(cell(path, "source_lines_total"), lines.load());
  auto r = StatsReader::open(path);
  ASSERT_TRUE(r);
  EXPECT_NE(r->info().heartbeat_ns, 0);
  p.stop();  // again: harmless
  EXPECT_EQ(cell(path, "source_lines_total"), lines.load());
}

TEST(Publisher, AddFailsWhenTheNameHoldsAnotherType) {
  testing::ScratchDir dir;
  auto seg = StatsSegment::create(dir.file("a.stats"), "a", "source");
  ASSERT_TRUE(seg);
  ASSERT_TRUE(seg->register_gauge("source_lines_total", "Lines."));
  std::atomic<std::uint64_t> lines{0};
  Publisher p(*seg);
  const Status added = p.add_counter(lines, "source_lines_total", "Lines.");
  ASSERT_FALSE(added);
  EXPECT_NE(added.error().message().find("another type"), std::string::npos) << added.error().message();
}

}  // namespace
}  // namespace ringpipe::stats
