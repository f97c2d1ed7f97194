// Single-thread tests that build ring states directly: file validation, wrap
// at every alignment, full/empty, positions near 2^32 and 2^64, batches,
// readers' cursors, lapping, recovery, corruption.

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "../../ring/src/layout.hpp"
#include "ring_test_util.hpp"
#include "ringpipe/ring/ring.hpp"
#include "test_support.hpp"

namespace ringpipe::ring {
namespace {

using ringpipe::testing::ScratchDir;
using testing::check_payload;
using testing::make_payload;
using testing::Stamp;

RingOptions small(Overflow o = Overflow::kBlock, std::uint64_t cap = 4096, std::uint32_t lanes = 2) {
  RingOptions opt;
  opt.lane_capacity_bytes = cap;
  opt.lanes = lanes;
  opt.max_readers = 4;
  opt.overflow = o;
  opt.reader_timeout = std::chrono::milliseconds(50);
  return opt;
}

std::vector<std::byte> bytes_of(std::string_view s) {
  std::vector<std::byte> v(s.size());
  if (!s.empty()) std::memcpy(v.data(), s.data(), s.size());
  return v;
}

std::vector<std::string> drain(Reader& r, std::size_t max = SIZE_MAX) {
  std::vector<std::string> out;
  r.poll(
      [&](const RecordView& v) { out.emplace_back(reinterpret_cast<const char*>(v.payload.data()), v.payload.size()); },
      max);
  return out;
}

TEST(RingFile, CreatesFileWithMode0600AndRefusesToCreateTwice) {
  ScratchDir dir;
  const std::string path = dir.file("sub/dir/raw");
  auto ring = Ring::create(path, small());
  ASSERT_TRUE(ring) << ring.error().message();
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(static_cast<std::uint64_t>(st.st_size), ring->stats().file_bytes);
  auto again = Ring::create(path, small());
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code, std::errc::file_exists);
}

TEST(RingFile, RejectsBadOptionsWithClearMessages) {
  ScratchDir dir;
  RingOptions o = small();
  o.lane_capacity_bytes = 5000;
  auto r = Ring::create(dir.file("a"), o);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message().find("power of two"), std::string::npos) << r.error().message();
  o = small();
  o.max_readers = 65;
  EXPECT_FALSE(Ring::create(dir.file("b"), o));
  o = small();
  o.lanes = 0;
  EXPECT_FALSE(Ring::create(dir.file("c"), o));
  o = small();
  o.max_record_bytes = 4096;
  EXPECT_FALSE(Ring::create(dir.file("d"), o));
  o = small();
  o.initial_position = 12;
  EXPECT_FALSE(Ring::create(dir.file("e"), o));
}

TEST(RingFile, OpenValidatesAndReportsGeometry) {
  ScratchDir dir;
  const std::string path = dir.file("raw");
  ASSERT_TRUE(Ring::create(path, small(Overflow::kDrop, 8192, 3)));
  auto r = Ring::open(path);
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->lane_capacity(), 8192u);
  EXPECT_EQ(r->lanes(), 3u);
  EXPECT_EQ(r->overflow(), Overflow::kDrop);
  EXPECT_EQ(r->max_record_bytes(), 2048u);
}

// Rewrites bytes of a ring file in place.
void poke(const std::string& path, std::size_t offset, const void* data, std::size_t n) {
  const int fd = ::open(path.c_str(), O_RDWR);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::pwrite(fd, data, n, static_cast<off_t>(offset)), static_cast<ssize_t>(n));
  ::close(fd);
}

TEST(RingFile, RefusesTruncatedFile) {
  ScratchDir dir;
  const std::string path = dir.file("raw");
  ASSERT_TRUE(Ring::create(path, small()));
  ASSERT_EQ(::truncate(path.c_str(), 8192), 0);
  auto r = Ring::open(path);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message().find("truncated"), std::string::npos) << r.error().message();
  ASSERT_EQ(::truncate(path.c_str(), 100), 0);
  r = Ring::open(path);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message().find("truncated: 100 bytes"), std::string::npos) << r.error().message();
}

TEST(RingFile, RefusesOtherVersion) {
  ScratchDir dir;
  const std::string path = dir.file("raw");
  ASSERT_TRUE(Ring::create(path, small()));
  const std::uint32_t v = 3;
  poke(path, offsetof(detail::RingHeader, version), &v, sizeof v);
  auto r = Ring::open(path);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message(), "open ring " + path +
                                     ": version 3, expected 2 (made by another ringpipe release; remove the file to "
                                     "re-create it): Invalid argument");
}

TEST(RingFile, RefusesHalfInitialisedFile) {
  ScratchDir dir;
  const std::string path = dir.file("raw");
  ASSERT_TRUE(Ring::create(path, small()));
  const std::uint32_t zero = 0;
  poke(path, offsetof(detail::RingHeader, ready), &zero, sizeof zero);
  auto r = Ring::open(path);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message().find("half-initialised"), std::string::npos) << r.error().message();
}

TEST(RingFile, RefusesInconsistentGeometry) {
  ScratchDir dir;
  const std::string path = dir.file("raw");
  ASSERT_TRUE(Ring::create(path, small()));
  const std::uint32_t lanes = 200;
  poke(path, offsetof(detail::RingHeader, lane_count), &lanes, sizeof lanes);
  auto r = Ring::open(path);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message().find("inconsistent header"), std::string::npos) << r.error().message();
}

TEST(RingFile, RefusesFileThatIsNotARing) {
  ScratchDir dir;
  const std::string path = dir.file("junk");
  std::ofstream(path) << std::string(10000, 'x');
  auto r = Ring::open(path);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message().find("bad magic"), std::string::npos);
  auto missing = Ring::open(dir.file("nope"));
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, std::errc::no_such_file_or_directory);
}

TEST(RingFile, OpenOrCreateRefusesOtherGeometry) {
  ScratchDir dir;
  const std::string path = dir.file("raw");
  ASSERT_TRUE(Ring::open_or_create(path, small()));
  ASSERT_TRUE(Ring::open_or_create(path, small()));
  auto other = Ring::open_or_create(path, small(Overflow::kDrop));
  ASSERT_FALSE(other);
  EXPECT_NE(other.error().message().find("another geometry"), std::string::npos);
  // reader_timeout lives in the file too: a changed one is refused, not ignored.
  RingOptions slower = small();
  slower.reader_timeout = slower.reader_timeout * 3;
  auto timeout = Ring::open_or_create(path, slower);
  ASSERT_FALSE(timeout);
  EXPECT_NE(timeout.error().message().find("reader_timeout"), std::string::npos) << timeout.error().message();
}

TEST(Producer, RefusesRecordLargerThanMaximum) {
  ScratchDir dir;
  auto ring = Ring::create(dir.file("r"), small());
  auto p = Producer::attach(*ring);
  ASSERT_TRUE(p);
  std::vector<std::byte> big(1025);
  EXPECT_EQ(p->try_write(1, big), WriteStatus::kTooLarge);
}

