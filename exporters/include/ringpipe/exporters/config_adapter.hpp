#pragma once
// Builds exporter options from a validated pipeline config: ring paths come
// from the pipeline's run_dir, the reader name from `reader` (default: the
// component's name), and every ring of the pipeline is described in the
// self-metrics. Pure functions; they fail (Result) only on options this build
// cannot honour.

#include "ringpipe/common/result.hpp"
#include "ringpipe/config/pipeline.hpp"
#include "ringpipe/exporters/prometheus_exporter.hpp"
#include "ringpipe/exporters/remote_write_exporter.hpp"

namespace ringpipe::exporters {

[[nodiscard]] Result<PrometheusExporterOptions> prometheus_options(const config::PipelineConfig& pipeline,
                                                                   const config::ExporterConfig& exporter);
[[nodiscard]] Result<RemoteWriteOptions> remote_write_options(const config::PipelineConfig& pipeline,
                                                              const config::ExporterConfig& exporter);

}  // namespace ringpipe::exporters
