#include "ringpipe/config/pipeline.hpp"

#include <algorithm>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "config_test_util.hpp"
#include "test_support.hpp"

namespace ringpipe::config {
namespace {

using std::chrono::milliseconds;
using testing::has_message;
using testing::messages;

EnvLookup env_of(std::map<std::string, std::string> vars) {
  return [vars = std::move(vars)](std::string_view name) -> std::optional<std::string> {
    const auto it = vars.find(std::string(name));
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

ConfigResult<PipelineConfig> parse(std::string_view yaml, std::map<std::string, std::string> vars = {}) {
  return parse_pipeline(yaml, "p.yaml", env_of(std::move(vars)));
}

// Rings, a source, a processor and an exporter that validate; tests append or replace parts.
constexpr std::string_view kValid = R"(rings:
  raw: {size: 64MiB}
  metrics: {size: 16MiB}
sources:
  statsd: {type: statsd, listen: [udp://0.0.0.0:9125, tcp://0.0.0.0:9125], output: raw}
processors:
  aggregate: {type: aggregate, input: raw, output: metrics}
exporters:
  prometheus: {type: prometheus, input: metrics, listen: 0.0.0.0:9102}
)";

TEST(PipelineConfig, LoadsTheEdgeExampleWithItsMappingFile) {
  const auto r = parse_pipeline(
      [] {
        std::ifstream in(std::string(RINGPIPE_CONFIG_EXAMPLES_DIR) + "/edge.yaml");
        return std::string(std::istreambuf_iterator<char>(in), {});
      }(),
      std::string(RINGPIPE_CONFIG_EXAMPLES_DIR) + "/edge.yaml", env_of({}));
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->pipeline, "edge");
  EXPECT_EQ(r->run_dir, "/dev/shm/ringpipe");
  ASSERT_EQ(r->rings.size(), 2u);
  EXPECT_EQ(r->rings[0].name, "raw");
  EXPECT_EQ(r->rings[0].size_bytes, 64u << 20);
  EXPECT_EQ(r->rings[0].overflow, OverflowPolicy::kBlock);
  EXPECT_EQ(r->rings[0].lane_capacity_bytes(), 8u << 20);
  EXPECT_EQ(r->ring_path("raw"), "/dev/shm/ringpipe/edge/raw");

  ASSERT_EQ(r->sources.size(), 1u);
  const auto& s = r->sources[0];
  ASSERT_EQ(s.listen.size(), 3u);
  EXPECT_EQ(s.listen[0].to_string(), "udp://0.0.0.0:9125");
  EXPECT_EQ(s.listen[1].to_string(), "tcp://0.0.0.0:9125");
  EXPECT_EQ(s.listen[2].transport, Transport::kUnix);
  EXPECT_EQ(s.listen[2].path, "/run/ringpipe/statsd.sock");
  EXPECT_EQ(s.read_buffer_bytes, 8u << 20);
  EXPECT_EQ(s.udp_sockets, 4u);
  EXPECT_EQ(s.max_line_length, 64u << 10);
  EXPECT_EQ(s.idle_timeout, milliseconds{300'000});
  EXPECT_EQ(s.socket_mode, 0660u);

  ASSERT_EQ(r->processors.size(), 1u);
  const auto& p = r->processors[0];
  EXPECT_EQ(p.input, "raw");
  EXPECT_EQ(p.output, "metrics");
  EXPECT_EQ(p.reader, "aggregate");
  EXPECT_EQ(p.shards, 2u);
  EXPECT_EQ(p.mapping_config, std::string(RINGPIPE_CONFIG_EXAMPLES_DIR) + "/mapping.yml");
  ASSERT_TRUE(p.mapping.has_value());
  EXPECT_EQ(p.mapping->mappings.size(), 6u);
  EXPECT_EQ(p.mapping->defaults.observer_type, ObserverType::kHistogram);

  ASSERT_EQ(r->exporters.size(), 2u);
  EXPECT_EQ(r->exporters[0].type, ExporterType::kPrometheus);
  EXPECT_EQ(r->exporters[0].prometheus.listen.to_string(), "tcp://0.0.0.0:9102");
  EXPECT_EQ(r->exporters[0].prometheus.path, "/metrics");
  EXPECT_EQ(r->exporters[1].type, ExporterType::kRemoteWrite);
  EXPECT_EQ(r->exporters[1].remote_write.url, "http://127.0.0.1:9090/api/v1/write");
}

TEST(PipelineConfig, LoadsEveryExampleFile) {
  ::setenv("SCRAPE_PASSWORD", "scrape-secret", 1);
  ::setenv("REMOTE_WRITE_TOKEN", "token", 1);
  for (const char* name : {"edge.yaml", "minimal.yaml", "secure.yaml", "sensors.yaml", "remote_write_relay.yaml"}) {
    const auto r = load_pipeline(std::string(RINGPIPE_CONFIG_EXAMPLES_DIR) + "/" + name);
    EXPECT_TRUE(r) << name << ": " << (r ? "" : r.error().message());
  }
  // The relay example keeps timestamps, as it says: its processor is a relay.
  const auto relay = load_pipeline(std::string(RINGPIPE_CONFIG_EXAMPLES_DIR) + "/remote_write_relay.yaml");
  ASSERT_TRUE(relay);
  ASSERT_EQ(relay->processors.size(), 1u);
  EXPECT_EQ(relay->processors[0].type, ProcessorType::kRelay);
  ASSERT_EQ(relay->exporters.size(), 2u);
  EXPECT_EQ(relay->exporters[0].type, ExporterType::kRemoteWrite);
  const auto secure = load_pipeline(std::string(RINGPIPE_CONFIG_EXAMPLES_DIR) + "/secure.yaml");
  ASSERT_TRUE(secure);
  const auto& ring = secure->rings[0];
  EXPECT_EQ(ring.overflow, OverflowPolicy::kDrop);
  EXPECT_EQ(ring.lanes, 4u);
  EXPECT_EQ(ring.max_readers, 4u);
  EXPECT_EQ(ring.max_record_bytes, 64u << 10);
  EXPECT_EQ(ring.reader_timeout, milliseconds{5000});
  EXPECT_EQ(secure->rings[1].overflow, OverflowPolicy::kOverwrite);
  EXPECT_FALSE(secure->sources[0].tags.influxdb);
  EXPECT_TRUE(secure->sources[0].tags.dogstatsd);
  const auto& p = secure->processors[0];
  EXPECT_EQ(p.flush_interval, milliseconds{500});
  EXPECT_EQ(p.ttl, milliseconds{15 * 60 * 1000});
  EXPECT_EQ(p.observer_type, ObserverType::kHistogram);
  EXPECT_EQ(p.histogram.buckets, (std::vector<double>{0.001, 0.01, 0.1, 1, 10}));
  EXPECT_EQ(p.mapping_cache, (MappingCacheOptions{5000, CacheType::kRandom}));
  const auto& prom = secure->exporters[0].prometheus;
  EXPECT_EQ(prom.listen.host, "0.0.0.0");
  EXPECT_EQ(prom.listen.port, 9443);
  ASSERT_TRUE(prom.tls.has_value());
  EXPECT_EQ(prom.tls->key_file, "/etc/ringpipe/tls.key");
  ASSERT_EQ(prom.basic_auth_users.size(), 1u);
  EXPECT_EQ(prom.basic_auth_users[0].password, "scrape-secret");
  const auto& rw = secure->exporters[1].remote_write;
  EXPECT_EQ(rw.batch_size, 5000u);
  EXPECT_EQ(rw.max_in_flight, 8u);
  EXPECT_EQ(rw.retry_min_backoff, milliseconds{100});
  EXPECT_EQ(rw.retry_max_backoff, milliseconds{30'000});
  EXPECT_EQ(rw.headers.at("X-Scope-OrgID"), "edge");
  EXPECT_EQ(rw.bearer_token, "token");
  ASSERT_TRUE(rw.tls.has_value());
  EXPECT_EQ(rw.tls->ca_file, "/etc/ringpipe/ca.crt");
}

// The built-in pipeline listens as statsd_exporter's ":9125" does (both
// families), and fits Docker's default 64 MiB of /dev/shm with room for the
// processor's state and the stats segments.
TEST(PipelineConfig, TheBuiltInPipelineListensOnBothFamiliesAndItsRingsLeaveRoomIn64MiB) {
  const PipelineConfig p = default_pipeline();
  ASSERT_EQ(p.sources.size(), 1u);
  ASSERT_EQ(p.sources[0].listen.size(), 2u);
  for (const ListenAddress& a : p.sources[0].listen) {
    EXPECT_EQ(a.host, "") << a.to_string();
    EXPECT_EQ(a.port, kStatsdDefaultPort);
  }
  std::uint64_t rings = 0;
  for (const RingConfig& r : p.rings) rings += r.size_bytes;
  EXPECT_LE(rings, std::uint64_t{24} << 20);
}

TEST(PipelineConfig, AFlagConfiguredInstanceIsNamedAfterItsStatsdPort) {
  auto named = [](std::vector<std::string_view> args) {
    auto p = pipeline_from_statsd_exporter_flags(args);
    return p ? p->pipeline : "error: " + p.error().message();
  };
  EXPECT_EQ(named({}), "default");
  EXPECT_EQ(named({"--statsd.listen-udp=:9125"}), "default");
  EXPECT_EQ(named({"--statsd.listen-udp=127.0.0.1:9126"}), "statsd-9126");
  EXPECT_EQ(named({"--statsd.listen-udp=", "--statsd.listen-tcp=:9200"}), "statsd-9200");
  EXPECT_EQ(named({"--statsd.listen-udp=", "--statsd.listen-tcp=", "--statsd.listen-unixgram=/run/app/statsd.sock"}),
            "statsd-statsd.sock");
  EXPECT_TRUE(valid_pipeline_name("statsd-9126"));
  EXPECT_FALSE(valid_pipeline_name("../x"));
}

TEST(PipelineConfig, FillsDocumentedDefaults) {
  const auto r = parse(kValid);
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->pipeline, "default");
  EXPECT_EQ(r->run_dir, kDefaultRunDir);
  const auto& ring = r->rings[0];
  EXPECT_EQ(ring.overflow, OverflowPolicy::kBlock);
  EXPECT_EQ(ring.lanes, 8u);
  EXPECT_EQ(ring.max_readers, 16u);
  EXPECT_EQ(ring.max_record_bytes, 0u);
  EXPECT_EQ(ring.reader_timeout, milliseconds{2000});
  const auto& s = r->sources[0];
  EXPECT_EQ(s.tags, StatsdTagFlavors{});
  EXPECT_EQ(s.udp_sockets, 1u);
  EXPECT_EQ(s.read_buffer_bytes, 32u << 20);  // not the OS default: bursts would be dropped
  EXPECT_EQ(s.write_timeout, milliseconds{1000});
  const auto& p = r->processors[0];
  EXPECT_EQ(p.flush_interval, milliseconds{1000});
  EXPECT_EQ(p.shards, 1u);
  EXPECT_FALSE(p.mapping.has_value());
  EXPECT_EQ(p.summary.quantiles.size(), 3u);
  EXPECT_EQ(p.summary.max_age, std::chrono::minutes{10});
  EXPECT_EQ(p.histogram.buckets.size(), 11u);
  EXPECT_EQ(p.max_series, 1'000'000u);
  EXPECT_EQ(p.max_series_per_metric, 100'000u);
  EXPECT_EQ(p.max_metrics, 1'000'000u);
  EXPECT_TRUE(p.state);  // crash-safe totals unless turned off
  EXPECT_EQ(p.state_dir, "");
  EXPECT_EQ(r->exporters[0].prometheus.path, "/metrics");
  EXPECT_EQ(r->exporters[0].reader, "prometheus");
  const auto& rw = RemoteWriteConfig{};
  EXPECT_EQ(rw.batch_size, 2000u);
  EXPECT_EQ(rw.timeout, milliseconds{30'000});
}

TEST(PipelineConfig, ProcessorStateCanBeTurnedOffOrPlacedRelativeToTheFile) {
  std::string text(kValid);
  const std::string plain = "  aggregate: {type: aggregate, input: raw, output: metrics}";
  auto with = [&](const std::string& extra) {
    std::string t = text;
    t.replace(t.find(plain), plain.size(),
              "  aggregate: {type: aggregate, input: raw, output: metrics, " + extra + "}");
    return parse_pipeline(t, "/etc/ringpipe/p.yaml", env_of({}));
  };
  auto off = with("state: false");
  ASSERT_TRUE(off) << off.error().message();
  EXPECT_FALSE(off->processors[0].state);
  auto rel = with("state_dir: state/agg");
  ASSERT_TRUE(rel) << rel.error().message();
  EXPECT_EQ(rel->processors[0].state_dir, "/etc/ringpipe/state/agg");
  auto abs = with("state_dir: /var/lib/ringpipe/agg");
  ASSERT_TRUE(abs);
  EXPECT_EQ(abs->processors[0].state_dir, "/var/lib/ringpipe/agg");
  // The processor's gate reader takes a slot too: one slot is too few with state.
  std::string one_slot = text;
  one_slot.replace(one_slot.find("raw: {size: 64MiB}"), 18, "raw: {size: 64MiB, max_readers: 1}");
  auto tight = parse_pipeline(one_slot, "/etc/ringpipe/p.yaml", env_of({}));
  ASSERT_FALSE(tight);
  EXPECT_NE(tight.error().message().find("ring \"raw\": found 1 readers taking 2 reader slots, expected at most "
                                         "max_readers (1)"),
            std::string::npos)
      << tight.error().message();
  one_slot.replace(one_slot.find(plain), plain.size(),
                   "  aggregate: {type: aggregate, input: raw, output: metrics, state: false}");
  EXPECT_TRUE(parse_pipeline(one_slot, "/etc/ringpipe/p.yaml", env_of({})));
  // Its gate reader <reader>.c must fit the 39-byte reader name limit.
  std::string long_name = text;
  const std::string name38(38, 'p');
  long_name.replace(long_name.find(plain), plain.size(),
                    "  " + name38 + ": {type: aggregate, input: raw, output: metrics}");
  auto too_long = parse_pipeline(long_name, "/etc/ringpipe/p.yaml", env_of({}));
  ASSERT_FALSE(too_long);
  EXPECT_NE(too_long.error().message().find("expected at most 37 bytes with state: true"), std::string::npos)
      << too_long.error().message();
  long_name.replace(long_name.find(name38 + ": {type: aggregate, input: raw, output: metrics}"), name38.size() + 48,
                    name38 + ": {type: aggregate, input: raw, output: metrics, state: false}");
  EXPECT_TRUE(parse_pipeline(long_name, "/etc/ringpipe/p.yaml", env_of({}))) << long_name;
  auto bad = with("state: maybe");
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message().find("state"), std::string::npos) << bad.error().message();
}

TEST(PipelineConfig, ARelayProcessorTakesNoKeyOfAggregationAndNoState) {
  const auto ok = parse(R"(rings:
  raw: {}
  metrics: {}
sources:
  g: {type: graphite, listen: tcp://127.0.0.1:2003, output: raw}
processors:
  relay: {type: relay, input: raw, output: metrics, max_metrics: 10, quarantine_after_crashes: 2}
exporters:
  rw: {type: remote_write, input: metrics, url: http://127.0.0.1:9090/api/v1/write}
)");
  ASSERT_TRUE(ok) << ok.error().message();
  ASSERT_EQ(ok->processors.size(), 1u);
  EXPECT_EQ(ok->processors[0].type, ProcessorType::kRelay);
  EXPECT_EQ(processor_type_name(ok->processors[0].type), "relay");
  EXPECT_FALSE(ok->processors[0].state) << "a relay keeps no series, so no state file";
  EXPECT_EQ(ok->processors[0].max_metrics, 10u);

  const auto bad = parse(R"(rings:
  raw: {}
  metrics: {}
sources:
  g: {type: graphite, listen: tcp://127.0.0.1:2003, output: raw}
processors:
  relay: {type: relay, input: raw, output: metrics, flush_interval: 5s, state: true, buckets: [1]}
exporters:
  rw: {type: remote_write, input: metrics, url: http://127.0.0.1:9090/api/v1/write}
)");
  ASSERT_FALSE(bad);
  EXPECT_EQ(messages(bad),
            (std::vector<std::string>{
                "p.yaml:7:69: processor \"relay\" flush_interval: found \"5s\", not used by type: relay (it "
                "forwards each sample and keeps no series)",
                "p.yaml:7:80: processor \"relay\" state: found \"true\", not used by type: relay (it forwards "
                "each sample and keeps no series)",
                "p.yaml:7:95: processor \"relay\" buckets: found a list, not used by type: relay (it forwards each "
                "sample and keeps no series)",
            }));
  const auto other = parse(R"(rings:
  raw: {}
  metrics: {}
sources:
  g: {type: graphite, listen: tcp://127.0.0.1:2003, output: raw}
processors:
  p: {type: passthrough, input: raw, output: metrics}
exporters:
  rw: {type: remote_write, input: metrics, url: http://127.0.0.1:9090/api/v1/write}
)");
  EXPECT_TRUE(has_message(other, "expected aggregate or relay")) << messages(other).size();
}

TEST(PipelineConfig, ReportsEveryUnknownKeyWithPosition) {
  const auto r = parse(R"(pipelin: edge
rings:
  raw: {size: 64MiB, overflw: drop}
  metrics: {size: 16MiB}
sources:
  statsd: {type: statsd, listen: [udp://0.0.0.0:9125], output: raw, tag: {}}
processors:
  aggregate: {type: aggregate, input: raw, output: metrics, flush: 1s}
exporters:
  prometheus: {type: prometheus, input: metrics, listen: 0.0.0.0:9102, pth: /m}
)");
  ASSERT_FALSE(r);
  EXPECT_EQ(messages(r),
            (std::vector<std::string>{
                "p.yaml:1:1: top level: found unknown key \"pipelin\", expected one of: pipeline, run_dir, rings, "
                "sources, processors, exporters (did you mean \"pipeline\"?)",
                "p.yaml:3:22: ring \"raw\": found unknown key \"overflw\", expected one of: size, overflow, lanes, "
                "max_readers, max_record, reader_timeout (did you mean \"overflow\"?)",
                "p.yaml:6:69: source \"statsd\": found unknown key \"tag\", expected one of: type, listen, output, "
                "tags, read_buffer, udp_sockets, max_line_length, max_connections, max_buffered_size, idle_timeout, "
                "socket_mode, write_timeout, relabel_configs, value_field, name_field, name, timestamp_field, "
                "timestamp_precision, kind, "
                "max_labels, broker, username, password, client_id, topics, qos, payload, topic_template, ca_file, "
                "cert_file, key_file, max_message_size, path, max_body_size, targets, interval, timeout, honor_labels, "
                "job, max_series_per_request, max_labels_per_request, max_samples_per_request, max_inflight_body_size "
                "(did you mean \"tags\"?)",
                "p.yaml:8:61: processor \"aggregate\": found unknown key \"flush\", expected one of: type, input, "
                "output, reader, mapping_config, cache_size, cache_type, shards, flush_interval, ttl, max_series, "
                "max_series_per_metric, observer_type, quantiles, buckets, summary_max_age, summary_age_buckets, "
                "summary_buf_cap, native_histogram_bucket_factor, native_histogram_max_buckets, state, state_dir, "
                "max_metrics, max_name_length, quarantine_after_crashes, sample_rate",
                "p.yaml:10:72: exporter \"prometheus\": found unknown key \"pth\", expected one of: type, input, "
                "reader, listen, path, tls, basic_auth_users, gating, max_connections, header_timeout, "
                "quarantine_after_crashes, relay_ttl, metric_relabel_configs (did you mean \"path\"?)",
            }));
}

TEST(PipelineConfig, ReadsTheFieldMappingOfAJsonSource) {
  const auto r = parse(R"(rings:
  raw: {}
sources:
  j: {type: json, listen: [tcp://127.0.0.1:9200, unix:///tmp/j.sock, udp://127.0.0.1:9200], output: raw,
      value_field: reading, name: room_temperature, timestamp_field: at, timestamp_precision: ms, kind: counter,
      max_labels: 8, max_line_length: 1MiB}
  d: {type: json, listen: tcp://127.0.0.1:9201, output: raw}
exporters:
  e: {type: prometheus, input: raw}
)");
  ASSERT_TRUE(r) << r.error().message();
  ASSERT_EQ(r->sources.size(), 2u);
  const SourceConfig& j = r->sources[0];
  EXPECT_EQ(j.type, SourceType::kJson);
  EXPECT_EQ(source_type_name(j.type), "json");
  EXPECT_EQ(j.listen.size(), 3u);
  EXPECT_EQ(j.json.value_field, "reading");
  EXPECT_EQ(j.json.name, "room_temperature");
  EXPECT_EQ(j.json.timestamp_field, "at");
  EXPECT_EQ(j.json.timestamp_precision, TimestampPrecision::kMilliseconds);
  EXPECT_TRUE(j.json.counter);
  EXPECT_EQ(j.json.max_labels, 8u);
  EXPECT_EQ(j.max_line_length, 1u << 20);
  const SourceConfig& d = r->sources[1];
  EXPECT_EQ(d.json.value_field, "value");
  EXPECT_EQ(d.json.name_field, "name");
  EXPECT_EQ(d.json.name, "");
  EXPECT_EQ(d.json.timestamp_field, "");
  EXPECT_EQ(d.json.timestamp_precision, TimestampPrecision::kSeconds);
  EXPECT_FALSE(d.json.counter);
  EXPECT_EQ(d.json.max_labels, 64u);
}

TEST(PipelineConfig, ReadsAnMqttSource) {
  const auto r = parse(R"(rings:
  raw: {}
sources:
  m: {type: mqtt, output: raw, broker: "mqtt://127.0.0.1", topics: sensors/#, topic_template: "sensors/+site/+device/+name"}
  t: {type: mqtt, output: raw, broker: "mqtts://[::1]:8884", topics: [a/#, b/+/c], qos: 1, payload: influx, ca_file: ca.pem,
      cert_file: c.pem, key_file: k.pem, username: u, password: "${PW}", client_id: x, max_message_size: 1KiB}
exporters:
  e: {type: prometheus, input: raw}
)",
                       {{"PW", "secret"}});
  ASSERT_TRUE(r) << r.error().message();
  const MqttSourceConfig& m = r->sources.at(0).mqtt;
  EXPECT_EQ(r->sources[0].type, SourceType::kMqtt);
  EXPECT_EQ(source_type_name(SourceType::kMqtt), "mqtt");
  EXPECT_TRUE(r->sources[0].listen.empty());
  EXPECT_EQ(m.host, "127.0.0.1");
  EXPECT_EQ(m.port, 1883);
  EXPECT_FALSE(m.tls);
  EXPECT_EQ(m.topics, std::vector<std::string>{"sensors/#"});
  EXPECT_EQ(m.qos, 0u);
  EXPECT_EQ(m.payload, MqttPayloadFormat::kValue);
  EXPECT_EQ(m.topic_template, "sensors/+site/+device/+name");
  EXPECT_EQ(m.max_message_bytes, 65536u);
  const MqttSourceConfig& t = r->sources.at(1).mqtt;
  EXPECT_EQ(t.host, "::1");
  EXPECT_EQ(t.port, 8884);
  EXPECT_TRUE(t.tls);
  EXPECT_EQ(t.topics, (std::vector<std::string>{"a/#", "b/+/c"}));
  EXPECT_EQ(t.qos, 1u);
  EXPECT_EQ(t.payload, MqttPayloadFormat::kInflux);
  EXPECT_EQ(t.ca_file, "ca.pem");
  EXPECT_EQ(t.cert_file, "c.pem");
  EXPECT_EQ(t.key_file, "k.pem");
  EXPECT_EQ(t.username, "u");
  EXPECT_EQ(t.password, "secret");
  EXPECT_EQ(t.client_id, "x");
  EXPECT_EQ(t.max_message_bytes, 1024u);
}

TEST(PipelineConfig, ReportsMqttProblemsWithPositions) {
  const auto r = parse(R"(rings:
  raw: {}
sources:
  m: {type: mqtt, broker: "tcp://x:1", listen: udp://:1, topics: ["a/b#", "x/#/y"], qos: 2, payload: xml,
      topic_template: "a/#/b", ca_file: ca.pem}
  n: {type: mqtt, topics: [], payload: value}
  s: {type: statsd, listen: udp://:9, output: raw, broker: "mqtt://h:1"}
exporters:
  e: {type: prometheus, input: raw}
)");
  ASSERT_FALSE(r);
  const std::vector<std::string> got = messages(r);
  auto has = [&](std::string_view text) { return has_message(got, text); };
  EXPECT_TRUE(has("source \"m\" listen: found listen addresses on type: mqtt, expected broker"));
  EXPECT_TRUE(has("source \"m\" broker: found \"tcp://x:1\", expected mqtt://host:port or mqtts://host:port"));
  EXPECT_TRUE(has("source \"m\" topics: found \"a/b#\", expected an MQTT topic filter"));
  EXPECT_TRUE(has("source \"m\" topics: found \"x/#/y\", expected an MQTT topic filter"));
  EXPECT_TRUE(has("source \"m\" qos: found \"2\", expected an integer from 0 to 1"));
  EXPECT_TRUE(has("source \"m\" payload: found \"xml\", expected influx, json or value"));
  EXPECT_TRUE(has("source \"m\" topic_template: found \"a/#/b\" with '#' before the last level"));
  EXPECT_TRUE(has("source \"m\" ca_file: found TLS files with broker \"tcp://x:1\", expected an mqtts:// broker"));
  EXPECT_TRUE(has("source \"n\": found no broker, expected broker: mqtt://host:port"));
  EXPECT_TRUE(has("source \"n\" topics: found an empty list, expected at least one topic filter"));
  EXPECT_TRUE(has("source \"n\": found payload: value without a metric name"));
  EXPECT_FALSE(has("source \"m\": found payload: value"));  // its payload is wrong already
  EXPECT_TRUE(has("source \"s\" broker: found an MQTT key on type: statsd, expected it only on type: mqtt"));
  for (const std::string& m : got) EXPECT_EQ(m.rfind("p.yaml:", 0), 0u) << m;  // every one positioned
}

// The MQTT source refuses at start a `payload: value` whose template has no
// level exactly "+name"; validation used to look for the text "/+name", so
// "+name2" and "+names" passed it and the source then exited 78.
TEST(PipelineConfig, PayloadValueNeedsALevelThatIsExactlyPlusName) {
  const auto r = parse(R"(rings:
  raw: {}
sources:
  a: {type: mqtt, output: raw, broker: "mqtt://h", topics: "#", topic_template: "sensors/+name2"}
  b: {type: mqtt, output: raw, broker: "mqtt://h", topics: "#", topic_template: "+names/x"}
  c: {type: mqtt, output: raw, broker: "mqtt://h", topics: "#", topic_template: "+site/+name"}
exporters:
  e: {type: prometheus, input: raw}
)");
  EXPECT_EQ(messages(r), (std::vector<std::string>{
                             "p.yaml:4:3: source \"a\": found payload: value without a metric name, expected name: "
                             "<metric> or a topic_template with a +name level",
                             "p.yaml:5:3: source \"b\": found payload: value without a metric name, expected name: "
                             "<metric> or a topic_template with a +name level"}));
}

// What libmosquitto's subscribe refuses (and MQTT 3.1.1 forbids or lets a
// broker drop the connection for) used to validate, and the source then
// logged a failed subscription at every connect.
TEST(PipelineConfig, TopicFiltersFollowMqttsRulesForText) {
  const std::string long_filter(65536, 'a');
  const auto r = parse(R"(rings:
  raw: {}
sources:
  m: {type: mqtt, output: raw, broker: "mqtt://h", name: t,
      topics: ["a\tb", "a/\0", "\x7F", "a/\u0085", "\uFFFF", )" +
                       long_filter + R"(, "caf\u00E9/+", "/+", "a//b"]}
exporters:
  e: {type: prometheus, input: raw}
)");
  const std::string text =
      ": found a topic filter with malformed UTF-8, a NUL or a control character, expected UTF-8 "
      "text (MQTT's rule for topics)";
  EXPECT_EQ(messages(r), (std::vector<std::string>{
                             "p.yaml:5:16: source \"m\" topics" + text,  // a tab
                             "p.yaml:5:24: source \"m\" topics" + text,  // U+0000
                             "p.yaml:5:32: source \"m\" topics" + text,  // U+007F
                             "p.yaml:5:40: source \"m\" topics" + text,  // U+0085
                             "p.yaml:5:52: source \"m\" topics" + text,  // a non-character
                             "p.yaml:5:62: source \"m\" topics: found a topic filter of 65536 bytes, expected at "
                             "most 65535 (MQTT's limit)"}));
}

TEST(PipelineConfig, ReadsARemoteWriteSource) {
  const auto r = parse(R"(rings:
  raw: {}
sources:
  d: {type: remote_write, listen: 127.0.0.1:9201, output: raw}
  w: {type: remote_write, listen: "tcp://127.0.0.1:9202", output: raw, path: /receive, max_body_size: 1MiB,
      max_labels: 8, max_connections: 16, idle_timeout: 30s}
exporters:
  e: {type: prometheus, input: raw}
)");
  ASSERT_TRUE(r) << r.error().message();
  const SourceConfig& d = r->sources.at(0);
  EXPECT_EQ(d.type, SourceType::kRemoteWrite);
  EXPECT_EQ(source_type_name(SourceType::kRemoteWrite), "remote_write");
  ASSERT_EQ(d.listen.size(), 1u);
  EXPECT_EQ(d.listen[0].transport, Transport::kTcp);
  EXPECT_EQ(d.listen[0].port, 9201);
  EXPECT_EQ(d.remote_write.path, "/api/v1/write");
  EXPECT_EQ(d.remote_write.max_body_bytes, 10u << 20);
  EXPECT_EQ(d.remote_write.max_labels, 64u);
  const SourceConfig& w = r->sources.at(1);
  EXPECT_EQ(w.listen.at(0).port, 9202);
  EXPECT_EQ(w.remote_write.path, "/receive");
  EXPECT_EQ(w.remote_write.max_body_bytes, 1u << 20);
  EXPECT_EQ(w.remote_write.max_labels, 8u);
  EXPECT_EQ(w.max_connections, 16u);
  EXPECT_EQ(w.idle_timeout, std::chrono::seconds(30));
}

TEST(PipelineConfig, ReadsTheResourceLimitsOfEveryComponent) {
  const auto r = parse(R"(rings:
  raw: {}
  metrics: {}
sources:
  s: {type: statsd, listen: tcp://127.0.0.1:9125, output: raw, max_line_length: 1KiB, max_buffered_size: 2MiB}
  w: {type: remote_write, listen: 127.0.0.1:9201, output: raw, max_body_size: 1MiB, max_series_per_request: 10,
      max_labels_per_request: 20, max_samples_per_request: 30, max_inflight_body_size: 4MiB}
processors:
  a: {type: aggregate, input: raw, output: metrics, max_name_length: 200, quarantine_after_crashes: 0}
exporters:
  e: {type: prometheus, input: metrics, listen: 127.0.0.1:9102, max_connections: 64, header_timeout: 2s,
      quarantine_after_crashes: 7, relay_ttl: 5m}
)");
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->sources.at(0).max_buffered_bytes, 2u << 20);
  const RemoteWriteSourceConfig& w = r->sources.at(1).remote_write;
  EXPECT_EQ(w.max_series_per_request, 10u);
  EXPECT_EQ(w.max_labels_per_request, 20u);
  EXPECT_EQ(w.max_samples_per_request, 30u);
  EXPECT_EQ(w.max_inflight_body_bytes, 4u << 20);
  EXPECT_EQ(r->processors.at(0).max_name_length, 200u);
  EXPECT_EQ(r->processors.at(0).quarantine_after_crashes, 0u);
  const PrometheusExporterConfig& e = r->exporters.at(0).prometheus;
  EXPECT_EQ(e.max_connections, 64u);
  EXPECT_EQ(e.header_timeout, std::chrono::seconds(2));
  EXPECT_EQ(e.quarantine_after_crashes, 7u);
  EXPECT_EQ(e.relay_ttl, std::chrono::minutes(5));

  // Defaults, as documented.
  const auto d = parse(kValid);
  ASSERT_TRUE(d) << d.error().message();
  EXPECT_EQ(d->sources.at(0).max_buffered_bytes, 64u << 20);
  EXPECT_EQ(d->processors.at(0).max_name_length, 16u * 1024);
  EXPECT_EQ(d->processors.at(0).quarantine_after_crashes, 3u);
  EXPECT_EQ(d->exporters.at(0).prometheus.max_connections, 1024u);
  EXPECT_EQ(d->exporters.at(0).prometheus.header_timeout, std::chrono::seconds(5));
  EXPECT_EQ(d->exporters.at(0).prometheus.relay_ttl, std::chrono::milliseconds(0)) << "never, as before";
}

TEST(PipelineConfig, RefusesResourceLimitsOutOfRangeWithPositions) {
  const auto r = parse(R"(rings:
  raw: {}
  metrics: {}
sources:
  s: {type: statsd, listen: tcp://127.0.0.1:9125, output: raw, max_line_length: 1MiB, max_buffered_size: 64KiB}
  w: {type: remote_write, listen: 127.0.0.1:9201, output: raw, max_series_per_request: 0,
      max_inflight_body_size: 1MiB}
  g: {type: graphite, listen: tcp://127.0.0.1:2003, output: raw, max_samples_per_request: 5}
processors:
  a: {type: aggregate, input: raw, output: metrics, max_name_length: 0}
exporters:
  e: {type: prometheus, input: metrics, listen: 127.0.0.1:9102, max_connections: 2, header_timeout: 10ms}
)");
  ASSERT_FALSE(r);
  EXPECT_EQ(
      messages(r),
      (std::vector<std::string>{
          "p.yaml:5:106: source \"s\" max_buffered_size: found \"64KiB\", expected from max_line_length "
          "(1048576 bytes) to 64GiB",
          "p.yaml:6:88: source \"w\" max_series_per_request: found \"0\", expected an integer from 1 to 100000000",
          "p.yaml:7:31: source \"w\" max_inflight_body_size: found \"1MiB\", expected from max_body_size "
          "(10485760 bytes) to 64GiB",
          "p.yaml:8:91: source \"g\" max_samples_per_request: found a remote_write key on type: graphite, "
          "expected it only on type: remote_write",
          "p.yaml:10:70: processor \"a\" max_name_length: found \"0\", expected from 1 byte to 16MiB",
          "p.yaml:12:82: exporter \"e\" max_connections: found \"2\", expected an integer from 4 to 16384",
          "p.yaml:12:101: exporter \"e\" header_timeout: found \"10ms\", expected at least 100ms",
      }));
}

TEST(PipelineConfig, ExporterGatingDefaultsToTrueForPrometheusAndFalseForRemoteWrite) {
  const auto r = parse(R"(rings:
  raw: {}
  metrics: {}
sources:
  s: {type: statsd, listen: udp://:9, output: raw}
processors:
  p: {type: aggregate, input: raw, output: metrics}
exporters:
  prom: {type: prometheus, input: metrics, listen: 127.0.0.1:9102}
  rw: {type: remote_write, input: metrics, url: http://127.0.0.1:9090/api/v1/write}
  prom2: {type: prometheus, input: metrics, listen: 127.0.0.1:9103, gating: false}
  rw2: {type: remote_write, input: metrics, url: http://127.0.0.1:9090/api/v1/write, gating: true}
)");
  ASSERT_TRUE(r) << r.error().message();
  ASSERT_EQ(r->exporters.size(), 4u);
  EXPECT_TRUE(r->exporters[0].gating);
  EXPECT_FALSE(r->exporters[1].gating);
  EXPECT_FALSE(r->exporters[2].gating);
  EXPECT_TRUE(r->exporters[3].gating);

  const auto bad = parse(R"(rings:
  raw: {}
  metrics: {}
sources:
  s: {type: statsd, listen: udp://:9, output: raw}
processors:
  p: {type: aggregate, input: raw, output: metrics}
exporters:
  rw: {type: remote_write, input: metrics, url: http://127.0.0.1:9090/api/v1/write, gating: sometimes}
)");
  const std::vector<std::string> got = messages(bad);
  EXPECT_TRUE(has_message(got, "exporter \"rw\" gating: found \"sometimes\", expected true or false"))
      << ::testing::PrintToString(got);
}

TEST(PipelineConfig, ReportsRemoteWriteProblemsWithPositions) {
  const auto r = parse(R"(rings:
  raw: {}
sources:
  a: {type: remote_write, listen: [udp://127.0.0.1:1, 127.0.0.1:2, 127.0.0.1:3], output: raw, path: api,
      max_body_size: 100, max_labels: 0}
  b: {type: remote_write, output: raw, max_labels: 65, max_body_size: 2GiB, path: "/a?b"}
  s: {type: statsd, listen: udp://:9, output: raw, path: /x, max_body_size: 1MiB}
exporters:
  e: {type: prometheus, input: raw}
)");
  const std::vector<std::string> got = messages(r);
  ASSERT_FALSE(got.empty());
  EXPECT_TRUE(
      has_message(got,
                  "p.yaml:4:36: source \"a\" listen: found \"udp://127.0.0.1:1\", expected a TCP host:port such as "
                  "127.0.0.1:9201 on type: remote_write"))
      << ::testing::PrintToString(got);
  EXPECT_TRUE(has_message(got, "p.yaml:4:55: source \"a\" listen: found a second address, expected one host:port"));
  EXPECT_TRUE(has_message(got, "source \"a\" path: found \"api\", expected an URL path such as /api/v1/write"));
  EXPECT_TRUE(has_message(got, "source \"a\" max_body_size: found \"100\", expected from 1KiB to 1GiB"));
  EXPECT_TRUE(has_message(got, "source \"a\" max_labels: found \"0\", expected an integer from 1 to 64"));
  EXPECT_TRUE(has_message(got, "source \"b\": found no listen address"));
  EXPECT_TRUE(has_message(got, "source \"b\" max_labels: found \"65\", expected an integer from 1 to 64"));
  EXPECT_TRUE(has_message(got, "source \"b\" max_body_size: found \"2GiB\", expected from 1KiB to 1GiB"));
  EXPECT_TRUE(has_message(got, "source \"b\" path: found \"/a?b\", expected an URL path"));
  EXPECT_TRUE(has_message(
      got, "source \"s\" path: found a remote_write key on type: statsd, expected it only on type: remote_write"));
  EXPECT_TRUE(has_message(got,
                          "source \"s\" max_body_size: found a body size limit on type: statsd, expected it only on "
                          "type: prometheus_scrape or remote_write"));
  for (const std::string& m : got) EXPECT_EQ(m.rfind("p.yaml:", 0), 0u) << m;  // every one positioned
}

TEST(PipelineConfig, RefusesRemoteWriteBatchTimeWithTheReason) {
  const auto r = parse(R"(rings:
  raw: {}
sources:
  s: {type: statsd, listen: udp://127.0.0.1:9, output: raw}
exporters:
  e: {type: remote_write, input: raw, url: "http://127.0.0.1:1/w", batch_time: 2s}
)");
  const std::vector<std::string> got = messages(r);
  EXPECT_TRUE(has_message(got,
                          "exporter \"e\" batch_time: found \"2s\", expected no batch_time: each record's "
                          "samples are sent as soon as the record is read"))
      << ::testing::PrintToString(got);
}

TEST(PipelineConfig, ReadsAPrometheusScrapeSource) {
  const auto r = parse(R"(rings:
  raw: {}
sources:
  node: {type: prometheus_scrape, output: raw, targets: "http://127.0.0.1:9100/metrics"}
  apps: {type: prometheus_scrape, output: raw, targets: ["http://[::1]:8080/m?x=1", "http://localhost/metrics"],
         interval: 30s, timeout: 30s, max_body_size: 1MiB, max_labels: 8, honor_labels: true, job: web,
         max_line_length: 1KiB}
exporters:
  e: {type: prometheus, input: raw}
)");
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->sources[0].type, SourceType::kPrometheusScrape);
  EXPECT_EQ(source_type_name(SourceType::kPrometheusScrape), "prometheus_scrape");
  const ScrapeSourceConfig& d = r->sources[0].scrape;
  EXPECT_EQ(d.targets, std::vector<std::string>{"http://127.0.0.1:9100/metrics"});
  EXPECT_EQ(d.interval, std::chrono::seconds(15));
  EXPECT_EQ(d.timeout, std::chrono::seconds(10));
  EXPECT_EQ(d.max_body_bytes, 16u << 20);
  EXPECT_EQ(d.max_labels, 64u);
  EXPECT_FALSE(d.honor_labels);
  EXPECT_EQ(d.job, "");
  const ScrapeSourceConfig& a = r->sources[1].scrape;
  EXPECT_EQ(a.targets, (std::vector<std::string>{"http://[::1]:8080/m?x=1", "http://localhost/metrics"}));
  EXPECT_EQ(a.interval, std::chrono::seconds(30));
  EXPECT_EQ(a.timeout, std::chrono::seconds(30));
  EXPECT_EQ(a.max_body_bytes, 1u << 20);
  EXPECT_EQ(a.max_labels, 8u);
  EXPECT_TRUE(a.honor_labels);
  EXPECT_EQ(a.job, "web");
  EXPECT_EQ(r->sources[1].max_line_length, 1024u);
}

TEST(PipelineConfig, LoadsTheScrapeExample) {
  const std::string path = std::string(RINGPIPE_CONFIG_EXAMPLES_DIR) + "/scrape.yaml";
  const auto r = parse_pipeline(
      [&] {
        std::ifstream in(path);
        return std::string(std::istreambuf_iterator<char>(in), {});
      }(),
      path, env_of({}));
  ASSERT_TRUE(r) << r.error().message();
  ASSERT_EQ(r->sources.size(), 2u);
  EXPECT_EQ(r->sources[1].type, SourceType::kPrometheusScrape);
  EXPECT_EQ(r->sources[1].scrape.targets, std::vector<std::string>{"http://127.0.0.1:9100/metrics"});
}

TEST(PipelineConfig, ReportsScrapeProblemsWithPositions) {
  const auto r = parse(R"(rings:
  raw: {}
sources:
  a: {type: prometheus_scrape, output: raw, listen: udp://:1, targets: ["https://h/m", "h:9100", "http://:1/", "http://h:0/"]}
  b: {type: prometheus_scrape, output: raw, targets: [], interval: 1s, timeout: 2s, max_body_size: 10, max_labels: 0}
  c: {type: prometheus_scrape, output: raw}
  s: {type: statsd, listen: udp://:9, output: raw, targets: ["http://h/"], job: x}
  t: {type: telepathy, output: raw}
exporters:
  e: {type: prometheus, input: raw}
)");
  ASSERT_FALSE(r);
  EXPECT_TRUE(
      has_message(r, "source \"a\" listen: found listen addresses on type: prometheus_scrape, expected targets"));
  EXPECT_TRUE(has_message(
      r, "source \"a\" targets: found \"https://h/m\" with https (not supported), expected http://host:port/path"));
  EXPECT_TRUE(has_message(r, "source \"a\" targets: found \"h:9100\" with no http:// scheme"));
  EXPECT_TRUE(has_message(r, "source \"a\" targets: found \"http://:1/\" with no host"));
  EXPECT_TRUE(has_message(r, "source \"a\" targets: found \"http://h:0/\" with a bad port"));
  EXPECT_TRUE(has_message(r, "source \"b\" targets: found an empty list, expected at least one URL"));
  EXPECT_TRUE(
      has_message(r, "source \"b\": found timeout 2000ms over interval 1000ms, expected timeout at most the interval"));
  EXPECT_TRUE(has_message(r, "source \"b\" max_body_size: found \"10\", expected from 1KiB to 1GiB"));
  EXPECT_TRUE(has_message(r, "source \"b\" max_labels: found \"0\", expected an integer from 1 to 64"));
  EXPECT_TRUE(has_message(r, "source \"c\": found no targets, expected targets: [http://host:port/metrics]"));
  EXPECT_TRUE(has_message(
      r, "source \"s\" targets: found a scrape key on type: statsd, expected it only on type: prometheus_scrape"));
  EXPECT_TRUE(has_message(r, "source \"s\" job: found a scrape key on type: statsd"));
  EXPECT_TRUE(has_message(r, "expected statsd, influx, graphite, json, mqtt, prometheus_scrape or remote_write"));
  for (const std::string& m : messages(r)) EXPECT_EQ(m.rfind("p.yaml:", 0), 0u) << m;  // every one positioned
}

struct BrokenPipeline {
  const char* name;
  const char* yaml;
  std::vector<std::string> expected;
};

class PipelineErrors : public ::testing::TestWithParam<BrokenPipeline> {};

TEST_P(PipelineErrors, ReportsExactPositionAndExpectation) {
  const auto& c = GetParam();
  const auto r = parse(c.yaml);
  ASSERT_FALSE(r);
  EXPECT_EQ(messages(r), c.expected);
}

// Each case breaks a valid pipeline in one way.
INSTANTIATE_TEST_SUITE_P(
    Table, PipelineErrors,
    ::testing::Values(
        BrokenPipeline{"WrongTypeForSection",
                       "rings: [raw]\n",
                       {"p.yaml:1:8: rings: found a list, expected a map of name: {...}"}},
        BrokenPipeline{"WrongTypeForValue",
                       "rings:\n  raw: {size: 64MiB, lanes: many}\n  metrics: {size: 16MiB}\n"
                       "sources:\n  s: {type: statsd, listen: udp://:1, output: raw}\n"
                       "processors:\n  a: {type: aggregate, input: raw, output: metrics}\n"
                       "exporters:\n  e: {type: prometheus, input: metrics, listen: \":2\"}\n",
                       {"p.yaml:2:29: ring \"raw\" lanes: found \"many\", expected an integer from 1 to 256"}},
        BrokenPipeline{"MissingInputRing",
                       "rings:\n  raw: {size: 64MiB}\n  metrics: {size: 16MiB}\n"
                       "sources:\n  s: {type: statsd, listen: udp://:1, output: raw}\n"
                       "processors:\n  a: {type: aggregate, input: raww, output: metrics}\n"
                       "exporters:\n  e: {type: prometheus, input: metrics, listen: \":2\"}\n",
                       {"p.yaml:2:3: ring \"raw\": found no reader (no processor or exporter has input: raw), "
                        "expected at least one",
                        "p.yaml:7:31: processor \"a\" input: found ring \"raww\", which is not defined under rings, "
                        "expected one of: raw, metrics"}},
        BrokenPipeline{"OutputRingThatDoesNotExist",
                       "rings:\n  raw: {size: 64MiB}\n"
                       "sources:\n  s: {type: statsd, listen: udp://:1, output: raw}\n"
                       "processors:\n  a: {type: aggregate, input: raw, output: metrics}\n",
                       {"p.yaml:6:44: processor \"a\" output: found ring \"metrics\", which is not defined under "
                        "rings, expected one of: raw"}},
        BrokenPipeline{"RingWithoutReader",
                       "rings:\n  raw: {size: 64MiB}\n  metrics: {size: 16MiB}\n"
                       "sources:\n  s: {type: statsd, listen: udp://:1, output: raw}\n"
                       "processors:\n  a: {type: aggregate, input: raw, output: metrics}\n",
                       {"p.yaml:3:3: ring \"metrics\": found no reader (no processor or exporter has input: "
                        "metrics), expected at least one"}},
        BrokenPipeline{"RingWithoutProducer",
                       "rings:\n  raw: {size: 64MiB}\n"
                       "exporters:\n  e: {type: prometheus, input: raw, listen: \":2\"}\n",
                       {"p.yaml:2:3: ring \"raw\": found no producer (no source or processor has output: raw), "
                        "expected at least one"}},
        BrokenPipeline{"PortUsedTwice",
                       "rings:\n  raw: {size: 64MiB}\n"
                       "sources:\n  s: {type: statsd, listen: [udp://:9125, tcp://0.0.0.0:9102], output: raw}\n"
                       "exporters:\n  e: {type: prometheus, input: raw, listen: \"127.0.0.1:9102\"}\n",
                       {"p.yaml:6:45: exporter \"e\" listen: found port 9102/tcp already used by source \"s\" "
                        "(p.yaml:4:43), expected each address once"}},
        BrokenPipeline{"BadListenUrl",
                       "rings:\n  raw: {size: 64MiB}\n"
                       "sources:\n  s: {type: statsd, listen: [udp://0.0.0.0, sctp://:1, udp://:99999], output: raw}\n"
                       "exporters:\n  e: {type: prometheus, input: raw}\n",
                       {"p.yaml:4:30: source \"s\" listen: found \"udp://0.0.0.0\" with no port, expected "
                        "udp://host:port, tcp://host:port, unix:///path or unixgram:///path",
                        "p.yaml:4:45: source \"s\" listen: found \"sctp://:1\" with unknown scheme \"sctp\", expected "
                        "udp://host:port, tcp://host:port, unix:///path or unixgram:///path",
                        "p.yaml:4:56: source \"s\" listen: found \"udp://:99999\" with an invalid port \"99999\", "
                        "expected udp://host:port, tcp://host:port, unix:///path or unixgram:///path"}},
        BrokenPipeline{"RingGeometryNotPowerOfTwo",
                       "rings:\n  raw: {size: 48MiB}\n"
                       "sources:\n  s: {type: statsd, listen: udp://:1, output: raw}\n"
                       "exporters:\n  e: {type: prometheus, input: raw}\n",
                       {"p.yaml:2:15: ring \"raw\" size: found 48MiB over 8 lanes (6291456 bytes each), expected "
                        "size / lanes to be a power of two of at least 4KiB, e.g. size: 64MiB"}},
        BrokenPipeline{"BadOverflowPolicy",
                       "rings:\n  raw: {overflow: sometimes}\n"
                       "sources:\n  s: {type: statsd, listen: udp://:1, output: raw}\n"
                       "exporters:\n  e: {type: prometheus, input: raw}\n",
                       {"p.yaml:2:19: ring \"raw\" overflow: found \"sometimes\", expected block, drop or overwrite"}},
        BrokenPipeline{"MissingType",
                       "rings:\n  raw: {}\n"
                       "sources:\n  s: {listen: udp://:1, output: raw}\n"
                       "exporters:\n  e: {input: raw}\n",
                       {"p.yaml:4:3: source \"s\": found no type, expected type: statsd, influx, graphite, json, mqtt, "
                        "prometheus_scrape or remote_write",
                        "p.yaml:6:3: exporter \"e\": found no type, expected type: prometheus or remote_write"}},
        BrokenPipeline{"JsonMappingProblems",
                       "rings:\n  raw: {}\n"
                       "sources:\n  s: {type: json, listen: tcp://:1, output: raw, value_field: \"\", name: n, "
                       "name_field: m, timestamp_precision: h, kind: histogram, max_labels: 65, "
                       "max_line_length: 2MiB}\n"
                       "  t: {type: statsd, listen: udp://:3, output: raw, name: x, kind: counter}\n"
                       "exporters:\n  e: {type: prometheus, input: raw}\n",
                       {"p.yaml:4:63: source \"s\" value_field: found an empty string, expected a field name",
                        "p.yaml:4:73: source \"s\" name: found both name and name_field, expected one of them",
                        "p.yaml:4:112: source \"s\" timestamp_precision: found \"h\", expected s, ms, us or ns",
                        "p.yaml:4:112: source \"s\" timestamp_precision: found a precision without "
                        "timestamp_field, expected both",
                        "p.yaml:4:121: source \"s\" kind: found \"histogram\", expected gauge or counter",
                        "p.yaml:4:144: source \"s\" max_labels: found \"65\", expected an integer from 0 to 64",
                        "p.yaml:4:165: source \"s\" max_line_length: found \"2MiB\", expected at most 1MiB on type: "
                        "json",
                        "p.yaml:5:58: source \"t\" name: found a JSON field mapping key on type: statsd, expected it "
                        "only on type: json or mqtt",
                        "p.yaml:5:67: source \"t\" kind: found a JSON field mapping key on type: statsd, expected it "
                        "only on type: json or mqtt"}},
        BrokenPipeline{"ProcessorReadingItsOwnOutput",
                       "rings:\n  raw: {}\n"
                       "sources:\n  s: {type: statsd, listen: udp://:1, output: raw}\n"
                       "processors:\n  a: {type: aggregate, input: raw, output: raw}\n"
                       "exporters:\n  e: {type: prometheus, input: raw}\n",
                       {"p.yaml:6:44: processor \"a\" output: found \"raw\", the processor's own input, expected a "
                        "different ring"}},
        BrokenPipeline{"RemoteWriteProblems",
                       "rings:\n  raw: {}\n"
                       "sources:\n  s: {type: statsd, listen: udp://:1, output: raw}\n"
                       "exporters:\n  e: {type: remote_write, input: raw, url: ftp://x, retry_min_backoff: 10s, "
                       "basic_auth: {username: u}, bearer_token: t}\n",
                       {"p.yaml:6:44: exporter \"e\" url: found \"ftp://x\", expected an http:// or https:// URL with "
                        "a host",
                        "p.yaml:6:72: exporter \"e\" retry_min_backoff: found \"10s\", expected at most "
                        "retry_max_backoff (5000ms)",
                        "p.yaml:6:118: exporter \"e\" bearer_token: found both basic_auth and bearer_token, expected "
                        "at most one of them"}},
        BrokenPipeline{
            "TlsOnAnHttpUrlBesideAnIpv6PrometheusListen",
            "rings:\n  raw: {}\n"
            "sources:\n  s: {type: statsd, listen: udp://:1, output: raw}\n"
            "exporters:\n  p: {type: prometheus, input: raw, listen: \"[::]:9102\"}\n"
            "  r: {type: remote_write, input: raw, reader: r, url: http://x/w, tls: {ca_file: /c}}\n",
            {"p.yaml:7:72: exporter \"r\" tls: found tls with url \"http://x/w\", expected an https:// url"}},
        BrokenPipeline{"DurationWithoutUnit",
                       "rings:\n  raw: {reader_timeout: 10}\n"
                       "sources:\n  s: {type: statsd, listen: udp://:1, output: raw}\n"
                       "exporters:\n  e: {type: prometheus, input: raw}\n",
                       {"p.yaml:2:25: ring \"raw\" reader_timeout: found \"10\", expected a duration like 500ms, "
                        "10s, 5m, 1h or 1m30s"}},
        BrokenPipeline{"DuplicateReaderName",
                       "rings:\n  raw: {}\n"
                       "sources:\n  s: {type: statsd, listen: udp://:1, output: raw}\n"
                       "exporters:\n  e: {type: prometheus, input: raw, listen: \":2\"}\n"
                       "  f: {type: prometheus, input: raw, listen: \":3\", reader: e}\n",
                       {"p.yaml:7:32: exporter \"f\" input: found reader name \"e\" already used on ring \"raw\" by "
                        "exporter \"e\", expected a distinct reader: name"}},
        BrokenPipeline{"UnknownExporterTypeAndTagsOnInflux",
                       "rings:\n  raw: {}\n"
                       "sources:\n  s: {type: influx, listen: tcp://:8086, output: raw, tags: {dogstatsd: false}}\n"
                       "exporters:\n  e: {type: kafka, input: raw, brokers: [a]}\n",
                       {"p.yaml:4:61: source \"s\" tags: found tag flavors on type: influx, expected them only on "
                        "type: statsd",
                        "p.yaml:6:13: exporter \"e\" type: found \"kafka\", expected prometheus or remote_write"}},
        BrokenPipeline{"DuplicateKeyAndComponentName",
                       "rings:\n  raw: {size: 1MiB, size: 2MiB}\n  raw: {}\n"
                       "sources:\n  s: {type: statsd, listen: udp://:1, output: raw}\n"
                       "exporters:\n  e: {type: prometheus, input: raw}\n",
                       {"p.yaml:2:21: ring \"raw\": found key \"size\" a second time, expected each key once",
                        "p.yaml:3:3: rings: found \"raw\" a second time, expected each name once"}},
        BrokenPipeline{
            "InvalidYaml", "rings:\n  raw: {size: 64MiB\n", {"p.yaml:3:1: invalid YAML: end of map flow not found"}},
        BrokenPipeline{"EmptyFile",
                       "",
                       {"p.yaml:1:1: found an empty file, expected a pipeline with rings, sources, processors and "
                        "exporters"}}),
    [](const ::testing::TestParamInfo<BrokenPipeline>& p) { return std::string(p.param.name); });

TEST(PipelineConfig, ExpandsEnvironmentVariablesWithDefaults) {
  const auto r = parse(R"(pipeline: ${PIPELINE}
run_dir: ${RUN_DIR:-/tmp/rp}
rings:
  raw: {size: "${RAW_SIZE:-64MiB}"}
sources:
  s: {type: statsd, listen: "udp://${HOST:-0.0.0.0}:${PORT}", output: raw}
exporters:
  e: {type: remote_write, input: raw, url: "https://x/$${literal}", headers: {Authorization: "Bearer ${TOKEN}"}}
)",
                       {{"PIPELINE", "edge"}, {"PORT", "8125"}, {"RAW_SIZE", "128MiB"}, {"TOKEN", "abc"}});
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->pipeline, "edge");
  EXPECT_EQ(r->run_dir, "/tmp/rp");
  EXPECT_EQ(r->rings[0].size_bytes, 128u << 20);
  EXPECT_EQ(r->sources[0].listen[0].to_string(), "udp://0.0.0.0:8125");
  EXPECT_EQ(r->exporters[0].remote_write.url, "https://x/${literal}");
  EXPECT_EQ(r->exporters[0].remote_write.headers.at("Authorization"), "Bearer abc");
}

TEST(PipelineConfig, ReportsUnsetVariableAtItsExactColumn) {
  const auto r = parse(R"(rings:
  raw: {}
sources:
  s: {type: statsd, listen: "udp://${HOST}:${PORT}", output: raw}
exporters:
  e: {type: prometheus, input: raw, path: "/${BAD-NAME}", listen: "${UNCLOSED"}
)",
                       {{"HOST", "127.0.0.1"}});
  ASSERT_FALSE(r);
  EXPECT_EQ(messages(r),
            (std::vector<std::string>{
                "p.yaml:4:44: found \"${PORT}\" but PORT is not set, expected it set in the environment or a default "
                "like ${PORT:-value}",
                "p.yaml:6:45: found \"${BAD-NAME}\", expected ${VAR} or ${VAR:-default} with VAR made of letters, "
                "digits and '_'",
                "p.yaml:6:68: found \"${UNCLOSED\" without a closing '}', expected ${VAR} or ${VAR:-default}",
            }));
}

TEST(PipelineConfig, DoesNotExpandVariablesInComments) {
  const auto r = parse(std::string(kValid) + "# ${NOT_SET}\n");
  EXPECT_TRUE(r) << r.error().message();
}

TEST(PipelineConfig, ReportsMappingFileErrorsWithTheirOwnPositions) {
  ringpipe::testing::ScratchDir dir;
  std::ofstream(dir.file("mapping.yml")) << "mappings:\n- match: a.*.\n  name: x\n";
  std::ofstream(dir.file("p.yaml")) << R"(rings:
  raw: {}
  metrics: {}
sources:
  s: {type: statsd, listen: udp://:1, output: raw}
processors:
  a: {type: aggregate, input: raw, output: metrics, mapping_config: mapping.yml, shards: 0}
  b: {type: aggregate, input: raw, output: metrics, mapping_config: missing.yml}
exporters:
  e: {type: prometheus, input: metrics}
)";
  const auto r = load_pipeline(dir.file("p.yaml"));
  ASSERT_FALSE(r);
  const auto got = messages(r);
  ASSERT_EQ(got.size(), 3u) << r.error().message();
  EXPECT_EQ(got[0],
            dir.file("p.yaml") + ":7:90: processor \"a\" shards: found \"0\", expected an integer from 1 to 256");
  EXPECT_EQ(got[1], dir.file("p.yaml") +
                        ":8:69: processor \"b\" mapping_config: found \"missing.yml\" but cannot "
                        "read " +
                        dir.file("missing.yml") +
                        ": No such file or directory, expected a readable statsd_exporter mapping file");
  EXPECT_EQ(got[2].rfind(dir.file("mapping.yml") + ":2:10: mappings[0] match: found invalid glob \"a.*.\"", 0), 0u)
      << got[2];
}

TEST(PipelineConfig, DefaultPipelineMatchesStatsdExporterDefaults) {
  const PipelineConfig p = default_pipeline();
  ASSERT_EQ(p.sources.size(), 1u);
  ASSERT_EQ(p.sources[0].listen.size(), 2u);
  EXPECT_EQ(p.sources[0].listen[0].to_string(), "udp://:9125");  // both families, as statsd_exporter's :9125
  EXPECT_EQ(p.sources[0].listen[1].to_string(), "tcp://:9125");
  EXPECT_EQ(p.sources[0].tags, StatsdTagFlavors{});
  ASSERT_EQ(p.processors.size(), 1u);
  EXPECT_EQ(p.processors[0].input, p.sources[0].output);
  EXPECT_EQ(p.processors[0].observer_type, ObserverType::kSummary);
  EXPECT_EQ(p.processors[0].summary.quantiles,
            (std::vector<Quantile>(std::begin(kDefaultQuantiles), std::end(kDefaultQuantiles))));
  EXPECT_EQ(p.processors[0].mapping_cache, MappingCacheOptions{});
  ASSERT_EQ(p.exporters.size(), 1u);
  EXPECT_EQ(p.exporters[0].input, p.processors[0].output);
  EXPECT_EQ(p.exporters[0].prometheus.listen.to_string(), "tcp://:9102");  // both families, as statsd_exporter's
  EXPECT_EQ(p.exporters[0].prometheus.path, "/metrics");
  ASSERT_NE(p.find_ring("raw"), nullptr);
  ASSERT_NE(p.find_ring("metrics"), nullptr);
  EXPECT_EQ(p.ring_path("raw"), "/dev/shm/ringpipe/default/raw");
}

TEST(PipelineConfig, MinimalExampleEqualsTheDefaultPipeline) {
  const auto r = load_pipeline(std::string(RINGPIPE_CONFIG_EXAMPLES_DIR) + "/minimal.yaml");
  ASSERT_TRUE(r) << r.error().message();
  const PipelineConfig d = default_pipeline();
  ASSERT_EQ(r->rings.size(), d.rings.size());
  for (std::size_t i = 0; i < d.rings.size(); ++i) {
    EXPECT_EQ(r->rings[i].name, d.rings[i].name);
    EXPECT_EQ(r->rings[i].size_bytes, d.rings[i].size_bytes);
  }
  EXPECT_EQ(r->sources[0].listen[0].to_string(), d.sources[0].listen[0].to_string());
  EXPECT_EQ(r->sources[0].listen[1].to_string(), d.sources[0].listen[1].to_string());
  EXPECT_EQ(r->processors[0].summary, d.processors[0].summary);
  EXPECT_EQ(r->processors[0].histogram, d.processors[0].histogram);
  EXPECT_EQ(r->exporters[0].prometheus.listen.to_string(), d.exporters[0].prometheus.listen.to_string());
}

TEST(PipelineConfig, ValuesCompareEqualWhereverTheyWereWritten) {
  const auto a = parse(kValid);
  // The same pipeline with the sections in another order, comments and blank lines.
  const auto b = parse(R"(# edited
exporters:
  prometheus: {type: prometheus, input: metrics, listen: 0.0.0.0:9102}

processors:
  aggregate: {type: aggregate, input: raw, output: metrics}
sources:
  statsd: {type: statsd, listen: [udp://0.0.0.0:9125, tcp://0.0.0.0:9125], output: raw}
rings:
  raw: {size: 64MiB}
  metrics: {size: 16MiB}
)");
  ASSERT_TRUE(a && b) << (a ? b.error().message() : a.error().message());
  ASSERT_NE(a->sources[0].position.line, b->sources[0].position.line);
  EXPECT_EQ(a->sources[0].listen[0].position, b->sources[0].listen[0].position);
  EXPECT_EQ(*a, *b);
  PipelineConfig c = *a;
  c.sources[0].listen[1].port = 9126;
  EXPECT_NE(c.sources[0], a->sources[0]);
  EXPECT_EQ(c.processors, a->processors);
  c = *a;
  c.exporters[0].prometheus.header_timeout = milliseconds(4000);
  EXPECT_NE(c.exporters[0], a->exporters[0]);
  EXPECT_EQ(c.sources, a->sources);
  // Compared with a Position, a WrittenAt is that position.
  EXPECT_EQ(a->sources[0].position, (Position{"p.yaml", 5, 3}));
  EXPECT_NE(b->sources[0].position, (Position{"p.yaml", 5, 3}));
}

TEST(PipelineConfig, ComparesTheMappingRulesAsLoadedAndTheTlsFilesAsTheyAre) {
  ringpipe::testing::ScratchDir dir;
  std::ofstream(dir.file("mapping.yml")) << "mappings:\n- match: a.b\n  name: first\n";
  std::ofstream(dir.file("tls.crt")) << "certificate 1";
  std::ofstream(dir.file("tls.key")) << "key 1";
  std::ofstream(dir.file("p.yaml")) << "rings: {raw: {}, metrics: {}}\n"
                                       "sources: {s: {type: statsd, listen: udp://:1, output: raw}}\n"
                                       "processors: {a: {type: aggregate, input: raw, output: metrics, "
                                       "mapping_config: mapping.yml}}\n"
                                       "exporters: {e: {type: prometheus, input: metrics, tls: {cert_file: "
                                    << dir.file("tls.crt") << ", key_file: " << dir.file("tls.key") << "}}}\n";
  const auto load = [&] {
    auto r = load_pipeline(dir.file("p.yaml"));
    EXPECT_TRUE(r) << r.error().message();
    return r ? *r : PipelineConfig{};
  };
  const PipelineConfig first = load();
  EXPECT_EQ(load(), first);
  // A comment moves the rule a line down: the rules are the same.
  std::ofstream(dir.file("mapping.yml")) << "# renamed soon\nmappings:\n- match: a.b\n  name: first\n";
  EXPECT_EQ(load(), first);
  std::ofstream(dir.file("mapping.yml")) << "mappings:\n- match: a.b\n  name: second\n";
  const PipelineConfig renamed = load();
  EXPECT_NE(renamed.processors, first.processors);
  EXPECT_EQ(renamed.exporters, first.exporters);
  // A certificate renewed under the same name.
  std::ofstream(dir.file("tls.crt")) << "certificate 2";
  const PipelineConfig renewed = load();
  EXPECT_NE(renewed.exporters, renamed.exporters);
  EXPECT_EQ(renewed.exporters[0].prometheus.tls->cert_file, renamed.exporters[0].prometheus.tls->cert_file);
  EXPECT_EQ(renewed.processors, renamed.processors);
}

TEST(PipelineConfig, UnreadableFileIsOneDiagnostic) {
  const auto r = load_pipeline("/nonexistent/pipeline.yaml");
  ASSERT_FALSE(r);
  EXPECT_EQ(messages(r), std::vector<std::string>{
                             "/nonexistent/pipeline.yaml: cannot read pipeline file: No such file or directory"});
}

TEST(ListenAddress, ParsesEverySchemeAndBareHostPort) {
  auto a = parse_listen_address("udp://0.0.0.0:9125");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->transport, Transport::kUdp);
  EXPECT_EQ(a->host, "0.0.0.0");
  EXPECT_EQ(a->port, 9125);
  a = parse_listen_address("tcp://[::1]:80");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->host, "::1");
  EXPECT_EQ(a->to_string(), "tcp://[::1]:80");
  a = parse_listen_address("unixgram:///run/s.sock");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->transport, Transport::kUnixgram);
  EXPECT_EQ(a->path, "/run/s.sock");
  a = parse_listen_address(":9102", Transport::kTcp);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->host, "");
  EXPECT_EQ(a->port, 9102);
  EXPECT_FALSE(parse_listen_address(":9102"));
  EXPECT_FALSE(parse_listen_address("unix://relative.sock"));
  EXPECT_FALSE(parse_listen_address("tcp://::1:80"));
  EXPECT_FALSE(parse_listen_address("tcp://host:"));
}

}  // namespace
}  // namespace ringpipe::config

namespace ringpipe::config {
namespace {

// Every prefix of a real file is some kind of broken file: loading must
// return (never throw or crash), and every problem must carry a position.
TEST(PipelineConfig, EveryTruncationOfAnExampleYieldsPositionedDiagnostics) {
  std::ifstream in(std::string(RINGPIPE_CONFIG_EXAMPLES_DIR) + "/secure.yaml");
  const std::string text(std::istreambuf_iterator<char>(in), {});
  ASSERT_GT(text.size(), 100u);
  const EnvLookup env = [](std::string_view) { return std::optional<std::string>("x"); };
  for (std::size_t n = 0; n < text.size(); n += 7) {
    const auto r = parse_pipeline(std::string_view(text).substr(0, n), "t.yaml", env);
    if (r) continue;
    ASSERT_FALSE(r.error().diagnostics.empty()) << n;
    for (const auto& d : r.error().diagnostics) {
      EXPECT_GE(d.position.line, 1u) << n << ": " << d.to_string();
      EXPECT_EQ(d.position.file, "t.yaml") << n << ": " << d.to_string();
    }
  }
}

}  // namespace
}  // namespace ringpipe::config
