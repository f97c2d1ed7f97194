// The ring's promises under adversarial bytes: a reader never delivers a
// record no producer committed, a dead producer's unpublished batch is never
// seen, hostile headers cannot hang a reader, and shared geometry cannot be
// changed under a process that validated it. Each test builds the exact
// byte state that broke a promise once.

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstring>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "../../ring/src/layout.hpp"
#include "../../ring/src/os.hpp"
#include "ring_test_util.hpp"
#include "ringpipe/ring/ring.hpp"
#include "test_support.hpp"

namespace ringpipe::ring {
namespace {

using ringpipe::testing::ScratchDir;

constexpr std::uint64_t kCap = 4096;

RingOptions one_lane(Overflow o = Overflow::kBlock, std::uint32_t lanes = 1, std::uint32_t readers = 4) {
  RingOptions opt;
  opt.lane_capacity_bytes = kCap;
  opt.lanes = lanes;
  opt.max_readers = readers;
  opt.overflow = o;
  opt.reader_timeout = std::chrono::milliseconds(50);
  return opt;
}

std::vector<std::byte> bytes_of(std::string_view s) {
  std::vector<std::byte> v(s.size());
  if (!s.empty()) std::memcpy(v.data(), s.data(), s.size());
  return v;
}

struct Got {
  std::uint64_t seq;
  std::string payload;
};

std::vector<Got> drain(Reader& r) {
  std::vector<Got> out;
  r.poll([&](const RecordView& v) {
    out.push_back({v.seq, std::string(reinterpret_cast<const char*>(v.payload.data()), v.payload.size())});
  });
  return out;
}

void poke(const std::string& path, std::uint64_t offset, const void* data, std::size_t n) {
  const int fd = ::open(path.c_str(), O_RDWR);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::pwrite(fd, data, n, static_cast<off_t>(offset)), static_cast<ssize_t>(n));
  ::close(fd);
}

std::uint64_t lane_data_offset(const Ring& ring, std::uint32_t lane = 0) {
  return detail::compute_layout(ring.lane_capacity(), ring.lanes(), ring.max_readers()).data_offset +
         std::uint64_t{lane} * ring.lane_capacity();
}

// Writes and reads one record at a time until producers have scanned the
// reader twice (it then reads by seq, without the tail) and the lane's tail
// sits at the start of a lap.
void warm_up_to_lap_start(Producer& p, Reader& r) {
  const std::vector<std::byte> rec(1008, std::byte{0});  // 1024 bytes a record: laps stay aligned
  for (int i = 0; i < 64; ++i) {                         // 16 laps of 4 records
    ASSERT_EQ(p.try_write(1, rec), WriteStatus::kOk);
    ASSERT_EQ(drain(r).size(), 1u);
  }
}

// Finding 1: past the newest record lie an older lap's payload bytes. A
// payload word that equals the next seq, after one that looks like a length
// and a type, made the reader deliver a record nobody wrote. Payload bytes
// come from the network, so a sender can plant them on purpose.
TEST(RingIntegrity, ReaderNeverDeliversARecordPlantedInAnOldPayload) {
  ScratchDir dir;
  auto ring = Ring::create(dir.file("r"), one_lane());
  ASSERT_TRUE(ring);
  auto r = Reader::attach(*ring, "proc");
  auto p = Producer::attach(*ring);
  ASSERT_TRUE(r && p);
  warm_up_to_lap_start(*p, *r);
  ASSERT_EQ(ring->stats().lane[0].tail % kCap, 0u);

  // Lap A: a poison payload at lane offset 0, words at offsets = 0 mod 16 look
  // like "length 8, type 1", words at 8 mod 16 hold the seq the reader will
  // expect after the first record of lap B.
  const std::uint64_t s1 = ring->stats().lane[0].next_seq;
  const std::uint64_t forged_seq = s1 + 5;  // poison, 3 fillers, then lap B's first record
  std::vector<std::byte> poison(1008);
  for (std::size_t i = 0; i < poison.size(); i += 8) {
    const std::uint64_t lane_off = 16 + i;
    const std::uint64_t word = lane_off % 16 == 0 ? (std::uint64_t{8} | (std::uint64_t{1} << 32)) : forged_seq;
    std::memcpy(&poison[i], &word, 8);
  }
  ASSERT_EQ(p->try_write(1, poison), WriteStatus::kOk);
  ASSERT_EQ(drain(*r).size(), 1u);
  const std::vector<std::byte> filler(1008, std::byte{0});
  for (int i = 0; i < 3; ++i) {
    ASSERT_EQ(p->try_write(1, filler), WriteStatus::kOk);
    ASSERT_EQ(drain(*r).size(), 1u);
  }

  // Lap B: one 32-byte record; the next header slot (offset 32) still holds
  // the poison's words.
  ASSERT_EQ(p->try_write(1, bytes_of("sixteen-bytes!!!")), WriteStatus::kOk);
  const std::uint64_t last_published = ring->stats().lane[0].next_seq - 1;
  const std::vector<Got> got = drain(*r);
  ASSERT_FALSE(got.empty());
  for (const Got& g : got) EXPECT_LE(g.seq, last_published) << "delivered a record that was never published";
  EXPECT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].payload, "sixteen-bytes!!!");
  const ReaderStats st = r->stats();
  EXPECT_EQ(st.corrupt_records + st.lapped_records, 0u);
  // And the lane goes on: the real next record is the one delivered next.
  ASSERT_EQ(p->try_write(1, bytes_of("real")), WriteStatus::kOk);
  const std::vector<Got> next = drain(*r);
  ASSERT_EQ(next.size(), 1u);
  EXPECT_EQ(next[0].payload, "real");
  EXPECT_EQ(next[0].seq, forged_seq);
}

