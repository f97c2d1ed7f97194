// The project's mapping-file loader feeding the engine: a statsd_exporter
// mapping file, used unchanged, gives statsd_exporter's results.

#include "ringpipe/processors/config_adapter.hpp"

#include <gtest/gtest.h>

#include "engine_harness.hpp"
#include "parse_pipeline.hpp"
#include "ringpipe/config/mapping.hpp"

namespace ringpipe::processors {
namespace {

using sample::Kind;

constexpr std::string_view kMapping = R"(
defaults:
  observer_type: histogram
  histogram_options:
    buckets: [0.1, 1, 10]
  ttl: 0
mappings:
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
- match: "test\\.(\\w+)\\.(\\w+)\\.counter"
  match_type: regex
  name: "${2}_total"
  labels:
    provider: "$1"
- match: "db.query.*"
  observer_type: summary
  name: "db_query_seconds"
  labels:
    table: "$1"
  summary_options:
    quantiles:
      - quantile: 0.99
        error: 0.001
    max_age: 30s
    age_buckets: 3
  ttl: 10m
- match: "debug.*"
  action: drop
  name: "dropped"
)";

TEST(ConfigAdapter, StatsdExporterMappingFileDrivesTheEngine) {
  auto file = config::parse_mapping_yaml(kMapping, "mapping.yml");
  ASSERT_TRUE(file);
  EngineOptions o;
  o.mapping = mapping_from_config(*file);
  ASSERT_EQ(o.mapping.rules.size(), 5u);
  testing::Harness h(o);
  h.send(Kind::kCounter, "test.dispatcher.FooProcessor.send.success", 1);
  h.send(Kind::kCounter, "web.signup.github.ok", 2);
  h.send(Kind::kCounter, "test.aws.s3.counter", 3);
  h.send(Kind::kTimer, "db.query.users", 0.5);
  h.send(Kind::kTimer, "http.latency", 0.5);
  h.send(Kind::kCounter, "debug.noise", 1);
  h.flush();
  EXPECT_EQ(
      h.state.value("dispatcher_events_total{action=send,job=test_dispatcher,outcome=success,processor=FooProcessor}"),
      1);
  EXPECT_EQ(h.state.value("signup_events_total{job=web_server,outcome=ok,provider=github}"), 2);
  EXPECT_EQ(h.state.value("s3_total{provider=aws}"), 3);
  const auto& summary = h.state.series["db_query_seconds{table=users}"];
  EXPECT_EQ(summary.type, MetricType::kSummary);
  ASSERT_EQ(summary.values.size(), 4u);  // count, sum, one quantile
  EXPECT_EQ(summary.values[2], 0.99);
  const auto& hist = h.state.series["http_latency{}"];
  EXPECT_EQ(hist.type, MetricType::kHistogram);
  EXPECT_EQ(hist.values.size(), 2u + 2 * 4);  // three buckets and +Inf
  EXPECT_EQ(h.stats().dropped_by_rule, 1u);
}

// statsd_exporter's native_histogram_bucket_factor / _max_buckets, from a
// mapping's histogram_options or the defaults', reach the engine (they were
// parsed and ignored before).
TEST(ConfigAdapter, NativeHistogramOptionsOfTheMappingFileReachTheEngine) {
  auto file = config::parse_mapping_yaml(R"(
defaults:
  observer_type: histogram
  histogram_options:
    buckets: [1]
    native_histogram_bucket_factor: 1.1
mappings:
- match: "coarse.*"
  name: "coarse_seconds"
  histogram_options:
    native_histogram_bucket_factor: 4
    native_histogram_max_buckets: 10
- match: "plain.*"
  name: "plain_seconds"
)",
                                         "mapping.yml");
  ASSERT_TRUE(file);
  EngineOptions o;
  o.mapping = mapping_from_config(*file);
  EXPECT_EQ(o.mapping.rules.at(0).native_bucket_factor, 4);
  EXPECT_EQ(o.mapping.rules.at(0).native_max_buckets, 10u);
  testing::Harness h(o);
  h.send(Kind::kTimer, "coarse.a", 3);
  h.send(Kind::kTimer, "plain.a", 3);
  h.send(Kind::kTimer, "unmapped", 3);
  h.flush();
  EXPECT_NE(h.state.series["coarse_seconds{}"].flags & metric::kEntryNative, 0);
  EXPECT_EQ(h.state.series["coarse_seconds{}"].schema, -1);  // 2^(2^1) = 4
  // The defaults' factor 1.1 (schema 3) for the rule that sets none, and for
  // unmapped names.
  EXPECT_EQ(h.state.series["plain_seconds{}"].schema, 3);
  EXPECT_EQ(h.state.series["plain_seconds{}"].positive, (std::vector<std::pair<std::int32_t, double>>{{13, 1}}));
  EXPECT_EQ(h.state.series["unmapped{}"].schema, 3);
  EXPECT_NE(h.state.series["unmapped{}"].flags & metric::kEntryNative, 0);
}

