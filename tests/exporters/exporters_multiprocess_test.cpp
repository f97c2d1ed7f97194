// Exporters killed with SIGKILL in the middle of their work and started
// again on the same durable reader: the pull exporter is complete again
// within a second, and remote_write loses no sample (at-least-once).

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cmath>
#include <filesystem>
#include <thread>

#include "prometheus_server.hpp"
#include "record_builder.hpp"
#include "ringpipe/common/log.hpp"
#include "ringpipe/exporters/prometheus_exporter.hpp"
#include "ringpipe/exporters/remote_write_exporter.hpp"
#include "ringpipe/ring/ring.hpp"
#include "test_support.hpp"

namespace ringpipe::exporters {
namespace {

using namespace std::chrono_literals;
using metric::MetricType;
using testing::origin;
using testing::RecordBuilder;

ring::Ring make_ring(const std::string& path) { return testing::make_block_ring(path, 4, 4 << 20); }

void kill_child(pid_t pid) {
  ::kill(pid, SIGKILL);
  int st = 0;
  ::waitpid(pid, &st, 0);
}

// Child: runs a pull exporter until killed.
[[noreturn]] void run_pull_child(const std::string& path, std::uint16_t port) {
  PrometheusExporterOptions o;
  o.input = path;
  o.listen = "127.0.0.1:" + std::to_string(port);
  o.ready_timeout = 60s;
  auto exp = PrometheusExporter::create(o);
  if (!exp || !(*exp)->start()) ::_exit(10);
  for (int i = 0; i < 6000; ++i) std::this_thread::sleep_for(10ms);  // bounded: 60 s
  ::_exit(11);
}

// Writes a full two-shard snapshot of `series` counters whenever `<ring>.resync` appears.
void answer_resyncs(const ring::Ring& ring, int series, const std::atomic<double>& value,
                    const std::atomic<bool>& stop) {
  auto p = ring::Producer::attach(ring);
  ASSERT_TRUE(p);
  std::uint64_t seq = 0;
  while (!stop) {
    std::error_code ec;
    if (std::filesystem::remove(ring.path() + ".resync", ec)) {
      for (std::uint16_t shard = 0; shard < 2; ++shard) {
        RecordBuilder b(origin(42, shard, 2, ++seq), 4 << 20);
        b.begin(seq);
        for (int i = shard; i < series; i += 2) {
          b.series(MetricType::kCounter, "events", {{"i", std::to_string(i)}}, {value.load()});
        }
        b.end(seq);
        const auto rec = b.take();
        ASSERT_EQ(p->write(metric::kMetricBatchRecord, rec, 2s), ring::WriteStatus::kOk);
      }
    }
    std::this_thread::sleep_for(5ms);
  }
}

TEST(ExportersMultiprocess, KilledPullExporterIsCompleteAgainWithinASecond) {
  ringpipe::testing::ScratchDir dir;
  const std::string path = dir.file("metrics");
  ring::Ring ring = make_ring(path);
  const std::uint16_t port = testing::free_tcp_port();
  const pid_t child = ::fork();  // before any thread starts here
  ASSERT_GE(child, 0);
  if (child == 0) run_pull_child(path, port);
  std::atomic<double> value{1};
  std::atomic<bool> stop{false};
  std::thread proc([&] { answer_resyncs(ring, 5000, value, stop); });
  const bool child_ready =
      ringpipe::testing::wait_until([&] { return testing::http_get(port, "/-/ready", "", 1s).first == 200; }, 10s);
  EXPECT_TRUE(child_ready);
  if (child_ready) {
    EXPECT_NE(testing::http_get(port, "/metrics").second.find("events{i=\"4999\"} 1\n"), std::string::npos);
  }
  kill_child(child);
  value = 2;  // the processor moved on while no exporter ran
  const auto t0 = std::chrono::steady_clock::now();
  PrometheusExporterOptions o;
  o.input = path;
  o.listen = "127.0.0.1:0";
  o.ready_timeout = 60s;
  auto exp = PrometheusExporter::create(o);
  ASSERT_TRUE(exp) << exp.error().message();
  ASSERT_TRUE((*exp)->start());
  EXPECT_TRUE(ringpipe::testing::wait_until([&] { return (*exp)->ready(); }, 5s));
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 1s);
  const std::string text = testing::http_get((*exp)->port(), "/metrics").second;
  EXPECT_EQ((*exp)->stats().series, 5000u);
  EXPECT_NE(text.find("events{i=\"4999\"} 2\n"), std::string::npos);
  stop = true;
  proc.join();
}

// A record that kills the exporter (the test-only crash point, compiled in
// with RINGPIPE_TEST_HOOKS) is skipped after 3 deaths in a row; the records
// before and after it are applied. The test restarts the exporter as the
// supervisor would.
TEST(ExportersMultiprocess, PullExporterQuarantinesARecordThatKillsItAndAppliesTheRest) {
#if !defined(RINGPIPE_TEST_HOOKS) || !RINGPIPE_TEST_HOOKS
  GTEST_SKIP() << "built without RINGPIPE_TEST_HOOKS";
#else
  ringpipe::testing::ScratchDir dir;
  const std::string path = dir.file("metrics");
  ring::Ring ring = make_ring(path);
  {
    auto p = ring::Producer::attach(ring);
    ASSERT_TRUE(p);
    std::uint64_t seq = 0;
    auto write = [&](const std::string& name, double v) {
      RecordBuilder b(origin(42, 0, 1, ++seq));
      b.series(MetricType::kCounter, name, {}, {v});
      const auto rec = b.take();
      ASSERT_EQ(p->write(metric::kMetricBatchRecord, rec, 2s), ring::WriteStatus::kOk);
    };
    write("before", 1);
    write("poison", 2);
    write("after", 3);
  }
  ::setenv("RINGPIPE_TEST_CRASH", "exporter:poison", 1);
  const rlimit no_core{0, 0};
  ::setrlimit(RLIMIT_CORE, &no_core);
  const std::uint16_t port = testing::free_tcp_port();
  int deaths = 0;
  std::string text;
  for (int start = 0; start < 6 && text.empty(); ++start) {
    const pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) run_pull_child(path, port);
    int st = 0;
    // Up until /metrics serves `after`, or the child died.
    (void)ringpipe::testing::wait_until(
        [&] {
          if (::waitpid(child, &st, WNOHANG) == child) return true;
          const auto [code, body] = testing::http_get(port, "/metrics", "", 1s);
          if (code == 200 && body.find("\nafter ") != std::string::npos) text = body;
          return !text.empty();
        },
        10s);
    if (text.empty()) {
      EXPECT_TRUE(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT) << st;
      ++deaths;
    } else {
      kill_child(child);
    }
  }
  ::unsetenv("RINGPIPE_TEST_CRASH");
  EXPECT_EQ(deaths, 3);
  EXPECT_NE(text.find("\nbefore 1\n"), std::string::npos) << text;
  EXPECT_NE(text.find("\nafter 3\n"), std::string::npos) << text;
  EXPECT_EQ(text.find("poison"), std::string::npos) << text;
  EXPECT_NE(text.find("ringpipe_exporter_quarantined_records_total 1\n"), std::string::npos) << text;
#endif
}

