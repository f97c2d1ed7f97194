#include "ringpipe/stats/stats_segment.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "test_support.hpp"

namespace ringpipe::stats {
namespace {

using namespace std::chrono_literals;

const StatsEntry* find(const std::vector<StatsEntry>& entries, std::string_view name, const StatsLabels& labels = {}) {
  for (const StatsEntry& e : entries) {
    if (e.name == name && e.labels == labels) return &e;
  }
  return nullptr;
}

void patch(const std::string& path, off_t offset, const void* bytes, std::size_t n) {
  const int fd = ::open(path.c_str(), O_RDWR);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::pwrite(fd, bytes, n, offset), static_cast<ssize_t>(n));
  ::close(fd);
}

TEST(StatsSegment, RoundTripsCountersGaugesAndLabels) {
  testing::ScratchDir dir;
  const std::string path = dir.file("statsd.stats");
  auto seg = StatsSegment::create(path, "statsd", "source", 16);
  ASSERT_TRUE(seg) << seg.error().message();
  auto c =
      seg->register_counter("source_parse_errors_total", "Lines refused, by reason.", {{"reason", "invalid_type"}});
  ASSERT_TRUE(c) << c.error().message();
  auto g = seg->register_gauge("source_connections_open", "Open stream connections.", {{"transport", "tcp"}});
  ASSERT_TRUE(g);
  auto d = seg->register_counter("exporter_scrape_seconds_total", "Seconds.", {}, StatsEncoding::kDouble);
  ASSERT_TRUE(d);
  (*c)->fetch_add(7, std::memory_order_relaxed);
  (*g)->store(3, std::memory_order_relaxed);
  stats_add_double(**d, 0.25);
  stats_add_double(**d, 0.5);
  // Registering again returns the same cell.
  auto again = seg->register_counter("source_parse_errors_total", "x", {{"reason", "invalid_type"}});
  ASSERT_TRUE(again);
  EXPECT_EQ(*again, *c);
  EXPECT_EQ(seg->size(), 3u);

  auto r = StatsSegment::open_readonly(path);
  ASSERT_TRUE(r) << r.error().message();
  const StatsSegmentInfo info = r->info();
  EXPECT_EQ(info.component, "statsd");
  EXPECT_EQ(info.kind, "source");
  EXPECT_EQ(info.pid, ::getpid());
  EXPECT_EQ(info.capacity, 16u);
  EXPECT_EQ(info.generation, 1u);
  EXPECT_TRUE(r->writer_alive());
  const auto entries = r->snapshot();
  ASSERT_EQ(entries.size(), 3u);
  EXPECT_EQ(r->malformed(), 0u);
  EXPECT_EQ(entries[0].name, "source_parse_errors_total");
  EXPECT_EQ(entries[0].help, "Lines refused, by reason.");
  EXPECT_EQ(entries[0].type, StatsType::kCounter);
  EXPECT_EQ(entries[0].raw, 7u);
  ASSERT_EQ(entries[0].labels.size(), 1u);
  EXPECT_EQ(entries[0].labels[0].name, "reason");
  EXPECT_EQ(entries[0].labels[0].value, "invalid_type");
  EXPECT_EQ(entries[1].type, StatsType::kGauge);
  EXPECT_EQ(entries[1].value(), 3.0);
  EXPECT_EQ(entries[2].encoding, StatsEncoding::kDouble);
  EXPECT_DOUBLE_EQ(entries[2].value(), 0.75);
  // Later updates show through the same reader.
  (*c)->fetch_add(1, std::memory_order_relaxed);
  EXPECT_EQ(find(r->snapshot(), "source_parse_errors_total", {{"reason", "invalid_type"}})->raw, 8u);
}

TEST(StatsSegment, RefusesInvalidNamesLabelsAndClashes) {
  testing::ScratchDir dir;
  auto seg = StatsSegment::create(dir.file("a.stats"), "a", "source", 2);
  ASSERT_TRUE(seg);
  {
    auto other = StatsSegment::create(dir.file("b.stats"), "b", "source", 1);
    ASSERT_TRUE(other);
    ASSERT_TRUE(other->register_counter("tab_total", "a\ttab and \xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80 are fine"));
  }
  EXPECT_FALSE(seg->register_counter("bad name", "h"));
  EXPECT_FALSE(seg->register_counter("9starts_with_digit", "h"));
  EXPECT_FALSE(seg->register_counter(std::string(65, 'a'), "h"));
  EXPECT_FALSE(seg->register_counter("ok_total", "h", {{"bad:label", "v"}}));
  EXPECT_FALSE(seg->register_counter("ok_total", "h", {{"l", std::string(65, 'v')}}));
  EXPECT_FALSE(seg->register_counter("ok_total", "h", {{"a", "1"}, {"b", "2"}, {"c", "3"}, {"d", "4"}, {"e", "5"}}));
  EXPECT_FALSE(seg->register_counter("ok_total", "bad\xff utf8"));
  EXPECT_FALSE(seg->register_counter("ok_total", "overlong \xc0\xaf"));
  EXPECT_FALSE(seg->register_counter("ok_total", "surrogate \xed\xa0\x80"));
  EXPECT_FALSE(seg->register_counter("ok_total", "control \x01 character"));
  EXPECT_FALSE(seg->register_counter("ok_total", "h", {{"l", "bell\a"}}));
  ASSERT_TRUE(seg->register_counter("ok_total", "h"));
  EXPECT_FALSE(seg->register_gauge("ok_total", "h")) << "same name and labels, other type";
  ASSERT_TRUE(seg->register_gauge("g", "h"));
  auto full = seg->register_gauge("h", "h");
  ASSERT_FALSE(full);
  EXPECT_EQ(full.error().code, std::errc::no_space_on_device);
}

TEST(StatsSegment, ReopenBySameComponentContinuesCounters) {
  testing::ScratchDir dir;
  const std::string path = dir.file("statsd.stats");
  {
    auto seg = StatsSegment::create(path, "statsd", "source", 8);
    ASSERT_TRUE(seg);
    auto c = seg->register_counter("source_lines_total", "Lines.");
    ASSERT_TRUE(c);
    (*c)->fetch_add(41, std::memory_order_relaxed);
    auto g = seg->register_gauge("source_connections_open", "Open.");
    ASSERT_TRUE(g);
    (*g)->store(5, std::memory_order_relaxed);
  }
  auto seg = StatsSegment::create(path, "statsd", "source", 8);
  ASSERT_TRUE(seg) << seg.error().message();
  EXPECT_EQ(seg->generation(), 2u);
  auto c = seg->register_counter("source_lines_total", "Lines.");
  ASSERT_TRUE(c);
  EXPECT_EQ((*c)->fetch_add(1, std::memory_order_relaxed), 41u);
  seg->reset_gauges();
  auto r = StatsReader::open(path);
  ASSERT_TRUE(r);
  const auto entries = r->snapshot();
  EXPECT_EQ(find(entries, "source_lines_total")->raw, 42u);
  EXPECT_EQ(find(entries, "source_connections_open")->raw, 0u);
}

TEST(StatsSegment, ReplacesSegmentOfAnotherComponentOrGeometry) {
  testing::ScratchDir dir;
  const std::string path = dir.file("x.stats");
  {
    auto seg = StatsSegment::create(path, "old", "source", 8);
    ASSERT_TRUE(seg);
    ASSERT_TRUE(seg->register_counter("a_total", "a"));
  }
  auto seg = StatsSegment::create(path, "new", "exporter", 4);
  ASSERT_TRUE(seg) << seg.error().message();
  EXPECT_EQ(seg->generation(), 1u);
  auto r = StatsReader::open(path);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->info().component, "new");
  EXPECT_EQ(r->info().capacity, 4u);
  EXPECT_TRUE(r->snapshot().empty());
}

