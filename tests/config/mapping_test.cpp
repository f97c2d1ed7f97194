#include "ringpipe/config/mapping.hpp"

#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "config_test_util.hpp"
#include "test_support.hpp"

namespace ringpipe::config {
namespace {

using std::chrono::minutes;
using std::chrono::nanoseconds;
using std::chrono::seconds;
using testing::messages;

MappingConfig parse_ok(std::string_view yaml) {
  auto r = parse_mapping_yaml(yaml, "mapping.yml");
  EXPECT_TRUE(r) << (r ? "" : r.error().message());
  return r ? *r : MappingConfig{};
}

const std::vector<double> kGoDefBuckets(std::begin(kDefaultBuckets), std::end(kDefaultBuckets));
const std::vector<Quantile> kGoDefQuantiles(std::begin(kDefaultQuantiles), std::end(kDefaultQuantiles));

TEST(MappingFile, ParsesTheReadmeExampleKeepingOrderAndTemplates) {
  const auto m = parse_ok(R"(mappings:
- match: "test.dispatcher.*.*.*"
  name: "dispatcher_events_total"
  labels:
    processor: "$1"
    action: "$2"
    outcome: "$3"
    job: "test_dispatcher"
- match: "*.signup.*.*"
  name: "signup_events_total"
  labels:
    provider: "$2"
    outcome: "$3"
    job: "${1}_server"
)");
  ASSERT_EQ(m.mappings.size(), 2u);
  const auto& a = m.mappings[0];
  EXPECT_EQ(a.match, "test.dispatcher.*.*.*");
  EXPECT_EQ(a.match_type, MatchType::kGlob);
  EXPECT_EQ(a.name, "dispatcher_events_total");
  EXPECT_EQ(a.action, MappingAction::kMap);
  const std::vector<std::pair<std::string, std::string>> labels{
      {"processor", "$1"}, {"action", "$2"}, {"outcome", "$3"}, {"job", "test_dispatcher"}};
  EXPECT_EQ(a.labels, labels);
  EXPECT_EQ(a.position, (Position{"mapping.yml", 2, 3}));
  EXPECT_EQ(m.mappings[1].labels.back(), (std::pair<std::string, std::string>{"job", "${1}_server"}));
  EXPECT_EQ(m.mappings[1].position.line, 9u);
}

TEST(MappingFile, AppliesStatsdExporterDefaultsWhenNothingIsSet) {
  const auto m = parse_ok("mappings:\n- match: a.b\n  name: ab\n");
  ASSERT_EQ(m.mappings.size(), 1u);
  const auto& a = m.mappings[0];
  EXPECT_EQ(m.defaults.match_type, MatchType::kGlob);
  EXPECT_FALSE(m.defaults.glob_disable_ordering);
  EXPECT_EQ(a.observer_type, ObserverType::kSummary);
  EXPECT_EQ(a.summary_options.quantiles, kGoDefQuantiles);
  EXPECT_EQ(a.histogram_options.buckets, kGoDefBuckets);
  EXPECT_EQ(a.ttl, nanoseconds{0});
  EXPECT_FALSE(a.scale.has_value());
  EXPECT_FALSE(a.match_metric_type.has_value());
  EXPECT_FALSE(a.honor_labels);
}

TEST(MappingFile, InheritsGlobalDefaultsFromTheReadme) {
  const auto m = parse_ok(R"(defaults:
  timer_type: histogram
  buckets: [.005, .01, .025, .05, .1, .25, .5, 1, 2.5 ]
  match_type: glob
  glob_disable_ordering: false
  ttl: 0 # metrics do not expire
mappings:
- match: "test.timing.*.*.*"
  name: "my_timer"
  labels:
    provider: "$2"
- match: "other.timing.*.*.*"
  timer_type: summary
  name: "other_timer"
)");
  ASSERT_EQ(m.mappings.size(), 2u);
  EXPECT_EQ(m.defaults.observer_type, ObserverType::kHistogram);
  EXPECT_EQ(m.mappings[0].observer_type, ObserverType::kHistogram);
  EXPECT_EQ(m.mappings[0].histogram_options.buckets, (std::vector<double>{.005, .01, .025, .05, .1, .25, .5, 1, 2.5}));
  EXPECT_EQ(m.mappings[1].observer_type, ObserverType::kSummary);
  EXPECT_EQ(m.mappings[1].summary_options.quantiles, kGoDefQuantiles);
}

TEST(MappingFile, ObserverTypeWinsOverDeprecatedTimerType) {
  const auto m = parse_ok(R"(mappings:
- match: test.*.*
  observer_type: summary
  timer_type: histogram
  name: "foo"
  labels: {}
  quantiles:
    - quantile: 0.42
      error: 0.04
    - quantile: 0.7
      error: 0.002
)");
  ASSERT_EQ(m.mappings.size(), 1u);
  EXPECT_EQ(m.mappings[0].observer_type, ObserverType::kSummary);
  EXPECT_EQ(m.mappings[0].summary_options.quantiles, (std::vector<Quantile>{{0.42, 0.04}, {0.7, 0.002}}));
  EXPECT_TRUE(m.mappings[0].labels.empty());
}

TEST(MappingFile, SummaryOptionsFallBackToDefaultsFieldByField) {
  const auto m = parse_ok(R"(defaults:
 summary_options:
   quantiles:
     - quantile: 0.042
       error: 0.4
   max_age: 15m
   age_buckets: 3
   buf_cap: 100
mappings:
- match: test.*.*
  observer_type: summary
  name: "foo"
  summary_options:
    max_age: 5m
    buf_cap: 1000
)");
  ASSERT_EQ(m.mappings.size(), 1u);
  const auto& s = m.mappings[0].summary_options;
  EXPECT_EQ(s.quantiles, (std::vector<Quantile>{{0.042, 0.4}}));
  EXPECT_EQ(s.max_age, minutes{5});
  EXPECT_EQ(s.age_buckets, 3u);
  EXPECT_EQ(s.buf_cap, 1000u);
}

TEST(MappingFile, ReadsHistogramOptionsWithNativeBuckets) {
  const auto m = parse_ok(R"(defaults:
  histogram_options:
    native_histogram_bucket_factor: 1.1
    native_histogram_max_buckets: 160
mappings:
- match: "http.duration.server"
  observer_type: histogram
  histogram_options:
    buckets: [ 0.01, 0.025, 0.05, 0.1 ]
  name: "http_duration_seconds"
- match: "rpc.duration"
  observer_type: histogram
  histogram_options:
    native_histogram_max_buckets: 20
  name: "rpc_duration_seconds"
)");
  ASSERT_EQ(m.mappings.size(), 2u);
  const auto& h = m.mappings[0].histogram_options;
  EXPECT_EQ(h.buckets, (std::vector<double>{0.01, 0.025, 0.05, 0.1}));
  EXPECT_DOUBLE_EQ(h.native_histogram_bucket_factor, 1.1);
  EXPECT_EQ(h.native_histogram_max_buckets, 160u);
  EXPECT_EQ(m.mappings[1].histogram_options.buckets, kGoDefBuckets);
  EXPECT_EQ(m.mappings[1].histogram_options.native_histogram_max_buckets, 20u);
}

TEST(MappingFile, ReadsRegexRulesInGoSyntax) {
  const auto m = parse_ok(R"(mappings:
- match: "test\\.(\\w+)\\.(\\w+)\\.counter"
  match_type: regex
  name: "${2}_total"
  labels:
    provider: "$1"
- match: '(?i)^(?P<service>[a-z]+)\.requests\z'
  match_type: regex
  name: requests_total
)");
  ASSERT_EQ(m.mappings.size(), 2u);
  EXPECT_EQ(m.mappings[0].match, R"(test\.(\w+)\.(\w+)\.counter)");
  EXPECT_EQ(m.mappings[0].match_type, MatchType::kRegex);
  EXPECT_EQ(m.mappings[0].name, "${2}_total");
  EXPECT_EQ(m.mappings[1].match_type, MatchType::kRegex);
}

TEST(MappingFile, AcceptsRe2SyntaxThatEcmaScriptLacks) {
  const auto m = parse_ok(R"(mappings:
- match: '^api\x{2E}(?P<verb>\pL+)\.(?i:ok|fail)\z'
  match_type: regex
  name: api_total
  labels:
    verb: "${verb}"
- match: '[[:^digit:]]+\.\Qa.b\E'
  match_type: regex
  name: quoted
)");
  ASSERT_EQ(m.mappings.size(), 2u);
  EXPECT_EQ(m.mappings[1].match, R"([[:^digit:]]+\.\Qa.b\E)");
}

TEST(MappingFile, RefusesRegexFeaturesStatsdExporterRefuses) {
  for (const char* re : {R"((a)\1)", "a(?=b)", "a(?<!b)c", R"(\Z)"}) {
    const std::string yaml = std::string("mappings:\n- match: '") + re + "'\n  match_type: regex\n  name: x\n";
    const auto r = parse_mapping_yaml(yaml, "m.yml");
    ASSERT_FALSE(r) << re;
    const auto got = messages(r);
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0].rfind("m.yml:2:10: mappings[0] match: found invalid regex", 0), 0u) << got[0];
  }
}