TEST(Producer, EachProducerTakesItsOwnLaneUntilNoneIsFree) {
  ScratchDir dir;
  auto ring = Ring::create(dir.file("r"), small(Overflow::kBlock, 4096, 2));
  auto a = Producer::attach(*ring);
  auto b = Producer::attach(*ring);
  ASSERT_TRUE(a && b);
  EXPECT_NE(a->lane(), b->lane());
  auto c = Producer::attach(*ring);
  ASSERT_FALSE(c);
  EXPECT_NE(c.error().message().find("no free lane"), std::string::npos);
  const std::uint32_t freed = a->lane();
  *a = std::move(*b);  // the first producer's lane is released
  auto d = Producer::attach(*ring);
  ASSERT_TRUE(d);
  EXPECT_EQ(d->lane(), freed);
}

TEST(Reader, SeesRecordsInOrderWithTypeAndSeq) {
  ScratchDir dir;
  auto ring = Ring::create(dir.file("r"), small());
  auto r = Reader::attach(*ring, "proc");
  auto p = Producer::attach(*ring);
  ASSERT_TRUE(r && p);
  EXPECT_FALSE(r->has_data());
  ASSERT_EQ(p->try_write(7, bytes_of("hello")), WriteStatus::kOk);
  ASSERT_EQ(p->try_write(8, bytes_of("")), WriteStatus::kOk);
  ASSERT_EQ(p->try_write(9, bytes_of("world!!!x")), WriteStatus::kOk);
  std::vector<RecordView> seen;
  std::vector<std::string> payloads;
  r->poll([&](const RecordView& v) {
    seen.push_back(v);
    payloads.emplace_back(reinterpret_cast<const char*>(v.payload.data()), v.payload.size());
  });
  ASSERT_EQ(seen.size(), 3u);
  EXPECT_EQ(payloads, (std::vector<std::string>{"hello", "", "world!!!x"}));
  EXPECT_EQ(seen[0].type, 7);
  EXPECT_EQ(seen[2].type, 9);
  EXPECT_EQ(seen[1].seq, seen[0].seq + 1);
  EXPECT_EQ(seen[2].seq, seen[1].seq + 1);
  EXPECT_FALSE(r->has_data());
  EXPECT_EQ(drain(*r).size(), 0u);
}

// Once producers gate on it, a durable reader reads in place. (Until then,
// and always for a non-durable one, it gets a checked copy: see
// RingIntegrity.UngatedReaderViewNeverChangesDuringItsCallback.)
TEST(Reader, PayloadViewPointsIntoTheMapping) {
  ScratchDir dir;
  auto ring = Ring::create(dir.file("r"), small());
  auto r = Reader::attach(*ring, "proc");
  auto p = Producer::attach(*ring);
  const std::vector<std::byte> rec(100, std::byte{1});
  for (int i = 0; i < 200; ++i) {  // several laps: producers have scanned the reader twice
    ASSERT_EQ(p->try_write(1, rec), WriteStatus::kOk);
    ASSERT_EQ(drain(*r).size(), 1u);
  }
  auto claim = p->try_claim(16);
  ASSERT_EQ(claim.size(), 16u);
  std::memcpy(claim.data(), "0123456789abcdef", 16);
  p->finish(3, 10);
  p->publish();
  const std::byte* where = nullptr;
  std::size_t size = 0;
  r->poll([&](const RecordView& v) {
    where = v.payload.data();
    size = v.payload.size();
  });
  EXPECT_EQ(where, claim.data());  // same bytes, no copy
  EXPECT_EQ(size, 10u);
}

TEST(Producer, BatchIsInvisibleUntilPublished) {
  ScratchDir dir;
  auto ring = Ring::create(dir.file("r"), small());
  auto r = Reader::attach(*ring, "proc");
  auto p = Producer::attach(*ring);
  for (int i = 0; i < 5; ++i) ASSERT_EQ(p->try_append(1, bytes_of("x" + std::to_string(i))), WriteStatus::kOk);
  EXPECT_FALSE(r->has_data());
  EXPECT_EQ(drain(*r).size(), 0u);
  p->publish();
  EXPECT_EQ(drain(*r), (std::vector<std::string>{"x0", "x1", "x2", "x3", "x4"}));
}

// The same for a reader long past attaching, which reads records by their
// seq without looking at the tail: the batch's first seq is its commit.
TEST(Producer, BatchIsInvisibleUntilPublishedToAGatedReader) {
  ScratchDir dir;
  auto ring = Ring::create(dir.file("r"), small(Overflow::kBlock, 4096, 1));
  auto r = Reader::attach(*ring, "proc");
  auto p = Producer::attach(*ring);
  std::vector<std::byte> rec(100, std::byte{1});
  for (int i = 0; i < 400; ++i) {
    ASSERT_EQ(p->try_write(1, rec), WriteStatus::kOk);
    ASSERT_EQ(drain(*r).size(), 1u);
  }
  for (int i = 0; i < 5; ++i) ASSERT_EQ(p->try_append(1, bytes_of("y" + std::to_string(i))), WriteStatus::kOk);
  EXPECT_FALSE(r->has_data());
  EXPECT_EQ(drain(*r).size(), 0u);
  p->publish();
  EXPECT_TRUE(r->has_data());
  EXPECT_EQ(drain(*r), (std::vector<std::string>{"y0", "y1", "y2", "y3", "y4"}));
}

// Every payload size from 0 to 300 written back to back through a 4 KiB lane
// makes the wrap hit every 8-byte alignment, including the 8-byte remainder
// where no pad header fits.
TEST(Ring, WrapsAtEveryAlignmentWithoutLosingOrCorruptingRecords) {
  for (std::uint64_t start : {std::uint64_t{0}, (std::uint64_t{1} << 32) - 4000, ~std::uint64_t{0} - 5007}) {
    ScratchDir dir;
    RingOptions o = small();
    o.initial_position = start;
    auto ring = Ring::create(dir.file("r"), o);
    ASSERT_TRUE(ring);
    auto r = Reader::attach(*ring, "proc");
    auto p = Producer::attach(*ring);
    std::vector<std::byte> buf(400);
    std::uint64_t seq = 0;
    std::uint64_t got = 0;
    for (int round = 0; round < 8; ++round) {
      for (std::size_t size = sizeof(Stamp); size < 300; ++size) {
        make_payload(std::span(buf).first(size), 1, seq);
        ASSERT_EQ(p->try_write(1, std::span(buf).first(size)), WriteStatus::kOk) << "size " << size;
        ++seq;
        r->poll([&](const RecordView& v) {
          Stamp s{};
          ASSERT_TRUE(check_payload(v.payload, s));
          ASSERT_EQ(s.seq, got);
          ++got;
        });
      }
    }
    EXPECT_EQ(got, seq);
    const ReaderStats st = r->stats();
    EXPECT_EQ(st.lapped_records + st.torn_records + st.corrupt_records, 0u);
  }
}

