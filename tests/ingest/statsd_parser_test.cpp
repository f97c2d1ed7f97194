#include "ringpipe/ingest/statsd_parser.hpp"

#include <cmath>
#include <cstdlib>
#include <string>

#include <gtest/gtest.h>

#include "parse_harness.hpp"

namespace ringpipe::ingest {
namespace {

using sample::Kind;
using testing::Parsed;
using testing::Tags;

Parsed statsd(std::string_view packet, const StatsdOptions& o = {}) {
  StatsdParser p(o);
  return testing::parse(p, packet);
}

// One row: a line and the single sample it must produce.
struct Row {
  const char* line;
  Kind kind;
  const char* name;
  double value;
  double rate;
};

TEST(StatsdParser, ParsesEveryTypeAsStatsdExporterDoes) {
  const Row rows[] = {
      {"hits:1|c", Kind::kCounter, "hits", 1, 1},
      {"hits:2.5|c", Kind::kCounter, "hits", 2.5, 1},
      {"temp:21|g", Kind::kGauge, "temp", 21, 1},
      {"temp:+3|g", Kind::kGaugeDelta, "temp", 3, 1},
      {"temp:-3|g", Kind::kGaugeDelta, "temp", -3, 1},
      {"lat:250|ms", Kind::kTimer, "lat", 0.25, 1},
      {"size:250|h", Kind::kHistogram, "size", 250, 1},
      {"size:250|d", Kind::kDistribution, "size", 250, 1},
      {"a.b-c_d:1|c", Kind::kCounter, "a.b-c_d", 1, 1},
      {"x:.5|g", Kind::kGauge, "x", 0.5, 1},
      {"x:5.|g", Kind::kGauge, "x", 5, 1},
      {"x:1e3|g", Kind::kGauge, "x", 1000, 1},
      {"x:0x1p4|g", Kind::kGauge, "x", 16, 1},
      {"x:1e308|g", Kind::kGauge, "x", 1e308, 1},
      {"x:1e-400|g", Kind::kGauge, "x", 0, 1},
      {"x:123456789012345678901234567890|g", Kind::kGauge, "x", 1.2345678901234568e29, 1},
  };
  for (const Row& r : rows) {
    SCOPED_TRACE(r.line);
    const Parsed p = statsd(r.line);
    ASSERT_EQ(p.samples.size(), 1u);
    EXPECT_EQ(p.samples[0].kind, r.kind);
    EXPECT_EQ(p.samples[0].name, r.name);
    EXPECT_DOUBLE_EQ(p.samples[0].value, r.value);
    EXPECT_DOUBLE_EQ(p.samples[0].rate, r.rate);
    EXPECT_EQ(p.counters.total_errors(), 0u);
  }
}

TEST(StatsdParser, DividesCounterBySampleRate) {
  const Parsed p = statsd("hits:2|c|@0.1");
  ASSERT_EQ(p.samples.size(), 1u);
  EXPECT_DOUBLE_EQ(p.samples[0].value, 20);
  EXPECT_DOUBLE_EQ(p.samples[0].rate, 1);  // already applied: weight 1
}

TEST(StatsdParser, CarriesTimerHistogramAndDistributionRateAsWeight) {
  const Parsed p = statsd("t:250|ms|@0.25\nh:7|h|@0.5\nd:7|d|@0.3");
  ASSERT_EQ(p.samples.size(), 3u);  // not replayed 1/rate times
  EXPECT_DOUBLE_EQ(p.samples[0].value, 0.25);
  EXPECT_DOUBLE_EQ(p.samples[0].rate, 0.25);
  EXPECT_DOUBLE_EQ(p.samples[1].rate, 0.5);
  EXPECT_DOUBLE_EQ(p.samples[2].rate, 0.3);
}

// statsd_exporter reads "@0" as "@1"; a rate of 0 is outside (0, 1] and
// says the sample was never taken, so it is refused like any other.
TEST(StatsdParser, RefusesSampleRateZeroAndCountsIt) {
  const Parsed p = statsd("hits:3|c|@0\nt:3|ms|@0.0\nh:3|h|@-0\ng:3|g|@0\nok:1|c|@1");
  ASSERT_EQ(p.samples.size(), 2u);
  EXPECT_EQ(p.samples[0].name, "g");  // gauges ignore the rate
  EXPECT_EQ(p.samples[1].name, "ok");
  EXPECT_EQ(p.err(ParseError::kSampleRateOutOfRange), 3u);
  EXPECT_EQ(p.counters.total_errors(), 3u);
}

TEST(StatsdParser, KeepsSampleWithUnparsableRateAtRateOneAndCountsIt) {
  const Parsed p = statsd("hits:3|c|@abc");
  ASSERT_EQ(p.samples.size(), 1u);
  EXPECT_DOUBLE_EQ(p.samples[0].value, 3);
  EXPECT_EQ(p.err(ParseError::kInvalidSampleFactor), 1u);
}

TEST(StatsdParser, DropsSampleWithRateOutsideZeroToOne) {
  const Parsed p = statsd("a:1|c|@2\na:1|c|@-0.5\na:1|ms|@NaN\na:1|h|@Inf\nok:1|c|@1");
  ASSERT_EQ(p.samples.size(), 1u);
  EXPECT_EQ(p.samples[0].name, "ok");
  EXPECT_EQ(p.err(ParseError::kSampleRateOutOfRange), 4u);
}

TEST(StatsdParser, GaugeAndSetIgnoreSampleRate) {
  const Parsed p = statsd("g:4|g|@0.5\ns:bob|s|@0.5\ng2:4|g|@7");
  ASSERT_EQ(p.samples.size(), 3u);
  EXPECT_DOUBLE_EQ(p.samples[0].value, 4);
  EXPECT_DOUBLE_EQ(p.samples[0].rate, 1);
  EXPECT_DOUBLE_EQ(p.samples[1].rate, 1);
  EXPECT_EQ(p.counters.total_errors(), 0u);
}

TEST(StatsdParser, PutsSetMemberInStrValue) {
  const Parsed p = statsd("users:alice|s\nusers:42|s");
  ASSERT_EQ(p.samples.size(), 2u);
  EXPECT_EQ(p.samples[0].kind, Kind::kSet);
  EXPECT_EQ(p.samples[0].str, "alice");
  EXPECT_EQ(p.samples[1].str, "42");
}

TEST(StatsdParser, RefusesEmptySetMember) {
  const Parsed p = statsd("users:|s");
  EXPECT_TRUE(p.samples.empty());
  EXPECT_EQ(p.err(ParseError::kMalformedValue), 1u);
}

TEST(StatsdParser, SplitsMultiValueLineSharingRateAndTags) {
  const Parsed p = statsd("t:1:2:3|ms|@0.5|#k:v");
  ASSERT_EQ(p.samples.size(), 3u);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(p.samples[i].kind, Kind::kTimer);
    EXPECT_DOUBLE_EQ(p.samples[i].value, (i + 1) / 1000.0);
    EXPECT_DOUBLE_EQ(p.samples[i].rate, 0.5);
    EXPECT_EQ(p.samples[i].tags, (Tags{{"k", "v"}}));
  }
}

TEST(StatsdParser, RefusesMultiValueLineForCounterGaugeAndSet) {
  const Parsed p = statsd("a:1:2|c\na:1:2|g\na:1:2|s");
  EXPECT_TRUE(p.samples.empty());
  EXPECT_EQ(p.err(ParseError::kInvalidExtendedAggregateType), 3u);
}

TEST(StatsdParser, ParsesSeveralSamplesPerLineWithoutDogStatsdTags) {
  const Parsed p = statsd("a:1|c:2|g:300|ms");
  ASSERT_EQ(p.samples.size(), 3u);
  EXPECT_EQ(p.samples[0].kind, Kind::kCounter);
  EXPECT_EQ(p.samples[1].kind, Kind::kGauge);
  EXPECT_DOUBLE_EQ(p.samples[2].value, 0.3);
  for (const auto& s : p.samples) EXPECT_EQ(s.name, "a");
}

TEST(StatsdParser, CountsBadSampleOfMultiSampleLineAndKeepsTheOthers) {
  const Parsed p = statsd("a:1|c:zz|c:3|c:4");
  ASSERT_EQ(p.samples.size(), 2u);
  EXPECT_EQ(p.err(ParseError::kMalformedValue), 1u);
  EXPECT_EQ(p.err(ParseError::kMalformedComponent), 1u);  // "4" has no type
}

TEST(StatsdParser, ParsesDogStatsdTagsStrippingHashes) {
  const Parsed p = statsd("a:1|c|#env:prod,#host:h1,url:http://x");
  ASSERT_EQ(p.samples.size(), 1u);
  EXPECT_EQ(p.samples[0].tags, (Tags{{"env", "prod"}, {"host", "h1"}, {"url", "http://x"}}));
}

TEST(StatsdParser, SkipsMalformedTagButKeepsSample) {
  const Parsed p = statsd("a:1|c|#bare,k:,:v,,ok:1");
  ASSERT_EQ(p.samples.size(), 1u);
  EXPECT_EQ(p.samples[0].tags, (Tags{{"ok", "1"}}));
  EXPECT_EQ(p.err(ParseError::kMalformedTag), 4u);
}

TEST(StatsdParser, LastValueWinsForARepeatedTagKey) {
  const Parsed p = statsd("a:1|c|#k:1,j:2,k:3");
  ASSERT_EQ(p.samples.size(), 1u);
  EXPECT_EQ(p.samples[0].tags, (Tags{{"k", "3"}, {"j", "2"}}));
}

TEST(StatsdParser, ParsesInfluxLibratoAndSignalFxNameTags) {
  const Parsed p = statsd("a,k=v,j=w:1|c\nb#k=v:1|c\nc[k=v,j=w]:1|c\nd[k=v].x:1|c");
  ASSERT_EQ(p.samples.size(), 4u);
  EXPECT_EQ(p.samples[0].name, "a");
  EXPECT_EQ(p.samples[0].tags, (Tags{{"k", "v"}, {"j", "w"}}));
  EXPECT_EQ(p.samples[1].name, "b");
  EXPECT_EQ(p.samples[1].tags, (Tags{{"k", "v"}}));
  EXPECT_EQ(p.samples[2].name, "c");
  EXPECT_EQ(p.samples[2].tags, (Tags{{"k", "v"}, {"j", "w"}}));
  EXPECT_EQ(p.samples[3].name, "d.x");
}

// The name scan looks at 16 bytes a step and ends a line of 16 bytes or
// more with one load of its last 16: every delimiter is found at every
// position before, on and after those boundaries, and a line without ':'
// of any length is refused.
TEST(StatsdParser, FindsNameDelimitersAtEveryPositionAcrossSixteenByteSteps) {
  for (std::size_t n = 1; n <= 40; ++n) {
    const std::string name(n, 'x');
    for (std::size_t k = 1; k < n; ++k) {
      const std::string head = name.substr(0, k);
      const std::string tail = name.substr(k);
      {  // Influx: "head,t=tail:1|c"
        const Parsed p = statsd(head + ",t=" + tail + ":1|c");
        ASSERT_EQ(p.samples.size(), 1u) << n << " " << k;
        EXPECT_EQ(p.samples[0].name, head);
        EXPECT_EQ(p.samples[0].tags, (Tags{{"t", tail}}));
      }
      {  // Librato: "head#t=tail:1|c"
        const Parsed p = statsd(head + "#t=" + tail + ":1|c");
        ASSERT_EQ(p.samples.size(), 1u) << n << " " << k;
        EXPECT_EQ(p.samples[0].name, head);
        EXPECT_EQ(p.samples[0].tags, (Tags{{"t", tail}}));
      }
      {  // SignalFx: "head[t=v]tail:1|c"
        const Parsed p = statsd(head + "[t=v]" + tail + ":1|c");
        ASSERT_EQ(p.samples.size(), 1u) << n << " " << k;
        EXPECT_EQ(p.samples[0].name, name);
        EXPECT_EQ(p.samples[0].tags, (Tags{{"t", "v"}}));
      }
    }
    {  // the ':' right after n name bytes, and a value long enough to carry the line past 16 bytes
      const Parsed p = statsd(name + ":12345678901234|g");
      ASSERT_EQ(p.samples.size(), 1u) << n;
      EXPECT_EQ(p.samples[0].name, name);
      EXPECT_EQ(p.samples[0].value, 12345678901234.0);
    }
    {  // no ':' at all
      const Parsed p = statsd(name + "|c");
      EXPECT_TRUE(p.samples.empty()) << n;
      EXPECT_EQ(p.err(ParseError::kMalformedLine), 1u) << n;
    }
  }
}

// Lines are split 16 bytes a step, the last step one load of the packet's
// last 16 bytes: every line length before and after every other, with and
// without a trailing newline or '\r', splits where the newlines are.
TEST(StatsdParser, SplitsLinesOfEveryLengthAcrossSixteenByteSteps) {
  for (std::size_t a = 1; a <= 36; ++a) {
    for (std::size_t b = 1; b <= 20; ++b) {
      for (const std::string_view end : {"", "\n", "\r\n"}) {
        const std::string first(a, 'a');
        const std::string second(b, 'b');
        const Parsed p = statsd(first + ":1|c\n" + second + ":2|g" + std::string(end));
        ASSERT_EQ(p.samples.size(), 2u) << a << " " << b;
        EXPECT_EQ(p.samples[0].name, first);
        EXPECT_EQ(p.samples[1].name, second);
        EXPECT_EQ(p.samples[1].value, 2.0);
        EXPECT_EQ(p.counters.total_errors(), 0u);
      }
    }
  }
}

TEST(StatsdParser, EachTagStyleCanBeSwitchedOff) {
  StatsdOptions o;
  o.dogstatsd_tags = o.influxdb_tags = o.librato_tags = o.signalfx_tags = false;
  const Parsed p = statsd("a,k=v:1|c\nb#k=v:1|c\nc[k=v]:1|c\nd:1|c|#k:v", o);
  ASSERT_EQ(p.samples.size(), 4u);
  EXPECT_EQ(p.samples[0].name, "a,k=v");
  EXPECT_EQ(p.samples[1].name, "b#k=v");
  EXPECT_EQ(p.samples[2].name, "c[k=v]");
  for (const auto& s : p.samples) EXPECT_TRUE(s.tags.empty());
}

TEST(StatsdParser, CountsUnbalancedSignalFxBracketsAndKeepsName) {
  const Parsed p = statsd("a[k=v:1|c\nb]x[:1|c");
  ASSERT_EQ(p.samples.size(), 2u);
  EXPECT_EQ(p.samples[0].name, "a[k=v");
  EXPECT_EQ(p.err(ParseError::kMalformedTag), 2u);
}

TEST(StatsdParser, RefusesMixedTaggingStyles) {
  const Parsed p = statsd("a,k=v:1|c|#j:w");
  EXPECT_TRUE(p.samples.empty());
  EXPECT_EQ(p.err(ParseError::kMixedTaggingStyles), 1u);
}

TEST(StatsdParser, TurnsContainerIdIntoTag) {
  const Parsed p = statsd("a:1|c|#k:v|c:abc123");
  ASSERT_EQ(p.samples.size(), 1u);
  EXPECT_EQ(p.samples[0].tags, (Tags{{"k", "v"}, {"container_id", "abc123"}}));
}

TEST(StatsdParser, DropsSampleWithEmptyContainerId) {
  const Parsed p = statsd("a:1|c|#k:v|c");
  EXPECT_TRUE(p.samples.empty());
  EXPECT_EQ(p.err(ParseError::kMalformedContainerId), 1u);
}

TEST(StatsdParser, CarriesDogStatsdTimestampInNanoseconds) {
  const Parsed p = statsd("a:1|g|#k:v|T1656581400\nb:1|g|#k:v|Tnope\nc:1|g|#k:v|T99999999999999999");
  ASSERT_EQ(p.samples.size(), 1u);
  EXPECT_EQ(p.samples[0].ts, 1656581400LL * 1'000'000'000);
  EXPECT_EQ(p.err(ParseError::kMalformedTimestamp), 2u);
}

TEST(StatsdParser, DropsSampleWithEmptyOrNonNumericTimestampAndCountsIt) {
  for (const char* line : {"a:1|g|T", "a:1|g|#k:v|T", "a:1|c|T|#k:v", "a:1|ms|@0.5|T", "a:1|g|Tx", "a:1|g|T12x",
                           "a:1|g|T1.5", "a:1|g|T 12", "a:1|g|T-", "a:1|g|T+", "a:1|g|#k:v|Tnope", "a:1|c|Tabc|#k:v"}) {
    const Parsed p = statsd(line);
    EXPECT_TRUE(p.samples.empty()) << line;
    EXPECT_EQ(p.err(ParseError::kMalformedTimestamp), 1u) << line;
  }
}

TEST(StatsdParser, DropsSampleWithUnknownSection) {
  const Parsed p = statsd("a:1|c|x");
  EXPECT_TRUE(p.samples.empty());
  EXPECT_EQ(p.err(ParseError::kInvalidSampleFactor), 1u);
}

TEST(StatsdParser, CountsUnknownTypeAndBadValueByReason) {
  const Parsed p = statsd("a:1|x\na:abc|c\na:|c\na:1_0|c\na:--1|c\na:0x10|c\na:1|\n");
  EXPECT_TRUE(p.samples.empty());
  EXPECT_EQ(p.err(ParseError::kUnknownType), 2u);     // "x" and ""
  EXPECT_EQ(p.err(ParseError::kMalformedValue), 5u);  // Go wants hex floats with a p exponent
}

TEST(StatsdParser, CountsStructuralErrorsByReason) {
  const Parsed p = statsd("nocolon\n:1|c\na:1\na:1|c||#k:v\na:1|c|@1|@1|@1|@1|@1|@1|@1");
  EXPECT_TRUE(p.samples.empty());
  EXPECT_EQ(p.err(ParseError::kMalformedLine), 1u);
  EXPECT_EQ(p.err(ParseError::kEmptyName), 1u);
  EXPECT_EQ(p.err(ParseError::kNotEnoughParts), 1u);
  EXPECT_EQ(p.err(ParseError::kMalformedComponent), 2u);
  EXPECT_EQ(p.counters.lines, 5u);
}

TEST(StatsdParser, CountsNameEmptiedByTagsAsEmptyName) {
  const Parsed p = statsd(",k=v:1|c\n[k=v]:1|c");
  EXPECT_TRUE(p.samples.empty());
  EXPECT_EQ(p.err(ParseError::kEmptyName), 2u);
}

TEST(StatsdParser, RefusesNaNAndInfByDefaultCountingEachAndPassesThemOnlyWhenAsked) {
  const std::string_view packet = "a:NaN|g\nb:+Inf|g\nc:-infinity|g\nd:+NaN|g\ne:Inf|c\nf:nan|ms\ng:inf|h|@0.5";
  const Parsed p = statsd(packet);
  EXPECT_TRUE(p.samples.empty());
  EXPECT_EQ(p.err(ParseError::kNonFiniteValue), 6u);
  EXPECT_EQ(p.err(ParseError::kMalformedValue), 1u);  // Go refuses a signed NaN
  EXPECT_EQ(p.counters.total_errors(), 7u);
  StatsdOptions o;
  o.reject_non_finite = false;
  const Parsed q = statsd("a:NaN|g\nb:Inf|g\nc:+Inf|g\nd:NaN|c", o);
  ASSERT_EQ(q.samples.size(), 2u);
  EXPECT_TRUE(std::isnan(q.samples[0].value));
  EXPECT_TRUE(std::isinf(q.samples[1].value));
  // A sign makes a delta (as in statsd_exporter), and no delta or counter may add a non-finite value.
  EXPECT_EQ(q.err(ParseError::kValueOutOfRange), 2u);
}

// What a sample adds to a total (a counter increment, a gauge delta, an
// observation times its weight 1/rate) is at most 2^53: "a:1e308|c" twice
// would otherwise drive the counter to +Inf, which no later sample repairs.
TEST(StatsdParser, RefusesAdditionsThatCouldDriveATotalToInfinity) {
  const Parsed p = statsd(
      "a:1e308|c\na:1e308|c\nb:+1e308|g\nb:-1e308|g\nc:1e300|ms\nd:1e300|h\nd:1e300|d\n"
      "e:1|c|@1e-300\nf:1|h|@1e-300\nmax:9007199254740992|c\nset:1e308|g\nneg:-9007199254740992|g");
  ASSERT_EQ(p.samples.size(), 3u);
  EXPECT_EQ(p.samples[0].name, "max");
  EXPECT_EQ(p.samples[1].name, "set");  // an absolute gauge replaces, it never accumulates
  EXPECT_EQ(p.samples[2].name, "neg");
  EXPECT_EQ(p.err(ParseError::kValueOutOfRange), 9u);
  EXPECT_EQ(p.counters.total_errors(), 9u);
  EXPECT_EQ(parse_error_name(ParseError::kValueOutOfRange), "value_out_of_range");
}

TEST(StatsdParser, RefusesValueThatOverflowsDouble) {
  const Parsed p = statsd("a:1e400|g\nb:-1e999|c");
  EXPECT_TRUE(p.samples.empty());
  EXPECT_EQ(p.err(ParseError::kMalformedValue), 2u);
}

// Plain decimals take an inline fast path up to 15 digits and the general
// parser beyond; on both sides of that edge the value is strtod's, bit for
// bit, and malformed numbers are refused by either path.
TEST(StatsdParser, ParsesDecimalsExactlyOnBothSidesOfTheFastPath) {
  for (const char* v : {"1", "0", "1.", ".5", "0.1", "3.14159", "9.99999999999999", "000000000000001",
                        "123456789012345", "12345678901234.5", "1234567890123456", "12345678901234567",
                        "0.000000000000001", "99999999999999999999", "4503599627370497.5", "1.7976931348623157"}) {
    const Parsed p = statsd(std::string("x:") + v + "|g");
    ASSERT_EQ(p.samples.size(), 1u) << v;
    EXPECT_EQ(p.samples[0].value, std::strtod(v, nullptr)) << v;
  }
  const Parsed bad = statsd("a:.|g\nb:1..2|g\nc:1.2.3|g\nd:12a|g\ne:1 |g");
  EXPECT_TRUE(bad.samples.empty());
  EXPECT_EQ(bad.err(ParseError::kMalformedValue), 5u);
}

TEST(StatsdParser, IgnoresEmptyLinesTrailingNewlineAndCarriageReturns) {
  const Parsed p = statsd("a:1|c\r\n\n\r\nb:2|c\n");
  ASSERT_EQ(p.samples.size(), 2u);
  EXPECT_EQ(p.samples[1].name, "b");
  EXPECT_EQ(p.counters.lines, 2u);
  EXPECT_EQ(p.counters.total_errors(), 0u);
}

TEST(StatsdParser, DropsInvalidUtf8LineAndKeepsTheRestOfThePacket) {
  const Parsed p = statsd("\xff\xfe:1|c\nok:1|c\nbad\xc0\xaf:1|c\nsur\xed\xa0\x80:1|c\nok2:1|c");
  ASSERT_EQ(p.samples.size(), 2u);
  EXPECT_EQ(p.samples[1].name, "ok2");
  EXPECT_EQ(p.err(ParseError::kInvalidUtf8), 3u);
}

TEST(StatsdParser, KeepsUnicodeNamesAndTagsIntact) {
  const Parsed p = statsd("température.°C:21|g|#città:Zürich,emoji:\xF0\x9F\x98\x80");
  ASSERT_EQ(p.samples.size(), 1u);
  EXPECT_EQ(p.samples[0].name, "température.°C");
  EXPECT_EQ(p.samples[0].tags, (Tags{{"città", "Zürich"}, {"emoji", "\xF0\x9F\x98\x80"}}));
}

// Cutting the tag list would make two different series one; the sample is
// refused instead, once per sample, whatever tag style carried the tags.
TEST(StatsdParser, RefusesASampleWithMoreThanMaxTagsInsteadOfCuttingThem) {
  std::string dog = "a:1|c|#";
  for (std::size_t i = 0; i < kMaxTags + 1; ++i) dog += "k" + std::to_string(i) + ":v,";
  std::string influx = "b";
  for (std::size_t i = 0; i < kMaxTags + 1; ++i) influx += ",k" + std::to_string(i) + "=v";
  influx += ":1|c:2|g";  // one line, two samples: the line is refused once
  std::string with_container = "c:1|c|c:abc|#";
  for (std::size_t i = 0; i < kMaxTags; ++i) with_container += "k" + std::to_string(i) + ":v,";
  const Parsed p = statsd(dog + "\n" + influx + "\n" + with_container + "\nt:1:2|ms|" + dog.substr(6) + "\nok:1|c");
  ASSERT_EQ(p.samples.size(), 1u);
  EXPECT_EQ(p.samples[0].name, "ok");
  EXPECT_EQ(p.err(ParseError::kTooManyTags), 5u);  // a, b, c, and each of t's two samples
  EXPECT_EQ(p.counters.total_errors(), 5u);
}

TEST(StatsdParser, KeepsExactlyMaxTagsAndRepeatedKeysDoNotCount) {
  std::string line = "a:1|c|#";
  for (std::size_t i = 0; i < kMaxTags; ++i) line += "k" + std::to_string(i) + ":v,";
  for (std::size_t i = 0; i < 10; ++i) line += "k" + std::to_string(i) + ":w,";  // last wins, no new tag
  const Parsed p = statsd(line);
  ASSERT_EQ(p.samples.size(), 1u);
  EXPECT_EQ(p.samples[0].tags.size(), kMaxTags);
  EXPECT_EQ(p.samples[0].tags[0].second, "w");
  EXPECT_EQ(p.counters.total_errors(), 0u);
}

TEST(StatsdParser, RefusesNameLongerThanTheFormatAllows) {
  std::string line(kMaxNameBytes + 1, 'n');
  line += ":1|c\nok:1|c";
  const Parsed p = statsd(line);
  ASSERT_EQ(p.samples.size(), 1u);
  EXPECT_EQ(p.err(ParseError::kNameTooLong), 1u);
}

TEST(StatsdParser, NamesEveryErrorReasonForMetricLabels) {
  for (std::size_t i = 0; i < kParseErrorCount; ++i) {
    const std::string_view n = parse_error_name(static_cast<ParseError>(i));
    EXPECT_NE(n, "unknown");
    EXPECT_EQ(n.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789_"), std::string_view::npos) << n;
  }
}

}  // namespace
}  // namespace ringpipe::ingest