// The same forgery through a claim: a caller may write anything into a claim
// and then abandon it, or finish a shorter record. Bytes inside a claim are
// never taken as cleared: the slot after each committed record is zero when
// the reader looks, whatever the claim held.
TEST(RingIntegrity, ReaderNeverDeliversARecordPlantedInAnAbandonedOrShortenedClaim) {
  ScratchDir dir;
  auto ring = Ring::create(dir.file("r"), one_lane());
  ASSERT_TRUE(ring);
  auto r = Reader::attach(*ring, "proc");
  auto p = Producer::attach(*ring);
  ASSERT_TRUE(r && p);
  warm_up_to_lap_start(*p, *r);
  ASSERT_TRUE(drain(*r).empty());
  // Fills a claim with "length 8, type 1" headers and, in every other word,
  // each seq a reader could expect in the next few records.
  auto plant = [&](std::span<std::byte> span) {
    const std::uint64_t next = ring->stats().lane[0].next_seq;
    for (std::size_t i = 0; i + 8 <= span.size(); i += 8) {
      const std::uint64_t word = (i / 8) % 2 == 0 ? (std::uint64_t{8} | (std::uint64_t{1} << 32)) : next + (i / 16) % 8;
      std::memcpy(span.data() + i, &word, 8);
    }
  };
  std::uint64_t delivered = 0;
  for (int round = 0; round < 200; ++round) {
    // Abandoned: a new claim (or append) starts where it started.
    std::span<std::byte> big = p->try_claim(600);
    ASSERT_EQ(big.size(), 600u);
    plant(big);
    if (round % 2 == 0) {
      // Sizes that end records at every offset of a cache line.
      ASSERT_EQ(p->try_write(1, bytes_of(std::string(static_cast<std::size_t>(round % 7) * 8, 'x'))), WriteStatus::kOk);
    } else {
      // Shortened: the claim's caller finishes a few bytes of the 600 it wrote.
      std::span<std::byte> again = p->try_claim(600);
      ASSERT_EQ(again.size(), 600u);
      plant(again);
      p->finish_and_publish(1, static_cast<std::size_t>(round % 5) * 8);
    }
    const std::uint64_t last_published = ring->stats().lane[0].next_seq - 1;
    const std::vector<Got> got = drain(*r);
    for (const Got& g : got) ASSERT_LE(g.seq, last_published) << "round " << round << ": never published";
    ASSERT_EQ(got.size(), 1u) << "round " << round;
    delivered += got.size();
  }
  const ReaderStats st = r->stats();
  EXPECT_EQ(st.corrupt_records + st.lapped_records + st.torn_records, 0u);
  EXPECT_EQ(delivered, 200u);
}

