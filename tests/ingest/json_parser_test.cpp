#include "ringpipe/ingest/json_parser.hpp"

#include <gtest/gtest.h>

#include <string>

#include "parse_harness.hpp"
#include "ringpipe/ingest/line_parser.hpp"

namespace ringpipe::ingest {
namespace {

using sample::Kind;
using testing::Parsed;
using testing::Tags;

Parsed json(std::string_view packet, const JsonOptions& o = {}) {
  JsonParser p(o);
  return testing::parse(p, packet);
}

TEST(JsonParser, MapsNameValueAndEveryOtherScalarToLabels) {
  const Parsed p =
      json(R"({"name":"temp","value":21.5,"site":"lab","floor":3,"ratio":0.25,"ok":true,"big":18446744073709551615})");
  ASSERT_EQ(p.samples.size(), 1u);
  EXPECT_EQ(p.samples[0].kind, Kind::kGauge);
  EXPECT_EQ(p.samples[0].name, "temp");
  EXPECT_DOUBLE_EQ(p.samples[0].value, 21.5);
  EXPECT_DOUBLE_EQ(p.samples[0].rate, 1.0);
  EXPECT_EQ(p.samples[0].ts, 0);
  EXPECT_EQ(
      p.samples[0].tags,
      (Tags{{"site", "lab"}, {"floor", "3"}, {"ratio", "0.25"}, {"ok", "true"}, {"big", "18446744073709551615"}}));
  EXPECT_EQ(p.counters.lines, 1u);
  EXPECT_EQ(p.counters.total_errors(), 0u);
}

// One table row: a line, the samples it gives (name=value), and the error it counts.
struct Row {
  const char* line;
  const char* name;  // nullptr: no sample
  double value;
  ParseError error;  // kCount: none
};

TEST(JsonParser, TableOfLinesGivesExactSamplesOrCountsTheReason) {
  const Row rows[] = {
      {R"({"name":"a","value":1})", "a", 1, ParseError::kCount},
      {R"(  {"value":-2.5e3,"name":"b"}  )", "b", -2500, ParseError::kCount},
      {R"({"name":"c","value":true})", "c", 1, ParseError::kCount},
      {R"({"name":"d","value":false})", "d", 0, ParseError::kCount},
      {R"({"name":"e","value":"12.75"})", "e", 12.75, ParseError::kCount},
      {R"({"name":"f","value":9007199254740993})", "f", 9007199254740992.0, ParseError::kCount},
      {R"({"name":"g","value":-9223372036854775808})", "g", -9223372036854775808.0, ParseError::kCount},
      {R"({"name":"\u00e9t\u00e9","value":1})", "\xc3\xa9t\xc3\xa9", 1, ParseError::kCount},
      {R"({"name":"h","value":1,"name":"ignored-second"})", "h", 1, ParseError::kCount},
      {R"({"name":"a","value":1)", nullptr, 0, ParseError::kInvalidJson},
      {R"({"name":"a","value":1}})", nullptr, 0, ParseError::kInvalidJson},
      {R"({"name":"a","value":1} {"name":"b","value":2})", nullptr, 0, ParseError::kInvalidJson},
      {R"({name:"a",value:1})", nullptr, 0, ParseError::kInvalidJson},
      {R"({"name":"a","value":NaN})", nullptr, 0, ParseError::kInvalidJson},
      {R"({"name":"a","value":01})", nullptr, 0, ParseError::kInvalidJson},
      {"{\"name\":\"a\xff\",\"value\":1}", nullptr, 0, ParseError::kInvalidUtf8},
      {R"([1,2,3])", nullptr, 0, ParseError::kNotAnObject},
      {R"("just a string")", nullptr, 0, ParseError::kNotAnObject},
      {R"(42)", nullptr, 0, ParseError::kNotAnObject},
      {R"(null)", nullptr, 0, ParseError::kNotAnObject},
      {R"({})", nullptr, 0, ParseError::kMissingValue},
      {R"({"name":"a"})", nullptr, 0, ParseError::kMissingValue},
      {R"({"name":"a","value":null})", nullptr, 0, ParseError::kMalformedValue},
      {R"({"name":"a","value":"12x"})", nullptr, 0, ParseError::kMalformedValue},
      {R"({"name":"a","value":"NaN"})", nullptr, 0, ParseError::kMalformedValue},
      {R"({"name":"a","value":[1]})", nullptr, 0, ParseError::kMalformedValue},
      {R"({"name":"a","value":{"v":1}})", nullptr, 0, ParseError::kMalformedValue},
      {R"({"value":1})", nullptr, 0, ParseError::kMissingName},
      {R"({"name":7,"value":1})", nullptr, 0, ParseError::kMissingName},
      {R"({"name":"","value":1})", nullptr, 0, ParseError::kEmptyName},
  };
  for (const Row& r : rows) {
    SCOPED_TRACE(r.line);
    const Parsed p = json(r.line);
    EXPECT_EQ(p.counters.lines, 1u);
    if (r.name != nullptr) {
      ASSERT_EQ(p.samples.size(), 1u);
      EXPECT_EQ(p.samples[0].name, r.name);
      EXPECT_DOUBLE_EQ(p.samples[0].value, r.value);
      EXPECT_EQ(p.counters.total_errors(), 0u);
    } else {
      EXPECT_TRUE(p.samples.empty());
      EXPECT_EQ(p.counters.total_errors(), 1u);
      EXPECT_EQ(p.err(r.error), 1u) << parse_error_name(r.error);
    }
  }
}

TEST(JsonParser, ParsesEveryLineOfAPacketAndABadLineNeverSpoilsTheOthers) {
  const Parsed p = json("{\"name\":\"a\",\"value\":1}\r\n\n   \n{oops\n{\"name\":\"b\",\"value\":2}");
  ASSERT_EQ(p.samples.size(), 2u);
  EXPECT_EQ(p.samples[0].name, "a");
  EXPECT_EQ(p.samples[1].name, "b");
  EXPECT_EQ(p.counters.lines, 3u);  // blank lines are not counted
  EXPECT_EQ(p.err(ParseError::kInvalidJson), 1u);
}

TEST(JsonParser, SkipsAndCountsNullsNestedObjectsAndArrays) {
  const Parsed p = json(R"({"name":"a","value":1,"meta":{"x":1},"list":[1,2],"gone":null,"site":"s1"})");
  ASSERT_EQ(p.samples.size(), 1u);
  EXPECT_EQ(p.samples[0].tags, (Tags{{"site", "s1"}}));
  EXPECT_EQ(p.counters.skipped_fields, 3u);
  EXPECT_EQ(p.counters.total_errors(), 0u);
}

TEST(JsonParser, UsesConfiguredFieldsAFixedNameAndACounterKind) {
  JsonOptions o;
  o.value_field = "reading";
  o.name = "room_temperature";
  o.kind = Kind::kCounter;
  const Parsed p = json(R"({"reading":3,"name":"becomes-a-label","value":99})", o);
  ASSERT_EQ(p.samples.size(), 1u);
  EXPECT_EQ(p.samples[0].kind, Kind::kCounter);
  EXPECT_EQ(p.samples[0].name, "room_temperature");
  EXPECT_DOUBLE_EQ(p.samples[0].value, 3);
  EXPECT_EQ(p.samples[0].tags, (Tags{{"name", "becomes-a-label"}, {"value", "99"}}));

  JsonOptions n;
  n.name_field = "metric";
  const Parsed q = json(R"({"metric":"m","value":1,"name":"x"})", n);
  ASSERT_EQ(q.samples.size(), 1u);
  EXPECT_EQ(q.samples[0].name, "m");
  EXPECT_EQ(q.samples[0].tags, (Tags{{"name", "x"}}));
}

TEST(JsonParser, ReadsTimestampsInTheConfiguredPrecision) {
  struct Case {
    Precision precision;
    const char* ts;
    std::int64_t want_ns;
  };
  const Case cases[] = {
      {Precision::kSeconds, "1700000000", 1700000000LL * 1'000'000'000},
      {Precision::kSeconds, "1700000000.25", 1700000000250000000LL},
      {Precision::kMilliseconds, "1700000000123", 1700000000123000000LL},
      {Precision::kMicroseconds, "1700000000123456", 1700000000123456000LL},
      {Precision::kNanoseconds, "1700000000123456789", 1700000000123456789LL},
      {Precision::kSeconds, "-1", -1'000'000'000LL},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.ts);
    JsonOptions o;
    o.timestamp_field = "ts";
    o.timestamp_precision = c.precision;
    const Parsed p = json(std::string(R"({"name":"a","value":1,"ts":)") + c.ts + "}", o);
    ASSERT_EQ(p.samples.size(), 1u);
    EXPECT_EQ(p.samples[0].ts, c.want_ns);
    EXPECT_TRUE(p.samples[0].tags.empty());
  }
  JsonOptions o;
  o.timestamp_field = "ts";
  for (const char* bad : {R"("soon")", "true", "[1]", "1e300", "9300000000", "18446744073709551615"}) {
    SCOPED_TRACE(bad);
    const Parsed p = json(std::string(R"({"name":"a","value":1,"ts":)") + bad + "}", o);
    EXPECT_TRUE(p.samples.empty());
    EXPECT_EQ(p.err(ParseError::kMalformedTimestamp), 1u);
  }
  const Parsed missing = json(R"({"name":"a","value":1})", o);
  ASSERT_EQ(missing.samples.size(), 1u);
  EXPECT_EQ(missing.samples[0].ts, 0);  // receive time
}

TEST(JsonParser, RefusesAnObjectWithMoreThanMaxLabelsNeverCutsIt) {
  // A label set cut at max_labels would merge two series that differ only
  // past the cut: the object is refused and counted instead.
  JsonOptions o;
  o.max_labels = 2;
  const Parsed two = json(R"({"name":"a","value":1,"l1":"x","l2":2,"deep":{}})", o);
  ASSERT_EQ(two.samples.size(), 1u);
  EXPECT_EQ(two.samples[0].tags, (Tags{{"l1", "x"}, {"l2", "2"}}));
  EXPECT_EQ(two.err(ParseError::kTooManyTags), 0u);
  EXPECT_EQ(two.counters.skipped_fields, 1u);
  const Parsed p = json(R"({"name":"a","value":1,"l1":"x","l2":2,"l3":"y","l4":"z","deep":{}})", o);
  EXPECT_TRUE(p.samples.empty());
  EXPECT_EQ(p.err(ParseError::kTooManyTags), 1u);

  std::string at_limit = R"({"name":"a","value":1)";
  for (std::size_t i = 0; i < kMaxTags; ++i) at_limit += ",\"k" + std::to_string(i) + "\":" + std::to_string(i * 1.5);
  const Parsed full = json(at_limit + "}");
  ASSERT_EQ(full.samples.size(), 1u);
  ASSERT_EQ(full.samples[0].tags.size(), kMaxTags);
  EXPECT_EQ(full.samples[0].tags[63], (std::pair<std::string, std::string>{"k63", "94.5"}));
  const Parsed q = json(at_limit + R"(,"one_more":"x"})");
  EXPECT_TRUE(q.samples.empty());
  EXPECT_EQ(q.err(ParseError::kTooManyTags), 1u);
}

TEST(JsonParser, RefusesAnEmptyLabelKeyButKeepsTheSample) {
  const Parsed p = json(R"({"name":"a","value":1,"":"x","k":"v"})");
  ASSERT_EQ(p.samples.size(), 1u);
  EXPECT_EQ(p.samples[0].tags, (Tags{{"k", "v"}}));
  EXPECT_EQ(p.err(ParseError::kMalformedTag), 1u);
}

TEST(JsonParser, UnescapesStringsInNamesAndLabels) {
  const Parsed p = json(R"({"name":"a\"b\\c","value":1,"path":"\/var\tlog","nl":"x\ny"})");
  ASSERT_EQ(p.samples.size(), 1u);
  EXPECT_EQ(p.samples[0].name, "a\"b\\c");
  EXPECT_EQ(p.samples[0].tags, (Tags{{"path", "/var\tlog"}, {"nl", "x\ny"}}));
}

TEST(JsonParser, CountsLinesLongerThanTheLimitAndTooDeepNesting) {
  JsonOptions o;
  o.max_line_bytes = 64;
  const Parsed p = json(
      std::string(R"({"name":"a","value":1,"pad":")") + std::string(100, 'x') + "\"}\n" + R"({"name":"b","value":2})",
      o);
  ASSERT_EQ(p.samples.size(), 1u);
  EXPECT_EQ(p.samples[0].name, "b");
  EXPECT_EQ(p.err(ParseError::kLineTooLong), 1u);

  const std::string deep = R"({"name":"a","value":1,"d":)" + std::string(200, '[') + std::string(200, ']') + "}";
  const Parsed d = json(deep);
  EXPECT_TRUE(d.samples.empty());
  EXPECT_EQ(d.err(ParseError::kInvalidJson), 1u);
}

TEST(JsonParser, ReusesItsBuffersAcrossLinesWithoutLeakingOldText) {
  JsonParser parser{JsonOptions{}};
  const Parsed a = testing::parse(parser, R"({"name":"first_long_name","value":1,"k":"vvvvvvvv"})");
  const Parsed b = testing::parse(parser, R"({"name":"s","value":2,"k":"w"})");
  ASSERT_EQ(b.samples.size(), 1u);
  EXPECT_EQ(b.samples[0].name, "s");
  EXPECT_EQ(b.samples[0].tags, (Tags{{"k", "w"}}));
}

TEST(JsonParser, RunsThroughLineParserAsProtocolJson) {
  ParserOptions o;
  o.protocol = Protocol::kJson;
  o.json.name = "fixed";
  LineParser parser(o);
  EXPECT_EQ(parser.protocol(), Protocol::kJson);
  EXPECT_EQ(protocol_name(Protocol::kJson), "json");
  const Parsed p = testing::parse(parser, "{\"value\":5}\n{\"value\":6}\n");
  ASSERT_EQ(p.samples.size(), 2u);
  EXPECT_EQ(p.samples[1].name, "fixed");
  EXPECT_DOUBLE_EQ(p.samples[1].value, 6);
}

TEST(JsonParser, NamesEveryNewReason) {
  EXPECT_EQ(parse_error_name(ParseError::kInvalidJson), "invalid_json");
  EXPECT_EQ(parse_error_name(ParseError::kNotAnObject), "not_an_object");
  EXPECT_EQ(parse_error_name(ParseError::kMissingValue), "missing_value");
  EXPECT_EQ(parse_error_name(ParseError::kMissingName), "missing_name");
}

}  // namespace
}  // namespace ringpipe::ingest
