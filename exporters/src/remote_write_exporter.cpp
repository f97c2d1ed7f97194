#include "ringpipe/exporters/remote_write_exporter.hpp"

#include <time.h>

#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <random>
#include <thread>

#include "entry_relabel.hpp"
#include "remote_write_encoder.hpp"
#include "ringpipe/common/log.hpp"
#include "ringpipe/exporters/remote_write.hpp"
#include "ringpipe/metric/metric_record.hpp"
#include "ringpipe/net/http_client.hpp"
#include "ringpipe/ring/ring.hpp"
#include "ringpipe/stats/stats_segment.hpp"

namespace ringpipe::exporters {
namespace {

using net::HttpClient;
using net::HttpHeaders;
using net::HttpUrl;
using net::make_tls_client_context;
using net::parse_http_url;
using net::TlsClientContext;

using namespace std::chrono_literals;

std::string base64(std::string_view in) {
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    const unsigned v = (static_cast<unsigned char>(in[i]) << 16) | (static_cast<unsigned char>(in[i + 1]) << 8) |
                       static_cast<unsigned char>(in[i + 2]);
    out += {kAlphabet[(v >> 18) & 63], kAlphabet[(v >> 12) & 63], kAlphabet[(v >> 6) & 63], kAlphabet[v & 63]};
  }
  if (i + 1 == in.size()) {
    const unsigned v = static_cast<unsigned char>(in[i]) << 16;
    out += {kAlphabet[(v >> 18) & 63], kAlphabet[(v >> 12) & 63], '=', '='};
  } else if (i + 2 == in.size()) {
    const unsigned v = (static_cast<unsigned char>(in[i]) << 16) | (static_cast<unsigned char>(in[i + 1]) << 8);
    out += {kAlphabet[(v >> 18) & 63], kAlphabet[(v >> 12) & 63], kAlphabet[(v >> 6) & 63], '='};
  }
  return out;
}

struct Job {
  std::string body;
  std::size_t samples = 0;
};

void bump(std::atomic<std::uint64_t>* cell, std::uint64_t n = 1) noexcept {
  if (cell) cell->fetch_add(n, std::memory_order_relaxed);
}

double realtime_seconds() noexcept {
  timespec ts{};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

// Why a request was not acknowledged: the `reason` label of remote_write_failed_requests_total.
enum FailureClass : std::size_t { k5xx, k429, kNetwork, k4xx, kFailureClasses };
constexpr std::string_view kFailureClassNames[kFailureClasses] = {"5xx", "429", "network", "4xx"};

}  // namespace

struct RemoteWriteExporter::Impl {
  struct Worker {
    std::mutex mu;
    std::condition_variable cv;
    std::deque<Job> jobs;
    bool exit = false;
    std::unique_ptr<HttpClient> client;
    std::minstd_rand rng;
    std::thread thread;
  };

  RemoteWriteOptions options;
  HttpUrl url;
  HttpHeaders headers;
  std::unique_ptr<ring::Ring> ring;
  std::optional<ring::Reader> reader;
  std::vector<std::unique_ptr<Worker>> workers;
  std::vector<RequestBuilder> builders;
  std::thread reader_thread;
  bool started = false;

  std::mutex done_mu;
  std::condition_variable done_cv;
  std::size_t outstanding = 0;  // jobs handed to workers and not finished

  std::mutex stop_mu;
  std::condition_variable stop_cv;
  std::atomic<bool> stopping{false};
  std::atomic<std::int64_t> give_up_at_ns{INT64_MAX};

  std::atomic<std::uint64_t> records{0}, samples_sent{0}, requests{0}, bytes_sent{0}, retries{0}, dropped_requests{0},
      dropped_samples{0}, abandoned_samples{0}, decode_errors{0}, lost_records{0}, relabel_dropped{0};
  EntryRelabeler relabel;  // the reader thread's (handle())
  std::atomic<int> last_status{0};
  // Set by a worker that gave a request of the current record up at stop:
  // the record is then left unread, for the next start to send again.
  std::atomic<bool> record_abandoned{false};