// A claim may end exactly at position 2^64, which is 0: the producer once
// took such a claim for "no claim open", so finish() dropped the record
// without a word (and the call that made it reported success).
TEST(Ring, AClaimEndingExactlyAtPosition2To64IsFinishedAndDelivered) {
  for (const bool batched : {false, true}) {
    ScratchDir dir;
    RingOptions o = small();
    o.initial_position = std::uint64_t{0} - 4096;  // one lap before 2^64
    auto ring = Ring::create(dir.file("r"), o);
    ASSERT_TRUE(ring);
    auto r = Reader::attach(*ring, "proc");
    auto p = Producer::attach(*ring);
    ASSERT_TRUE(r && p);
    std::vector<std::byte> buf(1008);  // 16 + 1008 = 1024 bytes: four fill the lap
    std::vector<std::uint64_t> positions;
    std::uint64_t got = 0;
    auto take = [&](const RecordView& v) {
      Stamp s{};
      ASSERT_TRUE(check_payload(v.payload, s));
      EXPECT_EQ(s.seq, got);
      positions.push_back(v.position);
      ++got;
    };
    for (std::uint64_t seq = 0; seq < 6; ++seq) {
      make_payload(buf, 1, seq);
      WriteStatus st;
      auto dst = p->claim(buf.size(), std::chrono::seconds(1), &st);
      ASSERT_EQ(st, WriteStatus::kOk) << "record " << seq;
      std::memcpy(dst.data(), buf.data(), buf.size());
      if (batched) {
        p->finish(1, buf.size());
        p->publish();
      } else {
        p->finish_and_publish(1, buf.size());
      }
      r->poll(take);
    }
    EXPECT_EQ(got, 6u) << (batched ? "finish + publish" : "finish_and_publish");
    ASSERT_EQ(positions.size(), 6u);
    EXPECT_EQ(positions[3], std::uint64_t{0} - 1024);  // ends at 2^64
    EXPECT_EQ(positions[4], 0u);
    const LaneStats lane = ring->stats().lane[p->lane()];
    EXPECT_EQ(lane.records, 6u);
    EXPECT_EQ(lane.tail, 6u * 1024 - 4096);
  }
}

TEST(Ring, DropPolicyRefusesAndCountsWhenFullThenAcceptsAfterRead) {
  ScratchDir dir;
  auto ring = Ring::create(dir.file("r"), small(Overflow::kDrop));
  auto r = Reader::attach(*ring, "proc");
  auto p = Producer::attach(*ring);
  std::vector<std::byte> rec(100);  // 116 -> 120 bytes each
  int ok = 0;
  while (p->try_write(1, rec) == WriteStatus::kOk) ++ok;
  EXPECT_EQ(ok, 4096 / 120);
  EXPECT_EQ(p->try_write(1, rec), WriteStatus::kFull);
  EXPECT_EQ(ring->stats().lane[p->lane()].dropped_records, 2u);
  EXPECT_EQ(drain(*r, 3).size(), 3u);
  EXPECT_EQ(p->try_write(1, rec), WriteStatus::kOk);
  EXPECT_EQ(drain(*r).size(), static_cast<std::size_t>(ok - 3 + 1));
}

TEST(Ring, BlockPolicyTimesOutOnALiveStalledReader) {
  ScratchDir dir;
  auto ring = Ring::create(dir.file("r"), small(Overflow::kBlock));
  auto r = Reader::attach(*ring, "proc");
  auto p = Producer::attach(*ring);
  std::vector<std::byte> rec(100);
  while (p->try_write(1, rec) == WriteStatus::kOk) {
  }
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(p->write(1, rec, std::chrono::milliseconds(30)), WriteStatus::kTimeout);
  EXPECT_GE(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(30));
  // The reader is alive (its lock is held): never evicted however long we wait.
  EXPECT_EQ(p->write(1, rec, std::chrono::milliseconds(120)), WriteStatus::kTimeout);
  EXPECT_EQ(ring->stats().readers[0].evictions, 0u);
}

TEST(Ring, DeadDurableReaderGatesForItsTimeoutThenStopsGating) {
  ScratchDir dir;
  auto ring = Ring::create(dir.file("r"), small(Overflow::kBlock));  // reader timeout 50 ms
  { auto gone = Reader::attach(*ring, "proc"); }                     // detached: lock released, slot kept
  auto p = Producer::attach(*ring);
  std::vector<std::byte> rec(100);
  std::uint64_t written = 0;
  while (p->try_write(1, rec) == WriteStatus::kOk) ++written;
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(p->write(1, rec, std::chrono::seconds(5)), WriteStatus::kOk);
  ++written;
  const auto waited = std::chrono::steady_clock::now() - t0;
  EXPECT_GE(waited, std::chrono::milliseconds(45));
  EXPECT_LT(waited, std::chrono::seconds(2));
  const RingStats s = ring->stats();
  ASSERT_EQ(s.readers.size(), 1u);
  EXPECT_EQ(s.readers[0].state, ReaderStats::State::kDead);
  EXPECT_EQ(s.readers[0].evictions, 1u);
  // Back again: it resumes, finds it was lapped, and counts exactly what it lost.
  auto back = Reader::attach(*ring, "proc");
  ASSERT_TRUE(back);
  std::uint64_t got = 0;
  std::uint64_t prev_seq = 0;
  back->poll([&](const RecordView& v) {
    if (got > 0) {
      EXPECT_EQ(v.seq, prev_seq + 1);  // what it reads after the loss is gap-free
    }
    prev_seq = v.seq;
    ++got;
  });
  const ReaderStats rs = back->stats();
  EXPECT_EQ(rs.state, ReaderStats::State::kActive);
  EXPECT_GT(got, 0u);
  EXPECT_GT(rs.lapped_records, 0u);
  // Every record written while it was away is either read now or counted lost.
  EXPECT_EQ(got + rs.lapped_records, written) << "got " << got << " lapped " << rs.lapped_records;
  EXPECT_EQ(rs.records, got);
  EXPECT_EQ(rs.corrupt_records, 0u);
  EXPECT_EQ(rs.lag_bytes, 0u);
  // The next record reaches it like any other.
  ASSERT_EQ(p->try_write(1, rec), WriteStatus::kOk);
  EXPECT_EQ(drain(*back).size(), 1u);
  EXPECT_EQ(back->stats().lapped_records, rs.lapped_records);
}

TEST(Ring, OverwritePolicyNeverRefusesAndLappedReaderCountsExactLoss) {
  ScratchDir dir;
  auto ring = Ring::create(dir.file("r"), small(Overflow::kOverwrite));
  auto r = Reader::attach(*ring, "proc");
  auto p = Producer::attach(*ring);
  std::vector<std::byte> rec(100);
  // Prime the reader's expected seq.
  make_payload(rec, 0, 0);
  ASSERT_EQ(p->try_write(1, rec), WriteStatus::kOk);
  ASSERT_EQ(drain(*r).size(), 1u);
  const int n = 500;  // ~15 laps of a 4 KiB lane
  for (int i = 1; i <= n; ++i) {
    make_payload(rec, 0, static_cast<std::uint64_t>(i));
    ASSERT_EQ(p->try_write(1, rec), WriteStatus::kOk);
  }
  std::uint64_t got = 0;
  std::uint64_t last = 0;
  r->poll([&](const RecordView& v) {
    Stamp s{};
    ASSERT_TRUE(check_payload(v.payload, s));
    EXPECT_GT(s.seq, last);
    last = s.seq;
    ++got;
  });
  EXPECT_EQ(last, static_cast<std::uint64_t>(n));
  const ReaderStats st = r->stats();
  EXPECT_EQ(got + st.lapped_records, static_cast<std::uint64_t>(n));
  EXPECT_GT(st.lapped_records, 0u);
}

