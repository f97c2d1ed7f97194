// The pipeline file's source sections become the configs of ingest's servers
// and clients: what each key says reaches the component, and a key left out
// gives the component's own default.

#include "ringpipe/ingest/config_adapter.hpp"

#include <gtest/gtest.h>

#include "parse_pipeline.hpp"

namespace ringpipe::ingest {
namespace {

TEST(ConfigAdapter, IngestConfigsSplitRepeatedTransportsOverServers) {
  const auto p = testing::parse_pipeline(R"(pipeline: t
rings:
  raw: {size: 1MiB, lanes: 2}
sources:
  s: {type: statsd, listen: [udp://127.0.0.1:0, tcp://127.0.0.1:0, udp://127.0.0.1:0], output: raw, udp_sockets: 2}
exporters:
  prom: {type: prometheus, input: raw, listen: 127.0.0.1:0}
)");
  auto c = ingest_configs(p, p.sources.at(0));
  ASSERT_TRUE(c) << c.error().message();
  ASSERT_EQ(c->size(), 2u);
  EXPECT_TRUE((*c)[0].udp && (*c)[0].tcp);
  EXPECT_TRUE((*c)[1].udp && !(*c)[1].tcp);
  EXPECT_EQ((*c)[0].udp->sockets, 2u);
  EXPECT_EQ((*c)[0].udp->address, "127.0.0.1");
  EXPECT_EQ((*c)[0].source_id, 1u);
  // Two UDP addresses x 2 sockets + one stream thread.
  EXPECT_EQ(source_lanes(p.sources.at(0)), 5u);
}

TEST(ConfigAdapter, JsonAndMqttSourcesGetWhatTheirKeysSay) {
  const auto p = testing::parse_pipeline(R"(pipeline: t
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
  const ParserOptions& o = (*c)[0].parser;
  EXPECT_EQ(o.protocol, Protocol::kJson);
  EXPECT_EQ(o.json.name_field, "metric");
  EXPECT_EQ(o.json.timestamp_field, "t");
  EXPECT_EQ(o.json.timestamp_precision, Precision::kMilliseconds);
  EXPECT_EQ(o.json.kind, sample::Kind::kCounter);
  EXPECT_EQ(o.json.max_labels, 5u);
  EXPECT_EQ(o.json.max_line_bytes, 4096u);
  EXPECT_EQ((*c)[0].tcp->max_line_bytes, 4096u);

  const MqttConfig m = mqtt_config(p, p.sources.at(1));
  EXPECT_EQ(m.host, "broker.example");
  EXPECT_EQ(m.port, 8884);
  EXPECT_TRUE(m.tls);
  EXPECT_EQ(m.ca_file, "ca.pem");
  EXPECT_EQ(m.topics, (std::vector<std::string>{"sensors/#", "a/+/b"}));
  EXPECT_EQ(m.qos, 1);
  EXPECT_EQ(m.payload, MqttPayload::kJson);
  EXPECT_EQ(m.topic_template, "sensors/+site/+name");
  EXPECT_EQ(m.username, "u");
  EXPECT_EQ(m.password, "p");
  EXPECT_EQ(m.client_id, "edge-1");
  EXPECT_EQ(m.max_message_bytes, 4096u);
  EXPECT_EQ(m.parser.json.value_field, "v");
  EXPECT_EQ(m.source_id, 2u);
  // One stream thread + one MQTT client.
  EXPECT_EQ(source_lanes(p.sources.at(0)) + source_lanes(p.sources.at(1)), 2u);
}

TEST(ConfigAdapter, ResourceLimitsReachTheComponentsAndTheirDefaultsAgree) {
  // Without the keys a component gets its own defaults: the config's must be the same numbers.
  const config::SourceConfig source;
  const config::RemoteWriteSourceConfig receiver;
  EXPECT_EQ(source.max_buffered_bytes, TcpConfig{}.max_buffered_bytes);
  EXPECT_EQ(source.max_buffered_bytes, UnixStreamConfig{}.max_buffered_bytes);
  EXPECT_EQ(receiver.max_series_per_request, RemoteWriteConfig{}.max_series_per_request);
  EXPECT_EQ(receiver.max_labels_per_request, RemoteWriteConfig{}.max_labels_per_request);
  EXPECT_EQ(receiver.max_samples_per_request, RemoteWriteConfig{}.max_samples_per_request);
  EXPECT_EQ(receiver.max_inflight_body_bytes, RemoteWriteConfig{}.max_inflight_body_bytes);

  const auto p = testing::parse_pipeline(R"(pipeline: t
rings:
  raw: {size: 1MiB, lanes: 4}
sources:
  s: {type: statsd, listen: [tcp://127.0.0.1:0, unix:///tmp/rp-limits.sock], output: raw, max_buffered_size: 3MiB}
  w: {type: remote_write, listen: 127.0.0.1:0, output: raw, max_series_per_request: 11, max_labels_per_request: 22,
      max_samples_per_request: 33, max_inflight_body_size: 44MiB}
exporters:
  prom: {type: prometheus, input: raw, listen: 127.0.0.1:0}
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
}

}  // namespace
}  // namespace ringpipe::ingest