  // The stats segment (remote_write_* metrics); every cell null without one.
  std::unique_ptr<stats::StatsSegment> segment;
  struct Cells {
    std::atomic<std::uint64_t>* requests = nullptr;
    std::atomic<std::uint64_t>* succeeded = nullptr;
    std::atomic<std::uint64_t>* failed[kFailureClasses] = {};
    std::atomic<std::uint64_t>* samples_sent = nullptr;
    std::atomic<std::uint64_t>* samples_dropped = nullptr;
    std::atomic<std::uint64_t>* samples_abandoned = nullptr;
    std::atomic<std::uint64_t>* retries = nullptr;
    std::atomic<std::uint64_t>* bytes_sent = nullptr;
    std::atomic<std::uint64_t>* records = nullptr;
    std::atomic<std::uint64_t>* decode_errors = nullptr;
    std::atomic<std::uint64_t>* relabel_dropped = nullptr;
    std::atomic<std::uint64_t>* lost_records = nullptr;
    std::atomic<std::uint64_t>* last_success = nullptr;  // double, CLOCK_REALTIME seconds
    std::atomic<std::uint64_t>* in_flight = nullptr;
  } cells;
  std::mutex dropped_mu;  // registers remote_write_dropped_requests_total{status} on first use
  std::map<int, std::atomic<std::uint64_t>*> dropped_cells;

  Status open_segment() {
    if (options.stats_path.empty()) return {};
    auto seg = stats::StatsSegment::create(options.stats_path, options.component, "exporter");
    if (!seg) return tl::unexpected(seg.error());
    seg->reset_gauges();
    segment = std::make_unique<stats::StatsSegment>(std::move(*seg));
    Status failed;
    auto reg = [&](bool counter, std::string_view name, std::string_view help, const stats::StatsLabels& labels = {},
                   stats::StatsEncoding enc = stats::StatsEncoding::kUnsigned) -> std::atomic<std::uint64_t>* {
      if (!failed) return nullptr;
      auto cell = counter ? segment->register_counter(name, help, labels, enc)
                          : segment->register_gauge(name, help, labels, enc);
      if (!cell) {
        failed = tl::unexpected(cell.error());
        return nullptr;
      }
      return *cell;
    };
    cells.requests = reg(true, "remote_write_requests_total", "Requests sent (every attempt, retries included).");
    cells.succeeded = reg(true, "remote_write_requests_succeeded_total", "Requests answered 2xx.");
    for (std::size_t c = 0; c < kFailureClasses; ++c) {
      cells.failed[c] = reg(true, "remote_write_failed_requests_total",
                            "Attempts not acknowledged: 5xx, 429, network (no answer, or 408) are retried; 4xx "
                            "is dropped.",
                            {{"reason", std::string(kFailureClassNames[c])}});
    }
    cells.samples_sent = reg(true, "remote_write_samples_sent_total", "Samples acknowledged with 2xx.");
    cells.samples_dropped = reg(true, "remote_write_samples_dropped_total",
                                "Samples of requests refused with a 4xx other than 429 (never retried).");
    cells.samples_abandoned = reg(true, "remote_write_samples_abandoned_total",
                                  "Samples unacknowledged when a stop gave up; left in the ring and sent again.");
    cells.retries =
        reg(true, "remote_write_retries_total", "Requests sent again (5xx, 429, timeouts, connection errors).");
    cells.bytes_sent = reg(true, "remote_write_sent_bytes_total", "Compressed bytes of acknowledged requests.");
    cells.records = reg(true, "remote_write_records_total", "Metric-batch records fully handled.");
    cells.decode_errors = reg(true, "remote_write_decode_errors_total", "Malformed records or requests skipped.");
    cells.relabel_dropped =
        reg(true, "remote_write_relabel_dropped_series_total",
            "Series updates write_relabel_configs kept from being sent (a keep/drop rule, or no valid name left).");
    cells.lost_records = reg(true, "remote_write_lost_records_total",
                             "Metric records overwritten in the ring before they were sent (the reader was lapped).");
    cells.last_success =
        reg(false, "remote_write_last_success_timestamp_seconds",
            "When the endpoint last answered 2xx (Unix time; 0: not since start).", {}, stats::StatsEncoding::kDouble);
    cells.in_flight = reg(false, "remote_write_in_flight_requests", "Requests sent and not answered yet.");
    if (!failed) return tl::unexpected(failed.error());
    segment->heartbeat();
    return {};
  }

