// CrashJournal: deaths with a record in flight add up to a quarantine; a
// record read to its end, a clean close or another ring reset the count. A
// "death" here is a journal dropped without close() (the mapping's stores
// are what a killed process leaves behind); one test kills a real child.

#include "ringpipe/common/crash_journal.hpp"

#include <gtest/gtest.h>

#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test_support.hpp"

namespace ringpipe {
namespace {

constexpr std::uint64_t kRing = 42;

class CrashJournalTest : public ::testing::Test {
 protected:
  CrashJournal open(std::uint32_t threshold = 3, std::uint64_t ring = kRing) {
    auto j = CrashJournal::open(path_, ring, threshold);
    EXPECT_TRUE(j) << (j ? "" : j.error().message());
    return std::move(*j);
  }
  // One run that dies while reading `r`.
  void die_on(const JournalRecord& r, std::uint32_t threshold = 3) {
    CrashJournal j = open(threshold);
    j.begin(r.lane, r.seq, r.position);
  }
  testing::ScratchDir dir_;
  std::string path_ = CrashJournal::path_for(dir_.file("raw"), "aggregate");
};

TEST_F(CrashJournalTest, ShouldBeAPrivateFileBesideTheRing) {
  EXPECT_EQ(path_, dir_.file("raw") + ".aggregate.crash");
  CrashJournal j = open();
  struct stat st {};
  ASSERT_EQ(::stat(path_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_FALSE(j.previous_crashed());
  EXPECT_FALSE(j.died_on());
  EXPECT_FALSE(j.quarantined());
}

TEST_F(CrashJournalTest, ShouldRefuseASymlinkInPlaceOfTheJournal) {
  ASSERT_EQ(::symlink(dir_.file("elsewhere").c_str(), path_.c_str()), 0);
  EXPECT_FALSE(CrashJournal::open(path_, kRing, 3));
}

TEST_F(CrashJournalTest, ShouldQuarantineTheRecordInFlightAtThreeDeathsInARow) {
  const JournalRecord r{2, 17, 4096};
  die_on(r);
  die_on(r);
  {
    CrashJournal j = open();
    EXPECT_TRUE(j.previous_crashed());
    EXPECT_EQ(j.died_on(), r);
    EXPECT_EQ(j.strikes(), 2u);
    EXPECT_FALSE(j.quarantined());
    j.begin(r.lane, r.seq, r.position);
  }
  CrashJournal j = open();
  EXPECT_EQ(j.strikes(), 3u);
  ASSERT_TRUE(j.quarantined());
  EXPECT_EQ(*j.quarantined(), r);
  EXPECT_TRUE(j.is_quarantined(2, 17, 4096));
  EXPECT_FALSE(j.is_quarantined(2, 18, 4128));
  EXPECT_FALSE(j.is_quarantined(1, 17, 4096));
  EXPECT_TRUE(j.first_skip());
  EXPECT_FALSE(j.first_skip());
  j.close();
  // Still skipped by the next run (the cursor may not have passed it), but counted once.
  CrashJournal next = open();
  EXPECT_FALSE(next.previous_crashed());
  EXPECT_TRUE(next.is_quarantined(2, 17, 4096));
  EXPECT_FALSE(next.first_skip());
}

TEST_F(CrashJournalTest, ShouldRestartTheCountOnAnotherRecordOrOneReadToItsEnd) {
  const JournalRecord a{0, 5, 64}, b{0, 6, 128};
  die_on(a);
  die_on(a);
  die_on(b);  // another record: a's strikes do not carry over
  {
    CrashJournal j = open();
    EXPECT_EQ(j.died_on(), b);
    EXPECT_EQ(j.strikes(), 1u);
    j.begin(b.lane, b.seq, b.position);
    j.end();  // b was read to its end: not what kills us
  }
  die_on(b);
  CrashJournal j = open();
  EXPECT_EQ(j.strikes(), 1u);
  EXPECT_FALSE(j.quarantined());
}

TEST_F(CrashJournalTest, ShouldNotCountADeathBetweenRecordsOrACleanStop) {
  const JournalRecord r{1, 9, 512};
  die_on(r);
  {
    CrashJournal j = open();  // dies idle: no record in flight
    j.begin(3, 1, 0);
    j.end();
  }
  {
    CrashJournal j = open();
    EXPECT_TRUE(j.previous_crashed());
    EXPECT_FALSE(j.died_on());
    EXPECT_EQ(j.strikes(), 1u);  // r's count is kept
    j.close();
  }
  CrashJournal j = open();
  EXPECT_FALSE(j.previous_crashed());
}

TEST_F(CrashJournalTest, ShouldNeverQuarantineWithAThresholdOfZero) {
  for (int i = 0; i < 5; ++i) die_on({0, 1, 0}, 0);
  CrashJournal j = open(0);
  EXPECT_EQ(j.strikes(), 5u);
  EXPECT_FALSE(j.quarantined());
}

TEST_F(CrashJournalTest, ShouldForgetAJournalOfAnotherRing) {
  for (int i = 0; i < 3; ++i) die_on({0, 1, 0});
  CrashJournal j = open(3, kRing + 1);
  EXPECT_FALSE(j.previous_crashed());
  EXPECT_FALSE(j.quarantined());
  EXPECT_EQ(j.strikes(), 0u);
}

TEST_F(CrashJournalTest, ShouldKeepWhatAKilledProcessWroteLast) {
  for (int i = 0; i < 3; ++i) {
    const pid_t pid = ::fork();
    if (pid == 0) {
      const rlimit none{0, 0};
      ::setrlimit(RLIMIT_CORE, &none);
      auto j = CrashJournal::open(path_, kRing, 3);
      if (!j) ::_exit(2);
      j->begin(1, 100, 8192);
      ::abort();
    }
    int st = 0;
    ASSERT_EQ(::waitpid(pid, &st, 0), pid);
    ASSERT_TRUE(WIFSIGNALED(st));
  }
  CrashJournal j = open();
  EXPECT_TRUE(j.is_quarantined(1, 100, 8192));
}

}  // namespace
}  // namespace ringpipe