// Starting positions whose runs cross 2^32 and 2^64 within a few laps of a
// 4 KiB lane (all multiples of 8), and an ordinary one.
constexpr std::uint64_t kStartPositions[] = {0, (std::uint64_t{1} << 32) - 4000, ~std::uint64_t{0} - 5007,
                                             ~std::uint64_t{0} - 20'007};

// True when a lane's 64-bit position went past `limit` counted from `start`,
// i.e. the test really ran across that boundary.
bool crossed(std::uint64_t start, std::uint64_t tail, std::uint64_t limit) { return limit - start < tail - start; }

TEST(Ring, OverwriteCountsExactLossWhilePositionsWrapPast2To64) {
  for (const std::uint64_t start : kStartPositions) {
    SCOPED_TRACE(start);
    ScratchDir dir;
    RingOptions o = small(Overflow::kOverwrite);
    o.initial_position = start;
    auto ring = Ring::create(dir.file("r"), o);
    ASSERT_TRUE(ring);
    auto r = Reader::attach(*ring, "proc");
    auto p = Producer::attach(*ring);
    ASSERT_TRUE(r && p);
    std::vector<std::byte> buf(300);
    std::uint64_t written = 0, got = 0;
    std::int64_t last = -1;
    auto check = [&](const RecordView& v) {
      Stamp s{};
      ASSERT_TRUE(check_payload(v.payload, s));
      EXPECT_GT(static_cast<std::int64_t>(s.seq), last);  // never twice, never out of order
      last = static_cast<std::int64_t>(s.seq);
      ++got;
    };
    // Bursts from 1 record to ~4 laps between reads: the reader is lapped
    // at every phase of the lane and of the position counter.
    for (int round = 0; round < 40; ++round) {
      const int burst = 1 + (round * 37) % 130;
      for (int i = 0; i < burst; ++i) {
        const std::size_t size = sizeof(Stamp) + (written * 11) % 200;
        make_payload(std::span(buf).first(size), 0, written);
        ASSERT_EQ(p->try_write(1, std::span(buf).first(size)), WriteStatus::kOk);
        ++written;
      }
      r->poll(check);
    }
    EXPECT_EQ(last, static_cast<std::int64_t>(written) - 1);  // the newest record always survives
    const RingStats st = ring->stats();
    const ReaderStats& rs = st.readers[0];
    EXPECT_EQ(st.lane[p->lane()].records, written);
    EXPECT_EQ(written, got + rs.lapped_records) << "got " << got << " lapped " << rs.lapped_records;
    EXPECT_GT(rs.lapped_records, 0u);
    EXPECT_EQ(rs.corrupt_records, 0u);
    EXPECT_EQ(rs.lag_bytes, 0u);
    if (start != 0) {
      EXPECT_TRUE(crossed(start, st.lane[p->lane()].tail, start >> 32 == 0 ? 1ULL << 32 : 0));
    }
  }
}

TEST(Ring, DropCountsEveryRefusedRecordWhilePositionsWrapPast2To64) {
  for (const std::uint64_t start : kStartPositions) {
    SCOPED_TRACE(start);
    ScratchDir dir;
    RingOptions o = small(Overflow::kDrop);
    o.initial_position = start;
    auto ring = Ring::create(dir.file("r"), o);
    ASSERT_TRUE(ring);
    auto r = Reader::attach(*ring, "proc");
    auto p = Producer::attach(*ring);
    ASSERT_TRUE(r && p);
    std::vector<std::byte> buf(300);
    std::uint64_t attempted = 0, accepted = 0, refused = 0, got = 0;
    auto check = [&](const RecordView& v) {
      Stamp s{};
      ASSERT_TRUE(check_payload(v.payload, s));
      EXPECT_EQ(s.seq, got);  // drop loses only what it refused: accepted records arrive gap-free
      ++got;
    };
    // Write until refused several times over, then read part of it back: the
    // lane is full at every phase of the position counter.
    for (int round = 0; round < 40; ++round) {
      const int burst = 10 + (round * 29) % 60;
      for (int i = 0; i < burst; ++i) {
        const std::size_t size = sizeof(Stamp) + (attempted * 11) % 200;
        make_payload(std::span(buf).first(size), 0, accepted);
        ++attempted;
        const WriteStatus ws = p->try_write(1, std::span(buf).first(size));
        if (ws == WriteStatus::kOk) {
          ++accepted;
        } else {
          ASSERT_EQ(ws, WriteStatus::kFull);
          ++refused;
        }
      }
      r->poll(check, 1 + static_cast<std::size_t>(round % 25));
    }
    r->poll(check);
    EXPECT_GT(refused, 0u);
    EXPECT_EQ(got, accepted);
    const RingStats st = ring->stats();
    const ReaderStats& rs = st.readers[0];
    EXPECT_EQ(st.lane[p->lane()].dropped_records, refused);
    EXPECT_EQ(st.lane[p->lane()].records, accepted);
    EXPECT_EQ(attempted, got + st.lane[p->lane()].dropped_records + rs.lapped_records);
    EXPECT_EQ(rs.lapped_records + rs.corrupt_records + rs.torn_records, 0u);
    if (start != 0) {
      EXPECT_TRUE(crossed(start, st.lane[p->lane()].tail, start >> 32 == 0 ? 1ULL << 32 : 0));
    }
  }
}

TEST(Ring, NamedReadersFanOutAndResumeFromTheirCursors) {
  ScratchDir dir;
  auto ring = Ring::create(dir.file("r"), small());
  auto a = Reader::attach(*ring, "a");
  auto b = Reader::attach(*ring, "b");
  auto p = Producer::attach(*ring);
  for (int i = 0; i < 6; ++i) ASSERT_EQ(p->try_write(1, bytes_of(std::to_string(i))), WriteStatus::kOk);
  EXPECT_EQ(drain(*a).size(), 6u);
  EXPECT_EQ(drain(*b, 2), (std::vector<std::string>{"0", "1"}));
  auto dup = Reader::attach(*ring, "b");
  ASSERT_FALSE(dup);
  EXPECT_NE(dup.error().message().find("already attached"), std::string::npos);
  b = tl::unexpected(Error{});  // detach b
  auto b2 = Reader::attach(*ring, "b");
  ASSERT_TRUE(b2);
  EXPECT_EQ(drain(*b2), (std::vector<std::string>{"2", "3", "4", "5"}));
}

TEST(Ring, NonDurableReaderFreesItsSlotAndNeverGates) {
  ScratchDir dir;
  auto ring = Ring::create(dir.file("r"), small(Overflow::kDrop));
  {
    auto t = Reader::attach(*ring, "tail", ReaderOptions{StartAt::kLatest, false, {}});
    ASSERT_TRUE(t);
    EXPECT_EQ(ring->stats().readers.size(), 1u);
    auto p = Producer::attach(*ring);
    std::vector<std::byte> rec(100);
    for (int i = 0; i < 200; ++i) ASSERT_EQ(p->try_write(1, rec), WriteStatus::kOk) << i;
  }
  EXPECT_EQ(ring->stats().readers.size(), 0u);
}

// A durable reader that does not gate: kept across restarts, never holds a
// block producer back, lapped instead, and counts exactly what it lost.
TEST(Ring, DurableNonGatingReaderIsLappedNotWaitedForAndResumesByName) {
  ScratchDir dir;
  auto ring = Ring::create(dir.file("r"), small(Overflow::kBlock, 4096, 1));
  ReaderOptions o;
  o.gating = false;
  const std::vector<std::byte> rec(100, std::byte{7});
  auto p = Producer::attach(*ring);
  {
    auto r = Reader::attach(*ring, "remote", o);
    ASSERT_TRUE(r);
    ASSERT_EQ(p->try_write(1, rec), WriteStatus::kOk);
    EXPECT_EQ(drain(*r).size(), 1u);
  }  // detached: its slot and cursor stay
  for (int i = 0; i < 200; ++i) ASSERT_EQ(p->try_write(1, rec), WriteStatus::kOk) << "write " << i << " waited for it";
  auto r = Reader::attach(*ring, "remote", o);
  ASSERT_TRUE(r);
  const std::size_t got = drain(*r).size();
  const ReaderStats st = r->stats();
  EXPECT_GT(got, 0u);
  EXPECT_LT(got, 200u);
  EXPECT_EQ(st.records, 1 + got);
  EXPECT_EQ(st.records + st.lapped_records, 201u);
}

// Fill is per lane: one lane held full by a gating reader shows as full even
// when the average over the lanes is low; a non-gating reader says so.
TEST(Ring, ReaderStatsGiveLagPerLaneAndWhetherTheReaderGates) {
  ScratchDir dir;
  auto ring = Ring::create(dir.file("r"), small(Overflow::kBlock, 4096, 4));
  auto gate = Reader::attach(*ring, "gate");
  ReaderOptions o;
  o.gating = false;
  auto loose = Reader::attach(*ring, "loose", o);
  auto p = Producer::attach(*ring);
  ASSERT_TRUE(gate && loose && p);
  const std::vector<std::byte> rec(100, std::byte{7});
  int written = 0;
  while (p->try_write(1, rec) == WriteStatus::kOk) ++written;
  ASSERT_GT(written, 30);
  for (const ReaderStats& r : ring->stats().readers) {
    ASSERT_EQ(r.lane_lag_bytes.size(), 4u);
    EXPECT_EQ(r.gating, r.name == "gate") << r.name;
    EXPECT_EQ(r.max_lane_lag_bytes, r.lane_lag_bytes[p->lane()]) << r.name;
    EXPECT_GT(r.max_lane_lag_bytes, 4096u * 3 / 4) << r.name << ": its fullest lane is nearly full";
    EXPECT_EQ(r.lag_bytes, r.max_lane_lag_bytes) << "one lane holds all of it";
  }
}

// Under overwrite no reader holds producers back, whatever it declared.
TEST(Ring, NoReaderGatesAnOverwriteRing) {
  ScratchDir dir;
  auto ring = Ring::create(dir.file("r"), small(Overflow::kOverwrite, 4096, 1));
  auto durable = Reader::attach(*ring, "durable");
  ASSERT_TRUE(durable);
  ASSERT_EQ(ring->stats().readers.size(), 1u);
  EXPECT_FALSE(ring->stats().readers[0].gating);
}

TEST(Ring, NewReaderStartsAtOldestOrLatest) {
  ScratchDir dir;
  auto ring = Ring::create(dir.file("r"), small());
  auto p = Producer::attach(*ring);
  for (int i = 0; i < 3; ++i) ASSERT_EQ(p->try_write(1, bytes_of(std::to_string(i))), WriteStatus::kOk);
  auto old = Reader::attach(*ring, "old", ReaderOptions{StartAt::kOldest, true, {}});
  auto late = Reader::attach(*ring, "late", ReaderOptions{StartAt::kLatest, true, {}});
  ASSERT_EQ(p->try_write(1, bytes_of("3")), WriteStatus::kOk);
  EXPECT_EQ(drain(*old).size(), 4u);
  EXPECT_EQ(drain(*late), (std::vector<std::string>{"3"}));
}

TEST(Ring, NewReaderCanStartWhereAnotherReaderIs) {
  ScratchDir dir;
  auto ring = Ring::create(dir.file("r"), small());
  auto trail = Reader::attach(*ring, "trail");
  auto p = Producer::attach(*ring);
  for (int i = 0; i < 5; ++i) ASSERT_EQ(p->try_write(1, bytes_of(std::to_string(i))), WriteStatus::kOk);
  EXPECT_EQ(drain(*trail, 2).size(), 2u);
  auto follower = Reader::attach(*ring, "follower", ReaderOptions{StartAt::kReader, true, "trail"});
  ASSERT_TRUE(follower);
  EXPECT_EQ(drain(*follower), (std::vector<std::string>{"2", "3", "4"}));
  auto missing = Reader::attach(*ring, "other", ReaderOptions{StartAt::kReader, true, "nobody"});
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().message().find("no reader named nobody"), std::string::npos);
}

