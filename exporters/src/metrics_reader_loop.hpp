#pragma once
// MetricsReaderLoop: the Prometheus exporter's side of the metric ring. It
// attaches the exporter's durable reader, asks the processor for snapshots
// (`<ring>.resync`) and, on a thread of its own, applies every metric-batch
// record to the SeriesState in ring order. The record being applied is
// journaled (CrashJournal), so one that kills the exporter again and again is
// skipped. attach(), request_resync(), start(), stop() and close_journal()
// from one controlling thread; ready() and counters() from any thread.
// Failures come back as Status/Result, never thrown.

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <thread>

#include "ringpipe/common/crash_journal.hpp"
#include "ringpipe/common/result.hpp"
#include "ringpipe/exporters/prometheus_exporter.hpp"
#include "ringpipe/ring/ring.hpp"
#include "series_state.hpp"

namespace ringpipe::exporters {

class MetricsReaderLoop {
 public:
  struct Counters {
    std::atomic<std::uint64_t> other_records{0};  // records of another type in the ring, ignored
    std::atomic<std::uint64_t> quarantined{0};    // records skipped by the crash journal
  };

  // Opens `options.input`, attaches `options.reader_name` and opens the crash
  // journal (without one a poison record is not quarantined: logged, not
  // fatal). `state` must outlive the loop. Errors read "prometheus exporter: ...".
  [[nodiscard]] static Result<std::unique_ptr<MetricsReaderLoop>> attach(const PrometheusExporterOptions& options,
                                                                         SeriesState& state);
  ~MetricsReaderLoop();  // stop()
  MetricsReaderLoop(const MetricsReaderLoop&) = delete;
  MetricsReaderLoop& operator=(const MetricsReaderLoop&) = delete;

  // Creates `<input>.resync`, so the processor sends snapshots at its next
  // flush: a restarted exporter is complete again within one flush interval.
  [[nodiscard]] Status request_resync() const;
  // Starts the reader thread.
  [[nodiscard]] Status start();
  // Joins the reader thread, if one runs.
  void stop() noexcept;
  // Marks a clean exit in the crash journal (also when never started).
  void close_journal() noexcept;

  // True once every processor shard sent a complete snapshot since start, or
  // after `ready_timeout` with none (what /-/ready answers).
  [[nodiscard]] bool ready() const noexcept { return ready_.load(std::memory_order_acquire); }
  [[nodiscard]] const Counters& counters() const noexcept { return counters_; }

 private:
  MetricsReaderLoop(const PrometheusExporterOptions& options, SeriesState& state) noexcept;
  void run() noexcept;

  PrometheusExporterOptions options_;
  SeriesState& state_;
  std::unique_ptr<ring::Ring> ring_;
  std::optional<ring::Reader> reader_;
  // The record being applied, journaled: one that kills the exporter again and again is skipped.
  std::optional<CrashJournal> journal_;
  Counters counters_;
  std::atomic<bool> ready_{false};
  std::thread thread_;
  std::atomic<bool> stopping_{false};
};

}  // namespace ringpipe::exporters
