// End to end: a real metric ring, the exporters, and a real Prometheus
// (Debian's /usr/bin/prometheus) scraping /metrics or receiving remote_write.

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <string_view>
#include <thread>
#include <vector>

#include <spdlog/sinks/ringbuffer_sink.h>

#include "gunzip.hpp"
#include "prometheus_server.hpp"
#include "record_builder.hpp"
#include "ringpipe/common/log.hpp"
#include "ringpipe/exporters/prometheus_exporter.hpp"
#include "ringpipe/exporters/remote_write_exporter.hpp"
#include "ringpipe/processors/aggregator.hpp"
#include "ringpipe/ring/ring.hpp"
#include "ringpipe/sample/sample_batch.hpp"
#include "ringpipe/stats/stats_segment.hpp"
#include "test_support.hpp"

namespace ringpipe::exporters {
namespace {

using namespace std::chrono_literals;
using metric::MetricType;
using testing::origin;
using testing::RecordBuilder;

bool have_prometheus() { return ::access(testing::kPrometheusBinary, X_OK) == 0; }

ring::Ring make_ring(const std::string& path) { return testing::make_block_ring(path, 4, 1 << 20); }

// A started exporter reading the ring at `path`, on 127.0.0.1 at a free port;
// nullptr, with the test failed, when it could not be made or started.
std::unique_ptr<PrometheusExporter> started_exporter(const std::string& path) {
  PrometheusExporterOptions o;
  o.input = path;
  o.listen = "127.0.0.1:0";
  auto exp = PrometheusExporter::create(o);
  if (!exp) {
    ADD_FAILURE() << exp.error().message();
    return nullptr;
  }
  if (Status ok = (*exp)->start(); !ok) {
    ADD_FAILURE() << ok.error().message();
    return nullptr;
  }
  return std::move(*exp);
}

void write(ring::Producer& p, RecordBuilder& b) {
  ASSERT_TRUE(b.ok());
  const auto rec = b.take();
  ASSERT_EQ(p.write(metric::kMetricBatchRecord, rec, 2s), ring::WriteStatus::kOk);
}

// promtool's exit status on the exposition: 0 clean, 3 lint remarks only, 1 broken.
int promtool_check(const std::string& dir, const std::string& text) {
  const std::string file = dir + "/exposition.txt";
  std::ofstream(file) << text;
  const std::string cmd =
      std::string(testing::kPromtoolBinary) + " check metrics < " + file + " > " + dir + "/promtool.out 2>&1";
  const int st = std::system(cmd.c_str());
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

std::string file_text(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

TEST(PrometheusExporterE2E, RealPrometheusScrapesExactValuesAndPromtoolAccepts) {
  if (!have_prometheus()) GTEST_SKIP() << testing::kPrometheusBinary << " not installed";
  ringpipe::testing::ScratchDir dir;
  const std::string path = dir.file("metrics");
  ring::Ring ring = make_ring(path);
  auto producer = ring::Producer::attach(ring);
  ASSERT_TRUE(producer);
  RecordBuilder b(origin(11));
  b.begin(1)
      .series(MetricType::kCounter, "requests", {{"code", "200"}}, {5}, "Requests served.")
      .series(MetricType::kGauge, "temp", {{"room", "a"}}, {21.5})
      .series(MetricType::kSummary, "latency", {}, {3, 0.6, 0.5, 0.2, 0.99, 0.3})
      .series(MetricType::kHistogram, "size", {}, {4, 10, 1, 1, 5, 3, INFINITY, 4})
      .series(MetricType::kGauge, "latency_count", {}, {99})    // collides with the summary: quarantined
      .series(MetricType::kCounter, "size", {{"x", "1"}}, {1})  // type conflict: quarantined
      .end(1);
  write(*producer, b);

  auto exp = started_exporter(path);
  ASSERT_TRUE(exp);
  ASSERT_TRUE(ringpipe::testing::wait_until([&] { return exp->ready(); }, 5s));
  EXPECT_EQ(exp->stats().conflicts, 2u);

  testing::PrometheusServer prom(dir.path().string(), exp->port());
  ASSERT_TRUE(prom.start()) << prom.log_tail();
  const auto q = [&](const std::string& e, double want) { return prom.wait_for_value(e, want, 20s); };
  EXPECT_EQ(q("requests{code=\"200\",job=\"ringpipe\"}", 5), 5.0) << prom.log_tail();
  EXPECT_EQ(q("temp{room=\"a\"}", 21.5), 21.5);
  EXPECT_EQ(q("latency_count", 3), 3.0);
  EXPECT_EQ(q("latency{quantile=\"0.99\"}", 0.3), 0.3);
  EXPECT_EQ(q("size_count", 4), 4.0);
  EXPECT_EQ(q("size_bucket{le=\"5\"}", 3), 3.0);
  EXPECT_EQ(q("size_bucket{le=\"+Inf\"}", 4), 4.0);
  EXPECT_EQ(prom.query("count(size)"), std::nullopt) << "the conflicting counter is not served";
  EXPECT_EQ(q("ringpipe_ring_reader_records_total{reader=\"prometheus\",ring=\"metrics\"}", 1), 1.0);
  EXPECT_EQ(q("ringpipe_ring_lane_records_total{ring=\"metrics\",lane=\"0\"}", 1), 1.0);
  EXPECT_EQ(q("ringpipe_exporter_conflicts_total", 2), 2.0);
  EXPECT_EQ(q("up{job=\"ringpipe\"}", 1), 1.0);

  RecordBuilder c(origin(11, 0, 1, 2));
  c.series(MetricType::kCounter, "requests", {{"code", "200"}}, {9}, "Requests served.")
      .expire(MetricType::kGauge, "temp", {{"room", "a"}});
  write(*producer, c);
  EXPECT_EQ(q("requests{code=\"200\"}", 9), 9.0);

  auto [status, text] = testing::http_get(exp->port(), "/metrics");
  ASSERT_EQ(status, 200);
  EXPECT_EQ(text.find("temp{"), std::string::npos) << "expired";
  const int rc = promtool_check(dir.path().string(), text);
  EXPECT_TRUE(rc == 0 || rc == 3) << "promtool exit " << rc << "\n" << file_text(dir.file("promtool.out"));
}

// Tags any source can send, through the real aggregation engine: a reserved
// __name__, a quantile on a timer, an le on a histogram, two tags that escape
// to one name, a value that is not UTF-8. Prometheus must still take the page.
TEST(PrometheusExporterE2E, HostileTagsLeaveThePageScrapeable) {
  if (!have_prometheus()) GTEST_SKIP() << testing::kPrometheusBinary << " not installed";
  ringpipe::testing::ScratchDir dir;
  const std::string path = dir.file("metrics");
  ring::Ring ring = make_ring(path);
  auto producer = ring::Producer::attach(ring);
  ASSERT_TRUE(producer);

  processors::EngineOptions eo;
  processors::MappingRule hist;
  hist.match = "h.*";
  hist.name = "h_seconds";
  hist.observer_type = processors::ObserverType::kHistogram;
  hist.buckets = {1, 10};
  eo.mapping.rules = {hist};
  auto engine = processors::AggregatorEngine::create(eo);
  ASSERT_TRUE(engine) << engine.error().message();
  std::vector<std::byte> buf(1 << 16);
  sample::BatchWriter w(buf, 1, 0);
  const sample::Tag reserved[] = {{"__name__", "evil"}, {"a", "1"}};
  const sample::Tag quantile[] = {{"quantile", "0.5"}};
  const sample::Tag le[] = {{"le", "7"}};
  const sample::Tag twice[] = {{"a-b", "1"}, {"a.b", "2"}};
  const sample::Tag bytes[] = {{"v", "\xff\xfe"}};
  ASSERT_TRUE(w.append(sample::Kind::kCounter, "c", 1, 1.0, reserved));
  ASSERT_TRUE(w.append(sample::Kind::kTimer, "t", 0.5, 1.0, quantile));
  ASSERT_TRUE(w.append(sample::Kind::kHistogram, "h.x", 0.5, 1.0, le));
  ASSERT_TRUE(w.append(sample::Kind::kGauge, "g", 3, 1.0, twice));
  ASSERT_TRUE(w.append(sample::Kind::kCounter, "u", 1, 1.0, bytes));
  const std::size_t n = w.finish();
  engine->add_batch(std::span<const std::byte>(buf.data(), n), 1'000'000'000);
  processors::VectorSink sink;
  engine->flush(1'000'000'000, 1'700'000'000'000'000'000, sink);
  ASSERT_FALSE(sink.records().empty());
  for (const auto& rec : sink.records()) {
    ASSERT_EQ(producer->write(metric::kMetricBatchRecord, rec, 2s), ring::WriteStatus::kOk);
  }

  auto exp = started_exporter(path);
  ASSERT_TRUE(exp);
  ASSERT_TRUE(ringpipe::testing::wait_until([&] { return exp->ready(); }, 5s));
  auto [status, text] = testing::http_get(exp->port(), "/metrics");
  ASSERT_EQ(status, 200);
  const int rc = promtool_check(dir.path().string(), text);
  EXPECT_TRUE(rc == 0 || rc == 3) << "promtool exit " << rc << "\n"
                                  << file_text(dir.file("promtool.out")) << "\n"
                                  << text;

  testing::PrometheusServer prom(dir.path().string(), exp->port());
  ASSERT_TRUE(prom.start()) << prom.log_tail();
  EXPECT_EQ(prom.wait_for_value("up{job=\"ringpipe\"}", 1, 20s), 1.0) << prom.log_tail();
  EXPECT_EQ(prom.wait_for_value("c{a=\"1\"}", 1, 20s), 1.0);
  EXPECT_EQ(prom.wait_for_value("t_count", 1, 20s), 1.0);
  EXPECT_EQ(prom.wait_for_value("h_seconds_bucket{le=\"1\"}", 1, 20s), 1.0);
  EXPECT_EQ(prom.wait_for_value("g{a_b=\"2\"}", 3, 20s), 3.0);
  EXPECT_EQ(prom.wait_for_value("u", 1, 20s), 1.0);
  const processors::EngineStats st = engine->stats();
  EXPECT_EQ(st.labels_dropped_reserved, 1u);
  EXPECT_EQ(st.labels_dropped_type_owned, 2u);
  EXPECT_EQ(st.labels_dropped_duplicate, 1u);
  EXPECT_EQ(st.labels_dropped_invalid, 1u);
}

// The sample lines of a page whose names do not start with `ringpipe_`
// (the pipeline's, not the exporter's own), and its HELP/TYPE lines of those.
std::vector<std::string> pipeline_lines(const std::string& page) {
  std::vector<std::string> out;
  std::size_t at = 0;
  while (at < page.size()) {
    std::size_t nl = page.find('\n', at);
    if (nl == std::string::npos) nl = page.size();
    const std::string line = page.substr(at, nl - at);
    at = nl + 1;
    const std::string_view name = line.rfind("# ", 0) == 0 ? std::string_view(line).substr(7) : line;
    if (name.rfind("ringpipe_", 0) != 0) out.push_back(line);
  }
  std::sort(out.begin(), out.end());
  return out;
}

// The page written straight from the state and the page prometheus-cpp writes
// from its objects (render_with_prometheus_cpp), served by two exporters of
// one ring: the same pipeline lines, special values and escapes included; a
// pipeline family named like a self-metric left out by both; promtool takes
// the page and a real Prometheus reads NaN, -Inf, -0 and 1e-300 back.
TEST(PrometheusExporterE2E, WrittenPageEqualsPrometheusCppPageAndPromtoolAccepts) {
  ringpipe::testing::ScratchDir dir;
  const std::string path = dir.file("metrics");
  ring::Ring ring = make_ring(path);
  auto producer = ring::Producer::attach(ring);
  ASSERT_TRUE(producer);
  RecordBuilder b(origin(11));
  b.begin(1)
      .series(MetricType::kCounter, "requests", {{"code", "200"}, {"path", "/a\"b\\c\nd"}}, {9007199254740993.0},
              "Requests served.")
      .series(MetricType::kGauge, "temp", {{"room", "nan"}}, {NAN})
      .series(MetricType::kGauge, "temp", {{"room", "neg_inf"}}, {-INFINITY})
      .series(MetricType::kGauge, "temp", {{"room", "neg_zero"}}, {-0.0})
      .series(MetricType::kGauge, "temp", {{"room", "tiny"}}, {1e-300})
      .series(MetricType::kGauge, "temp", {{"room", "third"}}, {1.0 / 3})
      .series(MetricType::kSummary, "latency", {}, {3, 0.6, 0.5, NAN, 0.99, 0.3})
      .series(MetricType::kHistogram, "size", {}, {4, 10, 1e-300, 1, 5, 3, INFINITY, 4})
      .series(MetricType::kHistogram, "size", {{"k", "open"}}, {4, 10, 0.25, 1})
      .series(MetricType::kGauge, "ringpipe_exporter_series", {{"from", "elsewhere"}}, {7})
      .prom_sample(MetricType::kHistogram, "rpc_seconds_bucket", 11, {{"svc", "a"}, {"le", "0.5"}}, 2, "RPC.")
      .prom_sample(MetricType::kHistogram, "rpc_seconds_sum", 11, {{"svc", "a"}}, 0.75, "RPC.")
      .prom_sample(MetricType::kHistogram, "rpc_seconds_count", 11, {{"svc", "a"}}, 3, "RPC.")
      .prom_sample(MetricType::kSummary, "gc_seconds", 10, {{"quantile", "0.5"}}, 0.25, "GC.")
      .end(1);
  write(*producer, b);

  const auto serve = [&](const std::string& reader, bool old_path) {
    PrometheusExporterOptions o;
    o.input = path;
    o.reader_name = reader;
    o.listen = "127.0.0.1:0";
    o.request_resync = false;
    o.render_with_prometheus_cpp = old_path;
    auto exp = PrometheusExporter::create(o);
    EXPECT_TRUE(exp) << exp.error().message();
    return exp ? std::move(*exp) : nullptr;
  };
  auto ours = serve("written", false);
  auto theirs = serve("objects", true);
  ASSERT_TRUE(ours && theirs);
  ASSERT_TRUE(ours->start());
  ASSERT_TRUE(theirs->start());
  ASSERT_TRUE(ringpipe::testing::wait_until([&] { return ours->ready() && theirs->ready(); }, 5s));
  auto [status, text] = testing::http_get(ours->port(), "/metrics");
  ASSERT_EQ(status, 200);
  auto [old_status, old_text] = testing::http_get(theirs->port(), "/metrics");
  ASSERT_EQ(old_status, 200);
  const std::vector<std::string> lines = pipeline_lines(text);
  EXPECT_EQ(lines, pipeline_lines(old_text)) << text << "\n----\n" << old_text;
  EXPECT_EQ(lines.size(), 35u) << text;
  EXPECT_NE(text.find("temp{room=\"nan\"} Nan\n"), std::string::npos) << text;
  EXPECT_NE(text.find("requests{code=\"200\",path=\"/a\\\"b\\\\c\\nd\"} 9007199254740992\n"), std::string::npos)
      << text;
  EXPECT_EQ(text.find("from=\"elsewhere\""), std::string::npos) << "a self-metric's name is the exporter's";
  EXPECT_EQ(old_text.find("from=\"elsewhere\""), std::string::npos);
  EXPECT_EQ(ours->stats().series, theirs->stats().series);
  const int rc = promtool_check(dir.path().string(), text);
  EXPECT_TRUE(rc == 0 || rc == 3) << "promtool exit " << rc << "\n"
                                  << file_text(dir.file("promtool.out")) << "\n"
                                  << text;

  if (!have_prometheus()) GTEST_SKIP() << testing::kPrometheusBinary << " not installed";
  testing::PrometheusServer prom(dir.path().string(), ours->port());
  ASSERT_TRUE(prom.start()) << prom.log_tail();
  EXPECT_EQ(prom.wait_for_value("up{job=\"ringpipe\"}", 1, 20s), 1.0) << prom.log_tail();
  EXPECT_EQ(prom.wait_for_value("temp{room=\"tiny\"}", 1e-300, 20s), 1e-300);
  EXPECT_EQ(prom.wait_for_value("temp{room=\"neg_inf\"}", -INFINITY, 20s), -INFINITY);
  EXPECT_EQ(prom.wait_for_value("size_bucket{k=\"open\",le=\"+Inf\"}", 4, 20s), 4.0);
  EXPECT_EQ(prom.wait_for_value("rpc_seconds_count{svc=\"a\"}", 3, 20s), 3.0);
  const auto nan = prom.query("temp{room=\"nan\"}");
  ASSERT_TRUE(nan.has_value()) << prom.log_tail();
  EXPECT_TRUE(std::isnan(*nan));
}

TEST(PrometheusExporterE2E, ServesEveryComponentsStatsSegmentWithExactValues) {
  ringpipe::testing::ScratchDir dir;
  const std::string path = dir.file("metrics");
  ring::Ring ring = make_ring(path);
  // A source's segment, as an ingest process writes it.
  auto source = stats::StatsSegment::create(dir.file("statsd.stats"), "statsd", "source");
  ASSERT_TRUE(source);
  auto invalid_type = source->register_counter("source_parse_errors_total", "Input refused by the parser, by reason.",
                                               {{"reason", "invalid_type"}});
  auto utf8 = source->register_counter("source_parse_errors_total", "Input refused by the parser, by reason.",
                                       {{"reason", "invalid_utf8"}});
  auto drops =
      source->register_counter("source_kernel_drops_total", "Kernel drops.", {{"socket", "udp 127.0.0.1:9125 #0"}});
  auto open_conns = source->register_gauge("source_connections_open", "Open.", {{"transport", "tcp"}});
  // Same name as the processor's counter (served first: files go by name), other type.
  auto clash = source->register_gauge("processor_budget_drops_total", "Wrong type.");
  ASSERT_TRUE(invalid_type && utf8 && drops && open_conns && clash);
  (*invalid_type)->fetch_add(3, std::memory_order_relaxed);
  (*drops)->fetch_add(12345678901, std::memory_order_relaxed);
  (*open_conns)->store(2, std::memory_order_relaxed);
  // A processor's segment with a double gauge.
  auto proc = stats::StatsSegment::create(dir.file("agg.stats"), "agg", "processor");
  ASSERT_TRUE(proc);
  auto budget = proc->register_counter("processor_budget_drops_total", "Budget drops.");
  auto lag = proc->register_gauge("processor_flush_lag_seconds", "Lag.", {}, stats::StatsEncoding::kDouble);
  ASSERT_TRUE(budget && lag);
  (*budget)->store(7, std::memory_order_relaxed);
  stats::stats_store_double(**lag, 0.125);
  // Files that must not break the exposition.
  std::ofstream(dir.file("junk.stats")) << "not a segment";
  {
    std::filesystem::copy_file(dir.file("agg.stats"), dir.file("future.stats"));
    std::fstream f(dir.file("future.stats"), std::ios::in | std::ios::out | std::ios::binary);
    const std::uint32_t v = 99;
    f.seekp(8);
    f.write(reinterpret_cast<const char*>(&v), sizeof v);
  }

  PrometheusExporterOptions o;
  o.input = path;
  o.listen = "127.0.0.1:0";
  o.stats_dir = dir.path().string();
  o.stats_path = dir.file("prom.stats");
  o.component = "prom";
  auto exp = PrometheusExporter::create(o);
  ASSERT_TRUE(exp) << exp.error().message();
  ASSERT_TRUE((*exp)->start());
  auto [status, text] = testing::http_get((*exp)->port(), "/metrics");
  ASSERT_EQ(status, 200);
  for (const char* line : {
           "ringpipe_source_parse_errors_total{component=\"statsd\",reason=\"invalid_type\"} 3\n",
           "ringpipe_source_parse_errors_total{component=\"statsd\",reason=\"invalid_utf8\"} 0\n",
           "ringpipe_source_kernel_drops_total{component=\"statsd\",socket=\"udp 127.0.0.1:9125 #0\"} 12345678901\n",
           "ringpipe_source_connections_open{component=\"statsd\",transport=\"tcp\"} 2\n",
           "ringpipe_processor_budget_drops_total{component=\"agg\"} 7\n",
           "ringpipe_processor_flush_lag_seconds{component=\"agg\"} 0.125\n",
           "ringpipe_component_up{component=\"statsd\",kind=\"source\"} 1\n",
           "# TYPE ringpipe_source_parse_errors_total counter\n",
           "# HELP ringpipe_source_parse_errors_total Input refused by the parser, by reason.\n",
       }) {
    EXPECT_NE(text.find(line), std::string::npos) << "missing: " << line << "\n" << text;
  }
  EXPECT_EQ(text.find("component=\"prom\""), std::string::npos) << "own segment is described in-process";
  EXPECT_EQ(text.find("ringpipe_processor_budget_drops_total{component=\"statsd\""), std::string::npos) << "type clash";
  EXPECT_NE(text.find("ringpipe_exporter_stats_skipped_total 1\n"), std::string::npos) << text;
  EXPECT_NE(text.find("ringpipe_exporter_stats_open_failures_total 2\n"), std::string::npos) << text;
  const int rc = promtool_check(dir.path().string(), text);
  EXPECT_TRUE(rc == 0 || rc == 3) << "promtool exit " << rc << "\n" << file_text(dir.file("promtool.out"));

  // Values change in place; the next scrape shows them.
  (*invalid_type)->fetch_add(1, std::memory_order_relaxed);
  auto [status2, text2] = testing::http_get((*exp)->port(), "/metrics");
  ASSERT_EQ(status2, 200);
  EXPECT_NE(text2.find("ringpipe_source_parse_errors_total{component=\"statsd\",reason=\"invalid_type\"} 4\n"),
            std::string::npos);
  (*exp)->stop();

  // The exporter's own segment counts its scrapes for other readers.
  auto own = stats::StatsReader::open(dir.file("prom.stats"));
  ASSERT_TRUE(own) << own.error().message();
  EXPECT_EQ(own->info().component, "prom");
  EXPECT_EQ(own->info().kind, "exporter");
  bool saw_scrapes = false;
  for (const stats::StatsEntry& e : own->snapshot()) {
    if (e.name == "exporter_scrapes_total") {
      saw_scrapes = true;
      EXPECT_EQ(e.raw, 2u);
    }
    if (e.name == "exporter_scrape_duration_seconds_total") {
      EXPECT_GT(e.value(), 0.0);
    }
  }
  EXPECT_TRUE(saw_scrapes);
}

TEST(PrometheusExporterE2E, HealthReadyAndBasicAuth) {
  ringpipe::testing::ScratchDir dir;
  const std::string path = dir.file("metrics");
  ring::Ring ring = make_ring(path);
  auto producer = ring::Producer::attach(ring);
  ASSERT_TRUE(producer);
  PrometheusExporterOptions o;
  o.input = path;
  o.listen = "127.0.0.1:0";
  o.ready_timeout = 60s;
  o.basic_auth_users = {{"scraper", "s3cret"}};
  auto exp = PrometheusExporter::create(o);
  ASSERT_TRUE(exp) << exp.error().message();
  ASSERT_TRUE((*exp)->start());
  const std::uint16_t port = (*exp)->port();
  EXPECT_EQ(testing::http_get(port, "/-/healthy").first, 200);
  EXPECT_EQ(testing::http_get(port, "/-/ready").first, 503) << "no snapshot yet";
  EXPECT_EQ(testing::http_get(port, "/metrics").first, 401);
  EXPECT_EQ(testing::http_get(port, "/metrics", "Basic c2NyYXBlcjp3cm9uZw==").first, 401);  // scraper:wrong
  auto ok = testing::http_get(port, "/metrics", "Basic c2NyYXBlcjpzM2NyZXQ=");              // scraper:s3cret
  EXPECT_EQ(ok.first, 200);
  EXPECT_NE(ok.second.find("ringpipe_exporter_ready 0"), std::string::npos);
  EXPECT_TRUE(std::filesystem::exists(path + ".resync")) << "a starting exporter asks for a snapshot";
  RecordBuilder b(origin(3));
  b.begin(1).series(MetricType::kGauge, "g", {}, {1}).end(1);
  write(*producer, b);
  EXPECT_TRUE(ringpipe::testing::wait_until([&] { return testing::http_get(port, "/-/ready").first == 200; }, 5s));
}

// Writes one complete snapshot of `series` gauges shaped like a busy
// pipeline's (several labels, mostly repeated), 500 a record.
void write_gauges(ring::Ring& ring, int series) {
  auto producer = ring::Producer::attach(ring);
  ASSERT_TRUE(producer);
  for (int first = 0; first < series; first += 500) {
    RecordBuilder b(origin(5), 4 << 20);
    if (first == 0) b.begin(1);
    for (int i = first; i < std::min(series, first + 500); ++i) {
      b.series(MetricType::kGauge, "http_request_size_bytes",
               {{"host", "edge-" + std::to_string(i % 40)},
                {"route", "/api/v1/items/" + std::to_string(i % 97)},
                {"i", std::to_string(i)}},
               {static_cast<double>(i) * 1.5}, "Size of the last request on a route.");
    }
    if (first + 500 >= series) b.end(1);
    ASSERT_TRUE(b.ok());
    const auto rec = b.take();
    ASSERT_EQ(producer->write(metric::kMetricBatchRecord, rec, 5s), ring::WriteStatus::kOk);
  }
}

// The page without ringpipe's self-metrics, which count the scrapes
// themselves and so differ from one page to the next.
std::string without_self_metrics(const std::string& page) {
  std::string out;
  for (std::size_t at = 0; at < page.size();) {
    std::size_t end = page.find('\n', at);
    end = end == std::string::npos ? page.size() : end + 1;
    const std::string_view line(page.data() + at, end - at);
    if (!line.starts_with("ringpipe_") && !line.starts_with("# HELP ringpipe_") &&
        !line.starts_with("# TYPE ringpipe_")) {
      out += line;
    }
    at = end;
  }
  return out;
}

bool have_promtool() { return ::access(testing::kPromtoolBinary, X_OK) == 0; }

// Prometheus asks for gzip at every scrape: a page of many series goes
// compressed and inflates to what a scrape without Accept-Encoding gets.
TEST(PrometheusExporterE2E, GzipScrapeInflatesToTheIdentityPageAndIsMuchSmaller) {
  ringpipe::testing::ScratchDir dir;
  const std::string path = dir.file("metrics");
  ring::Ring ring = make_ring(path);
  auto exp = started_exporter(path);
  ASSERT_TRUE(exp);
  constexpr int kSeries = 20'000;
  write_gauges(ring, kSeries);
  ASSERT_TRUE(ringpipe::testing::wait_until([&] { return exp->stats().series == kSeries; }, 20s));
  const std::uint16_t port = exp->port();

  const testing::RawHttpResponse plain = testing::raw_http_get(port, "/metrics");
  ASSERT_EQ(plain.status, 200) << plain.error;
  EXPECT_EQ(plain.header("Content-Encoding"), std::nullopt);
  EXPECT_EQ(plain.header("Content-Length"), std::to_string(plain.body.size()));
  EXPECT_EQ(testing::sample_value(plain.body, "ringpipe_exporter_http_requests_total{path=\"/metrics\",code=\"200\"}"),
            0.0)
      << "the family is on the page from the first scrape";
  const testing::RawHttpResponse gz = testing::raw_http_get(port, "/metrics", {{"Accept-Encoding", "gzip"}});
  ASSERT_EQ(gz.status, 200) << gz.error;
  EXPECT_EQ(gz.header("Content-Encoding"), "gzip");
  EXPECT_EQ(gz.header("Content-Length"), std::to_string(gz.body.size()));
  EXPECT_EQ(gz.header("Vary"), "Accept, Accept-Encoding");  // the page depends on both
  EXPECT_EQ(gz.header("Content-Type"), plain.header("Content-Type"));
  const std::optional<std::string> inflated = testing::gunzip(gz.body);
  ASSERT_TRUE(inflated) << "not one whole gzip member: " << gz.body.size() << " bytes";
  const std::string last = "http_request_size_bytes{host=\"edge-39\",route=\"/api/v1/items/17\",i=\"19999\"}";
  EXPECT_EQ(testing::sample_value(*inflated, last), 19999 * 1.5);
  EXPECT_EQ(without_self_metrics(*inflated), without_self_metrics(plain.body));
  EXPECT_GT(without_self_metrics(plain.body).size(), plain.body.size() / 2) << "the pipeline's series were compared";
  EXPECT_LT(gz.body.size() * 5, plain.body.size())
      << "gzip " << gz.body.size() << " bytes, identity " << plain.body.size();
  RecordProperty("identity_bytes", std::to_string(plain.body.size()));
  RecordProperty("gzip_bytes", std::to_string(gz.body.size()));
  if (have_promtool()) {
    const int rc = promtool_check(dir.path().string(), *inflated);
    EXPECT_TRUE(rc == 0 || rc == 3) << "promtool exit " << rc << "\n" << file_text(dir.file("promtool.out"));
  }
}

// A page's self-metrics are read after its series: a page that shows the
// series of a record also counts that record. The writer adds one series per
// record while scrapes run, so a page whose counters were read before its
// series walk shows more series than applied records.
TEST(PrometheusExporterE2E, APageNeverShowsASeriesWithoutTheRecordThatAppliedIt) {
  ringpipe::testing::ScratchDir dir;
  const std::string path = dir.file("metrics");
  ring::Ring ring = make_ring(path);
  auto exp = started_exporter(path);
  ASSERT_TRUE(exp);
  const std::uint16_t port = exp->port();
  constexpr int kRecords = 3000;
  std::atomic<bool> written{false};
  std::thread writer([&] {
    auto producer = ring::Producer::attach(ring);
    ASSERT_TRUE(producer);
    for (int i = 0; i < kRecords; ++i) {
      RecordBuilder b(origin(7, 0, 1, static_cast<std::uint64_t>(i) + 1));
      b.series(MetricType::kCounter, "s_" + std::to_string(i), {}, {1});
      write(*producer, b);
      std::this_thread::sleep_for(100us);
    }
    written = true;
  });
  int pages = 0;
  int ahead = 0;
  std::string first_ahead;
  for (int k = 0; k < 100'000; ++k) {
    const bool last = written.load();
    const auto [code, body] = testing::http_get(port, "/metrics");
    ASSERT_EQ(code, 200);
    ++pages;
    std::size_t series = 0;
    for (std::size_t at = body.find("\ns_"); at != std::string::npos; at = body.find("\ns_", at + 1)) ++series;
    const double records = testing::sample_value(body, "ringpipe_exporter_records_total").value_or(-1);
    if (static_cast<double>(series) > records) {
      if (++ahead == 1) first_ahead = std::to_string(series) + " series, records_total " + std::to_string(records);
    }
    if (last && series == kRecords) break;
  }
  writer.join();
  EXPECT_EQ(ahead, 0) << ahead << " of " << pages
                      << " pages showed series of records they did not count; first: " << first_ahead;
  EXPECT_GT(pages, 20) << "scrapes ran while the records were applied";
}

// An exporter stopped while a page renders lets that render finish first: it
// reads the HTTP endpoint's counters at its end, so the endpoint must not be
// gone (its pointer cleared before its threads were joined: SIGSEGV).
TEST(PrometheusExporterE2E, StoppingWhileAPageRendersLetsTheRenderFinish) {
  constexpr int kSeries = 100'000;
  for (int attempt = 1; attempt <= 3; ++attempt) {  // destroyed at 1/5 .. 3/5 of a scrape's time
    ringpipe::testing::ScratchDir dir;
    const std::string path = dir.file("metrics");
    ring::Ring ring = make_ring(path);
    auto exp = started_exporter(path);
    ASSERT_TRUE(exp);
    write_gauges(ring, kSeries);
    ASSERT_TRUE(ringpipe::testing::wait_until([&] { return exp->stats().series == kSeries; }, 60s));
    const std::uint16_t port = exp->port();
    const auto t0 = std::chrono::steady_clock::now();
    ASSERT_EQ(testing::raw_http_get(port, "/metrics").status, 200);
    const auto scrape_time = std::chrono::steady_clock::now() - t0;
    std::thread scrape([port] { (void)testing::raw_http_get(port, "/metrics", {}, 30s); });
    std::this_thread::sleep_for(scrape_time * attempt / 5);
    exp.reset();  // destroys the exporter while the second render runs
    scrape.join();
    EXPECT_FALSE(exp);
  }
}

// Accept-Encoding is a list of codings with weights (RFC 9110 12.5.3): q=0
// refuses a coding, "*" stands for every coding not named, an unknown or
// malformed entry is no consent. Anything but a clear yes gets identity.
TEST(PrometheusExporterE2E, AnswersGzipOnlyWhenAcceptEncodingAllowsIt) {
  ringpipe::testing::ScratchDir dir;
  const std::string path = dir.file("metrics");
  ring::Ring ring = make_ring(path);
  auto producer = ring::Producer::attach(ring);
  ASSERT_TRUE(producer);
  RecordBuilder b(origin(3));
  b.begin(1).series(MetricType::kGauge, "g", {}, {1}).end(1);
  write(*producer, b);
  auto exp = started_exporter(path);
  ASSERT_TRUE(exp);
  ASSERT_TRUE(ringpipe::testing::wait_until([&] { return exp->stats().series == 1; }, 5s));

  using Headers = std::vector<std::pair<std::string, std::string>>;
  const std::pair<Headers, bool> cases[] = {
      {{{"Accept-Encoding", "gzip"}}, true},
      {{{"Accept-Encoding", "deflate, gzip"}}, true},
      {{{"Accept-Encoding", "GZip ; Q=0.5"}}, true},
      {{{"Accept-Encoding", "gzip;q=0.001"}}, true},
      {{{"Accept-Encoding", "*"}}, true},
      {{{"Accept-Encoding", "identity;q=1, *;q=0.1"}}, true},
      {{{"Accept-Encoding", "deflate"}, {"Accept-Encoding", "gzip"}}, true},  // one list over two lines
      {{}, false},
      {{{"Accept-Encoding", ""}}, false},
      {{{"Accept-Encoding", "gzip;q=0"}}, false},
      {{{"Accept-Encoding", "gzip; q=0.000"}}, false},
      {{{"Accept-Encoding", "identity"}}, false},
      {{{"Accept-Encoding", "deflate, br"}}, false},
      {{{"Accept-Encoding", "br, xgzip, gzipped"}}, false},
      {{{"Accept-Encoding", "*;q=0"}}, false},
      {{{"Accept-Encoding", "gzip;q=0, *"}}, false},
      {{{"Accept-Encoding", "*, gzip;q=0"}}, false},
      {{{"Accept-Encoding", "gzip;q=high"}}, false},
      {{{"Accept-Encoding", "gzip;q=1.5"}}, false},
  };
  for (const auto& [headers, want_gzip] : cases) {
    std::string what;
    for (const auto& [n, v] : headers) what += n + ": " + v + "; ";
    SCOPED_TRACE(what.empty() ? "no Accept-Encoding" : what);
    const testing::RawHttpResponse r = testing::raw_http_get(exp->port(), "/metrics", headers);
    ASSERT_EQ(r.status, 200) << r.error;
    if (want_gzip) {
      EXPECT_EQ(r.header("Content-Encoding"), "gzip");
      const std::optional<std::string> text = testing::gunzip(r.body);
      ASSERT_TRUE(text) << "not one whole gzip member";
      EXPECT_EQ(testing::sample_value(*text, "g"), 1.0);
    } else {
      EXPECT_EQ(r.header("Content-Encoding"), std::nullopt);
      EXPECT_EQ(testing::sample_value(r.body, "g"), 1.0);
    }
  }
}

// What prometheus-cpp's Exposer counted (exposer_scrapes_total,
// exposer_transferred_bytes_total, exposer_request_latencies), under
// ringpipe's names: requests by path and status, body bytes as sent (after
// compression), and render time by step, counted once a request is over.
TEST(PrometheusExporterE2E, HttpSelfMetricsCountRequestsBytesSentAndRenders) {
  ringpipe::testing::ScratchDir dir;
  const std::string path = dir.file("metrics");
  ring::Ring ring = make_ring(path);
  PrometheusExporterOptions o;
  o.input = path;
  o.listen = "127.0.0.1:0";
  o.ready_timeout = 60s;  // no snapshot: /-/ready answers 503
  o.basic_auth_users = {{"scraper", "s3cret"}};
  auto exp = PrometheusExporter::create(o);
  ASSERT_TRUE(exp) << exp.error().message();
  ASSERT_TRUE((*exp)->start());
  const std::uint16_t port = (*exp)->port();
  const std::pair<std::string, std::string> auth{"Authorization", "Basic c2NyYXBlcjpzM2NyZXQ="};  // scraper:s3cret

  const testing::RawHttpResponse refused = testing::raw_http_get(port, "/metrics");
  ASSERT_EQ(refused.status, 401) << refused.error;
  std::uint64_t metrics_bytes = refused.body.size();
  constexpr int kScrapes = 5;  // gzip, identity, gzip, identity, gzip
  for (int i = 0; i < kScrapes; ++i) {
    std::vector<std::pair<std::string, std::string>> headers{auth};
    if (i % 2 == 0) headers.emplace_back("Accept-Encoding", "gzip");
    const testing::RawHttpResponse r = testing::raw_http_get(port, "/metrics", headers);
    ASSERT_EQ(r.status, 200) << r.error;
    ASSERT_EQ(r.header("Content-Encoding").has_value(), i % 2 == 0);
    metrics_bytes += r.body.size();
  }
  std::uint64_t healthy_bytes = 0;
  for (int i = 0; i < 2; ++i) {
    const testing::RawHttpResponse r = testing::raw_http_get(port, "/-/healthy");
    ASSERT_EQ(r.status, 200) << r.error;
    healthy_bytes += r.body.size();
  }
  const testing::RawHttpResponse not_ready = testing::raw_http_get(port, "/-/ready");
  ASSERT_EQ(not_ready.status, 503) << not_ready.error;
  EXPECT_EQ(testing::raw_http_get(port, "/no/such/page").status, 404);

  // This page was rendered after every request above was over, and before
  // its own render was counted.
  const testing::RawHttpResponse page = testing::raw_http_get(port, "/metrics", {auth});
  ASSERT_EQ(page.status, 200) << page.error;
  const std::string& text = page.body;
  const auto v = [&](const std::string& series) { return testing::sample_value(text, series); };
  EXPECT_EQ(v("ringpipe_exporter_http_requests_total{path=\"/metrics\",code=\"200\"}"), kScrapes) << text;
  EXPECT_EQ(v("ringpipe_exporter_http_requests_total{path=\"/metrics\",code=\"401\"}"), 1.0);
  EXPECT_EQ(v("ringpipe_exporter_http_requests_total{path=\"/-/healthy\",code=\"200\"}"), 2.0);
  EXPECT_EQ(v("ringpipe_exporter_http_requests_total{path=\"/-/ready\",code=\"503\"}"), 1.0);
  EXPECT_EQ(v("ringpipe_exporter_http_requests_total{path=\"other\",code=\"404\"}"), 1.0);
  EXPECT_EQ(v("ringpipe_exporter_http_response_bytes_total{path=\"/metrics\"}"), static_cast<double>(metrics_bytes));
  EXPECT_EQ(v("ringpipe_exporter_http_response_bytes_total{path=\"/-/healthy\"}"), static_cast<double>(healthy_bytes));
  EXPECT_EQ(v("ringpipe_exporter_http_response_bytes_total{path=\"/-/ready\"}"),
            static_cast<double>(not_ready.body.size()));
  EXPECT_EQ(v("ringpipe_exporter_http_render_seconds_count{step=\"text\"}"), kScrapes) << "a 401 renders nothing";
  EXPECT_EQ(v("ringpipe_exporter_http_render_seconds_count{step=\"gzip\"}"), 3.0);
  EXPECT_GT(v("ringpipe_exporter_http_render_seconds_sum{step=\"text\"}").value_or(0), 0.0);
  EXPECT_EQ(v("ringpipe_exporter_http_render_seconds_bucket{step=\"gzip\",le=\"+Inf\"}"), 3.0);
  if (have_promtool()) {
    const int rc = promtool_check(dir.path().string(), text);
    EXPECT_TRUE(rc == 0 || rc == 3) << "promtool exit " << rc << "\n" << file_text(dir.file("promtool.out"));
  }
}

// The resync request file lives beside the ring: a symlink planted at its
// name must not make the exporter create or touch the file it points to.
TEST(PrometheusExporterE2E, ResyncRequestNeverFollowsAPlantedSymlink) {
  ringpipe::testing::ScratchDir dir;
  const std::string path = dir.file("metrics");
  ring::Ring ring = make_ring(path);
  const std::string victim = dir.file("victim");
  ASSERT_TRUE(std::filesystem::create_directory(victim + ".d"));
  const std::string target = victim + ".d/created-through-link";
  std::filesystem::create_symlink(target, path + ".resync");
  PrometheusExporterOptions o;
  o.input = path;
  o.listen = "127.0.0.1:0";
  auto exp = PrometheusExporter::create(o);
  ASSERT_TRUE(exp) << exp.error().message();
  const Status started = (*exp)->start();
  EXPECT_FALSE(std::filesystem::exists(target)) << "the exporter created a file through the planted link";
  if (!started) {
    EXPECT_NE(started.error().message().find("resync"), std::string::npos) << started.error().message();
  }
  (*exp)->stop();
}

// The pull endpoint's TLS files; every other TLS setting at its default.
TlsFiles server_tls(const std::string& cert, const std::string& key, const std::string& ca = "") {
  TlsFiles t;
  t.cert_file = cert;
  t.key_file = key;
  t.ca_file = ca;
  return t;
}

bool have_openssl_and_curl() { return ::access("/usr/bin/openssl", X_OK) == 0 && ::access("/usr/bin/curl", X_OK) == 0; }

// curl's HTTP status for `url` (0 = no HTTP answer, e.g. a failed handshake); the body goes to `out`.
int curl_status(const std::string& args, const std::string& url, const std::string& out) {
  const std::string cmd = "/usr/bin/curl -s --max-time 5 -o " + out + " -w '%{http_code}' " + args + " " + url + " > " +
                          out + ".code 2>/dev/null";
  (void)std::system(cmd.c_str());
  return std::atoi(file_text(out + ".code").c_str());
}

TEST(PrometheusExporterE2E, ServesHttpsWithSeparateKeyAndCertificateFiles) {
  ASSERT_TRUE(have_openssl_and_curl()) << "needs /usr/bin/openssl and /usr/bin/curl (build.sh installs them)";
  ringpipe::testing::ScratchDir dir;
  std::string cert;
  std::string key;
  ASSERT_TRUE(testing::make_self_signed_cert(dir.path().string(), "IP:127.0.0.1", &cert, &key));
  const std::string path = dir.file("metrics");
  ring::Ring ring = make_ring(path);
  PrometheusExporterOptions o;
  o.input = path;
  o.listen = "127.0.0.1:0";
  o.tls = server_tls(cert, key);
  auto exp = PrometheusExporter::create(o);
  ASSERT_TRUE(exp) << exp.error().message();
  ASSERT_TRUE((*exp)->start());
  const std::string out = dir.file("curl.out");
  const std::string url = "https://127.0.0.1:" + std::to_string((*exp)->port()) + "/metrics";
  ASSERT_EQ(std::system(("/usr/bin/curl -sS --max-time 5 --cacert " + cert + " " + url + " > " + out).c_str()), 0);
  EXPECT_NE(file_text(out).find("# TYPE ringpipe_exporter_series gauge"), std::string::npos) << file_text(out);
  // Several handshakes in a row (civetweb asks for the peer certificate on each).
  for (int i = 0; i < 3; ++i) {
    auto [status, text] = testing::https_get((*exp)->port(), "/metrics", cert);
    EXPECT_EQ(status, 200) << text;
  }
  EXPECT_EQ(testing::http_get((*exp)->port(), "/metrics").first == 200, false) << "plain HTTP is not served";
}

// The web config's max_version, cipher_suites and prefer_server_cipher_suites
// over real handshakes: TLS 1.3 refused under a TLS12 cap, only the listed
// suites offered, the server's order or the client's picking the suite.
TEST(PrometheusExporterE2E, HttpsHonoursMaxVersionCipherSuitesAndWhoseOrderWins) {
  ASSERT_TRUE(have_openssl_and_curl()) << "needs /usr/bin/openssl and /usr/bin/curl (build.sh installs them)";
  ringpipe::testing::ScratchDir dir;
  std::string cert;
  std::string key;
  ASSERT_TRUE(testing::make_self_signed_cert(dir.path().string(), "IP:127.0.0.1", &cert, &key));
  const std::string path = dir.file("metrics");
  ring::Ring ring = make_ring(path);
  const auto options = [&](TlsFiles tls) {
    PrometheusExporterOptions o;
    o.input = path;
    o.listen = "127.0.0.1:0";
    o.tls = std::move(tls);
    return o;
  };
  const std::vector<std::string> suites{"ECDHE-RSA-AES256-GCM-SHA384", "ECDHE-RSA-AES128-GCM-SHA256"};
  const std::string out = dir.file("s_client.out");
  const std::string client_prefers_128 = "-tls1_2 -cipher ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384";
  {
    TlsFiles tls = server_tls(cert, key);
    tls.min_version = "TLS12";
    tls.max_version = "TLS12";
    tls.cipher_suites = suites;
    tls.prefer_server_cipher_suites = true;
    auto exp = PrometheusExporter::create(options(tls));
    ASSERT_TRUE(exp) << exp.error().message();
    ASSERT_TRUE((*exp)->start());
    const std::uint16_t port = (*exp)->port();
    EXPECT_EQ(testing::tls_handshake(port, "-tls1_3", out), "")
        << "max_version TLS12 refuses TLS 1.3: " << file_text(out);
    EXPECT_EQ(testing::tls_handshake(port, "", out), "TLSv1.2, Cipher is ECDHE-RSA-AES256-GCM-SHA384")
        << file_text(out);
    EXPECT_EQ(testing::tls_handshake(port, "-tls1_2 -cipher ECDHE-RSA-CHACHA20-POLY1305", out), "")
        << "a suite not listed";
    EXPECT_EQ(testing::tls_handshake(port, client_prefers_128, out), "TLSv1.2, Cipher is ECDHE-RSA-AES256-GCM-SHA384")
        << "the server's order wins";
    auto [status, text] = testing::https_get(port, "/metrics", cert);
    EXPECT_EQ(status, 200) << text;
  }
  {
    TlsFiles tls = server_tls(cert, key);
    tls.cipher_suites = suites;
    tls.prefer_server_cipher_suites = false;
    auto exp = PrometheusExporter::create(options(tls));
    ASSERT_TRUE(exp) << exp.error().message();
    ASSERT_TRUE((*exp)->start());
    const std::uint16_t port = (*exp)->port();
    EXPECT_EQ(testing::tls_handshake(port, client_prefers_128, out), "TLSv1.2, Cipher is ECDHE-RSA-AES128-GCM-SHA256")
        << "the client's order wins";
    const std::string tls13 = testing::tls_handshake(port, "-tls1_3", out);
    EXPECT_EQ(tls13.rfind("TLSv1.3, Cipher is TLS_", 0), 0u)
        << "no max_version: TLS 1.3, its suites not configurable: " << tls13;
  }
  TlsFiles unknown = server_tls(cert, key);
  unknown.cipher_suites = {"ECDHE-RSA-AES128-GCM-SHA256", "NO-SUCH"};
  auto bad = PrometheusExporter::create(options(unknown));
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message().find("tls: cipher_suites: NO-SUCH"), std::string::npos) << bad.error().message();
  TlsFiles upside_down = server_tls(cert, key);
  upside_down.min_version = "TLS13";
  upside_down.max_version = "TLS12";
  auto inverted = PrometheusExporter::create(options(upside_down));
  ASSERT_FALSE(inverted);
  EXPECT_NE(inverted.error().message().find("max_version TLS12 is below min_version TLS13"), std::string::npos)
      << inverted.error().message();
}

TEST(PrometheusExporterE2E, HttpsWithBasicAuthOnMetricsHealthAndReady) {
  ASSERT_TRUE(have_openssl_and_curl()) << "needs /usr/bin/openssl and /usr/bin/curl (build.sh installs them)";
  ringpipe::testing::ScratchDir dir;
  testing::TestPki pki;
  ASSERT_TRUE(testing::make_test_pki(dir.path().string(), &pki)) << file_text(dir.file("openssl.log"));
  const std::string path = dir.file("metrics");
  ring::Ring ring = make_ring(path);
  auto producer = ring::Producer::attach(ring);
  ASSERT_TRUE(producer);
  PrometheusExporterOptions o;
  o.input = path;
  o.listen = "127.0.0.1:0";
  o.ready_timeout = 60s;
  o.tls = server_tls(pki.cert, pki.key);
  o.basic_auth_users = {{"scraper", "s3cret"}};
  auto exp = PrometheusExporter::create(o);
  ASSERT_TRUE(exp) << exp.error().message();
  ASSERT_TRUE((*exp)->start());
  const std::uint16_t port = (*exp)->port();
  const std::string base = "https://127.0.0.1:" + std::to_string(port);
  const std::string ca = "--cacert " + pki.ca_cert;
  const std::string out = dir.file("curl.out");

  // /metrics: TLS and credentials both required.
  EXPECT_EQ(curl_status(ca, base + "/metrics", out), 401);
  EXPECT_EQ(curl_status(ca + " -u scraper:wrong", base + "/metrics", out), 401);
  EXPECT_EQ(curl_status(ca + " -u scraper:s3cret", base + "/metrics", out), 200);
  EXPECT_NE(file_text(out).find("ringpipe_exporter_ready 0"), std::string::npos) << file_text(out);
  EXPECT_EQ(curl_status("", base + "/metrics", out), 0) << "a certificate from an unknown CA is refused by curl";
  EXPECT_EQ(testing::https_get(port, "/metrics", pki.ca_cert).first, 401);
  EXPECT_EQ(testing::https_get(port, "/metrics", pki.ca_cert, "Basic c2NyYXBlcjpzM2NyZXQ=").first, 200);

  // Health endpoints are served over TLS too (probes need no credentials).
  EXPECT_EQ(curl_status(ca, base + "/-/healthy", out), 200);
  EXPECT_EQ(curl_status(ca, base + "/-/ready", out), 503) << "no snapshot yet";
  EXPECT_EQ(testing::https_get(port, "/-/healthy", pki.ca_cert).first, 200);
  RecordBuilder b(origin(3));
  b.begin(1).series(MetricType::kGauge, "g", {}, {1}).end(1);
  write(*producer, b);
  EXPECT_TRUE(ringpipe::testing::wait_until(
      [&] { return testing::https_get(port, "/-/ready", pki.ca_cert).first == 200; }, 5s));
  EXPECT_EQ(curl_status(ca, base + "/-/ready", out), 200);

  // Nothing is served in clear text.
  EXPECT_NE(testing::http_get(port, "/-/healthy", "", 1s).first, 200);
  EXPECT_NE(testing::http_get(port, "/metrics", "Basic c2NyYXBlcjpzM2NyZXQ=", 1s).first, 200);

  // A real Prometheus scrapes it over TLS with basic auth.
  if (!have_prometheus()) GTEST_SKIP() << testing::kPrometheusBinary << " not installed";
  testing::PrometheusServer prom(dir.path().string(), 0);
  std::ofstream(dir.file("prometheus.yml")) << "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
                                            << "scrape_configs:\n  - job_name: ringpipe\n    scheme: https\n"
                                            << "    tls_config: {ca_file: " << pki.ca_cert << "}\n"
                                            << "    basic_auth: {username: scraper, password: s3cret}\n"
                                            << "    static_configs:\n      - targets: ['127.0.0.1:" << port << "']\n";
  ASSERT_TRUE(prom.start()) << prom.log_tail();
  EXPECT_EQ(prom.wait_for_value("g{job=\"ringpipe\"}", 1, 20s), 1.0) << prom.log_tail();
  EXPECT_EQ(prom.wait_for_value("up{job=\"ringpipe\"}", 1, 20s), 1.0);
}

TEST(PrometheusExporterE2E, HttpsWithClientCertificatesRefusesClientsWithout) {
  ASSERT_TRUE(have_openssl_and_curl()) << "needs /usr/bin/openssl and /usr/bin/curl (build.sh installs them)";
  ringpipe::testing::ScratchDir dir;
  testing::TestPki pki;
  ASSERT_TRUE(testing::make_test_pki(dir.path().string(), &pki)) << file_text(dir.file("openssl.log"));
  const std::string ckey = dir.file("client.key");
  const std::string ccert = dir.file("client.pem");
  std::ofstream(dir.file("client.ext")) << "extendedKeyUsage=clientAuth\n";
  const std::string q = " > /dev/null 2>&1";
  ASSERT_EQ(std::system(("/usr/bin/openssl req -newkey rsa:2048 -nodes -subj /CN=scraper -keyout " + ckey + " -out " +
                         dir.file("client.csr") + q)
                            .c_str()),
            0);
  ASSERT_EQ(
      std::system(("/usr/bin/openssl x509 -req -in " + dir.file("client.csr") + " -CA " + pki.ca_cert + " -CAkey " +
                   pki.ca_key + " -CAcreateserial -days 1 -extfile " + dir.file("client.ext") + " -out " + ccert + q)
                      .c_str()),
      0);
  const std::string path = dir.file("metrics");
  ring::Ring ring = make_ring(path);
  PrometheusExporterOptions o;
  o.input = path;
  o.listen = "127.0.0.1:0";
  o.tls = server_tls(pki.cert, pki.key, pki.ca_cert);
  auto exp = PrometheusExporter::create(o);
  ASSERT_TRUE(exp) << exp.error().message();
  ASSERT_TRUE((*exp)->start());
  const std::string url = "https://127.0.0.1:" + std::to_string((*exp)->port()) + "/metrics";
  const std::string out = dir.file("curl.out");
  EXPECT_EQ(curl_status("--cacert " + pki.ca_cert + " --cert " + ccert + " --key " + ckey, url, out), 200);
  EXPECT_NE(file_text(out).find("# TYPE ringpipe_exporter_series gauge"), std::string::npos);
  EXPECT_EQ(curl_status("--cacert " + pki.ca_cert, url, out), 0) << "no client certificate";
  EXPECT_EQ(curl_status("--cacert " + pki.ca_cert + " --cert " + ccert + " --key " + ckey, url, out), 200)
      << "still serving";
}

// Plays a processor: writes a full snapshot whenever `<ring>.resync` appears.
class FakeProcessor {
 public:
  FakeProcessor(const ring::Ring& ring, int series) : ring_(ring), series_(series) {
    thread_ = std::thread([this] { run(); });
  }
  ~FakeProcessor() {
    stop_ = true;
    thread_.join();
  }
  std::atomic<int> snapshots{0};
  std::atomic<double> value{1};

 private:
  void run() {
    auto p = ring::Producer::attach(ring_);
    ASSERT_TRUE(p);
    std::uint64_t seq = 0;
    while (!stop_) {
      std::error_code ec;
      if (std::filesystem::remove(ring_.path() + ".resync", ec)) {
        for (std::uint16_t shard = 0; shard < 2; ++shard) {
          RecordBuilder b(origin(42, shard, 2, ++seq), 4 << 20);
          b.begin(seq);
          for (int i = shard; i < series_; i += 2) {
            b.series(MetricType::kCounter, "events", {{"i", std::to_string(i)}}, {value.load()});
          }
          b.end(seq);
          ASSERT_TRUE(b.ok());
          const auto rec = b.take();
          ASSERT_EQ(p->write(metric::kMetricBatchRecord, rec, 2s), ring::WriteStatus::kOk);
        }
        ++snapshots;
      }
      std::this_thread::sleep_for(5ms);
    }
  }
  const ring::Ring& ring_;
  int series_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

TEST(PrometheusExporterE2E, RestartedExporterServesCompleteStateWithinASecond) {
  ringpipe::testing::ScratchDir dir;
  const std::string path = dir.file("metrics");
  ring::Ring ring = make_ring(path);
  FakeProcessor proc(ring, 2000);
  PrometheusExporterOptions o;
  o.input = path;
  o.listen = "127.0.0.1:0";
  o.ready_timeout = 60s;
  {
    auto first = PrometheusExporter::create(o);
    ASSERT_TRUE(first) << first.error().message();
    ASSERT_TRUE((*first)->start());
    ASSERT_TRUE(ringpipe::testing::wait_until([&] { return (*first)->ready(); }, 5s));
    EXPECT_EQ((*first)->stats().series, 2000u);
  }  // gone; its durable cursor stays in the ring
  proc.value = 7;
  const auto t0 = std::chrono::steady_clock::now();
  auto second = PrometheusExporter::create(o);
  ASSERT_TRUE(second) << second.error().message();
  ASSERT_TRUE((*second)->start());
  ASSERT_TRUE(ringpipe::testing::wait_until([&] { return (*second)->ready(); }, 5s));
  const auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_LT(took, 1s);
  auto [status, text] = testing::http_get((*second)->port(), "/metrics");
  ASSERT_EQ(status, 200);
  EXPECT_EQ((*second)->stats().series, 2000u);
  EXPECT_NE(text.find("events{i=\"1999\"} 7\n"), std::string::npos);
  EXPECT_EQ(text.find("events{i=\"1999\"} 1\n"), std::string::npos);
}

TEST(RemoteWriteE2E, PrometheusStoppedMidRunReceivesEverySampleAfterwards) {
  if (!have_prometheus()) GTEST_SKIP() << testing::kPrometheusBinary << " not installed";
  ringpipe::testing::ScratchDir dir;
  const std::string path = dir.file("metrics");
  ring::Ring ring = make_ring(path);
  auto producer = ring::Producer::attach(ring);
  ASSERT_TRUE(producer);
  testing::PrometheusServer prom(dir.path().string(), 0);
  ASSERT_TRUE(prom.start()) << prom.log_tail();

  RemoteWriteOptions o;
  o.input = path;
  o.url = "http://127.0.0.1:" + std::to_string(prom.port()) + "/api/v1/write";
  o.batch_size = 7;  // several requests per record, spread over connections
  o.max_in_flight = 3;
  o.timeout = 2s;
  o.retry_max_backoff = 500ms;
  auto rw = RemoteWriteExporter::create(o);
  ASSERT_TRUE(rw) << rw.error().message();
  ASSERT_TRUE((*rw)->start());

  constexpr int kRecords = 45;
  constexpr int kSeries = 20;
  const std::int64_t base_ns = realtime_ns() - 60'000'000'000;  // a minute ago, 100 ms apart
  for (int r = 0; r < kRecords; ++r) {
    if (r == 15) {
      ASSERT_TRUE(ringpipe::testing::wait_until([&] { return (*rw)->stats().records == 15; }, 10s));
      prom.stop();
    }
    if (r == 30) {
      std::this_thread::sleep_for(1s);  // retries pile up against a closed port
      EXPECT_LT((*rw)->stats().records, 30u);
      EXPECT_GT((*rw)->stats().retries, 0u);
      ASSERT_TRUE(prom.start()) << prom.log_tail();
    }
    RecordBuilder b(origin(9, 0, 1, static_cast<std::uint64_t>(r) + 1, base_ns + r * 100'000'000LL));
    for (int s = 0; s < kSeries; ++s) {
      b.series(MetricType::kCounter, "rw_events", {{"s", std::to_string(s)}}, {static_cast<double>(r + 1)});
    }
    b.series(MetricType::kHistogram, "rw_size", {}, {static_cast<double>(r + 1), 2.0 * r, 1, 1, INFINITY, r + 1.0});
    write(*producer, b);
    std::this_thread::sleep_for(20ms);
  }
  ASSERT_TRUE(ringpipe::testing::wait_until([&] { return (*rw)->stats().records == kRecords; }, 30s))
      << "records " << (*rw)->stats().records;
  const RemoteWriteStats st = (*rw)->stats();
  EXPECT_EQ(st.dropped_samples, 0u) << "last status " << st.last_status;
  EXPECT_EQ(st.samples_sent, static_cast<std::uint64_t>(kRecords * (kSeries + 4)));
  const auto q = [&](const std::string& e, double want) { return prom.wait_for_value(e, want, 10s); };
  EXPECT_EQ(q("count(count_over_time(rw_events[5m]))", kSeries), double{kSeries});
  EXPECT_EQ(q("sum(count_over_time(rw_events[5m]))", kSeries * kRecords), double{kSeries * kRecords});
  EXPECT_EQ(q("sum(sum_over_time(rw_events[5m]))", kSeries * kRecords * (kRecords + 1) / 2.0),
            kSeries * kRecords * (kRecords + 1) / 2.0);
  EXPECT_EQ(q("count_over_time(rw_size_count[5m])", kRecords), double{kRecords});
  EXPECT_EQ(q("count_over_time(rw_size_bucket{le=\"+Inf\"}[5m])", kRecords), double{kRecords});
  EXPECT_EQ(q("max_over_time(rw_size_count[5m])", kRecords), double{kRecords});
  (*rw)->stop();
}

// One record of `series` counters named `name`, all valued `value`, at `ts_ns`.
void write_counters(ring::Producer& p, std::uint64_t seq, const std::string& name, int series, double value,
                    std::int64_t ts_ns) {
  RecordBuilder b(origin(9, 0, 1, seq, ts_ns));
  for (int s = 0; s < series; ++s) b.series(MetricType::kCounter, name, {{"s", std::to_string(s)}}, {value});
  write(p, b);
}

TEST(RemoteWriteE2E, HttpsToPrometheusWithTlsWebConfigDeliversExactValues) {
  if (!have_prometheus()) GTEST_SKIP() << testing::kPrometheusBinary << " not installed";
  ASSERT_TRUE(have_openssl_and_curl()) << "needs /usr/bin/openssl (build.sh installs it)";
  ringpipe::testing::ScratchDir dir;
  testing::TestPki pki;
  ASSERT_TRUE(testing::make_test_pki(dir.path().string(), &pki)) << file_text(dir.file("openssl.log"));
  const std::string path = dir.file("metrics");
  ring::Ring ring = make_ring(path);
  auto producer = ring::Producer::attach(ring);
  ASSERT_TRUE(producer);
  testing::PrometheusServer prom(dir.path().string(), 0);
  prom.use_tls(pki.cert, pki.key, pki.ca_cert);
  ASSERT_TRUE(prom.start()) << prom.log_tail();
  EXPECT_NE(testing::http_get(prom.port(), "/-/ready", "", 1s).first, 200) << "Prometheus serves TLS only";

  RemoteWriteOptions o;
  o.input = path;
  o.url = "https://localhost:" + std::to_string(prom.port()) + "/api/v1/write";  // SNI and name check
  o.tls = RemoteWriteTls{pki.ca_cert, "", "", false};
  o.batch_size = 7;
  o.max_in_flight = 3;
  o.timeout = 5s;
  o.retry_max_backoff = 500ms;
  auto rw = RemoteWriteExporter::create(o);
  ASSERT_TRUE(rw) << rw.error().message();
  ASSERT_TRUE((*rw)->start());
  constexpr int kRecords = 12;
  constexpr int kSeries = 10;
  const std::int64_t base_ns = realtime_ns() - 60'000'000'000;
  for (int r = 0; r < kRecords; ++r) {
    write_counters(*producer, static_cast<std::uint64_t>(r) + 1, "tls_events", kSeries, r + 1.0,
                   base_ns + r * 100'000'000LL);
  }
  ASSERT_TRUE(ringpipe::testing::wait_until([&] { return (*rw)->stats().records == kRecords; }, 30s))
      << "records " << (*rw)->stats().records << "\n"
      << prom.log_tail();
  const RemoteWriteStats st = (*rw)->stats();
  EXPECT_EQ(st.samples_sent, static_cast<std::uint64_t>(kRecords * kSeries));
  EXPECT_EQ(st.dropped_samples, 0u);
  EXPECT_EQ(st.last_status, 204);
  const auto q = [&](const std::string& e, double want) { return prom.wait_for_value(e, want, 10s); };
  EXPECT_EQ(q("count(count_over_time(tls_events[5m]))", kSeries), double{kSeries});
  EXPECT_EQ(q("sum(count_over_time(tls_events[5m]))", kSeries * kRecords), double{kSeries * kRecords});
  EXPECT_EQ(q("sum(sum_over_time(tls_events[5m]))", kSeries * kRecords * (kRecords + 1) / 2.0),
            kSeries * kRecords * (kRecords + 1) / 2.0);
  EXPECT_EQ(q("max(max_over_time(tls_events[5m]))", kRecords), double{kRecords});
  (*rw)->stop();
}

TEST(RemoteWriteE2E, WrongCaFailsTheHandshakeCountsRetriesAndKeepsTheCursor) {
  if (!have_prometheus()) GTEST_SKIP() << testing::kPrometheusBinary << " not installed";
  ASSERT_TRUE(have_openssl_and_curl()) << "needs /usr/bin/openssl (build.sh installs it)";
  ringpipe::testing::ScratchDir dir;
  testing::TestPki pki;
  ASSERT_TRUE(testing::make_test_pki(dir.path().string(), &pki)) << file_text(dir.file("openssl.log"));
  std::filesystem::create_directory(dir.file("other"));
  testing::TestPki other;  // a second, unrelated CA
  ASSERT_TRUE(testing::make_test_pki(dir.file("other"), &other));
  const std::string path = dir.file("metrics");
  ring::Ring ring = make_ring(path);
  auto producer = ring::Producer::attach(ring);
  ASSERT_TRUE(producer);
  testing::PrometheusServer prom(dir.path().string(), 0);
  prom.use_tls(pki.cert, pki.key, pki.ca_cert);
  ASSERT_TRUE(prom.start()) << prom.log_tail();

  // Collect the exporter's warnings.
  auto sink = std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(64);
  spdlog::default_logger()->sinks().push_back(sink);
  struct Unhook {
    std::shared_ptr<spdlog::sinks::sink> s;
    ~Unhook() {
      auto& v = spdlog::default_logger()->sinks();
      v.erase(std::remove(v.begin(), v.end(), s), v.end());
    }
  } unhook{sink};

  RemoteWriteOptions o;
  o.input = path;
  o.reader_name = "rw";
  o.url = "https://127.0.0.1:" + std::to_string(prom.port()) + "/api/v1/write";
  o.tls = RemoteWriteTls{other.ca_cert, "", "", false};
  o.max_in_flight = 1;
  o.timeout = 2s;
  o.retry_min_backoff = 10ms;
  o.retry_max_backoff = 100ms;
  o.stop_timeout = 200ms;
  auto rw = RemoteWriteExporter::create(o);
  ASSERT_TRUE(rw) << rw.error().message();
  ASSERT_TRUE((*rw)->start());
  write_counters(*producer, 1, "never_events", 3, 1, realtime_ns());
  ASSERT_TRUE(ringpipe::testing::wait_until([&] { return (*rw)->stats().retries >= 3; }, 10s))
      << "retries " << (*rw)->stats().retries;
  const RemoteWriteStats st = (*rw)->stats();
  EXPECT_EQ(st.records, 0u);
  EXPECT_EQ(st.samples_sent, 0u);
  EXPECT_EQ(st.requests, 0u);
  EXPECT_EQ(st.dropped_samples, 0u) << "a handshake failure is retried, not dropped";
  EXPECT_EQ(st.last_status, 0) << "no HTTP answer";
  // The reader's cursor is still before the record.
  bool found = false;
  for (const ring::ReaderStats& r : ring.stats().readers) {
    if (r.name != "rw") continue;
    found = true;
    EXPECT_EQ(r.records, 0u);
    EXPECT_GT(r.lag_bytes, 0u);
  }
  EXPECT_TRUE(found);
  bool logged = false;
  for (const std::string& line : sink->last_formatted()) {
    logged |=
        line.find("tls handshake") != std::string::npos && line.find("certificate verify failed") != std::string::npos;
  }
  EXPECT_TRUE(logged) << "expected a warning naming the failed handshake";
  EXPECT_EQ(prom.query("count(never_events)"), std::nullopt);
  (*rw)->stop();
}

}  // namespace
}  // namespace ringpipe::exporters
