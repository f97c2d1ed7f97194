#pragma once
// The pipeline the apps unit tests start from: a statsd source on raw, an
// aggregator, a Prometheus exporter on metrics.

#include "parse_pipeline.hpp"

namespace ringpipe::apps {

inline constexpr const char* kPipeline = R"(pipeline: t
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

}  // namespace ringpipe::apps
