// UniqueMapping: a file truncated under a guarded mapping costs this process
// the mapping, never its life; a SIGBUS anywhere else keeps its default action.

#include "ringpipe/common/mapping.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <string>

#include <gtest/gtest.h>

#include "ringpipe/common/unique_fd.hpp"
#include "test_support.hpp"

namespace ringpipe {
namespace {

using ringpipe::testing::ScratchDir;

constexpr std::size_t kBytes = 1 << 16;

UniqueFd make_file(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  if (fd.valid() && ::ftruncate(fd.get(), kBytes) != 0) return UniqueFd();
  return fd;
}

// Runs f in a child; returns its wait status.
template <class F>
int in_child(F f) {
  const pid_t child = ::fork();
  if (child == 0) {
    ::alarm(20);
    ::_exit(f());
  }
  int status = 0;
  ::waitpid(child, &status, 0);
  return status;
}

TEST(UniqueMapping, ASigbusInsideAGuardedMappingMakesItLostAndNamesIt) {
  ScratchDir dir;
  const std::string path = dir.file("seg");
  UniqueFd fd = make_file(path);
  ASSERT_TRUE(fd.valid());
  const int status = in_child([&] {
    auto m = UniqueMapping::map(fd.get(), kBytes, true, path, "map " + path);
    if (!m) return 2;
    volatile std::byte* p = m->data();
    p[kBytes - 1] = std::byte{1};
    if (m->lost() || lost_mapping()) return 3;
    if (::ftruncate(fd.get(), 4096) != 0) return 4;
    p[kBytes - 1] = std::byte{2};                 // past the new end: SIGBUS without the guard
    if (p[kBytes - 1] != std::byte{2}) return 5;  // private pages now, still usable
    if (p[0] != std::byte{0}) return 6;           // zeros, not the file's bytes
    if (!m->lost()) return 7;
    const auto lost = lost_mapping();
    if (!lost || *lost != path) return 8;
    return 0;
  });
  ASSERT_FALSE(WIFSIGNALED(status)) << "killed by signal " << WTERMSIG(status);
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

TEST(UniqueMapping, ASigbusOutsideEveryGuardedMappingStillKillsWithSigbus) {
  ScratchDir dir;
  const std::string path = dir.file("seg");
  UniqueFd fd = make_file(path);
  ASSERT_TRUE(fd.valid());
  const int status = in_child([&] {
    auto guarded = UniqueMapping::map(fd.get(), 4096, true, path, "map");  // installs the handler
    if (!guarded) return 2;
    void* raw = ::mmap(nullptr, kBytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd.get(), 0);
    if (raw == MAP_FAILED) return 3;
    if (::ftruncate(fd.get(), 4096) != 0) return 4;
    static_cast<volatile char*>(raw)[kBytes - 1] = 1;
    return 0;  // survived a fault that is not ours: wrong
  });
  ASSERT_FALSE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "a SIGBUS outside every guarded mapping was swallowed";
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  // The sanitizer's SIGBUS handler was installed first: ours hands the fault
  // on to it, and it reports and exits.
#else
  ASSERT_TRUE(WIFSIGNALED(status)) << "exited with " << WEXITSTATUS(status);
  EXPECT_EQ(WTERMSIG(status), SIGBUS);
#endif
}

TEST(UniqueMapping, MovedAndDestroyedMappingsAreNoLongerGuarded) {
  ScratchDir dir;
  const std::string path = dir.file("seg");
  UniqueFd fd = make_file(path);
  ASSERT_TRUE(fd.valid());
  auto m = UniqueMapping::map(fd.get(), kBytes, true, path, "map");
  ASSERT_TRUE(m);
  UniqueMapping moved = std::move(*m);
  EXPECT_EQ(m->data(), nullptr);
  EXPECT_NE(moved.data(), nullptr);
  EXPECT_EQ(moved.size(), kBytes);
  moved = UniqueMapping();
  EXPECT_EQ(moved.data(), nullptr);
  EXPECT_FALSE(moved.lost());
}

}  // namespace
}  // namespace ringpipe