// Finding 2: a producer that dies with an unpublished batch leaves records
// whose headers carry real seqs. The successor writes over the first one and
// publishes; the reader then must not walk on into the dead batch.
TEST(RingIntegrity, DeadProducersUnpublishedBatchIsNeverDeliveredAfterTakeover) {
  ScratchDir dir;
  auto ring = Ring::create(dir.file("r"), one_lane());
  ASSERT_TRUE(ring);
  auto r = Reader::attach(*ring, "proc");
  ASSERT_TRUE(r);
  {
    auto p = Producer::attach(*ring);
    ASSERT_TRUE(p);
    warm_up_to_lap_start(*p, *r);
  }
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    auto p = Producer::attach(*ring);
    if (!p) ::_exit(2);
    for (const char* s : {"dead-one", "dead-two", "dead-333"}) {
      if (p->try_append(1, bytes_of(s)) != WriteStatus::kOk) ::_exit(3);
    }
    ::_exit(0);  // no destructor: the batch is never published
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  EXPECT_TRUE(drain(*r).empty());

  auto p = Producer::attach(*ring);
  ASSERT_TRUE(p);
  ASSERT_EQ(p->try_write(1, bytes_of("live-one")), WriteStatus::kOk);
  const std::uint64_t last_published = ring->stats().lane[0].next_seq - 1;
  const std::vector<Got> got = drain(*r);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].payload, "live-one");
  EXPECT_LE(got[0].seq, last_published);
  ASSERT_EQ(p->try_write(1, bytes_of("live-two")), WriteStatus::kOk);
  const std::vector<Got> more = drain(*r);
  ASSERT_EQ(more.size(), 1u);
  EXPECT_EQ(more[0].payload, "live-two");
  const ReaderStats st = r->stats();
  EXPECT_EQ(st.corrupt_records + st.lapped_records, 0u);
}

