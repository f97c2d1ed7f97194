#pragma once
// Component glue: turns the validated pipeline config into the options of the
// ring, ingest, processor and exporter libraries, and runs one component in
// the calling process. Everything here is a pure function of the config
// (safe from any thread) except run_component, which owns the process's
// signal handling and returns its exit code.

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "ringpipe/common/result.hpp"
#include "ringpipe/config/pipeline.hpp"
#include "ringpipe/ingest/ingest_server.hpp"
#include "ringpipe/ingest/mqtt_source.hpp"
#include "ringpipe/ingest/prom_scrape_source.hpp"
#include "ringpipe/ingest/remote_write_source.hpp"
#include "ringpipe/processors/processor.hpp"
#include "ringpipe/ring/ring.hpp"
#include "status_file.hpp"

namespace ringpipe::apps {

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;
inline constexpr int kExitUsage = 2;
inline constexpr int kExitConfig = 78;  // EX_CONFIG: systemd's RestartPreventExitStatus=78

// One source, processor or exporter of a pipeline, with the rings it touches.
struct ComponentInfo {
  std::string name;
  ComponentKind kind = ComponentKind::kSource;
  std::vector<std::string> inputs;   // rings read
  std::vector<std::string> outputs;  // rings written
  std::string reader;                // durable reader name on the inputs ("" for sources)
};

// Every component in file order: sources, processors, exporters.
[[nodiscard]] std::vector<ComponentInfo> pipeline_components(const config::PipelineConfig& p);
[[nodiscard]] const ComponentInfo* find_component(const std::vector<ComponentInfo>& all, std::string_view name) noexcept;

// Ring lanes the producers of `ring` hold at once: one per ingest thread
// (UDP socket, unix datagram socket, stream thread) and one per processor shard.
[[nodiscard]] std::uint32_t lanes_needed(const config::PipelineConfig& p, std::string_view ring);

// The ring's geometry, 1:1 from its config except that lanes are raised to
// lanes_needed() (each lane keeps size/lanes bytes). Every process opening
// the ring computes the same options from the same pipeline.
[[nodiscard]] ring::RingOptions ring_options(const config::PipelineConfig& p, const config::RingConfig& r);

// `<run_dir>/<pipeline>/<component>.stats`: the component's stats segment
// (stats/stats_segment.hpp), which the exporter and `ringpipe stat` read.
[[nodiscard]] std::string stats_segment_path(const config::PipelineConfig& p, std::string_view component);

// The MQTT client of a `type: mqtt` source (without its stats path).
[[nodiscard]] ingest::MqttConfig mqtt_config(const config::PipelineConfig& p, const config::SourceConfig& s);

// The HTTP server of a `type: remote_write` source (without its stats path).
// The host is resolved here; fails on an unresolvable host.
[[nodiscard]] Result<ingest::RemoteWriteConfig> remote_write_config(const config::PipelineConfig& p,
                                                                    const config::SourceConfig& s);

// The scraper of a `type: prometheus_scrape` source (without its stats path).
[[nodiscard]] ingest::PromScrapeConfig scrape_config(const config::PipelineConfig& p, const config::SourceConfig& s);

// The ingest servers one source runs: one IngestConfig per listener of each
// transport (the k-th UDP, TCP, ... address share the k-th server). Names are
// resolved here; host "" is every interface. Fails on an unresolvable host.
[[nodiscard]] Result<std::vector<ingest::IngestConfig>> ingest_configs(const config::PipelineConfig& p,
                                                                       const config::SourceConfig& s);

// The processor's options: input/output ring paths, mapping and engine limits.
[[nodiscard]] processors::ProcessorOptions processor_options(const config::PipelineConfig& p,
                                                             const config::ProcessorConfig& c);

// Where the processor keeps its crash-safe state (config `state_dir`, else
// <run_dir>/<pipeline>/<name>.state beside the rings).
[[nodiscard]] std::string processor_state_dir(const config::PipelineConfig& p, const config::ProcessorConfig& c);

// Text that changes whenever anything this component's process would do
// differently changes: its own config, the geometry of its rings and the
// contents of its mapping file. The supervisor restarts a component on SIGHUP
// only when this changed.
[[nodiscard]] std::string component_fingerprint(const config::PipelineConfig& p, std::string_view name);

// Opens (or creates) every ring of the pipeline; "open ring raw: path: cause".
[[nodiscard]] Result<std::vector<ring::Ring>> open_rings(const config::PipelineConfig& p);

// Runs component `name` in this process until SIGTERM or SIGINT, then stops it
// cleanly. Blocks those signals first, so call it before any thread starts.
// Returns kExitOk, kExitConfig (bad config or unknown name) or kExitFailure.
[[nodiscard]] int run_component(const config::PipelineConfig& p, std::string_view name);

}  // namespace ringpipe::apps
