#pragma once
// Turns a loaded statsd_exporter mapping file (ringpipe::config) into the
// processors' MappingConfig. Pure function; thread-safe. The cache type
// "random" is served by the LRU cache (same bound, same results).

#include "ringpipe/config/mapping.hpp"
#include "ringpipe/processors/mapping.hpp"

namespace ringpipe::processors {

[[nodiscard]] MappingConfig mapping_from_config(const config::MappingConfig& file,
                                                const config::MappingCacheOptions& cache = {});

}  // namespace ringpipe::processors
