#include "ringpipe/ingest/graphite_parser.hpp"

#include <gtest/gtest.h>

#include "parse_harness.hpp"

namespace ringpipe::ingest {
namespace {

using sample::Kind;
using testing::Parsed;
using testing::Tags;

Parsed graphite(std::string_view packet, const GraphiteOptions& o = {}) {
  GraphiteParser p(o);
  return testing::parse(p, packet);
}

TEST(GraphiteParser, ParsesPathValueAndTimestampInSeconds) {
  const Parsed p = graphite("servers.a.cpu 12.5 1700000000\n");
  ASSERT_EQ(p.samples.size(), 1u);
  EXPECT_EQ(p.samples[0].kind, Kind::kGauge);
  EXPECT_EQ(p.samples[0].name, "servers.a.cpu");
  EXPECT_DOUBLE_EQ(p.samples[0].value, 12.5);
  EXPECT_EQ(p.samples[0].ts, 1700000000LL * 1'000'000'000);
}

TEST(GraphiteParser, ParsesTagsAfterSemicolons) {
  const Parsed p = graphite("disk.used;host=a;mount=/var 5 1700000000");
  ASSERT_EQ(p.samples.size(), 1u);
  EXPECT_EQ(p.samples[0].name, "disk.used");
  EXPECT_EQ(p.samples[0].tags, (Tags{{"host", "a"}, {"mount", "/var"}}));
}

TEST(GraphiteParser, RefusesALineWithMoreThanMaxTagsNeverCutsIt) {
  std::string tags;
  for (std::size_t i = 0; i < kMaxTags; ++i) tags += ";t" + std::to_string(i) + "=v";
  const Parsed full = graphite("disk.used" + tags + " 5 1700000000");
  ASSERT_EQ(full.samples.size(), 1u);
  EXPECT_EQ(full.samples[0].tags.size(), kMaxTags);
  EXPECT_EQ(full.err(ParseError::kTooManyTags), 0u);
  const Parsed over = graphite("disk.used" + tags + ";extra=1 5 1700000000\ndisk.free;host=a 6 1700000000");
  ASSERT_EQ(over.samples.size(), 1u);
  EXPECT_EQ(over.samples[0].name, "disk.free");
  EXPECT_EQ(over.err(ParseError::kTooManyTags), 1u);
}

TEST(GraphiteParser, UsesReceiveTimeWhenTimestampIsMissingOrMinusOne) {
  const Parsed p = graphite("a 1\nb 2 -1\nc 3 1700000000.25");
  ASSERT_EQ(p.samples.size(), 3u);
  EXPECT_EQ(p.samples[0].ts, 0);
  EXPECT_EQ(p.samples[1].ts, 0);
  EXPECT_EQ(p.samples[2].ts, 1700000000250000000);
}

TEST(GraphiteParser, AcceptsTabsAndRepeatedSpaces) {
  const Parsed p = graphite("  a\t 1 \t 1700000000  \r\n");
  ASSERT_EQ(p.samples.size(), 1u);
  EXPECT_EQ(p.samples[0].name, "a");
}

TEST(GraphiteParser, CountsMalformedLinesByReason) {
  const Parsed p = graphite(
      "onlypath\n"     // no value
      "a 1 2 3\n"      // extra token
      "a x 1\n"        // bad value
      "a nan 1\n"      // NaN: dropped like carbon
      "a 1 soon\n"     // bad timestamp
      "a;host 1 1\n"   // tag without '='
      "a;host= 1 1\n"  // empty tag value
      "a;=v 1 1\n"     // empty tag name
      "a;h=~x 1 1\n"   // value starting with '~'
      ";host=a 1 1\n"  // empty path
      "ok 1 1");
  ASSERT_EQ(p.samples.size(), 1u);
  EXPECT_EQ(p.err(ParseError::kMalformedLine), 2u);
  EXPECT_EQ(p.err(ParseError::kMalformedValue), 1u);
  EXPECT_EQ(p.err(ParseError::kNonFiniteValue), 1u);
  EXPECT_EQ(p.err(ParseError::kMalformedTimestamp), 1u);
  EXPECT_EQ(p.err(ParseError::kMalformedTag), 4u);
  EXPECT_EQ(p.err(ParseError::kEmptyName), 1u);
  EXPECT_EQ(p.counters.lines, 11u);
}

TEST(GraphiteParser, PassesInfinityUnlessRefused) {
  EXPECT_EQ(graphite("a inf 1").samples.size(), 1u);
  GraphiteOptions o;
  o.reject_infinite = true;
  EXPECT_EQ(graphite("a -Inf 1", o).err(ParseError::kNonFiniteValue), 1u);
}

TEST(GraphiteParser, DropsInvalidUtf8Line) {
  const Parsed p = graphite("a\xc3 1 1\nb 1 1");
  ASSERT_EQ(p.samples.size(), 1u);
  EXPECT_EQ(p.err(ParseError::kInvalidUtf8), 1u);
}

}  // namespace
}  // namespace ringpipe::ingest
