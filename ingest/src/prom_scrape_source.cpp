#include "ringpipe/ingest/prom_scrape_source.hpp"

#include <algorithm>
#include <thread>
#include <tuple>

#include <spdlog/spdlog.h>

#include "ringpipe/common/log.hpp"
#include "ringpipe/ingest/prom_text_parser.hpp"
#include "ringpipe/net/http_client.hpp"
#include "source_stats.hpp"
#include "worker.hpp"

namespace ringpipe::ingest {

namespace {

constexpr std::chrono::milliseconds kPoll{50};  // how often an idle target thread looks at the stop flag
// What Prometheus sends: OpenMetrics first, the text format as the fallback.
constexpr const char* kAccept = "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5";

ScrapeFailure failure_of(const std::error_code& code) noexcept {
  if (code == std::errc::timed_out) return ScrapeFailure::kTimeout;
  if (code == std::errc::message_size) return ScrapeFailure::kBodyTooLarge;
  if (code == std::errc::connection_refused) return ScrapeFailure::kConnect;
  return ScrapeFailure::kOther;
}

}  // namespace

std::string_view scrape_failure_name(ScrapeFailure f) noexcept {
  switch (f) {
    case ScrapeFailure::kConnect:
      return "connect";
    case ScrapeFailure::kTimeout:
      return "timeout";
    case ScrapeFailure::kHttpStatus:
      return "http_status";
    case ScrapeFailure::kBodyTooLarge:
      return "body_too_large";
    case ScrapeFailure::kOther:
      return "other";
    case ScrapeFailure::kCount:
      break;
  }
  return "unknown";
}

// One target: its URL, client, parser and ring lane; used by its own thread only.
struct ScrapeTarget {
  std::string url;
  std::string instance;  // host:port
  std::string path;      // the request target: path and query
  std::unique_ptr<net::HttpClient> client;
  std::unique_ptr<PromTextParser> parser;
  std::unique_ptr<Worker> worker;
  std::array<sample::Tag, 2> labels;  // instance, job
  bool up = false;
  std::thread thread;
};

struct PromScrapeSource::Impl {
  PromScrapeConfig config;
  std::string job;
  net::HttpHeaders headers{{"Accept", kAccept}};  // no Accept-Encoding: bodies come uncompressed
  IngestStats stats;
  ScrapeStats scrape;
  RateLimiter error_log;   // malformed input (the Workers')
  RateLimiter scrape_log;  // failed scrapes
  std::vector<std::unique_ptr<ScrapeTarget>> targets;
  std::unique_ptr<stats::Publisher> publisher;
  std::atomic<bool> stopping{false};
  bool started = false;
  std::string what;

  explicit Impl(const PromScrapeConfig& c)
      : config(c),
        job(c.job.empty() ? c.name : c.job),
        error_log(c.error_log_interval),
        scrape_log(c.error_log_interval),
        what("prometheus_scrape " + c.name) {}

