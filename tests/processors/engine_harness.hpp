#pragma once
// Test helpers: build sample batches, and replay metric records into the
// state an exporter would keep. Not thread-safe.

#include <cmath>
#include <cstddef>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "ringpipe/metric/metric_record.hpp"
#include "ringpipe/processors/aggregator.hpp"
#include "ringpipe/processors/mapping.hpp"
#include "ringpipe/sample/sample_batch.hpp"

namespace ringpipe::processors::testing {

using sample::Kind;

// A mapping rule as a mapping file writes it: `match` (a glob) to `name`,
// with these labels; regex_rule() for a regex match.
inline MappingRule rule(std::string match, std::string name,
                        std::vector<std::pair<std::string, std::string>> labels = {}) {
  MappingRule r;
  r.match = std::move(match);
  r.name = std::move(name);
  r.labels = std::move(labels);
  return r;
}
inline MappingRule regex_rule(std::string match, std::string name,
                              std::vector<std::pair<std::string, std::string>> labels = {}) {
  MappingRule r = rule(std::move(match), std::move(name), std::move(labels));
  r.match_type = MatchType::kRegex;
  return r;
}

// One series as an exporter sees it.
struct SeriesState {
  std::string name;
  MetricType type = MetricType::kGauge;
  std::uint16_t flags = 0;
  std::string help;
  std::string labels;  // "a=1,b=2"
  std::vector<double> values;
  std::string family;  // the family's name (the name's prefix for a Prometheus sample)
  std::string unit;
  // With kEntryNative: the native histogram.
  std::int32_t schema = 0;
  double zero_threshold = 0;
  double zero_count = 0;
  std::vector<std::pair<std::int32_t, double>> positive;
  std::vector<std::pair<std::int32_t, double>> negative;
};

// Applies every record to a map keyed by "name{labels}".
class ExporterState {
 public:
  void apply(const std::vector<std::vector<std::byte>>& records) {
    for (const auto& r : records) apply_record(r);
  }
  void apply_record(const std::vector<std::byte>& r) {
    metric::MetricBatchReader reader(r);
    while (auto e = reader.next()) {
      std::string labels;
      e->for_each_label([&](const metric::Label& l) {
        if (!labels.empty()) labels += ",";
        labels += std::string(l.name) + "=" + std::string(l.value);
      });
      const std::string key = std::string(e->name) + "{" + labels + "}";
      switch (e->kind) {
        case EntryKind::kSeries: {
          SeriesState s;
          s.name = std::string(e->name);
          s.type = e->type;
          s.flags = e->flags;
          s.help = std::string(e->help);
          s.labels = labels;
          s.family = std::string(e->family);
          s.unit = std::string(e->unit);
          for (std::size_t i = 0; i < e->value_count; ++i) s.values.push_back(e->value(i));
          s.schema = e->native.schema;
          s.zero_threshold = e->native.zero_threshold;
          s.zero_count = e->native.zero_count;
          for (std::size_t i = 0; i < e->native.positive_count; ++i) s.positive.push_back(e->native.positive(i));
          for (std::size_t i = 0; i < e->native.negative_count; ++i) s.negative.push_back(e->native.negative(i));
          series[key] = s;
          ++updates;
          break;
        }
        case EntryKind::kExpire:
          series.erase(key);
          ++expiries;
          break;
        case EntryKind::kSnapshotBegin:
          ++snapshot_begins;
          break;
        case EntryKind::kSnapshotEnd:
          ++snapshot_ends;
          break;
      }
    }
    if (reader.error() != metric::MetricDecodeError::kNone) ++decode_errors;
    versions.insert(reader.header().format_version);
  }
  [[nodiscard]] bool has(const std::string& key) const { return series.count(key) != 0; }
  [[nodiscard]] double value(const std::string& key, std::size_t i = 0) const {
    auto it = series.find(key);
    return it == series.end() || i >= it->second.values.size() ? std::nan("") : it->second.values[i];
  }

  std::map<std::string, SeriesState> series;
  int updates = 0;
  int expiries = 0;
  int snapshot_begins = 0;
  int snapshot_ends = 0;
  int decode_errors = 0;
  std::set<std::uint16_t> versions;  // format versions of the records applied
};

// Builds one sample-batch record.
class BatchBuilder {
 public:
  BatchBuilder() : buf_(1 << 16), writer_(buf_, 1, 0) {}
  BatchBuilder& add(Kind kind, std::string_view name, double value, std::vector<sample::Tag> tags = {},
                    double rate = 1.0, std::string_view str = {}) {
    if (!writer_.append(kind, name, value, rate, tags, str)) std::abort();
    return *this;
  }
  std::span<const std::byte> finish() {
    const std::size_t n = writer_.finish();
    return std::span<const std::byte>(buf_.data(), n);
  }

 private:
  std::vector<std::byte> buf_;
  sample::BatchWriter writer_;
};

// An engine, a sink and an exporter's view of the output, driven by a fake clock.
class Harness {
 public:
  explicit Harness(EngineOptions o = {}) : engine_(make(std::move(o))) {}

  static AggregatorEngine make(EngineOptions o) {
    auto e = AggregatorEngine::create(std::move(o));
    if (!e) std::abort();
    return std::move(*e);
  }
  void send(Kind kind, std::string_view name, double value, std::vector<sample::Tag> tags = {}, double rate = 1.0,
            std::string_view str = {}) {
    BatchBuilder b;
    b.add(kind, name, value, std::move(tags), rate, str);
    engine_.add_batch(b.finish(), now_ns);
  }
  // One Prometheus sample (scraped or remote-written) of `family`.
  void send_prom(std::string_view name, double value, const sample::Family& family,
                 std::vector<sample::Tag> tags = {}) {
    std::vector<std::byte> buf(1 << 16);
    sample::BatchWriter w(buf, 1, 0);
    if (!w.append(Kind::kGauge, name, value, 1.0, tags, {}, 0, &family)) std::abort();
    engine_.add_batch(std::span<const std::byte>(buf.data(), w.finish()), now_ns);
  }
  // Flushes and applies the output; returns the records it wrote.
  std::size_t flush() {
    sink.clear();
    engine_.flush(now_ns, 1'700'000'000'000'000'000 + now_ns, sink);
    state.apply(sink.records());
    return sink.records().size();
  }
  void advance(std::chrono::nanoseconds d) { now_ns += d.count(); }

  AggregatorEngine& engine() { return engine_; }
  EngineStats stats() const { return engine_.stats(); }

  std::int64_t now_ns = 1'000'000'000;
  VectorSink sink;
  ExporterState state;

 private:
  AggregatorEngine engine_;
};

}  // namespace ringpipe::processors::testing