// Child: runs a remote_write exporter until killed.
[[noreturn]] void run_rw_child(const std::string& path, const std::string& url) {
  RemoteWriteOptions o;
  o.input = path;
  o.url = url;
  o.batch_size = 50;
  o.max_in_flight = 4;
  o.timeout = 2s;
  auto rw = RemoteWriteExporter::create(o);
  if (!rw || !(*rw)->start()) ::_exit(10);
  for (int i = 0; i < 6000; ++i) std::this_thread::sleep_for(10ms);
  ::_exit(11);
}

TEST(ExportersMultiprocess, KilledRemoteWriteExporterLosesNoSample) {
  if (::access(testing::kPrometheusBinary, X_OK) != 0) GTEST_SKIP() << testing::kPrometheusBinary << " not installed";
  ringpipe::testing::ScratchDir dir;
  const std::string path = dir.file("metrics");
  ring::Ring ring = make_ring(path);
  constexpr int kRecords = 120;
  constexpr int kSeries = 300;
  // Everything is in the ring before the exporter starts, so the kill lands mid-stream.
  {
    auto p = ring::Producer::attach(ring);
    ASSERT_TRUE(p);
    const std::int64_t base_ns = realtime_ns() - 120'000'000'000;
    for (int r = 0; r < kRecords; ++r) {
      RecordBuilder b(origin(9, 0, 1, static_cast<std::uint64_t>(r) + 1, base_ns + r * 100'000'000LL));
      for (int s = 0; s < kSeries; ++s) {
        b.series(MetricType::kCounter, "mp_events", {{"s", std::to_string(s)}}, {static_cast<double>(r + 1)});
      }
      ASSERT_TRUE(b.ok());
      const auto rec = b.take();
      ASSERT_EQ(p->write(metric::kMetricBatchRecord, rec, 2s), ring::WriteStatus::kOk);
    }
  }
  const std::string url_dir = dir.path().string();
  // Prometheus is a child of ours too; fork the exporter child first.
  testing::PrometheusServer prom(url_dir, 0);
  const std::string url = "http://127.0.0.1:" + std::to_string(prom.port()) + "/api/v1/write";
  ASSERT_TRUE(prom.start()) << prom.log_tail();
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) run_rw_child(path, url);
  // Kill it once some but not all records are through.
  const bool midway = ringpipe::testing::wait_until(
      [&] {
        for (const auto& r : ring.stats().readers) {
          if (r.name == "remote_write" && r.records >= 20) return true;
        }
        return false;
      },
      20s);
  kill_child(child);
  ASSERT_TRUE(midway);
  std::uint64_t done_before = 0;
  for (const auto& r : ring.stats().readers) {
    if (r.name == "remote_write") done_before = r.records;
  }
  EXPECT_LT(done_before, static_cast<std::uint64_t>(kRecords)) << "killed mid-stream";

  RemoteWriteOptions o;
  o.input = path;
  o.url = url;
  o.batch_size = 50;
  auto rw = RemoteWriteExporter::create(o);
  ASSERT_TRUE(rw) << rw.error().message();
  ASSERT_TRUE((*rw)->start());
  ASSERT_TRUE(ringpipe::testing::wait_until(
      [&] { return (*rw)->stats().records + done_before >= static_cast<std::uint64_t>(kRecords); }, 30s));
  EXPECT_EQ((*rw)->stats().dropped_samples, 0u);
  const double want = double{kSeries} * kRecords;
  EXPECT_EQ(prom.wait_for_value("sum(count_over_time(mp_events[10m]))", want, 10s), want)
      << "every sample stored exactly once (a resent duplicate is the same sample)";
  EXPECT_EQ(prom.wait_for_value("count(mp_events)", kSeries, 5s), double{kSeries});
  (*rw)->stop();
}

}  // namespace
}  // namespace ringpipe::exporters