TEST(Ring, RejectsReaderBeyondMaximumAndBadNames) {
  ScratchDir dir;
  auto ring = Ring::create(dir.file("r"), small());
  std::vector<Reader> readers;
  for (int i = 0; i < 4; ++i) readers.push_back(std::move(*Reader::attach(*ring, "r" + std::to_string(i))));
  auto extra = Reader::attach(*ring, "r9");
  ASSERT_FALSE(extra);
  EXPECT_NE(extra.error().message().find("no free reader slot"), std::string::npos);
  EXPECT_FALSE(Reader::attach(*ring, ""));
  EXPECT_FALSE(Reader::attach(*ring, std::string(40, 'n')));
  EXPECT_FALSE(ring->remove_reader("r1"));  // alive
  readers.erase(readers.begin() + 1);
  EXPECT_TRUE(ring->remove_reader("r1"));
  EXPECT_TRUE(Reader::attach(*ring, "r9"));
}

TEST(Ring, TakeoverOfALaneWithAnOpenClaimCountsARecoveredClaim) {
  ScratchDir dir;
  auto ring = Ring::create(dir.file("r"), small(Overflow::kBlock, 4096, 1));
  auto r = Reader::attach(*ring, "proc");
  {
    auto p = Producer::attach(*ring);
    ASSERT_EQ(p->try_write(1, bytes_of("committed")), WriteStatus::kOk);
  }
  // What a producer killed between claim and publish leaves behind: intent
  // ahead of tail and garbage bytes after the tail.
  const std::uint64_t lane_off = detail::compute_layout(4096, 1, 4).lanes_offset;
  std::uint64_t tail = 0;
  {
    const int fd = ::open(ring->path().c_str(), O_RDONLY);
    ASSERT_EQ(::pread(fd, &tail, sizeof tail, static_cast<off_t>(lane_off + offsetof(detail::LaneControl, tail))), 8);
    ::close(fd);
  }
  const std::uint64_t intent = tail + 64;
  poke(ring->path(), lane_off + offsetof(detail::LaneControl, intent), &intent, sizeof intent);
  const std::uint32_t dead_pid = 999'999;  // a clean detach leaves 0 here
  poke(ring->path(), lane_off + offsetof(detail::LaneControl, owner_pid), &dead_pid, sizeof dead_pid);
  const std::vector<std::byte> garbage(64, std::byte{0xEE});
  poke(ring->path(), detail::compute_layout(4096, 1, 4).data_offset + tail, garbage.data(), garbage.size());

  EXPECT_EQ(drain(*r), (std::vector<std::string>{"committed"}));
  auto p = Producer::attach(*ring);
  ASSERT_TRUE(p);
  EXPECT_EQ(ring->stats().lane[0].recovered_claims, 1u);
  ASSERT_EQ(p->try_write(1, bytes_of("next")), WriteStatus::kOk);
  EXPECT_EQ(drain(*r), (std::vector<std::string>{"next"}));
  const ReaderStats st = r->stats();
  EXPECT_EQ(st.lapped_records + st.corrupt_records + st.torn_records, 0u);
}

