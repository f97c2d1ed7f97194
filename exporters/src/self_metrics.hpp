#pragma once
// Self-metrics: ringpipe_* families built from ring counters read in shared
// memory (Ring::stats) and from the exporter's own counters. FamilyBuilder is
// single-thread; RingDescriber is thread-safe (one mutex around the rings it
// keeps open).

#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <prometheus/metric_family.h>

#include "ringpipe/ring/ring.hpp"
#include "ringpipe/stats/stats_segment.hpp"
#include "self_metric_table.hpp"

namespace ringpipe::exporters {

// Collects samples into families by name, so each name appears once.
class FamilyBuilder {
 public:
  using Labels = std::vector<prometheus::ClientMetric::Label>;
  void counter(std::string_view name, std::string_view help, const Labels& labels, double v);
  void gauge(std::string_view name, std::string_view help, const Labels& labels, double v);
  // Cumulative buckets (upper bound, count); +Inf is implied by count.
  void histogram(std::string_view name, std::string_view help, const Labels& labels,
                 const std::vector<std::pair<double, std::uint64_t>>& buckets, std::uint64_t count, double sum);
  // One sample of a counter or gauge of kSelfMetrics: name, type and help from the table.
  void sample(const SelfMetric& m, const Labels& labels, double v);
  void take(std::vector<prometheus::MetricFamily>& out);
  // Whether a family of this name exists with another type.
  [[nodiscard]] bool clashes(std::string_view name, prometheus::MetricType type) const;
  // The names of the families so far.
  [[nodiscard]] std::vector<std::string_view> names() const;

 private:
  prometheus::ClientMetric& add(std::string_view name, std::string_view help, prometheus::MetricType type,
                                const Labels& labels);
  std::vector<prometheus::MetricFamily> families_;
};

// Durations in seconds as a Prometheus histogram (ringpipe_exporter_scrape_duration_seconds,
// ringpipe_exporter_http_render_seconds). Thread-safe.
class DurationHistogram {
 public:
  static constexpr double kBounds[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
  void observe(double s) {
    std::lock_guard lock(mu_);
    for (std::size_t i = 0; i < std::size(kBounds); ++i) {
      if (s <= kBounds[i]) ++counts_[i];
    }
    ++count_;
    sum_ += s;
  }
  // As the histogram `m` of kSelfMetrics.
  void describe(FamilyBuilder& out, const SelfMetric& m, const FamilyBuilder::Labels& labels = {}) const {
    std::vector<std::pair<double, std::uint64_t>> b;
    std::lock_guard lock(mu_);
    for (std::size_t i = 0; i < std::size(kBounds); ++i) b.emplace_back(kBounds[i], counts_[i]);
    out.histogram(m.name, m.help, labels, b, count_, sum_);
  }
  [[nodiscard]] std::uint64_t count() const {
    std::lock_guard lock(mu_);
    return count_;
  }

 private:
  mutable std::mutex mu_;
  std::uint64_t counts_[std::size(kBounds)] = {};
  std::uint64_t count_ = 0;
  double sum_ = 0;
};

// Appends ringpipe_ring_* samples for one ring's stats.
void describe_ring(const ring::RingStats& stats, std::string_view ring_label, FamilyBuilder& out);

// Keeps the rings to describe open (re-trying those that do not exist yet).
class RingDescriber {
 public:
  explicit RingDescriber(std::vector<std::string> paths);
  void describe(FamilyBuilder& out);

 private:
  std::mutex mu_;
  std::vector<std::string> paths_;
  std::vector<std::optional<ring::Ring>> rings_;
  std::uint64_t open_failures_ = 0;
};

// Serves every component's stats segment (`*.stats` directly under a
// directory) as ringpipe_<entry name>{component="<component>", <entry labels>},
// plus ringpipe_component_up{component,kind}. Files are opened afresh at each
// scrape and never trusted: entries that are malformed, carry a `component`
// label, repeat a series or clash with a family's type are skipped and counted
// (ringpipe_exporter_stats_skipped_total). Thread-safe (one mutex).
class SegmentDescriber {
 public:
  // `skip`: a segment path not to serve (the exporter's own, described in-process).
  SegmentDescriber(std::string dir, std::string skip);
  void describe(FamilyBuilder& out);

 private:
  std::mutex mu_;
  std::string dir_;
  std::string skip_;
  std::uint64_t skipped_ = 0;
  std::uint64_t open_failures_ = 0;
};

}  // namespace ringpipe::exporters