  // remote_write_dropped_requests_total{status}: the code for 4xx, "other" for
  // unexpected ones; "other" too once the segment is full.
  std::atomic<std::uint64_t>* dropped_cell(int status) {
    if (!segment) return nullptr;
    const int key = status >= 400 && status <= 499 ? status : 0;
    std::lock_guard lock(dropped_mu);
    auto it = dropped_cells.find(key);
    if (it != dropped_cells.end()) return it->second;
    const std::string help = "Requests dropped unsent for good (a 4xx other than 429), by status.";
    auto cell = segment->register_counter("remote_write_dropped_requests_total", help,
                                          {{"status", key ? std::to_string(key) : std::string("other")}});
    if (!cell && key != 0) return dropped_cells[key] = dropped_cell_other(help);
    return dropped_cells[key] = cell ? *cell : nullptr;
  }
  std::atomic<std::uint64_t>* dropped_cell_other(const std::string& help) {
    auto it = dropped_cells.find(0);
    if (it != dropped_cells.end()) return it->second;
    auto cell = segment->register_counter("remote_write_dropped_requests_total", help, {{"status", "other"}});
    return dropped_cells[0] = cell ? *cell : nullptr;
  }
  RateLimiter drop_log{std::chrono::seconds(10)};
  RateLimiter retry_log{std::chrono::seconds(10)};

  void enqueue(std::size_t shard) {
    if (builders[shard].empty()) return;
    const std::size_t n = builders[shard].samples();
    auto body = builders[shard].take_compressed();
    if (!body) {
      decode_errors.fetch_add(1, std::memory_order_relaxed);
      bump(cells.decode_errors);
      return;
    }
    {
      std::lock_guard lock(done_mu);
      ++outstanding;
    }
    Worker& w = *workers[shard];
    {
      std::lock_guard lock(w.mu);
      w.jobs.push_back(Job{std::move(*body), n});
    }
    w.cv.notify_one();
  }

  // The reader's callback: returns only when every request built from this
  // record is answered, so the cursor never passes unacknowledged samples.
  // Returns false (the record stays unread) when a stop gave one of them up.
  bool handle(const ring::RecordView& v) {
    if (v.type != metric::kMetricBatchRecord) return true;
    metric::MetricBatchReader r(v.payload);
    if (r.error() != metric::MetricDecodeError::kNone) {
      decode_errors.fetch_add(1, std::memory_order_relaxed);
      bump(cells.decode_errors);
      return true;
    }
    record_abandoned.store(false, std::memory_order_relaxed);
    const std::int64_t ts = r.header().flush_ns / 1'000'000;
    while (auto e = r.next()) {
      if (e->kind != metric::EntryKind::kSeries) continue;
      if (!relabel.empty() && !relabel.apply(*e)) {
        relabel_dropped.fetch_add(1, std::memory_order_relaxed);
        bump(cells.relabel_dropped);
        continue;
      }
      const std::size_t shard = e->key % builders.size();
      builders[shard].add(*e, ts);
      if (builders[shard].samples() >= options.batch_size) enqueue(shard);
    }
    if (r.error() != metric::MetricDecodeError::kNone) {
      decode_errors.fetch_add(1, std::memory_order_relaxed);
      bump(cells.decode_errors);
    }
    for (std::size_t s = 0; s < builders.size(); ++s) enqueue(s);
    std::unique_lock lock(done_mu);
    done_cv.wait(lock, [&] { return outstanding == 0; });
    // Written by the workers before their outstanding decrement under done_mu.
    if (record_abandoned.load(std::memory_order_relaxed)) return false;
    records.fetch_add(1, std::memory_order_relaxed);
    bump(cells.records);
    return true;
  }

