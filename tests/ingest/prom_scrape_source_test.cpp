// PromScrapeSource against real peers on loopback: Debian's
// prometheus-node-exporter on a free port (its own temporary directory), a
// port nobody listens on, and canned HTTP servers that are slow, fail, send
// too much or send bad lines. Samples land in an in-memory target.

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <optional>

#include "memory_target.hpp"
#include "ringpipe/ingest/prom_scrape_source.hpp"
#include "test_support.hpp"

namespace ringpipe::ingest {
namespace {

using namespace std::chrono_literals;
using testing::Got;
using testing::MemoryStore;

constexpr const char* kNodeExporter = "/usr/bin/prometheus-node-exporter";

std::optional<std::string> label(const Got& g, std::string_view key) {
  for (const auto& [k, v] : g.tags)
    if (k == key) return v;
  return std::nullopt;
}

// The last sample named `name` (with `key`=`value` when given).
std::optional<Got> last(const std::vector<Got>& all, std::string_view name, std::string_view key = {},
                        std::string_view value = {}) {
  for (auto it = all.rbegin(); it != all.rend(); ++it) {
    if (it->name == name && (key.empty() || label(*it, key) == value)) return *it;
  }
  return std::nullopt;
}

PromScrapeConfig config_for(std::vector<std::string> targets) {
  PromScrapeConfig c;
  c.name = "node";
  c.targets = std::move(targets);
  c.interval = 300ms;
  c.timeout = 250ms;
  return c;
}

std::string url(std::uint16_t port, const std::string& path = "/metrics") {
  return "http://127.0.0.1:" + std::to_string(port) + path;
}

struct Scraper {
  std::shared_ptr<MemoryStore> store = std::make_shared<MemoryStore>();
  std::unique_ptr<PromScrapeSource> source;

