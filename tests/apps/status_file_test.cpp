#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "status_file.hpp"
#include "test_support.hpp"

namespace ringpipe::apps {
namespace {

TEST(StatusFile, RoundTripsEveryField) {
  testing::ScratchDir dir;
  const std::string path = status_file_path(dir.path().string(), "edge");
  auto f = StatusFile::create(path);
  ASSERT_TRUE(f) << f.error().message();
  SupervisorStatus s;
  s.pipeline = "edge";
  s.state = SupervisorState::kRunning;
  s.pid = 1234;
  s.started_ns = 111;
  s.updated_ns = 222;
  ComponentStatus c;
  c.name = "statsd";
  c.kind = ComponentKind::kSource;
  c.state = ComponentState::kBackoff;
  c.pid = 99;
  c.restarts = 3;
  c.quick_failures = 2;
  c.started_ns = 5;
  c.last_exit = -9;
  c.last_exit_ns = 6;
  c.next_start_ns = 7;
  s.components.push_back(c);
  c.name = std::string(100, 'x');  // longer than a slot's name: cut, never overflowing
  c.kind = ComponentKind::kExporter;
  s.components.push_back(c);
  f->write(s);

  auto r = read_status_file(path);
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->pipeline, "edge");
  EXPECT_EQ(r->state, SupervisorState::kRunning);
  EXPECT_EQ(r->pid, 1234u);
  EXPECT_EQ(r->started_ns, 111);
  ASSERT_EQ(r->components.size(), 2u);
  const ComponentStatus& a = r->components[0];
  EXPECT_EQ(a.name, "statsd");
  EXPECT_EQ(a.kind, ComponentKind::kSource);
  EXPECT_EQ(a.state, ComponentState::kBackoff);
  EXPECT_EQ(a.pid, 99u);
  EXPECT_EQ(a.restarts, 3u);
  EXPECT_EQ(a.quick_failures, 2u);
  EXPECT_EQ(a.last_exit, -9);
  EXPECT_EQ(a.next_start_ns, 7);
  EXPECT_EQ(r->components[1].name, std::string(kStatusNameBytes - 1, 'x'));
  EXPECT_EQ(r->components[1].kind, ComponentKind::kExporter);
}

TEST(StatusFile, RefusesForeignTruncatedAndMissingFiles) {
  testing::ScratchDir dir;
  EXPECT_FALSE(read_status_file(dir.file("missing")));
  const std::string foreign = dir.file("foreign");
  {
    const int fd = ::open(foreign.c_str(), O_CREAT | O_WRONLY, 0600);
    ASSERT_GE(fd, 0);
    std::string junk(16384, 'j');
    ASSERT_EQ(::write(fd, junk.data(), junk.size()), static_cast<ssize_t>(junk.size()));
    ::close(fd);
  }
  auto r = read_status_file(foreign);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message().find("bad magic"), std::string::npos);
  ASSERT_EQ(::truncate(foreign.c_str(), 100), 0);
  r = read_status_file(foreign);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message().find("truncated"), std::string::npos);
}

TEST(StatusFile, RewriteReplacesTheComponentList) {
  testing::ScratchDir dir;
  const std::string path = dir.file("s");
  auto f = StatusFile::create(path);
  ASSERT_TRUE(f);
  SupervisorStatus s;
  s.components.resize(3);
  f->write(s);
  s.components.resize(1);
  f->write(s);
  auto r = read_status_file(path);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->components.size(), 1u);
}

TEST(StatusFile, PlantedSymlinkDoesNotModifyItsTarget) {
  testing::ScratchDir dir;
  const std::string path = status_file_path(dir.path().string(), "edge");
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  const std::string victim = dir.file("victim");
  const std::string content = "root:x:0:0:root:/root:/bin/bash\n";
  {
    std::ofstream out(victim);
    out << content;
  }
  ASSERT_EQ(::chmod(victim.c_str(), 0644), 0);
  std::filesystem::create_symlink(victim, path);

  auto f = StatusFile::create(path);
  EXPECT_FALSE(f) << "the status file was opened through a planted symlink";
  std::ifstream in(victim, std::ios::binary);
  const std::string now(std::istreambuf_iterator<char>(in), {});
  EXPECT_TRUE(now == content) << "the target now holds " << now.size() << " bytes";
  struct stat st {};
  ASSERT_EQ(::stat(victim.c_str(), &st), 0);
  EXPECT_EQ(st.st_size, static_cast<off_t>(content.size()));
  EXPECT_EQ(st.st_mode & 07777, 0644u);
}

TEST(StatusFile, IsOwnerOnlyWhateverTheUmask) {
  testing::ScratchDir dir;
  const std::string path = status_file_path((dir.path() / "run").string(), "edge");
  const mode_t old = ::umask(0);
  auto f = StatusFile::create(path);
  ::umask(old);
  ASSERT_TRUE(f) << f.error().message();
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  ASSERT_EQ(::stat((dir.path() / "run" / "edge").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0700u);
  ASSERT_EQ(::stat((dir.path() / "run").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0700u);
}

TEST(StatusFile, RefusesAnExistingFileOfAnotherUser) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to give a file to uid 65534";
  testing::ScratchDir dir;
  const std::string path = status_file_path(dir.path().string(), "edge");
  ASSERT_TRUE(StatusFile::create(path));
  ASSERT_EQ(::chown(path.c_str(), 65534, 65534), 0);
  auto f = StatusFile::create(path);
  ASSERT_FALSE(f) << "a status file another user owns was adopted";
  EXPECT_NE(f.error().message().find("65534"), std::string::npos) << f.error().message();
}

}  // namespace
}  // namespace ringpipe::apps
