// The run directory is trusted only once it is verified: every file of a
// pipeline (rings, stats segments, status and state files) is created through
// directories that are ours, 0700, and never reached through another user's
// symlink. The tests run as root in CI, where "another user" is uid 65534.

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include <gtest/gtest.h>

#include "ringpipe/common/shared_file.hpp"
#include "ringpipe/stats/stats_segment.hpp"
#include "test_support.hpp"

namespace ringpipe {
namespace {

namespace fs = std::filesystem;

constexpr uid_t kOtherUid = 65534;

mode_t mode_of(const fs::path& p) {
  struct stat st {};
  EXPECT_EQ(::lstat(p.c_str(), &st), 0) << p;
  return st.st_mode & 07777;
}

// Restores the process umask when the test ends.
class UmaskGuard {
 public:
  explicit UmaskGuard(mode_t m) : old_(::umask(m)) {}
  ~UmaskGuard() { ::umask(old_); }
  UmaskGuard(const UmaskGuard&) = delete;
  UmaskGuard& operator=(const UmaskGuard&) = delete;

 private:
  mode_t old_;
};

TEST(RunDir, RefusesRunDirThatIsAnotherUsersSymlink) {
  testing::ScratchDir dir;
  const fs::path target = dir.path() / "chosen";
  fs::create_directories(target);
  fs::create_directory_symlink(target, dir.path() / "run");
  if (::geteuid() == 0) {
    ASSERT_EQ(::lchown((dir.path() / "run").c_str(), kOtherUid, kOtherUid), 0);
  }

  auto seg =
      stats::StatsSegment::create((dir.path() / "run" / "edge" / "statsd.stats").string(), "statsd", "source", 4);
  ASSERT_FALSE(seg) << "a stats segment was created through a symlinked run directory";
  EXPECT_NE(seg.error().message().find((dir.path() / "run").string()), std::string::npos) << seg.error().message();
  EXPECT_FALSE(fs::exists(target / "edge")) << "a directory was made where the symlink points";
}

TEST(RunDir, RefusesPipelineDirThatIsASymlink) {
  testing::ScratchDir dir;
  const fs::path target = dir.path() / "chosen";
  fs::create_directories(target);
  fs::create_directories(dir.path() / "run");
  fs::create_directory_symlink(target, dir.path() / "run" / "edge");

  auto file = NewSharedFile::create((dir.path() / "run" / "edge" / "raw").string(), 4096, "create ring raw");
  ASSERT_FALSE(file) << "a ring file was created through a symlinked pipeline directory";
  EXPECT_NE(file.error().message().find("symlink"), std::string::npos) << file.error().message();
  EXPECT_TRUE(fs::is_empty(target));
}

TEST(RunDir, RefusesWorldWritablePipelineDir) {
  testing::ScratchDir dir;
  const fs::path edge = dir.path() / "run" / "edge";
  fs::create_directories(edge);
  ASSERT_EQ(::chmod(edge.c_str(), 0777), 0);

  auto seg = stats::StatsSegment::create((edge / "statsd.stats").string(), "statsd", "source", 4);
  ASSERT_FALSE(seg) << "a stats segment was created in a world-writable directory";
  const std::string msg = seg.error().message();
  EXPECT_NE(msg.find(edge.string()), std::string::npos) << msg;
  EXPECT_NE(msg.find("0777"), std::string::npos) << msg;
  EXPECT_FALSE(fs::exists(edge / "statsd.stats"));
}

TEST(RunDir, RefusesGroupWritableRunDir) {
  testing::ScratchDir dir;
  const fs::path run = dir.path() / "run";
  fs::create_directories(run);
  ASSERT_EQ(::chmod(run.c_str(), 0770), 0);

  auto file = NewSharedFile::create((run / "edge" / "raw").string(), 4096, "create ring raw");
  ASSERT_FALSE(file) << "a ring file was created below a group-writable run directory";
  EXPECT_NE(file.error().message().find("0770"), std::string::npos) << file.error().message();
  EXPECT_FALSE(fs::exists(run / "edge"));
}

TEST(RunDir, RefusesRunDirOwnedByAnotherUser) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to give a directory to uid 65534";
  testing::ScratchDir dir;
  const fs::path run = dir.path() / "run";
  fs::create_directories(run);
  ASSERT_EQ(::chown(run.c_str(), kOtherUid, kOtherUid), 0);
  ASSERT_EQ(::chmod(run.c_str(), 0700), 0);

  auto seg = stats::StatsSegment::create((run / "edge" / "statsd.stats").string(), "statsd", "source", 4);
  ASSERT_FALSE(seg) << "a stats segment was created below a directory another user owns";
  const std::string msg = seg.error().message();
  EXPECT_NE(msg.find(run.string()), std::string::npos) << msg;
  EXPECT_NE(msg.find("65534"), std::string::npos) << msg;
  EXPECT_FALSE(fs::exists(run / "edge"));
}

TEST(RunDir, RefusesPipelineDirOwnedByAnotherUser) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to give a directory to uid 65534";
  testing::ScratchDir dir;
  const fs::path edge = dir.path() / "run" / "edge";
  fs::create_directories(edge);
  ASSERT_EQ(::chown(edge.c_str(), kOtherUid, kOtherUid), 0);
  ASSERT_EQ(::chmod(edge.c_str(), 0700), 0);

  auto file = NewSharedFile::create((edge / "raw").string(), 4096, "create ring raw");
  ASSERT_FALSE(file) << "a ring file was created in a directory another user owns";
  EXPECT_NE(file.error().message().find("65534"), std::string::npos) << file.error().message();
  EXPECT_TRUE(fs::is_empty(edge));
}

TEST(RunDir, RefusesExistingStatsSegmentOwnedByAnotherUser) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to give a file to uid 65534";
  testing::ScratchDir dir;
  const fs::path edge = dir.path() / "run" / "edge";
  {
    auto seg = stats::StatsSegment::create((edge / "statsd.stats").string(), "statsd", "source", 4);
    ASSERT_TRUE(seg) << seg.error().message();
  }
  ASSERT_EQ(::chown((edge / "statsd.stats").c_str(), kOtherUid, kOtherUid), 0);

  auto seg = stats::StatsSegment::create((edge / "statsd.stats").string(), "statsd", "source", 4);
  ASSERT_FALSE(seg) << "a stats segment another user owns was adopted";
  EXPECT_NE(seg.error().message().find("65534"), std::string::npos) << seg.error().message();
}

TEST(RunDir, CreatesDirectoriesOwnerOnlyAndFilesOwnerOnlyWhateverTheUmask) {
  testing::ScratchDir dir;  // made under the usual umask: only what ringpipe makes is under umask 0
  UmaskGuard umask0(0);
  const fs::path run = dir.path() / "run";
  const fs::path edge = run / "edge";
  auto seg = stats::StatsSegment::create((edge / "statsd.stats").string(), "statsd", "source", 4);
  ASSERT_TRUE(seg) << seg.error().message();
  auto file = NewSharedFile::create((edge / "raw").string(), 4096, "create ring raw");
  ASSERT_TRUE(file) << file.error().message();
  ASSERT_TRUE(file->publish(false));

  EXPECT_EQ(mode_of(run), 0700u);
  EXPECT_EQ(mode_of(edge), 0700u);
  EXPECT_EQ(mode_of(edge / "statsd.stats"), 0600u);
  EXPECT_EQ(mode_of(edge / "raw"), 0600u);
}

}  // namespace
}  // namespace ringpipe
