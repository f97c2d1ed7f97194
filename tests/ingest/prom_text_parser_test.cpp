// PromTextParser: the text exposition format 0.0.4 and OpenMetrics 1.0, rule
// by rule, with the ugly cases Prometheus' own parsers accept or refuse.

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "parse_harness.hpp"
#include "ringpipe/ingest/prom_text_parser.hpp"

namespace ringpipe::ingest {
namespace {

using testing::Parsed;
using testing::Tags;

Parsed parse_text(std::string_view body, PromTextOptions o = {}, PromFormat f = PromFormat::kText) {
  PromTextParser p(std::move(o));
  p.set_format(f);
  return testing::parse(p, body);
}

Parsed parse_om(std::string_view body, PromTextOptions o = {}) {
  return parse_text(body, std::move(o), PromFormat::kOpenMetrics);
}

// One sample line, and what it must become (or the reason it is refused).
struct Row {
  const char* line;
  const char* name;  // nullptr = refused
  double value;
  Tags tags;
  std::int64_t ts = 0;
  ParseError error = ParseError::kCount;
};

TEST(PromTextParser, SampleLinesFollowTheTextFormat) {
  const double inf = std::numeric_limits<double>::infinity();
  const Row rows[] = {
      {"metric 1", "metric", 1, {}},
      {"metric_a:b 1.5e3", "metric_a:b", 1500, {}},
      {":colon_start -2", ":colon_start", -2, {}},
      {"m{} 3", "m", 3, {}},
      {"m{a=\"b\"} 4", "m", 4, {{"a", "b"}}},
      {"m{a=\"b\",} 4", "m", 4, {{"a", "b"}}},
      {"m{ a = \"b\" , c=\"d\" } 5", "m", 5, {{"a", "b"}, {"c", "d"}}},
      {"m{a=\"x\\\\y\"} 1", "m", 1, {{"a", "x\\y"}}},
      {"m{a=\"say \\\"hi\\\"\"} 1", "m", 1, {{"a", "say \"hi\""}}},
      {"m{a=\"two\\nlines\"} 1", "m", 1, {{"a", "two\nlines"}}},
      {"m{a=\"keep \\t as is\"} 1", "m", 1, {{"a", "keep \\t as is"}}},
      {"m{a=\"}{,= \"} 1", "m", 1, {{"a", "}{,= "}}},
      {"m{a=\"ünïcödé\"} 1", "m", 1, {{"a", "ünïcödé"}}},
      {"m{a=\"\"} 1", "m", 1, {}},  // an empty value is no label
      {"m +Inf", "m", inf, {}},
      {"m -Inf", "m", -inf, {}},
      {"m 1 1700000000123", "m", 1, {}, 1700000000123LL * 1000000},
      {"m 1 -5", "m", 1, {}, -5 * 1000000LL},
      {"m\t7\t", "m", 7, {}},
      {"  m 8", "m", 8, {}},
      {"m 1 # {trace_id=\"a\"} 1", "m", 1, {}},
      {"1m 1", nullptr, 0, {}, 0, ParseError::kInvalidMetricName},
      {"m-x 1", nullptr, 0, {}, 0, ParseError::kInvalidMetricName},
      {"{\"quoted\"} 1", nullptr, 0, {}, 0, ParseError::kInvalidMetricName},
      {"m", nullptr, 0, {}, 0, ParseError::kMalformedValue},
      {"m one", nullptr, 0, {}, 0, ParseError::kMalformedValue},
      {"m{a=\"b\"}", nullptr, 0, {}, 0, ParseError::kMalformedValue},
      {"m{a=b} 1", nullptr, 0, {}, 0, ParseError::kMalformedTag},
      {"m{a=\"b} 1", nullptr, 0, {}, 0, ParseError::kMalformedTag},
      {"m{a=\"b\" c=\"d\"} 1", nullptr, 0, {}, 0, ParseError::kMalformedTag},
      {"m{1a=\"b\"} 1", nullptr, 0, {}, 0, ParseError::kMalformedTag},
      {"m{a:b=\"c\"} 1", nullptr, 0, {}, 0, ParseError::kMalformedTag},
      {"m{a=\"b\" 1", nullptr, 0, {}, 0, ParseError::kMalformedTag},
      {"m{a=\"b\",a=\"c\"} 1", nullptr, 0, {}, 0, ParseError::kDuplicateLabel},
      {"m{a=\"\xff\"} 1", nullptr, 0, {}, 0, ParseError::kInvalidUtf8},
      {"m 1 1.5", nullptr, 0, {}, 0, ParseError::kMalformedTimestamp},  // OpenMetrics only
      {"m 1 99999999999999999999", nullptr, 0, {}, 0, ParseError::kMalformedTimestamp},
      {"m 1 2 3", nullptr, 0, {}, 0, ParseError::kMalformedLine},
  };
  for (const Row& r : rows) {
    SCOPED_TRACE(r.line);
    const Parsed p = parse_text(r.line);
    EXPECT_EQ(p.counters.lines, 1u);
    if (r.name == nullptr) {
      EXPECT_TRUE(p.samples.empty());
      EXPECT_EQ(p.err(r.error), 1u);
      EXPECT_EQ(p.counters.total_errors(), 1u);
      continue;
    }
    ASSERT_EQ(p.samples.size(), 1u);
    EXPECT_EQ(p.counters.total_errors(), 0u);
    EXPECT_EQ(p.samples[0].kind, sample::Kind::kGauge);
    EXPECT_EQ(p.samples[0].name, r.name);
    EXPECT_EQ(p.samples[0].value, r.value);
    EXPECT_EQ(p.samples[0].tags, r.tags);
    EXPECT_EQ(p.samples[0].ts, r.ts);
  }
}

TEST(PromTextParser, NanIsAValue) {
  const Parsed p = parse_text("go_gc_duration_seconds{quantile=\"0.5\"} NaN\n");
  ASSERT_EQ(p.samples.size(), 1u);
  EXPECT_TRUE(std::isnan(p.samples[0].value));
}

TEST(PromTextParser, HistogramAndSummaryKeepTheirSeriesNamesAndValues) {
  const Parsed p = parse_text(
      "# HELP http_request_duration_seconds A histogram.\n"
      "# TYPE http_request_duration_seconds histogram\n"
      "http_request_duration_seconds_bucket{le=\"0.05\"} 24054\n"
      "http_request_duration_seconds_bucket{le=\"+Inf\"} 144320\n"
      "http_request_duration_seconds_sum 53423\n"
      "http_request_duration_seconds_count 144320\n"
      "# TYPE rpc_duration_seconds summary\n"
      "rpc_duration_seconds{quantile=\"0.99\"} 76656\n"
      "rpc_duration_seconds_sum 1.7560473e+07\n"
      "rpc_duration_seconds_count 2693\n"
      "# TYPE http_requests_total counter\n"
      "http_requests_total{method=\"post\",code=\"200\"} 1027 1395066363000\n");
  EXPECT_EQ(p.counters.total_errors(), 0u);
  ASSERT_EQ(p.samples.size(), 8u);
  EXPECT_EQ(p.samples[1].name, "http_request_duration_seconds_bucket");
  EXPECT_EQ(p.samples[1].tags, (Tags{{"le", "+Inf"}}));
  EXPECT_EQ(p.samples[1].value, 144320);
  EXPECT_EQ(p.samples[5].name, "rpc_duration_seconds_sum");
  EXPECT_EQ(p.samples[5].value, 1.7560473e+07);
  EXPECT_EQ(p.samples[7].name, "http_requests_total");
  EXPECT_EQ(p.samples[7].tags, (Tags{{"method", "post"}, {"code", "200"}}));
  EXPECT_EQ(p.samples[7].value, 1027);
  EXPECT_EQ(p.samples[7].ts, 1395066363000LL * 1000000);
  EXPECT_EQ(p.counters.samples, 8u);
  EXPECT_EQ(p.counters.lines, 8u);  // comments are not lines
}

TEST(PromTextParser, MetadataLinesAreCheckedAndOtherCommentsIgnored) {
  const Parsed p = parse_text(
      "# just a comment\n"
      "#\n"
      "# HELP\n"
      "# TYPE m\n"
      "# TYPE m flux\n"
      "# TYPE m counter extra\n"
      "# HELP m help with \\\\ and \\n escapes\n"
      "# EOF\n"
      "m 1\n");
  EXPECT_EQ(p.err(ParseError::kMalformedMetadata), 3u);
  EXPECT_EQ(p.err(ParseError::kUnknownType), 1u);
  ASSERT_EQ(p.samples.size(), 1u);  // # EOF is a comment in the text format
}

TEST(PromTextParser, CrLfBlankLinesAndNoFinalNewlineAreTolerated) {
  const Parsed p = parse_text("\r\n# TYPE a gauge\r\na 1\r\n\r\n   \nb{x=\"y\"} 2 \t\r\nc 3");
  EXPECT_EQ(p.counters.total_errors(), 0u);
  ASSERT_EQ(p.samples.size(), 3u);
  EXPECT_EQ(p.samples[2].name, "c");
  EXPECT_EQ(p.samples[2].value, 3);
}

TEST(PromTextParser, BadLinesAreCountedAndTheRestOfTheBodyCounts) {
  const Parsed p = parse_text("ok 1\nbroken{ 2\nok2 3\n9bad 1\nok3 4\n");
  ASSERT_EQ(p.samples.size(), 3u);
  EXPECT_EQ(p.err(ParseError::kMalformedTag), 1u);
  EXPECT_EQ(p.err(ParseError::kInvalidMetricName), 1u);
  EXPECT_EQ(p.counters.lines, 5u);
}

TEST(PromTextParser, CreatedSeriesOfCountersHistogramsAndSummariesAreSkipped) {
  const Parsed p = parse_text(
      "# TYPE c counter\nc_total 5\nc_created 1.7e9\n"
      "# TYPE h histogram\nh_count 1\nh_created 1.7e9\n"
      "# TYPE g gauge\ng_created 2\n");
  ASSERT_EQ(p.samples.size(), 3u);
  EXPECT_EQ(p.samples[0].name, "c_total");
  EXPECT_EQ(p.samples[1].name, "h_count");
  EXPECT_EQ(p.samples[2].name, "g_created");  // a gauge's own series
  EXPECT_EQ(p.counters.skipped_fields, 2u);
}

TEST(PromTextParser, OpenMetricsTypesTimestampsExemplarsAndEof) {
  const Parsed p = parse_om(
      "# TYPE acme_http_router_request_seconds histogram\n"
      "# UNIT acme_http_router_request_seconds seconds\n"
      "acme_http_router_request_seconds_bucket{le=\"0.1\"} 8 # {trace_id=\"KOO5S4vxi0o\"} 0.067 1.5\n"
      "acme_http_router_request_seconds_bucket{le=\"+Inf\"} 9\n"
      "acme_http_router_request_seconds_created 1520430000.123\n"
      "# TYPE foo counter\n"
      "foo_total 17.0 1520879607.789\n"
      "# TYPE build info\n"
      "build_info{version=\"1.2\"} 1\n"
      "# TYPE state stateset\n"
      "state{state=\"a\"} 1\n"
      "# TYPE q gaugehistogram\n"
      "q_gcount 3\n"
      "# TYPE u unknown\n"
      "u 4\n"
      "# EOF\n");
  EXPECT_EQ(p.counters.total_errors(), 0u);
  ASSERT_EQ(p.samples.size(), 7u);
  EXPECT_EQ(p.samples[0].value, 8);
  EXPECT_EQ(p.samples[2].name, "foo_total");
  EXPECT_EQ(p.samples[2].ts, 1520879607789000000LL);
  EXPECT_EQ(p.samples[3].name, "build_info");
  EXPECT_EQ(p.counters.skipped_fields, 1u);
}

// Ten-digit second counts past int64 nanoseconds (year 2262) are refused,
// never overflowed; the last representable second still converts exactly.
TEST(PromTextParser, OpenMetricsTimestampsBeyondInt64NanosecondsAreRefused) {
  const Parsed p = parse_om(
      "a 1 9520879607.5\n"
      "b 1 -9999999999\n"
      "c 1 9223372035.123456789\n"
      "d 1 9223372036.9\n"
      "# EOF\n");
  EXPECT_EQ(p.err(ParseError::kMalformedTimestamp), 3u);
  ASSERT_EQ(p.samples.size(), 1u);
  EXPECT_EQ(p.samples[0].name, "c");
  EXPECT_EQ(p.samples[0].ts, 9223372035123456789LL);
}

TEST(PromTextParser, OpenMetricsWithoutEofOrWithDataAfterItIsCounted) {
  const Parsed missing = parse_om("a 1\n");
  EXPECT_EQ(missing.samples.size(), 1u);
  EXPECT_EQ(missing.err(ParseError::kMissingEof), 1u);
  const Parsed after = parse_om("a 1\n# EOF\nb 2\n");
  EXPECT_EQ(after.samples.size(), 1u);
  EXPECT_EQ(after.err(ParseError::kMalformedLine), 1u);
  const Parsed bad_ts = parse_om("a 1 soon\n# EOF\n");
  EXPECT_EQ(bad_ts.err(ParseError::kMalformedTimestamp), 1u);
}

TEST(PromTextParser, TooManyLabelsDropTheSeries) {
  PromTextOptions o;
  o.max_labels = 2;
  const Parsed p = parse_text("a{x=\"1\",y=\"2\"} 1\nb{x=\"1\",y=\"2\",z=\"3\"} 1\n", o);
  ASSERT_EQ(p.samples.size(), 1u);
  EXPECT_EQ(p.samples[0].name, "a");
  EXPECT_EQ(p.err(ParseError::kTooManyTags), 1u);
}

TEST(PromTextParser, LongLinesAreDropped) {
  PromTextOptions o;
  o.max_line_bytes = 32;
  const std::string body = "short 1\nlong{a=\"" + std::string(64, 'x') + "\"} 1\nafter 2\n";
  const Parsed p = parse_text(body, o);
  ASSERT_EQ(p.samples.size(), 2u);
  EXPECT_EQ(p.err(ParseError::kLineTooLong), 1u);
}

TEST(PromTextParser, TargetLabelsAreAddedAndClashesRenamedUnlessHonored) {
  PromTextOptions o;
  o.target_labels = {{"instance", "127.0.0.1:9100"}, {"job", "node"}};
  const Parsed p = parse_text("a 1\nb{job=\"inner\",x=\"y\"} 2\n", o);
  ASSERT_EQ(p.samples.size(), 2u);
  EXPECT_EQ(p.samples[0].tags, (Tags{{"instance", "127.0.0.1:9100"}, {"job", "node"}}));
  EXPECT_EQ(p.samples[1].tags,
            (Tags{{"exported_job", "inner"}, {"x", "y"}, {"instance", "127.0.0.1:9100"}, {"job", "node"}}));
  o.honor_labels = true;
  const Parsed h = parse_text("b{job=\"inner\"} 2\n", o);
  ASSERT_EQ(h.samples.size(), 1u);
  EXPECT_EQ(h.samples[0].tags, (Tags{{"job", "inner"}, {"instance", "127.0.0.1:9100"}}));
}

TEST(PromTextParser, ContentTypeSelectsTheFormat) {
  EXPECT_EQ(prom_format_of("application/openmetrics-text; version=1.0.0; charset=utf-8"), PromFormat::kOpenMetrics);
  EXPECT_EQ(prom_format_of("Application/OpenMetrics-Text"), PromFormat::kOpenMetrics);
  EXPECT_EQ(prom_format_of("text/plain; version=0.0.4; charset=utf-8"), PromFormat::kText);
  EXPECT_EQ(prom_format_of("application/openmetrics-textual"), PromFormat::kText);
  EXPECT_EQ(prom_format_of(""), PromFormat::kText);
}

// Every sample carries its family's type, HELP (unescaped) and UNIT, and the
// suffix that separates a histogram's or summary's sample from the family's
// name; a sample no metadata names, or one that is not of the family the
// metadata named, is untyped.
TEST(PromTextParser, SamplesCarryTheirFamilysTypeHelpAndUnit) {
  using sample::FamilyType;
  const Parsed p = parse_text(R"(# HELP rpc_seconds RPC \\ latency\nsecond line.
# TYPE rpc_seconds histogram
rpc_seconds_bucket{le="0.5"} 7
rpc_seconds_sum 3.25
rpc_seconds_count 9
rpc_seconds_total 1
# TYPE gc summary
gc{quantile="0.5"} 0.1
gc_count 2
# HELP job:load:avg A rule.
# TYPE job:load:avg gauge
job:load:avg 1.5
# TYPE c_total counter
c_total 4
loose 1
)");
  ASSERT_EQ(p.samples.size(), 9u);
  EXPECT_EQ(p.samples[0].family_type, FamilyType::kHistogram);
  EXPECT_EQ(p.samples[0].family, "rpc_seconds");
  EXPECT_EQ(p.samples[0].help, "RPC \\ latency\nsecond line.");
  EXPECT_EQ(p.samples[1].family, "rpc_seconds");
  EXPECT_EQ(p.samples[2].family, "rpc_seconds");
  EXPECT_EQ(p.samples[3].family_type, FamilyType::kUntyped);  // not a histogram's sample
  EXPECT_EQ(p.samples[3].family, "rpc_seconds_total");
  EXPECT_TRUE(p.samples[3].help.empty());
  EXPECT_EQ(p.samples[4].family_type, FamilyType::kSummary);
  EXPECT_EQ(p.samples[4].family, "gc");
  EXPECT_EQ(p.samples[5].family, "gc");
  EXPECT_EQ(p.samples[6].name, "job:load:avg");
  EXPECT_EQ(p.samples[6].family_type, FamilyType::kGauge);
  EXPECT_EQ(p.samples[6].help, "A rule.");
  EXPECT_EQ(p.samples[7].family_type, FamilyType::kCounter);
  EXPECT_EQ(p.samples[8].family_type, FamilyType::kUntyped);
  for (const auto& g : p.samples) EXPECT_EQ(g.kind, sample::Kind::kGauge) << g.name;
  EXPECT_EQ(p.counters.total_errors(), 0u);
}

TEST(PromTextParser, OpenMetricsUnitInfoAndStatesetAreKept) {
  using sample::FamilyType;
  const Parsed p = parse_om(R"(# TYPE disk_bytes gauge
# UNIT disk_bytes bytes
# HELP disk_bytes Disk \"size\".
disk_bytes 100
# TYPE build info
build_info{version="1"} 1
# TYPE state stateset
state{state="a"} 1
# TYPE jobs counter
jobs_total 3
jobs_created 1.7e9
# EOF
)");
  ASSERT_EQ(p.samples.size(), 4u);
  EXPECT_EQ(p.samples[0].unit, "bytes");
  EXPECT_EQ(p.samples[0].help, "Disk \"size\".");
  EXPECT_EQ(p.samples[1].family_type, FamilyType::kInfo);
  EXPECT_EQ(p.samples[1].family, "build_info");
  EXPECT_EQ(p.samples[2].family_type, FamilyType::kStateset);
  EXPECT_EQ(p.samples[3].family_type, FamilyType::kCounter);
  EXPECT_EQ(p.samples[3].family, "jobs_total");
  EXPECT_EQ(p.counters.total_errors(), 0u);
}

}  // namespace
}  // namespace ringpipe::ingest
