#pragma once
// Builds the processors' options from the validated config: a loaded
// statsd_exporter mapping file becomes the engine's MappingConfig (the cache
// type "random" is served by the LRU cache: same bound, same results), and a
// pipeline's processor section becomes the ProcessorOptions of its process.
// Pure functions; thread-safe.

#include <string>

#include "ringpipe/config/mapping.hpp"
#include "ringpipe/config/pipeline.hpp"
#include "ringpipe/processors/mapping.hpp"
#include "ringpipe/processors/processor.hpp"

namespace ringpipe::processors {

[[nodiscard]] MappingConfig mapping_from_config(const config::MappingConfig& file,
                                                const config::MappingCacheOptions& cache = {});

// The processor's options: input/output ring paths, reader name (default: the
// component's name), mapping and engine limits, records no larger than the
// output ring takes, and its state directory when `state` is on.
[[nodiscard]] ProcessorOptions processor_options(const config::PipelineConfig& pipeline,
                                                 const config::ProcessorConfig& processor);

// Where the processor keeps its crash-safe state (config `state_dir`, else
// <run_dir>/<pipeline>/<name>.state beside the rings).
[[nodiscard]] std::string processor_state_dir(const config::PipelineConfig& pipeline,
                                              const config::ProcessorConfig& processor);

}  // namespace ringpipe::processors