TEST(StatsSegment, RefusesSecondLiveWriter) {
  testing::ScratchDir dir;
  const std::string path = dir.file("x.stats");
  auto first = StatsSegment::create(path, "x", "source", 8);
  ASSERT_TRUE(first);
  auto second = StatsSegment::create(path, "x", "source", 8);
  ASSERT_FALSE(second);
  EXPECT_NE(second.error().message().find("in use"), std::string::npos) << second.error().message();
}

// Two writers that both find an old segment to replace (another component's)
// must not both win: the loser would count into a file nobody reads.
TEST(StatsSegment, TwoWritersReplacingOneOldSegmentCannotBothWin) {
  testing::ScratchDir dir;
  auto* shared =
      static_cast<std::atomic<int>*>(::mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0));
  ASSERT_NE(shared, MAP_FAILED);
  int both = 0;
  for (int round = 0; round < 60; ++round) {
    const std::string path = dir.file("x" + std::to_string(round) + ".stats");
    {
      auto old = StatsSegment::create(path, "old", "source", 8);
      ASSERT_TRUE(old);
    }
    for (int i = 0; i < 4; ++i) shared[i].store(0);
    std::vector<pid_t> kids;
    for (int k = 0; k < 2; ++k) {
      const pid_t c = ::fork();
      ASSERT_GE(c, 0);
      if (c == 0) {
        while (shared[0].load() == 0) {
        }
        auto seg = StatsSegment::create(path, "new", "exporter", 4);
        if (seg) shared[1].fetch_add(1);
        shared[2].fetch_add(1);
        while (shared[3].load() == 0) ::usleep(100);  // keep it (and its lock) until both tried
        ::_exit(0);
      }
      kids.push_back(c);
    }
    shared[0].store(1);
    ASSERT_TRUE(testing::wait_until([&] { return shared[2].load() == 2; }, 30s));
    const int won = shared[1].load();
    shared[3].store(1);
    for (pid_t c : kids) ::waitpid(c, nullptr, 0);
    EXPECT_EQ(won, 1) << "round " << round;
    if (won > 1) ++both;
  }
  EXPECT_EQ(both, 0);
  ::munmap(shared, 4096);
}

