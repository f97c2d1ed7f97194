#pragma once
// The pipeline's components as `ringpipe` sees them: which there are and the
// rings each touches, the options every process opens a ring with, where each
// publishes its stats, and run_component, which builds one component through
// its part's config adapter and runs it with the one runner
// (component_runner.hpp). Everything here is a pure function of the config
// (safe from any thread) except run_component, which owns the process's
// signal handling and returns its exit code.

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "ringpipe/common/result.hpp"
#include "ringpipe/config/pipeline.hpp"
#include "ringpipe/ingest/listen_sockets.hpp"
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
[[nodiscard]] const ComponentInfo* find_component(const std::vector<ComponentInfo>& all,
                                                  std::string_view name) noexcept;

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

// Listening sockets handed to a source process, by key ("statsd/udp0" = fd).
using ListenFds = std::map<std::string, int>;

// Whether the source listens on sockets (statsd, influx, graphite, json): those
// `ringpipe run` binds before anything starts and hands to the source.
[[nodiscard]] bool listening_source(const config::SourceConfig& s) noexcept;

// Binds every listening socket of source `s` (none for MQTT, remote_write and
// scrape sources); fails with "ingest statsd: udp [::]:9125: bind: Address already in use".
[[nodiscard]] Result<std::vector<ingest::ListenSocket>> bind_source_sockets(const config::PipelineConfig& p,
                                                                            const config::SourceConfig& s);

// Runs component `name` in this process until SIGTERM or SIGINT, then stops it
// cleanly. Blocks those signals first, so call it before any thread starts.
// A source given `listen_fds` takes those sockets instead of binding its own.
// Returns kExitOk, kExitConfig (bad config or unknown name) or kExitFailure.
[[nodiscard]] int run_component(const config::PipelineConfig& p, std::string_view name,
                                const ListenFds& listen_fds = {});

}  // namespace ringpipe::apps
