// A real Prometheus (Debian's /usr/bin/prometheus) scrapes itself and
// remote_writes to a RemoteWriteSource on a free loopback port: its samples
// land in the batches with their names, labels and values, and when the
// receiver answers 503 it retries until they land.

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <string>

#include "memory_target.hpp"
#include "prometheus_server.hpp"
#include "ringpipe/common/log.hpp"
#include "ringpipe/ingest/remote_write_source.hpp"
#include "test_support.hpp"

namespace ringpipe::ingest {
namespace {

using namespace std::chrono_literals;
using testing::Got;
using testing::MemoryStore;

struct PrometheusToReceiver {
  ringpipe::testing::ScratchDir dir;
  std::shared_ptr<MemoryStore> store = std::make_shared<MemoryStore>();
  std::unique_ptr<RemoteWriteSource> source;
  std::unique_ptr<exporters::testing::PrometheusServer> prometheus;

  explicit PrometheusToReceiver(bool refuse_first) {
    store->refuse = refuse_first;
    store->max_record_bytes = 1 << 20;
    RemoteWriteConfig c;
    c.port = 0;
    auto s = RemoteWriteSource::create(c, testing::memory_targets(store));
    if (!s) {
      ADD_FAILURE() << s.error().message();
      return;
    }
    source = std::move(*s);
    EXPECT_TRUE(source->start());
    prometheus = std::make_unique<exporters::testing::PrometheusServer>(dir.path().string(), 0);
    const std::string self = "127.0.0.1:" + std::to_string(prometheus->port());
    prometheus->set_config(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
        "scrape_configs:\n  - job_name: self\n    static_configs:\n      - targets: ['" +
        self +
        "']\n"
        "remote_write:\n  - url: http://127.0.0.1:" +
        std::to_string(source->port()) +
        "/api/v1/write\n    remote_timeout: 2s\n"
        "    queue_config:\n      batch_send_deadline: 200ms\n      min_backoff: 50ms\n"
        "      max_backoff: 200ms\n"
        "    metadata_config:\n      send_interval: 1s\n");
  }

  // The latest sample of `name` whose labels include every one of `want`.
  std::optional<Got> find(const std::string& name, const testing::Tags& want) {
    std::optional<Got> last;
    for (const Got& g : store->samples()) {
      if (g.name != name) continue;
      const bool all = std::all_of(want.begin(), want.end(), [&](const auto& kv) {
        return std::find(g.tags.begin(), g.tags.end(), kv) != g.tags.end();
      });
      if (all && (!last || g.ts >= last->ts)) last = g;
    }
    return last;
  }
};

TEST(RemoteWriteFromPrometheus, ReceivesItsOwnMetricsWithNamesLabelsAndValues) {
  PrometheusToReceiver s(false);
  ASSERT_TRUE(s.source);
  ASSERT_TRUE(s.prometheus->start()) << s.prometheus->log_tail();
  const std::string instance = "127.0.0.1:" + std::to_string(s.prometheus->port());
  ASSERT_TRUE(ringpipe::testing::wait_until(
      [&] {
        return s.find("up", {{"job", "self"}}) && s.find("prometheus_build_info", {}) &&
               s.find("prometheus_http_requests_total", {{"handler", "/metrics"}});
      },
      30s))
      << s.prometheus->log_tail();
  const auto up = s.find("up", {{"job", "self"}, {"instance", instance}});
  ASSERT_TRUE(up);
  EXPECT_EQ(up->kind, sample::Kind::kGauge);
  EXPECT_EQ(up->value, 1);
  const std::int64_t now = realtime_ns();
  EXPECT_GT(up->ts, now - std::int64_t{120'000'000'000});  // its scrape time, not ours
  EXPECT_LE(up->ts, now);
  const auto build = s.find("prometheus_build_info", {{"job", "self"}, {"instance", instance}});
  ASSERT_TRUE(build);
  EXPECT_EQ(build->value, 1);
  const auto has_label = [&](const std::string& key) {
    return std::any_of(build->tags.begin(), build->tags.end(), [&](const auto& kv) { return kv.first == key; });
  };
  EXPECT_TRUE(has_label("version"));
  EXPECT_TRUE(has_label("goversion"));
  EXPECT_TRUE(std::is_sorted(build->tags.begin(), build->tags.end()));
  // A counter arrives as its exact current value, set as a gauge.
  const auto requests = s.find("prometheus_http_requests_total", {{"handler", "/metrics"}});
  ASSERT_TRUE(requests);
  EXPECT_EQ(requests->kind, sample::Kind::kGauge);
  EXPECT_GE(requests->value, 1);
  const RemoteWriteStats& rw = s.source->remote_write_stats();
  EXPECT_GT(rw.answered(RemoteWriteAnswer::k204), 0u);
  EXPECT_EQ(rw.answered(RemoteWriteAnswer::k400), 0u);
  EXPECT_EQ(rw.answered(RemoteWriteAnswer::k503), 0u);
  EXPECT_EQ(s.source->stats().parse_error(ParseError::kBadProtobuf), 0u);
  EXPECT_EQ(s.source->stats().parse_error(ParseError::kBadSnappy), 0u);
}

TEST(RemoteWriteFromPrometheus, RetriesAfter503AndTheSamplesArriveAfterRecovery) {
  PrometheusToReceiver s(true);  // the "ring" refuses every claim at first
  ASSERT_TRUE(s.source);
  ASSERT_TRUE(s.prometheus->start()) << s.prometheus->log_tail();
  const RemoteWriteStats& rw = s.source->remote_write_stats();
  ASSERT_TRUE(ringpipe::testing::wait_until([&] { return rw.answered(RemoteWriteAnswer::k503) >= 3; }, 30s))
      << s.prometheus->log_tail();
  EXPECT_EQ(s.store->record_count(), 0u);  // nothing of a refused request is written
  EXPECT_GT(s.source->stats().samples_dropped.load(), 0u);
  const std::int64_t recovered_ns = realtime_ns();
  s.store->refuse = false;
  // The samples Prometheus scraped while it was refused arrive now: it retried them.
  ASSERT_TRUE(ringpipe::testing::wait_until(
      [&] {
        for (const Got& g : s.store->samples())
          if (g.name == "up" && g.ts < recovered_ns) return true;
        return false;
      },
      30s))
      << s.prometheus->log_tail();
  EXPECT_GT(rw.answered(RemoteWriteAnswer::k204), 0u);
  EXPECT_EQ(rw.answered(RemoteWriteAnswer::k400), 0u);
}

}  // namespace
}  // namespace ringpipe::ingest
