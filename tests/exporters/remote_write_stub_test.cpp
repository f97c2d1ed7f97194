// RemoteWriteExporter against a stub endpoint (Boost.Beast on 127.0.0.1:0)
// that answers what each test scripts: at-least-once across a stop during an
// outage, 4xx drops counted by status with the cursor moving on, auth headers,
// and the exporter's stats segment.

#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <set>
#include <thread>

#include "record_builder.hpp"
#include "remote_write_stub.hpp"
#include "ringpipe/exporters/remote_write_exporter.hpp"
#include "ringpipe/ring/ring.hpp"
#include "ringpipe/stats/stats_segment.hpp"
#include "test_support.hpp"

namespace ringpipe::exporters {
namespace {

using namespace std::chrono_literals;
using metric::MetricType;
using testing::origin;
using testing::RecordBuilder;

using testing::SeenRequest;
using testing::StubEndpoint;

// A metric ring holding `records` records of `series` counters each; returns
// every (series, timestamp) the endpoint must end up with.
std::set<std::pair<std::string, std::int64_t>> fill_ring(const std::string& path, int records, int series) {
  ring::RingOptions ro;
  ro.lanes = 1;
  auto ring = ring::Ring::create(path, ro);
  EXPECT_TRUE(ring) << ring.error().message();
  auto producer = ring::Producer::attach(*ring);
  EXPECT_TRUE(producer);
  std::set<std::pair<std::string, std::int64_t>> expected;
  for (int r = 0; r < records; ++r) {
    const std::int64_t flush_ms = 1'700'000'000'000 + r * 1000;
    RecordBuilder b(origin(7, 0, 1, static_cast<std::uint64_t>(r) + 1, flush_ms * 1'000'000));
    for (int s = 0; s < series; ++s) {
      const std::string id = std::to_string(s);
      b.series(MetricType::kCounter, "stub_events_total", {{"id", id}}, {double(r + 1)});
      expected.insert({"__name__=stub_events_total;id=" + id + ";", flush_ms});
    }
    EXPECT_TRUE(b.ok());
    const auto rec = b.take();
    EXPECT_EQ(producer->write(metric::kMetricBatchRecord, rec, 1s), ring::WriteStatus::kOk);
  }
  return expected;
}

RemoteWriteOptions options_for(const std::string& ring, const std::string& url) {
  RemoteWriteOptions o;
  o.input = ring;
  o.reader_name = "rw";
  o.url = url;
  o.max_in_flight = 2;
  o.batch_size = 7;  // several requests per record
  o.timeout = 2s;
  o.retry_min_backoff = 5ms;
  o.retry_max_backoff = 20ms;
  o.stop_timeout = 100ms;
  return o;
}

std::map<std::string, double> read_segment(const std::string& path) {
  std::map<std::string, double> out;
  auto reader = stats::StatsReader::open(path);
  EXPECT_TRUE(reader) << reader.error().message();
  if (!reader) return out;
  for (const stats::StatsEntry& e : reader->snapshot()) {
    std::string key = e.name;
    for (const stats::StatsLabel& l : e.labels) key += "{" + l.name + "=" + l.value + "}";
    out[key] = e.value();
  }
  return out;
}

// Records a ring reader `name` would still get (counted by a non-durable
// copy of it, so its own cursors stay where they are).
std::size_t unread_records(const std::string& ring_path, const std::string& name) {
  auto ring = ring::Ring::open(ring_path);
  EXPECT_TRUE(ring);
  ring::ReaderOptions ro;
  ro.start = ring::StartAt::kReader;
  ro.durable = false;
  ro.from = name;
  auto reader = ring::Reader::attach(*ring, "peek", ro);
  EXPECT_TRUE(reader);
  std::size_t n = 0;
  while (reader->poll([&](const ring::RecordView&) { ++n; }) != 0) {
  }
  return n;
}

TEST(RemoteWriteExporterStub, StopDuringOutageLeavesUnsentRecordsForTheNextStart) {
  ringpipe::testing::ScratchDir dir;
  const std::string ring = dir.file("metrics");
  const auto expected = fill_ring(ring, 3, 20);
  std::atomic<bool> up{false};
  StubEndpoint ep([&](const SeenRequest&, std::size_t) { return up.load() ? 200 : 503; });
  RemoteWriteOptions o = options_for(ring, ep.url());
  o.stats_path = dir.file("rw.stats");
  o.component = "rw";
  {
    auto ex = RemoteWriteExporter::create(o);
    ASSERT_TRUE(ex) << ex.error().message();
    ASSERT_TRUE((*ex)->start());
    ASSERT_TRUE(ringpipe::testing::wait_until([&] { return ep.requests() >= 6; }, 10s));
    (*ex)->stop();
    const RemoteWriteStats st = (*ex)->stats();
    EXPECT_EQ(st.records, 0u);
    EXPECT_EQ(st.samples_sent, 0u);
    EXPECT_GT(st.abandoned_samples, 0u);
    auto seg = read_segment(o.stats_path);
    EXPECT_GE(seg["remote_write_failed_requests_total{reason=5xx}"], 6);
    EXPECT_EQ(seg["remote_write_requests_succeeded_total"], 0);
    EXPECT_EQ(seg["remote_write_samples_abandoned_total"], static_cast<double>(st.abandoned_samples));
    EXPECT_EQ(seg["remote_write_in_flight_requests"], 0);
  }
  EXPECT_EQ(ep.stored().size(), 0u);
  EXPECT_EQ(unread_records(ring, "rw"), 3u) << "no record committed during the outage";

  up = true;
  auto ex = RemoteWriteExporter::create(o);
  ASSERT_TRUE(ex) << ex.error().message();
  ASSERT_TRUE((*ex)->start());
  ASSERT_TRUE(ringpipe::testing::wait_until([&] { return (*ex)->stats().records == 3; }, 10s));
  (*ex)->stop();
  EXPECT_EQ(ep.stored(), expected);
  EXPECT_EQ((*ex)->stats().samples_sent, expected.size()) << "each sample acknowledged exactly once after the restart";
  EXPECT_EQ((*ex)->stats().abandoned_samples, 0u);
  EXPECT_EQ(unread_records(ring, "rw"), 0u);
  auto seg = read_segment(o.stats_path);
  EXPECT_EQ(seg["remote_write_samples_sent_total"], static_cast<double>(expected.size()));
  EXPECT_EQ(seg["remote_write_records_total"], 3);
  EXPECT_GT(seg["remote_write_last_success_timestamp_seconds"], 1.7e9);
}

TEST(RemoteWriteExporterStub, DropsA400CountsItByStatusAndMovesTheCursorOn) {
  ringpipe::testing::ScratchDir dir;
  const std::string ring = dir.file("metrics");
  const auto expected = fill_ring(ring, 2, 5);
  StubEndpoint ep([](const SeenRequest&, std::size_t i) { return i == 0 ? 400 : 204; });
  RemoteWriteOptions o = options_for(ring, ep.url());
  o.max_in_flight = 1;
  o.batch_size = 100;  // one request per record
  o.stats_path = dir.file("rw.stats");
  {
    auto ex = RemoteWriteExporter::create(o);
    ASSERT_TRUE(ex) << ex.error().message();
    ASSERT_TRUE((*ex)->start());
    ASSERT_TRUE(ringpipe::testing::wait_until([&] { return (*ex)->stats().records == 2; }, 10s));
    (*ex)->stop();
    const RemoteWriteStats st = (*ex)->stats();
    EXPECT_EQ(st.dropped_requests, 1u);
    EXPECT_EQ(st.dropped_samples, 5u);
    EXPECT_EQ(st.samples_sent, 5u);
    EXPECT_EQ(st.retries, 0u);
  }
  EXPECT_EQ(ep.requests(), 2u);
  EXPECT_EQ(ep.stored().size(), 5u);
  EXPECT_EQ(unread_records(ring, "rw"), 0u) << "the dropped record is committed, not retried";
  auto seg = read_segment(o.stats_path);
  EXPECT_EQ(seg["remote_write_dropped_requests_total{status=400}"], 1);
  EXPECT_EQ(seg["remote_write_failed_requests_total{reason=4xx}"], 1);
  EXPECT_EQ(seg["remote_write_failed_requests_total{reason=5xx}"], 0);
  EXPECT_EQ(seg["remote_write_samples_dropped_total"], 5);
  EXPECT_EQ(seg["remote_write_samples_sent_total"], 5);
  EXPECT_EQ(seg["remote_write_requests_total"], 2);
  EXPECT_EQ(seg["remote_write_requests_succeeded_total"], 1);
}

TEST(RemoteWriteExporterStub, SendsBasicAuthOrBearerTokenOnEveryRequest) {
  for (const bool basic : {true, false}) {
    ringpipe::testing::ScratchDir dir;
    const std::string ring = dir.file("metrics");
    const auto expected = fill_ring(ring, 2, 10);
    const std::string want = basic ? "Basic dXNlcjpwQHNz" : "Bearer s3cr3t";  // base64("user:p@ss")
    StubEndpoint ep([&](const SeenRequest& r, std::size_t) { return r.authorization == want ? 200 : 401; });
    RemoteWriteOptions o = options_for(ring, ep.url());
    if (basic) {
      o.basic_auth = BasicAuthCredentials{"user", "p@ss"};
    } else {
      o.bearer_token = "s3cr3t";
    }
    auto ex = RemoteWriteExporter::create(o);
    ASSERT_TRUE(ex) << ex.error().message();
    ASSERT_TRUE((*ex)->start());
    ASSERT_TRUE(ringpipe::testing::wait_until([&] { return (*ex)->stats().records == 2; }, 10s));
    (*ex)->stop();
    EXPECT_EQ((*ex)->stats().dropped_requests, 0u) << (basic ? "basic" : "bearer");
    EXPECT_EQ(ep.stored(), expected);
    for (const SeenRequest& r : ep.seen()) EXPECT_EQ(r.authorization, want);
  }
}

// write_relabel_configs: series kept from the endpoint are counted per
// update, the others sent with their relabeled names and labels.
TEST(RemoteWriteExporterStub, WriteRelabelConfigsRewriteAndDropSeriesBeforeSending) {
  ringpipe::testing::ScratchDir dir;
  const std::string ring = dir.file("metrics");
  const auto all = fill_ring(ring, 2, 4);  // ids 0..3, two records
  StubEndpoint ep([](const SeenRequest&, std::size_t) { return 204; });
  RemoteWriteOptions o = options_for(ring, ep.url());
  o.stats_path = dir.file("rw.stats");
  o.component = "rw";
  relabel::RuleSpec keep;
  keep.action = relabel::Action::kDrop;
  keep.source_labels = {"id"};
  keep.regex = "[23]";
  relabel::RuleSpec rename;
  rename.source_labels = {"__name__", "id"};
  rename.regex = "stub_(.*);(.*)";
  rename.target_label = "__name__";
  rename.replacement = "relay_${1}";
  auto rules = relabel::Rules::compile({keep, rename});
  ASSERT_TRUE(rules);
  o.relabel = *rules;
  auto ex = RemoteWriteExporter::create(o);
  ASSERT_TRUE(ex) << ex.error().message();
  ASSERT_TRUE((*ex)->start());
  ASSERT_TRUE(ringpipe::testing::wait_until([&] { return (*ex)->stats().records == 2; }, 10s));
  (*ex)->stop();
  std::set<std::pair<std::string, std::int64_t>> expected;
  for (const auto& [series, ts] : all) {
    if (series.find("id=2;") != std::string::npos || series.find("id=3;") != std::string::npos) continue;
    std::string renamed = series;
    renamed.replace(0, std::string("__name__=stub_events_total").size(), "__name__=relay_events_total");
    expected.insert({renamed, ts});
  }
  EXPECT_EQ(ep.stored(), expected);
  EXPECT_EQ((*ex)->stats().relabel_dropped, 4u);  // 2 series x 2 records
  EXPECT_EQ(read_segment(o.stats_path)["remote_write_relabel_dropped_series_total"], 4);
}

}  // namespace
}  // namespace ringpipe::exporters