TEST(Reader, CountsAndSkipsACorruptLength) {
  ScratchDir dir;
  auto ring = Ring::create(dir.file("r"), small());
  auto r = Reader::attach(*ring, "proc");
  auto p = Producer::attach(*ring);
  ASSERT_EQ(p->try_write(1, bytes_of("good")), WriteStatus::kOk);
  ASSERT_EQ(p->try_write(1, bytes_of("bad")), WriteStatus::kOk);
  EXPECT_EQ(drain(*r, 1).size(), 1u);
  // Someone scribbles a huge length over the second record's header.
  const std::string path = ring->path();
  const std::uint64_t data_off = detail::compute_layout(4096, 2, 4).data_offset + p->lane() * 4096ULL;
  const std::uint32_t huge = 0x7fffffff;
  poke(path, data_off + detail::record_bytes(4), &huge, sizeof huge);
  EXPECT_EQ(drain(*r).size(), 0u);
  EXPECT_EQ(r->stats().corrupt_records, 1u);
  // The lane goes on working after the skip.
  ASSERT_EQ(p->try_write(1, bytes_of("after")), WriteStatus::kOk);
  EXPECT_EQ(drain(*r), (std::vector<std::string>{"after"}));
}

// Past the newest record lie bytes of older laps, often the middle of an old
// payload; whatever they hold must never pass for the next record's seq.
TEST(Reader, NeverMistakesStaleBytesForTheNextRecord) {
  ScratchDir dir;
  auto ring = Ring::create(dir.file("r"), small(Overflow::kBlock, 4096, 1));
  auto r = Reader::attach(*ring, "proc");
  auto p = Producer::attach(*ring);
  std::vector<std::byte> rec(100, std::byte{0x11});
  for (int i = 0; i < 400; ++i) {  // ~12 laps: producers have scanned the readers since it attached
    ASSERT_EQ(p->try_write(1, rec), WriteStatus::kOk);
    EXPECT_EQ(drain(*r).size(), 1u);
  }
  const std::uint64_t tail = ring->stats().lane[0].tail;
  const std::uint64_t garbage = ~std::uint64_t{0} >> 1;  // a "seq" far ahead of the one expected
  poke(ring->path(), detail::compute_layout(4096, 1, 4).data_offset + (tail & 4095) + 8, &garbage, sizeof garbage);
  EXPECT_FALSE(r->has_data());
  EXPECT_FALSE(r->wait(std::chrono::milliseconds(20)));
  EXPECT_EQ(drain(*r).size(), 0u);
  ASSERT_EQ(p->try_write(1, bytes_of("next")), WriteStatus::kOk);
  EXPECT_TRUE(r->has_data());
  EXPECT_EQ(drain(*r), (std::vector<std::string>{"next"}));
  const ReaderStats st = r->stats();
  EXPECT_EQ(st.lapped_records + st.corrupt_records, 0u);
}

TEST(Reader, CountsAMisalignedCursorAsCorruptionAndRecovers) {
  ScratchDir dir;
  auto ring = Ring::create(dir.file("r"), small(Overflow::kBlock, 4096, 1));
  auto p = Producer::attach(*ring);
  {
    auto r = Reader::attach(*ring, "proc");
    ASSERT_EQ(p->try_write(1, bytes_of("a")), WriteStatus::kOk);
    EXPECT_EQ(drain(*r).size(), 1u);
  }
  // Scribble an odd position over the detached reader's cursor for lane 0.
  const detail::Layout l = detail::compute_layout(4096, 1, 4);
  const std::uint64_t odd = 13;
  poke(ring->path(), l.readers_offset + sizeof(detail::ReaderSlot), &odd, sizeof odd);
  auto r = Reader::attach(*ring, "proc");
  ASSERT_TRUE(r);
  EXPECT_EQ(drain(*r).size(), 0u);
  EXPECT_EQ(r->stats().corrupt_records, 1u);
  ASSERT_EQ(p->try_write(1, bytes_of("b")), WriteStatus::kOk);
  EXPECT_EQ(drain(*r), (std::vector<std::string>{"b"}));
}

TEST(Producer, MakesNoWakeSyscallWhileNoReaderSleeps) {
  ScratchDir dir;
  auto ring = Ring::create(dir.file("r"), small(Overflow::kBlock, 4096, 1));
  auto r = Reader::attach(*ring, "proc");
  auto p = Producer::attach(*ring);
  ASSERT_TRUE(r && p);
  std::vector<std::byte> rec(100);
  std::uint64_t got = 0;
  for (int i = 0; i < 500; ++i) {  // ~15 laps, published one record at a time
    ASSERT_EQ(p->try_write(1, rec), WriteStatus::kOk);
    EXPECT_TRUE(r->wait(std::chrono::nanoseconds(0)));  // data is there: returns before any sleep
    got += drain(*r).size();
    // A reader that waits with a zero timeout spins and yields but never sleeps.
    EXPECT_FALSE(r->wait(std::chrono::nanoseconds(0)));
  }
  EXPECT_EQ(got, 500u);
  const RingStats st = ring->stats();
  EXPECT_EQ(st.lane[0].records, 500u);
  EXPECT_EQ(st.readers[0].sleeps, 0u);
  EXPECT_EQ(st.lane[0].wakes, 0u);  // no one slept, so no futex wake was made
}

TEST(Reader, SleepingReaderCountsItsSleepAndTheNextPublishWakesIt) {
  ScratchDir dir;
  auto ring = Ring::create(dir.file("r"), small(Overflow::kBlock, 4096, 1));
  auto r = Reader::attach(*ring, "proc");
  auto p = Producer::attach(*ring);
  ASSERT_TRUE(r && p);
  // Far longer than the test may take: if the publish did not wake the
  // reader, wait() would return only at this deadline.
  constexpr auto kWaitLimit = std::chrono::seconds(30);
  bool woke = false;
  std::chrono::steady_clock::duration slept{};
  std::thread sleeper([&] {
    const auto t0 = std::chrono::steady_clock::now();
    woke = r->wait(kWaitLimit);
    slept = std::chrono::steady_clock::now() - t0;
  });
  // The reader counts a sleep just before it blocks on the futex.
  const bool asleep =
      ringpipe::testing::wait_until([&] { return ring->stats().readers[0].sleeps >= 1; }, std::chrono::seconds(10));
  EXPECT_EQ(ring->stats().lane[0].wakes, 0u);
  ASSERT_EQ(p->try_write(1, bytes_of("wake")), WriteStatus::kOk);
  sleeper.join();
  ASSERT_TRUE(asleep);
  EXPECT_TRUE(woke);
  EXPECT_LT(slept, kWaitLimit / 2);  // woken by the publish, not by its own deadline
  const RingStats st = ring->stats();
  EXPECT_GE(st.readers[0].sleeps, 1u);
  EXPECT_EQ(st.lane[0].wakes, 1u);  // one publish saw a sleeper: one wake syscall
  EXPECT_EQ(drain(*r), (std::vector<std::string>{"wake"}));
  // Awake again, the reader no longer counts as a sleeper: later publishes make no syscall.
  ASSERT_EQ(p->try_write(1, bytes_of("more")), WriteStatus::kOk);
  EXPECT_EQ(ring->stats().lane[0].wakes, 1u);
  EXPECT_EQ(drain(*r), (std::vector<std::string>{"more"}));
}