TEST(ConfigAdapter, ProcessorOptionsUseRingPathsAndReaderName) {
  const auto p = ringpipe::testing::parse_pipeline(R"(pipeline: t
rings:
  raw: {size: 1MiB, lanes: 2}
  metrics: {size: 64KiB, lanes: 2}
sources:
  s: {type: statsd, listen: udp://127.0.0.1:0, output: raw}
processors:
  agg: {type: aggregate, input: raw, output: metrics, shards: 4, flush_interval: 200ms}
exporters:
  prom: {type: prometheus, input: metrics, listen: 127.0.0.1:0}
)");
  const auto o = processor_options(p, p.processors.at(0));
  EXPECT_EQ(o.inputs, std::vector<std::string>{p.ring_path("raw")});
  EXPECT_EQ(o.output, p.ring_path("metrics"));
  EXPECT_EQ(o.reader_name, "agg");
  EXPECT_EQ(o.engine.shards, 4u);
  EXPECT_EQ(o.flush_interval, std::chrono::milliseconds(200));
  EXPECT_EQ(o.state_dir, p.ring_path("agg.state"));
  // No larger than the output ring takes: a quarter of its 32 KiB lanes.
  EXPECT_EQ(o.engine.max_record_bytes, 8u * 1024);
}

TEST(ConfigAdapter, ARelayProcessorRunsAsARelayWithoutState) {
  const auto p = ringpipe::testing::parse_pipeline(R"(pipeline: t
rings:
  raw: {size: 1MiB, lanes: 2}
  metrics: {size: 64KiB, lanes: 2}
sources:
  s: {type: graphite, listen: tcp://127.0.0.1:0, output: raw}
processors:
  fwd: {type: relay, input: raw, output: metrics, max_metrics: 5}
exporters:
  rw: {type: remote_write, input: metrics, url: http://127.0.0.1:9/api/v1/write}
)");
  const auto o = processor_options(p, p.processors.at(0));
  EXPECT_TRUE(o.relay);
  EXPECT_TRUE(o.state_dir.empty());
  EXPECT_EQ(o.reader_name, "fwd");
  EXPECT_EQ(o.engine.max_families, 5u);
  const auto agg = processor_options(p, [&] {
    auto c = p.processors.at(0);
    c.type = config::ProcessorType::kAggregate;
    return c;
  }());
  EXPECT_FALSE(agg.relay);
}

TEST(ConfigAdapter, ResourceLimitsReachTheComponentsAndTheirDefaultsAgree) {
  // Without the keys the processor gets its own defaults: the config's must be the same numbers.
  const config::ProcessorConfig processor;
  EXPECT_EQ(processor.max_name_length, EngineOptions{}.max_name_bytes);
  EXPECT_EQ(processor.quarantine_after_crashes, ProcessorOptions{}.quarantine_after_crashes);

  const auto p = ringpipe::testing::parse_pipeline(R"(pipeline: t
rings:
  raw: {size: 1MiB, lanes: 4}
  metrics: {size: 1MiB}
sources:
  s: {type: statsd, listen: tcp://127.0.0.1:0, output: raw}
processors:
  agg: {type: aggregate, input: raw, output: metrics, max_name_length: 512, quarantine_after_crashes: 9}
exporters:
  prom: {type: prometheus, input: metrics, listen: 127.0.0.1:0}
)");
  const auto o = processor_options(p, p.processors.at(0));
  EXPECT_EQ(o.engine.max_name_bytes, 512u);
  EXPECT_EQ(o.quarantine_after_crashes, 9u);
}

TEST(ConfigAdapter, CacheTypeRandomReachesTheMatcher) {
  auto file = config::parse_mapping_yaml(kMapping, "mapping.yml");
  ASSERT_TRUE(file);
  EXPECT_FALSE(mapping_from_config(*file).cache_random);
  EXPECT_TRUE(mapping_from_config(*file, config::MappingCacheOptions{100, config::CacheType::kRandom}).cache_random);
}

TEST(ConfigAdapter, SampleRateIsReplayedUnlessTheProcessorAsksForWeights) {
  const auto text = [](const std::string& extra) {
    return "pipeline: t\nrings:\n  raw: {size: 1MiB}\n  metrics: {size: 1MiB}\nsources:\n"
           "  s: {type: statsd, listen: udp://127.0.0.1:0, output: raw}\nprocessors:\n"
           "  agg: {type: aggregate, input: raw, output: metrics" +
           extra + "}\nexporters:\n  prom: {type: prometheus, input: metrics, listen: 127.0.0.1:0}\n";
  };
  const auto p = ringpipe::testing::parse_pipeline(text(""));
  EXPECT_FALSE(processor_options(p, p.processors.at(0)).engine.weighted_sample_rate);
  const auto w = ringpipe::testing::parse_pipeline(text(", sample_rate: weighted"));
  EXPECT_TRUE(processor_options(w, w.processors.at(0)).engine.weighted_sample_rate);
  const auto bad = config::parse_pipeline(text(", sample_rate: sometimes"), "p.yaml");
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message().find("sample_rate: found \"sometimes\", expected replay or weighted"),
            std::string::npos)
      << bad.error().message();
}

}  // namespace
}  // namespace ringpipe::processors
