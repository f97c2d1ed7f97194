// Sizes and durations, through the public parsers (ringpipe/config/units.hpp)
// and through a pipeline file.
#include "ringpipe/config/units.hpp"

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

#include <gtest/gtest.h>

#include "config_test_util.hpp"
#include "ringpipe/config/pipeline.hpp"

namespace ringpipe::config {
namespace {

using std::chrono::nanoseconds;

TEST(Units, SizesTakeBinaryAndDecimalUnits) {
  EXPECT_EQ(parse_size("1000"), 1000u);
  EXPECT_EQ(parse_size("1000B"), 1000u);
  EXPECT_EQ(parse_size("512KiB"), 512u * 1024);
  EXPECT_EQ(parse_size("64MiB"), 64u << 20);
  EXPECT_EQ(parse_size("1GiB"), 1u << 30);
  EXPECT_EQ(parse_size("2TiB"), 2ull << 40);
  EXPECT_EQ(parse_size("10kB"), 10'000u);
  EXPECT_EQ(parse_size("10KB"), 10'000u);
  EXPECT_EQ(parse_size("3MB"), 3'000'000u);
  EXPECT_EQ(parse_size("1GB"), 1'000'000'000u);
  EXPECT_EQ(parse_size("64 MiB"), 64u << 20);
}

TEST(Units, SizesRejectUnknownUnitsNegativesFractionsAndOverflow) {
  EXPECT_EQ(parse_size(""), std::nullopt);
  EXPECT_EQ(parse_size("MiB"), std::nullopt);
  EXPECT_EQ(parse_size("64mib"), std::nullopt);
  EXPECT_EQ(parse_size("64M"), std::nullopt);
  EXPECT_EQ(parse_size("-1"), std::nullopt);
  EXPECT_EQ(parse_size("1.5GiB"), std::nullopt);
  EXPECT_EQ(parse_size("17179869184GiB"), std::nullopt);
  EXPECT_EQ(parse_size("99999999999999999999"), std::nullopt);
}

TEST(Units, DurationsFollowGoSyntax) {
  EXPECT_EQ(parse_duration("0"), nanoseconds{0});
  EXPECT_EQ(parse_duration("500ms"), std::chrono::milliseconds{500});
  EXPECT_EQ(parse_duration("10s"), std::chrono::seconds{10});
  EXPECT_EQ(parse_duration("5m"), std::chrono::minutes{5});
  EXPECT_EQ(parse_duration("1h"), std::chrono::hours{1});
  EXPECT_EQ(parse_duration("1m20s"), std::chrono::seconds{80});
  EXPECT_EQ(parse_duration("1.5s"), std::chrono::milliseconds{1500});
  EXPECT_EQ(parse_duration("250us"), std::chrono::microseconds{250});
  EXPECT_EQ(parse_duration("250\xC2\xB5s"), std::chrono::microseconds{250});
  EXPECT_EQ(parse_duration("7ns"), nanoseconds{7});
}

TEST(Units, DurationsRejectMissingOrUnknownUnits) {
  EXPECT_EQ(parse_duration(""), std::nullopt);
  EXPECT_EQ(parse_duration("10"), std::nullopt);
  EXPECT_EQ(parse_duration("10 s"), std::nullopt);
  EXPECT_EQ(parse_duration("1d"), std::nullopt);
  EXPECT_EQ(parse_duration("-1s"), std::nullopt);
  EXPECT_EQ(parse_duration("s"), std::nullopt);
  EXPECT_EQ(parse_duration("99999999999h"), std::nullopt);
}

TEST(Units, MillisecondSettingsTruncateAndRefuseWhatWouldBecomeZero) {
  EXPECT_EQ(parse_millis("0"), std::chrono::milliseconds{0});
  EXPECT_EQ(parse_millis("1ms"), std::chrono::milliseconds{1});
  EXPECT_EQ(parse_millis("1.9ms"), std::chrono::milliseconds{1});
  EXPECT_EQ(parse_millis("1m30s"), std::chrono::milliseconds{90'000});
  EXPECT_EQ(parse_millis("999us"), std::nullopt);
  EXPECT_EQ(parse_millis("10"), std::nullopt);
  EXPECT_EQ(to_millis(nanoseconds{1'000'000}), std::chrono::milliseconds{1});
  EXPECT_EQ(to_millis(nanoseconds{1}), std::nullopt);
  EXPECT_EQ(to_millis(nanoseconds{0}), std::chrono::milliseconds{0});
}

// parse_millis is what the command line's duration options use: for every
// spelling it must take exactly what a millisecond key of the file takes.
TEST(Units, ParseMillisTakesWhatAPipelineDurationKeyTakes) {
  for (const char* spelling : {"10", "250", "0", "10s", "500ms", "1m30s", "1.5s", "2h", "250us", "1500us", "100ns",
                               "1d", "10 s", "-1s", "s", "", "99999999999h"}) {
    SCOPED_TRACE(spelling);
    const auto file = parse_pipeline(std::string("rings:\n  raw: {reader_timeout: \"") + spelling +
                                         "\"}\n"
                                         "sources:\n  s: {type: statsd, listen: udp://:1, output: raw}\n"
                                         "exporters:\n  e: {type: prometheus, input: raw}\n",
                                     "p.yaml", [](std::string_view) { return std::nullopt; });
    const auto flag = parse_millis(spelling);
    ASSERT_EQ(flag.has_value(), file.has_value()) << (file ? "" : file.error().message());
    if (flag) {
      EXPECT_EQ(*flag, file->rings[0].reader_timeout);
    }
  }
}

TEST(Units, PipelineValuesCarryUnits) {
  const auto r = parse_pipeline(R"(rings:
  raw: {size: 1GiB, max_record: 1000, reader_timeout: 1m30s}
sources:
  s: {type: statsd, listen: udp://:1, output: raw, read_buffer: 25MB, max_line_length: 512KiB, idle_timeout: 1h}
exporters:
  e: {type: remote_write, input: raw, url: "http://h/w", timeout: 1m}
)",
                                "p.yaml", [](std::string_view) { return std::nullopt; });
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->rings[0].size_bytes, 1u << 30);
  EXPECT_EQ(r->rings[0].max_record_bytes, 1000u);
  EXPECT_EQ(r->rings[0].reader_timeout, std::chrono::seconds{90});
  EXPECT_EQ(r->sources[0].read_buffer_bytes, 25'000'000u);
  EXPECT_EQ(r->sources[0].max_line_length, 512u * 1024);
  EXPECT_EQ(r->sources[0].idle_timeout, std::chrono::hours{1});
  EXPECT_EQ(r->exporters[0].remote_write.timeout, std::chrono::minutes{1});
}

TEST(Units, PipelineRejectsBadSizesAndSubMillisecondDurations) {
  const auto r = parse_pipeline(R"(rings:
  raw: {size: 64 megs, reader_timeout: 10us}
sources:
  s: {type: statsd, listen: udp://:1, output: raw}
exporters:
  e: {type: prometheus, input: raw}
)",
                                "p.yaml", [](std::string_view) { return std::nullopt; });
  ASSERT_FALSE(r);
  EXPECT_EQ(testing::messages(r),
            (std::vector<std::string>{
                "p.yaml:2:15: ring \"raw\" size: found \"64 megs\", expected a size like 64MiB, 512KiB, 1GiB, 10MB or "
                "1000 (bytes)",
                "p.yaml:2:40: ring \"raw\" reader_timeout: found \"10us\", expected 0 or at least 1ms"}));
}

}  // namespace
}  // namespace ringpipe::config
