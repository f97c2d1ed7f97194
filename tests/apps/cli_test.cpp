#include <gtest/gtest.h>

#include "cli.hpp"

namespace ringpipe::apps {
namespace {

TEST(Cli, ParsesSizesWithUnits) {
  EXPECT_EQ(parse_size("64MiB"), 64ull << 20);
  EXPECT_EQ(parse_size("4096"), 4096u);
  EXPECT_EQ(parse_size("10MB"), 10'000'000u);
  EXPECT_EQ(parse_size("1GiB"), 1ull << 30);
  EXPECT_FALSE(parse_size("MiB"));
  EXPECT_FALSE(parse_size("12parsecs"));
  EXPECT_FALSE(parse_size(""));
}

TEST(Cli, ParsesDurationsWithUnits) {
  EXPECT_EQ(parse_duration("500ms"), std::chrono::milliseconds(500));
  EXPECT_EQ(parse_duration("10s"), std::chrono::milliseconds(10'000));
  EXPECT_EQ(parse_duration("1m30s"), std::chrono::milliseconds(90'000));
  EXPECT_EQ(parse_duration("250"), std::chrono::milliseconds(250));
  EXPECT_FALSE(parse_duration("10x"));
  EXPECT_FALSE(parse_duration(""));
}

TEST(Cli, PipelineArgsTakeAFileOrStatsdExporterFlags) {
  {
    const std::vector<std::string_view> v = {"p.yaml"};
    ArgScanner a(v);
    PipelineArgs p;
    ASSERT_TRUE(p.take(a));
    auto s = p.source();
    ASSERT_TRUE(s);
    EXPECT_EQ(s->kind, PipelineSource::Kind::kFile);
    EXPECT_EQ(s->child_args().at(0), "--config");
    EXPECT_EQ(s->child_args().at(1).front(), '/');  // absolute for the children
  }
  {
    const std::vector<std::string_view> v = {"--statsd.listen-udp", ":9999", "--no-statsd.parse-dogstatsd-tags"};
    ArgScanner a(v);
    PipelineArgs p;
    while (!a.done()) ASSERT_TRUE(p.take(a));
    auto s = p.source();
    ASSERT_TRUE(s);
    EXPECT_EQ(s->kind, PipelineSource::Kind::kFlags);
    EXPECT_EQ(s->child_args(), (std::vector<std::string>{"--statsd.listen-udp", ":9999",
                                                         "--no-statsd.parse-dogstatsd-tags"}));
    auto loaded = s->load();
    ASSERT_TRUE(loaded) << loaded.error().message();
    EXPECT_FALSE(loaded->sources.at(0).tags.dogstatsd);
  }
  {
    const std::vector<std::string_view> v = {"p.yaml", "--statsd.listen-udp=:1"};
    ArgScanner a(v);
    PipelineArgs p;
    while (!a.done()) ASSERT_TRUE(p.take(a));
    EXPECT_FALSE(p.source());
    EXPECT_NE(p.error().find("do not mix"), std::string::npos);
  }
  {
    PipelineArgs p;
    auto s = p.source();
    ASSERT_TRUE(s);
    EXPECT_EQ(s->kind, PipelineSource::Kind::kBuiltin);
    EXPECT_TRUE(s->child_args().empty());
  }
}

TEST(Cli, ScannerReadsBothOptionSpellings) {
  const std::vector<std::string_view> v = {"--size=1MiB", "--lanes", "4", "--count"};
  ArgScanner a(v);
  std::string value;
  ASSERT_TRUE(a.option("--size", &value));
  EXPECT_EQ(value, "1MiB");
  ASSERT_TRUE(a.option("--lanes", &value));
  EXPECT_EQ(value, "4");
  ASSERT_TRUE(a.option("--count", &value));
  EXPECT_FALSE(a.error().empty());
}

}  // namespace
}  // namespace ringpipe::apps
