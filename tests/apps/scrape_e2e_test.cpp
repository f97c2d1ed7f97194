// `ringpipe run` scraping ringpipe's own /metrics: one pipeline whose front
// half (StatsD -> aggregate -> prometheus) is the target of its back half
// (prometheus_scrape -> aggregate -> prometheus). A histogram and a counter
// must come out of the back exporter with the front exporter's exact values,
// and the back exposition must be valid: it parses cleanly here and in
// promtool (Prometheus' own parser), although both halves serve ringpipe_*
// self-metrics of the same names.

#include <gtest/gtest.h>

#include <map>

#include "e2e_util.hpp"
#include "ringpipe/ingest/prom_text_parser.hpp"
#include "ringpipe/net/http_client.hpp"

namespace ringpipe::apps {
namespace {

using namespace std::chrono_literals;

std::string get_metrics(std::uint16_t port) {
  net::HttpClient c(net::HttpUrl{"127.0.0.1", std::to_string(port), "/"});
  auto r = c.request("GET", "/metrics", {}, "", 2s);
  return r && r->status == 200 ? r->body : std::string();
}

// Every sample of an exposition as "name{labels}" -> value, labels sorted
// without instance and job (which only the scraped side has).
std::map<std::string, double> series_of(const std::string& body, ingest::ParseCounters& counters) {
  std::map<std::string, double> out;
  std::vector<std::byte> buf(8 << 20);
  sample::BatchWriter w(buf, 1, 0);
  ingest::SampleOutput o(&w);
  ingest::PromTextParser p(ingest::PromTextOptions{});
  p.parse(body, ingest::PromFormat::kText, o, counters);
  sample::BatchReader r(std::span<const std::byte>(buf.data(), w.finish()));
  while (auto s = r.next()) {
    std::map<std::string, std::string> labels;
    s->for_each_tag([&](sample::Tag t) {
      if (t.key != "instance" && t.key != "job") labels[std::string(t.key)] = std::string(t.value);
    });
    std::string key(s->name);
    for (const auto& [k, v] : labels) key += "|" + k + "=" + v;
    out[key] = s->value;
  }
  return out;
}

TEST(ScrapeE2e, HistogramAndCounterScrapedFromRingpipeItselfKeepTheirValues) {
  testing::ScratchDir dir;
  const std::uint16_t statsd = e2e::free_tcp_port();
  const std::uint16_t front = e2e::free_tcp_port();
  const std::uint16_t back = e2e::free_tcp_port();
  const std::string file = dir.file("p.yaml");
  e2e::write_text(file, "pipeline: s\nrun_dir: " + dir.path().string() + R"(
rings:
  raw: {size: 4MiB}
  metrics: {size: 4MiB}
  scraped: {size: 4MiB}
  scraped_metrics: {size: 4MiB}
sources:
  statsd: {type: statsd, listen: [tcp://127.0.0.1:)" +
                            std::to_string(statsd) + R"(], output: raw}
  self: {type: prometheus_scrape, targets: ["http://127.0.0.1:)" +
                            std::to_string(front) + R"(/metrics"],
         interval: 200ms, timeout: 150ms, output: scraped}
processors:
  aggregate: {type: aggregate, input: raw, output: metrics, flush_interval: 100ms, observer_type: histogram,
              buckets: [0.01, 0.1, 1]}
  rescrape: {type: aggregate, input: scraped, output: scraped_metrics, flush_interval: 100ms}
exporters:
  front: {type: prometheus, input: metrics, listen: 127.0.0.1:)" +
                            std::to_string(front) + R"(}
  back: {type: prometheus, input: scraped_metrics, listen: 127.0.0.1:)" +
                            std::to_string(back) + R"(}
)");
  e2e::Proc sup({"run", file}, dir.file("sup.out"), dir.file("sup.err"));

  e2e::TcpSender sender(statsd);
  ASSERT_TRUE(sender.connect(10s)) << sup.err();
  // 10 timer observations (ms) and 42 increments.
  std::string load;
  for (int i = 0; i < 10; ++i) load += "e2e_latency:" + std::to_string(i * 50) + "|ms\n";
  load += e2e::lines("e2e_hits:2|c", 21);
  ASSERT_TRUE(sender.send(load));
  sender.finish();

  const std::vector<std::string> wanted = {
      "e2e_latency_bucket|le=0.01", "e2e_latency_bucket|le=0.1", "e2e_latency_bucket|le=1",
      "e2e_latency_bucket|le=+Inf", "e2e_latency_sum",           "e2e_latency_count"};
  std::map<std::string, double> f, b;
  ingest::ParseCounters fc, bc;
  const bool equal = testing::wait_until(
      [&] {
        fc = {};
        bc = {};
        f = series_of(get_metrics(front), fc);
        b = series_of(get_metrics(back), bc);
        if (!f.count("e2e_latency_count") || f["e2e_latency_count"] != 10) return false;
        for (const auto& k : wanted)
          if (!b.count(k) || b[k] != f[k]) return false;
        for (const auto& [k, v] : f)
          if (k.rfind("e2e_hits", 0) == 0 && (!b.count(k) || b[k] != v)) return false;
        return true;
      },
      20s);
  ASSERT_TRUE(equal) << sup.err();
  EXPECT_EQ(f["e2e_latency_bucket|le=0.01"], 1);  // 0 ms
  EXPECT_EQ(f["e2e_latency_bucket|le=0.1"], 3);   // 0, 50 and 100 ms
  EXPECT_EQ(f["e2e_latency_bucket|le=1"], 10);
  EXPECT_DOUBLE_EQ(b["e2e_latency_sum"], 2.25);
  // The counter: exposed as e2e_hits_total or e2e_hits, whichever the front uses, with 42.
  double hits = 0;
  for (const auto& [k, v] : b)
    if (k.rfind("e2e_hits", 0) == 0) hits += v;
  EXPECT_EQ(hits, 42);
  EXPECT_EQ(b["up"], 1);
  EXPECT_GT(b["scrape_samples_scraped"], 10);
  EXPECT_EQ(fc.total_errors(), 0u);
  EXPECT_EQ(bc.total_errors(), 0u);  // the back exposition is valid text format
  // promtool reports lint findings (gauges named _total, ...) but must parse it.
  const std::string body = get_metrics(back);
  ASSERT_FALSE(body.empty());
  e2e::write_text(dir.file("back.prom"), body);
  if (::access("/usr/bin/promtool", X_OK) == 0) {
    testing::Child promtool({"/bin/sh", "-c", "exec /usr/bin/promtool check metrics < " + dir.file("back.prom")},
                            dir.file("promtool.out"));
    EXPECT_NE(promtool.wait(30s), -1);
    const std::string lint = e2e::read_text(dir.file("promtool.out"));
    EXPECT_EQ(lint.find("error while linting"), std::string::npos) << lint;
    EXPECT_EQ(lint.find("parsing error"), std::string::npos) << lint;
  }

  sup.signal(SIGTERM);
  EXPECT_EQ(sup.wait(20s), std::optional<int>(0)) << sup.err();
}

}  // namespace
}  // namespace ringpipe::apps
