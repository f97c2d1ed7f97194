// Hostile YAML: aliases that would expand a small file into a huge tree are
// refused before any tree is built, with a position, in bounded memory.
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <string>

#include <gtest/gtest.h>

#include "config_test_util.hpp"
#include "ringpipe/config/mapping.hpp"
#include "ringpipe/config/pipeline.hpp"
#include "test_support.hpp"
#include "yaml_tree.hpp"

namespace ringpipe::config {
namespace {

using testing::has_message;

std::optional<std::string> no_env(std::string_view) { return std::nullopt; }

// Billion laughs: `levels` levels of nine aliases each, 9^levels scalars; nine
// levels (387 million scalars) take about 800 bytes of text. Tests that load
// in-process use six levels (531441 scalars), so a regression costs them
// memory in the hundreds of MiB, not the machine.
std::string alias_bomb(int levels = 9) {
  std::string y = "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n";
  for (char c = 'b'; c < 'a' + levels; ++c) {
    const char prev = static_cast<char>(c - 1);
    y += std::string(1, c) + ": &" + c + " [";
    for (int i = 0; i < 9; ++i) y += std::string(i == 0 ? "" : ", ") + "*" + prev;
    y += "]\n";
  }
  return y;
}

// What a forked child that parsed the text reported, and its peak memory.
struct ChildRun {
  std::string first_message;  // empty when the load succeeded
  long max_rss_kib = 0;
  int status = 0;
};

// Loads `text` as a pipeline in a forked child (capped at 2 GiB of address
// space and 60 s of CPU, so a regression fails the test instead of the
// machine) and measures the child's peak RSS with wait4.
ChildRun load_in_child(const std::string& text) {
  std::array<int, 2> fds{};
  EXPECT_EQ(::pipe(fds.data()), 0);
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::close(fds[0]);
    if (!ringpipe::testing::under_sanitizer()) {
      const rlimit as{2UL << 30, 2UL << 30};
      ::setrlimit(RLIMIT_AS, &as);
    }
    const rlimit cpu{60, 60};
    ::setrlimit(RLIMIT_CPU, &cpu);
    const auto r = parse_pipeline(text, "bomb.yaml", no_env);
    std::string out = r ? std::string() : r.error().diagnostics.front().to_string();
    if (!r && out.empty()) out = "?";
    const char* p = out.data();
    std::size_t left = out.size();
    while (left > 0) {
      const ssize_t n = ::write(fds[1], p, left);
      if (n <= 0) break;
      p += n;
      left -= static_cast<std::size_t>(n);
    }
    ::_exit(0);
  }
  ::close(fds[1]);
  ChildRun run;
  char buf[4096];
  ssize_t n = 0;
  while ((n = ::read(fds[0], buf, sizeof buf)) > 0) run.first_message.append(buf, static_cast<std::size_t>(n));
  ::close(fds[0]);
  rusage usage{};
  while (::wait4(pid, &run.status, 0, &usage) < 0 && errno == EINTR) {
  }
  run.max_rss_kib = usage.ru_maxrss;
  return run;
}

TEST(YamlLimits, RefusesABillionLaughsAliasBombWithAPositionInBoundedMemory) {
  const std::string bomb = alias_bomb();
  ASSERT_LT(bomb.size(), 1000U);
  const ChildRun run = load_in_child(bomb);
  ASSERT_TRUE(WIFEXITED(run.status)) << "the child died of signal " << WTERMSIG(run.status);
  // The alias that crosses the limit is named by its line and column.
  EXPECT_NE(run.first_message.find("bomb.yaml:"), std::string::npos) << run.first_message;
  EXPECT_NE(run.first_message.find("aliases that expand to more than"), std::string::npos) << run.first_message;
  EXPECT_LT(run.max_rss_kib, 128L * 1024) << "peak RSS " << run.max_rss_kib << " KiB";
}

TEST(YamlLimits, NamesTheAliasThatCrossesTheLimit) {
  const auto r = parse_pipeline(alias_bomb(6), "bomb.yaml", no_env);
  ASSERT_FALSE(r);
  ASSERT_EQ(r.error().diagnostics.size(), 1U);
  const Diagnostic& d = r.error().diagnostics.front();
  // Nodes from aliases: 90 (line 2), 819, 7380, 66429 (line 5: 74718 in all);
  // the first `*e` on line 6 adds 66430 and crosses 100000.
  EXPECT_EQ(d.position.line, 6U);
  EXPECT_EQ(d.position.column, 8U);
  EXPECT_NE(d.message.find(std::to_string(detail::kMaxYamlAliasNodes)), std::string::npos) << d.message;
}

TEST(YamlLimits, RefusesTheBombInAMappingFileToo) {
  const auto r = parse_mapping_yaml(alias_bomb(6), "mapping.yml");
  ASSERT_FALSE(r);
  EXPECT_TRUE(has_message(r, "aliases that expand to more than")) << r.error().message();
}

TEST(YamlLimits, RefusesAnAliasInsideItsOwnAnchor) {
  // yaml-cpp builds a cyclic node for this; converting it would never end.
  std::vector<Diagnostic> diags;
  const auto tree = detail::parse_yaml("a: &x [1, *x, *x]\n", "cycle.yaml", diags);
  ASSERT_FALSE(tree.has_value());
  ASSERT_EQ(diags.size(), 1U);
  EXPECT_EQ(diags[0].position.line, 1U);
  EXPECT_NE(diags[0].message.find("inside its own anchor"), std::string::npos) << diags[0].message;
}

TEST(YamlLimits, AcceptsAliasesUpToTheLimit) {
  // One anchored map of 100 scalars (plus its node) used by aliases: exactly the limit, then one more.
  std::string anchor = "base: &b {";
  for (int i = 0; i < 50; ++i) anchor += (i == 0 ? "k" : ", k") + std::to_string(i) + ": v";
  anchor += "}\n";
  const std::size_t per_alias = 101;
  const std::size_t fits = detail::kMaxYamlAliasNodes / per_alias;
  std::string text = anchor + "uses: [";
  for (std::size_t i = 0; i < fits; ++i) text += i == 0 ? "*b" : ", *b";
  std::vector<Diagnostic> diags;
  const auto ok = detail::parse_yaml(text + "]\n", "ok.yaml", diags);
  ASSERT_TRUE(ok.has_value()) << (diags.empty() ? "" : diags[0].to_string());
  ASSERT_EQ(ok->entries.size(), 2U);
  EXPECT_EQ(ok->entries[1].second.items.size(), fits);
  EXPECT_EQ(ok->entries[1].second.items.back().entries.size(), 50U);
  const auto over = detail::parse_yaml(text + ", *b]\n", "over.yaml", diags);
  EXPECT_FALSE(over.has_value());
  ASSERT_EQ(diags.size(), 1U);
  EXPECT_NE(diags[0].message.find("aliases that expand to more than"), std::string::npos) << diags[0].message;
}

}  // namespace
}  // namespace ringpipe::config