  void scrape_once(ScrapeTarget& t) noexcept;
  void run(ScrapeTarget& t) noexcept;
};

void PromScrapeSource::Impl::scrape_once(ScrapeTarget& t) noexcept {
  constexpr auto kRelaxed = std::memory_order_relaxed;
  const std::int64_t started_ns = realtime_ns();
  const auto start = std::chrono::steady_clock::now();
  scrape.scrapes.fetch_add(1, kRelaxed);
  auto res = t.client->request("GET", t.path, headers, "", config.timeout, config.max_body_bytes);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  Worker& w = *t.worker;
  w.begin(started_ns);
  const std::uint64_t before = w.counters().samples;
  bool up = false;
  if (!res) {
    const ScrapeFailure f = failure_of(res.error().code);
    scrape.failures[static_cast<std::size_t>(f)].fetch_add(1, kRelaxed);
    if (scrape_log.allow()) {
      spdlog::warn("{}: scrape {} failed ({}): {} ({} similar warnings suppressed)", what, t.url,
                   scrape_failure_name(f), res.error().context, scrape_log.take_suppressed());
    }
  } else if (res->status < 200 || res->status > 299) {
    scrape.failures[static_cast<std::size_t>(ScrapeFailure::kHttpStatus)].fetch_add(1, kRelaxed);
    scrape.bytes.fetch_add(res->body.size(), kRelaxed);
    if (scrape_log.allow()) {
      spdlog::warn("{}: scrape {} failed: HTTP {} ({} similar warnings suppressed)", what, t.url, res->status,
                   scrape_log.take_suppressed());
    }
  } else {
    up = true;
    scrape.bytes.fetch_add(res->body.size(), kRelaxed);
    t.parser->parse(res->body, prom_format_of(res->content_type), w.out(), w.counters());
  }
  const std::uint64_t scraped = w.counters().samples - before;
  // Prometheus' synthetic series, on the target's labels, at the scrape's start.
  const std::span<const sample::Tag> labels(t.labels);
  w.out().emit(sample::Kind::kGauge, "up", up ? 1.0 : 0.0, 1.0, labels);
  w.out().emit(sample::Kind::kGauge, "scrape_duration_seconds", seconds, 1.0, labels);
  w.out().emit(sample::Kind::kGauge, "scrape_samples_scraped", static_cast<double>(scraped), 1.0, labels);
  w.end();
  if (up != t.up) {
    if (up) {
      scrape.targets_up.fetch_add(1, kRelaxed);
    } else {
      scrape.targets_up.fetch_sub(1, kRelaxed);
    }
    t.up = up;
  }
}

void PromScrapeSource::Impl::run(ScrapeTarget& t) noexcept {
  auto next = std::chrono::steady_clock::now();
  while (!stopping.load(std::memory_order_acquire)) {
    const auto now = std::chrono::steady_clock::now();
    if (now < next) {
      std::this_thread::sleep_for(std::min<std::chrono::steady_clock::duration>(kPoll, next - now));
      continue;
    }
    scrape_once(t);
    next += config.interval;
    // A scrape that overran its slot skips the missed ones rather than bursting.
    if (next <= std::chrono::steady_clock::now()) next = std::chrono::steady_clock::now() + config.interval;
  }
  t.client->close();
}

Result<std::unique_ptr<PromScrapeSource>> PromScrapeSource::create(const PromScrapeConfig& config,
                                                                   const TargetFactory& targets) {
  auto impl = std::make_unique<Impl>(config);
  const std::string& what = impl->what;
  if (config.targets.empty()) return invalid(what + ": no targets to scrape");
  if (config.interval.count() <= 0) return invalid(what + ": interval must be positive");
  if (config.timeout.count() <= 0 || config.timeout > config.interval)
    return invalid(what + ": timeout must be positive and at most the interval");
  if (config.max_labels > kMaxTags) return invalid(what + ": max_labels over " + std::to_string(kMaxTags));

  IngestConfig ic;
  ic.name = config.name;
  ic.source_id = config.source_id;
  ic.relabel = config.relabel;
  ic.error_log_interval = config.error_log_interval;
  for (const std::string& url : config.targets) {
    auto u = net::parse_http_url(url);
    if (!u) return tl::unexpected(Error{u.error().code, what + ": " + u.error().context});
    if (u->https) return invalid(what + ": " + url + ": https targets are not supported, expected http://");
    auto t = std::make_unique<ScrapeTarget>();
    t->url = url;
    t->instance = u->host.find(':') != std::string::npos ? "[" + u->host + "]:" + u->port : u->host + ":" + u->port;
    t->path = u->target;
    t->client = std::make_unique<net::HttpClient>(*u);
    impl->targets.push_back(std::move(t));
  }
  // Label views point into the targets and impl, which never move from here on.
  for (auto& t : impl->targets) {
    t->labels = {sample::Tag{"instance", t->instance}, sample::Tag{"job", impl->job}};
    PromTextOptions po;
    po.max_labels = config.max_labels;
    po.max_line_bytes = config.max_line_bytes;
    po.target_labels.assign(t->labels.begin(), t->labels.end());
    po.honor_labels = config.honor_labels;
    t->parser = std::make_unique<PromTextParser>(std::move(po));
    auto lane = targets();
    if (!lane) return tl::unexpected(Error{lane.error().code, what + ": " + lane.error().context});
    t->worker = std::make_unique<Worker>(ic, std::move(*lane), impl->stats, impl->error_log);
  }

  auto p = open_source_publisher(config.stats_segment, config.stats_path, ic, impl->stats, what);
  if (!p) return tl::unexpected(p.error());
  if (*p) {
    const ScrapeStats& s = impl->scrape;
    for (auto [from, name, help, gauge] :
         {std::tuple{&s.scrapes, "source_scrapes_total", "Scrapes attempted (failed ones included).", false},
          std::tuple{&s.bytes, "source_scrape_bytes_total", "Response body bytes received.", false},
          std::tuple{&s.targets_up, "source_scrape_targets_up", "Targets whose last scrape succeeded.", true}}) {
      if (auto st = gauge ? (*p)->add_gauge(*from, name, help) : (*p)->add_counter(*from, name, help); !st)
        return tl::unexpected(Error{st.error().code, what + ": stats: " + st.error().context});
    }
    for (std::size_t i = 0; i < kScrapeFailureCount; ++i) {
      const stats::StatsLabels reason{{"reason", std::string(scrape_failure_name(static_cast<ScrapeFailure>(i)))}};
      if (auto st = (*p)->add_counter(s.failures[i], "source_scrape_failures_total", "Scrapes that failed, by reason.",
                                      reason);
          !st)
        return tl::unexpected(Error{st.error().code, what + ": stats: " + st.error().context});
    }
    impl->publisher = std::move(*p);
  }
  return std::unique_ptr<PromScrapeSource>(new PromScrapeSource(std::move(impl)));
}

PromScrapeSource::PromScrapeSource(std::unique_ptr<Impl> impl) noexcept : impl_(std::move(impl)) {}

PromScrapeSource::~PromScrapeSource() { stop(); }

Status PromScrapeSource::start() {
  if (impl_->started) return invalid(impl_->what + ": already started");
  impl_->started = true;
  if (impl_->publisher) {
    if (Status publishing = impl_->publisher->start(impl_->config.stats_interval); !publishing) {
      stop();
      return tl::unexpected(Error{publishing.error().code, impl_->what + ": start: " + publishing.error().context});
    }
  }
  try {
    for (auto& t : impl_->targets) {
      ScrapeTarget* target = t.get();
      t->thread = std::thread([this, target] { impl_->run(*target); });
    }
  } catch (const std::exception& e) {
    stop();
    return invalid(impl_->what + ": start: " + e.what());
  }
  return {};
}

void PromScrapeSource::stop() noexcept {
  impl_->stopping.store(true, std::memory_order_release);
  for (auto& t : impl_->targets) {
    if (t->thread.joinable()) t->thread.join();
  }
  if (impl_->publisher && impl_->started) impl_->publisher->stop();  // exact totals at stop
}

const IngestStats& PromScrapeSource::stats() const noexcept { return impl_->stats; }
const ScrapeStats& PromScrapeSource::scrape_stats() const noexcept { return impl_->scrape; }

}  // namespace ringpipe::ingest