// With a latency budget a reader that keeps receiving records looks at the
// ring once per budget and takes what came meanwhile in one poll: no wake
// syscall from the producer and no futex sleep while records flow, only the
// first record after idleness wakes it.
TEST(Reader, WaitBudgetTakesAStreamInOnePollPerBudgetWithoutWakeSyscalls) {
  ScratchDir dir;
  RingOptions opt = small(Overflow::kBlock, 1 << 16, 1);
  auto ring = Ring::create(dir.file("r"), opt);
  auto r = Reader::attach(*ring, "proc");
  auto p = Producer::attach(*ring);
  ASSERT_TRUE(r && p);
  constexpr auto kBudget = std::chrono::milliseconds(4);
  r->set_wait_budget(kBudget, std::chrono::seconds(30));  // longer than the test: busy from the first record on
  constexpr int kRecords = 300;
  std::atomic<std::uint64_t> got{0};
  std::uint64_t polls = 0;  // polls that found records
  std::chrono::steady_clock::duration busy{};
  std::thread reader([&] {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    std::chrono::steady_clock::time_point first{};
    while (got < kRecords && std::chrono::steady_clock::now() < deadline) {
      (void)r->wait(std::chrono::seconds(1));
      const std::size_t n = drain(*r).size();
      if (n == 0) continue;
      if (polls++ == 0) first = std::chrono::steady_clock::now();
      got += n;
    }
    busy = std::chrono::steady_clock::now() - first;
  });
  // Let the reader fall asleep on the futex first (nothing has arrived yet).
  ASSERT_TRUE(
      ringpipe::testing::wait_until([&] { return ring->stats().readers[0].sleeps >= 1; }, std::chrono::seconds(10)));
  std::vector<std::byte> rec(24);
  // The first record wakes it. Until the woken reader has cleared its
  // sleeper bit (slow under a sanitizer or a loaded machine) a publish would
  // count another wake: the stream starts once it has taken that record.
  ASSERT_EQ(p->try_write(1, rec), WriteStatus::kOk);
  ASSERT_TRUE(ringpipe::testing::wait_until([&] { return got.load() >= 1; }, std::chrono::seconds(10)));
  for (int i = 1; i < kRecords; ++i) {  // one record every ~100 us: far more often than the budget
    ASSERT_EQ(p->try_write(1, rec), WriteStatus::kOk);
    std::this_thread::sleep_for(std::chrono::microseconds(100));
  }
  reader.join();
  EXPECT_EQ(got.load(), static_cast<std::uint64_t>(kRecords));
  const RingStats st = ring->stats();
  EXPECT_EQ(st.lane[0].wakes, 1u);      // only the first record found the reader asleep
  EXPECT_EQ(st.readers[0].sleeps, 1u);  // busy: it napped, never slept on the futex again
  // About one poll per budget while the stream lasted: a record that lands
  // while the reader drains (a slow machine, a sanitizer) is found at once by
  // the next look, without a nap, so allow two per budget, plus the first and
  // the last. Without a budget it is one poll per record.
  const auto budgets = static_cast<std::uint64_t>(busy / kBudget);
  EXPECT_LE(polls, 2 * budgets + 2) << "busy " << std::chrono::duration<double>(busy).count() << " s";
  EXPECT_LT(polls, static_cast<std::uint64_t>(kRecords) / 4);
}

// Once nothing arrived for the idle time, a budgeted reader sleeps on the
// futex again and the next record wakes it at once, not after a budget.
TEST(Reader, WaitBudgetSleepsOnTheFutexWhenIdleAndIsWokenByTheNextRecord) {
  ScratchDir dir;
  auto ring = Ring::create(dir.file("r"), small(Overflow::kBlock, 4096, 1));
  auto r = Reader::attach(*ring, "proc");
  auto p = Producer::attach(*ring);
  ASSERT_TRUE(r && p);
  r->set_wait_budget(std::chrono::seconds(20), std::chrono::milliseconds(1));
  ASSERT_EQ(p->try_write(1, bytes_of("one")), WriteStatus::kOk);
  EXPECT_TRUE(r->wait(std::chrono::seconds(1)));
  EXPECT_EQ(drain(*r), (std::vector<std::string>{"one"}));
  std::this_thread::sleep_for(std::chrono::milliseconds(5));  // idle for longer than 1 ms
  bool woke = false;
  std::chrono::steady_clock::duration slept{};
  std::thread sleeper([&] {
    const auto t0 = std::chrono::steady_clock::now();
    woke = r->wait(std::chrono::seconds(30));
    slept = std::chrono::steady_clock::now() - t0;
  });
  ASSERT_TRUE(
      ringpipe::testing::wait_until([&] { return ring->stats().readers[0].sleeps >= 1; }, std::chrono::seconds(10)));
  ASSERT_EQ(p->try_write(1, bytes_of("two")), WriteStatus::kOk);
  sleeper.join();
  EXPECT_TRUE(woke);
  EXPECT_LT(slept, std::chrono::seconds(15));  // the publish woke it: neither the 20 s budget nor the deadline
  EXPECT_EQ(ring->stats().lane[0].wakes, 1u);
  EXPECT_EQ(drain(*r), (std::vector<std::string>{"two"}));
}

// lag_bytes = the bytes between each lane's published tail and the reader's
// cursor, headers and padding included; a batch that is not published yet
// is not lag.
TEST(Reader, LagBytesAreTheCommittedBytesNotYetRead) {
  ScratchDir dir;
  auto ring = Ring::create(dir.file("r"), small(Overflow::kBlock, 4096, 2));
  auto r = Reader::attach(*ring, "proc");
  auto a = Producer::attach(*ring);
  auto b = Producer::attach(*ring);
  ASSERT_TRUE(r && a && b);
  auto lag = [&] { return ring->stats().readers[0].lag_bytes; };
  EXPECT_EQ(lag(), 0u);
  std::uint64_t unread = 0;
  for (int i = 0; i < 10; ++i) {
    const std::size_t size = 20 + static_cast<std::size_t>(i) * 13;
    ASSERT_EQ(a->try_write(1, std::vector<std::byte>(size)), WriteStatus::kOk);
    unread += detail::record_bytes(size);
  }
  for (int i = 0; i < 3; ++i) {
    ASSERT_EQ(b->try_write(1, std::vector<std::byte>(40)), WriteStatus::kOk);
    unread += detail::record_bytes(40);
  }
  EXPECT_EQ(lag(), unread);
  // Read part of it, whichever lanes the reader visits first.
  for (const std::size_t n : {1u, 4u, 2u}) {
    r->poll([&](const RecordView& v) { unread -= detail::record_bytes(v.payload.size()); }, n);
    EXPECT_EQ(lag(), unread);
  }
  // Appended but unpublished records are not lag; published ones are.
  ASSERT_EQ(a->try_append(1, std::vector<std::byte>(64)), WriteStatus::kOk);
  ASSERT_EQ(a->try_append(1, std::vector<std::byte>(8)), WriteStatus::kOk);
  EXPECT_EQ(lag(), unread);
  a->publish();
  unread += detail::record_bytes(64) + detail::record_bytes(8);
  EXPECT_EQ(lag(), unread);
  EXPECT_GT(unread, 0u);
  r->poll([](const RecordView&) {});
  EXPECT_EQ(lag(), 0u);
}

