#pragma once
// A source's stats: which IngestStats counters become which source_* entries
// of its stats segment (stats/publisher.hpp copies them there). The servers
// of one process share a segment, so their counters and gauges sum into one
// cell each, and a restarted source continues the previous run's values.

#include <cstdint>
#include <memory>
#include <string>

#include "ringpipe/common/result.hpp"
#include "ringpipe/ingest/ingest_server.hpp"
#include "ringpipe/stats/publisher.hpp"
#include "ringpipe/stats/stats_segment.hpp"

namespace ringpipe::ingest {

// A publisher of every source_* metric the config's listeners produce
// (udp_port: the bound port, for the kernel-drop socket labels), published
// once already. Fails on a full segment or an entry another writer
// registered with another type.
[[nodiscard]] Result<std::unique_ptr<stats::Publisher>> create_source_publisher(
    std::shared_ptr<stats::StatsSegment> segment, const IngestConfig& config, const IngestStats& stats,
    std::uint16_t udp_port);

// The publisher of a source that is not an IngestServer (MQTT,
// remote_write, scrape): into `segment` if set, else into a segment created
// at `stats_path` for `config.name`; nullptr when neither is set. Errors read
// "<what>: stats: <cause>".
[[nodiscard]] Result<std::unique_ptr<stats::Publisher>> open_source_publisher(
    std::shared_ptr<stats::StatsSegment> segment, const std::string& stats_path, const IngestConfig& config,
    const IngestStats& stats, const std::string& what);

}  // namespace ringpipe::ingest
