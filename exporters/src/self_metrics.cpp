#include "self_metrics.hpp"

#include <filesystem>
#include <set>

namespace ringpipe::exporters {

prometheus::ClientMetric& FamilyBuilder::add(std::string_view name, std::string_view help, prometheus::MetricType type,
                                             const Labels& labels) {
  for (auto& f : families_) {
    if (f.name == name) {
      auto& m = f.metric.emplace_back();
      m.label = labels;
      return m;
    }
  }
  auto& f = families_.emplace_back();
  f.name = std::string(name);
  f.help = std::string(help);
  f.type = type;
  auto& m = f.metric.emplace_back();
  m.label = labels;
  return m;
}

void FamilyBuilder::counter(std::string_view name, std::string_view help, const Labels& labels, double v) {
  add(name, help, prometheus::MetricType::Counter, labels).counter.value = v;
}

void FamilyBuilder::gauge(std::string_view name, std::string_view help, const Labels& labels, double v) {
  add(name, help, prometheus::MetricType::Gauge, labels).gauge.value = v;
}

void FamilyBuilder::histogram(std::string_view name, std::string_view help, const Labels& labels,
                              const std::vector<std::pair<double, std::uint64_t>>& buckets, std::uint64_t count,
                              double sum) {
  auto& m = add(name, help, prometheus::MetricType::Histogram, labels);
  m.histogram.sample_count = count;
  m.histogram.sample_sum = sum;
  for (const auto& [le, c] : buckets) m.histogram.bucket.push_back({c, le});
}

void FamilyBuilder::sample(const SelfMetric& m, const Labels& labels, double v) {
  if (m.type == SelfMetricType::kCounter) {
    counter(m.name, m.help, labels, v);
  } else {
    gauge(m.name, m.help, labels, v);
  }
}

bool FamilyBuilder::clashes(std::string_view name, prometheus::MetricType type) const {
  for (const auto& f : families_) {
    if (f.name == name) return f.type != type;
  }
  return false;
}

std::vector<std::string_view> FamilyBuilder::names() const {
  std::vector<std::string_view> out;
  out.reserve(families_.size());
  for (const auto& f : families_) out.emplace_back(f.name);
  return out;
}

void FamilyBuilder::take(std::vector<prometheus::MetricFamily>& out) {
  for (auto& f : families_) out.push_back(std::move(f));
  families_.clear();
}

void describe_ring(const ring::RingStats& s, std::string_view ring_label, FamilyBuilder& out) {
  using L = FamilyBuilder::Labels;
  const std::string r(ring_label);
  const L rl{{"ring", r}};
  out.gauge("ringpipe_ring_info", "Ring geometry and policy (value 1).",
            {{"overflow", std::string(ring::overflow_name(s.overflow))}, {"ring", r}}, 1);
  out.gauge("ringpipe_ring_lane_capacity_bytes", "Data bytes of each lane.", rl,
            static_cast<double>(s.lane_capacity_bytes));
  out.gauge("ringpipe_ring_lanes", "Producer lanes of the ring.", rl, s.lanes);
  out.gauge("ringpipe_ring_max_readers", "Reader slots of the ring.", rl, s.max_readers);
  out.gauge("ringpipe_ring_max_record_bytes", "Largest record payload accepted.", rl, s.max_record_bytes);
  out.gauge("ringpipe_ring_file_bytes", "Size of the ring file.", rl, static_cast<double>(s.file_bytes));
  for (const ring::LaneStats& l : s.lane) {
    const L ll{{"lane", std::to_string(l.lane)}, {"ring", r}};
    out.gauge("ringpipe_ring_lane_owned", "1 while a live producer holds the lane.", ll, l.owned ? 1 : 0);
    out.counter("ringpipe_ring_lane_records_total", "Records committed into the lane.", ll,
                static_cast<double>(l.records));
    out.counter("ringpipe_ring_lane_bytes_total", "Payload bytes committed into the lane.", ll,
                static_cast<double>(l.bytes));
    out.counter("ringpipe_ring_lane_dropped_records_total",
                "Records refused: ring full (drop) or wait deadline passed (block).", ll,
                static_cast<double>(l.dropped_records));
    out.counter("ringpipe_ring_lane_recovered_claims_total", "Claims left open by a dead producer, recovered.", ll,
                static_cast<double>(l.recovered_claims));
    out.counter("ringpipe_ring_lane_full_waits_total", "Times a producer found no space.", ll,
                static_cast<double>(l.full_waits));
    out.counter("ringpipe_ring_lane_wakes_total", "Wake syscalls made for sleeping readers.", ll,
                static_cast<double>(l.wakes));
  }
  for (const ring::ReaderStats& rd : s.readers) {
    const L ll{{"reader", rd.name}, {"ring", r}};
    out.gauge("ringpipe_ring_reader_alive", "1 while the reader's owner process holds it.", ll, rd.alive ? 1 : 0);
    out.counter("ringpipe_ring_reader_records_total", "Records handed to the reader.", ll,
                static_cast<double>(rd.records));
    out.counter("ringpipe_ring_reader_bytes_total", "Payload bytes handed to the reader.", ll,
                static_cast<double>(rd.bytes));
    out.counter("ringpipe_ring_reader_lapped_records_total", "Records lost because producers passed the reader.", ll,
                static_cast<double>(rd.lapped_records));
    out.counter("ringpipe_ring_reader_torn_records_total", "Reads caught mid-reuse and redone.", ll,
                static_cast<double>(rd.torn_records));
    out.counter("ringpipe_ring_reader_corrupt_records_total", "Records that failed a bounds check, skipped.", ll,
                static_cast<double>(rd.corrupt_records));
    out.counter("ringpipe_ring_reader_evictions_total", "Times producers stopped waiting for the reader.", ll,
                static_cast<double>(rd.evictions));
    out.counter("ringpipe_ring_reader_sleeps_total", "Futex sleeps of the reader while waiting for data.", ll,
                static_cast<double>(rd.sleeps));
    out.gauge("ringpipe_ring_reader_state", "Slot state: 0 free, 1 init, 2 active, 3 dead.", ll,
              static_cast<double>(static_cast<int>(rd.state)));
    out.gauge("ringpipe_ring_reader_lag_bytes", "Bytes committed but not yet read, over all lanes.", ll,
              static_cast<double>(rd.lag_bytes));
    // A producer writes one lane and is held back when that lane is full, so
    // fill is per lane: ringpipe:ring_fill:ratio divides this by
    // ringpipe_ring_lane_capacity_bytes for the gating readers.
    out.gauge("ringpipe_ring_reader_max_lane_lag_bytes", "Bytes not yet read in the reader's fullest lane.", ll,
              static_cast<double>(rd.max_lane_lag_bytes));
    out.gauge("ringpipe_ring_reader_gating",
              "1 when producers wait for the reader when a lane is full (a gating reader under block or drop).", ll,
              rd.gating ? 1 : 0);
  }
}

RingDescriber::RingDescriber(std::vector<std::string> paths) : paths_(std::move(paths)), rings_(paths_.size()) {}

void RingDescriber::describe(FamilyBuilder& out) {
  std::lock_guard lock(mu_);
  for (std::size_t i = 0; i < paths_.size(); ++i) {
    if (!rings_[i]) {
      auto r = ring::Ring::open(paths_[i]);
      if (!r) {
        ++open_failures_;
        out.gauge("ringpipe_ring_up", "1 when the ring file could be opened and validated.",
                  {{"ring", std::filesystem::path(paths_[i]).filename().string()}}, 0);
        continue;
      }
      rings_[i].emplace(std::move(*r));
    }
    const std::string label = std::filesystem::path(paths_[i]).filename().string();
    out.gauge("ringpipe_ring_up", "1 when the ring file could be opened and validated.", {{"ring", label}}, 1);
    describe_ring(rings_[i]->stats(), label, out);
  }
}

SegmentDescriber::SegmentDescriber(std::string dir, std::string skip) : dir_(std::move(dir)), skip_(std::move(skip)) {}

void SegmentDescriber::describe(FamilyBuilder& out) {
  std::lock_guard lock(mu_);
  if (dir_.empty()) return;
  std::set<std::string> components;
  std::set<std::string> series;
  for (const std::string& path : stats::list_stats_segments(dir_)) {
    if (!skip_.empty() && path == skip_) continue;
    auto reader = stats::StatsReader::open(path);
    if (!reader) {
      ++open_failures_;  // corrupt, of another version, or being replaced: skipped this scrape
      continue;
    }
    const stats::StatsSegmentInfo info = reader->info();
    if (info.component.empty() || !components.insert(info.component).second) {
      ++skipped_;  // two files claiming one component would repeat its series
      continue;
    }
    out.gauge("ringpipe_component_up", "1 while the component that writes this stats segment is alive.",
              {{"component", info.component}, {"kind", info.kind}}, reader->writer_alive() ? 1 : 0);
    std::vector<stats::StatsEntry> entries = reader->snapshot();
    skipped_ += reader->malformed();
    for (const stats::StatsEntry& e : entries) {
      const std::string name = "ringpipe_" + e.name;
      const auto type =
          e.type == stats::StatsType::kCounter ? prometheus::MetricType::Counter : prometheus::MetricType::Gauge;
      FamilyBuilder::Labels labels{{"component", info.component}};
      bool ok = !out.clashes(name, type);
      for (const stats::StatsLabel& l : e.labels) {
        ok = ok && l.name != "component";
        labels.push_back({l.name, l.value});
      }
      std::string key = name;
      for (const auto& l : labels) key += '\0' + l.name + '\0' + l.value;
      if (!ok || !series.insert(std::move(key)).second) {
        ++skipped_;
        continue;
      }
      if (e.type == stats::StatsType::kCounter) {
        out.counter(name, e.help, labels, e.value());
      } else {
        out.gauge(name, e.help, labels, e.value());
      }
    }
  }
  out.sample(self_metric(SelfMetricId::kStatsSkipped), {}, static_cast<double>(skipped_));
  out.sample(self_metric(SelfMetricId::kStatsOpenFailures), {}, static_cast<double>(open_failures_));
}

}  // namespace ringpipe::exporters
