// exporters_bench: what a scrape of N series costs, and how fast remote_write
// pushes into a local Prometheus, each beside a baseline measured in this run.
//
//   exporters_bench [--series 10000,100000,1000000] [--writer new,old] [--rw-records 200] [--rw-series 1000]
//                   [--native-histograms 10000] [--apply 1000000]
//
// Scrape: series go through a real metric ring into a PrometheusExporter; a
// loopback client GETs /metrics (best and median of 5, 3 at 1M). One row per
// `--writer`: `new` writes the page straight from the exporter's state,
// `old` goes through prometheus-cpp's objects and TextSerializer (the
// earlier path: the same-run baseline), each in a child process with the
// anonymous RSS it added once loaded and at its peak during the scrapes.
// Baseline: a prometheus::Registry holding the same number of plain Gauges
// with the same labels behind its own Exposer. remote_write: records of `--rw-series`
// counters into a RemoteWriteExporter -> /usr/bin/prometheus; baseline: the
// same encoded requests POSTed back to back over one connection. Native
// histograms: the protobuf and text pages of `--native-histograms` histogram
// series with 20 native buckets each, beside the same series without them.
// Apply: `--apply` StatsD-like counters applied to the exporter's state, new
// and then known, with and without the look-ahead prefetch.

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <prometheus/exposer.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include "prometheus_server.hpp"
#include "protobuf_writer.hpp"
#include "record_builder.hpp"
#include "remote_write_encoder.hpp"
#include "ringpipe/common/log.hpp"
#include "ringpipe/exporters/prometheus_exporter.hpp"
#include "ringpipe/exporters/remote_write_exporter.hpp"
#include "ringpipe/net/http_client.hpp"
#include "ringpipe/ring/ring.hpp"
#include "series_state.hpp"

namespace {

using namespace std::chrono_literals;
using namespace ringpipe;
using exporters::testing::LabelList;
using exporters::testing::origin;
using exporters::testing::RecordBuilder;
using metric::MetricType;

struct Timing {
  double best_ms = 0;
  double median_ms = 0;
  std::size_t bytes = 0;
};

Timing time_scrapes(std::uint16_t port, int rounds) {
  net::HttpClient c(net::HttpUrl{"127.0.0.1", std::to_string(port), "/"});
  std::vector<double> ms;
  Timing t;
  for (int i = 0; i < rounds; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    auto r = c.request("GET", "/metrics", {}, "", 60s);
    const auto t1 = std::chrono::steady_clock::now();
    if (!r || r->status != 200) {
      std::fprintf(stderr, "scrape failed: %s\n", r ? std::to_string(r->status).c_str() : r.error().message().c_str());
      return t;
    }
    t.bytes = r->body.size();
    ms.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
  }
  std::sort(ms.begin(), ms.end());
  t.best_ms = ms.front();
  t.median_ms = ms[ms.size() / 2];
  return t;
}

LabelList labels_of(std::size_t i) {
  return {{"host", "host-" + std::to_string(i / 100 % 1000)}, {"idx", std::to_string(i)}};
}
std::string name_of(std::size_t i) { return "bench_metric_" + std::to_string(i % 100); }

ring::RingOptions ring_options() {
  ring::RingOptions o;
  o.lane_capacity_bytes = 16u << 20;
  o.lanes = 4;
  o.max_record_bytes = 2u << 20;
  o.overflow = ring::Overflow::kBlock;
  return o;
}

bool fill(ring::Producer& p, std::size_t n, std::uint64_t instance, double value) {
  std::size_t i = 0;
  std::uint64_t seq = 0;
  while (i < n) {
    RecordBuilder b(origin(instance, 0, 1, ++seq), 2u << 20);
    if (seq == 1) b.begin(1);
    const std::size_t end = std::min(n, i + 10000);
    for (; i < end; ++i) b.series(MetricType::kGauge, name_of(i), labels_of(i), {value + static_cast<double>(i)});
    if (i == n) b.end(1);
    if (!b.ok()) return false;
    const auto rec = b.take();
    if (p.write(metric::kMetricBatchRecord, rec, 30s) != ring::WriteStatus::kOk) return false;
  }
  return true;
}

// Anonymous resident memory of this process (kB): the state and the pages,
// not the ring's shared mapping.
std::size_t rss_anon_kb() {
  std::FILE* f = std::fopen("/proc/self/status", "r");
  if (f == nullptr) return 0;
  char line[256];
  std::size_t kb = 0;
  while (std::fgets(line, sizeof line, f) != nullptr) {
    if (std::strncmp(line, "RssAnon:", 8) == 0) kb = std::strtoull(line + 8, nullptr, 10);
  }
  std::fclose(f);
  return kb;
}

// The largest rss_anon_kb() seen while it lives (sampled every 2 ms).
class PeakSampler {
 public:
  PeakSampler()
      : thread_([this] {
          while (!stop_.load()) {
            peak_ = std::max(peak_.load(), rss_anon_kb());
            std::this_thread::sleep_for(2ms);
          }
        }) {}
  std::size_t stop() {
    stop_ = true;
    thread_.join();
    return std::max(peak_.load(), rss_anon_kb());
  }

