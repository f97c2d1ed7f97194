#pragma once
// A processor's stats: which EngineStats fields become which processor_*
// entries of its stats segment, with their help texts and labels, and the
// configured budgets beside them. stats::Publisher copies them there (every
// interval once started, once more at stop). Counters move by their growth
// since the previous publish, so a restarted processor continues the previous
// run's values; gauges (live series, state bytes, the budgets) are stored as
// they are. Each publish reads Processor::stats(), which takes the per-thread
// slots' mutexes, never a shard's data.

#include <memory>

#include "ringpipe/common/result.hpp"
#include "ringpipe/processors/processor.hpp"
#include "ringpipe/stats/publisher.hpp"
#include "ringpipe/stats/stats_segment.hpp"

namespace ringpipe::processors {

// Registers every processor_* metric in `segment` and publishes them once;
// fails on a full segment or a name registered before with another type. The
// segment and the processor must outlive the publisher.
[[nodiscard]] Result<std::unique_ptr<stats::Publisher>> create_processor_publisher(stats::StatsSegment& segment,
                                                                                   const Processor& processor,
                                                                                   const EngineOptions& options);

}  // namespace ringpipe::processors
