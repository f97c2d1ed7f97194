#include "ringpipe/ingest/influx_parser.hpp"

#include <gtest/gtest.h>

#include "parse_harness.hpp"

namespace ringpipe::ingest {
namespace {

using sample::Kind;
using testing::Parsed;
using testing::Tags;

Parsed influx(std::string_view packet, const InfluxOptions& o = {}) {
  InfluxParser p(o);
  return testing::parse(p, packet);
}

TEST(InfluxParser, EmitsOneGaugePerNumericFieldNamedMeasurementUnderscoreField) {
  const Parsed p = influx("cpu,host=a,dc=eu usage=0.5,idle=99i 1700000000000000000");
  ASSERT_EQ(p.samples.size(), 2u);
  EXPECT_EQ(p.samples[0].kind, Kind::kGauge);
  EXPECT_EQ(p.samples[0].name, "cpu_usage");
  EXPECT_DOUBLE_EQ(p.samples[0].value, 0.5);
  EXPECT_EQ(p.samples[0].tags, (Tags{{"host", "a"}, {"dc", "eu"}}));
  EXPECT_EQ(p.samples[0].ts, 1700000000000000000);
  EXPECT_EQ(p.samples[1].name, "cpu_idle");
  EXPECT_DOUBLE_EQ(p.samples[1].value, 99);
}

TEST(InfluxParser, ParsesEveryFieldType) {
  const Parsed p = influx("m f=1.5e3,i=-7i,u=42u,t=t,T=TRUE,x=false,s=\"text, with = \\\" and spaces\",n=3");
  ASSERT_EQ(p.samples.size(), 7u);
  EXPECT_DOUBLE_EQ(p.samples[0].value, 1500);
  EXPECT_DOUBLE_EQ(p.samples[1].value, -7);
  EXPECT_DOUBLE_EQ(p.samples[2].value, 42);
  EXPECT_DOUBLE_EQ(p.samples[3].value, 1);
  EXPECT_DOUBLE_EQ(p.samples[4].value, 1);
  EXPECT_DOUBLE_EQ(p.samples[5].value, 0);
  EXPECT_EQ(p.samples[6].name, "m_n");
  EXPECT_EQ(p.counters.skipped_fields, 1u);  // the string
  EXPECT_EQ(p.counters.total_errors(), 0u);
}

TEST(InfluxParser, SkipsBooleansWhenAskedTo) {
  InfluxOptions o;
  o.booleans_as_numbers = false;
  const Parsed p = influx("m a=t,b=1", o);
  ASSERT_EQ(p.samples.size(), 1u);
  EXPECT_EQ(p.samples[0].name, "m_b");
  EXPECT_EQ(p.counters.skipped_fields, 1u);
}

TEST(InfluxParser, UnescapesMeasurementTagsAndFieldKeys) {
  const Parsed p = influx("my\\ meas\\,ure,tag\\ key=tag\\,val\\=ue fi\\=eld\\ x=1");
  ASSERT_EQ(p.samples.size(), 1u);
  EXPECT_EQ(p.samples[0].name, "my meas,ure_fi=eld x");
  EXPECT_EQ(p.samples[0].tags, (Tags{{"tag key", "tag,val=ue"}}));
}

TEST(InfluxParser, AppliesTimestampPrecision) {
  const struct {
    Precision precision;
    std::int64_t factor;
  } rows[] = {{Precision::kNanoseconds, 1},
              {Precision::kMicroseconds, 1000},
              {Precision::kMilliseconds, 1000000},
              {Precision::kSeconds, 1000000000}};
  for (const auto& r : rows) {
    InfluxOptions o;
    o.precision = r.precision;
    const Parsed p = influx("m v=1 1700000000", o);
    ASSERT_EQ(p.samples.size(), 1u);
    EXPECT_EQ(p.samples[0].ts, 1700000000LL * r.factor);
  }
}

TEST(InfluxParser, LeavesTimestampZeroWhenAbsentAndAcceptsNegative) {
  const Parsed p = influx("m v=1\nm v=2 -5\nm v=3   ");
  ASSERT_EQ(p.samples.size(), 3u);
  EXPECT_EQ(p.samples[0].ts, 0);
  EXPECT_EQ(p.samples[1].ts, -5);
  EXPECT_EQ(p.samples[2].ts, 0);
}

TEST(InfluxParser, DropsWholeLineWhenAnyPartIsMalformed) {
  const Parsed p = influx(
      "m\n"                          // no fields
      "m,t=1\n"                      // no fields
      "m a=1,b=x\n"                  // bad value: a must not be emitted either
      "m a=1,b\n"                    // field without '='
      "m a=\"open\n"                 // unterminated string
      "m,t a=1\n"                    // tag without value
      "m,=v a=1\n"                   // tag without key
      "m a=1 12x\n"                  // bad timestamp
      "m a=1 1 2\n"                  // junk after the timestamp
      "m a=9223372036854775808i\n"   // integer overflow
      "m a=-1u\n"                    // negative unsigned
      "m a=NaN\n"                    // no NaN in line protocol
      "m a=1 9223372036854775807\n"  // fine in ns
      ",t=1 a=1\n"                   // empty measurement
      "ok v=1");
  ASSERT_EQ(p.samples.size(), 2u);
  EXPECT_EQ(p.samples[1].name, "ok_v");
  EXPECT_EQ(p.err(ParseError::kMalformedLine), 2u);
  EXPECT_EQ(p.err(ParseError::kMalformedValue), 4u);
  EXPECT_EQ(p.err(ParseError::kMalformedField), 2u);
  EXPECT_EQ(p.err(ParseError::kMalformedTag), 2u);
  EXPECT_EQ(p.err(ParseError::kMalformedTimestamp), 2u);
  EXPECT_EQ(p.err(ParseError::kEmptyName), 1u);
}

TEST(InfluxParser, RefusesALineWithMoreThanMaxTagsNeverCutsIt) {
  // Cut at kMaxTags, two lines differing only in the 65th tag would be one series.
  std::string tags;
  for (std::size_t i = 0; i < kMaxTags; ++i) tags += ",t" + std::to_string(i) + "=v";
  const Parsed full = influx("m" + tags + " a=1,b=2");
  ASSERT_EQ(full.samples.size(), 2u);
  EXPECT_EQ(full.samples[0].tags.size(), kMaxTags);
  EXPECT_EQ(full.err(ParseError::kTooManyTags), 0u);
  const Parsed over = influx("m" + tags + ",extra=1 a=1,b=2\nm,ok=1 a=3");
  ASSERT_EQ(over.samples.size(), 1u);  // the whole first line, both fields, is refused
  EXPECT_EQ(over.samples[0].tags, (Tags{{"ok", "1"}}));
  EXPECT_EQ(over.err(ParseError::kTooManyTags), 1u);
}

TEST(InfluxParser, RefusesTimestampThatOverflowsAtItsPrecision) {
  InfluxOptions o;
  o.precision = Precision::kSeconds;
  const Parsed p = influx("m v=1 9300000000", o);
  EXPECT_TRUE(p.samples.empty());
  EXPECT_EQ(p.err(ParseError::kMalformedTimestamp), 1u);
}

TEST(InfluxParser, IgnoresCommentsBlankLinesAndCarriageReturns) {
  const Parsed p = influx("# a comment\r\n\r\n   \nm v=1\r\n");
  ASSERT_EQ(p.samples.size(), 1u);
  EXPECT_EQ(p.counters.lines, 1u);
  EXPECT_EQ(p.counters.total_errors(), 0u);
}

TEST(InfluxParser, DropsInvalidUtf8Line) {
  const Parsed p = influx("m\xff v=1\nm v=2");
  ASSERT_EQ(p.samples.size(), 1u);
  EXPECT_EQ(p.err(ParseError::kInvalidUtf8), 1u);
}

TEST(InfluxParser, KeepsHugeAndTinyValues) {
  const Parsed p = influx("m a=1.7976931348623157e308,b=4.9e-324,c=1e-400");
  ASSERT_EQ(p.samples.size(), 3u);
  EXPECT_DOUBLE_EQ(p.samples[0].value, 1.7976931348623157e308);
  EXPECT_EQ(p.samples[2].value, 0);
}

}  // namespace
}  // namespace ringpipe::ingest
