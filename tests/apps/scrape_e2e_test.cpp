// `ringpipe run` scraping ringpipe's own /metrics: one pipeline whose front
// half (StatsD -> aggregate -> prometheus) is the target of its back half
// (prometheus_scrape -> aggregate -> prometheus). A histogram and a counter
// must come out of the back exporter with the front exporter's exact values,
// and the back exposition must be valid: it parses cleanly here and in
// promtool (Prometheus' own parser), although both halves serve ringpipe_*
// self-metrics of the same names.

#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <set>
#include <sstream>

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
        // up and scrape_samples_scraped describe the latest scrape only: on a
        // loaded machine one can miss its 150 ms timeout (up 0, nothing
        // scraped) after an earlier one delivered the values compared above.
        return b["up"] == 1 && b["scrape_samples_scraped"] > 10;
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

// "# TYPE name type" lines of an exposition.
std::set<std::string> type_lines(const std::string& body) {
  std::set<std::string> out;
  std::istringstream in(body);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("# TYPE ", 0) == 0) out.insert(line);
  }
  return out;
}

// The HELP line of one family, or "" when there is none.
std::string help_line(const std::string& body, const std::string& family) {
  std::istringstream in(body);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("# HELP " + family + " ", 0) == 0) return line;
  }
  return {};
}

// Runs promtool check metrics on `body`; its exit code (1: the exposition is
// broken, 3: lint remarks only), or -2 when promtool is not installed.
int promtool_check(testing::ScratchDir& dir, const std::string& body, std::string& output) {
  if (::access("/usr/bin/promtool", X_OK) != 0) return -2;
  e2e::write_text(dir.file("check.prom"), body);
  testing::Child promtool({"/bin/sh", "-c", "exec /usr/bin/promtool check metrics < " + dir.file("check.prom")},
                          dir.file("promtool.out"));
  const int rc = promtool.wait(30s);
  output = e2e::read_text(dir.file("promtool.out"));
  return rc;
}

const char* const kTextfile = R"(# HELP rpc_seconds RPC latency.
# TYPE rpc_seconds histogram
rpc_seconds_bucket{le="0.005"} 2
rpc_seconds_bucket{le="0.5"} 7
rpc_seconds_bucket{le="+Inf"} 9
rpc_seconds_sum 3.25
rpc_seconds_count 9
# HELP job:requests:rate5m A recording rule's result.
# TYPE job:requests:rate5m gauge
job:requests:rate5m{job="api"} 12.5
# HELP textfile_jobs_total Jobs done.
# TYPE textfile_jobs_total counter
textfile_jobs_total COUNT
# HELP textfile_untyped Something without a type.
# TYPE textfile_untyped untyped
textfile_untyped 4
)";

void write_textfile(const testing::ScratchDir& dir, int count) {
  std::string text = kTextfile;
  text.replace(text.find("COUNT"), 5, std::to_string(count));
  // Written aside and renamed: node_exporter never reads half a file.
  e2e::write_text(dir.file("textfile/.tmp"), text);
  ASSERT_EQ(::rename(dir.file("textfile/.tmp").c_str(), dir.file("textfile/t.prom").c_str()), 0);
}