// Finding 3: a pad header at a lap's start (where no pad can be) with the
// expected seq made the fast path loop forever. Run the poll in a child
// that an alarm ends, so a hang fails the test instead of stalling the suite.
TEST(RingIntegrity, PadHeaderAtLapStartIsCountedAsCorruptNotLoopedOn) {
  ScratchDir dir;
  auto ring = Ring::create(dir.file("r"), one_lane());
  ASSERT_TRUE(ring);
  auto r = Reader::attach(*ring, "proc");
  auto p = Producer::attach(*ring);
  ASSERT_TRUE(r && p);
  warm_up_to_lap_start(*p, *r);
  ASSERT_EQ(ring->stats().lane[0].tail % kCap, 0u);
  const std::uint64_t expect = ring->stats().lane[0].next_seq;
  const std::uint32_t hdr[2] = {static_cast<std::uint32_t>(kCap - 16), 0};  // a pad reaching the lane's end
  poke(ring->path(), lane_data_offset(*ring), hdr, sizeof hdr);
  poke(ring->path(), lane_data_offset(*ring) + 8, &expect, sizeof expect);

  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::alarm(5);
    const std::size_t n = drain(*r).size();
    ::_exit(n == 0 && r->stats().corrupt_records == 1 ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_FALSE(WIFSIGNALED(status)) << "the reader looped until SIGALRM (signal " << WTERMSIG(status) << ")";
  EXPECT_EQ(WEXITSTATUS(status), 0) << "expected no record and one corrupt count";
}

// An ungated reader lapped by more than a lane restarts at `oldest`, or at
// the tail when `oldest` lies ahead of it (a claim at a lap's end padded to
// the next lap and was abandoned). At the tail it reads nothing, so the seq
// gap that would count its loss never comes: the loss must be counted when
// it lands there, or published = read + lapped stops holding.
TEST(RingIntegrity, UngatedReaderLappedToTheTailCountsItsLossAtOnce) {
  ScratchDir dir;
  auto ring = Ring::create(dir.file("r"), one_lane());
  ASSERT_TRUE(ring);
  ReaderOptions nd;
  nd.durable = false;
  auto r = Reader::attach(*ring, "tail", nd);
  auto p = Producer::attach(*ring);
  ASSERT_TRUE(r && p);
  const std::vector<std::byte> rec(32, std::byte{7});  // 48 bytes a record
  ASSERT_EQ(p->try_write(1, rec), WriteStatus::kOk);
  ASSERT_EQ(drain(*r).size(), 1u);
  // More than a lane past the reader, stopping where a 1000-byte claim no
  // longer fits in the lap.
  const std::uint64_t start = ring->stats().lane[0].tail;
  while (ring->stats().lane[0].tail - start < 2 * kCap ||
         kCap - ring->stats().lane[0].tail % kCap >= detail::record_bytes(1000)) {
    ASSERT_EQ(p->try_write(1, rec), WriteStatus::kOk);
  }
  {
    WriteStatus st;
    const auto claim = p->try_claim(1000, &st);  // pads to the next lap, moves oldest there...
    ASSERT_EQ(st, WriteStatus::kOk);
    ASSERT_FALSE(claim.empty());
  }  // ...and is abandoned: nothing after the tail is published
  const LaneStats lane = ring->stats().lane[0];
  std::uint64_t oldest = 0;
  {
    const int fd = ::open(ring->path().c_str(), O_RDONLY);
    ASSERT_GE(fd, 0);
    const auto at = detail::compute_layout(kCap, 1, 4).lanes_offset + offsetof(detail::LaneControl, oldest);
    ASSERT_EQ(::pread(fd, &oldest, sizeof oldest, static_cast<off_t>(at)), static_cast<ssize_t>(sizeof oldest));
    ::close(fd);
  }
  ASSERT_GT(oldest, lane.tail) << "the scenario needs oldest ahead of the tail";
  EXPECT_EQ(drain(*r).size(), 0u);
  const ReaderStats st = ring->stats().readers[0];
  EXPECT_EQ(st.records + st.lapped_records, lane.records)
      << "read " << st.records << " + lapped " << st.lapped_records << " != published " << lane.records;
  EXPECT_EQ(st.corrupt_records + st.torn_records, 0u);
  // And what comes next is read, with nothing counted twice.
  ASSERT_EQ(p->try_write(1, rec), WriteStatus::kOk);
  EXPECT_EQ(drain(*r).size(), 1u);
  const ReaderStats after = ring->stats().readers[0];
  EXPECT_EQ(after.records + after.lapped_records, ring->stats().lane[0].records);
}

// Finding 9: geometry was validated at open, then read again from the shared
// page on every access: one stray write to the header made producers,
// readers and stats() index far outside the mapping. A child does the work
// so that a crash fails the test cleanly.
TEST(RingIntegrity, GeometryWrittenAfterOpenChangesNothingInThisProcess) {
  ScratchDir dir;
  auto ring = Ring::create(dir.file("r"), one_lane(Overflow::kBlock, 2, 4));
  ASSERT_TRUE(ring);
  const std::string path = ring->path();
  const std::uint32_t lanes = 256, readers = 64;
  const std::uint64_t far = std::uint64_t{1} << 40;
  poke(path, offsetof(detail::RingHeader, lane_count), &lanes, sizeof lanes);
  poke(path, offsetof(detail::RingHeader, max_readers), &readers, sizeof readers);
  poke(path, offsetof(detail::RingHeader, lanes_offset), &far, sizeof far);
  poke(path, offsetof(detail::RingHeader, readers_offset), &far, sizeof far);
  poke(path, offsetof(detail::RingHeader, reader_stride), &far, sizeof far);
  poke(path, offsetof(detail::RingHeader, data_offset), &far, sizeof far);
  poke(path, offsetof(detail::RingHeader, lane_capacity), &far, sizeof far);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::alarm(10);
    auto r = Reader::attach(*ring, "proc");
    auto p = Producer::attach(*ring);
    if (!r || !p) ::_exit(2);
    for (int i = 0; i < 500; ++i) {
      if (p->try_write(1, bytes_of("record")) != WriteStatus::kOk) ::_exit(3);
      if (drain(*r).size() != 1) ::_exit(4);
    }
    const RingStats st = ring->stats();
    if (st.lanes != 2 || st.max_readers != 4 || st.lane.size() != 2 || st.lane_capacity_bytes != kCap) ::_exit(5);
    ::_exit(0);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_FALSE(WIFSIGNALED(status)) << "signal " << WTERMSIG(status);
  EXPECT_EQ(WEXITSTATUS(status), 0);
  // A fresh open refuses the damaged header with a clear reason.
  auto again = Ring::open(path);
  ASSERT_FALSE(again);
  EXPECT_NE(again.error().message().find("inconsistent header"), std::string::npos) << again.error().message();
}

// Finding 10: a non-durable reader (`ringpipe tail`) killed without its
// destructor left its slot taken forever; after max_readers such deaths the
// ring refused every new reader.
TEST(RingIntegrity, SlotOfAKilledNonDurableReaderIsReused) {
  ScratchDir dir;
  auto ring = Ring::create(dir.file("r"), one_lane(Overflow::kBlock, 1, 4));
  ASSERT_TRUE(ring);
  for (int round = 0; round < 8; ++round) {
    const pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
      ReaderOptions o;
      o.durable = false;
      auto r = Reader::attach(*ring, "tail-" + std::to_string(::getpid()), o);
      ::_exit(r ? 0 : 1);  // dies holding the slot, as kill -9 or SIGPIPE would leave it
    }
    int status = 0;
    ASSERT_EQ(::waitpid(child, &status, 0), child);
    ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "round " << round << ": no slot for a new reader";
  }
  // The durable reader of a pipeline still finds a slot, and a slot of a
  // dead durable reader is kept for its restart.
  auto r = Reader::attach(*ring, "proc");
  ASSERT_TRUE(r) << r.error().message();
}