  // The reader's lapped_records when last looked at (it lives in the ring
  // file, so it continues across restarts as the segment's counters do), and
  // the records lost since the current loss episode began (0: none).
  std::uint64_t lapped_seen = 0;
  std::uint64_t episode_lost = 0;

  // Counts what the ring says this reader lost since the last look: a warning
  // when a loss episode begins, one line with its total once the reader has
  // caught up with the ring.
  void account_losses(bool caught_up) {
    const std::uint64_t lapped = reader->stats().lapped_records;
    if (lapped > lapped_seen) {
      const std::uint64_t n = lapped - lapped_seen;
      lost_records.fetch_add(n, std::memory_order_relaxed);
      bump(cells.lost_records, n);
      if (episode_lost == 0) {
        spdlog::warn(
            "remote_write exporter: lapped on ring {}: {} records were overwritten before they were sent "
            "to {}; going on from the oldest record still there",
            options.input, n, options.url);
      }
      episode_lost += n;
    } else if (caught_up && episode_lost != 0) {
      spdlog::info("remote_write exporter: caught up with ring {}; {} records lost since it fell behind", options.input,
                   episode_lost);
      episode_lost = 0;
    }
    lapped_seen = lapped;
  }

  void read_loop() {
    while (!stopping.load(std::memory_order_acquire)) {
      const std::size_t n = reader->poll_while([this](const ring::RecordView& v) { return handle(v); }, 1);
      account_losses(n == 0);
      if (n == 0) (void)reader->wait(100ms);
    }
  }

  void send(Worker& w, Job& job) {
    for (std::uint32_t attempt = 0;; ++attempt) {
      if (monotonic_ns() >= give_up_at_ns.load(std::memory_order_acquire)) {
        abandoned_samples.fetch_add(job.samples, std::memory_order_relaxed);
        bump(cells.samples_abandoned, job.samples);
        record_abandoned.store(true, std::memory_order_relaxed);
        spdlog::warn("remote_write exporter: stopping: {} samples not acknowledged by {}; left in the ring",
                     job.samples, options.url);
        return;
      }
      bump(cells.requests);
      bump(cells.in_flight);
      auto res = w.client->request("POST", url.target, headers, job.body, options.timeout);
      bump(cells.in_flight, ~std::uint64_t{0});  // -1
      const int status = res ? res->status : 0;
      last_status.store(status, std::memory_order_relaxed);
      switch (classify_http_status(status)) {
        case SendVerdict::kDone:
          samples_sent.fetch_add(job.samples, std::memory_order_relaxed);
          requests.fetch_add(1, std::memory_order_relaxed);
          bytes_sent.fetch_add(job.body.size(), std::memory_order_relaxed);
          bump(cells.succeeded);
          bump(cells.samples_sent, job.samples);
          bump(cells.bytes_sent, job.body.size());
          if (cells.last_success) stats::stats_store_double(*cells.last_success, realtime_seconds());
          return;
        case SendVerdict::kDrop:
          dropped_requests.fetch_add(1, std::memory_order_relaxed);
          dropped_samples.fetch_add(job.samples, std::memory_order_relaxed);
          bump(cells.failed[k4xx]);
          bump(cells.samples_dropped, job.samples);
          bump(dropped_cell(status));
          if (drop_log.allow()) {
            spdlog::warn("remote_write exporter: {}: HTTP {}: dropped {} samples: {} ({} similar suppressed)",
                         options.url, status, job.samples, res->body.substr(0, 200), drop_log.take_suppressed());
          }
          return;
        case SendVerdict::kRetry:
          break;
      }
      bump(cells.failed[status == 429 ? k429 : status >= 500 ? k5xx : kNetwork]);
      retries.fetch_add(1, std::memory_order_relaxed);
      bump(cells.retries);
      if (retry_log.allow()) {
        spdlog::warn("remote_write exporter: {}: {}; retrying ({} similar suppressed)", options.url,
                     res ? "HTTP " + std::to_string(status) + ": " + res->body.substr(0, 200) : res.error().message(),
                     retry_log.take_suppressed());
      }
      auto delay = std::chrono::nanoseconds(retry_backoff(attempt, options.retry_min_backoff, options.retry_max_backoff,
                                                          std::uniform_real_distribution<double>(0.0, 1.0)(w.rng)));
      // A stop shortens the wait to its deadline but keeps the backoff until
      // then: retrying at once would hammer an endpoint that is down.
      std::unique_lock lock(stop_mu);
      stop_cv.wait_for(lock, delay, [&] {
        const std::int64_t left = give_up_at_ns.load(std::memory_order_acquire) - monotonic_ns();
        return left <= 0;
      });
    }
  }

