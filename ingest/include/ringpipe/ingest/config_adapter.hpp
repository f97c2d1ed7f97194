#pragma once
// Builds the ingest servers' and clients' configs from a validated pipeline
// config: one function per kind of source, none with its stats path or
// segment (the caller places those). A source's id is its 1-based position
// among the pipeline's sources. Pure functions of the config (safe from any
// thread), except that listen hosts are resolved to numeric addresses, which
// fails (Result) on a name that does not resolve.

#include <cstdint>
#include <vector>

#include "ringpipe/common/result.hpp"
#include "ringpipe/config/pipeline.hpp"
#include "ringpipe/ingest/ingest_server.hpp"
#include "ringpipe/ingest/mqtt_source.hpp"
#include "ringpipe/ingest/prom_scrape_source.hpp"
#include "ringpipe/ingest/remote_write_source.hpp"

namespace ringpipe::ingest {

// The ingest servers one listening source (statsd, influx, graphite, json)
// runs: one IngestConfig per listener of each transport (the k-th UDP, TCP,
// ... address share the k-th server). Host "" is every interface.
[[nodiscard]] Result<std::vector<IngestConfig>> ingest_configs(const config::PipelineConfig& pipeline,
                                                               const config::SourceConfig& source);

// The MQTT client of a `type: mqtt` source.
[[nodiscard]] MqttConfig mqtt_config(const config::PipelineConfig& pipeline, const config::SourceConfig& source);

// The HTTP server of a `type: remote_write` source (its one listen address).
[[nodiscard]] Result<RemoteWriteConfig> remote_write_config(const config::PipelineConfig& pipeline,
                                                            const config::SourceConfig& source);

// The scraper of a `type: prometheus_scrape` source.
[[nodiscard]] PromScrapeConfig scrape_config(const config::PipelineConfig& pipeline,
                                             const config::SourceConfig& source);

// Ring lanes the source holds at once: one per UDP socket, per unix datagram
// socket and per stream thread of its servers, one per scrape target, one for
// an MQTT client or a remote_write server.
[[nodiscard]] std::uint32_t source_lanes(const config::SourceConfig& source);

}  // namespace ringpipe::ingest