TEST(MappingFile, ReadsDropRulesMetricTypesHonorLabelsScaleAndTtl) {
  const auto m = parse_ok(R"(defaults:
  ttl: 45s
mappings:
- match: test.foo.*
  name: "test_foo"
  match_metric_type: counter
  honor_labels: true
  scale: 0.001
  ttl: 1m20s
- match: test.bar.*
  name: "test_bar"
  match_metric_type: timer
- match: "."
  match_type: regex
  action: drop
)");
  ASSERT_EQ(m.mappings.size(), 3u);
  EXPECT_EQ(m.mappings[0].match_metric_type, MetricType::kCounter);
  EXPECT_TRUE(m.mappings[0].honor_labels);
  ASSERT_TRUE(m.mappings[0].scale.has_value());
  EXPECT_DOUBLE_EQ(*m.mappings[0].scale, 0.001);
  EXPECT_EQ(m.mappings[0].ttl, seconds{80});
  EXPECT_EQ(m.mappings[1].match_metric_type, MetricType::kObserver);
  EXPECT_EQ(m.mappings[1].ttl, seconds{45});
  EXPECT_EQ(m.mappings[2].action, MappingAction::kDrop);
  EXPECT_TRUE(m.mappings[2].name.empty());
}

TEST(MappingFile, TakesIntegerTtlAsNanosecondsLikeGo) {
  const auto m = parse_ok("defaults:\n  ttl: 1000000000\nmappings:\n- match: a.b\n  name: ab\n");
  EXPECT_EQ(m.defaults.ttl, seconds{1});
}