// Finding 11: two processes attaching the same new reader name at the same
// moment both took a slot (the records were then processed twice).
TEST(RingIntegrity, ConcurrentAttachesOfOneNewNameLetExactlyOneIn) {
  ScratchDir dir;
  auto* shared =
      static_cast<std::atomic<int>*>(::mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0));
  ASSERT_NE(shared, MAP_FAILED);
  constexpr int kChildren = 6;
  int doubled = 0;
  for (int round = 0; round < 30; ++round) {
    auto ring = Ring::create(dir.file("r" + std::to_string(round)), one_lane(Overflow::kBlock, 1, 16));
    ASSERT_TRUE(ring);
    shared[0].store(0);  // go
    shared[1].store(0);  // attached
    shared[2].store(0);  // done
    shared[3].store(0);  // tried
    std::vector<pid_t> kids;
    for (int k = 0; k < kChildren; ++k) {
      const pid_t c = ::fork();
      ASSERT_GE(c, 0);
      if (c == 0) {
        while (shared[0].load() == 0) {
        }
        auto r = Reader::attach(*ring, "proc");
        if (r) shared[1].fetch_add(1);
        shared[3].fetch_add(1);
        while (shared[2].load() == 0) ::usleep(100);  // hold it until all have tried
        ::_exit(0);
      }
      kids.push_back(c);
    }
    shared[0].store(1);
    ASSERT_TRUE(ringpipe::testing::wait_until([&] { return shared[3].load() == kChildren; }, std::chrono::seconds(30)));
    shared[2].store(1);
    for (pid_t c : kids) ::waitpid(c, nullptr, 0);
    const int attached = shared[1].load();
    EXPECT_EQ(attached, 1) << "round " << round;
    if (attached > 1) ++doubled;
    std::size_t named = 0;
    for (const ReaderStats& st : ring->stats().readers) named += st.name == "proc" ? 1 : 0;
    EXPECT_EQ(named, 1u) << "round " << round;
  }
  EXPECT_EQ(doubled, 0);
  ::munmap(shared, 4096);
}

// Finding 8: a reader that producers do not gate on (non-durable, as
// `ringpipe tail`, or durable but just attached) got views into bytes that a
// producer was free to reuse while its callback ran. It now gets a copy,
// proven intact before the callback sees it.
TEST(RingIntegrity, UngatedReaderViewNeverChangesDuringItsCallback) {
  ScratchDir dir;
  auto ring = Ring::create(dir.file("r"), one_lane(Overflow::kDrop));
  ASSERT_TRUE(ring);
  ReaderOptions o;
  o.durable = false;
  auto r = Reader::attach(*ring, "tail", o);
  auto p = Producer::attach(*ring);
  ASSERT_TRUE(r && p);
  const std::vector<std::byte> mine(200, std::byte{0x5A});
  ASSERT_EQ(p->try_write(1, mine), WriteStatus::kOk);
  const std::vector<std::byte> other(200, std::byte{0xA5});
  int seen = 0;
  r->poll(
      [&](const RecordView& v) {
        ++seen;
        const std::vector<std::byte> before(v.payload.begin(), v.payload.end());
        EXPECT_EQ(before, mine);
        // A whole lap written meanwhile: no one gates on this reader.
        for (int i = 0; i < 40; ++i) (void)p->try_write(1, other);
        EXPECT_TRUE(std::equal(v.payload.begin(), v.payload.end(), before.begin(), before.end()))
            << "the view changed under the callback";
      },
      1);
  EXPECT_EQ(seen, 1);
}