TEST(StatsReader, RefusesCorruptTruncatedAndOtherVersionFiles) {
  testing::ScratchDir dir;
  const std::string path = dir.file("x.stats");
  {
    auto seg = StatsSegment::create(path, "x", "source", 8);
    ASSERT_TRUE(seg);
  }
  ASSERT_TRUE(StatsReader::open(path));

  const std::string other = dir.file("other.stats");
  std::filesystem::copy_file(path, other);
  const std::uint32_t v2 = 2;
  patch(other, 8, &v2, sizeof v2);
  auto r = StatsReader::open(other);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message().find("version 2, expected 1"), std::string::npos) << r.error().message();

  const std::string magic = dir.file("magic.stats");
  std::filesystem::copy_file(path, magic);
  const std::uint64_t junk = 42;
  patch(magic, 0, &junk, sizeof junk);
  EXPECT_FALSE(StatsReader::open(magic));

  const std::string truncated = dir.file("short.stats");
  std::filesystem::copy_file(path, truncated);
  std::filesystem::resize_file(truncated, 1000);
  r = StatsReader::open(truncated);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message().find("truncated"), std::string::npos) << r.error().message();
  std::filesystem::resize_file(truncated, 10);
  EXPECT_FALSE(StatsReader::open(truncated));

  const std::string huge = dir.file("capacity.stats");
  std::filesystem::copy_file(path, huge);
  const std::uint32_t capacity = 1000000;
  patch(huge, 24, &capacity, sizeof capacity);
  EXPECT_FALSE(StatsReader::open(huge));

  const std::string unready = dir.file("unready.stats");
  std::filesystem::copy_file(path, unready);
  const std::uint32_t zero = 0;
  patch(unready, 12, &zero, sizeof zero);
  EXPECT_FALSE(StatsReader::open(unready));

  EXPECT_FALSE(StatsReader::open(dir.file("missing.stats")));
}