 private:
  std::atomic<bool> stop_{false};
  std::atomic<std::size_t> peak_{0};
  std::thread thread_;
};

// One exporter with n series, its page written by `writer`; run in a child
// process so each row's memory starts from the same empty heap.
void scrape_exporter(std::size_t n, const std::string& dir, const char* writer) {
  const bool old_path = std::strcmp(writer, "old") == 0;
  const std::string path = dir + "/scrape-" + std::to_string(n) + "-" + writer;
  auto ring = ring::Ring::create(path, ring_options());
  if (!ring) {
    std::fprintf(stderr, "%s\n", ring.error().message().c_str());
    return;
  }
  exporters::PrometheusExporterOptions o;
  o.input = path;
  o.listen = "127.0.0.1:0";
  o.request_resync = false;
  o.render_with_prometheus_cpp = old_path;
  const std::size_t rss0 = rss_anon_kb();
  auto exp = exporters::PrometheusExporter::create(o);
  if (!exp || !(*exp)->start()) {
    std::fprintf(stderr, "exporter failed\n");
    return;
  }
  auto p = ring::Producer::attach(*ring);
  const auto t0 = std::chrono::steady_clock::now();
  if (!p || !fill(*p, n, 1, 0.5)) {
    std::fprintf(stderr, "fill failed\n");
    return;
  }
  while ((*exp)->stats().series < n) std::this_thread::sleep_for(1ms);
  const double load_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  const std::size_t rss_loaded = rss_anon_kb();
  const int rounds = n >= 1'000'000 ? 3 : 5;
  PeakSampler sampler;
  const Timing ours = time_scrapes((*exp)->port(), rounds);
  const std::size_t rss_peak = sampler.stop();
  // The exporter's own histogram says how much of a scrape was collecting.
  double collect_ms = 0;
  {
    net::HttpClient c(net::HttpUrl{"127.0.0.1", std::to_string((*exp)->port()), "/"});
    auto r = c.request("GET", "/metrics", {}, "", 60s);
    auto field = [&](const std::string& key) {
      const auto at = r ? r->body.find("\n" + key + " ") : std::string::npos;
      return at == std::string::npos ? 0.0 : std::strtod(r->body.c_str() + at + key.size() + 2, nullptr);
    };
    const double count = field("ringpipe_exporter_scrape_duration_seconds_count");
    if (count > 0) collect_ms = 1000 * field("ringpipe_exporter_scrape_duration_seconds_sum") / count;
  }
  std::printf(
      "%9zu series | writer %-3s | load %8.1f ms | collect %8.1f ms | scrape best %8.1f ms median %8.1f ms %11zu "
      "bytes | anon RSS loaded %7.1f MB (%5.0f B/series) peak in scrapes %7.1f MB\n",
      n, writer, load_ms, collect_ms, ours.best_ms, ours.median_ms, ours.bytes,
      static_cast<double>(rss_loaded - rss0) / 1024,
      static_cast<double>(rss_loaded - rss0) * 1024 / static_cast<double>(n),
      static_cast<double>(rss_peak - rss0) / 1024);
  std::fflush(stdout);
  exp->reset();
  std::filesystem::remove(path);
}

void in_child(const std::function<void()>& f) {
  std::fflush(stdout);
  const pid_t pid = ::fork();
  if (pid == 0) {
    f();
    std::fflush(stdout);
    ::_exit(0);
  }
  int status = 0;
  if (pid > 0) ::waitpid(pid, &status, 0);
}

void scrape_bench(std::size_t n, const std::string& dir, const std::vector<std::string>& writers) {
  for (const std::string& w : writers) in_child([&] { scrape_exporter(n, dir, w.c_str()); });
  in_child([&] {
    Timing base;
    const std::size_t rss0 = rss_anon_kb();
    auto registry = std::make_shared<prometheus::Registry>();
    std::vector<prometheus::Family<prometheus::Gauge>*> fams;
    for (int f = 0; f < 100; ++f) {
      fams.push_back(&prometheus::BuildGauge().Name("bench_metric_" + std::to_string(f)).Help("").Register(*registry));
    }
    for (std::size_t i = 0; i < n; ++i) {
      auto l = labels_of(i);
      fams[i % 100]->Add({{l[0].first, l[0].second}, {l[1].first, l[1].second}}).Set(0.5 + static_cast<double>(i));
    }
    const std::size_t rss_loaded = rss_anon_kb();
    prometheus::Exposer exposer("127.0.0.1:0", 2);
    exposer.RegisterCollectable(registry);
    base = time_scrapes(static_cast<std::uint16_t>(exposer.GetListeningPorts().front()), n >= 1'000'000 ? 3 : 5);
    std::printf(
        "%9zu series | baseline prometheus-cpp Registry+Gauges: scrape best %8.1f ms median %8.1f ms %11zu bytes | "
        "anon RSS loaded %7.1f MB\n",
        n, base.best_ms, base.median_ms, base.bytes, static_cast<double>(rss_loaded - rss0) / 1024);
    std::fflush(stdout);
  });
}

// The render cost of native histograms: n histogram series (10 classic
// buckets) in a SeriesState, rendered as the protobuf page with a native part
// of `buckets` populated buckets each, beside the same series without one
// (the same-run baseline), and as the text page (which has no native part).
void native_render_bench(std::size_t n, std::size_t buckets) {
  auto load = [&](exporters::SeriesState& s, bool native) {
    for (std::size_t i = 0; i < n;) {
      RecordBuilder b(origin(1), 1 << 20);
      for (std::size_t end = std::min(n, i + 500); i < end; ++i) {
        std::vector<double> v;
        if (native) {
          v = {3, 2.938735877055719e-39, 1, static_cast<double>(buckets), 0};
          for (std::size_t k = 0; k < buckets; ++k) {
            v.push_back(static_cast<double>(k) * 2 - 20);  // gaps of one: spans of up to two empty buckets
            v.push_back(static_cast<double>(k % 5 + 1));
          }
        }
        const double count = 100 + static_cast<double>(i % 7);
        v.insert(v.end(), {count, 12.5});
        for (int k = 1; k <= 10; ++k) {
          v.push_back(0.01 * k * k);
          v.push_back(count * k / 10);
        }
        v.insert(v.end(), {INFINITY, count});
        b.series(MetricType::kHistogram, "bench_hist_" + std::to_string(i % 100), labels_of(i), v, "",
                 native ? metric::kEntryNative : 0);
      }
      const auto rec = b.take();
      s.apply(rec);
    }
  };
  auto best_ms = [](const std::function<std::size_t()>& f, std::size_t& bytes) {
    double best = 1e300;
    for (int r = 0; r < 5; ++r) {
      const auto t0 = std::chrono::steady_clock::now();
      bytes = f();
      best = std::min(best, std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    }
    return best;
  };
  for (const bool native : {false, true}) {
    exporters::SeriesState s;
    load(s, native);
    std::size_t proto_bytes = 0;
    const double proto_ms = best_ms(
        [&] {
          exporters::protobuf::NativeIndex natives;
          std::vector<prometheus::MetricFamily> fams;
          s.collect(fams, &natives);
          std::string out;
          exporters::protobuf::append_families(out, fams, natives);
          return out.size();
        },
        proto_bytes);
    std::size_t text_bytes = 0;
    const double text_ms = best_ms(
        [&] {
          std::string out;
          s.render(out);
          return out.size();
        },
        text_bytes);
    std::printf(
        "%9zu histograms | %-28s | protobuf page best %8.1f ms %11zu bytes | text page best %8.1f ms %11zu bytes\n", n,
        native ? ("classic + " + std::to_string(buckets) + " native buckets").c_str() : "classic only (baseline)",
        proto_ms, proto_bytes, text_ms, text_bytes);
    std::fflush(stdout);
  }
}

// What applying records costs the exporter: n counters of n names (StatsD
// names, one family each, as the processor sends them), 2000 to a record,
// applied once (every series new) and then again (every series known), with
// the entries ahead prefetched and, as the same-run baseline, without.
void apply_bench(std::size_t n) {
  std::vector<std::vector<std::byte>> records;
  for (std::size_t i = 0; i < n;) {
    RecordBuilder b(origin(1), 1 << 20);
    for (std::size_t end = std::min(n, i + 2000); i < end; ++i) {
      b.series(MetricType::kCounter, "bench_metric_" + std::to_string(i), {}, {static_cast<double>(i)});
    }
    records.push_back(b.take());
  }
  for (const bool prefetch : {false, true}) {
    exporters::SeriesState s;
    s.set_apply_prefetch(prefetch);
    double ns[2] = {0, 0};
    for (double& pass : ns) {
      const auto t0 = std::chrono::steady_clock::now();
      for (const auto& rec : records) s.apply(rec);
      pass = std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t0).count() /
             static_cast<double>(n);
    }
    std::printf("%9zu series | apply %-28s | new series %7.1f ns/entry | known series %7.1f ns/entry\n", n,
                prefetch ? "with look-ahead prefetch" : "without prefetch (baseline)", ns[0], ns[1]);
    std::fflush(stdout);
  }
}

void remote_write_bench(std::size_t records, std::size_t series, const std::string& dir) {
  if (::access(exporters::testing::kPrometheusBinary, X_OK) != 0) {
    std::printf("remote_write: skipped (%s not installed)\n", exporters::testing::kPrometheusBinary);
    return;
  }
  std::filesystem::create_directories(dir + "/prom");
  exporters::testing::PrometheusServer prom(dir + "/prom", 0);
  if (!prom.start()) {
    std::printf("remote_write: prometheus did not start\n%s\n", prom.log_tail().c_str());
    return;
  }
  const std::string url = "http://127.0.0.1:" + std::to_string(prom.port()) + "/api/v1/write";
  const std::int64_t base_ns = realtime_ns() - 120'000'000'000;
  const std::size_t batch = 2000;

  // Baseline: the same requests (series x records samples) POSTed back to back.
  {
    std::vector<std::string> bodies;
    exporters::RequestBuilder rb;
    for (std::size_t r = 0; r < records; ++r) {
      RecordBuilder b(origin(1, 0, 1, r + 1, base_ns + static_cast<std::int64_t>(r) * 1'000'000), 4u << 20);
      for (std::size_t s = 0; s < series; ++s) {
        b.series(MetricType::kCounter, "rw_base", {{"s", std::to_string(s)}}, {static_cast<double>(r)});
      }
      const auto rec = b.take();
      metric::MetricBatchReader reader(rec);
      while (auto e = reader.next()) {
        rb.add(*e, reader.header().flush_ns / 1'000'000);
        if (rb.samples() >= batch) bodies.push_back(*rb.take_compressed());
      }
      if (!rb.empty()) bodies.push_back(*rb.take_compressed());
    }
    net::HttpClient c(*net::parse_http_url(url));
    const net::HttpHeaders h{{"Content-Encoding", "snappy"},
                             {"Content-Type", "application/x-protobuf"},
                             {"X-Prometheus-Remote-Write-Version", "0.1.0"}};
    const auto t0 = std::chrono::steady_clock::now();
    for (const auto& body : bodies) {
      auto r = c.request("POST", "/api/v1/write", h, body, 30s);
      if (!r || r->status / 100 != 2) {
        std::printf("baseline POST failed\n");
        break;
      }
    }
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf("remote_write baseline (pre-encoded POSTs, 1 connection): %zu samples in %.2f s = %.0f samples/s\n",
                records * series, s, static_cast<double>(records * series) / s);
  }

  const std::string path = dir + "/rw";
  auto ring = ring::Ring::create(path, ring_options());
  if (!ring) return;
  exporters::RemoteWriteOptions o;
  o.input = path;
  o.url = url;
  o.batch_size = batch;
  o.max_in_flight = 4;
  auto rw = exporters::RemoteWriteExporter::create(o);
  if (!rw) {
    std::printf("%s\n", rw.error().message().c_str());
    return;
  }
  auto p = ring::Producer::attach(*ring);
  // Records are written first, so the exporter's rate is measured, not the writer's.
  std::vector<std::vector<std::byte>> recs;
  for (std::size_t r = 0; r < records; ++r) {
    RecordBuilder b(origin(2, 0, 1, r + 1, base_ns + static_cast<std::int64_t>(r) * 1'000'000), 4u << 20);
    for (std::size_t s = 0; s < series; ++s) {
      b.series(MetricType::kCounter, "rw_bench", {{"s", std::to_string(s)}}, {static_cast<double>(r)});
    }
    recs.push_back(b.take());
  }
  const auto t0 = std::chrono::steady_clock::now();
  if (!(*rw)->start()) return;
  std::thread writer([&] {
    for (const auto& rec : recs) (void)p->write(metric::kMetricBatchRecord, rec, 30s);
  });
  const auto deadline = t0 + 120s;
  while ((*rw)->stats().records < records && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(1ms);
  }
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  writer.join();
  const auto st = (*rw)->stats();
  std::printf(
      "remote_write exporter (ring -> %zu connections, %zu samples/request): %llu samples in %.2f s = %.0f "
      "samples/s, %llu requests, %llu bytes, %llu retries, %llu dropped\n",
      o.max_in_flight, batch, static_cast<unsigned long long>(st.samples_sent), s,
      static_cast<double>(st.samples_sent) / s, static_cast<unsigned long long>(st.requests),
      static_cast<unsigned long long>(st.bytes_sent), static_cast<unsigned long long>(st.retries),
      static_cast<unsigned long long>(st.dropped_samples));
  (*rw)->stop();
  prom.stop();
}

std::vector<std::size_t> parse_list(const char* s) {
  std::vector<std::size_t> out;
  std::string t(s);
  std::size_t at = 0;
  while (at <= t.size()) {
    const auto comma = t.find(',', at);
    out.push_back(std::stoull(t.substr(at, comma - at)));
    if (comma == std::string::npos) break;
    at = comma + 1;
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  init_logging("exporters_bench", spdlog::level::warn);
  std::vector<std::size_t> sizes{10'000, 100'000, 1'000'000};
  std::size_t rw_records = 200;
  std::size_t rw_series = 1000;
  std::vector<std::string> writers{"new", "old"};
  std::size_t native_histograms = 10'000;
  std::size_t apply_series = 1'000'000;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "--native-histograms") == 0) native_histograms = std::stoull(argv[i + 1]);
    if (std::strcmp(argv[i], "--apply") == 0) apply_series = std::stoull(argv[i + 1]);
    if (std::strcmp(argv[i], "--series") == 0) sizes = parse_list(argv[i + 1]);
    if (std::strcmp(argv[i], "--rw-records") == 0) rw_records = std::stoull(argv[i + 1]);
    if (std::strcmp(argv[i], "--rw-series") == 0) rw_series = std::stoull(argv[i + 1]);
    if (std::strcmp(argv[i], "--writer") == 0) {
      writers.clear();
      for (std::string_view rest = argv[i + 1]; !rest.empty();) {
        const auto comma = rest.find(',');
        writers.emplace_back(rest.substr(0, comma));
        rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
      }
    }
  }
  char tmpl[] = "/dev/shm/ringpipe-exporters-bench-XXXXXX";
  const char* dir = ::mkdtemp(tmpl);
  if (dir == nullptr) return 1;
  std::printf("cores available: %u\n", std::thread::hardware_concurrency());
  for (const std::size_t n : sizes) scrape_bench(n, dir, writers);
  if (apply_series > 0) apply_bench(apply_series);
  if (native_histograms > 0) native_render_bench(native_histograms, 20);
  if (rw_records > 0) remote_write_bench(rw_records, rw_series, dir);
  std::filesystem::remove_all(dir);
  return 0;
}