// Finding 7: the lane's `intent` (how far producers may have written) went
// back when a producer detached after abandoning a claim. The bytes that
// claim overwrote then passed the overwrite reader's seqlock check: it
// counted them as corrupt and lost records uncounted. Losses must be counted
// exactly as lapped instead.
TEST(RingIntegrity, AbandonedClaimUnderOverwriteIsCountedAsLappedNotCorrupt) {
  ScratchDir dir;
  RingOptions o = one_lane(Overflow::kOverwrite);
  o.max_record_bytes = 1024;
  auto ring = Ring::create(dir.file("r"), o);
  ASSERT_TRUE(ring);
  auto r = Reader::attach(*ring, "proc");
  ASSERT_TRUE(r);
  const std::vector<std::byte> rec(48, std::byte{0x11});  // 64 bytes a record, 64 a lap
  {
    auto p = Producer::attach(*ring);
    ASSERT_TRUE(p);
    ASSERT_EQ(p->try_write(1, rec), WriteStatus::kOk);
    std::size_t got = 0;
    r->poll([&](const RecordView&) { ++got; }, 1);
    ASSERT_EQ(got, 1u);
    for (int i = 1; i < 63; ++i) ASSERT_EQ(p->try_write(1, rec), WriteStatus::kOk);
    // A claim over the oldest bytes of the lane, filled, then abandoned.
    auto span = p->try_claim(512);
    ASSERT_EQ(span.size(), 512u);
    std::memset(span.data(), 0xEE, span.size());
  }  // detaches without finishing it
  std::size_t read = 0;
  r->poll([&](const RecordView& v) {
    ++read;
    EXPECT_EQ(v.payload.size(), rec.size());
  });
  const ReaderStats st = r->stats();
  const std::uint64_t published = ring->stats().lane[0].records;
  EXPECT_EQ(st.corrupt_records, 0u) << "bytes reused by the abandoned claim were read as if intact";
  EXPECT_EQ(st.records + st.lapped_records, published);
  EXPECT_EQ(st.records, 1 + read);
}

// Finding 13 (ring part): a sparse ring file was accepted, so the first
// touch of a hole faulted a page in and a full tmpfs killed the process with
// SIGBUS. Open backs every byte (or refuses with ENOSPC).
TEST(RingIntegrity, OpenBacksASparseRingFileWithRealBlocks) {
  ScratchDir dir;
  const std::string path = dir.file("r");
  std::uint64_t bytes = 0;
  {
    RingOptions o = one_lane(Overflow::kBlock, 4, 4);
    o.lane_capacity_bytes = 1 << 20;
    auto ring = Ring::create(path, o);
    ASSERT_TRUE(ring);
    bytes = detail::compute_layout(o.lane_capacity_bytes, o.lanes, o.max_readers).file_bytes;
  }
  // Punch the data area out: what a copy without its blocks leaves.
  {
    const int fd = ::open(path.c_str(), O_RDWR);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::ftruncate(fd, 4096 * 4), 0);
    ASSERT_EQ(::ftruncate(fd, static_cast<off_t>(bytes)), 0);
    struct stat st {};
    ASSERT_EQ(::fstat(fd, &st), 0);
    ASSERT_LT(static_cast<std::uint64_t>(st.st_blocks) * 512, bytes / 2) << "the file system did not make it sparse";
    ::close(fd);
  }
  auto ring = Ring::open(path);
  ASSERT_TRUE(ring) << ring.error().message();
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_GE(static_cast<std::uint64_t>(st.st_blocks) * 512, bytes) << "open left holes in the ring file";
}

// Low: type 0 is the ring's padding; a record of that type would be read as
// a pad (and counted as corrupt). The write API refuses it.
TEST(RingIntegrity, WriteApiRefusesTheReservedPadType) {
  ScratchDir dir;
  auto ring = Ring::create(dir.file("r"), one_lane());
  auto r = Reader::attach(*ring, "proc");
  auto p = Producer::attach(*ring);
  ASSERT_TRUE(ring && r && p);
  EXPECT_EQ(p->try_write(0, bytes_of("pad?")), WriteStatus::kBadType);
  EXPECT_EQ(p->write(0, bytes_of("pad?"), std::chrono::milliseconds(1)), WriteStatus::kBadType);
  EXPECT_EQ(p->try_append(0, bytes_of("pad?")), WriteStatus::kBadType);
  auto span = p->try_claim(8);
  ASSERT_EQ(span.size(), 8u);
  p->finish(0, 8);  // abandons the claim
  p->publish();
  ASSERT_EQ(p->try_write(1, bytes_of("real")), WriteStatus::kOk);
  const std::vector<Got> got = drain(*r);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].payload, "real");
  EXPECT_EQ(r->stats().corrupt_records, 0u);
}

