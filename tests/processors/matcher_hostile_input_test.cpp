// Names a client controls, against regex rules: no length or shape of name
// may crash the matcher or stall it (this target runs under a short ctest
// TIMEOUT, so a backtracking engine fails it by running out of time).

#include <gtest/gtest.h>
#include <pthread.h>

#include <functional>
#include <string>

#include "engine_harness.hpp"
#include "ringpipe/processors/aggregator.hpp"
#include "ringpipe/processors/mapping.hpp"

namespace ringpipe::processors {
namespace {

using sample::Kind;

Matcher make(std::vector<MappingRule> rules) {
  MappingConfig c;
  c.rules = std::move(rules);
  auto m = Matcher::create(c);
  EXPECT_TRUE(m) << (m ? "" : m.error().message());
  return std::move(*m);
}

std::string label(const MatchResult& r, std::string_view name) {
  for (const auto& [k, v] : r.labels) {
    if (k == name) return v;
  }
  return "<none>";
}

void expect_catch_all_maps(std::size_t bytes) {
  Matcher m = make({testing::regex_rule("(.*)", "caught", {{"name", "$1"}})});
  const std::string name(bytes, 'n');
  const MatchResult r = m.match(name, MatchClass::kCounter);
  ASSERT_NE(r.rule, nullptr);
  EXPECT_EQ(r.name, "caught");
  EXPECT_EQ(label(r, "name").size(), bytes);
}

TEST(MatcherHostileInput, CatchAllRegexMapsA16KiBName) { expect_catch_all_maps(16 * 1024); }

// Runs f on a thread with a 256 KiB stack (a reader thread's stack may be
// small; matching must not need stack in proportion to the name).
void on_small_stack(const std::function<void()>& f) {
  pthread_attr_t attr;
  ASSERT_EQ(pthread_attr_init(&attr), 0);
  ASSERT_EQ(pthread_attr_setstacksize(&attr, 256 * 1024), 0);
  pthread_t t;
  auto body = [](void* arg) -> void* {
    (*static_cast<const std::function<void()>*>(arg))();
    return nullptr;
  };
  ASSERT_EQ(pthread_create(&t, &attr, body, const_cast<std::function<void()>*>(&f)), 0);
  ASSERT_EQ(pthread_join(t, nullptr), 0);
  pthread_attr_destroy(&attr);
}

TEST(MatcherHostileInput, CatchAllRegexMapsA16KiBNameOnASmallStack) {
  on_small_stack([] { expect_catch_all_maps(16 * 1024); });
}

TEST(MatcherHostileInput, CatchAllRegexMapsA1MiBName) { expect_catch_all_maps(1024 * 1024); }

TEST(MatcherHostileInput, NestedQuantifiersAnswerOnA28ByteName) {
  Matcher m = make({testing::regex_rule("(a+)+$", "nested", {{"run", "$1"}})});
  const std::string miss = std::string(27, 'a') + "!";
  EXPECT_EQ(m.match(miss, MatchClass::kCounter).rule, nullptr);
  const std::string hit = std::string(28, 'a');
  const MatchResult r = m.match(hit, MatchClass::kCounter);
  ASSERT_NE(r.rule, nullptr);
  EXPECT_EQ(label(r, "run"), hit);
}

TEST(MatcherHostileInput, NestedQuantifiersAnswerOnA5000ByteName) {
  Matcher m = make({testing::regex_rule("^(a|aa)+(b+)*$", "alternation"), testing::regex_rule("(a+)+$", "nested")});
  const std::string miss = std::string(5000, 'a') + "!";
  EXPECT_EQ(m.match(miss, MatchClass::kGauge).rule, nullptr);
  const std::string hit = "x" + std::string(5000, 'a');
  const MatchResult r = m.match(hit, MatchClass::kGauge);
  ASSERT_NE(r.rule, nullptr);
  EXPECT_EQ(r.name, "nested");
}

TEST(MatcherHostileInput, EngineMapsA16KiBNameThroughACatchAllRegex) {
  EngineOptions o;
  o.mapping.rules = {testing::regex_rule("^(.*)$", "long_names_total", {{"first", "${1}"}})};
  testing::Harness h(std::move(o));
  const std::string name(16 * 1024, 'q');
  h.send(Kind::kCounter, name, 1);
  h.flush();
  EXPECT_EQ(h.stats().unmapped, 0u);
  ASSERT_EQ(h.state.series.size(), 1u);
  EXPECT_EQ(h.state.series.begin()->second.name, "long_names_total");
}

}  // namespace
}  // namespace ringpipe::processors
