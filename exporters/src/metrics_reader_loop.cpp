#include "metrics_reader_loop.hpp"

#include <fcntl.h>

#include <algorithm>

#include <filesystem>
#include <string>
#include <system_error>

#include "ringpipe/common/log.hpp"
#include "ringpipe/common/run_dir.hpp"
#include "ringpipe/metric/metric_record.hpp"

namespace ringpipe::exporters {

using namespace std::chrono_literals;

namespace {
constexpr std::size_t kRecordsPerPoll = 8;  // of up to 64 KiB each
}  // namespace

MetricsReaderLoop::MetricsReaderLoop(const PrometheusExporterOptions& options, SeriesState& state) noexcept
    : options_(options), state_(state) {}

Result<std::unique_ptr<MetricsReaderLoop>> MetricsReaderLoop::attach(const PrometheusExporterOptions& options,
                                                                     SeriesState& state) {
  const std::string what = "prometheus exporter: ";
  auto loop = std::unique_ptr<MetricsReaderLoop>(new MetricsReaderLoop(options, state));
  auto ring = ring::Ring::open(options.input);
  if (!ring) return tl::unexpected(Error{ring.error().code, what + ring.error().message()});
  loop->ring_ = std::make_unique<ring::Ring>(std::move(*ring));
  ring::ReaderOptions ro;
  ro.gating = options.gating;
  auto reader = ring::Reader::attach(*loop->ring_, options.reader_name, ro);
  if (!reader) return tl::unexpected(Error{reader.error().code, what + reader.error().message()});
  loop->reader_.emplace(std::move(*reader));
  // Metric records come in bursts, one per shard and flush: take a burst
  // with naps of at most a millisecond, then sleep on the futex without
  // spinning or yielding first (a yield on a busy host is a context switch).
  loop->reader_->set_wait_budget(std::chrono::milliseconds(1), std::chrono::milliseconds(20));
  auto journal = CrashJournal::open(CrashJournal::path_for(options.input, options.reader_name),
                                    loop->ring_->creation_id(), options.quarantine_after_crashes);
  if (!journal) {
    spdlog::warn("{}{} (a record that kills the exporter is not quarantined)", what, journal.error().message());
  } else {
    loop->journal_.emplace(std::move(*journal));
    if (const auto& r = loop->journal_->died_on()) {
      spdlog::warn("{}the previous run died applying record lane {} seq {} position {} ({} death(s) in a row on it{})",
                   what, r->lane, r->seq, r->position, loop->journal_->strikes(),
                   loop->journal_->quarantined() == r ? ": quarantined" : "");
    }
  }
  return loop;
}

MetricsReaderLoop::~MetricsReaderLoop() { stop(); }

Status MetricsReaderLoop::request_resync() const {
  // Created in the ring's own (checked) directory, never through a symlink.
  const std::filesystem::path ring(options_.input);
  const std::string what = "prometheus exporter: request resync: ";
  auto dir = RunDir::open(ring.has_parent_path() ? ring.parent_path().string() : ".");
  if (!dir) return tl::unexpected(Error{dir.error().code, what + dir.error().context});
  auto fd = dir->create_file(ring.filename().string() + std::string(metric::kResyncSuffix), O_WRONLY);
  if (!fd) return tl::unexpected(Error{fd.error().code, what + fd.error().context});
  return {};
}

Status MetricsReaderLoop::start() {
  stopping_.store(false);
  try {
    thread_ = std::thread([this] { run(); });
  } catch (const std::system_error& e) {
    return tl::unexpected(Error{e.code(), "prometheus exporter: reader thread"});
  }
  return {};
}

void MetricsReaderLoop::stop() noexcept {
  if (!thread_.joinable()) return;
  stopping_.store(true);
  thread_.join();
}

void MetricsReaderLoop::close_journal() noexcept {
  if (journal_) journal_->close();
}

void MetricsReaderLoop::run() noexcept {
  const std::int64_t start_ns = monotonic_ns();
  const std::int64_t ready_after = start_ns + std::chrono::nanoseconds(options_.ready_timeout).count();
  const std::int64_t relay_sweep_ns =
      std::max<std::int64_t>(std::chrono::nanoseconds(options_.relay_ttl).count() / 10, 1'000'000);
  std::int64_t next_relay_sweep = start_ns;
  while (!stopping_.load(std::memory_order_relaxed)) {
    // A few records a poll: the cursor moves (and frees their room) after
    // each poll, so a processor's burst larger than the ring (a flush of a
    // million series) refills the ring while we apply, instead of waiting
    // until we have applied all of it.
    const std::size_t n = reader_->poll(
        [this](const ring::RecordView& v) {
          if (journal_) {
            if (journal_->is_quarantined(v.lane, v.seq, v.position)) {
              if (journal_->first_skip()) {
                counters_.quarantined.fetch_add(1, std::memory_order_relaxed);
                spdlog::error(
                    "exporter {}: quarantined record of ring {} lane {} seq {} position {} ({} bytes, type {}): "
                    "the exporter died applying it {} times in a row; skipped "
                    "(exporter_quarantined_records_total)",
                    options_.component, options_.input, v.lane, v.seq, v.position, v.payload.size(), v.type,
                    journal_->strikes_to_quarantine());
              }
              return;
            }
            journal_->begin(v.lane, v.seq, v.position);
          }
          if (v.type == metric::kMetricBatchRecord) {
            state_.apply(v.payload, options_.relay_ttl.count() > 0 ? monotonic_ns() : 0);
          } else {
            counters_.other_records.fetch_add(1, std::memory_order_relaxed);
          }
          if (journal_) journal_->end();
        },
        kRecordsPerPoll);
    if (!ready_.load(std::memory_order_relaxed) && (state_.complete() || monotonic_ns() >= ready_after)) {
      ready_.store(true, std::memory_order_release);
    }
    if (options_.relay_ttl.count() > 0) {
      // Every tenth of the ttl (at most a second): a series leaves at most that late.
      const std::int64_t now = monotonic_ns();
      if (now >= next_relay_sweep) {
        state_.expire_relayed(now);
        next_relay_sweep = now + std::min<std::int64_t>(relay_sweep_ns, 1'000'000'000);
      }
    }
    if (n == 0) (void)reader_->wait(50ms);
  }
}

}  // namespace ringpipe::exporters