// 17, low: a ring truncated by another process after it was opened is
// refused when a producer or reader attaches (touching it would be SIGBUS).
TEST(RingIntegrity, AttachRefusesARingTruncatedSinceItWasOpened) {
  ScratchDir dir;
  auto ring = Ring::create(dir.file("r"), one_lane());
  ASSERT_TRUE(ring);
  ASSERT_EQ(::truncate(ring->path().c_str(), 8192), 0);
  auto p = Producer::attach(*ring);
  ASSERT_FALSE(p);
  EXPECT_NE(p.error().message().find("truncated"), std::string::npos) << p.error().message();
  auto r = Reader::attach(*ring, "proc");
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message().find("truncated"), std::string::npos) << r.error().message();
}

// Low: a misaligned tail (damage) made readers skip the lane silently.
// It is counted once as corrupt, and the lane recovers at the next publish.
TEST(RingIntegrity, MisalignedTailIsCountedOnceAsCorrupt) {
  ScratchDir dir;
  auto ring = Ring::create(dir.file("r"), one_lane());
  auto r = Reader::attach(*ring, "proc");
  ASSERT_TRUE(ring && r);
  {
    auto p = Producer::attach(*ring);
    ASSERT_EQ(p->try_write(1, bytes_of("a")), WriteStatus::kOk);
  }
  ASSERT_EQ(drain(*r).size(), 1u);
  const std::uint64_t lane_off = detail::compute_layout(kCap, 1, 4).lanes_offset;
  const std::uint64_t odd = ring->stats().lane[0].tail + 13;
  poke(ring->path(), lane_off + offsetof(detail::LaneControl, tail), &odd, sizeof odd);
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(drain(*r).empty());
  EXPECT_EQ(r->stats().corrupt_records, 1u);
  auto p = Producer::attach(*ring);  // realigns the tail (it cannot know where the real one was)
  ASSERT_TRUE(p);
  ASSERT_EQ(p->try_write(1, bytes_of("b")), WriteStatus::kOk);
  std::vector<Got> got = drain(*r);
  ASSERT_EQ(p->try_write(1, bytes_of("c")), WriteStatus::kOk);
  for (const Got& g : drain(*r)) got.push_back(g);
  ASSERT_FALSE(got.empty());
  for (const Got& g : got) EXPECT_TRUE(g.payload == "b" || g.payload == "c") << g.payload;
  EXPECT_EQ(got.back().payload, "c");
  EXPECT_GE(r->stats().corrupt_records, 1u);
}

// Low: a producer killed while it waited for space left the ring's
// space_waiters count raised forever, so every reader made a futex wake
// syscall after every batch. The next owner of its lane takes the count back.
TEST(RingIntegrity, ProducerKilledWhileWaitingForSpaceLeavesNoWaiterBehind) {
  ScratchDir dir;
  auto ring = Ring::create(dir.file("r"), one_lane());
  auto r = Reader::attach(*ring, "proc");  // never reads: the lane fills
  ASSERT_TRUE(ring && r);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    auto p = Producer::attach(*ring);
    if (!p) ::_exit(2);
    const std::vector<std::byte> rec(200, std::byte{1});
    for (;;) (void)p->write(1, rec, std::chrono::seconds(30));  // blocks once full
  }
  auto waiters = [&] {
    std::uint32_t w = 0;
    const int fd = ::open(ring->path().c_str(), O_RDONLY);
    (void)::pread(fd, &w, sizeof w, offsetof(detail::RingHeader, space_waiters));
    ::close(fd);
    return w;
  };
  ASSERT_TRUE(ringpipe::testing::wait_until([&] { return waiters() == 1; }, std::chrono::seconds(10)));
  // The waiter wakes every millisecond and uncounts itself for a moment
  // before it sleeps again: freeze it, and kill it only while it is counted
  // (a kill in that moment once left nothing to take back, and the test failed).
  bool counted = false;
  for (int attempt = 0; attempt < 1000 && !counted; ++attempt) {
    ASSERT_EQ(::kill(child, SIGSTOP), 0);
    int st = 0;
    ASSERT_EQ(::waitpid(child, &st, WUNTRACED), child);
    ASSERT_TRUE(WIFSTOPPED(st));
    counted = waiters() == 1;
    if (!counted) {
      ASSERT_EQ(::kill(child, SIGCONT), 0);
    }
  }
  ASSERT_TRUE(counted) << "never caught the producer counted as a waiter";
  ::kill(child, SIGKILL);
  ASSERT_EQ(::waitpid(child, nullptr, 0), child);
  EXPECT_EQ(waiters(), 1u);  // what the dead waiter left
  auto p = Producer::attach(*ring);
  ASSERT_TRUE(p);
  EXPECT_EQ(waiters(), 0u) << "the lane's new owner did not take the dead waiter's count back";
}