TEST(StatsReader, SkipsMalformedEntriesAndClampsCount) {
  testing::ScratchDir dir;
  const std::string path = dir.file("x.stats");
  auto seg = StatsSegment::create(path, "x", "source", 4);
  ASSERT_TRUE(seg);
  ASSERT_TRUE(seg->register_counter("a_total", "a"));
  ASSERT_TRUE(seg->register_counter("b_total", "b"));
  // Entry 0's name length claims 200 bytes; the header claims 1000 entries.
  const std::uint8_t bad_len = 200;
  patch(path, 256 + 6, &bad_len, 1);
  const std::uint32_t count = 1000;
  patch(path, 28, &count, sizeof count);
  auto r = StatsReader::open(path);
  ASSERT_TRUE(r);
  const auto entries = r->snapshot();
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_EQ(entries[0].name, "b_total");
  EXPECT_EQ(r->malformed(), 3u);  // entry 0, and the two never published
  // The writer also refuses to reopen it and starts afresh.
  seg = make_error(std::errc::invalid_argument, "released");
  auto fresh = StatsSegment::create(path, "x", "source", 4);
  ASSERT_TRUE(fresh) << fresh.error().message();
  EXPECT_EQ(fresh->size(), 0u);
}

TEST(StatsSegment, ConcurrentWritersSumExactly) {
  testing::ScratchDir dir;
  const std::string path = dir.file("x.stats");
  auto seg = StatsSegment::create(path, "x", "source", 64);
  ASSERT_TRUE(seg);
  constexpr int kThreads = 8;
  constexpr std::uint64_t kAdds = 100000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&seg, t] {
      // Every thread registers the shared counter and one of its own, racing.
      auto shared = seg->register_counter("shared_total", "s");
      auto own = seg->register_counter("own_total", "o", {{"thread", std::to_string(t)}});
      ASSERT_TRUE(shared && own);
      for (std::uint64_t i = 0; i < kAdds; ++i) {
        (*shared)->fetch_add(1, std::memory_order_relaxed);
        (*own)->fetch_add(2, std::memory_order_relaxed);
      }
    });
  }
  for (auto& t : threads) t.join();
  auto r = StatsReader::open(path);
  ASSERT_TRUE(r);
  const auto entries = r->snapshot();
  EXPECT_EQ(entries.size(), 1u + kThreads);
  EXPECT_EQ(find(entries, "shared_total")->raw, kThreads * kAdds);
  for (int t = 0; t < kThreads; ++t) {
    const StatsEntry* e = find(entries, "own_total", {{"thread", std::to_string(t)}});
    ASSERT_NE(e, nullptr);
    EXPECT_EQ(e->raw, 2 * kAdds);
  }
}

TEST(StatsReader, ForkedReaderSeesWriterUpdates) {
  testing::ScratchDir dir;
  const std::string path = dir.file("x.stats");
  auto seg = StatsSegment::create(path, "x", "source", 8);
  ASSERT_TRUE(seg);
  auto c = seg->register_counter("lines_total", "l");
  ASSERT_TRUE(c);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    // Reader process: wait for the parent's value and for a new entry.
    auto r = StatsReader::open(path);
    if (!r) ::_exit(2);
    for (int i = 0; i < 5000; ++i) {
      const auto entries = r->snapshot();
      const StatsEntry* lines = find(entries, "lines_total");
      const StatsEntry* late = find(entries, "late_total");
      if (lines && late && lines->raw == 1000 && late->raw == 5) ::_exit(0);
      ::usleep(1000);
    }
    ::_exit(1);
  }
  for (int i = 0; i < 1000; ++i) (*c)->fetch_add(1, std::memory_order_relaxed);
  auto late = seg->register_counter("late_total", "late");
  ASSERT_TRUE(late);
  (*late)->store(5, std::memory_order_relaxed);
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

TEST(StatsSegment, ListsStatsFilesOfADirectory) {
  testing::ScratchDir dir;
  ASSERT_TRUE(StatsSegment::create(dir.file("b.stats"), "b", "source"));
  ASSERT_TRUE(StatsSegment::create(dir.file("a.stats"), "a", "source"));
  std::ofstream(dir.file("raw")) << "ring";
  const auto files = list_stats_segments(dir.path().string());
  ASSERT_EQ(files.size(), 2u);
  EXPECT_EQ(files[0], dir.file("a.stats"));
  EXPECT_EQ(files[1], dir.file("b.stats"));
  EXPECT_TRUE(list_stats_segments(dir.file("missing")).empty());
}

}  // namespace
}  // namespace ringpipe::stats