  void work(Worker& w) {
    for (;;) {
      Job job;
      {
        std::unique_lock lock(w.mu);
        w.cv.wait(lock, [&] { return !w.jobs.empty() || w.exit; });
        if (w.jobs.empty()) return;
        job = std::move(w.jobs.front());
        w.jobs.pop_front();
      }
      send(w, job);
      {
        std::lock_guard lock(done_mu);
        --outstanding;
      }
      done_cv.notify_all();
    }
  }
};

Result<std::unique_ptr<RemoteWriteExporter>> RemoteWriteExporter::create(RemoteWriteOptions options) {
  const std::string what = "remote_write exporter: ";
  auto url = parse_http_url(options.url);
  if (!url) return tl::unexpected(Error{url.error().code, what + url.error().context});
  std::shared_ptr<TlsClientContext> tls;
  if (url->https) {
    const RemoteWriteTls t = options.tls.value_or(RemoteWriteTls{});
    auto ctx = make_tls_client_context({t.ca_file, t.cert_file, t.key_file, t.insecure_skip_verify});
    if (!ctx) return tl::unexpected(Error{ctx.error().code, what + ctx.error().context});
    tls = std::move(*ctx);
  } else if (options.tls) {
    return invalid(what + "tls is set but url " + options.url + " is not https://");
  }
  if (options.basic_auth && !options.bearer_token.empty()) {
    return invalid(what + "basic_auth and bearer_token are exclusive");
  }
  if (options.batch_size == 0) return invalid(what + "batch_size must be > 0");
  options.max_in_flight = std::clamp<std::size_t>(options.max_in_flight, 1, 64);
  auto impl = std::make_unique<Impl>();
  impl->relabel = EntryRelabeler(options.relabel);
  auto ring = ring::Ring::open(options.input);
  if (!ring) return tl::unexpected(Error{ring.error().code, what + ring.error().message()});
  impl->ring = std::make_unique<ring::Ring>(std::move(*ring));
  ring::ReaderOptions ro;
  ro.gating = options.gating;
  auto reader = ring::Reader::attach(*impl->ring, options.reader_name, ro);
  if (!reader) return tl::unexpected(Error{reader.error().code, what + reader.error().message()});
  impl->reader.emplace(std::move(*reader));
  impl->lapped_seen = impl->reader->stats().lapped_records;
  impl->url = *url;
  impl->headers = {{"Content-Encoding", "snappy"},
                   {"Content-Type", "application/x-protobuf"},
                   {"X-Prometheus-Remote-Write-Version", "0.1.0"},
                   {"User-Agent", options.user_agent}};
  if (options.basic_auth) {
    impl->headers.emplace_back("Authorization",
                               "Basic " + base64(options.basic_auth->username + ":" + options.basic_auth->password));
  } else if (!options.bearer_token.empty()) {
    impl->headers.emplace_back("Authorization", "Bearer " + options.bearer_token);
  }
  for (const auto& h : options.headers) impl->headers.push_back(h);
  std::random_device rd;
  for (std::size_t i = 0; i < options.max_in_flight; ++i) {
    auto w = std::make_unique<Impl::Worker>();
    w->client = std::make_unique<HttpClient>(*url, tls);
    w->rng.seed(rd());
    impl->workers.push_back(std::move(w));
    impl->builders.emplace_back(options.metadata_interval);
  }
  impl->options = std::move(options);
  if (auto st = impl->open_segment(); !st) {
    return tl::unexpected(Error{st.error().code, what + "stats segment: " + st.error().message()});
  }
  return std::unique_ptr<RemoteWriteExporter>(new RemoteWriteExporter(std::move(impl)));
}

RemoteWriteExporter::RemoteWriteExporter(std::unique_ptr<Impl> impl) noexcept : impl_(std::move(impl)) {}
RemoteWriteExporter::~RemoteWriteExporter() { stop(); }

Status RemoteWriteExporter::start() {
  if (impl_->started) return {};
  impl_->stopping.store(false);
  impl_->give_up_at_ns.store(INT64_MAX);
  try {
    for (auto& w : impl_->workers) {
      w->exit = false;
      w->thread = std::thread([impl = impl_.get(), wp = w.get()] { impl->work(*wp); });
    }
    impl_->reader_thread = std::thread([impl = impl_.get()] { impl->read_loop(); });
  } catch (const std::system_error& e) {
    impl_->started = true;
    stop();
    return tl::unexpected(Error{e.code(), "remote_write exporter: threads"});
  }
  impl_->started = true;
  spdlog::info("remote_write exporter: {} -> {} ({} connections, {} samples per request, {})", impl_->options.input,
               impl_->options.url, impl_->workers.size(), impl_->options.batch_size,
               impl_->options.gating ? "gating: producers wait for it" : "not gating: lapped and counted when behind");
  return {};
}

void RemoteWriteExporter::stop() noexcept {
  if (!impl_ || !impl_->started) return;
  impl_->give_up_at_ns.store(monotonic_ns() + std::chrono::nanoseconds(impl_->options.stop_timeout).count());
  {
    std::lock_guard lock(impl_->stop_mu);
    impl_->stopping.store(true, std::memory_order_release);
  }
  impl_->stop_cv.notify_all();
  if (impl_->reader_thread.joinable()) impl_->reader_thread.join();
  for (auto& w : impl_->workers) {
    {
      std::lock_guard lock(w->mu);
      w->exit = true;
    }
    w->cv.notify_all();
    if (w->thread.joinable()) w->thread.join();
    w->client->close();
  }
  impl_->started = false;
}

RemoteWriteStats RemoteWriteExporter::stats() const noexcept {
  const Impl& i = *impl_;
  RemoteWriteStats s;
  s.records = i.records.load(std::memory_order_relaxed);
  s.samples_sent = i.samples_sent.load(std::memory_order_relaxed);
  s.requests = i.requests.load(std::memory_order_relaxed);
  s.bytes_sent = i.bytes_sent.load(std::memory_order_relaxed);
  s.retries = i.retries.load(std::memory_order_relaxed);
  s.dropped_requests = i.dropped_requests.load(std::memory_order_relaxed);
  s.dropped_samples = i.dropped_samples.load(std::memory_order_relaxed);
  s.abandoned_samples = i.abandoned_samples.load(std::memory_order_relaxed);
  s.decode_errors = i.decode_errors.load(std::memory_order_relaxed);
  s.relabel_dropped = i.relabel_dropped.load(std::memory_order_relaxed);
  s.lost_records = i.lost_records.load(std::memory_order_relaxed);
  s.last_status = i.last_status.load(std::memory_order_relaxed);
  return s;
}

}  // namespace ringpipe::exporters