// Low: where membarrier() fails for a reader (a seccomp filter in a
// container) while producers publish with plain stores relying on it, a
// wake-up could be lost until the reader's timeout. The reader now says so
// in the ring (producers switch to a sequentially consistent publish) and
// sleeps briefly until they can have seen it.
TEST(RingIntegrity, ReaderWithoutMembarrierTellsProducersAndStillWakesOnPublish) {
  ScratchDir dir;
  auto ring = Ring::create(dir.file("r"), one_lane());
  ASSERT_TRUE(ring);
  auto* shared =
      static_cast<std::atomic<int>*>(::mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0));
  ASSERT_NE(shared, MAP_FAILED);
  shared[0].store(0);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    detail::fail_membarrier_for_tests(true);
    auto r = Reader::attach(*ring, "proc");
    if (!r) ::_exit(2);
    shared[0].store(1);
    const bool woke = r->wait(std::chrono::seconds(20));  // sleeps: nothing published yet
    ::_exit(woke && drain(*r).size() == 1 ? 0 : 3);
  }
  auto no_membarrier = [&] {
    std::uint32_t v = 0;
    const int fd = ::open(ring->path().c_str(), O_RDONLY);
    (void)::pread(fd, &v, sizeof v, offsetof(detail::RingHeader, no_membarrier));
    ::close(fd);
    return v;
  };
  ASSERT_TRUE(ringpipe::testing::wait_until([&] { return shared[0].load() == 1 && no_membarrier() == 1; },
                                            std::chrono::seconds(10)))
      << "the reader did not tell producers that membarrier fails";
  auto p = Producer::attach(*ring);
  ASSERT_TRUE(p);
  const auto published = std::chrono::steady_clock::now();
  ASSERT_EQ(p->try_write(1, bytes_of("wake")), WriteStatus::kOk);
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "status " << status;
  EXPECT_LT(std::chrono::steady_clock::now() - published, std::chrono::seconds(10)) << "woke only at its timeout";
  ::munmap(shared, 4096);
}

// Low: another process that truncates a live ring file killed every process
// mapping it with SIGBUS on its next touch of the lost pages. Now the ring is
// refused instead: the fault is caught, writes return kRingLost, reads find
// nothing, Ring::truncated() says why, and the process lives on.
TEST(RingIntegrity, RingTruncatedUnderAttachedProducerAndReaderIsRefusedNotSigbus) {
  ScratchDir dir;
  RingOptions opt = one_lane();
  opt.lane_capacity_bytes = 1 << 16;
  auto made = Ring::create(dir.file("r"), opt);
  ASSERT_TRUE(made);
  const std::string path = made->path();
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::alarm(20);
    auto ring = Ring::open(path);
    if (!ring) ::_exit(2);
    auto p = Producer::attach(*ring);
    auto r = Reader::attach(*ring, "tail");
    if (!p || !r) ::_exit(3);
    const std::vector<std::byte> rec(100, std::byte{7});
    for (int i = 0; i < 10; ++i) {
      if (p->try_write(1, rec) != WriteStatus::kOk) ::_exit(4);
    }
    if (r->poll([](const RecordView&) {}) != 10) ::_exit(5);
    if (::truncate(path.c_str(), 4096) != 0) ::_exit(6);  // as another process would
    // Past the first page every byte is gone: the next records land there.
    WriteStatus last = WriteStatus::kOk;
    for (int i = 0; i < 1000 && last == WriteStatus::kOk; ++i) last = p->try_write(1, rec);
    if (last != WriteStatus::kRingLost) ::_exit(7);
    if (!ring->truncated()) ::_exit(8);
    if (r->poll([](const RecordView&) {}) != 0) ::_exit(9);
    if (r->wait(std::chrono::seconds(5))) ::_exit(10);
    const auto lost = lost_mapping();
    if (!lost || *lost != path) ::_exit(11);
    ::_exit(0);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_FALSE(WIFSIGNALED(status)) << "killed by signal " << WTERMSIG(status);
  EXPECT_EQ(WEXITSTATUS(status), 0) << "step that failed (see the child's exit codes)";
  // A new open refuses the file with its reason.
  auto again = Ring::open(path);
  ASSERT_FALSE(again);
  EXPECT_NE(again.error().message().find("truncated"), std::string::npos) << again.error().message();
}

}  // namespace
}  // namespace ringpipe::ring