TEST(MappingFile, AcceptsGlobComponentsStartingWithDigitsAfterTheFirst) {
  const auto m = parse_ok(R"(mappings:
- match: test.my-dispatch-host01.name.dispatcher.*.*.*
  name: host_dispatch_events
- match: request_time.*.200
  name: ok_requests
- match: "*"
  name: everything
)");
  EXPECT_EQ(m.mappings.size(), 3u);
}

TEST(MappingFile, EmptyFileHasNoMappingsAndDefaultOptions) {
  const auto m = parse_ok("");
  EXPECT_TRUE(m.mappings.empty());
  EXPECT_EQ(m.defaults.summary_options.quantiles, kGoDefQuantiles);
  EXPECT_EQ(m.defaults.histogram_options.buckets, kGoDefBuckets);
}

struct BrokenMapping {
  const char* name;
  const char* yaml;
  std::vector<std::string> expected;
};

class MappingFileErrors : public ::testing::TestWithParam<BrokenMapping> {};

TEST_P(MappingFileErrors, ReportsExactPositionAndExpectation) {
  const auto& c = GetParam();
  const auto r = parse_mapping_yaml(c.yaml, "m.yml");
  ASSERT_FALSE(r);
  EXPECT_EQ(messages(r), c.expected);
}

INSTANTIATE_TEST_SUITE_P(
    StatsdExporterRules, MappingFileErrors,
    ::testing::Values(
        BrokenMapping{"TrailingDotGlob",
                      "mappings:\n- match: a.*.\n  name: x\n",
                      {"m.yml:2:10: mappings[0] match: found invalid glob \"a.*.\", expected dot-separated components "
                       "that are '*' or a name like my_metric-1 (letters, digits, '_', single '-' inside; the first "
                       "not starting with a digit)"}},
        BrokenMapping{"DoubleDashGlob",
                      "mappings:\n- match: bad--metric-line.*.*\n  name: foo\n",
                      {"m.yml:2:10: mappings[0] match: found invalid glob \"bad--metric-line.*.*\", expected "
                       "dot-separated components that are '*' or a name like my_metric-1 (letters, digits, '_', "
                       "single '-' inside; the first not starting with a digit)"}},
        BrokenMapping{"NameStartingWithDigit",
                      "mappings:\n- match: test.*.*\n  name: \"0foo\"\n",
                      {"m.yml:3:9: mappings[0] name: found invalid metric name \"0foo\", expected letters, digits, "
                       "'_' and $n/${n} references, not starting with a digit"}},
        BrokenMapping{
            "MissingName",
            "mappings:\n- match: test.*.*\n  labels:\n    this: \"$1\"\n",
            {"m.yml:2:3: mappings[0]: found no name, expected name: \"metric_name\" (it may use $1 or ${1})"}},
        BrokenMapping{"MissingMatch",
                      "mappings:\n- name: foo\n",
                      {"m.yml:2:3: mappings[0]: found no match, expected match: \"a.glob.*\" (or a regex with "
                       "match_type: regex)"}},
        BrokenMapping{"RegexThatDoesNotCompile",
                      "mappings:\n- match: \"(unclosed\"\n  match_type: regex\n  name: x\n",
                      {"m.yml:2:10: mappings[0] match: found invalid regex \"(unclosed\" (missing ): (unclosed), "
                       "expected a regular expression (RE2 syntax)"}},
        BrokenMapping{"BadObserverType",
                      "mappings:\n- match: test.*.*\n  observer_type: wrong\n  name: foo\n",
                      {"m.yml:3:18: mappings[0] observer_type: found \"wrong\", expected summary or histogram"}},
        BrokenMapping{"BadDeprecatedTimerType",
                      "mappings:\n- match: test.*.*\n  timer_type: wrong\n  name: foo\n",
                      {"m.yml:3:15: mappings[0] timer_type: found \"wrong\", expected summary or histogram"}},
        BrokenMapping{"BadMatchType",
                      "defaults:\n  match_type: fuzzy\n",
                      {"m.yml:2:15: defaults match_type: found \"fuzzy\", expected glob or regex"}},
        BrokenMapping{"BadAction",
                      "mappings:\n- match: a.b\n  name: x\n  action: keep\n",
                      {"m.yml:4:11: mappings[0] action: found \"keep\", expected map or drop"}},
        BrokenMapping{
            "BadMatchMetricType",
            "mappings:\n- match: a.b\n  name: x\n  match_metric_type: set\n",
            {"m.yml:4:22: mappings[0] match_metric_type: found \"set\", expected counter, gauge or observer"}},
        BrokenMapping{"InvalidLabelName",
                      "mappings:\n- match: a.*\n  name: x\n  labels:\n    bad-label: $1\n",
                      {"m.yml:5:5: mappings[0] labels: found invalid label name \"bad-label\", expected "
                       "[a-zA-Z_][a-zA-Z0-9_]*"}},
        BrokenMapping{"UnknownKeyWithSuggestion",
                      "mappings:\n- match: a.b\n  name: x\n  lables: {a: b}\n",
                      {"m.yml:4:3: mappings[0]: found unknown key \"lables\", expected one of: match, name, labels, "
                       "honor_labels, observer_type, timer_type, buckets, quantiles, match_type, help, action, "
                       "match_metric_type, ttl, summary_options, histogram_options, scale (did you mean \"labels\"?)"}},
        BrokenMapping{"UnknownTopLevelKey",
                      "mapping:\n- match: a.b\n",
                      {"m.yml:1:1: mapping file: found unknown key \"mapping\", expected one of: defaults, mappings "
                       "(did you mean \"mappings\"?)"}},
        BrokenMapping{"QuantilesInBothPlaces",
                      "mappings:\n- match: a.b\n  name: x\n  quantiles: [{quantile: 0.5, error: 0.1}]\n"
                      "  summary_options:\n    quantiles: [{quantile: 0.9, error: 0.1}]\n",
                      {"m.yml:4:14: mappings[0] quantiles: found quantiles both here and in summary_options, "
                       "expected them in one place (summary_options.quantiles)"}},
        BrokenMapping{
            "SummaryOptionsOnHistogram",
            "mappings:\n- match: a.b\n  name: x\n  observer_type: histogram\n  summary_options: {max_age: 1m}\n",
            {"m.yml:5:20: mappings[0] summary_options: found summary options on a histogram observer, "
             "expected histogram_options or observer_type: summary"}},
        BrokenMapping{"HistogramOptionsOnSummary",
                      "defaults:\n  observer_type: summary\nmappings:\n- match: a.b\n  name: x\n"
                      "  histogram_options: {buckets: [1, 2]}\n",
                      {"m.yml:6:22: mappings[0] histogram_options: found histogram options on a summary observer, "
                       "expected summary_options or observer_type: histogram"}},
        BrokenMapping{"BucketsNotIncreasing",
                      "defaults:\n  buckets: [1, 5, 2]\n",
                      {"m.yml:2:19: defaults buckets[2]: found \"2\", expected a number greater than the previous "
                       "bucket"}},
        BrokenMapping{"QuantileOutOfRange",
                      "defaults:\n  quantiles: [{quantile: 1.5, error: 0.1}]\n",
                      {"m.yml:2:26: defaults quantiles[0] quantile: found \"1.5\", expected a number from 0 to 1"}},
        BrokenMapping{"BadTtl",
                      "mappings:\n- match: a.b\n  name: x\n  ttl: soon\n",
                      {"m.yml:4:8: mappings[0] ttl: found \"soon\", expected a duration like 500ms, 10s, 5m, 1h or "
                       "1m30s"}},
        BrokenMapping{"MappingsNotAList",
                      "mappings:\n  match: a.b\n",
                      {"m.yml:2:3: mappings: found a map, expected a list of mappings (- match: ...)"}},
        BrokenMapping{"ImproperlyEscapedStar",
                      "mappings:\n- match: *.test.*\n  name: \"name\"\n",
                      {"m.yml:2:10: invalid YAML: the referenced anchor is not defined"}}),
    [](const ::testing::TestParamInfo<BrokenMapping>& p) { return std::string(p.param.name); });

