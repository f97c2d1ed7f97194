// The pipeline file's exporter sections become the exporters' options: what
// each key says reaches the component, and a key left out gives its default.

#include "ringpipe/exporters/config_adapter.hpp"

#include <gtest/gtest.h>

namespace ringpipe::exporters {
namespace {

TEST(ConfigAdapter, ResourceLimitsReachTheComponentsAndTheirDefaultsAgree) {
  const config::PrometheusExporterConfig exporter;
  EXPECT_EQ(exporter.max_connections, PrometheusExporterOptions{}.max_connections);
  EXPECT_EQ(exporter.header_timeout, PrometheusExporterOptions{}.header_timeout);
  EXPECT_EQ(exporter.quarantine_after_crashes, PrometheusExporterOptions{}.quarantine_after_crashes);
  auto p = config::parse_pipeline(R"(pipeline: t
rings:
  metrics: {size: 1MiB}
sources:
  s: {type: statsd, listen: tcp://127.0.0.1:0, output: metrics}
exporters:
  prom: {type: prometheus, input: metrics, listen: 127.0.0.1:0, max_connections: 77, header_timeout: 1500ms,
         quarantine_after_crashes: 0}
)",
                                  "p.yaml");
  ASSERT_TRUE(p) << p.error().message();
  const auto o = prometheus_options(*p, p->exporters.at(0));
  ASSERT_TRUE(o) << o.error().message();
  EXPECT_EQ(o->max_connections, 77u);
  EXPECT_EQ(o->header_timeout, std::chrono::milliseconds(1500));
  EXPECT_EQ(o->quarantine_after_crashes, 0u);
}

}  // namespace
}  // namespace ringpipe::exporters