// lag_records = records published and not yet read, from sequence numbers:
// right for a reader made anew from another one's place (kReader, as a
// processor's reader is re-made from its gate after a crash), whose own
// `records` restart at 0.
TEST(Reader, LagRecordsCountPublishedRecordsNotYetReadAlsoForASlotMadeAnew) {
  ScratchDir dir;
  auto ring = Ring::create(dir.file("r"), small(Overflow::kBlock, 4096, 2));
  auto gate = Reader::attach(*ring, "proc.c");
  auto a = Producer::attach(*ring);
  auto b = Producer::attach(*ring);
  ASSERT_TRUE(gate && a && b);
  auto stats_of = [&](std::string_view name) {
    for (const ReaderStats& r : ring->stats().readers)
      if (r.name == name) return r;
    return ReaderStats{};
  };
  EXPECT_TRUE(stats_of("proc.c").lag_records_known);
  EXPECT_EQ(stats_of("proc.c").lag_records, 0u);
  for (int i = 0; i < 7; ++i) ASSERT_EQ(a->try_write(1, std::vector<std::byte>(30)), WriteStatus::kOk);
  for (int i = 0; i < 3; ++i) ASSERT_EQ(b->try_write(1, std::vector<std::byte>(30)), WriteStatus::kOk);
  gate->poll([](const RecordView&) {}, 4);
  ReaderStats g = stats_of("proc.c");
  ASSERT_TRUE(g.lag_records_known);
  EXPECT_EQ(g.lag_records, 10u - g.records);
  EXPECT_EQ(g.records, 4u);

  ReaderOptions from_gate;
  from_gate.start = StartAt::kReader;
  from_gate.from = "proc.c";
  auto proc = Reader::attach(*ring, "proc", from_gate);
  ASSERT_TRUE(proc);
  ReaderStats p = stats_of("proc");
  EXPECT_EQ(p.records, 0u);
  ASSERT_TRUE(p.lag_records_known);
  EXPECT_EQ(p.lag_records, 6u) << "where the gate is, not everything the ring ever held";
  proc->poll([](const RecordView&) {});
  EXPECT_EQ(stats_of("proc").lag_records, 0u);
  EXPECT_EQ(stats_of("proc").records, 6u);
}

// Sixteen named readers at sixteen different paces on one lane under
// `block`: the slowest holds the producer back, and each gets every record
// exactly once, in order, across many laps.
TEST(Ring, SixteenReadersAtDifferentPacesEachGetEveryRecordExactlyOnce) {
  ScratchDir dir;
  RingOptions o = small(Overflow::kBlock, 4096, 1);
  o.max_readers = 16;
  auto ring = Ring::create(dir.file("r"), o);
  ASSERT_TRUE(ring);
  std::vector<Reader> readers;
  for (int i = 0; i < 16; ++i) {
    auto r = Reader::attach(*ring, "r" + std::to_string(i));
    ASSERT_TRUE(r) << r.error().message();
    readers.push_back(std::move(*r));
  }
  EXPECT_FALSE(Reader::attach(*ring, "one-too-many"));
  auto p = Producer::attach(*ring);
  ASSERT_TRUE(p);
  constexpr std::uint64_t kRecords = 1000;  // ~30 laps
  std::vector<std::byte> buf(100);
  std::uint64_t written = 0, full = 0;
  std::vector<std::uint64_t> got(readers.size(), 0);
  std::uint64_t bad = 0;
  for (int round = 0; round < 100'000; ++round) {
    while (written < kRecords) {
      make_payload(buf, 0, written);
      if (p->try_write(1, buf) != WriteStatus::kOk) {
        ++full;
        break;
      }
      ++written;
    }
    bool all = true;
    for (std::size_t i = 0; i < readers.size(); ++i) {
      readers[i].poll(
          [&](const RecordView& v) {
            Stamp s{};
            if (!check_payload(v.payload, s) || s.seq != got[i]) ++bad;
            ++got[i];
          },
          1 + i * 3);
      all = all && got[i] == kRecords;
    }
    if (all) break;
  }
  EXPECT_EQ(bad, 0u);
  EXPECT_GT(full, 0u);  // the slowest reader did hold the producer back
  const RingStats st = ring->stats();
  ASSERT_EQ(st.readers.size(), 16u);
  for (std::size_t i = 0; i < readers.size(); ++i) {
    EXPECT_EQ(got[i], kRecords) << "reader " << i;
    EXPECT_EQ(st.readers[i].records, kRecords);
    EXPECT_EQ(st.readers[i].lapped_records + st.readers[i].corrupt_records + st.readers[i].torn_records, 0u);
  }
}

TEST(Reader, WaitSleepsUntilAProducerPublishes) {
  ScratchDir dir;
  auto ring = Ring::create(dir.file("r"), small());
  auto r = Reader::attach(*ring, "proc");
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_FALSE(r->wait(std::chrono::milliseconds(20)));
  EXPECT_GE(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(20));
  std::thread writer([&] {
    auto p = Producer::attach(*ring);
    std::this_thread::sleep_for(std::chrono::milliseconds(30));
    ASSERT_EQ(p->try_write(1, bytes_of("wake")), WriteStatus::kOk);
  });
  EXPECT_TRUE(r->wait(std::chrono::seconds(5)));
  writer.join();
  EXPECT_EQ(drain(*r), (std::vector<std::string>{"wake"}));
}

}  // namespace
}  // namespace ringpipe::ring

namespace ringpipe::ring {
namespace {

TEST(Reader, PollWhileLeavesARefusedRecordUnreadForThisAndTheNextReader) {
  for (const Overflow o : {Overflow::kBlock, Overflow::kOverwrite}) {
    SCOPED_TRACE(overflow_name(o));
    ScratchDir dir;
    auto ring = Ring::create(dir.file("r"), small(o, 4096, 1));
    ASSERT_TRUE(ring);
    auto p = Producer::attach(*ring);
    ASSERT_TRUE(p);
    {
      auto r = Reader::attach(*ring, "committer");
      ASSERT_TRUE(r);
      for (const char* s : {"a", "b", "c"}) ASSERT_EQ(p->try_write(1, bytes_of(s)), WriteStatus::kOk);
      std::vector<std::string> offered;
      auto take_until_b = [&](const RecordView& v) {
        offered.emplace_back(reinterpret_cast<const char*>(v.payload.data()), v.payload.size());
        return offered.back() != "b";
      };
      EXPECT_EQ(r->poll_while(take_until_b), 1u);
      EXPECT_EQ(offered, (std::vector<std::string>{"a", "b"}));  // c is not offered after the refusal
      EXPECT_EQ(drain(*r, 1), std::vector<std::string>{"b"});
      // Refused on the fast path of a reader that knows the next seq.
      EXPECT_EQ(r->poll_while([](const RecordView&) { return false; }), 0u);
    }
    auto again = Reader::attach(*ring, "committer");
    ASSERT_TRUE(again);
    EXPECT_EQ(drain(*again), std::vector<std::string>{"c"});
  }
}

TEST(RingFile, OpenRefusesASymlinkAtTheRingsName) {
  ScratchDir dir;
  RingOptions o;
  o.lane_capacity_bytes = 1 << 16;
  ASSERT_TRUE(Ring::create(dir.file("real"), o));
  std::filesystem::create_symlink(dir.file("real"), dir.file("raw"));
  auto r = Ring::open(dir.file("raw"));
  EXPECT_FALSE(r) << "a ring was opened (read-write) through a symlink";
}

}  // namespace
}  // namespace ringpipe::ring