TEST(MappingFile, ReportsEveryErrorOfEveryMappingAtOnce) {
  const auto r = parse_mapping_yaml(R"(mappings:
- match: a.*.
  name: "0foo"
- match: "(x"
  match_type: regex
  name: ok
  bogus: 1
- name: nomatch
)",
                                    "m.yml");
  ASSERT_FALSE(r);
  const auto got = messages(r);
  ASSERT_EQ(got.size(), 5u);
  EXPECT_EQ(got[0].rfind("m.yml:2:10: ", 0), 0u);
  EXPECT_EQ(got[1].rfind("m.yml:3:9: ", 0), 0u);
  EXPECT_EQ(got[2].rfind("m.yml:7:3: ", 0), 0u);
  EXPECT_EQ(got[3].rfind("m.yml:4:10: ", 0), 0u);
  EXPECT_EQ(got[4].rfind("m.yml:8:3: ", 0), 0u);
}

TEST(MappingFile, LoadsFromDiskAndNamesTheFileInErrors) {
  ringpipe::testing::ScratchDir dir;
  const std::string path = dir.file("mapping.yml");
  std::ofstream(path) << "mappings:\n- match: a.b\n  nam: x\n";
  const auto r = load_mapping_file(path);
  ASSERT_FALSE(r);
  ASSERT_EQ(r.error().diagnostics.size(), 2u);
  EXPECT_EQ(r.error().diagnostics[0].position, (Position{path, 3, 3}));
  EXPECT_EQ(r.error().diagnostics[1].position, (Position{path, 2, 3}));
  std::ofstream(path) << "mappings:\n- match: a.b\n  name: x\n";
  const auto ok = load_mapping_file(path);
  ASSERT_TRUE(ok) << ok.error().message();
  EXPECT_EQ(ok->path, path);
}

TEST(MappingFile, UnreadableFileIsOneDiagnosticWithTheCause) {
  const auto r = load_mapping_file("/nonexistent/mapping.yml");
  ASSERT_FALSE(r);
  EXPECT_EQ(messages(r),
            std::vector<std::string>{"/nonexistent/mapping.yml: cannot read mapping file: No such file or directory"});
}

TEST(MappingFile, ErrorConvertsToRingpipeError) {
  const auto r = parse_mapping_yaml("mappings:\n- name: x\n", "m.yml");
  ASSERT_FALSE(r);
  const Error e = r.error().to_error();
  EXPECT_EQ(e.code, std::make_error_code(std::errc::invalid_argument));
  EXPECT_EQ(e.context, r.error().message());
  EXPECT_NE(e.context.find("m.yml:2:3: "), std::string::npos);
}

}  // namespace
}  // namespace ringpipe::config