  explicit Scraper(const PromScrapeConfig& c) {
    auto s = PromScrapeSource::create(c, testing::memory_targets(store));
    EXPECT_TRUE(s) << (s ? "" : s.error().message());
    if (!s) return;
    source = std::move(*s);
    EXPECT_TRUE(source->start());
  }
  // Waits until `n` scrapes have been written (each writes one `up`).
  bool wait_scrapes(std::size_t n, std::chrono::milliseconds timeout = 10s) {
    return ringpipe::testing::wait_until(
        [&] {
          const auto all = store->samples();
          return static_cast<std::size_t>(
                     std::count_if(all.begin(), all.end(), [](const Got& g) { return g.name == "up"; })) >= n;
        },
        timeout);
  }
};

TEST(PromScrapeSource, ScrapesARealNodeExporterWithTargetLabelsAndUp) {
  ASSERT_EQ(::access(kNodeExporter, X_OK), 0) << kNodeExporter << " missing (apt-get install prometheus-node-exporter)";
  ringpipe::testing::ScratchDir dir;
  const std::uint16_t port = ringpipe::testing::free_tcp_port();
  ringpipe::testing::Child exporter(
      {kNodeExporter, "--web.listen-address=127.0.0.1:" + std::to_string(port), "--collector.disable-defaults",
       "--collector.loadavg", "--collector.meminfo", "--collector.textfile.directory=" + dir.path().string()},
      dir.file("node_exporter.log"));
  ASSERT_TRUE(ringpipe::testing::wait_until([&] { return ringpipe::testing::tcp_port_open(port); }, 10s));

  Scraper s(config_for({url(port)}));
  ASSERT_TRUE(s.source);
  ASSERT_TRUE(s.wait_scrapes(2));
  s.source->stop();
  const auto all = s.store->samples();
  const std::string instance = "127.0.0.1:" + std::to_string(port);

  const auto up = last(all, "up");
  ASSERT_TRUE(up);
  EXPECT_EQ(up->value, 1);
  EXPECT_EQ(up->kind, sample::Kind::kGauge);
  EXPECT_EQ(label(*up, "instance"), instance);
  EXPECT_EQ(label(*up, "job"), "node");
  const auto load = last(all, "node_load1");
  ASSERT_TRUE(load);
  EXPECT_EQ(label(*load, "instance"), instance);
  EXPECT_EQ(label(*load, "job"), "node");
  EXPECT_GE(load->value, 0);
  ASSERT_TRUE(last(all, "node_memory_MemTotal_bytes"));
  EXPECT_GT(last(all, "node_memory_MemTotal_bytes")->value, 0);
  // A summary of the exporter's own Go runtime: every quantile and _sum/_count.
  EXPECT_TRUE(last(all, "go_gc_duration_seconds", "quantile", "0.5"));
  EXPECT_TRUE(last(all, "go_gc_duration_seconds_count"));
  const auto scraped = last(all, "scrape_samples_scraped");
  ASSERT_TRUE(scraped);
  EXPECT_GT(scraped->value, 20);
  const auto duration = last(all, "scrape_duration_seconds");
  ASSERT_TRUE(duration);
  EXPECT_GT(duration->value, 0);
  EXPECT_LT(duration->value, 0.25);

  // One claim per scrape: every record holds exactly one up, and as many
  // scraped samples as that scrape's scrape_samples_scraped says.
  for (std::size_t r = 0; r < s.store->record_count(); ++r) {
    std::vector<Got> rec;
    {
      std::lock_guard lock(s.store->mu);
      rec = testing::decode(s.store->records[r]);
    }
    EXPECT_EQ(std::count_if(rec.begin(), rec.end(), [](const Got& g) { return g.name == "up"; }), 1);
    const auto n = last(rec, "scrape_samples_scraped");
    ASSERT_TRUE(n);
    EXPECT_EQ(static_cast<double>(rec.size() - 3), n->value);
  }
  for (std::size_t e = 0; e < kParseErrorCount; ++e) {
    EXPECT_EQ(s.source->stats().parse_errors[e].load(), 0u) << parse_error_name(static_cast<ParseError>(e));
  }
  EXPECT_GE(s.source->scrape_stats().scrapes.load(), 2u);
  EXPECT_GT(s.source->scrape_stats().bytes.load(), 1000u);
  EXPECT_EQ(s.source->scrape_stats().targets_up.load(), 1u);
}

TEST(PromScrapeSource, DownTargetGivesUpZeroAndACountedConnectFailure) {
  const std::uint16_t port = ringpipe::testing::free_tcp_port();
  Scraper s(config_for({url(port)}));
  ASSERT_TRUE(s.source);
  ASSERT_TRUE(s.wait_scrapes(1));
  s.source->stop();
  const auto all = s.store->samples();
  ASSERT_TRUE(last(all, "up"));
  EXPECT_EQ(last(all, "up")->value, 0);
  EXPECT_EQ(last(all, "scrape_samples_scraped")->value, 0);
  EXPECT_GE(s.source->scrape_stats().failed(ScrapeFailure::kConnect), 1u);
  EXPECT_EQ(s.source->scrape_stats().targets_up.load(), 0u);
}

TEST(PromScrapeSource, SlowTargetTimesOutWithinTheTimeout) {
  ringpipe::testing::CannedHttpServer slow(200, "text/plain; version=0.0.4", "late 1\n", 3s);
  PromScrapeConfig c = config_for({url(slow.port())});
  c.timeout = 200ms;
  Scraper s(c);
  ASSERT_TRUE(s.source);
  ASSERT_TRUE(s.wait_scrapes(1));
  s.source->stop();
  const auto all = s.store->samples();
  EXPECT_EQ(last(all, "up")->value, 0);
  EXPECT_FALSE(last(all, "late"));
  EXPECT_GE(last(all, "scrape_duration_seconds")->value, 0.15);
  EXPECT_LT(last(all, "scrape_duration_seconds")->value, 1.0);
  EXPECT_GE(s.source->scrape_stats().failed(ScrapeFailure::kTimeout), 1u);
}

TEST(PromScrapeSource, ErrorStatusAndOversizeBodyFailTheScrape) {
  ringpipe::testing::CannedHttpServer failing(503, "text/plain", "unavailable\n");
  ringpipe::testing::CannedHttpServer big(200, "text/plain", "big{x=\"" + std::string(4000, 'y') + "\"} 1\n");
  PromScrapeConfig c = config_for({url(failing.port()), url(big.port())});
  c.max_body_bytes = 1024;
  Scraper s(c);
  ASSERT_TRUE(s.source);
  ASSERT_TRUE(s.wait_scrapes(2));
  s.source->stop();
  const auto all = s.store->samples();
  EXPECT_EQ(last(all, "up", "instance", "127.0.0.1:" + std::to_string(failing.port()))->value, 0);
  EXPECT_EQ(last(all, "up", "instance", "127.0.0.1:" + std::to_string(big.port()))->value, 0);
  EXPECT_FALSE(last(all, "big"));
  EXPECT_GE(s.source->scrape_stats().failed(ScrapeFailure::kHttpStatus), 1u);
  EXPECT_GE(s.source->scrape_stats().failed(ScrapeFailure::kBodyTooLarge), 1u);
  EXPECT_EQ(s.store->targets.load(), 2);  // one lane per target
}

TEST(PromScrapeSource, BadLinesAreCountedAndTheRestIsKept) {
  ringpipe::testing::CannedHttpServer om(200, "application/openmetrics-text; version=1.0.0; charset=utf-8",
                                         "# TYPE requests counter\nrequests_total{code=\"200\"} 7 1700000000.5\n"
                                         "bad{ 1\nrequests_created 1700000000\n# EOF\n");
  Scraper s(config_for({url(om.port(), "/m?format=om")}));
  ASSERT_TRUE(s.source);
  ASSERT_TRUE(s.wait_scrapes(1));
  s.source->stop();
  const auto all = s.store->samples();
  const auto r = last(all, "requests_total");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->value, 7);
  EXPECT_EQ(r->ts, 1700000000500000000LL);
  EXPECT_EQ(last(all, "up")->value, 1);  // a bad line does not fail the scrape
  EXPECT_EQ(last(all, "scrape_samples_scraped")->value, 1);
  EXPECT_GE(s.source->stats().parse_error(ParseError::kMalformedTag), 1u);
  EXPECT_EQ(s.source->stats().parse_error(ParseError::kMissingEof), 0u);
  EXPECT_GE(s.source->stats().skipped_fields.load(), 1u);  // requests_created
  const std::string req = om.last_request();
  EXPECT_NE(req.find("GET /m?format=om HTTP/1.1"), std::string::npos) << req;
  EXPECT_NE(req.find("Accept: application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"),
            std::string::npos)
      << req;
  EXPECT_EQ(req.find("Accept-Encoding"), std::string::npos) << req;
}

TEST(PromScrapeSource, CreateRefusesBadConfigs) {
  auto store = std::make_shared<MemoryStore>();
  auto refused = [&](PromScrapeConfig c, std::string_view why) {
    auto s = PromScrapeSource::create(c, testing::memory_targets(store));
    ASSERT_FALSE(s) << why;
    EXPECT_NE(s.error().message().find(why), std::string::npos) << s.error().message();
  };
  refused(config_for({}), "no targets");
  PromScrapeConfig slow = config_for({"http://127.0.0.1:9/"});
  slow.timeout = 2s;
  refused(slow, "timeout must be positive and at most the interval");
  refused(config_for({"https://127.0.0.1:9/"}), "https targets are not supported");
  refused(config_for({"ftp://127.0.0.1/"}), "expected http(s)://");
}

}  // namespace
}  // namespace ringpipe::ingest
