// Real processes on a real ring file: forked producers and readers, SIGKILL
// injected at each step of a write, readers killed under `block`, producers
// stopped with SIGSTOP, readers restarted. Every wait is bounded.

#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <functional>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "ring_test_util.hpp"
#include "ringpipe/ring/fault.hpp"
#include "ringpipe/ring/ring.hpp"
#include "test_support.hpp"

namespace ringpipe::ring {
namespace {

using ringpipe::testing::ScratchDir;
using ringpipe::testing::wait_until;
using testing::check_payload;
using testing::make_payload;
using testing::Stamp;

// Results children report through memory shared across fork.
struct Shared {
  std::atomic<std::uint64_t> produced[8];
  std::atomic<std::uint64_t> consumed[8];
  std::atomic<std::uint64_t> bad[8];
  std::atomic<std::uint64_t> last_seq[8][8];  // [reader][producer] + 1
  std::atomic<std::uint64_t> finished[8];     // records finished (not necessarily published)
  std::atomic<std::uint64_t> committed[8];    // records committed, as seen by a fault hook
  std::atomic<int> ready;
  std::atomic<int> stop;
};

Shared* make_shared_block() { return ringpipe::testing::make_shared_block<Shared>(); }

using ringpipe::testing::reap;
using ringpipe::testing::spawn;

int produce(const std::string& path, std::uint32_t id, std::uint64_t count, Shared* sh, int batch = 1) {
  auto ring = Ring::open(path);
  if (!ring) return 10;
  auto p = Producer::attach(*ring);
  if (!p) return 11;
  std::vector<std::byte> buf(200);
  for (std::uint64_t seq = 0; seq < count; ++seq) {
    const std::size_t size = sizeof(Stamp) + (seq * 13 + id) % 150;
    make_payload(std::span(buf).first(size), id, seq);
    WriteStatus st;
    auto dst = p->claim(size, std::chrono::seconds(30), &st);
    if (st != WriteStatus::kOk) return 12;
    std::memcpy(dst.data(), buf.data(), size);
    p->finish(1, size);
    sh->finished[id].store(seq + 1);
    if ((seq + 1) % static_cast<std::uint64_t>(batch) == 0) p->publish();
    sh->produced[id].store(seq + 1);
  }
  p->publish();
  return 0;
}

// Reads until `expected` records (all producers together) or the deadline.
int consume(const std::string& path, const std::string& name, int ri, std::uint64_t expected, Shared* sh, int producers,
            std::chrono::seconds limit = std::chrono::seconds(60)) {
  auto ring = Ring::open(path);
  if (!ring) return 20;
  auto r = Reader::attach(*ring, name);
  if (!r) return 21;
  sh->ready.fetch_add(1);
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (sh->consumed[ri].load() < expected && std::chrono::steady_clock::now() < deadline && !sh->stop.load()) {
    r->poll([&](const RecordView& v) {
      Stamp s{};
      if (!check_payload(v.payload, s) || s.producer >= static_cast<std::uint32_t>(producers)) {
        sh->bad[ri].fetch_add(1);
        return;
      }
      // Each producer's records arrive in order, exactly once.
      if (s.seq != sh->last_seq[ri][s.producer].load()) sh->bad[ri].fetch_add(1);
      sh->last_seq[ri][s.producer].store(s.seq + 1);
      sh->consumed[ri].fetch_add(1);
    });
    r->wait(std::chrono::milliseconds(10));
  }
  return 0;
}

RingOptions opts(Overflow o, std::uint32_t lanes, std::uint64_t cap = 64 * 1024) {
  RingOptions r;
  r.lane_capacity_bytes = cap;
  r.lanes = lanes;
  r.max_readers = 8;
  r.overflow = o;
  r.reader_timeout = std::chrono::milliseconds(200);
  return r;
}

TEST(RingProcesses, ProducersAndReadersInSeparateProcessesDeliverEverything) {
  ScratchDir dir;
  const std::string path = dir.file("raw");
  ASSERT_TRUE(Ring::create(path, opts(Overflow::kBlock, 4)));
  Shared* sh = make_shared_block();
  constexpr int kP = 3, kR = 2;
  constexpr std::uint64_t kN = 100'000;
  std::vector<pid_t> readers, producers;
  for (int r = 0; r < kR; ++r) {
    readers.push_back(spawn([&, r] { return consume(path, "r" + std::to_string(r), r, kP * kN, sh, kP); }));
  }
  ASSERT_TRUE(wait_until([&] { return sh->ready.load() == kR; }, std::chrono::seconds(10)));
  for (int p = 0; p < kP; ++p) {
    producers.push_back(spawn([&, p] { return produce(path, static_cast<std::uint32_t>(p), kN, sh, 1 + p * 7); }));
  }
  for (pid_t pid : producers) EXPECT_EQ(reap(pid), 0);
  for (pid_t pid : readers) EXPECT_EQ(reap(pid), 0);
  for (int r = 0; r < kR; ++r) {
    EXPECT_EQ(sh->consumed[r].load(), kP * kN);
    EXPECT_EQ(sh->bad[r].load(), 0u);
    for (int p = 0; p < kP; ++p) EXPECT_EQ(sh->last_seq[r][p].load(), kN);
  }
}

std::atomic<int> g_fault_countdown{0};
FaultPoint g_fault_at = FaultPoint::kAfterIntent;
Shared* g_fault_shared = nullptr;
// Runs in the victim at every fault point. Besides killing it at the armed
// one, it records how many records were committed (every commit passes
// kAfterCommit), which is exactly what readers must end up with.
void kill_at_fault(FaultPoint p) {
  if (p == FaultPoint::kAfterCommit) g_fault_shared->committed[0].store(g_fault_shared->finished[0].load());
  if (p == g_fault_at && g_fault_countdown.fetch_sub(1) == 1) ::raise(SIGKILL);
}

struct KillCase {
  FaultPoint at;
  int batch;      // records per publish()
  int countdown;  // the victim dies at this hit of `at`
};

class KillMidWrite : public ::testing::TestWithParam<KillCase> {};

// A producer SIGKILLed at a given step of a write, writing one record or a
// batch per publish: readers get every record it committed and nothing
// half-written; the next producer takes the lane over, adopts what was
// committed but not yet published, counts the recovered claim (if one was
// open), and its records follow without a gap.
TEST_P(KillMidWrite, NeverWedgesReadersNorCorruptsLaterRecords) {
  ScratchDir dir;
  const std::string path = dir.file("raw");
  auto ring = Ring::create(path, opts(Overflow::kBlock, 1, 16 * 1024));
  ASSERT_TRUE(ring);
  Shared* sh = make_shared_block();
  const KillCase kc = GetParam();
  // The reader exists before the first record, so it gates and sees them all.
  auto reader = Reader::attach(*ring, "r");
  ASSERT_TRUE(reader);
  const pid_t victim = spawn([&] {
    g_fault_at = kc.at;
    g_fault_shared = sh;
    g_fault_countdown.store(kc.countdown);
    set_fault_hook(&kill_at_fault);
    return produce(path, 0, 1'000'000, sh, kc.batch);
  });
  // Read alongside, so the victim keeps lapping the small lane while it lives.
  std::uint64_t got0 = 0, bad = 0, got1 = 0;
  auto check = [&](const RecordView& v) {
    Stamp s{};
    if (!check_payload(v.payload, s)) {
      ++bad;
      return;
    }
    if (s.producer == 0) {
      if (s.seq != got0) ++bad;
      ++got0;
    } else {
      if (s.seq != got1) ++bad;
      ++got1;
    }
  };
  int status = 0;
  ASSERT_TRUE(wait_until(
      [&] {
        reader->poll(check);
        return ::waitpid(victim, &status, WNOHANG) == victim;
      },
      std::chrono::seconds(60)));
  ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << "status " << status;
  reader->poll(check);
  const std::uint64_t committed = sh->committed[0].load();
  // Once the batch's first seq is stored the whole batch is committed, even
  // though the victim never got to store the tail.
  const bool died_committed = kc.at == FaultPoint::kAfterCommit || kc.at == FaultPoint::kAfterPublish;
  if (kc.batch == 1 && kc.at != FaultPoint::kAfterPad) {
    // One record per publish and the kill at its 5000th step: 4999 records
    // committed, and the 5000th when it died after committing it.
    ASSERT_EQ(kc.countdown, 5000);
    EXPECT_EQ(committed, died_committed ? 5000u : 4999u);
  }
  EXPECT_GT(committed, 0u);
  EXPECT_LE(got0, committed);  // never more than was committed, whatever the reader has seen so far
  const pid_t successor = spawn([&] { return produce(path, 1, 20'000, sh, kc.batch); });
  ASSERT_TRUE(wait_until(
      [&] {
        reader->poll(check);
        return got1 == 20'000;
      },
      std::chrono::seconds(60)));
  EXPECT_EQ(reap(successor), 0);
  reader->poll(check);
  EXPECT_EQ(bad, 0u);
  EXPECT_EQ(got0, committed);
  const RingStats st = ring->stats();
  // Dead after its commit: nothing was left open. Otherwise exactly one open
  // claim (a claim, or a batch never committed) was found and written over.
  EXPECT_EQ(st.lane[0].recovered_claims, died_committed ? 0u : 1u);
  // Lane and reader counters agree with what arrived; seqs have no holes.
  EXPECT_EQ(st.lane[0].records, got0 + got1);
  EXPECT_EQ(st.lane[0].next_seq, 1 + got0 + got1);
  ASSERT_EQ(st.readers.size(), 1u);
  EXPECT_EQ(st.readers[0].records, got0 + got1);
  EXPECT_EQ(st.readers[0].lag_bytes, 0u);
  EXPECT_EQ(st.readers[0].lapped_records + st.readers[0].corrupt_records + st.readers[0].torn_records, 0u);
}

std::string fault_point_name(FaultPoint p) {
  switch (p) {
    case FaultPoint::kAfterIntent:
      return "AfterClaim";
    case FaultPoint::kAfterPad:
      return "AfterWrapPad";
    case FaultPoint::kMidPayload:
      return "MidPayload";
    case FaultPoint::kAfterFinish:
      return "BeforePublish";
    case FaultPoint::kAfterCommit:
      return "AfterCommitBeforeTail";
    case FaultPoint::kAfterPublish:
      return "AfterPublish";
  }
  return "Unknown";
}

// Points hit once per record die at the 5000th hit; with batches of 8 at the
// 5003rd, in the middle of a batch. A wrap pad comes about once per lap (~130
// records of this lane), so it dies at the 40th; a batch of 8 commits once
// per 8 records, so it dies at the 700th commit.
INSTANTIATE_TEST_SUITE_P(
    EachStep, KillMidWrite,
    ::testing::Values(KillCase{FaultPoint::kAfterIntent, 1, 5000}, KillCase{FaultPoint::kAfterPad, 1, 40},
                      KillCase{FaultPoint::kMidPayload, 1, 5000}, KillCase{FaultPoint::kAfterFinish, 1, 5000},
                      KillCase{FaultPoint::kAfterCommit, 1, 5000}, KillCase{FaultPoint::kAfterPublish, 1, 5000},
                      KillCase{FaultPoint::kAfterIntent, 8, 5003}, KillCase{FaultPoint::kAfterPad, 8, 40},
                      KillCase{FaultPoint::kMidPayload, 8, 5003}, KillCase{FaultPoint::kAfterFinish, 8, 5003},
                      KillCase{FaultPoint::kAfterCommit, 8, 700}, KillCase{FaultPoint::kAfterPublish, 8, 700}),
    [](const auto& param_info) {
      return fault_point_name(param_info.param.at) + "Batch" + std::to_string(param_info.param.batch);
    });

TEST(RingProcesses, KilledReaderStopsGatingBlockedProducerWithinItsTimeout) {
  ScratchDir dir;
  const std::string path = dir.file("raw");
  auto ring = Ring::create(path, opts(Overflow::kBlock, 1, 16 * 1024));  // reader timeout 200 ms
  ASSERT_TRUE(ring);
  Shared* sh = make_shared_block();
  const pid_t reader = spawn([&] {
    auto r = Ring::open(path);
    auto rd = Reader::attach(*r, "slow");
    sh->ready.store(1);
    ::pause();  // never reads
    return 0;
  });
  ASSERT_TRUE(wait_until([&] { return sh->ready.load() == 1; }, std::chrono::seconds(10)));
  auto p = Producer::attach(*ring);
  std::vector<std::byte> rec(100);
  while (p->try_write(1, rec) == WriteStatus::kOk) {
  }
  // Alive and gating: the producer waits out its deadline.
  EXPECT_EQ(p->write(1, rec, std::chrono::milliseconds(400)), WriteStatus::kTimeout);
  ::kill(reader, SIGKILL);
  reap(reader);
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(p->write(1, rec, std::chrono::seconds(10)), WriteStatus::kOk);
  const auto waited = std::chrono::steady_clock::now() - t0;
  EXPECT_LT(waited, std::chrono::seconds(2));
  EXPECT_EQ(ring->stats().readers[0].state, ReaderStats::State::kDead);
}

TEST(RingProcesses, StoppedReaderIsNotDeclaredDead) {
  ScratchDir dir;
  const std::string path = dir.file("raw");
  auto ring = Ring::create(path, opts(Overflow::kBlock, 1, 16 * 1024));
  ASSERT_TRUE(ring);
  Shared* sh = make_shared_block();
  const pid_t reader = spawn([&] { return consume(path, "r", 0, UINT64_MAX, sh, 1, std::chrono::seconds(30)); });
  ASSERT_TRUE(wait_until([&] { return sh->ready.load() == 1; }, std::chrono::seconds(10)));
  ::kill(reader, SIGSTOP);
  auto p = Producer::attach(*ring);
  std::vector<std::byte> rec(100);
  std::uint64_t seq = 0;
  for (;; ++seq) {
    make_payload(rec, 0, seq);
    if (p->try_write(1, rec) != WriteStatus::kOk) break;
  }
  // Stopped far longer than the 200 ms reader timeout: still alive, still gating.
  make_payload(rec, 0, seq);
  EXPECT_EQ(p->write(1, rec, std::chrono::milliseconds(800)), WriteStatus::kTimeout);
  EXPECT_EQ(ring->stats().readers[0].evictions, 0u);
  ::kill(reader, SIGCONT);
  EXPECT_EQ(p->write(1, rec, std::chrono::seconds(10)), WriteStatus::kOk);
  ++seq;
  ASSERT_TRUE(wait_until([&] { return sh->consumed[0].load() == seq; }, std::chrono::seconds(10)));
  EXPECT_EQ(sh->bad[0].load(), 0u);
  sh->stop.store(1);
  EXPECT_EQ(reap(reader), 0);
}

TEST(RingProcesses, StoppedProducerKeepsItsLaneAndLosesNothing) {
  ScratchDir dir;
  const std::string path = dir.file("raw");
  auto ring = Ring::create(path, opts(Overflow::kBlock, 2));
  ASSERT_TRUE(ring);
  Shared* sh = make_shared_block();
  auto reader = Reader::attach(*ring, "r");
  const pid_t prod = spawn([&] { return produce(path, 0, 200'000, sh); });
  ASSERT_TRUE(wait_until([&] { return sh->produced[0].load() > 200; }, std::chrono::seconds(10)));
  ::kill(prod, SIGSTOP);
  std::uint64_t got[2] = {0, 0}, bad = 0;
  auto check = [&](const RecordView& v) {
    Stamp s{};
    if (!check_payload(v.payload, s) || s.producer > 1 || s.seq != got[s.producer]) {
      ++bad;
      return;
    }
    ++got[s.producer];
  };
  // Another producer gets the other lane; the stopped one's lane is not taken.
  const pid_t other = spawn([&] { return produce(path, 1, 5000, sh); });
  ASSERT_TRUE(wait_until(
      [&] {
        reader->poll(check);
        return got[1] == 5000;
      },
      std::chrono::seconds(20)));
  EXPECT_EQ(reap(other), 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  ::kill(prod, SIGCONT);
  ASSERT_TRUE(wait_until(
      [&] {
        reader->poll(check);
        return got[0] == 200'000;
      },
      std::chrono::seconds(60)));
  EXPECT_EQ(reap(prod), 0);
  EXPECT_EQ(bad, 0u);
  EXPECT_EQ(ring->stats().lane[0].recovered_claims + ring->stats().lane[1].recovered_claims, 0u);
}

TEST(RingProcesses, RestartedReaderResumesFromItsCursor) {
  ScratchDir dir;
  const std::string path = dir.file("raw");
  auto ring = Ring::create(path, opts(Overflow::kBlock, 1));
  ASSERT_TRUE(ring);
  Shared* sh = make_shared_block();
  constexpr std::uint64_t kN = 50'000;
  // First life: reads 20000 records and exits; second life picks up the rest.
  const pid_t first = spawn([&] { return consume(path, "proc", 0, 20'000, sh, 1); });
  ASSERT_TRUE(wait_until([&] { return sh->ready.load() == 1; }, std::chrono::seconds(10)));
  const pid_t prod = spawn([&] { return produce(path, 0, kN, sh); });
  EXPECT_EQ(reap(first), 0);
  const std::uint64_t first_got = sh->consumed[0].load();
  EXPECT_GE(first_got, 20'000u);
  const pid_t second = spawn([&] { return consume(path, "proc", 0, kN, sh, 1); });
  EXPECT_EQ(reap(prod), 0);
  EXPECT_EQ(reap(second), 0);
  EXPECT_EQ(sh->consumed[0].load(), kN);  // every record exactly once across both lives
  EXPECT_EQ(sh->last_seq[0][0].load(), kN);
  EXPECT_EQ(sh->bad[0].load(), 0u);
}

TEST(RingProcesses, ReaderKilledMidStreamResumesWithoutLoss) {
  ScratchDir dir;
  const std::string path = dir.file("raw");
  auto ring = Ring::create(path, opts(Overflow::kBlock, 1));
  ASSERT_TRUE(ring);
  Shared* sh = make_shared_block();
  constexpr std::uint64_t kN = 200'000;
  const pid_t first = spawn([&] { return consume(path, "proc", 0, kN, sh, 1); });
  ASSERT_TRUE(wait_until([&] { return sh->ready.load() == 1; }, std::chrono::seconds(10)));
  const pid_t prod = spawn([&] { return produce(path, 0, kN, sh); });
  ASSERT_TRUE(wait_until([&] { return sh->consumed[0].load() > 30'000; }, std::chrono::seconds(30)));
  ::kill(first, SIGKILL);
  reap(first);
  // The second life may see again the batch the first one had not confirmed
  // (at-least-once), but must see every record.
  std::uint64_t highest = 0, bad = 0;
  auto r = Reader::attach(*ring, "proc");
  ASSERT_TRUE(r);
  const std::uint64_t resume_from = sh->last_seq[0][0].load();
  std::uint64_t next = 0;
  bool first_rec = true;
  ASSERT_TRUE(wait_until(
      [&] {
        r->poll([&](const RecordView& v) {
          Stamp s{};
          if (!check_payload(v.payload, s)) {
            ++bad;
            return;
          }
          if (first_rec) {
            EXPECT_LE(s.seq, resume_from);  // no gap at the restart
            first_rec = false;
            next = s.seq;
          }
          if (s.seq != next) ++bad;
          next = s.seq + 1;
          highest = s.seq + 1;
        });
        return highest == kN;
      },
      std::chrono::seconds(60)));
  EXPECT_EQ(reap(prod), 0);
  EXPECT_EQ(bad, 0u);
  EXPECT_EQ(r->stats().lapped_records, 0u);
}

}  // namespace
}  // namespace ringpipe::ring
