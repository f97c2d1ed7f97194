#include "ringpipe/processors/aggregator.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "engine_harness.hpp"
#include "ringpipe/metric/native_histogram.hpp"

namespace ringpipe::processors {
namespace {

using namespace std::chrono_literals;
using sample::Kind;
using testing::Harness;
using testing::rule;

EngineOptions with_rules(std::vector<MappingRule> rules) {
  EngineOptions o;
  o.mapping.rules = std::move(rules);
  return o;
}

std::uint64_t family_drops(AggregatorEngine& e, std::string_view name, bool conflict) {
  std::uint64_t n = 0;
  e.for_each_family([&](const FamilyReport& f) {
    if (f.name == name) n = conflict ? f.dropped_conflict : f.dropped_cardinality;
  });
  return n;
}

TEST(Engine, CountersAccumulateAcrossFlushes) {
  Harness h;
  h.send(Kind::kCounter, "hits", 2);
  h.send(Kind::kCounter, "hits", 3);
  h.flush();
  EXPECT_EQ(h.state.value("hits{}"), 5);
  EXPECT_EQ(h.state.series["hits{}"].type, MetricType::kCounter);
  h.send(Kind::kCounter, "hits", 1);
  h.flush();
  EXPECT_EQ(h.state.value("hits{}"), 6);
}

TEST(Engine, NegativeCounterIncrementsAreDroppedAndCounted) {
  Harness h;
  h.send(Kind::kCounter, "c", 5);
  h.send(Kind::kCounter, "c", -2);
  h.flush();
  EXPECT_EQ(h.state.value("c{}"), 5);
  EXPECT_EQ(h.stats().dropped_negative_counter, 1u);
}

TEST(Engine, CounterSampleRateScalesTheIncrement) {
  Harness h;
  h.send(Kind::kCounter, "c", 1, {}, 0.1);
  h.send(Kind::kCounter, "c", 1, {}, 0.25);
  h.flush();
  EXPECT_DOUBLE_EQ(h.state.value("c{}"), 14);
}

// A Prometheus sample keeps its name as Prometheus allows it (':' included),
// its family's type, HELP and UNIT, and its value as it came: a counter that
// goes down is served at the new value, never as a negative delta. A StatsD
// name with ':' is still escaped as statsd_exporter does.
TEST(Engine, PrometheusSamplesKeepNameTypeHelpAndValue) {
  Harness h;
  const sample::Family counter{sample::FamilyType::kCounter, 0, "Jobs done.", ""};
  const sample::Family hist{sample::FamilyType::kHistogram, 7, "RPC.", "seconds"};
  h.send_prom("job:jobs:total", 10, counter);
  h.send_prom("rpc_seconds_bucket", 7, hist, {{"le", "0.5"}});
  h.send(Kind::kGauge, "statsd:name", 1);
  h.flush();
  const auto& c = h.state.series.at("job:jobs:total{}");
  EXPECT_EQ(c.type, MetricType::kCounter);
  EXPECT_EQ(c.flags, metric::kEntryPromSample);
  EXPECT_EQ(c.help, "Jobs done.");
  EXPECT_EQ(c.values, std::vector<double>{10});
  const auto& b = h.state.series.at("rpc_seconds_bucket{le=0.5}");
  EXPECT_EQ(b.type, MetricType::kHistogram);
  EXPECT_EQ(b.family, "rpc_seconds");
  EXPECT_EQ(b.unit, "seconds");
  EXPECT_TRUE(h.state.has("statsd_name{}"));
  EXPECT_EQ(h.state.series.at("statsd_name{}").flags, 0);
  h.send_prom("job:jobs:total", 3, counter);  // the target restarted
  h.flush();
  EXPECT_EQ(h.state.value("job:jobs:total{}"), 3);
  EXPECT_EQ(h.state.series.at("job:jobs:total{}").type, MetricType::kCounter);
  EXPECT_EQ(h.stats().dropped_negative_counter, 0u);
}

// One name, two Prometheus types (two targets disagree): the later is refused
// and counted as a conflict, never served under the first one's type.
TEST(Engine, PrometheusFamilyOfAnotherTypeIsAConflict) {
  Harness h;
  h.send_prom("x", 1, sample::Family{sample::FamilyType::kCounter, 0, "", ""});
  h.send_prom("x", 2, sample::Family{sample::FamilyType::kGauge, 0, "", ""}, {{"t", "b"}});
  h.flush();
  EXPECT_TRUE(h.state.has("x{}"));
  EXPECT_FALSE(h.state.has("x{t=b}"));
  EXPECT_EQ(h.stats().dropped_conflict, 1u);
}

TEST(Engine, GaugesAreSetOrMovedByDeltas) {
  Harness h;
  h.send(Kind::kGauge, "g", 10);
  h.send(Kind::kGaugeDelta, "g", -3);
  h.send(Kind::kGaugeDelta, "g", 0.5);
  h.flush();
  EXPECT_DOUBLE_EQ(h.state.value("g{}"), 7.5);
  h.send(Kind::kGauge, "g", 1);
  h.flush();
  EXPECT_DOUBLE_EQ(h.state.value("g{}"), 1);
}

TEST(Engine, NamesAndTagKeysAreEscapedAndTagValuesKept) {
  Harness h;
  h.send(Kind::kCounter, "api.requests-total", 1, {{"status.code", "2xx.ok"}, {"1st", "a b"}});
  h.flush();
  EXPECT_TRUE(h.state.has("api_requests_total{_1st=a b,status_code=2xx.ok}"));
}

// The mapper remembers each name as it came (with its kind and Prometheus
// family) and the family it resolved to; these hold however often a name repeats.
TEST(Engine, NamesThatEscapeAlikeShareOneSeriesAndRepeatsResolveAsTheFirstDid) {
  Harness h;
  for (int i = 0; i < 3; ++i) {
    for (const char* n : {"a.b", "a-b", "a_b", "a--b", "a/b"}) h.send(Kind::kCounter, n, 1);
    h.send(Kind::kGauge, "a.b", 7);      // a_b is a counter: a conflict each time
    h.send(Kind::kCounter, "job:x", 2);  // StatsD escapes the colon
    h.send_prom("job:x", 5, sample::Family{sample::FamilyType::kGauge, 0, "", ""});  // Prometheus keeps it
  }
  h.flush();
  EXPECT_DOUBLE_EQ(h.state.value("a_b{}"), 15);
  EXPECT_DOUBLE_EQ(h.state.value("job_x{}"), 6);
  EXPECT_DOUBLE_EQ(h.state.value("job:x{}"), 5);
  EXPECT_EQ(h.stats().dropped_conflict, 3u);
  EXPECT_EQ(family_drops(h.engine(), "a_b", true), 3u);
}

// A Prometheus name that must be escaped loses its family suffix: it can
// never join the family of the escaped name that keeps one, however often
// it comes (the name cache must not remember it as that family's).
TEST(Engine, AnEscapedPrometheusNameConflictsWithTheSuffixedFamilyEveryTime) {
  Harness h;
  const sample::Family counter{sample::FamilyType::kCounter, 6, "", ""};  // suffix "_total"
  h.send_prom("http_requests_total", 1, counter);
  for (int i = 0; i < 3; ++i) h.send_prom("http.requests_total", 10, counter);
  h.flush();
  EXPECT_DOUBLE_EQ(h.state.value("http_requests_total{}"), 1);
  EXPECT_EQ(h.stats().dropped_conflict, 3u);
  EXPECT_EQ(family_drops(h.engine(), "http_requests_total", true), 3u);
}

TEST(Engine, MoreSpellingsOfANameThanTheNameCacheHoldsStillResolve) {
  EngineOptions o;
  o.max_families = 1;  // the mapper caches 2 * max_families + 16 names
  Harness h(o);
  for (int round = 0; round < 2; ++round) {
    for (int i = 0; i < 40; ++i)
      h.send(Kind::kCounter, "a" + std::string(static_cast<std::size_t>(i + 1), '-') + "b", 1);
  }
  h.send(Kind::kCounter, "other", 1);
  h.flush();
  EXPECT_DOUBLE_EQ(h.state.value("a_b{}"), 80);
  EXPECT_FALSE(h.state.has("other{}"));
  EXPECT_EQ(h.stats().dropped_family_limit, 1u);
}

TEST(Engine, LabelsAreSortedSoTagOrderDoesNotSplitASeries) {
  Harness h;
  h.send(Kind::kCounter, "c", 1, {{"b", "2"}, {"a", "1"}});
  h.send(Kind::kCounter, "c", 1, {{"a", "1"}, {"b", "2"}});
  h.flush();
  EXPECT_EQ(h.state.value("c{a=1,b=2}"), 2);
  EXPECT_EQ(h.engine().series_count(), 1u);
}

TEST(Engine, EmptyTagValuesMeanNoLabel) {
  Harness h;
  h.send(Kind::kCounter, "c", 1, {{"a", ""}});
  h.send(Kind::kCounter, "c", 1);
  h.flush();
  EXPECT_EQ(h.state.value("c{}"), 2);
}

// Labels Prometheus refuses mark the whole scrape target down, so they never
// reach a series, whatever source or rule produced them.
TEST(Engine, ReservedLabelNamesAreDroppedAndCounted) {
  MappingRule r = rule("m.*", "mapped_total");
  r.labels = {{"__rule", "$1"}, {"kept", "$1"}};
  Harness h(with_rules({r}));
  h.send(Kind::kCounter, "c", 1, {{"__name__", "evil"}, {"a", "1"}, {"__meta_x", "y"}});
  h.send(Kind::kCounter, "m.x", 1);
  h.flush();
  EXPECT_EQ(h.state.value("c{a=1}"), 1);
  EXPECT_EQ(h.state.value("mapped_total{kept=x}"), 1);
  EXPECT_EQ(h.state.series.size(), 2u);
  EXPECT_EQ(h.stats().labels_dropped_reserved, 3u);
  EXPECT_EQ(h.stats().samples_applied, 2u) << "the samples are kept";
}

// A batch of one series repeated (a Node.js writer's, mostly) maps each
// repeat from the sample before it: the totals, the labels and every per-sample
// counter must be what mapping each sample alone gives, across changes of
// tags, kind, rule and value in between.
TEST(Engine, RunsOfOneSeriesMapAsEachSampleAlone) {
  MappingRule r = rule("m.*", "mapped_total");
  r.labels = {{"kept", "$1"}};
  Harness h(with_rules({r}));
  testing::BatchBuilder b;
  const auto repeat = [&](int n, Kind kind, std::string_view name, double value, std::vector<sample::Tag> tags,
                          double rate = 1.0) {
    for (int i = 0; i < n; ++i) b.add(kind, name, value, tags, rate);
  };
  repeat(50, Kind::kCounter, "hits", 1, {{"route", "/api"}});
  repeat(40, Kind::kCounter, "hits", 1, {{"route", "/apz"}});  // as long as the run's tags, one byte apart
  repeat(1, Kind::kCounter, "hits", 2, {{"route", "/b"}});
  repeat(50, Kind::kCounter, "hits", 1, {{"route", "/api"}});
  repeat(20, Kind::kGauge, "hits", 7, {{"route", "/api"}});  // a conflict, per sample
  repeat(10, Kind::kCounter, "hits", 1, {{"route", "/api"}}, 0.5);
  repeat(5, Kind::kCounter, "hits", -1, {{"route", "/api"}});      // dropped, per sample
  repeat(20, Kind::kCounter, "c", 1, {{"__x", "y"}, {"a", "1"}});  // a reserved label, per sample
  repeat(30, Kind::kCounter, "m.x", 1, {});
  repeat(30, Kind::kCounter, "m.y", 1, {});
  repeat(40, Kind::kTimer, "t", 0.5, {{"route", "/api"}});
  repeat(40, Kind::kCounter, "hits", 1, {{"route", "/ap"}});  // a prefix of the run's tags
  h.engine().add_batch(b.finish(), h.now_ns);
  h.flush();
  EXPECT_EQ(h.state.value("hits{route=/api}"), 50 + 50 + 10 * 2);
  EXPECT_EQ(h.state.value("hits{route=/b}"), 2);
  EXPECT_EQ(h.state.value("hits{route=/ap}"), 40);
  EXPECT_EQ(h.state.value("hits{route=/apz}"), 40);
  EXPECT_EQ(h.state.value("c{a=1}"), 20);
  EXPECT_EQ(h.state.value("mapped_total{kept=x}"), 30);
  EXPECT_EQ(h.state.value("mapped_total{kept=y}"), 30);
  ASSERT_EQ(h.state.series["t{route=/api}"].values.size(), 8u);
  EXPECT_EQ(h.state.series["t{route=/api}"].values[0], 40);  // count
  EXPECT_EQ(h.state.series["t{route=/api}"].values[1], 20);  // sum
  const EngineStats st = h.stats();
  EXPECT_EQ(st.samples, 336u);
  EXPECT_EQ(st.dropped_conflict, 20u);
  EXPECT_EQ(family_drops(h.engine(), "hits", true), 20u);
  EXPECT_EQ(st.dropped_negative_counter, 5u);
  EXPECT_EQ(st.labels_dropped_reserved, 20u);
  EXPECT_EQ(st.unmapped, 336u - 60u);
  EXPECT_EQ(st.samples_applied, 336u - 20u - 5u);
}

TEST(Engine, LabelsTheTypeOwnsAreDroppedAndCounted) {
  MappingRule hist = rule("h.*", "h_seconds");
  hist.observer_type = ObserverType::kHistogram;
  hist.buckets = {1};
  hist.labels = {{"le", "$1"}};
  Harness h(with_rules({hist}));
  h.send(Kind::kTimer, "t", 0.5, {{"quantile", "0.5"}, {"le", "1"}});
  h.send(Kind::kHistogram, "h.x", 0.5, {{"quantile", "0.5"}, {"le", "2"}});
  h.send(Kind::kCounter, "c", 1, {{"le", "1"}, {"quantile", "0.5"}});
  h.flush();
  EXPECT_TRUE(h.state.has("t{le=1}")) << "le belongs to histograms only";
  EXPECT_TRUE(h.state.has("h_seconds{quantile=0.5}")) << "quantile belongs to summaries only";
  EXPECT_TRUE(h.state.has("c{le=1,quantile=0.5}"));
  EXPECT_EQ(h.state.series.size(), 3u);
  EXPECT_EQ(h.stats().labels_dropped_type_owned, 3u);  // the timer's quantile, the histogram's le tag and rule label
}

TEST(Engine, LabelsThatCollideAfterEscapingKeepTheLastAndAreCounted) {
  Harness h;
  h.send(Kind::kGauge, "g", 1, {{"a-b", "first"}, {"a.b", "second"}, {"x", "1"}, {"x", "2"}});
  h.flush();
  EXPECT_EQ(h.state.value("g{a_b=second,x=2}"), 1);
  EXPECT_EQ(h.state.series.size(), 1u);
  EXPECT_EQ(h.stats().labels_dropped_duplicate, 2u);
}

TEST(Engine, MappingLabelsReplacingATagAreNotDuplicates) {
  MappingRule r = rule("a.*", "a_total");
  r.labels = {{"env", "mapped"}};
  Harness h(with_rules({r}));
  h.send(Kind::kCounter, "a.x", 1, {{"env", "tag"}});
  h.flush();
  EXPECT_TRUE(h.state.has("a_total{env=mapped}"));
  EXPECT_EQ(h.stats().labels_dropped_duplicate, 0u);
}

TEST(Engine, InvalidLabelNamesAndValuesAreDroppedAndCounted) {
  Harness h;
  h.send(Kind::kCounter, "c", 1, {{"", "no name"}, {"ok", "1"}, {"bytes", "\xff\xfe"}, {"cut", "caf\xc3"}});
  h.send(Kind::kCounter, "c", 1, {{"ok", "1"}, {"utf8", "caf\xc3\xa9"}});
  h.flush();
  EXPECT_EQ(h.state.value("c{ok=1}"), 1);
  EXPECT_EQ(h.state.value("c{ok=1,utf8=caf\xc3\xa9}"), 1);
  EXPECT_EQ(h.state.series.size(), 2u);
  EXPECT_EQ(h.stats().labels_dropped_invalid, 3u);
}

// A byte that is not UTF-8 is found wherever it lies in a value of any
// length (the ASCII check reads short values in overlapping words).
TEST(Engine, ANonUtf8ByteAnywhereInALabelValueOfAnyLengthDropsTheLabel) {
  Harness h;
  std::uint64_t sent = 0;
  for (std::size_t len = 1; len <= 20; ++len) {
    for (std::size_t at = 0; at < len; ++at) {
      std::string v(len, 'a');
      v[at] = '\xff';
      h.send(Kind::kCounter, "c", 1, {{"ok", "1"}, {"v", v}});
      ++sent;
    }
    h.send(Kind::kCounter, "c", 1, {{"ok", "1"}, {"v", std::string(len, 'a')}});
  }
  h.flush();
  EXPECT_EQ(h.state.value("c{ok=1}"), static_cast<double>(sent));
  EXPECT_EQ(h.stats().labels_dropped_invalid, sent);
  EXPECT_EQ(h.state.series.size(), 21u);
}

TEST(Engine, NamesLongerThanTheLimitAreDroppedBeforeMappingAndCounted) {
  MappingRule r;
  r.match = "(.*)";
  r.match_type = MatchType::kRegex;
  r.name = "caught";
  EngineOptions o = with_rules({r});
  o.max_name_bytes = 64;
  Harness h(std::move(o));
  h.send(Kind::kCounter, std::string(64, 'a'), 1);
  h.send(Kind::kCounter, std::string(65, 'a'), 1);
  h.flush();
  EXPECT_EQ(h.state.value("caught{}"), 1);
  EXPECT_EQ(h.stats().dropped_name_too_long, 1u);
  EXPECT_EQ(h.engine().stats().mapping_lookups, 1u) << "the long name never reached the matcher";
}

TEST(Engine, DefaultNameLimitIs16KiB) {
  Harness h;
  EXPECT_EQ(h.engine().options().max_name_bytes, 16u * 1024);
  h.send(Kind::kCounter, std::string(16 * 1024, 'a'), 1);
  h.send(Kind::kCounter, std::string(16 * 1024 + 1, 'b'), 1);
  h.flush();
  EXPECT_EQ(h.state.series.size(), 1u);
  EXPECT_EQ(h.stats().dropped_name_too_long, 1u);
}

TEST(Engine, MappingRenamesAndLabelsFromCaptures) {
  Harness h(with_rules({[] {
    MappingRule r = rule("test.dispatcher.*.*", "dispatcher_events_total");
    r.labels = {{"processor", "$1"}, {"outcome", "$2"}};
    r.help = "Dispatcher events.";
    return r;
  }()}));
  h.send(Kind::kCounter, "test.dispatcher.Foo.ok", 1);
  h.flush();
  ASSERT_TRUE(h.state.has("dispatcher_events_total{outcome=ok,processor=Foo}"));
  EXPECT_EQ(h.state.series["dispatcher_events_total{outcome=ok,processor=Foo}"].help, "Dispatcher events.");
  EXPECT_EQ(h.stats().unmapped, 0u);
}

TEST(Engine, MappingLabelsOverrideTagsUnlessHonorLabels) {
  MappingRule plain = rule("a.*", "a_total");
  plain.labels = {{"env", "mapped"}};
  MappingRule honor = rule("b.*", "b_total");
  honor.labels = {{"env", "mapped"}};
  honor.honor_labels = true;
  Harness h(with_rules({plain, honor}));
  h.send(Kind::kCounter, "a.x", 1, {{"env", "tag"}});
  h.send(Kind::kCounter, "b.x", 1, {{"env", "tag"}});
  h.send(Kind::kCounter, "b.y", 1);
  h.flush();
  EXPECT_TRUE(h.state.has("a_total{env=mapped}"));
  EXPECT_TRUE(h.state.has("b_total{env=tag}"));
  EXPECT_EQ(h.state.value("b_total{env=mapped}"), 1);
}

TEST(Engine, DropRulesDiscardAndCount) {
  MappingRule d;
  d.match = "noise.*";
  d.action = RuleAction::kDrop;
  Harness h(with_rules({d}));
  h.send(Kind::kCounter, "noise.a", 1);
  h.send(Kind::kCounter, "signal", 1);
  h.flush();
  EXPECT_FALSE(h.state.has("noise_a{}"));
  EXPECT_TRUE(h.state.has("signal{}"));
  EXPECT_EQ(h.stats().dropped_by_rule, 1u);
  EXPECT_EQ(h.stats().unmapped, 1u);
}

TEST(Engine, EmptyNameFromARuleIsDroppedAndCounted) {
  Harness h(with_rules({rule("*.x", "$1")}));
  h.send(Kind::kCounter, ".x", 1);
  h.flush();
  EXPECT_TRUE(h.state.series.empty());
  EXPECT_EQ(h.stats().dropped_empty_name, 1u);
}

// A name is checked against max_name_bytes as it came; a rule's template can
// make it longer than a family's name may be (64 KiB): dropped and counted.
TEST(Engine, NameARuleMadeTooLongForAFamilyIsDroppedAndCounted) {
  Harness h(with_rules({rule("*.x", "$1$1$1$1$1")}));
  const std::string long_stem(14000, 'a');  // under max_name_bytes (16 KiB); five times over 64 KiB
  h.send(Kind::kCounter, long_stem + ".x", 1);
  h.send(Kind::kCounter, "b.x", 1);
  h.flush();
  EXPECT_EQ(h.state.series.size(), 1u);
  EXPECT_EQ(h.state.value("bbbbb{}"), 1);
  EXPECT_EQ(h.stats().dropped_name_too_long, 1u);
  EXPECT_EQ(h.stats().dropped_family_limit, 0u);
}

TEST(Engine, ScaleMultipliesValues) {
  MappingRule r = rule("t.*", "t_seconds");
  r.scale = 0.001;
  r.observer_type = ObserverType::kHistogram;
  r.buckets = {0.5, 1};
  Harness h(with_rules({r}));
  h.send(Kind::kTimer, "t.x", 700);
  h.flush();
  const auto& v = h.state.series["t_seconds{}"].values;
  ASSERT_EQ(v.size(), 8u);
  EXPECT_DOUBLE_EQ(v[1], 0.7);
  EXPECT_EQ(v[3], 0);  // le=0.5
  EXPECT_EQ(v[5], 1);  // le=1
}

TEST(Engine, TimersBecomeSummariesWithDefaultQuantiles) {
  Harness h;
  for (int i = 1; i <= 100; ++i) h.send(Kind::kTimer, "lat", i);
  h.flush();
  const auto& s = h.state.series["lat{}"];
  EXPECT_EQ(s.type, MetricType::kSummary);
  ASSERT_EQ(s.values.size(), 8u);
  EXPECT_EQ(s.values[0], 100);   // count
  EXPECT_EQ(s.values[1], 5050);  // sum
  EXPECT_EQ(s.values[2], 0.5);
  EXPECT_NEAR(s.values[3], 50, 0.5);
  EXPECT_EQ(s.values[4], 0.9);
  EXPECT_NEAR(s.values[5], 90, 0.9);
  EXPECT_EQ(s.values[6], 0.99);
  EXPECT_NEAR(s.values[7], 99, 1);
}

TEST(Engine, SummaryOfFewTimingsAnswersLikeStatsdExporter) {
  Harness h;
  for (const double ms : {5.0, 5.0, 5.0, 5000.0}) h.send(Kind::kTimer, "lat", ms / 1000);
  h.flush();
  EXPECT_EQ(h.state.value("lat{}", 3), 0.005);  // p50
  EXPECT_EQ(h.state.value("lat{}", 5), 5);      // p90: the 4th of 4
  EXPECT_EQ(h.state.value("lat{}", 7), 5);      // p99: the maximum, not 0.00504
}

TEST(Engine, HistogramsDistributionsAndTimersShareTheObserverMapping) {
  MappingRule r = rule("h.*", "h_seconds");
  r.observer_type = ObserverType::kHistogram;
  r.buckets = {1, 2};
  Harness h(with_rules({r}));
  h.send(Kind::kTimer, "h.a", 0.5);
  h.send(Kind::kHistogram, "h.a", 1.5);
  h.send(Kind::kDistribution, "h.a", 1);  // le is inclusive
  h.send(Kind::kDistribution, "h.a", 9);
  h.flush();
  const auto& v = h.state.series["h_seconds{}"].values;
  ASSERT_EQ(v.size(), 8u);
  EXPECT_EQ(h.state.series["h_seconds{}"].type, MetricType::kHistogram);
  EXPECT_EQ(v[0], 4);
  EXPECT_EQ(v[1], 12);
  EXPECT_EQ(v[2], 1);
  EXPECT_EQ(v[3], 2);  // <= 1: 0.5, 1
  EXPECT_EQ(v[4], 2);
  EXPECT_EQ(v[5], 3);  // <= 2: + 1.5
  EXPECT_TRUE(std::isinf(v[6]));
  EXPECT_EQ(v[7], 4);
}

using NativeBuckets = std::vector<std::pair<std::int32_t, double>>;

TEST(Engine, AMappingsNativeBucketFactorAddsANativeHistogramBesideTheClassicBuckets) {
  MappingRule r = rule("h.*", "h_seconds");
  r.observer_type = ObserverType::kHistogram;
  r.buckets = {1, 2};
  r.native_bucket_factor = 2;  // 2^(2^0): schema 0, buckets (2^(i-1), 2^i]
  MappingRule plain = rule("p.*", "p_seconds");
  plain.observer_type = ObserverType::kHistogram;
  plain.buckets = {1, 2};
  Harness h(with_rules({r, plain}));
  for (const double v : {0.5, 1.5, 1.0, 9.0, -3.0, 0.0, 1.5}) h.send(Kind::kTimer, "h.a", v);
  h.flush();
  const auto& s = h.state.series["h_seconds{}"];
  EXPECT_NE(s.flags & metric::kEntryNative, 0);
  EXPECT_EQ(h.state.versions, (std::set<std::uint16_t>{metric::kMetricFormatVersionNative}));
  // The classic values are as without native buckets.
  ASSERT_EQ(s.values.size(), 8u);
  EXPECT_EQ(s.values[0], 7);
  EXPECT_EQ(s.values[1], 10.5);
  EXPECT_EQ(s.values[3], 4);  // <= 1: 0.5, 1, -3, 0
  EXPECT_EQ(s.values[5], 6);  // <= 2: + 1.5 twice
  EXPECT_EQ(s.schema, 0);
  EXPECT_EQ(s.zero_threshold, metric::kNativeDefaultZeroThreshold);
  EXPECT_EQ(s.zero_count, 1);  // 0
  // 0.5 in (0.25, 0.5] (-1), 1 in (0.5, 1] (0), 1.5 twice in (1, 2] (1), 9 in (8, 16] (4).
  EXPECT_EQ(s.positive, (NativeBuckets{{-1, 1}, {0, 1}, {1, 2}, {4, 1}}));
  EXPECT_EQ(s.negative, (NativeBuckets{{2, 1}}));  // -3: |v| in (2, 4]

  // A histogram without the factor keeps its entries (and batches) as before.
  Harness p(with_rules({r, plain}));
  p.send(Kind::kTimer, "p.a", 1.5);
  p.flush();
  EXPECT_EQ(p.state.series["p_seconds{}"].flags & metric::kEntryNative, 0);
  EXPECT_EQ(p.state.versions, (std::set<std::uint16_t>{metric::kMetricFormatVersion}));
}

TEST(Engine, NativeMaxBucketsLowersTheSchemaAndTheDefaultsCarryTheFactor) {
  EngineOptions o;
  o.mapping.defaults.observer_type = ObserverType::kHistogram;
  o.mapping.defaults.native_bucket_factor = 1.1;  // schema 3
  o.mapping.defaults.native_max_buckets = 3;
  Harness h(o);
  // Schema 3 keys: 1 -> 0, 1.5 -> 5, 3 -> 13, 6 -> 21: four buckets; at
  // schema 2 (0, 3, 7, 11) and 1 (0, 2, 4, 6) still four; at 0 (0, 1, 2, 3)
  // four; at -1: 1 -> 0, 1.5 and 3 -> 1, 6 -> 2.
  for (const double v : {1.0, 1.5, 3.0}) h.send(Kind::kHistogram, "lat", v);
  h.flush();
  EXPECT_EQ(h.state.series["lat{}"].schema, 3);
  EXPECT_EQ(h.state.series["lat{}"].positive, (NativeBuckets{{0, 1}, {5, 1}, {13, 1}}));
  h.send(Kind::kHistogram, "lat", 6);
  h.flush();
  EXPECT_EQ(h.state.series["lat{}"].schema, -1);
  EXPECT_EQ(h.state.series["lat{}"].positive, (NativeBuckets{{0, 1}, {1, 2}, {2, 1}}));
  EXPECT_EQ(h.state.series["lat{}"].values[0], 4);
}

TEST(Engine, SampledObservationIsReplayedIntOfOneOverRateTimesAsStatsdExporterDoes) {
  MappingRule r = rule("h.*", "h");
  r.observer_type = ObserverType::kHistogram;
  r.buckets = {1};
  Harness h(with_rules({r}));
  h.send(Kind::kTimer, "h.a", 0.5, {}, 0.3);  // int(1/0.3) = 3 observations, not 3.33
  h.send(Kind::kTimer, "s", 2, {}, 0.3);
  h.send(Kind::kTimer, "s", 4, {}, 0.01);
  h.flush();
  EXPECT_EQ(h.state.value("h{}", 0), 3);
  EXPECT_DOUBLE_EQ(h.state.value("h{}", 1), 1.5);
  EXPECT_EQ(h.state.value("h{}", 3), 3);  // le=1
  EXPECT_EQ(h.state.value("s{}", 0), 103);
  EXPECT_DOUBLE_EQ(h.state.value("s{}", 1), 406);
  EXPECT_EQ(h.state.value("s{}", 3), 4);  // p50 of 3 x 2 and 100 x 4
}

TEST(Engine, WeightedSampleRateIsOneWeightedObservation) {
  MappingRule r = rule("h.*", "h");
  r.observer_type = ObserverType::kHistogram;
  r.buckets = {1};
  EngineOptions o = with_rules({r});
  o.weighted_sample_rate = true;
  Harness h(o);
  h.send(Kind::kTimer, "h.a", 0.5, {}, 0.3);  // weight 1/0.3
  h.send(Kind::kTimer, "s", 2, {}, 0.01);
  h.flush();
  EXPECT_DOUBLE_EQ(h.state.value("h{}", 0), 1 / 0.3);
  EXPECT_DOUBLE_EQ(h.state.value("h{}", 1), 0.5 / 0.3);
  EXPECT_DOUBLE_EQ(h.state.value("s{}", 0), 100);
  EXPECT_DOUBLE_EQ(h.state.value("s{}", 1), 200);
  EXPECT_EQ(h.state.value("s{}", 3), 2);
}

TEST(Engine, SummaryWindowForgetsOldObservationsButKeepsCountAndSum) {
  Harness h;
  for (int i = 0; i < 3; ++i) h.send(Kind::kTimer, "lat", 1000);
  h.flush();
  EXPECT_NEAR(h.state.value("lat{}", 3), 1000, 10);
  h.advance(5min);
  h.send(Kind::kTimer, "lat", 1);
  h.flush();
  EXPECT_NEAR(h.state.value("lat{}", 7), 1000, 10);  // p99 still sees the old value
  h.advance(6min);                                   // 11 minutes: the 1000 has aged out of the 10 minute window
  h.flush();
  EXPECT_NEAR(h.state.value("lat{}", 7), 1, 0.01);
  EXPECT_EQ(h.state.value("lat{}", 0), 4);
  h.advance(11min);  // nothing left: quantiles are NaN, count and sum stay
  h.flush();
  EXPECT_TRUE(std::isnan(h.state.value("lat{}", 3)));
  EXPECT_EQ(h.state.value("lat{}", 1), 3001);
}

TEST(Engine, SetsPublishTheLargerOfTheLastCompletedAndTheOpenWindow) {
  EngineOptions o;
  o.set_window = 10s;
  Harness h(o);
  h.now_ns = 0;
  h.send(Kind::kSet, "users", 0, {}, 1, "alice");
  h.flush();
  EXPECT_EQ(h.state.value("users{}"), 1);  // shown from the first member, not when the window closes
  for (const char* m : {"bob", "alice", "carol"}) h.send(Kind::kSet, "users", 0, {}, 1, m);
  h.flush();
  EXPECT_EQ(h.state.value("users{}"), 3);
  h.advance(10s);
  h.send(Kind::kSet, "users", 0, {}, 1, "dave");
  h.flush();
  EXPECT_EQ(h.state.value("users{}"), 3);  // the completed window's 3, not the open one's 1
  EXPECT_EQ(h.state.series["users{}"].type, MetricType::kGauge);
  EXPECT_EQ(h.state.series["users{}"].flags, metric::kEntryFromSet);
  for (const char* m : {"erin", "frank", "grace"}) h.send(Kind::kSet, "users", 0, {}, 1, m);
  h.flush();
  EXPECT_EQ(h.state.value("users{}"), 4);  // the open window outgrew it
  h.advance(10s);
  h.flush();
  EXPECT_EQ(h.state.value("users{}"), 4);  // completed: 4; the new window is still empty
  h.advance(10s);
  h.flush();
  EXPECT_EQ(h.state.value("users{}"), 0);  // a whole window without members
}

TEST(Engine, SetMembersBeyondTheLimitAreCounted) {
  EngineOptions o;
  o.set_window = 10s;
  o.max_set_members = 3;
  Harness h(o);
  h.now_ns = 0;
  for (int i = 0; i < 5; ++i) h.send(Kind::kSet, "s", 0, {}, 1, std::to_string(i));
  h.advance(10s);
  h.flush();
  EXPECT_EQ(h.state.value("s{}"), 3);
  EXPECT_EQ(h.stats().set_members_over_limit, 2u);
}

TEST(Engine, FirstTypeOfANameWinsAndConflictsAreCountedPerName) {
  Harness h;
  h.send(Kind::kCounter, "x", 1);
  h.send(Kind::kGauge, "x", 5);
  h.send(Kind::kTimer, "x", 5);
  h.flush();
  EXPECT_EQ(h.state.series["x{}"].type, MetricType::kCounter);
  EXPECT_EQ(h.state.value("x{}"), 1);
  EXPECT_EQ(h.stats().dropped_conflict, 2u);
  EXPECT_EQ(family_drops(h.engine(), "x", true), 2u);
}

TEST(Engine, SummarySuffixesCannotBeTakenByOtherFamilies) {
  Harness h;
  h.send(Kind::kTimer, "rpc", 1);
  h.send(Kind::kCounter, "rpc_count", 1);
  h.send(Kind::kGauge, "rpc_sum", 1);
  h.send(Kind::kCounter, "rpc_bucket", 1);
  h.flush();
  EXPECT_TRUE(h.state.has("rpc{}"));
  EXPECT_FALSE(h.state.has("rpc_count{}"));
  EXPECT_FALSE(h.state.has("rpc_sum{}"));
  EXPECT_FALSE(h.state.has("rpc_bucket{}"));
  EXPECT_EQ(h.stats().dropped_conflict, 3u);
  EXPECT_EQ(family_drops(h.engine(), "rpc_count", true), 1u);
}

TEST(Engine, AHistogramCannotTakeANameWhoseSuffixedSeriesExist) {
  MappingRule r = rule("lat", "lat");
  r.observer_type = ObserverType::kHistogram;
  Harness h(with_rules({r}));
  h.send(Kind::kCounter, "lat_bucket", 1);
  h.send(Kind::kTimer, "lat", 1);
  h.flush();
  EXPECT_TRUE(h.state.has("lat_bucket{}"));
  EXPECT_FALSE(h.state.has("lat{}"));
  EXPECT_EQ(family_drops(h.engine(), "lat", true), 1u);
}

TEST(Engine, SetsAndGaugesDoNotMixUnderOneName) {
  Harness h;
  h.send(Kind::kGauge, "u", 1);
  h.send(Kind::kSet, "u", 0, {}, 1, "m");
  EXPECT_EQ(h.stats().dropped_conflict, 1u);
}

TEST(Engine, SeriesExpireAfterTheirTtlOnTheProcessorClock) {
  EngineOptions o;
  o.mapping.defaults.ttl = 30s;
  MappingRule longer = rule("keep.*", "keep");
  longer.ttl = 5min;
  o.mapping.rules = {longer};
  Harness h(o);
  h.send(Kind::kCounter, "a", 1);
  h.send(Kind::kCounter, "keep.x", 1);
  h.flush();
  h.advance(20s);
  h.send(Kind::kCounter, "b", 1);
  h.flush();
  EXPECT_TRUE(h.state.has("a{}"));
  h.advance(11s);  // a: 31 s idle; b: 11 s
  h.flush();
  EXPECT_FALSE(h.state.has("a{}"));
  EXPECT_TRUE(h.state.has("b{}"));
  EXPECT_TRUE(h.state.has("keep{}"));
  EXPECT_EQ(h.state.expiries, 1);
  EXPECT_EQ(h.engine().series_count(), 2u);
  EXPECT_EQ(h.stats().series_expired, 1u);
  h.send(Kind::kCounter, "a", 1);  // comes back from zero
  h.flush();
  EXPECT_EQ(h.state.value("a{}"), 1);
}

TEST(Engine, AnUpdateKeepsASeriesAlive) {
  EngineOptions o;
  o.mapping.defaults.ttl = 10s;
  Harness h(o);
  for (int i = 0; i < 5; ++i) {
    h.send(Kind::kGauge, "g", i);
    h.advance(8s);
    h.flush();
  }
  EXPECT_TRUE(h.state.has("g{}"));
  EXPECT_EQ(h.state.expiries, 0);
}

TEST(Engine, PerMetricSeriesLimitDropsNewSeriesAndCountsThem) {
  EngineOptions o;
  o.max_series_per_metric = 3;
  Harness h(o);
  for (int i = 0; i < 5; ++i) h.send(Kind::kCounter, "c", 1, {{"id", std::to_string(i)}});
  h.send(Kind::kCounter, "c", 1, {{"id", "0"}});  // an existing series still counts
  h.send(Kind::kCounter, "other", 1);
  h.flush();
  EXPECT_EQ(h.engine().series_count(), 4u);
  EXPECT_EQ(h.state.value("c{id=0}"), 2);
  EXPECT_EQ(h.stats().dropped_cardinality, 2u);
  EXPECT_EQ(family_drops(h.engine(), "c", false), 2u);
}

TEST(Engine, GlobalSeriesLimitAppliesAcrossMetrics) {
  EngineOptions o;
  o.max_series = 4;
  o.shards = 3;
  Harness h(o);
  for (int i = 0; i < 10; ++i) h.send(Kind::kGauge, "g" + std::to_string(i), 1);
  EXPECT_EQ(h.engine().series_count(), 4u);
  EXPECT_EQ(h.stats().dropped_cardinality, 6u);
}

TEST(Engine, ExpiryFreesBudgetForNewSeries) {
  EngineOptions o;
  o.max_series = 2;
  o.mapping.defaults.ttl = 10s;
  Harness h(o);
  h.send(Kind::kGauge, "a", 1);
  h.send(Kind::kGauge, "b", 1);
  h.send(Kind::kGauge, "c", 1);
  EXPECT_EQ(h.stats().dropped_cardinality, 1u);
  h.advance(11s);
  h.flush();
  h.send(Kind::kGauge, "c", 1);
  h.flush();
  EXPECT_TRUE(h.state.has("c{}"));
}

TEST(Engine, FamilyLimitBoundsDistinctNames) {
  EngineOptions o;
  o.max_families = 2;
  Harness h(o);
  for (int i = 0; i < 4; ++i) h.send(Kind::kCounter, "n" + std::to_string(i), 1);
  EXPECT_EQ(h.engine().series_count(), 2u);
  EXPECT_EQ(h.stats().dropped_family_limit, 2u);
}

TEST(Engine, FlushCarriesOnlySeriesChangedSinceTheLastFlush) {
  EngineOptions o;
  o.snapshot_every_flushes = 0;
  Harness h(o);
  h.send(Kind::kCounter, "a", 1);
  h.send(Kind::kCounter, "b", 1);
  h.flush();  // first flush: a snapshot
  EXPECT_EQ(h.state.snapshot_begins, 1);
  h.state.updates = 0;
  h.send(Kind::kCounter, "b", 1);
  h.flush();
  EXPECT_EQ(h.state.updates, 1);
  EXPECT_EQ(h.state.value("b{}"), 2);
  h.state.updates = 0;
  EXPECT_EQ(h.flush(), 0u);
  EXPECT_EQ(h.state.updates, 0);
}

TEST(Engine, PeriodicAndRequestedSnapshotsCarryTheFullState) {
  EngineOptions o;
  o.snapshot_every_flushes = 3;
  o.shards = 2;
  Harness h(o);
  for (int i = 0; i < 20; ++i) h.send(Kind::kCounter, "c", 1, {{"i", std::to_string(i)}});
  h.flush();                     // 1: snapshot (first)
  h.flush();                     // 2
  testing::ExporterState fresh;  // an exporter that starts now
  h.sink.clear();
  h.engine().flush(h.now_ns, 0, h.sink);  // 3: periodic snapshot
  fresh.apply(h.sink.records());
  EXPECT_EQ(fresh.series.size(), 20u);
  EXPECT_EQ(fresh.snapshot_begins, 2);  // one per shard
  EXPECT_EQ(fresh.snapshot_ends, 2);
  h.engine().request_snapshot();
  testing::ExporterState again;
  h.sink.clear();
  h.engine().flush(h.now_ns, 0, h.sink);
  again.apply(h.sink.records());
  EXPECT_EQ(again.series.size(), 20u);
}

TEST(Engine, LargeFlushesSpanSeveralRecords) {
  EngineOptions o;
  o.max_record_bytes = 4096;
  Harness h(o);
  h.sink = VectorSink(4096);
  for (int i = 0; i < 500; ++i) h.send(Kind::kGauge, "g", i, {{"i", std::to_string(i)}});
  EXPECT_GT(h.flush(), 10u);
  EXPECT_EQ(h.state.series.size(), 500u);
  EXPECT_EQ(h.state.decode_errors, 0);
}

TEST(Engine, AFullSinkStallsTheFlushAndNothingIsLost) {
  EngineOptions o;
  o.max_record_bytes = 4096;
  o.snapshot_every_flushes = 0;
  Harness h(o);
  h.flush();  // the first (snapshot) flush, empty
  h.sink = VectorSink(4096);
  for (int i = 0; i < 300; ++i) h.send(Kind::kGauge, "g", i, {{"i", std::to_string(i)}});
  h.sink.clear();
  h.sink.refuse_after(2);
  h.engine().flush(h.now_ns, 0, h.sink);
  h.state.apply(h.sink.records());
  EXPECT_LT(h.state.series.size(), 300u);
  EXPECT_GE(h.stats().flush_stalls, 1u);
  h.sink.refuse_after(SIZE_MAX);
  h.flush();
  EXPECT_EQ(h.state.series.size(), 300u);
}

TEST(Engine, ShardsPartitionSeriesWithoutChangingResults) {
  for (std::uint32_t shards : {1u, 4u}) {
    EngineOptions o;
    o.shards = shards;
    Harness h(o);
    for (int i = 0; i < 1000; ++i) h.send(Kind::kCounter, "c", 1, {{"k", std::to_string(i % 100)}});
    h.flush();
    ASSERT_EQ(h.state.series.size(), 100u) << shards;
    double total = 0;
    for (const auto& [k, s] : h.state.series) total += s.values[0];
    EXPECT_EQ(total, 1000) << shards;
  }
}

TEST(Engine, MalformedBatchesAreCounted) {
  Harness h;
  std::vector<std::byte> junk(10, std::byte{1});
  h.engine().add_batch(junk, h.now_ns);
  EXPECT_EQ(h.stats().decode_errors, 1u);
}

// One native histogram sample in a batch of its own, then a gauge.
std::vector<std::byte> native_batch(std::string_view name, const sample::NativeSample& n, sample::FamilyType type,
                                    std::vector<sample::Tag> tags = {}) {
  std::vector<std::byte> buf(4096);
  sample::BatchWriter w(buf, 1, 0);
  const sample::Family fam{type, 0, {}, {}};
  if (!w.append_native(name, tags, n, fam) || !w.append(Kind::kGauge, "g", 4, 1, {})) std::abort();
  buf.resize(w.finish());
  return buf;
}

TEST(Engine, ANativeHistogramSampleSetsItsSeriesToTheHistogramAsItCameAndTheNextReplacesIt) {
  Harness h;
  const std::vector<std::pair<std::int32_t, double>> pos1{{0, 2}};
  sample::NativeSample n;
  n.schema = 0;
  n.count = 2;
  n.sum = 1.5;
  n.positive = pos1;
  h.engine().add_batch(native_batch("lat", n, sample::FamilyType::kHistogram, {{"k", "1"}}), h.now_ns);
  h.flush();
  EXPECT_EQ(h.stats().decode_errors, 0u);
  ASSERT_TRUE(h.state.has("lat{k=1}"));
  const testing::SeriesState& a = h.state.series.at("lat{k=1}");
  EXPECT_EQ(a.type, MetricType::kHistogram);
  EXPECT_EQ(a.flags, metric::kEntryPromSample | metric::kEntryNative);
  EXPECT_EQ(a.family, "lat");
  EXPECT_EQ(a.values, (std::vector<double>{2, 1.5}));  // count, sum: no classic bucket is invented
  EXPECT_EQ(a.schema, 0);
  EXPECT_EQ(a.positive, pos1);
  EXPECT_EQ(h.state.value("g{}"), 4);  // the batch's other samples are kept

  // Cumulative, as Prometheus sends it: the next sample replaces the
  // histogram (schema, zero bucket and buckets), it is not added to it.
  const std::vector<std::pair<std::int32_t, double>> pos2{{1, 3}, {4, 1}};
  const std::vector<std::pair<std::int32_t, double>> neg2{{-2, 1}};
  n.schema = 3;
  n.zero_threshold = 0.001;
  n.zero_count = 1;
  n.count = 6;
  n.sum = 20.25;
  n.positive = pos2;
  n.negative = neg2;
  h.engine().add_batch(native_batch("lat", n, sample::FamilyType::kHistogram, {{"k", "1"}}), h.now_ns);
  h.flush();
  const testing::SeriesState& b = h.state.series.at("lat{k=1}");
  EXPECT_EQ(b.values, (std::vector<double>{6, 20.25}));
  EXPECT_EQ(b.schema, 3);
  EXPECT_EQ(b.zero_threshold, 0.001);
  EXPECT_EQ(b.zero_count, 1);
  EXPECT_EQ(b.positive, pos2);
  EXPECT_EQ(b.negative, neg2);
  EXPECT_EQ(h.state.series.size(), 2u);

  // A gaugehistogram family keeps its type.
  n.positive = pos1;
  n.negative = {};
  h.engine().add_batch(native_batch("depth", n, sample::FamilyType::kGaugeHistogram), h.now_ns);
  h.flush();
  ASSERT_TRUE(h.state.has("depth{}"));
  EXPECT_EQ(h.state.series.at("depth{}").type, MetricType::kGaugeHistogram);
  EXPECT_EQ(h.stats().dropped_native_too_large, 0u);
  EXPECT_EQ(h.stats().dropped_native_renamed, 0u);
}

TEST(Engine, ANativeHistogramARuleRenamedIsDroppedAndCountedAndOneKeptUnderItsNameIsSet) {
  EngineOptions o;
  MappingRule kept = rule("kept_seconds", "kept_seconds");  // the name it came with: still its family's
  kept.labels = {{"team", "x"}};
  o.mapping.rules = {rule("old.*", "new_${1}"), kept};
  Harness h(o);
  const std::vector<std::pair<std::int32_t, double>> pos{{0, 2}};
  sample::NativeSample n;
  n.count = 2;
  n.sum = 1.5;
  n.positive = pos;
  h.engine().add_batch(native_batch("old.seconds", n, sample::FamilyType::kHistogram), h.now_ns);
  h.engine().add_batch(native_batch("kept_seconds", n, sample::FamilyType::kHistogram), h.now_ns);
  h.flush();
  EXPECT_EQ(h.stats().dropped_native_renamed, 1u);
  EXPECT_FALSE(h.state.has("new_seconds{}"));
  bool family_made = false;  // none is made for it (it would take a family slot and its name)
  h.engine().for_each_family([&](const FamilyReport& f) { family_made = family_made || f.name == "new_seconds"; });
  EXPECT_FALSE(family_made);
  ASSERT_TRUE(h.state.has("kept_seconds{team=x}"));
  EXPECT_EQ(h.state.series.at("kept_seconds{team=x}").positive, pos);
}

TEST(Engine, ANativeHistogramSampleNoOutputRecordCouldHoldIsDroppedAndCounted) {
  EngineOptions o;
  o.max_record_bytes = 4096;
  Harness h(o);
  std::vector<std::pair<std::int32_t, double>> pos;
  for (int i = 0; i < 300; ++i) pos.emplace_back(i, 1);  // 300 buckets: 4800 bytes of values
  sample::NativeSample n;
  n.count = 300;
  n.sum = 1;
  n.positive = pos;
  std::vector<std::byte> buf(16384);
  sample::BatchWriter w(buf, 1, 0);
  ASSERT_TRUE(w.append_native("big", {}, n, sample::Family{sample::FamilyType::kHistogram, 0, {}, {}}));
  h.engine().add_batch(std::span<const std::byte>(buf.data(), w.finish()), h.now_ns);
  h.flush();
  EXPECT_EQ(h.stats().dropped_native_too_large, 1u);
  EXPECT_FALSE(h.state.has("big{}"));
  EXPECT_EQ(h.stats().decode_errors, 0u);
  EXPECT_EQ(h.state.decode_errors, 0);
}

TEST(Engine, CounterStateStaysUnderTwoHundredBytesPerSeries) {
  EngineOptions o;
  o.max_series = 200'000;
  o.max_series_per_metric = 200'000;
  Harness h(o);
  testing::BatchBuilder* b = nullptr;
  (void)b;
  for (int i = 0; i < 100'000; ++i) {
    h.send(Kind::kCounter, "requests_total", 1, {{"instance", "host-" + std::to_string(i)}, {"code", "200"}});
  }
  const EngineStats s = h.stats();
  EXPECT_EQ(s.series_live, 100'000u);
  EXPECT_LE(s.state_bytes / s.series_live, 200u) << s.state_bytes / s.series_live;
}

TEST(Engine, RejectsBadOptions) {
  EngineOptions o;
  o.shards = 0;
  EXPECT_FALSE(AggregatorEngine::create(o));
  EngineOptions bad_rule;
  bad_rule.mapping.rules = {rule("a.b*", "x")};
  EXPECT_FALSE(AggregatorEngine::create(bad_rule));
}

}  // namespace
}  // namespace ringpipe::processors
