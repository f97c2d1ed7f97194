#include <gtest/gtest.h>

#include "cli.hpp"

namespace ringpipe::apps {
namespace {

TEST(Cli, SizeOptionsTakeWhatThePipelineFileTakes) {
  std::string why;
  EXPECT_EQ(size_option("--size", "64MiB", &why), 64ull << 20);
  EXPECT_EQ(size_option("--size", "4096", &why), 4096u);
  EXPECT_EQ(size_option("--size", "10MB", &why), 10'000'000u);
  EXPECT_EQ(size_option("--size", "1GiB", &why), 1ull << 30);
  EXPECT_EQ(size_option("--size", "2TiB", &why), 2ull << 40);
  EXPECT_FALSE(size_option("--size", "MiB", &why));
  EXPECT_FALSE(size_option("--size", "", &why));
  EXPECT_FALSE(size_option("--size", "12parsecs", &why));
  EXPECT_EQ(why, "--size: found \"12parsecs\", expected a size like 64MiB, 512KiB, 1GiB, 10MB or 1000 (bytes)");
}

TEST(Cli, DurationOptionsNeedAUnitAsThePipelineFileDoes) {
  std::string why;
  EXPECT_EQ(duration_option("--drain-timeout", "500ms", &why), std::chrono::milliseconds(500));
  EXPECT_EQ(duration_option("--drain-timeout", "10s", &why), std::chrono::milliseconds(10'000));
  EXPECT_EQ(duration_option("--drain-timeout", "1m30s", &why), std::chrono::milliseconds(90'000));
  EXPECT_EQ(duration_option("--drain-timeout", "1.5s", &why), std::chrono::milliseconds(1500));
  EXPECT_EQ(duration_option("--drain-timeout", "0", &why), std::chrono::milliseconds(0));
  EXPECT_FALSE(duration_option("--drain-timeout", "10x", &why));
  EXPECT_FALSE(duration_option("--drain-timeout", "", &why));
  // A bare number could mean seconds or milliseconds: refused, as in the file.
  EXPECT_FALSE(duration_option("--drain-timeout", "250", &why));
  EXPECT_EQ(why, "--drain-timeout: found \"250\", expected a duration like 500ms, 10s, 5m, 1h or 1m30s");
  EXPECT_FALSE(duration_option("--interval", "500us", &why));
  EXPECT_EQ(why, "--interval: found \"500us\", expected 0 or at least 1ms");
}

// `--drain-timeout X` and a millisecond key of the pipeline file
// (`reader_timeout: X`) take the same spellings and give the same duration.
TEST(Cli, DrainTimeoutFlagAndPipelineDurationKeyAgree) {
  for (const char* spelling : {"10", "250", "0", "10s", "500ms", "1m30s", "1.5s", "250us", "2500us", "1d", "-1s"}) {
    SCOPED_TRACE(spelling);
    const auto file = config::parse_pipeline(std::string("rings: {raw: {reader_timeout: \"") + spelling +
                                                 "\"}}\n"
                                                 "sources: {s: {type: statsd, listen: udp://:1, output: raw}}\n"
                                                 "exporters: {e: {type: prometheus, input: raw}}\n",
                                             "p.yaml", [](std::string_view) { return std::nullopt; });
    std::string why;
    const auto flag = duration_option("--drain-timeout", spelling, &why);
    ASSERT_EQ(flag.has_value(), file.has_value()) << why << (file ? "" : file.error().message());
    if (flag) {
      EXPECT_EQ(*flag, file->rings[0].reader_timeout);
    }
  }
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
    EXPECT_EQ(s->child_args(),
              (std::vector<std::string>{"--statsd.listen-udp", ":9999", "--no-statsd.parse-dogstatsd-tags"}));
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