// node_exporter scraped through ringpipe (prometheus_scrape -> aggregate ->
// prometheus) is served back with every family's type: the same TYPE lines
// as node_exporter's own page (counters stay counters, summaries and
// histograms stay one family), HELP kept, recording-rule names with ':'
// kept, a counter that went down served as the new, lower value, and
// promtool check metrics finds no error.
TEST(ScrapeE2e, NodeExporterIsReservedWithItsTypesHelpAndNames) {
  constexpr const char* kNodeExporter = "/usr/bin/prometheus-node-exporter";
  ASSERT_EQ(::access(kNodeExporter, X_OK), 0) << kNodeExporter << " missing";
  testing::ScratchDir dir;
  std::filesystem::create_directories(dir.file("textfile"));
  write_textfile(dir, 10);
  const std::uint16_t node = e2e::free_tcp_port();
  testing::Child exporter(
      {kNodeExporter, "--web.listen-address=127.0.0.1:" + std::to_string(node), "--collector.disable-defaults",
       "--collector.loadavg", "--collector.meminfo", "--collector.cpu", "--collector.textfile",
       "--collector.textfile.directory=" + dir.file("textfile")},
      dir.file("node_exporter.log"));
  ASSERT_TRUE(testing::wait_until([&] { return testing::tcp_port_open(node); }, 10s));

  const std::uint16_t back = e2e::free_tcp_port();
  const std::string file = dir.file("p.yaml");
  e2e::write_text(file, "pipeline: n\nrun_dir: " + dir.path().string() + R"(
rings:
  scraped: {size: 4MiB}
  scraped_metrics: {size: 4MiB}
sources:
  node: {type: prometheus_scrape, targets: ["http://127.0.0.1:)" +
                            std::to_string(node) + R"(/metrics"],
         interval: 500ms, timeout: 500ms, output: scraped}
processors:
  rescrape: {type: aggregate, input: scraped, output: scraped_metrics, flush_interval: 100ms}
exporters:
  back: {type: prometheus, input: scraped_metrics, listen: 127.0.0.1:)" +
                            std::to_string(back) + R"(}
)");
  e2e::Proc sup({"run", file}, dir.file("sup.out"), dir.file("sup.err"));

  // Families only ringpipe serves (its own metrics, the scrape's up and scrape_*).
  const auto ours = [](const std::string& type_line) {
    const std::string name = type_line.substr(7, type_line.find(' ', 7) - 7);
    return name.rfind("ringpipe_", 0) == 0 || name == "up" || name.rfind("scrape_", 0) == 0;
  };
  std::set<std::string> original;
  std::set<std::string> served;
  std::string body;
  const bool same = testing::wait_until(
      [&] {
        original = type_lines(get_metrics(node));
        body = get_metrics(back);
        served.clear();
        for (const std::string& l : type_lines(body)) {
          if (!ours(l)) served.insert(l);
        }
        ingest::ParseCounters c;
        return !original.empty() && served == original && series_of(body, c)["textfile_jobs_total"] == 10;
      },
      30s);
  std::string missing;
  for (const std::string& l : original)
    if (!served.count(l)) missing += l + "\n";
  std::string extra;
  for (const std::string& l : served)
    if (!original.count(l)) extra += l + "\n";
  ASSERT_TRUE(same) << "missing:\n" << missing << "extra:\n" << extra << sup.err() << body;
  EXPECT_TRUE(original.count("# TYPE go_gc_duration_seconds summary"));
  EXPECT_TRUE(original.count("# TYPE node_cpu_seconds_total counter"));
  EXPECT_TRUE(original.count("# TYPE rpc_seconds histogram"));
  EXPECT_EQ(help_line(body, "rpc_seconds"), "# HELP rpc_seconds RPC latency.");
  EXPECT_EQ(help_line(body, "textfile_jobs_total"), "# HELP textfile_jobs_total Jobs done.");
  EXPECT_NE(body.find("job:requests:rate5m{"), std::string::npos) << body;
  EXPECT_EQ(body.find("job_requests_rate5m"), std::string::npos);
  ingest::ParseCounters pc;
  std::map<std::string, double> got = series_of(body, pc);
  EXPECT_EQ(pc.total_errors(), 0u);
  EXPECT_EQ(got["rpc_seconds_bucket|le=0.005"], 2);
  EXPECT_EQ(got["rpc_seconds_bucket|le=0.5"], 7);
  EXPECT_EQ(got["rpc_seconds_bucket|le=+Inf"], 9);
  EXPECT_EQ(got["rpc_seconds_sum"], 3.25);
  EXPECT_EQ(got["rpc_seconds_count"], 9);
  std::string lint;
  const int rc = promtool_check(dir, body, lint);
  EXPECT_TRUE(rc == 0 || rc == 3 || rc == -2) << "promtool exit " << rc << "\n" << lint;

  // The counter restarts lower: served as the new value, still a counter.
  write_textfile(dir, 3);
  ASSERT_TRUE(testing::wait_until(
      [&] {
        body = get_metrics(back);
        ingest::ParseCounters c;
        return series_of(body, c)["textfile_jobs_total"] == 3;
      },
      20s))
      << body;
  EXPECT_NE(body.find("# TYPE textfile_jobs_total counter"), std::string::npos);

  sup.signal(SIGTERM);
  EXPECT_EQ(sup.wait(20s), std::optional<int>(0)) << sup.err();
}

}  // namespace
}  // namespace ringpipe::apps
