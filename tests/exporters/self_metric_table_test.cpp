// The exporter's own metrics come from one table (exporters/src/
// self_metric_table.hpp): what /metrics serves and what the exporter writes
// into its stats segment must carry the table's HELP text and type, including
// when another exporter serves that segment into the same family.

#include <gtest/gtest.h>

#include <map>
#include <string>
#include <string_view>

#include "prometheus_server.hpp"
#include "record_builder.hpp"
#include "ringpipe/exporters/prometheus_exporter.hpp"
#include "ringpipe/ring/ring.hpp"
#include "ringpipe/stats/stats_segment.hpp"
#include "self_metric_table.hpp"
#include "test_support.hpp"

namespace ringpipe::exporters {
namespace {

using namespace std::chrono_literals;
using metric::MetricType;
using testing::origin;
using testing::RecordBuilder;

std::string_view type_name(SelfMetricType t) {
  switch (t) {
    case SelfMetricType::kCounter:
      return "counter";
    case SelfMetricType::kGauge:
      return "gauge";
    case SelfMetricType::kHistogram:
      return "histogram";
  }
  return "?";
}

const SelfMetric* by_name(std::string_view name) {
  for (const SelfMetric& m : kSelfMetrics) {
    if (m.name == name) return &m;
  }
  return nullptr;
}

// "# HELP <name> <text>" / "# TYPE <name> <type>" lines of a page, by name.
struct Descriptions {
  std::map<std::string, std::string> help;
  std::map<std::string, std::string> type;
  std::map<std::string, int> help_lines;
};

Descriptions parse_descriptions(const std::string& page) {
  Descriptions out;
  for (std::size_t at = 0; at < page.size();) {
    std::size_t end = page.find('\n', at);
    if (end == std::string::npos) end = page.size();
    const std::string_view line(page.data() + at, end - at);
    at = end + 1;
    for (const std::string_view kind : {"# HELP ", "# TYPE "}) {
      if (!line.starts_with(kind)) continue;
      const std::string_view rest = line.substr(kind.size());
      const std::size_t space = rest.find(' ');
      if (space == std::string_view::npos) continue;
      const std::string name(rest.substr(0, space));
      const std::string text(rest.substr(space + 1));
      if (kind == "# HELP ") {
        out.help[name] = text;
        ++out.help_lines[name];
      } else {
        out.type[name] = text;
      }
    }
  }
  return out;
}

TEST(SelfMetricTable, PageAndStatsSegmentServeTheTablesHelpAndType) {
  ringpipe::testing::ScratchDir dir;
  const std::string path = dir.file("metrics");
  ring::RingOptions ro;
  ro.lane_capacity_bytes = 1 << 20;
  ro.lanes = 2;
  ro.overflow = ring::Overflow::kBlock;
  auto ring = ring::Ring::create(path, ro);
  ASSERT_TRUE(ring) << ring.error().message();
  auto producer = ring::Producer::attach(*ring);
  ASSERT_TRUE(producer);
  RecordBuilder rec(origin(3));
  rec.begin(1).series(MetricType::kGauge, "g", {}, {1}).end(1);
  ASSERT_TRUE(rec.ok());
  ASSERT_EQ(producer->write(metric::kMetricBatchRecord, rec.take(), 2s), ring::WriteStatus::kOk);

  // Exporter "a" writes its own segment; exporter "b" serves every segment of
  // the directory, so a's segment entries land in b's own families.
  auto options = [&](const std::string& name) {
    PrometheusExporterOptions o;
    o.input = path;
    o.reader_name = name;
    o.listen = "127.0.0.1:0";
    o.stats_dir = dir.path().string();
    o.stats_path = dir.file(name + ".stats");
    o.component = name;
    o.max_connections = 8;  // a worker thread each; the page is the same
    return o;
  };
  auto a = PrometheusExporter::create(options("a"));
  ASSERT_TRUE(a) << a.error().message();
  auto b = PrometheusExporter::create(options("b"));
  ASSERT_TRUE(b) << b.error().message();
  ASSERT_TRUE((*a)->start());
  ASSERT_TRUE((*b)->start());
  ASSERT_TRUE(
      ringpipe::testing::wait_until([&] { return (*a)->stats().records >= 1 && (*b)->stats().records >= 1; }, 5s));
  ASSERT_EQ(testing::http_get((*a)->port(), "/metrics").first, 200);  // a's scrape counters move
  ASSERT_TRUE(ringpipe::testing::wait_until([&] { return (*a)->stats().scrapes >= 1; }, 5s));

  const auto [status, page] = testing::http_get((*b)->port(), "/metrics");
  ASSERT_EQ(status, 200);
  ASSERT_NE(page.find("ringpipe_exporter_records_total{component=\"a\"}"), std::string::npos)
      << "a's segment is served on b's page\n"
      << page;
  const Descriptions d = parse_descriptions(page);

  // Every table entry meant for the page is there, as declared.
  for (const SelfMetric& m : kSelfMetrics) {
    if (!m.on_page()) continue;
    const std::string name(m.name);
    ASSERT_TRUE(d.help.count(name)) << "not served: " << name << "\n" << page;
    EXPECT_EQ(d.help.at(name), m.help) << name;
    EXPECT_EQ(d.help_lines.at(name), 1) << name;
    ASSERT_TRUE(d.type.count(name)) << name;
    EXPECT_EQ(d.type.at(name), type_name(m.type)) << name;
  }
  // Every self-metric family on the page, a's served segment entries
  // included, is a table entry with the table's text.
  for (const auto& [name, help] : d.help) {
    if (!name.starts_with("ringpipe_exporter_") && name != "ringpipe_processor_series") continue;
    const SelfMetric* m = by_name(name);
    ASSERT_NE(m, nullptr) << "self-metric family missing from kSelfMetrics: " << name;
    EXPECT_EQ(help, m->help) << name;
    EXPECT_EQ(d.type.at(name), type_name(m->type)) << name;
  }

  // a's segment holds exactly the table's segment entries, as declared.
  auto seg = stats::StatsReader::open(dir.file("a.stats"));
  ASSERT_TRUE(seg) << seg.error().message();
  std::map<std::string, int> seen;
  for (const stats::StatsEntry& e : seg->snapshot()) {
    const SelfMetric* m = by_name("ringpipe_" + e.name);
    ASSERT_NE(m, nullptr) << "segment entry missing from kSelfMetrics: " << e.name;
    EXPECT_TRUE(m->in_segment()) << e.name;
    EXPECT_EQ(e.help, m->help) << e.name;
    EXPECT_EQ(e.type, m->type == SelfMetricType::kCounter ? stats::StatsType::kCounter : stats::StatsType::kGauge)
        << e.name;
    ++seen[e.name];
  }
  for (const SelfMetric& m : kSelfMetrics) {
    if (m.in_segment()) {
      EXPECT_EQ(seen[std::string(m.segment_name())], 1) << m.name;
    }
  }
}

}  // namespace
}  // namespace ringpipe::exporters
