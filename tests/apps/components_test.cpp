#include <gtest/gtest.h>

#include <fstream>

#include "components.hpp"
#include "ringpipe/exporters/config_adapter.hpp"
#include "test_support.hpp"

namespace ringpipe::apps {
namespace {

config::PipelineConfig parse(const std::string& text, const std::string& file = "p.yaml") {
  auto p = config::parse_pipeline(text, file);
  EXPECT_TRUE(p) << (p ? "" : p.error().message());
  return p ? *p : config::PipelineConfig{};
}

constexpr const char* kPipeline = R"(pipeline: t
rings:
  raw: {size: 1MiB, lanes: 2, overflow: drop, max_readers: 4, reader_timeout: 500ms}
  metrics: {size: 1MiB, lanes: 2}
sources:
  s: {type: statsd, listen: [udp://127.0.0.1:0, tcp://127.0.0.1:0, udp://127.0.0.1:0], output: raw, udp_sockets: 2}
processors:
  agg: {type: aggregate, input: raw, output: metrics, shards: 4, flush_interval: 200ms}
exporters:
  prom: {type: prometheus, input: metrics, listen: 127.0.0.1:0}
)";

TEST(Components, RingOptionsFollowTheConfigAndRaiseLanesForProducers) {
  const auto p = parse(kPipeline);
  const auto raw = ring_options(p, *p.find_ring("raw"));
  EXPECT_EQ(raw.overflow, ring::Overflow::kDrop);
  EXPECT_EQ(raw.max_readers, 4u);
  EXPECT_EQ(raw.reader_timeout, std::chrono::milliseconds(500));
  EXPECT_EQ(raw.lane_capacity_bytes, 512u * 1024);
  // Two UDP addresses x 2 sockets + one stream thread.
  EXPECT_EQ(lanes_needed(p, "raw"), 5u);
  EXPECT_EQ(raw.lanes, 5u);
  const auto metrics = ring_options(p, *p.find_ring("metrics"));
  EXPECT_EQ(metrics.lanes, 4u);  // >= shards, or Processor::create refuses
  EXPECT_EQ(metrics.lane_capacity_bytes, 512u * 1024);
}

TEST(Components, IngestConfigsSplitRepeatedTransportsOverServers) {
  const auto p = parse(kPipeline);
  auto c = ingest_configs(p, p.sources.at(0));
  ASSERT_TRUE(c) << c.error().message();
  ASSERT_EQ(c->size(), 2u);
  EXPECT_TRUE((*c)[0].udp && (*c)[0].tcp);
  EXPECT_TRUE((*c)[1].udp && !(*c)[1].tcp);
  EXPECT_EQ((*c)[0].udp->sockets, 2u);
  EXPECT_EQ((*c)[0].udp->address, "127.0.0.1");
  EXPECT_EQ((*c)[0].source_id, 1u);
}

TEST(Components, JsonAndMqttSourcesGetWhatTheirKeysSay) {
  const auto p = parse(R"(pipeline: t
rings:
  raw: {size: 1MiB, lanes: 4}
sources:
  j: {type: json, listen: tcp://127.0.0.1:0, output: raw, name_field: metric, timestamp_field: t,
      timestamp_precision: ms, kind: counter, max_labels: 5, max_line_length: 4KiB}
  m: {type: mqtt, output: raw, broker: "mqtts://broker.example:8884", topics: [sensors/#, "a/+/b"], qos: 1, payload: json,
      topic_template: sensors/+site/+name, username: u, password: p, client_id: edge-1, ca_file: ca.pem,
      max_message_size: 4KiB, value_field: v}
exporters:
  prom: {type: prometheus, input: raw, listen: 127.0.0.1:0}
)");
  auto c = ingest_configs(p, p.sources.at(0));
  ASSERT_TRUE(c) << c.error().message();
  ASSERT_EQ(c->size(), 1u);
  const ingest::ParserOptions& o = (*c)[0].parser;
  EXPECT_EQ(o.protocol, ingest::Protocol::kJson);
  EXPECT_EQ(o.json.name_field, "metric");
  EXPECT_EQ(o.json.timestamp_field, "t");
  EXPECT_EQ(o.json.timestamp_precision, ingest::Precision::kMilliseconds);
  EXPECT_EQ(o.json.kind, sample::Kind::kCounter);
  EXPECT_EQ(o.json.max_labels, 5u);
  EXPECT_EQ(o.json.max_line_bytes, 4096u);
  EXPECT_EQ((*c)[0].tcp->max_line_bytes, 4096u);

  const ingest::MqttConfig m = mqtt_config(p, p.sources.at(1));
  EXPECT_EQ(m.host, "broker.example");
  EXPECT_EQ(m.port, 8884);
  EXPECT_TRUE(m.tls);
  EXPECT_EQ(m.ca_file, "ca.pem");
  EXPECT_EQ(m.topics, (std::vector<std::string>{"sensors/#", "a/+/b"}));
  EXPECT_EQ(m.qos, 1);
  EXPECT_EQ(m.payload, ingest::MqttPayload::kJson);
  EXPECT_EQ(m.topic_template, "sensors/+site/+name");
  EXPECT_EQ(m.username, "u");
  EXPECT_EQ(m.password, "p");
  EXPECT_EQ(m.client_id, "edge-1");
  EXPECT_EQ(m.max_message_bytes, 4096u);
  EXPECT_EQ(m.parser.json.value_field, "v");
  EXPECT_EQ(m.source_id, 2u);
  EXPECT_EQ(lanes_needed(p, "raw"), 2u);  // one stream thread + one MQTT client
}

TEST(Components, ProcessorOptionsUseRingPathsAndReaderName) {
  const auto p = parse(kPipeline);
  const auto o = processor_options(p, p.processors.at(0));
  EXPECT_EQ(o.inputs, std::vector<std::string>{p.ring_path("raw")});
  EXPECT_EQ(o.output, p.ring_path("metrics"));
  EXPECT_EQ(o.reader_name, "agg");
  EXPECT_EQ(o.engine.shards, 4u);
  EXPECT_EQ(o.flush_interval, std::chrono::milliseconds(200));
}

TEST(Components, FingerprintChangesOnlyWithWhatAComponentUses) {
  testing::ScratchDir dir;
  const std::string mapping = dir.file("mapping.yml");
  auto write_mapping = [&](const char* name) {
    std::ofstream(mapping) << "mappings:\n  - match: a.b\n    name: " << name << "\n";
  };
  write_mapping("first");
  const std::string text = std::string(kPipeline) + "";
  std::string with_mapping = text;
  with_mapping.replace(with_mapping.find("flush_interval"), 0, "mapping_config: mapping.yml, ");
  const std::string file = dir.file("p.yaml");
  // The supervisor fingerprints right after loading, as here.
  const auto a = parse(with_mapping, file);
  const std::string a_agg = component_fingerprint(a, "agg");
  write_mapping("second");
  const auto b = parse(with_mapping, file);
  EXPECT_NE(a_agg, component_fingerprint(b, "agg"));
  EXPECT_EQ(component_fingerprint(a, "s"), component_fingerprint(b, "s"));
  EXPECT_EQ(component_fingerprint(a, "prom"), component_fingerprint(b, "prom"));

  std::string other_port = text;
  other_port.replace(other_port.find("tcp://127.0.0.1:0"), 17, "tcp://127.0.0.1:1");
  const auto c = parse(other_port);
  const auto d = parse(text);
  EXPECT_NE(component_fingerprint(c, "s"), component_fingerprint(d, "s"));
  EXPECT_EQ(component_fingerprint(c, "agg"), component_fingerprint(d, "agg"));
}

TEST(Components, ResourceLimitsReachTheComponentsAndTheirDefaultsAgree) {
  // Without the keys a component gets its own defaults: the config's must be the same numbers.
  const config::SourceConfig source;
  const config::RemoteWriteSourceConfig receiver;
  EXPECT_EQ(source.max_buffered_bytes, ingest::TcpConfig{}.max_buffered_bytes);
  EXPECT_EQ(source.max_buffered_bytes, ingest::UnixStreamConfig{}.max_buffered_bytes);
  EXPECT_EQ(receiver.max_series_per_request, ingest::RemoteWriteConfig{}.max_series_per_request);
  EXPECT_EQ(receiver.max_labels_per_request, ingest::RemoteWriteConfig{}.max_labels_per_request);
  EXPECT_EQ(receiver.max_samples_per_request, ingest::RemoteWriteConfig{}.max_samples_per_request);
  EXPECT_EQ(receiver.max_inflight_body_bytes, ingest::RemoteWriteConfig{}.max_inflight_body_bytes);
  const config::ProcessorConfig processor;
  EXPECT_EQ(processor.max_name_length, processors::EngineOptions{}.max_name_bytes);
  EXPECT_EQ(processor.quarantine_after_crashes, processors::ProcessorOptions{}.quarantine_after_crashes);

  const auto p = parse(R"(pipeline: t
rings:
  raw: {size: 1MiB, lanes: 4}
  metrics: {size: 1MiB}
sources:
  s: {type: statsd, listen: [tcp://127.0.0.1:0, unix:///tmp/rp-limits.sock], output: raw, max_buffered_size: 3MiB}
  w: {type: remote_write, listen: 127.0.0.1:0, output: raw, max_series_per_request: 11, max_labels_per_request: 22,
      max_samples_per_request: 33, max_inflight_body_size: 44MiB}
processors:
  agg: {type: aggregate, input: raw, output: metrics, max_name_length: 512, quarantine_after_crashes: 9}
exporters:
  prom: {type: prometheus, input: metrics, listen: 127.0.0.1:0}
)");
  auto stream = ingest_configs(p, p.sources.at(0));
  ASSERT_TRUE(stream) << stream.error().message();
  ASSERT_EQ(stream->size(), 1u);
  ASSERT_TRUE((*stream)[0].tcp && (*stream)[0].unix_stream);
  EXPECT_EQ((*stream)[0].tcp->max_buffered_bytes, 3u << 20);
  EXPECT_EQ((*stream)[0].unix_stream->max_buffered_bytes, 3u << 20);
  auto rw = remote_write_config(p, p.sources.at(1));
  ASSERT_TRUE(rw) << rw.error().message();
  EXPECT_EQ(rw->max_series_per_request, 11u);
  EXPECT_EQ(rw->max_labels_per_request, 22u);
  EXPECT_EQ(rw->max_samples_per_request, 33u);
  EXPECT_EQ(rw->max_inflight_body_bytes, 44u << 20);
  const auto o = processor_options(p, p.processors.at(0));
  EXPECT_EQ(o.engine.max_name_bytes, 512u);
  EXPECT_EQ(o.quarantine_after_crashes, 9u);

  // Each key is part of its component's fingerprint: changing it restarts that component on reload.
  const std::string before_s = component_fingerprint(p, "s");
  const std::string before_w = component_fingerprint(p, "w");
  const std::string before_agg = component_fingerprint(p, "agg");
  config::PipelineConfig q = p;
  q.sources.at(0).max_buffered_bytes = 4u << 20;
  q.sources.at(1).remote_write.max_samples_per_request = 34;
  q.processors.at(0).quarantine_after_crashes = 8;
  EXPECT_NE(component_fingerprint(q, "s"), before_s);
  EXPECT_NE(component_fingerprint(q, "w"), before_w);
  EXPECT_NE(component_fingerprint(q, "agg"), before_agg);
  q = p;
  q.processors.at(0).max_name_length = 513;
  EXPECT_NE(component_fingerprint(q, "agg"), before_agg);
  // The exporter translates its own section.
  const config::PrometheusExporterConfig exporter;
  EXPECT_EQ(exporter.max_connections, exporters::PrometheusExporterOptions{}.max_connections);
  EXPECT_EQ(exporter.header_timeout, exporters::PrometheusExporterOptions{}.header_timeout);
  EXPECT_EQ(exporter.quarantine_after_crashes, exporters::PrometheusExporterOptions{}.quarantine_after_crashes);
  config::PipelineConfig limited = p;
  limited.exporters.at(0).prometheus.max_connections = 77;
  limited.exporters.at(0).prometheus.header_timeout = std::chrono::milliseconds(1500);
  limited.exporters.at(0).prometheus.quarantine_after_crashes = 0;
  const auto eo = exporters::prometheus_options(limited, limited.exporters.at(0));
  ASSERT_TRUE(eo) << eo.error().message();
  EXPECT_EQ(eo->max_connections, 77u);
  EXPECT_EQ(eo->header_timeout, std::chrono::milliseconds(1500));
  EXPECT_EQ(eo->quarantine_after_crashes, 0u);

  q = p;
  q.exporters.at(0).prometheus.header_timeout = std::chrono::seconds(9);
  EXPECT_NE(component_fingerprint(q, "prom"), component_fingerprint(p, "prom"));
}

TEST(Components, ListsComponentsWithTheirRingsAndReaders) {
  const auto p = parse(kPipeline);
  const auto all = pipeline_components(p);
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(all[0].kind, ComponentKind::kSource);
  EXPECT_EQ(all[0].outputs, std::vector<std::string>{"raw"});
  EXPECT_EQ(all[1].reader, "agg");
  EXPECT_EQ(all[2].inputs, std::vector<std::string>{"metrics"});
  EXPECT_EQ(find_component(all, "prom"), &all[2]);
  EXPECT_EQ(find_component(all, "nope"), nullptr);
}

}  // namespace
}  // namespace ringpipe::apps
